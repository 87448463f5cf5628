// Layer normalisation over one dim, for both layouts SAM uses:
//  - LayerNorm   x [..., C]:      row r is C consecutive floats (inner = 1);
//  - LayerNorm2d x [B, C, H, W]:  row (b, h, w) is C floats H*W apart (inner = H*W).
// A row is addressed by (base, stride = inner) for both, so every kernel below serves both layouts.
// defines: the shared row math (partial sums over a lane's share of a row, per-element forward and
// backward), the deterministic dw/db chunking, and the launchers.
#ifndef SAMX_KERNELS_NORM_H
#define SAMX_KERNELS_NORM_H

#include "common.h"

// Offset of row r's first element when rows are the (outer, inner) positions of x [outer, C, inner].
SAMX_HD int64_t samx_norm_row_base(int64_t r, int64_t C, int64_t inner) {
  return (r / inner) * C * inner + r % inner;
}

// The share of a row's sum of (x - shift) or of (x - shift)^2 owned by one lane: elements
// first, first + step, ... (the CPU passes first 0, step 1; a CUDA warp passes its lane and width).
SAMX_HD float samx_norm_partial_sum(const float *x, int64_t C, int64_t stride, int64_t first, int64_t step,
                                    float shift, int squared) {
  float s = 0.0f;
  for (int64_t c = first; c < C; c += step) {
    float d = x[c * stride] - shift;
    s += squared ? d * d : d;
  }
  return s;
}

// 1/sqrt(var + eps) with a correctly rounded sqrt (not rsqrtf) so CPU and CUDA agree.
SAMX_HD float samx_norm_rstd(float var, float eps) { return 1.0f / sqrtf(var + eps); }

SAMX_HD float samx_norm_fwd(float x, float mean, float rstd, float w, float b) { return (x - mean) * rstd * w + b; }

// A lane's share of the two row sums the input gradient needs: sum(gy*w) and sum(gy*w*xhat).
SAMX_HD void samx_norm_bwd_partial(const float *x, const float *gy, const float *w, int64_t C, int64_t stride,
                                   int64_t first, int64_t step, float mean, float rstd, float *s_gw,
                                   float *s_gwxhat) {
  float a = 0.0f, b = 0.0f;
  for (int64_t c = first; c < C; c += step) {
    float gw = gy[c * stride] * w[c];
    a += gw;
    b += gw * (x[c * stride] - mean) * rstd;
  }
  *s_gw = a;
  *s_gwxhat = b;
}

// dL/dx for one element given the row means of gy*w and gy*w*xhat.
SAMX_HD float samx_norm_dx(float x, float gy, float w, float mean, float rstd, float mean_gw, float mean_gwxhat) {
  float xhat = (x - mean) * rstd;
  return rstd * (gy * w - mean_gw - xhat * mean_gwxhat);
}

// dw and db are column sums over all rows. For a result that does not depend on thread counts or
// scheduling, rows are cut into fixed chunks; each chunk's column sums land in their own slot of a
// [n_chunks, C] scratch buffer, and the chunks are then added in order. Chunks grow with R so the
// scratch stays at most 1024 rows of C.
SAMX_HD int64_t samx_norm_chunk_rows(int64_t R) {
  int64_t rows = (R + 1023) / 1024;
  return rows < 64 ? 64 : rows;
}
SAMX_HD int64_t samx_norm_n_chunks(int64_t R) {
  int64_t rows = samx_norm_chunk_rows(R);
  return (R + rows - 1) / rows;
}

// Column c's sums of gy*xhat and gy over rows [r0, r1).
SAMX_HD void samx_norm_chunk_colsum(const float *x, const float *gy, const float *mean, const float *rstd, int64_t r0,
                                    int64_t r1, int64_t c, int64_t C, int64_t inner, float *s_gxhat, float *s_g) {
  float a = 0.0f, b = 0.0f;
  for (int64_t r = r0; r < r1; r++) {
    int64_t i = samx_norm_row_base(r, C, inner) + c * inner;
    a += gy[i] * (x[i] - mean[r]) * rstd[r];
    b += gy[i];
  }
  *s_gxhat = a;
  *s_g = b;
}

// y = w * (x - mean) * rstd + b over R rows of C (stride inner); mean/rstd [R] are written for backward.
SAMX_EXTERN_C void samx_cpu_norm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                                     float *rstd, int64_t R, int64_t C, int64_t inner, float eps);
// gx += dL/dx.
SAMX_EXTERN_C void samx_cpu_norm_bwd_dx(const float *x, const float *w, const float *gy, const float *mean,
                                        const float *rstd, float *gx, int64_t R, int64_t C, int64_t inner);
// gw += dL/dw, gb += dL/db (either may be NULL); part: scratch of 2 * samx_norm_n_chunks(R) * C floats.
SAMX_EXTERN_C void samx_cpu_norm_bwd_dwdb(const float *x, const float *gy, const float *mean, const float *rstd,
                                          float *gw, float *gb, float *part, int64_t R, int64_t C, int64_t inner);
SAMX_EXTERN_C void samx_cuda_norm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                                      float *rstd, int64_t R, int64_t C, int64_t inner, float eps);
SAMX_EXTERN_C void samx_cuda_norm_bwd_dx(const float *x, const float *w, const float *gy, const float *mean,
                                         const float *rstd, float *gx, int64_t R, int64_t C, int64_t inner);
SAMX_EXTERN_C void samx_cuda_norm_bwd_dwdb(const float *x, const float *gy, const float *mean, const float *rstd,
                                           float *gw, float *gb, float *part, int64_t R, int64_t C, int64_t inner);

#endif
