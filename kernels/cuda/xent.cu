#include "../xent.h"
#include "cuda_common.cuh"

__global__ static void xent_fwd_kernel(const float *x, const int32_t *target, float *loss, float *lse, int64_t N,
                                       int64_t C, int64_t S) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * S; i += (int64_t)gridDim.x * blockDim.x)
    loss[i] = samx_xent_point(x, C, S, i / S, i % S, target[i], &lse[i]);
}

__global__ static void xent_bwd_kernel(const float *x, const int32_t *target, const float *lse, const float *gloss,
                                       float *gx, int64_t N, int64_t C, int64_t S) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * S; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t n = i / S, s = i % S;
    for (int64_t c = 0; c < C; c++) {
      int64_t k = (n * C + c) * S + s;
      gx[k] += samx_xent_grad(x[k], lse[i], c == target[i], gloss[i]);
    }
  }
}

__global__ static void sqrt_fwd_kernel(const float *x, float *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = samx_sqrt_fwd(x[i]);
}

__global__ static void sqrt_bwd_kernel(const float *y, const float *gy, float *gx, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    gx[i] += samx_sqrt_bwd(y[i], gy[i]);
}

extern "C" void samx_cuda_xent_fwd(const float *x, const int32_t *target, float *loss, float *lse, int64_t N, int64_t C,
                                   int64_t S) {
  SAMX_LAUNCH(xent_fwd_kernel, samx_grid_1d(N * S, 256), 256, 0)(x, target, loss, lse, N, C, S);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_xent_bwd(const float *x, const int32_t *target, const float *lse, const float *gloss, float *gx,
                                   int64_t N, int64_t C, int64_t S) {
  SAMX_LAUNCH(xent_bwd_kernel, samx_grid_1d(N * S, 256), 256, 0)(x, target, lse, gloss, gx, N, C, S);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_sqrt_fwd(const float *x, float *y, int64_t n) {
  SAMX_LAUNCH(sqrt_fwd_kernel, samx_grid_1d(n, 256), 256, 0)(x, y, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_sqrt_bwd(const float *y, const float *gy, float *gx, int64_t n) {
  SAMX_LAUNCH(sqrt_bwd_kernel, samx_grid_1d(n, 256), 256, 0)(y, gy, gx, n);
  CUDA_LAUNCH_CHECK();
}
