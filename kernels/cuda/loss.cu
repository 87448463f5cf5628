#include "../loss.h"
#include "cuda_common.cuh"

#define LOSS_THREADS 256  // a power of two (block_sum's tree)

// Sum of v over the block in a fixed tree order (deterministic); every thread gets the total.
__device__ static double block_sum(double v, double *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = LOSS_THREADS / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  double total = sh[0];
  __syncthreads();
  return total;
}

__global__ static void loss_elementwise_kernel(SamxLossSpec s, const float *x, const float *t, float *out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = samx_loss_elem(&s, x[i], t[i]);
}

// Block (c, r) sums the terms of chunk c of row r (the same contiguous chunks as the CPU backend).
__global__ static void loss_partials_kernel(SamxLossSpec s, const float *x, const float *t, int64_t rows,
                                            int64_t cols, int64_t chunks, double *partials) {
  __shared__ double sh[LOSS_THREADS];
  int64_t len = (cols + chunks - 1) / chunks;
  int64_t c = blockIdx.x;
  int64_t begin = c * len, end = begin + len < cols ? begin + len : cols;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    double a = 0, b = 0;
    for (int64_t j = begin + threadIdx.x; j < end; j += LOSS_THREADS) {
      double ta, tb;
      samx_loss_terms(&s, x[r * cols + j], t[r * cols + j], &ta, &tb);
      a += ta;
      b += tb;
    }
    a = block_sum(a, sh);
    b = block_sum(b, sh);
    if (threadIdx.x == 0) {
      partials[2 * (r * chunks + c)] = a;
      partials[2 * (r * chunks + c) + 1] = b;
    }
  }
}

// One block: row sums from the partials, the weights' sum, each row's scale and the output.
__global__ static void loss_finish_kernel(SamxLossSpec s, const float *weight, int64_t rows, int64_t chunks,
                                          int keep_rows, int weight_mean, double scale, const double *partials,
                                          double *sums, double *rowscale, float *out) {
  __shared__ double sh[LOSS_THREADS];
  double wpart = 0;
  for (int64_t r = threadIdx.x; r < rows; r += LOSS_THREADS) {
    samx_loss_row_total(partials, r, chunks, sums);
    wpart += weight ? weight[r] : 1.0;
  }
  double wsum = block_sum(wpart, sh);
  double norm = !weight_mean ? 1.0 : (wsum > 0 ? 1.0 / wsum : 0.0);
  double total = 0;
  for (int64_t r = threadIdx.x; r < rows; r += LOSS_THREADS) {
    rowscale[r] = (weight ? weight[r] : 1.0) * scale * norm;
    double v = rowscale[r] * samx_loss_row_value(&s, sums[2 * r], sums[2 * r + 1]);
    if (keep_rows) out[r] = (float)v;
    total += v;
  }
  total = block_sum(total, sh);
  if (!keep_rows && threadIdx.x == 0) out[0] = (float)total;
}

__global__ static void loss_bwd_kernel(SamxLossSpec s, const float *x, const float *t, const double *sums,
                                       const double *rowscale, const float *gy, int gy_mode, float *gx, int64_t rows,
                                       int64_t cols) {
  int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / cols;
    double g = gy[gy_mode == SAMX_GY_ELEM ? i : (gy_mode == SAMX_GY_ROW ? r : 0)];
    if (rowscale) g *= rowscale[r];
    double a = sums ? sums[2 * r] : 0, b = sums ? sums[2 * r + 1] : 0;
    gx[i] += (float)(g * samx_loss_grad(&s, x[i], t[i], a, b));
  }
}

extern "C" void samx_cuda_loss_elementwise(SamxLossSpec s, const float *x, const float *t, float *out, int64_t n) {
  SAMX_LAUNCH(loss_elementwise_kernel, samx_grid_1d(n, 256), 256, 0)(s, x, t, out, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_loss_reduce(SamxLossSpec s, const float *x, const float *t, const float *weight,
                                      int64_t rows, int64_t cols, int keep_rows, int weight_mean, double scale,
                                      double *partials, double *sums, double *rowscale, float *out) {
  int64_t chunks = samx_loss_chunks(cols);
  // At least one block row: a grid of 0 blocks is a launch error, and the finish kernel must still
  // write the (zero) total when there are no rows.
  dim3 grid((unsigned)chunks, (unsigned)(rows < 1 ? 1 : (rows < 65535 ? rows : 65535)));
  SAMX_LAUNCH(loss_partials_kernel, grid, LOSS_THREADS, 0)(s, x, t, rows, cols, chunks, partials);
  CUDA_LAUNCH_CHECK();
  SAMX_LAUNCH(loss_finish_kernel, 1, LOSS_THREADS, 0)(s, weight, rows, chunks, keep_rows, weight_mean, scale, partials, sums,
                                          rowscale, out);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_loss_bwd(SamxLossSpec s, const float *x, const float *t, const double *sums,
                                   const double *rowscale, const float *gy, int gy_mode, float *gx, int64_t rows,
                                   int64_t cols) {
  int64_t n = rows * cols;
  SAMX_LAUNCH(loss_bwd_kernel, samx_grid_1d(n, 256), 256, 0)(s, x, t, sums, rowscale, gy, gy_mode, gx, rows, cols);
  CUDA_LAUNCH_CHECK();
}
