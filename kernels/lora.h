// LoRA on a fused qkv projection (P²SAM, method-notes §4): w [3C, in] gets B_q A_q added to its
// first C rows (q) and B_v A_v to its last C rows (v); A [r, in], B [C, r]. The training-time path
// (x A^T B^T added to the q and v outputs) is composed from samx_lora_linear in engine/ops_lora.c;
// these kernels merge an adapter into the weight (and take it out again) for inference.
// defines: samx_lora_delta, the merge launchers.
#ifndef SAMX_KERNELS_LORA_H
#define SAMX_KERNELS_LORA_H

#include "common.h"

// (B A)[row, col] = sum_k B[row, k] A[k, col], summed in k order (the same on both backends).
SAMX_HD float samx_lora_delta(const float *a, const float *b, int r, int64_t in, int64_t row, int64_t col) {
  float s = 0.0f;
  for (int k = 0; k < r; k++) s += b[row * r + k] * a[(int64_t)k * in + col];
  return s;
}

// w[row, col] += sign * (B A)[row, col] for row < rows (the q or v block of a fused qkv weight).
SAMX_EXTERN_C void samx_cpu_lora_merge(float *w, const float *a, const float *b, int r, int64_t rows, int64_t in,
                                       float sign);
SAMX_EXTERN_C void samx_cuda_lora_merge(float *w, const float *a, const float *b, int r, int64_t rows, int64_t in,
                                        float sign);

#endif
