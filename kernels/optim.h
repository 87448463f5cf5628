// Optimizer updates (AdamW, Adam, SGD with momentum) and the pieces of gradient-norm clipping.
// defines: SamxOptimKind, SamxOptimCoef, samx_optim_update_at (math shared by CPU and CUDA), and the launchers.
#ifndef SAMX_KERNELS_OPTIM_H
#define SAMX_KERNELS_OPTIM_H

#include "common.h"

typedef enum { SAMX_OPTIM_ADAMW = 0, SAMX_OPTIM_ADAM = 1, SAMX_OPTIM_SGD = 2 } SamxOptimKind;

// One group's coefficients for one step. The host computes them in double exactly as torch 1.13's
// single-tensor optimizers compute their Python-float scalars, and rounds each to f32 once (as
// torch does when it hands a Python scalar to an f32 kernel).
typedef struct {
  int kind;               // SamxOptimKind
  float lr;               // SGD
  float decay_mul;        // AdamW: 1 - lr * weight_decay (decoupled decay); 1 otherwise
  float l2;               // Adam, SGD: weight decay added to the gradient; 0 for AdamW
  float beta1, one_minus_beta1, beta2, one_minus_beta2;  // Adam(W)
  float step_size;        // Adam(W): lr / (1 - beta1^t)
  float bc2_sqrt;         // Adam(W): sqrt(1 - beta2^t)
  float eps;              // Adam(W)
  float momentum;         // SGD; 0 means plain SGD and no state
  float one_minus_dampening;
  int nesterov;
  int first;              // SGD: torch initialises the momentum buffer with the first gradient
} SamxOptimCoef;

// Updates element i of a parameter p in place. Adam(W): s1 = exp_avg, s2 = exp_avg_sq;
// SGD: s1 = momentum buffer (unused when momentum is 0), s2 unused. The operation order follows
// torch's kernels (mul_, add_(alpha), addcmul_, addcdiv_) so that the f32 rounding matches too.
SAMX_HD void samx_optim_update_at(SamxOptimCoef c, float *p, float *s1, float *s2, const float *grad, int64_t i) {
  float pv = p[i], g = grad[i];
  if (c.kind == SAMX_OPTIM_SGD) {
    g = g + c.l2 * pv;
    if (c.momentum != 0.0f) {
      float buf = c.first ? g : s1[i] * c.momentum + c.one_minus_dampening * g;
      s1[i] = buf;
      g = c.nesterov ? g + c.momentum * buf : buf;
    }
    p[i] = pv + (-c.lr) * g;
    return;
  }
  pv = pv * c.decay_mul;
  g = g + c.l2 * pv;
  float m = s1[i] * c.beta1 + c.one_minus_beta1 * g;
  float v = s2[i] * c.beta2 + (c.one_minus_beta2 * g) * g;
  s1[i] = m;
  s2[i] = v;
  float denom = sqrtf(v) / c.bc2_sqrt + c.eps;
  p[i] = pv + ((-c.step_size) * m) / denom;
}

// n elements of one parameter (s1/s2 may be NULL where the kind does not use them).
SAMX_EXTERN_C void samx_cpu_optim_update(SamxOptimCoef c, float *p, float *s1, float *s2, const float *g, int64_t n);
SAMX_EXTERN_C void samx_cuda_optim_update(SamxOptimCoef c, float *p, float *s1, float *s2, const float *g, int64_t n);

// Sum of squares in double, reduced in an order that depends only on n (deterministic run to run).
SAMX_EXTERN_C double samx_cpu_optim_sumsq(const float *x, int64_t n);
SAMX_EXTERN_C double samx_cuda_optim_sumsq(const float *x, int64_t n);

// x *= s
SAMX_EXTERN_C void samx_cpu_optim_scale(float *x, float s, int64_t n);
SAMX_EXTERN_C void samx_cuda_optim_scale(float *x, float s, int64_t n);

#endif
