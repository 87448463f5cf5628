// A segmentation drawn for people to look at: the mask tinted over the image, its outline, and the
// prompt (box, foreground and background points) on top. Plain pixel code, no graphics library.
#ifndef SAMX_SAM_OVERLAY_H
#define SAMX_SAM_OVERLAY_H

#include <stdint.h>

#include "sam.h"

// rgb: uint8 [h, w, 3], drawn on in place. mask: uint8 [h, w] (0 / non-zero) or NULL.
// prompt: in original-image pixels (as given on the command line) or NULL.
void sam_overlay_draw(uint8_t *rgb, int h, int w, const uint8_t *mask, const SamPrompt *prompt);

#endif
