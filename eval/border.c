#include "eval/border.h"

#include <math.h>

#include "engine/error.h"

static inline int at(const uint8_t *m, int64_t h, int64_t w, int64_t r, int64_t c) {
  return r >= 0 && r < h && c >= 0 && c < w && m[r * w + c] != 0;
}

void samx_mask_border(const uint8_t *mask, int64_t h, int64_t w, int connectivity, uint8_t *border) {
  SAMX_ASSERT(connectivity == 4 || connectivity == 8, "samx_mask_border: connectivity %d (4 or 8)", connectivity);
  for (int64_t r = 0; r < h; r++)
    for (int64_t c = 0; c < w; c++) {
      int inside = mask[r * w + c] != 0, eroded = inside;
      for (int dr = -1; dr <= 1 && eroded; dr++)
        for (int dc = -1; dc <= 1 && eroded; dc++) {
          if (connectivity == 4 && dr != 0 && dc != 0) continue;
          eroded = at(mask, h, w, r + dr, c + dc);
        }
      border[r * w + c] = (uint8_t)(inside && !eroded);
    }
}

void samx_neighbour_codes(const uint8_t *mask, int64_t h, int64_t w, uint8_t *code) {
  for (int64_t r = 0; r <= h; r++)
    for (int64_t c = 0; c <= w; c++)
      code[r * (w + 1) + c] = (uint8_t)(8 * at(mask, h, w, r - 1, c - 1) + 4 * at(mask, h, w, r - 1, c) +
                                        2 * at(mask, h, w, r, c - 1) + at(mask, h, w, r, c));
}

void samx_contour_length_table(double spacing_row, double spacing_col, double table[16]) {
  double diag = 0.5 * hypot(spacing_row, spacing_col);
  // Bits: 8 top-left, 4 top-right, 2 bottom-left, 1 bottom-right pixel of the 2x2 neighbourhood.
  // One or three pixels set: the contour cuts the corner. Two on one side: a straight edge crossing
  // the cell (top/bottom pair: horizontal, length of a column step; left/right pair: vertical).
  // Diagonal pairs (6, 9): two corner cuts.
  static const int kind[16] = {0, 1, 1, 2, 1, 3, 4, 1, 1, 4, 3, 1, 2, 1, 1, 0};
  for (int i = 0; i < 16; i++) {
    switch (kind[i]) {
      case 0: table[i] = 0.0; break;
      case 1: table[i] = diag; break;
      case 2: table[i] = spacing_col; break;
      case 3: table[i] = spacing_row; break;
      default: table[i] = 2.0 * diag; break;
    }
  }
}
