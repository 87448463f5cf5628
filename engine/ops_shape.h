// defines: reshape (a view), permute, concat, slice, window partition/unpartition (copies).
// Dims may be negative (counted from the end). The copies take F32 or BF16 (bf16 activations move as
// their bits; their gradients, like every gradient, are F32) and return the input's dtype.
#ifndef SAMX_OPS_SHAPE_H
#define SAMX_OPS_SHAPE_H

#include "tape.h"

// A view of x's data with shape s (same numel; one dim may be -1 and is then inferred). It shares
// x's version counter (base = x), so an in-place write through either is seen by the tape.
SamxTensor *samx_reshape(SamxCtx *ctx, SamxTensor *x, SamxShape s);

// Contiguous copy with out dim k = x dim perm[k] (perm has x->ndim entries, a permutation).
SamxTensor *samx_permute(SamxCtx *ctx, SamxTensor *x, const int *perm);

// Concatenation of n tensors of one dtype along dim (all other dims equal). At most SAMX_NODE_MAX_IN (8) inputs
// when the result is differentiated.
SamxTensor *samx_concat(SamxCtx *ctx, SamxTensor **xs, int n, int dim);

// The same written into y, which the caller allocated with the concatenation's shape and dtype (before the
// inputs, so that handing them back leaves y where it is). No backward: dies for an input that needs a
// gradient while recording.
void samx_concat_into(SamxCtx *ctx, SamxTensor *y, SamxTensor **xs, int n, int dim);

// samx_concat of any number of tensors: while recording, groups of at most SAMX_NODE_MAX_IN
// concatenated in turn (the same values; the tape holds one node per group); else one samx_concat.
SamxTensor *samx_concat_many(SamxCtx *ctx, SamxTensor **xs, int n, int dim);
// x narrowed to [start, end) along dim (torch.narrow as a copy).
SamxTensor *samx_slice(SamxCtx *ctx, SamxTensor *x, int dim, int64_t start, int64_t end);

// SAM's window_partition: x [B, H, W, C], zero-padded at the bottom/right to multiples of ws, cut
// into [B * nh * nw, ws, ws, C] windows in (b, row of windows, column of windows) order.
SamxTensor *samx_window_partition(SamxCtx *ctx, SamxTensor *x, int ws);
// SAM's window_unpartition: windows [B * nh * nw, ws, ws, C] back to [B, H, W, C], padding dropped.
SamxTensor *samx_window_unpartition(SamxCtx *ctx, SamxTensor *windows, int ws, int64_t H, int64_t W);

#endif
