// The engine ops on BF16 activations (inference): samx_layernorm, samx_gelu, samx_add and samx_linear
// with a BF16 x, on the device of the argument (cpu, or cuda for the bf16 kernels there).
// Oracle: the same op in F32 on the widened (exact) values, its result rounded to bf16.
//  add, gelu: per element the same fp32 arithmetic then one rounding: equal, up to one bf16 step
//             (2^-8 relative) where a device's erf differs from the host's in the last fp32 bit and
//             the value sits on a rounding boundary.
//  layernorm: fp32 statistics summed in another order: again within one bf16 step.
//  linear:    a BF16 x is the bf16 GEMM's operand as is; an F32 x holding the same values is rounded
//             to the same operand: bit-identical outputs.
// Also: the BF16 ops give BF16 tensors, and the ones without a backward (layernorm and add on BF16; the
// activations have one, tests/engine/test_bf16_backward.c) die when they would be recorded for one.
// samx_layernorm_, samx_layernorm2d_ and samx_gelu_ (in place, F32 and BF16) give samx_layernorm's,
// samx_layernorm2d's and samx_gelu's values bit for bit (the same kernels, y = x), with rows of 300 (no
// vector loads) and 256 (vector loads on CUDA), 37 rows (the last block of warps part empty; LayerNorm2d:
// 37 channels at 256 or 300 positions, a thread each), and die while recording a tensor that needs a
// gradient.
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test_util.h"

enum { R = 37, C = 96, OUT = 40 };

static SamxTensor *random_tensor(SamxCtx *ctx, SamxShape s, float scale, unsigned seed) {
  int64_t n = 1;
  for (int i = 0; i < s.ndim; i++) n *= s.d[i];
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  srand(seed);
  for (int64_t i = 0; i < n; i++) v[i] = scale * (2.0f * (float)rand() / (float)RAND_MAX - 1.0f) + 0.1f * scale;
  SamxTensor *t = samx_from_host(ctx, s, v);
  free(v);
  return t;
}

// Largest |got - bf16(want)| in units of one bf16 step of bf16(want) (2^-7 relative for normal values).
static double bf16_steps(SamxTensor *got, SamxTensor *want) {
  float *g = samx_test_host_f32(got), *w = samx_test_host_f32(want);
  double worst = 0;
  for (int64_t i = 0; i < got->numel; i++) {
    float r = samx_round_bf16(w[i]);
    double step = fmax(ldexp(fabs(r), -7), 1e-30);
    worst = fmax(worst, fabs((double)g[i] - r) / step);
  }
  free(g);
  free(w);
  return worst;
}

// The in-place ops and the ops whose values they must give.
enum { LAYERNORM_, LAYERNORM2D_, GELU_ };
static const char *in_place_names[3] = {"layernorm_", "layernorm2d_", "gelu_"};

static SamxTensor *in_place_op(SamxCtx *ctx, int op, int in_place, SamxTensor *x, SamxTensor *w, SamxTensor *b) {
  switch (op) {
    case LAYERNORM_: return in_place ? samx_layernorm_(ctx, x, w, b, 1e-6f) : samx_layernorm(ctx, x, w, b, 1e-6f);
    case LAYERNORM2D_: return in_place ? samx_layernorm2d_(ctx, x, w, b, 1e-6f) : samx_layernorm2d(ctx, x, w, b, 1e-6f);
    default: return in_place ? samx_gelu_(ctx, x) : samx_gelu(ctx, x);
  }
}

// Returns 1 when op dies (in a child process): ops 0 and 1 for inputs that require a gradient while
// recording, op 2 for shapes a BF16 add refuses, ops 3-5 for the in-place ops (LAYERNORM_ + 3 ...) on
// such an input.
static int dies_when_recorded(SamxDevice dev, int op) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    SamxCtx ctx;
    samx_test_ctx(&ctx, dev);
    ctx.precision = SAMX_PRECISION_BF16;
    SamxTensor *x = samx_cast(&ctx, random_tensor(&ctx, SHAPE(R, C), 1.0f, 7), SAMX_BF16);
    x->requires_grad = 1;
    if (op == 0) samx_layernorm(&ctx, x, samx_zeros(&ctx, SAMX_F32, SHAPE(C)), samx_zeros(&ctx, SAMX_F32, SHAPE(C)), 1e-6f);
    if (op >= 3) {  // in place on an F32 x that needs a gradient
      SamxTensor *x32 = random_tensor(&ctx, SHAPE(1, R, C, 1), 1.0f, 7);
      x32->requires_grad = 1;
      SamxTensor *zero = samx_zeros(&ctx, SAMX_F32, SHAPE(op == 4 ? R : 1));  // layernorm2d_: R channels
      in_place_op(&ctx, op - 3, 1, x32, zero, zero);
    }
    if (op == 1) samx_add(&ctx, x, x);
    if (op == 2) {  // a BF16 b that does not repeat over a: [R, C] against [C, R]
      x->requires_grad = 0;
      samx_add(&ctx, x, samx_reshape(&ctx, x, SHAPE(C, R)));
    }
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// An in-place op against its out-of-place op on a copy of the same x, in dtype dt, R rows of `width`
// (layernorm2d_: R channels at each of `width` positions, x [2, R, width / 2, 1]).
static void check_in_place(SamxDevice dev, SamxDType dt, int op, int64_t width) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  SamxShape shape = op == LAYERNORM2D_ ? SHAPE(2, R, width / 2, 1) : SHAPE(R, width);
  int64_t C = op == LAYERNORM2D_ ? R : width;
  SamxTensor *x = samx_cast(&ctx, random_tensor(&ctx, shape, 2.0f, 11), dt);
  SamxTensor *w = random_tensor(&ctx, SHAPE(C), 0.5f, 12), *b = random_tensor(&ctx, SHAPE(C), 0.5f, 13);
  SamxTensor *want = in_place_op(&ctx, op, 0, x, w, b);
  uint32_t version = samx_version(x);
  SamxTensor *got = in_place_op(&ctx, op, 1, x, w, b);
  float *g = samx_test_host_f32(got), *e = samx_test_host_f32(want);
  int64_t differ = 0;
  for (int64_t i = 0; i < x->numel; i++) differ += g[i] != e[i];
  const char *name = in_place_names[op];
  CHECK(got == x && got->dtype == dt, "%s returned another tensor or dtype (%s)", name, samx_dtype_name(got->dtype));
  CHECK(samx_version(x) != version, "%s left x's version as it was", name);
  CHECK(differ == 0, "%s %s, width %lld: %lld of %lld values differ from the out-of-place op's", name,
        samx_dtype_name(dt), (long long)width, (long long)differ, (long long)x->numel);
  printf("%s %s, %d x %lld: identical to the out-of-place op\n", name, samx_dtype_name(dt), R, (long long)width);
  free(g);
  free(e);
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  ctx.precision = SAMX_PRECISION_BF16;
  SamxTensor *xb = samx_cast(&ctx, random_tensor(&ctx, SHAPE(R, C), 2.0f, 1), SAMX_BF16);
  SamxTensor *yb = samx_cast(&ctx, random_tensor(&ctx, SHAPE(R, C), 2.0f, 2), SAMX_BF16);
  SamxTensor *x = samx_cast(&ctx, xb, SAMX_F32), *y = samx_cast(&ctx, yb, SAMX_F32);  // exact
  SamxTensor *w = random_tensor(&ctx, SHAPE(C), 1.0f, 3), *b = random_tensor(&ctx, SHAPE(C), 0.5f, 4);

  // add with b repeated over a's leading dim: a positional encoding [1, R, C] added to P streams
  SamxTensor *sb = samx_cast(&ctx, random_tensor(&ctx, SHAPE(3, R, C), 2.0f, 8), SAMX_BF16);
  SamxTensor *pb = samx_reshape(&ctx, yb, SHAPE(1, R, C)), *s32 = samx_cast(&ctx, sb, SAMX_F32);
  SamxTensor *got[4] = {samx_add(&ctx, xb, yb), samx_gelu(&ctx, xb), samx_layernorm(&ctx, xb, w, b, 1e-6f),
                        samx_add(&ctx, sb, pb)};
  SamxTensor *want[4] = {samx_add(&ctx, x, y), samx_gelu(&ctx, x), samx_layernorm(&ctx, x, w, b, 1e-6f),
                         samx_add(&ctx, s32, samx_reshape(&ctx, y, SHAPE(1, R, C)))};
  const char *names[4] = {"add", "gelu", "layernorm", "add, b broadcast over the leading dim"};
  for (int i = 0; i < 4; i++) {
    CHECK(got[i]->dtype == SAMX_BF16, "%s of BF16 gives %s", names[i], samx_dtype_name(got[i]->dtype));
    double s = bf16_steps(got[i], want[i]);
    CHECK(s <= 1.0, "%s: BF16 op off the rounded F32 result by %.3g bf16 steps", names[i], s);
    printf("%s: BF16 vs bf16(F32 op) within %.3g bf16 steps\n", names[i], s);
  }

  SamxTensor *lw = random_tensor(&ctx, SHAPE(OUT, C), 0.3f, 5), *lb = random_tensor(&ctx, SHAPE(OUT), 0.1f, 6);
  SamxTensor *l16 = samx_linear(&ctx, xb, lw, lb), *l32 = samx_linear(&ctx, x, lw, lb);
  float *a = samx_test_host_f32(l16), *e = samx_test_host_f32(l32);
  int64_t differ = 0;
  for (int64_t i = 0; i < l16->numel; i++) differ += a[i] != e[i];
  CHECK(l16->dtype == SAMX_F32, "linear of BF16 x gives %s, expected F32", samx_dtype_name(l16->dtype));
  CHECK(differ == 0, "linear: BF16 x and F32 x of the same values differ in %lld of %lld outputs", (long long)differ,
        (long long)l16->numel);
  printf("linear: BF16 x and F32 x give identical outputs (%lld)\n", (long long)l16->numel);
  free(a);
  free(e);
  samx_ctx_free(&ctx);

  CHECK(dies_when_recorded(dev, 0), "layernorm of a BF16 x that requires a gradient did not die");
  CHECK(dies_when_recorded(dev, 1), "add of BF16 tensors that require a gradient did not die");
  CHECK(dies_when_recorded(dev, 2), "add of BF16 tensors whose shapes do not broadcast did not die");
  for (int op = LAYERNORM_; op <= GELU_; op++) {
    CHECK(dies_when_recorded(dev, 3 + op), "%s of an F32 x that requires a gradient did not die", in_place_names[op]);
    for (int wide = 0; wide < 2; wide++) {
      check_in_place(dev, SAMX_F32, op, wide ? 300 : 256);
      check_in_place(dev, SAMX_BF16, op, wide ? 300 : 256);
    }
  }
  return samx_test_summary();
}
