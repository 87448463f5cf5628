// bf16 GEMMs on tensor cores through cuBLASLt, and the bf16 <-> f32 casts around them.
#include <string.h>
#include <cublasLt.h>
#include <limits.h>

#include <type_traits>

#include "../../engine/error.h"
#include "../linalg.h"
#include "cuda_common.cuh"

#define CUBLASLT_CHECK(call) CUBLAS_CHECK(call)

// The cuBLASLt handle of the current device, created on first use.
static cublasLtHandle_t lt_handle(void) {
  static cublasLtHandle_t handles[64];
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (!handles[dev]) CUBLASLT_CHECK(cublasLtCreate(&handles[dev]));
  return handles[dev];
}

// One GEMM configuration as cuBLASLt sees it (column-major), and the algorithm its heuristic picked:
// the query costs far more than the matmul's host work, so each shape asks once per process.
typedef struct {
  int dev;
  int64_t m, n, k;
  int trans_a, trans_b, d_bf16, bias, gelu;
  size_t workspace_limit;
  uint32_t align[4];  // of the A, B, C, D pointers as cuBLASLt sees them (bytes, at most 256)
  cublasLtMatmulAlgo_t algo;
  size_t algo_workspace;
} LtPlan;

#define LT_CACHE 256
static LtPlan lt_cache[LT_CACHE];
static int lt_cached;

static int plan_eq(const LtPlan *p, const LtPlan *q) {
  return p->dev == q->dev && p->m == q->m && p->n == q->n && p->k == q->k && p->trans_a == q->trans_a &&
         p->trans_b == q->trans_b && p->d_bf16 == q->d_bf16 && p->bias == q->bias && p->gelu == q->gelu &&
         p->workspace_limit == q->workspace_limit && !memcmp(p->align, q->align, sizeof p->align);
}

// The largest power of two (at most 256) that divides the address. cuBLASLt's heuristic assumes
// 256-byte-aligned operands unless told otherwise (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES), and an
// algorithm picked for that may not run on a less aligned pointer: a convolution's per-image slice of
// an arena tensor is aligned to its element size only.
static uint32_t alignment_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

typedef struct {
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t a, b, c;
} LtDescs;

// Column-major descriptors of the row-major product D = op(A) op(B): cuBLASLt computes
// D^T (n x m) = op(B)^T op(A)^T, so B is its first operand and A its second (see linalg.cu's gemm).
static LtDescs lt_descs(const LtPlan *p, const void *bias) {
  LtDescs d;
  CUBLASLT_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  int32_t ta = p->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, tb = p->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  uint32_t epilogue = p->gelu ? (p->bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                              : (p->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
  cudaDataType_t dt = p->d_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  if (p->bias) {
    int32_t bias_type = dt;
    CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                  sizeof bias_type));
  }
  int64_t m = p->m, n = p->n, k = p->k;
  // Row-major B (k x n, or n x k when trans_b) is column-major n x k (ld n), or k x n (ld k).
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_16BF, p->trans_b ? k : n, p->trans_b ? n : k,
                                            p->trans_b ? (k > 1 ? k : 1) : (n > 1 ? n : 1)));
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_16BF, p->trans_a ? m : k, p->trans_a ? k : m,
                                            p->trans_a ? (m > 1 ? m : 1) : (k > 1 ? k : 1)));
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&d.c, dt, n, m, n > 1 ? n : 1));
  return d;
}

static void lt_descs_free(LtDescs *d) {
  cublasLtMatrixLayoutDestroy(d->a);
  cublasLtMatrixLayoutDestroy(d->b);
  cublasLtMatrixLayoutDestroy(d->c);
  cublasLtMatmulDescDestroy(d->op);
}

static const LtPlan *lt_plan(LtPlan key, const LtDescs *d) {
  for (int i = 0; i < lt_cached; i++)
    if (plan_eq(&lt_cache[i], &key)) return &lt_cache[i];
  cublasLtMatmulPreference_t pref;
  CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t limit = key.workspace_limit;
  CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit,
                                                      sizeof limit));
  static const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; i++)
    CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &key.align[i], sizeof key.align[i]));
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  CUBLASLT_CHECK(cublasLtMatmulAlgoGetHeuristic(lt_handle(), d->op, d->a, d->b, d->c, d->c, pref, 1, &r, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  SAMX_ASSERT(found == 1 && r.state == CUBLAS_STATUS_SUCCESS,
              "cuBLASLt has no bf16 algorithm for m=%lld n=%lld k=%lld (trans %d %d)", (long long)key.m,
              (long long)key.n, (long long)key.k, key.trans_a, key.trans_b);
  key.algo = r.algo;
  key.algo_workspace = r.workspaceSize;
  // A full cache starts over: shapes of a model are few, so this only happens with changing inputs.
  if (lt_cached == LT_CACHE) lt_cached = 0;
  lt_cache[lt_cached] = key;
  return &lt_cache[lt_cached++];
}

extern "C" void samx_cuda_linalg_gemm_bf16(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, float alpha,
                                           const uint16_t *a, const uint16_t *b, float beta, const void *c, void *d,
                                           int d_bf16, const void *bias, int gelu, void *workspace,
                                           size_t workspace_bytes) {
  SAMX_ASSERT(m >= 0 && n >= 0 && k >= 0 && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX,
              "gemm_bf16: sizes m=%lld n=%lld k=%lld", (long long)m, (long long)n, (long long)k);
  if (m == 0 || n == 0) return;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const void *c_read = beta != 0.0f ? c : d;
  // cuBLASLt's A is samx's b and its B samx's a (lt_descs).
  LtPlan key = {dev, m, n, k, trans_a, trans_b, d_bf16, bias != NULL, gelu != 0, workspace_bytes,
                {alignment_of(b), alignment_of(a), alignment_of(c_read), alignment_of(d)}, {{0}}, 0};
  LtDescs descs = lt_descs(&key, bias);
  const LtPlan *plan = lt_plan(key, &descs);
  cudaStream_t stream;
  CUBLAS_CHECK(cublasGetStream(samx_cublas_handle(), &stream));
  CUBLASLT_CHECK(cublasLtMatmul(lt_handle(), descs.op, &alpha, b, descs.a, a, descs.b, &beta, c_read,
                                descs.c, d, descs.c, &plan->algo, plan->algo_workspace ? workspace : NULL,
                                plan->algo_workspace, stream));
  lt_descs_free(&descs);
}

// Four elements per thread: a 16-byte load of f32 (or an 8-byte one of bf16) when both sides are
// aligned (arena tensors are 256-byte aligned), element by element otherwise and for the tail. The
// aligned structs make nvcc emit one vector access per side.
template <class T>
struct Vec4;
template <>
struct alignas(16) Vec4<float> {
  float v[4];
};
template <>
struct alignas(8) Vec4<uint16_t> {
  uint16_t v[4];
};

__device__ static uint16_t convert(float x, uint16_t *) { return samx_f32_to_bf16(x); }
__device__ static float convert(uint16_t x, float *) { return samx_bf16_to_f32(x); }

// TO_BF16 1: f32 -> bf16 (round to nearest even); 0: bf16 -> f32 (exact).
template <int TO_BF16>
__global__ static void cast_kernel(const void *xv, void *yv, int64_t n, int vec) {
  typedef typename std::conditional<TO_BF16 != 0, float, uint16_t>::type In;
  typedef typename std::conditional<TO_BF16 != 0, uint16_t, float>::type Out;
  const In *x = (const In *)xv;
  Out *y = (Out *)yv;
  int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; 4 * q < n; q += stride) {
    int64_t i = 4 * q;
    if (vec && i + 4 <= n) {
      Vec4<In> in = *(const Vec4<In> *)(x + i);
      Vec4<Out> out;
      for (int j = 0; j < 4; j++) out.v[j] = convert(in.v[j], (Out *)0);
      *(Vec4<Out> *)(y + i) = out;
    } else {
      for (int64_t j = i; j < n && j < i + 4; j++) y[j] = convert(x[j], (Out *)0);
    }
  }
}

static int aligned(const void *p, size_t bytes) { return ((uintptr_t)p % bytes) == 0; }

extern "C" void samx_cuda_linalg_cast_f32_bf16(const float *x, uint16_t *y, int64_t n) {
  if (n <= 0) return;
  int vec = aligned(x, 16) && aligned(y, 8);
  SAMX_LAUNCH(cast_kernel<1>, samx_grid_1d((size_t)((n + 3) / 4), 256), 256, 0)(x, y, n, vec);
  CUDA_LAUNCH_CHECK();
}

extern "C" void samx_cuda_linalg_cast_bf16_f32(const uint16_t *x, float *y, int64_t n) {
  if (n <= 0) return;
  int vec = aligned(x, 8) && aligned(y, 16);
  SAMX_LAUNCH(cast_kernel<0>, samx_grid_1d((size_t)((n + 3) / 4), 256), 256, 0)(x, y, n, vec);
  CUDA_LAUNCH_CHECK();
}
