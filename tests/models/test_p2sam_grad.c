// Gradients of P²SAM's own parts against central finite differences (double-checked in float with a
// relative tolerance): LoRA (A and B of a block), the prior network's head (through the Gaussian
// sampler, mu and log sigma), Fcomb's first and last layers and the assembling weights, on a small
// P²SAM (32 px SAM) with the full training loss of stage 1 or 2 (CE + Dice + focal + norms). The loss is
// f32, so the differences resolve gradients to a few percent (and ReLU kinks within h blur them); the
// tight check of these gradients is test_p2sam_oracle (the authors' autograd, ~1e-6).
// "Stage 3" is stage 1 with the convex assembling (p2sam.assemble = convex: w = softmax([0, v])).
// argv[1] "cuda": the model on cuda:0: the same finite-difference checks there, and every checked
// parameter's whole gradient (and the loss) against the CPU backend's (skipped without a GPU).
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/p2sam/p2sam.h"

enum { B = 2, S = 32 };

static SamMethodModel make(SamxDevice dev, int stage) {
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.img_size = 32, c.patch = 8, c.enc_dim = 16, c.enc_depth = 2, c.enc_heads = 2, c.enc_mlp = 32, c.window = 2;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[1] = 1;
  c.prompt_dim = c.out_chans = 16, c.dec_heads = 2, c.dec_mlp = 32, c.iou_hidden = 16;
  SamModel base, sam;
  sam_init_random(&base, &c, dev, 0, 3);
  p2sam_sam_from_base(&sam, &base, S, stage != 2 ? SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER : 0, 4);
  sam_free(&base);
  SamMethodModel mm;
  sam_method_init(&mm, &sam, SAM_METHOD_P2SAM, 2, stage != 2 ? P2SAM_STAGE1 : P2SAM_STAGE2, 5, 0.0f);
  if (stage == 3) {  // convex, away from the uniform start so that the softmax's Jacobian is not symmetric
    p2sam_set_assemble(&mm, P2SAM_ASSEMBLE_CONVEX);
    samx_randn_fill(samx_params_find(&mm.sam.params, "p2sam.mask_weights.weights"), 8, 0, 0, 0.7f);
  }
  // LoRA B starts at 0; give it values so that A's gradient is not 0
  for (int i = 0; i < mm.sam.params.n; i++)
    if (!strncmp(mm.sam.params.list[i]->name, "p2sam.w_b_", 10)) samx_randn_fill(mm.sam.params.list[i], 9, (uint64_t)i << 32, 0, 1.0f);
  return mm;
}

static float px[B * S * S], target[B * S * S], eps[B * P2SAM_LATENT];

static double loss_of(SamMethodModel *mm, SamxCtx *ctx, int stage, int backward) {
  samx_ctx_reset(ctx);
  samx_ctx_set_recording(ctx, backward);
  SamxTensor *pixels = samx_from_host(ctx, SHAPE(B, 1, S, S), px), *z = NULL;
  SamxTensor *emb = sam_encode(ctx, &mm->sam, p2sam_encoder_input(ctx, pixels));
  if (stage == 2) {
    SamxTensor *mu, *ls;
    p2sam_prior(ctx, mm, pixels, &mu, &ls);
    z = samx_gaussian_reparam(ctx, mu, ls, samx_from_host(ctx, samx_shape_of(mu), eps));
  }
  SamxTensor *low = p2sam_decode(ctx, mm, emb, NULL, p2sam_dense_prompt(ctx, mm, z, B)), *w, *a;
  p2sam_assemble(ctx, mm, low, NULL, &w, &a);
  P2samLoss l;
  p2sam_loss(ctx, mm, w, a, target, stage == 2 ? 1e-2f : 0.0f, &l);
  float v;
  samx_tensor_read_f32(l.total, &v);
  if (backward) samx_backward(ctx, l.total, NULL);
  return v;
}

// d loss / d param[idx] by central differences against the backward pass, where idx is the element
// of [lo, hi) with the largest backward gradient: the f32 loss resolves differences of ~1e-4 at a
// loss of ~60 (stage 2), so a small gradient would be compared with rounding noise alone.
static void check(SamMethodModel *mm, SamxCtx *ctx, int stage, const char *name, int64_t lo, int64_t hi) {
  SamxTensor *t = samx_params_find(&mm->sam.params, name);
  if (!t || hi > t->numel || lo >= hi) {
    CHECK(0, "%s[%lld, %lld) missing", name, (long long)lo, (long long)hi);
    return;
  }
  float *v = (float *)malloc(sizeof(float) * (size_t)t->numel), g;
  samx_params_zero_grad(&mm->sam.params);
  loss_of(mm, ctx, stage, 1);
  float *gv = (float *)malloc(sizeof(float) * (size_t)t->numel);
  samx_tensor_read_f32(t->grad, gv);
  int64_t idx = lo;
  for (int64_t i = lo; i < hi; i++)
    if (fabsf(gv[i]) > fabsf(gv[idx])) idx = i;
  g = gv[idx];
  samx_tensor_read_f32(t, v);
  float x0 = v[idx], h = 1e-2f * fmaxf(1.0f, fabsf(x0));
  v[idx] = x0 + h;
  samx_tensor_write_f32(t, v);
  double lp = loss_of(mm, ctx, stage, 0);
  v[idx] = x0 - h;
  samx_tensor_write_f32(t, v);
  double lm = loss_of(mm, ctx, stage, 0);
  v[idx] = x0;
  samx_tensor_write_f32(t, v);
  // f32 losses carry ~1e-7 relative noise: the differences resolve about 8 ulps of the loss over 2h
  double fd = (lp - lm) / (2.0 * h), floor = 8.0 * fabs(lp) * 6e-8 / (2.0 * h);
  double err = fabs(g - fd) / fmax(fmax(fabs(fd), fabs(g)), floor);
  CHECK(err < 0.1, "stage %d %s[%lld]: backward %g, finite differences %g (rel %g)", stage, name, (long long)idx, g, fd, err);
  printf("stage %d %-40s [%3lld] backward %+.6g  finite diff %+.6g  rel err %.2g\n", stage, name, (long long)idx, g, fd, err);
  free(v), free(gv);
}

typedef struct {
  int stage;
  const char *name;
  int64_t lo, hi;  // the element checked: the largest |gradient| in [lo, hi) (hi 0: the whole tensor)
} Probe;

static const Probe probes[] = {
    {1, "p2sam.w_a_002", 0, 0},
    {1, "p2sam.w_b_001", 0, 0},
    {1, "p2sam.mask_weights.weights", 0, 0},
    {1, "prompt_encoder.no_mask_embed.weight", 0, 0},
    {3, "p2sam.mask_weights.weights", 0, 0},  // convex assembling
    {3, "p2sam.w_b_001", 0, 0},
    {2, "p2sam.prior_dense.conv_layer.bias", 0, P2SAM_LATENT},                 // mu
    {2, "p2sam.prior_dense.conv_layer.bias", P2SAM_LATENT, 2 * P2SAM_LATENT},  // log sigma
    {2, "p2sam.prior_dense.encoder.layers.25.weight", 0, 0},
    {2, "p2sam.fcomb.layers.0.weight", 0, 0},
    {2, "p2sam.fcomb.last_layer.weight", 0, 0},
    {2, "p2sam.fcomb.layers.4.bias", 0, 0},
};
enum { N_PROBES = (int)(sizeof probes / sizeof *probes) };

static void check_fd(SamxDevice dev) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)512 << 20, 65536);
  for (int stage = 1; stage <= 3; stage++) {
    SamMethodModel mm = make(dev, stage);
    for (int p = 0; p < N_PROBES; p++)
      if (probes[p].stage == stage) {
        const SamxTensor *t = samx_params_find(&mm.sam.params, probes[p].name);
        check(&mm, &ctx, stage, probes[p].name, probes[p].lo, probes[p].hi ? probes[p].hi : t ? t->numel : 1);
      }
    sam_method_free(&mm);
  }
  samx_ctx_free(&ctx);
}

// One backward pass on each backend (same seeds, same inputs): the loss, and each probed parameter's
// whole gradient, within rounding of the f32 reductions (max |diff| <= 2e-3 of the largest |grad|).
static void check_against_cpu(SamxDevice dev, int stage) {
  SamxCtx cc, gc;
  samx_ctx_init(&cc, samx_cpu(), (size_t)512 << 20, 65536);
  samx_ctx_init(&gc, dev, (size_t)512 << 20, 65536);
  SamMethodModel a = make(samx_cpu(), stage), b = make(dev, stage);
  samx_params_zero_grad(&a.sam.params);
  samx_params_zero_grad(&b.sam.params);
  double la = loss_of(&a, &cc, stage, 1), lb = loss_of(&b, &gc, stage, 1);
  CHECK(fabs(la - lb) <= 1e-4 * (1 + fabs(la)), "stage %d cuda loss %.7g vs cpu %.7g", stage, lb, la);
  printf("stage %d loss cuda %.7f cpu %.7f\n", stage, lb, la);
  for (int p = 0; p < N_PROBES; p++) {
    if (probes[p].stage != stage || (p > 0 && !strcmp(probes[p].name, probes[p - 1].name))) continue;
    SamxTensor *ta = samx_params_find(&a.sam.params, probes[p].name), *tb = samx_params_find(&b.sam.params, probes[p].name);
    if (!ta || !tb || !ta->grad || !tb->grad) {
      CHECK(0, "%s: parameter or gradient missing", probes[p].name);
      continue;
    }
    float *ga = (float *)malloc(sizeof(float) * (size_t)ta->numel), *gb = (float *)malloc(sizeof(float) * (size_t)ta->numel);
    samx_tensor_read_f32(ta->grad, ga);
    samx_tensor_read_f32(tb->grad, gb);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < ta->numel; i++) worst = fmax(worst, fabs((double)ga[i] - gb[i])), scale = fmax(scale, fabs(ga[i]));
    CHECK(worst <= 2e-3 * scale && scale > 0, "stage %d %s: cuda gradient differs from cpu by %.3g of %.3g", stage,
          probes[p].name, worst, scale);
    printf("stage %d %-40s cuda vs cpu gradient: max diff %.2g of %.2g\n", stage, probes[p].name, worst, scale);
    free(ga), free(gb);
  }
  sam_method_free(&a);
  sam_method_free(&b);
  samx_ctx_free(&cc);
  samx_ctx_free(&gc);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  uint64_t st = 11;
  samx_test_fill_uniform(px, B * S * S, 0, 1, &st);
  samx_test_fill_uniform(eps, B * P2SAM_LATENT, -1.5f, 1.5f, &st);
  for (int i = 0; i < B * S * S; i++) target[i] = ((i % S) - 12) * ((i % S) - 12) + (((i / S) % S) - 16) * (((i / S) % S) - 16) < 50;
  if (dev.type == SAMX_CUDA) {
    check_against_cpu(dev, 1);
    check_against_cpu(dev, 2);
    check_against_cpu(dev, 3);
  }
  check_fd(dev);
  return samx_test_summary();
}
