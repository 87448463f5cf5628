// Elementwise arithmetic: broadcasting binary ops (add/sub/mul), affine maps (scale, add scalar,
// axpy), softmax over the last dim, sums over [outer, d, inner] views, and dtype casts.
// defines: SamxBinOp, SamxBroadcast and the math shared by CPU and CUDA, and the launchers.
#ifndef SAMX_KERNELS_ELEMENTWISE_H
#define SAMX_KERNELS_ELEMENTWISE_H

#include "../engine/dtype.h"
#include "common.h"

typedef enum { SAMX_BIN_ADD = 0, SAMX_BIN_SUB = 1, SAMX_BIN_MUL = 2 } SamxBinOp;

#define SAMX_BCAST_DIMS 5

// Geometry of out = a (op) b under NumPy broadcasting, with every shape left-padded to
// SAMX_BCAST_DIMS dims. Operand w (0: a, 1: b) has dim[w][k] == out[k] or 1; its stride along a
// broadcast dim is 0, so one formula maps an output index to both operands.
typedef struct {
  int64_t out[SAMX_BCAST_DIMS];
  int64_t out_stride[SAMX_BCAST_DIMS];
  int64_t dim[2][SAMX_BCAST_DIMS];
  int64_t stride[2][SAMX_BCAST_DIMS];
} SamxBroadcast;

SAMX_HD float samx_binary_fwd(int op, float a, float b) {
  switch (op) {
    case SAMX_BIN_ADD: return a + b;
    case SAMX_BIN_SUB: return a - b;
    default: return a * b;
  }
}

// dL/d(operand `which`) for one output element, given the other operand's value and dL/dy.
SAMX_HD float samx_binary_grad(int op, int which, float other, float gy) {
  switch (op) {
    case SAMX_BIN_ADD: return gy;
    case SAMX_BIN_SUB: return which == 0 ? gy : -gy;
    default: return gy * other;
  }
}

// Whether operand `which` is broadcast along some dim (its gradient elements are then sums).
SAMX_HD int samx_bcast_reduces(const SamxBroadcast *g, int which) {
  for (int k = 0; k < SAMX_BCAST_DIMS; k++)
    if (g->dim[which][k] != g->out[k]) return 1;
  return 0;
}

// Offset into operand `which` of output element i.
SAMX_HD int64_t samx_bcast_offset(const SamxBroadcast *g, int which, int64_t i) {
  int64_t off = 0;
  for (int k = SAMX_BCAST_DIMS - 1; k >= 0; k--) {
    int64_t c = i % g->out[k];
    i /= g->out[k];
    off += c * g->stride[which][k];
  }
  return off;
}

// Gradient of operand `which` at its element j: the sum over every output element that read j
// (the broadcast dims of the operand vary, the others are fixed by j). `other` is the other
// operand, read only by ops whose derivative needs it (NULL is fine for add/sub). Summed in double
// in a fixed order, so CPU and CUDA agree and no atomics are needed.
SAMX_HD float samx_bcast_grad_at(const SamxBroadcast *g, int op, int which, const float *other, const float *gy,
                                 int64_t j) {
  const int64_t *dim = g->dim[which];
  int64_t coord[SAMX_BCAST_DIMS], reps = 1;
  for (int k = SAMX_BCAST_DIMS - 1; k >= 0; k--) {
    coord[k] = j % dim[k];
    j /= dim[k];
    if (dim[k] == 1) reps *= g->out[k];
  }
  double acc = 0;
  for (int64_t r = 0; r < reps; r++) {
    int64_t rest = r, o = 0, o_other = 0;
    for (int k = SAMX_BCAST_DIMS - 1; k >= 0; k--) {
      int64_t c = coord[k];
      if (dim[k] == 1) {
        c = rest % g->out[k];
        rest /= g->out[k];
      }
      o += c * g->out_stride[k];
      o_other += c * g->stride[1 - which][k];
    }
    float v = op == SAMX_BIN_MUL ? other[o_other] : 0.0f;
    acc += samx_binary_grad(op, which, v, gy[o]);
  }
  return (float)acc;
}

// scale * sum_k x[o, k, i] of x viewed as [outer, d, inner], accumulated in double.
SAMX_HD float samx_sum_at(const float *x, int64_t d, int64_t inner, int64_t o, int64_t i, float scale) {
  const float *p = x + o * d * inner + i;
  double acc = 0;
  for (int64_t k = 0; k < d; k++) acc += p[k * inner];
  return (float)(acc * scale);
}

// Softmax of one element given its row's max and 1 / sum(exp(x - max)).
SAMX_HD float samx_softmax_elem(float x, float row_max, float inv_sum) { return expf(x - row_max) * inv_sum; }

// dL/dx of one element given y, dL/dy and the row's sum(dL/dy * y).
SAMX_HD float samx_softmax_grad_elem(float y, float gy, float dot) { return y * (gy - dot); }

// Element i of a float tensor of dtype dt (F32, BF16 or F16) as f32, and the store in reverse.
SAMX_HD float samx_load_as_f32(const void *p, int dt, int64_t i) {
  switch (dt) {
    case SAMX_BF16: return samx_bf16_to_f32(((const uint16_t *)p)[i]);
    case SAMX_F16: return samx_f16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
  }
}

SAMX_HD void samx_store_from_f32(void *p, int dt, int64_t i, float v) {
  switch (dt) {
    case SAMX_BF16: ((uint16_t *)p)[i] = samx_f32_to_bf16(v); break;
    case SAMX_F16: ((uint16_t *)p)[i] = samx_f32_to_f16(v); break;
    default: ((float *)p)[i] = v;
  }
}

// y = a (op) b, n = output numel.
SAMX_EXTERN_C void samx_cpu_elementwise_binary_fwd(int op, const SamxBroadcast *g, const float *a, const float *b,
                                                   float *y, int64_t n);
// gx += dL/d(operand `which`), nx = that operand's numel; other = the other operand (mul only).
// acc: nx doubles of scratch, needed when the operand is broadcast (samx_bcast_reduces).
SAMX_EXTERN_C void samx_cpu_elementwise_binary_bwd(int op, int which, const SamxBroadcast *g, const float *other,
                                                   const float *gy, float *gx, int64_t nx, double *acc);
// y = x * mul + add
SAMX_EXTERN_C void samx_cpu_elementwise_affine(const float *x, float *y, int64_t n, float mul, float add);
// y += s * x
SAMX_EXTERN_C void samx_cpu_elementwise_axpy(float s, const float *x, float *y, int64_t n);
// Row-wise softmax of a [rows, d] block; backward adds into gx.
SAMX_EXTERN_C void samx_cpu_elementwise_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d);
SAMX_EXTERN_C void samx_cpu_elementwise_softmax_bwd(const float *y, const float *gy, float *gx, int64_t rows,
                                                    int64_t d);
// x viewed as [outer, d, inner]: y[o, i] = scale * sum_k x[o, k, i]; backward gx[o, k, i] += scale * gy[o, i].
SAMX_EXTERN_C void samx_cpu_elementwise_sum_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                                float scale);
SAMX_EXTERN_C void samx_cpu_elementwise_sum_bwd(const float *gy, float *gx, int64_t outer, int64_t d, int64_t inner,
                                                float scale);
// y (dtype y_dt) = x (dtype x_dt), rounding to nearest even; dtypes among F32, BF16, F16.
SAMX_EXTERN_C void samx_cpu_elementwise_cast(const void *x, int x_dt, void *y, int y_dt, int64_t n);

SAMX_EXTERN_C void samx_cuda_elementwise_binary_fwd(int op, const SamxBroadcast *g, const float *a, const float *b,
                                                    float *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_elementwise_binary_bwd(int op, int which, const SamxBroadcast *g, const float *other,
                                                    const float *gy, float *gx, int64_t nx);
SAMX_EXTERN_C void samx_cuda_elementwise_affine(const float *x, float *y, int64_t n, float mul, float add);
SAMX_EXTERN_C void samx_cuda_elementwise_axpy(float s, const float *x, float *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_elementwise_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d);
SAMX_EXTERN_C void samx_cuda_elementwise_softmax_bwd(const float *y, const float *gy, float *gx, int64_t rows,
                                                     int64_t d);
SAMX_EXTERN_C void samx_cuda_elementwise_sum_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                                 float scale);
SAMX_EXTERN_C void samx_cuda_elementwise_sum_bwd(const float *gy, float *gx, int64_t outer, int64_t d,
                                                 int64_t inner, float scale);
SAMX_EXTERN_C void samx_cuda_elementwise_cast(const void *x, int x_dt, void *y, int y_dt, int64_t n);

#endif
