// The golden cases of tests/data/sam_tiny, shared by the SAM golden tests.
#ifndef SAMX_TESTS_SAM_GOLDEN_CASES_H
#define SAMX_TESTS_SAM_GOLDEN_CASES_H

#include <string.h>

#include "../test_util.h"
#include "models/sam/sam.h"

#define SAM_GOLDEN_CASES "tests/data/sam_tiny/sam_tiny_cases.safetensors"
#define SAM_GOLDEN_CKPT "tests/data/sam_tiny/sam_tiny.pth"

// The prompt of case cs of image img (box and/or points, as SamPredictor was given them).
static inline void sam_golden_prompt(const SamxSafetensors *st, const char *img, const char *cs, SamPrompt *p) {
  memset(p, 0, sizeof *p);
  const SamxSTEntry *box = samx_test_st_get(st, "%s.%s.box", img, cs),
                    *pc = samx_test_st_get(st, "%s.%s.point_coords", img, cs),
                    *pl = samx_test_st_get(st, "%s.%s.point_labels", img, cs);
  if (box) {
    p->has_box = 1;
    memcpy(p->box, box->data, 4 * sizeof(float));
  }
  if (pc) {
    p->n_points = (int)pc->shape[0];
    memcpy(p->points, pc->data, pc->nbytes);
    for (int i = 0; i < p->n_points; i++) p->labels[i] = ((const int32_t *)pl->data)[i];
  }
}

#endif
