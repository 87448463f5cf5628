// Files written by samx against docs/contracts.md §3 / §4 (and the embedding cache schema), read by
// h5py (Debian's python3-h5py) rather than by samx's own HDF5 code: writes a synthetic dataset, a
// float RGB dataset, a prediction file and embedding caches in f32 / f16 / bf16, records what it
// wrote (sizes, sums, ids, values) in a JSON file, and runs tests/data/test_contract_h5py.py on it.
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/predictions.h"
#include "data/rng.h"
#include "data/synthetic.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[256];

static const char *tmp(const char *name) { return samx_test_path(dir, name); }

static json_t *synthetic_file(void) {
  SamxSyntheticParams p = samx_synthetic_defaults();
  p.n = 12, p.size = 32, p.k = 4, p.slices_per_case = 3, p.seed = 3;
  const char *path = tmp("synthetic.h5");
  if (samx_pack_synthetic(path, &p) != 0) return NULL;
  size_t hw = (size_t)(p.size * p.size);
  uint8_t *img = (uint8_t *)malloc(hw), *masks = (uint8_t *)malloc(hw * (size_t)p.k);
  double image_sum = 0;
  int64_t mask_sum = 0;
  for (int64_t i = 0; i < p.n; i++) {
    samx_synthetic_sample(&p, i, img, masks);
    for (size_t j = 0; j < hw; j++) image_sum += img[j];
    for (size_t j = 0; j < hw * (size_t)p.k; j++) mask_sum += masks[j] != 0;
  }
  free(img), free(masks);
  // The case ids are the generator's naming; take them from the file (h5py must read the same).
  SamxDataset *ds = samx_dataset_open(path);
  if (!ds) return NULL;
  json_t *ids = json_array();
  for (int64_t i = 0; i < p.n; i++) json_array_append_new(ids, json_string(samx_dataset_case_id(ds, i)));
  samx_dataset_close(ds);
  return json_pack("{s:s, s:I, s:I, s:I, s:I, s:i, s:s, s:f, s:I, s:o}", "path", path, "n", (json_int_t)p.n, "h",
                   (json_int_t)p.size, "w", (json_int_t)p.size, "k", (json_int_t)p.k, "channels", 1, "dtype", "uint8",
                   "image_sum", image_sum, "mask_sum", (json_int_t)mask_sum, "case_ids", ids);
}

enum { N = 4, H = 5, W = 6, K = 2, M = 3, NP = 3 };

static json_t *float_rgb_file(void) {
  static const char *cases[N] = {"pat-1", "pat-\xc3\xbc", "pat-1", "x"};
  static const int splits[N] = {0, 2, 0, 1};
  SamxDatasetSpec spec = {.h = H,
                          .w = W,
                          .k = K,
                          .channels = 3,
                          .dtype = SAMX_IMAGE_F32,
                          .source = "contract test",
                          .modality = "CT",
                          .display_attr = "window",
                          .display_lo = -1000,
                          .display_hi = 400};
  const char *path = tmp("float_rgb.h5");
  SamxDatasetWriter *w = samx_dataset_create(path, &spec);
  if (!w) return NULL;
  float img[H * W * 3];
  uint8_t masks[K * H * W], valid[K];
  uint64_t st = 9;
  double image_sum = 0;
  int64_t mask_sum = 0;
  json_t *ids = json_array();
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < H * W * 3; j++) image_sum += img[j] = (float)(samx_unit(samx_splitmix64(&st)) * 1400 - 1000);
    for (int k = 0; k < K; k++) valid[k] = !(i == 2 && k == 1);
    for (int j = 0; j < K * H * W; j++) mask_sum += masks[j] = valid[j / (H * W)] && samx_splitmix64(&st) % 3 == 0;
    SamxSample s = {.image = img,
                    .masks = masks,
                    .annotator_valid = valid,
                    .split = splits[i],
                    .case_id = cases[i],
                    .spacing = {0.7f, 0.7f}};
    if (samx_dataset_append(w, &s) != 0) return NULL;
    json_array_append_new(ids, json_string(cases[i]));
  }
  if (samx_dataset_finish(w) != 0) return NULL;
  return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:I, s:o}", "path", path, "n", N, "h", H, "w", W, "k", K,
                   "channels", 3, "dtype", "float32", "image_sum", image_sum, "mask_sum", (json_int_t)mask_sum,
                   "case_ids", ids);
}

static json_t *predictions_file(void) {
  static const char *SHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  static const int64_t index[NP] = {2, 0, 3};
  SamxPredictionsSpec spec = {.m = M,
                              .h = H,
                              .w = W,
                              .method = "sam",
                              .checkpoint_path = "w.pth",
                              .checkpoint_sha256 = SHA,
                              .dataset_path = "float_rgb.h5",
                              .split = "all",
                              .with_scores = 1,
                              .with_quality = 1};
  const char *path = tmp("pred.h5");
  SamxPredictionsWriter *w = samx_predictions_create(path, &spec);
  if (!w) return NULL;
  uint8_t masks[M * H * W];
  float scores[M];
  uint64_t st = 4;
  int64_t mask_sum = 0;
  json_t *jscores = json_array(), *jindex = json_array();
  for (int i = 0; i < NP; i++) {
    for (int j = 0; j < M * H * W; j++) mask_sum += masks[j] = samx_splitmix64(&st) % 2;
    for (int m = 0; m < M; m++) {
      scores[m] = (float)(0.25 * (i + 1) + 0.125 * m);  // exact in float32 and in JSON
      json_array_append_new(jscores, json_real(scores[m]));
    }
    if (samx_predictions_append(w, index[i], masks, scores, 0.5f) != 0) return NULL;
    json_array_append_new(jindex, json_integer(index[i]));
  }
  if (samx_predictions_finish(w) != 0) return NULL;
  return json_pack("{s:s, s:i, s:i, s:i, s:i, s:I, s:s, s:o, s:o}", "path", path, "n", NP, "m", M, "h", H, "w", W,
                   "mask_sum", (json_int_t)mask_sum, "checkpoint_sha256", SHA, "scores", jscores, "index", jindex);
}

static json_t *embeddings_file(SamxEmbedDtype dtype) {
  enum { C = 3, EH = 2, EW = 2, E = C * EH * EW };
  static const int64_t rows[2] = {1, 0};
  SamxEmbedSpec spec = {.c = C,
                        .h = EH,
                        .w = EW,
                        .dtype = dtype,
                        .checkpoint_path = "w.pth",
                        .checkpoint_sha256 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
                        .dataset_path = "float_rgb.h5",
                        .model_config = "{\"img_size\": 64}",
                        .input_size = 64};
  char name[64];
  snprintf(name, sizeof name, "emb_%s.h5", samx_embed_dtype_name(dtype));
  const char *path = tmp(name);
  SamxEmbedWriter *w = samx_embed_create(path, &spec);
  if (!w) return NULL;
  json_t *values = json_array(), *jindex = json_array();
  uint64_t st = 1;
  for (int i = 0; i < 2; i++) {
    float e[E];
    for (int j = 0; j < E; j++) {
      e[j] = (float)(samx_unit(samx_splitmix64(&st)) * 8 - 4);
      json_array_append_new(values, json_real(e[j]));
    }
    int64_t info[4] = {H, W, 53, 64};
    if (samx_embed_append(w, rows[i], e, info) != 0) return NULL;
    json_array_append_new(jindex, json_integer(rows[i]));
  }
  if (samx_embed_finish(w) != 0) return NULL;
  return json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:o, s:o}", "path", path, "n", 2, "c", C, "h", EH, "w", EW, "dtype",
                   samx_embed_dtype_name(dtype), "values", values, "index", jindex);
}

int main(void) {
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_contract") != 0) return 1;
  json_t *d1 = synthetic_file(), *d2 = float_rgb_file(), *p = predictions_file();
  json_t *e[3] = {embeddings_file(SAMX_EMBED_F32), embeddings_file(SAMX_EMBED_F16), embeddings_file(SAMX_EMBED_BF16)};
  if (!d1 || !d2 || !p || !e[0] || !e[1] || !e[2]) {
    printf("FAIL: writing the files: %s\n", samx_last_error());
    return 1;
  }
  json_t *expect =
      json_pack("{s:[o, o], s:[o], s:[o, o, o]}", "datasets", d1, d2, "predictions", p, "embeddings", e[0], e[1], e[2]);
  const char *expect_path = tmp("expect.json");
  CHECK(json_dump_file(expect, expect_path, JSON_INDENT(1)) == 0, "cannot write %s", expect_path);
  json_decref(expect);
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s -c 'import h5py' 2>/dev/null", py);
  if (system(cmd) != 0) {
    printf("FAIL: %s has no h5py: install Debian's python3-h5py (scripts/install-deps.sh)\n", py);
    return 1;
  }
  snprintf(cmd, sizeof cmd, "%s tests/data/test_contract_h5py.py %s", py, expect_path);
  int st = system(cmd);
  CHECK(samx_test_exit_status(st) == 0, "the h5py contract check failed (exit %d; see the lines above)",
        samx_test_exit_status(st));
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
