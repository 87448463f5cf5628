#include "ops_attention.h"

#include <string.h>

#include "../kernels/attention.h"
#include "../kernels/attention_bf16.h"
#include "ops_common.h"
#include "ops_shape.h"

typedef struct {
  SamxAttnDims dims;
  SamxTensor *lse;  // [B, H, Tq] log-sum-exp of each row of logits, saved by forward
} AttnArgs;

static float *f32_or_null(SamxTensor *t) { return t ? samx_f32(t) : NULL; }

// Scratch for one CPU launch (per-thread blocks of logits); NULL on other devices.
static SamxTensor *cpu_scratch(SamxCtx *ctx, const SamxTensor *q, SamxAttnDims d) {
  if (q->device.type != SAMX_CPU) return NULL;
  return samx_new(ctx, SAMX_F32, SHAPE((int64_t)samx_cpu_attention_scratch_floats(d)));
}

// ---- bf16: tensor cores on CUDA; on the CPU the fp32 kernels on the bf16 values (the reference) ----

static uint16_t *u16(SamxTensor *t) { return t ? (uint16_t *)t->data : NULL; }
// Part i (0 q, 1 k, 2 v) of a packed qkv [..., 3 * heads * D]: its first element.
static inline const uint16_t *qkv_part(SamxTensor *qkv, int64_t heads, int64_t D, int i) {
  return u16(qkv) + i * heads * D;
}

// An fp32 copy of a BF16 tensor on the CPU (exact).
static float *widen(SamxCtx *ctx, SamxTensor *t) {
  SamxTensor *w = samx_new(ctx, SAMX_F32, samx_shape_of(t));
  for (int64_t i = 0; i < t->numel; i++) samx_f32(w)[i] = samx_bf16_to_f32(u16(t)[i]);
  return samx_f32(w);
}

// A CPU tensor's values as fp32 (BF16 ones widened): the CPU runs BF16 attention in fp32.
static float *cpu_f32(SamxCtx *ctx, SamxTensor *t) { return t->dtype == SAMX_BF16 ? widen(ctx, t) : samx_f32(t); }

static void attention_backward(SamxCtx *ctx, SamxNode *node) {
  const AttnArgs *a = samx_node_args(node, AttnArgs);
  const SamxAttnDims d = a->dims;
  SamxTensor *q = node->in[0], *k = node->in[1], *v = node->in[2], *out = node->out;
  SamxTensor *rel_h = node->n_in > 3 ? node->in[3] : NULL, *rel_w = node->n_in > 3 ? node->in[4] : NULL;
  SamxTensor *dq = samx_grad_of(ctx, q), *dk = samx_grad_of(ctx, k), *dv = samx_grad_of(ctx, v);
  SamxTensor *drel_h = samx_grad_of(ctx, rel_h), *drel_w = samx_grad_of(ctx, rel_w);
  if (!dq && !dk && !dv && !drel_h && !drel_w) return;
  // CUDA's scratch is delta [B, H, Tq] = rowsum(dout * out).
  SamxTensor *scratch = q->device.type == SAMX_CPU ? cpu_scratch(ctx, q, d)
                                                   : samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq));
  SAMX_ON_DEVICE(q,
                 samx_cpu_attention_bwd(d, cpu_f32(ctx, q), cpu_f32(ctx, k), cpu_f32(ctx, v), f32_or_null(rel_h),
                                        f32_or_null(rel_w), cpu_f32(ctx, out), samx_f32(a->lse), samx_f32(out->grad),
                                        f32_or_null(dq), f32_or_null(dk), f32_or_null(dv), f32_or_null(drel_h),
                                        f32_or_null(drel_w), samx_f32(scratch)),
                 q->dtype == SAMX_BF16
                     ? samx_cuda_attention_bf16_bwd(d, u16(q), u16(k), u16(v), f32_or_null(rel_h), f32_or_null(rel_w),
                                                    u16(out), samx_f32(a->lse), samx_f32(out->grad), f32_or_null(dq),
                                                    f32_or_null(dk), f32_or_null(dv), f32_or_null(drel_h),
                                                    f32_or_null(drel_w), samx_f32(scratch))
                     : samx_cuda_attention_bwd(d, samx_f32(q), samx_f32(k), samx_f32(v), f32_or_null(rel_h),
                                               f32_or_null(rel_w), samx_f32(out), samx_f32(a->lse),
                                               samx_f32(out->grad), f32_or_null(dq), f32_or_null(dk), f32_or_null(dv),
                                               f32_or_null(drel_h), f32_or_null(drel_w), samx_f32(scratch)));
}

// Checks the bias tables against the sizes in d (B, H, Tq, Tk) and sets d's KH and KW from them.
static void check_rel(const char *op, SamxTensor *rel_h, SamxTensor *rel_w, SamxAttnDims *d) {
  char a[96], b[96];
  SAMX_ASSERT(!rel_h == !rel_w, "%s: rel_h and rel_w must be given together (got %s and %s)", op,
              rel_h ? "rel_h" : "NULL", rel_w ? "rel_w" : "NULL");
  if (!rel_h) return;
  SAMX_ASSERT(rel_h->ndim == 4 && rel_w->ndim == 4, "%s: rel_h %s and rel_w %s must be [B, H, Tq, K]", op,
              samx_shape_str(samx_shape_of(rel_h), a, sizeof a), samx_shape_str(samx_shape_of(rel_w), b, sizeof b));
  d->KH = rel_h->shape[3];
  d->KW = rel_w->shape[3];
  samx_check_shape(op, rel_h, SHAPE(d->B, d->H, d->Tq, d->KH));
  samx_check_shape(op, rel_w, SHAPE(d->B, d->H, d->Tq, d->KW));
  SAMX_ASSERT(d->KH * d->KW == d->Tk, "%s: rel_h %s and rel_w %s give %lld x %lld keys, the attention has %lld", op,
              samx_shape_str(samx_shape_of(rel_h), a, sizeof a), samx_shape_str(samx_shape_of(rel_w), b, sizeof b),
              (long long)d->KH, (long long)d->KW, (long long)d->Tk);
}

// Checks the arguments of samx_attention and returns the sizes of the call.
static SamxAttnDims check_args(SamxTensor *q, SamxTensor *k, SamxTensor *v, SamxTensor *rel_h, SamxTensor *rel_w,
                               float scale) {
  const char *op = "attention";
  char a[96], b[96];
  SamxTensor *all[5] = {q, k, v, rel_h, rel_w};
  for (int i = 0; i < 5; i++)
    if (all[i]) {
      if (i < 3 && q->dtype == SAMX_BF16)
        SAMX_ASSERT(all[i]->dtype == SAMX_BF16, "attention: q is BF16, so %s must be too (got %s)", (const char *[]){"q", "k", "v"}[i],
                    samx_dtype_name(all[i]->dtype));
      else
        samx_check_f32(op, all[i]);
      samx_check_same_device(op, q, all[i]);
    }
  SAMX_ASSERT(q->ndim == 4 && k->ndim == 4, "attention: q %s and k %s must be [B, H, T, D]",
              samx_shape_str(samx_shape_of(q), a, sizeof a), samx_shape_str(samx_shape_of(k), b, sizeof b));
  SamxAttnDims d = {.B = q->shape[0], .H = q->shape[1], .Tq = q->shape[2], .Tk = k->shape[2], .D = q->shape[3],
                    .scale = scale};
  SAMX_ASSERT(d.D >= 1 && d.D <= SAMX_ATTN_MAX_D, "attention: head dim %lld of q %s is not in [1, %d]",
              (long long)d.D, samx_shape_str(samx_shape_of(q), a, sizeof a), SAMX_ATTN_MAX_D);
  SAMX_ASSERT(q->dtype != SAMX_BF16 || samx_attention_bf16_head_dim_ok(d.D),
              "attention: BF16 q %s has head dim %lld; the tensor-core path takes 16, 32, 64 or 128",
              samx_shape_str(samx_shape_of(q), a, sizeof a), (long long)d.D);
  samx_check_shape(op, k, SHAPE(d.B, d.H, d.Tk, d.D));
  samx_check_shape(op, v, SHAPE(d.B, d.H, d.Tk, d.D));
  check_rel(op, rel_h, rel_w, &d);
  return d;
}

static void cpu_bf16_fwd(SamxCtx *ctx, SamxAttnDims d, SamxTensor *q, SamxTensor *k, SamxTensor *v,
                         SamxTensor *rel_h, SamxTensor *rel_w, SamxTensor *out, SamxTensor *lse) {
  SamxTensor *o32 = samx_new(ctx, SAMX_F32, samx_shape_of(out));
  samx_cpu_attention_fwd(d, widen(ctx, q), widen(ctx, k), widen(ctx, v), f32_or_null(rel_h), f32_or_null(rel_w),
                         samx_f32(o32), samx_f32(lse), samx_f32(cpu_scratch(ctx, q, d)));
  for (int64_t i = 0; i < out->numel; i++) u16(out)[i] = samx_f32_to_bf16(samx_f32(o32)[i]);
}

static void attention_bf16_fwd(SamxCtx *ctx, SamxAttnDims d, SamxTensor *q, SamxTensor *k, SamxTensor *v,
                               SamxTensor *rel_h, SamxTensor *rel_w, SamxTensor *out, SamxTensor *lse) {
  SAMX_ON_DEVICE(q, cpu_bf16_fwd(ctx, d, q, k, v, rel_h, rel_w, out, lse),
                 samx_cuda_attention_bf16_fwd(d, u16(q), u16(k), u16(v), f32_or_null(rel_h), f32_or_null(rel_w),
                                              u16(out), samx_f32(lse)));
}

SamxTensor *samx_attention(SamxCtx *ctx, SamxTensor *q, SamxTensor *k, SamxTensor *v, SamxTensor *rel_h,
                           SamxTensor *rel_w, float scale) {
  const SamxAttnDims d = check_args(q, k, v, rel_h, rel_w, scale);
  const int bf16 = q->dtype == SAMX_BF16;
  SamxTensor *out = samx_new(ctx, q->dtype, SHAPE(d.B, d.H, d.Tq, d.D));
  SamxTensor *lse = samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq));
  if (bf16) {
    attention_bf16_fwd(ctx, d, q, k, v, rel_h, rel_w, out, lse);
  } else {
    SamxTensor *scratch = cpu_scratch(ctx, q, d);
    SAMX_ON_DEVICE(q,
                   samx_cpu_attention_fwd(d, samx_f32(q), samx_f32(k), samx_f32(v), f32_or_null(rel_h),
                                          f32_or_null(rel_w), samx_f32(out), samx_f32(lse), samx_f32(scratch)),
                   samx_cuda_attention_fwd(d, samx_f32(q), samx_f32(k), samx_f32(v), f32_or_null(rel_h),
                                           f32_or_null(rel_w), samx_f32(out), samx_f32(lse)));
  }
  SamxTensor *in[5] = {q, k, v, rel_h, rel_w};
  SamxNode *node = samx_record(ctx, bf16 ? "attention_bf16" : "attention", attention_backward, out, rel_h ? 5 : 3, in);
  if (node) {
    AttnArgs *args = samx_node_args(node, AttnArgs);
    args->dims = d;
    args->lse = lse;
    for (int i = 0; i < (rel_h ? 5 : 3); i++) samx_node_save(node, in[i]);
    samx_node_save(node, out);
    samx_node_save(node, lse);
  }
  return out;
}

// One attention call on a qkv projection's output: its sizes, the layout of its operands and the
// padding row of a windowed call.
typedef struct {
  SamxAttnDims d;
  SamxAttnLayout lay;
  int64_t h, w;  // tokens per batch entry: the image (h x w), or a window (win x win)
} PackedCall;

// Checks qkv [B, img_h, img_w, 3 * heads * D] (BF16, inference), pad (BF16 [3 * heads * D], or NULL:
// zeros) and the F32 tensors beside them, and returns the call: one batch entry per image, or per
// win x win window when win > 0.
static PackedCall packed_call(const char *op, SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                              SamxTensor *f32a, SamxTensor *f32b, float scale) {
  char s[96];
  SamxTensor *in[4] = {qkv, pad, f32a, f32b};
  samx_check_bf16_inference(op, ctx, 4, in);
  SAMX_ASSERT(qkv->dtype == SAMX_BF16 && qkv->ndim == 4 && heads > 0 && qkv->shape[3] % (3 * heads) == 0 && win >= 0,
              "%s: qkv must be BF16 [B, h, w, 3 x %lld heads x D], got %s %s (window %d)", op, (long long)heads,
              samx_dtype_name(qkv->dtype), samx_shape_str(samx_shape_of(qkv), s, sizeof s), win);
  const int64_t D = qkv->shape[3] / (3 * heads), img_h = qkv->shape[1], img_w = qkv->shape[2];
  SAMX_ASSERT(samx_attention_bf16_head_dim_ok(D), "%s: head dim %lld; the tensor-core path takes 16, 32, 64 or 128",
              op, (long long)D);
  for (int i = 2; i < 4; i++)
    if (in[i]) samx_check_f32(op, in[i]), samx_check_same_device(op, qkv, in[i]);
  if (win && !pad) pad = samx_zeros(ctx, SAMX_BF16, SHAPE(qkv->shape[3]));
  if (pad) {
    SAMX_ASSERT(pad->dtype == SAMX_BF16, "%s: pad must be BF16, got %s", op, samx_dtype_name(pad->dtype));
    samx_check_shape(op, pad, SHAPE(qkv->shape[3]));
    samx_check_same_device(op, qkv, pad);
  }
  PackedCall c;
  c.lay = samx_attn_layout_qkv(heads, D, img_h, img_w, win, win ? u16(pad) : NULL);
  c.h = win ? win : img_h, c.w = win ? win : img_w;
  c.d = (SamxAttnDims){.B = qkv->shape[0] * samx_attn_windows(&c.lay), .H = heads, .Tq = c.h * c.w, .Tk = c.h * c.w,
                       .D = D, .scale = scale};
  return c;
}

// packed_call for an op that takes SAM's tables rel_pos_h [2h - 1, D] and rel_pos_w [2w - 1, D].
static PackedCall packed_call_tables(const char *op, SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win,
                                     SamxTensor *pad, SamxTensor *table_h, SamxTensor *table_w, float scale) {
  PackedCall c = packed_call(op, ctx, qkv, heads, win, pad, table_h, table_w, scale);
  SAMX_ASSERT(table_h && table_w, "%s: needs both tables (rel_pos_h and rel_pos_w)", op);
  samx_check_shape(op, table_h, SHAPE(2 * c.h - 1, c.d.D));
  samx_check_shape(op, table_w, SHAPE(2 * c.w - 1, c.d.D));
  return c;
}

void samx_rel_pos_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                              SamxTensor *table_h, SamxTensor *table_w, SamxTensor **rel_h, SamxTensor **rel_w) {
  PackedCall c = packed_call_tables("rel_pos_packed_bf16", ctx, qkv, heads, win, pad, table_h, table_w, 1.0f);
  const SamxAttnDims d = c.d;
  *rel_h = samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq, c.h));
  *rel_w = samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq, c.w));
  SAMX_ON_DEVICE(qkv,
                 samx_cpu_rel_pos(&c.lay, u16(qkv), samx_f32(table_h), samx_f32(table_w), d.B, d.H, (int)c.h, (int)c.w,
                                  (int)d.D, samx_f32(*rel_h), samx_f32(*rel_w)),
                 samx_cuda_rel_pos(c.lay, u16(qkv), samx_f32(table_h), samx_f32(table_w), d.B, d.H, (int)c.h, (int)c.w,
                                   (int)d.D, samx_f32(*rel_h), samx_f32(*rel_w)));
}

// The CPU path of samx_attention_packed_bf16: q, k and v gathered row by row where the layout puts them
// (samx_attn_row, as the CUDA kernel reads them) into [B, H, T, D] tensors, samx_attention's CPU
// reference on them, and its rows scattered back (padding queries dropped).
static void packed_cpu(SamxCtx *ctx, const PackedCall *c, SamxTensor *qkv, SamxTensor *rel_h, SamxTensor *rel_w,
                       SamxTensor *out) {
  const SamxAttnDims d = c->d;
  const SamxAttnStrides *st[3] = {&c->lay.q, &c->lay.k, &c->lay.v};
  const uint16_t *pads[3] = {c->lay.pad_q, c->lay.pad_k, c->lay.pad_v};
  SamxTensor *qkv3[3];
  for (int i = 0; i < 3; i++) {
    qkv3[i] = samx_new(ctx, SAMX_BF16, SHAPE(d.B, d.H, d.Tq, d.D));
    for (int64_t bh = 0; bh < d.B * d.H; bh++)
      for (int64_t t = 0; t < d.Tq; t++)
        memcpy(u16(qkv3[i]) + (bh * d.Tq + t) * d.D,
               samx_attn_row(&c->lay, st[i], qkv_part(qkv, d.H, d.D, i), pads[i], d.H, d.D, bh, t), 2 * (size_t)d.D);
  }
  SamxTensor *o = samx_attention(ctx, qkv3[0], qkv3[1], qkv3[2], rel_h, rel_w, d.scale);
  for (int64_t bh = 0; bh < d.B * d.H; bh++)
    for (int64_t t = 0; t < d.Tq; t++) {
      uint16_t *row = (uint16_t *)samx_attn_row(&c->lay, &c->lay.out, u16(out), NULL, d.H, d.D, bh, t);
      if (row) memcpy(row, u16(o) + (bh * d.Tq + t) * d.D, 2 * (size_t)d.D);
    }
}

SamxTensor *samx_attention_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                                       SamxTensor *rel_h, SamxTensor *rel_w, float scale) {
  const char *op = "attention_packed_bf16";
  PackedCall c = packed_call(op, ctx, qkv, heads, win, pad, rel_h, rel_w, scale);
  check_rel(op, rel_h, rel_w, &c.d);
  SamxTensor *out = samx_new(ctx, SAMX_BF16, SHAPE(qkv->shape[0], qkv->shape[1], qkv->shape[2], heads * c.d.D));
  SAMX_ON_DEVICE(qkv, packed_cpu(ctx, &c, qkv, rel_h, rel_w, out),
                 samx_cuda_attention_bf16_fwd_layout(c.d, c.lay, qkv_part(qkv, heads, c.d.D, 0),
                                                     qkv_part(qkv, heads, c.d.D, 1), qkv_part(qkv, heads, c.d.D, 2),
                                                     f32_or_null(rel_h), f32_or_null(rel_w), u16(out), NULL));
  return out;
}

SamxTensor *samx_attention_packed_rel_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                                           SamxTensor *table_h, SamxTensor *table_w, float scale) {
  if (qkv->device.type == SAMX_CPU) {  // the reference: the two ops it fuses
    SamxTensor *rel_h, *rel_w;
    samx_rel_pos_packed_bf16(ctx, qkv, heads, win, pad, table_h, table_w, &rel_h, &rel_w);
    return samx_attention_packed_bf16(ctx, qkv, heads, win, pad, rel_h, rel_w, scale);
  }
  PackedCall c = packed_call_tables("attention_packed_rel_bf16", ctx, qkv, heads, win, pad, table_h, table_w, scale);
  c.d.KH = c.h, c.d.KW = c.w;
  SamxTensor *out = samx_new(ctx, SAMX_BF16, SHAPE(qkv->shape[0], qkv->shape[1], qkv->shape[2], heads * c.d.D));
  SAMX_ON_DEVICE(qkv, (void)0,
                 samx_cuda_attention_bf16_fwd_rel_tables(c.d, c.lay, qkv_part(qkv, heads, c.d.D, 0),
                                                         qkv_part(qkv, heads, c.d.D, 1),
                                                         qkv_part(qkv, heads, c.d.D, 2), samx_f32(table_h),
                                                         samx_f32(table_w), u16(out)));
  return out;
}
