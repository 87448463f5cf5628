#include "../bf16.h"

void samx_cpu_bf16_act(int kind, const uint16_t *x, uint16_t *y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = samx_bf16_act(kind, x[i]);
}

void samx_cpu_bf16_act_bwd(int kind, const uint16_t *x, const uint16_t *y, const float *gy, float *gx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) gx[i] += samx_bf16_act_bwd(kind, x[i], y[i], gy[i]);
}

void samx_cpu_bf16_add(const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n, int64_t nb) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = samx_bf16_add(a[i], b[i % nb]);
}

// Sum over row x [C] in the CUDA kernel's partition (see kernels/bf16.h).
static float row_sum(const uint16_t *x, int64_t C, float center, int squares) {
  float lane[SAMX_BF16_LANES];
  for (int l = 0; l < SAMX_BF16_LANES; l++) {
    float acc = 0.0f;
    for (int64_t c0 = (int64_t)l * SAMX_BF16_CHUNK; c0 < C; c0 += SAMX_BF16_LANES * SAMX_BF16_CHUNK) {
      int n = C - c0 < SAMX_BF16_CHUNK ? (int)(C - c0) : SAMX_BF16_CHUNK;
      acc = samx_bf16_sum(acc, x + c0, n, 1, center, squares);
    }
    lane[l] = acc;
  }
  return samx_bf16_lane_total(lane);
}

void samx_cpu_bf16_layernorm(const uint16_t *x, const float *w, const float *b, uint16_t *y, float *mean,
                             float *rstd, int64_t R, int64_t C, int64_t inner, float eps) {
  if (inner > 1) {
#pragma omp parallel for schedule(static) if (R * C > 65536)
    for (int64_t r = 0; r < R; r++) samx_bf16_norm_strided_row(x, w, b, y, mean, rstd, r, C, inner, eps);
    return;
  }
#pragma omp parallel for schedule(static) if (R * C > 65536)
  for (int64_t r = 0; r < R; r++) {
    const uint16_t *xr = x + r * C;
    float m = row_sum(xr, C, 0.0f, 0) / (float)C;
    float rs = samx_norm_rstd(row_sum(xr, C, m, 1) / (float)C, eps);
    for (int64_t c = 0; c < C; c++) y[r * C + c] = samx_bf16_norm(xr[c], m, rs, w[c], b[c]);
    mean[r] = m;
    rstd[r] = rs;
  }
}
