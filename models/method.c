// The method registry and what every method shares: building the model around SAM, inference, and
// `samx train` checkpoints (models/method.h).
#include "models/method.h"

#include <jansson.h>
#include <string.h>

#include "engine/ops_common.h"
#include "train/config.h"

// In SamMethod order.
static const SamxMethodDef *const REGISTRY[SAM_METHOD_COUNT] = {&samx_method_samft, &samx_method_mcl, &samx_method_seqsam,
                                                                  &samx_method_p2sam,
                                                                 &samx_method_fewshot};

const SamxMethodDef *sam_method_def(SamMethod m) { return m >= 0 && m < SAM_METHOD_COUNT ? REGISTRY[m] : NULL; }

const char *sam_method_name(SamMethod m) { return sam_method_def(m) ? sam_method_def(m)->name : "?"; }

const char *sam_method_names(void) {
  static char names[256];
  if (!names[0])
    for (int i = 0; i < SAM_METHOD_COUNT; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", REGISTRY[i]->name);
  return names;
}

int sam_method_parse(const char *name, SamMethod *out) {
  for (int i = 0; i < SAM_METHOD_COUNT; i++)
    if (!strcmp(name, REGISTRY[i]->name)) {
      *out = (SamMethod)i;
      return 0;
    }
  return samx_fail("unknown method '%s' (%s)", name, sam_method_names());
}

SamxMethodOpts sam_method_opts_defaults(void) {
  SamxMethodOpts o = {.masks = 4, .bptt_logits = 1, .select = SAMX_SELECT_STRIDED, .dice_eps = 1e-5f, .bce_weight = 1.0f};
  return o;
}

void sam_method_init(SamMethodModel *mm, SamModel *sam, SamMethod method, int n_masks, int train_params, uint64_t seed,
                     float init_std) {
  const SamxMethodDef *def = sam_method_def(method);
  SAMX_ASSERT(def, "sam_method_init: method %d is not registered", (int)method);
  memset(mm, 0, sizeof *mm);
  mm->method = method;
  mm->def = def;
  mm->n_masks = def->fixed_masks ? def->fixed_masks : n_masks;
  mm->sam = *sam;
  memset(sam, 0, sizeof *sam);
  if (!def->declare) return;
  // The store is allocated in one block, so adding the method's parameters means a new store holding
  // the old values (SAM's parameters first, in their order, then the method's).
  SamxParams *old = &mm->sam.params, fresh;
  samx_params_init(&fresh);
  for (int i = 0; i < old->n; i++)
    samx_param(&fresh, old->list[i]->name, samx_shape_of(old->list[i]), old->list[i]->requires_grad);
  def->declare(&mm->sam, &fresh, train_params);
  samx_params_allocate(&fresh, mm->sam.device);  // zeroed
  for (int i = 0; i < old->n; i++) samx_tensor_copy(fresh.list[i], old->list[i]);
  samx_params_free(old);
  mm->sam.params = fresh;
  if (def->init_params) def->init_params(mm, seed, init_std);
}

void sam_method_free(SamMethodModel *mm) {
  sam_free(&mm->sam);
  memset(mm, 0, sizeof *mm);
}

SamxTensor *sam_method_encode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *images) {
  return mm->def->encode ? mm->def->encode(ctx, mm, images) : sam_encode(ctx, &mm->sam, images);
}

int sam_method_sam_outputs(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int multimask, SamxTensor **outs) {
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(ctx, &mm->sam, b->prompts, b->P, NULL, &sparse, &dense);
  sam_decode(ctx, &mm->sam, b->image_emb, b->img_index, sparse, dense, multimask, &low, &iou);
  int n = multimask ? (int)low->shape[1] : 1;
  for (int j = 0; j < n; j++) outs[j] = n == 1 ? low : samx_slice(ctx, low, 1, j, j + 1);
  return n;
}

void sam_method_predict(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                        const SamPrompt *prompts, int P, int n, SamxTensor **outs) {
  const SamxMethodDef *def = mm->def;
  SAMX_ASSERT(!def->fixed_masks || n == def->fixed_masks, "%s gives %d hypotheses, %d asked", def->name,
              def->fixed_masks, n);
  SamxMethodOpts o = sam_method_opts_defaults();
  o.masks = o.eval_masks = n;
  SamxMethodBatch b = {.image_emb = image_emb, .img_index = img_index, .prompts = prompts, .P = P};
  int got = def->hypotheses(ctx, mm, &b, 0, &o, outs);
  SAMX_ASSERT(got == n, "%s gave %d hypotheses, %d asked", def->name, got, n);
}

// ---- checkpoints ----

char *sam_method_meta_json(const SamMethodModel *mm, const char *base_checkpoint) {
  char *cfg = sam_config_json(&mm->sam.cfg);
  json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:s}", "format", "samx-train", "method", sam_method_name(mm->method),
                        "masks", mm->n_masks, "sam_config", json_loads(cfg, 0, NULL), "base_checkpoint",
                        base_checkpoint ? base_checkpoint : "");
  free(cfg);
  if (mm->variant) json_object_set_new(o, "variant", json_integer(mm->variant));  // absent: 0
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

// Inverse of sam_config_json.
static int config_from_json(json_t *o, SamConfig *c, const char *path) {
  static const struct {
    const char *key;
    size_t off;
  } ints[] = {
#define F(k) {#k, offsetof(SamConfig, k)}
      F(img_size), F(patch), F(enc_dim), F(enc_depth), F(enc_heads), F(enc_mlp), F(window), F(out_chans),
      F(qkv_bias), F(rel_pos), F(prompt_dim), F(mask_in_chans), F(dec_depth), F(dec_heads), F(dec_mlp),
      F(attn_downsample), F(num_mask_tokens), F(iou_depth), F(iou_hidden),
#undef F
  };
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    json_t *v = json_object_get(o, ints[i].key);
    if (!json_is_integer(v) && !json_is_boolean(v))
      return samx_fail("%s: metadata sam_config.%s is missing or not an integer", path, ints[i].key);
    *(int *)((char *)c + ints[i].off) = json_is_boolean(v) ? json_is_true(v) : (int)json_integer_value(v);
  }
  json_t *g = json_object_get(o, "global_blocks"), *eps = json_object_get(o, "ln_eps");
  if (!json_is_array(g) || !json_is_number(eps))
    return samx_fail("%s: metadata sam_config.global_blocks / ln_eps missing", path);
  for (size_t i = 0; i < json_array_size(g); i++) {
    json_int_t b = json_integer_value(json_array_get(g, i));
    if (b < 0 || b >= SAM_MAX_DEPTH) return samx_fail("%s: metadata sam_config.global_blocks holds %lld", path, (long long)b);
    c->global_block[b] = 1;
  }
  c->ln_eps = (float)json_number_value(eps);
  if (c->enc_depth < 1 || c->enc_depth > SAM_MAX_DEPTH || c->patch < 1 || c->img_size < c->patch || c->prompt_dim < 1 ||
      c->attn_downsample < 1 || c->dec_heads < 1 || c->prompt_dim % c->dec_heads ||
      (c->prompt_dim / c->attn_downsample) % c->dec_heads)
    return samx_fail("%s: metadata sam_config has impossible sizes (or dec_heads %d does not divide the decoder width)",
                     path, c->dec_heads);
  return 0;
}

// The `samx train` metadata of a checkpoint (a JSON object), or NULL when path is not one.
static json_t *train_meta(const char *path) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return NULL;
  const char *fmt = samx_st_meta(&st, "format"), *meta = samx_st_meta(&st, "meta");
  json_t *o = NULL;
  if (fmt && !strcmp(fmt, "samx-checkpoint") && meta) {
    o = json_loads(meta, 0, NULL);
    const char *f = json_string_value(json_object_get(o, "format"));
    if (!f || strcmp(f, "samx-train")) {
      json_decref(o);
      o = NULL;
    }
  }
  samx_st_close(&st);
  return o;
}

int sam_method_load_base(SamModel *m, const char *path, SamxDevice device, int trainable) {
  json_t *meta = train_meta(path);
  samx_clear_error();
  if (!meta) return sam_load(m, path, device, trainable, NULL);
  SamConfig cfg;
  int rc = config_from_json(json_object_get(meta, "sam_config"), &cfg, path);
  json_decref(meta);
  if (rc) return -1;
  sam_init_random(m, &cfg, device, trainable, 0);
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return -1;
  for (int i = 0; i < m->params.n && rc == 0; i++) {
    SamxTensor *t = m->params.list[i];
    const SamxSTEntry *e = samx_st_find(&st, t->name);
    if (!e) {
      rc = samx_fail("%s: tensor %s is missing (a checkpoint written with train.save_frozen = false is not a base)",
                     path, t->name);
    } else if (samx_st_load_into(&st, e, t) != 0) {
      rc = -1;
    }
  }
  samx_st_close(&st);
  if (rc) sam_free(m);
  return rc;
}

int sam_method_load(SamMethodModel *mm, const char *path, SamxDevice device, int trainable) {
  return sam_method_load_ex(mm, path, device, trainable, -1);
}

int sam_method_load_ex(SamMethodModel *mm, const char *path, SamxDevice device, int trainable, int train_params) {
  memset(mm, 0, sizeof *mm);
  json_t *meta = train_meta(path);
  if (!meta) return samx_fail("%s: not a `samx train` checkpoint (no samx-train metadata)", path);
  SamConfig cfg;
  SamMethod method = SAM_METHOD_SAMFT;
  json_t *masks = json_object_get(meta, "masks");
  const char *base = json_string_value(json_object_get(meta, "base_checkpoint"));
  int rc = config_from_json(json_object_get(meta, "sam_config"), &cfg, path);
  if (rc == 0) rc = sam_method_parse(json_string_value(json_object_get(meta, "method")) ? json_string_value(json_object_get(meta, "method")) : "", &method);
  if (rc == 0 && !json_is_integer(masks)) rc = samx_fail("%s: metadata 'masks' missing", path);
  if (rc) {
    json_decref(meta);
    return -1;
  }
  SamxSafetensors st;
  rc = samx_st_open(&st, path);
  int all = rc == 0 && samx_st_meta(&st, "params") && !strcmp(samx_st_meta(&st, "params"), "all");
  if (rc == 0) samx_st_close(&st);
  SamModel sam;
  if (rc == 0 && all) {
    sam_init_random(&sam, &cfg, device, trainable, 0);
  } else if (rc == 0) {
    // Only the trained weights are in the file: the frozen ones come from the base it started from.
    if (!base || !base[0]) rc = samx_fail("%s: holds only trained weights and names no base checkpoint", path);
    if (rc == 0 && sam_method_load_base(&sam, base, device, trainable) != 0)
      rc = samx_fail("%s: its base checkpoint: %s", path, samx_last_error());
  }
  const SamxMethodDef *def = sam_method_def(method);
  if (rc == 0 && def->prepare_load && def->prepare_load(path) != 0) {
    sam_free(&sam);
    rc = -1;
  }
  if (rc == 0) {
    sam_method_init(mm, &sam, method, (int)json_integer_value(masks),
                    train_params >= 0 ? train_params : (trainable & SAM_TRAIN_DECODER) != 0, 0, 0.0f);
    mm->variant = (int)json_integer_value(json_object_get(meta, "variant"));  // 0 when absent
    SamxCheckpoint ck = {.params = &mm->sam.params};
    rc = samx_checkpoint_load(path, &ck, NULL);
    if (rc) sam_method_free(mm);
  }
  json_decref(meta);
  return rc;
}

int sam_method_save_sam(const SamMethodModel *mm, const char *path) {
  // The method's parameters were declared after SAM's, so SAM's are the first ones of the store.
  SamModel view = mm->sam;
  const char *prefix = mm->def ? mm->def->param_prefix : NULL;
  if (prefix)
    while (view.params.n > 0 && !strncmp(view.params.list[view.params.n - 1]->name, prefix, strlen(prefix))) view.params.n--;
  return sam_save(&view, path);
}
