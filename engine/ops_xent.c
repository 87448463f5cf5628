#include "ops_xent.h"

#include "../kernels/xent.h"
#include "ops_common.h"
#include "ops_elementwise.h"

typedef struct {
  int64_t N, C, S;
  SamxTensor *lse;
} XentArgs;

static void xent_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *target = node->in[1], *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  const XentArgs *a = samx_node_args(node, XentArgs);
  const int32_t *t = (const int32_t *)target->data;
  SAMX_ON_DEVICE(x, samx_cpu_xent_bwd(samx_f32(x), t, samx_f32(a->lse), samx_f32(node->out->grad), samx_f32(gx), a->N, a->C, a->S),
                 samx_cuda_xent_bwd(samx_f32(x), t, samx_f32(a->lse), samx_f32(node->out->grad), samx_f32(gx), a->N, a->C,
                                    a->S));
}

SamxTensor *samx_cross_entropy(SamxCtx *ctx, SamxTensor *logits, SamxTensor *target) {
  const char *op = "cross_entropy";
  samx_check_f32(op, logits);
  samx_check_same_device(op, logits, target);
  SAMX_ASSERT(target->dtype == SAMX_I32 && logits->ndim >= 2 && target->ndim == logits->ndim - 1,
              "%s: logits [N, C, ...] (%d dims) and I32 targets [N, ...] (%d dims, %s) expected", op, logits->ndim,
              target->ndim, samx_dtype_name(target->dtype));
  int64_t N = logits->shape[0], C = logits->shape[1], S = logits->numel / (N * C);
  SAMX_ASSERT(target->numel == N * S && target->shape[0] == N, "%s: %lld targets for %lld positions", op,
              (long long)target->numel, (long long)(N * S));
  SamxShape s = samx_shape_of(target);
  SamxTensor *loss = samx_new(ctx, SAMX_F32, s), *lse = samx_new(ctx, SAMX_F32, s);
  const int32_t *t = (const int32_t *)target->data;
  SAMX_ON_DEVICE(logits, samx_cpu_xent_fwd(samx_f32(logits), t, samx_f32(loss), samx_f32(lse), N, C, S),
                 samx_cuda_xent_fwd(samx_f32(logits), t, samx_f32(loss), samx_f32(lse), N, C, S));
  SamxTensor *in[2] = {logits, target};
  SamxNode *node = samx_record(ctx, op, xent_backward, loss, 2, in);
  if (node) {
    XentArgs *a = samx_node_args(node, XentArgs);
    a->N = N, a->C = C, a->S = S, a->lse = lse;
    samx_node_save(node, logits);
    samx_node_save(node, target);
  }
  return loss;
}

static void sqrt_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *gx = samx_grad_of(ctx, node->in[0]), *y = node->out;
  if (!gx) return;
  SAMX_ON_DEVICE(y, samx_cpu_sqrt_bwd(samx_f32(y), samx_f32(y->grad), samx_f32(gx), y->numel),
                 samx_cuda_sqrt_bwd(samx_f32(y), samx_f32(y->grad), samx_f32(gx), y->numel));
}

SamxTensor *samx_sqrt(SamxCtx *ctx, SamxTensor *x) {
  samx_check_f32("sqrt", x);
  SamxTensor *y = samx_new_like(ctx, x);
  SAMX_ON_DEVICE(x, samx_cpu_sqrt_fwd(samx_f32(x), samx_f32(y), x->numel), samx_cuda_sqrt_fwd(samx_f32(x), samx_f32(y), x->numel));
  SamxTensor *in[1] = {x};
  SamxNode *node = samx_record(ctx, "sqrt", sqrt_backward, y, 1, in);
  if (node) samx_node_save(node, y);
  return y;
}

SamxTensor *samx_l2_norm(SamxCtx *ctx, SamxTensor *x) { return samx_sqrt(ctx, samx_sum(ctx, samx_mul(ctx, x, x))); }
