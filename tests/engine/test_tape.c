// The tape's contract: inference mode records nothing, frozen sub-graphs leave no trace, parameter
// gradients accumulate across backward passes, in-place writes to saved tensors are caught, and
// activation gradients are handed back once dead: a chain holds a few at a time, a tensor read by two
// ops gets both contributions before its bytes are reused, leaves keep theirs. Inference's releases
// (samx_ctx_release_keep, _to) keep what they are told to, values intact, on the device of the argument
// (cpu, or cuda: the moves are device copies), and move it only where it saves memory.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"

static void test_inference_mode_records_nothing(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  float v[4] = {-1, 0.5f, 2, 3};
  SamxTensor *x = samx_from_host(&ctx, SHAPE(4), v);
  x->requires_grad = 1;
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *y = samx_gelu(&ctx, samx_sigmoid(&ctx, x));
  CHECK(ctx.tape.n == 0, "inference mode recorded %d nodes", ctx.tape.n);
  CHECK(!y->requires_grad, "output of an unrecorded op requires grad");
  samx_ctx_set_recording(&ctx, 1);
  samx_gelu(&ctx, x);
  CHECK(ctx.tape.n == 1, "recording mode recorded %d nodes, expected 1", ctx.tape.n);
  samx_ctx_free(&ctx);
}

static void test_frozen_parameters_cost_nothing(void) {
  SamxParams p;
  samx_params_init(&p);
  SamxTensor *frozen = samx_param(&p, "encoder.w", SHAPE(3), 0);
  SamxTensor *train = samx_param(&p, "decoder.w", SHAPE(3), 1);
  samx_params_allocate(&p, samx_cpu());
  CHECK(p.n_trainable == 3, "gradient buffer holds %lld values, expected 3 (frozen excluded)",
        (long long)p.n_trainable);
  CHECK(frozen->grad == NULL, "frozen parameter got a gradient buffer");
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  SamxTensor *enc = samx_gelu(&ctx, samx_relu(&ctx, frozen));
  CHECK(ctx.tape.n == 0, "frozen sub-graph recorded %d nodes", ctx.tape.n);
  SamxTensor *dec = samx_sigmoid(&ctx, train);
  CHECK(ctx.tape.n == 1 && dec->requires_grad && !enc->requires_grad, "only the trainable op is recorded");
  CHECK(samx_backward(&ctx, dec, NULL) == 0, "backward failed: %s", samx_last_error());
  CHECK(frozen->grad == NULL && enc->grad == NULL, "backward entered the frozen sub-graph");
  samx_ctx_free(&ctx);
  samx_params_free(&p);
}

static void test_gradients_accumulate(void) {
  SamxParams p;
  samx_params_init(&p);
  SamxTensor *w = samx_param(&p, "w", SHAPE(2), 1);
  samx_params_allocate(&p, samx_cpu());
  float wv[2] = {0.3f, -1.2f};
  samx_tensor_write(w, wv);
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  float once[2], twice[2];
  for (int pass = 0; pass < 2; pass++) {
    samx_ctx_reset(&ctx);
    SamxTensor *y = samx_sigmoid(&ctx, w);
    CHECK(samx_backward(&ctx, y, NULL) == 0, "backward failed: %s", samx_last_error());
    samx_tensor_read(w->grad, pass ? twice : once);
  }
  for (int i = 0; i < 2; i++) {
    double s = 1 / (1 + exp(-(double)wv[i]));
    CHECK(fabs(once[i] - s * (1 - s)) < 1e-6, "d sigmoid at %g: got %g, want %g", wv[i], once[i], s * (1 - s));
    CHECK(fabs(twice[i] - 2 * once[i]) < 1e-6, "second backward did not accumulate: %g vs 2*%g", twice[i], once[i]);
  }
  samx_params_zero_grad(&p);
  samx_tensor_read(w->grad, once);
  CHECK(once[0] == 0 && once[1] == 0, "zero_grad left %g %g", once[0], once[1]);
  // Gradients of all trainable parameters form one dense vector.
  CHECK(p.grad_flat == (float *)w->grad->data, "grad_flat does not start at the first parameter's gradient");
  samx_ctx_free(&ctx);
  samx_params_free(&p);
}

static void test_inplace_write_to_saved_tensor_is_an_error(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  float v[3] = {0.1f, 0.2f, 0.3f};
  SamxTensor *x = samx_from_host(&ctx, SHAPE(3), v);
  x->requires_grad = 1;
  SamxTensor *y = samx_sigmoid(&ctx, x);  // saves x and y
  SamxTensor *z = samx_gelu(&ctx, y);     // saves y
  samx_tensor_fill(y, 0.0f);              // in place: sigmoid's and gelu's saved y is now stale
  samx_clear_error();
  int rc = samx_backward(&ctx, z, NULL);
  CHECK(rc == -1, "backward returned %d after an in-place write to a saved tensor", rc);
  CHECK(strstr(samx_last_error(), "gelu") && strstr(samx_last_error(), "modified in place"),
        "error does not name the op: %s", samx_last_error());
  // Without the write, the same graph differentiates.
  samx_ctx_reset(&ctx);
  x = samx_from_host(&ctx, SHAPE(3), v);
  x->requires_grad = 1;
  z = samx_gelu(&ctx, samx_sigmoid(&ctx, x));
  CHECK(samx_backward(&ctx, z, NULL) == 0, "clean backward failed: %s", samx_last_error());
  samx_ctx_free(&ctx);
}

static void test_views_share_versions(void) {
  SamxArena a;
  samx_arena_init(&a, "t", samx_cpu(), 1 << 16, 1 << 14);
  SamxTensor *t = samx_tensor_zeros(&a, SAMX_F32, SHAPE(2, 3));
  SamxTensor *v = samx_tensor_wrap(&a, t->data, t->device, SAMX_F32, SHAPE(6));
  v->base = t;
  uint32_t before = samx_version(t);
  samx_tensor_fill(v, 1.0f);
  CHECK(samx_version(t) == before + 1, "a write through a view did not bump the base's version");
  samx_arena_free(&a);
}

// The free list's rules: blocks rounded to the alignment, best fit, neighbours merged, the rest kept.
static void test_free_list(void) {
  const size_t A = SAMX_ARENA_ALIGN;
  SamxArenaFreeList f = {0};
  size_t at = 0;
  samx_free_list_give(&f, 0, 3 * A);
  samx_free_list_give(&f, 8 * A, A + 1);  // rounds up to 2 A
  samx_free_list_give(&f, 4 * A, A);
  CHECK(f.n == 3, "3 separate blocks, got %d", f.n);
  CHECK(samx_free_list_take(&f, A, &at) && at == 4 * A && f.n == 2, "best fit for A: got %zu (%d blocks)", at, f.n);
  CHECK(samx_free_list_take(&f, A + 5, &at) && at == 8 * A && f.n == 1, "best fit for 2 A: got %zu", at);
  CHECK(!samx_free_list_take(&f, 4 * A, &at), "a 4 A block was handed out of 3 A");
  samx_free_list_give(&f, 3 * A, A);  // touches [0, 3 A): merged
  CHECK(f.n == 1 && f.b[0].start == 0 && f.b[0].bytes == 4 * A, "merge with the left neighbour: %d blocks", f.n);
  samx_free_list_give(&f, 5 * A, A);
  samx_free_list_give(&f, 4 * A, A);  // closes the gap: one block [0, 6 A)
  CHECK(f.n == 1 && f.b[0].bytes == 6 * A, "merge on both sides: %d blocks, %zu bytes", f.n, f.n ? f.b[0].bytes : 0);
  CHECK(samx_free_list_take(&f, 2 * A, &at) && at == 0 && f.b[0].start == 2 * A && f.b[0].bytes == 4 * A,
        "the rest of a block stays: start %zu", f.n ? f.b[0].start : 0);
  samx_free_list_free(&f);
}

// d/dx of x -> sigmoid -> (a + gelu(a)) -> N more sigmoids, by hand.
static double chain_grad(double x, int n) {
  double a = 1 / (1 + exp(-x)), cdf = 0.5 * (1 + erf(a / sqrt(2.0))), pdf = exp(-0.5 * a * a) / sqrt(2 * M_PI);
  double v = a + a * cdf, g = (1 + cdf + a * pdf) * a * (1 - a);
  for (int i = 0; i < n; i++) {
    double s = 1 / (1 + exp(-v));
    g *= s * (1 - s);
    v = s;
  }
  return g;
}

static void test_activation_gradients_are_reused(void) {
  enum { N = 16, LEN = 1 << 14 };
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  float *v = (float *)malloc(sizeof(float) * LEN);
  for (int i = 0; i < LEN; i++) v[i] = -3.0f + 6.0f * (float)i / LEN;
  SamxTensor *x = samx_from_host(&ctx, SHAPE(LEN), v);
  x->requires_grad = 1;
  SamxTensor *a = samx_sigmoid(&ctx, x), *t = samx_add(&ctx, a, samx_gelu(&ctx, a));  // a is read twice
  SamxTensor *mid = t;
  for (int i = 0; i < N; i++) t = samx_sigmoid(&ctx, t);
  size_t forward = ctx.act.used, one = (size_t)LEN * sizeof(float);
  CHECK(samx_backward(&ctx, t, NULL) == 0, "backward: %s", samx_last_error());
  // Without reuse backward would carve a gradient per activation (N + 4 of them, plus x's).
  size_t grown = ctx.act.used - forward;
  CHECK(grown <= 4 * (one + SAMX_ARENA_ALIGN), "backward carved %.1f gradients' worth for a chain of %d",
        (double)grown / (double)one, N + 4);
  CHECK(!a->grad && !mid->grad && !t->grad, "dead activation gradients were not handed back");
  CHECK(x->grad, "the leaf lost its gradient");
  float *g = (float *)malloc(sizeof(float) * LEN);
  samx_tensor_read(x->grad, g);
  double worst = 0;
  for (int i = 0; i < LEN; i += 97) worst = fmax(worst, fabs(g[i] - chain_grad(v[i], N)) / (fabs(chain_grad(v[i], N)) + 1e-12));
  CHECK(worst < 1e-4, "dL/dx off the hand-computed chain rule by %.3g (relative)", worst);
  printf("chain of %d + a tensor read twice: backward carved %.1f gradients' worth; dL/dx within %.2g\n", N + 4,
         (double)grown / (double)one, worst);
  free(v), free(g);
  samx_ctx_free(&ctx);
}

// samx_ctx_release_keep moves what was allocated past the mark down to it, values intact, and leaves a
// tensor from before the mark where it is (moving it would copy it over live memory for nothing).
static void test_release_keep(SamxDevice dev) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  float v[4] = {1, 2, 3, 4}, got[4];
  SamxTensor *old = samx_from_host(&ctx, SHAPE(4), v);
  void *old_data = old->data;
  size_t mark = samx_ctx_mark(&ctx);
  samx_zeros(&ctx, SAMX_F32, SHAPE(1000));  // garbage between the mark and the kept tensor
  SamxTensor *young = samx_scale(&ctx, old, 2.0f);
  samx_ctx_release_keep(&ctx, mark, (SamxTensor *[]){old, young}, 2);
  CHECK(old->data == old_data, "a tensor from before the mark was moved");
  CHECK((char *)young->data < (char *)ctx.act.base + mark + 256, "the kept tensor was not moved down to the mark");
  CHECK(ctx.act.used <= mark + 2 * SAMX_ARENA_ALIGN, "the arena holds %zu bytes past the mark", ctx.act.used - mark);
  samx_tensor_read(old, got);
  CHECK(!memcmp(got, v, sizeof v), "the tensor from before the mark changed");
  samx_tensor_read(young, got);
  CHECK(got[0] == 2 && got[3] == 8, "the kept tensor's values moved wrongly: %g %g", got[0], got[3]);
  samx_ctx_free(&ctx);
}

// A tensor of n floats 0, 1, 2, ... (plus `base`), and a check that t still holds them.
static SamxTensor *ramp(SamxCtx *ctx, int64_t n, float base) {
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = base + (float)i;
  SamxTensor *t = samx_from_host(ctx, SHAPE(n), v);
  free(v);
  return t;
}

static int64_t ramp_errors(SamxTensor *t, float base) {
  float *v = samx_test_host_f32(t);
  int64_t bad = 0;
  for (int64_t i = 0; i < t->numel; i++) bad += v[i] != base + (float)i;
  free(v);
  return bad;
}

// Where kept tensors land, each case from a fresh mark: already at the mark, nothing moves; under an
// eighth of a tensor's size free below it, it stays (a move would take more copies than it saves); with
// more free below it than its size, one copy to the mark; in between, a move in pieces that each land
// on bytes already read (a 64 KiB tensor over 12 KiB: six pieces), its values intact. Tensors given out of
// address order, and one given twice with a reshape of it, are packed in address order, each once.
static void test_release_keep_places(SamxDevice dev) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  const int64_t n = 16384;  // 64 KiB of f32
  size_t mark = samx_ctx_mark(&ctx);
  SamxTensor *t = ramp(&ctx, n, 1.0f);
  void *at = t->data;
  samx_zeros(&ctx, SAMX_F32, SHAPE(4096));
  samx_ctx_release_keep(&ctx, mark, &t, 1);
  CHECK(t->data == at && ctx.act.used == (size_t)((char *)at - ctx.act.base) + samx_nbytes(t),
        "a tensor at the mark moved, or the garbage after it was kept");

  samx_ctx_release(&ctx, mark);
  samx_zeros(&ctx, SAMX_F32, SHAPE(256));  // 1 KiB below a 64 KiB tensor: it stays
  t = ramp(&ctx, n, 2.0f);
  at = t->data;
  samx_ctx_release_keep(&ctx, mark, &t, 1);
  CHECK(t->data == at, "a tensor with 1 KiB free below it was moved");
  CHECK(ramp_errors(t, 2.0f) == 0, "a tensor left in place changed");

  samx_ctx_release(&ctx, mark);
  samx_zeros(&ctx, SAMX_F32, SHAPE(3072));  // 12 KiB below it: moved in pieces over itself
  t = ramp(&ctx, n, 3.0f);
  samx_ctx_release_keep(&ctx, mark, &t, 1);
  CHECK((char *)t->data < ctx.act.base + mark + SAMX_ARENA_ALIGN, "a tensor with 12 KiB free below it stayed");
  CHECK(ramp_errors(t, 3.0f) == 0, "a tensor moved over itself in pieces lost values (%lld wrong)",
        (long long)ramp_errors(t, 3.0f));

  samx_ctx_release(&ctx, mark);
  samx_zeros(&ctx, SAMX_F32, SHAPE(2 * n));  // more than its size: one copy
  SamxTensor *low = ramp(&ctx, 1000, 4.0f);
  samx_zeros(&ctx, SAMX_F32, SHAPE(2 * n));
  SamxTensor *high = ramp(&ctx, n, 5.0f), *view = samx_reshape(&ctx, high, SHAPE(128, n / 128));
  samx_ctx_release_keep(&ctx, mark, (SamxTensor *[]){high, view, low, high}, 4);
  CHECK((char *)low->data < ctx.act.base + mark + SAMX_ARENA_ALIGN && (char *)high->data > (char *)low->data,
        "kept tensors were not packed in address order from the mark");
  CHECK(view->data == high->data && !view->base, "a reshape kept beside its tensor lost it");
  CHECK(ctx.act.used <= (size_t)((char *)high->data - ctx.act.base) + samx_nbytes(high),
        "the arena holds more than the kept tensors");
  CHECK(ramp_errors(low, 4.0f) == 0 && ramp_errors(high, 5.0f) == 0, "packed tensors lost values");

  // release_to: the encoder's one output per block, by the same rule.
  samx_ctx_release(&ctx, mark);
  samx_zeros(&ctx, SAMX_F32, SHAPE(2 * n));
  t = samx_ctx_release_to(&ctx, mark, ramp(&ctx, n, 6.0f));
  CHECK((char *)t->data < ctx.act.base + mark + SAMX_ARENA_ALIGN && ramp_errors(t, 6.0f) == 0,
        "release_to did not bring its tensor to the mark intact");
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  test_release_keep(dev);
  test_release_keep_places(dev);
  if (dev.type != SAMX_CPU) return samx_test_summary();  // the rest is the tape's host bookkeeping
  test_free_list();
  test_activation_gradients_are_reused();
  test_inference_mode_records_nothing();
  test_frozen_parameters_cost_nothing();
  test_gradients_accumulate();
  test_inplace_write_to_saved_tensor_is_an_error();
  test_views_share_versions();
  return samx_test_summary();
}
