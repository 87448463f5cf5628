#include "eval/components.h"

#include <stdlib.h>

#include "engine/error.h"

int32_t samx_label_components(const uint8_t *mask, int64_t h, int64_t w, int connectivity, int32_t *labels) {
  SAMX_ASSERT(connectivity == 4 || connectivity == 8, "samx_label_components: connectivity %d (4 or 8)",
              connectivity);
  int64_t npix = h * w;
  for (int64_t i = 0; i < npix; i++) labels[i] = 0;
  if (npix == 0) return 0;
  // Flood fill from each unlabelled foreground pixel in raster order; every pixel enters the
  // stack once, so the stack never holds more than npix entries.
  int64_t *stack = (int64_t *)malloc((size_t)npix * sizeof(int64_t));
  SAMX_ASSERT(stack, "samx_label_components: out of memory for %lld pixels", (long long)npix);
  int32_t count = 0;
  for (int64_t start = 0; start < npix; start++) {
    if (!mask[start] || labels[start]) continue;
    int64_t top = 0;
    labels[start] = ++count;
    stack[top++] = start;
    while (top) {
      int64_t p = stack[--top], r = p / w, c = p % w;
      for (int dr = -1; dr <= 1; dr++)
        for (int dc = -1; dc <= 1; dc++) {
          if ((dr == 0 && dc == 0) || (connectivity == 4 && dr != 0 && dc != 0)) continue;
          int64_t rr = r + dr, cc = c + dc;
          if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
          int64_t q = rr * w + cc;
          if (mask[q] && !labels[q]) {
            labels[q] = count;
            stack[top++] = q;
          }
        }
    }
  }
  free(stack);
  return count;
}

void samx_component_sizes(const int32_t *labels, int64_t npix, int32_t count, int64_t *sizes) {
  for (int32_t i = 0; i <= count; i++) sizes[i] = 0;
  for (int64_t i = 0; i < npix; i++) sizes[labels[i]]++;
}
