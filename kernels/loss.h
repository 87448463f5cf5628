// Losses: binary cross-entropy with logits, sigmoid focal, MSE (pointwise, optionally reduced) and
// soft Dice (per-row sums of p*t and of the denominator terms, then 1 - (2I + eps) / (U + eps)).
// defines: SamxLossSpec, the per-element math shared by CPU and CUDA, and the launchers.
//
// Every reduction is deterministic: each row of `cols` elements is split into samx_loss_chunks(cols)
// chunks whose double partial sums land in a scratch array (no atomics); a single sequential (CPU) or
// single-block (CUDA) pass then combines them in a fixed order.
#ifndef SAMX_KERNELS_LOSS_H
#define SAMX_KERNELS_LOSS_H

#include "activation.h"
#include "common.h"

typedef enum { SAMX_LOSS_BCE = 0, SAMX_LOSS_FOCAL = 1, SAMX_LOSS_MSE = 2, SAMX_LOSS_DICE = 3 } SamxLossKind;

typedef struct {
  int kind;          // SamxLossKind
  float alpha;       // focal: weight of positives; < 0 disables the alpha weighting
  float gamma;       // focal: focusing exponent
  float eps;         // dice: smoothing added to numerator and denominator
  int from_logits;   // dice: p = sigmoid(x) instead of p = x
  int squared;       // dice: denominator sum p^2 + sum t^2 instead of sum p + sum t
} SamxLossSpec;

// Where backward reads the upstream gradient of element i in row r.
typedef enum { SAMX_GY_SCALAR = 0, SAMX_GY_ROW = 1, SAMX_GY_ELEM = 2 } SamxGyMode;

// log(1 + exp(-|x|)) + max(x, 0) - x t: torch's binary_cross_entropy_with_logits, stable for any x.
SAMX_HD float samx_bce_logits(float x, float t) {
  return fmaxf(x, 0.0f) - x * t + log1pf(expf(-fabsf(x)));
}

// Pointwise loss of one element (BCE, focal, MSE).
SAMX_HD float samx_loss_elem(const SamxLossSpec *s, float x, float t) {
  if (s->kind == SAMX_LOSS_MSE) return (x - t) * (x - t);
  float ce = samx_bce_logits(x, t);
  if (s->kind == SAMX_LOSS_BCE) return ce;
  // torchvision.ops.sigmoid_focal_loss: ce * (1 - p_t)^gamma, times alpha_t when alpha >= 0.
  float p = samx_sigmoidf(x);
  float m = p + t - 2.0f * p * t;  // 1 - p_t with p_t = p t + (1 - p)(1 - t)
  float loss = ce * powf(m, s->gamma);
  if (s->alpha >= 0.0f) loss *= s->alpha * t + (1.0f - s->alpha) * (1.0f - t);
  return loss;
}

// d(loss)/dx of one element (BCE, focal, MSE).
SAMX_HD float samx_loss_elem_grad(const SamxLossSpec *s, float x, float t) {
  if (s->kind == SAMX_LOSS_MSE) return 2.0f * (x - t);
  float p = samx_sigmoidf(x);
  if (s->kind == SAMX_LOSS_BCE) return p - t;
  float m = p + t - 2.0f * p * t;
  float dm = p * (1.0f - p) * (1.0f - 2.0f * t);
  float g = (p - t) * powf(m, s->gamma);
  // m^(gamma-1) is unbounded at m = 0 for gamma < 1; there dm = 0 too (p saturated at t in {0, 1}).
  if (s->gamma != 0.0f && m > 0.0f) g += samx_bce_logits(x, t) * s->gamma * powf(m, s->gamma - 1.0f) * dm;
  if (s->alpha >= 0.0f) g *= s->alpha * t + (1.0f - s->alpha) * (1.0f - t);
  return g;
}

SAMX_HD float samx_dice_prob(const SamxLossSpec *s, float x) { return s->from_logits ? samx_sigmoidf(x) : x; }

// The two per-element terms a row sums: Dice's p t and denominator term, or a pointwise loss and 0.
SAMX_HD void samx_loss_terms(const SamxLossSpec *s, float x, float t, double *a, double *b) {
  if (s->kind != SAMX_LOSS_DICE) {
    *a = samx_loss_elem(s, x, t);
    *b = 0.0;
    return;
  }
  float p = samx_dice_prob(s, x);
  *a = (double)p * t;
  *b = s->squared ? (double)p * p + (double)t * t : (double)p + t;
}

// The loss of a row from its sums: 1 - (2I + eps) / (U + eps) for Dice, the summed loss otherwise.
SAMX_HD double samx_loss_row_value(const SamxLossSpec *s, double a, double b) {
  if (s->kind != SAMX_LOSS_DICE) return a;
  return 1.0 - (2.0 * a + s->eps) / (b + s->eps);
}

// d(row value)/dx of one element, given the row's sums (a, b) from the forward pass.
SAMX_HD float samx_loss_grad(const SamxLossSpec *s, float x, float t, double a, double b) {
  if (s->kind != SAMX_LOSS_DICE) return samx_loss_elem_grad(s, x, t);
  float p = samx_dice_prob(s, x);
  double den = b + s->eps;
  double dden_dp = s->squared ? 2.0 * p : 1.0;
  double dp_dx = s->from_logits ? (double)p * (1.0f - p) : 1.0;
  return (float)(-(2.0 * t * den - (2.0 * a + s->eps) * dden_dp) / (den * den) * dp_dx);
}

// Chunks per row for the partial sums (the same on both backends, so the scratch size is known).
SAMX_HD int64_t samx_loss_chunks(int64_t cols) {
  int64_t c = (cols + 4095) / 4096;
  return c < 1 ? 1 : (c > 128 ? 128 : c);
}

// out[i] = pointwise loss of element i (no reduction).
// Row r's two sums from its chunk partials, added in chunk order (the same on CPU and CUDA).
SAMX_HD void samx_loss_row_total(const double *partials, int64_t r, int64_t chunks, double *sums) {
  double a = 0, b = 0;
  for (int64_t c = 0; c < chunks; c++) {
    a += partials[2 * (r * chunks + c)];
    b += partials[2 * (r * chunks + c) + 1];
  }
  sums[2 * r] = a;
  sums[2 * r + 1] = b;
}

SAMX_EXTERN_C void samx_cpu_loss_elementwise(SamxLossSpec s, const float *x, const float *t, float *out, int64_t n);
// Reduced loss over `rows` rows of `cols` elements.
//   partials: scratch of rows * samx_loss_chunks(cols) * 2 doubles.
//   sums:     [rows][2] row sums, kept for backward.
//   rowscale: [rows] factor each row's value enters the output with (w_r * scale, divided by sum w
//             when weight_mean), kept for backward.
//   weight:   [rows] per-row weights or NULL (all ones).
//   keep_rows: out[r] = rowscale[r] * value_r ([rows] output), else out[0] = sum_r rowscale[r] * value_r.
//   weight_mean: divide by the sum of the weights (0 when they sum to 0: the loss and gradient vanish).
SAMX_EXTERN_C void samx_cpu_loss_reduce(SamxLossSpec s, const float *x, const float *t, const float *weight,
                                        int64_t rows, int64_t cols, int keep_rows, int weight_mean, double scale,
                                        double *partials, double *sums, double *rowscale, float *out);
// gx[i] += gy[.] * rowscale[r] * samx_loss_grad(x[i], t[i], sums[r]) for element i of row r.
// gy is read per SamxGyMode; rowscale and sums may be NULL (1 and unused: pointwise, unreduced).
SAMX_EXTERN_C void samx_cpu_loss_bwd(SamxLossSpec s, const float *x, const float *t, const double *sums,
                                     const double *rowscale, const float *gy, int gy_mode, float *gx, int64_t rows,
                                     int64_t cols);

SAMX_EXTERN_C void samx_cuda_loss_elementwise(SamxLossSpec s, const float *x, const float *t, float *out, int64_t n);
SAMX_EXTERN_C void samx_cuda_loss_reduce(SamxLossSpec s, const float *x, const float *t, const float *weight,
                                         int64_t rows, int64_t cols, int keep_rows, int weight_mean, double scale,
                                         double *partials, double *sums, double *rowscale, float *out);
SAMX_EXTERN_C void samx_cuda_loss_bwd(SamxLossSpec s, const float *x, const float *t, const double *sums,
                                      const double *rowscale, const float *gy, int gy_mode, float *gx, int64_t rows,
                                      int64_t cols);

#endif
