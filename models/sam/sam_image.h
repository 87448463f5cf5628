// SamPredictor's pre/post-processing: PIL-compatible resize, normalisation, padding, coordinate
// scaling, mask upsampling and cropping back to the original image.
#ifndef SAMX_SAM_IMAGE_H
#define SAMX_SAM_IMAGE_H

#include "sam.h"

typedef struct {
  int orig_h, orig_w;    // the image as given
  int input_h, input_w;  // after resizing the longest side to img_size (before padding)
} SamImageInfo;

// Pillow's Image.resize(..., BILINEAR) for 8-bit images with ch interleaved channels.
void sam_resize_pil_bilinear(const uint8_t *src, int h, int w, int ch, uint8_t *dst, int oh, int ow);
void sam_input_size(int h, int w, int target, int *oh, int *ow);
// rgb: uint8 [h, w, 3]. Returns the encoder input [1, 3, S, S].
SamxTensor *sam_preprocess(SamxCtx *ctx, const SamModel *m, const uint8_t *rgb, int h, int w, SamImageInfo *info);
// Scales prompt coordinates from original-image pixels to the encoder's input frame.
void sam_prompt_to_input(const SamImageInfo *info, SamPrompt *p);
// low_res [P, M, 4g, 4g] -> logits [P, M, orig_h, orig_w].
SamxTensor *sam_postprocess(SamxCtx *ctx, const SamModel *m, SamxTensor *low_res, const SamImageInfo *info);

#endif
