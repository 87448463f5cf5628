// Few-shot target embeddings (the SAM few-shot paper, method-notes §6): masked averages of an image
// embedding over label regions at the embedding's grid.
//   S[n, l]        = sum_p w[n, l, p]
//   out[n, l, c]   = sum_p w[n, l, p] z[n, c, p] / S[n, l]       (0 where S[n, l] == 0)
//   gz[n, c, p]   += sum_l w[n, l, p] / S[n, l] * gout[n, l, c]  (terms with S == 0 skipped)
// w is a region weight (0/1 indicator, or a fraction of a cell when a label is too small for any
// cell to be mostly inside; see models/fewshot). defines: the shared math and the launchers.
#ifndef SAMX_KERNELS_FEWSHOT_H
#define SAMX_KERNELS_FEWSHOT_H

#include "common.h"

// Sum of one weight row of P values.
SAMX_HD float samx_fewshot_weight_sum(const float *w, int64_t P) {
  float s = 0.0f;
  for (int64_t p = 0; p < P; p++) s += w[p];
  return s;
}

// One output value: the weighted average of the channel row z (P values) under weights w.
SAMX_HD float samx_fewshot_masked_mean_value(const float *z, const float *w, float wsum, int64_t P) {
  if (!(wsum > 0.0f)) return 0.0f;
  float s = 0.0f;
  for (int64_t p = 0; p < P; p++) s += w[p] * z[p];
  return s / wsum;
}

// The gradient of one embedding value z[n, c, p]: w holds the L weight rows of image n (stride P), g the
// L output gradients of channel c (stride C).
SAMX_HD float samx_fewshot_masked_mean_grad(const float *w, const float *wsum, const float *g, int64_t L, int64_t P,
                                            int64_t C, int64_t p) {
  float s = 0.0f;
  for (int64_t l = 0; l < L; l++)
    if (wsum[l] > 0.0f) s += w[l * P + p] / wsum[l] * g[l * C];
  return s;
}

SAMX_EXTERN_C void samx_cpu_fewshot_masked_mean_fwd(const float *z, const float *w, float *wsum, float *out, int64_t N,
                                                    int64_t L, int64_t C, int64_t P);
SAMX_EXTERN_C void samx_cpu_fewshot_masked_mean_bwd(const float *w, const float *wsum, const float *gout, float *gz,
                                                    int64_t N, int64_t L, int64_t C, int64_t P);
SAMX_EXTERN_C void samx_cuda_fewshot_masked_mean_fwd(const float *z, const float *w, float *wsum, float *out, int64_t N,
                                                     int64_t L, int64_t C, int64_t P);
SAMX_EXTERN_C void samx_cuda_fewshot_masked_mean_bwd(const float *w, const float *wsum, const float *gout, float *gz,
                                                     int64_t N, int64_t L, int64_t C, int64_t P);

#endif
