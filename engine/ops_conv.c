#include "ops_conv.h"

#include "../kernels/conv.h"
#include "../kernels/elementwise.h"
#include "../kernels/linalg.h"
#include "ops_common.h"
#include "ops_linalg.h"
#include "ops_shape.h"

// ---- the three pieces both convolutions are made of, over B images ----
// With g the geometry of a conv2d, K = g.C * kh * kw and N = g.Ho * g.Wo, per image i:
//   gather:      out_i [M, N]  = wmat [M, K] . im2col(img_i) + beta * out_i   (conv2d forward)
//   scatter:     img_i (+)= col2im(wmat^T . in_i [M, N])                       (its adjoint)
//   weight_grad: gw [M, K] += a_i [M, N] . im2col(img_i)^T
// Two ways to run them. On CUDA in bf16, an implicit GEMM on tensor cores (kernels/cuda/conv_bf16.cu)
// reads the columns straight from the image: no column buffer. Otherwise (fp32, tf32, the CPU's bf16
// reference mode) an explicit im2col into a column buffer, then the engine's one GEMM in the context's
// precision (samx_gemm_f32). A 1x1 kernel with stride 1 and no padding has im2col(img) = img: no
// column buffer, so it stays a plain GEMM; so does a strided adjoint (the transposed convolution's
// forward) whose taps overlap, whose implicit K would be mostly zeros. With disjoint taps (kernel =
// stride: SAM's 2x2/2 upscaling) the adjoint is one GEMM per image whose entries go straight to their
// places, all images in one launch (image by image and 4 launches each before: two casts, the GEMM
// and a col2im). Not cuDNN: the CUDA emulator cannot run it, so
// no test here could check a cuDNN call (docs/engine.md).

static int cols_are_image(SamxConvGeom g) { return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0; }

static int64_t cols_rows(SamxConvGeom g) { return g.C * g.kh * g.kw; }

static int implicit_allowed = 1;
void samx_conv_set_implicit(int on) { implicit_allowed = on; }

// Whether a piece (adjoint: the scatter) runs as an implicit GEMM.
static int implicit(const SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, int adjoint) {
  return implicit_allowed && on->device.type == SAMX_CUDA && ctx->precision == SAMX_PRECISION_BF16 &&
         !cols_are_image(g) && (!adjoint || g.stride == 1 || samx_conv_taps_disjoint(g));
}

static int needs_cols(const SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, int adjoint) {
  return !cols_are_image(g) && !implicit(ctx, on, g, adjoint);
}

// One column buffer, shared by the pieces of one op (NULL when none needs one).
static float *cols_scratch(SamxCtx *ctx, SamxConvGeom g, int needed) {
  if (!needed) return NULL;
  return samx_f32(samx_new(ctx, SAMX_F32, SHAPE(cols_rows(g), g.Ho * g.Wo)));
}

// im2col(img): img itself when the columns are the image, else written into cols.
static const float *im2col(const SamxTensor *on, SamxConvGeom g, const float *img, float *cols) {
  if (cols_are_image(g)) return img;
  SAMX_ON_DEVICE(on, samx_cpu_conv_im2col(img, cols, g), samx_cuda_conv_im2col(img, cols, g));
  return cols;
}

// B images: img_i = img + i * img_n, out_i = out + i * out_n (elements).
typedef struct {
  int64_t B, img_n, out_n;
} Images;

static void conv_gather(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *wmat, int64_t M,
                        const float *img, float *out, Images im, float beta, float *cols) {
  if (implicit(ctx, on, g, 0)) {
    SAMX_ON_DEVICE(on, (void)0, samx_cuda_conv_gather_bf16(wmat, M, img, im.img_n, out, im.out_n, im.B, beta, g));
    return;
  }
  for (int64_t i = 0; i < im.B; i++)
    samx_gemm_f32(ctx, on, 0, 0, M, g.Ho * g.Wo, cols_rows(g), wmat, im2col(on, g, img + i * im.img_n, cols), beta,
                  out + i * im.out_n);
}

// Here `in` is [M, N] per image (in_i = in + i * im.out_n) and img the adjoint's output.
static void conv_scatter(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *wmat, int64_t M,
                         const float *in, float *img, Images im, int accumulate, float *cols) {
  int64_t K = cols_rows(g), N = g.Ho * g.Wo;
  if (implicit(ctx, on, g, 1)) {
    SAMX_ON_DEVICE(on, (void)0,
                   samx_cuda_conv_scatter_bf16(wmat, M, in, im.out_n, img, im.img_n, im.B, accumulate, g));
    return;
  }
  for (int64_t i = 0; i < im.B; i++) {
    const float *in_i = in + i * im.out_n;
    float *img_i = img + i * im.img_n;
    if (cols_are_image(g)) {
      samx_gemm_f32(ctx, on, 1, 0, K, N, M, wmat, in_i, accumulate ? 1.0f : 0.0f, img_i);
      continue;
    }
    samx_gemm_f32(ctx, on, 1, 0, K, N, M, wmat, in_i, 0.0f, cols);
    SAMX_ON_DEVICE(on, samx_cpu_conv_col2im(cols, img_i, accumulate, g),
                   samx_cuda_conv_col2im(cols, img_i, accumulate, g));
  }
}

// Here a is [M, N] per image (a_i = a + i * im.out_n).
static void conv_weight_grad(SamxCtx *ctx, const SamxTensor *on, SamxConvGeom g, const float *a, int64_t M,
                             const float *img, Images im, float *gw, float *cols) {
  if (implicit(ctx, on, g, 0)) {
    SAMX_ON_DEVICE(on, (void)0, samx_cuda_conv_weight_grad_bf16(a, M, im.out_n, img, im.img_n, im.B, gw, g));
    return;
  }
  for (int64_t i = 0; i < im.B; i++)
    samx_gemm_f32(ctx, on, 0, 1, M, cols_rows(g), g.Ho * g.Wo, a + i * im.out_n,
                  im2col(on, g, img + i * im.img_n, cols), 1.0f, gw);
}

// y [B, C, HW] = act(y32 + bias) (kernels/conv.h samx_conv_bias_act; act -1: the plain bias add, y = y32
// in place), stored in f32 or bf16.
static void bias_act(const SamxTensor *on, const float *y32, const float *bias, int act, void *y, int y_bf16,
                     int64_t B, int64_t C, int64_t HW) {
  SAMX_ON_DEVICE(on, samx_cpu_conv_bias_act(y32, bias, act, y, y_bf16, B, C, HW),
                 samx_cuda_conv_bias_act(y32, bias, act, y, y_bf16, B, C, HW));
}

// Elements per image of a [B, C, H, W] tensor.
static int64_t image_numel(const SamxTensor *t) { return t->shape[1] * t->shape[2] * t->shape[3]; }

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
  int64_t B = x->shape[0], M = w->shape[0];
  int64_t y_hw = y->shape[2] * y->shape[3];
  if (gb)
    SAMX_ON_DEVICE(x, samx_cpu_conv_bias_grad(gy, samx_f32(gb), B, y->shape[1], y_hw),
                   samx_cuda_conv_bias_grad(gy, samx_f32(gb), B, y->shape[1], y_hw));
  if (!gx && !gw) return;
  // conv2d: x is the conv's image and y its [M, N] product; the transpose swaps the two roles.
  const SamxTensor *img_t = a->transposed ? y : x, *mat_t = a->transposed ? x : y;
  const float *img = a->transposed ? gy : samx_f32(x), *mat = a->transposed ? samx_f32(x) : gy;
  Images im = {B, image_numel(img_t), image_numel(mat_t)};
  int cols_needed = (gw && needs_cols(ctx, x, a->g, 0)) || (gx && needs_cols(ctx, x, a->g, !a->transposed));
  float *cols = cols_scratch(ctx, a->g, cols_needed);
  if (gw) conv_weight_grad(ctx, x, a->g, mat, M, img, im, samx_f32(gw), cols);
  if (!gx) return;
  if (a->transposed)
    conv_gather(ctx, x, a->g, samx_f32(w), M, gy, samx_f32(gx), im, 1.0f, cols);
  else
    conv_scatter(ctx, x, a->g, samx_f32(w), M, gy, samx_f32(gx), im, 1, cols);
}

// x's dims as [B, Cin, H, W]: channels_last x is [B, H, W, Cin].
static SamxShape nchw_shape(const SamxTensor *x, int channels_last) {
  if (!channels_last) return samx_shape_of(x);
  return SHAPE(x->shape[0], x->shape[3], x->shape[1], x->shape[2]);
}

// w is [Cout, Cin, kh, kw] for conv2d and [Cin, Cout, kh, kw] for the transpose.
// x is F32, or BF16 where bf16_x_ok (the fused transpose of inference); [B, H, W, Cin] when channels_last.
static void conv_check(const char *op, SamxTensor *x, SamxTensor *w, SamxTensor *b, int transposed, int stride,
                       int pad, int bf16_x_ok, int channels_last) {
  char sx[96], sw[96];
  if (!bf16_x_ok || x->dtype != SAMX_BF16) samx_check_f32(op, x);
  samx_check_f32(op, w);
  samx_check_same_device(op, x, w);
  if (x->ndim != 4 || w->ndim != 4 || w->shape[transposed ? 0 : 1] != nchw_shape(x, channels_last).d[1])
    SAMX_DIE("%s: x %s and w %s do not fit (x %s; w %s)", op, samx_shape_str(samx_shape_of(x), sx, sizeof sx),
             samx_shape_str(samx_shape_of(w), sw, sizeof sw), channels_last ? "[B, H, W, Cin]" : "[B, Cin, H, W]",
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
  conv_check("conv2d", x, w, b, 0, stride, pad, 0, 0);
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
  Images im = {B, image_numel(x), image_numel(y)};
  float *cols = cols_scratch(ctx, g, needs_cols(ctx, x, g, 0));
  conv_gather(ctx, x, g, samx_f32(w), Cout, samx_f32(x), samx_f32(y), im, 0.0f, cols);
  if (b)
    bias_act(x, samx_f32(y), samx_f32(b), -1, y->data, 0, B, Cout, g.Ho * g.Wo);
  return conv_record(ctx, "conv2d", x, w, b, y, g, 0);
}

// The geometry of the conv2d whose adjoint is conv_transpose2d(x, w, stride, pad), x of NCHW dims xs
// (conv_check'ed).
static SamxConvGeom transpose_geom(const char *op, SamxShape xs, const SamxTensor *w, int stride, int pad) {
  int64_t Ho = (xs.d[2] - 1) * stride - 2 * (int64_t)pad + w->shape[2];
  int64_t Wo = (xs.d[3] - 1) * stride - 2 * (int64_t)pad + w->shape[3];
  if (Ho <= 0 || Wo <= 0) {
    char sx[96], sw[96];
    SAMX_DIE("%s: x %s (as [B, Cin, H, W]), w %s, stride %d, pad %d give an empty output", op,
             samx_shape_str(xs, sx, sizeof sx), samx_shape_str(samx_shape_of(w), sw, sizeof sw), stride, pad);
  }
  return (SamxConvGeom){w->shape[1], Ho, Wo, w->shape[2], w->shape[3], stride, pad, xs.d[2], xs.d[3]};
}

SamxTensor *samx_conv_transpose2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad) {
  conv_check("conv_transpose2d", x, w, b, 1, stride, pad, 0, 0);
  SamxConvGeom g = transpose_geom("conv_transpose2d", samx_shape_of(x), w, stride, pad);
  int64_t B = x->shape[0], Cin = x->shape[1];
  SamxTensor *y = samx_new(ctx, SAMX_F32, SHAPE(B, g.C, g.H, g.W));
  Images im = {B, image_numel(y), image_numel(x)};
  float *cols = cols_scratch(ctx, g, needs_cols(ctx, x, g, 1));
  conv_scatter(ctx, x, g, samx_f32(w), Cin, samx_f32(x), samx_f32(y), im, 0, cols);
  if (b)
    bias_act(x, samx_f32(y), samx_f32(b), -1, y->data, 0, B, g.C, g.H * g.W);
  return conv_record(ctx, "conv_transpose2d", x, w, b, y, g, 1);
}

// x as f32 [B, Cin, H, W] for the explicit path: x itself, or a scratch copy (a BF16 x widened
// exactly, a channels-last x permuted: the same values, so the same results as on an NCHW x).
static const float *explicit_input(SamxCtx *ctx, SamxTensor *x, int channels_last) {
  if (channels_last) x = samx_permute(ctx, x, (int[]){0, 3, 1, 2});
  if (x->dtype == SAMX_F32) return samx_f32(x);
  float *x32 = samx_f32(samx_new(ctx, SAMX_F32, samx_shape_of(x)));
  SAMX_ON_DEVICE(x, samx_cpu_elementwise_cast(x->data, SAMX_BF16, x32, SAMX_F32, x->numel),
                 samx_cuda_elementwise_cast(x->data, SAMX_BF16, x32, SAMX_F32, x->numel));
  return x32;
}

// On CUDA in bf16 with disjoint taps that cover the output (SAM's 2x2/2 upscaling): one implicit GEMM
// reading x as it is (either layout, through its strides) and storing act(. + b) in `out`. Otherwise
// the explicit path on an f32 NCHW x (explicit_input) into an f32 scratch, then the same epilogue by a
// pass over it: the CPU's reference.
static SamxTensor *conv_transpose_act(SamxCtx *ctx, const char *op, SamxTensor *x, int channels_last, SamxTensor *w,
                                      SamxTensor *b, int stride, int pad, int act, SamxDType out) {
  conv_check(op, x, w, b, 1, stride, pad, 1, channels_last);
  SAMX_ASSERT(out == SAMX_F32 || out == SAMX_BF16, "%s: out must be F32 or BF16, not %s", op, samx_dtype_name(out));
  SamxTensor *in[3] = {x, w, b};
  samx_check_bf16_inference(op, ctx, 3, in);
  SamxConvGeom g = transpose_geom(op, nchw_shape(x, channels_last), w, stride, pad);
  int64_t B = x->shape[0], Cin = w->shape[0];
  SamxTensor *y = samx_new(ctx, out, SHAPE(B, g.C, g.H, g.W));
  int y_bf16 = out == SAMX_BF16;
  const float *bias = b ? samx_f32(b) : NULL;
  if (implicit(ctx, x, g, 1) && samx_conv_taps_disjoint(g) && samx_conv_taps_cover(g)) {
    SAMX_ON_DEVICE(x, (void)0,
                   samx_cuda_conv_transpose_fused_bf16(samx_f32(w), Cin, x->data, x->dtype == SAMX_BF16,
                                                       channels_last, x->numel / B, y->data, y_bf16, image_numel(y),
                                                       B, bias, act, g));
    return y;
  }
  size_t mark = ctx->act.used;  // the scratch below is dead once the epilogue is queued
  const float *x32 = explicit_input(ctx, x, channels_last);
  float *y32 = y_bf16 ? samx_f32(samx_new(ctx, SAMX_F32, samx_shape_of(y))) : samx_f32(y);
  conv_scatter(ctx, x, g, samx_f32(w), Cin, x32, y32, (Images){B, image_numel(y), x->numel / B}, 0,
               cols_scratch(ctx, g, needs_cols(ctx, x, g, 1)));
  bias_act(x, y32, bias, act, y->data, y_bf16, B, g.C, g.H * g.W);
  samx_arena_rewind(&ctx->act, mark);
  return y;
}

SamxTensor *samx_conv_transpose2d_act(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad,
                                      int act, SamxDType out) {
  return conv_transpose_act(ctx, "conv_transpose2d_act", x, 0, w, b, stride, pad, act, out);
}

SamxTensor *samx_conv_transpose2d_act_nhwc(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride,
                                           int pad, int act, SamxDType out) {
  return conv_transpose_act(ctx, "conv_transpose2d_act_nhwc", x, 1, w, b, stride, pad, act, out);
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
