#include "ops_norm.h"

#include <string.h>

#include "../kernels/bf16.h"
#include "../kernels/elementwise.h"
#include "../kernels/norm.h"
#include "ops_common.h"

// Both ops normalise rows of C elements of x viewed as [R / inner, C, inner].
typedef struct {
  int64_t R, C, inner;
  SamxTensor *mean, *rstd;  // [R], written by the forward pass
} NormArgs;

static void norm_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *w = node->in[1], *b = node->in[2], *gy = node->out->grad;
  NormArgs *a = samx_node_args(node, NormArgs);
  SamxTensor *gx = samx_grad_of(ctx, x), *gw = samx_grad_of(ctx, w), *gb = samx_grad_of(ctx, b);
  const float *mean = samx_f32(a->mean), *rstd = samx_f32(a->rstd);
  if (gx)
    SAMX_ON_DEVICE(x,
                   samx_cpu_norm_bwd_dx(samx_f32(x), samx_f32(w), samx_f32(gy), mean, rstd, samx_f32(gx), a->R,
                                        a->C, a->inner),
                   samx_cuda_norm_bwd_dx(samx_f32(x), samx_f32(w), samx_f32(gy), mean, rstd, samx_f32(gx), a->R,
                                         a->C, a->inner));
  if (gw || gb) {
    float *part = samx_f32(samx_new(ctx, SAMX_F32, SHAPE(2, samx_norm_n_chunks(a->R), a->C)));
    float *pw = gw ? samx_f32(gw) : NULL, *pb = gb ? samx_f32(gb) : NULL;
    SAMX_ON_DEVICE(x,
                   samx_cpu_norm_bwd_dwdb(samx_f32(x), samx_f32(gy), mean, rstd, pw, pb, part, a->R, a->C, a->inner),
                   samx_cuda_norm_bwd_dwdb(samx_f32(x), samx_f32(gy), mean, rstd, pw, pb, part, a->R, a->C, a->inner));
  }
}

// The bf16 kernels on a BF16 x (fp32 weight, bias and statistics; the profile's name for them).
static void layernorm_bf16(const SamxTensor *x, const float *w, const float *b, uint16_t *y, float *mean,
                           float *rstd, int64_t R, int64_t C, int64_t inner, float eps) {
  const uint16_t *xs = (const uint16_t *)x->data;
  SAMX_ON_DEVICE(x, samx_cpu_bf16_layernorm(xs, w, b, y, mean, rstd, R, C, inner, eps),
                 samx_cuda_bf16_layernorm(xs, w, b, y, mean, rstd, R, C, inner, eps));
}

// y = the norm of x's rows, in x's dtype (F32 or BF16); y may be x (each row's statistics are taken
// before the row is written).
static void norm_rows(const SamxTensor *x, const SamxTensor *w, const SamxTensor *b, void *y, float *mean,
                      float *rstd, int64_t R, int64_t C, int64_t inner, float eps) {
  const float *wf = samx_f32(w), *bf = samx_f32(b);
  if (x->dtype == SAMX_BF16) {
    layernorm_bf16(x, wf, bf, (uint16_t *)y, mean, rstd, R, C, inner, eps);
    return;
  }
  SAMX_ON_DEVICE(x, samx_cpu_norm_fwd(samx_f32(x), wf, bf, (float *)y, mean, rstd, R, C, inner, eps),
                 samx_cuda_norm_fwd(samx_f32(x), wf, bf, (float *)y, mean, rstd, R, C, inner, eps));
}

// x F32 or BF16, w and b F32 [C] on x's device.
static void check_norm(const char *name, const SamxTensor *x, const SamxTensor *w, const SamxTensor *b, int64_t C) {
  SAMX_ASSERT(w && b, "%s: weight and bias are both required", name);
  if (x->dtype != SAMX_BF16) samx_check_f32(name, x);
  samx_check_f32(name, w);
  samx_check_f32(name, b);
  samx_check_same_device(name, x, w);
  samx_check_same_device(name, x, b);
  samx_check_shape(name, w, SHAPE(C));
  samx_check_shape(name, b, SHAPE(C));
}

// y in dtype out: F32, or BF16 from an F32 x (the f32 result rounded once, through a scratch copy
// handed back at once): what a bf16 GEMM after the norm would round it to, without the f32 y beside it.
// A BF16 x (inference) gives a BF16 y.
static SamxTensor *norm(SamxCtx *ctx, const char *name, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps,
                        int64_t C, int64_t inner, SamxDType out) {
  check_norm(name, x, w, b, C);
  int64_t R = C ? x->numel / C : 0;
  if (x->dtype == SAMX_BF16) {
    SamxTensor *in[3] = {x, w, b};
    samx_check_bf16_inference(name, ctx, 3, in);
    out = SAMX_BF16;
  }
  SamxTensor *y = samx_new(ctx, out, samx_shape_of(x));
  SamxTensor *mean = samx_new(ctx, SAMX_F32, SHAPE(R)), *rstd = samx_new(ctx, SAMX_F32, SHAPE(R));
  size_t mark = ctx->act.used;
  SamxTensor *y32 = out == x->dtype ? y : samx_new(ctx, SAMX_F32, samx_shape_of(x));
  norm_rows(x, w, b, y32->data, samx_f32(mean), samx_f32(rstd), R, C, inner, eps);
  if (y32 != y) {
    SAMX_ON_DEVICE(x, samx_cpu_elementwise_cast(y32->data, SAMX_F32, y->data, out, y->numel),
                   samx_cuda_elementwise_cast(y32->data, SAMX_F32, y->data, out, y->numel));
    samx_arena_rewind(&ctx->act, mark);
  }
  if (x->dtype == SAMX_BF16) return y;
  SamxTensor *in[3] = {x, w, b};
  SamxNode *node = samx_record(ctx, name, norm_backward, y, 3, in);
  if (node) {
    NormArgs *a = samx_node_args(node, NormArgs);
    a->R = R, a->C = C, a->inner = inner, a->mean = mean, a->rstd = rstd;
    samx_node_save(node, x);
    samx_node_save(node, w);
  }
  return y;
}

SamxTensor *samx_layernorm(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps) {
  SAMX_ASSERT(x->ndim >= 1, "layernorm: x must have at least one dim");
  return norm(ctx, "layernorm", x, w, b, eps, samx_dim(x, -1), 1, SAMX_F32);
}

SamxTensor *samx_layernorm_bf16(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps) {
  SAMX_ASSERT(x->ndim >= 1, "layernorm_bf16: x must have at least one dim");
  return norm(ctx, "layernorm_bf16", x, w, b, eps, samx_dim(x, -1), 1, SAMX_BF16);
}

// x normalised in place over C elements at stride inner (no backward: refused while recording).
static SamxTensor *norm_in_place(SamxCtx *ctx, const char *name, SamxTensor *x, SamxTensor *w, SamxTensor *b,
                                 float eps, int64_t C, int64_t inner) {
  int64_t R = C ? x->numel / C : 0;
  check_norm(name, x, w, b, C);
  if (ctx->recording && (x->requires_grad || w->requires_grad || b->requires_grad))
    SAMX_DIE("%s: normalises x in place, without a backward (HINT: samx_%.*s while recording)", name,
             (int)strlen(name) - 1, name);
  size_t mark = ctx->act.used;
  float *mean = samx_f32(samx_new(ctx, SAMX_F32, SHAPE(R))), *rstd = samx_f32(samx_new(ctx, SAMX_F32, SHAPE(R)));
  norm_rows(x, w, b, x->data, mean, rstd, R, C, inner, eps);
  samx_arena_rewind(&ctx->act, mark);  // the statistics are dead once the kernel is queued
  samx_bump_version(x);
  return x;
}

SamxTensor *samx_layernorm_(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps) {
  SAMX_ASSERT(x->ndim >= 1, "layernorm_: x must have at least one dim");
  return norm_in_place(ctx, "layernorm_", x, w, b, eps, samx_dim(x, -1), 1);
}

// x [B, C, H, W] (any other dims are refused, naming op).
static void check_4d(const char *op, const SamxTensor *x) {
  if (x->ndim == 4) return;
  char s[96];
  SAMX_DIE("%s: x must be [B, C, H, W], got %s", op, samx_shape_str(samx_shape_of(x), s, sizeof s));
}

SamxTensor *samx_layernorm2d_(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps) {
  check_4d("layernorm2d_", x);
  return norm_in_place(ctx, "layernorm2d_", x, w, b, eps, x->shape[1], x->shape[2] * x->shape[3]);
}

SamxTensor *samx_layernorm2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, float eps) {
  check_4d("layernorm2d", x);
  return norm(ctx, "layernorm2d", x, w, b, eps, x->shape[1], x->shape[2] * x->shape[3], SAMX_F32);
}
