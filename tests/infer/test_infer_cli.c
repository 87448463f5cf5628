// `samx infer` end to end on a small synthetic dataset and the golden tiny SAM: the prediction
// files' layout (contracts §4), that each written mask is what the library computes for that row,
// the prompt file, SimSAM's candidate file, SQA-SAM on a prediction file and on a dataset file, and
// the errors a user can provoke.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "data/synthetic.h"
#include "infer/infer.h"
#include "tests/harness.h"
#include "tests/test_util.h"

#define CKPT "tests/data/sam_tiny/sam_tiny.pth"

static char dir[64];
static const char *samx_bin;

static int samx_run(const char *args) {
  char cmd[PATH_MAX + 2048];
  snprintf(cmd, sizeof cmd, "%s %s > %s/log.txt 2>&1", samx_bin, args, dir);
  return samx_test_exit_status(system(cmd));
}

static int log_contains(const char *what) {
  char path[128], buf[4096] = {0};
  snprintf(path, sizeof path, "%s/log.txt", dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return strstr(buf, what) != NULL;
}

typedef struct {
  SamxDataset *ds;
  SamModel m;
  int64_t h, w, k;
} Fixture;

// The library's answer for one row with box prompt `box` (RGB from the grey image).
static void library_row(Fixture *fx, const SamxInferOpts *o, int64_t row, const float box[4], SamxInferOutput *out) {
  int64_t hw = fx->h * fx->w;
  uint8_t *grey = (uint8_t *)malloc((size_t)hw), *rgb = (uint8_t *)malloc((size_t)(3 * hw));
  samx_dataset_read_image_u8(fx->ds, row, grey);
  for (int64_t q = 0; q < hw; q++) rgb[3 * q] = rgb[3 * q + 1] = rgb[3 * q + 2] = grey[q];
  SamxInferInput in = {.rgb = rgb, .h = (int)fx->h, .w = (int)fx->w, .key = (uint64_t)row};
  memcpy(in.box, box, sizeof in.box);
  SamxInferer *r = samx_inferer_new(&fx->m, o, (int)fx->h, (int)fx->w);
  samx_inferer_run(r, &in, 1, out);
  samx_inferer_free(r);
  free(grey), free(rgb);
}

// Every row of pred equals the library's result for its row (box from annotator 0, or `boxes`).
static void check_file(Fixture *fx, const char *path, const SamxInferOpts *o, int64_t want_n, int64_t want_m,
                       float (*boxes)[4]) {
  SamxPredictions *p = samx_predictions_open(path);
  CHECK(p != NULL, "%s: %s", path, samx_last_error());
  if (!p) return;
  CHECK(samx_predictions_n(p) == want_n && samx_predictions_m(p) == want_m && samx_predictions_check_dataset(p, fx->ds) == 0,
        "%s: %lld x %lld predictions, want %lld x %lld", path, (long long)samx_predictions_n(p), (long long)samx_predictions_m(p),
        (long long)want_n, (long long)want_m);
  CHECK(!strcmp(samx_predictions_method(p), samx_infer_method_name(o->method)), "%s: method %s", path, samx_predictions_method(p));
  int64_t hw = fx->h * fx->w;
  uint8_t *got = (uint8_t *)malloc((size_t)(want_m * hw)), *masks = (uint8_t *)malloc((size_t)(fx->k * hw));
  for (int64_t i = 0; i < samx_predictions_n(p); i++) {
    int64_t row = samx_predictions_index(p)[i];
    float box[4];
    if (boxes) {
      memcpy(box, boxes[row], sizeof box);
    } else {
      samx_dataset_read_masks(fx->ds, row, masks);
      CHECK(samx_mask_box(masks, fx->h, fx->w, box) == 0, "%s: row %lld has an empty annotator 0 but was predicted", path,
            (long long)row);
    }
    SamxInferOutput out;
    library_row(fx, o, row, box, &out);
    samx_predictions_read_masks(p, i, got);
    int64_t bad = 0;
    for (int64_t q = 0; q < hw; q++) bad += got[q] != out.mask[q];
    float score = samx_predictions_scores(p)[i * want_m];
    CHECK(bad == 0 && fabsf(score - out.score) < 1e-5f, "%s: row %lld differs from the library's result: %lld pixels, score %g vs %g",
          path, (long long)row, (long long)bad, score, out.score);
    samx_infer_output_free(&out);
  }
  free(got), free(masks);
  samx_predictions_close(p);
}

static int64_t rows_with_box(Fixture *fx) {
  int64_t n = 0, hw = fx->h * fx->w;
  uint8_t *masks = (uint8_t *)malloc((size_t)(fx->k * hw));
  float box[4];
  for (int64_t r = 0; r < samx_dataset_n(fx->ds); r++) {
    samx_dataset_read_masks(fx->ds, r, masks);
    n += samx_mask_box(masks, fx->h, fx->w, box) == 0;
  }
  free(masks);
  return n;
}

static void test_sam_and_prompts(Fixture *fx, const char *data) {
  char args[1024], out[128], prompts[128];
  snprintf(out, sizeof out, "%s/sam.h5", dir);
  snprintf(args, sizeof args, "infer --method sam --checkpoint %s --data %s --split all --out %s --device cpu --batch 2 -q", CKPT,
           data, out);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
  check_file(fx, out, &(SamxInferOpts){.method = SAMX_INFER_SAM, .max_batch = 1}, rows_with_box(fx), 1, NULL);
  // A prompt file: two rows, boxes given by hand.
  snprintf(prompts, sizeof prompts, "%s/prompts.csv", dir);
  FILE *f = fopen(prompts, "w");
  fprintf(f, "# row,x0,y0,x1,y1\n3, 4,5,30,20\n\n1,10.5,0,39,39  # whole right side\n");
  fclose(f);
  float boxes[6][4] = {{0}, {10.5f, 0, 39, 39}, {0}, {4, 5, 30, 20}};
  snprintf(out, sizeof out, "%s/sam_prompts.h5", dir);
  snprintf(args, sizeof args, "infer --method sam --checkpoint %s --data %s --split all --prompts %s --out %s --device cpu -q",
           CKPT, data, prompts, out);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
  check_file(fx, out, &(SamxInferOpts){.method = SAMX_INFER_SAM, .max_batch = 1}, 2, 1, boxes);
}

static void test_simsam(Fixture *fx, const char *data) {
  char args[1024], out[128], cand[128];
  snprintf(out, sizeof out, "%s/simsam.h5", dir);
  snprintf(cand, sizeof cand, "%s/cand.h5", dir);
  snprintf(args, sizeof args,
           "infer --method simsam --k 6 --checkpoint %s --data %s --split all --limit 3 --out %s --candidates %s --device cpu "
           "--batch 3 --decode-batch 4 -q",
           CKPT, data, out, cand);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
  SamxInferOpts o = samx_infer_defaults(SAMX_INFER_SIMSAM);
  o.simsam.k = 6;
  check_file(fx, out, &o, 3, 1, NULL);
  // Candidates: M = K + 1, the last one their union, the chosen mask one of them.
  SamxPredictions *c = samx_predictions_open(cand), *p = samx_predictions_open(out);
  CHECK(c && p && samx_predictions_m(c) == 7 && samx_predictions_n(c) == 3, "candidates file layout");
  if (c && p) {
    int64_t hw = fx->h * fx->w;
    uint8_t *cm = (uint8_t *)malloc((size_t)(7 * hw)), *pm = (uint8_t *)malloc((size_t)hw);
    for (int64_t i = 0; i < 3; i++) {
      samx_predictions_read_masks(c, i, cm);
      samx_predictions_read_masks(p, i, pm);
      int64_t union_bad = 0;
      int found = 0;
      for (int64_t q = 0; q < hw; q++) {
        int u = 0;
        for (int k = 0; k < 6; k++) u |= cm[k * hw + q];
        union_bad += u != cm[6 * hw + q];
      }
      for (int k = 0; k < 6; k++) found |= !memcmp(cm + k * hw, pm, (size_t)hw);
      CHECK(union_bad == 0 && found, "row %lld: union wrong by %lld pixels or chosen mask not among the candidates", (long long)i,
            (long long)union_bad);
    }
    free(cm), free(pm);
  }
  if (c) samx_predictions_close(c);
  if (p) samx_predictions_close(p);
}

static void test_sqa(Fixture *fx, const char *data) {
  char args[1024], out[128], sam[128], json[128];
  snprintf(sam, sizeof sam, "%s/sam.h5", dir);
  snprintf(out, sizeof out, "%s/sqa.h5", dir);
  snprintf(args, sizeof args, "infer --method sqa --segmentation %s --checkpoint %s --data %s --split all --out %s --device cpu -q",
           sam, CKPT, data, out);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
  SamxPredictions *q = samx_predictions_open(out), *s = samx_predictions_open(sam);
  CHECK(q && s && samx_predictions_quality(q) && samx_predictions_n(q) == samx_predictions_n(s), "sqa file layout");
  if (q && s) {
    int64_t hw = fx->h * fx->w;
    uint8_t *a = (uint8_t *)malloc((size_t)hw), *b = (uint8_t *)malloc((size_t)hw);
    for (int64_t i = 0; i < samx_predictions_n(q); i++) {
      samx_predictions_read_masks(q, i, a);
      samx_predictions_read_masks(s, i, b);
      float qv = samx_predictions_quality(q)[i];
      int empty = 1;
      for (int64_t p = 0; p < hw; p++) empty &= !b[p];
      CHECK(!memcmp(a, b, (size_t)hw) && samx_predictions_index(q)[i] == samx_predictions_index(s)[i],
            "sqa row %lld: pred_masks must be the scored segmentation", (long long)i);
      CHECK(empty ? isnan(qv) : (qv >= 0 && qv <= 1), "sqa row %lld: quality %g (segmentation %s)", (long long)i, qv,
            empty ? "empty" : "non-empty");
    }
    free(a), free(b);
  }
  if (q) samx_predictions_close(q);
  if (s) samx_predictions_close(s);
  // samx eval reads it and reports the correlation.
  snprintf(json, sizeof json, "%s/eval.json", dir);
  snprintf(args, sizeof args, "eval --data %s --pred %s --json %s", data, out, json);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
  // A dataset file as the segmentation: annotator 1's masks, every row.
  snprintf(args, sizeof args,
           "infer --method sqa --segmentation %s --seg-annotator 1 --point centroid --weighting area --checkpoint %s --data %s "
           "--split all --out %s/sqa_ds.h5 --device cpu -q",
           data, CKPT, data, dir);
  CHECK(samx_run(args) == 0, "samx %s failed", args);
}

static void test_errors(const char *data) {
  char args[1024];
  snprintf(args, sizeof args, "infer --method seqsam --checkpoint %s --data %s --out %s/x.h5 -q", CKPT, data, dir);
  CHECK(samx_run(args) == 1 && log_contains("sam_tiny.pth"), "--method seqsam with a plain SAM checkpoint must name the file");
  snprintf(args, sizeof args, "infer --method sam --masks 2 --checkpoint %s --data %s --out %s/x.h5", CKPT, data, dir);
  CHECK(samx_run(args) == 2 && log_contains("--masks"), "--masks without a trained model");
  snprintf(args, sizeof args, "infer --method sqa --checkpoint %s --data %s --out %s/x.h5", CKPT, data, dir);
  CHECK(samx_run(args) == 2 && log_contains("--segmentation"), "--method sqa without --segmentation");
  snprintf(args, sizeof args, "%s/bad.csv", dir);
  FILE *f = fopen(args, "w");
  fprintf(f, "99,1,1,5,5\n");
  fclose(f);
  snprintf(args, sizeof args, "infer --method sam --checkpoint %s --data %s --prompts %s/bad.csv --out %s/x.h5 -q", CKPT, data, dir,
           dir);
  CHECK(samx_run(args) == 1 && log_contains("bad.csv line 1") && log_contains("row 99"), "a prompt file row outside the dataset");
  snprintf(args, sizeof args, "infer --method sam --checkpoint %s --data %s/missing.h5 --out %s/x.h5 -q", CKPT, dir, dir);
  CHECK(samx_run(args) == 1 && log_contains("missing.h5"), "a missing dataset file must be named");
  CHECK(access(args, F_OK) != 0, "no output after a failure");
}

int main(int argc, char **argv) {
  samx_bin = samx_test_samx_bin(argv[0]);
  if (access(samx_bin, X_OK)) {
    printf("FAIL: %s not built\n", samx_bin);
    return 1;
  }
  SAMX_ASSERT(samx_test_mkdtemp(dir, sizeof dir, "samx_infer_cli") == 0, "mkdtemp failed");
  char data[128];
  snprintf(data, sizeof data, "%s/d.h5", dir);
  SamxSyntheticParams sp = {.n = 6, .size = 40, .k = 2, .slices_per_case = 2, .seed = 3};
  Fixture fx;
  if (samx_pack_synthetic(data, &sp) || !(fx.ds = samx_dataset_open(data)) || sam_load(&fx.m, CKPT, samx_cpu(), 0, NULL)) {
    printf("FAIL setup: %s\n", samx_last_error());
    return 1;
  }
  fx.h = samx_dataset_h(fx.ds), fx.w = samx_dataset_w(fx.ds), fx.k = samx_dataset_k(fx.ds);
  test_sam_and_prompts(&fx, data);
  test_simsam(&fx, data);
  test_sqa(&fx, data);
  test_errors(data);
  sam_free(&fx.m);
  samx_dataset_close(fx.ds);
  int failed = samx_test_summary();
  if (!failed) samx_test_remove_dir(dir);
  return failed;
}
