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

void samx_cpu_elementwise_binary_bwd(int op, int which, const SamxBroadcast *g, const float *other, const float *gy,
                                     float *gx, int64_t nx) {
#pragma omp parallel for schedule(static) if (nx > 256)
  for (int64_t j = 0; j < nx; j++) gx[j] += samx_bcast_grad_at(g, op, which, other, gy, j);
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

void samx_cpu_elementwise_sum_bwd(const float *gy, float *gx, int64_t outer, int64_t d, int64_t inner, float scale) {
  int64_t n = outer * d * inner;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) gx[i] += scale * gy[(i / (d * inner)) * inner + i % inner];
}

void samx_cpu_elementwise_cast(const void *x, int x_dt, void *y, int y_dt, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) samx_store_from_f32(y, y_dt, i, samx_load_as_f32(x, x_dt, i));
}
