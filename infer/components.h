// The few-shot paper's SAM baselines (its Table 2; contracts §7): SAM prompted from the ground truth
// with one prompt per connected component (8-connectivity) of each label, the component masks united:
//   point: the component's interior point at the maximum of its distance transform (foreground label);
//   box:   the component's tight box [x_min, y_min, x_max, y_max].
// SAM's single-mask output (multimask off), as SamPredictor with multimask_output=False.
#ifndef SAMX_INFER_COMPONENTS_H
#define SAMX_INFER_COMPONENTS_H

#include <stdint.h>

#include "models/sam/sam.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SAMX_COMPONENT_POINT = 0, SAMX_COMPONENT_BOX = 1 };

// The prompts of one label mask (h x w, nonzero = foreground) in original pixels: one per component,
// up to cap. Returns the count.
int samx_component_prompts(const uint8_t *mask, int64_t h, int64_t w, int kind, SamPrompt *out, int cap);

// One image (rgb [h, w, 3]) and L label masks [L, h, w]: pred [L, h, w] 0/1, label l the union of
// SAM's masks for its components (empty when the label is absent). ctx is reset by the caller.
void samx_sam_components(SamxCtx *ctx, SamModel *m, const uint8_t *rgb, int h, int w, const uint8_t *labels, int L,
                         int kind, uint8_t *pred);

#ifdef __cplusplus
}
#endif
#endif
