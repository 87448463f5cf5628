// Linear algebra: batched GEMM (OpenBLAS on the CPU, cuBLAS on CUDA), bias add and bias gradient,
// embedding gather and scatter-add.
// defines: samx_linalg_index_ok, samx_matmul_bf16b_column (shared by CPU and CUDA) and the launchers.
// The arithmetic here is BLAS's or a plain sum, so unlike the pointwise families there is little
// per-element math to share.
#ifndef SAMX_KERNELS_LINALG_H
#define SAMX_KERNELS_LINALG_H

#include "common.h"
#include "../engine/dtype.h"

// Whether an embedding index names a row of a table with n_rows rows.
SAMX_HD int samx_linalg_index_ok(int32_t index, int64_t n_rows) { return index >= 0 && (int64_t)index < n_rows; }

// Column j of C_i = A_i B_i for an f32 A_i [m, k] and a bf16 B_i [k, n] (row-major; b points at column j
// of B_i, c at column j of C_i): fp32 products of the f32 values and the bf16 ones widened exactly, summed
// in k order, 8 rows of A at a time so that each B value is read once per 8 rows. A CUDA thread or a CPU
// iteration per column: SAM's mask product (a few hypernetwork rows times 32 upscaled channels), where
// B is the wide operand and each output a short sum.
#define SAMX_MATMUL_BF16B_ROWS 8
SAMX_HD void samx_matmul_bf16b_column(const float *a, const uint16_t *b, float *c, int64_t m, int64_t n, int64_t k) {
  for (int64_t i0 = 0; i0 < m; i0 += SAMX_MATMUL_BF16B_ROWS) {
    int rows = m - i0 < SAMX_MATMUL_BF16B_ROWS ? (int)(m - i0) : SAMX_MATMUL_BF16B_ROWS;
    float acc[SAMX_MATMUL_BF16B_ROWS] = {0.0f};
    for (int64_t kk = 0; kk < k; kk++) {
      float bv = samx_bf16_to_f32(b[kk * n]);
      for (int r = 0; r < rows; r++) acc[r] += a[(i0 + r) * k + kk] * bv;
    }
    for (int r = 0; r < rows; r++) c[(i0 + r) * n] = acc[r];
  }
}

// Batched row-major GEMM. For i in [0, batch):
//   C_i = alpha * op(A_i) op(B_i) + beta * C_i
// with op(A_i) m x k, op(B_i) k x n, C_i m x n, where
//   A_i = a + i * stride_a, stored m x k, or k x m when trans_a (op(A_i) is then its transpose),
//   B_i = b + i * stride_b, stored k x n, or n x k when trans_b,
//   C_i = c + i * stride_c, stored m x n.
// Every matrix is contiguous (its leading dimension is its stored column count). Strides count floats.
// stride_a or stride_b 0 broadcasts one matrix over the batch. stride_c 0 (with batch > 1) reduces
// over the batch instead, C = alpha * sum_i op(A_i) op(B_i) + beta * C: the gradient of a weight
// broadcast over a batch. beta 0 never reads C (it may hold garbage).
// Argument order: sizes (batch, m, n, k), transposes, alpha, A and its stride, B and its stride, beta,
// C and its stride. Sizes must fit in an int (BLAS). The CUDA launcher takes device pointers and
// runs on the current stream.
SAMX_EXTERN_C void samx_cpu_linalg_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                                        float alpha, const float *a, int64_t stride_a, const float *b,
                                        int64_t stride_b, float beta, float *c, int64_t stride_c);
SAMX_EXTERN_C void samx_cuda_linalg_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                                         float alpha, const float *a, int64_t stride_a, const float *b,
                                         int64_t stride_b, float beta, float *c, int64_t stride_c);

// The same GEMM with the multiplications in TF32 (A and B rounded to 10 mantissa bits, fp32
// accumulation: cuBLAS's CUBLAS_COMPUTE_32F_FAST_TF32). CUDA only.
SAMX_EXTERN_C void samx_cuda_linalg_gemm_tf32(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a,
                                              int trans_b, float alpha, const float *a, int64_t stride_a,
                                              const float *b, int64_t stride_b, float beta, float *c,
                                              int64_t stride_c);

// One row-major GEMM with bf16 operands through cuBLASLt (CUDA only), fp32 accumulation:
//   D = alpha * op(A) op(B) + beta * C (+ bias broadcast over D's rows when bias != NULL)
// A, B: bf16 (uint16_t), stored as in samx_cpu_linalg_gemm (m x k or k x m when trans_a; k x n or
// n x k when trans_b). C, D: m x n, fp32 (d_bf16 = 0) or bf16 (d_bf16 = 1; rounded to nearest even);
// C may be D (beta 1: accumulate in place) and is not read when beta is 0. bias: n values of D's type.
// gelu: then GELU in its tanh form (samx_gelu_tanhf) on every element before D is written
// (CUBLASLT_EPILOGUE_GELU_BIAS / _GELU). workspace: device scratch of workspace_bytes (may be 0) for the
// algorithm cuBLASLt picks (cached per shape and epilogue). Runs on the current stream.
SAMX_EXTERN_C void samx_cuda_linalg_gemm_bf16(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, float alpha,
                                              const uint16_t *a, const uint16_t *b, float beta, const void *c,
                                              void *d, int d_bf16, const void *bias, int gelu, void *workspace,
                                              size_t workspace_bytes);

// bf16 <-> f32: y = bf16(x) rounded to nearest even, and back (exact). Both backends.
// C_i [m, n] = A_i [m, k] (f32) . B_i [k, n] (bf16) for i in [0, batch), by samx_matmul_bf16b_column;
// strides count elements (stride_b 0: one B for the whole batch).
SAMX_EXTERN_C void samx_cpu_matmul_bf16b(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                                         int64_t stride_a, const uint16_t *b, int64_t stride_b, float *c,
                                         int64_t stride_c);
SAMX_EXTERN_C void samx_cuda_matmul_bf16b(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                                          int64_t stride_a, const uint16_t *b, int64_t stride_b, float *c,
                                          int64_t stride_c);

SAMX_EXTERN_C void samx_cpu_linalg_cast_f32_bf16(const float *x, uint16_t *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_linalg_cast_f32_bf16(const float *x, uint16_t *y, int64_t n);
SAMX_EXTERN_C void samx_cpu_linalg_cast_bf16_f32(const uint16_t *x, float *y, int64_t n);
SAMX_EXTERN_C void samx_cuda_linalg_cast_bf16_f32(const uint16_t *x, float *y, int64_t n);
// y = x rounded to bf16 and kept as f32: the CPU's bf16 reference mode (operands of an fp32 GEMM that
// then computes what the bf16 GEMM computes, up to the order of the fp32 sums).
SAMX_EXTERN_C void samx_cpu_linalg_round_bf16(const float *x, float *y, int64_t n);

// y [rows, cols] += bias [cols] broadcast over rows.
// y [rows, cols] = bias in every row (a linear layer's GEMM then accumulates into it with beta = 1:
// one pass over y instead of BLAS's zeroing pass plus a bias pass).
SAMX_EXTERN_C void samx_cpu_linalg_bias_fill(float *y, const float *bias, int64_t rows, int64_t cols);
SAMX_EXTERN_C void samx_cuda_linalg_bias_fill(float *y, const float *bias, int64_t rows, int64_t cols);
// gbias [cols] += column sums of gy [rows, cols] (deterministic on both backends).
SAMX_EXTERN_C void samx_cpu_linalg_bias_grad(const float *gy, float *gbias, int64_t rows, int64_t cols);
SAMX_EXTERN_C void samx_cuda_linalg_bias_grad(const float *gy, float *gbias, int64_t rows, int64_t cols);

// out [n, dim] = rows idx[0..n) of table [n_rows, dim]. Returns -1, or the position of an index that is
// out of range (with its value in *bad_index; out is then incomplete).
SAMX_EXTERN_C int64_t samx_cpu_linalg_embedding_fwd(const float *table, int64_t n_rows, int64_t dim,
                                                    const int32_t *idx, int64_t n, float *out, int32_t *bad_index);
SAMX_EXTERN_C int64_t samx_cuda_linalg_embedding_fwd(const float *table, int64_t n_rows, int64_t dim,
                                                     const int32_t *idx, int64_t n, float *out, int32_t *bad_index);
// gtable [n_rows, dim]: row idx[i] += gout row i, for i in [0, n) (indices already checked by the forward).
SAMX_EXTERN_C void samx_cpu_linalg_embedding_bwd(const float *gout, const int32_t *idx, int64_t n, int64_t dim,
                                                 float *gtable);
SAMX_EXTERN_C void samx_cuda_linalg_embedding_bwd(const float *gout, const int32_t *idx, int64_t n, int64_t dim,
                                                  float *gtable);

#endif
