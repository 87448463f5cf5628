// Embedding cache (data/embed_cache.h): round trips in f32 / f16 / bf16, validation and the
// refusal of a cache made by another checkpoint, the loader handing out cached embeddings, and
// `samx embed` on a tiny dataset with the tiny SAM checkpoint against sam_encode run directly.
// Mode "cuda": `samx embed --device cuda:0` against the CPU encoder (skipped without a GPU).
// The samx binary: $SAMX_BIN, else "samx" next to this test executable, else build/samx.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/loader.h"
#include "data/predictions.h"
#include "data/rng.h"
#include "models/sam/sam.h"
#include "models/sam/sam_image.h"
#include "tests/harness.h"
#include "tests/test_util.h"

#define CKPT "tests/data/sam_tiny/sam_tiny.pth"

static char dir[256], err_text[8192];
static const char *bin;
static const char *device = "cpu";

static const char *tmp(const char *name) { return samx_test_path(dir, name); }

// ---- a small dataset: N samples of H x W grey images ----
enum { N = 5, H = 40, W = 56, K = 2 };
static const int SPLITS[N] = {0, 0, 1, 0, 2};

static int write_dataset(const char *path) {
  SamxDatasetSpec spec = {
      .h = H, .w = W, .k = K, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test", .modality = "synthetic"};
  SamxDatasetWriter *w = samx_dataset_create(path, &spec);
  if (!w) return -1;
  uint8_t img[H * W], masks[K * H * W];
  uint64_t st = 3;
  for (int i = 0; i < N; i++) {
    for (int p = 0; p < H * W; p++) img[p] = (uint8_t)(samx_splitmix64(&st) % 200 + 20 * ((p % W) > W / 2));
    for (int p = 0; p < K * H * W; p++) masks[p] = img[p % (H * W)] > 100 + 20 * (p / (H * W));
    SamxSample s = {.image = img, .masks = masks, .split = SPLITS[i], .case_id = i < 2 ? "a" : "b"};
    if (samx_dataset_append(w, &s) != 0) return -1;
  }
  return samx_dataset_finish(w);
}

// ---- round trips ----
enum { C = 6, EH = 3, EW = 4, E = C * EH * EW };
static const char *SHA_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *SHA_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void fake_embedding(int64_t row, float *e) {
  uint64_t st = 100 + (uint64_t)row;
  for (int j = 0; j < E; j++) e[j] = (float)((samx_unit(samx_splitmix64(&st)) - 0.5) * pow(10, j % 7 - 3));
}

static int write_cache(const char *path, SamxEmbedDtype dtype, const int64_t *rows, int n) {
  SamxEmbedSpec spec = {.c = C,
                        .h = EH,
                        .w = EW,
                        .dtype = dtype,
                        .checkpoint_path = "ckpt.pth",
                        .checkpoint_sha256 = SHA_A,
                        .dataset_path = "d.h5",
                        .dataset_sha256 = SHA_B,
                        .model_config = "{\"img_size\": 160}",
                        .input_size = 160,
                        .split = "train"};
  SamxEmbedWriter *w = samx_embed_create(path, &spec);
  if (!w) return -1;
  CHECK(access(path, F_OK) != 0, "the final name exists before finish");
  float e[E];
  for (int i = 0; i < n; i++) {
    fake_embedding(rows[i], e);
    int64_t info[4] = {H, W, 114 + rows[i], 160};
    if (samx_embed_append(w, rows[i], e, info) != 0) return -1;
  }
  return samx_embed_finish(w);
}

static void test_round_trip(void) {
  static const int64_t rows[] = {3, 0, 1};
  // Largest relative error of each dtype's round to nearest: f32 exact, f16 2^-11, bf16 2^-8 (plus
  // f16's subnormal spacing of 2^-24 for the tiny values).
  static const double rel[] = {0, 1.0 / 2048, 1.0 / 256}, absmin[] = {0, 6e-8, 0};
  for (int d = SAMX_EMBED_F32; d <= SAMX_EMBED_BF16; d++) {
    const char *path = tmp(d == 0 ? "e32.h5" : d == 1 ? "e16.h5" : "ebf16.h5");
    CHECK(write_cache(path, (SamxEmbedDtype)d, rows, 3) == 0, "write %s: %s", samx_embed_dtype_name(d),
          samx_last_error());
    SamxEmbedCache *c = samx_embed_open(path, SHA_A);
    CHECK(c != NULL, "open %s: %s", path, samx_last_error());
    if (!c) continue;
    int64_t ch, h, w;
    samx_embed_shape(c, &ch, &h, &w);
    CHECK(samx_embed_n(c) == 3 && ch == C && h == EH && w == EW && (int)samx_embed_dtype(c) == (int)d &&
              samx_embed_input_size(c) == 160,
          "%s: shape or attributes wrong", path);
    CHECK(!strcmp(samx_embed_checkpoint_path(c), "ckpt.pth") && !strcmp(samx_embed_dataset_sha256(c), SHA_B) &&
              !strcmp(samx_embed_split(c), "train") && strstr(samx_embed_model_config(c), "img_size"),
          "%s: root attributes wrong", path);
    for (int i = 0; i < 3; i++) {
      float got[E], want[E];
      int64_t info[4];
      fake_embedding(rows[i], want);
      int rc = samx_embed_read_row(c, rows[i], got, info);
      double worst = 0;
      for (int j = 0; j < E; j++) {
        double err = fabs((double)got[j] - want[j]), allowed = rel[d] * fabs(want[j]) + absmin[d];
        if (err > allowed) worst = fmax(worst, err / (allowed > 0 ? allowed : 1e-30));
      }
      CHECK(rc == 0 && worst == 0, "%s row %lld: values beyond the %s rounding (x%.3g)", path, (long long)rows[i],
            samx_embed_dtype_name(d), worst);
      CHECK(info[0] == H && info[1] == W && info[2] == 114 + rows[i] && info[3] == 160, "%s row %lld: image_info", path,
            (long long)rows[i]);
      CHECK(samx_embed_find(c, rows[i]) == i && samx_embed_index(c)[i] == rows[i], "find row %lld", (long long)rows[i]);
    }
    float got[E];
    CHECK(
        samx_embed_find(c, 2) == -1 && samx_embed_read_row(c, 2, got, NULL) != 0 && strstr(samx_last_error(), "row 2"),
        "reading a row not in the cache: %s", samx_last_error());
    samx_embed_close(c);
  }

  // Another checkpoint: refused with a message naming both.
  const char *path = tmp("e32.h5");
  CHECK(samx_embed_open(path, SHA_B) == NULL && strstr(samx_last_error(), SHA_A) && strstr(samx_last_error(), SHA_B) &&
            strstr(samx_last_error(), "ckpt.pth"),
        "checkpoint mismatch: %s", samx_last_error());
  SamxEmbedCache *c = samx_embed_open(path, NULL);
  CHECK(c != NULL, "open without a checkpoint check: %s", samx_last_error());
  samx_embed_close(c);

  // A dataset file is not a cache.
  CHECK(samx_embed_open(tmp("data.h5"), NULL) == NULL && strstr(samx_last_error(), "schema"),
        "a dataset file opened as a cache: %s", samx_last_error());
  // Abort leaves nothing behind.
  SamxEmbedSpec spec = {.c = 1, .h = 1, .w = 1, .checkpoint_sha256 = SHA_A, .input_size = 16};
  SamxEmbedWriter *w = samx_embed_create(tmp("aborted.h5"), &spec);
  samx_embed_abort(w);
  CHECK(access(tmp("aborted.h5"), F_OK) != 0, "abort left the final file");
}

// The loader hands out the cached embeddings of each batch's rows.
static void test_loader_with_cache(void) {
  SamxLoaderOpts o = samx_loader_defaults();
  o.batch = 2, o.embed_path = tmp("e32.h5"), o.checkpoint_sha256 = SHA_A;
  SamxLoader *l = samx_loader_open(tmp("data.h5"), &o);
  CHECK(l != NULL, "loader with cache: %s", samx_last_error());
  if (!l) return;
  int ok = 1;
  for (int b = 0; b < 4; b++) {
    const SamxBatch *x = samx_loader_next(l);
    ok &= x && x->emb_c == C && x->emb_h == EH && x->emb_w == EW;
    for (int64_t j = 0; ok && j < x->n; j++) {
      float want[E];
      fake_embedding(x->rows[j], want);
      ok &= !memcmp(x->embeddings + j * E, want, sizeof want) && x->image_info[4 * j + 2] == 114 + x->rows[j];
    }
  }
  CHECK(ok, "loader: embeddings or image_info of the batch rows differ from the cache");
  samx_loader_close(l);
  o.checkpoint_sha256 = SHA_B;
  CHECK(samx_loader_open(tmp("data.h5"), &o) == NULL && strstr(samx_last_error(), SHA_B),
        "loader, other checkpoint: %s", samx_last_error());
  o.checkpoint_sha256 = NULL;
  o.split = SAMX_SPLIT_VAL;  // row 2 is not in the cache
  CHECK(samx_loader_open(tmp("data.h5"), &o) == NULL && strstr(samx_last_error(), "row 2"), "loader, uncached row: %s",
        samx_last_error());
}

// ---- samx embed ----
// Runs `samx ARGS`; returns the exit status; stderr lands in err_text.
#define samx_run(...) samx_test_run_samx(dir, 0, err_text, sizeof err_text, __VA_ARGS__)

// Embeddings of the dataset rows by sam_encode on the CPU, one image at a time, as the reference.
static float *reference_embeddings(SamModel *m, SamxDataset *ds, SamImageInfo *infos, int64_t *per) {
  int64_t g = sam_embed_grid(&m->cfg);
  *per = m->cfg.out_chans * g * g;
  float *out = (float *)malloc((size_t)(N * *per) * sizeof *out);
  uint8_t grey[H * W], rgb[H * W * 3];
  for (int i = 0; i < N; i++) {
    SamxCtx ctx;
    samx_ctx_init(&ctx, samx_cpu(), (size_t)256 << 20, 8192);
    samx_ctx_set_recording(&ctx, 0);
    samx_dataset_read_image_u8(ds, i, grey);
    for (int p = 0; p < H * W; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = grey[p];
    SamxTensor *e = sam_encode(&ctx, m, sam_preprocess(&ctx, m, rgb, H, W, &infos[i]));
    samx_tensor_read_f32(e, out + i * *per);
    samx_ctx_free(&ctx);
  }
  return out;
}

static void test_cli(void) {
  if (access(bin, X_OK) != 0) {
    CHECK(0, "no samx binary at %s (set SAMX_BIN)", bin);
    return;
  }
  SamModel m;
  if (sam_load(&m, CKPT, samx_cpu(), 0, NULL) != 0) {
    CHECK(0, "sam_load: %s", samx_last_error());
    return;
  }
  SamxDataset *ds = samx_dataset_open(tmp("data.h5"));
  SamImageInfo infos[N];
  int64_t per;
  float *want = reference_embeddings(&m, ds, infos, &per);
  char ckpt_sha[65];
  samx_sha256_file(CKPT, ckpt_sha);
  // CPU vs CPU differs only by the batched GEMMs' summation order; GPU by the golden data's 1e-3.
  double tol = strcmp(device, "cpu") ? 1e-3 : 1e-4;
  struct {
    const char *dtype, *split;
    int batch;
    double rel;
  } runs[] = {{"f32", "all", 2, 0}, {"f16", "val", 1, 1.0 / 2048}, {"bf16", "train", 3, 1.0 / 256}};
  for (int r = 0; r < 3; r++) {
    const char *out = tmp("embed.h5");
    int rc = samx_run("embed --checkpoint %s --data %s --out %s --dtype %s --split %s --batch %d --device %s --precision fp32", CKPT,
                      tmp("data.h5"), out, runs[r].dtype, runs[r].split, runs[r].batch, device);
    CHECK(rc == 0, "samx embed --dtype %s --split %s: exit %d: %s", runs[r].dtype, runs[r].split, rc, err_text);
    SamxEmbedCache *c = rc == 0 ? samx_embed_open(out, ckpt_sha) : NULL;
    CHECK(rc != 0 || c != NULL, "open the cache samx embed wrote: %s", samx_last_error());
    if (!c) continue;
    int64_t ch, h, w, n_want = 0;
    samx_embed_shape(c, &ch, &h, &w);
    CHECK(ch * h * w == per && samx_embed_input_size(c) == m.cfg.img_size &&
              !strcmp(samx_embed_dtype_name(samx_embed_dtype(c)), runs[r].dtype),
          "cache shape [%lld, %lld, %lld], input size %lld", (long long)ch, (long long)h, (long long)w,
          (long long)samx_embed_input_size(c));
    CHECK(!strcmp(samx_embed_checkpoint_path(c), CKPT) && strlen(samx_embed_dataset_sha256(c)) == 64,
          "cache provenance attributes");
    float *got = (float *)malloc((size_t)per * sizeof *got);
    for (int i = 0; i < N; i++) {
      int in_split = !strcmp(runs[r].split, "all") || samx_split_parse(runs[r].split) == SPLITS[i];
      n_want += in_split;
      int64_t info[4];
      if (samx_embed_find(c, i) < 0) {
        CHECK(!in_split, "run %d: row %d of split %s is missing", r, i, runs[r].split);
        continue;
      }
      CHECK(in_split, "run %d: row %d is not in split %s", r, i, runs[r].split);
      samx_embed_read_row(c, i, got, info);
      double worst = 0;
      for (int64_t j = 0; j < per; j++) {
        double ref = want[i * per + j], err = fabs(got[j] - ref) - runs[r].rel * fabs(ref);
        worst = fmax(worst, err);
      }
      CHECK(worst <= tol, "run %d (%s, batch %d): row %d differs from sam_encode by %.3g beyond rounding", r,
            runs[r].dtype, runs[r].batch, i, worst);
      CHECK(info[0] == infos[i].orig_h && info[1] == infos[i].orig_w && info[2] == infos[i].input_h &&
                info[3] == infos[i].input_w,
            "row %d: image_info (%lld %lld %lld %lld), SamImageInfo (%d %d %d %d)", i, (long long)info[0],
            (long long)info[1], (long long)info[2], (long long)info[3], infos[i].orig_h, infos[i].orig_w,
            infos[i].input_h, infos[i].input_w);
    }
    CHECK(samx_embed_n(c) == n_want, "run %d: %lld embeddings, split has %lld", r, (long long)samx_embed_n(c),
          (long long)n_want);
    free(got);
    samx_embed_close(c);
  }
  // Bad input: one clear line on stderr, no output file.
  unlink(tmp("bad.h5"));
  int rc = samx_run("embed --checkpoint %s --data %s --out %s --dtype f8", CKPT, tmp("data.h5"), tmp("bad.h5"));
  CHECK(rc != 0 && strstr(err_text, "f8") && access(tmp("bad.h5"), F_OK) != 0, "bad --dtype: exit %d: %s", rc,
        err_text);
  rc = samx_run("embed --checkpoint %s/nothing.pth --data %s --out %s", dir, tmp("data.h5"), tmp("bad.h5"));
  CHECK(rc != 0 && strstr(err_text, "nothing.pth") && access(tmp("bad.h5"), F_OK) != 0,
        "missing checkpoint: exit %d: %s", rc, err_text);
  free(want);
  samx_dataset_close(ds);
  sam_free(&m);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  int cuda = dev.type == SAMX_CUDA;
  if (cuda) device = "cuda:0";
  bin = samx_test_samx_bin(argv[0]);
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_embed") != 0 || write_dataset(tmp("data.h5")) != 0) {
    printf("FAIL: fixture: %s\n", samx_last_error());
    return 1;
  }
  if (!cuda) {
    test_round_trip();
    test_loader_with_cache();
  }
  test_cli();
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
