#include "../shape.h"

// Rows handled together when the mapped side is strided along the packed rows (a transpose, e.g.
// [B, C, HW] -> [B, HW, C]): for each element index k the block's rows are visited one after the
// other, so the strided side is read or written 16 neighbours at a time instead of one element per
// cache line (row at a time, these permutes were 8% of a ViT-B decoder training step).
#define ROW_BLOCK 16

static void strided_block(const SamxIndexMap *m, int64_t r0, int64_t nr, int64_t inner, int64_t s, int dir,
                          int accumulate, const float *src, float *dst) {
  int64_t j0[ROW_BLOCK];
  for (int64_t rr = 0; rr < nr; rr++) j0[rr] = samx_map_index(m, (r0 + rr) * inner);
  const int64_t i0 = r0 * inner;
  for (int64_t k = 0; k < inner; k++)
    for (int64_t rr = 0; rr < nr; rr++) {
      const int64_t packed = i0 + rr * inner + k, mapped = j0[rr] + k * s;
      if (dir == SAMX_GATHER)
        dst[packed] = accumulate ? dst[packed] + src[mapped] : src[mapped];
      else
        dst[mapped] = accumulate ? dst[mapped] + src[packed] : src[packed];
    }
}

// Row by row over the packed side's innermost dim (channels for window maps): the index map is
// evaluated once per row, and within a row the mapped side advances by a fixed stride. A window
// row is either all image or all padding.
void samx_cpu_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const float *src, float *dst) {
  const int window = m->kind == SAMX_MAP_WINDOW;
  const int64_t inner = window ? m->C : (m->ndim ? m->dims[m->ndim - 1] : 1);
  const int64_t s = window ? 1 : (m->ndim ? m->stride[m->ndim - 1] : 0);
  if (n == 0 || inner == 0) return;
  const int64_t rows = n / inner;
  if (!window && s != 1) {
    const int64_t blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t b = 0; b < blocks; b++) {
      const int64_t r0 = b * ROW_BLOCK, nr = rows - r0 < ROW_BLOCK ? rows - r0 : ROW_BLOCK;
      strided_block(m, r0, nr, inner, s, dir, accumulate, src, dst);
    }
    return;
  }
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
        for (int64_t k = 0; k < inner; k++) d[k] += sp[k];
      else
        for (int64_t k = 0; k < inner; k++) d[k] = sp[k];
    } else if (j0 >= 0) {
      const float *sp = src + i0;
      float *d = dst + j0;
      if (accumulate)
        for (int64_t k = 0; k < inner; k++) d[k] += sp[k];
      else
        for (int64_t k = 0; k < inner; k++) d[k] = sp[k];
    }
  }
}

void samx_cpu_shape_move16(const SamxIndexMap *m, int64_t n, int dir, const uint16_t *src, uint16_t *dst) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) samx_map_move16_at(m, dir, src, dst, i);
}
