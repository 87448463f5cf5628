// defines: samx_attention (multi-head scaled-dot-product attention with SAM's decomposed
// relative-position bias, fused: the Tq x Tk logits are never stored), samx_attention_packed_bf16,
// samx_rel_pos_packed_bf16, samx_attention_packed_rel_bf16.
#ifndef SAMX_OPS_ATTENTION_H
#define SAMX_OPS_ATTENTION_H

#include "tape.h"

// q [B, H, Tq, D], k and v [B, H, Tk, D] (D <= 128) -> out [B, H, Tq, D]:
//   out_i = sum_j softmax_j(scale * <q_i, k_j> + bias_ij) v_j.
// rel_h [B, H, Tq, KH] and rel_w [B, H, Tq, KW] with KH * KW == Tk, or both NULL (no bias):
//   bias[b, h, i, kh * KW + kw] = rel_h[b, h, i, kh] + rel_w[b, h, i, kw]
// which is SAM's add_decomposed_rel_pos (the model computes rel_h/rel_w from q and the Rh/Rw tables).
// Gradients flow to q, k, v, rel_h and rel_w.
// BF16 q, k, v (head dim 16, 32, 64 or 128; rel_h, rel_w stay F32) give a BF16 out: on CUDA the
// tensor-core flash attention (kernels/cuda/attention_bf16.cu: bf16 products, fp32 accumulation
// and softmax statistics); on the CPU the fp32 kernels on the bf16 values with the output rounded
// to bf16, which is the reference the CUDA path is tested against. Gradients are F32 as always.
SamxTensor *samx_attention(SamxCtx *ctx, SamxTensor *q, SamxTensor *k, SamxTensor *v, SamxTensor *rel_h,
                           SamxTensor *rel_w, float scale);

// Inference in bf16 precision: samx_attention straight from a qkv projection's output, no head permute
// on either side. qkv BF16 [B, h, w, 3 * heads * D] (the order of SAM's reshape(B, H, W, 3, nH, hd))
// -> BF16 [B, h, w, heads * D] (the heads side by side, as SAM's permute back hands them to the output
// projection). win == 0: one attention over each image's h w tokens. win > 0: SAM's windowed
// attention, the window partition and unpartition folded into the addressing: the windows
// (window_partition's order) are the batch entries, tokens past the image read pad (BF16 [3 * heads *
// D]: the qkv of window_partition's zero padding, i.e. the layer's bias; NULL: zeros) and padding
// queries are not written. rel_h / rel_w F32 [entries, heads, T, KH / KW] (T = h w or win^2) or NULL.
// Bit for bit samx_attention on the q, k, v those rows make, put back the same way: CUDA's
// tensor-core kernel reads and writes the rows where they lie, the CPU gathers and scatters them
// (samx_attn_row for both). No backward.
SamxTensor *samx_attention_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                                       SamxTensor *rel_h, SamxTensor *rel_w, float scale);

// Inference in bf16 precision: SAM's relative-position terms for samx_attention_packed_bf16, from the
// same qkv, win and pad (q read in place) and the block's tables rel_pos_h [2h - 1, D], rel_pos_w
// [2w - 1, D] (F32; h = w = win for windows): rel_h [entries, heads, T, h] and rel_w [entries, heads,
// T, w], F32, as add_decomposed_rel_pos's einsums compute them on the unscaled q
// (kernels/attention_bf16.h). One pass over q instead of the reference's slice, cast, gathers,
// permutes and batched products. No backward.
void samx_rel_pos_packed_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                              SamxTensor *table_h, SamxTensor *table_w, SamxTensor **rel_h, SamxTensor **rel_w);

// Inference in bf16 precision: the two above in one, SAM's relative-position terms computed inside the
// attention from each block's q tile and the tables (on CUDA: the [entries, heads, T, h + w] F32 terms
// never reach memory, and one launch instead of two). Bit for bit samx_rel_pos_packed_bf16 followed by
// samx_attention_packed_bf16 (what it runs on the CPU). No backward.
SamxTensor *samx_attention_packed_rel_bf16(SamxCtx *ctx, SamxTensor *qkv, int64_t heads, int win, SamxTensor *pad,
                                           SamxTensor *table_h, SamxTensor *table_w, float scale);

#endif
