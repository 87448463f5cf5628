// Training loader over a dataset file (data/dataset.h): shuffled epochs by seed, rank r of W
// shards, a prefetch thread, augmentation, and optionally the cached encoder embeddings
// (data/embed_cache.h) of every sample.
//
// Order. Epoch e visits the rows of the chosen split in the order of a permutation drawn from
// (seed, e) (file order when shuffle is 0). Rank r takes the permutation's positions r, r+W,
// r+2W, ...: the W shards of an epoch are disjoint and together cover the split (shares differ by
// at most one sample). A rank's share is cut into batches of `batch` samples in order; a batch
// never spans two epochs (the last one of an epoch is short unless drop_last, which also makes
// every rank run the same number of batches: floor(floor(N/W) / batch)). The stream is endless:
// after the last batch of epoch e comes the first of epoch e + 1.
//
// Randomness. Everything random about a sample (augmentation, and the prompt seed handed to
// data/prompts.h) is a hash of (seed, epoch, row), never of a sequential generator, so the
// state of the loader is just (epoch, position) and a resumed run continues the identical
// sequence, whatever was prefetched when the state was saved.
//
// Threads. libhdf5 on Debian is thread-safe but serialised, so one reader thread (with its own
// file handle) reads and augments batches into a ring of `prefetch` buffers while the caller
// computes; prefetch 0 reads synchronously in samx_loader_next. The loader itself is used from
// one thread.
#ifndef SAMX_DATA_LOADER_H
#define SAMX_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

// Augmentation, drawn per sample (hash of seed, epoch, row), applied identically to the image and
// all K masks. Geometric transforms need H == W for rot90. Not allowed together with embeddings
// (the cached encoder input is the unaugmented image).
typedef struct {
  int hflip;  // mirror left-right with probability 1/2
  int vflip;  // mirror top-bottom with probability 1/2
  int rot90;  // rotate by k * 90 degrees counter-clockwise, k uniform in {0, 1, 2, 3}; needs H == W
  // Intensity jitter on the image only: v' = v * (1 + c) + b * range, c uniform in [-contrast,
  // contrast], b uniform in [-brightness, brightness], range = display_hi - display_lo (255 for
  // uint8 images, whose result is rounded and clamped to [0, 255]). 0 disables.
  float contrast, brightness;
} SamxAugment;

typedef struct {
  int split;      // SAMX_SPLIT_*, or -1 for every row of the file
  int64_t batch;  // samples per batch (>= 1)
  uint64_t seed;
  int rank, world;  // this process is rank `rank` of `world` (0 of 1 when not distributed)
  int shuffle;      // 1: a new permutation every epoch; 0: file order
  int drop_last;    // 1: no short batch at the end of an epoch, equal batch counts on all ranks
  int prefetch;     // batches read ahead by the reader thread; 0: no thread
  int image_f32;    // images as float (values as stored; uint8 files give 0..255), else uint8
  SamxAugment aug;
  // Optional embedding cache (NULL: none): every batch then carries the embeddings of its rows.
  // The cache must cover every row of the split and have been made by the checkpoint whose
  // sha256 is given (NULL: not checked).
  const char *embed_path;
  const char *checkpoint_sha256;
  // The sha256 of the dataset file (NULL: not checked): the cache must have been made from it.
  const char *dataset_sha256;
  // Data parallelism by whole batches (contracts §8): rank batch_rank of batch_world takes batches
  // batch_rank, batch_rank + batch_world, ... of the stream one process (rank 0 of 1) would read, so
  // W such ranks with batch b see what one process sees with batch b and W accumulation steps. The
  // loader's state is then that one-process stream's position at the start of the next group of
  // batch_world batches: the same on every rank and independent of batch_world (a run resumes on
  // another number of ranks). rank/world must be 0/1. batch_world 0 or 1: off.
  int batch_rank, batch_world;
  // Only the split's first `first` rows in file order (P²SAM's stage 2 trains on indices[:500] of the
  // training split, train_second_stage.py); 0 or more than the split: every row. Shuffling, sharding and
  // the state's split_rows then refer to the subset.
  int64_t first;
} SamxLoaderOpts;

// Defaults: train split, batch 2, seed 0, rank 0 of 1, shuffle, no drop_last, prefetch 2, uint8
// images, no augmentation, no embeddings.
SamxLoaderOpts samx_loader_defaults(void);

typedef struct {
  int64_t n;                 // samples in this batch (<= opts.batch)
  int64_t h, w, k;           // dataset sizes (unchanged by augmentation: rot90 needs H == W)
  int channels;              // 1 or 3
  uint8_t *image_u8;         // [n, H, W, channels] when !opts.image_f32, else NULL
  float *image_f32;          // [n, H, W, channels] when opts.image_f32, else NULL
  uint8_t *masks;            // [n, K, H, W] 0/1, augmented like the image
  uint8_t *annotator_valid;  // [n, K]
  int64_t *rows;             // [n] dataset rows
  uint64_t *sample_seed;     // [n] per-sample seed (hash of seed, epoch, row) for data/prompts.h
  uint8_t *aug_code;         // [n] what was applied: bit 0 hflip, bit 1 vflip, bits 2-3 rot90 count
  // With an embedding cache: [n, C, eh, ew] f32 (converted from the cache's dtype) and per sample
  // (orig_h, orig_w, input_h, input_w) as SAM's postprocessing needs them. NULL otherwise.
  float *embeddings;
  int64_t emb_c, emb_h, emb_w;
  int64_t *image_info;  // [n, 4]
  int64_t epoch;        // epoch this batch belongs to
  int64_t index;        // batch index within the epoch on this rank
} SamxBatch;

// Where the stream stands: the next batch samx_loader_next returns is batch `position` (counted in
// batches of this rank) of epoch `epoch`. seed, rank, world and the split's size are recorded so
// that restoring into a loader with other settings is refused.
typedef struct {
  uint64_t seed;
  int64_t epoch, position;
  int32_t rank, world;
  int64_t split_rows, batch;
} SamxLoaderState;

typedef struct SamxLoader SamxLoader;

// Opens dataset_path (and the embedding cache) and starts the reader thread. Returns NULL with
// samx_last_error naming the file and field (missing file, empty split, cache mismatch, rot90 on a
// non-square dataset, augmentation together with embeddings, rank outside [0, world) ...).
SamxLoader *samx_loader_open(const char *dataset_path, const SamxLoaderOpts *opts);
void samx_loader_close(SamxLoader *l);

// The next batch; valid until the next call of samx_loader_next / samx_loader_set_state / close.
// Returns NULL with samx_last_error on a read error.
const SamxBatch *samx_loader_next(SamxLoader *l);

int64_t samx_loader_split_rows(const SamxLoader *l);         // rows of the split (all ranks)
int64_t samx_loader_rank_rows(const SamxLoader *l);          // this rank's share of one epoch (the larger
                                                             // share when the split does not divide by W)
int64_t samx_loader_batches_per_epoch(const SamxLoader *l);  // on this rank
SamxDatasetInfo samx_loader_info(const SamxLoader *l);
// Dataset rows of this rank's share of `epoch`, in visiting order: writes up to cap to rows,
// returns the count. Same order samx_loader_next follows (before drop_last).
int64_t samx_loader_epoch_rows(const SamxLoader *l, int64_t epoch, int64_t *rows, int64_t cap);

// State of the stream as seen by the caller (batches prefetched but not returned do not count).
SamxLoaderState samx_loader_get_state(const SamxLoader *l);
// Continues from st (discarding what was prefetched). Returns -1 with samx_last_error when st was
// saved by a loader with another seed, rank, world, batch or split size.
int samx_loader_set_state(SamxLoader *l, const SamxLoaderState *st);
// The state as a one-line JSON object (for checkpoint metadata) and back. Return 0 or -1.
int samx_loader_state_to_json(const SamxLoaderState *st, char *buf, size_t n);
int samx_loader_state_from_json(const char *json, SamxLoaderState *st);

// Applies augmentation `code` (as in SamxBatch.aug_code) to one square-or-not image and its masks
// in place: image [H, W, channels] of elem_size bytes per value, masks [K, H, W]. Exposed for
// tests and for applying the same transform to predictions.
void samx_augment_geometry(void *image, int64_t h, int64_t w, int channels, size_t elem_size, uint8_t *masks, int64_t k,
                           uint8_t code);

#ifdef __cplusplus
}
#endif
#endif
