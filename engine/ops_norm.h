// defines: samx_layernorm (torch.nn.LayerNorm over the last dim), samx_layernorm_bf16 (the same,
// bf16 out) and samx_layernorm_ (the same, in place), samx_layernorm2d (SAM's LayerNorm2d: over the
// channels of x [B, C, H, W] at every position) and samx_layernorm2d_ (in place). Biased variance, eps
// inside the square root.
#ifndef SAMX_OPS_NORM_H
#define SAMX_OPS_NORM_H

#include "tape.h"

// x [..., C], w [C], b [C] (both required) -> [..., C]. A BF16 x (inference only, no backward) gives a
// BF16 y: fp32 statistics and weights (kernels/bf16.h).
SamxTensor *samx_layernorm(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps);
// The same with a BF16 y whatever x's dtype: from an F32 x the f32 result rounded once, with a backward
// (x and the statistics are kept, so it is samx_layernorm's): bf16 training's norm before a bf16 GEMM.
SamxTensor *samx_layernorm_bf16(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps);
// x = samx_layernorm(x) in place, F32 or BF16 (inference: no backward, so it refuses to run while
// recording a tensor that needs a gradient); bumps x's version and returns x. The arithmetic is
// samx_layernorm's; what it saves is a second stream-sized tensor (and the copy of it a release moves).
SamxTensor *samx_layernorm_(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps);
// x [B, C, H, W], w [C], b [C] -> [B, C, H, W]: w[c] * (x - mean_c) / sqrt(var_c + eps) + b[c]. A BF16 x
// (inference only) gives a BF16 y, as samx_layernorm's.
SamxTensor *samx_layernorm2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps);
// x = samx_layernorm2d(x) in place, F32 or BF16: samx_layernorm_'s terms (inference only).
SamxTensor *samx_layernorm2d_(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps);

#endif
