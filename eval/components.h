// Connected components of a 2-D binary mask (4- or 8-connectivity). Labels are numbered 1..count in
// the raster order of each component's first pixel (scipy.ndimage.label numbers them the same way);
// background is 0.
#ifndef SAMX_EVAL_COMPONENTS_H
#define SAMX_EVAL_COMPONENTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// mask: h*w, nonzero is foreground. labels: h*w output. connectivity: 4 or 8. Returns the number of
// components.
int32_t samx_label_components(const uint8_t *mask, int64_t h, int64_t w, int connectivity, int32_t *labels);

// Pixel count of each component: sizes[0..count] (sizes[0] counts the background).
void samx_component_sizes(const int32_t *labels, int64_t npix, int32_t count, int64_t *sizes);

#ifdef __cplusplus
}
#endif
#endif
