#include "../fewshot.h"
#include "cuda_common.cuh"

__global__ static void fewshot_wsum_kernel(const float *w, float *wsum, int64_t rows, int64_t P) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x)
    wsum[r] = samx_fewshot_weight_sum(w + r * P, P);
}

__global__ static void fewshot_mean_kernel(const float *z, const float *w, const float *wsum, float *out, int64_t N,
                                           int64_t L, int64_t C, int64_t P) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * L * C; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / C, c = i % C, n = r / L;
    out[i] = samx_fewshot_masked_mean_value(z + (n * C + c) * P, w + r * P, wsum[r], P);
  }
}

__global__ static void fewshot_grad_kernel(const float *w, const float *wsum, const float *gout, float *gz, int64_t N,
                                           int64_t L, int64_t C, int64_t P) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * C * P; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t p = i % P, c = i / P % C, n = i / (P * C);
    gz[i] += samx_fewshot_masked_mean_grad(w + n * L * P, wsum + n * L, gout + n * L * C + c, L, P, C, p);
  }
}

extern "C" void samx_cuda_fewshot_masked_mean_fwd(const float *z, const float *w, float *wsum, float *out, int64_t N,
                                                  int64_t L, int64_t C, int64_t P) {
  SAMX_LAUNCH(fewshot_wsum_kernel, samx_grid_1d((size_t)(N * L), 128), 128, 0)(w, wsum, N * L, P);
  CUDA_LAUNCH_CHECK();
  SAMX_LAUNCH(fewshot_mean_kernel, samx_grid_1d((size_t)(N * L * C), 128), 128, 0)(z, w, wsum, out, N, L, C, P);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_fewshot_masked_mean_bwd(const float *w, const float *wsum, const float *gout, float *gz,
                                                  int64_t N, int64_t L, int64_t C, int64_t P) {
  SAMX_LAUNCH(fewshot_grad_kernel, samx_grid_1d((size_t)(N * C * P), 256), 256, 0)(w, wsum, gout, gz, N, L, C, P);
  CUDA_LAUNCH_CHECK();
}
