// Convolutions in bf16 precision (engine/ops_conv.c: on CUDA an implicit GEMM on tensor cores, or
// im2col then the engine's GEMM, samx_gemm_f32, as on the CPU).
//  cpu:  the CPU's bf16 reference mode (operands rounded to bf16, fp32 GEMM) against fp32, forward and
//        backward (dx, dw, db), within the bf16 bound below; tf32 on the CPU is fp32, bit for bit.
//  cuda: both bf16 paths (the implicit GEMM of kernels/cuda/conv_bf16.cu, WMMA with fp32 accumulators;
//        im2col with casts on the GPU and cuBLASLt) against the CPU's bf16 reference mode, where only
//        the order of the fp32 sums differs, and against fp32 within the bf16 bound; and that the
//        implicit GEMM's forward takes no scratch memory beyond its output.
//  fused: samx_conv_transpose2d_act (bias and GELU in the store, x and y F32 or BF16) on the kernel =
//        stride transposes: on the CPU, fp32 is the unfused ops bit for bit (these small shapes; see
//        fused_checks) and the BF16 y is its F32 y rounded once; bf16 within the bound below (GELU's
//        slope is <= 1.13, the output rounding adds 2^-9 |y|); on CUDA the fused implicit GEMM, which
//        takes no scratch, against the CPU's reference within the sum-order bound (BF16 y: plus one
//        rounding), and the explicit path beside it; samx_conv_transpose2d_act_nhwc on the same x laid
//        out channels-last: the same y bit for bit on every path (on CUDA's implicit GEMM without a
//        scratch copy), fp32 included.
// Shapes: SAM's neck 3x3 (pad 1), the 1x1 neck and the patch embedding's k = s convolution, the
// decoder's 2x2 stride-2 transposed convolution, a 2x2/2 conv2d whose stride leaves the input's last row
// and column unread and a padded 2x2/2 transpose (kernel = stride: the adjoint with disjoint taps), a
// 3x3 stride-2 pad-1 one, a stride-1 transposed one, and one spanning several tiles of the implicit
// GEMM; each small.
// Bound, per output element y = sum_i a_i b_i: rounding both factors to bf16 (relative error <= 2^-9
// each) moves each product by <= 2^-8 |a_i b_i|, fp32 accumulation adds <= K 2^-24 sum|a_i b_i|; so
// |y_bf16 - y_fp32| <= (2^-8 + K 2^-24) sum_i |a_i b_i|. The magnitudes sum_i |a_i b_i| are the same
// convolution (and its gradients) run in fp32 on |x|, |w| and |dL/dy|. Two fp32 sums of the same
// products in different orders differ by <= 2 K 2^-24 sum|a_i b_i|.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv.h"
#include "tests/harness.h"
#include "tests/test_util.h"

typedef struct {
  const char *name;
  int transposed, B, Cin, H, W, Cout, k, stride, pad;
} ConvCase;

static const ConvCase cases[] = {
    {"neck 3x3", 0, 2, 12, 9, 7, 10, 3, 1, 1},
    {"neck 1x1", 0, 1, 24, 6, 6, 8, 1, 1, 0},
    {"patch embedding 4x4/4", 0, 1, 3, 16, 12, 16, 4, 4, 0},
    {"decoder transposed 2x2/2", 1, 2, 16, 5, 6, 8, 2, 2, 0},
    // kernel = stride: disjoint taps; the conv2d leaves its input's last row and column unread (dx 0)
    {"2x2/2, odd input", 0, 2, 6, 5, 7, 4, 2, 2, 0},
    {"transposed 2x2/2 pad 1", 1, 1, 12, 4, 5, 6, 2, 2, 1},
    {"3x3/2 pad 1", 0, 2, 5, 9, 8, 7, 3, 2, 1},
    {"transposed 3x3 pad 1", 1, 2, 6, 7, 5, 9, 3, 1, 1},
    // more than one 64 x 64 tile of the implicit GEMM in M and N, and 12 of its K steps
    {"3x3, several tiles", 0, 1, 40, 11, 10, 70, 3, 1, 1},
};

typedef struct {
  float *y, *gx, *gw, *gb;
  int64_t ny, nx, nw, nb;
  size_t fwd_scratch;  // activation-arena bytes the forward took beyond its output
} ConvRun;

static float *host_of(SamxTensor *t, int64_t *n) {
  *n = t->numel;
  return samx_test_host_f32(t);
}

static ConvRun run(SamxDevice dev, SamxPrecision p, const ConvCase *c, const float *x, const float *w, const float *b,
                   const float *gy) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = p;
  int wo = c->transposed ? c->Cin : c->Cout, wi = c->transposed ? c->Cout : c->Cin;
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(c->B, c->Cin, c->H, c->W), x);
  SamxTensor *tw = samx_from_host(&ctx, SHAPE(wo, wi, c->k, c->k), w);
  SamxTensor *tb = samx_from_host(&ctx, SHAPE(c->Cout), b);
  tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
  size_t before = ctx.act.used;
  SamxTensor *y = c->transposed ? samx_conv_transpose2d(&ctx, tx, tw, tb, c->stride, c->pad)
                                : samx_conv2d(&ctx, tx, tw, tb, c->stride, c->pad);
  size_t fwd_scratch = ctx.act.peak - before - y->numel * sizeof(float);
  float *g = (float *)malloc(sizeof(float) * (size_t)y->numel);
  for (int64_t i = 0; i < y->numel; i++) g[i] = gy[i];
  SamxTensor *tg = samx_from_host(&ctx, samx_shape_of(y), g);
  CHECK(samx_backward(&ctx, y, tg) == 0, "%s: backward: %s", c->name, samx_last_error());
  ConvRun r;
  r.y = host_of(y, &r.ny), r.gx = host_of(tx->grad, &r.nx), r.gw = host_of(tw->grad, &r.nw);
  r.gb = host_of(tb->grad, &r.nb);
  r.fwd_scratch = fwd_scratch;
  free(g);
  samx_ctx_free(&ctx);
  return r;
}

static void free_run(ConvRun *r) { free(r->y), free(r->gx), free(r->gw), free(r->gb); }

// max over elements of |got - want| / (rel * mag + 1e-30): <= 1 passes.
static double worst(const float *got, const float *want, const float *mag, int64_t n, double rel) {
  double w = 0;
  for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)got[i] - want[i]) / (rel * mag[i] + 1e-30));
  return w;
}

static void compare(const char *what, const ConvCase *c, const ConvRun *r, const ConvRun *ref, const ConvRun *mag,
                    double rel) {
  double wy = worst(r->y, ref->y, mag->y, r->ny, rel), wx = worst(r->gx, ref->gx, mag->gx, r->nx, rel);
  double ww = worst(r->gw, ref->gw, mag->gw, r->nw, rel);
  CHECK(wy <= 1 && wx <= 1 && ww <= 1, "%s, %s: y, dx, dw at %.3g, %.3g, %.3g of the bound", c->name, what, wy, wx, ww);
  double db = 0;  // the bias gradient sums dL/dy in fp32 in every precision
  for (int64_t i = 0; i < r->nb; i++) db = fmax(db, fabs((double)r->gb[i] - ref->gb[i]));
  CHECK(db <= 1e-5, "%s, %s: db differs by %g", c->name, what, db);
  printf("%s, %s: y, dx, dw at %.3f, %.3f, %.3f of the bound\n", c->name, what, wy, wx, ww);
}

static int differs(const ConvRun *a, const ConvRun *b) {
  return memcmp(a->y, b->y, sizeof(float) * (size_t)a->ny) != 0;
}

// The scatter launcher with disjoint taps that do not reach every position (a 2x2/2 conv2d's adjoint on
// a 5 x 7 input: the last row and column are no tap's), not accumulating: x full of garbage must come
// out as the same launch gives over zeros when accumulating (checked against the CPU above), with the
// unreached positions 0. The convolution ops only accumulate there (conv2d's backward), so only a
// direct caller reaches this.
static void scatter_uncovered_check(SamxDevice dev) {
#ifndef SAMX_WITH_CUDA  // only called with a CUDA device, which only a CUDA build has
  (void)dev;
#else
  SamxConvGeom g = {3, 5, 7, 2, 2, 2, 0, 2, 3};
  const int64_t M = 4, B = 2, x_img = g.C * g.H * g.W, in_img = M * g.Ho * g.Wo, nw = M * g.C * 4;
  float *w = malloc(sizeof(float) * nw), *in = malloc(sizeof(float) * B * in_img);
  float *junk = malloc(sizeof(float) * B * x_img), *got = malloc(sizeof(float) * B * x_img);
  float *want = malloc(sizeof(float) * B * x_img);
  uint64_t s = 5;
  samx_test_fill_uniform(w, nw, -1.0f, 1.0f, &s);
  samx_test_fill_uniform(in, B * in_img, -1.0f, 1.0f, &s);
  for (int64_t i = 0; i < B * x_img; i++) junk[i] = NAN;
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *tw = samx_from_host(&ctx, SHAPE(nw), w), *tin = samx_from_host(&ctx, SHAPE(B * in_img), in);
  SamxTensor *tx = samx_from_host(&ctx, SHAPE(B * x_img), junk), *tz = samx_zeros(&ctx, SAMX_F32, SHAPE(B * x_img));
  samx_cuda_conv_scatter_bf16(samx_f32(tw), M, samx_f32(tin), in_img, samx_f32(tx), x_img, B, 0, g);
  samx_cuda_conv_scatter_bf16(samx_f32(tw), M, samx_f32(tin), in_img, samx_f32(tz), x_img, B, 1, g);
  samx_tensor_read(tx, got), samx_tensor_read(tz, want);
  int same = !memcmp(got, want, sizeof(float) * (size_t)(B * x_img)), zero_edge = 1;
  for (int64_t i = 0; i < B * g.C; i++)
    for (int64_t y = 0; y < g.H; y++)
      for (int64_t x = 0; x < g.W; x++)
        if (y >= g.Ho * g.stride || x >= g.Wo * g.stride) zero_edge &= got[(i * g.H + y) * g.W + x] == 0.0f;
  CHECK(same && zero_edge, "disjoint-tap scatter over garbage: %s, unreached positions %s",
        same ? "as over zeros" : "differs", zero_edge ? "0" : "not 0");
  samx_ctx_free(&ctx);
  free(w), free(in), free(junk), free(got), free(want);
#endif
}


// ---- samx_conv_transpose2d_act ----

typedef struct {
  SamxDType x_dt, out;
  int act;
} Fused;

// How run_fused computes y: samx_conv_transpose2d_act; samx_conv_transpose2d then samx_gelu when act is
// GELU; samx_conv_transpose2d_act_nhwc on x permuted to [B, H, W, Cin] on the host.
enum { FUSED, UNFUSED, FUSED_NHWC };

// y as `how` says, widened to f32 on the host; *scratch: arena bytes taken beyond the output.
static float *run_fused(SamxDevice dev, SamxPrecision p, const ConvCase *c, const float *x, const float *w,
                        const float *b, Fused f, int how, size_t *scratch) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = p;
  int64_t hw = (int64_t)c->H * c->W, nx = c->B * c->Cin * hw;
  SamxShape xs = how == FUSED_NHWC ? SHAPE(c->B, c->H, c->W, c->Cin) : SHAPE(c->B, c->Cin, c->H, c->W);
  SamxTensor *tx = samx_new(&ctx, f.x_dt, xs);
  float *xl = malloc(sizeof(float) * (size_t)nx);
  for (int64_t i = 0; i < nx; i++) {  // i indexes x [B, Cin, H*W]
    int64_t n = i / (c->Cin * hw), ch = i / hw % c->Cin, px = i % hw;
    xl[how == FUSED_NHWC ? (n * hw + px) * c->Cin + ch : i] = x[i];
  }
  samx_tensor_write_f32(tx, xl);
  free(xl);
  SamxTensor *tw = samx_from_host(&ctx, SHAPE(c->Cin, c->Cout, c->k, c->k), w);
  SamxTensor *tb = b ? samx_from_host(&ctx, SHAPE(c->Cout), b) : NULL;
  size_t before = ctx.act.used;
  SamxTensor *y;
  if (how == UNFUSED) {
    y = samx_conv_transpose2d(&ctx, tx, tw, tb, c->stride, c->pad);
    if (f.act == SAMX_ACT_GELU) y = samx_gelu(&ctx, y);
  } else if (how == FUSED_NHWC) {
    y = samx_conv_transpose2d_act_nhwc(&ctx, tx, tw, tb, c->stride, c->pad, f.act, f.out);
  } else {
    y = samx_conv_transpose2d_act(&ctx, tx, tw, tb, c->stride, c->pad, f.act, f.out);
  }
  *scratch = ctx.act.peak - before - y->numel * samx_dtype_size(y->dtype);
  float *h = malloc(sizeof(float) * (size_t)y->numel);
  samx_tensor_read_f32(y, h);
  samx_ctx_free(&ctx);
  return h;
}

// The channels-last op on dev gives the NCHW op's y bit for bit (the same operands reach the same
// sums), and on CUDA's implicit GEMM reads x through its strides: no scratch beyond the output.
static void channels_last_check(SamxDevice dev, SamxPrecision p, const ConvCase *c, const float *x, const float *w,
                                const float *b, Fused f, int64_t ny, const char *what) {
  size_t s_nchw, s_nhwc;
  float *nchw = run_fused(dev, p, c, x, w, b, f, FUSED, &s_nchw);
  float *nhwc = run_fused(dev, p, c, x, w, b, f, FUSED_NHWC, &s_nhwc);
  int same = !memcmp(nchw, nhwc, sizeof(float) * (size_t)ny);
  CHECK(same && (s_nchw > 256 || s_nhwc <= 256), "%s: channels-last x %s, %zu bytes of scratch (NCHW: %zu)", what,
        same ? "gives the same y" : "gives another y", s_nhwc, s_nchw);
  printf("%s, channels-last x on %s: the same y bit for bit\n", what, dev.type == SAMX_CPU ? "cpu" : "cuda");
  free(nchw), free(nhwc);
}

static void fused_checks(SamxDevice dev, const ConvCase *c, const float *x, const float *w, const float *b,
                         const float *ax, const float *aw, int64_t ny) {
  SamxDevice cpu = samx_cpu();
  size_t scratch;
  const Fused f32_gelu = {SAMX_F32, SAMX_F32, SAMX_ACT_GELU};
  // |y| bounds: the fp32 convolution of |x|, |w| (the bias is exact in every mode)
  const Fused no_act = {SAMX_F32, SAMX_F32, -1};
  float *mag = run_fused(cpu, SAMX_PRECISION_FP32, c, ax, aw, NULL, no_act, UNFUSED, &scratch);
  int64_t K = (int64_t)c->Cin;  // each output sums Cin products (disjoint taps)
  double bf16 = 1.13 * (ldexp(1, -8) + K * ldexp(1, -24)), order = 1.13 * 2 * K * ldexp(1, -24);
  const Fused modes[3] = {
      {SAMX_BF16, SAMX_BF16, -1}, {SAMX_BF16, SAMX_F32, SAMX_ACT_GELU}, {SAMX_F32, SAMX_BF16, SAMX_ACT_GELU}};
  for (int mi = 0; mi < 3; mi++) {
    Fused f = modes[mi];
    char what[160];
    snprintf(what, sizeof what, "%s fused (x %s, y %s, act %d)", c->name, samx_dtype_name(f.x_dt),
             samx_dtype_name(f.out), f.act);
    // fp32 reference: the unfused ops on x as the fused op reads it (a BF16 x is rounded)
    float *xr = malloc(sizeof(float) * (size_t)((int64_t)c->B * c->Cin * c->H * c->W));
    for (int64_t i = 0; i < (int64_t)c->B * c->Cin * c->H * c->W; i++)
      xr[i] = f.x_dt == SAMX_BF16 ? samx_round_bf16(x[i]) : x[i];
    const Fused plain = {SAMX_F32, SAMX_F32, f.act};
    float *want = run_fused(cpu, SAMX_PRECISION_FP32, c, xr, w, b, plain, UNFUSED, &scratch);
    float *ref = run_fused(cpu, SAMX_PRECISION_BF16, c, x, w, b, f, FUSED, &scratch);
    double out_round = f.out == SAMX_BF16 ? ldexp(1, -8) : 0;  // a rounding of each side's y
    double wr = 0;
    for (int64_t i = 0; i < ny; i++)
      wr = fmax(wr, fabs((double)ref[i] - want[i]) / (bf16 * mag[i] + out_round * fabs(want[i]) + 1e-6));
    if (dev.type == SAMX_CPU) {
      CHECK(wr <= 1, "%s, cpu bf16 reference vs fp32: %.3g of the bound", what, wr);
      if (f.out == SAMX_BF16) {  // the BF16 y is the F32 y rounded once
        Fused as_f32 = {f.x_dt, SAMX_F32, f.act};
        float *y32 = run_fused(cpu, SAMX_PRECISION_BF16, c, x, w, b, as_f32, FUSED, &scratch);
        int once = 1;
        for (int64_t i = 0; i < ny; i++) once &= ref[i] == samx_round_bf16(y32[i]);
        CHECK(once, "%s: the BF16 y is not the F32 y rounded once", what);
        free(y32);
      }
      printf("%s, cpu bf16 reference vs fp32: %.3f of the bound\n", what, wr);
      channels_last_check(cpu, SAMX_PRECISION_BF16, c, x, w, b, f, ny, what);
    } else {
      for (int implicit = 1; implicit >= 0; implicit--) {
        samx_conv_set_implicit(implicit);
        float *got = run_fused(dev, SAMX_PRECISION_BF16, c, x, w, b, f, FUSED, &scratch);
        channels_last_check(dev, SAMX_PRECISION_BF16, c, x, w, b, f, ny, what);
        samx_conv_set_implicit(1);
        double wg = 0;
        for (int64_t i = 0; i < ny; i++)
          wg = fmax(wg, fabs((double)got[i] - ref[i]) / (order * mag[i] + out_round * fabs(ref[i]) + 1e-6));
        // The fused implicit GEMM takes nothing beyond its output (arena alignment aside); the explicit
        // path its column buffer at least.
        CHECK(wg <= 1 && (implicit ? scratch <= 256 : scratch > 256),
              "%s, cuda (%s) vs cpu reference: %.3g of the bound, %zu bytes of scratch", what,
              implicit ? "implicit GEMM" : "explicit", wg, scratch);
        printf("%s, cuda (%s) vs cpu reference: %.3f of the bound\n", what, implicit ? "implicit" : "explicit", wg);
        free(got);
      }
    }
    free(xr), free(want), free(ref);
  }
  // fp32 on the CPU: the unfused ops' arithmetic, so their result bit for bit (with GELU only below
  // 32,768 elements: above, samx_gelu's CPU loop runs libmvec's vector erff, the fused store the scalar).
  if (dev.type == SAMX_CPU) {
    float *fused = run_fused(cpu, SAMX_PRECISION_FP32, c, x, w, b, f32_gelu, FUSED, &scratch);
    float *ops = run_fused(cpu, SAMX_PRECISION_FP32, c, x, w, b, f32_gelu, UNFUSED, &scratch);
    CHECK(!memcmp(fused, ops, sizeof(float) * (size_t)ny), "%s: fused fp32 differs from the unfused ops", c->name);
    free(fused), free(ops);
  }
  char what[160];  // fp32 (the decoder's fp32 inference) from a channels-last x too
  snprintf(what, sizeof what, "%s fused fp32", c->name);
  channels_last_check(dev, SAMX_PRECISION_FP32, c, x, w, b, f32_gelu, ny, what);
  free(mag);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  SamxDevice cpu = samx_cpu();
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const ConvCase *c = &cases[ci];
    int Ho = c->transposed ? (c->H - 1) * c->stride - 2 * c->pad + c->k : (c->H + 2 * c->pad - c->k) / c->stride + 1;
    int Wo = c->transposed ? (c->W - 1) * c->stride - 2 * c->pad + c->k : (c->W + 2 * c->pad - c->k) / c->stride + 1;
    int64_t nx = (int64_t)c->B * c->Cin * c->H * c->W, nw = (int64_t)c->Cin * c->Cout * c->k * c->k;
    int64_t ny = (int64_t)c->B * c->Cout * Ho * Wo;
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * c->Cout);
    float *gy = malloc(sizeof(float) * ny);
    uint64_t s = 11 + ci;
    samx_test_fill_uniform(x, nx, -2.0f, 2.0f, &s);
    samx_test_fill_uniform(w, nw, -0.5f, 0.5f, &s);
    samx_test_fill_uniform(b, c->Cout, -0.3f, 0.3f, &s);
    samx_test_fill_uniform(gy, ny, -1.0f, 1.0f, &s);
    float *ax = malloc(sizeof(float) * nx), *aw = malloc(sizeof(float) * nw), *agy = malloc(sizeof(float) * ny);
    for (int64_t i = 0; i < nx; i++) ax[i] = fabsf(x[i]);
    for (int64_t i = 0; i < nw; i++) aw[i] = fabsf(w[i]);
    for (int64_t i = 0; i < ny; i++) agy[i] = fabsf(gy[i]);
    float *zero = calloc((size_t)c->Cout, sizeof(float));
    // K: the longest sum, over the forward and both gradients
    int64_t K = (int64_t)c->Cin * c->k * c->k;
    K = K > (int64_t)c->Cout * c->k * c->k ? K : (int64_t)c->Cout * c->k * c->k;
    K = K > (int64_t)c->B * Ho * Wo ? K : (int64_t)c->B * Ho * Wo;
    K = K > (int64_t)c->B * c->H * c->W ? K : (int64_t)c->B * c->H * c->W;
    double bf16 = ldexp(1, -8) + K * ldexp(1, -24), order = 2 * K * ldexp(1, -24);
    ConvRun fp32 = run(cpu, SAMX_PRECISION_FP32, c, x, w, b, gy), mag = run(cpu, SAMX_PRECISION_FP32, c, ax, aw, zero, agy);
    ConvRun ref = run(cpu, SAMX_PRECISION_BF16, c, x, w, b, gy);
    if (dev.type == SAMX_CPU) {
      compare("cpu bf16 reference vs fp32", c, &ref, &fp32, &mag, bf16);
      CHECK(differs(&ref, &fp32), "%s: bf16 equals fp32: the reference mode did not round", c->name);
      ConvRun tf = run(cpu, SAMX_PRECISION_TF32, c, x, w, b, gy);
      CHECK(!differs(&tf, &fp32), "%s: tf32 on the CPU is not fp32", c->name);
      free_run(&tf);
    } else {
      // Both CUDA paths: the implicit GEMM (bf16's default) and im2col + cuBLASLt.
      for (int implicit = 1; implicit >= 0; implicit--) {
        samx_conv_set_implicit(implicit);
        ConvRun got = run(dev, SAMX_PRECISION_BF16, c, x, w, b, gy);
        samx_conv_set_implicit(1);
        const char *path = implicit ? "implicit GEMM" : "im2col";
        char what[96];
        snprintf(what, sizeof what, "cuda bf16 (%s) vs cpu bf16 reference", path);
        compare(what, c, &got, &ref, &mag, order);
        snprintf(what, sizeof what, "cuda bf16 (%s) vs fp32", path);
        compare(what, c, &got, &fp32, &mag, bf16 + order);
        CHECK(differs(&got, &fp32), "%s: cuda bf16 (%s) equals fp32: bf16 did not run", c->name, path);
        // The implicit GEMM writes no column buffer (and no bf16 copies of its operands); im2col does,
        // except for a 1x1 kernel, and a strided transpose whose taps overlap: plain GEMMs in both.
        int plain = c->k == 1 || (c->transposed && c->stride > 1 && c->k != c->stride);
        CHECK(implicit && !plain ? got.fwd_scratch <= 256 : got.fwd_scratch > 256 || plain,
              "%s (%s): the forward took %zu bytes of scratch", c->name, path, got.fwd_scratch);
        free_run(&got);
      }
    }
    if (c->transposed && c->k == c->stride) fused_checks(dev, c, x, w, b, ax, aw, ny);
    free_run(&fp32), free_run(&mag), free_run(&ref);
    free(x), free(w), free(b), free(gy), free(ax), free(aw), free(agy), free(zero);
  }
  if (dev.type == SAMX_CUDA) scatter_uncovered_check(dev);
  return samx_test_summary();
}
