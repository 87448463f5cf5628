// SeqSAM (Towle et al., ISBI 2025) on top of SAM: the recurrent cell and rollout, and the method's
// table (models/method.h).
//
// SeqSAM's cell (method-notes §2): at step t the prompt encoder embeds the previous step's low-res
// logits (nothing at t = 1: the broadcast no_mask_embed) into d_t [P, C, g, g]; with
// x = concat(d_t, h_{t-1}) over channels (h_0 = 0), the dense prompt is conv_out(x) and the next
// hidden state conv_hidden(x), both 3x3 convolutions 2C -> C with bias and no nonlinearity. The
// decoder runs single-mask with the same box every step. Parameters live in the model's store as
// "seqsam.cell.conv_out.{weight,bias}" and "seqsam.cell.conv_hidden.{weight,bias}".
#ifndef SAMX_SEQSAM_H
#define SAMX_SEQSAM_H

#include "models/method.h"

#ifdef __cplusplus
extern "C" {
#endif

// SeqSAM rollout: outs[t] = low-res logits [P, 1, 4g, 4g] of step t < steps. image_emb and img_index
// as in sam_decode; P box/point prompt sets (the same every step). bptt_logits 0 feeds back a copy of
// the logits (no gradient through the mask path: ablation "sg").
void seqsam_rollout(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                    const SamPrompt *prompts, int P, int steps, int bptt_logits, SamxTensor **outs);

#ifdef __cplusplus
}
#endif
#endif
