// The reparameterised Gaussian sample with a given eps (kernels/random.h: samx_reparam_*).
#include "../random.h"
#include "cuda_common.cuh"

__global__ static void reparam_fwd_kernel(const float *mu, const float *log_sigma, const float *eps, float *z,
                                          int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    z[i] = samx_reparam_value(mu[i], log_sigma[i], eps[i]);
}

__global__ static void reparam_bwd_kernel(const float *log_sigma, const float *eps, const float *gz, float *gmu,
                                          float *glog_sigma, float *geps, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (gmu) gmu[i] += gz[i];
    if (glog_sigma) glog_sigma[i] += samx_reparam_grad_log_sigma(gz[i], log_sigma[i], eps[i]);
    if (geps) geps[i] += samx_reparam_grad_eps(gz[i], log_sigma[i]);
  }
}

extern "C" void samx_cuda_reparam_fwd(const float *mu, const float *log_sigma, const float *eps, float *z, int64_t n) {
  SAMX_LAUNCH(reparam_fwd_kernel, samx_grid_1d(n, 256), 256, 0)(mu, log_sigma, eps, z, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_reparam_bwd(const float *log_sigma, const float *eps, const float *gz, float *gmu,
                                      float *glog_sigma, float *geps, int64_t n) {
  SAMX_LAUNCH(reparam_bwd_kernel, samx_grid_1d(n, 256), 256, 0)(log_sigma, eps, gz, gmu, glog_sigma, geps, n);
  CUDA_LAUNCH_CHECK();
}
