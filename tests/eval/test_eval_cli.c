// End to end: a tiny dataset and prediction file written with samx_data, scored by the `samx eval`
// binary (--json, --csv, --split, --subset, --empty-policy), then `samx compare`; the numbers are
// worked out by hand below from the definitions.
//
// 4x4 images, K = 2 annotators, M = 2 hypotheses.
//  row 0 (test):  a1 = a2 = h1 = h2 = top-left 1x2 bar: every score perfect (assd, hd95 0).
//  row 1 (test):  a1 empty, a2 the central 2x2 block, h1 = h2 empty.
//    monai: dice/iou NaN (empty reference); dice_avg: vote empty, a1 skipped, a2 0: 0; dmax 0;
//    dmax_pairs 0; ged: d(s,y) = 0,1 per hypothesis: 2(1/2) - 0 - (0+1+1+0)/4 = 1/2; hm_iou: h1-a1
//    IoU 1, h2-a2 0: 1/2; nsd/assd/hd95 of two empty masks: NaN. p2sam: dice 1, dice_avg (1+0)/2.
//  row 2 (train): a1 = pixel (0,0), a2 not read (annotator_valid 0, mask non-empty on purpose);
//    h1 = pixel (0,1), h2 = pixel (0,0); spacing (0.5, 3) mm.
//    dice/iou (h1, a1) 0; vote: two ties: empty, dice_avg 0; dmax (0 + 1)/2; dmax_pairs 1;
//    ged: 2(1/2) - 1/2 - 0 = 1/2; hm_iou replicated (a1, a1): 1/2, rectangular (p2sam): 1;
//    nsd at 2 px (pixel grid): 1; assd = hd95 = one column apart = 3 mm.
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "eval_test_util.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[64];
static const char *samx_bin;

static void set_px(uint8_t *m, int r, int c) { m[r * 4 + c] = 1; }

static int write_files(const char *data, const char *pred) {
  SamxDatasetSpec spec = {.h = 4, .w = 4, .k = 2, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test",
                          .modality = "synthetic"};
  SamxDatasetWriter *dw = samx_dataset_create(data, &spec);
  if (!dw) return -1;
  uint8_t image[16] = {0}, masks[3][32] = {{0}}, hyp[3][32] = {{0}};
  set_px(masks[0], 0, 0), set_px(masks[0], 0, 1), set_px(masks[0] + 16, 0, 0), set_px(masks[0] + 16, 0, 1);
  memcpy(hyp[0], masks[0], 32);
  set_px(masks[1] + 16, 1, 1), set_px(masks[1] + 16, 1, 2), set_px(masks[1] + 16, 2, 1), set_px(masks[1] + 16, 2, 2);
  set_px(masks[2], 0, 0), set_px(masks[2] + 16, 3, 3);
  set_px(hyp[2], 0, 1), set_px(hyp[2] + 16, 0, 0);
  uint8_t valid[3][2] = {{1, 1}, {1, 1}, {1, 0}};
  int split[3] = {SAMX_SPLIT_TEST, SAMX_SPLIT_TEST, SAMX_SPLIT_TRAIN};
  float spacing[3][2] = {{1, 1}, {1, 1}, {0.5f, 3}};
  const char *case_id[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    SamxSample s = {image, masks[i], valid[i], split[i], case_id[i], {spacing[i][0], spacing[i][1]}};
    if (samx_dataset_append(dw, &s)) return samx_dataset_abort(dw), -1;
  }
  if (samx_dataset_finish(dw)) return -1;
  SamxPredictionsSpec ps = {.m = 2, .h = 4, .w = 4, .method = "handmade", .checkpoint_path = "none",
                            .dataset_path = data, .split = "all", .with_quality = 1};
  SamxPredictionsWriter *pw = samx_predictions_create(pred, &ps);
  if (!pw) return -1;
  float quality[3] = {0.9f, 0.1f, 0.3f};
  for (int i = 0; i < 3; i++)
    if (samx_predictions_append(pw, i, hyp[i], NULL, quality[i])) return samx_predictions_abort(pw), -1;
  return samx_predictions_finish(pw);
}

// Runs samx with args; returns its exit status.
static int run_samx(const char *args, const char *stdout_path) {
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "%s %s > %s 2>&1", samx_bin, args, stdout_path ? stdout_path : "/dev/null");
  return samx_test_exit_status(system(cmd));
}

static json_t *metric(json_t *root, const char *name) { return json_object_get(json_object_get(root, "metrics"), name); }
static double mean_of(json_t *root, const char *name) {
  json_t *m = json_object_get(metric(root, name), "mean");
  return json_is_number(m) ? json_number_value(m) : NAN;
}
static long long n_valid_of(json_t *root, const char *name) {
  return (long long)json_integer_value(json_object_get(metric(root, name), "n_valid"));
}
static double sample_of(json_t *root, int i, const char *name) {
  json_t *v = json_object_get(json_array_get(json_object_get(root, "per_sample"), (size_t)i), name);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

#define MEAN(root, name, want, nv)                                                                              \
  do {                                                                                                          \
    CHECK(test_close(mean_of(root, name), want, 1e-12), "%s mean %.17g, want %.17g", name, mean_of(root, name), \
          (double)(want));                                                                                      \
    CHECK(n_valid_of(root, name) == (nv), "%s n_valid %lld, want %d", name, n_valid_of(root, name), nv);        \
  } while (0)

static json_t *eval_json(const char *extra, const char *json_path) {
  char args[2048];
  snprintf(args, sizeof args, "eval --data %s/d.h5 --pred %s/p.h5 --json %s %s", dir, dir, json_path, extra);
  int rc = run_samx(args, NULL);
  CHECK(rc == 0, "samx %s: exit %d", args, rc);
  json_error_t err;
  json_t *root = json_load_file(json_path, 0, &err);
  CHECK(root != NULL, "%s: %s", json_path, err.text);
  return root;
}

int main(int argc, char **argv) {
  samx_bin = samx_test_samx_bin(argv[0]);
  if (access(samx_bin, X_OK)) {
    printf("FAIL: %s not built\n", samx_bin);
    return 1;
  }
  SAMX_ASSERT(samx_test_mkdtemp(dir, sizeof dir, "samx_eval_cli") == 0, "mkdtemp failed");
  char data[128], pred[128], json[128], csv[128], out[128], args[1024];
  snprintf(data, sizeof data, "%s/d.h5", dir), snprintf(pred, sizeof pred, "%s/p.h5", dir);
  snprintf(json, sizeof json, "%s/all.json", dir), snprintf(csv, sizeof csv, "%s/per.csv", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  int wrc = write_files(data, pred);
  CHECK(wrc == 0, "writing the test files: %s", samx_last_error());
  if (wrc) return samx_test_summary();

  // All three rows, MONAI policy.
  snprintf(args, sizeof args, "--csv %s", csv);
  json_t *all = eval_json(args, json);
  if (all) {
    CHECK(json_integer_value(json_object_get(all, "n")) == 3, "n");
    MEAN(all, "dice", 0.5, 2);
    MEAN(all, "iou", 0.5, 2);
    MEAN(all, "ged", 1.0 / 3.0, 3);
    MEAN(all, "diversity", 1.0 / 6.0, 3);
    MEAN(all, "dice_avg", 1.0 / 3.0, 3);
    MEAN(all, "dmax", 0.5, 3);
    MEAN(all, "dmax_pairs", 2.0 / 3.0, 3);
    MEAN(all, "hm_iou", 2.0 / 3.0, 3);
    MEAN(all, "nsd", 1.0, 2);
    MEAN(all, "assd", 1.5, 2);
    MEAN(all, "hd95", 1.5, 2);
    CHECK(test_close(json_number_value(json_object_get(metric(all, "dice"), "std")), 0.5, 1e-12), "dice std");
    CHECK(json_is_null(json_object_get(json_array_get(json_object_get(all, "per_sample"), 1), "dice")),
          "undefined per-sample value is null");
    CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(all, "per_sample"), 2), "index")) == 2,
          "per-sample index");
    CHECK(test_close(sample_of(all, 2, "assd"), 3.0, 1e-12), "assd in mm with spacing (0.5, 3)");
    json_t *q = json_object_get(all, "quality");
    CHECK(q && json_integer_value(json_object_get(q, "n")) == 2 &&
              test_close(json_number_value(json_object_get(q, "pearson")), 1.0, 1e-9),
          "quality correlation");
    json_decref(all);
  }
  FILE *f = fopen(csv, "r");
  char line[1024] = "";
  CHECK(f && fgets(line, sizeof line, f) && !strncmp(line, "index,case_id,dice_avg,ged", 26), "csv header: %s", line);
  int rows = 0;
  while (f && fgets(line, sizeof line, f)) rows++;
  CHECK(rows == 3, "csv rows %d", rows);
  if (f) fclose(f);

  // --split test: rows 0 and 1; --subset 1:2: row 1 only.
  snprintf(json, sizeof json, "%s/test.json", dir);
  json_t *test = eval_json("--split test --metrics dice,ged", json);
  if (test) {
    CHECK(json_integer_value(json_object_get(test, "n")) == 2, "split n");
    MEAN(test, "dice", 1.0, 1);
    MEAN(test, "ged", 0.25, 2);
    CHECK(metric(test, "nsd") == NULL, "--metrics limits the output");
    json_decref(test);
  }
  snprintf(json, sizeof json, "%s/sub.json", dir);
  json_t *sub = eval_json("--subset 1:2 --metrics hm_iou", json);
  if (sub) {
    CHECK(json_integer_value(json_object_get(sub, "n")) == 1, "subset n");
    MEAN(sub, "hm_iou", 0.5, 1);
    json_decref(sub);
  }

  // P2SAM policy: both-empty Dice 1, HM-IoU without replication.
  snprintf(json, sizeof json, "%s/p2sam.json", dir);
  json_t *p2 = eval_json("--empty-policy p2sam", json);
  if (p2) {
    MEAN(p2, "dice", 2.0 / 3.0, 3);
    MEAN(p2, "dice_avg", 0.5, 3);
    MEAN(p2, "hm_iou", 5.0 / 6.0, 3);
    json_decref(p2);
  }

  // NSD in mm with the sample's spacing: row 2's corners are 3 mm or 0 apart, so tolerance 2 mm
  // keeps half the boundary.
  snprintf(json, sizeof json, "%s/mm.json", dir);
  json_t *mm = eval_json("--metrics nsd --nsd-units mm --nsd-tolerance 2", json);
  if (mm) {
    CHECK(test_close(sample_of(mm, 2, "nsd"), 0.5, 1e-12), "nsd in mm %.17g", sample_of(mm, 2, "nsd"));
    json_decref(mm);
  }

  // Errors: a bad metric name, a missing file.
  snprintf(args, sizeof args, "eval --data %s --pred %s --metrics dice,nope", data, pred);
  CHECK(run_samx(args, out) == 2, "unknown metric rejected");
  snprintf(args, sizeof args, "eval --data %s/missing.h5 --pred %s", dir, pred);
  CHECK(run_samx(args, out) != 0, "missing dataset rejected");

  // compare: the table has both methods and a p-value column entry.
  char a_json[160], b_json[160];
  snprintf(a_json, sizeof a_json, "%s/all.json", dir), snprintf(b_json, sizeof b_json, "%s/p2sam.json", dir);
  snprintf(args, sizeof args, "compare %s %s --metrics dice,hm_iou", a_json, b_json);
  CHECK(run_samx(args, out) == 0, "samx compare");
  f = fopen(out, "r");
  int header = 0, rows_with_p = 0, labels = 0;
  while (f && fgets(line, sizeof line, f)) {
    header |= !strncmp(line, "| method | hm_iou | dice |", 26);  // metrics in samx eval's order
    labels += strstr(line, "all.json |") != NULL || strstr(line, "p2sam.json |") != NULL;
    rows_with_p += strstr(line, "(p ") != NULL;
  }
  if (f) fclose(f);
  CHECK(header && rows_with_p == 1 && labels == 2, "compare table (header %d, rows with p %d, labels %d)", header,
        rows_with_p, labels);

  if (!samx_test_failed) {
    samx_test_remove_dir(dir);
  } else {
    printf("files kept in %s\n", dir);
  }
  return samx_test_summary();
}
