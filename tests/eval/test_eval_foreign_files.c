// `samx eval` and `samx compare` on files other tools write, and on outputs a user points at special
// places. Each check reproduces a reported failure:
//  - a prediction file written by a few lines of h5py (schema, version, int32 /index, bool
//    /pred_masks, a string checkpoint, no dataset) evaluates, with a warning that its dataset cannot
//    be checked, and `samx infer --method sqa` scores it; one recording another dataset's sha256 is refused unless --allow-dataset-mismatch;
//    a mask value of 2 is refused, naming the file;
//  - `samx compare` with a second file that is not an eval JSON fails with exit 2 (it crashed);
//  - --json onto a FIFO streams into it (the FIFO survives), onto a symlink replaces the link's
//    target (the link survives), onto --pred is refused (the input survives); --csv onto /dev/full
//    fails without leaving a temporary file; -q is accepted.
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[64];
static const char *samx_bin;

// A 4x4 dataset of 3 rows, K = 1, whose masks are the top-left 2x2 block.
static int write_dataset(const char *path) {
  SamxDatasetSpec spec = {.h = 4, .w = 4, .k = 1, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test",
                          .modality = "synthetic"};
  SamxDatasetWriter *dw = samx_dataset_create(path, &spec);
  if (!dw) return -1;
  uint8_t image[16] = {0}, mask[16] = {0}, valid[1] = {1};
  mask[0] = mask[1] = mask[4] = mask[5] = 1;
  const char *ids[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    SamxSample s = {image, mask, valid, SAMX_SPLIT_TEST, ids[i], {1, 1}};
    if (samx_dataset_append(dw, &s)) return samx_dataset_abort(dw), -1;
  }
  return samx_dataset_finish(dw);
}

static int run(const char *fmt, const char *a, const char *b, const char *c) {
  char args[2048], cmd[4096];
  snprintf(args, sizeof args, fmt, a, b, c);
  snprintf(cmd, sizeof cmd, "TMPDIR=%s %s %s > %s/out.txt 2> %s/err.txt", dir, samx_bin, args, dir, dir);
  return samx_test_exit_status(system(cmd));
}

static char *slurp(const char *path) {
  size_t n;
  char *s = samx_read_file(path, &n);
  return s ? s : strdup("");
}

static int python(const char *script) {
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char path[256], cmd[1024];
  snprintf(path, sizeof path, "%s/w.py", dir);
  FILE *f = fopen(path, "w");
  fputs(script, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cd %s && %s w.py", dir, py);
  return samx_test_exit_status(system(cmd));
}

static int count_tmp_files(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.tmp' > %s/count.txt", dir, dir);
  (void)!system(cmd);
  char *s = slurp(samx_test_path(dir, "count.txt"));
  int n = atoi(s);
  free(s);
  return n;
}

static void h5py_predictions(const char *data) {
  // What a PyTorch user writes: int32 index, bool masks, the checkpoint as one string, no dataset.
  static const char *script =
      "import h5py, numpy as np\n"
      "m = np.zeros((3, 2, 4, 4), bool); m[:, 0, :2, :2] = True\n"
      "with h5py.File('h5py_pred.h5', 'w') as f:\n"
      "    f.attrs['schema'] = 'samx-predictions'; f.attrs['version'] = 1\n"
      "    f.attrs['checkpoint'] = 'unet.pt'\n"
      "    f['index'] = np.arange(3, dtype=np.int32); f['pred_masks'] = m\n"
      "with h5py.File('h5py_other.h5', 'w') as f:\n"
      "    f.attrs['schema'] = 'samx-predictions'; f.attrs['version'] = np.int32(1)\n"
      "    f.attrs['dataset'] = ['elsewhere.h5', 'ab' * 32]\n"
      "    f['index'] = np.arange(3, dtype=np.uint16); f['pred_masks'] = m.astype(np.uint8)\n"
      "with h5py.File('h5py_bad.h5', 'w') as f:\n"
      "    f.attrs['schema'] = 'samx-predictions'; f.attrs['version'] = 1\n"
      "    f['index'] = np.arange(3, dtype=np.int64); f['pred_masks'] = m.astype(np.uint8) * 2\n";
  int rc = python(script);
  CHECK(rc == 0, "h5py could not write the prediction files (exit %d)", rc);
  if (rc) return;
  char json[256];
  snprintf(json, sizeof json, "%s/h5py.json", dir);
  rc = run("eval --data %s --pred %s --json %s -q", data, samx_test_path(dir, "h5py_pred.h5"), json);
  char *err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 0, "samx eval of the h5py prediction file: exit %d: %s", rc, err);
  CHECK(strstr(err, "records no dataset sha256") != NULL, "no warning about the missing dataset sha256: %s", err);
  free(err);
  json_error_t je;
  json_t *root = json_load_file(json, 0, &je);
  CHECK(root && json_integer_value(json_object_get(root, "n")) == 3, "%s: n is not 3", json);
  // Every prediction is the reference block: Dice 1.
  double d = json_number_value(json_object_get(json_object_get(json_object_get(root, "metrics"), "dice"), "mean"));
  CHECK(d == 1.0, "dice of the h5py predictions %g, want 1", d);
  json_decref(root);

  // SQA-SAM scores the same h5py file as a segmentation.
  rc = run("infer --method sqa --checkpoint tests/data/sam_tiny/sam_tiny.pth --data %s --segmentation %s --split all "
           "--device cpu -q --out %s",
           data, samx_test_path(dir, "h5py_pred.h5"), samx_test_path(dir, "sqa.h5"));
  err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 0, "samx infer --method sqa on the h5py prediction file: exit %d: %s", rc, err);
  free(err);
  rc = run("eval --data %s --pred %s %s", data, samx_test_path(dir, "h5py_other.h5"), "");
  err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 1 && strstr(err, "--allow-dataset-mismatch") && strstr(err, "h5py_other.h5"),
        "a prediction file of another dataset: exit %d, %s", rc, err);
  free(err);
  rc = run("eval --data %s --pred %s %s", data, samx_test_path(dir, "h5py_other.h5"), "--allow-dataset-mismatch -q");
  err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 0 && strstr(err, "warning"), "--allow-dataset-mismatch: exit %d, %s", rc, err);
  free(err);
  rc = run("eval --data %s --pred %s %s", data, samx_test_path(dir, "h5py_bad.h5"), "");
  err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 1 && strstr(err, "h5py_bad.h5") && strstr(err, "0 or 1"), "masks holding 2: exit %d, %s", rc, err);
  free(err);
}

static void compare_bad_files(const char *good) {
  const char *junk = samx_test_path(dir, "junk.txt"), *other = samx_test_path(dir, "other.json");
  samx_write_file_atomic(junk, "not json at all", 15);
  samx_write_file_atomic(other, "{\"metrics\": {}, \"per_sample\": [{\"x\": 1}]}", 41);
  int rc = run("compare %s %s %s", good, junk, "");
  CHECK(rc == 2, "samx compare GOOD junk.txt: exit %d, want 2 (crashed: %d)", rc, rc < 0);
  rc = run("compare %s %s %s", good, good, junk);
  CHECK(rc == 2, "samx compare GOOD GOOD junk.txt: exit %d, want 2", rc);
  rc = run("compare %s %s %s", good, other, "");
  char *err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 2 && strstr(err, "other.json"), "samx compare GOOD other.json: exit %d, %s", rc, err);
  free(err);
}

static void outputs(const char *data, const char *pred) {
  // A FIFO: a reader collects what samx streams into it; the FIFO stays a FIFO.
  const char *fifo = samx_test_path(dir, "fifo"), *got = samx_test_path(dir, "from_fifo.json");
  CHECK(mkfifo(fifo, 0600) == 0, "mkfifo failed");
  char args[1024];
  snprintf(args, sizeof args, "(cat %s > %s &) ; ", fifo, got);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cd %s && %s TMPDIR=%s %s eval --data %s --pred %s --json %s -q 2> %s/err.txt", dir, args,
           dir, samx_bin, data, pred, fifo, dir);
  int rc = samx_test_exit_status(system(cmd));
  usleep(200000);
  struct stat st;
  CHECK(rc == 0, "eval --json FIFO: exit %d", rc);
  CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced by a regular file");
  char *s = slurp(got);
  CHECK(strstr(s, "\"per_sample\"") != NULL, "the FIFO's reader got no eval JSON: '%.80s'", s);
  free(s);

  // A symlink: the link stays, its target gets the JSON.
  const char *target = samx_test_path(dir, "target.json"), *link = samx_test_path(dir, "link.json");
  samx_write_file_atomic(target, "old", 3);
  CHECK(symlink("target.json", link) == 0, "symlink failed");
  rc = run("eval --data %s --pred %s --json %s -q", data, pred, link);
  CHECK(rc == 0, "eval --json SYMLINK: exit %d", rc);
  CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the symlink was replaced by a regular file");
  s = slurp(target);
  CHECK(strstr(s, "\"per_sample\"") != NULL, "the symlink's target was not written");
  free(s);

  // An output that is an input is refused before anything is written.
  char before[65], after[65];
  samx_sha256_file(pred, before);
  rc = run("eval --data %s --pred %s --json %s", data, pred, pred);
  samx_sha256_file(pred, after);
  char *err = slurp(samx_test_path(dir, "err.txt"));
  CHECK(rc == 2 && strstr(err, "replace that input"), "eval --json = --pred: exit %d, %s", rc, err);
  CHECK(!strcmp(before, after), "--pred was changed by --json onto it");
  free(err);
  rc = run("eval --data %s --pred %s --csv %s", data, pred, data);
  CHECK(rc == 2, "eval --csv = --data: exit %d, want 2", rc);

  // A failed --csv leaves no temporary file (here or in TMPDIR).
  int before_tmp = count_tmp_files();
  rc = run("eval --data %s --pred %s --csv /dev/full %s", data, pred, "-q");
  CHECK(rc == 1, "eval --csv /dev/full: exit %d, want 1", rc);
  CHECK(count_tmp_files() == before_tmp, "eval --csv /dev/full left a temporary file");
  rc = run("eval --data %s --pred %s --csv /dev/null %s", data, pred, "-q");
  CHECK(rc == 0 && lstat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "eval --csv /dev/null: exit %d", rc);
}

int main(int argc, char **argv) {
  (void)argc;
  samx_bin = samx_test_samx_bin(argv[0]);
  if (access(samx_bin, X_OK)) {
    printf("FAIL: %s not built\n", samx_bin);
    return 1;
  }
  SAMX_ASSERT(samx_test_mkdtemp(dir, sizeof dir, "samx_eval_foreign") == 0, "mkdtemp failed");
  char data[128], pred[128], good[128];
  snprintf(data, sizeof data, "%s/d.h5", dir);
  snprintf(pred, sizeof pred, "%s/h5py_pred.h5", dir);
  snprintf(good, sizeof good, "%s/h5py.json", dir);
  CHECK(write_dataset(data) == 0, "writing the dataset: %s", samx_last_error());
  h5py_predictions(data);
  compare_bad_files(good);
  outputs(data, pred);
  if (!samx_test_failed) samx_test_remove_dir(dir);
  else printf("files kept in %s\n", dir);
  return samx_test_summary();
}
