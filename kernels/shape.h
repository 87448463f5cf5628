// Data movement for the shape ops (permute, concat, slice, window partition/unpartition): every one
// is a copy between a contiguous "packed" block and a "mapped" tensor through an index map.
// defines: SamxIndexMap, samx_map_index, samx_map_copy_at, samx_map_move16_at (shared by CPU and CUDA),
// and the launchers.
#ifndef SAMX_KERNELS_SHAPE_H
#define SAMX_KERNELS_SHAPE_H

#include "common.h"

#define SAMX_MAP_DIMS 5

typedef enum { SAMX_MAP_STRIDED = 0, SAMX_MAP_WINDOW = 1 } SamxMapKind;
typedef enum { SAMX_GATHER = 0, SAMX_SCATTER = 1 } SamxCopyDir;

// Where packed element i lives in the mapped tensor.
typedef struct {
  int kind;
  // SAMX_MAP_STRIDED: packed has shape dims[0..ndim); element (c_0..c_ndim-1) sits at
  // offset + sum_k c_k * stride[k] (a permuted, sliced or embedded view of the mapped tensor).
  int ndim;
  int64_t dims[SAMX_MAP_DIMS];
  int64_t stride[SAMX_MAP_DIMS];
  int64_t offset;
  // SAMX_MAP_WINDOW: packed is windows [B * nh * nw, ws, ws, C] (window (b, wh, ww) at
  // (b * nh + wh) * nw + ww), mapped is the image [B, H, W, C]; rows/columns past H/W are padding.
  int64_t H, W, C, ws, nh, nw;
} SamxIndexMap;

// Offset in the mapped tensor of packed element i, or -1 for padding.
SAMX_HD int64_t samx_map_index(const SamxIndexMap *m, int64_t i) {
  if (m->kind == SAMX_MAP_WINDOW) {
    int64_t c = i % m->C;
    i /= m->C;
    int64_t wx = i % m->ws;
    i /= m->ws;
    int64_t wy = i % m->ws;
    i /= m->ws;
    int64_t ww = i % m->nw;
    i /= m->nw;
    int64_t wh = i % m->nh, b = i / m->nh;
    int64_t y = wh * m->ws + wy, x = ww * m->ws + wx;
    if (y >= m->H || x >= m->W) return -1;
    return ((b * m->H + y) * m->W + x) * m->C + c;
  }
  int64_t off = m->offset;
  for (int k = m->ndim - 1; k >= 0; k--) {
    int64_t c = i % m->dims[k];
    i /= m->dims[k];
    off += c * m->stride[k];
  }
  return off;
}

// Gather: packed dst[i] = mapped src[map(i)] (0 for padding). Scatter: mapped dst[map(i)] = packed
// src[i] (padding dropped). With accumulate, += instead of =. Maps are injective, so one thread per
// i never races with another.
SAMX_HD void samx_map_copy_at(const SamxIndexMap *m, int dir, int accumulate, const float *src, float *dst,
                              int64_t i) {
  int64_t j = samx_map_index(m, i);
  if (dir == SAMX_GATHER) {
    float v = j >= 0 ? src[j] : 0.0f;
    dst[i] = accumulate ? dst[i] + v : v;
  } else if (j >= 0) {
    dst[j] = accumulate ? dst[j] + src[i] : src[i];
  }
}

// The same maps for 16-bit payloads (bf16 activations of inference): a move of the bits, no
// arithmetic, padding reads as +0 (bits 0). No accumulate: gradients stay fp32.
SAMX_HD void samx_map_move16_at(const SamxIndexMap *m, int dir, const uint16_t *src, uint16_t *dst, int64_t i) {
  int64_t j = samx_map_index(m, i);
  if (dir == SAMX_GATHER)
    dst[i] = j >= 0 ? src[j] : (uint16_t)0;
  else if (j >= 0)
    dst[j] = src[i];
}
// n = numel of the packed side.
SAMX_EXTERN_C void samx_cpu_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const float *src,
                                       float *dst);
SAMX_EXTERN_C void samx_cuda_shape_copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate,
                                        const float *src, float *dst);

SAMX_EXTERN_C void samx_cpu_shape_move16(const SamxIndexMap *m, int64_t n, int dir, const uint16_t *src,
                                         uint16_t *dst);
SAMX_EXTERN_C void samx_cuda_shape_move16(const SamxIndexMap *m, int64_t n, int dir, const uint16_t *src,
                                          uint16_t *dst);
#endif
