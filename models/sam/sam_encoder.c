// SAM's image encoder (ViT with windowed/global attention and decomposed relative positions).
#include <math.h>
#include <string.h>

#include "../../kernels/attention_bf16.h"
#include "sam_internal.h"

// The dtype of the encoder's activations: BF16 for inference in bf16 precision (the residual stream,
// LayerNorm, GELU, residual adds and attention's q, k, v), else F32.
static SamxDType act_dtype(const SamxCtx *ctx) {
  return ctx->precision == SAMX_PRECISION_BF16 && !ctx->recording ? SAMX_BF16 : SAMX_F32;
}

SamxTensor *sam_as_dtype(SamxCtx *ctx, SamxTensor *t, SamxDType dt) {
  return t->dtype == dt ? t : samx_cast(ctx, t, dt);
}

SamxDType sam_attention_dtype(const SamxCtx *ctx, int64_t head_dim) {
  return ctx->precision == SAMX_PRECISION_BF16 && samx_attention_bf16_head_dim_ok(head_dim) ? SAMX_BF16 : SAMX_F32;
}

// The layer `prefix`'s bias, or NULL: qkv may have none.
static SamxTensor *layer_bias(const SamModel *m, const char *prefix) {
  char name[256];
  snprintf(name, sizeof name, "%s.bias", prefix);
  return samx_params_find(&m->params, name);
}

SamxTensor *sam_linear(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix) {
  return samx_linear(ctx, x, sam_param(m, "%s.weight", prefix), layer_bias(m, prefix));
}

SamxTensor *sam_linear_to(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, SamxDType act) {
  if (act != SAMX_BF16) return sam_linear(ctx, m, x, prefix);
  return samx_linear_bf16(ctx, x, sam_param(m, "%s.weight", prefix), layer_bias(m, prefix));
}

SamxTensor *sam_index_tensor(SamxCtx *ctx, SamxShape s, const int32_t *host) {
  SamxTensor *t = samx_new(ctx, SAMX_I32, s);
  samx_tensor_write(t, host);
  return t;
}

// ref: get_rel_pos (image_encoder.py) for q_size == k_size == n: rows R[i, j] = table[i - j + n - 1].
static SamxTensor *gather_rel_pos(SamxCtx *ctx, SamxTensor *table, int n) {
  int32_t idx[128 * 128];
  SAMX_ASSERT(n <= 128, "relative-position grid of %d exceeds 128", n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) idx[i * n + j] = i - j + n - 1;
  return samx_embedding(ctx, table, sam_index_tensor(ctx, SHAPE(n, n), idx));  // [n, n, hd]
}

// ref: add_decomposed_rel_pos: rel_h[b,y,x,ky] = <q[b,y,x], Rh[y,ky]>, rel_w[b,y,x,kx] = <q[b,y,x], Rw[x,kx]>,
// with the unscaled q. q [b, nH, h*w, hd] -> rel_h [b, nH, h*w, h], rel_w [b, nH, h*w, w].
static void rel_pos_terms(SamxCtx *ctx, const SamModel *m, int blk, SamxTensor *q, int h, int w, SamxTensor **rel_h,
                          SamxTensor **rel_w) {
  int64_t b = q->shape[0], nh = q->shape[1], hd = q->shape[3], bn = b * nh;
  SamxTensor *rh = gather_rel_pos(ctx, sam_param(m, "image_encoder.blocks.%d.attn.rel_pos_h", blk), h);
  SamxTensor *rw = gather_rel_pos(ctx, sam_param(m, "image_encoder.blocks.%d.attn.rel_pos_w", blk), w);
  SamxTensor *rq = samx_reshape(ctx, q, SHAPE(bn, h, w, hd));
  SamxTensor *qh = samx_reshape(ctx, SAM_PERMUTE(ctx, rq, 1, 0, 2, 3), SHAPE(h, bn * w, hd));
  SamxTensor *th = samx_reshape(ctx, samx_matmul(ctx, qh, rh, 0, 1), SHAPE(h, bn, w, h));
  *rel_h = samx_reshape(ctx, SAM_PERMUTE(ctx, th, 1, 0, 2, 3), SHAPE(b, nh, (int64_t)h * w, h));
  SamxTensor *qw = samx_reshape(ctx, SAM_PERMUTE(ctx, rq, 2, 0, 1, 3), SHAPE(w, bn * h, hd));
  SamxTensor *tw = samx_reshape(ctx, samx_matmul(ctx, qw, rw, 0, 1), SHAPE(w, bn, h, w));
  *rel_w = samx_reshape(ctx, SAM_PERMUTE(ctx, tw, 1, 2, 0, 3), SHAPE(b, nh, (int64_t)h * w, w));
}

// bf16 inference without an adapter: the attention reads q, k and v where the qkv GEMM wrote them
// ([b, H, W, 3, nH, hd]) and writes its output as the projection reads it ([b, H, W, nH, hd]). The
// reference's head permutes and q/k/v slices (105 MB of traffic per ViT-B window block; estimated) do
// not exist, nor, in windowed blocks, its window partition and unpartition: the qkv GEMM runs on the
// image's tokens (4,096 rows on ViT-B, not 4,900 window-padded ones) and the attention reads a
// padding token as the qkv of a zero input, the bias (rounded to bf16 as the GEMM's epilogue takes
// it). The relative-position terms are computed inside the attention from its q tile (the reference's
// slice, cast, permutes and batched products: about 100 MB more; then a kernel of their own, whose F32
// terms went through memory: 24 MiB per ViT-B global block). q enters them as bf16 widened exactly
// (PyTorch's autocast gives its einsums the same bf16 q). x [b, H, W, D] (the image, not
// windows) -> [b, H, W, D].
static SamxTensor *packed_attention(SamxCtx *ctx, const SamModel *m, int blk, SamxTensor *x, const char *qkv_name,
                                    int win) {
  const SamConfig *c = &m->cfg;
  int64_t D = c->enc_dim, nh = c->enc_heads, hd = D / nh;
  SamxTensor *qkv = sam_linear_to(ctx, m, x, qkv_name, SAMX_BF16);  // [b, H, W, 3 D]
  SamxTensor *bias = layer_bias(m, qkv_name), *pad = win && bias ? samx_cast(ctx, bias, SAMX_BF16) : NULL;
  const float scale = 1.0f / sqrtf((float)hd);
  if (!c->rel_pos) return samx_attention_packed_bf16(ctx, qkv, nh, win, pad, NULL, NULL, scale);
  return samx_attention_packed_rel_bf16(ctx, qkv, nh, win, pad,
                                        sam_param(m, "image_encoder.blocks.%d.attn.rel_pos_h", blk),
                                        sam_param(m, "image_encoder.blocks.%d.attn.rel_pos_w", blk), scale);
}

// ref: Attention.forward (image_encoder.py) up to its output projection, which the caller applies
// (encoder_block). x [b, h, w, D] -> [b, h, w, D].
static SamxTensor *encoder_attention(SamxCtx *ctx, const SamModel *m, int blk, SamxTensor *x) {
  const SamConfig *c = &m->cfg;
  int64_t b = x->shape[0], h = x->shape[1], w = x->shape[2], D = c->enc_dim, nh = c->enc_heads, hd = D / nh;
  char name[128];
  snprintf(name, sizeof name, "image_encoder.blocks.%d.attn.qkv", blk);
  SamxTensor *const *lora = m->lora[blk];
  SamxTensor *proj;
  // In bf16 the attention runs on the tensor cores (head dims they take): in inference with LoRA's f32
  // qkv (without an adapter encoder_block takes packed_attention), q, k and v are cast to bf16 after
  // the head permute and the bf16 output goes through the permute back; in training the qkv layer
  // writes bf16 (lt), its head permute and slices move bf16, and the attention's bf16 output goes back
  // through the permute and into the projection as it is. What training keeps for the backward is then
  // bf16, as under PyTorch's autocast; the gradients are fp32 (the tensor-core backward gives f32 dq,
  // dk, dv, drel_h and drel_w), so both passes of the attention run on the tensor cores.
  SamxDType at = sam_attention_dtype(ctx, hd), lt = at;
  if (lora[0]) {  // ref: _LoRA_qkv.forward (P2SAM sam_lora_image_encoder.py:42-48)
    x = sam_as_dtype(ctx, x, SAMX_F32);
    proj = samx_lora_qkv(ctx, x, sam_param(m, "%s.weight", name), layer_bias(m, name), lora[0], lora[1], lora[2],
                         lora[3]);
  } else {
    proj = sam_linear_to(ctx, m, x, name, lt);
  }
  SamxTensor *qkv = samx_reshape(ctx, proj, SHAPE(b, h * w, 3, nh, hd));
  qkv = SAM_PERMUTE(ctx, qkv, 2, 0, 3, 1, 4);  // [3, b, nH, T, hd]
  SamxTensor *q = samx_reshape(ctx, samx_slice(ctx, qkv, 0, 0, 1), SHAPE(b, nh, h * w, hd));
  SamxTensor *k = samx_reshape(ctx, samx_slice(ctx, qkv, 0, 1, 2), SHAPE(b, nh, h * w, hd));
  SamxTensor *v = samx_reshape(ctx, samx_slice(ctx, qkv, 0, 2, 3), SHAPE(b, nh, h * w, hd));
  SamxTensor *rel_h = NULL, *rel_w = NULL;
  // The relative-position products take q as the qkv layer wrote it (bf16 in bf16, widened exactly;
  // PyTorch's autocast gives the einsums the same bf16 q) and stay fp32 products.
  if (c->rel_pos) rel_pos_terms(ctx, m, blk, sam_as_dtype(ctx, q, SAMX_F32), (int)h, (int)w, &rel_h, &rel_w);
  q = sam_as_dtype(ctx, q, at), k = sam_as_dtype(ctx, k, at), v = sam_as_dtype(ctx, v, at);
  SamxTensor *o = sam_as_dtype(ctx, samx_attention(ctx, q, k, v, rel_h, rel_w, 1.0f / sqrtf((float)hd)), lt);
  return samx_reshape(ctx, SAM_PERMUTE(ctx, o, 0, 2, 1, 3), SHAPE(b, h, w, D));
}

// GELU(linear(h)) for the MLP's first layer `prefix`. In bf16 inference the GELU is the GEMM's epilogue
// (samx_linear_bf16_gelu: cuBLASLt's tanh form, within 4.8e-4 of nn.GELU's), so the 4x-wide hidden
// layer is written once, in bf16, and never read back by an activation pass. In bf16 training the GEMM
// writes the bf16 pre-activation and nn.GELU's erf form runs on it (the backward needs both; an
// epilogue would keep neither): the 4x-wide layer is kept twice in bf16, not twice in f32 and once more
// as the second GEMM's bf16 operand.
static SamxTensor *mlp_hidden(SamxCtx *ctx, const SamModel *m, SamxTensor *h, const char *prefix, SamxDType act) {
  SamxTensor *w = sam_param(m, "%s.weight", prefix), *b = layer_bias(m, prefix);
  if (act == SAMX_BF16) return samx_linear_bf16_gelu(ctx, h, w, b);
  if (ctx->precision == SAMX_PRECISION_BF16) return samx_gelu(ctx, samx_linear_bf16(ctx, h, w, b));
  return samx_gelu(ctx, sam_linear(ctx, m, h, prefix));
}

// In place in inference (sam_internal.h); a new tensor in training and for the f32 stream of bf16.
SamxTensor *sam_residual_linear(SamxCtx *ctx, const SamModel *m, SamxTensor *x, SamxTensor *h, const char *prefix) {
  SamxTensor *w = sam_param(m, "%s.weight", prefix), *b = layer_bias(m, prefix);
  if (x->dtype == SAMX_BF16) return samx_linear_bf16_residual(ctx, h, w, b, x);
  if (ctx->recording || ctx->precision == SAMX_PRECISION_BF16) return samx_linear_residual(ctx, h, w, b, x);
  samx_add_(ctx, x, sam_linear(ctx, m, h, prefix));
  return x;
}

// The block's norm `which` (norm1, norm2). In bf16 its output is bf16 where a bf16 GEMM reads it
// (samx_layernorm_bf16: in training, the f32 stream normalised and rounded once, as the GEMM would
// round its operand, and never kept in f32); LoRA's fp32 products read norm1's output in f32.
static SamxTensor *block_norm(SamxCtx *ctx, const SamModel *m, int blk, const char *which, SamxTensor *x) {
  SamxTensor *w = sam_param(m, "image_encoder.blocks.%d.%s.weight", blk, which);
  SamxTensor *b = sam_param(m, "image_encoder.blocks.%d.%s.bias", blk, which);
  int lora_reads = !strcmp(which, "norm1") && m->lora[blk][0];
  if (ctx->precision == SAMX_PRECISION_BF16 && !lora_reads) return samx_layernorm_bf16(ctx, x, w, b, m->cfg.ln_eps);
  return samx_layernorm(ctx, x, w, b, m->cfg.ln_eps);
}

// ref: Block.forward (image_encoder.py): pre-norm attention (windowed with zero padding and no
// mask, or global) and MLP, each with a residual.
static SamxTensor *encoder_block(SamxCtx *ctx, const SamModel *m, int blk, SamxTensor *x) {
  const SamConfig *c = &m->cfg;
  int64_t H = x->shape[1], W = x->shape[2];
  SamxDType act = act_dtype(ctx);
  x = sam_as_dtype(ctx, x, act);
  SamxTensor *h = block_norm(ctx, m, blk, "norm1", x);
  int windowed = !c->global_block[blk] && c->window > 0;
  char name[128];
  snprintf(name, sizeof name, "image_encoder.blocks.%d.attn.qkv", blk);
  const int packed = act == SAMX_BF16 && samx_attention_bf16_head_dim_ok(c->enc_dim / c->enc_heads) && !m->lora[blk][0];
  if (packed) {
    h = packed_attention(ctx, m, blk, h, name, windowed ? c->window : 0);
  } else {
    if (windowed) h = samx_window_partition(ctx, h, c->window);
    h = encoder_attention(ctx, m, blk, h);
  }
  snprintf(name, sizeof name, "image_encoder.blocks.%d.attn.proj", blk);
  if (ctx->precision == SAMX_PRECISION_BF16) {
    // The projection is per token, so it commutes with the unpartition: unpartition first (the padding
    // tokens are dropped before the GEMM, not after) and let the GEMM add the residual (in training too,
    // onto the f32 stream: samx_linear_residual).
    if (windowed && !packed) h = samx_window_unpartition(ctx, h, c->window, H, W);
    x = sam_residual_linear(ctx, m, x, h, name);
  } else {
    // fp32 and tf32: the reference order (projection, unpartition, add), also in inference, where the
    // projection on the image's tokens would save a sixth of a window block's GEMM rows on ViT-B. The
    // CPU's BLAS does not give a row the same bits whatever the other rows: OpenBLAS 0.3.21's sgemm
    // (one thread) gives 2,576 of the first 4,096 rows' 3.1M values other bits at M = 4,900 than at
    // M = 4,096 (K = N = 768), so the order would move every fp32 result downstream of a window block.
    h = sam_linear(ctx, m, h, name);
    if (windowed) h = samx_window_unpartition(ctx, h, c->window, H, W);
    x = samx_add(ctx, x, h);
  }
  // ref: MLPBlock (common.py): lin1 -> GELU -> lin2
  h = block_norm(ctx, m, blk, "norm2", x);
  snprintf(name, sizeof name, "image_encoder.blocks.%d.mlp.lin1", blk);
  h = mlp_hidden(ctx, m, h, name, act);
  snprintf(name, sizeof name, "image_encoder.blocks.%d.mlp.lin2", blk);
  return sam_residual_linear(ctx, m, x, h, name);
}

// ref: PatchEmbed.forward (conv with kernel = stride = patch, then channels-last) and the absolute
// positional embedding. In bf16 inference the convolution is what it is when its stride is its kernel:
// a linear layer on the image's patches, which are two permutes of the image (what the convolution's
// im2col also moves), and the GEMM adds pos_embed as its residual (beta C over a bf16 copy of it, one
// rounding). The f32 [B, D, g, g] output, its permute to channels-last, the add and the cast to bf16
// are gone (about 60 MB of traffic per ViT-B image, estimated).
static SamxTensor *patch_embed(SamxCtx *ctx, const SamModel *m, SamxTensor *img, SamxDType act) {
  SamxTensor *w = sam_param(m, "image_encoder.patch_embed.proj.weight");
  SamxTensor *b = sam_param(m, "image_encoder.patch_embed.proj.bias"), *pos = sam_param(m, "image_encoder.pos_embed");
  int64_t B = img->shape[0], C = img->shape[1], p = m->cfg.patch, g = img->shape[2] / p, D = w->shape[0];
  if (act != SAMX_BF16) return samx_add(ctx, SAM_PERMUTE(ctx, samx_conv2d(ctx, img, w, b, (int)p, 0), 0, 2, 3, 1), pos);
  // [B, C, g, p, g, p] -> [B, g, g, C, p, p], in two moves of at most 4 dims
  SamxTensor *t = SAM_PERMUTE(ctx, samx_reshape(ctx, img, SHAPE(B * C * g, p, g, p)), 0, 2, 1, 3);
  t = SAM_PERMUTE(ctx, samx_reshape(ctx, t, SHAPE(B, C, g * g, p * p)), 0, 2, 1, 3);
  t = samx_reshape(ctx, t, SHAPE(B, g, g, C * p * p));
  SamxTensor *res = samx_cast(ctx, pos, SAMX_BF16);  // [1, g, g, D], repeated over the batch
  if (B > 1) res = samx_add(ctx, samx_zeros(ctx, SAMX_BF16, SHAPE(B, g, g, D)), res);
  return samx_linear_bf16_residual(ctx, t, samx_reshape(ctx, w, SHAPE(D, C * p * p)), b, res);
}

// ref: ImageEncoderViT.neck: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d (no conv biases), on the
// channels-last tokens x [B, H, W, D]. In bf16 inference the 1x1 conv is what it is on channels-last
// tokens, a linear layer without bias (one bf16 GEMM on the blocks' bf16 output), and LayerNorm2d over
// channels is the bf16 LayerNorm over the last dim: the D-wide stream is never cast to F32 or permuted,
// only the 256-channel one before the 3x3 convolution (about 40 MB of traffic less per ViT-B image,
// estimated).
static SamxTensor *neck(SamxCtx *ctx, const SamModel *m, SamxTensor *x) {
  const SamConfig *c = &m->cfg;
  SamxTensor *w0 = sam_param(m, "image_encoder.neck.0.weight"), *w1 = sam_param(m, "image_encoder.neck.1.weight");
  SamxTensor *b1 = sam_param(m, "image_encoder.neck.1.bias");
  if (x->dtype == SAMX_BF16) {
    x = samx_linear_bf16(ctx, x, samx_reshape(ctx, w0, SHAPE(w0->shape[0], w0->shape[1])), NULL);
    x = SAM_PERMUTE(ctx, samx_layernorm(ctx, x, w1, b1, c->ln_eps), 0, 3, 1, 2);
    x = sam_as_dtype(ctx, x, SAMX_F32);
  } else {
    x = samx_conv2d(ctx, SAM_PERMUTE(ctx, x, 0, 3, 1, 2), w0, NULL, 1, 0);
    x = samx_layernorm2d(ctx, x, w1, b1, c->ln_eps);
  }
  x = samx_conv2d(ctx, x, sam_param(m, "image_encoder.neck.2.weight"), NULL, 1, 1);
  return samx_layernorm2d(ctx, x, sam_param(m, "image_encoder.neck.3.weight"),
                          sam_param(m, "image_encoder.neck.3.bias"), c->ln_eps);
}

SamxTensor *sam_encode(SamxCtx *ctx, SamModel *m, SamxTensor *img) {
  const SamConfig *c = &m->cfg;
  samx_check_shape("sam_encode", img, SHAPE(img->shape[0], 3, c->img_size, c->img_size));
  // Inference keeps one block's activations alive at a time: every block's output moves down to the
  // same mark, over its dead input (a mark per block would keep each block's input below the next
  // mark: 12 MiB per block on ViT-B, 20 on ViT-H).
  int reuse = !ctx->recording;
  const size_t mark = samx_ctx_mark(ctx);
  SamxTensor *x = patch_embed(ctx, m, img, act_dtype(ctx));
  if (reuse) x = samx_ctx_release_to(ctx, mark, x);
  for (int i = 0; i < c->enc_depth; i++) {
    x = encoder_block(ctx, m, i, x);
    if (reuse) x = samx_ctx_release_to(ctx, mark, x);
  }
  return neck(ctx, m, x);
}
