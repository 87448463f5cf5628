
#include <string.h>

#include "../../engine/error.h"
#include "../conv.h"

// The range [ox0, ox1) of output columns whose input column ox * stride - pad + k lies in [x0, x1).
static void valid_cols(SamxConvGeom g, int64_t k, int64_t x0, int64_t x1, int64_t *ox0, int64_t *ox1) {
  const int64_t lo = x0 + g.pad - k, hi = x1 - 1 + g.pad - k;
  *ox0 = lo <= 0 ? 0 : (lo + g.stride - 1) / g.stride;
  *ox1 = hi < 0 ? 0 : (hi / g.stride + 1 < g.Wo ? hi / g.stride + 1 : g.Wo);
  if (*ox0 > *ox1) *ox0 = *ox1;
}

// samx_im2col_at row by row: per (c, ky, kx) row and output row oy, a zero-padded strided copy with
// its bounds computed once (per-element index arithmetic was several 64-bit divisions per value).
void samx_cpu_conv_im2col(const float *x, float *cols, SamxConvGeom g) {
  int64_t rows = g.C * g.kh * g.kw, n_cols = g.Ho * g.Wo;
#pragma omp parallel for schedule(static) if (rows * n_cols > 32768)
  for (int64_t row = 0; row < rows; row++) {
    const int64_t kx = row % g.kw, ky = (row / g.kw) % g.kh, c = row / (g.kw * g.kh);
    int64_t ox0, ox1;
    valid_cols(g, kx, 0, g.W, &ox0, &ox1);
    for (int64_t oy = 0; oy < g.Ho; oy++) {
      float *dst = cols + row * n_cols + oy * g.Wo;
      const int64_t iy = oy * g.stride - g.pad + ky;
      if (iy < 0 || iy >= g.H) {
        memset(dst, 0, (size_t)g.Wo * sizeof *dst);
        continue;
      }
      const int64_t at = (c * g.H + iy) * g.W - g.pad + kx;  // x index of ox = 0 (may be negative)
      for (int64_t ox = 0; ox < ox0; ox++) dst[ox] = 0.0f;
      if (g.stride == 1)
        memcpy(dst + ox0, x + at + ox0, (size_t)(ox1 - ox0) * sizeof *dst);
      else
        for (int64_t ox = ox0; ox < ox1; ox++) dst[ox] = x[at + ox * g.stride];
      for (int64_t ox = ox1; ox < g.Wo; ox++) dst[ox] = 0.0f;
    }
  }
}

// The scatter form of samx_col2im_at for input columns [x0, x0 + n) of row (c, iy): each (ky, kx)
// adds a strided run of cols, with the division-free bounds computed once per run instead of per
// element (the per-element gather spent its time in 64-bit divisions: 12% of a ViT-B decode). Every
// element still receives its terms in samx_col2im_at's order (ky, then kx, ascending) from 0, so
// the sums are the gather's and the CUDA kernel's.
#define COL2IM_SPAN 512

static void col2im_span(const float *cols, SamxConvGeom g, int64_t c, int64_t iy, int64_t x0, int64_t n, float *acc) {
  const int64_t n_cols = g.Ho * g.Wo;
  memset(acc, 0, (size_t)n * sizeof *acc);
  for (int64_t ky = (iy + g.pad) % g.stride; ky < g.kh; ky += g.stride) {
    const int64_t oy = (iy + g.pad - ky) / g.stride;
    if (oy < 0) break;
    if (oy >= g.Ho) continue;
    for (int64_t kx = 0; kx < g.kw; kx++) {
      int64_t ox0, ox1;
      valid_cols(g, kx, x0, x0 + n, &ox0, &ox1);
      const float *src = cols + ((c * g.kh + ky) * g.kw + kx) * n_cols + oy * g.Wo;
      for (int64_t ox = ox0; ox < ox1; ox++) acc[ox * g.stride - g.pad + kx - x0] += src[ox];
    }
  }
}

void samx_cpu_conv_col2im(const float *cols, float *x, int accumulate, SamxConvGeom g) {
  const int64_t spans = (g.W + COL2IM_SPAN - 1) / COL2IM_SPAN;
#pragma omp parallel for collapse(2) schedule(static) if (g.C * g.H * g.W > 32768)
  for (int64_t c = 0; c < g.C; c++)
    for (int64_t iy = 0; iy < g.H; iy++) {
      float *dst = x + (c * g.H + iy) * g.W;
      for (int64_t sp = 0; sp < spans; sp++) {
        const int64_t x0 = sp * COL2IM_SPAN, n = g.W - x0 < COL2IM_SPAN ? g.W - x0 : COL2IM_SPAN;
        float acc[COL2IM_SPAN];
        col2im_span(cols, g, c, iy, x0, n, acc);
        if (accumulate)
          for (int64_t i = 0; i < n; i++) dst[x0 + i] += acc[i];
        else
          memcpy(dst + x0, acc, (size_t)n * sizeof *acc);
      }
    }
}

// Plane by plane, each (b, c) plane with its one bias value: finding the channel of every element (a
// 64-bit division) took 2.3 ms of a [1, 64, 128, 128] output's pass, the pass itself 0.35 ms.
void samx_cpu_conv_bias_act(const float *y32, const float *bias, int act, void *y, int y_bf16, int64_t B, int64_t C,
                            int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > 32768)
  for (int64_t p = 0; p < B * C; p++) {
    const float b = bias ? bias[p % C] : 0.0f;
    for (int64_t i = p * HW; i < (p + 1) * HW; i++) samx_conv_store(y, y_bf16, i, samx_conv_bias_act(y32[i], b, act));
  }
}

void samx_cpu_conv_bias_grad(const float *gy, float *gbias, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > 32768)
  for (int64_t c = 0; c < C; c++) {
    float s = 0.0f;
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < HW; i++) s += gy[(b * C + c) * HW + i];
    gbias[c] += s;
  }
}

void samx_cpu_resize_bilinear_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                                  int64_t Wo) {
#pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oy = 0; oy < Ho; oy++)
      for (int64_t ox = 0; ox < Wo; ox++)
        y[(p * Ho + oy) * Wo + ox] = samx_bilinear_at(x + p * H * W, H, W, Ho, Wo, oy, ox);
}

// Planes are independent, so scattering within each plane in order is deterministic in parallel.
void samx_cpu_resize_bilinear_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                                  int64_t Wo) {
#pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
  for (int64_t p = 0; p < planes; p++) {
    float *g = gx + p * H * W;
    for (int64_t oy = 0; oy < Ho; oy++)
      for (int64_t ox = 0; ox < Wo; ox++) {
        int64_t idx[4];
        float wt[4], v = gy[(p * Ho + oy) * Wo + ox];
        samx_bilinear_corners(H, W, Ho, Wo, oy, ox, idx, wt);
        for (int k = 0; k < 4; k++) g[idx[k]] += wt[k] * v;
      }
  }
}

void samx_cpu_avg_pool2_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W) {
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2;
#pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oy = 0; oy < Ho; oy++)
      for (int64_t ox = 0; ox < Wo; ox++) y[(p * Ho + oy) * Wo + ox] = samx_avg_pool2_at(x + p * H * W, H, W, oy, ox);
}

void samx_cpu_avg_pool2_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2;
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t iy = 0; iy < H; iy++)
      for (int64_t ix = 0; ix < W; ix++) gx[(p * H + iy) * W + ix] += samx_avg_pool2_grad_at(gy + p * Ho * Wo, H, W, iy, ix);
}
