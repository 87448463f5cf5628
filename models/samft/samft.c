// SAM-FT: the single-mask output and Dice + BCE (models/samft/samft.h).
#include "samft.h"

#include "models/losses.h"

// In training with multimask_weight > 0 the 4 outputs of one decoder pass (token 0, then the 3
// multimask tokens), else the single-mask output.
static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  int all = training && o->multimask_weight > 0.0f;
  return sam_method_sam_outputs(ctx, mm, b, all ? SAM_MASKS_ALL : SAM_MASKS_SINGLE, outs);
}

// ref: SAM paper §3 / appendix A ("we only backpropagate the minimum loss over masks"): the single-mask
// loss on token 0 plus, at multimask_weight, the minimum Dice over the 3 multimask outputs, so that
// the multimask tokens a downstream method (MCL) starts from are trained as in the official weights.
static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)mm, (void)training, (void)seed;
  SamxTensor *single = samx_samft_loss(ctx, outs[0], b->target, o->dice_eps, o->bce_weight);
  if (m == 1) return single;
  SamxTensor *multi = samx_concat(ctx, (SamxTensor **)outs + 1, m - 1, 1);
  SamxTensor *wta = samx_wta_dice_loss(ctx, multi, b->target, 0, o->dice_eps, NULL);
  return samx_add(ctx, single, samx_scale(ctx, wta, o->multimask_weight));
}

const SamxMethodDef samx_method_samft = {
    .name = "sam-ft",
    .fixed_masks = 1,
    .hypotheses = hypotheses,
    .loss = loss,
};
