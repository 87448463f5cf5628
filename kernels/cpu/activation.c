#include "../activation.h"

void samx_cpu_act_fwd(int kind, const float *x, float *y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) y[i] = samx_act_fwd(kind, x[i]);
}

void samx_cpu_act_bwd(int kind, const float *x, const float *y, const float *gy, float *gx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) gx[i] += samx_act_bwd(kind, x[i], y[i], gy[i]);
}
