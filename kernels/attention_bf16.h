// Attention on tensor cores: bf16 q, k, v and output, fp32 accumulation and fp32 softmax statistics,
// SAM's decomposed relative-position bias fused (the math of kernels/attention.h, whose per-element
// functions both paths call). The CUDA kernels (kernels/cuda/attention_bf16.cu) use nvcuda::wmma
// 16x16x16 bf16 tiles; the CPU reference is the fp32 kernel on the bf16 values (engine/ops_attention.c).
//
// Layouts as in kernels/attention.h; q, k, v, out hold bf16 bits (uint16_t), rel_h, rel_w, lse,
// dout and every gradient are fp32. The head dim must be 16, 32, 64 or 128 (a whole number of
// 16-wide tensor-core tiles).
#ifndef SAMX_KERNELS_ATTENTION_BF16_H
#define SAMX_KERNELS_ATTENTION_BF16_H

#include "../engine/dtype.h"
#include "attention.h"

// Whether the tensor-core kernels take head dim D.
SAMX_HD int samx_attention_bf16_head_dim_ok(int64_t D) { return D == 16 || D == 32 || D == 64 || D == 128; }

// Where the rows of a [B, H, T, D] operand lie: element (b, h, t, c) at b * batch + h * head + t * row + c.
typedef struct {
  int64_t batch, head, row;
} SamxAttnStrides;

// The strides of q, k, v and out in one forward call, and how its batch entries map onto them.
// win == 0: entry b of the call is batch b of the strides. win > 0 (SAM's windowed blocks): the
// operands are images of img_h x img_w tokens (`batch` per image, `row` per token, row-major over the
// grid), cut into win x win windows in window_partition's order (image, row of windows, column of
// windows): entry b is one window and its token t the image token (wy win + t / win, wx win + t % win).
// Tokens past the image (window_partition's zero padding) read pad_q, pad_k, pad_v ([H, D] each: the
// q, k and v of a zero input, i.e. the qkv bias) and are not written to out.
typedef struct {
  SamxAttnStrides q, k, v, out;
  int64_t win, img_h, img_w;
  const uint16_t *pad_q, *pad_k, *pad_v;
} SamxAttnLayout;

// Contiguous [B, H, T, D] operands (q and out over Tq rows, k and v over Tk).
SAMX_HD SamxAttnLayout samx_attn_layout_contiguous(SamxAttnDims d) {
  SamxAttnStrides q = {d.H * d.Tq * d.D, d.Tq * d.D, d.D}, k = {d.H * d.Tk * d.D, d.Tk * d.D, d.D};
  SamxAttnLayout l = {q, k, k, q, 0, 0, 0, 0, 0, 0};
  return l;
}

// q, k and v read straight from a qkv projection's output [images, img_h, img_w, 3, H, D] (SAM's
// reshape(B, H, W, 3, nH, -1) before its permute), out written as [images, img_h, img_w, H, D] (the
// layout SAM's permute back gives the output projection): no head permute, and with win > 0 no window
// partition or unpartition either. q, k and v are the projection's pointer plus 0, H D and 2 H D; pad
// (win > 0) is the bias row [3, H, D], the same offsets giving its q, k and v.
SAMX_HD SamxAttnLayout samx_attn_layout_qkv(int64_t H, int64_t D, int64_t img_h, int64_t img_w, int64_t win,
                                            const uint16_t *pad) {
  const int64_t T = img_h * img_w;
  SamxAttnStrides in = {T * 3 * H * D, D, 3 * H * D}, out = {T * H * D, D, H * D};
  SamxAttnLayout l = {in, in, in, out, win, img_h, img_w, pad, pad ? pad + H * D : 0, pad ? pad + 2 * H * D : 0};
  return l;
}

// Windows per image of a qkv layout (1 when it is not windowed: the image is the batch entry).
SAMX_HD int64_t samx_attn_windows(const SamxAttnLayout *l) {
  return l->win ? ((l->img_h + l->win - 1) / l->win) * ((l->img_w + l->win - 1) / l->win) : 1;
}

// Row t of batch entry bh (= b H + head) of the operand at p with strides s, padding row pad ([H, D],
// or NULL): its first element, pad's row for a padding token, NULL for a padding token without one.
SAMX_HD const uint16_t *samx_attn_row(const SamxAttnLayout *l, const SamxAttnStrides *s, const uint16_t *p,
                                      const uint16_t *pad, int64_t H, int64_t D, int64_t bh, int64_t t) {
  const int64_t b = bh / H, head = bh % H;
  if (!l->win) return p + b * s->batch + head * s->head + t * s->row;
  const int64_t nwx = (l->img_w + l->win - 1) / l->win, per = samx_attn_windows(l), wi = b % per;
  const int64_t y = (wi / nwx) * l->win + t / l->win, x = (wi % nwx) * l->win + t % l->win;
  if (y >= l->img_h || x >= l->img_w) return pad ? pad + head * D : 0;
  return p + (b / per) * s->batch + head * s->head + (y * l->img_w + x) * s->row;
}

// Forward: out [B,H,Tq,D] (bf16), lse [B,H,Tq] (fp32, may be NULL).
SAMX_EXTERN_C void samx_cuda_attention_bf16_fwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k,
                                                const uint16_t *v, const float *rel_h, const float *rel_w,
                                                uint16_t *out, float *lse);
// The same with q, k, v and out where `lay` puts them (rel_h, rel_w and lse stay contiguous [B, H, Tq, .],
// B counting windows when lay.win > 0).
SAMX_EXTERN_C void samx_cuda_attention_bf16_fwd_layout(SamxAttnDims d, SamxAttnLayout lay, const uint16_t *q,
                                                       const uint16_t *k, const uint16_t *v, const float *rel_h,
                                                       const float *rel_w, uint16_t *out, float *lse);
// The same with SAM's relative-position terms computed inside the kernel from its q tile and the tables
// Rh [2 KH - 1, D], Rw [2 KW - 1, D] (query grid = key grid, KH x KW = Tq = Tk): bit for bit
// samx_cuda_rel_pos followed by the call above, without rel_h and rel_w in memory. No lse.
SAMX_EXTERN_C void samx_cuda_attention_bf16_fwd_rel_tables(SamxAttnDims d, SamxAttnLayout lay, const uint16_t *q,
                                                           const uint16_t *k, const uint16_t *v, const float *table_h,
                                                           const float *table_w, uint16_t *out);
// SAM's decomposed relative-position terms (add_decomposed_rel_pos's einsums) for q where the qkv layout
// `lay` puts it (each batch entry an h x w token grid: the image, or a window with h = w = win; token t
// at row t / w, column t % w), with the tables Rh [2h - 1, D] and Rw [2w - 1, D] (get_rel_pos for equal
// q and k sizes: R[i, j] = table[i - j + n - 1]):
//   rel_h[b, n, t, ky] = <q[b, t, n], Rh[y - ky + h - 1]>     rel_w[b, n, t, kx] = <q[b, t, n], Rw[x - kx + w - 1]>
// rel_h [B, H, T, h] and rel_w [B, H, T, w], fp32; q's bf16 values widened exactly, the D products
// summed in fp32 in order (the same sum on both backends, up to the contraction of multiply-adds).
SAMX_HD float samx_rel_pos_dot(const uint16_t *q, const float *table_row, int D) {
  float s = 0.0f;
  for (int c = 0; c < D; c++) s += samx_bf16_to_f32(q[c]) * table_row[c];
  return s;
}

// The table row that token t of an h x w grid multiplies for key bin k along h (along_h) or along w:
// get_rel_pos's R[y, ky] = table_h[y - ky + h - 1], R[x, kx] = table_w[x - kx + w - 1].
SAMX_HD const float *samx_rel_pos_row(const float *table_h, const float *table_w, int h, int w, int D, int64_t t,
                                      int along_h, int64_t k) {
  return along_h ? table_h + (t / w - k + h - 1) * D : table_w + (t % w - k + w - 1) * D;
}

// Output element e of the terms (rel_h's B H T h values, then rel_w's B H T w): which q row and which
// table row it multiplies.
SAMX_HD float samx_rel_pos_term(const SamxAttnLayout *lay, const uint16_t *q, const float *table_h,
                                const float *table_w, int64_t B, int64_t H, int h, int w, int D, int64_t e) {
  const int64_t T = (int64_t)h * w, n_h = B * H * T * h;
  const int along_h = e < n_h, K = along_h ? h : w;
  const int64_t i = along_h ? e : e - n_h, row = i / K, k = i % K;  // row = (b * H + head) * T + t
  const int64_t t = row % T, bh = row / T;
  const uint16_t *qr = samx_attn_row(lay, &lay->q, q, lay->pad_q, H, D, bh, t);
  return samx_rel_pos_dot(qr, samx_rel_pos_row(table_h, table_w, h, w, D, t, along_h, k), D);
}

SAMX_EXTERN_C void samx_cpu_rel_pos(const SamxAttnLayout *lay, const uint16_t *q, const float *table_h,
                                    const float *table_w, int64_t B, int64_t H, int h, int w, int D, float *rel_h,
                                    float *rel_w);
SAMX_EXTERN_C void samx_cuda_rel_pos(SamxAttnLayout lay, const uint16_t *q, const float *table_h, const float *table_w,
                                     int64_t B, int64_t H, int h, int w, int D, float *rel_h, float *rel_w);

// Backward (FlashAttention-2 order, logits recomputed from lse): adds into dq, dk, dv, drel_h, drel_w
// (fp32; any may be NULL). delta: [B,H,Tq] fp32 device scratch.
SAMX_EXTERN_C void samx_cuda_attention_bf16_bwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k,
                                                const uint16_t *v, const float *rel_h, const float *rel_w,
                                                const uint16_t *out, const float *lse, const float *dout, float *dq,
                                                float *dk, float *dv, float *drel_h, float *drel_w, float *delta);

#endif
