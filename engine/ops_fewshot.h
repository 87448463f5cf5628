// defines: samx_fewshot_masked_mean, the few-shot target embeddings (kernels/fewshot.h).
#ifndef SAMX_OPS_FEWSHOT_H
#define SAMX_OPS_FEWSHOT_H

#include "tape.h"

// emb [N, C, g, g] (or [N, C, P]), w [N, L, g, g] (or [N, L, P]) region weights >= 0 on the same grid
// -> [N, L, C]: out[n, l] = sum_p w[n, l, p] emb[n, :, p] / sum_p w[n, l, p], 0 where the weights sum to 0
// (a label absent from image n). Gradient to emb only (the weights come from ground truth).
SamxTensor *samx_fewshot_masked_mean(SamxCtx *ctx, SamxTensor *emb, SamxTensor *w);

#endif
