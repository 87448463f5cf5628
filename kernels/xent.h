// Cross-entropy over a class dim with integer targets (torch.nn.CrossEntropyLoss on [N, C, S]
// logits, as P²SAM's stage losses use it over its 8 weighted maps), and the square root of a scalar
// (the unsquared norms of P²SAM's stage-2 regulariser).
// defines: samx_xent_point, samx_xent_grad, samx_sqrt_*, the launchers.
#ifndef SAMX_KERNELS_XENT_H
#define SAMX_KERNELS_XENT_H

#include "common.h"

// Position (n, s) of x [N, C, S] (class c at x[(n C + c) S + s]): loss = logsumexp_c x - x_target;
// *lse receives the logsumexp (for the backward).
SAMX_HD float samx_xent_point(const float *x, int64_t C, int64_t S, int64_t n, int64_t s, int target, float *lse) {
  const float *p = x + n * C * S + s;
  float m = p[0];
  for (int64_t c = 1; c < C; c++) m = fmaxf(m, p[c * S]);
  float sum = 0.0f;
  for (int64_t c = 0; c < C; c++) sum += expf(p[c * S] - m);
  *lse = m + logf(sum);
  return *lse - p[(int64_t)target * S];
}

// d loss(n, s) / d x[n, c, s] times g: g (softmax_c - [c == target]).
SAMX_HD float samx_xent_grad(float x, float lse, int is_target, float g) {
  return g * (expf(x - lse) - (is_target ? 1.0f : 0.0f));
}

SAMX_HD float samx_sqrt_fwd(float x) { return sqrtf(x); }
// d sqrt(x) / dx times g, with y = sqrt(x) (0 at x = 0, as torch's norm backward).
SAMX_HD float samx_sqrt_bwd(float y, float g) { return y > 0.0f ? 0.5f * g / y : 0.0f; }

// loss[n S + s], lse[n S + s] for every position; target I32 [N, S] in [0, C).
SAMX_EXTERN_C void samx_cpu_xent_fwd(const float *x, const int32_t *target, float *loss, float *lse, int64_t N, int64_t C,
                                     int64_t S);
// gx[n, c, s] += samx_xent_grad(...) with g = gloss[n S + s].
SAMX_EXTERN_C void samx_cpu_xent_bwd(const float *x, const int32_t *target, const float *lse, const float *gloss, float *gx,
                                     int64_t N, int64_t C, int64_t S);
SAMX_EXTERN_C void samx_cpu_sqrt_fwd(const float *x, float *y, int64_t n);
SAMX_EXTERN_C void samx_cpu_sqrt_bwd(const float *y, const float *gy, float *gx, int64_t n);
SAMX_EXTERN_C void samx_cuda_xent_fwd(const float *x, const int32_t *target, float *loss, float *lse, int64_t N, int64_t C,
                                      int64_t S);
SAMX_EXTERN_C void samx_cuda_xent_bwd(const float *x, const int32_t *target, const float *lse, const float *gloss,
                                      float *gx, int64_t N, int64_t C, int64_t S);
SAMX_EXTERN_C void samx_cuda_sqrt_fwd(const float *x, float *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_sqrt_bwd(const float *y, const float *gy, float *gx, int64_t n);

#endif
