#include <limits.h>

#include "../../engine/error.h"
#include "../linalg.h"
#include "cuda_common.cuh"

static cublasOperation_t op_of(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

static int ld_of(int64_t cols) { return (int)(cols > 1 ? cols : 1); }

// cuBLAS is column-major: to it, a row-major r x c matrix is its c x r transpose. The row-major product
// C = op(A) op(B) is therefore computed as the column-major C^T = op(B)^T op(A)^T, with B passed first;
// each operand keeps its own transpose flag and row-major leading dimension. tf32: the same product
// with cublasGemmStridedBatchedEx in CUBLAS_COMPUTE_32F_FAST_TF32 (fp32 stays cublasSgemm's path).
static void gemm_strided(int tf32, int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                         float alpha, const float *a, int64_t stride_a, const float *b, int64_t stride_b, float beta,
                         float *c, int64_t stride_c) {
  if (tf32) {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        samx_cublas_handle(), op_of(trans_b), op_of(trans_a), (int)n, (int)m, (int)k, &alpha, b, CUDA_R_32F,
        ld_of(trans_b ? k : n), (long long)stride_b, a, CUDA_R_32F, ld_of(trans_a ? m : k), (long long)stride_a, &beta,
        c, CUDA_R_32F, ld_of(n), (long long)stride_c, (int)batch, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    return;
  }
  CUBLAS_CHECK(cublasSgemmStridedBatched(samx_cublas_handle(), op_of(trans_b), op_of(trans_a), (int)n, (int)m,
                                         (int)k, &alpha, b, ld_of(trans_b ? k : n), (long long)stride_b, a,
                                         ld_of(trans_a ? m : k), (long long)stride_a, &beta, c, ld_of(n),
                                         (long long)stride_c, (int)batch));
}

static void gemm_any(int tf32, int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, float alpha,
                     const float *a, int64_t stride_a, const float *b, int64_t stride_b, float beta, float *c,
                     int64_t stride_c) {
  SAMX_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && batch <= INT_MAX && m >= 0 && n >= 0 && k >= 0,
              "gemm: sizes batch=%lld m=%lld n=%lld k=%lld do not fit cuBLAS ints", (long long)batch, (long long)m,
              (long long)n, (long long)k);
  if (batch <= 0 || m == 0 || n == 0) return;
  if (stride_c == 0 && batch > 1) {
    // One accumulator for the whole batch: batched GEMMs would race on it, so the products are added
    // one after another on the stream.
    for (int64_t i = 0; i < batch; i++)
      gemm_strided(tf32, 1, m, n, k, trans_a, trans_b, alpha, a + i * stride_a, 0, b + i * stride_b, 0,
                   i == 0 ? beta : 1.0f, c, 0);
    return;
  }
  gemm_strided(tf32, batch, m, n, k, trans_a, trans_b, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

extern "C" void samx_cuda_linalg_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                                      float alpha, const float *a, int64_t stride_a, const float *b,
                                      int64_t stride_b, float beta, float *c, int64_t stride_c) {
  gemm_any(0, batch, m, n, k, trans_a, trans_b, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

extern "C" void samx_cuda_linalg_gemm_tf32(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a,
                                           int trans_b, float alpha, const float *a, int64_t stride_a,
                                           const float *b, int64_t stride_b, float beta, float *c,
                                           int64_t stride_c) {
  gemm_any(1, batch, m, n, k, trans_a, trans_b, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

__global__ static void bias_fill_kernel(float *y, const float *bias, int64_t rows, int64_t cols) {
  int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = bias[i % cols];
}

extern "C" void samx_cuda_linalg_bias_fill(float *y, const float *bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  SAMX_LAUNCH(bias_fill_kernel, samx_grid_1d((size_t)(rows * cols), 256), 256, 0)(y, bias, rows, cols);
  CUDA_LAUNCH_CHECK();
}

#define BIAS_GRAD_COLS 32
#define BIAS_GRAD_ROWS 16

// A block owns 32 columns; thread (x, y) sums column x over rows y, y + 16, ... (adjacent threads read
// adjacent floats), then thread row 0 adds the 16 partial sums in a fixed order: deterministic, no atomics.
__global__ static void bias_grad_kernel(const float *gy, float *gbias, int64_t rows, int64_t cols) {
  __shared__ float partial[BIAS_GRAD_ROWS][BIAS_GRAD_COLS];
  int64_t col = (int64_t)blockIdx.x * BIAS_GRAD_COLS + threadIdx.x;
  float s = 0.0f;
  if (col < cols)
    for (int64_t r = threadIdx.y; r < rows; r += BIAS_GRAD_ROWS) s += gy[r * cols + col];
  partial[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float total = 0.0f;
    for (int j = 0; j < BIAS_GRAD_ROWS; j++) total += partial[j][threadIdx.x];
    gbias[col] += total;
  }
}

extern "C" void samx_cuda_linalg_bias_grad(const float *gy, float *gbias, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  dim3 block(BIAS_GRAD_COLS, BIAS_GRAD_ROWS);
  unsigned grid = (unsigned)((cols + BIAS_GRAD_COLS - 1) / BIAS_GRAD_COLS);
  SAMX_LAUNCH(bias_grad_kernel, grid, block, 0)(gy, gbias, rows, cols);
  CUDA_LAUNCH_CHECK();
}

// Smallest position of an out-of-range index seen by the last embedding forward on this device
// (ULLONG_MAX: none). One embedding forward at a time per device, as everything on the default stream.
__device__ static unsigned long long first_bad_pos;

__global__ static void embedding_fwd_kernel(const float *table, int64_t n_rows, int64_t dim, const int32_t *idx,
                                            int64_t n, float *out) {
  int64_t total = n * dim;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e / dim, d = e - i * dim;
    int32_t row = idx[i];
    if (samx_linalg_index_ok(row, n_rows))
      out[e] = table[(int64_t)row * dim + d];
    else if (d == 0)
      atomicMin(&first_bad_pos, (unsigned long long)i);
  }
}

extern "C" int64_t samx_cuda_linalg_embedding_fwd(const float *table, int64_t n_rows, int64_t dim,
                                                  const int32_t *idx, int64_t n, float *out, int32_t *bad_index) {
  if (n * dim == 0) return -1;
  unsigned long long none = ULLONG_MAX, pos = ULLONG_MAX;
  CUDA_CHECK(cudaMemcpyToSymbol(first_bad_pos, &none, sizeof none));
  SAMX_LAUNCH(embedding_fwd_kernel, samx_grid_1d((size_t)(n * dim), 256), 256, 0)(table, n_rows, dim, idx, n, out);
  CUDA_LAUNCH_CHECK();
  // Reading the flag waits for the kernel: the price of naming a bad index instead of reading garbage
  // memory (embeddings are small ops: prompt labels, position tables).
  CUDA_CHECK(cudaMemcpyFromSymbol(&pos, first_bad_pos, sizeof pos));
  if (pos == ULLONG_MAX) return -1;
  CUDA_CHECK(cudaMemcpy(bad_index, idx + pos, sizeof(int32_t), cudaMemcpyDeviceToHost));
  return (int64_t)pos;
}

// Repeated indices add into the same row from different threads: atomicAdd, so the summation order (and
// the last bits of dtable) may differ between runs. Acceptable for an embedding gradient; the CPU backend
// is deterministic.
__global__ static void embedding_bwd_kernel(const float *gout, const int32_t *idx, int64_t n, int64_t dim,
                                            float *gtable) {
  int64_t total = n * dim;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e / dim, d = e - i * dim;
    atomicAdd(&gtable[(int64_t)idx[i] * dim + d], gout[e]);
  }
}

extern "C" void samx_cuda_linalg_embedding_bwd(const float *gout, const int32_t *idx, int64_t n, int64_t dim,
                                               float *gtable) {
  if (n * dim == 0) return;
  SAMX_LAUNCH(embedding_bwd_kernel, samx_grid_1d((size_t)(n * dim), 256), 256, 0)(gout, idx, n, dim, gtable);
  CUDA_LAUNCH_CHECK();
}

// A thread per column of one product; neighbouring threads take neighbouring columns, so each k step
// reads B and writes C coalesced, and A's values are the same across the warp (one broadcast load).
__global__ static void matmul_bf16b_kernel(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                                           int64_t stride_a, const uint16_t *b, int64_t stride_b, float *c,
                                           int64_t stride_c) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < batch * n; t += step) {
    const int64_t z = t / n, j = t % n;
    samx_matmul_bf16b_column(a + z * stride_a, b + z * stride_b + j, c + z * stride_c + j, m, n, k);
  }
}

extern "C" void samx_cuda_matmul_bf16b(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                                       int64_t stride_a, const uint16_t *b, int64_t stride_b, float *c,
                                       int64_t stride_c) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  SAMX_LAUNCH(matmul_bf16b_kernel, samx_grid_1d((size_t)(batch * n), 256), 256, 0)(batch, m, n, k, a, stride_a, b,
                                                                                 stride_b, c, stride_c);
  CUDA_LAUNCH_CHECK();
}
