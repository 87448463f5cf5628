#include "../lora.h"
#include "cuda_common.cuh"

__global__ static void lora_merge_kernel(float *w, const float *a, const float *b, int r, int64_t rows, int64_t in,
                                         float sign) {
  int64_t n = rows * in;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    w[i] += sign * samx_lora_delta(a, b, r, in, i / in, i % in);
}

extern "C" void samx_cuda_lora_merge(float *w, const float *a, const float *b, int r, int64_t rows, int64_t in,
                                     float sign) {
  SAMX_LAUNCH(lora_merge_kernel, samx_grid_1d(rows * in, 256), 256, 0)(w, a, b, r, rows, in, sign);
  CUDA_LAUNCH_CHECK();
}
