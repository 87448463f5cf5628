// SeqSAM's recurrent cell, its rollout and its Hungarian-matched set loss (models/seqsam/seqsam.h).
#include "seqsam.h"

#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "engine/ops_common.h"
#include "models/losses.h"
#include "train/config.h"

#define CELL "seqsam.cell"

static const char *const CONVS[2] = {CELL ".conv_out", CELL ".conv_hidden"};

static SamxTensor *param(const SamMethodModel *mm, const char *name) {
  SamxTensor *t = samx_params_find(&mm->sam.params, name);
  SAMX_ASSERT(t, "parameter %s missing (method %s)", name, sam_method_name(mm->method));
  return t;
}

// The cell: two 3x3 convolutions 2C -> C with bias.
static void declare(const SamModel *sam, SamxParams *store, int trainable) {
  int64_t C = sam->cfg.prompt_dim;
  char name[96];
  for (int k = 0; k < 2; k++) {
    snprintf(name, sizeof name, "%s.weight", CONVS[k]);
    samx_param(store, name, SHAPE(C, 2 * C, 3, 3), trainable);
    snprintf(name, sizeof name, "%s.bias", CONVS[k]);
    samx_param(store, name, SHAPE(C), trainable);
  }
}

// Weights N(0, init_std) (HF's init of new modules: 0.02); the biases stay 0.
static void init_params(SamMethodModel *mm, uint64_t seed, float init_std) {
  char name[96];
  for (int k = 0; k < 2; k++) {
    snprintf(name, sizeof name, "%s.weight", CONVS[k]);
    samx_randn_fill(param(mm, name), seed, (uint64_t)(k + 1) << 40, 0.0f, init_std);
  }
}

// A copy of t that is not on the tape (torch's .detach()).
static SamxTensor *detached(SamxCtx *ctx, SamxTensor *t) {
  SamxTensor *d = samx_new(ctx, t->dtype, samx_shape_of(t));
  samx_tensor_copy(d, t);
  return d;
}

void seqsam_rollout(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                    const SamPrompt *prompts, int P, int steps, int bptt_logits, SamxTensor **outs) {
  SAMX_ASSERT(mm->method == SAM_METHOD_SEQSAM, "seqsam_rollout on a %s model", sam_method_name(mm->method));
  SamModel *m = &mm->sam;
  int64_t C = m->cfg.prompt_dim, g = sam_embed_grid(&m->cfg);
  SamxTensor *w_out = param(mm, CELL ".conv_out.weight"), *b_out = param(mm, CELL ".conv_out.bias");
  SamxTensor *w_hid = param(mm, CELL ".conv_hidden.weight"), *b_hid = param(mm, CELL ".conv_hidden.bias");
  SamxTensor *hidden = samx_zeros(ctx, SAMX_F32, SHAPE(P, C, g, g)), *mask = NULL;
  for (int t = 0; t < steps; t++) {
    SamxTensor *sparse, *dense, *iou;
    sam_prompt_encode(ctx, m, prompts, P, mask, &sparse, &dense);
    if (dense->shape[0] != P) dense = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, C, g, g)), dense);
    SamxTensor *parts[2] = {dense, hidden};
    SamxTensor *x = samx_concat(ctx, parts, 2, 1);
    SamxTensor *dense_prompt = samx_conv2d(ctx, x, w_out, b_out, 1, 1);
    if (t + 1 < steps) hidden = samx_conv2d(ctx, x, w_hid, b_hid, 1, 1);
    sam_decode(ctx, m, image_emb, img_index, sparse, dense_prompt, 0, &outs[t], &iou);
    mask = bptt_logits ? outs[t] : detached(ctx, outs[t]);
  }
}

// Training: masks steps with the configured gradient path; otherwise eval_masks (or masks) steps.
static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  int m = training ? o->masks : (o->eval_masks ? o->eval_masks : o->masks);
  seqsam_rollout(ctx, mm, b->image_emb, b->img_index, b->prompts, b->P, m, training ? o->bptt_logits : 1, outs);
  return m;
}

// The Hungarian-matched soft-Dice set loss against every annotator; in training, with M > K, only
// the pooled outputs enter the matching (one draw per sample from seed).
static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)mm;
  int n = b->P, K = b->K;
  uint8_t *selected = NULL;
  if (training) {
    selected = (uint8_t *)malloc((size_t)n * m);
    for (int i = 0; i < n; i++) samx_seqsam_select(m, K, o->select, samx_hash4(seed, (uint64_t)i, 0, 0), selected + i * m);
  }
  SamxTensor *l = samx_set_dice_loss(ctx, outs, m, b->labels, b->valid, n, K, selected, o->identity_match, o->dice_eps, NULL);
  free(selected);
  return l;
}

const SamxMethodDef samx_method_seqsam = {
    .name = "seqsam",
    .fixed_masks = 0,
    .param_prefix = "seqsam.",
    .declare = declare,
    .init_params = init_params,
    .hypotheses = hypotheses,
    .loss = loss,
};
