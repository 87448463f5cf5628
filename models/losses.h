// Training losses of the methods, built from engine ops (gradients through the tape).
// Soft Dice everywhere is MONAI's DiceLoss(sigmoid=True, squared_pred=True, smooth_nr = smooth_dr =
// eps) of one map pair: 1 - (2 sum p g + eps) / (sum p^2 + sum g^2 + eps), p = sigmoid(logit).
// Targets are host arrays of 0/1 floats at the logits' resolution.
#ifndef SAMX_MODELS_LOSSES_H
#define SAMX_MODELS_LOSSES_H

#include <stdint.h>

#include "engine/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

// Which of M outputs enter SeqSAM's matching against K labels during training (selected[i] = 1).
// M <= K: all of them. Otherwise K of them:
//   strided (SAMX_SELECT_STRIDED): randomised strided pooling, one output drawn uniformly from each
//     of the K consecutive chunks [floor(jM/K), floor((j+1)M/K)); with K dividing M these are the
//     paper's chunks of M/K, otherwise the chunk sizes differ by one, and still K outputs result
//     (the published ceil(M/K) chunks leave fewer than K, e.g. M = 5, K = 4 gives 3).
//   random: K distinct outputs drawn uniformly;  first: outputs 0 .. K-1.
// Random draws are a hash of seed.
void samx_seqsam_select(int M, int K, int mode, uint64_t seed, uint8_t *selected);

// SeqSAM's Hungarian-matched soft-Dice set loss over a batch of B images.
//   outs:     M logits tensors [B, 1, h, w] (the rollout's steps)
//   labels:   host [B, K, h * w] 0/1
//   valid:    host [B * K] (NULL: all): labels that exist; absent ones enter neither the matching
//             nor the loss. Present but empty labels do enter the matching, and their matched loss
//             is multiplied by 0 (the paper's label_mask).
//   selected: host [B * M] (NULL: all): outputs that enter the matching of image b
// Per image, the selected outputs are matched to the present labels on the detached pair Dice
// costs (Hungarian, rectangular: min(rows, cols) pairs; identity: the r-th selected output to the
// r-th present label). loss = (1/K) sum over images and matched pairs with a non-empty label of the
// pair Dice; like the published code, not divided by B.
// match (may be NULL): host [B * M], the label each output was matched to, or -1.
SamxTensor *samx_set_dice_loss(SamxCtx *ctx, SamxTensor *const *outs, int M, const float *labels, const uint8_t *valid,
                               int B, int K, const uint8_t *selected, int identity, float eps, int64_t *match);

// MCL's winner-takes-all loss: logits [B, J, h, w] (J hypotheses), target host [B, h * w].
// loss = (1/B) sum_b min_j Dice(logits[b, j], target[b]); per_row: each hypothesis' Dice is the mean
// of per-image-row Dice values (what SeqSAM's code computes by handing MONAI an (N, H, W) tensor).
// winner (may be NULL): host [B].
SamxTensor *samx_wta_dice_loss(SamxCtx *ctx, SamxTensor *logits, const float *target, int per_row, float eps,
                               int *winner);

// Single-mask fine-tuning (SAM-FT / MedSAM): logits [B, 1, h, w], target host [B, h * w].
// loss = mean_b Dice_b + bce_weight * mean over pixels of BCE with logits.
SamxTensor *samx_samft_loss(SamxCtx *ctx, SamxTensor *logits, const float *target, float eps, float bce_weight);

#ifdef __cplusplus
}
#endif
#endif
