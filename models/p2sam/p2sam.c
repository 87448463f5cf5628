// P²SAM's model: LoRA'd SAM at 128 px, the prompt-generation network and the assembling weights
// (models/p2sam/p2sam.h). ref: yu2hi13/P2SAM p2sam.py, sam_lora_image_encoder.py, train_first_stage.py.
#include "p2sam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops_common.h"
#include "kernels/random.h"
#include "models/sam/sam_internal.h"

// The prior encoder (p2sam.py:10-36): widths 32, 64, 128, 192, three 3x3 convs + ReLU per block, an
// average pool before blocks 2-4. Its nn.Sequential indices of the convolutions:
static const int PRIOR_WIDTH[4] = {32, 64, 128, 192};
static const int PRIOR_LAYER[4][3] = {{0, 2, 4}, {7, 9, 11}, {14, 16, 18}, {21, 23, 25}};
// Fcomb (p2sam.py:62-71): 1x1 convs at layers.0, .2, .4 with ReLU, then last_layer.
static const int FCOMB_LAYER[3] = {0, 2, 4};

// "p2sam." fmt suffix, fmt formatted with i when it holds a %d.
static void p2_name(char *name, size_t n, const char *fmt, int i, const char *suffix) {
  char base[128];
  if (strchr(fmt, '%'))
    snprintf(base, sizeof base, fmt, i);
  else
    snprintf(base, sizeof base, "%s", fmt);
  snprintf(name, n, "p2sam.%s%s", base, suffix);
}

static SamxTensor *param(const SamMethodModel *mm, const char *fmt, int i, const char *suffix) {
  char name[192];
  p2_name(name, sizeof name, fmt, i, suffix);
  SamxTensor *t = samx_params_find(&mm->sam.params, name);
  SAMX_ASSERT(t, "P2SAM parameter %s missing", name);
  return t;
}

static void decl(SamxParams *p, const char *fmt, int i, const char *suffix, SamxShape s, int trainable) {
  char name[192];
  p2_name(name, sizeof name, fmt, i, suffix);
  samx_param(p, name, s, trainable);
}

static void declare(const SamModel *sam, SamxParams *store, int trainable) {
  int s1 = (trainable & P2SAM_STAGE1) != 0, s2 = (trainable & P2SAM_STAGE2) != 0;
  int64_t D = sam->cfg.enc_dim, r = P2SAM_RANK, C = sam->cfg.prompt_dim;
  for (int i = 0; i < 2 * sam->cfg.enc_depth; i++) {  // ref: LoRA_Sam.__init__ (w_As, w_Bs in block order)
    decl(store, "w_a_%03d", i, "", SHAPE(r, D), s1);
    decl(store, "w_b_%03d", i, "", SHAPE(D, r), s1);
  }
  int64_t in = 1;
  for (int b = 0; b < 4; b++)
    for (int k = 0; k < 3; k++) {
      decl(store, "prior_dense.encoder.layers.%d", PRIOR_LAYER[b][k], ".weight", SHAPE(PRIOR_WIDTH[b], in, 3, 3), s2);
      decl(store, "prior_dense.encoder.layers.%d", PRIOR_LAYER[b][k], ".bias", SHAPE(PRIOR_WIDTH[b]), s2);
      in = PRIOR_WIDTH[b];
    }
  decl(store, "prior_dense.conv_layer", -1, ".weight", SHAPE(2 * P2SAM_LATENT, in, 1, 1), s2);
  decl(store, "prior_dense.conv_layer", -1, ".bias", SHAPE(2 * P2SAM_LATENT), s2);
  for (int k = 0; k < 3; k++) {
    decl(store, "fcomb.layers.%d", FCOMB_LAYER[k], ".weight", SHAPE(C, k ? C : C + P2SAM_LATENT, 1, 1), s2);
    decl(store, "fcomb.layers.%d", FCOMB_LAYER[k], ".bias", SHAPE(C), s2);
  }
  decl(store, "fcomb.last_layer", -1, ".weight", SHAPE(C, C, 1, 1), s2);
  decl(store, "fcomb.last_layer", -1, ".bias", SHAPE(C), s2);
  decl(store, "mask_weights.weights", -1, "", SHAPE(P2SAM_MASKS - 1, 1), s1);
}

// Points SAM's encoder at the adapters (after every rebuild of the store).
static void attach_lora(SamMethodModel *mm) {
  for (int i = 0; i < mm->sam.cfg.enc_depth; i++) {
    mm->sam.lora[i][0] = param(mm, "w_a_%03d", 2 * i, "");
    mm->sam.lora[i][1] = param(mm, "w_b_%03d", 2 * i, "");
    mm->sam.lora[i][2] = param(mm, "w_a_%03d", 2 * i + 1, "");
    mm->sam.lora[i][3] = param(mm, "w_b_%03d", 2 * i + 1, "");
  }
}

// Host draws of stream (seed, offset): normal or uniform.
static float *draws(int kind, int64_t n, uint64_t seed, uint64_t offset, float a, float b) {
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  samx_cpu_random_fill(kind, v, n, seed, offset, a, b);
  return v;
}

// torch.nn.init.orthogonal_ of a [rows, cols] weight: rows orthonormal when rows <= cols (Gram-Schmidt
// on normal draws, in double), columns when rows > cols.
static void init_orthogonal(SamxTensor *t, uint64_t seed, uint64_t offset) {
  int64_t rows = t->shape[0], cols = t->numel / rows;
  int tr = rows > cols;
  int64_t n = tr ? cols : rows, m = tr ? rows : cols;  // n vectors of length m
  float *v = draws(SAMX_RNG_NORMAL, rows * cols, seed, offset, 0.0f, 1.0f);
  double *q = (double *)malloc(sizeof(double) * (size_t)(n * m));
  for (int64_t i = 0; i < n * m; i++) q[i] = v[i];
  for (int64_t i = 0; i < n; i++) {
    double *a = q + i * m;
    for (int64_t j = 0; j < i; j++) {
      double d = 0, *b = q + j * m;
      for (int64_t k = 0; k < m; k++) d += a[k] * b[k];
      for (int64_t k = 0; k < m; k++) a[k] -= d * b[k];
    }
    double s = 0;
    for (int64_t k = 0; k < m; k++) s += a[k] * a[k];
    for (int64_t k = 0; k < m; k++) a[k] /= sqrt(s);
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < m; k++) v[tr ? k * cols + i : i * cols + k] = (float)q[i * m + k];
  samx_tensor_write_f32(t, v);
  free(q);
  free(v);
}

// The authors' init (method-notes §4): LoRA A kaiming-uniform(a = sqrt 5), B = 0; prior convs and
// head kaiming-normal (fan_in, relu), head bias N(0, 1); Fcomb orthogonal; other biases
// N(0, 0.001) (their truncated normal at +-2 std differs from it in 5% of draws, by < 0.001);
// assembling weights 1/8.
static void init_params(SamMethodModel *mm, uint64_t seed, float init_std) {
  (void)init_std;
  attach_lora(mm);
  uint64_t stream = 0;
  for (int i = 0; i < mm->sam.params.n; i++) {
    SamxTensor *t = mm->sam.params.list[i];
    if (strncmp(t->name, "p2sam.", 6)) continue;
    uint64_t off = ++stream << 40;
    const char *n = t->name + 6;
    int64_t fan_in = t->ndim > 1 ? t->numel / t->shape[0] : 1;
    if (!strncmp(n, "w_a_", 4)) {
      float bound = 1.0f / sqrtf((float)fan_in);
      samx_rand_uniform_fill(t, seed, off, -bound, bound);
    } else if (!strncmp(n, "w_b_", 4)) {
      samx_tensor_fill(t, 0.0f);
    } else if (!strcmp(n, "mask_weights.weights")) {
      samx_tensor_fill(t, 1.0f / P2SAM_MASKS);
    } else if (!strcmp(n, "prior_dense.conv_layer.bias")) {
      samx_randn_fill(t, seed, off, 0.0f, 1.0f);
    } else if (t->ndim == 1) {
      samx_randn_fill(t, seed, off, 0.0f, 0.001f);
    } else if (!strncmp(n, "fcomb.", 6)) {
      init_orthogonal(t, seed, off);
    } else {
      samx_randn_fill(t, seed, off, 0.0f, sqrtf(2.0f / (float)fan_in));
    }
  }
}

// ---- the SAM part ----

// ref: build_sam.py load_from (bs:147-160).
int p2sam_sam_from_base(SamModel *out, const SamModel *base, int img_size, int trainable, uint64_t seed) {
  SamConfig c = base->cfg;
  if (img_size < c.patch || img_size % c.patch)
    return samx_fail("P2SAM input size %d is not a multiple of the patch size %d", img_size, c.patch);
  c.img_size = img_size;
  c.num_mask_tokens = P2SAM_MASKS + 1;
  sam_init_random(out, &c, base->device, trainable, seed);
  int g = sam_embed_grid(&c), g0 = sam_embed_grid(&base->cfg);
  SamxCtx ctx;
  samx_ctx_init(&ctx, base->device, (size_t)4 * c.enc_dim * (g0 * g0 + g * g) * 4 + (16 << 20), 64);
  samx_ctx_set_recording(&ctx, 0);
  for (int i = 0; i < out->params.n; i++) {
    SamxTensor *t = out->params.list[i];
    const char *n = t->name;
    // fresh by name (bs:142-144): the tokens and heads that depend on the number of masks
    if (strstr(n, "mask_tokens") || strstr(n, "output_hypernetworks_mlps") || strstr(n, "iou_prediction_head")) continue;
    SamxTensor *src = samx_params_find(&base->params, n);
    SAMX_ASSERT(src, "base SAM lacks %s", n);
    size_t mark = samx_ctx_mark(&ctx);
    if (!strcmp(n, "image_encoder.pos_embed") && g != g0) {
      // [1, g0, g0, D] -> [1, D, g0, g0] -> bilinear to g -> back
      SamxTensor *x = SAM_PERMUTE(&ctx, src, 0, 3, 1, 2);
      x = samx_resize_bilinear(&ctx, x, g, g);
      samx_tensor_copy(t, SAM_PERMUTE(&ctx, x, 0, 2, 3, 1));
    } else if (strstr(n, "rel_pos") && t->shape[0] != src->shape[0]) {
      // [L0, hd] as a [1, 1, L0, hd] image resized to (L, hd): linear along rows only
      SamxTensor *x = samx_reshape(&ctx, src, SHAPE(1, 1, src->shape[0], src->shape[1]));
      x = samx_resize_bilinear(&ctx, x, t->shape[0], t->shape[1]);
      samx_tensor_copy(t, samx_reshape(&ctx, x, samx_shape_of(t)));
    } else {
      samx_check_same_shape("p2sam_sam_from_base", t, src);
      samx_tensor_copy(t, src);
    }
    samx_ctx_release(&ctx, mark);
  }
  samx_ctx_free(&ctx);
  return 0;
}

SamxTensor *p2sam_encoder_input(SamxCtx *ctx, SamxTensor *pixels) {
  SamxTensor *parts[3] = {pixels, pixels, pixels};
  return samx_concat(ctx, parts, 3, 1);  // ref: load_LIDC_data.py: image.repeat(3, 1, 1); mean 0, std 1
}

// ---- the prompt-generation network ----

// ref: AxisAlignedConvGaussianPrior.forward (p2sam.py:52-59)
void p2sam_prior(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *pixels, SamxTensor **mu, SamxTensor **log_sigma) {
  SamxTensor *x = pixels;
  for (int b = 0; b < 4; b++) {
    if (b) x = samx_avg_pool2_ceil(ctx, x);  // nn.AvgPool2d(2, 2, ceil_mode=True): any input size
    for (int k = 0; k < 3; k++)
      x = samx_relu(ctx, samx_conv2d(ctx, x, param(mm, "prior_dense.encoder.layers.%d", PRIOR_LAYER[b][k], ".weight"),
                                     param(mm, "prior_dense.encoder.layers.%d", PRIOR_LAYER[b][k], ".bias"), 1, 1));
  }
  x = samx_mean_dim(ctx, samx_mean_dim(ctx, x, 3, 1), 2, 1);  // torch.mean(dim=(2, 3), keepdim=True)
  x = samx_conv2d(ctx, x, param(mm, "prior_dense.conv_layer", -1, ".weight"), param(mm, "prior_dense.conv_layer", -1, ".bias"), 1, 0);
  x = samx_reshape(ctx, x, SHAPE(pixels->shape[0], 2 * P2SAM_LATENT));
  *mu = samx_slice(ctx, x, 1, 0, P2SAM_LATENT);
  *log_sigma = samx_slice(ctx, x, 1, P2SAM_LATENT, 2 * P2SAM_LATENT);
}

// The prompt encoder without prompts: no_mask_embed broadcast to [P, C, g, g] (p:127-131).
static SamxTensor *no_mask_dense(SamxCtx *ctx, SamMethodModel *mm, int P) {
  SamModel *m = &mm->sam;
  int64_t C = m->cfg.prompt_dim, g = sam_embed_grid(&m->cfg);
  SamPrompt none;
  memset(&none, 0, sizeof none);
  SamxTensor *sparse, *dense;
  sam_prompt_encode(ctx, m, &none, 1, NULL, &sparse, &dense);
  return samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, C, g, g)), dense);
}

// ref: Fcomb.forward (p2sam.py:81-90): cat([feature_map, tile(z)]) -> layers -> last_layer
SamxTensor *p2sam_dense_prompt(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *z, int P) {
  SamxTensor *dense = no_mask_dense(ctx, mm, P);
  if (!z) return dense;
  int64_t g = dense->shape[2];
  SamxTensor *tiled = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, P2SAM_LATENT, g, g)),
                               samx_reshape(ctx, z, SHAPE(P, P2SAM_LATENT, 1, 1)));
  SamxTensor *parts[2] = {dense, tiled};
  SamxTensor *x = samx_concat(ctx, parts, 2, 1);
  for (int k = 0; k < 3; k++)
    x = samx_relu(ctx, samx_conv2d(ctx, x, param(mm, "fcomb.layers.%d", FCOMB_LAYER[k], ".weight"),
                                   param(mm, "fcomb.layers.%d", FCOMB_LAYER[k], ".bias"), 1, 0));
  return samx_conv2d(ctx, x, param(mm, "fcomb.last_layer", -1, ".weight"), param(mm, "fcomb.last_layer", -1, ".bias"), 1, 0);
}

// ref: P2SAM.forward's mask_decoder call (p2sam.py:139-145), multimask = tokens 1..8
SamxTensor *p2sam_decode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                         SamxTensor *dense) {
  int64_t P = dense->shape[0];
  SamxTensor *sparse = samx_zeros(ctx, SAMX_F32, SHAPE(P, 0, mm->sam.cfg.prompt_dim)), *low, *iou;
  sam_decode(ctx, &mm->sam, image_emb, img_index, sparse, dense, 1, &low, &iou);
  return low;
}

// ref: train_first_stage.py:145 weights_eight = cat(1 - w.sum(0), w)
SamxTensor *p2sam_weights(SamxCtx *ctx, SamMethodModel *mm) {
  SamxTensor *w = param(mm, "mask_weights.weights", -1, "");
  if (mm->variant == P2SAM_ASSEMBLE_CONVEX) {  // softmax([0, v1..v7])
    SamxTensor *parts[2] = {samx_zeros(ctx, SAMX_F32, SHAPE(1)), samx_reshape(ctx, w, SHAPE(P2SAM_MASKS - 1))};
    return samx_softmax(ctx, samx_concat(ctx, parts, 2, 0));
  }
  SamxTensor *w0 = samx_add_scalar(ctx, samx_scale(ctx, samx_sum(ctx, w), -1.0f), 1.0f);
  SamxTensor *parts[2] = {w0, samx_reshape(ctx, w, SHAPE(P2SAM_MASKS - 1))};
  return samx_concat(ctx, parts, 2, 0);
}

void p2sam_set_assemble(SamMethodModel *mm, int assemble) {
  mm->variant = assemble;
  samx_tensor_fill(param(mm, "mask_weights.weights", -1, ""), assemble == P2SAM_ASSEMBLE_CONVEX ? 0.0f : 1.0f / P2SAM_MASKS);
}

// ref: sam.postprocess_masks (bilinear 4g -> S; crop and resize to the same S are identities) and
// train_first_stage.py:146-147
void p2sam_assemble(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *low_res, SamxTensor **masks, SamxTensor **weighted,
                    SamxTensor **assembled) {
  int64_t S = mm->sam.cfg.img_size;
  SamxTensor *up = samx_resize_bilinear(ctx, low_res, S, S);
  SamxTensor *w = samx_reshape(ctx, p2sam_weights(ctx, mm), SHAPE(P2SAM_MASKS, 1, 1));
  SamxTensor *wm = samx_mul(ctx, up, w);
  if (masks) *masks = up;
  if (weighted) *weighted = wm;
  *assembled = samx_sum_dim(ctx, wm, 1, 1);
}

void p2sam_loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *weighted, SamxTensor *assembled, const float *target,
                float reg_weight, P2samLoss *out) {
  int64_t P = assembled->shape[0], S = assembled->shape[2], n = P * S * S;
  memset(out, 0, sizeof *out);
  int32_t *idx = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) idx[i] = target[i] > 0.5f;
  SamxTensor *t_idx = samx_new(ctx, SAMX_I32, SHAPE(P, S, S));
  samx_tensor_write(t_idx, idx);
  free(idx);
  SamxTensor *t = samx_from_host(ctx, SHAPE(P, 1, S, S), target);
  // ref: train_first_stage.py:149-150 CrossEntropyLoss()(logits_high, label)
  if (weighted) out->ce = samx_mean(ctx, samx_cross_entropy(ctx, weighted, t_idx));
  // ref: utils.py calculate_dice_loss: sums over the last axis only, one Dice per image row
  SamxDiceOpts d = {.from_logits = 1, .squared = 0, .eps = 1.0f, .reduction = SAMX_REDUCE_SUM, .per_sample = 1};
  out->dice = samx_scale(ctx, samx_soft_dice_loss(ctx, samx_reshape(ctx, assembled, SHAPE(P * S, S)),
                                                  samx_reshape(ctx, t, SHAPE(P * S, S)), &d), 0.2f);
  // ref: utils.py calculate_sigmoid_focal_loss: loss.mean(1) over the single channel, .sum() / 5
  out->focal = samx_scale(ctx, samx_sigmoid_focal_loss(ctx, assembled, t, 0.25f, 2.0f, SAMX_REDUCE_SUM), 0.2f);
  SamxTensor *total = samx_add(ctx, out->dice, out->focal);
  if (out->ce) total = samx_add(ctx, out->ce, total);
  if (reg_weight > 0) {
    // ref: train_second_stage.py:101 l2_regularisation(net.prior_dense) + l2_regularisation(net.fcomb.layers)
    for (int i = 0; i < mm->sam.params.n; i++) {
      SamxTensor *w = mm->sam.params.list[i];
      if (strncmp(w->name, "p2sam.prior_dense.", 18) && strncmp(w->name, "p2sam.fcomb.layers.", 19)) continue;
      SamxTensor *norm = samx_l2_norm(ctx, w);
      out->reg = out->reg ? samx_add(ctx, out->reg, norm) : norm;
    }
    total = samx_add(ctx, total, samx_scale(ctx, out->reg, reg_weight));
  }
  out->total = total;
}

void p2sam_optim_init(SamxOptim *o, SamMethodModel *mm, int stage, double weights_lr_mult, double weights_eps,
                      double weights_decay) {
  samx_optim_init(o, &mm->sam.params, samx_adam_config(0.0));
  if (stage != 1) return;
  int g = samx_optim_add_group(o, "p2sam.mask_weights.", weights_lr_mult, weights_decay);
  o->groups[g].eps = weights_eps;
  o->groups[g].decoupled_decay = 1;
}

// ---- the method's table ----

// z for the batch: mu + sigma eps with the batch's eps, or drawn from ctx's RNG.
static SamxTensor *sample_z(SamxCtx *ctx, SamxTensor *mu, SamxTensor *log_sigma, const float *eps) {
  if (!eps) return samx_gaussian_sample(ctx, mu, log_sigma);
  return samx_gaussian_reparam(ctx, mu, log_sigma, samx_from_host(ctx, samx_shape_of(mu), eps));
}

// Training: outs[0] = the assembled logit [P, 1, S, S], outs[1] = the 8 weighted maps [P, 8, S, S]
// (the CE's class logits), with z drawn in stage 2 (rsample). Otherwise n hypotheses, the assembled
// logits of n draws of z (stage 1: one, with the no_mask_embed prompt).
static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  SAMX_ASSERT(b->pixels, "P2SAM needs the batch's pixels (SamxMethodBatch.pixels)");
  int use_z = o->stage != 1;
  int n = training || !use_z ? 1 : (o->eval_masks ? o->eval_masks : o->masks);
  SamxTensor *mu = NULL, *log_sigma = NULL;
  if (use_z) p2sam_prior(ctx, mm, b->pixels, &mu, &log_sigma);
  for (int j = 0; j < n; j++) {
    SamxTensor *z = use_z ? sample_z(ctx, mu, log_sigma, b->eps && j == 0 ? b->eps : NULL) : NULL;
    SamxTensor *low = p2sam_decode(ctx, mm, b->image_emb, b->img_index, p2sam_dense_prompt(ctx, mm, z, b->P));
    p2sam_assemble(ctx, mm, low, NULL, training ? &outs[1] : NULL, &outs[j]);
  }
  return training ? 2 : n;
}

// Training: the stage's loss (p2sam_loss); validation: Dice + focal of the first hypothesis (what
// the authors' validation computes).
static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)m, (void)seed;
  P2samLoss l;
  p2sam_loss(ctx, mm, training ? outs[1] : NULL, outs[0], b->target, training && o->stage == 2 ? o->reg_weight : 0.0f, &l);
  return l.total;
}

const SamxMethodDef samx_method_p2sam = {
    .name = "p2sam",
    .fixed_masks = 0,
    .full_res = 1,
    .param_prefix = "p2sam.",
    .declare = declare,
    .init_params = init_params,
    .hypotheses = hypotheses,
    .loss = loss,
};
