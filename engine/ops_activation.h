// defines: samx_relu, samx_gelu, samx_sigmoid, samx_gelu_ (elementwise, any shape, F32; a BF16 x gives a BF16 y,
// computed in fp32 and rounded once, whose backward reads the saved bf16 x and y and gives an fp32 gradient).
#ifndef SAMX_OPS_ACTIVATION_H
#define SAMX_OPS_ACTIVATION_H

#include "tape.h"

SamxTensor *samx_relu(SamxCtx *ctx, SamxTensor *x);
SamxTensor *samx_gelu(SamxCtx *ctx, SamxTensor *x);  // exact erf form, as torch.nn.GELU()
SamxTensor *samx_sigmoid(SamxCtx *ctx, SamxTensor *x);
// x = samx_gelu(x) in place, F32 or BF16 (inference: refused while recording an x that needs a
// gradient); bumps x's version and returns x.
SamxTensor *samx_gelu_(SamxCtx *ctx, SamxTensor *x);

#endif
