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
SamxTensor *samx_attention(SamxCtx *ctx, SamxTensor *q, SamxTensor *k, SamxTensor *v, SamxTensor *rel_h,
                           SamxTensor *rel_w, float scale);

#endif
