#include "../shape.h"

void samx_cpu_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const float *src, float *dst) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) samx_map_copy_at(m, dir, accumulate, src, dst, i);
}
