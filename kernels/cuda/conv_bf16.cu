// Convolutions as implicit GEMMs on tensor cores (nvcuda::wmma, bf16 16x16x16 tiles, fp32
// accumulators): the column matrix im2col(x) of engine/ops_conv.c is never written; each block
// gathers the part of it that its tile needs straight from the image, through the split of
// samx_im2col_at (and of the adjoint) in kernels/conv.h: the CPU's im2col calls the same functions.
//
// One kernel, C [M, N] (+)= A [M, K] . B [K, N] per image z, with A and B read through functors and C
// written through one (row-major, or for the adjoint with disjoint taps each entry at its image position):
// a block owns a 64 x 64 tile of C, 4 warps of 32 x 32 (2 x 2 fragments each), and walks K in steps
// of 32, staging A [64 x 32] and B [32 x 64] in shared memory as bf16 (f32 rounded to nearest even as
// it is read: the operands the CPU's bf16 reference mode rounds). The accumulators go through shared
// memory to C, so a fragment is only filled, loaded, multiplied and stored (its element layout, which
// NVIDIA leaves unspecified, is never assumed; the emulator scrambles it).
//
// Why not cuDNN: the CUDA emulator cannot run it, so no test here could check a cuDNN call; this
// kernel runs on the emulator, under both of its thread schedules. Why not im2col + cuBLASLt (kept
// for fp32 and tf32, 1x1 kernels and strided transposes whose taps overlap): the column buffer is K
// times the output in f32 plus its bf16 copy (the neck's 3x3 conv on a 64x64x256 embedding: 38 MB
// written, read and cast, 57 MB more in the arena), which costs more memory traffic than the
// convolution's compute floor.
#include <cuda_bf16.h>
#include <mma.h>

#include "../conv.h"
#include "cuda_common.cuh"

using namespace nvcuda;

namespace {

constexpr int BM = 64, BN = 64, BK = 32, THREADS = 128;
constexpr int LDA = BK + 8, LDB = BN + 8, LDC = BN + 4;  // keep WMMA rows 32-byte aligned, ldm % 16 bytes
constexpr size_t A_BYTES = (size_t)BM * LDA * 2, B_BYTES = (size_t)BK * LDB * 2, C_BYTES = (size_t)BM * LDC * 4;
typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// ---- operands ----
// Element (row, col) of an operand for image z is at(row(z, row), col(z, col)): row() and col() hold
// the index arithmetic (divisions included), computed once per row and column of a tile; at() is the
// per-element part (adds, compares, one load).

// A matrix of T (float, or uint16_t holding bf16) with element (r, c) of image z at
// p[z * zs + r * rs + c * cs]: row-major [rows, ld] is rs = ld, cs = 1, its transpose rs = 1, cs = ld;
// zs 0 makes it the same for every image.
__device__ inline float widen(float v) { return v; }
__device__ inline float widen(uint16_t v) { return samx_bf16_to_f32(v); }
template <class T>
struct Dense {
  const T *p;
  int64_t rs, cs, zs;
  typedef int64_t Row;
  typedef int64_t Col;
  __device__ Row row(int64_t z, int64_t r) const { return z * zs + r * rs; }
  __device__ Col col(int64_t, int64_t c) const { return c * cs; }
  __device__ float at(Row r, Col c) const { return widen(p[r + c]); }
  // As a B operand: its rows (k) run along memory (a channels-last image), not its columns.
  __device__ bool k_major() const { return rs == 1 && cs != 1; }
};
// im2col(x_z) [C*kh*kw, Ho*Wo] (x_z = x + z * zs); with Adjoint, the adjoint's gathered input
// in_z [M*kh*kw, H*W] (x = in).
template <bool Adjoint>
struct Taps {
  const float *x;
  int64_t zs;
  SamxConvGeom g;
  typedef SamxConvTap Row;
  typedef SamxConvAt Col;
  __device__ Row row(int64_t z, int64_t r) const {
    SamxConvTap t = Adjoint ? samx_conv_adjoint_tap(g, r) : samx_conv_tap(g, r);
    t.off += z * zs;
    return t;
  }
  __device__ Col col(int64_t, int64_t c) const {
    return Adjoint ? samx_conv_adjoint_pixel(g, c) : samx_conv_window(g, c);
  }
  __device__ float at(const Row &r, const Col &c) const {
    return Adjoint ? samx_conv_adjoint_tap_at(x, g, r, c) : samx_conv_tap_at(x, g, r, c);
  }
  __device__ bool k_major() const { return false; }
};
// The weight gradient's two operands with the images folded into K (k = i * Ho*Wo + pixel), so that
// one launch sums every image in a fixed order: a_i [M, Ho*Wo] side by side, and im2col(img_i)^T.
struct FoldedRows {
  const float *p;
  int64_t zs, n;  // n = Ho*Wo
  typedef int64_t Row;
  typedef int64_t Col;
  __device__ Row row(int64_t, int64_t r) const { return r * n; }
  __device__ Col col(int64_t, int64_t k) const { return (k / n) * zs + k % n; }
  __device__ float at(Row r, Col c) const { return p[r + c]; }
};
struct FoldedColsT {
  const float *x;
  int64_t zs;
  SamxConvGeom g;
  struct Row {
    int64_t img;  // image i's offset
    SamxConvAt at;
  };
  typedef SamxConvTap Col;
  __device__ Row row(int64_t, int64_t k) const {
    const int64_t n = g.Ho * g.Wo;
    Row r = {(k / n) * zs, samx_conv_window(g, k % n)};
    return r;
  }
  __device__ Col col(int64_t, int64_t c) const { return samx_conv_tap(g, c); }
  __device__ float at(const Row &r, const Col &c) const { return samx_conv_tap_at(x + r.img, g, c, r.at); }
  __device__ bool k_major() const { return false; }
};
// The adjoint's weight (col2im of w^T . in): w rearranged [C, M*kh*kw].
struct AdjointW {
  const float *w;
  SamxConvGeom g;
  typedef int64_t Row;
  typedef int64_t Col;
  __device__ Row row(int64_t, int64_t c) const { return c * g.kh * g.kw; }
  __device__ Col col(int64_t, int64_t r) const { return samx_conv_adjoint_w_tap(g, r); }
  __device__ float at(Row r, Col c) const { return w[r + c]; }
};
// ---- where C's element (r, n) of image z goes: at(row(r), col(n)), or nowhere when that is < 0 ----
// Row-major [M, N].
struct DenseOut {
  int64_t n;
  typedef int64_t Row;
  typedef int64_t Col;
  __device__ Row row(int64_t r) const { return r * n; }
  __device__ Col col(int64_t c) const { return c; }
  __device__ int64_t at(Row r, Col c) const { return r + c; }
};
// cols [C*kh*kw, Ho*Wo] moved to its places in the image (col2im with disjoint taps: no two entries
// meet, so each is written, not added; one in the padding is dropped).
struct TapsOut {
  SamxConvGeom g;
  typedef SamxConvTap Row;
  typedef SamxConvAt Col;
  __device__ Row row(int64_t r) const { return samx_conv_tap(g, r); }
  __device__ Col col(int64_t c) const { return samx_conv_window(g, c); }
  __device__ int64_t at(const Row &r, const Col &c) const { return samx_conv_tap_index(g, r, c); }
};

// ---- what is stored there: C's value v for row r of image z at index i ----
// f32, v + beta * what is there (beta 0: C is not read, so it may be garbage).
struct Accumulate {
  float *c;
  int64_t img;
  float beta;
  __device__ void put(int64_t z, int64_t, int64_t i, float v) const {
    float *p = c + z * img + i;
    *p = beta != 0.0f ? v + beta * *p : v;
  }
};
// A fused convolution's epilogue (kernels/conv.h): bias of channel r / taps (C's rows are taps, that
// many per channel), then act, stored in f32 or bf16.
struct BiasAct {
  void *y;
  int y_bf16;
  int64_t img, taps;
  const float *bias;
  int act;
  __device__ void put(int64_t z, int64_t r, int64_t i, float v) const {
    samx_conv_store(y, y_bf16, z * img + i, samx_conv_bias_act(v, bias ? bias[r / taps] : 0.0f, act));
  }
};

// The row and column halves of a block's tiles, in shared memory after the three tiles: A's rows,
// B's columns and C's once per block, A's columns and B's rows (the K step's) once per step.
template <class A, class B, class O>
struct Halves {
  typename A::Row a_row[BM];
  typename A::Col a_k[BK];
  typename B::Row b_k[BK];
  typename B::Col b_col[BN];
  typename O::Row c_row[BM];
  typename O::Col c_col[BN];
};

// ---- the kernel: grid (N tiles, M tiles, images) ----
template <class A, class B, class O, class E>
__global__ void __launch_bounds__(THREADS)
    gather_gemm_kernel(int64_t M, int64_t N, int64_t K, A a, B b, O o, E e) {
  char *base = samx_smem_aligned32();
  bf16 *as = (bf16 *)base, *bs = (bf16 *)(base + A_BYTES);
  float *cs = (float *)(base + A_BYTES + B_BYTES);
  Halves<A, B, O> *h = (Halves<A, B, O> *)(base + A_BYTES + B_BYTES + C_BYTES);
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  const int64_t z = blockIdx.z, m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
  // Rows past M and columns past N are never read (their entries stay unset).
  for (int t = threadIdx.x; t < BM; t += THREADS)
    if (m0 + t < M) h->a_row[t] = a.row(z, m0 + t), h->c_row[t] = o.row(m0 + t);
  for (int t = threadIdx.x; t < BN; t += THREADS)
    if (n0 + t < N) h->b_col[t] = b.col(z, n0 + t), h->c_col[t] = o.col(n0 + t);
  FragC acc[2][2];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    __syncthreads();  // the previous step's tiles and halves are consumed
    for (int t = threadIdx.x; t < BK; t += THREADS)
      if (k0 + t < K) h->a_k[t] = a.col(z, k0 + t), h->b_k[t] = b.row(z, k0 + t);
    __syncthreads();
    // Consecutive threads take consecutive k (A) and consecutive columns (B; consecutive k where B's
    // rows run along memory): both run along memory.
    const bool b_k_major = b.k_major();
    for (int e = threadIdx.x; e < BM * BK; e += THREADS) {
      const int r = e / BK, k = e % BK;
      as[r * LDA + k] = __float2bfloat16(m0 + r < M && k0 + k < K ? a.at(h->a_row[r], h->a_k[k]) : 0.0f);
    }
    for (int e = threadIdx.x; e < BK * BN; e += THREADS) {
      const int k = b_k_major ? e % BK : e / BN, n = b_k_major ? e / BK : e % BN;
      bs[k * LDB + n] = __float2bfloat16(k0 + k < K && n0 + n < N ? b.at(h->b_k[k], h->b_col[n]) : 0.0f);
    }
    __syncthreads();
    for (int kk = 0; kk < BK; kk += 16) {
      FragA fa[2];
      FragB fb[2];
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], as + (wm * 32 + i * 16) * LDA + kk, LDA);
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], bs + kk * LDB + wn * 32 + j * 16, LDB);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, wmma::mem_row_major);
  __syncthreads();
  for (int t = threadIdx.x; t < BM * BN; t += THREADS) {
    const int64_t i = m0 + t / BN < M && n0 + t % BN < N ? o.at(h->c_row[t / BN], h->c_col[t % BN]) : -1;
    if (i >= 0) e.put(z, m0 + t / BN, i, cs[(t / BN) * LDC + t % BN]);
  }
}

template <class A, class B, class O, class E>
void launch(const char *what, int64_t M, int64_t N, int64_t K, int64_t images, A a, B b, O o, E e) {
  if (M == 0 || N == 0 || images == 0) return;
  const int64_t gx = (N + BN - 1) / BN, gy = (M + BM - 1) / BM;
  SAMX_ASSERT(gx <= 0x7fffffff && gy <= 65535 && images <= 65535,
              "%s (implicit GEMM): %lld x %lld tiles x %lld images exceed the CUDA grid", what, (long long)gy,
              (long long)gx, (long long)images);
  const size_t smem = A_BYTES + B_BYTES + C_BYTES + sizeof(Halves<A, B, O>) + 32;
  void (*gather_gemm)(int64_t, int64_t, int64_t, A, B, O, E) = gather_gemm_kernel<A, B, O, E>;
  samx_cuda_set_smem(gather_gemm, smem, what);
  SAMX_LAUNCH(gather_gemm, dim3((unsigned)gx, (unsigned)gy, (unsigned)images), THREADS, smem)(M, N, K, a, b, o, e);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

extern "C" void samx_cuda_conv_gather_bf16(const float *w, int64_t M, const float *x, int64_t x_img, float *y,
                                           int64_t y_img, int64_t B, float beta, SamxConvGeom g) {
  const int64_t K = g.C * g.kh * g.kw, N = g.Ho * g.Wo;
  launch("conv2d", M, N, K, B, Dense<float>{w, K, 1, 0}, Taps<false>{x, x_img, g}, DenseOut{N},
         Accumulate{y, y_img, beta});
}

extern "C" void samx_cuda_conv_scatter_bf16(const float *w, int64_t M, const float *in, int64_t in_img, float *x,
                                            int64_t x_img, int64_t B, int accumulate, SamxConvGeom g) {
  float beta = accumulate ? 1.0f : 0.0f;
  const int64_t taps = g.C * g.kh * g.kw, N = g.Ho * g.Wo;
  if (samx_conv_taps_disjoint(g)) {  // w^T [C*kh*kw, M] . in_i [M, Ho*Wo], each entry to its place
    if (!accumulate && !samx_conv_taps_cover(g)) {  // what no tap reaches is 0
      CUDA_CHECK(cudaMemsetAsync(x, 0, (size_t)(B * x_img) * sizeof(float), 0));
      beta = 1.0f;
    }
    launch("conv adjoint, disjoint taps", taps, N, M, B, Dense<float>{w, 1, taps, 0}, Dense<float>{in, N, 1, in_img},
           TapsOut{g}, Accumulate{x, x_img, beta});
  } else {
    launch("conv adjoint", g.C, g.H * g.W, M * g.kh * g.kw, B, AdjointW{w, g}, Taps<true>{in, in_img, g},
           DenseOut{g.H * g.W}, Accumulate{x, x_img, beta});
  }
}

extern "C" void samx_cuda_conv_weight_grad_bf16(const float *a, int64_t M, int64_t a_img, const float *img,
                                                int64_t img_img, int64_t B, float *gw, SamxConvGeom g) {
  const int64_t n = g.Ho * g.Wo;
  launch("conv weight gradient", M, g.C * g.kh * g.kw, B * n, 1, FoldedRows{a, a_img, n}, FoldedColsT{img, img_img, g},
         DenseOut{g.C * g.kh * g.kw}, Accumulate{gw, 0, 1.0f});
}

extern "C" void samx_cuda_conv_transpose_fused_bf16(const float *w, int64_t M, const void *x, int x_bf16,
                                                    int channels_last, int64_t x_img, void *y, int y_bf16,
                                                    int64_t y_img, int64_t B, const float *bias, int act,
                                                    SamxConvGeom g) {
  SAMX_ASSERT(samx_conv_taps_disjoint(g) && samx_conv_taps_cover(g),
              "conv_transpose2d (fused): kernel %lldx%lld, stride %lld, pad %lld: the taps must be disjoint and cover "
              "the output", (long long)g.kh, (long long)g.kw, (long long)g.stride, (long long)g.pad);
  const int64_t taps = g.C * g.kh * g.kw, N = g.Ho * g.Wo;
  const BiasAct e = {y, y_bf16, y_img, g.kh * g.kw, bias, act};
  // B [M, N]: x_i as [M, h*w], or its channels-last [h*w, M] read through swapped strides.
  const int64_t rs = channels_last ? 1 : N, cs = channels_last ? M : 1;
  if (x_bf16)
    launch("conv_transpose2d, fused", taps, N, M, B, Dense<float>{w, 1, taps, 0},
           Dense<uint16_t>{(const uint16_t *)x, rs, cs, x_img}, TapsOut{g}, e);
  else
    launch("conv_transpose2d, fused", taps, N, M, B, Dense<float>{w, 1, taps, 0},
           Dense<float>{(const float *)x, rs, cs, x_img}, TapsOut{g}, e);
}
