#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "../../engine/error.h"
#include "../linalg.h"

// OpenBLAS (0.3.x) runs a GEMM on one thread when m*n*k <= 65536 * GEMM_MULTITHREAD_THRESHOLD (4); only
// then does splitting a batch over OpenMP threads pay. Larger GEMMs are threaded by OpenBLAS itself.
#define SMALL_GEMM_MNK 262144
// Columns per thread in the column-split loops (bias gradient, embedding backward): 1 KiB of a row.
#define COL_TILE 256

static int64_t max1(int64_t x) { return x > 1 ? x : 1; }

static void gemm_one(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     const float *b, float beta, float *c) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
              (int)n, (int)k, alpha, a, (int)max1(trans_a ? m : k), b, (int)max1(trans_b ? k : n), beta, c,
              (int)max1(n));
}

void samx_cpu_linalg_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, float alpha,
                          const float *a, int64_t stride_a, const float *b, int64_t stride_b, float beta, float *c,
                          int64_t stride_c) {
  SAMX_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && m >= 0 && n >= 0 && k >= 0,
              "gemm: sizes m=%lld n=%lld k=%lld do not fit BLAS ints", (long long)m, (long long)n, (long long)k);
  if (batch <= 0 || m == 0 || n == 0) return;
  if (stride_c == 0 && batch > 1) {
    // One accumulator for the whole batch: the products are added in batch order.
    for (int64_t i = 0; i < batch; i++)
      gemm_one(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, i == 0 ? beta : 1.0f, c);
    return;
  }
  if ((double)m * (double)n * (double)k <= SMALL_GEMM_MNK && batch > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; i++)
      gemm_one(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
    return;
  }
  // Not inside `omp parallel ... if (0)`: that is still a parallel region (of one thread), and
  // libgomp gives a region nested in it, here OpenBLAS's own, newly created threads on every call
  // instead of its pool (6,026 pthread_create in 50 steps of the main job's pretraining on 2 threads).
  for (int64_t i = 0; i < batch; i++)
    gemm_one(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
}

void samx_cpu_linalg_cast_f32_bf16(const float *x, uint16_t *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = samx_f32_to_bf16(x[i]);
}

void samx_cpu_linalg_cast_bf16_f32(const uint16_t *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = samx_bf16_to_f32(x[i]);
}

void samx_cpu_linalg_round_bf16(const float *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = samx_round_bf16(x[i]);
}

void samx_cpu_linalg_bias_fill(float *y, const float *bias, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; r++) memcpy(y + r * cols, bias, (size_t)cols * sizeof *y);
}

// Threads split the columns into tiles and each walks its tile row by row (cache order); every output
// is then one thread's sum in row order, so the result does not depend on the thread count.
void samx_cpu_linalg_bias_grad(const float *gy, float *gbias, int64_t rows, int64_t cols) {
  int64_t n_tiles = (cols + COL_TILE - 1) / COL_TILE;
#pragma omp parallel for schedule(static) if (rows * cols > 32768 && n_tiles > 1)
  for (int64_t t = 0; t < n_tiles; t++) {
    int64_t c0 = t * COL_TILE, width = cols - c0 < COL_TILE ? cols - c0 : COL_TILE;
    float acc[COL_TILE] = {0};
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < width; j++) acc[j] += gy[r * cols + c0 + j];
    for (int64_t j = 0; j < width; j++) gbias[c0 + j] += acc[j];
  }
}

int64_t samx_cpu_linalg_embedding_fwd(const float *table, int64_t n_rows, int64_t dim, const int32_t *idx, int64_t n,
                                      float *out, int32_t *bad_index) {
  for (int64_t i = 0; i < n; i++)
    if (!samx_linalg_index_ok(idx[i], n_rows)) {
      *bad_index = idx[i];
      return i;
    }
#pragma omp parallel for schedule(static) if (n * dim > 32768)
  for (int64_t i = 0; i < n; i++) memcpy(out + i * dim, table + (int64_t)idx[i] * dim, (size_t)dim * sizeof(float));
  return -1;
}

// Deterministic: threads split the columns, so each gtable element is summed by one thread in index order.
void samx_cpu_linalg_embedding_bwd(const float *gout, const int32_t *idx, int64_t n, int64_t dim, float *gtable) {
  int64_t n_tiles = (dim + COL_TILE - 1) / COL_TILE;
#pragma omp parallel for schedule(static) if (n * dim > 32768 && n_tiles > 1)
  for (int64_t t = 0; t < n_tiles; t++) {
    int64_t d0 = t * COL_TILE, d1 = dim - d0 < COL_TILE ? dim : d0 + COL_TILE;
    for (int64_t i = 0; i < n; i++) {
      float *dst = gtable + (int64_t)idx[i] * dim;
      const float *src = gout + i * dim;
      for (int64_t d = d0; d < d1; d++) dst[d] += src[d];
    }
  }
}

void samx_cpu_matmul_bf16b(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a, int64_t stride_a,
                           const uint16_t *b, int64_t stride_b, float *c, int64_t stride_c) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * n * m * k > 65536)
  for (int64_t z = 0; z < batch; z++)
    for (int64_t j = 0; j < n; j++)
      samx_matmul_bf16b_column(a + z * stride_a, b + z * stride_b + j, c + z * stride_c + j, m, n, k);
}
