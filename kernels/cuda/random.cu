#include "../random.h"
#include "cuda_common.cuh"

__global__ static void random_fill_kernel(int kind, float *x, int64_t n, uint64_t seed, uint64_t offset, float a,
                                          float b) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] = samx_random_value(kind, seed, offset + (uint64_t)i, a, b);
}

__global__ static void gaussian_sample_fwd_kernel(const float *mu, const float *log_sigma, float *z, int64_t n,
                                                  uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    z[i] = mu[i] + expf(log_sigma[i]) * samx_philox_normal(seed, offset + (uint64_t)i);
}

__global__ static void gaussian_sample_bwd_kernel(const float *log_sigma, const float *gz, float *gmu,
                                                  float *glog_sigma, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (gmu) gmu[i] += gz[i];
    if (glog_sigma) glog_sigma[i] += gz[i] * expf(log_sigma[i]) * samx_philox_normal(seed, offset + (uint64_t)i);
  }
}

extern "C" void samx_cuda_random_fill(int kind, float *x, int64_t n, uint64_t seed, uint64_t offset, float a,
                                      float b) {
  SAMX_LAUNCH(random_fill_kernel, samx_grid_1d(n, 256), 256, 0)(kind, x, n, seed, offset, a, b);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_gaussian_sample_fwd(const float *mu, const float *log_sigma, float *z, int64_t n,
                                              uint64_t seed, uint64_t offset) {
  SAMX_LAUNCH(gaussian_sample_fwd_kernel, samx_grid_1d(n, 256), 256, 0)(mu, log_sigma, z, n, seed, offset);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_gaussian_sample_bwd(const float *log_sigma, const float *gz, float *gmu, float *glog_sigma,
                                              int64_t n, uint64_t seed, uint64_t offset) {
  SAMX_LAUNCH(gaussian_sample_bwd_kernel, samx_grid_1d(n, 256), 256, 0)(log_sigma, gz, gmu, glog_sigma, n, seed, offset);
  CUDA_LAUNCH_CHECK();
}
