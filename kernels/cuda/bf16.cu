// bf16 activations between the GEMMs (kernels/bf16.h): 8 elements (16 bytes) per load where aligned.
#include "../bf16.h"
#include "cuda_common.cuh"

#define BF16_BLOCK 256

struct alignas(16) BF16x8 {
  uint16_t v[SAMX_BF16_CHUNK];
};

static int aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// Chunk i of 8 elements (n of them valid) into v: one 16-byte load when whole and aligned.
__device__ static int load_chunk(const uint16_t *x, int64_t n_total, int64_t c0, int vec, uint16_t *v) {
  int n = n_total - c0 < SAMX_BF16_CHUNK ? (int)(n_total - c0) : SAMX_BF16_CHUNK;
  if (vec && n == SAMX_BF16_CHUNK) {
    BF16x8 in = *(const BF16x8 *)(x + c0);
    for (int e = 0; e < SAMX_BF16_CHUNK; e++) v[e] = in.v[e];
  } else {
    for (int e = 0; e < n; e++) v[e] = x[c0 + e];
  }
  return n;
}

__device__ static void store_chunk(uint16_t *y, int64_t c0, int n, int vec, const uint16_t *v) {
  if (vec && n == SAMX_BF16_CHUNK) {
    BF16x8 out;
    for (int e = 0; e < SAMX_BF16_CHUNK; e++) out.v[e] = v[e];
    *(BF16x8 *)(y + c0) = out;
  } else {
    for (int e = 0; e < n; e++) y[c0 + e] = v[e];
  }
}

// One thread per chunk of 8: y = act(x), or y = a + b when b [nb] is given (repeated over a; its chunk is
// one vector load when nb is a multiple of 8, so that no chunk wraps).
__global__ static void pointwise_kernel(int kind, const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n,
                                        int64_t nb, int vec) {
  int64_t stride = (int64_t)gridDim.x * blockDim.x * SAMX_BF16_CHUNK;
  for (int64_t c0 = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) * SAMX_BF16_CHUNK; c0 < n; c0 += stride) {
    uint16_t va[SAMX_BF16_CHUNK], vb[SAMX_BF16_CHUNK];
    int m = load_chunk(a, n, c0, vec, va);
    if (b) {
      if (nb % SAMX_BF16_CHUNK == 0)
        load_chunk(b, nb, c0 % nb, vec, vb);
      else
        for (int e = 0; e < m; e++) vb[e] = b[(c0 + e) % nb];
      for (int e = 0; e < m; e++) va[e] = samx_bf16_add(va[e], vb[e]);
    } else {
      for (int e = 0; e < m; e++) va[e] = samx_bf16_act(kind, va[e]);
    }
    store_chunk(y, c0, m, vec, va);
  }
}

static void pointwise(int kind, const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n, int64_t nb) {
  if (n <= 0) return;
  int vec = aligned16(a) && aligned16(y) && (!b || aligned16(b));
  unsigned grid = samx_grid_1d((size_t)((n + SAMX_BF16_CHUNK - 1) / SAMX_BF16_CHUNK), BF16_BLOCK);
  SAMX_LAUNCH(pointwise_kernel, grid, BF16_BLOCK, 0)(kind, a, b, y, n, nb, vec);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_bf16_act(int kind, const uint16_t *x, uint16_t *y, int64_t n) {
  pointwise(kind, x, NULL, y, n, n);
}

// One thread per chunk of 8: gx += dL/dx from the bf16 x and y (16-byte loads) and the fp32 gy.
__global__ static void act_bwd_kernel(int kind, const uint16_t *x, const uint16_t *y, const float *gy, float *gx,
                                      int64_t n, int vec) {
  int64_t stride = (int64_t)gridDim.x * blockDim.x * SAMX_BF16_CHUNK;
  for (int64_t c0 = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) * SAMX_BF16_CHUNK; c0 < n; c0 += stride) {
    uint16_t vx[SAMX_BF16_CHUNK], vy[SAMX_BF16_CHUNK];
    int m = load_chunk(x, n, c0, vec, vx);
    load_chunk(y, n, c0, vec, vy);
    for (int e = 0; e < m; e++) gx[c0 + e] += samx_bf16_act_bwd(kind, vx[e], vy[e], gy[c0 + e]);
  }
}

extern "C" void samx_cuda_bf16_act_bwd(int kind, const uint16_t *x, const uint16_t *y, const float *gy, float *gx,
                                       int64_t n) {
  if (n <= 0) return;
  int vec = aligned16(x) && aligned16(y);
  unsigned grid = samx_grid_1d((size_t)((n + SAMX_BF16_CHUNK - 1) / SAMX_BF16_CHUNK), BF16_BLOCK);
  SAMX_LAUNCH(act_bwd_kernel, grid, BF16_BLOCK, 0)(kind, x, y, gy, gx, n, vec);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_bf16_add(const uint16_t *a, const uint16_t *b, uint16_t *y, int64_t n, int64_t nb) {
  pointwise(0, a, b, y, n, nb);
}

// This lane's sum over its chunks of row x [C], then the warp's butterfly total (kernels/bf16.h).
__device__ static float row_sum(const uint16_t *x, int64_t C, int lane, int vec, float center, int squares) {
  float acc = 0.0f;
  for (int64_t c0 = (int64_t)lane * SAMX_BF16_CHUNK; c0 < C; c0 += SAMX_BF16_LANES * SAMX_BF16_CHUNK) {
    uint16_t v[SAMX_BF16_CHUNK];
    int n = load_chunk(x, C, c0, vec, v);
    acc = samx_bf16_sum(acc, v, n, 1, center, squares);
  }
  for (int off = SAMX_BF16_LANES / 2; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  return acc;
}

// A warp per row (blocks are whole warps, so a warp past the last row leaves as one and every shuffle
// has all 32 lanes). y may be x: a row is read whole for its statistics before its warp writes it.
__global__ static void layernorm_kernel(const uint16_t *x, const float *w, const float *b, uint16_t *y, float *mean,
                                        float *rstd, int64_t R, int64_t C, float eps, int vec) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  int64_t r = t / SAMX_BF16_LANES;
  int lane = (int)(t % SAMX_BF16_LANES);
  if (r >= R) return;
  const uint16_t *xr = x + r * C;
  float m = row_sum(xr, C, lane, vec, 0.0f, 0) / (float)C;
  float rs = samx_norm_rstd(row_sum(xr, C, lane, vec, m, 1) / (float)C, eps);
  for (int64_t c0 = (int64_t)lane * SAMX_BF16_CHUNK; c0 < C; c0 += SAMX_BF16_LANES * SAMX_BF16_CHUNK) {
    uint16_t v[SAMX_BF16_CHUNK];
    int n = load_chunk(xr, C, c0, vec, v);
    for (int e = 0; e < n; e++) v[e] = samx_bf16_norm(v[e], m, rs, w[c0 + e], b[c0 + e]);
    store_chunk(y + r * C, c0, n, vec, v);
  }
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// A thread per row (LayerNorm2d): neighbouring threads own neighbouring pixels, so each channel step
// is one coalesced read across the warp.
__global__ static void layernorm_strided_kernel(const uint16_t *x, const float *w, const float *b, uint16_t *y,
                                                float *mean, float *rstd, int64_t R, int64_t C, int64_t inner,
                                                float eps) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < R; r += (int64_t)gridDim.x * blockDim.x)
    samx_bf16_norm_strided_row(x, w, b, y, mean, rstd, r, C, inner, eps);
}

extern "C" void samx_cuda_bf16_layernorm(const uint16_t *x, const float *w, const float *b, uint16_t *y, float *mean,
                                         float *rstd, int64_t R, int64_t C, int64_t inner, float eps) {
  if (R <= 0 || C <= 0) return;
  if (inner > 1) {
    SAMX_LAUNCH(layernorm_strided_kernel, samx_grid_1d((size_t)R, BF16_BLOCK), BF16_BLOCK, 0)(x, w, b, y, mean, rstd,
                                                                                             R, C, inner, eps);
    CUDA_LAUNCH_CHECK();
    return;
  }
  // Rows start 16-byte aligned when the tensors do and C is a multiple of 8.
  int vec = aligned16(x) && aligned16(y) && C % SAMX_BF16_CHUNK == 0;
  unsigned grid = (unsigned)((R * SAMX_BF16_LANES + BF16_BLOCK - 1) / BF16_BLOCK);
  SAMX_LAUNCH(layernorm_kernel, grid, BF16_BLOCK, 0)(x, w, b, y, mean, rstd, R, C, eps, vec);
  CUDA_LAUNCH_CHECK();
}
