// Flash attention on tensor cores (nvcuda::wmma, bf16 16x16x16 tiles, fp32 accumulators), with SAM's
// decomposed relative-position bias fused: the Tq x Tk logits never reach global memory.
//
// Work split: a block of WARPS warps owns ROWS = 16 * WARPS "own" rows of one (b, h) head (queries in
// forward and dq, keys in dk/dv), 16 per warp, and loops over tiles of TILE partner rows staged in
// shared memory as bf16. Tile products are wmma calls; every per-element step (bias, softmax,
// rescaling by the running max) goes through shared memory: a warp stores its accumulator tile,
// each lane works on half a row (lane / 2 = row, lane % 2 = which half), and the warp reloads. So
// fragments are only filled, loaded, stored, multiplied and scaled as a whole: the element layout
// of a fragment, unspecified by NVIDIA, is never assumed (the emulator scrambles it to prove that).
//
// The bias rows of a warp's queries (rel_h, rel_w) are staged in shared memory once (forward, dq); the
// forward can compute them there instead, from its q rows and SAM's tables (compute_bias).
//
// Precision: q, k, v, out and the probabilities fed to P V are bf16; logits, softmax maxima and
// sums, lse and every accumulator are fp32. The row sum l adds the bf16-rounded probabilities that
// P V uses, so out = sum_j p_j v_j / sum_j p_j holds for the very weights applied.
//
// Backward (FlashAttention-2): delta_i = <dout_i, out_i>; one kernel per key block accumulates dk and
// dv (either may be NULL) in fragments over all query tiles; one per query block accumulates dq (fragments) and the bias
// gradients (shared memory, each (row, bin) owned by one lane), recomputing p = exp(logit - lse).
// Each output element is added to by one thread in a fixed order: deterministic, no atomics.
#include <cuda_bf16.h>
#include <mma.h>

#include "../attention_bf16.h"
#include "cuda_common.cuh"

using namespace nvcuda;

namespace {

constexpr int WARPS = 4, ROWS = 16 * WARPS, TILE = 64;
constexpr unsigned FULL = 0xffffffffu;
typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;   // B stored [k][n]
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBt;  // B stored [n][k]
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// Shared memory of every kernel: bf16 tiles [rows][D + 8], fp32 tiles [16][TILE + 4] per warp,
// bf16 probability tiles [16][TILE + 8] per warp. Strides and offsets keep every wmma pointer
// 32-byte aligned and every ldm a multiple of 16 bytes.
template <int D>
struct Smem {
  static constexpr int LDH = D + 8, LDS = TILE + 4, LDP = TILE + 8, LDO = D + 4;
  static constexpr size_t HT = (size_t)ROWS * LDH * 2;      // one bf16 tile of ROWS (= TILE) rows
  static constexpr size_t ST = (size_t)WARPS * 16 * LDS * 4;  // the warps' fp32 score tiles
  static constexpr size_t PT = (size_t)WARPS * 16 * LDP * 2;  // the warps' bf16 probability tiles
  static constexpr size_t OT = (size_t)WARPS * 16 * LDO * 4;  // the warps' fp32 output rows (forward)
};
static_assert(ROWS == TILE, "own and partner tiles share one shape");

// Where the rows of one head's [T, D] operand are: contiguous from p (backward), or where a layout puts
// them (forward: samx_attn_row, the same function the CPU path and the relative-position kernels use).
struct ContiguousRows {
  const bf16 *p;
  int D;
  __device__ const bf16 *operator()(int t) const { return p + (int64_t)t * D; }
};
struct LayoutRows {
  const SamxAttnLayout *lay;
  const SamxAttnStrides *s;
  const uint16_t *p, *pad;
  int64_t H, D, bh;
  __device__ const bf16 *operator()(int t) const {
    return (const bf16 *)samx_attn_row(lay, s, p, pad, H, D, bh, t);
  }
};

// Rows r0 .. r0+n-1 of a [T, D] bf16 matrix into shared memory (stride ld); zeros past T.
template <class Rows>
__device__ void load_rows(bf16 *dst, int ld, const Rows &rows, int r0, int n, int T, int D) {
  for (int t = threadIdx.x; t < n * D; t += blockDim.x) {
    int r = t / D, c = t % D;
    dst[r * ld + c] = r0 + r < T ? rows(r0 + r)[c] : __float2bfloat16(0.0f);
  }
}

// The same from fp32 (dout), rounded to bf16 for the tensor cores.
__device__ void load_rows_f32(bf16 *dst, int ld, const float *src, int r0, int n, int T, int D) {
  for (int t = threadIdx.x; t < n * D; t += blockDim.x) {
    int r = t / D, c = t % D;
    dst[r * ld + c] = __float2bfloat16(r0 + r < T ? src[(int64_t)(r0 + r) * D + c] : 0.0f);
  }
}

// Entries r0 .. r0+n-1 of a vector; `pad` past T.
__device__ void load_vec(float *dst, const float *src, int r0, int n, int T, float pad) {
  for (int t = threadIdx.x; t < n; t += blockDim.x) dst[t] = r0 + t < T ? src[r0 + t] : pad;
}

// Logit of key j for one query row from their dot product (rh, rw: that row of rel_h, rel_w, or
// NULL for no bias); -inf past Tk (weight 0).
__device__ __forceinline__ float logit_row(const SamxAttnDims &d, const float *rh, const float *rw, float qk, int j) {
  if (j >= (int)d.Tk) return -INFINITY;
  return samx_attn_logit(qk, d.scale, rh ? samx_attn_bias(rh, rw, (int)d.KW, j) : 0.0f);
}

// The same for query i, reading the bias from global memory (no bias past Tq).
__device__ __forceinline__ float logit_at(const SamxAttnDims &d, const float *rel_h, const float *rel_w, float qk,
                                          int i, int j) {
  const bool bias = rel_h && i < (int)d.Tq;
  return logit_row(d, bias ? rel_h + (int64_t)i * d.KH : nullptr, bias ? rel_w + (int64_t)i * d.KW : nullptr, qk, j);
}

// A warp's 16 query rows of rel_h and rel_w staged in shared memory, [16][KH + KW] (zeros past Tq):
// every key tile reads them again.
__device__ void stage_bias(float *rb, const SamxAttnDims &d, const float *rel_h, const float *rel_w, int row0) {
  const int KH = (int)d.KH, KW = (int)d.KW;
  for (int t = threadIdx.x % 32; t < 16 * (KH + KW); t += 32) {
    const int r = t / (KH + KW), b = t % (KH + KW), i = row0 + r;
    rb[t] = i >= (int)d.Tq ? 0.0f : b < KH ? rel_h[(int64_t)i * KH + b] : rel_w[(int64_t)i * KW + b - KH];
  }
}

// Where the forward's bias comes from: rel_h and rel_w in memory, or (rel_h NULL, table_h set)
// computed from the block's q rows and SAM's tables; neither: no bias.
struct BiasSource {
  const float *rel_h, *rel_w, *table_h, *table_w;
  __host__ __device__ bool any() const { return rel_h || table_h; }
};

// A warp's 16 query rows of rel_h and rel_w, [16][KH + KW] (zeros past Tq), computed from their q rows
// (bf16 in shared memory, ld LDH) and the tables Rh [2 KH - 1, D], Rw [2 KW - 1, D]: samx_rel_pos_term's
// functions (samx_rel_pos_row, samx_rel_pos_dot on the same bf16 row), so bit for bit what samx_cuda_rel_pos
// writes, without the [T, KH + KW] terms per head going through memory. The query grid is the key
// grid (SAM's self-attention): query i sits at row i / KW, column i % KW.
template <int D>
__device__ void compute_bias(float *rb, const SamxAttnDims &d, const bf16 *qrows, const float *table_h,
                             const float *table_w, int row0) {
  const int KH = (int)d.KH, KW = (int)d.KW;
  for (int t = threadIdx.x % 32; t < 16 * (KH + KW); t += 32) {
    const int r = t / (KH + KW), b = t % (KH + KW), i = row0 + r;
    if (i >= (int)d.Tq) {
      rb[t] = 0.0f;
      continue;
    }
    const float *row = samx_rel_pos_row(table_h, table_w, KH, KW, D, i, b < KH, b < KH ? b : b - KH);
    rb[t] = samx_rel_pos_dot((const uint16_t *)(qrows + r * Smem<D>::LDH), row, D);
  }
}

// S [16 x TILE] = A rows (16 x D, fragments) times the tile's rows transposed, into s (ld LDS).
template <int D>
__device__ void scores(float *s, const FragA (&a)[D / 16], const bf16 *tile) {
  for (int n = 0; n < TILE / 16; n++) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < D / 16; kk++) {
      FragBt b;
      wmma::load_matrix_sync(b, tile + n * 16 * Smem<D>::LDH + kk * 16, Smem<D>::LDH);
      wmma::mma_sync(acc, a[kk], b, acc);
    }
    wmma::store_matrix_sync(s + n * 16, acc, Smem<D>::LDS, wmma::mem_row_major);
  }
}

// acc[n] += P [16 x TILE] (bf16, ld LDP) times the tile [TILE x D] (bf16, ld LDH), for every 16-column block n.
template <int D>
__device__ void accumulate_pv(FragC (&acc)[D / 16], const bf16 *p, const bf16 *tile) {
  for (int kk = 0; kk < TILE / 16; kk++) {
    FragA a;
    wmma::load_matrix_sync(a, p + kk * 16, Smem<D>::LDP);
    for (int n = 0; n < D / 16; n++) {
      FragB b;
      wmma::load_matrix_sync(b, tile + kk * 16 * Smem<D>::LDH + n * 16, Smem<D>::LDH);
      wmma::mma_sync(acc[n], a, b, acc[n]);
    }
  }
}

template <int D>
__device__ void load_frags(FragA (&a)[D / 16], const bf16 *rows) {
  for (int kk = 0; kk < D / 16; kk++) wmma::load_matrix_sync(a[kk], rows + kk * 16, Smem<D>::LDH);
}

// ---- forward: one block per (head, 64 query rows); online softmax over key tiles ----
template <int D>
__global__ void __launch_bounds__(WARPS * 32)
    attn_bf16_fwd_kernel(SamxAttnDims d, SamxAttnLayout lay, const bf16 *q, const bf16 *k, const bf16 *v,
                         BiasSource bias, bf16 *out, float *lse) {
  typedef Smem<D> L;
  char *base = samx_smem_aligned32();
  bf16 *qs = (bf16 *)base, *ks = (bf16 *)(base + L::HT), *vs = (bf16 *)(base + 2 * L::HT);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  float *ss = (float *)(base + 3 * L::HT) + warp * 16 * L::LDS;
  bf16 *ps = (bf16 *)(base + 3 * L::HT + L::ST) + warp * 16 * L::LDP;
  float *os = (float *)(base + 3 * L::HT + L::ST + L::PT) + warp * 16 * L::LDO;
  float *rb = (float *)(base + 3 * L::HT + L::ST + L::PT + L::OT) + warp * 16 * (d.KH + d.KW);
  const int Tq = (int)d.Tq, Tk = (int)d.Tk, i0 = blockIdx.y * ROWS, i = i0 + warp * 16 + r;
  const int64_t bh = blockIdx.x;
  const LayoutRows qr = {&lay, &lay.q, (const uint16_t *)q, lay.pad_q, d.H, D, bh};
  const LayoutRows kr = {&lay, &lay.k, (const uint16_t *)k, lay.pad_k, d.H, D, bh};
  const LayoutRows vr = {&lay, &lay.v, (const uint16_t *)v, lay.pad_v, d.H, D, bh};
  if (lse) lse += bh * Tq;
  const float *rh = bias.any() ? rb + r * (d.KH + d.KW) : nullptr, *rw = rh ? rh + d.KH : nullptr;

  if (bias.rel_h)
    stage_bias(rb, d, bias.rel_h + bh * Tq * d.KH, bias.rel_w + bh * Tq * d.KW, i0 + warp * 16);
  load_rows(qs, L::LDH, qr, i0, ROWS, Tq, D);
  __syncthreads();
  if (!bias.rel_h && bias.table_h) {
    compute_bias<D>(rb, d, qs + warp * 16 * L::LDH, bias.table_h, bias.table_w, i0 + warp * 16);
    __syncwarp();
  }
  FragA qa[D / 16];
  load_frags<D>(qa, qs + warp * 16 * L::LDH);
  FragC o[D / 16];
  float m = -INFINITY, l = 0.0f;
  for (int j0 = 0; j0 < Tk; j0 += TILE) {
    __syncthreads();  // the previous tiles are consumed
    load_rows(ks, L::LDH, kr, j0, TILE, Tk, D);
    load_rows(vs, L::LDH, vr, j0, TILE, Tk, D);
    __syncthreads();
    scores<D>(ss, qa, ks);
    __syncwarp();
    // Softmax update of this lane's half row; the two lanes of a row agree through one shuffle.
    const int c0 = half * TILE / 2;
    float x[TILE / 2], mx = -INFINITY;
    for (int c = 0; c < TILE / 2; c++) {
      x[c] = logit_row(d, rh, rw, ss[r * L::LDS + c0 + c], j0 + c0 + c);
      mx = fmaxf(mx, x[c]);
    }
    // The tile holds at least one key, so m_new is finite; alpha is 0 on the first tile.
    const float m_new = fmaxf(m, fmaxf(mx, __shfl_xor_sync(FULL, mx, 1))), alpha = expf(m - m_new);
    float sum = 0.0f;
    for (int c = 0; c < TILE / 2; c++) {
      bf16 p = __float2bfloat16(samx_attn_prob(x[c], m_new));
      ps[r * L::LDP + c0 + c] = p;
      sum += __bfloat162float(p);
    }
    l = l * alpha + sum + __shfl_xor_sync(FULL, sum, 1);
    m = m_new;
    // Rescale the output rows by alpha (per row: through shared memory), then add P V.
    if (j0 > 0) {
      for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(os + n * 16, o[n], L::LDO, wmma::mem_row_major);
      __syncwarp();
      for (int c = half * D / 2; c < (half + 1) * D / 2; c++) os[r * L::LDO + c] *= alpha;
      __syncwarp();
      for (int n = 0; n < D / 16; n++) wmma::load_matrix_sync(o[n], os + n * 16, L::LDO, wmma::mem_row_major);
    } else {
      for (int n = 0; n < D / 16; n++) wmma::fill_fragment(o[n], 0.0f);
      __syncwarp();
    }
    accumulate_pv<D>(o, ps, vs);
  }
  for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(os + n * 16, o[n], L::LDO, wmma::mem_row_major);
  __syncwarp();
  // Padding queries (windowed layouts) have no row in out.
  bf16 *orow = i < Tq ? (bf16 *)samx_attn_row(&lay, &lay.out, (const uint16_t *)out, nullptr, d.H, D, bh, i) : nullptr;
  if (orow) {
    for (int c = half * D / 2; c < (half + 1) * D / 2; c++) orow[c] = __float2bfloat16(os[r * L::LDO + c] / l);
    if (lse && half == 0) lse[i] = samx_attn_lse(m, l);
  }
}

// ---- backward ----

// delta_i = <dout_i, out_i>, one thread per row.
__global__ void attn_bf16_delta_kernel(const bf16 *out, const float *dout, float *delta, int64_t rows, int D) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows; i += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int c = 0; c < D; c++) s += dout[i * D + c] * __bfloat162float(out[i * D + c]);
    delta[i] = s;
  }
}

// Adds a warp's 16 x D fragments (times `scale`) into rows r0.. of a [T, D] fp32 matrix, staging each
// 16 x 16 block in the warp's score tile.
template <int D>
__device__ void add_rows(float *dst, int r0, int T, FragC (&acc)[D / 16], float scale, float *stage) {
  if (!dst) return;  // the same for the whole warp
  const int lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  for (int n = 0; n < D / 16; n++) {
    for (int e = 0; e < acc[n].num_elements; e++) acc[n].x[e] *= scale;
    __syncwarp();  // the stage's previous block is read
    wmma::store_matrix_sync(stage, acc[n], Smem<D>::LDS, wmma::mem_row_major);
    __syncwarp();
    if (r0 + r < T)
      for (int c = half * 8; c < half * 8 + 8; c++) dst[(int64_t)(r0 + r) * D + n * 16 + c] += stage[r * Smem<D>::LDS + c];
  }
}

// dk, dv: one block per (head, 64 keys); loops over query tiles.
template <int D>
__global__ void __launch_bounds__(WARPS * 32)
    attn_bf16_dkdv_kernel(SamxAttnDims d, const bf16 *q, const bf16 *k, const bf16 *v, const float *rel_h,
                          const float *rel_w, const float *lse, const float *delta, const float *dout, float *dk,
                          float *dv) {
  typedef Smem<D> L;
  char *base = samx_smem_aligned32();
  bf16 *ks = (bf16 *)base, *vs = (bf16 *)(base + L::HT), *qs = (bf16 *)(base + 2 * L::HT),
       *dos = (bf16 *)(base + 3 * L::HT);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  float *ss = (float *)(base + 4 * L::HT) + warp * 16 * L::LDS;
  bf16 *ps = (bf16 *)(base + 4 * L::HT + L::ST) + warp * 16 * L::LDP;
  bf16 *dss = (bf16 *)(base + 4 * L::HT + L::ST + L::PT) + warp * 16 * L::LDP;
  float *lses = (float *)(base + 4 * L::HT + L::ST + 2 * L::PT), *deltas = lses + TILE;
  const int Tq = (int)d.Tq, Tk = (int)d.Tk, j0 = blockIdx.y * ROWS, j = j0 + warp * 16 + r;
  const int64_t bh = blockIdx.x;
  q += bh * Tq * D, k += bh * Tk * D, v += bh * Tk * D, dout += bh * Tq * D, lse += bh * Tq, delta += bh * Tq;
  if (rel_h) rel_h += bh * Tq * d.KH, rel_w += bh * Tq * d.KW;

  load_rows(ks, L::LDH, ContiguousRows{k, D}, j0, ROWS, Tk, D);
  load_rows(vs, L::LDH, ContiguousRows{v, D}, j0, ROWS, Tk, D);
  __syncthreads();
  FragA ka[D / 16], va[D / 16];
  load_frags<D>(ka, ks + warp * 16 * L::LDH);
  load_frags<D>(va, vs + warp * 16 * L::LDH);
  FragC dka[D / 16], dva[D / 16];
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(dka[n], 0.0f), wmma::fill_fragment(dva[n], 0.0f);
  const int c0 = half * TILE / 2;
  for (int i0 = 0; i0 < Tq; i0 += TILE) {
    __syncthreads();
    load_rows(qs, L::LDH, ContiguousRows{q, D}, i0, TILE, Tq, D);
    load_rows_f32(dos, L::LDH, dout, i0, TILE, Tq, D);
    load_vec(lses, lse, i0, TILE, Tq, 0.0f);
    load_vec(deltas, delta, i0, TILE, Tq, 0.0f);
    __syncthreads();
    // S^T [16 keys x TILE queries] -> P^T; rows of this lane: key j, queries i0 + c0 + c.
    scores<D>(ss, ka, qs);
    __syncwarp();
    float p[TILE / 2];
    for (int c = 0; c < TILE / 2; c++) {
      const int i = i0 + c0 + c;
      p[c] = i < Tq ? samx_attn_prob(logit_at(d, rel_h, rel_w, ss[r * L::LDS + c0 + c], i, j), lses[c0 + c]) : 0.0f;
      p[c] = __bfloat162float(__float2bfloat16(p[c]));  // the weights forward applied
      ps[r * L::LDP + c0 + c] = __float2bfloat16(p[c]);
    }
    __syncwarp();
    // dP^T = V_j dO^T, then dS^T = P^T (dP^T - delta).
    scores<D>(ss, va, dos);
    __syncwarp();
    for (int c = 0; c < TILE / 2; c++)
      dss[r * L::LDP + c0 + c] = __float2bfloat16(samx_attn_dlogit(p[c], ss[r * L::LDS + c0 + c], deltas[c0 + c]));
    __syncwarp();
    accumulate_pv<D>(dva, ps, dos);  // dV += P^T dO
    accumulate_pv<D>(dka, dss, qs);  // dK += dS^T Q (times scale below)
  }
  __syncwarp();
  add_rows<D>(dv ? dv + bh * Tk * D : nullptr, j0 + warp * 16, Tk, dva, 1.0f, ss);
  add_rows<D>(dk ? dk + bh * Tk * D : nullptr, j0 + warp * 16, Tk, dka, d.scale, ss);
}

// dq and the bias gradients: one block per (head, 64 queries); loops over key tiles.
template <int D>
__global__ void __launch_bounds__(WARPS * 32)
    attn_bf16_dq_kernel(SamxAttnDims d, const bf16 *q, const bf16 *k, const bf16 *v, const float *rel_h,
                        const float *rel_w, const float *lse, const float *delta, const float *dout, float *dq,
                        float *drel_h, float *drel_w) {
  typedef Smem<D> L;
  char *base = samx_smem_aligned32();
  bf16 *qs = (bf16 *)base, *dos = (bf16 *)(base + L::HT), *ks = (bf16 *)(base + 2 * L::HT),
       *vs = (bf16 *)(base + 3 * L::HT);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
  float *ss = (float *)(base + 4 * L::HT) + warp * 16 * L::LDS;
  bf16 *dss = (bf16 *)(base + 4 * L::HT + L::ST) + warp * 16 * L::LDP;
  const int KH = (int)d.KH, KW = (int)d.KW;
  const bool rel_grad = drel_h || drel_w;
  // Per warp: the bias gradients of its 16 rows, [16][KH] then [16][KW].
  float *rg = (float *)(base + 4 * L::HT + L::ST + L::PT) + (rel_grad ? warp * 16 * (KH + KW) : 0);
  // Then the staged bias rows, [16][KH + KW] per warp.
  float *rb = (float *)(base + 4 * L::HT + L::ST + L::PT) + (rel_grad ? WARPS * 16 * (KH + KW) : 0) +
              warp * 16 * (KH + KW);
  const int Tq = (int)d.Tq, Tk = (int)d.Tk, i0 = blockIdx.y * ROWS, i = i0 + warp * 16 + r;
  const int64_t bh = blockIdx.x;
  q += bh * Tq * D, k += bh * Tk * D, v += bh * Tk * D, dout += bh * Tq * D, lse += bh * Tq, delta += bh * Tq;
  if (rel_h) rel_h += bh * Tq * KH, rel_w += bh * Tq * KW;

  const float *rh = rel_h ? rb + r * (KH + KW) : nullptr, *rw = rel_h ? rh + KH : nullptr;
  if (rel_h) stage_bias(rb, d, rel_h, rel_w, i0 + warp * 16);
  load_rows(qs, L::LDH, ContiguousRows{q, D}, i0, ROWS, Tq, D);
  load_rows_f32(dos, L::LDH, dout, i0, ROWS, Tq, D);
  if (rel_grad)
    for (int t = lane; t < 16 * (KH + KW); t += 32) rg[t] = 0.0f;
  __syncthreads();
  FragA qa[D / 16], doa[D / 16];
  load_frags<D>(qa, qs + warp * 16 * L::LDH);
  load_frags<D>(doa, dos + warp * 16 * L::LDH);
  FragC dqa[D / 16];
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(dqa[n], 0.0f);
  const float lse_i = i < Tq ? lse[i] : 0.0f, delta_i = i < Tq ? delta[i] : 0.0f;
  const int c0 = half * TILE / 2;
  for (int j0 = 0; j0 < Tk; j0 += TILE) {
    __syncthreads();
    load_rows(ks, L::LDH, ContiguousRows{k, D}, j0, TILE, Tk, D);
    load_rows(vs, L::LDH, ContiguousRows{v, D}, j0, TILE, Tk, D);
    __syncthreads();
    scores<D>(ss, qa, ks);
    __syncwarp();
    float p[TILE / 2];
    for (int c = 0; c < TILE / 2; c++) {
      p[c] = i < Tq ? samx_attn_prob(logit_row(d, rh, rw, ss[r * L::LDS + c0 + c], j0 + c0 + c), lse_i) : 0.0f;
      p[c] = __bfloat162float(__float2bfloat16(p[c]));
    }
    __syncwarp();
    scores<D>(ss, doa, vs);  // dP = dO V^T
    __syncwarp();
    for (int c = 0; c < TILE / 2; c++) {
      const float ds = samx_attn_dlogit(p[c], ss[r * L::LDS + c0 + c], delta_i);
      ss[r * L::LDS + c0 + c] = ds;  // fp32, for the bias gradients
      dss[r * L::LDP + c0 + c] = __float2bfloat16(ds);
    }
    __syncwarp();
    if (rel_grad) {
      // Bin kh (kw) of row r belongs to the lane of its parity: one owner per (row, bin).
      for (int c = 0; c < TILE && j0 + c < Tk; c++) {
        const int jj = j0 + c, kh = jj / KW, kw = jj % KW;
        const float ds = ss[r * L::LDS + c];
        if ((kh & 1) == half) rg[r * (KH + KW) + kh] += ds;
        if ((kw & 1) == half) rg[r * (KH + KW) + KH + kw] += ds;
      }
    }
    accumulate_pv<D>(dqa, dss, ks);  // dQ += dS K (times scale below)
  }
  __syncwarp();
  add_rows<D>(dq ? dq + bh * Tq * D : nullptr, i0 + warp * 16, Tq, dqa, d.scale, ss);
  if (rel_grad && i < Tq) {
    for (int b = half; b < KH; b += 2)
      if (drel_h) drel_h[(bh * Tq + i) * KH + b] += rg[r * (KH + KW) + b];
    for (int b = half; b < KW; b += 2)
      if (drel_w) drel_w[(bh * Tq + i) * KW + b] += rg[r * (KH + KW) + KH + b];
  }
}

// ---- relative-position terms: one thread per output element (the D-wide q row is shared by the
// h + w threads next to each other, so it is read once from memory) ----

__global__ void rel_pos_kernel(SamxAttnLayout lay, const uint16_t *q, const float *table_h, const float *table_w,
                               int64_t B, int64_t H, int h, int w, int D, float *rel_h, float *rel_w) {
  const int64_t T = (int64_t)h * w, n_h = B * H * T * h, n = n_h + B * H * T * w;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const float v = samx_rel_pos_term(&lay, q, table_h, table_w, B, H, h, w, D, e);
    if (e < n_h)
      rel_h[e] = v;
    else
      rel_w[e - n_h] = v;
  }
}

// ---- launchers ----

dim3 grid_of(const SamxAttnDims &d, int64_t rows) {
  const int64_t heads = d.B * d.H, blocks = (rows + ROWS - 1) / ROWS;
  SAMX_ASSERT(heads <= 0x7fffffff && blocks <= 65535 && d.Tq * d.D < 0x7fffffff && d.Tk * d.D < 0x7fffffff,
              "attention (bf16): B*H = %lld heads, Tq = %lld, Tk = %lld, D = %lld exceed the CUDA grid",
              (long long)heads, (long long)d.Tq, (long long)d.Tk, (long long)d.D);
  return dim3((unsigned)heads, (unsigned)blocks);
}

template <int D>
void launch_fwd(SamxAttnDims d, SamxAttnLayout lay, const bf16 *q, const bf16 *k, const bf16 *v, BiasSource bias,
                bf16 *out, float *lse) {
  typedef Smem<D> L;
  const size_t rows = bias.any() ? (size_t)WARPS * 16 * (d.KH + d.KW) * sizeof(float) : 0;
  const size_t smem = 3 * L::HT + L::ST + L::PT + L::OT + rows + 32;
  samx_cuda_set_smem(attn_bf16_fwd_kernel<D>, smem, "attention (bf16) forward");
  SAMX_LAUNCH(attn_bf16_fwd_kernel<D>, grid_of(d, d.Tq), WARPS * 32, smem)(d, lay, q, k, v, bias, out, lse);
  CUDA_LAUNCH_CHECK();
}

template <int D>
void launch_bwd(SamxAttnDims d, const bf16 *q, const bf16 *k, const bf16 *v, const float *rel_h, const float *rel_w,
                const float *lse, const float *delta, const float *dout, float *dq, float *dk, float *dv,
                float *drel_h, float *drel_w) {
  typedef Smem<D> L;
  if (dk || dv) {
    const size_t smem = 4 * L::HT + L::ST + 2 * L::PT + 2 * TILE * sizeof(float) + 32;
    samx_cuda_set_smem(attn_bf16_dkdv_kernel<D>, smem, "attention (bf16) backward dk/dv");
    SAMX_LAUNCH(attn_bf16_dkdv_kernel<D>, grid_of(d, d.Tk), WARPS * 32, smem)(d, q, k, v, rel_h, rel_w, lse, delta,
                                                                            dout, dk, dv);
    CUDA_LAUNCH_CHECK();
  }
  if (dq || drel_h || drel_w) {
    const size_t rows = (size_t)WARPS * 16 * (d.KH + d.KW) * sizeof(float);
    const size_t rel = (drel_h || drel_w ? rows : 0) + (rel_h ? rows : 0);
    const size_t smem = 4 * L::HT + L::ST + L::PT + rel + 32;
    samx_cuda_set_smem(attn_bf16_dq_kernel<D>, smem, "attention (bf16) backward dq");
    SAMX_LAUNCH(attn_bf16_dq_kernel<D>, grid_of(d, d.Tq), WARPS * 32, smem)(d, q, k, v, rel_h, rel_w, lse, delta, dout,
                                                                          dq, drel_h, drel_w);
    CUDA_LAUNCH_CHECK();
  }
}

void check_dims(const SamxAttnDims &d) {
  SAMX_ASSERT(samx_attention_bf16_head_dim_ok(d.D), "attention (bf16): head dim %lld is not 16, 32, 64 or 128",
              (long long)d.D);
}

}  // namespace

#define SAMX_BF16_DISPATCH(D_, call) \
  switch (D_) {                       \
    case 16: call(16); break;         \
    case 32: call(32); break;         \
    case 64: call(64); break;         \
    default: call(128); break;        \
  }

static void fwd(SamxAttnDims d, SamxAttnLayout lay, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                BiasSource bias, uint16_t *out, float *lse) {
  if (d.B * d.H * d.Tq == 0 || d.Tk == 0) return;
  check_dims(d);
#define FWD(D_) launch_fwd<D_>(d, lay, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, bias, (bf16 *)out, lse)
  SAMX_BF16_DISPATCH(d.D, FWD)
#undef FWD
}

extern "C" void samx_cuda_attention_bf16_fwd_layout(SamxAttnDims d, SamxAttnLayout lay, const uint16_t *q,
                                                    const uint16_t *k, const uint16_t *v, const float *rel_h,
                                                    const float *rel_w, uint16_t *out, float *lse) {
  fwd(d, lay, q, k, v, BiasSource{rel_h, rel_w, nullptr, nullptr}, out, lse);
}

extern "C" void samx_cuda_attention_bf16_fwd_rel_tables(SamxAttnDims d, SamxAttnLayout lay, const uint16_t *q,
                                                        const uint16_t *k, const uint16_t *v, const float *table_h,
                                                        const float *table_w, uint16_t *out) {
  fwd(d, lay, q, k, v, BiasSource{nullptr, nullptr, table_h, table_w}, out, nullptr);
}

extern "C" void samx_cuda_attention_bf16_fwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                             const float *rel_h, const float *rel_w, uint16_t *out, float *lse) {
  samx_cuda_attention_bf16_fwd_layout(d, samx_attn_layout_contiguous(d), q, k, v, rel_h, rel_w, out, lse);
}

extern "C" void samx_cuda_attention_bf16_bwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                             const float *rel_h, const float *rel_w, const uint16_t *out,
                                             const float *lse, const float *dout, float *dq, float *dk, float *dv,
                                             float *drel_h, float *drel_w, float *delta) {
  if (d.B * d.H * d.Tq == 0 || d.Tk == 0) return;
  check_dims(d);
  const int64_t rows = d.B * d.H * d.Tq;
  SAMX_LAUNCH(attn_bf16_delta_kernel, samx_grid_1d((size_t)rows, 256), 256, 0)((const bf16 *)out, dout, delta, rows,
                                                                               (int)d.D);
  CUDA_LAUNCH_CHECK();
#define BWD(D_)                                                                                                  \
  launch_bwd<D_>(d, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, rel_h, rel_w, lse, delta, dout, dq, dk, dv, \
                 drel_h, drel_w)
  SAMX_BF16_DISPATCH(d.D, BWD)
#undef BWD
}

extern "C" void samx_cuda_rel_pos(SamxAttnLayout lay, const uint16_t *q, const float *table_h, const float *table_w,
                                  int64_t B, int64_t H, int h, int w, int D, float *rel_h, float *rel_w) {
  const int64_t n = B * H * (int64_t)h * w * (h + w);
  if (n == 0) return;
  SAMX_LAUNCH(rel_pos_kernel, samx_grid_1d((size_t)n, 256), 256, 0)(lay, q, table_h, table_w, B, H, h, w, D, rel_h,
                                                                   rel_w);
  CUDA_LAUNCH_CHECK();
}
