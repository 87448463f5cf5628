// SAM parameters: declaration under the original key names, architecture inference from the
// checkpoint's shapes (contracts §1), loading from .pth / safetensors (original or HF names).
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sam.h"
#include "sam_internal.h"

int sam_embed_grid(const SamConfig *c) { return c->img_size / c->patch; }

SamxTensor *sam_param(const SamModel *m, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  SamxTensor *t = samx_params_find(&m->params, name);
  SAMX_ASSERT(t, "SAM parameter %s is not declared", name);
  return t;
}

// ---- named tensor sources: a .pth archive or a safetensors file, with names mapped to SAM's ----

typedef struct {
  const SamxSTEntry *e;
  char name[256];  // original segment_anything name
  int used;
} Source;

typedef struct {
  int is_torch;
  SamxTorchCkpt torch;
  SamxSafetensors st;
  Source *src;
  int n;
  const char *path;
} Sources;

// Hugging Face SamModel names -> segment_anything names (transformers' convert_sam_to_hf, inverted).
static void hf_to_sam(const char *in, char *out, size_t n) {
  static const char *const rules[][2] = {
      {"vision_encoder.patch_embed.projection.", "image_encoder.patch_embed.proj."},
      {"vision_encoder.neck.conv1.", "image_encoder.neck.0."},
      {"vision_encoder.neck.layer_norm1.", "image_encoder.neck.1."},
      {"vision_encoder.neck.conv2.", "image_encoder.neck.2."},
      {"vision_encoder.neck.layer_norm2.", "image_encoder.neck.3."},
      {"vision_encoder.layers.", "image_encoder.blocks."},
      {"vision_encoder.", "image_encoder."},
      {"shared_image_embedding.positional_embedding", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"},
      // SamModel.state_dict() also holds the prompt encoder's reference to the same (tied) buffer
      {"prompt_encoder.shared_embedding.positional_embedding", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"},
      {"prompt_encoder.mask_embed.conv1.", "prompt_encoder.mask_downscaling.0."},
      {"prompt_encoder.mask_embed.layer_norm1.", "prompt_encoder.mask_downscaling.1."},
      {"prompt_encoder.mask_embed.conv2.", "prompt_encoder.mask_downscaling.3."},
      {"prompt_encoder.mask_embed.layer_norm2.", "prompt_encoder.mask_downscaling.4."},
      {"prompt_encoder.mask_embed.conv3.", "prompt_encoder.mask_downscaling.6."},
      {"prompt_encoder.point_embed.", "prompt_encoder.point_embeddings."},
      {"mask_decoder.upscale_conv1.", "mask_decoder.output_upscaling.0."},
      {"mask_decoder.upscale_layer_norm.", "mask_decoder.output_upscaling.1."},
      {"mask_decoder.upscale_conv2.", "mask_decoder.output_upscaling.3."},
      {"mask_decoder.transformer.layer_norm_final_attn.", "mask_decoder.transformer.norm_final_attn."},
  };
  snprintf(out, n, "%s", in);
  for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
    size_t k = strlen(rules[i][0]);
    if (!strncmp(in, rules[i][0], k)) {
      snprintf(out, n, "%s%s", rules[i][1], in + k);
      break;
    }
  }
  // Block-local renames: layer_normN -> normN; HF's MLP proj_in / layers.i / proj_out -> layers.0..L-1.
  char *p;
  if ((p = strstr(out, ".layer_norm")) && p[11] >= '1' && p[11] <= '4' && p[12] == '.') {
    memmove(p + 5, p + 11, strlen(p + 11) + 1);
    memcpy(p, ".norm", 5);
  }
  if (strstr(out, "output_hypernetworks_mlps.") || strstr(out, "iou_prediction_head.")) {
    char tmp[600];
    if ((p = strstr(out, ".proj_in."))) {
      *p = 0;
      int len = snprintf(tmp, sizeof tmp, "%s.layers.0.%s", out, p + 9);
      if (len < (int)n) memcpy(out, tmp, (size_t)len + 1);
    } else if ((p = strstr(out, ".layers.")) && p[8] >= '0' && p[8] <= '9' && p[9] == '.') {
      p[8] = (char)(p[8] + 1);  // HF's hidden layers are numbered after proj_in
    } else if ((p = strstr(out, ".proj_out."))) {
      *p = 0;
      // SAM's hypernetwork MLPs always have 3 layers; the IoU head's index is set once its depth is known
      const char *last = strstr(out, "output_hypernetworks_mlps.") ? "2" : "@";
      int len = snprintf(tmp, sizeof tmp, "%s.layers.%s.%s", out, last, p + 10);
      if (len < (int)n) memcpy(out, tmp, (size_t)len + 1);
    }
  }
}

// Sources named as the entries are (the caller has mapped them to SAM's keys).
static void sources_from_entries(Sources *s, const char *path, const SamxSTEntry *entries, int n) {
  memset(s, 0, sizeof *s);
  s->path = path;
  s->n = n;
  s->src = (Source *)calloc((size_t)n + 1, sizeof(Source));
  for (int i = 0; i < n; i++) {
    s->src[i].e = &entries[i];
    snprintf(s->src[i].name, sizeof s->src[i].name, "%s", entries[i].name);
  }
}

static int open_sources(Sources *s, const char *path) {
  memset(s, 0, sizeof *s);
  s->path = path;
  FILE *f = fopen(path, "rb");
  unsigned char head[9] = {0};
  size_t got = f ? fread(head, 1, 9, f) : 0;
  if (f) fclose(f);
  if (!f) return samx_fail("%s: cannot open checkpoint", path);
  const SamxSTEntry *entries;
  if (got == 9 && head[0] == 'P' && head[1] == 'K') {
    if (samx_torch_load(&s->torch, path)) return -1;
    s->is_torch = 1;
    entries = s->torch.entries;
    s->n = s->torch.n;
  } else {
    if (samx_st_open(&s->st, path)) return -1;
    entries = s->st.entries;
    s->n = s->st.n;
  }
  s->src = (Source *)calloc((size_t)s->n + 1, sizeof(Source));
  int hf = 0;
  for (int i = 0; i < s->n; i++) hf |= !strncmp(entries[i].name, "vision_encoder.", 15);
  int hyper_last = -1;  // HF numbers hidden layers 0..L-3 after proj_in: find L for proj_out
  for (int i = 0; i < s->n; i++) {
    s->src[i].e = &entries[i];
    if (hf)
      hf_to_sam(entries[i].name, s->src[i].name, sizeof s->src[i].name);
    else
      snprintf(s->src[i].name, sizeof s->src[i].name, "%s", entries[i].name);
    const char *p = strstr(s->src[i].name, "iou_prediction_head.layers.");
    if (p && p[27] >= '0' && p[27] <= '9' && p[27] - '0' > hyper_last) hyper_last = p[27] - '0';
  }
  for (int i = 0; i < s->n; i++) {  // proj_out is the layer after the last hidden one
    char *at = strstr(s->src[i].name, ".layers.@.");
    if (at) at[8] = (char)('0' + hyper_last + 1);
  }
  return 0;
}

static void close_sources(Sources *s) {
  if (s->is_torch)
    samx_torch_free(&s->torch);
  else if (s->src)
    samx_st_close(&s->st);
  free(s->src);
  memset(s, 0, sizeof *s);
}

static const SamxSTEntry *source_find(Sources *s, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->src[i].name, name)) return s->src[i].e;
  return NULL;
}

// A size read off a checkpoint's shape; -1 when absent, zero or beyond any SAM (the config checks
// then refuse the file: a hostile shape must give an error, not a division by zero).
static int64_t dim_of(const SamxSTEntry *e, int i) {
  return e && i < e->ndim && e->shape[i] >= 1 && e->shape[i] <= (1 << 20) ? e->shape[i] : -1;
}

// Every size the architecture divides or allocates by must be positive and divide as SAM needs.
static int check_config(const Sources *s, const SamConfig *c) {
  const struct {
    const char *what;
    int v;
  } dims[] = {{"encoder width", c->enc_dim},   {"patch size", c->patch},          {"image size", c->img_size},
              {"encoder heads", c->enc_heads}, {"encoder MLP width", c->enc_mlp}, {"window", c->window},
              {"prompt width", c->prompt_dim}, {"mask channels", c->mask_in_chans}, {"decoder MLP width", c->dec_mlp},
              {"attention downsampling", c->attn_downsample}, {"mask tokens", c->num_mask_tokens},
              {"IoU head width", c->iou_hidden}};
  for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
    if (dims[i].v < 1 || dims[i].v > (1 << 16))
      return samx_fail("%s: its tensor shapes give %s = %d (not a SAM checkpoint?)", s->path, dims[i].what, dims[i].v);
  if (c->enc_dim % c->enc_heads)
    return samx_fail("%s: encoder width %d is not a multiple of its %d heads", s->path, c->enc_dim, c->enc_heads);
  if (c->prompt_dim % c->attn_downsample || (c->prompt_dim / c->attn_downsample) % c->dec_heads)
    return samx_fail("%s: decoder attention width %d / %d is not a multiple of its %d heads", s->path, c->prompt_dim,
                     c->attn_downsample, c->dec_heads);
  return 0;
}

// ---- architecture from shapes ----

static int count_indexed(Sources *s, const char *fmt) {
  int n = 0;
  while (source_find(s, fmt, n)) n++;
  return n;
}

static int infer_config(Sources *s, SamConfig *c) {
  memset(c, 0, sizeof *c);
  const SamxSTEntry *pos = source_find(s, "image_encoder.pos_embed");
  const SamxSTEntry *pw = source_find(s, "image_encoder.patch_embed.proj.weight");
  const SamxSTEntry *pe = source_find(s, "prompt_encoder.point_embeddings.0.weight");
  const SamxSTEntry *md = source_find(s, "prompt_encoder.mask_downscaling.3.weight");
  const SamxSTEntry *mt = source_find(s, "mask_decoder.mask_tokens.weight");
  const SamxSTEntry *ca = source_find(s, "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight");
  const SamxSTEntry *dm = source_find(s, "mask_decoder.transformer.layers.0.mlp.lin1.weight");
  const SamxSTEntry *ih = source_find(s, "mask_decoder.iou_prediction_head.layers.0.weight");
  const char *need[] = {"image_encoder.pos_embed", "image_encoder.patch_embed.proj.weight",
                        "prompt_encoder.point_embeddings.0.weight", "prompt_encoder.mask_downscaling.3.weight",
                        "mask_decoder.mask_tokens.weight",
                        "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
                        "mask_decoder.transformer.layers.0.mlp.lin1.weight",
                        "mask_decoder.iou_prediction_head.layers.0.weight"};
  const SamxSTEntry *got[] = {pos, pw, pe, md, mt, ca, dm, ih};
  for (int i = 0; i < 8; i++)
    if (!got[i] || got[i]->ndim < 2)
      return samx_fail("%s: missing tensor %s (needed to read the architecture)", s->path, need[i]);
  c->enc_dim = (int)dim_of(pos, 3);
  int grid = (int)dim_of(pos, 1);
  c->patch = (int)dim_of(pw, 2);
  int64_t img_size = (int64_t)grid * c->patch;
  c->img_size = img_size > 0 && img_size <= (1 << 16) ? (int)img_size : -1;
  c->enc_depth = count_indexed(s, "image_encoder.blocks.%d.norm1.weight");
  if (c->enc_depth < 1 || c->enc_depth > SAM_MAX_DEPTH)
    return samx_fail("%s: %d encoder blocks (1..%d supported)", s->path, c->enc_depth, SAM_MAX_DEPTH);
  const SamxSTEntry *l1 = source_find(s, "image_encoder.blocks.0.mlp.lin1.weight");
  c->enc_mlp = (int)dim_of(l1, 0);
  c->qkv_bias = source_find(s, "image_encoder.blocks.0.attn.qkv.bias") != NULL;
  c->rel_pos = source_find(s, "image_encoder.blocks.0.attn.rel_pos_h") != NULL;
  int window = 0;
  for (int i = 0; i < c->enc_depth; i++) {
    const SamxSTEntry *rh = source_find(s, "image_encoder.blocks.%d.attn.rel_pos_h", i);
    int64_t len = dim_of(rh, 0);
    if (c->rel_pos) {
      if (!rh) return samx_fail("%s: missing tensor image_encoder.blocks.%d.attn.rel_pos_h", s->path, i);
      int size = (int)(len + 1) / 2;
      c->global_block[i] = size == grid;
      if (size != grid) window = size;
      if (i == 0 || !c->enc_heads) c->enc_heads = c->enc_dim / (int)dim_of(rh, 1);
    }
  }
  if (!c->rel_pos) {  // no tables: SAM's ViT-B layout (global blocks at depth/4 - 1 steps) and 12 heads-per-768
    c->enc_heads = c->enc_dim / 64;
    for (int i = 0; i < c->enc_depth; i++) c->global_block[i] = (i + 1) % (c->enc_depth / 4 ? c->enc_depth / 4 : 1) == 0;
    window = 14;
  }
  c->window = window ? window : grid;
  c->out_chans = (int)dim_of(source_find(s, "image_encoder.neck.0.weight"), 0);
  c->prompt_dim = (int)dim_of(pe, 1);
  c->mask_in_chans = (int)dim_of(md, 0);
  c->dec_depth = count_indexed(s, "mask_decoder.transformer.layers.%d.norm1.weight");
  c->dec_heads = 8;
  c->dec_mlp = (int)dim_of(dm, 0);
  c->attn_downsample = c->prompt_dim / (int)dim_of(ca, 0);
  c->num_mask_tokens = (int)dim_of(mt, 0);
  c->iou_depth = count_indexed(s, "mask_decoder.iou_prediction_head.layers.%d.weight");
  c->iou_hidden = (int)dim_of(ih, 0);
  c->ln_eps = 1e-6f;
  if (c->out_chans != c->prompt_dim)
    return samx_fail("%s: image embedding has %d channels but the prompt encoder %d", s->path, c->out_chans,
                     c->prompt_dim);
  return check_config(s, c);
}

// ---- declaration ----

typedef struct {
  SamxParams *p;
  int trainable;
  char prefix[160];
} Decl;

static void decl(Decl *d, const char *suffix, SamxShape s) {
  char name[512];
  snprintf(name, sizeof name, "%s%s", d->prefix, suffix);
  samx_param(d->p, name, s, d->trainable);
}

static void decl_linear(Decl *d, const char *name, int64_t out, int64_t in, int bias) {
  char k[200];
  snprintf(k, sizeof k, "%s.weight", name);
  decl(d, k, SHAPE(out, in));
  if (bias) {
    snprintf(k, sizeof k, "%s.bias", name);
    decl(d, k, SHAPE(out));
  }
}

static void decl_norm(Decl *d, const char *name, int64_t c) {
  char k[200];
  snprintf(k, sizeof k, "%s.weight", name);
  decl(d, k, SHAPE(c));
  snprintf(k, sizeof k, "%s.bias", name);
  decl(d, k, SHAPE(c));
}

static void decl_conv(Decl *d, const char *name, int64_t a, int64_t b, int64_t k, int bias, int64_t bias_len) {
  char key[200];
  snprintf(key, sizeof key, "%s.weight", name);
  decl(d, key, SHAPE(a, b, k, k));
  if (bias) {
    snprintf(key, sizeof key, "%s.bias", name);
    decl(d, key, SHAPE(bias_len));
  }
}

static void declare_encoder(SamModel *m, Decl *d) {
  const SamConfig *c = &m->cfg;
  int g = sam_embed_grid(c), hd = c->enc_dim / c->enc_heads;
  snprintf(d->prefix, sizeof d->prefix, "image_encoder.");
  decl_conv(d, "patch_embed.proj", c->enc_dim, 3, c->patch, 1, c->enc_dim);
  decl(d, "pos_embed", SHAPE(1, g, g, c->enc_dim));
  for (int i = 0; i < c->enc_depth; i++) {
    snprintf(d->prefix, sizeof d->prefix, "image_encoder.blocks.%d.", i);
    int size = c->global_block[i] ? g : c->window;
    decl_norm(d, "norm1", c->enc_dim);
    decl_linear(d, "attn.qkv", 3 * c->enc_dim, c->enc_dim, c->qkv_bias);
    decl_linear(d, "attn.proj", c->enc_dim, c->enc_dim, 1);
    if (c->rel_pos) {
      decl(d, "attn.rel_pos_h", SHAPE(2 * size - 1, hd));
      decl(d, "attn.rel_pos_w", SHAPE(2 * size - 1, hd));
    }
    decl_norm(d, "norm2", c->enc_dim);
    decl_linear(d, "mlp.lin1", c->enc_mlp, c->enc_dim, 1);
    decl_linear(d, "mlp.lin2", c->enc_dim, c->enc_mlp, 1);
  }
  snprintf(d->prefix, sizeof d->prefix, "image_encoder.neck.");
  decl_conv(d, "0", c->out_chans, c->enc_dim, 1, 0, 0);
  decl_norm(d, "1", c->out_chans);
  decl_conv(d, "2", c->out_chans, c->out_chans, 3, 0, 0);
  decl_norm(d, "3", c->out_chans);
}

static void declare_prompt(SamModel *m, Decl *d) {
  const SamConfig *c = &m->cfg;
  int C = c->prompt_dim, mic = c->mask_in_chans;
  snprintf(d->prefix, sizeof d->prefix, "prompt_encoder.");
  int t = d->trainable;
  d->trainable = 0;  // a fixed random buffer in SAM, never trained
  decl(d, "pe_layer.positional_encoding_gaussian_matrix", SHAPE(2, C / 2));
  d->trainable = t;
  for (int i = 0; i < 4; i++) {
    char k[64];
    snprintf(k, sizeof k, "point_embeddings.%d.weight", i);
    decl(d, k, SHAPE(1, C));
  }
  decl(d, "not_a_point_embed.weight", SHAPE(1, C));
  decl_conv(d, "mask_downscaling.0", mic / 4, 1, 2, 1, mic / 4);
  decl_norm(d, "mask_downscaling.1", mic / 4);
  decl_conv(d, "mask_downscaling.3", mic, mic / 4, 2, 1, mic);
  decl_norm(d, "mask_downscaling.4", mic);
  decl_conv(d, "mask_downscaling.6", C, mic, 1, 1, C);
  decl(d, "no_mask_embed.weight", SHAPE(1, C));
}

static void decl_attention(Decl *d, const char *name, int64_t C, int64_t inner) {
  const char *proj[] = {"q_proj", "k_proj", "v_proj"};
  char k[200];
  for (int i = 0; i < 3; i++) {
    snprintf(k, sizeof k, "%s.%s", name, proj[i]);
    decl_linear(d, k, inner, C, 1);
  }
  snprintf(k, sizeof k, "%s.out_proj", name);
  decl_linear(d, k, C, inner, 1);
}

static void decl_mlp(Decl *d, const char *name, int64_t in, int64_t hidden, int64_t out, int layers) {
  char k[200];
  for (int i = 0; i < layers; i++) {
    snprintf(k, sizeof k, "%s.layers.%d", name, i);
    decl_linear(d, k, i == layers - 1 ? out : hidden, i == 0 ? in : hidden, 1);
  }
}

static void declare_decoder(SamModel *m, Decl *d) {
  const SamConfig *c = &m->cfg;
  int64_t C = c->prompt_dim, inner = C / c->attn_downsample;
  for (int i = 0; i < c->dec_depth; i++) {
    snprintf(d->prefix, sizeof d->prefix, "mask_decoder.transformer.layers.%d.", i);
    decl_attention(d, "self_attn", C, C);
    decl_norm(d, "norm1", C);
    decl_attention(d, "cross_attn_token_to_image", C, inner);
    decl_norm(d, "norm2", C);
    decl_linear(d, "mlp.lin1", c->dec_mlp, C, 1);
    decl_linear(d, "mlp.lin2", C, c->dec_mlp, 1);
    decl_norm(d, "norm3", C);
    decl_norm(d, "norm4", C);
    decl_attention(d, "cross_attn_image_to_token", C, inner);
  }
  snprintf(d->prefix, sizeof d->prefix, "mask_decoder.");
  decl_attention(d, "transformer.final_attn_token_to_image", C, inner);
  decl_norm(d, "transformer.norm_final_attn", C);
  decl(d, "iou_token.weight", SHAPE(1, C));
  decl(d, "mask_tokens.weight", SHAPE(c->num_mask_tokens, C));
  decl_conv(d, "output_upscaling.0", C, C / 4, 2, 1, C / 4);
  decl_norm(d, "output_upscaling.1", C / 4);
  decl_conv(d, "output_upscaling.3", C / 4, C / 8, 2, 1, C / 8);
  for (int i = 0; i < c->num_mask_tokens; i++) {
    char k[64];
    snprintf(k, sizeof k, "output_hypernetworks_mlps.%d", i);
    decl_mlp(d, k, C, C, C / 8, 3);
  }
  decl_mlp(d, "iou_prediction_head", C, c->iou_hidden, c->num_mask_tokens, c->iou_depth);
}

static int is_ignored(const char *name) {
  return !strcmp(name, "pixel_mean") || !strcmp(name, "pixel_std");  // non-persistent buffers in SAM
}

static int load_values(SamModel *m, Sources *s) {
  for (int i = 0; i < m->params.n; i++) {
    SamxTensor *t = m->params.list[i];
    Source *hit = NULL;
    for (int k = 0; k < s->n && !hit; k++)
      if (!strcmp(s->src[k].name, t->name)) hit = &s->src[k];
    if (!hit) return samx_fail("%s: missing tensor %s", s->path, t->name);
    for (int k = 0; k < s->n; k++)  // aliases of a tied tensor (HF's positional_embedding) are consumed too
      if (!strcmp(s->src[k].name, t->name)) s->src[k].used = 1;
    SamxSafetensors holder = {.path = (char *)s->path};
    if (samx_st_load_into(&holder, hit->e, t)) return -1;
  }
  for (int k = 0; k < s->n; k++)
    if (!s->src[k].used && !is_ignored(s->src[k].name))
      return samx_fail("%s: unexpected tensor %s (not part of the SAM architecture read off the shapes)", s->path,
                       s->src[k].e->name);
  return 0;
}

static void declare_all(SamModel *m, int trainable);

// SAM's Attention asserts internal_dim % num_heads == 0, for the self-attention (width C) and the
// cross-attentions (C / attn_downsample).
static int check_dec_heads(const SamConfig *c, const char *what) {
  int inner = c->prompt_dim / (c->attn_downsample ? c->attn_downsample : 1);
  if (c->dec_heads < 1 || c->prompt_dim % c->dec_heads || inner % c->dec_heads)
    return samx_fail("%s: %d decoder heads do not divide the decoder's widths %d and %d", what, c->dec_heads,
                     c->prompt_dim, inner);
  return 0;
}

// The head counts cannot be read off tensor shapes: samx's own safetensors (sam_save) record them in
// their samx_config metadata; other formats keep SAM's (8 decoder heads).
static int read_samx_config(Sources *s, SamConfig *c) {
  const char *meta = s->is_torch ? NULL : samx_st_meta(&s->st, "samx_config");
  if (!meta) return 0;
  json_t *o = json_loads(meta, 0, NULL);
  json_t *v = json_object_get(o, "dec_heads");
  int rc = 0;
  if (!json_is_integer(v)) {
    rc = samx_fail("%s: metadata samx_config has no integer dec_heads", s->path);
  } else {
    c->dec_heads = (int)json_integer_value(v);
    char what[600];
    snprintf(what, sizeof what, "%s: metadata samx_config.dec_heads", s->path);
    rc = check_dec_heads(c, what);
  }
  json_decref(o);
  return rc;
}

static int load_from_sources(SamModel *m, Sources *s, SamxDevice device, int trainable, const SamConfig *cfg_override);

int sam_load(SamModel *m, const char *path, SamxDevice device, int trainable, const SamConfig *cfg_override) {
  memset(m, 0, sizeof *m);
  Sources s;
  if (open_sources(&s, path)) return -1;
  int rc = load_from_sources(m, &s, device, trainable, cfg_override);
  close_sources(&s);
  return rc;
}

int sam_load_entries(SamModel *m, const char *path, const SamxSTEntry *entries, int n, SamxDevice device, int trainable) {
  memset(m, 0, sizeof *m);
  Sources s;
  sources_from_entries(&s, path, entries, n);
  int rc = load_from_sources(m, &s, device, trainable, NULL);
  free(s.src);
  return rc;
}

static int load_from_sources(SamModel *m, Sources *s, SamxDevice device, int trainable, const SamConfig *cfg_override) {
  int rc = infer_config(s, &m->cfg);
  if (rc == 0) rc = read_samx_config(s, &m->cfg);
  if (rc == 0 && cfg_override && cfg_override->dec_heads) {
    m->cfg.dec_heads = cfg_override->dec_heads;
    rc = check_dec_heads(&m->cfg, "the requested decoder head count");
  }
  if (rc == 0) {
    m->device = device;
    declare_all(m, trainable);
    samx_params_allocate(&m->params, device);
    rc = load_values(m, s);
    if (rc) samx_params_free(&m->params);
  }
  return rc;
}

static void declare_all(SamModel *m, int trainable) {
  samx_params_init(&m->params);
  Decl d = {.p = &m->params};
  d.trainable = (trainable & SAM_TRAIN_ENCODER) != 0;
  declare_encoder(m, &d);
  d.trainable = (trainable & SAM_TRAIN_PROMPT) != 0;
  declare_prompt(m, &d);
  d.trainable = (trainable & SAM_TRAIN_DECODER) != 0;
  declare_decoder(m, &d);
}

int sam_config_preset(const char *name, SamConfig *c) {
  static const struct {
    const char *name;
    int img, patch, dim, depth, heads, mlp, window, globals[4], prompt, dec_mlp, iou_hidden;
  } presets[] = {
      {"vit_b", 1024, 16, 768, 12, 12, 3072, 14, {2, 5, 8, 11}, 256, 2048, 256},
      {"vit_l", 1024, 16, 1024, 24, 16, 4096, 14, {5, 11, 17, 23}, 256, 2048, 256},
      {"vit_h", 1024, 16, 1280, 32, 16, 5120, 14, {7, 15, 23, 31}, 256, 2048, 256},
      {"tiny", 160, 16, 64, 4, 2, 256, 4, {1, 3, -1, -1}, 64, 128, 64},
  };
  for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
    if (strcmp(presets[i].name, name)) continue;
    memset(c, 0, sizeof *c);
    c->img_size = presets[i].img, c->patch = presets[i].patch, c->enc_dim = presets[i].dim;
    c->enc_depth = presets[i].depth, c->enc_heads = presets[i].heads, c->enc_mlp = presets[i].mlp;
    c->window = presets[i].window, c->out_chans = presets[i].prompt, c->qkv_bias = 1, c->rel_pos = 1;
    for (int k = 0; k < 4; k++)
      if (presets[i].globals[k] >= 0) c->global_block[presets[i].globals[k]] = 1;
    c->prompt_dim = presets[i].prompt, c->mask_in_chans = 16, c->dec_depth = 2, c->dec_heads = 8;
    c->dec_mlp = presets[i].dec_mlp, c->attn_downsample = 2, c->num_mask_tokens = 4, c->iou_depth = 3;
    c->iou_hidden = presets[i].iou_hidden, c->ln_eps = 1e-6f;
    return 0;
  }
  return samx_fail("unknown SAM architecture '%s' (vit_b, vit_l, vit_h, tiny)", name);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

void sam_init_random(SamModel *m, const SamConfig *c, SamxDevice device, int trainable, uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->cfg = *c;
  m->device = device;
  declare_all(m, trainable);
  samx_params_allocate(&m->params, device);  // zeroed: biases, pos_embed, rel-pos tables stay 0
  for (int i = 0; i < m->params.n; i++) {
    SamxTensor *t = m->params.list[i];
    const char *n = t->name;
    if (ends_with(n, ".bias") || strstr(n, "pos_embed") || strstr(n, "rel_pos")) continue;
    if (t->ndim == 1) {
      samx_tensor_fill(t, 1.0f);  // LayerNorm / LayerNorm2d scales
    } else if (strstr(n, "gaussian_matrix") || strstr(n, "embeddings.") || strstr(n, "_embed.weight") ||
               ends_with(n, "iou_token.weight") || ends_with(n, "mask_tokens.weight")) {
      // Only the token tables: a substring "_token" also matched the decoder's cross-attention
      // projections (cross_attn_token_to_image, ...), drawing them from N(0, 1) instead of
      // U(+-1/sqrt(fan_in)), 14x too large (bench/results/2026-12-06-standin).
      samx_randn_fill(t, seed, (uint64_t)i << 32, 0.0f, 1.0f);  // nn.Embedding and torch.randn buffers
    } else {
      // nn.Linear / nn.Conv2d default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      // ConvTranspose2d stores [in, out, k, k]; PyTorch computes its fan_in from dim 1 as well.
      int64_t fan_in = t->numel / t->shape[0];
      float bound = 1.0f / sqrtf((float)fan_in);
      samx_rand_uniform_fill(t, seed, (uint64_t)i << 32, -bound, bound);
    }
  }
}

void sam_free(SamModel *m) {
  samx_params_free(&m->params);
  free(m->dense_pe);
  free(m->dense_pe_gauss);
  memset(m, 0, sizeof *m);
}

char *sam_config_json(const SamConfig *c) {
  json_t *g = json_array();
  for (int i = 0; i < c->enc_depth; i++)
    if (c->global_block[i]) json_array_append_new(g, json_integer(i));
  json_t *o = json_pack(
      "{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:b, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f}",
      "model", "sam", "img_size", c->img_size, "patch", c->patch, "enc_dim", c->enc_dim, "enc_depth", c->enc_depth,
      "enc_heads", c->enc_heads, "enc_mlp", c->enc_mlp, "window", c->window, "out_chans", c->out_chans,
      "global_blocks", g, "qkv_bias", c->qkv_bias, "rel_pos", c->rel_pos, "prompt_dim", c->prompt_dim,
      "mask_in_chans", c->mask_in_chans, "dec_depth", c->dec_depth, "dec_heads", c->dec_heads, "dec_mlp", c->dec_mlp,
      "attn_downsample", c->attn_downsample, "num_mask_tokens", c->num_mask_tokens, "iou_depth", c->iou_depth,
      "iou_hidden", c->iou_hidden, "ln_eps", (double)c->ln_eps);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

int sam_save(const SamModel *m, const char *path) {
  SamxSTWriter *w = samx_st_writer_new();
  for (int i = 0; i < m->params.n; i++) samx_st_writer_add_tensor(w, m->params.list[i]->name, m->params.list[i]);
  char *cfg = sam_config_json(&m->cfg);
  samx_st_writer_meta(w, "samx_config", cfg);
  samx_st_writer_meta(w, "format", "samx");
  samx_st_writer_meta(w, "samx_version", SAMX_VERSION);
  free(cfg);
  int rc = samx_st_writer_save(w, path);
  samx_st_writer_free(w);
  return rc;
}
