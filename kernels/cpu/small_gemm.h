// C = alpha * A B for small row-major operands that fit in cache (one attention head of a SAM window:
// 196 x 196 x 64), where a single-threaded BLAS call spends most of its time packing: measured
// 52 GFLOP/s for ViT-B's windowed attention through OpenBLAS on 2 cores. A 6 x 16 register tile
// (12 accumulators) streams B's 16-column strip from L1 and broadcasts A's elements.
#ifndef SAMX_KERNELS_CPU_SMALL_GEMM_H
#define SAMX_KERNELS_CPU_SMALL_GEMM_H

#include "simd.h"

#define SG_MR 6
#define SG_NR 16

static inline int64_t sg_round_up(int64_t n) { return (n + SG_NR - 1) / SG_NR * SG_NR; }

// m <= SG_MR rows of C [m, 16] = alpha * A [m, k] B [k, 16] (+ C when accumulate).
static inline __attribute__((always_inline)) void sg_tile(int m, int64_t k, float alpha, const float *a, int64_t lda,
                                                          const float *b, int64_t ldb, float *c, int64_t ldc,
                                                          int accumulate) {
  v8f acc0[SG_MR], acc1[SG_MR];
  for (int i = 0; i < SG_MR; i++) acc0[i] = acc1[i] = v8_set1(0.0f);
  for (int64_t p = 0; p < k; p++) {
    const v8f b0 = v8_load(b + p * ldb), b1 = v8_load(b + p * ldb + 8);
    for (int i = 0; i < SG_MR; i++)
      if (i < m) {
        const v8f ai = v8_set1(a[i * lda + p]);
        acc0[i] += ai * b0;
        acc1[i] += ai * b1;
      }
  }
  for (int i = 0; i < m; i++) {
    float *ci = c + i * ldc;
    v8_store(ci, accumulate ? v8_load(ci) + acc0[i] * alpha : acc0[i] * alpha);
    v8_store(ci + 8, accumulate ? v8_load(ci + 8) + acc1[i] * alpha : acc1[i] * alpha);
  }
}

// C [m, n] = alpha * A [m, k] (lda) B [k, n] (ldb) (+ C when accumulate), n a multiple of 16 (pad
// B's columns with zeros).
static inline void small_gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                 const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
  for (int64_t j = 0; j < n; j += SG_NR)
    for (int64_t i = 0; i < m; i += SG_MR) {
      if (m - i >= SG_MR)
        sg_tile(SG_MR, k, alpha, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
      else
        sg_tile((int)(m - i), k, alpha, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
    }
}

// dst [rows, ld] = src [rows, cols] with columns cols..ld-1 zero.
static inline void sg_pack_rows(float *dst, int64_t ld, const float *src, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    memcpy(dst + r * ld, src + r * cols, (size_t)cols * sizeof *dst);
    memset(dst + r * ld + cols, 0, (size_t)(ld - cols) * sizeof *dst);
  }
}

// dst [cols, ld] = src [rows, cols]^T with columns rows..ld-1 zero.
static inline void sg_pack_transposed(float *dst, int64_t ld, const float *src, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; c++) {
    for (int64_t r = 0; r < rows; r++) dst[c * ld + r] = src[r * cols + c];
    memset(dst + c * ld + rows, 0, (size_t)(ld - rows) * sizeof *dst);
  }
}

#endif
