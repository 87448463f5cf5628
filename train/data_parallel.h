// Data parallelism for the trainer (contracts §8): what happens to the flat gradient buffer between
// the backward passes and the optimizer, over engine/dist.h. With a world of one every function is
// the single-process behaviour, so the trainer calls them unconditionally.
//
// One optimizer step on W ranks, each with accum_steps micro-batches:
//   - each micro-batch's gradient is computed into the zeroed flat buffer and added to an
//     accumulator (accumulator += micro), so that a sum of micro-steps and a sum over ranks are the
//     same sums: 2 ranks x batch b is bit for bit 1 rank x batch b x accum 2 on the CPU;
//   - on the last micro-step only, the flat buffer (trainable parameters only, declaration order) is
//     summed over ranks in contiguous buckets of optim.bucket_mb, the same buckets in the same order on
//     every rank; the loss was already scaled by 1 / (accum_steps x W), so nothing is scaled twice;
//   - ZeRO-1 (optim.zero = 1): the buffer is padded to a multiple of W and reduce-scattered; each rank
//     keeps the optimizer state of its shard only, clips with the global norm (shard sums of squares
//     summed over ranks), updates its shard, and the parameters are all-gathered;
//   - a non-finite loss or gradient on any rank makes the summed values non-finite everywhere, so
//     every rank skips the same step.
// Checkpoints are W-independent: with ZeRO-1 the shards are gathered into the optimizer's full
// buffers for the save, and a load fills them and keeps this rank's shard.
#ifndef SAMX_TRAIN_DATA_PARALLEL_H
#define SAMX_TRAIN_DATA_PARALLEL_H

#include <stdint.h>

#include "engine/dist.h"
#include "engine/optim.h"
#include "engine/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  SamxDist *dist;
  SamxParams *params;
  SamxOptim *opt;
  int world, rank, zero, accum_steps;
  int64_t n;                 // trainable values (the flat buffer's length)
  int64_t padded, shard_lo, shard_n;  // ZeRO-1: n padded to a multiple of W; this rank's [lo, lo + shard_n)
  int64_t bucket;            // values per all-reduce bucket
  SamxArena mem;             // everything below, on the parameters' device
  float *accum;              // micro-step accumulator (accum_steps > 1)
  float *flat;               // ZeRO-1: [padded] gradients for the reduce-scatter, parameters for the all-gather
  float *shard_grad, *m, *v; // ZeRO-1: this rank's gradient and optimizer state
  float *full_m, *full_v;    // ZeRO-1: the optimizer's own full buffers while a checkpoint is saved / loaded
  // Overlap (optim.overlap, not with ZeRO-1): on the last micro-step each bucket's sum starts as soon
  // as the backward pass has passed the earliest tape node that reads one of its parameters.
  int overlap, active;
  int64_t n_buckets, next;
  int *ready;                // [n_buckets] tape index after which the bucket is final
  int *order;                // buckets by descending ready, then ascending index: the launch order
  int launch_failed;
  struct SamxCtx *ctx;
} SamxDataParallel;

// opt must be initialised. zero = 1: ZeRO-1 (the optimizer's full state buffers are released).
// bucket_mb: all-reduce bucket size in MiB (PyTorch DDP uses 25). Returns 0 or -1.
int samx_dp_init(SamxDataParallel *dp, SamxDist *dist, SamxParams *params, SamxOptim *opt, int zero, double bucket_mb,
                 int accum_steps);
void samx_dp_free(SamxDataParallel *dp);

// Before the backward pass of the last micro-step (the tape is complete): plans the buckets' launches
// and hooks them into samx_backward when every rank has the same plan (else the step reduces after
// the backward pass, as without overlap). Returns 0 or -1.
int samx_dp_overlap_begin(SamxDataParallel *dp, struct SamxCtx *ctx);
// After the backward pass of micro-step `micro` (0-based).
void samx_dp_micro_done(SamxDataParallel *dp, int64_t micro);
// After the last micro-step: the gradient summed over ranks (ZeRO-1: this rank's shard of it).
int samx_dp_reduce(SamxDataParallel *dp);
// Global gradient norm before clipping (clipped to max_norm when > 0, as samx_clip_grad_norm); NaN or
// inf when any gradient is. Sets *err on a communication failure.
float samx_dp_clip(SamxDataParallel *dp, float max_norm, int *err);
// The optimizer step (ZeRO-1: on the shard, then the parameters all-gathered).
int samx_dp_step(SamxDataParallel *dp, float lr);

// Sums n host doubles over ranks (losses, sample counts, flags).
int samx_dp_sum(SamxDataParallel *dp, double *v, int n);

// ZeRO-1 around a checkpoint: begin points the optimizer at full-size buffers (gathered from the
// shards when `gather`), end keeps this rank's shard of them (from a load) and frees them. No-ops
// without ZeRO-1.
int samx_dp_state_begin(SamxDataParallel *dp, int gather);
void samx_dp_state_end(SamxDataParallel *dp, int keep_loaded);

// Every rank holds the same parameters (and optimizer step): a checksum of rank 0 compared on all
// ranks. Returns 0, or -1 with samx_last_error naming the ranks that differ and `when`.
int samx_dp_check_same(SamxDataParallel *dp, const char *when);

#ifdef __cplusplus
}
#endif
#endif
