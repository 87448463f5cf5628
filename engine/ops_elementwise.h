// defines: add/sub/mul with broadcasting, scale, add_scalar, in-place add_, softmax, sum/mean (all
// elements or one dim), cast. Inputs and outputs are f32 except for samx_cast.
#ifndef SAMX_OPS_ELEMENTWISE_H
#define SAMX_OPS_ELEMENTWISE_H

#include "tape.h"

// a (op) b with NumPy/PyTorch broadcasting (trailing dims aligned; size-1 dims stretch), up to 5 dims.
// The backward sums the gradient over the dims an operand was broadcast along. samx_add also takes two
// BF16 tensors of one shape (inference only, no backward): bf16(a + b), BF16.
SamxTensor *samx_add(SamxCtx *ctx, SamxTensor *a, SamxTensor *b);
SamxTensor *samx_sub(SamxCtx *ctx, SamxTensor *a, SamxTensor *b);
SamxTensor *samx_mul(SamxCtx *ctx, SamxTensor *a, SamxTensor *b);

SamxTensor *samx_scale(SamxCtx *ctx, SamxTensor *x, float s);       // x * s
SamxTensor *samx_add_scalar(SamxCtx *ctx, SamxTensor *x, float s);  // x + s

// a += b in place (same shape). Not recorded on the tape; bumps a's version, so a backward through
// an op that saved a (or a view of it) fails instead of using the overwritten values.
void samx_add_(SamxCtx *ctx, SamxTensor *a, const SamxTensor *b);

// Softmax over the last dim (the row max is subtracted first).
SamxTensor *samx_softmax(SamxCtx *ctx, SamxTensor *x);

// Over all elements: output shape [1].
SamxTensor *samx_sum(SamxCtx *ctx, SamxTensor *x);
SamxTensor *samx_mean(SamxCtx *ctx, SamxTensor *x);
// Over one dim (negative counts from the end); keepdim keeps it with size 1.
SamxTensor *samx_sum_dim(SamxCtx *ctx, SamxTensor *x, int dim, int keepdim);
SamxTensor *samx_mean_dim(SamxCtx *ctx, SamxTensor *x, int dim, int keepdim);

// Converts between F32, BF16 and F16 (round to nearest even, as torch's .to()). The gradient (always
// f32) passes through unchanged.
SamxTensor *samx_cast(SamxCtx *ctx, SamxTensor *x, SamxDType dtype);

#endif
