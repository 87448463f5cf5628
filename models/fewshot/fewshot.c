// Few-shot decoders: target embeddings, the decoder with target-embedding tokens, the losses and the
// method table (models/fewshot/fewshot.h).
#include "models/fewshot/fewshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops_common.h"
#include "models/sam/sam_internal.h"

static SamxFewshotShape pending = {1, 1, 1};

void samx_fewshot_set_shape(SamxFewshotShape s) {
  SAMX_ASSERT(s.n_labels >= 1 && s.n_labels <= 64 && s.n_tokens >= 1 && s.n_shots >= 1, "fewshot shape L %d T %d S %d",
              s.n_labels, s.n_tokens, s.n_shots);
  pending = s;
}

SamxFewshotShape samx_fewshot_shape(const SamMethodModel *mm) {
  SamxTensor *tok = samx_params_find(&mm->sam.params, "fewshot.output_tokens.weight");
  SamxTensor *tgt = samx_params_find(&mm->sam.params, "fewshot.target_embeddings");
  SamxTensor *rows = samx_params_find(&mm->sam.params, "fewshot.shot_rows");
  SAMX_ASSERT(tok && tgt && rows, "not a fewshot model");
  SamxFewshotShape s = {(int)(tok->shape[0] / 2), (int)tgt->shape[0], (int)rows->shape[0]};
  return s;
}

// ---- target embeddings ----

int samx_fewshot_region_weights(const uint8_t *mask, int64_t h, int64_t w, int64_t img_size, int64_t g, float *weights) {
  int64_t cells = g * g;
  double scale = (double)img_size / (double)(h > w ? h : w), cell = (double)img_size / (double)g;
  int64_t *all = (int64_t *)calloc((size_t)cells, sizeof(int64_t)), *fg = (int64_t *)calloc((size_t)cells, sizeof(int64_t));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      int64_t cy = (int64_t)floor((y + 0.5) * scale / cell), cx = (int64_t)floor((x + 0.5) * scale / cell);
      if (cy >= g || cx >= g) continue;
      all[cy * g + cx]++;
      fg[cy * g + cx] += mask[y * w + x] != 0;
    }
  int any = 0, majority = 0;
  for (int64_t c = 0; c < cells; c++) {
    weights[c] = all[c] ? (float)fg[c] / (float)all[c] : 0.0f;
    any |= fg[c] > 0;
    majority |= weights[c] >= 0.5f;
  }
  if (majority)
    for (int64_t c = 0; c < cells; c++) weights[c] = weights[c] >= 0.5f ? 1.0f : 0.0f;
  free(all), free(fg);
  return !any ? -1 : majority ? 1 : 0;
}

void samx_fewshot_set_targets(SamMethodModel *mm, SamxTensor *emb, const float *wts, const int *label_ids,
                              const int64_t *shot_rows) {
  SamxFewshotShape s = samx_fewshot_shape(mm);
  int64_t S = emb->shape[0], C = emb->shape[1], g = emb->shape[2], L = s.n_labels, cells = g * g;
  SAMX_ASSERT(S == s.n_shots, "fewshot targets: %lld shots, the model was declared for %d", (long long)S, s.n_shots);
  SamxCtx ctx;
  samx_ctx_init(&ctx, emb->device, (size_t)(S * L * (C + cells + 1) + 4096) * sizeof(float) * 2, 64);
  SamxTensor *w = samx_new(&ctx, SAMX_F32, SHAPE(S, L, g, g));
  samx_tensor_write_f32(w, wts);
  SamxTensor *mean = samx_fewshot_masked_mean(&ctx, emb, w);
  float *host = (float *)malloc((size_t)(S * L * C) * sizeof(float)), *tgt = (float *)malloc((size_t)(s.n_tokens * C) * sizeof(float));
  float *lab = (float *)malloc((size_t)s.n_tokens * sizeof(float));
  samx_tensor_read_f32(mean, host);
  int t = 0;
  for (int64_t l = 0; l < L; l++)
    for (int64_t i = 0; i < S; i++) {
      double sum = 0;
      for (int64_t c = 0; c < cells; c++) sum += wts[(i * L + l) * cells + c];
      if (!(sum > 0)) continue;
      SAMX_ASSERT(t < s.n_tokens, "fewshot targets: more non-empty (shot, label) pairs than the %d declared", s.n_tokens);
      memcpy(tgt + (size_t)t * C, host + (i * L + l) * C, (size_t)C * sizeof(float));
      lab[t++] = (float)l;
    }
  SAMX_ASSERT(t == s.n_tokens, "fewshot targets: %d non-empty pairs, %d declared", t, s.n_tokens);
  samx_tensor_write_f32(samx_params_find(&mm->sam.params, "fewshot.target_embeddings"), tgt);
  samx_tensor_write_f32(samx_params_find(&mm->sam.params, "fewshot.target_labels"), lab);
  float *ids = (float *)malloc((size_t)L * sizeof(float)), *rows = (float *)malloc((size_t)S * sizeof(float));
  for (int64_t l = 0; l < L; l++) ids[l] = (float)label_ids[l];
  for (int64_t i = 0; i < S; i++) rows[i] = (float)shot_rows[i];
  samx_tensor_write_f32(samx_params_find(&mm->sam.params, "fewshot.label_ids"), ids);
  samx_tensor_write_f32(samx_params_find(&mm->sam.params, "fewshot.shot_rows"), rows);
  free(host), free(tgt), free(lab), free(ids), free(rows);
  samx_ctx_free(&ctx);
}

// ---- the decoder ----

SamxTensor *samx_fewshot_decode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index, int P) {
  SamModel *m = &mm->sam;
  int64_t C = m->cfg.prompt_dim;
  SamxTensor *out_tok = sam_param(m, "fewshot.output_tokens.weight"), *tgt = sam_param(m, "fewshot.target_embeddings");
  int64_t two_l = out_tok->shape[0], T = tgt->shape[0];
  // ref: MaskDecoder.predict_masks, tokens = [output tokens, sparse prompts] with the target
  // embeddings as the sparse prompts
  SamxTensor *parts[2] = {out_tok, tgt};
  SamxTensor *tokens = samx_reshape(ctx, samx_concat(ctx, parts, 2, 0), SHAPE(1, two_l + T, C));
  tokens = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, two_l + T, C)), tokens);
  // ref: PromptEncoder.forward without a mask: dense = no_mask_embed broadcast over the grid
  SamxTensor *dense = samx_reshape(ctx, sam_param(m, "prompt_encoder.no_mask_embed.weight"), SHAPE(1, C, 1, 1));
  SamxTensor *queries, *up;
  sam_decode_core(ctx, m, image_emb, img_index, tokens, dense, &queries, &up);
  return sam_decoder_masks(ctx, m, queries, 0, (int)two_l, "fewshot.hypernetworks_mlps", up);
}

// ---- losses ----

SamxTensor *samx_fewshot_loss(SamxCtx *ctx, SamxTensor *const *outs, int L, const float *targets, int P, int kind,
                              float eps) {
  int64_t hw = outs[0]->numel / P;
  float *t = (float *)malloc((size_t)(P * hw) * sizeof(float)), *tc = (float *)malloc((size_t)(P * hw) * sizeof(float));
  SamxTensor *total = NULL;
  for (int l = 0; l < L; l++) {
    for (int p = 0; p < P; p++)
      for (int64_t j = 0; j < hw; j++) {
        float y = targets[((size_t)p * L + l) * hw + j];
        t[p * hw + j] = y, tc[p * hw + j] = 1.0f - y;
      }
    SamxTensor *d = outs[l], *ty = samx_new(ctx, SAMX_F32, samx_shape_of(d));
    samx_tensor_write_f32(ty, t);
    SamxTensor *term;
    if (kind == SAMX_FEWSHOT_LOSS_CE) {
      term = samx_bce_with_logits(ctx, d, ty, SAMX_REDUCE_MEAN);
    } else {
      SamxDiceOpts o = {.from_logits = 1, .squared = 1, .eps = eps, .reduction = SAMX_REDUCE_MEAN, .per_sample = 1};
      SamxTensor *tb = samx_new(ctx, SAMX_F32, samx_shape_of(d));
      samx_tensor_write_f32(tb, tc);
      // the background channel's probability is sigmoid(bg - fg) = sigmoid(-d)
      SamxTensor *fg = samx_soft_dice_loss(ctx, d, ty, &o), *bg = samx_soft_dice_loss(ctx, samx_scale(ctx, d, -1.0f), tb, &o);
      term = samx_scale(ctx, samx_add(ctx, fg, bg), 0.5f);
    }
    total = total ? samx_add(ctx, total, term) : term;
  }
  free(t), free(tc);
  return samx_scale(ctx, total, 1.0f / (float)L);
}

// ---- the method table ----

static void declare(const SamModel *sam, SamxParams *store, int trainable) {
  int64_t C = sam->cfg.prompt_dim, two_l = 2 * pending.n_labels;
  samx_param(store, "fewshot.output_tokens.weight", SHAPE(two_l, C), trainable);
  for (int64_t j = 0; j < two_l; j++)
    for (int k = 0; k < 3; k++) {
      char name[128];
      snprintf(name, sizeof name, "mask_decoder.output_hypernetworks_mlps.0.layers.%d.weight", k);
      SamxTensor *w = samx_params_find(&sam->params, name);
      SAMX_ASSERT(w, "fewshot: SAM has no %s", name);
      snprintf(name, sizeof name, "fewshot.hypernetworks_mlps.%lld.layers.%d.weight", (long long)j, k);
      samx_param(store, name, samx_shape_of(w), trainable);
      snprintf(name, sizeof name, "fewshot.hypernetworks_mlps.%lld.layers.%d.bias", (long long)j, k);
      samx_param(store, name, SHAPE(w->shape[0]), trainable);
    }
  samx_param(store, "fewshot.target_embeddings", SHAPE(pending.n_tokens, C), 0);
  samx_param(store, "fewshot.target_labels", SHAPE(pending.n_tokens), 0);
  samx_param(store, "fewshot.label_ids", SHAPE(pending.n_labels), 0);
  samx_param(store, "fewshot.shot_rows", SHAPE(pending.n_shots), 0);
}

static void init_params(SamMethodModel *mm, uint64_t seed, float init_std) {
  (void)init_std;
  SamxParams *p = &mm->sam.params;
  SamxTensor *tok = samx_params_find(p, "fewshot.output_tokens.weight");
  // He initialisation (normal, fan_in = C): std sqrt(2 / C)
  samx_randn_fill(tok, seed, 0, 0.0f, sqrtf(2.0f / (float)tok->shape[1]));
  int64_t two_l = tok->shape[0];
  for (int64_t j = 0; j < two_l; j++)
    for (int k = 0; k < 3; k++)
      for (int b = 0; b < 2; b++) {
        char src[128], dst[128];
        snprintf(src, sizeof src, "mask_decoder.output_hypernetworks_mlps.0.layers.%d.%s", k, b ? "bias" : "weight");
        snprintf(dst, sizeof dst, "fewshot.hypernetworks_mlps.%lld.layers.%d.%s", (long long)j, k, b ? "bias" : "weight");
        samx_tensor_copy(samx_params_find(p, dst), samx_params_find(p, src));
      }
}

static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  (void)training, (void)o;
  SamxTensor *logits = samx_fewshot_decode(ctx, mm, b->image_emb, b->img_index, b->P);
  int L = (int)(logits->shape[1] / 2);
  for (int l = 0; l < L; l++)
    outs[l] = samx_sub(ctx, samx_slice(ctx, logits, 1, 2 * l, 2 * l + 1), samx_slice(ctx, logits, 1, 2 * l + 1, 2 * l + 2));
  return L;
}

static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)mm, (void)training, (void)seed;
  SAMX_ASSERT(b->K == m, "fewshot loss: %d label maps for %d labels", b->K, m);
  return samx_fewshot_loss(ctx, outs, m, b->labels, b->P, o->fewshot_loss, o->dice_eps);
}

// The shape of a checkpoint's fewshot tensors, so that declare makes them before they are loaded.
static int prepare_load(const char *path) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return -1;
  const SamxSTEntry *tok = samx_st_find(&st, "fewshot.output_tokens.weight"),
                    *tgt = samx_st_find(&st, "fewshot.target_embeddings"), *rows = samx_st_find(&st, "fewshot.shot_rows");
  int rc = 0;
  if (!tok || !tgt || !rows)
    rc = samx_fail("%s: a fewshot checkpoint without fewshot.output_tokens.weight / target_embeddings / shot_rows", path);
  else
    samx_fewshot_set_shape((SamxFewshotShape){(int)(tok->shape[0] / 2), (int)tgt->shape[0], (int)rows->shape[0]});
  samx_st_close(&st);
  return rc;
}

const SamxMethodDef samx_method_fewshot = {
    .name = "fewshot",
    .fixed_masks = 0,
    .param_prefix = "fewshot.",
    .declare = declare,
    .init_params = init_params,
    .hypotheses = hypotheses,
    .loss = loss,
    .prepare_load = prepare_load,
};
