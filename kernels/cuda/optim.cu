#include "../optim.h"
#include "cuda_common.cuh"

__global__ static void optim_update_kernel(SamxOptimCoef c, float *p, float *s1, float *s2, const float *g,
                                           int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    samx_optim_update_at(c, p, s1, s2, g, i);
}

extern "C" void samx_cuda_optim_update(SamxOptimCoef c, float *p, float *s1, float *s2, const float *g, int64_t n) {
  if (n == 0) return;
  SAMX_LAUNCH(optim_update_kernel, samx_grid_1d(n, 256), 256, 0)(c, p, s1, s2, g, n);
  CUDA_LAUNCH_CHECK();
}

__global__ static void optim_scale_kernel(float *x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= s;
}

extern "C" void samx_cuda_optim_scale(float *x, float s, int64_t n) {
  if (n == 0) return;
  SAMX_LAUNCH(optim_scale_kernel, samx_grid_1d(n, 256), 256, 0)(x, s, n);
  CUDA_LAUNCH_CHECK();
}

// Deterministic sum of squares: a grid that depends only on n writes one partial per block (fixed
// tree order inside the block), then a single block adds the partials in a fixed order. No atomics.
#define SUMSQ_BLOCK 256
#define SUMSQ_MAX_BLOCKS 1024

// Tree reduction of sh[0..SUMSQ_BLOCK) into sh[0].
__device__ static void block_sum(double *sh) {
  for (int k = SUMSQ_BLOCK / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
    __syncthreads();
  }
}

__global__ static void sumsq_partial_kernel(const float *x, int64_t n, double *partial) {
  __shared__ double sh[SUMSQ_BLOCK];
  double s = 0;
  for (int64_t i = blockIdx.x * (int64_t)SUMSQ_BLOCK + threadIdx.x; i < n; i += (int64_t)gridDim.x * SUMSQ_BLOCK) {
    double v = (double)x[i];
    s += v * v;
  }
  sh[threadIdx.x] = s;
  __syncthreads();
  block_sum(sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

__global__ static void sumsq_final_kernel(const double *partial, int n_partial, double *out) {
  __shared__ double sh[SUMSQ_BLOCK];
  double s = 0;
  for (int i = threadIdx.x; i < n_partial; i += SUMSQ_BLOCK) s += partial[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  block_sum(sh);
  if (threadIdx.x == 0) *out = sh[0];
}

// Partials and the result of each device: allocated once, on first use (not per step).
static double *sumsq_scratch(void) {
  static double *scratch[64];
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (!scratch[dev]) CUDA_CHECK(cudaMalloc(&scratch[dev], (SUMSQ_MAX_BLOCKS + 1) * sizeof(double)));
  return scratch[dev];
}

extern "C" double samx_cuda_optim_sumsq(const float *x, int64_t n) {
  if (n == 0) return 0.0;
  double *partial = sumsq_scratch(), *out = partial + SUMSQ_MAX_BLOCKS;
  int64_t want = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
  int blocks = (int)(want < SUMSQ_MAX_BLOCKS ? want : SUMSQ_MAX_BLOCKS);
  SAMX_LAUNCH(sumsq_partial_kernel, blocks, SUMSQ_BLOCK, 0)(x, n, partial);
  CUDA_LAUNCH_CHECK();
  SAMX_LAUNCH(sumsq_final_kernel, 1, SUMSQ_BLOCK, 0)(partial, blocks, out);
  CUDA_LAUNCH_CHECK();
  double host = 0;
  CUDA_CHECK(cudaMemcpy(&host, out, sizeof host, cudaMemcpyDeviceToHost));
  return host;
}
