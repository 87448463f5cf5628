// Fused attention (flash-attention style, fp32): the Tq x Tk logits never reach global memory.
//
// Work split shared by the three main kernels: a block of WARPS warps owns BLOCK_ROWS "own" rows
// of one (b, h) head (query rows in forward and dq, key rows in dk/dv), ROWS per warp, and loops
// over tiles of TILE "partner" rows (keys, or queries) staged in shared memory. For each tile a
// lane computes the dot products of the warp's own rows with partner lane, then lanes switch to
// splitting the head dim (dims lane, lane + 32, ...: NC chunks of 32) to accumulate the
// products, taking each partner's weight from its lane with __shfl_sync. Tiles read one row per
// lane are stored with a padded stride (D + 1) so those reads are free of bank conflicts.
//
// Backward (flash-attention-2 order): delta_i = <dout_i, out_i>; dk, dv by key blocks; dq and the
// bias gradients by query blocks, each recomputing p = exp(logit - lse). Every output element
// has one owning thread that adds into it in a fixed order: no atomics, deterministic.
#include "../../engine/error.h"
#include "../attention.h"
#include "cuda_common.cuh"

#define WARPS 4
#define ROWS 4
#define BLOCK_ROWS (WARPS * ROWS)
#define TILE 32
#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(FULL_MASK, x, o);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(FULL_MASK, x, o));
  return x;
}

// Rows r0 .. r0+n-1 of a [T, D] matrix into shared memory (row stride `stride`); zeros past T.
__device__ void load_rows(float *dst, int stride, const float *src, int r0, int n, int T, int D) {
  for (int t = threadIdx.x; t < n * D; t += blockDim.x) {
    int r = t / D, c = t % D;
    dst[r * stride + c] = r0 + r < T ? src[(int64_t)(r0 + r) * D + c] : 0.0f;
  }
}

// Entries r0 .. r0+n-1 of a vector into shared memory; zeros past T.
__device__ void load_vec(float *dst, const float *src, int r0, int n, int T) {
  for (int t = threadIdx.x; t < n; t += blockDim.x) dst[t] = r0 + t < T ? src[r0 + t] : 0.0f;
}

// Bias of (query i, key j) within one head (rel_h, rel_w at the head; NULL: no bias).
__device__ __forceinline__ float bias_at(const float *rel_h, const float *rel_w, int KH, int KW, int i, int j) {
  if (!rel_h) return 0.0f;
  return samx_attn_bias(rel_h + (int64_t)i * KH, rel_w + (int64_t)i * KW, KW, j);
}

// Logit of (query i, key j) from their dot product; -inf for a key past Tk (weight 0 in softmax).
__device__ __forceinline__ float logit_at(const SamxAttnDims &d, const float *rel_h, const float *rel_w, float qk,
                                          int i, int j) {
  if (j >= (int)d.Tk) return -INFINITY;
  float bias = i < (int)d.Tq ? bias_at(rel_h, rel_w, (int)d.KH, (int)d.KW, i, j) : 0.0f;
  return samx_attn_logit(qk, d.scale, bias);
}

// ---- forward: one block per (head, 16 query rows); online softmax over key tiles ----
template <int NC>
__global__ void __launch_bounds__(WARPS * 32)
    attn_fwd_kernel(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                    const float *rel_w, float *out, float *lse) {
  SAMX_EXTERN_SHARED(float, smem);
  const int D = (int)d.D, Tq = (int)d.Tq, Tk = (int)d.Tk, ps = D + 1;
  float *qs = smem;                   // [BLOCK_ROWS][D] own query rows (read as broadcasts)
  float *kt = qs + BLOCK_ROWS * D;    // [TILE][D + 1] key tile, one key per lane
  float *vt = kt + TILE * ps;         // [TILE][D]     value tile, read along D
  const int64_t bh = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i0 = blockIdx.y * BLOCK_ROWS;
  q += bh * Tq * D, k += bh * Tk * D, v += bh * Tk * D, out += bh * Tq * D;
  if (rel_h) rel_h += bh * Tq * d.KH, rel_w += bh * Tq * d.KW;
  if (lse) lse += bh * Tq;
  load_rows(qs, D, q, i0, BLOCK_ROWS, Tq, D);

  float m[ROWS], l[ROWS], o[ROWS][NC];
  for (int r = 0; r < ROWS; r++) {
    m[r] = -INFINITY, l[r] = 0.0f;
    for (int c = 0; c < NC; c++) o[r][c] = 0.0f;
  }
  for (int j0 = 0; j0 < Tk; j0 += TILE) {
    __syncthreads();  // the previous tile is consumed
    load_rows(kt, ps, k, j0, TILE, Tk, D);
    load_rows(vt, D, v, j0, TILE, Tk, D);
    __syncthreads();
    float s[ROWS] = {0};
    for (int c = 0; c < D; c++) {
      float kc = kt[lane * ps + c];
      for (int r = 0; r < ROWS; r++) s[r] += qs[(warp * ROWS + r) * D + c] * kc;
    }
    for (int r = 0; r < ROWS; r++) {
      float x = logit_at(d, rel_h, rel_w, s[r], i0 + warp * ROWS + r, j0 + lane);
      // The tile holds at least one key, so m_new is finite; alpha is 0 on the first tile.
      float m_new = fmaxf(m[r], warp_max(x));
      float p = expf(x - m_new), alpha = expf(m[r] - m_new);
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = m_new;
      for (int c = 0; c < NC; c++) o[r][c] *= alpha;
      s[r] = p;
    }
    const int nj = min(TILE, Tk - j0);
    for (int jj = 0; jj < nj; jj++) {
      float vc[NC];
      for (int c = 0; c < NC; c++) vc[c] = lane + 32 * c < D ? vt[jj * D + lane + 32 * c] : 0.0f;
      for (int r = 0; r < ROWS; r++) {
        float p = __shfl_sync(FULL_MASK, s[r], jj);
        for (int c = 0; c < NC; c++) o[r][c] += p * vc[c];
      }
    }
  }
  for (int r = 0; r < ROWS; r++) {
    const int i = i0 + warp * ROWS + r;
    if (i >= Tq) continue;
    for (int c = 0; c < NC; c++)
      if (lane + 32 * c < D) out[(int64_t)i * D + lane + 32 * c] = o[r][c] / l[r];
    if (lse && lane == 0) lse[i] = samx_attn_lse(m[r], l[r]);
  }
}

// ---- backward ----

// delta[row] = <dout_row, out_row>, one warp per row.
__global__ void attn_delta_kernel(const float *out, const float *dout, float *delta, int64_t rows, int D) {
  const int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;  // whole warps leave together
  float s = 0.0f;
  for (int c = lane; c < D; c += 32) s += out[row * D + c] * dout[row * D + c];
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

// dk, dv of 16 keys of one head per block, over tiles of 32 queries (one per lane).
template <int NC>
__global__ void __launch_bounds__(WARPS * 32)
    attn_dkdv_kernel(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                     const float *rel_w, const float *lse, const float *delta, const float *dout, float *dk,
                     float *dv) {
  SAMX_EXTERN_SHARED(float, smem);
  const int D = (int)d.D, Tq = (int)d.Tq, Tk = (int)d.Tk, ps = D + 1;
  float *ks = smem;                 // [BLOCK_ROWS][D] own keys
  float *vs = ks + BLOCK_ROWS * D;  // [BLOCK_ROWS][D] own values
  float *qt = vs + BLOCK_ROWS * D;  // [TILE][D + 1] query tile
  float *gt = qt + TILE * ps;       // [TILE][D + 1] dout tile
  float *lt = gt + TILE * ps;       // [TILE] lse tile
  float *dt = lt + TILE;            // [TILE] delta tile
  const int64_t bh = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, j0 = blockIdx.y * BLOCK_ROWS;
  q += bh * Tq * D, dout += bh * Tq * D, k += bh * Tk * D, v += bh * Tk * D, lse += bh * Tq, delta += bh * Tq;
  if (dk) dk += bh * Tk * D;
  if (dv) dv += bh * Tk * D;
  if (rel_h) rel_h += bh * Tq * d.KH, rel_w += bh * Tq * d.KW;
  load_rows(ks, D, k, j0, BLOCK_ROWS, Tk, D);
  load_rows(vs, D, v, j0, BLOCK_ROWS, Tk, D);

  float gk[ROWS][NC], gv[ROWS][NC];
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c < NC; c++) gk[r][c] = gv[r][c] = 0.0f;
  for (int i0 = 0; i0 < Tq; i0 += TILE) {
    __syncthreads();
    load_rows(qt, ps, q, i0, TILE, Tq, D);
    load_rows(gt, ps, dout, i0, TILE, Tq, D);
    load_vec(lt, lse, i0, TILE, Tq);
    load_vec(dt, delta, i0, TILE, Tq);
    __syncthreads();
    float s[ROWS] = {0}, dp[ROWS] = {0};
    for (int c = 0; c < D; c++) {
      float qc = qt[lane * ps + c], gc = gt[lane * ps + c];
      for (int r = 0; r < ROWS; r++) {
        s[r] += qc * ks[(warp * ROWS + r) * D + c];
        dp[r] += gc * vs[(warp * ROWS + r) * D + c];
      }
    }
    const int i = i0 + lane;
    float p[ROWS], ds[ROWS];
    for (int r = 0; r < ROWS; r++) {
      const int j = j0 + warp * ROWS + r;
      p[r] = i < Tq && j < Tk ? samx_attn_prob(logit_at(d, rel_h, rel_w, s[r], i, j), lt[lane]) : 0.0f;
      ds[r] = samx_attn_dlogit(p[r], dp[r], dt[lane]);
    }
    const int ni = min(TILE, Tq - i0);
    for (int ii = 0; ii < ni; ii++) {
      float qc[NC], gc[NC];
      for (int c = 0; c < NC; c++) {
        const bool in_d = lane + 32 * c < D;
        qc[c] = in_d ? qt[ii * ps + lane + 32 * c] : 0.0f;
        gc[c] = in_d ? gt[ii * ps + lane + 32 * c] : 0.0f;
      }
      for (int r = 0; r < ROWS; r++) {
        float pr = __shfl_sync(FULL_MASK, p[r], ii), dsr = __shfl_sync(FULL_MASK, ds[r], ii);
        for (int c = 0; c < NC; c++) {
          gv[r][c] += pr * gc[c];
          gk[r][c] += dsr * qc[c];
        }
      }
    }
  }
  for (int r = 0; r < ROWS; r++) {
    const int j = j0 + warp * ROWS + r;
    if (j >= Tk) continue;
    for (int c = 0; c < NC; c++) {
      const int e = lane + 32 * c;
      if (e >= D) continue;
      if (dk) dk[(int64_t)j * D + e] += d.scale * gk[r][c];
      if (dv) dv[(int64_t)j * D + e] += gv[r][c];
    }
  }
}

// dq, drel_h, drel_w of 16 query rows of one head per block, over tiles of 32 keys (one per lane).
// The bias gradients of a row are summed in shared memory: entry kh (or kw) is only ever touched
// by lane kh % 32, in key order, so no two lanes race.
template <int NC>
__global__ void __launch_bounds__(WARPS * 32)
    attn_dq_kernel(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                   const float *rel_w, const float *lse, const float *delta, const float *dout, float *dq,
                   float *drel_h, float *drel_w) {
  SAMX_EXTERN_SHARED(float, smem);
  const int D = (int)d.D, Tq = (int)d.Tq, Tk = (int)d.Tk, KH = (int)d.KH, KW = (int)d.KW, ps = D + 1;
  float *qs = smem;                   // [BLOCK_ROWS][D] own query rows
  float *gs = qs + BLOCK_ROWS * D;    // [BLOCK_ROWS][D] their dout rows
  float *kt = gs + BLOCK_ROWS * D;    // [TILE][D + 1] key tile
  float *vt = kt + TILE * ps;         // [TILE][D + 1] value tile
  float *grh = vt + TILE * ps;        // [BLOCK_ROWS][KH] bias gradient sums (when wanted)
  float *grw = grh + BLOCK_ROWS * KH; // [BLOCK_ROWS][KW]
  const int64_t bh = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i0 = blockIdx.y * BLOCK_ROWS;
  q += bh * Tq * D, dout += bh * Tq * D, k += bh * Tk * D, v += bh * Tk * D, lse += bh * Tq, delta += bh * Tq;
  if (dq) dq += bh * Tq * D;
  if (rel_h) rel_h += bh * Tq * KH, rel_w += bh * Tq * KW;
  if (drel_h) drel_h += bh * Tq * KH;
  if (drel_w) drel_w += bh * Tq * KW;
  const bool want_rel = drel_h || drel_w;
  load_rows(qs, D, q, i0, BLOCK_ROWS, Tq, D);
  load_rows(gs, D, dout, i0, BLOCK_ROWS, Tq, D);
  if (want_rel) {
    float *rows_h = grh + warp * ROWS * KH, *rows_w = grw + warp * ROWS * KW;
    for (int t = lane; t < ROWS * KH; t += 32) rows_h[t] = 0.0f;
    for (int t = lane; t < ROWS * KW; t += 32) rows_w[t] = 0.0f;
    __syncwarp();
  }

  float L[ROWS], dl[ROWS], g[ROWS][NC];
  for (int r = 0; r < ROWS; r++) {
    const int i = i0 + warp * ROWS + r;
    L[r] = i < Tq ? lse[i] : 0.0f;
    dl[r] = i < Tq ? delta[i] : 0.0f;
    for (int c = 0; c < NC; c++) g[r][c] = 0.0f;
  }
  for (int j0 = 0; j0 < Tk; j0 += TILE) {
    __syncthreads();
    load_rows(kt, ps, k, j0, TILE, Tk, D);
    load_rows(vt, ps, v, j0, TILE, Tk, D);
    __syncthreads();
    float s[ROWS] = {0}, dp[ROWS] = {0};
    for (int c = 0; c < D; c++) {
      float kc = kt[lane * ps + c], vc = vt[lane * ps + c];
      for (int r = 0; r < ROWS; r++) {
        s[r] += qs[(warp * ROWS + r) * D + c] * kc;
        dp[r] += gs[(warp * ROWS + r) * D + c] * vc;
      }
    }
    const int j = j0 + lane;
    float ds[ROWS];
    for (int r = 0; r < ROWS; r++) {
      const int i = i0 + warp * ROWS + r;
      float p = i < Tq && j < Tk ? samx_attn_prob(logit_at(d, rel_h, rel_w, s[r], i, j), L[r]) : 0.0f;
      ds[r] = samx_attn_dlogit(p, dp[r], dl[r]);
    }
    const int nj = min(TILE, Tk - j0);
    for (int jj = 0; jj < nj; jj++) {
      float kc[NC];
      for (int c = 0; c < NC; c++) kc[c] = lane + 32 * c < D ? kt[jj * ps + lane + 32 * c] : 0.0f;
      const int kh = want_rel ? (j0 + jj) / KW : 0, kw = want_rel ? (j0 + jj) % KW : 0;
      for (int r = 0; r < ROWS; r++) {
        const float dsr = __shfl_sync(FULL_MASK, ds[r], jj);
        for (int c = 0; c < NC; c++) g[r][c] += dsr * kc[c];
        if (want_rel) {
          const int row = warp * ROWS + r;
          if (lane == kh % 32) grh[row * KH + kh] += dsr;
          if (lane == kw % 32) grw[row * KW + kw] += dsr;
        }
      }
    }
  }
  for (int r = 0; r < ROWS; r++) {
    const int i = i0 + warp * ROWS + r, row = warp * ROWS + r;
    if (i >= Tq) continue;
    if (dq)
      for (int c = 0; c < NC; c++)
        if (lane + 32 * c < D) dq[(int64_t)i * D + lane + 32 * c] += d.scale * g[r][c];
    // Each lane reads back exactly the entries it summed.
    if (drel_h)
      for (int kh = lane; kh < KH; kh += 32) drel_h[(int64_t)i * KH + kh] += grh[row * KH + kh];
    if (drel_w)
      for (int kw = lane; kw < KW; kw += 32) drel_w[(int64_t)i * KW + kw] += grw[row * KW + kw];
  }
}

// ---- launchers ----

static dim3 grid_of(const SamxAttnDims &d, int64_t rows) {
  const int64_t heads = d.B * d.H, blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
  SAMX_ASSERT(heads <= 0x7fffffff && blocks <= 65535 && d.Tq * d.D < 0x7fffffff && d.Tk * d.D < 0x7fffffff,
              "attention: B*H = %lld heads, Tq = %lld, Tk = %lld, D = %lld exceed the CUDA grid", (long long)heads,
              (long long)d.Tq, (long long)d.Tk, (long long)d.D);
  return dim3((unsigned)heads, (unsigned)blocks);
}

template <int NC>
static void launch_fwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                       const float *rel_w, float *out, float *lse) {
  const size_t smem = (size_t)(BLOCK_ROWS * d.D + TILE * (d.D + 1) + TILE * d.D) * sizeof(float);
  samx_cuda_set_smem(attn_fwd_kernel<NC>, smem, "attention forward");
  SAMX_LAUNCH(attn_fwd_kernel<NC>, grid_of(d, d.Tq), WARPS * 32, smem)(d, q, k, v, rel_h, rel_w, out, lse);
  CUDA_LAUNCH_CHECK();
}

template <int NC>
static void launch_bwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                       const float *rel_w, const float *lse, const float *delta, const float *dout, float *dq,
                       float *dk, float *dv, float *drel_h, float *drel_w) {
  if (dk || dv) {
    const size_t smem = (size_t)(2 * BLOCK_ROWS * d.D + 2 * TILE * (d.D + 1) + 2 * TILE) * sizeof(float);
    samx_cuda_set_smem(attn_dkdv_kernel<NC>, smem, "attention backward dk/dv");
    SAMX_LAUNCH(attn_dkdv_kernel<NC>, grid_of(d, d.Tk), WARPS * 32, smem)(d, q, k, v, rel_h, rel_w, lse, delta, dout, dk, dv);
    CUDA_LAUNCH_CHECK();
  }
  if (dq || drel_h || drel_w) {
    const int64_t rel = drel_h || drel_w ? BLOCK_ROWS * (d.KH + d.KW) : 0;
    const size_t smem = (size_t)(2 * BLOCK_ROWS * d.D + 2 * TILE * (d.D + 1) + rel) * sizeof(float);
    samx_cuda_set_smem(attn_dq_kernel<NC>, smem, "attention backward dq");
    SAMX_LAUNCH(attn_dq_kernel<NC>, grid_of(d, d.Tq), WARPS * 32, smem)(d, q, k, v, rel_h, rel_w, lse, delta, dout, dq,
                                                                drel_h, drel_w);
    CUDA_LAUNCH_CHECK();
  }
}

// NC = number of 32-wide chunks of the head dim a lane accumulates.
static int n_chunks(const SamxAttnDims &d) {
  SAMX_ASSERT(d.D >= 1 && d.D <= SAMX_ATTN_MAX_D, "attention: head dim %lld not in [1, %d]", (long long)d.D,
              SAMX_ATTN_MAX_D);
  return (int)((d.D + 31) / 32);
}

extern "C" void samx_cuda_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                        const float *rel_h, const float *rel_w, float *out, float *lse) {
  if (d.B * d.H * d.Tq == 0 || d.Tk == 0) return;
  switch (n_chunks(d)) {
    case 1: launch_fwd<1>(d, q, k, v, rel_h, rel_w, out, lse); break;
    case 2: launch_fwd<2>(d, q, k, v, rel_h, rel_w, out, lse); break;
    case 3: launch_fwd<3>(d, q, k, v, rel_h, rel_w, out, lse); break;
    default: launch_fwd<4>(d, q, k, v, rel_h, rel_w, out, lse); break;
  }
}

extern "C" void samx_cuda_attention_bwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                        const float *rel_h, const float *rel_w, const float *out, const float *lse,
                                        const float *dout, float *dq, float *dk, float *dv, float *drel_h,
                                        float *drel_w, float *delta) {
  if (d.B * d.H * d.Tq == 0 || d.Tk == 0) return;
  const int64_t rows = d.B * d.H * d.Tq;
  SAMX_LAUNCH(attn_delta_kernel, (unsigned)((rows * 32 + 255) / 256), 256, 0)(out, dout, delta, rows, (int)d.D);
  CUDA_LAUNCH_CHECK();
  switch (n_chunks(d)) {
    case 1: launch_bwd<1>(d, q, k, v, rel_h, rel_w, lse, delta, dout, dq, dk, dv, drel_h, drel_w); break;
    case 2: launch_bwd<2>(d, q, k, v, rel_h, rel_w, lse, delta, dout, dq, dk, dv, drel_h, drel_w); break;
    case 3: launch_bwd<3>(d, q, k, v, rel_h, rel_w, lse, delta, dout, dq, dk, dv, drel_h, drel_w); break;
    default: launch_bwd<4>(d, q, k, v, rel_h, rel_w, lse, delta, dout, dq, dk, dv, drel_h, drel_w); break;
  }
}
