// cuBLAS on the CPU BLAS for the host emulator. Column-major like cuBLAS; TF32 math (the
// CUBLAS_TF32_TENSOR_OP_MATH mode, the CUBLAS_COMPUTE_32F_FAST_TF32 compute type) rounds A and B to tf32; the arguments are checked
// as cuBLAS documents it (CUBLAS_STATUS_INVALID_VALUE for m, n, k < 0, a bad transpose, lda/ldb/ldc
// below the rows of the stored matrix, a negative batch count, null scalars), and every operand must
// lie inside one device allocation, as on a GPU, where a host pointer or an overrun faults.
#include <cblas.h>
#include <stdio.h>

#include <vector>

#include "../../../engine/dtype.h"
#include "cublas_v2.h"
#include "emu_internal.h"

struct samx_emu_cublas {
  cudaStream_t stream;
  cublasMath_t math;
  cublasPointerMode_t pointer_mode;
};

namespace {

using samx_emu::report;

bool op_ok(cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C; }

CBLAS_TRANSPOSE cblas_op(cublasOperation_t t) { return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

// Elements spanned by a column-major rows x cols matrix with leading dimension ld.
long long extent(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (long long)(cols - 1) * ld + rows; }

bool operand_ok(const char *fn, const char *name, const void *p, long long elems, size_t elem_bytes, int batch) {
  if (elems == 0) return true;
  if (samx_emu::device_range_ok(p, (size_t)elems * elem_bytes)) return true;
  report("%s: %s (%p, %lld elements, batch %d) is not inside one device allocation", fn, name, p, elems, batch);
  return false;
}

// The checks cuBLAS makes on a GEMM, then the operand ranges of every batch entry.
cublasStatus_t gemm_check(const char *fn, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                          int k, const void *alpha, int lda, int ldb, const void *beta, int ldc, int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;
  const char *bad = nullptr;
  if (!op_ok(ta) || !op_ok(tb)) bad = "transa/transb is not CUBLAS_OP_N, _T or _C";
  else if (m < 0 || n < 0 || k < 0) bad = "m, n and k must be >= 0";
  else if (lda < (rows_a > 1 ? rows_a : 1)) bad = "lda < max(1, rows of A as stored)";
  else if (ldb < (rows_b > 1 ? rows_b : 1)) bad = "ldb < max(1, rows of B as stored)";
  else if (ldc < (m > 1 ? m : 1)) bad = "ldc < max(1, m)";
  else if (batch < 0) bad = "batchCount < 0";
  else if (!alpha || !beta) bad = "alpha and beta must not be NULL";
  else if (h->pointer_mode != CUBLAS_POINTER_MODE_HOST) bad = "device pointer mode is not emulated";
  if (bad) {
    report("%s(transa=%d, transb=%d, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d, batch=%d): %s", fn, ta, tb, m, n, k,
           lda, ldb, ldc, batch, bad);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// Whether a GEMM of this handle and compute type multiplies in TF32: CUBLAS_COMPUTE_32F_FAST_TF32, or
// plain fp32 compute under CUBLAS_TF32_TENSOR_OP_MATH (the _PEDANTIC compute type never does).
bool uses_tf32(cublasHandle_t h, cublasComputeType_t ct) {
  if (ct == CUBLAS_COMPUTE_32F_FAST_TF32) return true;
  return ct == CUBLAS_COMPUTE_32F && (h->math & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) == CUBLAS_TF32_TENSOR_OP_MATH;
}

// The elements of a matrix rounded to tf32, as a tensor core reads them.
std::vector<float> tf32_copy(const float *p, long long elems) {
  std::vector<float> out((size_t)elems);
  for (long long i = 0; i < elems; i++) out[(size_t)i] = samx_round_tf32(p[i]);
  return out;
}

cublasStatus_t sgemm_one(const char *fn, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc, int batch,
                         bool tf32 = false) {
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const bool reads_ab = k > 0 && alpha != 0.0f;
  long long ea = ta == CUBLAS_OP_N ? extent(m, k, lda) : extent(k, m, lda);
  long long eb = tb == CUBLAS_OP_N ? extent(k, n, ldb) : extent(n, k, ldb);
  if ((reads_ab && !operand_ok(fn, "A", A, ea, 4, batch)) || (reads_ab && !operand_ok(fn, "B", B, eb, 4, batch)) ||
      !operand_ok(fn, "C", C, extent(m, n, ldc), 4, batch))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  if (samx_emu::dry_run()) return CUBLAS_STATUS_SUCCESS;
  std::vector<float> ra, rb;
  if (tf32 && reads_ab) {
    ra = tf32_copy(A, ea), rb = tf32_copy(B, eb);
    A = ra.data(), B = rb.data();
  }
  cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t sgemm_strided(const char *fn, cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                             int m, int n, int k, const float *alpha, const float *A, int lda, long long strideA,
                             const float *B, int ldb, long long strideB, const float *beta, float *C, int ldc,
                             long long strideC, int batchCount, bool tf32) {
  cublasStatus_t st = gemm_check(fn, handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc, batchCount);
  for (int i = 0; i < batchCount && st == CUBLAS_STATUS_SUCCESS; i++)
    st = sgemm_one(fn, transa, transb, m, n, k, *alpha, A + i * strideA, lda, B + i * strideB, ldb, *beta,
                   C + i * strideC, ldc, i, tf32);
  return st;
}

bool types_supported(const char *fn, cudaDataType_t a, cudaDataType_t b, cudaDataType_t c, cublasComputeType_t ct) {
  if (a == CUDA_R_32F && b == CUDA_R_32F && c == CUDA_R_32F &&
      (ct == CUBLAS_COMPUTE_32F || ct == CUBLAS_COMPUTE_32F_PEDANTIC || ct == CUBLAS_COMPUTE_32F_FAST_TF32))
    return true;
  report("%s: types A=%d B=%d C=%d compute=%d are not emulated yet (fp32 only)", fn, a, b, c, ct);
  return false;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
  *handle = new samx_emu_cublas{nullptr, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base < CUBLAS_DEFAULT_MATH || base > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
  cublasStatus_t st = gemm_check("cublasSgemm", handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc, 1);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  return sgemm_one("cublasSgemm", transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc, 0,
                   uses_tf32(handle, CUBLAS_COMPUTE_32F));
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float *alpha, const float *A, int lda,
                                         long long strideA, const float *B, int ldb, long long strideB,
                                         const float *beta, float *C, int ldc, long long strideC, int batchCount) {
  return sgemm_strided("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb,
                       strideB, beta, C, ldc, strideC, batchCount, handle && uses_tf32(handle, CUBLAS_COMPUTE_32F));
}

cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float *alpha, const float *const Aarray[], int lda,
                                  const float *const Barray[], int ldb, const float *beta, float *const Carray[],
                                  int ldc, int batchCount) {
  const char *fn = "cublasSgemmBatched";
  cublasStatus_t st = gemm_check(fn, handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc, batchCount);
  if (st == CUBLAS_STATUS_SUCCESS && batchCount > 0 &&
      (!operand_ok(fn, "Aarray", Aarray, batchCount, sizeof(void *), 0) ||
       !operand_ok(fn, "Barray", Barray, batchCount, sizeof(void *), 0) ||
       !operand_ok(fn, "Carray", Carray, batchCount, sizeof(void *), 0)))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  for (int i = 0; i < batchCount && st == CUBLAS_STATUS_SUCCESS; i++)
    st = sgemm_one(fn, transa, transb, m, n, k, *alpha, Aarray[i], lda, Barray[i], ldb, *beta, Carray[i], ldc, i,
                   uses_tf32(handle, CUBLAS_COMPUTE_32F));
  return st;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B,
                            cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  (void)algo;
  cublasStatus_t st = gemm_check("cublasGemmEx", handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc, 1);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!types_supported("cublasGemmEx", Atype, Btype, Ctype, computeType)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return sgemm_one("cublasGemmEx", transa, transb, m, n, k, *(const float *)alpha, (const float *)A, lda,
                   (const float *)B, ldb, *(const float *)beta, (float *)C, ldc, 0, uses_tf32(handle, computeType));
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void *alpha, const void *A,
                                          cudaDataType_t Atype, int lda, long long strideA, const void *B,
                                          cudaDataType_t Btype, int ldb, long long strideB, const void *beta, void *C,
                                          cudaDataType_t Ctype, int ldc, long long strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  const char *fn = "cublasGemmStridedBatchedEx";
  (void)algo;
  cublasStatus_t st = gemm_check(fn, handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc, batchCount);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!types_supported(fn, Atype, Btype, Ctype, computeType)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return sgemm_strided(fn, handle, transa, transb, m, n, k, (const float *)alpha, (const float *)A, lda, strideA,
                       (const float *)B, ldb, strideB, (const float *)beta, (float *)C, ldc, strideC, batchCount,
                       uses_tf32(handle, computeType));
}

}  // extern "C"
