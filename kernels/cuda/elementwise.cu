#include "../elementwise.h"
#include "cuda_common.cuh"

#define BLOCK 256

// Tree reductions over one block of BLOCK threads in a fixed order (deterministic, no atomics);
// every thread gets the result. Callers must reach them from all threads of the block.
template <typename T>
__device__ static T block_sum(T v) {
  __shared__ T s[BLOCK];
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = BLOCK / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  T r = s[0];
  __syncthreads();  // s is reused by the next call
  return r;
}

__device__ static float block_max(float v) {
  __shared__ float s[BLOCK];
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = BLOCK / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] = fmaxf(s[threadIdx.x], s[threadIdx.x + w]);
    __syncthreads();
  }
  float r = s[0];
  __syncthreads();
  return r;
}

// One block per item (row or output), looping when there are more items than blocks.
static unsigned grid_items(int64_t items) {
  const int64_t max_blocks = 1 << 20;
  return (unsigned)(items < 1 ? 1 : (items > max_blocks ? max_blocks : items));
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__global__ static void binary_fwd_kernel(int op, SamxBroadcast g, const float *a, const float *b, float *y,
                                         int64_t n) {
  GRID_STRIDE(i, n) y[i] = samx_binary_fwd(op, a[samx_bcast_offset(&g, 0, i)], b[samx_bcast_offset(&g, 1, i)]);
}

__global__ static void binary_bwd_kernel(int op, int which, SamxBroadcast g, const float *other, const float *gy,
                                         float *gx, int64_t nx) {
  GRID_STRIDE(j, nx) gx[j] += samx_bcast_grad_at(&g, op, which, other, gy, j);
}

__global__ static void affine_kernel(const float *x, float *y, int64_t n, float mul, float add) {
  GRID_STRIDE(i, n) y[i] = x[i] * mul + add;
}

__global__ static void axpy_kernel(float s, const float *x, float *y, int64_t n) {
  GRID_STRIDE(i, n) y[i] += s * x[i];
}

__global__ static void softmax_fwd_kernel(const float *x, float *y, int64_t rows, int64_t d) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float m = -INFINITY;
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) m = fmaxf(m, xr[k]);
    m = block_max(m);
    float sum = 0;
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) sum += expf(xr[k] - m);
    float inv = 1.0f / block_sum(sum);
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) yr[k] = samx_softmax_elem(xr[k], m, inv);
  }
}

__global__ static void softmax_bwd_kernel(const float *y, const float *gy, float *gx, int64_t rows, int64_t d) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *yr = y + r * d, *gr = gy + r * d;
    float dot = 0;
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) dot += gr[k] * yr[k];
    dot = block_sum(dot);
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) gx[r * d + k] += samx_softmax_grad_elem(yr[k], gr[k], dot);
  }
}

// Many outputs or short sums: one thread per output.
__global__ static void sum_thread_kernel(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                         float scale) {
  GRID_STRIDE(j, outer * inner) y[j] = samx_sum_at(x, d, inner, j / inner, j % inner, scale);
}

// Few outputs over long sums (a sum over everything): one block per output.
__global__ static void sum_block_kernel(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                        float scale) {
  for (int64_t j = blockIdx.x; j < outer * inner; j += gridDim.x) {
    const float *p = x + (j / inner) * d * inner + j % inner;
    double acc = 0;
    for (int64_t k = threadIdx.x; k < d; k += BLOCK) acc += p[k * inner];
    acc = block_sum(acc);
    if (threadIdx.x == 0) y[j] = (float)(acc * scale);
  }
}

__global__ static void sum_bwd_kernel(const float *gy, float *gx, int64_t outer, int64_t d, int64_t inner,
                                      float scale) {
  GRID_STRIDE(i, outer * d * inner) gx[i] += scale * gy[(i / (d * inner)) * inner + i % inner];
}

__global__ static void cast_kernel(const void *x, int x_dt, void *y, int y_dt, int64_t n) {
  GRID_STRIDE(i, n) samx_store_from_f32(y, y_dt, i, samx_load_as_f32(x, x_dt, i));
}

extern "C" void samx_cuda_elementwise_binary_fwd(int op, const SamxBroadcast *g, const float *a, const float *b,
                                                 float *y, int64_t n) {
  SAMX_LAUNCH(binary_fwd_kernel, samx_grid_1d(n, BLOCK), BLOCK, 0)(op, *g, a, b, y, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_binary_bwd(int op, int which, const SamxBroadcast *g, const float *other,
                                                 const float *gy, float *gx, int64_t nx) {
  SAMX_LAUNCH(binary_bwd_kernel, samx_grid_1d(nx, BLOCK), BLOCK, 0)(op, which, *g, other, gy, gx, nx);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_affine(const float *x, float *y, int64_t n, float mul, float add) {
  SAMX_LAUNCH(affine_kernel, samx_grid_1d(n, BLOCK), BLOCK, 0)(x, y, n, mul, add);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_axpy(float s, const float *x, float *y, int64_t n) {
  SAMX_LAUNCH(axpy_kernel, samx_grid_1d(n, BLOCK), BLOCK, 0)(s, x, y, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d) {
  SAMX_LAUNCH(softmax_fwd_kernel, grid_items(rows), BLOCK, 0)(x, y, rows, d);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_softmax_bwd(const float *y, const float *gy, float *gx, int64_t rows,
                                                  int64_t d) {
  SAMX_LAUNCH(softmax_bwd_kernel, grid_items(rows), BLOCK, 0)(y, gy, gx, rows, d);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_sum_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                              float scale) {
  int64_t n_out = outer * inner;
  if (n_out < 16384 && d > 64)
    SAMX_LAUNCH(sum_block_kernel, grid_items(n_out), BLOCK, 0)(x, y, outer, d, inner, scale);
  else
    SAMX_LAUNCH(sum_thread_kernel, samx_grid_1d(n_out, BLOCK), BLOCK, 0)(x, y, outer, d, inner, scale);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_sum_bwd(const float *gy, float *gx, int64_t outer, int64_t d, int64_t inner,
                                              float scale) {
  SAMX_LAUNCH(sum_bwd_kernel, samx_grid_1d(outer * d * inner, BLOCK), BLOCK, 0)(gy, gx, outer, d, inner, scale);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_elementwise_cast(const void *x, int x_dt, void *y, int y_dt, int64_t n) {
  SAMX_LAUNCH(cast_kernel, samx_grid_1d(n, BLOCK), BLOCK, 0)(x, x_dt, y, y_dt, n);
  CUDA_LAUNCH_CHECK();
}
