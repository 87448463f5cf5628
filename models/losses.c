// SeqSAM's set loss, MCL's winner-takes-all loss and the single-mask loss.
#include "models/losses.h"

#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "engine/ops.h"
#include "engine/ops_common.h"
#include "eval/hungarian.h"
#include "train/config.h"

void samx_seqsam_select(int M, int K, int mode, uint64_t seed, uint8_t *selected) {
  if (M <= K || mode == SAMX_SELECT_FIRST) {
    for (int i = 0; i < M; i++) selected[i] = (uint8_t)(i < K);
    return;
  }
  memset(selected, 0, (size_t)M);
  if (mode == SAMX_SELECT_STRIDED) {
    for (int j = 0; j < K; j++) {
      int lo = (int)((int64_t)j * M / K), hi = (int)((int64_t)(j + 1) * M / K);
      selected[lo + (int)(samx_hash4(seed, 1, (uint64_t)j, 0) % (uint64_t)(hi - lo))] = 1;
    }
    return;
  }
  // random: the first K of a Fisher-Yates shuffle
  int *order = (int *)malloc(sizeof(int) * (size_t)M);
  for (int i = 0; i < M; i++) order[i] = i;
  for (int i = 0; i < K; i++) {
    int j = i + (int)(samx_hash4(seed, 2, (uint64_t)i, 0) % (uint64_t)(M - i));
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
    selected[order[i]] = 1;
  }
  free(order);
}

static SamxDiceOpts pair_dice(float eps) {
  return (SamxDiceOpts){.from_logits = 1, .squared = 1, .eps = eps, .reduction = SAMX_REDUCE_NONE, .per_sample = 1};
}

// sum(x * w) for a host weight vector w of x's numel.
static SamxTensor *weighted_sum(SamxCtx *ctx, SamxTensor *x, const float *w) {
  return samx_sum(ctx, samx_mul(ctx, x, samx_from_host(ctx, samx_shape_of(x), w)));
}

// Matches the selected outputs of one image to its present labels; writes w[i * B * K + b * K + k].
static void match_image(const float *dice, int M, int B, int K, int b, const float *labels, int64_t npx,
                        const uint8_t *valid, const uint8_t *selected, int identity, float *w, int64_t *match) {
  int rows[64], cols[64], nr = 0, nc = 0;
  SAMX_ASSERT(M <= 64 && K <= 64, "set loss: %d outputs, %d labels (at most 64 each)", M, K);
  for (int i = 0; i < M; i++)
    if (!selected || selected[b * M + i]) rows[nr++] = i;
  for (int k = 0; k < K; k++)
    if (!valid || valid[b * K + k]) cols[nc++] = k;
  if (nr == 0 || nc == 0) return;
  int64_t row_to_col[64];
  if (identity) {
    for (int r = 0; r < nr; r++) row_to_col[r] = r < nc ? r : -1;
  } else {
    double cost[64 * 64];
    for (int r = 0; r < nr; r++)
      for (int c = 0; c < nc; c++) cost[r * nc + c] = dice[(size_t)rows[r] * B * K + (size_t)b * K + cols[c]];
    samx_hungarian(cost, nr, nc, row_to_col, NULL);
  }
  for (int r = 0; r < nr; r++) {
    if (row_to_col[r] < 0) continue;
    int i = rows[r], k = cols[row_to_col[r]];
    if (match) match[b * M + i] = k;
    const float *g = labels + ((size_t)b * K + k) * npx;
    int nonempty = 0;
    for (int64_t p = 0; p < npx && !nonempty; p++) nonempty = g[p] != 0.0f;
    w[(size_t)i * B * K + (size_t)b * K + k] = nonempty ? 1.0f : 0.0f;
  }
}

SamxTensor *samx_set_dice_loss(SamxCtx *ctx, SamxTensor *const *outs, int M, const float *labels, const uint8_t *valid,
                               int B, int K, const uint8_t *selected, int identity, float eps, int64_t *match) {
  SAMX_ASSERT(M >= 1 && K >= 1 && B >= 1, "set loss: M %d, K %d, B %d", M, K, B);
  SamxTensor *o0 = outs[0];
  SAMX_ASSERT(o0->ndim == 4 && o0->shape[0] == B && o0->shape[1] == 1, "set loss: outputs must be [B=%d, 1, h, w]", B);
  int64_t npx = o0->shape[2] * o0->shape[3];
  SamxTensor *lab = samx_from_host(ctx, SHAPE(B * K, npx), labels);
  SamxDiceOpts opts = pair_dice(eps);
  size_t per_out = (size_t)B * K;
  float *dice = (float *)calloc((size_t)M * per_out, sizeof(float)), *w = (float *)calloc((size_t)M * per_out, sizeof(float));
  SamxTensor **pair = (SamxTensor **)calloc((size_t)M, sizeof(SamxTensor *));
  for (int i = 0; i < M; i++) {
    int used = 0;
    for (int b = 0; b < B; b++) used |= !selected || selected[b * M + i];
    if (!used) continue;
    samx_check_shape("samx_set_dice_loss output", outs[i], samx_shape_of(o0));
    // Every label of image b against output i: the output broadcast over K (its gradient sums back).
    SamxTensor *o = samx_add(ctx, samx_reshape(ctx, outs[i], SHAPE(B, 1, npx)), samx_zeros(ctx, SAMX_F32, SHAPE(B, K, npx)));
    pair[i] = samx_soft_dice_loss(ctx, samx_reshape(ctx, o, SHAPE(B * K, npx)), lab, &opts);
    samx_tensor_read_f32(pair[i], dice + i * per_out);
  }
  if (match)
    for (int j = 0; j < B * M; j++) match[j] = -1;
  for (int b = 0; b < B; b++) match_image(dice, M, B, K, b, labels, npx, valid, selected, identity, w, match);
  SamxTensor *loss = NULL;
  for (int i = 0; i < M; i++) {
    if (!pair[i]) continue;
    SamxTensor *term = weighted_sum(ctx, pair[i], w + i * per_out);
    loss = loss ? samx_add(ctx, loss, term) : term;
  }
  free(dice);
  free(w);
  free(pair);
  if (!loss) return samx_zeros(ctx, SAMX_F32, SHAPE(1));  // no output selected anywhere
  return samx_scale(ctx, loss, 1.0f / (float)K);
}

SamxTensor *samx_wta_dice_loss(SamxCtx *ctx, SamxTensor *logits, const float *target, int per_row, float eps,
                               int *winner) {
  SAMX_ASSERT(logits->ndim == 4, "wta loss: logits must be [B, J, h, w]");
  int64_t B = logits->shape[0], J = logits->shape[1], h = logits->shape[2], wd = logits->shape[3], npx = h * wd;
  float *tgt = (float *)malloc(sizeof(float) * (size_t)(B * J * npx));
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < J; j++) memcpy(tgt + (b * J + j) * npx, target + b * npx, sizeof(float) * (size_t)npx);
  SamxDiceOpts opts = pair_dice(eps);
  SamxTensor *dice;
  if (per_row) {
    SamxTensor *rows = samx_soft_dice_loss(ctx, samx_reshape(ctx, logits, SHAPE(B * J * h, wd)),
                                           samx_from_host(ctx, SHAPE(B * J * h, wd), tgt), &opts);
    dice = samx_mean_dim(ctx, samx_reshape(ctx, rows, SHAPE(B * J, h)), 1, 0);
  } else {
    dice = samx_soft_dice_loss(ctx, samx_reshape(ctx, logits, SHAPE(B * J, npx)),
                               samx_from_host(ctx, SHAPE(B * J, npx), tgt), &opts);
  }
  free(tgt);
  float *d = (float *)malloc(sizeof(float) * (size_t)(B * J)), *w = (float *)calloc((size_t)(B * J), sizeof(float));
  samx_tensor_read_f32(dice, d);
  for (int64_t b = 0; b < B; b++) {
    int64_t best = 0;
    for (int64_t j = 1; j < J; j++)
      if (d[b * J + j] < d[b * J + best]) best = j;
    w[b * J + best] = 1.0f / (float)B;
    if (winner) winner[b] = (int)best;
  }
  SamxTensor *loss = weighted_sum(ctx, dice, w);
  free(d);
  free(w);
  return loss;
}

SamxTensor *samx_samft_loss(SamxCtx *ctx, SamxTensor *logits, const float *target, float eps, float bce_weight) {
  SamxTensor *t = samx_from_host(ctx, samx_shape_of(logits), target);
  SamxDiceOpts opts = pair_dice(eps);
  opts.reduction = SAMX_REDUCE_MEAN;
  SamxTensor *loss = samx_soft_dice_loss(ctx, logits, t, &opts);
  if (bce_weight != 0.0f)
    loss = samx_add(ctx, loss, samx_scale(ctx, samx_bce_with_logits(ctx, logits, t, SAMX_REDUCE_MEAN), bce_weight));
  return loss;
}
