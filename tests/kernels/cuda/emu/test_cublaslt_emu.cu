// The emulated cuBLASLt (kernels/cuda/emu/cublasLt.cpp, emulated build only): results against a
// double-precision loop over the same (bf16) values, for every emulated epilogue and both output
// types, and the argument checks cuBLASLt documents, each giving its status. Also TF32 in the
// emulated cuBLAS (math mode and compute type): the product of the inputs rounded to tf32.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "../../../../engine/dtype.h"

static int g_failures = 0, g_passed = 0;

#define CHECK(cond, ...)                              \
  do {                                                \
    if (cond) {                                       \
      g_passed++;                                     \
    } else {                                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);     \
      printf(__VA_ARGS__);                            \
      printf("\n");                                   \
      g_failures++;                                   \
    }                                                 \
  } while (0)

template <class T>
static T *upload(const std::vector<T> &h) {
  T *p = nullptr;
  if (cudaMalloc(&p, h.size() * sizeof(T)) != cudaSuccess) abort();
  cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  return p;
}

template <class T>
static std::vector<T> download(const T *d, size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

// Column-major m x n = op(A) op(B): A stored ma x ka (lda), B stored (ldb); the reference in double.
struct Case {
  int m, n, k, ta, tb;
  uint32_t epilogue;
  bool d_bf16;
  float alpha, beta;
};

static double gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static void run_case(cublasLtHandle_t h, const Case &c) {
  int ar = c.ta ? c.k : c.m, ac = c.ta ? c.m : c.k, br = c.tb ? c.n : c.k, bc = c.tb ? c.k : c.n;
  int lda = ar + 1, ldb = br + 2, ldc = c.m + 3;  // padded leading dimensions are honoured
  std::vector<uint16_t> A((size_t)lda * ac), B((size_t)ldb * bc);
  for (auto &v : A) v = samx_f32_to_bf16(uniform());
  for (auto &v : B) v = samx_f32_to_bf16(uniform());
  cudaDataType_t dt = c.d_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  size_t esz = c.d_bf16 ? 2 : 4;
  std::vector<float> Cf((size_t)ldc * c.n), bias_f(c.m);
  for (auto &v : Cf) v = uniform();
  for (auto &v : bias_f) v = uniform();
  // C and bias in D's type (bf16 values when D is bf16; the float copies then hold those values).
  auto in_d_type = [&](std::vector<float> &f) {
    std::vector<unsigned char> bytes(f.size() * esz);
    for (size_t i = 0; i < f.size(); i++) {
      if (c.d_bf16) {
        uint16_t v = samx_f32_to_bf16(f[i]);
        f[i] = samx_bf16_to_f32(v);
        memcpy(&bytes[i * 2], &v, 2);
      } else {
        memcpy(&bytes[i * 4], &f[i], 4);
      }
    }
    return bytes;
  };
  std::vector<unsigned char> Cbytes = in_d_type(Cf), bias_bytes = in_d_type(bias_f);
  uint16_t *dA = upload(A), *dB = upload(B);
  unsigned char *dC = upload(Cbytes), *dBias = upload(bias_bytes);
  unsigned char *dD = upload(std::vector<unsigned char>(Cbytes.size(), 0xff));

  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  int32_t ta = c.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = c.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &c.epilogue, sizeof c.epilogue);
  const void *bp = dBias;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
  cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, ar, ac, lda);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, br, bc, ldb);
  cublasLtMatrixLayoutCreate(&lc, dt, c.m, c.n, ldc);
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  uint64_t ws_max = 1 << 20;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_max, sizeof ws_max);
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref, 1, &r, &found);
  CHECK(st == CUBLAS_STATUS_SUCCESS && found == 1 && r.state == CUBLAS_STATUS_SUCCESS, "heuristic: %d", st);
  CHECK(r.workspaceSize <= ws_max, "workspace %zu within the preference", r.workspaceSize);
  void *ws = nullptr;
  if (r.workspaceSize) cudaMalloc(&ws, r.workspaceSize);
  st = cublasLtMatmul(h, op, &c.alpha, dA, la, dB, lb, &c.beta, dC, lc, dD, lc, &r.algo, ws, r.workspaceSize, 0);
  CHECK(st == CUBLAS_STATUS_SUCCESS, "matmul m=%d n=%d k=%d epilogue %u: status %d", c.m, c.n, c.k, c.epilogue, st);
  std::vector<unsigned char> D = download(dD, Cbytes.size());
  double worst = 0;
  for (int j = 0; j < c.n; j++)
    for (int i = 0; i < c.m; i++) {
      double acc = 0, mag = 0;
      for (int l = 0; l < c.k; l++) {
        double a = samx_bf16_to_f32(c.ta ? A[(size_t)i * lda + l] : A[(size_t)l * lda + i]);
        double b = samx_bf16_to_f32(c.tb ? B[(size_t)l * ldb + j] : B[(size_t)j * ldb + l]);
        acc += a * b, mag += fabs(a * b);
      }
      double v = c.alpha * acc + c.beta * Cf[(size_t)j * ldc + i];
      mag = fabs(c.alpha) * mag + fabs(c.beta * Cf[(size_t)j * ldc + i]);
      if (c.epilogue & CUBLASLT_EPILOGUE_BIAS) v += bias_f[i], mag += fabs(bias_f[i]);
      if (c.epilogue == CUBLASLT_EPILOGUE_RELU || c.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0 ? v : 0;
      if (c.epilogue == CUBLASLT_EPILOGUE_GELU || c.epilogue == CUBLASLT_EPILOGUE_GELU_BIAS) v = gelu_tanh(v);
      size_t at = (size_t)j * ldc + i;
      double got;
      if (c.d_bf16) {
        uint16_t g;
        memcpy(&g, &D[at * 2], 2);
        got = samx_bf16_to_f32(g);
      } else {
        float g;
        memcpy(&g, &D[at * 4], 4);
        got = g;
      }
      // fp32 accumulation of k exact products: |error| <= k 2^-24 sum|ab|; a bf16 output adds half
      // an ulp of the result (2^-9 relative).
      double tol = (c.k + 4) * 6e-8 * (mag + 1e-30) + (c.d_bf16 ? fabs(v) * 0.00390625 : 0.0) + 1e-30;
      double err = fabs(got - v) / tol;
      worst = err > worst ? err : worst;
    }
  CHECK(worst <= 1.0, "m=%d n=%d k=%d ta=%d tb=%d epilogue %u D %s: error %.3g of the tolerance", c.m, c.n, c.k, c.ta,
        c.tb, c.epilogue, c.d_bf16 ? "bf16" : "f32", worst);
  // Padding rows of D (between m and ldc) are never written.
  bool pad_kept = true;
  for (int j = 0; j < c.n; j++)
    for (int i = c.m; i < ldc; i++)
      for (size_t b = 0; b < esz; b++) pad_kept &= D[((size_t)j * ldc + i) * esz + b] == 0xff;
  CHECK(pad_kept, "D's padding rows untouched");
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dD), cudaFree(dBias);
  if (ws) cudaFree(ws);
}

// The argument checks, each on an otherwise valid 4 x 3 x 5 bf16 -> f32 problem.
static void argument_checks(cublasLtHandle_t h) {
  const int m = 4, n = 3, k = 5;
  uint16_t *dA = upload(std::vector<uint16_t>(m * k, 0x3f80)), *dB = upload(std::vector<uint16_t>(k * n, 0x3f80));
  float *dD = upload(std::vector<float>(m * n, 0.0f)), *dBias = upload(std::vector<float>(m, 1.0f));
  float alpha = 1.0f, beta = 0.0f;
  cublasLtMatmulDesc_t op;
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasLtMatrixLayout_t la, lb, ld, la_bad_ld, la_f32, l_wrong_k, ld_bf16;
  cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, m, k, m);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, n, k);
  cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, m, n, m);
  cublasLtMatrixLayoutCreate(&la_bad_ld, CUDA_R_16BF, m, k, m - 1);
  cublasLtMatrixLayoutCreate(&la_f32, CUDA_R_32F, m, k, m);
  cublasLtMatrixLayoutCreate(&l_wrong_k, CUDA_R_16BF, k + 1, n, k + 1);
  cublasLtMatrixLayoutCreate(&ld_bf16, CUDA_R_16BF, m, n, m);
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  auto run = [&](cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, const void *ws,
                 size_t wsb, const cublasLtMatmulAlgo_t *algo) {
    return cublasLtMatmul(h, op, &alpha, dA, a, dB, b, &beta, dD, c, dD, c, algo, (void *)ws, wsb, 0);
  };
  CHECK(run(la, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_SUCCESS, "the valid problem runs");
  CHECK(run(la_bad_ld, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_INVALID_VALUE, "lda < rows");
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la_bad_ld, lb, ld, ld, pref, 1, &r, &found) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "the heuristic refuses lda < rows too");
  CHECK(run(la, l_wrong_k, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_INVALID_VALUE, "k of A and B differ");
  CHECK(run(la_f32, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_NOT_SUPPORTED, "A f32 with B bf16");
  // C and D of different types (C f32, D bf16).
  CHECK(cublasLtMatmul(h, op, &alpha, dA, la, dB, lb, &beta, dD, ld, dD, ld_bf16, nullptr, nullptr, 0, 0) ==
            CUBLAS_STATUS_NOT_SUPPORTED,
        "C and D types differ");
  CHECK(cublasLtMatmul(nullptr, op, &alpha, dA, la, dB, lb, &beta, dD, ld, dD, ld, nullptr, nullptr, 0, 0) ==
            CUBLAS_STATUS_NOT_INITIALIZED,
        "NULL handle");
  CHECK(cublasLtMatmul(h, op, nullptr, dA, la, dB, lb, &beta, dD, ld, dD, ld, nullptr, nullptr, 0, 0) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "NULL alpha");
  std::vector<uint16_t> host_a(m * k, 0x3f80);
  CHECK(cublasLtMatmul(h, op, &alpha, host_a.data(), la, dB, lb, &beta, dD, ld, dD, ld, nullptr, nullptr, 0, 0) ==
            CUBLAS_STATUS_EXECUTION_FAILED,
        "a host pointer as A faults");
  // Attribute sizes are checked.
  int64_t wide = CUBLAS_OP_T;
  CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &wide, sizeof wide) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "TRANSA takes an int32_t");
  uint32_t ws32 = 1024;
  CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws32, sizeof ws32) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "MAX_WORKSPACE_BYTES takes a uint64_t");
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, ld, ld, pref, 0, &r, &found) == CUBLAS_STATUS_INVALID_VALUE,
        "requestedAlgoCount 0");
  // A bias epilogue needs its pointer.
  uint32_t epi = CUBLASLT_EPILOGUE_BIAS;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  CHECK(run(la, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_INVALID_VALUE, "bias epilogue without a bias pointer");
  const void *bp = dBias;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
  int32_t bias_bf16 = CUDA_R_16BF;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_bf16, sizeof bias_bf16);
  CHECK(run(la, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_NOT_SUPPORTED, "bf16 bias with an f32 D");
  int32_t bias_f32 = CUDA_R_32F;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_f32, sizeof bias_f32);
  CHECK(run(la, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_SUCCESS, "bias epilogue with its pointer");
  std::vector<float> D = download(dD, m * n);
  CHECK(D[0] == 6.0f && D[m * n - 1] == 6.0f, "ones: 5 products + bias 1 = 6, got %g", D[0]);
  // Workspace: the algorithm's requirement must be met.
  uint64_t ws_max = 1 << 16;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_max, sizeof ws_max);
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, ld, ld, pref, 1, &r, &found) == CUBLAS_STATUS_SUCCESS &&
            r.workspaceSize > 0,
        "an algorithm using workspace");
  void *ws = nullptr;
  cudaMalloc(&ws, r.workspaceSize);
  CHECK(run(la, lb, ld, ws, r.workspaceSize - 4, &r.algo) == CUBLAS_STATUS_INVALID_VALUE, "workspace too small");
  CHECK(run(la, lb, ld, nullptr, r.workspaceSize, &r.algo) == CUBLAS_STATUS_INVALID_VALUE, "NULL workspace");
  CHECK(run(la, lb, ld, ws, r.workspaceSize, &r.algo) == CUBLAS_STATUS_SUCCESS, "workspace as required");
  // Alignment: an algorithm from the default preference is chosen for 256-byte-aligned operands and
  // refuses a D 4 bytes off (a slice of a tensor); declaring D's alignment gets one that takes it.
  auto run_d = [&](float *d, const cublasLtMatmulAlgo_t *algo) {
    return cublasLtMatmul(h, op, &alpha, dA, la, dB, lb, &beta, d, ld, d, ld, algo, ws, r.workspaceSize, 0);
  };
  float *dD_big = upload(std::vector<float>(m * n + 1, 0.0f));
  CHECK(run_d(dD_big + 1, &r.algo) == CUBLAS_STATUS_NOT_SUPPORTED, "D 4 bytes off with the default alignment");
  uint32_t four = 4;
  cublasLtMatmulPreference_t pref4;
  cublasLtMatmulPreferenceCreate(&pref4);
  cublasLtMatmulPreferenceSetAttribute(pref4, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_max, sizeof ws_max);
  CHECK(cublasLtMatmulPreferenceSetAttribute(pref4, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &four, sizeof four) ==
            CUBLAS_STATUS_SUCCESS,
        "MIN_ALIGNMENT_D_BYTES takes a uint32_t");
  cublasLtMatmulHeuristicResult_t r4;
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, ld, ld, pref4, 1, &r4, &found) == CUBLAS_STATUS_SUCCESS &&
            r4.workspaceSize <= r.workspaceSize && run_d(dD_big + 1, &r4.algo) == CUBLAS_STATUS_SUCCESS,
        "D 4 bytes off with MIN_ALIGNMENT_D_BYTES = 4");
  cublasLtMatmulPreferenceDestroy(pref4);
  cudaFree(dD_big);
  cublasLtMatmulAlgo_t junk;
  memset(&junk, 0, sizeof junk);
  CHECK(run(la, lb, ld, ws, r.workspaceSize, &junk) == CUBLAS_STATUS_INVALID_VALUE, "an algo not from the heuristic");
  int32_t tc = CUBLAS_OP_T;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSC, &tc, sizeof tc);
  CHECK(run(la, lb, ld, nullptr, 0, nullptr) == CUBLAS_STATUS_NOT_SUPPORTED, "TRANSC must be N");
  cublasLtMatmulDesc_t tf32_op;
  cublasLtMatmulDescCreate(&tf32_op, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F);
  CHECK(cublasLtMatmul(h, tf32_op, &alpha, dA, la, dB, lb, &beta, dD, ld, dD, ld, nullptr, nullptr, 0, 0) ==
            CUBLAS_STATUS_NOT_SUPPORTED,
        "bf16 inputs under a TF32 compute type");
  cublasLtMatmulDescDestroy(tf32_op);
  cudaFree(ws);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayout_t all[] = {la, lb, ld, la_bad_ld, la_f32, l_wrong_k, ld_bf16};
  for (auto l : all) cublasLtMatrixLayoutDestroy(l);
  cublasLtMatmulDescDestroy(op);
  cudaFree(dA), cudaFree(dB), cudaFree(dD), cudaFree(dBias);
}

// TF32 in the emulated cuBLAS: under CUBLAS_TF32_TENSOR_OP_MATH and CUBLAS_COMPUTE_32F_FAST_TF32 the
// result is the fp32 product of the inputs rounded to tf32; CUBLAS_COMPUTE_32F_PEDANTIC stays exact.
static void tf32_checks(void) {
  const int m = 3, n = 2, k = 4;
  std::vector<float> A(m * k), B(k * n), At(m * k), Bt(k * n);
  for (int i = 0; i < m * k; i++) A[i] = 1.0f + uniform() * 1e-3f, At[i] = samx_round_tf32(A[i]);
  for (int i = 0; i < k * n; i++) B[i] = 1.0f + uniform() * 1e-3f, Bt[i] = samx_round_tf32(B[i]);
  auto ref = [&](const std::vector<float> &a, const std::vector<float> &b, int i, int j) {
    float s = 0;
    for (int l = 0; l < k; l++) s += a[l * m + i] * b[j * k + l];
    return s;
  };
  float *dA = upload(A), *dB = upload(B), *dC = upload(std::vector<float>(m * n));
  cublasHandle_t h;
  cublasCreate(&h);
  float one = 1.0f, zero = 0.0f;
  auto max_dev = [&](const std::vector<float> &a, const std::vector<float> &b) {
    std::vector<float> C = download(dC, m * n);
    double w = 0;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) w = fmax(w, fabs(C[j * m + i] - ref(a, b, i, j)));
    return w;
  };
  cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_32F, m, dB, CUDA_R_32F, k, &zero, dC, CUDA_R_32F,
               m, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
  CHECK(max_dev(At, Bt) < 1e-6 && max_dev(A, B) > 1e-5, "FAST_TF32 multiplies tf32-rounded inputs");
  cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
  cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m);
  CHECK(max_dev(At, Bt) < 1e-6, "cublasSgemm under CUBLAS_TF32_TENSOR_OP_MATH is tf32");
  cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_32F, m, dB, CUDA_R_32F, k, &zero, dC, CUDA_R_32F,
               m, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT);
  CHECK(max_dev(A, B) < 1e-6, "CUBLAS_COMPUTE_32F_PEDANTIC stays fp32 in TF32 math mode");
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m);
  CHECK(max_dev(A, B) < 1e-6, "default math is fp32");
  CHECK(samx_round_tf32(1.0f + 1.0f / 4096) == 1.0f && samx_round_tf32(1.0f + 3.0f / 2048) == 1.0f + 1.0f / 512,
        "tf32 rounding to nearest even at 10 mantissa bits");
  cublasDestroy(h);
  cudaFree(dA), cudaFree(dB), cudaFree(dC);
}

int main(void) {
  cublasLtHandle_t h;
  CHECK(cublasLtCreate(&h) == CUBLAS_STATUS_SUCCESS, "create");
  const uint32_t epilogues[] = {CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_RELU_BIAS,
                                CUBLASLT_EPILOGUE_GELU, CUBLASLT_EPILOGUE_GELU_BIAS};
  for (uint32_t e : epilogues)
    for (int d_bf16 = 0; d_bf16 < 2; d_bf16++)
      for (int t = 0; t < 4; t++) run_case(h, Case{7, 5, 33, t & 1, t >> 1, e, d_bf16 != 0, 1.5f, 0.5f});
  run_case(h, Case{64, 48, 300, 0, 1, CUBLASLT_EPILOGUE_BIAS, false, 1.0f, 0.0f});
  run_case(h, Case{1, 1, 1, 0, 0, CUBLASLT_EPILOGUE_DEFAULT, true, 1.0f, 1.0f});
  argument_checks(h);
  tf32_checks();
  CHECK(cublasLtDestroy(h) == CUBLAS_STATUS_SUCCESS, "destroy");
  printf("%d passed, %d failed\n", g_passed, g_failures);
  return g_failures ? 1 : 0;
}
