// Row kernels run `lanes` threads per row: a full warp per row when a row is contiguous
// (LayerNorm: the warp reads it coalesced), one thread per row when rows are interleaved
// (LayerNorm2d: neighbouring threads own neighbouring (h, w) positions, so each channel step is
// one coalesced read across the warp). The lanes of a row combine their partial sums with
// butterfly shuffles, so every lane ends with the same total, in a fixed order.
#include "../norm.h"
#include "cuda_common.cuh"

#define NORM_BLOCK 256

static int row_lanes(int64_t inner) { return inner == 1 ? 32 : 1; }

static unsigned row_grid(int64_t R, int lanes) { return (unsigned)((R * lanes + NORM_BLOCK - 1) / NORM_BLOCK); }

// Sum over the `lanes` threads of a row (lanes a power of two <= 32, rows aligned within the warp).
__device__ static float lane_sum(float v, int lanes) {
  for (int off = lanes / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Threads past the last row leave at once: with row_lanes' 1 lane they shuffle nothing, with 32 the
// whole warp is past it. y may be x: a row is read whole for its statistics before it is written.
__global__ static void norm_fwd_kernel(const float *x, const float *w, const float *b, float *y, float *mean,
                                       float *rstd, int64_t R, int64_t C, int64_t inner, float eps, int lanes) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  int64_t r = t / lanes, lane = t % lanes;
  if (r >= R) return;
  int64_t base = samx_norm_row_base(r, C, inner);
  float m = lane_sum(samx_norm_partial_sum(x + base, C, inner, lane, lanes, 0.0f, 0), lanes) / (float)C;
  float var = lane_sum(samx_norm_partial_sum(x + base, C, inner, lane, lanes, m, 1), lanes) / (float)C;
  float rs = samx_norm_rstd(var, eps);
  for (int64_t c = lane; c < C; c += lanes) y[base + c * inner] = samx_norm_fwd(x[base + c * inner], m, rs, w[c], b[c]);
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

__global__ static void norm_bwd_dx_kernel(const float *x, const float *w, const float *gy, const float *mean,
                                          const float *rstd, float *gx, int64_t R, int64_t C, int64_t inner,
                                          int lanes) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  int64_t r = t / lanes, lane = t % lanes;
  int valid = r < R;
  int64_t rr = valid ? r : 0, base = samx_norm_row_base(rr, C, inner);
  float s_gw, s_gwxhat;
  samx_norm_bwd_partial(x + base, gy + base, w, C, inner, lane, lanes, mean[rr], rstd[rr], &s_gw, &s_gwxhat);
  s_gw = lane_sum(s_gw, lanes) / (float)C;
  s_gwxhat = lane_sum(s_gwxhat, lanes) / (float)C;
  if (!valid) return;
  for (int64_t c = lane; c < C; c += lanes) {
    int64_t i = base + c * inner;
    gx[i] += samx_norm_dx(x[i], gy[i], w[c], mean[r], rstd[r], s_gw, s_gwxhat);
  }
}

// One thread per (chunk, column): consecutive threads take consecutive columns of one chunk.
__global__ static void norm_chunk_colsum_kernel(const float *x, const float *gy, const float *mean, const float *rstd,
                                                float *part_w, float *part_b, int64_t R, int64_t C, int64_t inner,
                                                int64_t rows, int64_t n_chunks) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= n_chunks * C) return;
  int64_t k = t / C, c = t % C;
  int64_t r1 = (k + 1) * rows < R ? (k + 1) * rows : R;
  samx_norm_chunk_colsum(x, gy, mean, rstd, k * rows, r1, c, C, inner, &part_w[t], &part_b[t]);
}

__global__ static void norm_chunk_reduce_kernel(const float *part_w, const float *part_b, float *gw, float *gb,
                                                int64_t C, int64_t n_chunks) {
  int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sw = 0.0f, sb = 0.0f;
  for (int64_t k = 0; k < n_chunks; k++) sw += part_w[k * C + c], sb += part_b[k * C + c];
  if (gw) gw[c] += sw;
  if (gb) gb[c] += sb;
}

extern "C" void samx_cuda_norm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                                   float *rstd, int64_t R, int64_t C, int64_t inner, float eps) {
  if (R == 0) return;
  int lanes = row_lanes(inner);
  SAMX_LAUNCH(norm_fwd_kernel, row_grid(R, lanes), NORM_BLOCK, 0)(x, w, b, y, mean, rstd, R, C, inner, eps, lanes);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_norm_bwd_dx(const float *x, const float *w, const float *gy, const float *mean,
                                      const float *rstd, float *gx, int64_t R, int64_t C, int64_t inner) {
  if (R == 0) return;
  int lanes = row_lanes(inner);
  SAMX_LAUNCH(norm_bwd_dx_kernel, row_grid(R, lanes), NORM_BLOCK, 0)(x, w, gy, mean, rstd, gx, R, C, inner, lanes);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_norm_bwd_dwdb(const float *x, const float *gy, const float *mean, const float *rstd,
                                        float *gw, float *gb, float *part, int64_t R, int64_t C, int64_t inner) {
  if (R == 0 || C == 0) return;  // nothing to add, and a grid of 0 blocks is a launch error
  int64_t rows = samx_norm_chunk_rows(R), n_chunks = samx_norm_n_chunks(R);
  float *part_w = part, *part_b = part + n_chunks * C;
  int64_t n = n_chunks * C;
  SAMX_LAUNCH(norm_chunk_colsum_kernel, (unsigned)((n + NORM_BLOCK - 1) / NORM_BLOCK), NORM_BLOCK, 0)(
      x, gy, mean, rstd, part_w, part_b, R, C, inner, rows, n_chunks);
  CUDA_LAUNCH_CHECK();
  SAMX_LAUNCH(norm_chunk_reduce_kernel, (unsigned)((C + NORM_BLOCK - 1) / NORM_BLOCK), NORM_BLOCK, 0)(part_w, part_b, gw, gb, C,
                                                                                        n_chunks);
  CUDA_LAUNCH_CHECK();
}
