#include "ops_attention.h"

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

// The CPU reference of samx_attention_packed_bf16: SAM's own permutes around samx_attention.
static SamxTensor *packed_reference(SamxCtx *ctx, SamxTensor *qkv, SamxAttnDims d, SamxTensor *rel_h,
                                    SamxTensor *rel_w) {
  SamxTensor *p = samx_reshape(ctx, qkv, SHAPE(d.B, d.Tq, 3, d.H, d.D));
  p = samx_permute(ctx, p, (const int[]){2, 0, 3, 1, 4});  // [3, B, H, T, D]
  SamxTensor *qkv3[3];
  for (int i = 0; i < 3; i++) qkv3[i] = samx_reshape(ctx, samx_slice(ctx, p, 0, i, i + 1), SHAPE(d.B, d.H, d.Tq, d.D));
  SamxTensor *o = samx_attention(ctx, qkv3[0], qkv3[1], qkv3[2], rel_h, rel_w, d.scale);
  return samx_reshape(ctx, samx_permute(ctx, o, (const int[]){0, 2, 1, 3}), SHAPE(d.B, d.Tq, d.H * d.D));
}

// Checks a qkv projection's output [B, T, 3 * heads * D] (BF16, inference) and the F32 tensors beside
// it, and returns the attention's sizes (T queries and keys).
static SamxAttnDims packed_dims(const char *op, SamxCtx *ctx, SamxTensor *qkv, int64_t heads, SamxTensor *f32a,
                                SamxTensor *f32b, float scale) {
  char s[96];
  SamxTensor *in[3] = {qkv, f32a, f32b};
  samx_check_bf16_inference(op, ctx, 3, in);
  SAMX_ASSERT(qkv->dtype == SAMX_BF16 && qkv->ndim == 3 && heads > 0 && qkv->shape[2] % (3 * heads) == 0,
              "%s: qkv must be BF16 [B, T, 3 x %lld heads x D], got %s %s", op, (long long)heads,
              samx_dtype_name(qkv->dtype), samx_shape_str(samx_shape_of(qkv), s, sizeof s));
  SamxAttnDims d = {.B = qkv->shape[0], .H = heads, .Tq = qkv->shape[1], .Tk = qkv->shape[1],
                    .D = qkv->shape[2] / (3 * heads), .scale = scale};
  SAMX_ASSERT(samx_attention_bf16_head_dim_ok(d.D), "%s: head dim %lld; the tensor-core path takes 16, 32, 64 or 128",
              op, (long long)d.D);
  for (int i = 1; i < 3; i++)
    if (in[i]) samx_check_f32(op, in[i]), samx_check_same_device(op, qkv, in[i]);
  return d;
}

void samx_rel_pos_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int h, int w, SamxTensor *table_h,
                              SamxTensor *table_w, SamxTensor **rel_h, SamxTensor **rel_w) {
  const char *op = "rel_pos_packed_bf16";
  SamxAttnDims d = packed_dims(op, ctx, qkv, heads, table_h, table_w, 1.0f);
  SAMX_ASSERT(h >= 1 && w >= 1 && d.Tq == (int64_t)h * w, "%s: qkv has %lld tokens, not the %d x %d grid", op,
              (long long)d.Tq, h, w);
  samx_check_shape(op, table_h, SHAPE(2 * h - 1, d.D));
  samx_check_shape(op, table_w, SHAPE(2 * w - 1, d.D));
  *rel_h = samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq, h));
  *rel_w = samx_new(ctx, SAMX_F32, SHAPE(d.B, d.H, d.Tq, w));
  SAMX_ON_DEVICE(qkv,
                 samx_cpu_rel_pos_packed(u16(qkv), samx_f32(table_h), samx_f32(table_w), d.B, d.H, h, w, (int)d.D,
                                         samx_f32(*rel_h), samx_f32(*rel_w)),
                 samx_cuda_rel_pos_packed(u16(qkv), samx_f32(table_h), samx_f32(table_w), d.B, d.H, h, w, (int)d.D,
                                          samx_f32(*rel_h), samx_f32(*rel_w)));
}

SamxTensor *samx_attention_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, SamxTensor *rel_h,
                                       SamxTensor *rel_w, float scale) {
  const char *op = "attention_packed_bf16";
  SamxAttnDims d = packed_dims(op, ctx, qkv, heads, rel_h, rel_w, scale);
  check_rel(op, rel_h, rel_w, &d);
  if (qkv->device.type == SAMX_CPU) return packed_reference(ctx, qkv, d, rel_h, rel_w);
  SamxTensor *out = samx_new(ctx, SAMX_BF16, SHAPE(d.B, d.Tq, d.H * d.D));
  const uint16_t *q = u16(qkv);
  SAMX_ON_DEVICE(qkv, (void)0,
                 samx_cuda_attention_bf16_fwd_layout(d, samx_attn_layout_packed(d), q, q + d.H * d.D,
                                                     q + 2 * d.H * d.D, f32_or_null(rel_h), f32_or_null(rel_w),
                                                     u16(out), NULL));
  return out;
}
