#include "../activation.h"
#include "cuda_common.cuh"

__global__ static void act_fwd_kernel(int kind, const float *x, float *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = samx_act_fwd(kind, x[i]);
}

__global__ static void act_bwd_kernel(int kind, const float *x, const float *y, const float *gy, float *gx,
                                      int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    gx[i] += samx_act_bwd(kind, x[i], y[i], gy[i]);
}

extern "C" void samx_cuda_act_fwd(int kind, const float *x, float *y, int64_t n) {
  SAMX_LAUNCH(act_fwd_kernel, samx_grid_1d(n, 256), 256, 0)(kind, x, y, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_act_bwd(int kind, const float *x, const float *y, const float *gy, float *gx, int64_t n) {
  SAMX_LAUNCH(act_bwd_kernel, samx_grid_1d(n, 256), 256, 0)(kind, x, y, gy, gx, n);
  CUDA_LAUNCH_CHECK();
}
