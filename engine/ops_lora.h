// defines: LoRA on the q and v slices of a fused qkv projection (P²SAM's encoder blocks), and merging
// such adapters into the qkv weight for inference.
//
// ref (method-notes §4, sam_lora_image_encoder.py:42-48): qkv = x W^T + b; then
// qkv[..., :C] += (x A_q^T) B_q^T and qkv[..., 2C:] += (x A_v^T) B_v^T, with A [r, C], B [C, r], no
// scaling. W [3C, C] (in = C), b [3C] or NULL.
#ifndef SAMX_OPS_LORA_H
#define SAMX_OPS_LORA_H

#include "tape.h"

// The adapted projection x [..., C] -> [..., 3C]. Gradients reach x, the adapters and (when they
// need them) W and b. One GEMM pair of rank 2r, through samx_lora_linear: the adapters are stacked as
// A = [A_q; A_v] [2r, C] and B = [[B_q, 0], [0, 0], [0, B_v]] [3C, 2r], whose zero blocks receive no
// gradient (they are constants of the concatenation).
SamxTensor *samx_lora_qkv(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *a_q, SamxTensor *b_q,
                          SamxTensor *a_v, SamxTensor *b_v);

// In place, not recorded: w[:C] += sign B_q A_q and w[2C:] += sign B_v A_v (sign 1 merges, -1 takes
// the adapters out again). After merging, samx_linear(x, w, b) equals samx_lora_qkv up to rounding.
void samx_lora_merge_qkv(SamxTensor *w, const SamxTensor *a_q, const SamxTensor *b_q, const SamxTensor *a_v,
                         const SamxTensor *b_v, float sign);

#endif
