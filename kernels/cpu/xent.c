#include "../xent.h"

void samx_cpu_xent_fwd(const float *x, const int32_t *target, float *loss, float *lse, int64_t N, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * S > 4096)
  for (int64_t i = 0; i < N * S; i++) loss[i] = samx_xent_point(x, C, S, i / S, i % S, target[i], &lse[i]);
}

void samx_cpu_xent_bwd(const float *x, const int32_t *target, const float *lse, const float *gloss, float *gx, int64_t N,
                       int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * S > 4096)
  for (int64_t i = 0; i < N * S; i++) {
    int64_t n = i / S, s = i % S;
    for (int64_t c = 0; c < C; c++) {
      int64_t k = (n * C + c) * S + s;
      gx[k] += samx_xent_grad(x[k], lse[i], c == target[i], gloss[i]);
    }
  }
}

void samx_cpu_sqrt_fwd(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = samx_sqrt_fwd(x[i]);
}

void samx_cpu_sqrt_bwd(const float *y, const float *gy, float *gx, int64_t n) {
  for (int64_t i = 0; i < n; i++) gx[i] += samx_sqrt_bwd(y[i], gy[i]);
}
