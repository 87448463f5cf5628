#include "ops_conv.h"

#include "../kernels/conv.h"
#include "../kernels/linalg.h"
#include "ops_common.h"
#include "ops_linalg.h"

// ---- the three per-image pieces both convolutions are made of ----
// With g the geometry of a conv2d, K = g.C * kh * kw and N = g.Ho * g.Wo:
//   gather:      out [M, N]  = wmat [M, K] . im2col(img) + beta * out   (conv2d forward)
//   scatter:     img (+)= col2im(wmat^T . in [M, N])                      (its adjoint)
//   weight_grad: gw [M, K] += a [M, N] . im2col(img)^T
// A 1x1 kernel with stride 1 and no padding has im2col(img) = img: no column buffer (cols may be NULL).

static int cols_are_image(SamxConvGeom g) { return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0; }

static int64_t cols_rows(SamxConvGeom g) { return g.C * g.kh * g.kw; }

// One row-major GEMM in the context's precision (samx_gemm_f32: fp32, tf32, or bf16 operands with fp32
// accumulation through cuBLASLt, as the linear layers compute): a convolution is an explicit im2col
// followed by the engine's one GEMM, not cuDNN (which the CUDA emulator cannot run, so no test here
// could check it) nor an implicit GEMM of our own (the column buffer is the price: docs/engine.md).
static void gemm(SamxCtx *ctx, const SamxTensor *on, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float beta, float *C) {
  samx_gemm_f32(ctx, on, ta, tb, M, N, K, A, B, beta, C);
}

// im2col(img): img itself when the columns are the image, else written into cols.
static const float *im2col(const SamxTensor *on, SamxConvGeom g, const float *img, float *cols) {
  if (cols_are_image(g)) return img;
  SAMX_ON_DEVICE(on, samx_cpu_conv_im2col(img, cols, g), samx_cuda_conv_im2col(img, cols, g));
  return cols;
}

static void conv_gather(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *wmat, int64_t M, const float *img,
                        float *out, float beta, float *cols) {
  gemm(ctx, on, 0, 0, M, g.Ho * g.Wo, cols_rows(g), wmat, im2col(on, g, img, cols), beta, out);
}

static void conv_scatter(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *wmat, int64_t M, const float *in,
                         float *img, int accumulate, float *cols) {
  int64_t K = cols_rows(g), N = g.Ho * g.Wo;
  if (cols_are_image(g)) {
    gemm(ctx, on, 1, 0, K, N, M, wmat, in, accumulate ? 1.0f : 0.0f, img);
    return;
  }
  gemm(ctx, on, 1, 0, K, N, M, wmat, in, 0.0f, cols);
  SAMX_ON_DEVICE(on, samx_cpu_conv_col2im(cols, img, accumulate, g), samx_cuda_conv_col2im(cols, img, accumulate, g));
}

static void conv_weight_grad(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *a, int64_t M, const float *img,
                             float *gw, float *cols) {
  gemm(ctx, on, 0, 1, M, cols_rows(g), g.Ho * g.Wo, a, im2col(on, g, img, cols), 1.0f, gw);
}

// Elements per image of a [B, C, H, W] tensor.
static int64_t image_numel(const SamxTensor *t) { return t->shape[1] * t->shape[2] * t->shape[3]; }

static float *cols_scratch(SamxCtx *ctx, SamxConvGeom g) {
  if (cols_are_image(g)) return NULL;
  return samx_f32(samx_new(ctx, SAMX_F32, SHAPE(cols_rows(g), g.Ho * g.Wo)));
}

// ---- conv2d and conv_transpose2d ----
// g is always the geometry of the conv2d: for conv_transpose2d, the conv2d whose input has the
// transpose's output shape (the transpose runs that conv2d's adjoint).
typedef struct {
  SamxConvGeom g;
  int transposed;
} ConvArgs;

static void conv_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *w = node->in[1], *b = node->n_in > 2 ? node->in[2] : NULL, *y = node->out;
  ConvArgs *a = samx_node_args(node, ConvArgs);
  SamxTensor *gx = samx_grad_of(ctx, x), *gw = samx_grad_of(ctx, w), *gb = samx_grad_of(ctx, b);
  const float *gy = samx_f32(y->grad);
  int64_t B = x->shape[0], M = w->shape[0], x_img = image_numel(x), y_img = image_numel(y);
  int64_t y_hw = y->shape[2] * y->shape[3];
  if (gb)
    SAMX_ON_DEVICE(x, samx_cpu_conv_bias_grad(gy, samx_f32(gb), B, y->shape[1], y_hw),
                   samx_cuda_conv_bias_grad(gy, samx_f32(gb), B, y->shape[1], y_hw));
  if (!gx && !gw) return;
  float *cols = cols_scratch(ctx, a->g);
  for (int64_t i = 0; i < B; i++) {
    const float *xb = samx_f32(x) + i * x_img, *gyb = gy + i * y_img;
    // conv2d: x is the conv's image and y its [M, N] product; the transpose swaps the two roles.
    const float *img = a->transposed ? gyb : xb, *mat = a->transposed ? xb : gyb;
    if (gw) conv_weight_grad(ctx, x, a->g, mat, M, img, samx_f32(gw), cols);
    if (!gx) continue;
    float *gxb = samx_f32(gx) + i * x_img;
    if (a->transposed)
      conv_gather(ctx, x, a->g, samx_f32(w), M, gyb, gxb, 1.0f, cols);
    else
      conv_scatter(ctx, x, a->g, samx_f32(w), M, gyb, gxb, 1, cols);
  }
}

// w is [Cout, Cin, kh, kw] for conv2d and [Cin, Cout, kh, kw] for the transpose.
static void conv_check(const char *op, SamxTensor *x, SamxTensor *w, SamxTensor *b, int transposed, int stride,
                       int pad) {
  char sx[96], sw[96];
  samx_check_f32(op, x);
  samx_check_f32(op, w);
  samx_check_same_device(op, x, w);
  if (x->ndim != 4 || w->ndim != 4 || w->shape[transposed ? 0 : 1] != x->shape[1])
    SAMX_DIE("%s: x %s and w %s do not fit (x [B, Cin, H, W]; w %s)", op,
             samx_shape_str(samx_shape_of(x), sx, sizeof sx), samx_shape_str(samx_shape_of(w), sw, sizeof sw),
             transposed ? "[Cin, Cout, kh, kw]" : "[Cout, Cin, kh, kw]");
  SAMX_ASSERT(stride >= 1 && pad >= 0, "%s: stride %d, pad %d", op, stride, pad);
  if (b) {
    samx_check_f32(op, b);
    samx_check_same_device(op, x, b);
    samx_check_shape(op, b, SHAPE(w->shape[transposed ? 1 : 0]));
  }
}

static SamxTensor *conv_record(SamxCtx *ctx, const char *op, SamxTensor *x, SamxTensor *w, SamxTensor *b,
                               SamxTensor *y, SamxConvGeom g, int transposed) {
  SamxTensor *in[3] = {x, w, b};
  SamxNode *node = samx_record(ctx, op, conv_backward, y, b ? 3 : 2, in);
  if (node) {
    ConvArgs *a = samx_node_args(node, ConvArgs);
    a->g = g;
    a->transposed = transposed;
    samx_node_save(node, x);
    samx_node_save(node, w);
  }
  return y;
}

SamxTensor *samx_conv2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad) {
  conv_check("conv2d", x, w, b, 0, stride, pad);
  int64_t B = x->shape[0], Cout = w->shape[0];
  SamxConvGeom g = {x->shape[1], x->shape[2], x->shape[3], w->shape[2], w->shape[3], stride, pad, 0, 0};
  g.Ho = samx_conv_out_size(g.H, g.kh, stride, pad);
  g.Wo = samx_conv_out_size(g.W, g.kw, stride, pad);
  if (g.H + 2 * pad < g.kh || g.W + 2 * pad < g.kw) {
    char sx[96], sw[96];
    SAMX_DIE("conv2d: kernel of w %s larger than the padded input x %s (pad %d)",
             samx_shape_str(samx_shape_of(w), sw, sizeof sw), samx_shape_str(samx_shape_of(x), sx, sizeof sx), pad);
  }
  SamxTensor *y = samx_new(ctx, SAMX_F32, SHAPE(B, Cout, g.Ho, g.Wo));
  float *cols = cols_scratch(ctx, g);
  for (int64_t i = 0; i < B; i++)
    conv_gather(ctx, x, g, samx_f32(w), Cout, samx_f32(x) + i * image_numel(x), samx_f32(y) + i * image_numel(y), 0.0f,
                cols);
  if (b)
    SAMX_ON_DEVICE(x, samx_cpu_conv_bias_add(samx_f32(y), samx_f32(b), B, Cout, g.Ho * g.Wo),
                   samx_cuda_conv_bias_add(samx_f32(y), samx_f32(b), B, Cout, g.Ho * g.Wo));
  return conv_record(ctx, "conv2d", x, w, b, y, g, 0);
}

SamxTensor *samx_conv_transpose2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad) {
  conv_check("conv_transpose2d", x, w, b, 1, stride, pad);
  int64_t B = x->shape[0], Cin = x->shape[1], Cout = w->shape[1];
  int64_t Ho = (x->shape[2] - 1) * stride - 2 * (int64_t)pad + w->shape[2];
  int64_t Wo = (x->shape[3] - 1) * stride - 2 * (int64_t)pad + w->shape[3];
  if (Ho <= 0 || Wo <= 0) {
    char sx[96], sw[96];
    SAMX_DIE("conv_transpose2d: x %s, w %s, stride %d, pad %d give an empty output",
             samx_shape_str(samx_shape_of(x), sx, sizeof sx), samx_shape_str(samx_shape_of(w), sw, sizeof sw), stride,
             pad);
  }
  SamxConvGeom g = {Cout, Ho, Wo, w->shape[2], w->shape[3], stride, pad, x->shape[2], x->shape[3]};
  SamxTensor *y = samx_new(ctx, SAMX_F32, SHAPE(B, Cout, Ho, Wo));
  float *cols = cols_scratch(ctx, g);
  for (int64_t i = 0; i < B; i++)
    conv_scatter(ctx, x, g, samx_f32(w), Cin, samx_f32(x) + i * image_numel(x), samx_f32(y) + i * image_numel(y), 0,
                 cols);
  if (b)
    SAMX_ON_DEVICE(x, samx_cpu_conv_bias_add(samx_f32(y), samx_f32(b), B, Cout, Ho * Wo),
                   samx_cuda_conv_bias_add(samx_f32(y), samx_f32(b), B, Cout, Ho * Wo));
  return conv_record(ctx, "conv_transpose2d", x, w, b, y, g, 1);
}

// ---- bilinear resize ----

static void resize_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *y = node->out;
  SamxTensor *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], Ho = y->shape[2], Wo = y->shape[3];
  SAMX_ON_DEVICE(x, samx_cpu_resize_bilinear_bwd(samx_f32(y->grad), samx_f32(gx), planes, H, W, Ho, Wo),
                 samx_cuda_resize_bilinear_bwd(samx_f32(y->grad), samx_f32(gx), planes, H, W, Ho, Wo));
}

SamxTensor *samx_resize_bilinear(SamxCtx *ctx, SamxTensor *x, int64_t out_h, int64_t out_w) {
  samx_check_f32("resize_bilinear", x);
  char s[96];
  if (x->ndim != 4 || x->shape[2] < 1 || x->shape[3] < 1 || out_h < 1 || out_w < 1)
    SAMX_DIE("resize_bilinear: x %s must be [B, C, H, W] with H, W >= 1, resized to %lld x %lld",
             samx_shape_str(samx_shape_of(x), s, sizeof s), (long long)out_h, (long long)out_w);
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  SamxTensor *y = samx_new(ctx, SAMX_F32, SHAPE(x->shape[0], x->shape[1], out_h, out_w));
  SAMX_ON_DEVICE(x, samx_cpu_resize_bilinear_fwd(samx_f32(x), samx_f32(y), planes, H, W, out_h, out_w),
                 samx_cuda_resize_bilinear_fwd(samx_f32(x), samx_f32(y), planes, H, W, out_h, out_w));
  samx_record(ctx, "resize_bilinear", resize_backward, y, 1, &x);
  return y;
}

// ---- 2 x 2 average pooling, ceil mode ----

static void avg_pool2_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *y = node->out;
  SamxTensor *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  SAMX_ON_DEVICE(x, samx_cpu_avg_pool2_bwd(samx_f32(y->grad), samx_f32(gx), planes, H, W),
                 samx_cuda_avg_pool2_bwd(samx_f32(y->grad), samx_f32(gx), planes, H, W));
}

SamxTensor *samx_avg_pool2_ceil(SamxCtx *ctx, SamxTensor *x) {
  samx_check_f32("avg_pool2_ceil", x);
  char s[96];
  if (x->ndim != 4 || x->shape[2] < 1 || x->shape[3] < 1)
    SAMX_DIE("avg_pool2_ceil: x %s must be [B, C, H, W] with H, W >= 1", samx_shape_str(samx_shape_of(x), s, sizeof s));
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  SamxTensor *y = samx_new(ctx, SAMX_F32, SHAPE(x->shape[0], x->shape[1], (H + 1) / 2, (W + 1) / 2));
  SAMX_ON_DEVICE(x, samx_cpu_avg_pool2_fwd(samx_f32(x), samx_f32(y), planes, H, W),
                 samx_cuda_avg_pool2_fwd(samx_f32(x), samx_f32(y), planes, H, W));
  samx_record(ctx, "avg_pool2_ceil", avg_pool2_backward, y, 1, &x);
  return y;
}
