// Batch inference driver: encode a batch, decode all its prompts in chunks, hand each prompt's masks
// to the method (see infer.h).
#include "infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "kernels/random.h"
#include "models/p2sam/p2sam.h"
#include "models/sam/sam_image.h"

struct SamxInferer {
  SamModel *m;
  SamMethodModel *mm;  // TRAINED only
  SamxInferOpts o;
  int max_h, max_w, chunk, side, max_m;  // side: low-res mask side (4g); max_m: masks per prompt
  SamxCtx enc, dec;
  // host staging for one chunk
  float *iou, *low, *logits, *mask_in;
  int64_t nonfinite;  // NaN/inf mask logits seen so far (NaN weights or inputs): the caller reports them
};

const char *samx_infer_method_name(SamxInferMethod m) {
  return m == SAMX_INFER_SAM ? "sam" : m == SAMX_INFER_SIMSAM ? "simsam" : m == SAMX_INFER_SQA ? "sqa" : m == SAMX_INFER_TRAINED ? "trained" : "?";
}

SamxInferOpts samx_infer_defaults(SamxInferMethod method) {
  SamxInferOpts o = {.method = method, .simsam = samx_simsam_defaults(), .sqa = samx_sqa_defaults(), .max_batch = 1};
  return o;
}

int samx_mask_box(const uint8_t *mask, int64_t h, int64_t w, float box[4]) {
  int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++)
      if (mask[y * w + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
  if (x1 < 0) return -1;
  box[0] = (float)x0, box[1] = (float)y0, box[2] = (float)x1, box[3] = (float)y1;
  return 0;
}

// ---- memory estimates ----

// Decoder activations per prompt: the two-way transformer over g*g image tokens, the upscaling to 4g,
// the dense prompt embedding, and the masks at S x S and at the original size. Measured on ViT-B
// (g = 64, C = 256, 256x256 originals): 146 MiB per single-mask prompt, 172 MiB multimask; this
// gives 227 MiB.
static size_t prompt_bytes(const SamConfig *c, int max_m, int h, int w) {
  int64_t g = sam_embed_grid(c), S = c->img_size, C = c->prompt_dim;
  int64_t transformer = (int64_t)c->dec_depth * g * g * (6 * C + (int64_t)c->dec_mlp) * 4;
  int64_t upscale = 16 * g * g * C * 4, prompt = 4 * C * g * g * 4 + 16 * g * g * 4 * 4;
  int64_t post = max_m * (2 * S * S + (int64_t)h * w) * 4;
  return (size_t)(transformer + upscale + prompt + post);
}

SamxInferer *samx_inferer_new(SamModel *m, const SamxInferOpts *o, int max_h, int max_w) {
  if (o->max_batch < 1) return samx_fail("batch size %d: needs at least 1", o->max_batch), NULL;
  if (o->method == SAMX_INFER_TRAINED) return samx_fail("a trained model needs samx_inferer_new_trained"), NULL;
  if (o->method == SAMX_INFER_SIMSAM && o->simsam.k < 1) return samx_fail("SimSAM K = %d: needs at least 1", o->simsam.k), NULL;
  if (o->method == SAMX_INFER_SQA && o->sqa.connectivity != 4 && o->sqa.connectivity != 8)
    return samx_fail("connectivity %d: must be 4 or 8", o->sqa.connectivity), NULL;
  SamxInferer *r = (SamxInferer *)calloc(1, sizeof *r);
  const SamConfig *c = &m->cfg;
  r->m = m, r->o = *o, r->max_h = max_h, r->max_w = max_w;
  r->side = 4 * sam_embed_grid(c);
  r->max_m = c->num_mask_tokens > 1 ? c->num_mask_tokens - 1 : 1;
  if (o->n_masks > r->max_m) r->max_m = o->n_masks;  // a trained model's hypotheses (SeqSAM: any number)
  // A trained model's n hypotheses may be n decoder passes (SeqSAM's rollout keeps every step).
  size_t per_prompt = prompt_bytes(c, r->max_m, max_h, max_w) * (size_t)(o->n_masks > 1 ? o->n_masks : 1);
  size_t budget = o->decode_budget ? o->decode_budget : (m->device.type == SAMX_CUDA ? (size_t)6 << 30 : (size_t)1 << 30);
  r->chunk = o->decode_chunk > 0 ? o->decode_chunk : (int)(budget / per_prompt);
  if (r->chunk < 1) r->chunk = 1;
  if (r->chunk > 256) r->chunk = 256;  // more buys no speed and costs host staging memory
  int64_t g = sam_embed_grid(c);
  size_t emb = (size_t)o->max_batch * c->out_chans * g * g * 4;
  samx_ctx_init(&r->enc, m->device, sam_encoder_arena_bytes(c, o->max_batch, samx_precision_on(m->device)),
                4096 + 512 * c->enc_depth);
  samx_ctx_init(&r->dec, m->device, 2 * emb + (size_t)r->chunk * per_prompt + (64 << 20), 16384);
  samx_ctx_set_recording(&r->enc, 0);
  samx_ctx_set_recording(&r->dec, 0);
  size_t side2 = (size_t)r->side * r->side, px = (size_t)max_h * max_w;
  r->iou = (float *)malloc(sizeof(float) * (size_t)r->chunk * r->max_m);
  r->low = (float *)malloc(sizeof(float) * (size_t)r->chunk * r->max_m * side2);
  r->logits = (float *)malloc(sizeof(float) * (size_t)r->chunk * r->max_m * px);
  r->mask_in = (float *)malloc(sizeof(float) * (size_t)r->chunk * side2);
  return r;
}

// P2SAM: images of one batch through LoRA SAM and the prior network once; per snapshot and sample a
// decoder pass with Fcomb's prompt. Activations: the decoder's at 8 masks plus the 8 upsampled maps
// per image, and the prior network's (a few 32-channel maps at S x S).
static SamxInferer *new_p2sam(SamMethodModel *mm, const SamxInferOpts *o, int max_h, int max_w) {
  if (o->max_batch < 1) return samx_fail("batch size %d: needs at least 1", o->max_batch), NULL;
  SamxInferer *r = (SamxInferer *)calloc(1, sizeof *r);
  const SamConfig *c = &mm->sam.cfg;
  int64_t S = c->img_size, nsnap = o->p2sam_snapshots ? ((const P2samSnapshots *)o->p2sam_snapshots)->n : 1;
  r->m = &mm->sam, r->mm = mm, r->o = *o, r->max_h = max_h, r->max_w = max_w;
  r->o.p2sam_samples = o->p2sam_samples > 0 ? o->p2sam_samples : 4;
  r->o.n_masks = (int)nsnap * r->o.p2sam_samples;
  r->side = (int)S, r->max_m = r->o.n_masks, r->chunk = o->max_batch;
  size_t per_image = prompt_bytes(c, P2SAM_MASKS, max_h, max_w) + (size_t)(24 * S * S * 4 * 8) + ((size_t)96 << 20);
  samx_ctx_init(&r->enc, mm->sam.device, sam_encoder_arena_bytes(c, o->max_batch, samx_precision_on(mm->sam.device)),
                4096 + 512 * c->enc_depth);
  samx_ctx_init(&r->dec, mm->sam.device, (size_t)o->max_batch * per_image + ((size_t)64 << 20), 16384);
  samx_ctx_set_recording(&r->enc, 0);
  samx_ctx_set_recording(&r->dec, 0);
  r->logits = (float *)malloc(sizeof(float) * (size_t)max_h * max_w);
  return r;
}

SamxInferer *samx_inferer_new_trained(SamMethodModel *mm, const SamxInferOpts *o, int max_h, int max_w) {
  SAMX_ASSERT(o->method == SAMX_INFER_TRAINED, "samx_inferer_new_trained: method %s", samx_infer_method_name(o->method));
  if (mm->method == SAM_METHOD_P2SAM) return new_p2sam(mm, o, max_h, max_w);
  SamxInferOpts so = *o;
  so.method = SAMX_INFER_SAM;  // sized and checked like plain SAM, with room for n_masks hypotheses
  so.n_masks = o->n_masks > 0 ? o->n_masks : mm->n_masks;
  if (mm->def->fixed_masks && so.n_masks != mm->def->fixed_masks)
    return samx_fail("%s gives %d hypotheses, %d asked", mm->def->name, mm->def->fixed_masks, so.n_masks), NULL;
  SamxInferer *r = samx_inferer_new(&mm->sam, &so, max_h, max_w);
  if (!r) return NULL;
  r->o.method = SAMX_INFER_TRAINED, r->mm = mm;
  return r;
}

void samx_inferer_free(SamxInferer *r) {
  if (!r) return;
  samx_ctx_free(&r->enc);
  samx_ctx_free(&r->dec);
  free(r->iou), free(r->low), free(r->logits), free(r->mask_in);
  free(r);
}

int samx_inferer_chunk(const SamxInferer *r) { return r->chunk; }
int64_t samx_inferer_nonfinite(const SamxInferer *r) { return r->nonfinite; }

void samx_inferer_peaks(const SamxInferer *r, size_t *enc, size_t *dec) {
  *enc = r->enc.act.peak;
  *dec = r->dec.act.peak;
}

void samx_infer_output_free(SamxInferOutput *o) {
  free(o->mask), free(o->object_score), free(o->clicks), free(o->labels), free(o->cand_iou), free(o->row_mean);
  free(o->candidates), free(o->init_logits), free(o->init_low_res), free(o->mask_prompt), free(o->cand_logits);
  memset(o, 0, sizeof *o);
}

// ---- encoding and chunked decoding ----

// Embeddings [n, C, g, g] of the batch, in the decoder's context (the encoder's is then free).
// With cached embeddings (in[i].embedding) the encoder does not run: the same tensor from the cache.
static SamxTensor *encode_batch(SamxInferer *r, const SamxInferInput *in, int n, SamImageInfo *info) {
  samx_ctx_reset(&r->enc);
  samx_ctx_reset(&r->dec);
  if (in[0].embedding) {
    int64_t g = sam_embed_grid(&r->m->cfg), C = r->m->cfg.out_chans, per = C * g * g;
    SamxTensor *emb = samx_new(&r->dec, SAMX_F32, SHAPE(n, C, g, g));
    for (int i = 0; i < n; i++) {
      SAMX_ASSERT(in[i].embedding && in[i].embed_info, "encode_batch: image %d of %d has no cached embedding", i, n);
      samx_memcpy(emb->device, (float *)emb->data + i * per, samx_cpu(), in[i].embedding, sizeof(float) * (size_t)per);
      const int64_t *e = in[i].embed_info;
      info[i] = (SamImageInfo){.orig_h = (int)e[0], .orig_w = (int)e[1], .input_h = (int)e[2], .input_w = (int)e[3]};
    }
    return emb;
  }
  SamxTensor *x[n];
  for (int i = 0; i < n; i++) x[i] = sam_preprocess(&r->enc, r->m, in[i].rgb, in[i].h, in[i].w, &info[i]);
  SamxTensor *e = sam_encode(&r->enc, r->m, n == 1 ? x[0] : samx_concat(&r->enc, x, n, 0));
  SamxTensor *emb = samx_new(&r->dec, SAMX_F32, samx_shape_of(e));
  samx_tensor_copy(emb, e);
  return emb;
}

// One prompt's results at the original size of its image: logits [M, h, w], low-res [M, 4g, 4g],
// predicted IoU [M].
typedef void (*MaskSink)(void *user, int p, const float *logits, const float *low, const float *iou, int M);

typedef struct {
  SamPrompt *prompts;  // in the encoder's input frame
  int *img;            // batch image of each prompt
  const float **mask_in;  // per prompt [4g*4g], or NULL for none
  int n, multimask;
} PromptList;

static void prompts_alloc(PromptList *pl, int n, int with_masks, int multimask) {
  pl->prompts = (SamPrompt *)calloc((size_t)n, sizeof(SamPrompt));
  pl->img = (int *)calloc((size_t)n, sizeof(int));
  pl->mask_in = with_masks ? (const float **)calloc((size_t)n, sizeof(float *)) : NULL;
  pl->n = n, pl->multimask = multimask;
}

static void prompts_free(PromptList *pl) { free(pl->prompts), free(pl->img), free(pl->mask_in); }

static int same_size(const SamImageInfo *a, const SamImageInfo *b) {
  return a->orig_h == b->orig_h && a->orig_w == b->orig_w && a->input_h == b->input_h && a->input_w == b->input_w;
}

// The decoder's context back to `mark`: everything the chunk allocated goes (inference only; the
// results were copied to the host).

static void decode_prompts(SamxInferer *r, SamxTensor *emb, const SamImageInfo *info, const PromptList *pl, MaskSink sink,
                           void *user) {
  SamxCtx *ctx = &r->dec;
  size_t side2 = (size_t)r->side * r->side;
  for (int start = 0; start < pl->n; start += r->chunk) {
    int c = pl->n - start < r->chunk ? pl->n - start : r->chunk;
    size_t mark = samx_ctx_mark(ctx);
    SamxTensor *mask = NULL;
    if (pl->mask_in) {
      for (int q = 0; q < c; q++) memcpy(r->mask_in + q * side2, pl->mask_in[start + q], sizeof(float) * side2);
      mask = samx_from_host(ctx, SHAPE(c, 1, r->side, r->side), r->mask_in);
    }
    SamxTensor *low;
    int M;
    if (r->mm) {  // a trained model's hypotheses [c, 1, 4g, 4g] each, side by side; no IoU head output
      M = r->o.n_masks;
      SamxTensor *outs[M];
      sam_method_predict(ctx, r->mm, emb, pl->img + start, pl->prompts + start, c, M, outs);
      low = M == 1 ? outs[0] : samx_concat(ctx, outs, M, 1);
      for (int q = 0; q < c * M; q++) r->iou[q] = NAN;
    } else {
      SamxTensor *sparse, *dense, *iou;
      sam_prompt_encode(ctx, r->m, pl->prompts + start, c, mask, &sparse, &dense);
      sam_decode(ctx, r->m, emb, pl->img + start, sparse, dense, pl->multimask, &low, &iou);
      M = (int)iou->shape[1];
      samx_tensor_read_f32(iou, r->iou);
    }
    samx_tensor_read_f32(low, r->low);
    // Postprocessing crops and resizes per image size: one call per run of equally sized images.
    for (int s = 0; s < c;) {
      const SamImageInfo *is = &info[pl->img[start + s]];
      int e = s + 1;
      while (e < c && same_size(is, &info[pl->img[start + e]])) e++;
      size_t mark2 = samx_ctx_mark(ctx);
      SamxTensor *part = s == 0 && e == c ? low : samx_slice(ctx, low, 0, s, e);
      samx_tensor_read_f32(sam_postprocess(ctx, r->m, part, is), r->logits);
      size_t px = (size_t)M * is->orig_h * is->orig_w;
      for (size_t v = 0; v < px * (size_t)(e - s); v++) r->nonfinite += !isfinite(r->logits[v]);
      for (int q = s; q < e; q++)
        sink(user, start + q, r->logits + (q - s) * px, r->low + (size_t)q * M * side2, r->iou + q * M, M);
      samx_ctx_release(ctx, mark2);
      s = e;
    }
    samx_ctx_release(ctx, mark);
  }
}

// ---- the methods ----

typedef struct {
  SamxInferer *r;
  const SamxInferInput *in;
  SamxInferOutput *out;
  int *owner;       // per prompt: batch image
  int *slot;        // per prompt: candidate (SimSAM) or object (SQA) index
  // SimSAM per image
  uint64_t **bits;  // [k * words]
  double **sum;     // pixel aggregation: sum of candidate logits
  float **low0;     // initial low-res logits
  // SQA per image
  SamxSqaObjects *objects;
  double **point_dice, **box_dice;
} Job;

static int64_t words_of(const SamxInferInput *in) { return ((int64_t)in->h * in->w + 63) / 64; }

static void box_prompt(const SamImageInfo *info, const float box[4], SamPrompt *p) {
  memset(p, 0, sizeof *p);
  p->has_box = 1;
  memcpy(p->box, box, sizeof p->box);
  sam_prompt_to_input(info, p);
}

static void sam_sink(void *user, int p, const float *logits, const float *low, const float *iou, int M) {
  Job *j = (Job *)user;
  int i = j->owner[p];
  const SamxInferInput *in = &j->in[i];
  SamxInferOutput *o = &j->out[i];
  size_t px = (size_t)in->h * in->w;
  int n = j->r->o.method == SAMX_INFER_TRAINED ? M : 1;  // plain SAM: the single-mask output
  o->n_masks = n;
  o->mask = (uint8_t *)malloc(px * n);
  for (size_t q = 0; q < px * n; q++) o->mask[q] = logits[q] > 0;  // SamPredictor: logits > mask_threshold (0)
  o->score = iou[0];
  if (j->r->o.method == SAMX_INFER_SIMSAM) {  // the initial prediction, kept for the clicks
    o->init_logits = (float *)malloc(sizeof(float) * px);
    memcpy(o->init_logits, logits, sizeof(float) * px);
    size_t side2 = (size_t)j->r->side * j->r->side;
    j->low0[i] = (float *)malloc(sizeof(float) * side2);
    memcpy(j->low0[i], low, sizeof(float) * side2);
  }
}

static void run_box(Job *j, SamxTensor *emb, const SamImageInfo *info, int n) {
  PromptList pl;
  prompts_alloc(&pl, n, 0, 0);
  for (int i = 0; i < n; i++) box_prompt(&info[i], j->in[i].box, &pl.prompts[i]), pl.img[i] = i, j->owner[i] = i;
  decode_prompts(j->r, emb, info, &pl, sam_sink, j);
  prompts_free(&pl);
}

static void simsam_sink(void *user, int p, const float *logits, const float *low, const float *iou, int M) {
  Job *j = (Job *)user;
  int i = j->owner[p], k = j->slot[p];
  const SamxInferInput *in = &j->in[i];
  SamxInferOutput *o = &j->out[i];
  int64_t px = (int64_t)in->h * in->w, words = words_of(in);
  o->cand_iou[k] = iou[0];
  samx_pack_mask_bits(logits, px, j->bits[i] + k * words);
  if (j->sum[i])
    for (int64_t q = 0; q < px; q++) j->sum[i][q] += logits[q];
  if (o->candidates)
    for (int64_t q = 0; q < px; q++) o->candidates[k * px + q] = logits[q] > 0;
  if (o->cand_logits) memcpy(o->cand_logits + k * px, logits, sizeof(float) * (size_t)px);
}

// SimSAM (method-notes §3): initial box prediction, K simulated clicks, K candidates decoded in one
// pass against the cached embeddings, then the most compatible candidate.
static void run_simsam(Job *j, SamxTensor *emb, const SamImageInfo *info, int n) {
  const SamxInferOpts *o = &j->r->o;
  size_t side2 = (size_t)j->r->side * j->r->side;
  run_box(j, emb, info, n);
  int total = 0;
  float **prompt_mask = (float **)calloc((size_t)n, sizeof(float *));
  for (int i = 0; i < n; i++) {
    SamxInferOutput *out = &j->out[i];
    int64_t px = (int64_t)j->in[i].h * j->in[i].w;
    out->clicks = (int64_t *)malloc(sizeof(int64_t) * (size_t)o->simsam.k);
    out->k = samx_simsam_clicks(out->init_logits, px, &o->simsam, j->in[i].key, out->clicks);
    out->labels = (int *)malloc(sizeof(int) * (size_t)out->k);
    for (int k = 0; k < out->k; k++) out->labels[k] = samx_simsam_label(out->init_logits, out->clicks[k]);
    prompt_mask[i] = (float *)malloc(sizeof(float) * side2);
    samx_simsam_mask_prompt(j->low0[i], (int64_t)side2, o->simsam.raw_mask_prompt, prompt_mask[i]);
    out->cand_iou = (float *)malloc(sizeof(float) * (size_t)out->k);
    j->bits[i] = (uint64_t *)calloc((size_t)(out->k * words_of(&j->in[i])), sizeof(uint64_t));
    if (o->simsam.aggregate == SAMX_SIMSAM_PIXEL) j->sum[i] = (double *)calloc((size_t)px, sizeof(double));
    if (o->keep_candidates) out->candidates = (uint8_t *)malloc((size_t)(out->k * px));
    if (o->trace) out->cand_logits = (float *)malloc(sizeof(float) * (size_t)(out->k * px));
    total += out->k;
  }
  free(j->owner), free(j->slot);
  j->owner = (int *)malloc(sizeof(int) * (size_t)total), j->slot = (int *)malloc(sizeof(int) * (size_t)total);
  PromptList pl;
  prompts_alloc(&pl, total, 1, 0);
  for (int i = 0, p = 0; i < n; i++) {
    const SamxInferInput *in = &j->in[i];
    for (int k = 0; k < j->out[i].k; k++, p++) {
      SamPrompt *sp = &pl.prompts[p];
      memset(sp, 0, sizeof *sp);
      sp->has_box = 1;
      memcpy(sp->box, in->box, sizeof sp->box);
      sp->n_points = 1;  // the click at (column, row) of its pixel, as the authors' (idx mod W, idx div W)
      sp->points[0][0] = (float)(j->out[i].clicks[k] % in->w), sp->points[0][1] = (float)(j->out[i].clicks[k] / in->w);
      sp->labels[0] = j->out[i].labels[k];
      sam_prompt_to_input(&info[i], sp);
      pl.img[p] = i, pl.mask_in[p] = prompt_mask[i], j->owner[p] = i, j->slot[p] = k;
    }
  }
  decode_prompts(j->r, emb, info, &pl, simsam_sink, j);
  prompts_free(&pl);
  for (int i = 0; i < n; i++) {
    SamxInferOutput *out = &j->out[i];
    int64_t px = (int64_t)j->in[i].h * j->in[i].w, words = words_of(&j->in[i]);
    if (o->simsam.aggregate == SAMX_SIMSAM_PIXEL) {
      out->chosen = -1;
      double s = 0;
      for (int k = 0; k < out->k; k++) s += out->cand_iou[k];
      out->score = (float)(s / out->k);
      for (int64_t q = 0; q < px; q++) out->mask[q] = j->sum[i][q] > 0;  // mean > 0
    } else {
      out->row_mean = (double *)malloc(sizeof(double) * (size_t)out->k);
      out->chosen = samx_simsam_choose(j->bits[i], out->k, words, NULL, out->row_mean);
      out->score = out->cand_iou[out->chosen];
      const uint64_t *b = j->bits[i] + out->chosen * words;
      for (int64_t q = 0; q < px; q++) out->mask[q] = (b[q >> 6] >> (q & 63)) & 1;
    }
    if (o->trace) {
      out->low_side = j->r->side;
      out->init_low_res = j->low0[i], j->low0[i] = NULL;
      out->mask_prompt = prompt_mask[i], prompt_mask[i] = NULL;
    } else {
      free(out->init_logits), out->init_logits = NULL;
    }
    free(prompt_mask[i]);
  }
  free(prompt_mask);
}

static void sqa_sink(void *user, int p, const float *logits, const float *low, const float *iou, int M) {
  Job *j = (Job *)user;
  int i = j->owner[p], ob = j->slot[p], best = 0;
  const SamxInferInput *in = &j->in[i];
  for (int m = 1; m < M; m++)  // multimask point prompt: the mask with the highest predicted IoU
    if (iou[m] > iou[best]) best = m;
  double d = samx_sqa_object_dice_logits(&j->objects[i], ob, logits + (size_t)best * in->h * in->w);
  (M > 1 ? j->point_dice : j->box_dice)[i][ob] = d;
}

// SQA-SAM (method-notes §5): every object is prompted twice, by its interior point (multimask, best
// predicted IoU) and by its box (single mask); quality = mean over objects of the mean of both Dice.
static void run_sqa(Job *j, SamxTensor *emb, const SamImageInfo *info, int n) {
  const SamxInferOpts *o = &j->r->o;
  int total = 0;
  for (int i = 0; i < n; i++) {
    samx_sqa_objects(j->in[i].seg, j->in[i].n_classes, j->in[i].h, j->in[i].w, &o->sqa, &j->objects[i]);
    int no = j->objects[i].n;
    j->point_dice[i] = (double *)calloc((size_t)no + 1, sizeof(double));
    j->box_dice[i] = (double *)calloc((size_t)no + 1, sizeof(double));
    total += no;
  }
  free(j->owner), free(j->slot);
  j->owner = (int *)malloc(sizeof(int) * ((size_t)total + 1)), j->slot = (int *)malloc(sizeof(int) * ((size_t)total + 1));
  PromptList point, box;
  prompts_alloc(&point, total, 0, 1);
  prompts_alloc(&box, total, 0, 0);
  for (int i = 0, p = 0; i < n; i++)
    for (int ob = 0; ob < j->objects[i].n; ob++, p++) {
      const SamxSqaObject *obj = &j->objects[i].obj[ob];
      SamPrompt *sp = &point.prompts[p];
      sp->n_points = 1;
      sp->points[0][0] = obj->point[0], sp->points[0][1] = obj->point[1];
      sp->labels[0] = 1;
      sam_prompt_to_input(&info[i], sp);
      box_prompt(&info[i], obj->box, &box.prompts[p]);
      point.img[p] = box.img[p] = i, j->owner[p] = i, j->slot[p] = ob;
    }
  decode_prompts(j->r, emb, info, &point, sqa_sink, j);
  decode_prompts(j->r, emb, info, &box, sqa_sink, j);
  prompts_free(&point);
  prompts_free(&box);
  for (int i = 0; i < n; i++) {
    SamxInferOutput *out = &j->out[i];
    int no = j->objects[i].n;
    out->n_objects = no;
    out->object_score = (double *)malloc(sizeof(double) * ((size_t)no + 1));
    for (int ob = 0; ob < no; ob++) out->object_score[ob] = 0.5 * (j->point_dice[i][ob] + j->box_dice[i][ob]);
    out->quality = (float)samx_sqa_image_score(&j->objects[i], out->object_score, o->sqa.area_weighted);
    out->score = NAN;
  }
}

// ---- P2SAM ----

// ref: evaluate.py (method-notes §4 "Evaluation"): one net per snapshot, samples_per_net draws of z
// each, masks = assembled logit > 0 at the original size.
static void run_p2sam(SamxInferer *r, const SamxInferInput *in, int n, SamxInferOutput *out) {
  SamMethodModel *mm = r->mm;
  int64_t S = mm->sam.cfg.img_size;
  const P2samSnapshots *snaps = (const P2samSnapshots *)r->o.p2sam_snapshots;
  int stage1 = r->o.p2sam_stage1, nsnap = snaps && !stage1 ? snaps->n : 1, ns = stage1 ? 1 : r->o.p2sam_samples;
  samx_ctx_reset(&r->enc);
  samx_ctx_reset(&r->dec);
  SamxTensor *px[n];
  int ch[n], cw[n];  // the window the model sees (the whole image without a crop)
  for (int i = 0; i < n; i++) {  // the grey image in [0, 1] at S x S (channel 0 of the RGB input)
    int c = in[i].crop[2], y0 = c ? in[i].crop[0] : 0, x0 = c ? in[i].crop[1] : 0;
    ch[i] = c ? c : in[i].h, cw[i] = c ? c : in[i].w;
    float *g = (float *)malloc(sizeof(float) * (size_t)ch[i] * cw[i]);
    for (int y = 0; y < ch[i]; y++)
      for (int x = 0; x < cw[i]; x++) g[y * cw[i] + x] = in[i].rgb[3 * ((int64_t)(y0 + y) * in[i].w + x0 + x)] / 255.0f;
    SamxTensor *x = samx_from_host(&r->dec, SHAPE(1, 1, ch[i], cw[i]), g);
    free(g);
    px[i] = ch[i] == S && cw[i] == S ? x : samx_resize_bilinear(&r->dec, x, S, S);
  }
  SamxTensor *pixels = n == 1 ? px[0] : samx_concat(&r->dec, px, n, 0);
  SamxTensor *e = sam_encode(&r->enc, &mm->sam, p2sam_encoder_input(&r->enc, pixels));
  SamxTensor *emb = samx_new(&r->dec, SAMX_F32, samx_shape_of(e));
  samx_tensor_copy(emb, e);
  memset(out, 0, sizeof(SamxInferOutput) * (size_t)n);
  for (int i = 0; i < n; i++) {
    out[i].n_masks = nsnap * ns;
    out[i].mask = (uint8_t *)malloc((size_t)nsnap * ns * in[i].h * in[i].w);
    out[i].score = NAN;
  }
  float *eps = (float *)malloc(sizeof(float) * (size_t)n * P2SAM_LATENT);
  for (int k = 0; k < nsnap; k++) {
    if (snaps && !stage1) p2sam_snapshot_apply(snaps, k);
    size_t mark = samx_ctx_mark(&r->dec);
    SamxTensor *mu = NULL, *log_sigma = NULL;
    if (!stage1) p2sam_prior(&r->dec, mm, pixels, &mu, &log_sigma);
    for (int j = 0; j < ns; j++) {
      size_t mark2 = samx_ctx_mark(&r->dec);
      for (int i = 0; i < n && !stage1; i++)
        samx_cpu_random_fill(SAMX_RNG_NORMAL, eps + (size_t)i * P2SAM_LATENT, P2SAM_LATENT, samx_hash4(r->o.p2sam_seed, in[i].key, 0, 0),
                             (uint64_t)(j * nsnap + k) * P2SAM_LATENT, 0.0f, 1.0f);
      SamxTensor *z = stage1 ? NULL : samx_gaussian_reparam(&r->dec, mu, log_sigma, samx_from_host(&r->dec, samx_shape_of(mu), eps));
      SamxTensor *low = p2sam_decode(&r->dec, mm, emb, NULL, p2sam_dense_prompt(&r->dec, mm, z, n)), *assembled;
      p2sam_assemble(&r->dec, mm, low, NULL, NULL, &assembled);
      for (int i = 0; i < n; i++) {
        size_t mark3 = samx_ctx_mark(&r->dec);
        SamxTensor *a = samx_slice(&r->dec, assembled, 0, i, i + 1);
        if (ch[i] != S || cw[i] != S) a = samx_resize_bilinear(&r->dec, a, ch[i], cw[i]);
        samx_tensor_read_f32(a, r->logits);
        size_t hw = (size_t)in[i].h * in[i].w;
        uint8_t *dst = out[i].mask + (size_t)(j * nsnap + k) * hw;
        int64_t y0 = in[i].crop[2] ? in[i].crop[0] : 0, x0 = in[i].crop[2] ? in[i].crop[1] : 0;
        if (in[i].crop[2]) memset(dst, 0, hw);  // outside the window: background
        for (int y = 0; y < ch[i]; y++)
          for (int x = 0; x < cw[i]; x++) dst[(y0 + y) * in[i].w + x0 + x] = r->logits[y * cw[i] + x] > 0;
        samx_ctx_release(&r->dec, mark3);
      }
      samx_ctx_release(&r->dec, mark2);
    }
    samx_ctx_release(&r->dec, mark);
  }
  free(eps);
}

void samx_inferer_run(SamxInferer *r, const SamxInferInput *in, int n, SamxInferOutput *out) {
  if (r->mm && r->mm->method == SAM_METHOD_P2SAM) {
    SAMX_ASSERT(n >= 1 && n <= r->o.max_batch, "samx_inferer_run: %d images, batch size is %d", n, r->o.max_batch);
    run_p2sam(r, in, n, out);
    return;
  }
  SAMX_ASSERT(n >= 1 && n <= r->o.max_batch, "samx_inferer_run: %d images, batch size is %d", n, r->o.max_batch);
  for (int i = 0; i < n; i++)
    SAMX_ASSERT(in[i].h <= r->max_h && in[i].w <= r->max_w && in[i].h * in[i].w <= r->max_h * r->max_w,
                "samx_inferer_run: image %d is %dx%d, the inferer was sized for %dx%d", i, in[i].h, in[i].w, r->max_h,
                r->max_w);
  memset(out, 0, sizeof(SamxInferOutput) * (size_t)n);
  SamImageInfo info[n];
  SamxTensor *emb = encode_batch(r, in, n, info);
  Job j = {.r = r, .in = in, .out = out};
  j.owner = (int *)calloc((size_t)n, sizeof(int)), j.slot = (int *)calloc((size_t)n, sizeof(int));
  j.bits = (uint64_t **)calloc((size_t)n, sizeof(void *)), j.sum = (double **)calloc((size_t)n, sizeof(void *));
  j.low0 = (float **)calloc((size_t)n, sizeof(void *));
  j.objects = (SamxSqaObjects *)calloc((size_t)n, sizeof(SamxSqaObjects));
  j.point_dice = (double **)calloc((size_t)n, sizeof(void *)), j.box_dice = (double **)calloc((size_t)n, sizeof(void *));
  if (r->o.method == SAMX_INFER_SAM || r->o.method == SAMX_INFER_TRAINED) run_box(&j, emb, info, n);
  else if (r->o.method == SAMX_INFER_SIMSAM) run_simsam(&j, emb, info, n);
  else run_sqa(&j, emb, info, n);
  for (int i = 0; i < n; i++) {
    free(j.bits[i]), free(j.sum[i]), free(j.low0[i]), free(j.point_dice[i]), free(j.box_dice[i]);
    samx_sqa_objects_free(&j.objects[i]);
  }
  free(j.owner), free(j.slot), free(j.bits), free(j.sum), free(j.low0), free(j.objects), free(j.point_dice), free(j.box_dice);
}
