#include "../optim.h"

void samx_cpu_optim_update(SamxOptimCoef c, float *p, float *s1, float *s2, const float *g, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) samx_optim_update_at(c, p, s1, s2, g, i);
}

// Fixed chunks summed in a fixed order: the result does not depend on the number of threads.
#define SUMSQ_CHUNKS 64

double samx_cpu_optim_sumsq(const float *x, int64_t n) {
  double partial[SUMSQ_CHUNKS];
  int64_t chunk = (n + SUMSQ_CHUNKS - 1) / SUMSQ_CHUNKS;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int k = 0; k < SUMSQ_CHUNKS; k++) {
    int64_t begin = k * chunk, end = begin + chunk < n ? begin + chunk : n;
    double s = 0;
    for (int64_t i = begin; i < end; i++) s += (double)x[i] * (double)x[i];
    partial[k] = s;
  }
  double total = 0;
  for (int k = 0; k < SUMSQ_CHUNKS; k++) total += partial[k];
  return total;
}

void samx_cpu_optim_scale(float *x, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}
