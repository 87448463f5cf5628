// Exact Euclidean distance transform of a 2-D grid with anisotropic pixel spacing
// (Felzenszwalb & Huttenlocher's lower envelope of parabolas, one pass per axis, O(h*w)).
#ifndef SAMX_EVAL_EDT_H
#define SAMX_EVAL_EDT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// dist[i] = Euclidean distance (in the units of spacing_row/spacing_col) from pixel i to the nearest
// pixel where seeds is nonzero; 0 on seeds; +inf everywhere when there is no seed.
// scipy.ndimage.distance_transform_edt(~seeds, sampling=(spacing_row, spacing_col)) computes the same.
void samx_edt(const uint8_t *seeds, int64_t h, int64_t w, double spacing_row, double spacing_col, double *dist);

#ifdef __cplusplus
}
#endif
#endif
