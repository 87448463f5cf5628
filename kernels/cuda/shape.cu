#include "../shape.h"
#include "cuda_common.cuh"

__global__ static void shape_copy_kernel(SamxIndexMap m, int64_t n, int dir, int accumulate, const float *src,
                                         float *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    samx_map_copy_at(&m, dir, accumulate, src, dst, i);
}

extern "C" void samx_cuda_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const float *src,
                                     float *dst) {
  SAMX_LAUNCH(shape_copy_kernel, samx_grid_1d(n, 256), 256, 0)(*m, n, dir, accumulate, src, dst);
  CUDA_LAUNCH_CHECK();
}

__global__ static void shape_move16_kernel(SamxIndexMap m, int64_t n, int dir, const uint16_t *src, uint16_t *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    samx_map_move16_at(&m, dir, src, dst, i);
}

extern "C" void samx_cuda_shape_move16(const SamxIndexMap *m, int64_t n, int dir, const uint16_t *src,
                                       uint16_t *dst) {
  SAMX_LAUNCH(shape_move16_kernel, samx_grid_1d(n, 256), 256, 0)(*m, n, dir, src, dst);
  CUDA_LAUNCH_CHECK();
}
