// Training loader (data/loader.h) and prompt derivation (data/prompts.h): epoch order and
// determinism by seed, disjoint rank shards covering the split, state save/restore, augmentation
// applied consistently to image and masks, bad options; prompts on hand-made masks against brute
// force references.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/prompts.h"
#include "tests/harness.h"
#include "tests/test_util.h"

// ---- fixture: every pixel value of an image is distinct, so any geometric transform can be
// recognised, and every mask is a function of the pixel value, so a consistent transform of image
// and masks keeps that relation ----
enum { N = 23, S = 8, K = 3 };
static char dir[256], square_path[512], wide_path[512];
static uint8_t images[N][S * S];

static uint8_t pixel_value(int row, int p) { return (uint8_t)(3 * p + row); }
static uint8_t mask_value(uint8_t v, int k) { return (uint8_t)(((v * (k + 3)) >> 2) & 1); }
static int annotator_valid(int row, int k) { return !(k == 2 && row % 4 == 1); }
static int split_of(int row) {
  return row % 5 == 4 ? SAMX_SPLIT_VAL : row % 7 == 6 ? SAMX_SPLIT_TEST : SAMX_SPLIT_TRAIN;
}

static int write_fixture(const char *path, int64_t h, int64_t w) {
  SamxDatasetSpec spec = {
      .h = h, .w = w, .k = K, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test_loader", .modality = "synthetic"};
  SamxDatasetWriter *wr = samx_dataset_create(path, &spec);
  if (!wr) return -1;
  uint8_t img[S * 2 * S], masks[K * S * 2 * S], valid[K];
  for (int i = 0; i < N; i++) {
    for (int p = 0; p < h * w; p++) img[p] = pixel_value(i, p);
    for (int k = 0; k < K; k++) {
      valid[k] = (uint8_t)annotator_valid(i, k);
      for (int p = 0; p < h * w; p++) masks[k * h * w + p] = valid[k] ? mask_value(img[p], k) : 0;
    }
    if (h == S && w == S) memcpy(images[i], img, S * S);
    SamxSample s = {.image = img, .masks = masks, .annotator_valid = valid, .split = split_of(i), .case_id = "c"};
    if (samx_dataset_append(wr, &s) != 0) return -1;
  }
  return samx_dataset_finish(wr);
}

static int64_t train_rows(int64_t *rows) {
  int64_t n = 0;
  for (int i = 0; i < N; i++)
    if (split_of(i) == SAMX_SPLIT_TRAIN) rows[n++] = i;
  return n;
}

static SamxLoaderOpts opts_base(void) {
  SamxLoaderOpts o = samx_loader_defaults();
  o.batch = 3, o.seed = 11;
  return o;
}

// Rows of the next `nb` batches (with their epoch), written to rows / epochs (n returned).
static int64_t take(SamxLoader *l, int nb, int64_t *rows, int64_t *epochs) {
  int64_t n = 0;
  for (int b = 0; b < nb; b++) {
    const SamxBatch *x = samx_loader_next(l);
    if (!x) return -1;
    for (int64_t j = 0; j < x->n; j++) rows[n] = x->rows[j], epochs[n++] = x->epoch;
  }
  return n;
}

// ---- order, determinism, shards ----
static void test_epochs_and_determinism(void) {
  int64_t want[N], nw = train_rows(want);
  SamxLoaderOpts o = opts_base();
  SamxLoader *a = samx_loader_open(square_path, &o);
  o.prefetch = 0;  // the synchronous path must give the same stream
  SamxLoader *b = samx_loader_open(square_path, &o);
  CHECK(a && b, "open: %s", samx_last_error());
  if (!a || !b) return;
  CHECK(samx_loader_split_rows(a) == nw, "split rows %lld, want %lld", (long long)samx_loader_split_rows(a),
        (long long)nw);
  int64_t per_epoch = samx_loader_batches_per_epoch(a);
  CHECK(per_epoch == (nw + 2) / 3, "batches per epoch %lld", (long long)per_epoch);
  int64_t order[3][N];
  for (int e = 0; e < 3; e++) {
    int64_t seen[N] = {0}, n = 0;
    for (int64_t bi = 0; bi < per_epoch; bi++) {
      const SamxBatch *x = samx_loader_next(a), *y = samx_loader_next(b);
      if (!x || !y) {
        CHECK(0, "next: %s", samx_last_error());
        return;
      }
      CHECK(x->epoch == e && x->index == bi, "batch %lld of epoch %d reports epoch %lld index %lld", (long long)bi, e,
            (long long)x->epoch, (long long)x->index);
      int same = x->n == y->n && !memcmp(x->rows, y->rows, (size_t)x->n * 8) &&
                 !memcmp(x->image_u8, y->image_u8, (size_t)x->n * S * S) &&
                 !memcmp(x->masks, y->masks, (size_t)x->n * K * S * S) &&
                 !memcmp(x->sample_seed, y->sample_seed, (size_t)x->n * 8);
      CHECK(same, "prefetching and synchronous loaders differ at epoch %d batch %lld", e, (long long)bi);
      for (int64_t j = 0; j < x->n; j++) {
        int64_t r = x->rows[j];
        CHECK(r >= 0 && r < N && split_of((int)r) == SAMX_SPLIT_TRAIN, "row %lld is not a train row", (long long)r);
        if (r >= 0 && r < N) seen[r]++;
        order[e][n++] = r;
        // Without augmentation the batch holds the file's sample as it is.
        CHECK(!memcmp(x->image_u8 + j * S * S, images[r], S * S), "row %lld: image differs from the file",
              (long long)r);
        int valid_ok = 1;
        for (int k = 0; k < K; k++) valid_ok &= x->annotator_valid[j * K + k] == annotator_valid((int)r, k);
        CHECK(valid_ok, "row %lld: annotator_valid differs", (long long)r);
      }
    }
    int once = n == nw;
    for (int64_t i = 0; i < nw; i++) once &= seen[want[i]] == 1;
    CHECK(once, "epoch %d does not visit every train row exactly once (%lld samples)", e, (long long)n);
  }
  CHECK(memcmp(order[0], order[1], (size_t)nw * 8) != 0 || memcmp(order[1], order[2], (size_t)nw * 8) != 0,
        "epochs are not reshuffled");
  int64_t listed[N];
  CHECK(samx_loader_epoch_rows(a, 1, listed, N) == nw && !memcmp(listed, order[1], (size_t)nw * 8),
        "samx_loader_epoch_rows disagrees with the stream");
  samx_loader_close(a);
  samx_loader_close(b);

  // Another seed: another order; no shuffle: file order.
  o = opts_base();
  o.seed = 12;
  SamxLoader *c = samx_loader_open(square_path, &o);
  int64_t other[N];
  samx_loader_epoch_rows(c, 0, other, N);
  CHECK(memcmp(other, order[0], (size_t)nw * 8) != 0, "seeds 11 and 12 give the same order");
  samx_loader_close(c);
  o.shuffle = 0;
  c = samx_loader_open(square_path, &o);
  samx_loader_epoch_rows(c, 3, other, N);
  CHECK(!memcmp(other, want, (size_t)nw * 8), "shuffle 0 is not file order");
  samx_loader_close(c);
}

static void test_shards(void) {
  int64_t want[N], nw = train_rows(want);
  for (int drop = 0; drop <= 1; drop++)
    for (int e = 0; e < 2; e++) {
      int seen[N] = {0};
      int64_t batches[3];
      for (int r = 0; r < 3; r++) {
        SamxLoaderOpts o = opts_base();
        o.rank = r, o.world = 3, o.drop_last = drop, o.batch = 2;
        SamxLoader *l = samx_loader_open(square_path, &o);
        CHECK(l != NULL, "open rank %d: %s", r, samx_last_error());
        if (!l) return;
        batches[r] = samx_loader_batches_per_epoch(l);
        int64_t rows[4 * N], ep[4 * N];
        // Skip to epoch e, then read one epoch.
        if (e) take(l, (int)batches[r], rows, ep);
        int64_t n = take(l, (int)batches[r], rows, ep);
        for (int64_t j = 0; j < n; j++) {
          CHECK(ep[j] == e, "rank %d: sample of epoch %lld in epoch %d", r, (long long)ep[j], e);
          seen[rows[j]]++;
        }
        samx_loader_close(l);
      }
      int64_t total = 0;
      int disjoint = 1;
      for (int i = 0; i < N; i++) total += seen[i], disjoint &= seen[i] <= 1;
      CHECK(disjoint, "drop_last %d epoch %d: a row is on two ranks", drop, e);
      if (!drop) {
        int cover = total == nw;
        for (int64_t i = 0; i < nw; i++) cover &= seen[want[i]] == 1;
        CHECK(cover, "epoch %d: the shards do not cover the split (%lld of %lld)", e, (long long)total, (long long)nw);
      } else {
        CHECK(batches[0] == batches[1] && batches[1] == batches[2] && batches[0] == (nw / 3) / 2,
              "drop_last: batch counts %lld %lld %lld, want %lld each", (long long)batches[0], (long long)batches[1],
              (long long)batches[2], (long long)((nw / 3) / 2));
        CHECK(total == 3 * batches[0] * 2, "drop_last: %lld samples", (long long)total);
      }
    }
}

// Batch-interleaved ranks (data parallelism): ranks r of W read batches r, r + W, ... of the one-process
// stream, with prefetch and without, across epoch ends; the state after each group of W batches is the
// one-process stream's, the same on every rank; a split with fewer batches than ranks is refused.
static void test_batch_ranks(void) {
  enum { W = 2, GROUPS = 9 };
  SamxLoaderOpts o = opts_base();
  SamxLoader *one = samx_loader_open(square_path, &o);
  CHECK(one != NULL, "open: %s", samx_last_error());
  if (!one) return;
  int64_t want[W * GROUPS][3], want_n[W * GROUPS];
  SamxLoaderState want_state[GROUPS];
  for (int g = 0; g < W * GROUPS; g++) {
    const SamxBatch *b = samx_loader_next(one);
    want_n[g] = b->n;
    for (int64_t j = 0; j < b->n; j++) want[g][j] = b->rows[j];
    if (g % W == W - 1) want_state[g / W] = samx_loader_get_state(one);
  }
  for (int prefetch = 0; prefetch <= 2; prefetch += 2)
    for (int r = 0; r < W; r++) {
      SamxLoaderOpts q = opts_base();
      q.batch_rank = r, q.batch_world = W, q.prefetch = prefetch;
      SamxLoader *l = samx_loader_open(square_path, &q);
      CHECK(l != NULL, "open rank %d: %s", r, samx_last_error());
      if (!l) continue;
      int same = 1, state_same = 1;
      for (int g = 0; g < GROUPS; g++) {
        const SamxBatch *b = samx_loader_next(l);
        same &= b && b->n == want_n[g * W + r];
        for (int64_t j = 0; same && j < b->n; j++) same &= b->rows[j] == want[g * W + r][j];
        SamxLoaderState st = samx_loader_get_state(l), w = want_state[g];
        state_same &= st.epoch == w.epoch && st.position == w.position && st.world == 1 && st.rank == 0;
        if (g == 3) {  // restoring the state continues the same sequence
          samx_loader_set_state(l, &st);
        }
      }
      CHECK(same, "prefetch %d rank %d: batches are not the one-process stream's %d-th ones", prefetch, r, r);
      CHECK(state_same, "prefetch %d rank %d: state differs from the one-process stream's", prefetch, r);
      samx_loader_close(l);
    }
  samx_loader_close(one);
  SamxLoaderOpts big = opts_base();
  big.batch = 64, big.batch_rank = 0, big.batch_world = 4;
  SamxLoader *l = samx_loader_open(square_path, &big);
  CHECK(!l && strstr(samx_last_error(), "too few for 4 ranks"), "split too small for the world: %s", samx_last_error());
  samx_loader_close(l);
}

static void test_state(void) {
  SamxLoaderOpts o = opts_base();
  o.aug = (SamxAugment){.hflip = 1, .vflip = 1, .rot90 = 1, .contrast = 0.2f, .brightness = 0.1f};
  SamxLoader *a = samx_loader_open(square_path, &o);
  if (!a) {
    CHECK(0, "open: %s", samx_last_error());
    return;
  }
  int64_t r0[64], e0[64];
  take(a, 8, r0, e0);  // into epoch 1 (16 train rows: 6 batches per epoch)
  SamxLoaderState st = samx_loader_get_state(a);
  char json[512];
  CHECK(samx_loader_state_to_json(&st, json, sizeof json) == 0, "state to json");
  // The reference continuation, with the full contents of each batch.
  uint8_t want_img[7][3 * S * S], want_masks[7][3 * K * S * S];
  int64_t want_rows[7][3], want_n[7];
  for (int b = 0; b < 7; b++) {
    const SamxBatch *x = samx_loader_next(a);
    want_n[b] = x->n;
    memcpy(want_rows[b], x->rows, (size_t)x->n * 8);
    memcpy(want_img[b], x->image_u8, (size_t)x->n * S * S);
    memcpy(want_masks[b], x->masks, (size_t)x->n * K * S * S);
  }
  SamxLoaderState back;
  CHECK(samx_loader_state_from_json(json, &back) == 0, "state from json: %s", samx_last_error());
  CHECK(!memcmp(&back, &st, sizeof st), "state changed in the JSON round trip: %s", json);
  // A fresh loader resumed from the state, and the same loader rewound (its ring holds batches
  // prefetched beyond the state), must both continue identically.
  SamxLoader *b = samx_loader_open(square_path, &o);
  SamxLoader *loaders[2] = {b, a};
  for (int li = 0; li < 2; li++) {
    SamxLoader *l = loaders[li];
    CHECK(samx_loader_set_state(l, &back) == 0, "set_state: %s", samx_last_error());
    int same = 1;
    for (int bi = 0; bi < 7; bi++) {
      const SamxBatch *x = samx_loader_next(l);
      same &= x && x->n == want_n[bi] && !memcmp(x->rows, want_rows[bi], (size_t)x->n * 8) &&
              !memcmp(x->image_u8, want_img[bi], (size_t)x->n * S * S) &&
              !memcmp(x->masks, want_masks[bi], (size_t)x->n * K * S * S);
    }
    CHECK(same, "%s loader does not continue the identical sequence after set_state", li ? "the same" : "a fresh");
  }
  SamxLoaderState bad = back;
  bad.seed++;
  CHECK(samx_loader_set_state(b, &bad) != 0 && strstr(samx_last_error(), "seed"), "a state of another seed: %s",
        samx_last_error());
  bad = back;
  bad.position = 99;
  CHECK(samx_loader_set_state(b, &bad) != 0, "a position beyond the epoch is accepted");
  CHECK(samx_loader_state_from_json("{\"epoch\": 1}", &bad) != 0, "incomplete JSON state accepted");
  samx_loader_close(a);
  samx_loader_close(b);
}

// ---- augmentation ----
// The transformed image built forward, independently of the loader's inverse mapping: hflip, then
// vflip, then k counter-clockwise quarter turns, each as numpy defines them (np.fliplr, np.flipud,
// np.rot90: out[i][j] = in[j][n-1-i], so in[y][x] lands at out[n-1-x][y]).
static void forward_transform(const uint8_t *in, uint8_t code, uint8_t *out) {
  uint8_t a[S * S], b[S * S];
  memcpy(a, in, S * S);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) b[y * S + x] = (code & 1) ? a[y * S + (S - 1 - x)] : a[y * S + x];
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) a[y * S + x] = (code & 2) ? b[(S - 1 - y) * S + x] : b[y * S + x];
  for (int r = 0; r < ((code >> 2) & 3); r++) {
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) b[(S - 1 - x) * S + y] = a[y * S + x];
    memcpy(a, b, S * S);
  }
  memcpy(out, a, S * S);
}

static void test_augmentation(void) {
  SamxLoaderOpts o = opts_base();
  o.split = -1;
  o.aug = (SamxAugment){.hflip = 1, .vflip = 1, .rot90 = 1};
  SamxLoader *l = samx_loader_open(square_path, &o);
  if (!l) {
    CHECK(0, "open: %s", samx_last_error());
    return;
  }
  int codes[16] = {0}, bad_image = 0, bad_masks = 0, samples = 0;
  for (int b = 0; b < 40; b++) {
    const SamxBatch *x = samx_loader_next(l);
    for (int64_t j = 0; j < x->n; j++, samples++) {
      int64_t r = x->rows[j];
      uint8_t code = x->aug_code[j], want[S * S];
      codes[code & 15]++;
      forward_transform(images[r], code, want);
      const uint8_t *img = x->image_u8 + j * S * S;
      bad_image += memcmp(img, want, S * S) != 0;
      for (int k = 0; k < K; k++)
        for (int p = 0; p < S * S; p++) {
          uint8_t m = x->masks[(j * K + k) * S * S + p];
          bad_masks += m != (annotator_valid((int)r, k) ? mask_value(img[p], k) : 0);
        }
    }
  }
  CHECK(bad_image == 0, "%d of %d augmented images are not the flips/rotations their code says", bad_image, samples);
  CHECK(bad_masks == 0, "%d mask pixels were not transformed like their image", bad_masks);
  int distinct = 0;
  for (int c = 0; c < 16; c++) distinct += codes[c] > 0;
  CHECK(distinct == 16, "only %d of the 16 flip/rotation combinations occurred in %d samples", distinct, samples);
  samx_loader_close(l);

  // Intensity jitter: masks and geometry untouched, image a nondecreasing function of the original.
  o.aug = (SamxAugment){.contrast = 0.3f, .brightness = 0.2f};
  o.image_f32 = 1;
  l = samx_loader_open(square_path, &o);
  int changed = 0, monotone = 1, masks_same = 1;
  for (int b = 0; b < 8; b++) {
    const SamxBatch *x = samx_loader_next(l);
    for (int64_t j = 0; j < x->n; j++) {
      int64_t r = x->rows[j];
      const float *img = x->image_f32 + j * S * S;
      CHECK(x->aug_code[j] == 0 && x->image_u8 == NULL, "jitter only: geometry code %d", x->aug_code[j]);
      for (int p = 0; p < S * S; p++) {
        changed += fabsf(img[p] - images[r][p]) > 1e-3f;
        for (int q = 0; q < S * S; q++)
          if (images[r][p] < images[r][q] && !(img[p] <= img[q])) monotone = 0;
      }
      for (int k = 0; k < K; k++)
        for (int p = 0; p < S * S; p++)
          masks_same &=
              x->masks[(j * K + k) * S * S + p] == (annotator_valid((int)r, k) ? mask_value(images[r][p], k) : 0);
    }
  }
  CHECK(changed > 0 && monotone && masks_same, "intensity jitter: changed %d, monotone %d, masks untouched %d", changed,
        monotone, masks_same);
  samx_loader_close(l);
}

static void test_bad_options(void) {
  SamxLoaderOpts o = opts_base();
  o.aug.rot90 = 1;
  CHECK(!samx_loader_open(wide_path, &o) && strstr(samx_last_error(), "square"), "rot90 on %dx%d: %s", S, 2 * S,
        samx_last_error());
  o = opts_base();
  o.rank = 3, o.world = 3;
  CHECK(!samx_loader_open(square_path, &o) && strstr(samx_last_error(), "rank"), "rank 3 of 3: %s", samx_last_error());
  o = opts_base();
  o.aug.hflip = 1, o.embed_path = "x.h5";
  CHECK(!samx_loader_open(square_path, &o) && strstr(samx_last_error(), "augmentation"), "augment + cache: %s",
        samx_last_error());
  o = opts_base();
  o.drop_last = 1, o.batch = 64;
  CHECK(!samx_loader_open(square_path, &o) && strstr(samx_last_error(), "drop_last"), "drop_last with no batch: %s",
        samx_last_error());
  o = opts_base();
  char missing[600];
  snprintf(missing, sizeof missing, "%s/missing.h5", dir);
  CHECK(!samx_loader_open(missing, &o) && strstr(samx_last_error(), "missing.h5"), "missing file: %s",
        samx_last_error());
}

// ---- prompts ----
// Brute-force interior point: the mask pixel with the largest distance to any background pixel.
static int64_t brute_interior(const uint8_t *m, int h, int w, double *best_d) {
  int64_t best = -1;
  *best_d = -1;
  for (int i = 0; i < h * w; i++) {
    if (!m[i]) continue;
    double d = INFINITY;
    for (int j = 0; j < h * w; j++)
      if (!m[j]) d = fmin(d, hypot(i / w - j / w, i % w - j % w));
    if (d > *best_d) *best_d = d, best = i;
  }
  return best;
}

static void mask_from_rows(const char *const *rows, int h, int w, uint8_t *m) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) m[y * w + x] = rows[y][x] == '#';
}

static void test_prompts(void) {
  // A U shape: its centroid lies in the gap, outside the mask.
  static const char *u_shape[] = {
      "..........",  //
      ".##....##.",  //
      ".##....##.",  //
      ".##....##.",  //
      ".########.",  //
      ".########.",  //
      "..........",  //
  };
  enum { H = 7, W = 10 };
  uint8_t m[H * W];
  mask_from_rows(u_shape, H, W, m);
  int64_t box[4], ext[4][2], pt[2];
  CHECK(samx_prompt_box(m, H, W, box) == 0 && box[0] == 1 && box[1] == 1 && box[2] == 8 && box[3] == 5,
        "U box [%lld %lld %lld %lld], want [1 1 8 5]", (long long)box[0], (long long)box[1], (long long)box[2],
        (long long)box[3]);
  // Ties go to the lowest row-major index: leftmost (1,1), rightmost (8,1), topmost (1,1), bottommost (1,5).
  samx_prompt_extremes(m, H, W, ext);
  static const int64_t want_ext[4][2] = {{1, 1}, {8, 1}, {1, 1}, {1, 5}};
  CHECK(!memcmp(ext, want_ext, sizeof ext), "U extremes (%lld,%lld) (%lld,%lld) (%lld,%lld) (%lld,%lld)",
        (long long)ext[0][0], (long long)ext[0][1], (long long)ext[1][0], (long long)ext[1][1], (long long)ext[2][0],
        (long long)ext[2][1], (long long)ext[3][0], (long long)ext[3][1]);
  double c[2];
  samx_prompt_centroid(m, H, W, c);
  // 12 pixels in the arms (x = 1,2,7,8 in rows 1-3) and 16 in rows 4-5 (x = 1..8): sum x = 3*18 + 2*36.
  double cx = (3.0 * 18 + 2.0 * 36) / 28, cy = (4.0 * (1 + 2 + 3) + 8.0 * (4 + 5)) / 28;
  CHECK(fabs(c[0] - cx) < 1e-12 && fabs(c[1] - cy) < 1e-12, "U centroid (%g, %g), want (%g, %g)", c[0], c[1], cx, cy);
  CHECK(!m[(int)lround(c[1]) * W + (int)lround(c[0])], "the U's centroid should fall outside it (test premise)");

  // Interior point against brute force on the U, a blob, a single pixel and a random mask.
  static const char *blob[] = {
      "..........", "...####...", "..######..", ".########.", ".########.", "..######..", "...###....",
  };
  uint8_t masks[4][H * W];
  mask_from_rows(u_shape, H, W, masks[0]);
  mask_from_rows(blob, H, W, masks[1]);
  memset(masks[2], 0, H * W);
  masks[2][3 * W + 6] = 1;
  uint64_t st = 5;
  for (int i = 0; i < H * W; i++)
    st = st * 6364136223846793005ULL + 1442695040888963407ULL, masks[3][i] = (st >> 33) % 3 != 0;
  for (int t = 0; t < 4; t++) {
    double d, want_d;
    int64_t want = brute_interior(masks[t], H, W, &want_d);
    int rc = samx_prompt_interior_point(masks[t], H, W, pt, &d);
    CHECK(rc == 0 && pt[1] * W + pt[0] == want && fabs(d - want_d) < 1e-9,
          "mask %d: interior point (%lld, %lld) at %g, brute force (%lld, %lld) at %g", t, (long long)pt[0],
          (long long)pt[1], d, (long long)(want % W), (long long)(want / W), want_d);
  }
  uint8_t full[H * W], empty[H * W] = {0};
  memset(full, 1, sizeof full);
  CHECK(samx_prompt_interior_point(full, H, W, pt, NULL) == 0 && pt[0] == 0 && pt[1] == 0, "full mask: (%lld, %lld)",
        (long long)pt[0], (long long)pt[1]);
  CHECK(samx_prompt_box(empty, H, W, box) < 0 && samx_prompt_extremes(empty, H, W, ext) < 0 &&
            samx_prompt_interior_point(empty, H, W, pt, NULL) < 0 && samx_prompt_centroid(empty, H, W, c) < 0,
        "an empty mask must give no prompt");

  // Jitter: MedSAM outward shifts within [0, max], clamped; deterministic by seed; every shift occurs.
  int64_t tight[4] = {1, 1, 8, 5}, out[4], again[4];
  samx_prompt_box_jitter(tight, H, W, 0, 3, out);
  CHECK(!memcmp(out, tight, sizeof out), "jitter 0 changed the box");
  int seen_shift[4] = {0}, ok = 1;
  for (uint64_t seed = 0; seed < 400; seed++) {
    samx_prompt_box_jitter(tight, H, W, 3, seed, out);
    samx_prompt_box_jitter(tight, H, W, 3, seed, again);
    ok &= !memcmp(out, again, sizeof out);
    ok &= out[0] <= 1 && out[0] >= 0 && out[1] <= 1 && out[1] >= 0;  // at most 1 px to the border
    ok &= out[2] >= 8 && out[2] <= 9 && out[3] >= 5 && out[3] <= 6;  // clamped to W-1 = 9, H-1 = 6
    int64_t wide[4] = {4, 3, 5, 3}, o2[4];
    samx_prompt_box_jitter(wide, 20, 20, 3, seed, o2);
    int64_t s = 4 - o2[0];
    ok &= s >= 0 && s <= 3 && o2[2] - 5 >= 0 && o2[2] - 5 <= 3;
    seen_shift[s]++;
  }
  CHECK(ok && seen_shift[0] && seen_shift[1] && seen_shift[2] && seen_shift[3],
        "jitter: ranges or determinism wrong (shifts seen %d %d %d %d)", seen_shift[0], seen_shift[1], seen_shift[2],
        seen_shift[3]);

  // Annotator choice: uniform among valid, non-empty masks.
  uint8_t ks[4][H * W], valid[4] = {1, 1, 0, 1};
  memcpy(ks[0], masks[0], H * W);
  memset(ks[1], 0, H * W);         // empty: never chosen
  memcpy(ks[2], masks[1], H * W);  // not read by this annotator: never chosen
  memcpy(ks[3], masks[2], H * W);
  int count[4] = {0};
  for (uint64_t seed = 0; seed < 3000; seed++) count[samx_prompt_pick_annotator(&ks[0][0], valid, 4, H, W, seed)]++;
  CHECK(count[1] == 0 && count[2] == 0 && count[0] > 1350 && count[3] > 1350, "annotator counts %d %d %d %d", count[0],
        count[1], count[2], count[3]);
  CHECK(samx_prompt_pick_annotator(&ks[1][0], NULL, 1, H, W, 1) == -1, "all-empty masks must give -1");
  SamxMaskPrompts pr, pr2;
  memset(&pr, 0, sizeof pr), memset(&pr2, 0, sizeof pr2);  // padding too: compared with memcmp
  CHECK(samx_prompts_derive(&ks[0][0], valid, 4, H, W, 2, 77, &pr) == 0 &&
            samx_prompts_derive(&ks[0][0], valid, 4, H, W, 2, 77, &pr2) == 0 && !memcmp(&pr, &pr2, sizeof pr),
        "derive_prompts is not deterministic");
  samx_prompt_box(ks[pr.annotator], H, W, box);
  CHECK(!memcmp(pr.box, box, sizeof box), "derive_prompts: box of the chosen annotator %d", pr.annotator);
}

int main(void) {
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_loader") != 0) return 1;
  snprintf(square_path, sizeof square_path, "%s/square.h5", dir);
  snprintf(wide_path, sizeof wide_path, "%s/wide.h5", dir);
  if (write_fixture(square_path, S, S) != 0 || write_fixture(wide_path, S, 2 * S) != 0) {
    printf("FAIL: fixture: %s\n", samx_last_error());
    return 1;
  }
  test_epochs_and_determinism();
  test_shards();
  test_batch_ranks();
  test_state();
  test_augmentation();
  test_bad_options();
  test_prompts();
  unlink(square_path);
  unlink(wide_path);
  rmdir(dir);
  return samx_test_summary();
}
