// Autograd-lite: a tape of coarse ops, each with a hand-written backward.
//
// Gradient rule (stated once, as in llm.c): every backward ADDS into the gradients of its inputs
// (+=). Parameter gradients live in the parameter store's contiguous buffer and survive steps, so
// gradient accumulation is just several backward passes before the optimizer step. Activation
// gradients are carved zeroed from the activation arena when first reached, and handed back once
// their tensor's producer has run its backward: samx_backward sets the tensor's grad to NULL then,
// and later gradients reuse the bytes (a chain of ops holds a few gradients at a time, not one per
// activation). Gradients of tensors no op produced (leaves: inputs marked requires_grad) are kept.
//
// Nothing is recorded when recording is off (inference mode) or when no input of an op requires a
// gradient: a frozen encoder in front of a trainable decoder leaves no trace on the tape, so
// backward never enters it. Tensors an op saves for backward carry their version at save time;
// an in-place write in between is reported as an error by samx_backward.
#ifndef SAMX_TAPE_H
#define SAMX_TAPE_H

#include <stdint.h>

#include "arena.h"
#include "precision.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_NODE_MAX_IN 8
#define SAMX_NODE_MAX_SAVED 8
#define SAMX_NODE_ARGS_BYTES 192

typedef struct SamxCtx SamxCtx;
typedef struct SamxNode SamxNode;
typedef void (*SamxBackwardFn)(SamxCtx *ctx, SamxNode *node);

struct SamxNode {
  const char *op;
  SamxBackwardFn backward;
  SamxTensor *in[SAMX_NODE_MAX_IN];
  int n_in;
  SamxTensor *out;
  SamxTensor *saved[SAMX_NODE_MAX_SAVED];
  uint32_t saved_version[SAMX_NODE_MAX_SAVED];
  int n_saved;
  // Op-specific arguments (a POD struct of the op's choosing, see samx_node_args).
  _Alignas(16) unsigned char args[SAMX_NODE_ARGS_BYTES];
};

typedef struct {
  SamxNode *nodes;
  int n, capacity;
} SamxTape;

struct SamxCtx {
  SamxDevice device;
  SamxArena act;        // activations and their gradients; reset every step
  SamxTape tape;
  int recording;        // 0: inference mode, nothing is recorded
  uint64_t seed;        // counter-based RNG: (seed, offset) names every random draw
  uint64_t rng_offset;  // advanced by every random op; saved in checkpoints
  // When set, called after samx_backward has passed tape node i (i descending, reached or not):
  // data parallelism starts reducing gradient buckets that no earlier node can change any more.
  void (*after_node)(void *user, int i);
  void *after_node_user;
  // GEMM precision of the ops run in this context: samx_precision_default() on a CUDA device, fp32 on
  // the CPU (set by samx_ctx_init; a caller may change it between ops).
  SamxPrecision precision;
  // During samx_backward: the gradients of activations whose producer's backward has run (dead: no
  // node reads them again), whose bytes the next activation gradients take (see samx_backward).
  SamxArenaFreeList grad_free;
  int in_backward;
};

// act_bytes: activation arena size on `device`; max_nodes: tape capacity per step.
void samx_ctx_init(SamxCtx *ctx, SamxDevice device, size_t act_bytes, int max_nodes);
void samx_ctx_free(SamxCtx *ctx);
// Forgets the tape and all activations (parameters and their gradients are untouched).
void samx_ctx_reset(SamxCtx *ctx);
// Turns recording on/off; returns the previous state.
int samx_ctx_set_recording(SamxCtx *ctx, int on);

// Inference-mode memory reuse: samx_ctx_mark() before a block, samx_ctx_release_to() after it
// frees everything the block allocated except its output, which is moved down to the mark (so a
// deep network's inference needs one block's activations, not all of them). Only legal while
// recording is off: the tape would otherwise refer to released tensors. The output stays where it is
// when less than an eighth of its size lies free below it, and moves in one copy when it would not land
// on itself (else in pieces, never through a second buffer).
size_t samx_ctx_mark(const SamxCtx *ctx);
SamxTensor *samx_ctx_release_to(SamxCtx *ctx, size_t mark, SamxTensor *keep);
// The same keeping several tensors (packed down from the mark in address order, each as above); one that
// the rewind would not free (allocated before the mark, or outside the arena) is left where it is.
void samx_ctx_release_keep(SamxCtx *ctx, size_t mark, SamxTensor **keep, int n);
// Frees everything allocated since mark (nothing kept). Same rule: recording must be off.
void samx_ctx_release(SamxCtx *ctx, size_t mark);

// A fresh activation tensor on the context's device.
SamxTensor *samx_new(SamxCtx *ctx, SamxDType dt, SamxShape s);
SamxTensor *samx_zeros(SamxCtx *ctx, SamxDType dt, SamxShape s);
// An f32 activation filled from host memory (test inputs, data batches).
SamxTensor *samx_from_host(SamxCtx *ctx, SamxShape s, const float *host);

// For op implementations: records `out = op(in...)` if recording is on and any input requires a
// gradient; then marks out->requires_grad and returns the node, else returns NULL (no backward).
SamxNode *samx_record(SamxCtx *ctx, const char *op, SamxBackwardFn backward, SamxTensor *out, int n_in,
                      SamxTensor *const *in);
// Saves t for backward with its current version.
void samx_node_save(SamxNode *node, SamxTensor *t);
// The node's argument block, sized for the op's struct (checked).
void *samx_node_args_(SamxNode *node, size_t size);
#define samx_node_args(node, type) ((type *)samx_node_args_((node), sizeof(type)))

// For backward functions: t's gradient buffer (zeroed at first use), or NULL when t does not need one.
SamxTensor *samx_grad_of(SamxCtx *ctx, SamxTensor *t);

// Back-propagates from `loss` (any shape) with upstream gradient `grad_out` (same shape; NULL means
// all ones). Returns 0, or -1 with samx_last_error() naming the op and tensor when a saved tensor
// was modified in place after it was saved.
int samx_backward(SamxCtx *ctx, SamxTensor *loss, SamxTensor *grad_out);

#ifdef __cplusplus
}
#endif
#endif
