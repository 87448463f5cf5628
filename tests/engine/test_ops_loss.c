// Soft Dice, BCE with logits, sigmoid focal, MSE: naive double references (written from the
// definitions, with p = sigmoid(x) and log p rather than the kernels' stable forms), finite
// differences, PyTorch (ref_ops_loss.py), CUDA vs CPU. Inputs: in[0] logits (or probabilities),
// in[1] target in [0, 1], in[2] per-sample weights for the weighted Dice cases.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"

enum { DICE, BCE, FOCAL, MSE };

typedef struct {
  int kind;
  SamxReduction reduction;
  float alpha, gamma;                  // focal
  int from_logits, squared, per_sample;  // dice
  float eps;                           // dice
  int weighted;                        // dice: in[2] is the per-sample weight vector
  int zero_row;                        // > 0: target row zero_row - 1 is all zeros (an empty annotator)
  int zero_weight_row;                 // > 0: weight zero_weight_row - 1 is 0
  int binary;                          // target rounded to {0, 1}
  int64_t n, m;                        // samples, elements per sample
} LossCase;

// The same edits on the engine's tensors (run) and the reference's copies (ref); idempotent, so
// PyTorch's inputs (already edited) pass through unchanged.
static void edit_target(const LossCase *a, float *t) {
  if (a->binary)
    for (int64_t i = 0; i < a->n * a->m; i++) t[i] = t[i] > 0.5f ? 1.0f : 0.0f;
  if (a->zero_row > 0) memset(t + (a->zero_row - 1) * a->m, 0, (size_t)a->m * sizeof(float));
}

static SamxTensor *run_loss(SamxCtx *ctx, SamxTensor **in, const void *args) {
  const LossCase *a = (const LossCase *)args;
  SamxTensor *x = in[0], *t = in[1];
  SAMX_ASSERT(t->numel == a->n * a->m, "case shapes: %lld elements, args say %lld", (long long)t->numel,
              (long long)(a->n * a->m));
  float *host = (float *)malloc((size_t)t->numel * sizeof(float));
  samx_tensor_read_f32(t, host);
  edit_target(a, host);
  samx_tensor_write_f32(t, host);
  free(host);
  if (a->weighted && a->zero_weight_row > 0) {
    float *w = (float *)malloc((size_t)in[2]->numel * sizeof(float));
    samx_tensor_read_f32(in[2], w);
    w[a->zero_weight_row - 1] = 0;
    samx_tensor_write_f32(in[2], w);
    free(w);
  }
  switch (a->kind) {
    case DICE: {
      SamxDiceOpts o = {.from_logits = a->from_logits, .squared = a->squared, .eps = a->eps,
                        .reduction = a->reduction, .per_sample = a->per_sample,
                        .weight = a->weighted ? in[2] : NULL};
      return samx_soft_dice_loss(ctx, x, t, &o);
    }
    case BCE: return samx_bce_with_logits(ctx, x, t, a->reduction);
    case FOCAL: return samx_sigmoid_focal_loss(ctx, x, t, a->alpha, a->gamma, a->reduction);
    default: return samx_mse_loss(ctx, x, t, a->reduction);
  }
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double ref_pointwise(const LossCase *a, double x, double t) {
  if (a->kind == MSE) return (x - t) * (x - t);
  double p = sigmoid(x);
  double ce = -(t * log(p) + (1 - t) * log(1 - p));
  if (a->kind == BCE) return ce;
  double p_t = p * t + (1 - p) * (1 - t);
  double loss = ce * pow(1 - p_t, a->gamma);
  if (a->alpha >= 0) loss *= a->alpha * t + (1 - a->alpha) * (1 - t);
  return loss;
}

// Dice of `len` elements.
static double ref_dice(const LossCase *a, const double *x, const double *t, int64_t len) {
  double inter = 0, den = 0;
  for (int64_t j = 0; j < len; j++) {
    double p = a->from_logits ? sigmoid(x[j]) : x[j];
    inter += p * t[j];
    den += a->squared ? p * p + t[j] * t[j] : p + t[j];
  }
  return 1 - (2 * inter + a->eps) / (den + a->eps);
}

static void ref_loss(const double *const *in, double *out, const void *args) {
  const LossCase *a = (const LossCase *)args;
  int64_t total = a->n * a->m;
  double *t = (double *)malloc((size_t)total * sizeof(double));
  for (int64_t i = 0; i < total; i++) t[i] = in[1][i];
  if (a->binary)
    for (int64_t i = 0; i < total; i++) t[i] = t[i] > 0.5 ? 1.0 : 0.0;
  if (a->zero_row > 0)
    for (int64_t j = 0; j < a->m; j++) t[(a->zero_row - 1) * a->m + j] = 0;
  if (a->kind != DICE) {
    double sum = 0;
    for (int64_t i = 0; i < total; i++) {
      double l = ref_pointwise(a, in[0][i], t[i]);
      if (a->reduction == SAMX_REDUCE_NONE) out[i] = l;
      sum += l;
    }
    if (a->reduction != SAMX_REDUCE_NONE) out[0] = a->reduction == SAMX_REDUCE_MEAN ? sum / total : sum;
  } else if (!a->per_sample) {
    out[0] = ref_dice(a, in[0], t, total);
  } else {
    double sum = 0, wsum = 0;
    for (int64_t r = 0; r < a->n; r++) {
      double w = a->weighted ? in[2][r] : 1;
      if (a->weighted && a->zero_weight_row == r + 1) w = 0;
      double d = w * ref_dice(a, in[0] + r * a->m, t + r * a->m, a->m);
      if (a->reduction == SAMX_REDUCE_NONE) out[r] = d;
      sum += d;
      wsum += w;
    }
    if (a->reduction == SAMX_REDUCE_SUM) out[0] = sum;
    if (a->reduction == SAMX_REDUCE_MEAN) out[0] = sum / wsum;
  }
  free(t);
}

#define N 3
#define M 40  // the per-sample shape is [2, 4, 5]
#define LOGITS(lo, hi) {SHAPE(N, 2, 4, 5), 1, lo, hi}
#define TARGET {SHAPE(N, 2, 4, 5), 0, 0, 1}
#define WEIGHT {SHAPE(N), 0, 0.2f, 1}

static const LossCase dice_sq_sample_mean = {DICE, SAMX_REDUCE_MEAN, .from_logits = 1, .squared = 1, .per_sample = 1,
                                             .eps = 1, .n = N, .m = M};
static const LossCase dice_plain_sample_none_zero = {DICE, SAMX_REDUCE_NONE, .from_logits = 1, .per_sample = 1,
                                                     .eps = 1, .zero_row = 2, .n = N, .m = M};
static const LossCase dice_sq_weighted_mean = {DICE, SAMX_REDUCE_MEAN, .from_logits = 1, .squared = 1,
                                               .per_sample = 1, .eps = 1, .weighted = 1, .zero_row = 1,
                                               .zero_weight_row = 3, .binary = 1, .n = N, .m = M};
static const LossCase dice_plain_weighted_sum = {DICE, SAMX_REDUCE_SUM, .from_logits = 1, .per_sample = 1,
                                                 .eps = 0.5f, .weighted = 1, .zero_row = 3, .n = N, .m = M};
static const LossCase dice_sq_weighted_none = {DICE, SAMX_REDUCE_NONE, .from_logits = 1, .squared = 1,
                                               .per_sample = 1, .eps = 1, .weighted = 1, .zero_weight_row = 2,
                                               .n = N, .m = M};
static const LossCase dice_plain_probs_global = {DICE, SAMX_REDUCE_MEAN, .eps = 1e-3f, .zero_row = 2, .n = N,
                                                 .m = M};
static const LossCase dice_sq_global_sum = {DICE, SAMX_REDUCE_SUM, .from_logits = 1, .squared = 1, .eps = 0.01f,
                                            .binary = 1, .n = N, .m = M};
static const LossCase dice_sq_sample_large = {DICE, SAMX_REDUCE_NONE, .from_logits = 1, .squared = 1,
                                              .per_sample = 1, .eps = 1, .zero_row = 2, .n = 2, .m = 9000};
static const LossCase bce_mean = {BCE, SAMX_REDUCE_MEAN, .n = N, .m = M};
static const LossCase bce_sum = {BCE, SAMX_REDUCE_SUM, .binary = 1, .n = N, .m = M};
static const LossCase bce_none = {BCE, SAMX_REDUCE_NONE, .n = N, .m = M};
static const LossCase focal_mean = {FOCAL, SAMX_REDUCE_MEAN, .alpha = 0.25f, .gamma = 2, .binary = 1, .n = N, .m = M};
static const LossCase focal_none_noalpha = {FOCAL, SAMX_REDUCE_NONE, .alpha = -1, .gamma = 1.5f, .n = N, .m = M};
static const LossCase focal_sum_gamma0 = {FOCAL, SAMX_REDUCE_SUM, .alpha = 0.6f, .gamma = 0, .n = N, .m = M};
static const LossCase focal_sum_large = {FOCAL, SAMX_REDUCE_SUM, .alpha = 0.25f, .gamma = 2, .binary = 1, .n = 1,
                                         .m = 20000};
static const LossCase mse_mean = {MSE, SAMX_REDUCE_MEAN, .n = N, .m = M};
static const LossCase mse_sum = {MSE, SAMX_REDUCE_SUM, .n = N, .m = M};
static const LossCase mse_none = {MSE, SAMX_REDUCE_NONE, .n = N, .m = M};

// grad_tol 1e-6: loss gradients are small (1/n under MEAN) and the harness's tolerance is absolute
// below 1, so the default would let a wrong factor through.
#define CASE(c, nin, ...)                                                                                     \
  {.name = #c, .n_in = nin, .in = {__VA_ARGS__}, .run = run_loss, .ref = ref_loss, .args = &c, .grad_tol = 1e-6, \
   .torch = 1}

static const OpCase cases[] = {
    CASE(dice_sq_sample_mean, 2, LOGITS(-3, 3), TARGET),
    CASE(dice_plain_sample_none_zero, 2, LOGITS(-3, 3), TARGET),
    CASE(dice_sq_weighted_mean, 3, LOGITS(-3, 3), TARGET, WEIGHT),
    CASE(dice_plain_weighted_sum, 3, LOGITS(-3, 3), TARGET, WEIGHT),
    CASE(dice_sq_weighted_none, 3, LOGITS(-3, 3), TARGET, WEIGHT),
    CASE(dice_plain_probs_global, 2, LOGITS(0.05f, 0.95f), TARGET),
    CASE(dice_sq_global_sum, 2, LOGITS(-3, 3), TARGET),
    CASE(bce_mean, 2, LOGITS(-6, 6), TARGET),
    CASE(bce_sum, 2, LOGITS(-6, 6), TARGET),
    CASE(bce_none, 2, LOGITS(-6, 6), TARGET),
    CASE(focal_mean, 2, LOGITS(-4, 4), TARGET),
    CASE(focal_none_noalpha, 2, LOGITS(-4, 4), TARGET),
    CASE(focal_sum_gamma0, 2, LOGITS(-4, 4), TARGET),
    CASE(mse_mean, 2, LOGITS(-2, 2), TARGET),
    CASE(mse_sum, 2, LOGITS(-2, 2), TARGET),
    CASE(mse_none, 2, LOGITS(-2, 2), TARGET),
    // Several chunks per row (the deterministic two-pass reduction); forward only, since finite
    // differences over this many elements are slow and backward does not depend on the chunking.
    {.name = "dice_sq_sample_large", .n_in = 2, .in = {{SHAPE(2, 9000), 0, -3, 3}, {SHAPE(2, 9000), 0, 0, 1}},
     .run = run_loss, .ref = ref_loss, .args = &dice_sq_sample_large},
    {.name = "focal_sum_large", .n_in = 2, .in = {{SHAPE(20000), 0, -4, 4}, {SHAPE(20000), 0, 0, 1}},
     .run = run_loss, .ref = ref_loss, .args = &focal_sum_large},
};

// All weights 0: the weighted mean is defined as 0, with a zero gradient (not 0/0).
static void test_all_weights_zero(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  float xs[8], ts[8], ws[2] = {0, 0};
  uint64_t state = 7;
  samx_test_fill_uniform(xs, 8, -2, 2, &state);
  samx_test_fill_uniform(ts, 8, 0, 1, &state);
  SamxTensor *x = samx_from_host(&ctx, SHAPE(2, 4), xs);
  x->requires_grad = 1;
  SamxDiceOpts o = {.from_logits = 1, .eps = 1, .reduction = SAMX_REDUCE_MEAN, .per_sample = 1,
                    .weight = samx_from_host(&ctx, SHAPE(2), ws)};
  SamxTensor *loss = samx_soft_dice_loss(&ctx, x, samx_from_host(&ctx, SHAPE(2, 4), ts), &o);
  float l, g[8];
  samx_tensor_read_f32(loss, &l);
  CHECK(l == 0.0f, "dice with all weights 0: loss %g, want 0", l);
  CHECK(samx_backward(&ctx, loss, NULL) == 0, "backward: %s", samx_last_error());
  samx_tensor_read_f32(x->grad, g);
  int zero = 1;
  for (int i = 0; i < 8; i++) zero &= g[i] == 0.0f;
  CHECK(zero, "dice with all weights 0: gradient not zero");
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  int cuda = argc > 1 && strcmp(argv[1], "cuda") == 0;
  int plain = 0;
  if (!cuda) {
    test_all_weights_zero();
    plain = samx_test_summary();
  }
  int rc = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return rc == SAMX_TEST_SKIP ? rc : (rc || plain);
}
