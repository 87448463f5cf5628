// defines: samx_attention (multi-head scaled-dot-product attention with SAM's decomposed
// relative-position bias, fused: the Tq x Tk logits are never stored).
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

#endif
