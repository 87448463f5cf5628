// MCL: SAM's multimask outputs and the winner-takes-all Dice (models/mcl/mcl.h).
#include "mcl.h"

#include "models/losses.h"

static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  (void)training, (void)o;
  return sam_method_sam_outputs(ctx, mm, b, 1, outs);
}

static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)mm, (void)training, (void)seed;
  SamxTensor *all = samx_concat(ctx, (SamxTensor **)outs, m, 1);
  return samx_wta_dice_loss(ctx, all, b->target, o->mcl_rows, o->dice_eps, NULL);
}

const SamxMethodDef samx_method_mcl = {
    .name = "mcl",
    .fixed_masks = 3,
    .hypotheses = hypotheses,
    .loss = loss,
};
