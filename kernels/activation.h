// Pointwise activations: ReLU, exact-erf GELU (nn.GELU's default), sigmoid; and the tanh form of GELU
// that cuBLASLt's GELU epilogues compute.
// defines: SamxAct, samx_act_fwd, samx_act_bwd (math shared by CPU and CUDA), samx_gelu_tanhf, and the
// launchers.
#ifndef SAMX_KERNELS_ACTIVATION_H
#define SAMX_KERNELS_ACTIVATION_H

#include "common.h"

typedef enum { SAMX_ACT_RELU = 0, SAMX_ACT_GELU = 1, SAMX_ACT_SIGMOID = 2 } SamxAct;

SAMX_HD float samx_sigmoidf(float x) {
  // Split by sign so exp never overflows.
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

// GELU's tanh approximation (nn.GELU(approximate="tanh")): what CUBLASLT_EPILOGUE_GELU_BIAS applies (PyTorch
// tests its cuBLASLt-fused addmm + GELU against this form). It departs from the exact form by at most
// 4.8e-4 (near x = 2.7, where a bf16 ulp is 0.016): far inside the bf16 rounding of the fused output.
SAMX_HD float samx_gelu_tanhf(float x) {
  return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

SAMX_HD float samx_act_fwd(int kind, float x) {
  switch (kind) {
    // PyTorch's relu is clamp_min(x, 0): NaN stays NaN (a broken input must not look like a plausible 0).
    case SAMX_ACT_RELU: return x <= 0.0f ? 0.0f : x;
    case SAMX_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return samx_sigmoidf(x);
  }
}

// dL/dx given the input x, the output y and dL/dy.
SAMX_HD float samx_act_bwd(int kind, float x, float y, float gy) {
  switch (kind) {
    // ref: threshold_backward(grad, result, 0): zero where the output is <= 0, so NaN passes grad on.
    case SAMX_ACT_RELU: return x <= 0.0f ? 0.0f : gy;
    case SAMX_ACT_GELU: {
      float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
      float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
      return gy * (cdf + x * pdf);
    }
    default: return gy * y * (1.0f - y);
  }
}

SAMX_EXTERN_C void samx_cpu_act_fwd(int kind, const float *x, float *y, int64_t n);
// gx += dL/dx
SAMX_EXTERN_C void samx_cpu_act_bwd(int kind, const float *x, const float *y, const float *gy, float *gx, int64_t n);
SAMX_EXTERN_C void samx_cuda_act_fwd(int kind, const float *x, float *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_act_bwd(int kind, const float *x, const float *y, const float *gy, float *gx, int64_t n);

#endif
