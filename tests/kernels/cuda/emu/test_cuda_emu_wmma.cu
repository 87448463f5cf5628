// The emulator's bf16 type and nvcuda::wmma (kernels/cuda/emu/cuda_bf16.h, mma.h): conversions with
// NVIDIA's rounding, tensor-core tile products right under every schedule, and the documented
// contract enforced: a kernel that assumes a fragment layout gets a wrong result (the layout is
// scrambled), a misaligned ldm or mptr and a lane missing from a collective fail the launch with an
// error naming the kernel.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../engine/dtype.h"
#include "emu_test.h"

using namespace nvcuda;

// ---- conversions ----

static unsigned short bits(float f) { return __bfloat16_as_ushort(__float2bfloat16(f)); }

static void test_bf16(void) {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1); 1 + 3 * 2^-8 ties up to 1 + 2^-6.
  CHECK(bits(1.0f + 0x1p-8f) == 0x3f80, "tie to even down: %04x", bits(1.0f + 0x1p-8f));
  CHECK(bits(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even up: %04x", bits(1.0f + 3 * 0x1p-8f));
  CHECK(bits(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "above the tie rounds up");
  CHECK(bits(-2.5f) == 0xc020, "-2.5 exact");
  CHECK(bits(3.4e38f) == 0x7f80, "rounds to +inf past the largest bf16: %04x", bits(3.4e38f));
  CHECK(bits(INFINITY) == 0x7f80 && bits(-INFINITY) == 0xff80, "infinities");
  CHECK(bits(NAN) == 0x7fff && bits(-NAN) == 0x7fff, "NaN becomes the canonical 0x7fff: %04x", bits(-NAN));
  CHECK(bits(1e-40f) == 0x0001, "a subnormal keeps its top bits: %04x", bits(1e-40f));
  // The engine's shared rounding (engine/dtype.h) agrees on every finite float sampled.
  unsigned mism = 0;
  for (uint32_t u = 0; u < 0xff800000u; u += 0x1357u) {
    float f;
    memcpy(&f, &u, 4);
    if (isnan(f)) continue;
    mism += bits(f) != samx_f32_to_bf16(f) || __bfloat162float(__float2bfloat16(f)) != samx_bf16_to_f32(samx_f32_to_bf16(f));
  }
  CHECK(mism == 0, "%u mismatches with samx_f32_to_bf16", mism);
}

// ---- kernels ----

// C [32 x 32] = A [32 x 16] B [16 x 32] + C0, one warp per 16 x 16 output tile (4 warps).
// A row-major (lda 16 + pad), B col-major (B^T stored row-major), C row- or col-major.
template <class LB>
__global__ void gemm_kernel(const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *b, int ldb, const float *c0,
                            float *c, int col_major_c, float scale) {
  const int warp = threadIdx.x / 32, tr = warp / 2, tc = warp % 2;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LB> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  const wmma::layout_t lc = col_major_c ? wmma::mem_col_major : wmma::mem_row_major;
  const int ldc = 32;
  const size_t c_off = col_major_c ? (size_t)tc * 16 * ldc + tr * 16 : (size_t)tr * 16 * ldc + tc * 16;
  wmma::load_matrix_sync(acc, c0 + c_off, ldc, lc);
  wmma::load_matrix_sync(fa, a + (size_t)tr * 16 * lda, lda);
  // B is 16 x 32: tile column tc starts at column 16 tc (row-major) or row 16 tc of B^T (col-major).
  const bool b_row = std::is_same<LB, wmma::row_major>::value;
  wmma::load_matrix_sync(fb, b + (b_row ? (size_t)tc * 16 : (size_t)tc * 16 * ldb), ldb);
  wmma::mma_sync(acc, fa, fb, acc);
  for (int i = 0; i < acc.num_elements; i++) acc.x[i] *= scale;  // uniform: allowed
  wmma::store_matrix_sync(c + c_off, acc, ldc, lc);
}

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// acc = A B for the row-major 16 x 16 tiles a and b; fa and fb keep the operands.
static void product16(FragA &fa, FragB &fb, FragC &acc, const __nv_bfloat16 *a, const __nv_bfloat16 *b) {
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(acc, fa, fb, acc);
}

// Wrong on purpose: adds a per-row bias assuming lane l holds row l / 2 of the accumulator (true
// of no documented layout).
__global__ void layout_assuming_kernel(const __nv_bfloat16 *a, const __nv_bfloat16 *b, const float *bias, float *c) {
  FragA fa;
  FragB fb;
  FragC acc;
  product16(fa, fb, acc, a, b);
  const int lane = threadIdx.x % 32;
  for (int i = 0; i < acc.num_elements; i++) acc.x[i] += bias[lane / 2];
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// Wrong on purpose: reuses the accumulator's elements as matrix_a's (A B B, the second product
// through a register copy instead of memory).
__global__ void frag_reuse_kernel(const __nv_bfloat16 *a, const __nv_bfloat16 *b, float *c) {
  FragA fa;
  FragB fb;
  FragC acc;
  product16(fa, fb, acc, a, b);
  for (int i = 0; i < fa.num_elements; i++) fa.x[i] = __float2bfloat16(acc.x[i]);
  wmma::fill_fragment(acc, 0.0f);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// The same product through shared memory: right.
__global__ void frag_via_smem_kernel(const __nv_bfloat16 *a, const __nv_bfloat16 *b, float *c) {
  __shared__ __attribute__((aligned(32))) float t[256];
  __shared__ __attribute__((aligned(32))) __nv_bfloat16 tb[256];
  FragA fa;
  FragB fb;
  FragC acc;
  product16(fa, fb, acc, a, b);
  wmma::store_matrix_sync(t, acc, 16, wmma::mem_row_major);
  __syncwarp();
  for (int i = threadIdx.x; i < 256; i += 32) tb[i] = __float2bfloat16(t[i]);
  __syncwarp();
  wmma::load_matrix_sync(fa, tb, 16);
  wmma::fill_fragment(acc, 0.0f);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// Contract violations.
__global__ void bad_ldm_kernel(const __nv_bfloat16 *a, float *c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, a, 20);  // 40 bytes: not a multiple of 16
  c[threadIdx.x] = __bfloat162float(fa.x[0]);
}
__global__ void bad_ptr_kernel(const __nv_bfloat16 *a, float *c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, a + 8, 16);  // 16 bytes past an aligned pointer
  c[threadIdx.x] = __bfloat162float(fa.x[0]);
}
__global__ void bad_store_ldm_kernel(float *c) {
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 1.0f);
  wmma::store_matrix_sync(c, acc, 18, wmma::mem_row_major);  // 72 bytes
}
__global__ void exited_lane_kernel(const __nv_bfloat16 *a, float *c) {
  if (threadIdx.x == 5) return;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, a, 16);
  c[threadIdx.x] = __bfloat162float(fa.x[0]);
}
__global__ void lanes_disagree_kernel(const __nv_bfloat16 *a, float *c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, a + (threadIdx.x % 2) * 16, 32);  // each lane its own tile
  c[threadIdx.x] = __bfloat162float(fa.x[0]);
}

// ---- host side ----

static float rnd(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

template <class T>
static T *upload(const T *h, size_t n) {
  T *d = dev_alloc<T>(n);
  cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

static void test_gemm(void) {
  const int lda = 24, ldb_row = 40, ldb_col = 24;  // padded leading dimensions, multiples of 8
  unsigned s = 7;
  static __nv_bfloat16 ha[32 * lda], hb_row[16 * ldb_row], hb_col[32 * ldb_col];
  float A[32][16], B[16][32], C0[32][32], hc0[32 * 32], hc0_col[32 * 32];
  for (int r = 0; r < 32; r++)
    for (int k = 0; k < 16; k++) ha[r * lda + k] = __float2bfloat16(rnd(&s)), A[r][k] = __bfloat162float(ha[r * lda + k]);
  for (int k = 0; k < 16; k++)
    for (int n = 0; n < 32; n++) {
      __nv_bfloat16 v = __float2bfloat16(rnd(&s));
      hb_row[k * ldb_row + n] = v, hb_col[n * ldb_col + k] = v, B[k][n] = __bfloat162float(v);
    }
  for (int r = 0; r < 32; r++)
    for (int n = 0; n < 32; n++) C0[r][n] = rnd(&s), hc0[r * 32 + n] = C0[r][n], hc0_col[n * 32 + r] = C0[r][n];
  __nv_bfloat16 *a = upload(ha, 32 * lda), *brow = upload(hb_row, 16 * ldb_row), *bcol = upload(hb_col, 32 * ldb_col);
  float *c0 = upload(hc0, 1024), *c0c = upload(hc0_col, 1024), *c = dev_alloc<float>(1024), hc[1024];
  for (const char *sch : kSchedules) {
    samx_cuda_emu_set_schedule(sch);
    for (int variant = 0; variant < 3; variant++) {
      const int colc = variant == 2;
      cudaError_t e;
      if (variant == 0)
        e = LAUNCH_ERR(SAMX_LAUNCH(gemm_kernel<wmma::row_major>, 1, 128, 0)(a, lda, brow, ldb_row, c0, c, 0, 2.0f));
      else
        e = LAUNCH_ERR(SAMX_LAUNCH(gemm_kernel<wmma::col_major>, 1, 128, 0)(a, lda, bcol, ldb_col, colc ? c0c : c0, c,
                                                                          colc, 2.0f));
      CHECK(e == cudaSuccess, "[%s] gemm variant %d: %s", sch, variant, samx_cuda_emu_last_fault());
      cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
      double worst = 0;
      for (int r = 0; r < 32; r++)
        for (int n = 0; n < 32; n++) {
          double ref = C0[r][n];
          for (int k = 0; k < 16; k++) ref += (double)A[r][k] * B[k][n];
          float got = colc ? hc[n * 32 + r] : hc[r * 32 + n];
          worst = fmax(worst, fabs(got - 2 * ref));
        }
      // bf16 products are exact in fp32; 16 fp32 additions of terms below 2 in magnitude: ~1e-6.
      CHECK(worst < 1e-5, "[%s] gemm variant %d: max error %g", sch, variant, worst);
    }
  }
  samx_cuda_emu_set_schedule("forward");
  cudaFree(a), cudaFree(brow), cudaFree(bcol), cudaFree(c0), cudaFree(c0c), cudaFree(c);
  printf("wmma gemm (A row-major, B row/col-major, C row/col-major): right under 4 schedules\n");
}

static void test_contract(void) {
  unsigned s = 3;
  __nv_bfloat16 ha[512], hb[256];
  float A[16][16], B[16][16], bias[16];
  for (int i = 0; i < 256; i++) {
    ha[i] = __float2bfloat16(rnd(&s)), hb[i] = __float2bfloat16(rnd(&s));
    A[i / 16][i % 16] = __bfloat162float(ha[i]), B[i / 16][i % 16] = __bfloat162float(hb[i]);
  }
  for (int i = 256; i < 512; i++) ha[i] = ha[i - 256];
  for (int i = 0; i < 16; i++) bias[i] = (float)(i + 1);
  __nv_bfloat16 *a = upload(ha, 512), *b = upload(hb, 256);
  float *db = upload(bias, 16), *c = dev_alloc<float>(256), hc[256];
  double AB[16][16], ABB[16][16];
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 16; n++) {
      AB[r][n] = 0;
      for (int k = 0; k < 16; k++) AB[r][n] += (double)A[r][k] * B[k][n];
    }
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 16; n++) {
      ABB[r][n] = 0;
      for (int k = 0; k < 16; k++) ABB[r][n] += (double)__bfloat162float(__float2bfloat16((float)AB[r][k])) * B[k][n];
    }

  // A per-row bias through an assumed layout: wrong here.
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(layout_assuming_kernel, 1, 32, 0)(a, b, db, c)) == cudaSuccess, "layout kernel runs");
  cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 16; n++) wrong += fabs(hc[r * 16 + n] - (AB[r][n] + bias[r])) > 1e-4;
  CHECK(wrong > 128, "a kernel assuming lane l holds row l/2 got only %d of 256 elements wrong", wrong);
  printf("caught layout assumption (per-row bias by lane): %d of 256 elements wrong\n", wrong);

  // Accumulator elements reused as matrix_a elements: wrong; the same through shared memory: right.
  double worst_reuse = 0, worst_smem = 0;
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(frag_reuse_kernel, 1, 32, 0)(a, b, c)) == cudaSuccess, "reuse kernel runs");
  cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 256; i++) worst_reuse = fmax(worst_reuse, fabs(hc[i] - ABB[i / 16][i % 16]));
  for (const char *sch : kSchedules) {
    samx_cuda_emu_set_schedule(sch);
    CHECK(LAUNCH_ERR(SAMX_LAUNCH(frag_via_smem_kernel, 1, 32, 0)(a, b, c)) == cudaSuccess, "smem kernel runs");
    cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost);
    for (int i = 0; i < 256; i++) worst_smem = fmax(worst_smem, fabs(hc[i] - ABB[i / 16][i % 16]));
  }
  samx_cuda_emu_set_schedule("forward");
  CHECK(worst_reuse > 0.1, "reusing accumulator elements as matrix_a went unnoticed (max error %g)", worst_reuse);
  CHECK(worst_smem < 1e-4, "the same product through shared memory: max error %g", worst_smem);
  printf("caught accumulator -> matrix_a register reuse: max error %.3g (through shared memory: %.2g)\n", worst_reuse,
         worst_smem);

  // Documented alignment and warp-collective rules.
  cudaError_t e = LAUNCH_ERR(SAMX_LAUNCH(bad_ldm_kernel, 1, 32, 0)(a, c));
  CHECK(e == cudaErrorLaunchFailure && fault_names("bad_ldm_kernel", "ldm 20 is not a multiple of 8 __nv_bfloat16"),
        "ldm 20: error %d, fault '%s'", e, samx_cuda_emu_last_fault());
  printf("misaligned ldm: %s\n", samx_cuda_emu_last_fault());
  e = LAUNCH_ERR(SAMX_LAUNCH(bad_store_ldm_kernel, 1, 32, 0)(c));
  CHECK(e == cudaErrorLaunchFailure && fault_names("bad_store_ldm_kernel", "store_matrix_sync") &&
            fault_names("ldm 18 is not a multiple of 4 float", nullptr),
        "store ldm 18: error %d, fault '%s'", e, samx_cuda_emu_last_fault());
  e = LAUNCH_ERR(SAMX_LAUNCH(bad_ptr_kernel, 1, 32, 0)(a, c));
  CHECK(e == cudaErrorLaunchFailure && fault_names("bad_ptr_kernel", "256-bit (32-byte) aligned"),
        "misaligned mptr: error %d, fault '%s'", e, samx_cuda_emu_last_fault());
  printf("misaligned mptr: %s\n", samx_cuda_emu_last_fault());
  for (const char *sch : kSchedules) {
    samx_cuda_emu_set_schedule(sch);
    e = LAUNCH_ERR(SAMX_LAUNCH(exited_lane_kernel, 1, 32, 0)(a, c));
    CHECK(e == cudaErrorLaunchFailure && fault_names("exited_lane_kernel", "exited"),
          "[%s] a lane missing from load_matrix_sync: error %d, fault '%s'", sch, e, samx_cuda_emu_last_fault());
    e = LAUNCH_ERR(SAMX_LAUNCH(bad_ldm_kernel, 1, 16, 0)(a, c));
    CHECK(e == cudaErrorLaunchFailure && fault_names("bad_ldm_kernel", "absent"),
          "[%s] a 16-thread block: error %d, fault '%s'", sch, e, samx_cuda_emu_last_fault());
    e = LAUNCH_ERR(SAMX_LAUNCH(lanes_disagree_kernel, 1, 32, 0)(a, c));
    CHECK(e == cudaErrorLaunchFailure && fault_names("lanes_disagree_kernel", "lanes disagree"),
          "[%s] lanes passing different tiles: error %d, fault '%s'", sch, e, samx_cuda_emu_last_fault());
  }
  samx_cuda_emu_set_schedule("forward");
  printf("lanes disagree: %s\n", samx_cuda_emu_last_fault());
  cudaFree(a), cudaFree(b), cudaFree(db), cudaFree(c);
}

int main(void) {
  test_bf16();
  test_gemm();
  test_contract();
  printf("%s: %d failure(s)\n", g_failures ? "FAIL" : "PASS", g_failures);
  return g_failures ? 1 : 0;
}
