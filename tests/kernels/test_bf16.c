// bf16 activations between the GEMMs (kernels/bf16.h).
//  cpu:  GELU, ReLU, the residual add and LayerNorm (LayerNorm2d's strided rows too) on bf16 values
//        against double-precision references of the same (exactly representable) inputs: the output
//        rounding costs half an ulp, 2^-9 relative; LayerNorm's fp32 statistics add ~C 2^-24 relative,
//        so the bound is 2^-8 |ref| + 1e-6.
//  cuda: the CUDA kernels against the CPU's on aligned (16-byte loads) and unaligned pointers, row
//        lengths with and without a partial chunk: bit-exact on the emulator (same math, same summation
//        partition); within one bf16 ulp on a GPU, where erff and sqrtf may differ by an f32 ulp.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/bf16.h"
#include "tests/harness.h"
#include "tests/test_util.h"

enum { R = 37, CMAX = 264 };

// LayerNorm's rows: `rows` of C values, inner apart (kernels/norm.h).
typedef struct {
  int64_t C, inner, rows;
} Layout;

static uint16_t *random_bf16(int64_t n, float lo, float hi, uint64_t *s) {
  float *f = malloc(sizeof(float) * (size_t)n);
  uint16_t *h = malloc(2 * (size_t)n);
  samx_test_fill_uniform(f, n, lo, hi, s);
  for (int64_t i = 0; i < n; i++) h[i] = samx_f32_to_bf16(f[i]);
  free(f);
  return h;
}

static double within(double got, double ref) { return fabs(got - ref) / (fabs(ref) / 256 + 1e-6); }

static void cpu_checks(void) {
  uint64_t s = 3;
  int64_t n = R * CMAX;
  uint16_t *a = random_bf16(n, -4, 4, &s), *b = random_bf16(n, -4, 4, &s), *y = malloc(2 * (size_t)n);
  double worst = 0;
  samx_cpu_bf16_act(SAMX_ACT_GELU, a, y, n);
  for (int64_t i = 0; i < n; i++) {
    double x = samx_bf16_to_f32(a[i]);
    worst = fmax(worst, within(samx_bf16_to_f32(y[i]), 0.5 * x * (1 + erf(x / sqrt(2.0)))));
  }
  CHECK(worst <= 1, "bf16 GELU (erf) at %.3g of the bound", worst);
  samx_cpu_bf16_act(SAMX_ACT_RELU, a, y, n);
  int relu_ok = 1;
  for (int64_t i = 0; i < n; i++) relu_ok &= samx_bf16_to_f32(y[i]) == fmaxf(samx_bf16_to_f32(a[i]), 0.0f);
  CHECK(relu_ok, "bf16 ReLU is exact");
  // b of a's size (a residual add), and b repeated over a (a positional encoding added to every prompt's
  // stream): nb = n / R, and 37, whose repeats do not line up with the chunks of 8
  const int64_t nbs[3] = {n, n / R, 37};
  for (int k = 0; k < 3; k++) {
    int64_t nb = nbs[k], m = n - n % nb;
    samx_cpu_bf16_add(a, b, y, m, nb);
    worst = 0;
    for (int64_t i = 0; i < m; i++)
      worst = fmax(worst, within(samx_bf16_to_f32(y[i]), (double)samx_bf16_to_f32(a[i]) + samx_bf16_to_f32(b[i % nb])));
    CHECK(worst <= 1, "bf16 add, b of %lld repeated over %lld: %.3g of the bound", (long long)nb, (long long)m, worst);
  }
  // LayerNorm against double statistics, for a row length with a partial chunk and one without, and
  // LayerNorm2d's strided rows (2 images of 64 channels at 18 pixels: rows * C <= R * CMAX).
  const Layout lay[3] = {{100, 1, R}, {256, 1, R}, {64, 18, 36}};
  float w[CMAX], bias[CMAX], mean[R], rstd[R];
  samx_test_fill_uniform(w, CMAX, 0.5f, 1.5f, &s);
  samx_test_fill_uniform(bias, CMAX, -0.5f, 0.5f, &s);
  for (int t = 0; t < 3; t++) {
    int64_t C = lay[t].C, inner = lay[t].inner, rows = lay[t].rows;
    // An offset mean makes the two-pass variance matter.
    uint16_t *x = random_bf16(rows * C, 2, 6, &s);
    samx_cpu_bf16_layernorm(x, w, bias, y, mean, rstd, rows, C, inner, 1e-6f);
    double wy = 0, ws = 0;
    for (int64_t r = 0; r < rows; r++) {
      int64_t base = samx_norm_row_base(r, C, inner);
      double m = 0, v = 0;
      for (int64_t c = 0; c < C; c++) m += samx_bf16_to_f32(x[base + c * inner]);
      m /= (double)C;
      for (int64_t c = 0; c < C; c++) v += pow(samx_bf16_to_f32(x[base + c * inner]) - m, 2);
      double rs = 1 / sqrt(v / (double)C + 1e-6);
      ws = fmax(ws, fmax(fabs(mean[r] - m) / (1e-6 * fabs(m)), fabs(rstd[r] - rs) / (1e-5 * rs)));
      for (int64_t c = 0; c < C; c++) {
        int64_t i = base + c * inner;
        wy = fmax(wy, within(samx_bf16_to_f32(y[i]), (samx_bf16_to_f32(x[i]) - m) * rs * w[c] + bias[c]));
      }
    }
    CHECK(wy <= 1 && ws <= 1, "bf16 LayerNorm C=%lld inner=%lld: y at %.3g, statistics at %.3g of their bounds",
          (long long)C, (long long)inner, wy, ws);
    free(x);
  }
  free(a), free(b), free(y);
}

// Largest difference in bf16 ulps (of the larger magnitude) between two bf16 arrays.
static inline int ulps(const uint16_t *p, const uint16_t *q, int64_t n) {
  int w = 0;
  for (int64_t i = 0; i < n; i++) {
    int d = abs((int)(p[i] & 0x7fff) - (int)(q[i] & 0x7fff));
    if ((p[i] ^ q[i]) & 0x8000) d = (p[i] & 0x7fff) + (q[i] & 0x7fff);
    w = d > w ? d : w;
  }
  return w;
}

// The CUDA kernels are only linked in a CUDA build (a CPU-only build runs cpu_checks alone).
static void cuda_checks(SamxDevice dev) {
#ifndef SAMX_WITH_CUDA
  (void)dev;
#else
#ifdef SAMX_CUDA_EMULATOR
  const int max_ulps = 0;
#else
  const int max_ulps = 1;
#endif
  uint64_t s = 11;
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  int64_t n = R * CMAX + 1;
  uint16_t *a = random_bf16(n, -4, 4, &s), *b = random_bf16(n, -4, 4, &s);
  uint16_t *want = malloc(2 * (size_t)n), *got = malloc(2 * (size_t)n);
  SamxTensor *ta = samx_new(&ctx, SAMX_BF16, SHAPE(n)), *tb = samx_new(&ctx, SAMX_BF16, SHAPE(n));
  SamxTensor *ty = samx_new(&ctx, SAMX_BF16, SHAPE(n));
  samx_tensor_write(ta, a), samx_tensor_write(tb, b);
  for (int off = 0; off < 2; off++) {  // off 1: every pointer 2 bytes past 16-byte alignment
    const uint16_t *da = (const uint16_t *)ta->data + off, *db = (const uint16_t *)tb->data + off;
    uint16_t *dy = (uint16_t *)ty->data + off;
    int64_t m = n - off;
    int acts[2] = {SAMX_ACT_GELU, SAMX_ACT_RELU};
    for (int k = 0; k < 2; k++) {
      samx_cpu_bf16_act(acts[k], a + off, want, m);
      samx_cuda_bf16_act(acts[k], da, dy, m);
      samx_tensor_read(ty, got);
      CHECK(ulps(got + off, want, m) <= max_ulps, "CUDA act %d (offset %d): %d ulps", acts[k], off,
            ulps(got + off, want, m));
    }
    const int64_t nbs[3] = {m, 64, 37};  // b of a's size; repeated with whole chunks; with chunks wrapping
    for (int k = 0; k < 3; k++) {
      int64_t nb = nbs[k], mm = m - m % nb;
      samx_cpu_bf16_add(a + off, b + off, want, mm, nb);
      samx_cuda_bf16_add(da, db, dy, mm, nb);
      samx_tensor_read(ty, got);
      CHECK(ulps(got + off, want, mm) <= max_ulps, "CUDA add, b of %lld (offset %d): %d ulps", (long long)nb, off,
            ulps(got + off, want, mm));
    }
  }
  float w[CMAX], bias[CMAX], mean[R], rstd[R], gmean[R], grstd[R];
  samx_test_fill_uniform(w, CMAX, 0.5f, 1.5f, &s);
  samx_test_fill_uniform(bias, CMAX, -0.5f, 0.5f, &s);
  SamxTensor *tw = samx_from_host(&ctx, SHAPE(CMAX), w), *tbias = samx_from_host(&ctx, SHAPE(CMAX), bias);
  SamxTensor *tm = samx_new(&ctx, SAMX_F32, SHAPE(R)), *tr = samx_new(&ctx, SAMX_F32, SHAPE(R));
  const Layout lay[4] = {{100, 1, R}, {256, 1, R}, {264, 1, R}, {64, 18, 36}};
  for (int t = 0; t < 4; t++) {
    int64_t C = lay[t].C, inner = lay[t].inner, rows = lay[t].rows;
    samx_cpu_bf16_layernorm(a, w, bias, want, mean, rstd, rows, C, inner, 1e-6f);
    samx_cuda_bf16_layernorm(ta->data, samx_f32(tw), samx_f32(tbias), ty->data, samx_f32(tm), samx_f32(tr), rows, C,
                             inner, 1e-6f);
    samx_tensor_read(ty, got);
    samx_tensor_read(tm, gmean);
    samx_tensor_read(tr, grstd);
    size_t stat_bytes = sizeof(float) * (size_t)rows;
    int same_stats = max_ulps ? 1 : !memcmp(mean, gmean, stat_bytes) && !memcmp(rstd, grstd, stat_bytes);
    CHECK(ulps(got, want, rows * C) <= max_ulps && same_stats,
          "CUDA LayerNorm C=%lld inner=%lld: %d ulps, statistics %s", (long long)C, (long long)inner,
          ulps(got, want, rows * C), same_stats ? "equal" : "differ");
  }
  free(a), free(b), free(want), free(got);
  samx_ctx_free(&ctx);
#endif
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CPU)
    cpu_checks();
  else
    cuda_checks(dev);
  return samx_test_summary();
}
