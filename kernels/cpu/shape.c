#include "../shape.h"

// Row by row over the packed side's innermost dim (channels for window maps): the index map is
// evaluated once per row, and within a row the mapped side advances by a fixed stride. A window
// row is either all image or all padding.
void samx_cpu_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const float *src, float *dst) {
  const int window = m->kind == SAMX_MAP_WINDOW;
  const int64_t inner = window ? m->C : (m->ndim ? m->dims[m->ndim - 1] : 1);
  const int64_t s = window ? 1 : (m->ndim ? m->stride[m->ndim - 1] : 0);
  if (n == 0 || inner == 0) return;
  const int64_t rows = n / inner;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i0 = r * inner, j0 = samx_map_index(m, i0);
    if (dir == SAMX_GATHER) {
      float *d = dst + i0;
      if (j0 < 0) {
        if (!accumulate)
          for (int64_t k = 0; k < inner; k++) d[k] = 0.0f;
        continue;
      }
      const float *sp = src + j0;
      if (accumulate)
        for (int64_t k = 0; k < inner; k++) d[k] += sp[k * s];
      else
        for (int64_t k = 0; k < inner; k++) d[k] = sp[k * s];
    } else if (j0 >= 0) {
      const float *sp = src + i0;
      float *d = dst + j0;
      if (accumulate)
        for (int64_t k = 0; k < inner; k++) d[k * s] += sp[k];
      else
        for (int64_t k = 0; k < inner; k++) d[k * s] = sp[k];
    }
  }
}
