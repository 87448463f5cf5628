
#include "../../engine/error.h"
#include "../conv.h"

void samx_cpu_conv_im2col(const float *x, float *cols, SamxConvGeom g) {
  int64_t rows = g.C * g.kh * g.kw, n_cols = g.Ho * g.Wo;
#pragma omp parallel for schedule(static) if (rows * n_cols > 32768)
  for (int64_t row = 0; row < rows; row++)
    for (int64_t col = 0; col < n_cols; col++) cols[row * n_cols + col] = samx_im2col_at(x, g, row, col);
}

void samx_cpu_conv_col2im(const float *cols, float *x, int accumulate, SamxConvGeom g) {
#pragma omp parallel for collapse(2) schedule(static) if (g.C * g.H * g.W > 32768)
  for (int64_t c = 0; c < g.C; c++)
    for (int64_t iy = 0; iy < g.H; iy++)
      for (int64_t ix = 0; ix < g.W; ix++) {
        float *dst = &x[(c * g.H + iy) * g.W + ix];
        float v = samx_col2im_at(cols, g, c, iy, ix);
        *dst = accumulate ? *dst + v : v;
      }
}

void samx_cpu_conv_bias_add(float *y, const float *bias, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for collapse(2) schedule(static) if (B * C * HW > 32768)
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < HW; i++) y[(b * C + c) * HW + i] += bias[c];
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
