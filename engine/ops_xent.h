// defines: samx_cross_entropy (class-index targets, torch.nn.functional.cross_entropy with
// reduction "none" over [N, C, ...] logits), samx_sqrt and samx_l2_norm (torch's Tensor.norm(2)).
#ifndef SAMX_OPS_XENT_H
#define SAMX_OPS_XENT_H

#include "tape.h"

// logits [N, C, d1, ...] (C classes in dim 1), target I32 [N, d1, ...] with values in [0, C) (no
// gradient) -> per-position losses [N, d1, ...]. Mean them for CrossEntropyLoss()'s default.
SamxTensor *samx_cross_entropy(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target);
// Elementwise square root (gradient 0 where x = 0).
SamxTensor *samx_sqrt(SamxCtx *ctx, SamxTensor *x);
// sqrt(sum x^2) over all elements: [1].
SamxTensor *samx_l2_norm(SamxCtx *ctx, SamxTensor *x);

#endif
