#include "../conv.h"
#include "cuda_common.cuh"

#define CONV_BLOCK 256

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__global__ static void im2col_kernel(const float *x, float *cols, SamxConvGeom g) {
  int64_t n_cols = g.Ho * g.Wo;
  GRID_STRIDE(i, g.C * g.kh * g.kw * n_cols) cols[i] = samx_im2col_at(x, g, i / n_cols, i % n_cols);
}

// Gathers per input position (no atomics): each thread owns one element of x.
__global__ static void col2im_kernel(const float *cols, float *x, int accumulate, SamxConvGeom g) {
  GRID_STRIDE(i, g.C * g.H * g.W) {
    float v = samx_col2im_at(cols, g, i / (g.H * g.W), (i / g.W) % g.H, i % g.W);
    x[i] = accumulate ? x[i] + v : v;
  }
}

__global__ static void bias_act_kernel(const float *y32, const float *bias, int act, void *y, int y_bf16, int64_t C,
                                       int64_t HW, int64_t n) {
  GRID_STRIDE(i, n) samx_conv_store(y, y_bf16, i, samx_conv_bias_act(y32[i], bias ? bias[(i / HW) % C] : 0.0f, act));
}

// One block per channel; a fixed tree in shared memory keeps the sum deterministic.
__global__ static void bias_grad_kernel(const float *gy, float *gbias, int64_t B, int64_t C, int64_t HW) {
  __shared__ float part[CONV_BLOCK];
  int64_t c = blockIdx.x;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < B * HW; j += CONV_BLOCK) s += gy[((j / HW) * C + c) * HW + j % HW];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int off = CONV_BLOCK / 2; off > 0; off /= 2) {
    if (threadIdx.x < off) part[threadIdx.x] += part[threadIdx.x + off];
    __syncthreads();
  }
  if (threadIdx.x == 0) gbias[c] += part[0];
}

__global__ static void resize_bilinear_fwd_kernel(const float *x, float *y, int64_t planes, int64_t H, int64_t W,
                                                  int64_t Ho, int64_t Wo) {
  GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t p = i / (Ho * Wo), oy = (i / Wo) % Ho, ox = i % Wo;
    y[i] = samx_bilinear_at(x + p * H * W, H, W, Ho, Wo, oy, ox);
  }
}

__global__ static void resize_bilinear_bwd_kernel(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W,
                                                  int64_t Ho, int64_t Wo) {
  GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t p = i / (Ho * Wo), oy = (i / Wo) % Ho, ox = i % Wo;
    int64_t idx[4];
    float wt[4];
    samx_bilinear_corners(H, W, Ho, Wo, oy, ox, idx, wt);
    for (int k = 0; k < 4; k++) atomicAdd(&gx[p * H * W + idx[k]], wt[k] * gy[i]);
  }
}

__global__ static void avg_pool2_fwd_kernel(const float *x, float *y, int64_t planes, int64_t H, int64_t W) {
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2;
  GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t p = i / (Ho * Wo), oy = (i / Wo) % Ho, ox = i % Wo;
    y[i] = samx_avg_pool2_at(x + p * H * W, H, W, oy, ox);
  }
}

// A gather (each input element reads its one window): no atomics, the CPU's sums exactly.
__global__ static void avg_pool2_bwd_kernel(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2;
  GRID_STRIDE(i, planes * H * W) {
    int64_t p = i / (H * W), iy = (i / W) % H, ix = i % W;
    gx[i] += samx_avg_pool2_grad_at(gy + p * Ho * Wo, H, W, iy, ix);
  }
}

extern "C" void samx_cuda_conv_im2col(const float *x, float *cols, SamxConvGeom g) {
  SAMX_LAUNCH(im2col_kernel, samx_grid_1d(g.C * g.kh * g.kw * g.Ho * g.Wo, CONV_BLOCK), CONV_BLOCK, 0)(x, cols, g);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_conv_col2im(const float *cols, float *x, int accumulate, SamxConvGeom g) {
  SAMX_LAUNCH(col2im_kernel, samx_grid_1d(g.C * g.H * g.W, CONV_BLOCK), CONV_BLOCK, 0)(cols, x, accumulate, g);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_conv_bias_act(const float *y32, const float *bias, int act, void *y, int y_bf16, int64_t B,
                                        int64_t C, int64_t HW) {
  int64_t n = B * C * HW;
  if (n == 0) return;
  SAMX_LAUNCH(bias_act_kernel, samx_grid_1d(n, CONV_BLOCK), CONV_BLOCK, 0)(y32, bias, act, y, y_bf16, C, HW, n);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_conv_bias_grad(const float *gy, float *gbias, int64_t B, int64_t C, int64_t HW) {
  if (C == 0) return;
  SAMX_LAUNCH(bias_grad_kernel, (unsigned)C, CONV_BLOCK, 0)(gy, gbias, B, C, HW);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_resize_bilinear_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W,
                                              int64_t Ho, int64_t Wo) {
  SAMX_LAUNCH(resize_bilinear_fwd_kernel, samx_grid_1d(planes * Ho * Wo, CONV_BLOCK), CONV_BLOCK, 0)(x, y, planes, H, W, Ho, Wo);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_resize_bilinear_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W,
                                              int64_t Ho, int64_t Wo) {
  SAMX_LAUNCH(resize_bilinear_bwd_kernel, samx_grid_1d(planes * Ho * Wo, CONV_BLOCK), CONV_BLOCK, 0)(gy, gx, planes, H, W, Ho,
                                                                                          Wo);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_avg_pool2_fwd(const float *x, float *y, int64_t planes, int64_t H, int64_t W) {
  int64_t n = planes * ((H + 1) / 2) * ((W + 1) / 2);
  if (n == 0) return;
  SAMX_LAUNCH(avg_pool2_fwd_kernel, samx_grid_1d(n, CONV_BLOCK), CONV_BLOCK, 0)(x, y, planes, H, W);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_avg_pool2_bwd(const float *gy, float *gx, int64_t planes, int64_t H, int64_t W) {
  if (planes * H * W == 0) return;
  SAMX_LAUNCH(avg_pool2_bwd_kernel, samx_grid_1d(planes * H * W, CONV_BLOCK), CONV_BLOCK, 0)(gy, gx, planes, H, W);
  CUDA_LAUNCH_CHECK();
}
