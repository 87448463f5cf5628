// Convolutions as GEMMs over column buffers, and bilinear resizing.
//
// conv2d of one image x [C, H, W] with w [Cout, C*kh*kw] is y = w . cols, where
// cols [C*kh*kw, Ho*Wo] = im2col(x) holds at row (c, ky, kx), column (oy, ox) the input value
// x[c, oy*stride - pad + ky, ox*stride - pad + kx] (0 in the padding). col2im is its adjoint: every
// input position receives the sum of the cols entries that read it. conv_transpose2d is the adjoint
// of conv2d, so it uses the same two pieces the other way round.
//
// defines: SamxConvGeom, the per-element im2col/col2im and bilinear math shared by CPU and CUDA,
// and the launchers (one image for im2col/col2im; row-major GEMM; per-channel bias; resize).
#ifndef SAMX_KERNELS_CONV_H
#define SAMX_KERNELS_CONV_H

#include "../engine/dtype.h"
#include "activation.h"
#include "common.h"

// One image of a conv2d: its input [C, H, W], kernel kh x kw, and output [., Ho, Wo].
typedef struct {
  int64_t C, H, W;
  int64_t kh, kw, stride, pad;
  int64_t Ho, Wo;
} SamxConvGeom;

SAMX_HD int64_t samx_conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

// cols[row, col] with row = (c * kh + ky) * kw + kx and col = oy * Wo + ox, in two halves that an
// implicit GEMM computes once per row and once per column of its tile, not once per element:
// the row's tap (c's offset in the image and the kernel offsets), the column's window (its top-left
// input position, which may lie in the padding).
typedef struct {
  int64_t off;
  int64_t ky, kx;
} SamxConvTap;
typedef struct {
  int64_t y, x;
} SamxConvAt;

SAMX_HD SamxConvTap samx_conv_tap(SamxConvGeom g, int64_t row) {
  SamxConvTap t = {(row / (g.kw * g.kh)) * g.H * g.W, (row / g.kw) % g.kh, row % g.kw};
  return t;
}
SAMX_HD SamxConvAt samx_conv_window(SamxConvGeom g, int64_t col) {
  SamxConvAt a = {(col / g.Wo) * g.stride - g.pad, (col % g.Wo) * g.stride - g.pad};
  return a;
}
// Where in the image cols[row, col] lies (its tap and window), or -1 in the padding.
SAMX_HD int64_t samx_conv_tap_index(SamxConvGeom g, SamxConvTap t, SamxConvAt a) {
  int64_t iy = a.y + t.ky, ix = a.x + t.kx;
  return iy < 0 || iy >= g.H || ix < 0 || ix >= g.W ? -1 : t.off + iy * g.W + ix;
}
SAMX_HD float samx_conv_tap_at(const float *x, SamxConvGeom g, SamxConvTap t, SamxConvAt a) {
  int64_t i = samx_conv_tap_index(g, t, a);
  return i < 0 ? 0.0f : x[i];
}
// Whether no two cols entries of an image lie at the same position (the kernel tiles the image:
// its size is its stride), so that col2im only moves each entry to its place, adding nothing.
SAMX_HD int samx_conv_taps_disjoint(SamxConvGeom g) { return g.kh == g.stride && g.kw == g.stride; }
// With disjoint taps, whether they reach every image position: they cover rows [-pad, Ho * stride -
// pad), so not the last ones a strided conv2d leaves unread when its stride does not divide H + 2 pad - kh.
SAMX_HD int samx_conv_taps_cover(SamxConvGeom g) {
  return g.Ho * g.stride - g.pad >= g.H && g.Wo * g.stride - g.pad >= g.W;
}
// A fused convolution's epilogue: act(v + bias) with act a SamxAct, or v + bias when act < 0; the CPU's
// explicit path (samx_cpu_conv_bias_act) and the CUDA implicit GEMM's store apply this one function.
SAMX_HD float samx_conv_bias_act(float v, float bias, int act) {
  v += bias;
  return act < 0 ? v : samx_act_fwd(act, v);
}

// Stores v at y[i], y f32 or, with y_bf16, a bf16 (uint16_t) array: v rounded once, to nearest even.
SAMX_HD void samx_conv_store(void *y, int y_bf16, int64_t i, float v) {
  if (y_bf16)
    ((uint16_t *)y)[i] = samx_f32_to_bf16(v);
  else
    ((float *)y)[i] = v;
}

SAMX_HD float samx_im2col_at(const float *x, SamxConvGeom g, int64_t row, int64_t col) {
  return samx_conv_tap_at(x, g, samx_conv_tap(g, row), samx_conv_window(g, col));
}

// Sum of the cols entries that read input position (c, iy, ix): kernel offsets ky with
// iy + pad - ky a non-negative multiple of stride, i.e. ky = (iy + pad) mod stride, then every
// stride-th (the output row oy falls as ky grows).
SAMX_HD float samx_col2im_at(const float *cols, SamxConvGeom g, int64_t c, int64_t iy, int64_t ix) {
  int64_t n_cols = g.Ho * g.Wo;
  float s = 0.0f;
  for (int64_t ky = (iy + g.pad) % g.stride; ky < g.kh; ky += g.stride) {
    int64_t oy = (iy + g.pad - ky) / g.stride;
    if (oy < 0) break;
    if (oy >= g.Ho) continue;
    for (int64_t kx = (ix + g.pad) % g.stride; kx < g.kw; kx += g.stride) {
      int64_t ox = (ix + g.pad - kx) / g.stride;
      if (ox < 0) break;
      if (ox >= g.Wo) continue;
      s += cols[((c * g.kh + ky) * g.kw + kx) * n_cols + oy * g.Wo + ox];
    }
  }
  return s;
}

// The adjoint (col2im of w^T . in, in [M, Ho*Wo]) as one product, for the implicit GEMM: input
// position pix = iy * W + ix receives, over r = (m * kh + ky) * kw + kx, w[m, (c, ky, kx)] times
// in[m, oy, ox] with oy = (iy + pad - ky) / stride when that divides and lies in [0, Ho) (likewise
// ox); otherwise the term is 0. Split like im2col: r's tap (m's offset in `in`, ky, kx), pix's
// padded position (iy + pad, ix + pad), and w's offset of (m, tap) and of c.
SAMX_HD SamxConvTap samx_conv_adjoint_tap(SamxConvGeom g, int64_t r) {
  SamxConvTap t = {(r / (g.kw * g.kh)) * g.Ho * g.Wo, (r / g.kw) % g.kh, r % g.kw};
  return t;
}
SAMX_HD SamxConvAt samx_conv_adjoint_pixel(SamxConvGeom g, int64_t pix) {
  SamxConvAt a = {pix / g.W + g.pad, pix % g.W + g.pad};
  return a;
}
SAMX_HD float samx_conv_adjoint_tap_at(const float *in, SamxConvGeom g, SamxConvTap t, SamxConvAt a) {
  int64_t ty = a.y - t.ky, tx = a.x - t.kx;
  if (ty < 0 || tx < 0 || ty % g.stride || tx % g.stride) return 0.0f;
  int64_t oy = ty / g.stride, ox = tx / g.stride;
  if (oy >= g.Ho || ox >= g.Wo) return 0.0f;
  return in[t.off + oy * g.Wo + ox];
}
// w [M, C*kh*kw] at (m, c, tap) = w[adjoint_w_tap(r) + c * kh * kw].
SAMX_HD int64_t samx_conv_adjoint_w_tap(SamxConvGeom g, int64_t r) {
  int64_t taps = g.kh * g.kw;
  return (r / taps) * g.C * taps + r % taps;
}

// torch's bilinear source position for output index dst (align_corners=False): the two input
// indices it falls between and the weight of the second. The source is clamped at 0, and i1 stays
// at i0 on the last row/column.
typedef struct {
  int64_t i0, i1;
  float l1;
} SamxLerp;

SAMX_HD SamxLerp samx_bilinear_src(int64_t dst, int64_t in, int64_t out) {
  float src = ((float)dst + 0.5f) * ((float)in / (float)out) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  SamxLerp l;
  l.i0 = (int64_t)src;
  if (l.i0 > in - 1) l.i0 = in - 1;
  l.i1 = l.i0 < in - 1 ? l.i0 + 1 : l.i0;
  l.l1 = src - (float)l.i0;
  return l;
}

// The four input positions (within a plane [H, W]) that output (oy, ox) of [Ho, Wo] interpolates,
// and their weights: forward gathers with them, backward scatters with them.
SAMX_HD void samx_bilinear_corners(int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t oy, int64_t ox,
                                   int64_t idx[4], float wt[4]) {
  SamxLerp ly = samx_bilinear_src(oy, H, Ho), lx = samx_bilinear_src(ox, W, Wo);
  idx[0] = ly.i0 * W + lx.i0, wt[0] = (1.0f - ly.l1) * (1.0f - lx.l1);
  idx[1] = ly.i0 * W + lx.i1, wt[1] = (1.0f - ly.l1) * lx.l1;
  idx[2] = ly.i1 * W + lx.i0, wt[2] = ly.l1 * (1.0f - lx.l1);
  idx[3] = ly.i1 * W + lx.i1, wt[3] = ly.l1 * lx.l1;
}

SAMX_HD float samx_bilinear_at(const float *x, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t oy, int64_t ox) {
  int64_t idx[4];
  float wt[4];
  samx_bilinear_corners(H, W, Ho, Wo, oy, ox, idx, wt);
  return wt[0] * x[idx[0]] + wt[1] * x[idx[1]] + wt[2] * x[idx[2]] + wt[3] * x[idx[3]];
}

// AvgPool2d(2, stride 2, ceil_mode=True, padding 0) of one [H, W] plane at output (oy, ox), output
// [ceil(H / 2), ceil(W / 2)]: the mean of the window's elements that lie inside the plane. torch
// (aten/src/ATen/native/cpu/AvgPoolKernel.cpp) clips the window to the input plus padding, so with
// padding 0 a partial last window is divided by its clipped size (1 or 2), count_include_pad or not.
SAMX_HD int64_t samx_avg_pool2_count(int64_t H, int64_t W, int64_t oy, int64_t ox) {
  int64_t h = 2 * oy + 2 <= H ? 2 : H - 2 * oy, w = 2 * ox + 2 <= W ? 2 : W - 2 * ox;
  return h * w;
}
SAMX_HD float samx_avg_pool2_at(const float *x, int64_t H, int64_t W, int64_t oy, int64_t ox) {
  float s = 0.0f;
  for (int64_t y = 2 * oy; y < 2 * oy + 2 && y < H; y++)
    for (int64_t xx = 2 * ox; xx < 2 * ox + 2 && xx < W; xx++) s += x[y * W + xx];
  return s / (float)samx_avg_pool2_count(H, W, oy, ox);
}
// Its adjoint at input (iy, ix): the gradient of the one window that holds it, over that window's count.
SAMX_HD float samx_avg_pool2_grad_at(const float *gy, int64_t H, int64_t W, int64_t iy, int64_t ix) {
  int64_t oy = iy / 2, ox = ix / 2, Wo = (W + 1) / 2;
  return gy[oy * Wo + ox] / (float)samx_avg_pool2_count(H, W, oy, ox);
}

// One image: cols [C*kh*kw, Ho*Wo] = im2col(x [C, H, W]).
SAMX_EXTERN_C void samx_cpu_conv_im2col(const float *x, float *cols, SamxConvGeom g);
// One image: x [C, H, W] = col2im(cols), or x += col2im(cols) when accumulate.
SAMX_EXTERN_C void samx_cpu_conv_col2im(const float *cols, float *x, int accumulate, SamxConvGeom g);
// y [B, C, HW] = samx_conv_bias_act(y32, bias[c] or 0 when bias is NULL, act), stored through
// samx_conv_store; y may be y32 when it is f32 (act -1 there: the plain y += bias of conv2d and
// conv_transpose2d).
SAMX_EXTERN_C void samx_cpu_conv_bias_act(const float *y32, const float *bias, int act, void *y, int y_bf16, int64_t B,
                                          int64_t C, int64_t HW);
// gbias[c] += sum over b, hw of gy [B, C, HW] (a fixed summation order).
SAMX_EXTERN_C void samx_cpu_conv_bias_grad(const float *gy, float *gbias, int64_t B, int64_t C, int64_t HW);
// planes of [H, W] -> [Ho, Wo]; the backward adds into gx.
SAMX_EXTERN_C void samx_cpu_resize_bilinear_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W,
                                                int64_t Ho, int64_t Wo);
SAMX_EXTERN_C void samx_cpu_resize_bilinear_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W,
                                                int64_t Ho, int64_t Wo);
// planes of [H, W] -> [ceil(H/2), ceil(W/2)] (samx_avg_pool2_at); the backward adds into gx.
SAMX_EXTERN_C void samx_cpu_avg_pool2_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W);
SAMX_EXTERN_C void samx_cpu_avg_pool2_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W);

// Implicit-GEMM convolution on tensor cores (kernels/cuda/conv_bf16.cu): the three pieces of a
// convolution (engine/ops_conv.c) without a column buffer, for B images at once. Operands are the f32
// values rounded to bf16 as they are read; products accumulate in fp32; outputs are f32. x_img, y_img,
// ... are the elements per image.
//   gather:      y_i [M, Ho*Wo] = beta y_i + w [M, C*kh*kw] . im2col(x_i)
//   scatter:     x_i [C, H*W]  = (accumulate ? x_i : 0) + col2im(w^T . in_i [M, Ho*Wo]): at stride 1, a
//                gather over the taps that reach each input position; with disjoint taps (kernel =
//                stride, samx_conv_taps_disjoint: the transposed convolutions of SAM's decoder), the
//                GEMM w^T . in_i with K = M, whose entries are written straight to their places
//   weight_grad: gw [M, C*kh*kw] += sum_i a_i [M, Ho*Wo] . im2col(img_i)^T
SAMX_EXTERN_C void samx_cuda_conv_gather_bf16(const float *w, int64_t M, const float *x, int64_t x_img, float *y,
                                              int64_t y_img, int64_t B, float beta, SamxConvGeom g);
SAMX_EXTERN_C void samx_cuda_conv_scatter_bf16(const float *w, int64_t M, const float *in, int64_t in_img, float *x,
                                               int64_t x_img, int64_t B, int accumulate, SamxConvGeom g);
SAMX_EXTERN_C void samx_cuda_conv_weight_grad_bf16(const float *a, int64_t M, int64_t a_img, const float *img,
                                                   int64_t img_img, int64_t B, float *gw, SamxConvGeom g);
// The adjoint with disjoint taps covering its output (samx_conv_taps_cover), i.e. the transposed
// convolution y = conv_transpose2d(x, w) of SAM's upscaling, with bias and act fused into the store: x_i
// [M, h*w] f32 or bf16 (x_bf16), or [h*w, M] when channels_last, w [M, C*kh*kw] f32, y_i [C, H*W] =
// samx_conv_bias_act(., bias, act) stored through samx_conv_store (y_bf16). One launch for the B images;
// no buffer besides y.
SAMX_EXTERN_C void samx_cuda_conv_transpose_fused_bf16(const float *w, int64_t M, const void *x, int x_bf16,
                                                       int channels_last, int64_t x_img, void *y, int y_bf16,
                                                       int64_t y_img, int64_t B, const float *bias, int act,
                                                       SamxConvGeom g);
SAMX_EXTERN_C void samx_cuda_conv_im2col(const float *x, float *cols, SamxConvGeom g);
SAMX_EXTERN_C void samx_cuda_conv_col2im(const float *cols, float *x, int accumulate, SamxConvGeom g);
SAMX_EXTERN_C void samx_cuda_conv_bias_act(const float *y32, const float *bias, int act, void *y, int y_bf16, int64_t B,
                                           int64_t C, int64_t HW);
SAMX_EXTERN_C void samx_cuda_conv_bias_grad(const float *gy, float *gbias, int64_t B, int64_t C, int64_t HW);
// The CUDA backward scatters with atomicAdd (order of additions not fixed).
SAMX_EXTERN_C void samx_cuda_resize_bilinear_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W,
                                                 int64_t Ho, int64_t Wo);
SAMX_EXTERN_C void samx_cuda_resize_bilinear_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W,
                                                 int64_t Ho, int64_t Wo);
SAMX_EXTERN_C void samx_cuda_avg_pool2_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W);
SAMX_EXTERN_C void samx_cuda_avg_pool2_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W);

#endif
