// defines: soft Dice, BCE with logits, sigmoid focal and MSE losses (f32, deterministic reductions).
//
// Targets are f32 of the input's shape (soft labels allowed) and never receive a gradient; the
// per-sample weights of the Dice loss neither. Samples are indexed by dim 0.
#ifndef SAMX_OPS_LOSS_H
#define SAMX_OPS_LOSS_H

#include "tape.h"

typedef enum {
  SAMX_REDUCE_MEAN = 0,  // shape [1]
  SAMX_REDUCE_SUM = 1,   // shape [1]
  SAMX_REDUCE_NONE = 2,  // pointwise losses: the input's shape; per-sample Dice: [N]; global Dice: [1]
} SamxReduction;

typedef struct {
  int from_logits;          // p = sigmoid(logits) (as SAM's losses); else the input already is p
  int squared;              // denominator sum p^2 + sum t^2; else sum p + sum t
  float eps;                // loss = 1 - (2 sum p t + eps) / (denominator + eps)
  SamxReduction reduction;  // over the samples (per_sample) or of the single global Dice
  int per_sample;           // one Dice per sample over all non-batch dims; else one over everything
  // Optional per-sample weights [N] (per_sample only; NULL = all ones), e.g. 0 for an empty annotator.
  // NONE gives w_n * dice_n, SUM sum_n w_n dice_n, MEAN sum_n w_n dice_n / sum_n w_n (0 when the
  // weights sum to 0: the loss and its gradient vanish).
  SamxTensor *weight;
} SamxDiceOpts;

SamxTensor *samx_soft_dice_loss(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, const SamxDiceOpts *o);
// torch.nn.functional.binary_cross_entropy_with_logits.
SamxTensor *samx_bce_with_logits(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, SamxReduction reduction);
// torchvision.ops.sigmoid_focal_loss: bce * (1 - p_t)^gamma, times alpha_t unless alpha < 0.
SamxTensor *samx_sigmoid_focal_loss(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, float alpha, float gamma,
                                    SamxReduction reduction);
// torch.nn.functional.mse_loss (no gradient to target).
SamxTensor *samx_mse_loss(SamxCtx *ctx, SamxTensor *x, SamxTensor *target, SamxReduction reduction);

#endif
