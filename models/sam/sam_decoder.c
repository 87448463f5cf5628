// SAM's prompt encoder and two-way-transformer mask decoder.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention_bf16.h"
#include "sam_internal.h"

#define DEC_LN_EPS 1e-5f  // nn.LayerNorm's default, used by the decoder transformer
#define LN2D_EPS 1e-6f    // LayerNorm2d's default (common.py)

// ---- prompt encoder ----

// ref: PositionEmbeddingRandom._pe_encoding: [sin, cos] of 2*pi*((2c - 1) @ G), c in [0, 1]^2.
static void pe_encode(const float *gauss, int half, double x, double y, float *out) {
  for (int j = 0; j < half; j++) {
    double a = 2 * M_PI * ((2 * x - 1) * gauss[j] + (2 * y - 1) * gauss[half + j]);
    out[j] = (float)sin(a);
    out[half + j] = (float)cos(a);
  }
}

static float *gaussian_matrix(const SamModel *m) {
  SamxTensor *g = sam_param(m, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
  float *h = (float *)malloc(samx_nbytes(g));
  samx_tensor_read(g, h);
  return h;
}

SamxTensor *sam_dense_pe(SamxCtx *ctx, SamModel *m) {
  int C = m->cfg.prompt_dim, g = sam_embed_grid(&m->cfg);
  float *gauss = gaussian_matrix(m);
  size_t gauss_bytes = samx_nbytes(sam_param(m, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"));
  if (!m->dense_pe || memcmp(gauss, m->dense_pe_gauss, gauss_bytes) != 0) {
    float *pe = (float *)realloc(m->dense_pe, sizeof(float) * (size_t)C * g * g), tok[4096];
    SAMX_ASSERT(pe && C <= 4096, "prompt width %d", C);
    // ref: PositionEmbeddingRandom.forward: pixel centres (i + 0.5) / g, x first
    for (int i = 0; i < g; i++)
      for (int j = 0; j < g; j++) {
        pe_encode(gauss, C / 2, (j + 0.5) / g, (i + 0.5) / g, tok);
        for (int c = 0; c < C; c++) pe[((size_t)c * g + i) * g + j] = tok[c];
      }
    m->dense_pe = pe;
    free(m->dense_pe_gauss);
    m->dense_pe_gauss = gauss;
  } else {
    free(gauss);
  }
  return samx_from_host(ctx, SHAPE(1, C, g, g), m->dense_pe);
}

static int sparse_count(const SamPrompt *p) { return p->n_points + (p->has_box ? 2 : (p->n_points ? 1 : 0)); }

// ref: PromptEncoder._embed_points / _embed_boxes: positional encodings (zero for padding points)
// plus one learned embedding per token, picked from [pe0, pe1, pe2, pe3, not_a_point].
static SamxTensor *embed_sparse(SamxCtx *ctx, SamModel *m, const SamPrompt *prompts, int P, int ns) {
  int C = m->cfg.prompt_dim;
  float size = (float)m->cfg.img_size, *gauss = gaussian_matrix(m);
  float *pe = (float *)calloc((size_t)P * ns * C, sizeof(float));
  int32_t *idx = (int32_t *)malloc(sizeof(int32_t) * (size_t)P * ns);
  for (int p = 0; p < P; p++) {
    const SamPrompt *q = &prompts[p];
    int t = 0;
    for (int i = 0; i < q->n_points + (!q->has_box && q->n_points ? 1 : 0); i++, t++) {
      int pad = i == q->n_points;  // the (0, 0, -1) point appended when there is no box
      int label = pad ? -1 : q->labels[i];
      float *dst = pe + ((size_t)p * ns + t) * C;
      if (label != -1) pe_encode(gauss, C / 2, (q->points[i][0] + 0.5) / size, (q->points[i][1] + 0.5) / size, dst);
      idx[p * ns + t] = label == -1 ? 4 : label;
    }
    for (int corner = 0; q->has_box && corner < 2; corner++, t++) {
      pe_encode(gauss, C / 2, (q->box[2 * corner] + 0.5) / size, (q->box[2 * corner + 1] + 0.5) / size,
                pe + ((size_t)p * ns + t) * C);
      idx[p * ns + t] = 2 + corner;
    }
  }
  SamxTensor *rows[5];
  for (int i = 0; i < 4; i++) rows[i] = sam_param(m, "prompt_encoder.point_embeddings.%d.weight", i);
  rows[4] = sam_param(m, "prompt_encoder.not_a_point_embed.weight");
  SamxTensor *table = samx_concat(ctx, rows, 5, 0);
  SamxTensor *learned = samx_embedding(ctx, table, sam_index_tensor(ctx, SHAPE(P, ns), idx));
  SamxTensor *out = samx_add(ctx, samx_from_host(ctx, SHAPE(P, ns, C), pe), learned);
  free(pe);
  free(idx);
  free(gauss);
  return out;
}

// ref: PromptEncoder._embed_masks: conv k2s2 -> LN2d -> GELU -> conv k2s2 -> LN2d -> GELU -> conv 1x1.
static SamxTensor *embed_mask(SamxCtx *ctx, SamModel *m, SamxTensor *mask) {
  const char *p = "prompt_encoder.mask_downscaling";
  SamxTensor *x = samx_conv2d(ctx, mask, sam_param(m, "%s.0.weight", p), sam_param(m, "%s.0.bias", p), 2, 0);
  x = samx_gelu(ctx, samx_layernorm2d(ctx, x, sam_param(m, "%s.1.weight", p), sam_param(m, "%s.1.bias", p), LN2D_EPS));
  x = samx_conv2d(ctx, x, sam_param(m, "%s.3.weight", p), sam_param(m, "%s.3.bias", p), 2, 0);
  x = samx_gelu(ctx, samx_layernorm2d(ctx, x, sam_param(m, "%s.4.weight", p), sam_param(m, "%s.4.bias", p), LN2D_EPS));
  return samx_conv2d(ctx, x, sam_param(m, "%s.6.weight", p), sam_param(m, "%s.6.bias", p), 1, 0);
}

void sam_prompt_encode(SamxCtx *ctx, SamModel *m, const SamPrompt *prompts, int P, SamxTensor *mask_input,
                       SamxTensor **sparse, SamxTensor **dense) {
  int C = m->cfg.prompt_dim, g = sam_embed_grid(&m->cfg);
  int ns = sparse_count(&prompts[0]);
  for (int p = 1; p < P; p++)
    SAMX_ASSERT(sparse_count(&prompts[p]) == ns, "prompt %d has %d sparse tokens, prompt 0 has %d", p,
                sparse_count(&prompts[p]), ns);
  *sparse = ns ? embed_sparse(ctx, m, prompts, P, ns) : samx_zeros(ctx, SAMX_F32, SHAPE(P, 0, C));
  if (mask_input) {
    samx_check_shape("sam_prompt_encode mask_input", mask_input, SHAPE(P, 1, 4 * g, 4 * g));
    *dense = embed_mask(ctx, m, mask_input);
  } else {
    // ref: no_mask_embed.weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
    SamxTensor *nm = samx_reshape(ctx, sam_param(m, "prompt_encoder.no_mask_embed.weight"), SHAPE(1, C, 1, 1));
    *dense = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(1, C, g, g)), nm);
  }
}

// ---- mask decoder ----

// ref: Attention.forward (transformer.py): projections to the internal width, heads, SDPA, out_proj;
// plus `residual` when given (the block's residual add, in the GEMM in bf16: sam_residual_linear). The
// output has q's dtype: the stream's (stream_dtype).
static SamxTensor *dec_attention(SamxCtx *ctx, const SamModel *m, const char *prefix, SamxTensor *q, SamxTensor *k,
                                 SamxTensor *v, SamxTensor *residual) {
  char name[200];
  const char *proj[3] = {"q_proj", "k_proj", "v_proj"};
  SamxTensor *in[3] = {q, k, v}, *heads[3];
  int nh = m->cfg.dec_heads;
  // bf16: the attention runs on the tensor-core kernel (head dims 16 and 32 in SAM: 8 heads over 128
  // and 256 channels). The projections write bf16 and the output projection reads the bf16 output; in
  // inference it writes the bf16 stream, in training the f32 one (the stream stays f32 there, as under
  // autocast, while what the attention keeps for the backward is bf16; its gradients are fp32).
  int64_t hd_of = sam_param(m, "%s.q_proj.weight", prefix)->shape[0] / nh;
  SamxDType at = sam_attention_dtype(ctx, hd_of), lt = at;
  for (int i = 0; i < 3; i++) {
    snprintf(name, sizeof name, "%s.%s", prefix, proj[i]);
    SamxTensor *x = sam_linear_to(ctx, m, in[i], name, lt);
    int64_t b = x->shape[0], t = x->shape[1], inner = x->shape[2];
    heads[i] = sam_as_dtype(ctx, SAM_PERMUTE(ctx, samx_reshape(ctx, x, SHAPE(b, t, nh, inner / nh)), 0, 2, 1, 3), at);
  }
  int64_t hd = heads[0]->shape[3];
  SamxTensor *o = samx_attention(ctx, heads[0], heads[1], heads[2], NULL, NULL, 1.0f / sqrtf((float)hd));
  o = SAM_PERMUTE(ctx, sam_as_dtype(ctx, o, lt), 0, 2, 1, 3);
  o = samx_reshape(ctx, o, SHAPE(o->shape[0], o->shape[1], nh * hd));
  snprintf(name, sizeof name, "%s.out_proj", prefix);
  return residual ? sam_residual_linear(ctx, m, residual, o, name) : sam_linear_to(ctx, m, o, name, q->dtype);
}

// Every norm of the two-way transformer is the last reader of its input (a residual sum made for it), so
// inference normalises it in place: the image stream's norm leaves the new stream where the old one
// was, and the block's release has nothing to move (bench/results/2026-12-07-decoder-memory).
static SamxTensor *dec_norm(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, const char *norm) {
  SamxTensor *w = sam_param(m, "%s.%s.weight", prefix, norm), *b = sam_param(m, "%s.%s.bias", prefix, norm);
  return ctx->recording ? samx_layernorm(ctx, x, w, b, DEC_LN_EPS) : samx_layernorm_(ctx, x, w, b, DEC_LN_EPS);
}

// ref: TwoWayAttentionBlock.forward
static void two_way_block(SamxCtx *ctx, const SamModel *m, int layer, SamxTensor **queries, SamxTensor **keys,
                          SamxTensor *query_pe, SamxTensor *key_pe) {
  char p[96], name[160];
  snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d", layer);
  SamxTensor *qs = *queries, *ks = *keys;
  int reuse = !ctx->recording;  // inference hands back what the rest of the block no longer reads
  size_t mark = samx_ctx_mark(ctx);
  snprintf(name, sizeof name, "%s.self_attn", p);
  // Each residual add is the last read of the stream it updates (in place in bf16: dec_attention).
  if (layer == 0) {  // skip_first_layer_pe: no positional encoding and no residual
    qs = dec_attention(ctx, m, name, qs, qs, qs, NULL);
  } else {
    SamxTensor *q = samx_add(ctx, qs, query_pe);
    qs = dec_attention(ctx, m, name, q, q, qs, qs);
  }
  qs = dec_norm(ctx, m, qs, p, "norm1");
  SamxTensor *q = samx_add(ctx, qs, query_pe), *k = samx_add(ctx, ks, key_pe);
  snprintf(name, sizeof name, "%s.cross_attn_token_to_image", p);
  qs = dec_norm(ctx, m, dec_attention(ctx, m, name, q, k, ks, qs), p, "norm2");
  snprintf(name, sizeof name, "%s.mlp.lin1", p);
  SamxTensor *h = samx_relu(ctx, sam_linear_to(ctx, m, qs, name, qs->dtype));
  snprintf(name, sizeof name, "%s.mlp.lin2", p);
  qs = dec_norm(ctx, m, sam_residual_linear(ctx, m, qs, h, name), p, "norm3");
  // The token-to-image attention's projections and head copies are dead. ks + key_pe is the same sum
  // again: inference keeps it, training adds it anew (one tape node per use, the gradients' order as it was).
  if (reuse) samx_ctx_release_keep(ctx, mark, (SamxTensor *[]){qs, k}, 2);
  q = samx_add(ctx, qs, query_pe);
  if (!reuse) k = samx_add(ctx, ks, key_pe);
  snprintf(name, sizeof name, "%s.cross_attn_image_to_token", p);
  ks = dec_norm(ctx, m, dec_attention(ctx, m, name, k, q, qs, ks), p, "norm4");
  *queries = qs;
  *keys = ks;
}

// ref: MLP.forward (mask_decoder.py): ReLU between layers, none after the last.
static SamxTensor *dec_mlp(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, int layers) {
  char name[192];
  for (int i = 0; i < layers; i++) {
    snprintf(name, sizeof name, "%s.layers.%d", prefix, i);
    x = sam_linear(ctx, m, x, name);
    if (i < layers - 1) x = samx_relu(ctx, x);
  }
  return x;
}

// Row img_index[p] (or p, or the only row) of emb for each prompt p (ref:
// torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)), concatenated into `into` when
// given, else into a new tensor.
static SamxTensor *gather_images(SamxCtx *ctx, SamxTensor *emb, const int *img_index, int P, SamxTensor *into) {
  if (into && !img_index && emb->shape[0] == P) {  // a row per prompt already: one copy, no slices
    samx_concat_into(ctx, into, &emb, 1, 0);
    return into;
  }
  SamxTensor **rows = (SamxTensor **)malloc(sizeof(SamxTensor *) * (size_t)P);
  for (int p = 0; p < P; p++) {
    int i = img_index ? img_index[p] : emb->shape[0] == 1 ? 0 : p;
    SAMX_ASSERT(i >= 0 && i < emb->shape[0], "prompt %d refers to image %d of %lld", p, i, (long long)emb->shape[0]);
    // Inference takes a one-image emb as it is (its slice would be a copy of it per prompt).
    rows[p] = emb->shape[0] == 1 && !ctx->recording ? emb : samx_slice(ctx, emb, 0, i, i + 1);
  }
  if (into)
    samx_concat_into(ctx, into, rows, P, 0);
  else
    into = samx_concat_many(ctx, rows, P, 0);
  free(rows);
  return into;
}

// Image embeddings per prompt: emb itself when it has a row per prompt, or, with may_broadcast, one row
// that the add after it broadcasts; otherwise gathered.
static SamxTensor *per_prompt_images(SamxCtx *ctx, SamxTensor *emb, const int *img_index, int P, int may_broadcast) {
  if (!img_index && (emb->shape[0] == P || (may_broadcast && emb->shape[0] == 1))) return emb;
  return gather_images(ctx, emb, img_index, P, NULL);
}

// The image stream [b, g*g, C] in dtype st from the embeddings src [b, C, g, g] (ref:
// TwoWayTransformer.forward: B x C x h x w -> B x hw x C; cast first: the permute moves bf16).
static SamxTensor *stream_of(SamxCtx *ctx, SamxTensor *src, int64_t g, SamxDType st) {
  SamxTensor *x = samx_reshape(ctx, sam_as_dtype(ctx, src, st), SHAPE(src->shape[0], src->shape[1], g * g));
  return SAM_PERMUTE(ctx, x, 0, 2, 1);
}

// The image stream [P, g*g, C] in dtype st: the image embeddings plus the dense prompts, per prompt.
// With late_copies (inference) and dense prompts shared by every prompt, the stream is made once per
// image, in scratch above the per-prompt output, which is allocated first: handing the scratch back
// then moves nothing, and no f32 copy is made per prompt. Otherwise the embeddings are copied per
// prompt first, as training always has (its gradients then sum in the order they always have).
static SamxTensor *image_stream(SamxCtx *ctx, SamxTensor *emb, const int *img_index, SamxTensor *dense, int P,
                                int64_t g, SamxDType st, int late_copies) {
  if (!late_copies || (dense && dense->shape[0] != 1)) {
    SamxTensor *src = per_prompt_images(ctx, emb, img_index, P, 1);
    if (dense) src = samx_add(ctx, src, dense);
    if (src->shape[0] != P) src = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, emb->shape[1], g, g)), src);
    return stream_of(ctx, src, g, st);
  }
  SamxTensor *keys = samx_new(ctx, st, SHAPE(P, g * g, emb->shape[1]));
  size_t scratch = samx_ctx_mark(ctx);
  SamxTensor *per_image = stream_of(ctx, dense ? samx_add(ctx, emb, dense) : emb, g, st);
  gather_images(ctx, per_image, img_index, P, keys);
  samx_ctx_release(ctx, scratch);
  return keys;
}

// The dtype of the two-way transformer's token and image streams: BF16 in bf16 inference when the
// token self-attention's head dim takes the tensor-core kernel (SAM: 32), so that the residual adds, the
// norms, the positional encodings' adds and the MLP read and write bf16 and the [P, 64 x 64, 256] image
// stream is half the bytes; F32 otherwise (training, fp32, tf32: unchanged).
static SamxDType stream_dtype(const SamxCtx *ctx, const SamModel *m) {
  if (ctx->recording) return SAMX_F32;
  return sam_attention_dtype(ctx, m->cfg.prompt_dim / m->cfg.dec_heads);
}

#define UPSCALING "mask_decoder.output_upscaling."

// The upscaling's parameters: the two transposed convolutions (0, 3) and the norm between them (1).
typedef struct {
  SamxTensor *w0, *b0, *w1, *b1, *w3, *b3;
} Upscaling;

static Upscaling upscaling_params(const SamModel *m) {
  return (Upscaling){sam_param(m, UPSCALING "0.weight"), sam_param(m, UPSCALING "0.bias"),
                     sam_param(m, UPSCALING "1.weight"), sam_param(m, UPSCALING "1.bias"),
                     sam_param(m, UPSCALING "3.weight"), sam_param(m, UPSCALING "3.bias")};
}

// The upscaling in training (ref: output_upscaling: ConvTranspose2d 2x2/2, LayerNorm2d, GELU,
// ConvTranspose2d 2x2/2, GELU), F32 ops that record, from the stream keys [P, g*g, C] permuted.
static SamxTensor *upscale_training(SamxCtx *ctx, const SamModel *m, SamxTensor *keys, int64_t g) {
  SamxTensor *x = samx_reshape(ctx, SAM_PERMUTE(ctx, keys, 0, 2, 1), SHAPE(keys->shape[0], keys->shape[2], g, g));
  Upscaling u = upscaling_params(m);
  SamxTensor *up =
      samx_gelu(ctx, samx_layernorm2d(ctx, samx_conv_transpose2d(ctx, x, u.w0, u.b0, 2, 0), u.w1, u.b1, LN2D_EPS));
  return samx_gelu(ctx, samx_conv_transpose2d(ctx, up, u.w3, u.b3, 2, 0));
}

// The same in inference, every precision, from keys as it lies: the first transposed convolution reads
// it channels-last (no permuted copy), its output is normalised and activated in place, so nothing is
// left below it to hand back at the `tail` mark (queries is kept) and the release moves nothing. The
// convolutions store their bias added (in bf16 with the GELU, rounded once) in the stream's dtype
// (samx_matmul reads a BF16 b as it is); in fp32 the values are upscale_training's bit for bit.
static SamxTensor *upscale_inference(SamxCtx *ctx, const SamModel *m, SamxTensor *keys, int64_t g, size_t tail,
                                     SamxTensor *queries) {
  SamxDType dt = keys->dtype;
  SamxTensor *x = samx_reshape(ctx, keys, SHAPE(keys->shape[0], g, g, keys->shape[2]));
  Upscaling u = upscaling_params(m);
  SamxTensor *up = samx_conv_transpose2d_act_nhwc(ctx, x, u.w0, u.b0, 2, 0, -1, dt);
  samx_gelu_(ctx, samx_layernorm2d_(ctx, up, u.w1, u.b1, LN2D_EPS));
  // The final attention's tensors are dead before the widest output.
  samx_ctx_release_keep(ctx, tail, (SamxTensor *[]){queries, up}, 2);
  if (dt == SAMX_BF16) return samx_conv_transpose2d_act(ctx, up, u.w3, u.b3, 2, 0, SAMX_ACT_GELU, dt);
  // F32: samx_gelu's own loop, whose erff (vectorised over large tensors on the CPU) the fused store's
  // does not match bit for bit.
  return samx_gelu_(ctx, samx_conv_transpose2d_act(ctx, up, u.w3, u.b3, 2, 0, -1, dt));
}

void sam_decode_core(SamxCtx *ctx, SamModel *m, SamxTensor *image_emb, const int *img_index, SamxTensor *tokens,
                     SamxTensor *dense, SamxTensor **queries_out, SamxTensor **up_out) {
  const SamConfig *c = &m->cfg;
  int64_t P = tokens->shape[0], C = c->prompt_dim, g = sam_embed_grid(c);
  SamxDType st = stream_dtype(ctx, m);
  // Inference keeps only what the next step reads (bench/results/2026-12-07-decoder-memory).
  int reuse = !ctx->recording;
  size_t prep = samx_ctx_mark(ctx);
  SamxTensor *keys = image_stream(ctx, image_emb, img_index, dense, (int)P, g, st, reuse);
  SamxTensor *pe = sam_as_dtype(ctx, sam_dense_pe(ctx, m), st);
  pe = SAM_PERMUTE(ctx, samx_reshape(ctx, pe, SHAPE(1, C, g * g)), 0, 2, 1);
  tokens = sam_as_dtype(ctx, tokens, st);
  // What the stream was made from (per-prompt f32 copies when the dense prompts differ per prompt).
  if (reuse) samx_ctx_release_keep(ctx, prep, (SamxTensor *[]){pe, tokens, keys}, 3);
  SamxTensor *queries = tokens;
  for (int i = 0; i < c->dec_depth; i++) {
    two_way_block(ctx, m, i, &queries, &keys, tokens, pe);
    // Back to the prep's mark: the block's input stream goes too (what is below it stays).
    if (reuse) samx_ctx_release_keep(ctx, prep, (SamxTensor *[]){pe, tokens, queries, keys}, 4);
  }
  size_t tail = samx_ctx_mark(ctx);
  SamxTensor *q = samx_add(ctx, queries, tokens), *k = samx_add(ctx, keys, pe);
  SamxTensor *att = dec_attention(ctx, m, "mask_decoder.transformer.final_attn_token_to_image", q, k, keys, queries);
  *queries_out = sam_as_dtype(ctx, dec_norm(ctx, m, att, "mask_decoder.transformer", "norm_final_attn"), SAMX_F32);
  if (reuse) samx_ctx_release_keep(ctx, tail, queries_out, 1);
  // ref: predict_masks: upscale the image side
  if (reuse)
    *up_out = upscale_inference(ctx, m, keys, g, tail, *queries_out);
  else
    *up_out = upscale_training(ctx, m, keys, g);
}

SamxTensor *sam_decoder_mlp(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, int layers) {
  return dec_mlp(ctx, m, x, prefix, layers);
}

SamxTensor *sam_decoder_masks(SamxCtx *ctx, const SamModel *m, SamxTensor *queries, int first, int n,
                              const char *prefix, SamxTensor *up) {
  int64_t P = queries->shape[0], C = queries->shape[2], cu = up->shape[1], hw = up->shape[2] * up->shape[3];
  SamxTensor **hyper = (SamxTensor **)malloc(sizeof(SamxTensor *) * (size_t)n);
  for (int i = 0; i < n; i++) {
    char name[160];
    snprintf(name, sizeof name, "%s.%d", prefix, i);
    SamxTensor *tok = samx_reshape(ctx, samx_slice(ctx, queries, 1, first + i, first + i + 1), SHAPE(P, C));
    hyper[i] = samx_reshape(ctx, dec_mlp(ctx, m, tok, name, 3), SHAPE(P, 1, cu));
  }
  SamxTensor *hyper_in = samx_concat_many(ctx, hyper, n, 1);
  free(hyper);
  SamxTensor *masks = samx_matmul(ctx, hyper_in, samx_reshape(ctx, up, SHAPE(P, cu, hw)), 0, 0);
  return samx_reshape(ctx, masks, SHAPE(P, n, up->shape[2], up->shape[3]));
}

void sam_decode(SamxCtx *ctx, SamModel *m, SamxTensor *image_emb, const int *img_index, SamxTensor *sparse,
                SamxTensor *dense, int multimask, SamxTensor **low_res, SamxTensor **iou) {
  const SamConfig *c = &m->cfg;
  int64_t P = sparse->shape[0], C = c->prompt_dim, nmt = c->num_mask_tokens;
  // ref: MaskDecoder.predict_masks: tokens = [iou_token, mask_tokens, sparse prompts]
  SamxTensor *out_tok[2] = {sam_param(m, "mask_decoder.iou_token.weight"), sam_param(m, "mask_decoder.mask_tokens.weight")};
  SamxTensor *fixed = samx_reshape(ctx, samx_concat(ctx, out_tok, 2, 0), SHAPE(1, 1 + nmt, C));
  fixed = samx_add(ctx, samx_zeros(ctx, SAMX_F32, SHAPE(P, 1 + nmt, C)), fixed);
  SamxTensor *parts[2] = {fixed, sparse};
  SamxTensor *tokens = sparse->shape[1] ? samx_concat(ctx, parts, 2, 1) : fixed;
  SamxTensor *queries, *up;
  sam_decode_core(ctx, m, image_emb, img_index, tokens, dense, &queries, &up);
  // ref: predict_masks: hypernetwork per mask token, IoU head on the IoU token
  SamxTensor *masks = sam_decoder_masks(ctx, m, queries, 1, (int)nmt, "mask_decoder.output_hypernetworks_mlps", up);
  SamxTensor *iou_tok = samx_reshape(ctx, samx_slice(ctx, queries, 1, 0, 1), SHAPE(P, C));
  SamxTensor *iou_pred = dec_mlp(ctx, m, iou_tok, "mask_decoder.iou_prediction_head", c->iou_depth);
  // ref: MaskDecoder.forward: multimask -> tokens 1.., else token 0 (SAM_MASKS_ALL: all of them)
  int64_t lo = multimask == SAM_MASKS_MULTI ? 1 : 0, hi = multimask ? nmt : 1;
  *low_res = samx_slice(ctx, masks, 1, lo, hi);
  *iou = samx_slice(ctx, iou_pred, 1, lo, hi);
}
