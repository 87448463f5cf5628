// End-to-end training on fixed synthetic tasks: a tiny MLP (linear + GELU + linear, MSE) regresses a
// smooth function and a tiny conv net (conv2d + ReLU + conv2d, BCE with logits) learns a blurred
// sign map; each must bring its loss below 30% of the initial loss within a few hundred AdamW steps.
// Gradient accumulation: two micro-batches of one sample give the gradient of one batch of two
// (sum losses), and each micro-batch alone does not.
#include <stdlib.h>
#include <string.h>

#include "../../engine/optim.h"
#include "../harness.h"

#define STEPS 300

typedef struct {
  SamxParams p;
  SamxTensor *w[2], *b[2];
  int conv;  // 0: MLP, 1: conv net
} Net;

// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's default Linear/Conv2d initialisation.
static void init_uniform(SamxTensor *t, int64_t fan_in, uint64_t seed, uint64_t offset) {
  float bound = 1.0f / sqrtf((float)fan_in);
  samx_rand_uniform_fill(t, seed, offset, -bound, bound);
}

// MLP: 2 -> 32 -> 1. Conv net: 1 -> 6 channels (3x3) -> 1 channel (3x3), padding 1.
static void net_init(Net *n, int conv, SamxDevice dev) {
  samx_params_init(&n->p);
  n->conv = conv;
  if (conv) {
    n->w[0] = samx_param(&n->p, "conv1.weight", SHAPE(6, 1, 3, 3), 1);
    n->b[0] = samx_param(&n->p, "conv1.bias", SHAPE(6), 1);
    n->w[1] = samx_param(&n->p, "conv2.weight", SHAPE(1, 6, 3, 3), 1);
    n->b[1] = samx_param(&n->p, "conv2.bias", SHAPE(1), 1);
  } else {
    n->w[0] = samx_param(&n->p, "fc1.weight", SHAPE(32, 2), 1);
    n->b[0] = samx_param(&n->p, "fc1.bias", SHAPE(32), 1);
    n->w[1] = samx_param(&n->p, "fc2.weight", SHAPE(1, 32), 1);
    n->b[1] = samx_param(&n->p, "fc2.bias", SHAPE(1), 1);
  }
  samx_params_allocate(&n->p, dev);
  for (int l = 0; l < 2; l++) {
    int64_t fan_in = n->w[l]->numel / n->w[l]->shape[0];
    init_uniform(n->w[l], fan_in, 11, (uint64_t)(2 * l) << 16);
    init_uniform(n->b[l], fan_in, 11, (uint64_t)(2 * l + 1) << 16);
  }
}

// ---- the tasks ----
#define MLP_N 64
#define IMG 10
#define CONV_N 6

// y = sin(2 x0) * cos(x1) on points of [-1.5, 1.5]^2.
static void mlp_data(float *x, float *y) {
  uint64_t state = 3;
  samx_test_fill_uniform(x, MLP_N * 2, -1.5f, 1.5f, &state);
  for (int i = 0; i < MLP_N; i++) y[i] = sinf(2 * x[2 * i]) * cosf(x[2 * i + 1]);
}

// Label 1 where the 3x3 mean of the image (zero padded) is positive.
static void conv_data(float *x, float *y) {
  uint64_t state = 5;
  samx_test_fill_uniform(x, CONV_N * IMG * IMG, -1, 1, &state);
  for (int n = 0; n < CONV_N; n++)
    for (int i = 0; i < IMG; i++)
      for (int j = 0; j < IMG; j++) {
        float s = 0;
        for (int di = -1; di <= 1; di++)
          for (int dj = -1; dj <= 1; dj++)
            if (i + di >= 0 && i + di < IMG && j + dj >= 0 && j + dj < IMG)
              s += x[(n * IMG + i + di) * IMG + j + dj];
        y[(n * IMG + i) * IMG + j] = s > 0 ? 1.0f : 0.0f;
      }
}

// The inputs and targets of the conv or the MLP task.
static void task_data(int conv, float *x, float *y) {
  if (conv)
    conv_data(x, y);
  else
    mlp_data(x, y);
}

// Loss of samples [first, first + count) of the net's task.
static SamxTensor *net_loss(Net *n, SamxCtx *ctx, const float *x, const float *y, int first, int count,
                            SamxReduction red) {
  if (n->conv) {
    int64_t px = IMG * IMG;
    SamxTensor *in = samx_from_host(ctx, SHAPE(count, 1, IMG, IMG), x + first * px);
    SamxTensor *h = samx_relu(ctx, samx_conv2d(ctx, in, n->w[0], n->b[0], 1, 1));
    SamxTensor *logits = samx_conv2d(ctx, h, n->w[1], n->b[1], 1, 1);
    return samx_bce_with_logits(ctx, logits, samx_from_host(ctx, SHAPE(count, 1, IMG, IMG), y + first * px), red);
  }
  SamxTensor *in = samx_from_host(ctx, SHAPE(count, 2), x + 2 * first);
  SamxTensor *h = samx_gelu(ctx, samx_linear(ctx, in, n->w[0], n->b[0]));
  SamxTensor *out = samx_linear(ctx, h, n->w[1], n->b[1]);
  return samx_mse_loss(ctx, out, samx_from_host(ctx, SHAPE(count, 1), y + first), red);
}

static float read_scalar(const SamxTensor *t) {
  float v;
  samx_tensor_read(t, &v);
  return v;
}

// Trains full-batch; returns the initial and final losses in first/last.
static void train(int conv, SamxDevice dev, float *first, float *last) {
  static float x[CONV_N * IMG * IMG], y[CONV_N * IMG * IMG];
  int count = conv ? CONV_N : MLP_N;
  task_data(conv, x, y);
  Net n;
  net_init(&n, conv, dev);
  SamxOptim opt;
  samx_optim_init(&opt, &n.p, samx_adamw_config(1e-4));
  SamxSchedule sched = {SAMX_SCHED_COSINE, conv ? 0.03f : 0.02f, 0.001f, 10, STEPS};
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  for (int s = 0; s < STEPS; s++) {
    samx_ctx_reset(&ctx);
    samx_params_zero_grad(&n.p);
    SamxTensor *loss = net_loss(&n, &ctx, x, y, 0, count, SAMX_REDUCE_MEAN);
    float value = read_scalar(loss);
    if (s == 0) *first = value;
    CHECK(samx_backward(&ctx, loss, NULL) == 0, "backward: %s", samx_last_error());
    samx_clip_grad_norm(&n.p, 5.0f);
    samx_optim_step(&opt, samx_lr_at(&sched, opt.step));
  }
  samx_ctx_reset(&ctx);
  *last = read_scalar(net_loss(&n, &ctx, x, y, 0, count, SAMX_REDUCE_MEAN));
  samx_ctx_free(&ctx);
  samx_optim_free(&opt);
  samx_params_free(&n.p);
}

static void check_training(int conv, int have_gpu) {
  const char *name = conv ? "conv net (BCE)" : "MLP (MSE)";
  float first, last;
  train(conv, samx_cpu(), &first, &last);
  int ok = last < 0.3f * first;
  CHECK(ok, "%s: loss %.5g -> %.5g after %d steps, expected below 30%% of the start", name, first, last, STEPS);
  printf("%s %s: loss %.5g -> %.5g (%.1f%%) in %d steps\n", ok ? "PASS" : "FAIL", name, first, last,
         100.0 * last / first, STEPS);
  if (have_gpu) {
    float gfirst, glast;
    train(conv, (SamxDevice){SAMX_CUDA, 0}, &gfirst, &glast);
    CHECK(fabsf(gfirst - first) <= 1e-5f * (1 + fabsf(first)), "%s cuda: initial loss %.7g, cpu %.7g", name, gfirst,
          first);
    CHECK(glast < 0.3f * gfirst, "%s cuda: loss %.5g -> %.5g", name, gfirst, glast);
    printf("%s cuda: loss %.5g -> %.5g\n", name, gfirst, glast);
  }
}

// ---- gradient accumulation ----

static float *grads_of(Net *n, SamxCtx *ctx, const float *x, const float *y, const int *firsts, const int *counts,
                       int n_micro) {
  samx_params_zero_grad(&n->p);
  for (int k = 0; k < n_micro; k++) {
    samx_ctx_reset(ctx);
    SamxTensor *loss = net_loss(n, ctx, x, y, firsts[k], counts[k], SAMX_REDUCE_SUM);
    CHECK(samx_backward(ctx, loss, NULL) == 0, "backward: %s", samx_last_error());
  }
  float *g = (float *)malloc((size_t)n->p.n_trainable * sizeof(float));
  samx_memcpy(samx_cpu(), g, n->p.device, n->p.grad_flat, (size_t)n->p.n_trainable * sizeof(float));
  return g;
}

static void check_accumulation(int conv, SamxDevice dev) {
  static float x[CONV_N * IMG * IMG], y[CONV_N * IMG * IMG];
  task_data(conv, x, y);
  Net n;
  net_init(&n, conv, dev);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  int f_batch[1] = {0}, c_batch[1] = {2}, f_micro[2] = {0, 1}, c_micro[2] = {1, 1};
  float *batch = grads_of(&n, &ctx, x, y, f_batch, c_batch, 1);
  float *accum = grads_of(&n, &ctx, x, y, f_micro, c_micro, 2);
  float *single = grads_of(&n, &ctx, x, y, f_micro, c_micro, 1);
  int64_t count = n.p.n_trainable;
  double e = samx_test_max_rel(accum, batch, count), e_single = samx_test_max_rel(single, batch, count);
  const char *name = conv ? "conv net" : "MLP";
  CHECK(e <= 1e-5, "%s: accumulated gradient differs from the batch gradient by %.3g", name, e);
  CHECK(e_single > 1e-3, "%s: one micro-batch alone already gives the batch gradient (%.3g): the test is void", name,
        e_single);
  printf("%s %s: 2 micro-batches of 1 == batch of 2 (max rel err %.3g; one micro-batch alone %.3g)\n",
         e <= 1e-5 ? "PASS" : "FAIL", name, e, e_single);
  free(batch), free(accum), free(single);
  samx_ctx_free(&ctx);
  samx_params_free(&n.p);
}

int main(void) {
  int have_gpu = samx_cuda_device_count() > 0;
  if (!have_gpu) printf("SKIP cuda training: no CUDA device\n");
  check_training(0, have_gpu);
  check_training(1, have_gpu);
  check_accumulation(0, samx_cpu());
  check_accumulation(1, samx_cpu());
  return samx_test_summary();
}
