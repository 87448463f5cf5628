#include "ops_loss.h"

#include "../kernels/loss.h"
#include "ops_common.h"

typedef struct {
  SamxLossSpec spec;
  int64_t rows, cols;
  int gy_mode;       // SamxGyMode
  double *sums;      // [rows][2] row sums from forward; NULL for unreduced pointwise losses
  double *rowscale;  // [rows] weight of each row in the output; NULL likewise
} LossArgs;

static void loss_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *t = node->saved[1], *y = node->out;
  SamxTensor *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  const LossArgs *a = samx_node_args(node, LossArgs);
  SAMX_ON_DEVICE(x,
                 samx_cpu_loss_bwd(a->spec, samx_f32(x), samx_f32(t), a->sums, a->rowscale, samx_f32(y->grad),
                                   a->gy_mode, samx_f32(gx), a->rows, a->cols),
                 samx_cuda_loss_bwd(a->spec, samx_f32(x), samx_f32(t), a->sums, a->rowscale, samx_f32(y->grad),
                                    a->gy_mode, samx_f32(gx), a->rows, a->cols));
}

static void check_inputs(const char *op, const SamxTensor *x, const SamxTensor *t) {
  samx_check_f32(op, x);
  samx_check_f32(op, t);
  samx_check_same_device(op, x, t);
  samx_check_same_shape(op, x, t);
  SAMX_ASSERT(x->numel > 0, "%s: empty input", op);
}

// Only x is an input of the node: targets (and weights) never receive a gradient.
static SamxNode *record(SamxCtx *ctx, const char *op, SamxTensor *y, SamxTensor *x, SamxTensor *t,
                        const LossArgs *args) {
  SamxNode *node = samx_record(ctx, op, loss_backward, y, 1, &x);
  if (node) {
    *samx_node_args(node, LossArgs) = *args;
    samx_node_save(node, x);
    samx_node_save(node, t);
  }
  return node;
}

// The loss reduced per row (keep_rows: output [rows]) or over all rows (output [1]); see samx_cpu_loss_reduce.
static SamxTensor *reduced_loss(SamxCtx *ctx, const char *op, SamxLossSpec spec, SamxTensor *x, SamxTensor *t,
                                SamxTensor *weight, int64_t rows, int keep_rows, int weight_mean, double scale) {
  int64_t cols = x->numel / rows;
  double *partials = (double *)samx_arena_alloc(&ctx->act, (size_t)(rows * samx_loss_chunks(cols) * 2) * sizeof(double));
  double *sums = (double *)samx_arena_alloc(&ctx->act, (size_t)(rows * 2) * sizeof(double));
  double *rowscale = (double *)samx_arena_alloc(&ctx->act, (size_t)rows * sizeof(double));
  SamxTensor *y = samx_new(ctx, SAMX_F32, keep_rows ? SHAPE(rows) : SHAPE(1));
  const float *w = weight ? samx_f32(weight) : NULL;
  SAMX_ON_DEVICE(x,
                 samx_cpu_loss_reduce(spec, samx_f32(x), samx_f32(t), w, rows, cols, keep_rows, weight_mean, scale,
                                      partials, sums, rowscale, samx_f32(y)),
                 samx_cuda_loss_reduce(spec, samx_f32(x), samx_f32(t), w, rows, cols, keep_rows, weight_mean, scale,
                                       partials, sums, rowscale, samx_f32(y)));
  LossArgs args = {spec, rows, cols, keep_rows ? SAMX_GY_ROW : SAMX_GY_SCALAR, sums, rowscale};
  record(ctx, op, y, x, t, &args);
  return y;
}

static SamxTensor *pointwise_loss(SamxCtx *ctx, const char *op, SamxLossSpec spec, SamxTensor *x, SamxTensor *t,
                                  SamxReduction reduction) {
  check_inputs(op, x, t);
  SAMX_ASSERT(reduction >= SAMX_REDUCE_MEAN && reduction <= SAMX_REDUCE_NONE, "%s: unknown reduction %d", op,
              (int)reduction);
  if (reduction != SAMX_REDUCE_NONE)
    return reduced_loss(ctx, op, spec, x, t, NULL, 1, 0, 0, reduction == SAMX_REDUCE_MEAN ? 1.0 / x->numel : 1.0);
  SamxTensor *y = samx_new_like(ctx, x);
  SAMX_ON_DEVICE(x, samx_cpu_loss_elementwise(spec, samx_f32(x), samx_f32(t), samx_f32(y), x->numel),
                 samx_cuda_loss_elementwise(spec, samx_f32(x), samx_f32(t), samx_f32(y), x->numel));
  LossArgs args = {spec, 1, x->numel, SAMX_GY_ELEM, NULL, NULL};
  record(ctx, op, y, x, t, &args);
  return y;
}

SamxTensor *samx_bce_with_logits(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, SamxReduction reduction) {
  SamxLossSpec spec = {.kind = SAMX_LOSS_BCE};
  return pointwise_loss(ctx, "bce_with_logits", spec, logits, target, reduction);
}

SamxTensor *samx_sigmoid_focal_loss(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, float alpha, float gamma,
                                    SamxReduction reduction) {
  SAMX_ASSERT(gamma >= 0, "sigmoid_focal_loss: gamma %g < 0", gamma);
  SamxLossSpec spec = {.kind = SAMX_LOSS_FOCAL, .alpha = alpha, .gamma = gamma};
  return pointwise_loss(ctx, "sigmoid_focal_loss", spec, logits, target, reduction);
}

SamxTensor *samx_mse_loss(SamxCtx *ctx, SamxTensor *x, SamxTensor *target, SamxReduction reduction) {
  SamxLossSpec spec = {.kind = SAMX_LOSS_MSE};
  return pointwise_loss(ctx, "mse_loss", spec, x, target, reduction);
}

SamxTensor *samx_soft_dice_loss(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target, const SamxDiceOpts *o) {
  const char *op = "soft_dice_loss";
  check_inputs(op, logits, target);
  SAMX_ASSERT(o->reduction >= SAMX_REDUCE_MEAN && o->reduction <= SAMX_REDUCE_NONE, "%s: unknown reduction %d", op,
              (int)o->reduction);
  SAMX_ASSERT(o->eps >= 0, "%s: eps %g < 0", op, o->eps);
  int64_t rows = o->per_sample ? logits->shape[0] : 1;
  if (o->weight) {
    SAMX_ASSERT(o->per_sample, "%s: per-sample weights need per_sample = 1", op);
    samx_check_f32(op, o->weight);
    samx_check_same_device(op, logits, o->weight);
    samx_check_shape(op, o->weight, SHAPE(rows));
  }
  SamxLossSpec spec = {.kind = SAMX_LOSS_DICE, .eps = o->eps, .from_logits = o->from_logits, .squared = o->squared};
  int keep_rows = o->per_sample && o->reduction == SAMX_REDUCE_NONE;
  return reduced_loss(ctx, op, spec, logits, target, o->weight, rows, keep_rows, o->reduction == SAMX_REDUCE_MEAN,
                      1.0);
}
