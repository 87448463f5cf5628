// Dataset and prediction files: round trips, schema validation errors, case-level splits, the
// synthetic generator, sha256.
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "data/rng.h"
#include "data/synthetic.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[256];

static const char *tmpfile_path(const char *name) { return samx_test_path(dir, name); }

// ---- a small dataset with every field filled ----
enum { N = 5, H = 6, W = 5, K = 3 };
static uint8_t img_u8[N][H * W];
static float img_f32[N][H * W * 3];
static uint8_t masks[N][K * H * W];
static uint8_t valid[N][K];
static const char *cases[N] = {"case-a", "case-b", "Fall-\xc3\xa4", "case-a", "case-c"};
static const int splits[N] = {0, 1, 2, 0, 1};

static void fill_fixture(void) {
  uint64_t st = 7;
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < H * W; j++) img_u8[i][j] = (uint8_t)samx_splitmix64(&st);
    for (int j = 0; j < H * W * 3; j++) img_f32[i][j] = (float)(samx_unit(samx_splitmix64(&st)) * 2000 - 1000);
    for (int j = 0; j < K * H * W; j++) masks[i][j] = samx_splitmix64(&st) % 3 == 0;
    for (int k = 0; k < K; k++) valid[i][k] = (i + k) % 4 != 3;
    for (int k = 0; k < K; k++)
      if (!valid[i][k]) memset(masks[i] + k * H * W, 0, H * W);
  }
}

static int write_fixture(const char *path, SamxImageDtype dtype, int channels) {
  SamxDatasetSpec spec = {.h = H, .w = W, .k = K, .channels = channels, .dtype = dtype, .source = "test fixture",
                          .modality = "CT", .display_attr = "window", .display_lo = -1000, .display_hi = 1000};
  SamxDatasetWriter *w = samx_dataset_create(path, &spec);
  if (!w) return -1;
  CHECK(access(path, F_OK) != 0, "the final name must not exist before finish");
  for (int i = 0; i < N; i++) {
    SamxSample s = {.image = dtype == SAMX_IMAGE_U8 ? (const void *)img_u8[i] : (const void *)img_f32[i],
                    .masks = masks[i], .annotator_valid = valid[i], .split = splits[i], .case_id = cases[i],
                    .spacing = {0.5f + 0.1f * (float)i, i == 4 ? 0 : 0.8f}};
    if (samx_dataset_append(w, &s) != 0) return -1;
  }
  samx_dataset_writer_attr_int(w, "seed", 1234);
  samx_dataset_writer_attr_string(w, "preprocessing", "none");
  return samx_dataset_finish(w);
}

static void test_round_trip_u8(void) {
  const char *path = tmpfile_path("rt_u8.h5");
  CHECK(write_fixture(path, SAMX_IMAGE_U8, 1) == 0, "write: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(path);
  CHECK(ds != NULL, "open: %s", samx_last_error());
  if (!ds) return;
  SamxDatasetInfo in = samx_dataset_info(ds);
  CHECK(in.n == N && in.h == H && in.w == W && in.k == K && in.channels == 1 && in.dtype == SAMX_IMAGE_U8,
        "info N %lld H %lld W %lld K %lld C %d", (long long)in.n, (long long)in.h, (long long)in.w, (long long)in.k,
        in.channels);
  uint8_t img[H * W], m[K * H * W];
  float f[H * W];
  for (int i = 0; i < N; i++) {
    CHECK(samx_dataset_read_image_u8(ds, i, img) == 0 && !memcmp(img, img_u8[i], sizeof img), "image %d", i);
    CHECK(samx_dataset_read_masks(ds, i, m) == 0 && !memcmp(m, masks[i], sizeof m), "masks %d", i);
    CHECK(samx_dataset_read_image_f32(ds, i, f) == 0 && f[7] == (float)img_u8[i][7], "image %d as float", i);
    CHECK(!memcmp(samx_dataset_annotator_valid(ds) + i * K, valid[i], K), "annotator_valid %d", i);
    CHECK(samx_dataset_splits(ds)[i] == splits[i], "split %d", i);
    CHECK(!strcmp(samx_dataset_case_id(ds, i), cases[i]), "case_id %d: '%s'", i, samx_dataset_case_id(ds, i));
    const float *sp = samx_dataset_spacing(ds) + 2 * i;
    CHECK(sp[0] == 0.5f + 0.1f * (float)i && sp[1] == (i == 4 ? 1.0f : 0.8f), "spacing %d: %g %g", i, sp[0], sp[1]);
  }
  int64_t rows[N];
  CHECK(samx_dataset_split_rows(ds, SAMX_SPLIT_VAL, rows, N) == 2 && rows[0] == 1 && rows[1] == 4, "val rows");
  char buf[256];
  CHECK(samx_dataset_attr(ds, "schema", buf, sizeof buf) == 0 && !strcmp(buf, "samx-dataset"), "schema '%s'", buf);
  CHECK(samx_dataset_attr(ds, "version", buf, sizeof buf) == 0 && !strcmp(buf, "1"), "version '%s'", buf);
  CHECK(samx_dataset_attr(ds, "modality", buf, sizeof buf) == 0 && !strcmp(buf, "CT"), "modality '%s'", buf);
  CHECK(samx_dataset_attr(ds, "source", buf, sizeof buf) == 0 && !strcmp(buf, "test fixture"), "source '%s'", buf);
  CHECK(samx_dataset_attr(ds, "created_by", buf, sizeof buf) == 0 && !strncmp(buf, "samx ", 5), "created_by '%s'", buf);
  CHECK(samx_dataset_attr(ds, "seed", buf, sizeof buf) == 0 && !strcmp(buf, "1234"), "seed '%s'", buf);
  CHECK(samx_dataset_attr(ds, "absent", buf, sizeof buf) != 0, "absent attribute");
  SamxDatasetStats st;
  CHECK(samx_dataset_scan(ds, &st, NULL, NULL) == 0 && st.problems == 0, "scan: %lld problems", (long long)st.problems);
  CHECK(st.split_rows[0] == 2 && st.split_cases[0] == 1 && st.split_cases[1] == 2, "split stats");
  CHECK(st.valid_count[0] == 4, "valid count %lld", (long long)st.valid_count[0]);
  samx_dataset_stats_free(&st);
  samx_dataset_close(ds);
}

static void test_round_trip_f32_rgb(void) {
  const char *path = tmpfile_path("rt_f32.h5");
  CHECK(write_fixture(path, SAMX_IMAGE_F32, 3) == 0, "write: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(path);
  CHECK(ds != NULL, "open: %s", samx_last_error());
  if (!ds) return;
  SamxDatasetInfo in = samx_dataset_info(ds);
  CHECK(in.channels == 3 && in.dtype == SAMX_IMAGE_F32 && in.display_lo == -1000 && in.display_hi == 1000,
        "float info: C %d lo %g hi %g", in.channels, in.display_lo, in.display_hi);
  float f[H * W * 3];
  uint8_t u[H * W * 3];
  CHECK(samx_dataset_read_image_f32(ds, 2, f) == 0 && !memcmp(f, img_f32[2], sizeof f), "float image");
  CHECK(samx_dataset_read_image_u8(ds, 2, u) == 0, "float image as u8");
  int worst = 0;
  for (int j = 0; j < H * W * 3; j++) {
    double want = (img_f32[2][j] + 1000.0) / 2000.0 * 255.0;
    int d = abs((int)u[j] - (int)(want + 0.5));
    worst = d > worst ? d : worst;
  }
  CHECK(worst == 0, "window mapping off by %d", worst);
  samx_dataset_close(ds);
}

// ---- validation: corrupt a valid file with raw HDF5 calls, expect a message naming the culprit ----
static void expect_open_error(const char *path, const char *want1, const char *want2, const char *what) {
  SamxDataset *ds = samx_dataset_open(path);
  CHECK(ds == NULL, "%s: opened a broken file", what);
  samx_dataset_close(ds);
  const char *e = samx_last_error();
  CHECK(strstr(e, want1) && strstr(e, want2) && strstr(e, path), "%s: message '%s' should name %s and %s", what, e,
        want1, want2);
}

static hid_t reopen_rw(const char *name, char *path_out) {
  strcpy(path_out, tmpfile_path(name));
  write_fixture(path_out, SAMX_IMAGE_U8, 1);
  return H5Fopen(path_out, H5F_ACC_RDWR, H5P_DEFAULT);
}

static void replace_dataset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims) {
  H5Ldelete(f, name, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  H5Dclose(H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Sclose(sp);
}

static void set_string_attr(hid_t f, const char *name, const char *value) {
  H5Adelete(f, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, &value);
  H5Aclose(a), H5Sclose(sp), H5Tclose(t);
}

static void test_validation_errors(void) {
  char path[512];
  hid_t f = reopen_rw("bad_schema.h5", path);
  set_string_attr(f, "schema", "something-else");
  H5Fclose(f);
  expect_open_error(path, "schema", "something-else", "wrong schema");

  f = reopen_rw("bad_version.h5", path);
  int64_t v = 2;
  hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  H5Fclose(f);
  expect_open_error(path, "version 2", "samx-dataset", "wrong version");

  f = reopen_rw("bad_n.h5", path);
  hsize_t n_plus[1] = {N + 1};
  replace_dataset(f, "/split", H5T_STD_U8LE, 1, n_plus);
  H5Fclose(f);
  expect_open_error(path, "/split", "N = 6", "mismatched N");

  f = reopen_rw("bad_hw.h5", path);
  hsize_t mdims[4] = {N, K, H, W + 1};
  replace_dataset(f, "/masks", H5T_STD_U8LE, 4, mdims);
  H5Fclose(f);
  expect_open_error(path, "/masks", "W = 6", "mismatched W");

  f = reopen_rw("bad_dtype.h5", path);
  hsize_t mdims2[4] = {N, K, H, W};
  replace_dataset(f, "/masks", H5T_IEEE_F32LE, 4, mdims2);
  H5Fclose(f);
  expect_open_error(path, "/masks", "float32", "wrong dtype");

  f = reopen_rw("bad_spacing_dtype.h5", path);
  hsize_t sdims[2] = {N, 2};
  replace_dataset(f, "/spacing", H5T_IEEE_F64LE, 2, sdims);
  H5Fclose(f);
  expect_open_error(path, "/spacing", "float64", "spacing as float64");

  f = reopen_rw("missing.h5", path);
  H5Ldelete(f, "/case_id", H5P_DEFAULT);
  H5Fclose(f);
  expect_open_error(path, "/case_id", "missing", "missing dataset");

  f = reopen_rw("bad_rank.h5", path);
  hsize_t vdims[1] = {N};
  replace_dataset(f, "/annotator_valid", H5T_STD_U8LE, 1, vdims);
  H5Fclose(f);
  expect_open_error(path, "/annotator_valid", "rank 1", "wrong rank");

  strcpy(path, tmpfile_path("not_hdf5.h5"));
  FILE *t = fopen(path, "w");
  fputs("hello", t);
  fclose(t);
  expect_open_error(path, "not an HDF5 file", "", "not HDF5");
  expect_open_error(tmpfile_path("absent.h5"), "No such file", "", "absent file");

  // A float image without a display range.
  strcpy(path, tmpfile_path("no_window.h5"));
  write_fixture(path, SAMX_IMAGE_F32, 1);
  f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/images", H5P_DEFAULT);
  H5Adelete(d, "window");
  H5Dclose(d), H5Fclose(f);
  expect_open_error(path, "/images", "window", "float without window");

  // Contents only a scan sees: a mask value 255 and a case in two splits.
  f = reopen_rw("bad_contents.h5", path);
  d = H5Dopen2(f, "/masks", H5P_DEFAULT);
  uint8_t all[N][K * H * W];
  memcpy(all, masks, sizeof all);
  all[1][0] = 255;
  H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, all);
  H5Dclose(d);
  d = H5Dopen2(f, "/split", H5P_DEFAULT);
  uint8_t sp[N] = {0, 1, 2, 2, 1};  // case-a in train and test
  H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, sp);
  H5Dclose(d), H5Fclose(f);
  SamxDataset *ds = samx_dataset_open(path);
  CHECK(ds != NULL, "bad contents still open: %s", samx_last_error());
  if (ds) {
    SamxDatasetStats st;
    samx_dataset_scan(ds, &st, NULL, NULL);
    CHECK(st.problems == 2, "scan found %lld problems, expected 2 (mask value, case in two splits)",
          (long long)st.problems);
    samx_dataset_stats_free(&st);
    samx_dataset_close(ds);
  }
}

static void test_abort_leaves_nothing(void) {
  const char *path = tmpfile_path("aborted.h5");
  SamxDatasetSpec spec = {.h = H, .w = W, .k = K, .channels = 1, .dtype = SAMX_IMAGE_U8};
  SamxDatasetWriter *w = samx_dataset_create(path, &spec);
  SamxSample s = {.image = img_u8[0], .masks = masks[0], .case_id = "x"};
  samx_dataset_append(w, &s);
  samx_dataset_abort(w);
  char tmp[600];
  samx_tmp_path(path, tmp, sizeof tmp);
  CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "abort must leave neither the file nor its temporary");
}

// ---- case-level splits ----
static void test_split_by_case(void) {
  enum { ROWS = 300, CASES = 37 };
  static char ids[ROWS][32];
  const char *ptr[ROWS], *perm[ROWS];
  uint64_t st = 99;
  for (int i = 0; i < ROWS; i++) {
    snprintf(ids[i], sizeof ids[i], "patient-%02d", (int)(samx_splitmix64(&st) % CASES));
    ptr[i] = ids[i];
    perm[ROWS - 1 - i] = ids[i];
  }
  double ratios[3] = {0.7, 0.15, 0.15};
  uint8_t a[ROWS], b[ROWS], c[ROWS], d[ROWS];
  samx_split_by_case(ptr, ROWS, ratios, 5, a);
  samx_split_by_case(ptr, ROWS, ratios, 5, b);
  samx_split_by_case(ptr, ROWS, ratios, 6, c);
  samx_split_by_case(perm, ROWS, ratios, 5, d);
  CHECK(!memcmp(a, b, ROWS), "same seed, same split");
  CHECK(memcmp(a, c, ROWS) != 0, "another seed, another split");
  int conflicts = 0, order_dependent = 0;
  int cases_in[3] = {0}, seen[CASES][3] = {{0}};
  for (int i = 0; i < ROWS; i++) {
    int cid = atoi(ids[i] + 8);
    seen[cid][a[i]] = 1;
    order_dependent += d[ROWS - 1 - i] != a[i];
  }
  for (int cid = 0; cid < CASES; cid++) {
    conflicts += seen[cid][0] + seen[cid][1] + seen[cid][2] > 1;
    for (int s = 0; s < 3; s++) cases_in[s] += seen[cid][s];
  }
  CHECK(conflicts == 0, "%d cases in two splits", conflicts);
  CHECK(order_dependent == 0, "split depends on row order (%d rows)", order_dependent);
  // 37 cases at 70/15/15: 6 val, 6 test, 25 train (some ids may be absent from the draw).
  CHECK(cases_in[1] >= 4 && cases_in[1] <= 7 && cases_in[2] >= 4 && cases_in[2] <= 7 && cases_in[0] >= 20,
        "case counts %d/%d/%d", cases_in[0], cases_in[1], cases_in[2]);
  // Three cases, three nonzero ratios: one case each.
  const char *three[6] = {"x", "y", "z", "x", "y", "z"};
  uint8_t s3[6];
  double skew[3] = {0.9, 0.05, 0.05};
  samx_split_by_case(three, 6, skew, 1, s3);
  int got[3] = {0};
  for (int i = 0; i < 3; i++) got[s3[i]]++;
  CHECK(got[0] == 1 && got[1] == 1 && got[2] == 1 && s3[0] == s3[3], "three cases: %d/%d/%d", got[0], got[1], got[2]);
}

// ---- synthetic generator ----
static void test_synthetic(void) {
  SamxSyntheticParams p = samx_synthetic_defaults();
  p.n = 48, p.size = 64, p.k = 5, p.slices_per_case = 6, p.seed = 11;
  size_t hw = (size_t)(p.size * p.size);
  uint8_t *img1 = malloc(hw), *img2 = malloc(hw), *m1 = malloc(hw * 5), *m2 = malloc(hw * 5);
  int same_seed_differs = 0, other_seed_same = 0, annot_same[5][5] = {{0}}, empty[5] = {0};
  double area[5] = {0};
  for (int64_t i = 0; i < p.n; i++) {
    samx_synthetic_sample(&p, i, img1, m1);
    samx_synthetic_sample(&p, i, img2, m2);
    same_seed_differs += memcmp(img1, img2, hw) != 0 || memcmp(m1, m2, hw * 5) != 0;
    SamxSyntheticParams q = p;
    q.seed = 12;
    samx_synthetic_sample(&q, i, img2, m2);
    other_seed_same += memcmp(m1, m2, hw * 5) == 0;
    for (int a = 0; a < 5; a++) {
      int64_t fg = 0;
      for (size_t j = 0; j < hw; j++) fg += m1[a * hw + j];
      area[a] += (double)fg;
      empty[a] += fg == 0;
      for (int b = 0; b < 5; b++) annot_same[a][b] += !memcmp(m1 + a * hw, m1 + b * hw, hw);
    }
  }
  CHECK(same_seed_differs == 0, "same seed gave different samples %d times", same_seed_differs);
  CHECK(other_seed_same == 0, "another seed gave identical masks %d times", other_seed_same);
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      CHECK(annot_same[a][b] < p.n / 4, "annotators %d and %d agree exactly on %d of %lld samples", a, b,
            annot_same[a][b], (long long)p.n);
  CHECK(area[0] < 0.8 * area[1], "tight rater (%g px) should mark less than generous (%g px)", area[0], area[1]);
  CHECK(empty[3] > 0 && empty[3] < p.n / 2, "rater 3 skips some lesions: %d of %lld", empty[3], (long long)p.n);
  // The tight rater misses only the faintest cuts (a lesion's tip whose core never gets bright enough).
  CHECK(empty[0] <= p.n / 8 && empty[1] == 0, "tight/generous raters skip %d, %d", empty[0], empty[1]);
  // The image has a lesion: brighter inside rater 1's mask than in the rest of the body.
  samx_synthetic_sample(&p, 3, img1, m1);
  double in = 0, out = 0;
  int n_in = 0, n_out = 0;
  for (size_t j = 0; j < hw; j++) {
    if (img1[j] < 40) continue;  // air
    if (m1[hw + j]) in += img1[j], n_in++;
    else out += img1[j], n_out++;
  }
  CHECK(n_in > 0 && in / n_in > out / n_out + 15, "lesion contrast: inside %g, outside %g", in / n_in, out / n_out);

  // Packed file: valid, masks as generated, whole cases per split, generator attributes stored.
  const char *path = tmpfile_path("synthetic.h5");
  CHECK(samx_pack_synthetic(path, &p) == 0, "pack synthetic: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(path);
  CHECK(ds != NULL, "open synthetic: %s", samx_last_error());
  if (ds) {
    uint8_t *rm = malloc(hw * 5);
    samx_synthetic_sample(&p, 17, img1, m1);
    CHECK(samx_dataset_read_masks(ds, 17, rm) == 0 && !memcmp(rm, m1, hw * 5), "packed masks equal generated");
    CHECK(samx_dataset_read_image_u8(ds, 17, img2) == 0 && !memcmp(img1, img2, hw), "packed image equals generated");
    SamxDatasetStats st;
    CHECK(samx_dataset_scan(ds, &st, NULL, NULL) == 0 && st.problems == 0, "synthetic scan problems %lld",
          (long long)st.problems);
    CHECK(st.split_cases[0] + st.split_cases[1] + st.split_cases[2] == 8 && st.split_cases[1] >= 1 &&
              st.split_cases[2] >= 1,
          "synthetic cases per split %lld/%lld/%lld", (long long)st.split_cases[0], (long long)st.split_cases[1],
          (long long)st.split_cases[2]);
    samx_dataset_stats_free(&st);
    char buf[64];
    CHECK(samx_dataset_attr(ds, "generator_seed", buf, sizeof buf) == 0 && !strcmp(buf, "11"), "seed attr '%s'", buf);
    CHECK(samx_dataset_attr(ds, "modality", buf, sizeof buf) == 0 && !strcmp(buf, "synthetic"), "modality '%s'", buf);
    free(rm);
    samx_dataset_close(ds);
  }
  free(img1), free(img2), free(m1), free(m2);
}

// ---- prediction files ----
static void test_predictions(void) {
  const char *dpath = tmpfile_path("rt_u8.h5"), *path = tmpfile_path("pred.h5");
  enum { NP = 3, M = 2 };
  uint8_t pm[NP][M * H * W];
  float scores[NP][M], quality[NP];
  int64_t index[NP] = {4, 0, 2};
  uint64_t st = 3;
  for (int i = 0; i < NP; i++) {
    for (int j = 0; j < M * H * W; j++) pm[i][j] = samx_splitmix64(&st) & 1;
    for (int m = 0; m < M; m++) scores[i][m] = (float)samx_unit(samx_splitmix64(&st));
    quality[i] = (float)i / 4;
  }
  SamxPredictionsSpec spec = {.m = M, .h = H, .w = W, .method = "seqsam", .checkpoint_path = "ckpt.safetensors",
                              .checkpoint_sha256 = "abc123", .dataset_path = dpath, .split = "test",
                              .with_scores = 1, .with_quality = 1};
  SamxPredictionsWriter *w = samx_predictions_create(path, &spec);
  CHECK(w != NULL, "create predictions: %s", samx_last_error());
  if (!w) return;
  for (int i = 0; i < NP; i++) samx_predictions_append(w, index[i], pm[i], scores[i], quality[i]);
  CHECK(samx_predictions_finish(w) == 0, "finish predictions: %s", samx_last_error());
  SamxPredictions *p = samx_predictions_open(path);
  CHECK(p != NULL, "open predictions: %s", samx_last_error());
  if (!p) return;
  CHECK(samx_predictions_n(p) == NP && samx_predictions_m(p) == M && samx_predictions_h(p) == H &&
            samx_predictions_w(p) == W,
        "prediction shape");
  uint8_t got[M * H * W];
  for (int i = 0; i < NP; i++) {
    CHECK(samx_predictions_index(p)[i] == index[i], "index %d", i);
    CHECK(samx_predictions_read_masks(p, i, got) == 0 && !memcmp(got, pm[i], sizeof got), "pred masks %d", i);
    CHECK(!memcmp(samx_predictions_scores(p) + i * M, scores[i], sizeof scores[i]), "scores %d", i);
    CHECK(samx_predictions_quality(p)[i] == quality[i], "quality %d", i);
  }
  CHECK(!strcmp(samx_predictions_method(p), "seqsam") && !strcmp(samx_predictions_split(p), "test") &&
            !strcmp(samx_predictions_checkpoint_path(p), "ckpt.safetensors") &&
            !strcmp(samx_predictions_checkpoint_sha256(p), "abc123") && !strcmp(samx_predictions_dataset_path(p), dpath) &&
            !strcmp(samx_predictions_dataset_sha256(p), ""),
        "prediction attributes");
  SamxDataset *ds = samx_dataset_open(dpath);
  CHECK(ds && samx_predictions_check_dataset(p, ds) == 0, "predictions fit the dataset: %s", samx_last_error());
  samx_dataset_close(ds);
  samx_predictions_close(p);

  // Without the optional datasets; an index out of range; a wrong /index dtype.
  spec.with_scores = spec.with_quality = 0;
  w = samx_predictions_create(path, &spec);
  samx_predictions_append(w, 9, pm[0], NULL, 0);
  CHECK(samx_predictions_finish(w) == 0, "finish: %s", samx_last_error());
  p = samx_predictions_open(path);
  CHECK(p && !samx_predictions_scores(p) && !samx_predictions_quality(p), "optional datasets absent");
  ds = samx_dataset_open(dpath);
  CHECK(p && ds && samx_predictions_check_dataset(p, ds) != 0 && strstr(samx_last_error(), "outside"),
        "index 9 outside N = 5: '%s'", samx_last_error());
  samx_dataset_close(ds);
  samx_predictions_close(p);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hsize_t one[1] = {1};
  replace_dataset(f, "/index", H5T_IEEE_F32LE, 1, one);
  H5Fclose(f);
  p = samx_predictions_open(path);
  CHECK(!p && strstr(samx_last_error(), "/index") && strstr(samx_last_error(), "float32"), "index dtype: '%s'",
        samx_last_error());
  samx_predictions_close(p);
  // A dataset file is not a prediction file.
  p = samx_predictions_open(dpath);
  CHECK(!p && strstr(samx_last_error(), "samx-predictions"), "schema: '%s'", samx_last_error());
  samx_predictions_close(p);
}

static void test_sha256(void) {
  const char *path = tmpfile_path("abc.txt");
  FILE *f = fopen(path, "w");
  fputs("abc", f);
  fclose(f);
  char hex[65];
  CHECK(samx_sha256_file(path, hex) == 0 &&
            !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "sha256(abc) = %s", hex);
  // 1000 bytes crosses block boundaries and the padding edge.
  f = fopen(path, "w");
  for (int i = 0; i < 1000; i++) fputc('a', f);
  fclose(f);
  CHECK(samx_sha256_file(path, hex) == 0 &&
            !strcmp(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
        "sha256(a*1000) = %s", hex);
}

int main(void) {
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_test_dataset") != 0) return 1;
  fill_fixture();
  test_round_trip_u8();
  test_round_trip_f32_rgb();
  test_validation_errors();
  test_abort_leaves_nothing();
  test_split_by_case();
  test_synthetic();
  test_predictions();
  test_sha256();
  if (samx_test_failed == 0) samx_test_remove_dir(dir);
  return samx_test_summary();
}
