// SAM-FT: the single-mask output and Dice + BCE (models/samft/samft.h).
#include "samft.h"

#include "models/losses.h"

static int hypotheses(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                      SamxTensor **outs) {
  (void)training, (void)o;
  return sam_method_sam_outputs(ctx, mm, b, 0, outs);
}

static SamxTensor *loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                        int training, const SamxMethodOpts *o, uint64_t seed) {
  (void)mm, (void)m, (void)training, (void)seed;
  return samx_samft_loss(ctx, outs[0], b->target, o->dice_eps, o->bce_weight);
}

const SamxMethodDef samx_method_samft = {
    .name = "sam-ft",
    .fixed_masks = 1,
    .hypotheses = hypotheses,
    .loss = loss,
};
