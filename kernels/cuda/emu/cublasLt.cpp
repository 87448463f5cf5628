// cuBLASLt on the CPU for the host emulator: descriptors as plain structs, the checks cuBLASLt
// documents (CUBLAS_STATUS_INVALID_VALUE for an attribute of the wrong size, a NULL descriptor or
// scalar, layouts whose sizes do not make D = op(A) op(B), a leading dimension below the rows of a
// column-major matrix, a bias epilogue without a bias pointer, a workspace smaller than the algorithm
// needs; CUBLAS_STATUS_NOT_SUPPORTED for type combinations outside cuBLASLt's table and features the
// emulator leaves out), operands inside one device allocation each (and the bias 16-byte aligned, as
// the epilogue may load it), then the product on the CPU BLAS:
// inputs converted to f32 (exact for bf16; rounded to tf32 under CUBLAS_COMPUTE_32F_FAST_TF32), fp32
// accumulation, D = epilogue(alpha op(A) op(B) + beta C (+ bias)) in fp32, rounded to D's type.
#include "cublasLt.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include <vector>

#include "../../../engine/dtype.h"
#include "emu_internal.h"

struct cublasLtContext {
  int live;
};

struct samx_emu_lt_matmul_desc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  int32_t pointer_mode, transa, transb, transc;
  uint32_t epilogue;
  const void *bias;
  int32_t bias_type;  // -1: D's type
};

struct samx_emu_lt_layout {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};

struct samx_emu_lt_preference {
  uint32_t search_mode;
  uint64_t max_workspace;
  uint32_t min_align[4];  // A, B, C, D: cuBLASLt's default is 256 bytes each
};

namespace {

using samx_emu::report;

const uint64_t kAlgoMagic = 0x53414d584c54ull;  // marks an algorithm this emulator handed out

size_t type_bytes(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF || t == CUDA_R_16F ? 2 : 8; }

bool has_bias(uint32_t epilogue) { return epilogue & CUBLASLT_EPILOGUE_BIAS; }

bool epilogue_emulated(uint32_t e) {
  return e == CUBLASLT_EPILOGUE_DEFAULT || e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU ||
         e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_BIAS;
}

// The shape of one matmul, once its descriptors are known to agree.
struct Problem {
  int64_t m, n, k;
  cudaDataType_t ab, cd, bias;
  bool tf32;
};

cublasStatus_t bad(const char *fn, cublasStatus_t st, const char *why) {
  report("%s: %s", fn, why);
  return st;
}

// Everything cuBLASLt checks from the descriptors alone (shared by the heuristic query and the matmul).
cublasStatus_t check_config(const char *fn, cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t A,
                            cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
                            Problem *p) {
  if (!h || !h->live) return bad(fn, CUBLAS_STATUS_NOT_INITIALIZED, "handle not created by cublasLtCreate");
  if (!op || !A || !B || !C || !D) return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "a descriptor is NULL");
  if (op->transa < CUBLAS_OP_N || op->transa > CUBLAS_OP_C || op->transb < CUBLAS_OP_N || op->transb > CUBLAS_OP_C)
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "TRANSA/TRANSB is not CUBLAS_OP_N, _T or _C");
  if (op->transc != CUBLAS_OP_N) return bad(fn, CUBLAS_STATUS_NOT_SUPPORTED, "TRANSC must be CUBLAS_OP_N");
  if (op->pointer_mode != 0) return bad(fn, CUBLAS_STATUS_NOT_SUPPORTED, "only host pointer mode is emulated");
  if (op->scale != CUDA_R_32F) return bad(fn, CUBLAS_STATUS_NOT_SUPPORTED, "scale type must be CUDA_R_32F");
  // cuBLASLt's table for these compute types: A = B, C = D, and bf16 inputs only under CUBLAS_COMPUTE_32F.
  bool f32_compute = op->compute == CUBLAS_COMPUTE_32F || op->compute == CUBLAS_COMPUTE_32F_PEDANTIC;
  bool tf32 = op->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  bool types_ok = A->type == B->type && C->type == D->type &&
                  ((A->type == CUDA_R_16BF && f32_compute && (D->type == CUDA_R_16BF || D->type == CUDA_R_32F)) ||
                   (A->type == CUDA_R_32F && D->type == CUDA_R_32F && (f32_compute || tf32)));
  if (!types_ok) {
    report("%s: types A=%d B=%d C=%d D=%d with compute type %d: not in cuBLASLt's table (or not emulated)", fn,
           A->type, B->type, C->type, D->type, op->compute);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (!epilogue_emulated(op->epilogue)) {
    report("%s: epilogue %u is not emulated", fn, op->epilogue);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  cudaDataType_t bias_type = op->bias_type < 0 ? D->type : (cudaDataType_t)op->bias_type;
  if (has_bias(op->epilogue) && bias_type != D->type)
    return bad(fn, CUBLAS_STATUS_NOT_SUPPORTED, "bias type must be D's type (the only bias type the emulator accepts)");
  // D is m x n; op(A) m x k; op(B) k x n; C like D.
  int64_t m = (int64_t)D->rows, n = (int64_t)D->cols;
  int64_t am = op->transa == CUBLAS_OP_N ? A->rows : A->cols, ak = op->transa == CUBLAS_OP_N ? A->cols : A->rows;
  int64_t bk = op->transb == CUBLAS_OP_N ? B->rows : B->cols, bn = op->transb == CUBLAS_OP_N ? B->cols : B->rows;
  if (am != m || bn != n || ak != bk || (int64_t)C->rows != m || (int64_t)C->cols != n) {
    report("%s: op(A) %lld x %lld, op(B) %lld x %lld, C %llu x %llu, D %lld x %lld do not make D = op(A) op(B) + C",
           fn, (long long)am, (long long)ak, (long long)bk, (long long)bn, (unsigned long long)C->rows,
           (unsigned long long)C->cols, (long long)m, (long long)n);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const cublasLtMatrixLayout_t all[4] = {A, B, C, D};
  for (int i = 0; i < 4; i++)
    if (all[i]->ld < (int64_t)(all[i]->rows > 1 ? all[i]->rows : 1)) {
      report("%s: matrix %c has ld %lld below its %llu rows (column-major)", fn, "ABCD"[i], (long long)all[i]->ld,
             (unsigned long long)all[i]->rows);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
  if (m > INT32_MAX || n > INT32_MAX || ak > INT32_MAX)
    return bad(fn, CUBLAS_STATUS_NOT_SUPPORTED, "sizes beyond int32 are not emulated");
  *p = Problem{m, n, ak, A->type, D->type, bias_type, tf32};
  return CUBLAS_STATUS_SUCCESS;
}

// The emulated algorithm keeps its fp32 m x n accumulator in the workspace when the preference allows it.
size_t workspace_need(const Problem &p, uint64_t max_workspace) {
  size_t acc = (size_t)p.m * (size_t)p.n * sizeof(float);
  return acc <= max_workspace ? acc : 0;
}

long long extent(const cublasLtMatrixLayout_t l) {
  return l->rows == 0 || l->cols == 0 ? 0 : (long long)(l->cols - 1) * l->ld + (long long)l->rows;
}

bool operand_ok(const char *fn, const char *name, const void *p, cublasLtMatrixLayout_t l) {
  long long e = extent(l);
  if (e == 0 || samx_emu::device_range_ok(p, (size_t)e * type_bytes(l->type))) return true;
  report("%s: %s (%p, %lld elements) is not inside one device allocation", fn, name, p, e);
  return false;
}

float load(const void *p, cudaDataType_t t, int64_t i) {
  return t == CUDA_R_16BF ? samx_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

void store(void *p, cudaDataType_t t, int64_t i, float v) {
  if (t == CUDA_R_16BF)
    ((uint16_t *)p)[i] = samx_f32_to_bf16(v);
  else
    ((float *)p)[i] = v;
}

// A column-major operand as f32 with the same leading dimension (tf32: rounded).
std::vector<float> widen(const void *p, cublasLtMatrixLayout_t l, bool tf32) {
  std::vector<float> out((size_t)extent(l));
  for (uint64_t c = 0; c < l->cols; c++)
    for (uint64_t r = 0; r < l->rows; r++) {
      int64_t i = (int64_t)c * l->ld + (int64_t)r;
      float v = load(p, l->type, i);
      out[(size_t)i] = tf32 ? samx_round_tf32(v) : v;
    }
  return out;
}

// GELU as cuBLASLt's epilogue computes it: the tanh approximation (not erf).
float gelu_tanh(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); }

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) {
  if (!lightHandle) return CUBLAS_STATUS_INVALID_VALUE;
  *lightHandle = new cublasLtContext{1};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
  if (!lightHandle || !lightHandle->live) return CUBLAS_STATUS_NOT_INITIALIZED;
  lightHandle->live = 0;
  delete lightHandle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType) {
  if (!matmulDesc) return CUBLAS_STATUS_INVALID_VALUE;
  *matmulDesc = new samx_emu_lt_matmul_desc{computeType, scaleType, 0, CUBLAS_OP_N, CUBLAS_OP_N, CUBLAS_OP_N,
                                            CUBLASLT_EPILOGUE_DEFAULT, nullptr, -1};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
  delete matmulDesc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t sizeInBytes) {
  const char *fn = "cublasLtMatmulDescSetAttribute";
  if (!d || !buf) return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "NULL descriptor or buffer");
  void *field = nullptr;
  size_t size = sizeof(int32_t);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: field = &d->compute; break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: field = &d->scale; break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: field = &d->pointer_mode; break;
    case CUBLASLT_MATMUL_DESC_TRANSA: field = &d->transa; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: field = &d->transb; break;
    case CUBLASLT_MATMUL_DESC_TRANSC: field = &d->transc; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: field = &d->epilogue, size = sizeof(uint32_t); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: field = &d->bias, size = sizeof(void *); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: field = &d->bias_type; break;
    default: report("%s: attribute %d is not emulated", fn, (int)attr); return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (sizeInBytes != size) {
    report("%s: attribute %d takes %zu bytes, got %zu", fn, (int)attr, size, sizeInBytes);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  memcpy(field, buf, size);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (!matLayout) return CUBLAS_STATUS_INVALID_VALUE;
  *matLayout = new samx_emu_lt_layout{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
  delete matLayout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
  if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
  *pref = new samx_emu_lt_preference{0, 0, {256, 256, 256, 256}};  // default: no workspace allowed
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t sizeInBytes) {
  const char *fn = "cublasLtMatmulPreferenceSetAttribute";
  if (!pref || !buf) return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "NULL descriptor or buffer");
  if (attr == CUBLASLT_MATMUL_PREF_SEARCH_MODE && sizeInBytes == sizeof(uint32_t)) {
    memcpy(&pref->search_mode, buf, sizeInBytes);
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && sizeInBytes == sizeof(uint64_t)) {
    memcpy(&pref->max_workspace, buf, sizeInBytes);
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES &&
      sizeInBytes == sizeof(uint32_t)) {
    memcpy(&pref->min_align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, sizeInBytes);
    return CUBLAS_STATUS_SUCCESS;
  }
  report("%s: attribute %d with %zu bytes is not a preference (MAX_WORKSPACE_BYTES takes a uint64_t, "
         "MIN_ALIGNMENT_*_BYTES a uint32_t)",
         fn, (int)attr, sizeInBytes);
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int *returnAlgoCount) {
  const char *fn = "cublasLtMatmulAlgoGetHeuristic";
  if (requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount || !preference)
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "requestedAlgoCount <= 0 or a NULL argument");
  Problem p;
  cublasStatus_t st = check_config(fn, lightHandle, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  cublasLtMatmulHeuristicResult_t r;
  memset(&r, 0, sizeof r);
  r.algo.data[0] = kAlgoMagic;
  r.workspaceSize = workspace_need(p, preference->max_workspace);
  r.algo.data[1] = r.workspaceSize;
  // The operand alignment the algorithm was chosen for (the preference's minimum: a real algorithm may
  // need anything up to it, and the emulator holds calls to the strictest case).
  for (int i = 0; i < 4; i++) r.algo.data[2 + i] = preference->min_align[i];
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  heuristicResultsArray[0] = r;
  *returnAlgoCount = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                              cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceSizeInBytes,
                              cudaStream_t stream) {
  const char *fn = "cublasLtMatmul";
  (void)stream;  // everything completes when issued
  Problem p;
  cublasStatus_t st = check_config(fn, lightHandle, computeDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!alpha || !beta) return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "alpha and beta must not be NULL");
  if (algo && algo->data[0] != kAlgoMagic)
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "algo was not returned by cublasLtMatmulAlgoGetHeuristic");
  size_t need = algo ? (size_t)algo->data[1] : workspace_need(p, workspaceSizeInBytes);
  if (workspaceSizeInBytes < need) {
    report("%s: workspaceSizeInBytes %zu is less than the %zu bytes the algorithm needs", fn, workspaceSizeInBytes,
           need);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (workspaceSizeInBytes > 0 && !workspace)
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "workspace is NULL with a non-zero size");
  if (workspaceSizeInBytes > 0 && !samx_emu::device_range_ok(workspace, workspaceSizeInBytes)) {
    report("%s: workspace (%p, %zu bytes) is not inside one device allocation", fn, workspace, workspaceSizeInBytes);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  const float a = *(const float *)alpha, b = *(const float *)beta;
  bool bias = has_bias(computeDesc->epilogue);
  if (bias && !computeDesc->bias)
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "a bias epilogue needs CUBLASLT_MATMUL_DESC_BIAS_POINTER");
  // In place (C == D) needs C's and D's layouts to be the same.
  if (C == D && b != 0.0f && (Cdesc->ld != Ddesc->ld || Cdesc->type != Ddesc->type))
    return bad(fn, CUBLAS_STATUS_INVALID_VALUE, "C == D with different layouts for C and D");
  bool reads_ab = p.k > 0 && a != 0.0f;
  if (algo) {
    const void *ptr[4] = {reads_ab ? A : nullptr, reads_ab ? B : nullptr, b != 0.0f ? C : nullptr, D};
    for (int i = 0; i < 4; i++) {
      uint64_t need_align = algo->data[2 + i];
      if (ptr[i] && need_align > 1 && (uintptr_t)ptr[i] % need_align) {
        report("%s: %c (%p) is not aligned to the %llu bytes the algorithm was chosen for (the heuristic assumes "
               "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES, default 256)",
               fn, "ABCD"[i], ptr[i], (unsigned long long)need_align, "ABCD"[i]);
        return CUBLAS_STATUS_NOT_SUPPORTED;
      }
    }
  }
  if ((reads_ab && (!operand_ok(fn, "A", A, Adesc) || !operand_ok(fn, "B", B, Bdesc))) ||
      (b != 0.0f && !operand_ok(fn, "C", C, Cdesc)) || !operand_ok(fn, "D", D, Ddesc))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  if (bias && p.m > 0 && !samx_emu::device_range_ok(computeDesc->bias, (size_t)p.m * type_bytes(p.bias))) {
    report("%s: bias (%p, %lld elements) is not inside one device allocation", fn, computeDesc->bias,
           (long long)p.m);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  // The alignment preferences cover A, B, C and D, not the bias: the algorithm may load it 16 bytes at a
  // time, and a GPU then faults with a misaligned address (pytorch/pytorch#194497).
  if (bias && p.m > 0 && (uintptr_t)computeDesc->bias % 16) {
    report("%s: bias (%p) is not 16-byte aligned: the epilogue may read it in 16-byte vectors", fn,
           computeDesc->bias);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (p.m == 0 || p.n == 0 || samx_emu::dry_run()) return CUBLAS_STATUS_SUCCESS;
  // fp32 accumulator: in the workspace when the algorithm reserved it there (as a split-K GEMM would).
  std::vector<float> own;
  float *acc = (float *)workspace;
  if (need == 0) {
    own.assign((size_t)(p.m * p.n), 0.0f);
    acc = own.data();
  }
  if (reads_ab) {
    std::vector<float> fa = widen(A, Adesc, p.tf32), fb = widen(B, Bdesc, p.tf32);
    cblas_sgemm(CblasColMajor, computeDesc->transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                computeDesc->transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, (int)p.m, (int)p.n, (int)p.k, a,
                fa.data(), (int)Adesc->ld, fb.data(), (int)Bdesc->ld, 0.0f, acc, (int)p.m);
  } else {
    memset(acc, 0, sizeof(float) * (size_t)(p.m * p.n));
  }
  uint32_t e = computeDesc->epilogue;
  for (int64_t j = 0; j < p.n; j++)
    for (int64_t i = 0; i < p.m; i++) {
      float v = acc[j * p.m + i];
      if (b != 0.0f) v += b * load(C, Cdesc->type, j * Cdesc->ld + i);
      if (bias) v += load(computeDesc->bias, p.bias, i);
      if (e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0.0f ? v : 0.0f;
      if (e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_BIAS) v = gelu_tanh(v);
      store(D, Ddesc->type, j * Ddesc->ld + i, v);
    }
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
