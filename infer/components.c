// SAM with one prompt per connected component (infer/components.h).
#include "infer/components.h"

#include <stdlib.h>
#include <string.h>

#include "data/prompts.h"
#include "eval/components.h"
#include "models/sam/sam_image.h"

#define MAX_COMPONENT_PROMPTS 256

int samx_component_prompts(const uint8_t *mask, int64_t h, int64_t w, int kind, SamPrompt *out, int cap) {
  int32_t *lab = (int32_t *)malloc((size_t)(h * w) * sizeof(int32_t));
  uint8_t *one = (uint8_t *)malloc((size_t)(h * w));
  int32_t count = samx_label_components(mask, h, w, 8, lab);
  int n = 0;
  for (int32_t c = 1; c <= count && n < cap; c++) {
    for (int64_t j = 0; j < h * w; j++) one[j] = lab[j] == c;
    SamPrompt p;
    memset(&p, 0, sizeof p);
    if (kind == SAMX_COMPONENT_BOX) {
      int64_t b[4];
      samx_prompt_box(one, h, w, b);
      p.has_box = 1;
      for (int k = 0; k < 4; k++) p.box[k] = (float)b[k];
    } else {
      int64_t pt[2];
      samx_prompt_interior_point(one, h, w, pt, NULL);
      p.n_points = 1, p.points[0][0] = (float)pt[0], p.points[0][1] = (float)pt[1], p.labels[0] = 1;
    }
    out[n++] = p;
  }
  free(lab), free(one);
  return n;
}

void samx_sam_components(SamxCtx *ctx, SamModel *m, const uint8_t *rgb, int h, int w, const uint8_t *labels, int L,
                         int kind, uint8_t *pred) {
  size_t hw = (size_t)h * (size_t)w;
  memset(pred, 0, (size_t)L * hw);
  SamPrompt *prompts = (SamPrompt *)malloc(sizeof(SamPrompt) * MAX_COMPONENT_PROMPTS);
  int *owner = (int *)malloc(sizeof(int) * MAX_COMPONENT_PROMPTS), P = 0;
  for (int l = 0; l < L; l++) {
    int n = samx_component_prompts(labels + l * hw, h, w, kind, prompts + P, MAX_COMPONENT_PROMPTS - P);
    for (int i = 0; i < n; i++) owner[P + i] = l;
    P += n;
  }
  if (P > 0) {
    SamImageInfo info;
    SamxTensor *img = sam_preprocess(ctx, m, rgb, h, w, &info);
    SamxTensor *emb = sam_encode(ctx, m, img);
    for (int i = 0; i < P; i++) sam_prompt_to_input(&info, &prompts[i]);
    SamxTensor *sparse, *dense, *low, *iou;
    sam_prompt_encode(ctx, m, prompts, P, NULL, &sparse, &dense);
    sam_decode(ctx, m, emb, NULL, sparse, dense, 0, &low, &iou);
    SamxTensor *full = sam_postprocess(ctx, m, low, &info);  // [P, 1, h, w]
    float *logits = (float *)malloc(sizeof(float) * (size_t)P * hw);
    samx_tensor_read_f32(full, logits);
    for (int i = 0; i < P; i++)
      for (size_t j = 0; j < hw; j++) pred[owner[i] * hw + j] |= logits[i * hw + j] > 0.0f;
    free(logits);
  }
  free(prompts), free(owner);
}
