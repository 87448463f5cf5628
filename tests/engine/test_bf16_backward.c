// Backward through BF16 activations (training in bf16 precision keeps bf16 what it saves, the
// gradients fp32): the activations, the data-movement ops, samx_linear_bf16 (a bf16 y), samx_linear
// on a BF16 x and samx_layernorm_bf16 (a bf16 y from an F32 x), on the device of the argument (cpu: the reference mode; cuda: the bf16 kernels).
// Oracle: the same graph in F32 on the same values (every BF16 tensor here holds values that bf16
// represents exactly, so the F32 graph sees what the BF16 one stores):
//  relu, gelu: dL/dx from the stored x alone, in the same fp32 arithmetic: identical.
//  sigmoid:    dL/dx = gy y (1 - y) from the stored y, which is rounded to bf16 (relative error
//              <= 2^-9 in y and in 1 - y's y term): within 2^-7 |gy| of fp32's (|y (1 - y)| <= 1/4).
//  permute, slice, window partition: the gradient moves through the same maps in fp32: identical.
//  linear_bf16: the GEMMs of its backward are linear's in bf16 precision on the same operands (x and w
//              rounded to bf16, dL/dy rounded to bf16 as the GEMM takes it, fp32 accumulation): its
//              gradients are identical to samx_linear's in bf16, whose distance to fp32 is bounded in
//              tests/engine/test_linear_bf16.c.
//  linear on a BF16 x: the bf16 GEMM's operand is x as stored, which an F32 x of the same values is
//              rounded to: identical gradients.
//  layernorm_bf16 on an F32 x: y is samx_layernorm's y rounded once to bf16 (identical), and its
//              backward is samx_layernorm's on the same x and statistics (identical gradients).
//  linear_residual: against samx_add(r, samx_linear(...)) (see linear_residual below).
#include <math.h>
#include <stdlib.h>

#include "tests/harness.h"
#include "tests/test_util.h"

enum { B = 2, H = 6, W = 5, C = 16, OUT = 24 };

static SamxDevice dev;

// n values in [-2, 2] rounded to bf16 (so that F32 and BF16 tensors of them hold the same numbers).
static float *bf16_values(int64_t n, uint64_t seed) {
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  samx_test_fill_uniform(v, n, -2.0f, 2.0f, &seed);
  for (int64_t i = 0; i < n; i++) v[i] = samx_round_bf16(v[i]);
  return v;
}

// A leaf that requires a gradient, and the tensor the graph starts from: the leaf itself (F32) or its
// BF16 cast (the cast passes the gradient through to the leaf).
static SamxTensor *input(SamxCtx *ctx, SamxShape s, const float *v, SamxDType dt, SamxTensor **leaf) {
  *leaf = samx_from_host(ctx, s, v);
  (*leaf)->requires_grad = 1;
  return dt == SAMX_BF16 ? samx_cast(ctx, *leaf, SAMX_BF16) : *leaf;
}

// Backward from y (cast to F32 if BF16) with upstream gradient gy; returns the leaf's gradient.
static float *grad_of(SamxCtx *ctx, SamxTensor *y, const float *gy, SamxTensor *leaf) {
  if (y->dtype == SAMX_BF16) y = samx_cast(ctx, y, SAMX_F32);
  SamxTensor *g = samx_from_host(ctx, samx_shape_of(y), gy);
  CHECK(samx_backward(ctx, y, g) == 0, "backward: %s", samx_last_error());
  return samx_test_host_f32(leaf->grad);
}

typedef SamxTensor *(*Graph)(SamxCtx *ctx, SamxTensor *x);

// The gradient of graph f at x (values v, shape s) run on x in dtype dt, for upstream gy.
static float *run(Graph f, SamxDType dt, SamxShape s, const float *v, const float *gy, SamxDType *out_dt) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *leaf, *y = f(&ctx, input(&ctx, s, v, dt, &leaf));
  *out_dt = y->dtype;
  float *g = grad_of(&ctx, y, gy, leaf);
  samx_ctx_free(&ctx);
  return g;
}

static SamxTensor *relu(SamxCtx *ctx, SamxTensor *x) { return samx_relu(ctx, x); }
static SamxTensor *gelu(SamxCtx *ctx, SamxTensor *x) { return samx_gelu(ctx, x); }
static SamxTensor *sigmoid(SamxCtx *ctx, SamxTensor *x) { return samx_sigmoid(ctx, x); }
// [B, H, W, C] -> permute -> slice -> window partition (3x3, padding the 6x4 slice to 6x6).
static SamxTensor *moves(SamxCtx *ctx, SamxTensor *x) {
  SamxTensor *t = samx_permute(ctx, x, (int[]){0, 2, 1, 3});  // [B, W, H, C]
  t = samx_slice(ctx, t, 1, 1, W);                            // [B, W - 1, H, C]
  return samx_window_partition(ctx, t, 3);
}

// Largest |a - b| / (tol_rel |gy| + 1e-30) over n: the gradient check's ratio to its bound.
static double ratio(const float *a, const float *b, const float *scale, int64_t n, double tol_rel) {
  double w = 0;
  for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]) / (tol_rel * fabs(scale[i]) + 1e-30));
  return w;
}

static void pointwise_and_moves(void) {
  const SamxShape s = SHAPE(B, H, W, C);
  const int64_t n = (int64_t)B * H * W * C;
  float *x = bf16_values(n, 1), *gy = bf16_values(n, 2), *gy_moved = bf16_values(n * 2, 3);
  struct {
    const char *name;
    Graph f;
    double tol;  // relative to |gy|; 0: identical
  } cases[4] = {{"relu", relu, 0}, {"gelu", gelu, 0}, {"sigmoid", sigmoid, ldexp(1.0, -7)}, {"moves", moves, 0}};
  for (int c = 0; c < 4; c++) {
    SamxDType d16, d32;
    const float *up = c == 3 ? gy_moved : gy;
    float *g16 = run(cases[c].f, SAMX_BF16, s, x, up, &d16), *g32 = run(cases[c].f, SAMX_F32, s, x, up, &d32);
    CHECK(d16 == SAMX_BF16 && d32 == SAMX_F32, "%s: outputs %s / %s", cases[c].name, samx_dtype_name(d16),
          samx_dtype_name(d32));
    double r = cases[c].tol > 0 ? ratio(g16, g32, gy, n, cases[c].tol) : 0;
    int64_t differ = 0, nonzero = 0;
    for (int64_t i = 0; i < n; i++) differ += g16[i] != g32[i], nonzero += g32[i] != 0;
    if (cases[c].tol > 0)
      CHECK(r <= 1, "%s: BF16 dL/dx off fp32's by %.3g of the bound", cases[c].name, r);
    else
      CHECK(differ == 0, "%s: BF16 dL/dx differs from fp32's in %lld of %lld", cases[c].name, (long long)differ,
            (long long)n);
    CHECK(nonzero > n / 4, "%s: only %lld of %lld gradients are nonzero", cases[c].name, (long long)nonzero,
          (long long)n);
    printf("%s: BF16 backward vs F32 on the same values: %lld of %lld differ%s (%.3g of the bound)\n", cases[c].name,
           (long long)differ, (long long)n, cases[c].tol > 0 ? "" : ", none allowed", r);
    free(g16), free(g32);
  }
  free(x), free(gy), free(gy_moved);
}

typedef struct {
  float *gx, *gw, *gb;
} LinearGrads;

// y = x w^T + b in bf16 precision, as `how`: 0 samx_linear (F32 x), 1 samx_linear on a BF16 x,
// 2 samx_linear_bf16 (F32 x, BF16 y); the gradients of x, w and b for upstream gy.
static LinearGrads linear_grads(int how, const float *x, const float *w, const float *b, const float *gy) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *lx, *lw, *lb;
  SamxTensor *tx = input(&ctx, SHAPE(B * H, C), x, how == 1 ? SAMX_BF16 : SAMX_F32, &lx);
  SamxTensor *tw = input(&ctx, SHAPE(OUT, C), w, SAMX_F32, &lw), *tb = input(&ctx, SHAPE(OUT), b, SAMX_F32, &lb);
  SamxTensor *y = how == 2 ? samx_linear_bf16(&ctx, tx, tw, tb) : samx_linear(&ctx, tx, tw, tb);
  CHECK(y->dtype == (how == 2 ? SAMX_BF16 : SAMX_F32), "linear %d: y is %s", how, samx_dtype_name(y->dtype));
  LinearGrads g = {grad_of(&ctx, y, gy, lx), samx_test_host_f32(lw->grad), samx_test_host_f32(lb->grad)};
  samx_ctx_free(&ctx);
  return g;
}

static int64_t count_differ(const float *a, const float *b, int64_t n) {
  int64_t d = 0;
  for (int64_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

static void linears(void) {
  float *x = bf16_values(B * H * C, 4), *w = bf16_values(OUT * C, 5), *b = bf16_values(OUT, 6);
  float *gy = bf16_values(B * H * OUT, 7);
  for (int i = 0; i < B * H * OUT; i++) gy[i] *= 1.0f + 1.0f / 512;  // not bf16: the backward must round it
  LinearGrads ref = linear_grads(0, x, w, b, gy);
  const char *names[3] = {"", "linear on a BF16 x", "linear_bf16 (BF16 y)"};
  for (int how = 1; how <= 2; how++) {
    LinearGrads g = linear_grads(how, x, w, b, gy);
    int64_t dx = count_differ(g.gx, ref.gx, B * H * C), dw = count_differ(g.gw, ref.gw, OUT * C),
            db = count_differ(g.gb, ref.gb, OUT);
    CHECK(dx == 0 && dw == 0 && db == 0, "%s: dx, dw, db differ from linear's in bf16 in %lld, %lld, %lld", names[how],
          (long long)dx, (long long)dw, (long long)db);
    printf("%s: dx, dw, db identical to samx_linear's in bf16 (%d, %d, %d values)\n", names[how], B * H * C, OUT * C,
           OUT);
    free(g.gx), free(g.gw), free(g.gb);
  }
  double s = 0;
  for (int i = 0; i < B * H * C; i++) s += fabs(ref.gx[i]);
  CHECK(s > 0, "linear: the reference dx is zero");
  free(ref.gx), free(ref.gw), free(ref.gb);
  free(x), free(w), free(b), free(gy);
}

// samx_linear_residual (fused = 1: on CUDA the GEMM adds the residual, cuBLASLt's beta C with C the
// residual and D a new y) or samx_add(r, samx_linear(...)) in bf16 precision: y and the gradients of x,
// w, b and the residual r for upstream gy.
typedef struct {
  float *y, *gx, *gw, *gb, *gr;
} ResidualRun;

static ResidualRun residual_run(int fused, const float *x, const float *w, const float *b, const float *r,
                                const float *gy) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *lx, *lw, *lb, *lr;
  SamxTensor *tx = input(&ctx, SHAPE(B * H, C), x, SAMX_BF16, &lx), *tw = input(&ctx, SHAPE(OUT, C), w, SAMX_F32, &lw);
  SamxTensor *tb = input(&ctx, SHAPE(OUT), b, SAMX_F32, &lb), *tr = input(&ctx, SHAPE(B * H, OUT), r, SAMX_F32, &lr);
  SamxTensor *y =
      fused ? samx_linear_residual(&ctx, tx, tw, tb, tr) : samx_add(&ctx, tr, samx_linear(&ctx, tx, tw, tb));
  ResidualRun o = {samx_test_host_f32(y), grad_of(&ctx, y, gy, lx), samx_test_host_f32(lw->grad),
                   samx_test_host_f32(lb->grad), samx_test_host_f32(lr->grad)};
  samx_ctx_free(&ctx);
  return o;
}

// The fused residual against the separate add: the same GEMMs on the same operands, so identical
// gradients (dL/dr = dL/dy); y differs at most in where the fp32 sum adds r (cuBLASLt's epilogue adds
// beta C to the product before or after the bias): bound below. On the CPU the op is the separate add:
// identical.
static void linear_residual(void) {
  float *x = bf16_values(B * H * C, 8), *w = bf16_values(OUT * C, 9), *b = bf16_values(OUT, 10);
  float *r = bf16_values(B * H * OUT, 11), *gy = bf16_values(B * H * OUT, 12);
  for (int i = 0; i < B * H * OUT; i++) r[i] *= 3.1f, gy[i] *= 1.0f + 1.0f / 512;  // not bf16 values
  ResidualRun f = residual_run(1, x, w, b, r, gy), s = residual_run(0, x, w, b, r, gy);
  // Both sum the same fp32 product p, b and r in two additions, each off by <= 2^-24 of a partial sum
  // <= |p| + |b| + |r|: the two orders differ by <= 2^-22 (|p| + |b| + |r|) (p in double here: x and w
  // are bf16 values, their products exact).
  double worst = 0;
  for (int i = 0; i < B * H; i++)
    for (int j = 0; j < OUT; j++) {
      double p = 0;
      for (int k = 0; k < C; k++) p += (double)x[i * C + k] * w[j * C + k];
      const double mag = fabs(p) + fabs(b[j]) + fabs(r[i * OUT + j]);
      worst = fmax(worst, fabs((double)f.y[i * OUT + j] - s.y[i * OUT + j]) / (ldexp(1, -22) * mag));
    }
  const int64_t n = B * H * OUT, dy = count_differ(f.y, s.y, n), dx = count_differ(f.gx, s.gx, B * H * C);
  const int64_t dw = count_differ(f.gw, s.gw, OUT * C), db = count_differ(f.gb, s.gb, OUT),
                dr = count_differ(f.gr, gy, n);
  CHECK(worst <= 1 && (dev.type == SAMX_CUDA || dy == 0), "linear_residual: y at %.3g of the bound (%lld differ)",
        worst, (long long)dy);
  CHECK(dx == 0 && dw == 0 && db == 0 && dr == 0, "linear_residual: dx, dw, db, dr differ in %lld, %lld, %lld, %lld",
        (long long)dx, (long long)dw, (long long)db, (long long)dr);
  printf("linear_residual vs add + linear: y %lld of %lld differ (%.3g of the bound); dx, dw, db identical;"
         " dr = dL/dy\n",
         (long long)dy, (long long)n, worst);
  ResidualRun *runs[2] = {&f, &s};
  for (int k = 0; k < 2; k++)
    free(runs[k]->y), free(runs[k]->gx), free(runs[k]->gw), free(runs[k]->gb), free(runs[k]->gr);
  free(x), free(w), free(b), free(r), free(gy);
}

// samx_layernorm_bf16 (bf16 = 1) or samx_layernorm on an F32 x: y as f32 values and the gradients
// of x and w for upstream gy.
static void norm_run(int bf16, const float *x, const float *w, const float *b, const float *gy, float **y_out,
                     float **gx, float **gw) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *lx, *lw, *lb;
  SamxTensor *tx = input(&ctx, SHAPE(B * H, C), x, SAMX_F32, &lx);
  SamxTensor *tw = input(&ctx, SHAPE(C), w, SAMX_F32, &lw), *tb = input(&ctx, SHAPE(C), b, SAMX_F32, &lb);
  SamxTensor *y = bf16 ? samx_layernorm_bf16(&ctx, tx, tw, tb, 1e-6f) : samx_layernorm(&ctx, tx, tw, tb, 1e-6f);
  CHECK(y->dtype == (bf16 ? SAMX_BF16 : SAMX_F32), "layernorm%s: y is %s", bf16 ? "_bf16" : "",
        samx_dtype_name(y->dtype));
  *y_out = samx_test_host_f32(y);
  *gx = grad_of(&ctx, y, gy, lx);
  *gw = samx_test_host_f32(lw->grad);
  samx_ctx_free(&ctx);
}

static void layernorm_bf16_out(void) {
  float *x = bf16_values(B * H * C, 8), *w = bf16_values(C, 9), *b = bf16_values(C, 10), *gy = bf16_values(B * H * C, 11);
  float *y16, *gx16, *gw16, *y32, *gx32, *gw32;
  norm_run(1, x, w, b, gy, &y16, &gx16, &gw16);
  norm_run(0, x, w, b, gy, &y32, &gx32, &gw32);
  int64_t dy = 0, rounded = 0;
  for (int i = 0; i < B * H * C; i++) dy += y16[i] != samx_round_bf16(y32[i]), rounded += y16[i] != y32[i];
  int64_t dx = count_differ(gx16, gx32, B * H * C), dw = count_differ(gw16, gw32, C);
  CHECK(dy == 0 && rounded > 0, "layernorm_bf16: y differs from bf16(layernorm's y) in %lld (%lld rounded)",
        (long long)dy, (long long)rounded);
  CHECK(dx == 0 && dw == 0, "layernorm_bf16: dx, dw differ from layernorm's in %lld, %lld", (long long)dx, (long long)dw);
  printf("layernorm_bf16 on F32 x: y = bf16(layernorm's y), dx and dw identical to layernorm's\n");
  free(y16), free(gx16), free(gw16), free(y32), free(gx32), free(gw32);
  free(x), free(w), free(b), free(gy);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  pointwise_and_moves();
  linears();
  linear_residual();
  layernorm_bf16_out();
  return samx_test_summary();
}
