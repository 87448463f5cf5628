// Linear layers in reduced precision (engine/ops_linalg.c, kernels/cuda/gemm_lt.cu).
//  cpu:  the CPU's bf16 reference mode (operands rounded to bf16, fp32 GEMM) against fp32, forward and
//        backward, within the bf16 bound below; the bf16 casts (round to nearest even).
//  cuda: the bf16 path (casts on the GPU, cuBLASLt with the bias epilogue, fp32 accumulation, dW in
//        fp32) against the CPU's bf16 reference mode, where only the order of the fp32 sums differs,
//        and against the CPU in fp32 within the bf16 bound; tf32 against fp32 within the tf32 bound;
//        the cuBLASLt launcher with a bf16 output and beta C (a residual added in place), with and
//        without the GELU epilogue; samx_linear_bf16 (a bf16 y from the GEMM), samx_linear_bf16_gelu
//        (GELU's tanh form in the epilogue) and samx_linear_bf16_residual (a residual added in place by
//        the GEMM) against the CPU reference rounded once, on both devices; the fused GELU against
//        nn.GELU's erf form on the fp32 linear; the casts
//        bit-exact against the CPU's; fp32 on CUDA untouched by all this (the other tests prove it);
//        parameters' kept bf16 operands (samx_params_shadow_bf16): the same results bit for bit as a
//        cast at every call, read instead of a new cast, refilled after the parameter is written;
//        a bias 4 bytes into a buffer (not 16-byte aligned, which cuBLASLt's epilogue may need: the
//        emulator refuses it) gives the aligned bias's outputs bit for bit, with an f32 and a bf16 y.
// Bounds, per output element y = sum_i a_i b_i (+ c): rounding both factors to bf16 (8 significant
// bits, relative error <= 2^-9 each) changes each product by <= 2^-8 |a_i b_i| (first order), and fp32
// accumulation adds <= K 2^-24 sum|a_i b_i|; so |y_bf16 - y_fp32| <= (2^-8 + K 2^-24) sum_i |a_i b_i|.
// tf32 keeps 11 significant bits: 2^-10 in place of 2^-8. Two fp32 sums of the same products in
// different orders differ by <= 2 K 2^-24 sum|a_i b_i|. GELU (either form) has a slope of at most 1.13,
// so an error e of its input moves its output by <= 1.13 e; its tanh form departs from the erf form by
// <= 4.8e-4; a GPU may evaluate that tanh with the hardware approximation (relative error 2^-11), which
// moves GELU by <= 2^-12 |x|.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/activation.h"
#include "engine/params.h"
#include "kernels/linalg.h"
#include "tests/harness.h"
#include "tests/test_util.h"

enum { M = 37, IN = 96, OUT = 40 };

typedef struct {
  float *y, *gx, *gw, *gb;
} LinearRun;

// y = x w^T + b and its gradients for upstream gy, on dev in precision p.
static LinearRun run_linear(SamxDevice dev, SamxPrecision p, const float *x, const float *w, const float *b,
                            const float *gy) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = p;
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(M, IN), x);
  SamxTensor *tw = samx_from_host(&ctx, SHAPE(OUT, IN), w);
  SamxTensor *tb = samx_from_host(&ctx, SHAPE(OUT), b);
  tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
  SamxTensor *y = samx_linear(&ctx, tx, tw, tb);
  SamxTensor *g = samx_from_host(&ctx, SHAPE(M, OUT), gy);
  CHECK(samx_backward(&ctx, y, g) == 0, "backward: %s", samx_last_error());
  LinearRun r = {samx_test_host_f32(y), samx_test_host_f32(tx->grad), samx_test_host_f32(tw->grad), samx_test_host_f32(tb->grad)};
  samx_ctx_free(&ctx);
  return r;
}

static void free_run(LinearRun *r) { free(r->y), free(r->gx), free(r->gw), free(r->gb); }

// max over outputs of |got - want| / (rel * sum_i |a_i b_i| + 1e-30): <= 1 passes. a is rows x K
// (row stride sa, element stride ea), b is cols x K likewise; out is rows x cols.
static double worst(const float *got, const float *want, int rows, int cols, int K, const float *a, int sa, int ea,
                    const float *b, int sb, int eb, double rel) {
  double w = 0;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      double mag = 0;
      for (int i = 0; i < K; i++) mag += fabs((double)a[r * sa + i * ea] * b[c * sb + i * eb]);
      double e = fabs((double)got[r * cols + c] - want[r * cols + c]) / (rel * mag + 1e-30);
      w = e > w ? e : w;
    }
  return w;
}

static double max_abs_diff(const float *a, const float *b, int n) {
  double m = 0;
  for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

// Checks run r against reference ref with relative bounds rel_y (forward) and rel_g (gradients).
static void compare(const char *what, const LinearRun *r, const LinearRun *ref, const float *x, const float *w,
                    const float *gy, double rel) {
  double wy = worst(r->y, ref->y, M, OUT, IN, x, IN, 1, w, IN, 1, rel);
  double wx = worst(r->gx, ref->gx, M, IN, OUT, gy, OUT, 1, w, 1, IN, rel);  // dx = gy w
  double ww = worst(r->gw, ref->gw, OUT, IN, M, gy, 1, OUT, x, 1, IN, rel);  // dw = gy^T x
  CHECK(wy <= 1 && wx <= 1 && ww <= 1, "%s: y, dx, dw at %.3g, %.3g, %.3g of the bound", what, wy, wx, ww);
  // The bias gradient sums dL/dy in fp32 in every precision.
  CHECK(max_abs_diff(r->gb, ref->gb, OUT) <= 1e-5, "%s: db differs by %g", what, max_abs_diff(r->gb, ref->gb, OUT));
}

static void cast_checks(SamxDevice dev) {
  // Ties round to even, NaN stays NaN, inf stays inf.
  const float special[] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f, 65504.0f, 1e-40f, INFINITY, -0.0f, NAN, 3.0f};
  const uint16_t want[] = {0x3f80, 0x3f82, 0xc020, 0x4780, 0x0001, 0x7f80, 0x8000, 0, 0x4040};
  uint16_t got[9];
  samx_cpu_linalg_cast_f32_bf16(special, got, 9);
  int ok = 1;
  for (int i = 0; i < 9; i++) ok &= i == 7 ? ((got[i] & 0x7f80) == 0x7f80 && (got[i] & 0x7f)) : got[i] == want[i];
  CHECK(ok, "CPU f32 -> bf16 special values");
  if (dev.type != SAMX_CUDA) return;
#ifdef SAMX_WITH_CUDA  // the CUDA launchers are only linked in a CUDA build
  // The CUDA casts against the CPU's, bit for bit, on an odd length from an unaligned start.
  enum { N = 1027 };
  float *src = (float *)malloc(sizeof(float) * (N + 1));
  uint64_t s = 5;
  samx_test_fill_uniform(src, N + 1, -300.0f, 300.0f, &s);
  uint16_t cpu16[N], gpu16[N];
  float cpu32[N], gpu32[N];
  samx_cpu_linalg_cast_f32_bf16(src + 1, cpu16, N);
  samx_cpu_linalg_cast_bf16_f32(cpu16, cpu32, N);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *d32 = samx_from_host(&ctx, SHAPE(N + 1), src);
  SamxTensor *d16 = samx_new(&ctx, SAMX_BF16, SHAPE(N + 1));
  SamxTensor *back = samx_new(&ctx, SAMX_F32, SHAPE(N + 1));
  samx_cuda_linalg_cast_f32_bf16(samx_f32(d32) + 1, (uint16_t *)d16->data + 1, N);
  samx_cuda_linalg_cast_bf16_f32((const uint16_t *)d16->data + 1, samx_f32(back) + 1, N);
  uint16_t all16[N + 1];
  float all32[N + 1];
  samx_tensor_read(d16, all16);
  samx_tensor_read(back, all32);
  memcpy(gpu16, all16 + 1, sizeof gpu16);
  memcpy(gpu32, all32 + 1, sizeof gpu32);
  CHECK(!memcmp(cpu16, gpu16, sizeof cpu16) && !memcmp(cpu32, gpu32, sizeof cpu32),
        "CUDA casts equal the CPU's (unaligned, odd length)");
  samx_cuda_linalg_cast_f32_bf16(samx_f32(d32), (uint16_t *)d16->data, N + 1);  // the vector path
  samx_tensor_read(d16, all16);
  uint16_t ref_all[N + 1];
  samx_cpu_linalg_cast_f32_bf16(src, ref_all, N + 1);
  CHECK(!memcmp(ref_all, all16, sizeof all16), "CUDA cast, aligned start");
  samx_ctx_free(&ctx);
  free(src);
#endif
}

#define GELU_SLOPE 1.13
#define GELU_TANH_VS_ERF 4.8e-4

static inline double gelu_tanh_d(double v) { return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

// The cuBLASLt launcher on its own: D (bf16) = alpha x w^T + beta D + bias, in place, then GELU's tanh
// form when gelu, against a double reference rounded to bf16 (half an ulp, 2^-9 relative, plus the
// accumulation bound, through GELU's slope, plus the hardware tanh's error).
static void lt_residual_check(SamxDevice dev, const float *x, const float *w, const float *res, int gelu) {
#ifndef SAMX_WITH_CUDA  // only called with a CUDA device, which only a CUDA build has
  (void)dev, (void)x, (void)w, (void)res, (void)gelu;
#else
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  uint16_t *hx = malloc(2 * M * IN), *hw = malloc(2 * OUT * IN), *hd = malloc(2 * M * OUT), bias16[OUT];
  samx_cpu_linalg_cast_f32_bf16(x, hx, M * IN);
  samx_cpu_linalg_cast_f32_bf16(w, hw, OUT * IN);
  samx_cpu_linalg_cast_f32_bf16(res, hd, M * OUT);
  for (int o = 0; o < OUT; o++) bias16[o] = samx_f32_to_bf16(0.25f * (float)(o % 5) - 0.5f);
  SamxTensor *tx = samx_new(&ctx, SAMX_BF16, SHAPE(M, IN)), *tw = samx_new(&ctx, SAMX_BF16, SHAPE(OUT, IN));
  SamxTensor *td = samx_new(&ctx, SAMX_BF16, SHAPE(M, OUT)), *tb = samx_new(&ctx, SAMX_BF16, SHAPE(OUT));
  SamxTensor *ws = samx_new(&ctx, SAMX_U8, SHAPE(1 << 16));
  samx_tensor_write(tx, hx), samx_tensor_write(tw, hw), samx_tensor_write(td, hd), samx_tensor_write(tb, bias16);
  samx_cuda_linalg_gemm_bf16(M, OUT, IN, 0, 1, 0.5f, tx->data, tw->data, 1.0f, td->data, td->data, 1, tb->data,
                             gelu, ws->data, 1 << 16);
  uint16_t *got = malloc(2 * M * OUT);
  samx_tensor_read(td, got);
  double wst = 0;
  for (int m = 0; m < M; m++)
    for (int o = 0; o < OUT; o++) {
      double acc = 0, mag = 0;
      for (int i = 0; i < IN; i++) {
        double p = (double)samx_bf16_to_f32(hx[m * IN + i]) * samx_bf16_to_f32(hw[o * IN + i]);
        acc += p, mag += fabs(p);
      }
      double c = samx_bf16_to_f32(hd[m * OUT + o]), bb = samx_bf16_to_f32(bias16[o]);
      double v = 0.5 * acc + c + bb, want = gelu ? gelu_tanh_d(v) : v;
      double tol = fabs(want) / 256 + (gelu ? GELU_SLOPE : 1.0) * 2 * IN * 6e-8 * (0.5 * mag + fabs(c) + fabs(bb)) +
                   (gelu ? fabs(v) / 4096 : 0.0) + 1e-30;
      wst = fmax(wst, fabs(samx_bf16_to_f32(got[m * OUT + o]) - want) / tol);
    }
  CHECK(wst <= 1, "cuBLASLt bf16 D = %s(0.5 x w^T + D + bias) in place: %.3g of the bound", gelu ? "GELU" : "",
        wst);
  free(hx), free(hw), free(hd), free(got);
  samx_ctx_free(&ctx);
#endif
}

// The CPU's bf16 reference mode for an inference GEMM that writes bf16: x w^T + bf16(b) in fp32 (the
// sum both devices round once).
static float *reference_bf16_linear(const float *x, const float *w, const float *b) {
  float b16[OUT];
  for (int o = 0; o < OUT; o++) b16[o] = samx_round_bf16(b[o]);
  SamxCtx ref_ctx;
  samx_test_ctx(&ref_ctx, samx_cpu());
  ref_ctx.precision = SAMX_PRECISION_BF16;
  samx_ctx_set_recording(&ref_ctx, 0);
  float *ref = samx_test_host_f32(samx_linear(&ref_ctx, samx_from_host(&ref_ctx, SHAPE(M, IN), x),
                                   samx_from_host(&ref_ctx, SHAPE(OUT, IN), w), samx_from_host(&ref_ctx, SHAPE(OUT), b16)));
  samx_ctx_free(&ref_ctx);
  return ref;
}

// An inference context in bf16 precision on dev, holding x, w and b.
static void bf16_inference_inputs(SamxCtx *ctx, SamxDevice dev, const float *x, const float *w, const float *b,
                                  SamxTensor **tx, SamxTensor **tw, SamxTensor **tb) {
  samx_test_ctx(ctx, dev);
  ctx->precision = SAMX_PRECISION_BF16;
  samx_ctx_set_recording(ctx, 0);
  *tx = samx_from_host(ctx, SHAPE(M, IN), x), *tw = samx_from_host(ctx, SHAPE(OUT, IN), w);
  *tb = samx_from_host(ctx, SHAPE(OUT), b);
}

// samx_linear_bf16 (inference): y written as bf16 by the GEMM equals the bf16-mode linear with the bias
// rounded to bf16 (then, for samx_linear_bf16_gelu, GELU's tanh form), rounded once: bit for bit on the
// CPU (the same sums), and on CUDA within one bf16 rounding (2^-8 |y|: the two fp32 sums may straddle a
// rounding boundary) plus the order bound (through GELU's slope, plus the hardware tanh's error). Only
// y stays allocated.
static void linear_bf16_out_check(SamxDevice dev, const float *x, const float *w, const float *b, double order_rel,
                                  int gelu) {
  const char *op = gelu ? "linear_bf16_gelu" : "linear_bf16";
  float *ref = reference_bf16_linear(x, w, b);
  SamxCtx ctx;
  SamxTensor *tx, *tw, *tb;
  bf16_inference_inputs(&ctx, dev, x, w, b, &tx, &tw, &tb);
  size_t before = ctx.act.used;
  SamxTensor *y = (gelu ? samx_linear_bf16_gelu : samx_linear_bf16)(&ctx, tx, tw, tb);
  size_t kept = ctx.act.used - before;
  CHECK(y->dtype == SAMX_BF16 && y->ndim == 2 && y->shape[0] == M && y->shape[1] == OUT, "%s: y is %s", op,
        samx_dtype_name(y->dtype));
  CHECK(kept <= (samx_nbytes(y) + SAMX_ARENA_ALIGN - 1) / SAMX_ARENA_ALIGN * SAMX_ARENA_ALIGN,
        "%s keeps %zu bytes beyond y", op, kept);
  float *got = samx_test_host_f32(samx_cast(&ctx, y, SAMX_F32));
  double wst = 0;
  int exact = 1;
  for (int r = 0; r < M; r++)
    for (int o = 0; o < OUT; o++) {
      double mag = 0;
      for (int i = 0; i < IN; i++) mag += fabs((double)x[r * IN + i] * w[o * IN + i]);
      float pre = ref[r * OUT + o], full = gelu ? samx_gelu_tanhf(pre) : pre, g = got[r * OUT + o];
      exact &= g == samx_round_bf16(full);
      double tol = fabs(full) / 256 + (gelu ? GELU_SLOPE : 1.0) * order_rel * mag + (gelu ? fabs(pre) / 4096 : 0.0) +
                   1e-30;
      wst = fmax(wst, fabs((double)g - full) / tol);
    }
  if (dev.type == SAMX_CPU)
    CHECK(exact, "%s on the CPU is not the reference mode's result rounded once", op);
  else
    CHECK(wst <= 1, "%s on CUDA at %.3g of the bound", op, wst);
  free(ref), free(got);
  samx_ctx_free(&ctx);
}

// What the fused layer stands in for: nn.GELU (erf form) of the fp32 linear. The bf16 operands move the
// pre-activation by <= the bf16 bound (times GELU's slope); the tanh form adds <= 4.8e-4 and the output
// rounding half an ulp (2^-9 |y|). The pair must also differ, or the check proves nothing.
static void gelu_semantics_check(const float *x, const float *w, const float *b, const float *y_fp32, double bf16_rel) {
  SamxCtx ctx;
  SamxTensor *tx, *tw, *tb;
  bf16_inference_inputs(&ctx, samx_cpu(), x, w, b, &tx, &tw, &tb);
  float *got = samx_test_host_f32(samx_cast(&ctx, samx_linear_bf16_gelu(&ctx, tx, tw, tb), SAMX_F32));
  double wst = 0, moved = 0;
  for (int r = 0; r < M; r++)
    for (int o = 0; o < OUT; o++) {
      double mag = fabs(b[o]);
      for (int i = 0; i < IN; i++) mag += fabs((double)x[r * IN + i] * w[o * IN + i]);
      double want = samx_act_fwd(SAMX_ACT_GELU, y_fp32[r * OUT + o]), g = got[r * OUT + o];
      double tol = GELU_SLOPE * (bf16_rel * mag + fabs(b[o]) / 256) + GELU_TANH_VS_ERF + fabs(want) / 512;
      wst = fmax(wst, fabs(g - want) / tol), moved = fmax(moved, fabs(g - want));
    }
  CHECK(wst <= 1 && moved > 1e-4, "linear_bf16_gelu vs GELU(fp32 linear): %.3g of the bound (largest change %.3g)",
        wst, moved);
  free(got);
  samx_ctx_free(&ctx);
}

// samx_linear_bf16_residual (inference): r (bf16) += x w^T + b in place, rounded once: against the
// bf16-mode linear (bias rounded to bf16) plus r in fp32, rounded once; bit for bit on the CPU (the
// reference mode's own sums), on CUDA within one bf16 rounding of the sum plus the order bound. The
// returned tensor is r itself and nothing stays allocated.
static void linear_bf16_residual_check(SamxDevice dev, const float *x, const float *w, const float *b, const float *res,
                                       double order_rel) {
  float r16[M * OUT];
  for (int i = 0; i < M * OUT; i++) r16[i] = samx_round_bf16(res[i]);
  float *lin = reference_bf16_linear(x, w, b);
  SamxCtx ctx;
  SamxTensor *tx, *tw, *tb;
  bf16_inference_inputs(&ctx, dev, x, w, b, &tx, &tw, &tb);
  SamxTensor *r = samx_cast(&ctx, samx_from_host(&ctx, SHAPE(M, OUT), res), SAMX_BF16);
  size_t before = ctx.act.used;
  SamxTensor *y = samx_linear_bf16_residual(&ctx, tx, tw, tb, r);
  CHECK(y == r && ctx.act.used == before, "linear_bf16_residual: result in place (%d), %zu bytes kept", y == r,
        ctx.act.used - before);
  float *got = samx_test_host_f32(samx_cast(&ctx, y, SAMX_F32));
  double wst = 0;
  int exact = 1;
  for (int i = 0; i < M; i++)
    for (int o = 0; o < OUT; o++) {
      double mag = fabs(r16[i * OUT + o]);
      for (int k = 0; k < IN; k++) mag += fabs((double)x[i * IN + k] * w[o * IN + k]);
      float sum = lin[i * OUT + o] + r16[i * OUT + o], g = got[i * OUT + o];
      exact &= g == samx_round_bf16(sum);
      double tol = fabs(sum) / 256 + order_rel * mag + 1e-30;
      wst = fmax(wst, fabs((double)g - sum) / tol);
    }
  if (dev.type == SAMX_CPU)
    CHECK(exact, "linear_bf16_residual on the CPU is not the reference mode's sum rounded once");
  else
    CHECK(wst <= 1, "linear_bf16_residual on CUDA at %.3g of the bound", wst);
  free(lin), free(got);
  samx_ctx_free(&ctx);
}

// y = x w^T + b in bf16 and its backward, w and b parameters of a store with kept operands (w declared
// [OUT, IN, 1, 1], a 1x1 convolution's shape, and reshaped for the layer, as the neck does).
static LinearRun run_kept(SamxDevice dev, SamxParams *p, const float *x, const float *gy, size_t *act_used) {
  SamxTensor *w4 = p->list[0], *b = p->list[1];
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(M, IN), x);
  tx->requires_grad = 1;
  SamxTensor *wv = samx_reshape(&ctx, w4, SHAPE(OUT, IN));
  size_t at = ctx.act.used;
  SamxTensor *y = samx_linear(&ctx, tx, wv, b);
  *act_used = ctx.act.used - at;
  SamxTensor *g = samx_from_host(&ctx, SHAPE(M, OUT), gy);
  CHECK(samx_backward(&ctx, y, g) == 0, "backward: %s", samx_last_error());
  LinearRun r = {samx_test_host_f32(y), samx_test_host_f32(tx->grad), samx_test_host_f32(w4->grad),
                 samx_test_host_f32(b->grad)};
  samx_ctx_free(&ctx);
  samx_params_zero_grad(p);
  return r;
}

static int same_bits(const float *a, const float *b, int n) { return !memcmp(a, b, sizeof(float) * (size_t)n); }

// Kept operands against a cast at every call (run_linear in bf16): identical y and gradients; the
// recorded layer keeps no copy of w in the activation arena; a kept operand overwritten behind the
// parameter's back is what the next GEMM reads (it is not cast again), and writing the parameter
// refills it. samx_params_allocate shadows a store by itself where the process's precision is bf16.
static void kept_operand_check(SamxDevice dev, const float *x, const float *w, const float *b, const float *gy) {
  SamxParams p;
  samx_params_init(&p);
  samx_param(&p, "w", SHAPE(OUT, IN, 1, 1), 1);
  samx_param(&p, "b", SHAPE(OUT), 1);
  samx_params_allocate(&p, dev);
  CHECK(!p.shadowed, "an fp32 process shadows no store");
  samx_tensor_write(p.list[0], w), samx_tensor_write(p.list[1], b);
  samx_params_shadow_bf16(&p);
  size_t used_kept, used_cast;
  LinearRun kept = run_kept(dev, &p, x, gy, &used_kept), cast = run_linear(dev, SAMX_PRECISION_BF16, x, w, b, gy);
  const char *d = dev.type == SAMX_CPU ? "CPU" : "CUDA";
  CHECK(same_bits(kept.y, cast.y, M * OUT) && same_bits(kept.gx, cast.gx, M * IN) &&
            same_bits(kept.gw, cast.gw, OUT * IN) && same_bits(kept.gb, cast.gb, OUT),
        "%s: kept operands give the results of a cast at every call, bit for bit", d);
  SamxCtx ctx;  // the same forward with w cast into the arena, for its activation bytes
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(M, IN), x), *tw = samx_from_host(&ctx, SHAPE(OUT, IN), w);
  SamxTensor *tb = samx_from_host(&ctx, SHAPE(OUT), b);
  tx->requires_grad = 1;
  size_t at = ctx.act.used;
  samx_linear(&ctx, tx, tw, tb);
  used_cast = ctx.act.used - at;
  samx_ctx_free(&ctx);
  size_t w_copy = (size_t)OUT * IN * samx_dtype_size(p.list[0]->shadow->dtype);  // up to the arena's alignment
  CHECK(used_cast >= used_kept + w_copy && used_cast < used_kept + w_copy + SAMX_ARENA_ALIGN, "%s: the layer keeps no copy of w in the arena (%zu bytes against %zu)", d,
        used_kept, used_cast);
  // Zeros written into w's kept operand, w itself unchanged: the next GEMM reads them (y is b alone).
  float *zeros = calloc((size_t)OUT * IN, sizeof(float));
  SamxTensor *wk = p.list[0]->shadow;
  samx_tensor_write_f32(wk, zeros);
  LinearRun stale = run_kept(dev, &p, x, gy, &used_kept);
  double off_b = 0;
  for (int i = 0; i < M * OUT; i++) off_b = fmax(off_b, fabs(stale.y[i] - b[i % OUT]));
  CHECK(off_b == 0, "%s: the kept operand is read, not cast again (y is b, off by %g)", d, off_b);
  // Writing w (its version moves) refills the kept operand: the results of a cast again, for new values.
  float *w2 = malloc(sizeof(float) * OUT * IN);
  for (int i = 0; i < OUT * IN; i++) w2[i] = -0.5f * w[i];
  samx_tensor_write(p.list[0], w2);
  LinearRun fresh = run_kept(dev, &p, x, gy, &used_kept), cast2 = run_linear(dev, SAMX_PRECISION_BF16, x, w2, b, gy);
  CHECK(same_bits(fresh.y, cast2.y, M * OUT) && same_bits(fresh.gx, cast2.gx, M * IN),
        "%s: a written parameter's kept operand is refilled", d);
  free_run(&kept), free_run(&cast), free_run(&stale), free_run(&fresh), free_run(&cast2);
  free(zeros), free(w2);
  samx_params_free(&p);
  // A store allocated while the process computes in bf16 on this device is shadowed at once.
  SamxPrecision was = samx_precision_default();
  samx_precision_set_default(SAMX_PRECISION_BF16);
  samx_params_init(&p);
  samx_param(&p, "w", SHAPE(OUT, IN), 0);
  samx_params_allocate(&p, dev);
  CHECK(p.shadowed == (dev.type == SAMX_CUDA) && (p.list[0]->shadow != NULL) == (dev.type == SAMX_CUDA),
        "%s: samx_params_allocate shadows a store where the precision on the device is bf16", d);
  samx_params_free(&p);
  samx_precision_set_default(was);
}

static void misaligned_bias_check(SamxDevice dev, const float *x, const float *w, const float *b) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(M, IN), x), *tw = samx_from_host(&ctx, SHAPE(OUT, IN), w);
  SamxTensor *tb = samx_from_host(&ctx, SHAPE(OUT), b);
  float shifted[OUT + 1] = {0};
  memcpy(shifted + 1, b, sizeof(float) * OUT);
  SamxTensor *buf = samx_from_host(&ctx, SHAPE(OUT + 1), shifted);
  SamxTensor *ub = samx_tensor_wrap(&ctx.act, (float *)buf->data + 1, dev, SAMX_F32, SHAPE(OUT));
  SamxTensor *want[2] = {samx_linear(&ctx, tx, tw, tb), samx_linear_bf16(&ctx, tx, tw, tb)};
  SamxTensor *got[2] = {samx_linear(&ctx, tx, tw, ub), samx_linear_bf16(&ctx, tx, tw, ub)};
  for (int i = 0; i < 2; i++) {
    float *g = samx_test_host_f32(got[i]), *e = samx_test_host_f32(want[i]);
    CHECK(max_abs_diff(g, e, M * OUT) == 0.0, "%s: a bias 4 bytes into a buffer changes the %s y by %g",
          dev.type == SAMX_CUDA ? "cuda" : "cpu", i ? "bf16" : "f32", max_abs_diff(g, e, M * OUT));
    free(g), free(e);
  }
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  uint64_t s = 42;
  float *x = malloc(sizeof(float) * M * IN), *w = malloc(sizeof(float) * OUT * IN), b[OUT];
  float *gy = malloc(sizeof(float) * M * OUT);
  samx_test_fill_uniform(x, M * IN, -2.0f, 2.0f, &s);
  samx_test_fill_uniform(w, OUT * IN, -0.3f, 0.3f, &s);
  samx_test_fill_uniform(b, OUT, -1.0f, 1.0f, &s);
  samx_test_fill_uniform(gy, M * OUT, -1.0f, 1.0f, &s);
  cast_checks(dev);
  SamxDevice cpu = samx_cpu();
  LinearRun f32 = run_linear(cpu, SAMX_PRECISION_FP32, x, w, b, gy);
  LinearRun ref16 = run_linear(cpu, SAMX_PRECISION_BF16, x, w, b, gy);
  double bf16_rel = 1.0 / 256 + IN * 6e-8, order_rel = 2 * IN * 6e-8 + 1e-7;
  linear_bf16_out_check(dev, x, w, b, order_rel, 0);
  linear_bf16_out_check(dev, x, w, b, order_rel, 1);
  linear_bf16_residual_check(dev, x, w, b, gy, order_rel);
  kept_operand_check(dev, x, w, b, gy);
  misaligned_bias_check(dev, x, w, b);
  if (dev.type == SAMX_CPU) {
    compare("CPU bf16 reference mode vs fp32", &ref16, &f32, x, w, gy, bf16_rel);
    gelu_semantics_check(x, w, b, f32.y, bf16_rel);
    CHECK(max_abs_diff(ref16.y, f32.y, M * OUT) > 1e-4, "the bf16 mode rounds (differs from fp32 by %g)",
          max_abs_diff(ref16.y, f32.y, M * OUT));
  } else {
    LinearRun g16 = run_linear(dev, SAMX_PRECISION_BF16, x, w, b, gy);
    compare("CUDA bf16 vs CPU bf16 reference mode", &g16, &ref16, x, w, gy, order_rel);
    compare("CUDA bf16 vs CPU fp32", &g16, &f32, x, w, gy, bf16_rel);
    CHECK(max_abs_diff(g16.y, f32.y, M * OUT) > 1e-4, "CUDA bf16 is not fp32 (differs by %g)",
          max_abs_diff(g16.y, f32.y, M * OUT));
    LinearRun g32 = run_linear(dev, SAMX_PRECISION_TF32, x, w, b, gy);
    compare("CUDA tf32 vs CPU fp32", &g32, &f32, x, w, gy, 1.0 / 1024 + IN * 6e-8);
    CHECK(max_abs_diff(g32.y, f32.y, M * OUT) > 1e-6, "CUDA tf32 is not fp32");
    LinearRun gf = run_linear(dev, SAMX_PRECISION_FP32, x, w, b, gy);
    compare("CUDA fp32 vs CPU fp32", &gf, &f32, x, w, gy, order_rel);
    free_run(&g16), free_run(&g32), free_run(&gf);
    lt_residual_check(dev, x, w, gy, 0);
    lt_residual_check(dev, x, w, gy, 1);
    // Inference: the bf16 copies and cuBLASLt's workspace are handed back, only y stays allocated.
    SamxCtx ctx;
    samx_test_ctx(&ctx, dev);
    ctx.precision = SAMX_PRECISION_BF16;
    samx_ctx_set_recording(&ctx, 0);
    SamxTensor *tx = samx_from_host(&ctx, SHAPE(M, IN), x), *tw = samx_from_host(&ctx, SHAPE(OUT, IN), w);
    size_t before = ctx.act.used;
    SamxTensor *y = samx_linear(&ctx, tx, tw, NULL);
    size_t y_bytes = (samx_nbytes(y) + SAMX_ARENA_ALIGN - 1) / SAMX_ARENA_ALIGN * SAMX_ARENA_ALIGN;
    CHECK(ctx.act.used - before >= samx_nbytes(y) && ctx.act.used - before <= y_bytes && ctx.act.peak > ctx.act.used,
          "bf16 inference keeps %zu bytes (y: %zu), peak above", ctx.act.used - before, y_bytes);
    samx_ctx_free(&ctx);
  }
  free_run(&f32), free_run(&ref16);
  free(x), free(w), free(gy);
  return samx_test_summary();
}
