// samx train / infer / eval with method.name = fewshot end to end on a small synthetic anatomy set
// (6 volumes) and a small SAM with fresh weights: the run trains (its loss falls), fits its shots
// (IoU >= 0.9 on bone with cross-entropy, 500 steps; the checkpoint's metadata and log say so), records
// 5 distinct shots of the train split, and its checkpoint alone predicts every test row (M = 1), which
// samx eval --labels scores; the atlas and SAM point baselines run on the same rows. Inference from
// the cached embeddings (--embeddings) gives the masks the encoder path gives, and a cache of another
// encoder or data set is refused naming it. A run killed with SIGKILL and continued with --resume
// auto ends with the uninterrupted run's weights, bit for bit.
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/dataset.h"
#include "data/predictions.h"
#include "engine/safetensors.h"
#include "models/sam/sam.h"

static char dir[256];
static const char *bin;

static const char *P(const char *name) { return samx_test_path(dir, name); }

static int samx(const char *fmt, const char *a, const char *b, const char *c, const char *d) {
  char err[1024], args[4096];
  snprintf(args, sizeof args, fmt, a, b, c, d);
  int st = samx_test_run_samx(dir, 0, err, sizeof err, "%s", args);
  CHECK(st == 0, "samx %s: exit %d: %s", args, st, err);
  return st;
}


// Exit status and stderr of a samx command expected to fail.
static int samx_fails(char *err, size_t n, const char *fmt, const char *a, const char *b, const char *c, const char *d) {
  char args[4096];
  snprintf(args, sizeof args, fmt, a, b, c, d);
  return samx_test_run_samx(dir, 0, err, n, "%s", args);
}

// The masks of two prediction files, row by row.
static void check_same_predictions(const char *a, const char *b) {
  SamxPredictions *p = samx_predictions_open(P(a)), *q = samx_predictions_open(P(b));
  int same = p && q && samx_predictions_n(p) == samx_predictions_n(q) && samx_predictions_m(p) == samx_predictions_m(q);
  int64_t n = same ? samx_predictions_n(p) : 0, px = same ? samx_predictions_m(p) * samx_predictions_h(p) * samx_predictions_w(p) : 0;
  uint8_t *x = (uint8_t *)malloc((size_t)px + 1), *y = (uint8_t *)malloc((size_t)px + 1);
  int64_t differ = 0;
  for (int64_t i = 0; same && i < n; i++) {
    same = samx_predictions_index(p)[i] == samx_predictions_index(q)[i] && samx_predictions_read_masks(p, i, x) == 0 &&
           samx_predictions_read_masks(q, i, y) == 0;
    for (int64_t j = 0; same && j < px; j++) differ += x[j] != y[j];
  }
  CHECK(same && differ == 0 && n > 0, "%s and %s differ (%lld of %lld rows compared, %lld pixels)", a, b, (long long)n,
        (long long)n, (long long)differ);
  printf("--embeddings: %lld rows, the same masks as the encoder path\n", (long long)n);
  free(x), free(y);
  if (p) samx_predictions_close(p);
  if (q) samx_predictions_close(q);
}

// --embeddings: equal to the encoder path; another encoder's or data set's cache refused, naming it.
static void check_cached_inference(void) {
  samx("infer --method fewshot --checkpoint %s --data %s --embeddings %s --out %s --device cpu -q",
       P("run/checkpoints/final.safetensors"), P("a.h5"), P("e.h5"), P("fs_cached.h5"));
  check_same_predictions("fs.h5", "fs_cached.h5");
  char err[1024];
  int st = samx_fails(err, sizeof err, "infer --method fewshot --checkpoint %s --data %s --embeddings %s --out %s -q",
                      P("run/checkpoints/final.safetensors"), P("a.h5"), P("e_other_sam.h5"), P("x.h5"));
  CHECK(st == 1 && strstr(err, "e_other_sam.h5") && strstr(err, "samx embed"), "another encoder's cache: exit %d: %s", st, err);
  st = samx_fails(err, sizeof err, "infer --method fewshot --checkpoint %s --data %s --embeddings %s --out %s -q",
                  P("run/checkpoints/final.safetensors"), P("a.h5"), P("e_other_data.h5"), P("x.h5"));
  CHECK(st == 1 && strstr(err, "e_other_data.h5") && strstr(err, "dataset"), "another data set's cache: exit %d: %s", st, err);
  st = samx_fails(err, sizeof err, "infer --method sam --checkpoint %s --data %s --embeddings %s --out %s -q",
                  P("sam.safetensors"), P("a.h5"), P("e.h5"), P("x.h5"));
  CHECK(st == 2 && strstr(err, "--embeddings is for --method fewshot"), "--embeddings with sam: exit %d: %s", st, err);
}

// Tensors of two checkpoints, byte for byte.
static void check_same_weights(const char *a, const char *b) {
  SamxSafetensors x, y;
  int ox = samx_st_open(&x, P(a)) == 0, oy = samx_st_open(&y, P(b)) == 0;
  int same = ox && oy && x.n == y.n, n = 0;
  for (int i = 0; same && i < x.n; i++) {
    const SamxSTEntry *e = samx_st_find(&y, x.entries[i].name);
    same = e && e->nbytes == x.entries[i].nbytes && !memcmp(e->data, x.entries[i].data, e->nbytes);
    if (!same) printf("  first difference: %s\n", x.entries[i].name);
    n++;
  }
  CHECK(same && n > 10, "%s and %s differ (%d tensors compared)", a, b, n);
  printf("resumed run: %d tensors identical to the uninterrupted run's\n", n);
  if (ox) samx_st_close(&x);
  if (oy) samx_st_close(&y);
}

// SIGKILL after the first periodic checkpoint, then --resume auto: the uninterrupted run's final weights.
static void check_resume(const char *sets) {
  char args[4096];
  snprintf(args, sizeof args, "train configs/synthetic_fewshot.ini --device cpu --quiet %s --set fewshot.iterations=30 "
           "--set train.save_every=10 --set run.dir=%s", sets, P("straight"));
  char err[1024];
  CHECK(samx_test_run_samx(dir, 0, err, sizeof err, "%s", args) == 0, "uninterrupted run failed: %s", err);
  snprintf(args, sizeof args, "train configs/synthetic_fewshot.ini --device cpu --quiet %s --set fewshot.iterations=30 "
           "--set train.save_every=10 --set run.dir=%s", sets, P("killed"));
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "exec %s %s --set debug.step_sleep_ms=100 >/dev/null 2>&1", bin, args);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  int reached = 0;
  for (int i = 0; i < 6000 && !reached; i++) {
    reached = access(P("killed/checkpoints/latest.safetensors"), F_OK) == 0;
    if (!reached) usleep(10000);
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  CHECK(reached && WIFSIGNALED(st), "the run did not write latest.safetensors before it was killed (status %d)", st);
  CHECK(access(P("killed/checkpoints/final.safetensors"), F_OK) != 0, "the killed run finished before the kill");
  CHECK(samx_test_run_samx(dir, 0, err, sizeof err, "%s --resume auto", args) == 0, "--resume auto failed: %s", err);
  check_same_weights("straight/checkpoints/final.safetensors", "killed/checkpoints/final.safetensors");
}

int main(int argc, char **argv) {
  (void)argc;
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_fewshot_train") != 0) return 1;
  bin = samx_test_samx_bin(argv[0]);
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.img_size = 64, c.patch = 8, c.enc_dim = 64, c.enc_depth = 2, c.enc_heads = 2, c.enc_mlp = 128, c.window = 4;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[1] = 1;
  c.prompt_dim = c.out_chans = 64, c.dec_mlp = 128, c.iou_hidden = 64;
  SamModel m;
  sam_init_random(&m, &c, samx_cpu(), 0, 3);
  CHECK(sam_save(&m, P("sam.safetensors")) == 0, "sam_save: %s", samx_last_error());
  sam_free(&m);
  sam_init_random(&m, &c, samx_cpu(), 0, 4);
  CHECK(sam_save(&m, P("sam_other.safetensors")) == 0, "sam_save: %s", samx_last_error());
  sam_free(&m);
  if (samx("pack synthetic --kind anatomy --n 6 --out %s%s%s%s", P("a.h5"), "", "", "") ||
      samx("embed --checkpoint %s --data %s --out %s --device cpu%s", P("sam.safetensors"), P("a.h5"), P("e.h5"), ""))
    return samx_test_summary();
  char sets[2048];
  snprintf(sets, sizeof sets,
           "--set run.dir=%s --set model.checkpoint=%s --set data.path=%s --set data.embeddings=%s --set fewshot.label=bone "
           "--set fewshot.loss=ce --set fewshot.iterations=500",
           P("run"), P("sam.safetensors"), P("a.h5"), P("e.h5"));
  if (samx("train configs/synthetic_fewshot.ini --device cpu --quiet %s%s%s%s", sets, "", "", "")) return samx_test_summary();
  // log.jsonl: 500 steps, then the IoU on the shots
  FILE *f = fopen(P("run/log.jsonl"), "r");
  char line[512];
  double first = -1, last = -1, iou = -1;
  int steps = 0;
  while (f && fgets(line, sizeof line, f)) {
    json_t *o = json_loads(line, 0, NULL);
    if (json_object_get(o, "loss")) {
      last = json_number_value(json_object_get(o, "loss"));
      if (first < 0) first = last;
      steps++;
    }
    if (json_object_get(o, "shot_iou")) iou = json_number_value(json_array_get(json_object_get(o, "shot_iou"), 0));
    json_decref(o);
  }
  if (f) fclose(f);
  CHECK(steps == 500 && last < 0.5 * first, "loss over %d steps: %g -> %g", steps, first, last);
  CHECK(iou >= 0.9, "IoU on the shots %g < 0.9", iou);
  // rows.txt: 5 distinct rows of the train split
  SamxDataset *ds = samx_dataset_open(P("a.h5"));
  f = fopen(P("run/rows.txt"), "r");
  long long rows[8];
  int n = 0;
  while (f && n < 8 && fscanf(f, "%lld", &rows[n]) == 1) n++;
  if (f) fclose(f);
  CHECK(n == 5, "rows.txt holds %d rows", n);
  for (int i = 0; i < n && ds; i++) {
    CHECK(samx_dataset_splits(ds)[rows[i]] == SAMX_SPLIT_TRAIN, "shot row %lld is not in the train split", rows[i]);
    for (int j = 0; j < i; j++) CHECK(rows[i] != rows[j], "shot row %lld twice", rows[i]);
  }
  int64_t n_test = ds ? samx_dataset_split_rows(ds, SAMX_SPLIT_TEST, NULL, 0) : 0;
  if (ds) samx_dataset_close(ds);
  // inference from the checkpoint alone, every test row; the baselines on the same rows; evaluation
  samx("infer --method fewshot --checkpoint %s --data %s --out %s --device cpu -q%s", P("run/checkpoints/final.safetensors"),
       P("a.h5"), P("fs.h5"), "");
  samx("infer --method atlas --shots %s --labels bone --data %s --out %s -q%s", P("run/rows.txt"), P("a.h5"), P("at.h5"), "");
  samx("infer --method sam --prompt point --per-component --labels bone --checkpoint %s --data %s --out %s --device cpu -q",
       P("sam.safetensors"), P("a.h5"), P("pt.h5"), "");
  SamxPredictions *p = samx_predictions_open(P("fs.h5"));
  CHECK(p && samx_predictions_n(p) == n_test && samx_predictions_m(p) == 1, "fewshot predictions: %lld rows of %lld, M %lld",
        p ? (long long)samx_predictions_n(p) : -1LL, (long long)n_test, p ? (long long)samx_predictions_m(p) : -1LL);
  if (p) samx_predictions_close(p);
  const char *preds[3] = {"fs.h5", "at.h5", "pt.h5"};
  for (int i = 0; i < 3; i++) {
    char json[300];
    snprintf(json, sizeof json, "%s.json", P(preds[i]));
    samx("eval --data %s --pred %s --labels bone --json %s --quiet", P("a.h5"), P(preds[i]), json, "");
    json_t *o = json_load_file(json, 0, NULL);
    json_t *lab = json_array_get(json_object_get(o, "labels"), 0);
    CHECK(lab && json_integer_value(json_object_get(json_object_get(lab, "iou"), "n")) > 0,
          "%s: no IoU in the evaluation", preds[i]);
    printf("%s: bone IoU %.3f\n", preds[i], json_number_value(json_object_get(json_object_get(lab, "iou"), "mean")));
    json_decref(o);
  }
  samx("embed --checkpoint %s --data %s --out %s --device cpu%s", P("sam_other.safetensors"), P("a.h5"), P("e_other_sam.h5"), "");
  samx("pack synthetic --kind anatomy --n 6 --seed 7 --out %s%s%s%s", P("b.h5"), "", "", "");
  samx("embed --checkpoint %s --data %s --out %s --device cpu%s", P("sam.safetensors"), P("b.h5"), P("e_other_data.h5"), "");
  check_cached_inference();
  check_resume(sets);
  int rc = samx_test_summary();
  if (rc == 0) samx_test_remove_dir(dir);
  return rc;
}
