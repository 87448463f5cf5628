// Borders of 2-D binary masks, the two definitions the surface metrics use.
#ifndef SAMX_EVAL_BORDER_H
#define SAMX_EVAL_BORDER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Morphological border (medpy): mask XOR its erosion by the 3x3 cross (connectivity 4) or the full
// 3x3 square (connectivity 8), pixels outside the image counting as background. border: h*w of 0/1.
void samx_mask_border(const uint8_t *mask, int64_t h, int64_t w, int connectivity, uint8_t *border);

// 2x2 neighbour codes of DeepMind's surface-distance: code[r][c] over the (h+1) x (w+1) grid of pixel
// corners = 8 m(r-1,c-1) + 4 m(r-1,c) + 2 m(r,c-1) + 1 m(r,c), m = 0 outside the mask's image.
// code: (h+1)*(w+1). A corner with code not in {0, 15} is a surface element.
void samx_neighbour_codes(const uint8_t *mask, int64_t h, int64_t w, uint8_t *code);

// Contour length of each of the 16 codes (marching squares) for the given pixel spacing: corners
// 0.5 hypot, straight edges the spacing along them, the two saddles 2 x 0.5 hypot.
void samx_contour_length_table(double spacing_row, double spacing_col, double table[16]);

#ifdef __cplusplus
}
#endif
#endif
