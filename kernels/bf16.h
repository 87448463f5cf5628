// Activations in bf16 between the GEMMs: GELU (any SamxAct), the residual add and LayerNorm reading
// and writing bf16 (uint16_t), with the arithmetic in fp32 (LayerNorm's statistics included) and one
// rounding to nearest even per output.
// defines: samx_bf16_act, samx_bf16_act_bwd, samx_bf16_add, samx_bf16_norm, samx_bf16_norm_strided_row,
// samx_bf16_sum, samx_bf16_lane_total
// (math shared by CPU and CUDA) and the launchers.
//
// LayerNorm's row sums use one partition on both backends, so that they agree bit for bit: 32 lanes,
// lane l summing the 8-element chunks l, l + 32, l + 64, ... in order (a CUDA lane reads each chunk with
// one 16-byte load), then the lanes combined by the butterfly of __shfl_xor_sync (offsets 16, 8, 4,
// 2, 1), which samx_bf16_lane_total replays on the CPU.
#ifndef SAMX_KERNELS_BF16_H
#define SAMX_KERNELS_BF16_H

#include "../engine/dtype.h"
#include "activation.h"
#include "common.h"
#include "norm.h"

#define SAMX_BF16_LANES 32
#define SAMX_BF16_CHUNK 8

SAMX_HD uint16_t samx_bf16_act(int kind, uint16_t x) {
  return samx_f32_to_bf16(samx_act_fwd(kind, samx_bf16_to_f32(x)));
}

// dL/dx of y = bf16(act(x)) given the saved bf16 x and y and the fp32 dL/dy (training keeps gradients
// in fp32): the fp32 derivative at the stored values, as autocast's bf16 activations backpropagate.
SAMX_HD float samx_bf16_act_bwd(int kind, uint16_t x, uint16_t y, float gy) {
  return samx_act_bwd(kind, samx_bf16_to_f32(x), samx_bf16_to_f32(y), gy);
}

// a + b in fp32, rounded once (a residual connection).
SAMX_HD uint16_t samx_bf16_add(uint16_t a, uint16_t b) {
  return samx_f32_to_bf16(samx_bf16_to_f32(a) + samx_bf16_to_f32(b));
}

// acc plus the n values v[0], v[stride], ..., minus center, squared when `squares` (in order: a chunk of
// LayerNorm's row, or LayerNorm2d's whole row of channels).
SAMX_HD float samx_bf16_sum(float acc, const uint16_t *v, int64_t n, int64_t stride, float center, int squares) {
  for (int64_t e = 0; e < n; e++) {
    float d = samx_bf16_to_f32(v[e * stride]) - center;
    acc += squares ? d * d : d;
  }
  return acc;
}

// The butterfly total of 32 lane partials (v is overwritten), in __shfl_xor_sync's order.
SAMX_HD float samx_bf16_lane_total(float *v) {
  for (int off = SAMX_BF16_LANES / 2; off > 0; off /= 2) {
    float next[SAMX_BF16_LANES];
    for (int l = 0; l < SAMX_BF16_LANES; l++) next[l] = v[l] + v[l ^ off];
    for (int l = 0; l < SAMX_BF16_LANES; l++) v[l] = next[l];
  }
  return v[0];
}

SAMX_HD uint16_t samx_bf16_norm(uint16_t x, float mean, float rstd, float w, float b) {
  return samx_f32_to_bf16(samx_norm_fwd(samx_bf16_to_f32(x), mean, rstd, w, b));
}

// Row r of x [outer, C, inner] with inner > 1 (LayerNorm2d: a pixel's C channels, inner apart), whole,
// by one CUDA thread or one CPU iteration: the sums run in channel order, so both backends agree.
SAMX_HD void samx_bf16_norm_strided_row(const uint16_t *x, const float *w, const float *b, uint16_t *y, float *mean,
                                        float *rstd, int64_t r, int64_t C, int64_t inner, float eps) {
  int64_t base = samx_norm_row_base(r, C, inner);
  float m = samx_bf16_sum(0.0f, x + base, C, inner, 0.0f, 0) / (float)C;
  float rs = samx_norm_rstd(samx_bf16_sum(0.0f, x + base, C, inner, m, 1) / (float)C, eps);
  for (int64_t c = 0; c < C; c++) y[base + c * inner] = samx_bf16_norm(x[base + c * inner], m, rs, w[c], b[c]);
  mean[r] = m;
  rstd[r] = rs;
}

// y [n] = bf16(act(x)).
SAMX_EXTERN_C void samx_cpu_bf16_act(int kind, const uint16_t *x, uint16_t *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_bf16_act(int kind, const uint16_t *x, uint16_t *y, int64_t n);
// gx [n] += dL/dx of y = bf16(act(x)) (x, y bf16; gy, gx f32).
SAMX_EXTERN_C void samx_cpu_bf16_act_bwd(int kind, const uint16_t *x, const uint16_t *y, const float *gy, float *gx,
                                         int64_t n);
SAMX_EXTERN_C void samx_cuda_bf16_act_bwd(int kind, const uint16_t *x, const uint16_t *y, const float *gy, float *gx,
                                          int64_t n);
// y [n] = bf16(a + b), b [nb] repeated over a (nb divides n: b broadcast over a's leading dims; nb = n
// is the plain sum); y may be a, or b when nb = n.
SAMX_EXTERN_C void samx_cpu_bf16_add(const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n, int64_t nb);
SAMX_EXTERN_C void samx_cuda_bf16_add(const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n, int64_t nb);
// LayerNorm over R rows of C (bf16) with fp32 weight and bias [C], rows laid out as in kernels/norm.h
// (inner 1: LayerNorm over the last dim; inner H*W: LayerNorm2d): y bf16; mean and rstd [R] in fp32 (as
// the f32 LayerNorm keeps them for backward).
SAMX_EXTERN_C void samx_cpu_bf16_layernorm(const uint16_t *x, const float *w, const float *b, uint16_t *y,
                                           float *mean, float *rstd, int64_t R, int64_t C, int64_t inner, float eps);
SAMX_EXTERN_C void samx_cuda_bf16_layernorm(const uint16_t *x, const float *w, const float *b, uint16_t *y,
                                            float *mean, float *rstd, int64_t R, int64_t C, int64_t inner, float eps);

#endif
