// conv2d, conv_transpose2d and bilinear resizing: naive double references (direct convolution sums,
// the transpose as a direct scatter, the bilinear formula), finite differences, PyTorch, CUDA vs CPU.
#include "../harness.h"

// conv2d: x [B, Cin, H, W], w [Cout, Cin, kh, kw]; transpose: w [Cin, Cout, kh, kw].
typedef struct {
  int64_t B, Cin, H, W, Cout, kh, kw;
  int stride, pad, bias;
} ConvCase;

static SamxTensor *run_conv2d(SamxCtx *c, SamxTensor **in, const void *args) {
  const ConvCase *a = (const ConvCase *)args;
  return samx_conv2d(c, in[0], in[1], a->bias ? in[2] : NULL, a->stride, a->pad);
}
static SamxTensor *run_conv_transpose2d(SamxCtx *c, SamxTensor **in, const void *args) {
  const ConvCase *a = (const ConvCase *)args;
  return samx_conv_transpose2d(c, in[0], in[1], a->bias ? in[2] : NULL, a->stride, a->pad);
}

static void ref_conv2d(const double *const *in, double *out, const void *args) {
  const ConvCase *a = (const ConvCase *)args;
  const double *x = in[0], *w = in[1];
  int64_t Ho = (a->H + 2 * a->pad - a->kh) / a->stride + 1, Wo = (a->W + 2 * a->pad - a->kw) / a->stride + 1;
  for (int64_t b = 0; b < a->B; b++)
    for (int64_t co = 0; co < a->Cout; co++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
          double s = a->bias ? in[2][co] : 0;
          for (int64_t ci = 0; ci < a->Cin; ci++)
            for (int64_t ky = 0; ky < a->kh; ky++)
              for (int64_t kx = 0; kx < a->kw; kx++) {
                int64_t iy = oy * a->stride - a->pad + ky, ix = ox * a->stride - a->pad + kx;
                if (iy >= 0 && iy < a->H && ix >= 0 && ix < a->W)
                  s += x[((b * a->Cin + ci) * a->H + iy) * a->W + ix] *
                       w[((co * a->Cin + ci) * a->kh + ky) * a->kw + kx];
              }
          out[((b * a->Cout + co) * Ho + oy) * Wo + ox] = s;
        }
}

// Every input pixel spreads x * w over a kh x kw window of the output, stride apart, shifted by -pad.
static void ref_conv_transpose2d(const double *const *in, double *out, const void *args) {
  const ConvCase *a = (const ConvCase *)args;
  const double *x = in[0], *w = in[1];
  int64_t Ho = (a->H - 1) * a->stride - 2 * a->pad + a->kh, Wo = (a->W - 1) * a->stride - 2 * a->pad + a->kw;
  for (int64_t b = 0; b < a->B; b++)
    for (int64_t co = 0; co < a->Cout; co++)
      for (int64_t k = 0; k < Ho * Wo; k++) out[(b * a->Cout + co) * Ho * Wo + k] = a->bias ? in[2][co] : 0;
  for (int64_t b = 0; b < a->B; b++)
    for (int64_t ci = 0; ci < a->Cin; ci++)
      for (int64_t iy = 0; iy < a->H; iy++)
        for (int64_t ix = 0; ix < a->W; ix++)
          for (int64_t co = 0; co < a->Cout; co++)
            for (int64_t ky = 0; ky < a->kh; ky++)
              for (int64_t kx = 0; kx < a->kw; kx++) {
                int64_t oy = iy * a->stride - a->pad + ky, ox = ix * a->stride - a->pad + kx;
                if (oy >= 0 && oy < Ho && ox >= 0 && ox < Wo)
                  out[((b * a->Cout + co) * Ho + oy) * Wo + ox] +=
                      x[((b * a->Cin + ci) * a->H + iy) * a->W + ix] *
                      w[((ci * a->Cout + co) * a->kh + ky) * a->kw + kx];
              }
}

typedef struct {
  int64_t B, C, H, W, Ho, Wo;
} ResizeCase;

static SamxTensor *run_resize(SamxCtx *c, SamxTensor **in, const void *args) {
  const ResizeCase *a = (const ResizeCase *)args;
  return samx_resize_bilinear(c, in[0], a->Ho, a->Wo);
}

// Source coordinate (dst + 0.5) * in / out - 0.5, clamped at 0; neighbours floor and floor + 1
// (the last index repeats at the border).
static void ref_lerp(int64_t dst, int64_t in, int64_t out, int64_t *i0, int64_t *i1, double *l1) {
  double src = (dst + 0.5) * (double)in / (double)out - 0.5;
  if (src < 0) src = 0;
  *i0 = (int64_t)floor(src);
  *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
  *l1 = src - (double)*i0;
}

static void ref_resize(const double *const *in, double *out, const void *args) {
  const ResizeCase *a = (const ResizeCase *)args;
  for (int64_t p = 0; p < a->B * a->C; p++) {
    const double *x = in[0] + p * a->H * a->W;
    for (int64_t oy = 0; oy < a->Ho; oy++)
      for (int64_t ox = 0; ox < a->Wo; ox++) {
        int64_t y0, y1, x0, x1;
        double ly, lx;
        ref_lerp(oy, a->H, a->Ho, &y0, &y1, &ly);
        ref_lerp(ox, a->W, a->Wo, &x0, &x1, &lx);
        out[(p * a->Ho + oy) * a->Wo + ox] = (1 - ly) * ((1 - lx) * x[y0 * a->W + x0] + lx * x[y0 * a->W + x1]) +
                                             ly * ((1 - lx) * x[y1 * a->W + x0] + lx * x[y1 * a->W + x1]);
      }
  }
}

static SamxTensor *run_pool(SamxCtx *c, SamxTensor **in, const void *args) {
  (void)args;
  return samx_avg_pool2_ceil(c, in[0]);
}

// avg_pool2d(2, 2, ceil_mode=True): the mean of the window's elements inside the plane (a partial last
// window has 1 or 2 of them: torch's divisor when padding is 0). ResizeCase's Ho, Wo are ceil(H/2), ceil(W/2).
static void ref_pool(const double *const *in, double *out, const void *args) {
  const ResizeCase *a = (const ResizeCase *)args;
  for (int64_t p = 0; p < a->B * a->C; p++)
    for (int64_t oy = 0; oy < a->Ho; oy++)
      for (int64_t ox = 0; ox < a->Wo; ox++) {
        double s = 0;
        int n = 0;
        for (int64_t y = 2 * oy; y < 2 * oy + 2 && y < a->H; y++)
          for (int64_t x = 2 * ox; x < 2 * ox + 2 && x < a->W; x++) s += in[0][(p * a->H + y) * a->W + x], n++;
        out[(p * a->Ho + oy) * a->Wo + ox] = s / n;
      }
}

// name, B, Cin, H, W, Cout, kh, kw, stride, pad, bias, x needs grad, w needs grad, torch
#define CONV2D(nm, B, Ci, H, W, Co, KH, KW, S, P, BIAS, GX, GW, T)                                            \
  {.name = nm, .n_in = (BIAS) ? 3 : 2, .in = {{SHAPE(B, Ci, H, W), GX}, {SHAPE(Co, Ci, KH, KW), GW}, {SHAPE(Co), 1}}, \
   .run = run_conv2d, .ref = ref_conv2d, .args = &(ConvCase){B, Ci, H, W, Co, KH, KW, S, P, BIAS}, .torch = T}
#define CONVT(nm, B, Ci, H, W, Co, KH, KW, S, P, BIAS, GX, GW, T)                                             \
  {.name = nm, .n_in = (BIAS) ? 3 : 2, .in = {{SHAPE(B, Ci, H, W), GX}, {SHAPE(Ci, Co, KH, KW), GW}, {SHAPE(Co), 1}}, \
   .run = run_conv_transpose2d, .ref = ref_conv_transpose2d,                                                   \
   .args = &(ConvCase){B, Ci, H, W, Co, KH, KW, S, P, BIAS}, .torch = T}
#define RESIZE(nm, B, C, H, W, HO, WO)                                                                   \
  {.name = nm, .n_in = 1, .in = {{SHAPE(B, C, H, W), 1}}, .run = run_resize, .ref = ref_resize,          \
   .args = &(ResizeCase){B, C, H, W, HO, WO}, .torch = 1}

#define AVGPOOL(nm, B, C, H, W)                                                                      \
  {.name = nm, .n_in = 1, .in = {{SHAPE(B, C, H, W), 1}}, .run = run_pool, .ref = ref_pool,                \
   .args = &(ResizeCase){B, C, H, W, ((H) + 1) / 2, ((W) + 1) / 2}, .torch = 1}

static const OpCase cases[] = {
    CONV2D("conv2d_k1", 2, 5, 4, 6, 3, 1, 1, 1, 0, 1, 1, 1, 1),
    CONV2D("conv2d_k3p1", 2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1),
    CONV2D("conv2d_k3p1_nobias", 1, 2, 6, 5, 3, 3, 3, 1, 1, 0, 1, 1, 1),
    CONV2D("conv2d_k2s2", 2, 4, 6, 8, 3, 2, 2, 2, 0, 1, 1, 1, 1),
    CONV2D("conv2d_k4s4_patch", 1, 3, 12, 8, 5, 4, 4, 4, 0, 1, 1, 1, 1),
    CONV2D("conv2d_k3s2_odd", 2, 3, 7, 6, 2, 3, 3, 2, 0, 0, 1, 1, 1),
    CONV2D("conv2d_k3s2p1_odd", 1, 2, 5, 7, 3, 3, 3, 2, 1, 1, 1, 1, 1),
    CONV2D("conv2d_k1x3p1", 1, 3, 4, 5, 2, 1, 3, 1, 1, 1, 1, 1, 1),
    CONV2D("conv2d_frozen_w", 2, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0),
    CONV2D("conv2d_k1_frozen_x", 3, 4, 3, 5, 2, 1, 1, 1, 0, 0, 0, 1, 0),
    CONVT("conv_transpose2d_k2s2", 2, 4, 3, 5, 3, 2, 2, 2, 0, 1, 1, 1, 1),
    CONVT("conv_transpose2d_k3s2p1", 1, 3, 4, 3, 2, 3, 3, 2, 1, 1, 1, 1, 1),
    CONVT("conv_transpose2d_k3s1p1_nobias", 1, 2, 4, 4, 3, 3, 3, 1, 1, 0, 1, 1, 1),
    CONVT("conv_transpose2d_k1", 2, 3, 3, 4, 2, 1, 1, 1, 0, 1, 1, 1, 1),
    CONVT("conv_transpose2d_k3x2s2", 1, 2, 3, 4, 3, 3, 2, 2, 0, 1, 1, 1, 1),
    CONVT("conv_transpose2d_k2s2_frozen_x", 2, 2, 2, 3, 3, 2, 2, 2, 0, 0, 0, 1, 0),
    // Rows wider than the CPU col2im's 512-column span (backward of a conv, forward of a conv-transpose).
    CONV2D("conv2d_k3p1_wide", 1, 1, 2, 520, 2, 3, 3, 1, 1, 1, 1, 1, 1),
    CONVT("conv_transpose2d_k2s2_wide", 1, 1, 2, 300, 1, 2, 2, 2, 0, 1, 1, 1, 1),
    RESIZE("resize_up", 2, 3, 5, 7, 12, 16),
    RESIZE("resize_down", 1, 2, 12, 16, 5, 7),
    RESIZE("resize_same", 1, 2, 4, 5, 4, 5),
    RESIZE("resize_mixed", 1, 1, 6, 5, 3, 9),
    RESIZE("resize_to_1x1", 1, 2, 4, 3, 1, 1),
    // P2SAM's prior encoder: nn.AvgPool2d(2, 2, ceil_mode=True) on even and odd sides
    AVGPOOL("avg_pool2_ceil_even", 2, 3, 6, 4),
    AVGPOOL("avg_pool2_ceil_odd", 1, 2, 5, 7),
    AVGPOOL("avg_pool2_ceil_1x3", 1, 2, 1, 3),
    AVGPOOL("avg_pool2_ceil_odd_square", 2, 1, 9, 9),
};

int main(int argc, char **argv) { return samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases); }
