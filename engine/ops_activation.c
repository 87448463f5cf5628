#include "ops_activation.h"

#include "../kernels/activation.h"
#include "../kernels/bf16.h"
#include "ops_common.h"

typedef struct {
  int kind;
} ActArgs;

static void act_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *y = node->out;
  SamxTensor *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  int kind = samx_node_args(node, ActArgs)->kind;
  if (x->dtype == SAMX_BF16) {
    const uint16_t *xs = (const uint16_t *)x->data, *ys = (const uint16_t *)y->data;
    SAMX_ON_DEVICE(x, samx_cpu_bf16_act_bwd(kind, xs, ys, samx_f32(y->grad), samx_f32(gx), x->numel),
                   samx_cuda_bf16_act_bwd(kind, xs, ys, samx_f32(y->grad), samx_f32(gx), x->numel));
    return;
  }
  SAMX_ON_DEVICE(x, samx_cpu_act_bwd(kind, samx_f32(x), samx_f32(y), samx_f32(y->grad), samx_f32(gx), x->numel),
                 samx_cuda_act_bwd(kind, samx_f32(x), samx_f32(y), samx_f32(y->grad), samx_f32(gx), x->numel));
}

// y = act(x) in x's dtype (y may be x: each element is read before it is written).
static void act_into(const SamxTensor *x, int kind, void *y) {
  if (x->dtype == SAMX_BF16) {
    const uint16_t *xs = (const uint16_t *)x->data;
    SAMX_ON_DEVICE(x, samx_cpu_bf16_act(kind, xs, (uint16_t *)y, x->numel),
                   samx_cuda_bf16_act(kind, xs, (uint16_t *)y, x->numel));
  } else {
    SAMX_ON_DEVICE(x, samx_cpu_act_fwd(kind, samx_f32(x), (float *)y, x->numel),
                   samx_cuda_act_fwd(kind, samx_f32(x), (float *)y, x->numel));
  }
}

// y = act(x) in x's dtype: F32, or BF16 by the bf16 kernels (y = bf16(act(x)); in training its
// backward reads the saved bf16 x and y and gives an fp32 dL/dx, the tape's gradients being fp32).
static SamxTensor *activation(SamxCtx *ctx, SamxTensor *x, int kind, const char *name) {
  if (x->dtype != SAMX_BF16) samx_check_f32(name, x);
  SamxTensor *y = samx_new(ctx, x->dtype, samx_shape_of(x));
  act_into(x, kind, y->data);
  SamxNode *node = samx_record(ctx, name, act_backward, y, 1, &x);
  if (node) {
    samx_node_args(node, ActArgs)->kind = kind;
    samx_node_save(node, x);
    samx_node_save(node, y);
  }
  return y;
}

SamxTensor *samx_relu(SamxCtx *ctx, SamxTensor *x) { return activation(ctx, x, SAMX_ACT_RELU, "relu"); }
SamxTensor *samx_gelu(SamxCtx *ctx, SamxTensor *x) { return activation(ctx, x, SAMX_ACT_GELU, "gelu"); }
SamxTensor *samx_sigmoid(SamxCtx *ctx, SamxTensor *x) { return activation(ctx, x, SAMX_ACT_SIGMOID, "sigmoid"); }

SamxTensor *samx_gelu_(SamxCtx *ctx, SamxTensor *x) {
  if (x->dtype != SAMX_BF16) samx_check_f32("gelu_", x);
  if (ctx->recording && x->requires_grad)
    SAMX_DIE("gelu_: overwrites x, without a backward (HINT: samx_gelu while recording)");
  act_into(x, SAMX_ACT_GELU, x->data);
  samx_bump_version(x);
  return x;
}
