#include "../fewshot.h"

void samx_cpu_fewshot_masked_mean_fwd(const float *z, const float *w, float *wsum, float *out, int64_t N, int64_t L,
                                      int64_t C, int64_t P) {
  for (int64_t r = 0; r < N * L; r++) wsum[r] = samx_fewshot_weight_sum(w + r * P, P);
#pragma omp parallel for collapse(2) schedule(static) if (N * L * C * P > 65536)
  for (int64_t r = 0; r < N * L; r++)
    for (int64_t c = 0; c < C; c++) {
      int64_t n = r / L;
      out[r * C + c] = samx_fewshot_masked_mean_value(z + (n * C + c) * P, w + r * P, wsum[r], P);
    }
}

void samx_cpu_fewshot_masked_mean_bwd(const float *w, const float *wsum, const float *gout, float *gz, int64_t N,
                                      int64_t L, int64_t C, int64_t P) {
#pragma omp parallel for collapse(2) schedule(static) if (N * L * C * P > 65536)
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t p = 0; p < P; p++)
        gz[(n * C + c) * P + p] += samx_fewshot_masked_mean_grad(w + n * L * P, wsum + n * L, gout + n * L * C + c, L, P, C, p);
}
