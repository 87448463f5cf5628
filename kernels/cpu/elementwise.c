#include <string.h>

#include "../../engine/error.h"
#include "../elementwise.h"

#define PARALLEL_MIN 32768

// Row by row over the innermost (merged) dim: the index arithmetic runs once per row, and the inner
// loop reads each operand with its stride there (1, or 0 when broadcast), which vectorises.
void samx_cpu_elementwise_binary_fwd(int op, const SamxBroadcast *g, const float *a, const float *b, float *y,
                                     int64_t n) {
  const int64_t inner = g->out[SAMX_BCAST_DIMS - 1];
  if (n == 0 || inner == 0) return;
  const int64_t sa = g->stride[0][SAMX_BCAST_DIMS - 1], sb = g->stride[1][SAMX_BCAST_DIMS - 1], rows = n / inner;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *pa = a + samx_bcast_offset(g, 0, r * inner), *pb = b + samx_bcast_offset(g, 1, r * inner);
    float *py = y + r * inner;
    for (int64_t k = 0; k < inner; k++) py[k] = samx_binary_fwd(op, pa[k * sa], pb[k * sb]);
  }
}

// Row by row like the forward. An operand of the output's shape takes one term per element (rows in
// parallel). A broadcast operand's elements are sums: the output is scanned once in row-major order
// into double accumulators, so each element receives its terms in exactly samx_bcast_grad_at's order
// (the CUDA kernel's) without that function's per-term index decoding, which made these reductions
// 14% of a SeqSAM training step.
void samx_cpu_elementwise_binary_bwd(int op, int which, const SamxBroadcast *g, const float *other, const float *gy,
                                     float *gx, int64_t nx, double *acc) {
  const int64_t inner = g->out[SAMX_BCAST_DIMS - 1];
  int64_t n = 1;
  for (int k = 0; k < SAMX_BCAST_DIMS; k++) n *= g->out[k];
  if (nx == 0 || n == 0) return;
  const int64_t sw = g->stride[which][SAMX_BCAST_DIMS - 1], so = g->stride[1 - which][SAMX_BCAST_DIMS - 1];
  const int64_t rows = n / inner;
  const int mul = op == SAMX_BIN_MUL;
  if (!samx_bcast_reduces(g, which)) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
      float *pw = gx + samx_bcast_offset(g, which, r * inner);
      const float *po = mul ? other + samx_bcast_offset(g, 1 - which, r * inner) : NULL, *pg = gy + r * inner;
      for (int64_t k = 0; k < inner; k++) pw[k * sw] += samx_binary_grad(op, which, mul ? po[k * so] : 0.0f, pg[k]);
    }
    return;
  }
  SAMX_ASSERT(acc, "binary backward: a broadcast operand needs %lld doubles of scratch", (long long)nx);
  memset(acc, 0, (size_t)nx * sizeof *acc);
  for (int64_t r = 0; r < rows; r++) {
    double *pw = acc + samx_bcast_offset(g, which, r * inner);
    const float *po = mul ? other + samx_bcast_offset(g, 1 - which, r * inner) : NULL, *pg = gy + r * inner;
    for (int64_t k = 0; k < inner; k++) pw[k * sw] += samx_binary_grad(op, which, mul ? po[k * so] : 0.0f, pg[k]);
  }
#pragma omp parallel for schedule(static) if (nx > PARALLEL_MIN)
  for (int64_t j = 0; j < nx; j++) gx[j] += (float)acc[j];
}

void samx_cpu_elementwise_affine(const float *x, float *y, int64_t n, float mul, float add) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * mul + add;
}

void samx_cpu_elementwise_axpy(float s, const float *x, float *y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}

void samx_cpu_elementwise_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d) {
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float m = -INFINITY;
    for (int64_t k = 0; k < d; k++) m = fmaxf(m, xr[k]);
    float sum = 0;
    for (int64_t k = 0; k < d; k++) sum += expf(xr[k] - m);
    float inv = 1.0f / sum;
    for (int64_t k = 0; k < d; k++) yr[k] = samx_softmax_elem(xr[k], m, inv);
  }
}

void samx_cpu_elementwise_softmax_bwd(const float *y, const float *gy, float *gx, int64_t rows, int64_t d) {
#pragma omp parallel for schedule(static) if (rows * d > PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * d, *gr = gy + r * d;
    float dot = 0;
    for (int64_t k = 0; k < d; k++) dot += gr[k] * yr[k];
    for (int64_t k = 0; k < d; k++) gx[r * d + k] += samx_softmax_grad_elem(yr[k], gr[k], dot);
  }
}

void samx_cpu_elementwise_sum_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner, float scale) {
  int64_t n_out = outer * inner;
#pragma omp parallel for schedule(static) if (n_out * d > PARALLEL_MIN && n_out > 1)
  for (int64_t j = 0; j < n_out; j++) y[j] = samx_sum_at(x, d, inner, j / inner, j % inner, scale);
}

// Row by row over [outer, d, inner]: each row of inner values adds the same row of gy (two 64-bit
// divisions per element found it before).
void samx_cpu_elementwise_sum_bwd(const float *gy, float *gx, int64_t outer, int64_t d, int64_t inner, float scale) {
  int64_t n = outer * d * inner;
#pragma omp parallel for collapse(2) schedule(static) if (n > PARALLEL_MIN)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < d; k++) {
      const float *g = gy + o * inner;
      float *dst = gx + (o * d + k) * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += scale * g[i];
    }
}

void samx_cpu_elementwise_cast(const void *x, int x_dt, void *y, int y_dt, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) samx_store_from_f32(y, y_dt, i, samx_load_as_f32(x, x_dt, i));
}
