// Training loader: epoch order, rank shards, batch filling with augmentation, prefetch thread.
#include "data/loader.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/embed_cache.h"
#include "data/rng.h"
#include "engine/error.h"

// What each hash of (seed, epoch, row, what) is for.
enum { DRAW_PERMUTATION = 1, DRAW_SAMPLE_SEED, DRAW_FLIP, DRAW_ROT, DRAW_CONTRAST, DRAW_BRIGHTNESS };

typedef struct {
  SamxBatch b;
  int failed;
  char error[1024];
} Slot;

struct SamxLoader {
  SamxLoaderOpts opts;
  char *path, *embed_path, *checkpoint_sha256, *dataset_sha256;  // owned copies of the option strings
  SamxDataset *ds;        // used by whoever fills batches: the reader thread, or the caller without one
  SamxEmbedCache *cache;  // same
  SamxDatasetInfo info;
  int64_t *split_rows, n_rows;
  int64_t emb_c, emb_h, emb_w;

  // Filling: the epoch whose share is in `share` (-1: none yet).
  int64_t share_epoch, share_len, *share;

  // Cursors: the next batch to hand out, and the next one to fill.
  int64_t epoch, position;
  int64_t fill_epoch, fill_position;

  // Ring of prefetched batches: slots[(head + i) % n_slots] for i < filled are ready, in order;
  // `held` is the slot the caller has (-1 none).
  Slot *slots;
  int n_slots, head, filled, held;
  pthread_t thread;
  int running, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

SamxLoaderOpts samx_loader_defaults(void) {
  SamxLoaderOpts o = {0};
  o.split = SAMX_SPLIT_TRAIN;
  o.batch = 2;
  o.world = 1;
  o.shuffle = 1;
  o.prefetch = 2;
  return o;
}

// ---- epoch order ----
static int64_t rank_len(int64_t n, int rank, int world) { return n > rank ? (n - rank + world - 1) / world : 0; }

static int64_t batches_in(const SamxLoader *l, int64_t len) {
  int64_t b = l->opts.batch;
  if (l->opts.drop_last) return (l->n_rows / l->opts.world) / b;  // the same count on every rank
  return (len + b - 1) / b;
}

static int interleaved(const SamxLoader *l) { return l->opts.batch_world > 1; }

// Moves the cursor (epoch, pos) k batches on along the stream.
static void step_cursor(const SamxLoader *l, int64_t *epoch, int64_t *pos, int64_t k) {
  int64_t per = batches_in(l, l->share_len);
  *pos += k;
  *epoch += *pos / per;
  *pos %= per;
}

// This rank's rows of `epoch` in visiting order (count: rank_len).
static void epoch_share(const SamxLoader *l, int64_t epoch, int64_t *out) {
  int64_t n = l->n_rows;
  int64_t *perm = (int64_t *)malloc((size_t)n * sizeof *perm);
  memcpy(perm, l->split_rows, (size_t)n * sizeof *perm);
  if (l->opts.shuffle) {
    uint64_t st = samx_hash4(l->opts.seed, (uint64_t)epoch, 0, DRAW_PERMUTATION);
    for (int64_t i = n - 1; i > 0; i--) {  // Fisher-Yates
      int64_t j = (int64_t)(samx_splitmix64(&st) % (uint64_t)(i + 1));
      int64_t t = perm[i];
      perm[i] = perm[j], perm[j] = t;
    }
  }
  int64_t m = 0;
  for (int64_t i = l->opts.rank; i < n; i += l->opts.world) out[m++] = perm[i];
  free(perm);
}

int64_t samx_loader_epoch_rows(const SamxLoader *l, int64_t epoch, int64_t *rows, int64_t cap) {
  int64_t len = rank_len(l->n_rows, l->opts.rank, l->opts.world);
  int64_t *tmp = (int64_t *)malloc((size_t)(len + 1) * sizeof *tmp);
  epoch_share(l, epoch, tmp);
  if (rows) memcpy(rows, tmp, (size_t)(len < cap ? len : cap) * sizeof *rows);
  free(tmp);
  return len;
}

// ---- augmentation ----
// Source pixel (sy, sx) of output pixel (y, x) under code: the output is rot90^k(vflip(hflip(in)))
// with rot90 counter-clockwise as numpy's rot90 (out[y][x] = in[x][n-1-y], square images only).
static void source_pixel(int64_t y, int64_t x, int64_t h, int64_t w, uint8_t code, int64_t *sy, int64_t *sx) {
  for (int r = 0; r < ((code >> 2) & 3); r++) {
    int64_t t = y;
    y = x, x = w - 1 - t;
  }
  if (code & 2) y = h - 1 - y;
  if (code & 1) x = w - 1 - x;
  *sy = y, *sx = x;
}

// dst[i] = src[idx[i]] for pixels of px bytes; the common sizes get typed loops (a memcpy call per
// pixel costs more than the gather itself at 1024²).
static void gather(uint8_t *dst, const uint8_t *src, const uint32_t *idx, size_t n, size_t px) {
  if (px == 1)
    for (size_t i = 0; i < n; i++) dst[i] = src[idx[i]];
  else if (px == 4)
    for (size_t i = 0; i < n; i++) memcpy(dst + 4 * i, src + 4 * (size_t)idx[i], 4);
  else
    for (size_t i = 0; i < n; i++) memcpy(dst + i * px, src + (size_t)idx[i] * px, px);
}

void samx_augment_geometry(void *image, int64_t h, int64_t w, int channels, size_t elem_size, uint8_t *masks, int64_t k,
                           uint8_t code) {
  if (!code) return;
  SAMX_ASSERT(((code >> 2) & 3) == 0 || h == w, "augment: rot90 needs a square image, got %lld x %lld", (long long)h,
              (long long)w);
  SAMX_ASSERT(h * w <= UINT32_MAX, "augment: image of %lld x %lld pixels", (long long)h, (long long)w);
  size_t px = (size_t)channels * elem_size, hw = (size_t)(h * w);
  uint8_t *copy = (uint8_t *)malloc(hw * (px > 1 ? px : 1));
  uint32_t *src = (uint32_t *)malloc(hw * sizeof *src);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      int64_t sy, sx;
      source_pixel(y, x, h, w, code, &sy, &sx);
      src[y * w + x] = (uint32_t)(sy * w + sx);
    }
  if (image) {
    memcpy(copy, image, hw * px);
    gather((uint8_t *)image, copy, src, hw, px);
  }
  for (int64_t a = 0; a < k; a++) {
    uint8_t *m = masks + (size_t)a * hw;
    memcpy(copy, m, hw);
    gather(m, copy, src, hw, 1);
  }
  free(copy);
  free(src);
}

static uint8_t draw_aug_code(const SamxLoader *l, int64_t epoch, int64_t row) {
  const SamxAugment *a = &l->opts.aug;
  uint64_t f = samx_hash4(l->opts.seed, (uint64_t)epoch, (uint64_t)row, DRAW_FLIP);
  uint8_t code = 0;
  if (a->hflip && (f & 1)) code |= 1;
  if (a->vflip && (f & 2)) code |= 2;
  if (a->rot90) code |= (uint8_t)((samx_hash4(l->opts.seed, (uint64_t)epoch, (uint64_t)row, DRAW_ROT) & 3) << 2);
  return code;
}

// v * (1 + c) + b * range with c, b drawn per sample.
static void jitter_intensity(const SamxLoader *l, int64_t epoch, int64_t row, uint8_t *u8, float *f32, size_t n) {
  const SamxAugment *a = &l->opts.aug;
  if (a->contrast <= 0 && a->brightness <= 0) return;
  double uc = samx_unit(samx_hash4(l->opts.seed, (uint64_t)epoch, (uint64_t)row, DRAW_CONTRAST));
  double ub = samx_unit(samx_hash4(l->opts.seed, (uint64_t)epoch, (uint64_t)row, DRAW_BRIGHTNESS));
  // uint8 output and uint8 files are on 0..255; float files keep their stored units.
  double range = u8 || l->info.dtype == SAMX_IMAGE_U8 ? 255.0 : (double)(l->info.display_hi - l->info.display_lo);
  double scale = 1.0 + (2 * uc - 1) * a->contrast, shift = (2 * ub - 1) * a->brightness * range;
  if (u8)
    for (size_t i = 0; i < n; i++) {
      double v = floor(u8[i] * scale + shift + 0.5);
      u8[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  else
    for (size_t i = 0; i < n; i++) f32[i] = (float)(f32[i] * scale + shift);
}

// ---- filling one batch ----
static void slot_alloc(SamxLoader *l, Slot *s) {
  SamxBatch *b = &s->b;
  size_t B = (size_t)l->opts.batch, hw = (size_t)(l->info.h * l->info.w), k = (size_t)l->info.k;
  size_t img = hw * (size_t)l->info.channels;
  b->h = l->info.h, b->w = l->info.w, b->k = l->info.k, b->channels = l->info.channels;
  if (l->opts.image_f32)
    b->image_f32 = (float *)malloc(B * img * sizeof(float));
  else
    b->image_u8 = (uint8_t *)malloc(B * img);
  b->masks = (uint8_t *)malloc(B * k * hw);
  b->annotator_valid = (uint8_t *)malloc(B * k);
  b->rows = (int64_t *)malloc(B * sizeof(int64_t));
  b->sample_seed = (uint64_t *)malloc(B * sizeof(uint64_t));
  b->aug_code = (uint8_t *)malloc(B);
  if (l->cache) {
    b->emb_c = l->emb_c, b->emb_h = l->emb_h, b->emb_w = l->emb_w;
    b->embeddings = (float *)malloc(B * (size_t)(l->emb_c * l->emb_h * l->emb_w) * sizeof(float));
    b->image_info = (int64_t *)malloc(B * 4 * sizeof(int64_t));
  }
}

static void slot_free(Slot *s) {
  SamxBatch *b = &s->b;
  free(b->image_f32), free(b->image_u8), free(b->masks), free(b->annotator_valid), free(b->rows);
  free(b->sample_seed), free(b->aug_code), free(b->embeddings), free(b->image_info);
}

static int read_sample(SamxLoader *l, SamxBatch *b, int64_t j, int64_t epoch, int64_t row) {
  size_t hw = (size_t)(l->info.h * l->info.w), k = (size_t)l->info.k, img = hw * (size_t)l->info.channels;
  uint8_t *u8 = b->image_u8 ? b->image_u8 + (size_t)j * img : NULL;
  float *f32 = b->image_f32 ? b->image_f32 + (size_t)j * img : NULL;
  uint8_t *masks = b->masks + (size_t)j * k * hw;
  int rc = u8 ? samx_dataset_read_image_u8(l->ds, row, u8) : samx_dataset_read_image_f32(l->ds, row, f32);
  if (rc == 0) rc = samx_dataset_read_masks(l->ds, row, masks);
  if (rc == 0 && l->cache) {
    size_t e = (size_t)(l->emb_c * l->emb_h * l->emb_w);
    rc = samx_embed_read_row(l->cache, row, b->embeddings + (size_t)j * e, b->image_info + 4 * j);
  }
  if (rc != 0) return -1;
  memcpy(b->annotator_valid + (size_t)j * k, samx_dataset_annotator_valid(l->ds) + (size_t)row * k, k);
  b->rows[j] = row;
  b->sample_seed[j] = samx_hash4(l->opts.seed, (uint64_t)epoch, (uint64_t)row, DRAW_SAMPLE_SEED);
  b->aug_code[j] = draw_aug_code(l, epoch, row);
  samx_augment_geometry(u8 ? (void *)u8 : (void *)f32, l->info.h, l->info.w, l->info.channels, u8 ? 1 : sizeof(float),
                        masks, l->info.k, b->aug_code[j]);
  jitter_intensity(l, epoch, row, u8, f32, img);
  return 0;
}

// Fills s with batch (fill_epoch, fill_position) and advances the fill cursor.
static void fill(SamxLoader *l, Slot *s) {
  int64_t epoch = l->fill_epoch, pos = l->fill_position;
  if (l->share_epoch != epoch) {
    epoch_share(l, epoch, l->share);
    l->share_epoch = epoch;
  }
  int64_t first = pos * l->opts.batch, n = l->share_len - first;
  if (n > l->opts.batch) n = l->opts.batch;
  SamxBatch *b = &s->b;
  b->n = n, b->epoch = epoch, b->index = pos;
  s->failed = 0;
  for (int64_t j = 0; j < n && !s->failed; j++)
    if (read_sample(l, b, j, epoch, l->share[first + j]) != 0) {
      s->failed = 1;
      snprintf(s->error, sizeof s->error, "%s", samx_last_error());
    }
  step_cursor(l, &l->fill_epoch, &l->fill_position, interleaved(l) ? l->opts.batch_world : 1);
}

// ---- the reader thread ----
static void *reader_main(void *arg) {
  SamxLoader *l = (SamxLoader *)arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    // A slot is free when it is neither queued nor held.
    while (!l->stop && l->filled + (l->held >= 0) >= l->n_slots) pthread_cond_wait(&l->cv, &l->mu);
    if (l->stop) break;
    int idx = (l->head + l->filled) % l->n_slots;
    pthread_mutex_unlock(&l->mu);
    fill(l, &l->slots[idx]);  // the slot is ours: not queued, not held
    pthread_mutex_lock(&l->mu);
    l->filled++;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void start_reader(SamxLoader *l) {
  l->head = 0, l->filled = 0, l->held = -1, l->stop = 0;
  l->fill_epoch = l->epoch, l->fill_position = l->position;
  if (interleaved(l)) step_cursor(l, &l->fill_epoch, &l->fill_position, l->opts.batch_rank);
  if (l->opts.prefetch <= 0) return;
  SAMX_ASSERT(pthread_create(&l->thread, NULL, reader_main, l) == 0, "loader: cannot start the reader thread");
  l->running = 1;
}

static void stop_reader(SamxLoader *l) {
  if (!l->running) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->thread, NULL);
  l->running = 0;
}

// ---- open / close ----
static int check_opts(const char *path, const SamxLoaderOpts *o, const SamxDatasetInfo *info) {
  if (o->batch < 1) return samx_fail("loader: batch size %lld must be at least 1", (long long)o->batch);
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    return samx_fail("loader: rank %d is outside [0, world = %d)", o->rank, o->world);
  if (o->split < -1 || o->split >= SAMX_SPLIT_COUNT) return samx_fail("loader: unknown split %d", o->split);
  if (o->batch_world > 1 && (o->world != 1 || o->batch_rank < 0 || o->batch_rank >= o->batch_world))
    return samx_fail("loader: batch rank %d of %d needs rows unsharded (rank 0 of 1), got rank %d of %d", o->batch_rank,
                     o->batch_world, o->rank, o->world);
  if (o->aug.rot90 && info->h != info->w)
    return samx_fail("%s: 90-degree rotations need square images, the dataset's are %lld x %lld", path,
                     (long long)info->h, (long long)info->w);
  int aug = o->aug.hflip || o->aug.vflip || o->aug.rot90 || o->aug.contrast > 0 || o->aug.brightness > 0;
  if (aug && o->embed_path)
    return samx_fail(
        "loader: augmentation cannot be combined with the embedding cache %s (the cached embeddings "
        "are of the unaugmented images)",
        o->embed_path);
  return 0;
}

static int open_cache(SamxLoader *l) {
  l->cache = samx_embed_open(l->embed_path, l->checkpoint_sha256);
  if (!l->cache) return -1;
  const char *have = samx_embed_dataset_sha256(l->cache);
  if (l->dataset_sha256 && strcmp(have, l->dataset_sha256))
    return samx_fail("%s: the embeddings were computed from dataset %s (sha256 %s), not from %s (sha256 %s); run "
                     "`samx embed` on this dataset again (or set data.allow_dataset_mismatch = true to use them anyway)",
                     l->embed_path, samx_embed_dataset_path(l->cache), have[0] ? have : "not recorded", l->path,
                     l->dataset_sha256);
  samx_embed_shape(l->cache, &l->emb_c, &l->emb_h, &l->emb_w);
  for (int64_t i = 0; i < l->n_rows; i++)
    if (samx_embed_find(l->cache, l->split_rows[i]) < 0)
      return samx_fail("%s: dataset row %lld of %s (split %s) has no embedding; run `samx embed` for this split",
                       l->embed_path, (long long)l->split_rows[i], l->path,
                       l->opts.split < 0 ? "all" : samx_split_name(l->opts.split));
  return 0;
}

static int load_split(SamxLoader *l) {
  if (l->opts.split < 0) {
    l->n_rows = samx_dataset_n(l->ds);
    l->split_rows = (int64_t *)malloc((size_t)(l->n_rows + 1) * sizeof *l->split_rows);
    for (int64_t i = 0; i < l->n_rows; i++) l->split_rows[i] = i;
  } else {
    l->n_rows = samx_dataset_split_rows(l->ds, l->opts.split, NULL, 0);
    l->split_rows = (int64_t *)malloc((size_t)(l->n_rows + 1) * sizeof *l->split_rows);
    samx_dataset_split_rows(l->ds, l->opts.split, l->split_rows, l->n_rows);
  }
  if (l->opts.first > 0 && l->opts.first < l->n_rows) l->n_rows = l->opts.first;  // rows are in file order
  const char *name = l->opts.split < 0 ? "all" : samx_split_name(l->opts.split);
  if (l->n_rows < l->opts.world)
    return samx_fail("%s: split %s has %lld rows, fewer than the %d ranks", l->path, name, (long long)l->n_rows,
                     l->opts.world);
  if (l->opts.batch_world > 1 && batches_in(l, l->n_rows) < l->opts.batch_world)
    return samx_fail("%s: split %s has %lld rows, %lld batch(es) of %lld: too few for %d ranks (HINT: a smaller "
                     "optim.batch_size, fewer ranks, or a larger split)",
                     l->path, name, (long long)l->n_rows, (long long)batches_in(l, l->n_rows), (long long)l->opts.batch,
                     l->opts.batch_world);
  if (l->opts.drop_last && l->n_rows / l->opts.world < l->opts.batch)
    return samx_fail("%s: split %s has %lld rows: with drop_last, %d ranks and batch %lld no batch is complete",
                     l->path, name, (long long)l->n_rows, l->opts.world, (long long)l->opts.batch);
  return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

SamxLoader *samx_loader_open(const char *dataset_path, const SamxLoaderOpts *opts) {
  SamxLoader *l = (SamxLoader *)calloc(1, sizeof *l);
  l->opts = *opts;
  l->path = strdup(dataset_path);
  l->embed_path = dup_or_null(opts->embed_path);
  l->checkpoint_sha256 = dup_or_null(opts->checkpoint_sha256);
  l->dataset_sha256 = dup_or_null(opts->dataset_sha256);
  l->opts.embed_path = l->embed_path, l->opts.checkpoint_sha256 = l->checkpoint_sha256;
  l->opts.dataset_sha256 = l->dataset_sha256;
  l->share_epoch = -1;
  l->held = -1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  l->ds = samx_dataset_open(dataset_path);
  int ok = l->ds != NULL;
  if (ok) l->info = samx_dataset_info(l->ds);
  ok = ok && check_opts(dataset_path, opts, &l->info) == 0 && load_split(l) == 0;
  ok = ok && (!l->embed_path || open_cache(l) == 0);
  if (!ok) {
    samx_loader_close(l);
    return NULL;
  }
  l->share_len = rank_len(l->n_rows, opts->rank, opts->world);
  l->share = (int64_t *)malloc((size_t)(l->share_len + 1) * sizeof *l->share);
  l->n_slots = opts->prefetch > 0 ? opts->prefetch + 1 : 1;
  l->slots = (Slot *)calloc((size_t)l->n_slots, sizeof *l->slots);
  for (int i = 0; i < l->n_slots; i++) slot_alloc(l, &l->slots[i]);
  start_reader(l);
  return l;
}

void samx_loader_close(SamxLoader *l) {
  if (!l) return;
  stop_reader(l);
  for (int i = 0; i < l->n_slots; i++) slot_free(&l->slots[i]);
  free(l->slots);
  samx_embed_close(l->cache);
  samx_dataset_close(l->ds);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l->share), free(l->split_rows);
  free(l->path), free(l->embed_path), free(l->checkpoint_sha256), free(l->dataset_sha256);
  free(l);
}

// ---- the caller's side ----
static void advance(SamxLoader *l, const SamxBatch *b) {
  if (interleaved(l)) {  // the caller's cursor: the start of the next group of batch_world batches
    l->epoch = b->epoch, l->position = b->index;
    step_cursor(l, &l->epoch, &l->position, l->opts.batch_world - l->opts.batch_rank);
    return;
  }
  if (b->index + 1 < batches_in(l, l->share_len))
    l->epoch = b->epoch, l->position = b->index + 1;
  else
    l->epoch = b->epoch + 1, l->position = 0;
}

static const SamxBatch *deliver(SamxLoader *l, Slot *s) {
  advance(l, &s->b);
  if (s->failed) {
    samx_fail("%s", s->error);
    return NULL;
  }
  return &s->b;
}

const SamxBatch *samx_loader_next(SamxLoader *l) {
  if (!l->running) {
    l->fill_epoch = l->epoch, l->fill_position = l->position;
    if (interleaved(l)) step_cursor(l, &l->fill_epoch, &l->fill_position, l->opts.batch_rank);
    fill(l, &l->slots[0]);
    return deliver(l, &l->slots[0]);
  }
  pthread_mutex_lock(&l->mu);
  l->held = -1;  // the previous batch's slot goes back to the reader
  pthread_cond_broadcast(&l->cv);
  while (l->filled == 0) pthread_cond_wait(&l->cv, &l->mu);
  int idx = l->head;
  l->head = (l->head + 1) % l->n_slots;
  l->filled--;
  l->held = idx;
  pthread_mutex_unlock(&l->mu);
  return deliver(l, &l->slots[idx]);
}

int64_t samx_loader_split_rows(const SamxLoader *l) { return l->n_rows; }
int64_t samx_loader_rank_rows(const SamxLoader *l) { return l->share_len; }
int64_t samx_loader_batches_per_epoch(const SamxLoader *l) { return batches_in(l, l->share_len); }
SamxDatasetInfo samx_loader_info(const SamxLoader *l) { return l->info; }

SamxLoaderState samx_loader_get_state(const SamxLoader *l) {
  SamxLoaderState st = {.seed = l->opts.seed,
                        .epoch = l->epoch,
                        .position = l->position,
                        .rank = l->opts.rank,
                        .world = l->opts.world,
                        .split_rows = l->n_rows,
                        .batch = l->opts.batch};
  return st;
}

int samx_loader_set_state(SamxLoader *l, const SamxLoaderState *st) {
  if (st->seed != l->opts.seed || st->rank != l->opts.rank || st->world != l->opts.world ||
      st->split_rows != l->n_rows || st->batch != l->opts.batch)
    return samx_fail(
        "loader state of %s: saved with seed %llu, rank %d of %d, %lld split rows, batch %lld; this "
        "loader has seed %llu, rank %d of %d, %lld rows, batch %lld",
        l->path, (unsigned long long)st->seed, (int)st->rank, (int)st->world, (long long)st->split_rows,
        (long long)st->batch, (unsigned long long)l->opts.seed, l->opts.rank, l->opts.world, (long long)l->n_rows,
        (long long)l->opts.batch);
  if (st->epoch < 0 || st->position < 0 || st->position >= batches_in(l, l->share_len))
    return samx_fail("loader state of %s: epoch %lld, batch %lld is outside the %lld batches of an epoch", l->path,
                     (long long)st->epoch, (long long)st->position, (long long)batches_in(l, l->share_len));
  stop_reader(l);
  l->epoch = st->epoch, l->position = st->position;
  start_reader(l);
  return 0;
}

int samx_loader_state_to_json(const SamxLoaderState *st, char *buf, size_t n) {
  // The seed is written as a string: JSON numbers lose 64-bit integers in many readers.
  int m = snprintf(buf, n,
                   "{\"seed\": \"%llu\", \"epoch\": %lld, \"position\": %lld, \"rank\": %d, \"world\": %d, "
                   "\"split_rows\": %lld, \"batch\": %lld}",
                   (unsigned long long)st->seed, (long long)st->epoch, (long long)st->position, (int)st->rank,
                   (int)st->world, (long long)st->split_rows, (long long)st->batch);
  return m > 0 && (size_t)m < n ? 0 : samx_fail("loader state: buffer of %zu bytes is too small", n);
}

int samx_loader_state_from_json(const char *json, SamxLoaderState *st) {
  json_error_t err;
  json_t *root = json_loads(json, 0, &err);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return samx_fail("loader state: not a JSON object: %s", root ? "" : err.text);
  }
  const char *seed = json_string_value(json_object_get(root, "seed"));
  static const char *ints[] = {"epoch", "position", "rank", "world", "split_rows", "batch"};
  int64_t v[6];
  int rc = seed ? 0 : samx_fail("loader state: field seed is missing or not a string");
  for (int i = 0; i < 6 && rc == 0; i++) {
    json_t *x = json_object_get(root, ints[i]);
    if (!json_is_integer(x))
      rc = samx_fail("loader state: field %s is missing or not an integer", ints[i]);
    else
      v[i] = (int64_t)json_integer_value(x);
  }
  if (rc == 0) {
    char *end;
    st->seed = (uint64_t)strtoull(seed, &end, 10);
    if (*end || !*seed) rc = samx_fail("loader state: seed '%s' is not an unsigned integer", seed);
    st->epoch = v[0], st->position = v[1], st->rank = (int32_t)v[2], st->world = (int32_t)v[3];
    st->split_rows = v[4], st->batch = v[5];
  }
  json_decref(root);
  return rc;
}
