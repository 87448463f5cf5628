#include "../norm.h"

void samx_cpu_norm_fwd(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd, int64_t R,
                       int64_t C, int64_t inner, float eps) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
  for (int64_t r = 0; r < R; r++) {
    int64_t base = samx_norm_row_base(r, C, inner);
    float m = samx_norm_partial_sum(x + base, C, inner, 0, 1, 0.0f, 0) / (float)C;
    float rs = samx_norm_rstd(samx_norm_partial_sum(x + base, C, inner, 0, 1, m, 1) / (float)C, eps);
    for (int64_t c = 0; c < C; c++) y[base + c * inner] = samx_norm_fwd(x[base + c * inner], m, rs, w[c], b[c]);
    mean[r] = m;
    rstd[r] = rs;
  }
}

void samx_cpu_norm_bwd_dx(const float *x, const float *w, const float *gy, const float *mean, const float *rstd,
                          float *gx, int64_t R, int64_t C, int64_t inner) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
  for (int64_t r = 0; r < R; r++) {
    int64_t base = samx_norm_row_base(r, C, inner);
    float s_gw, s_gwxhat;
    samx_norm_bwd_partial(x + base, gy + base, w, C, inner, 0, 1, mean[r], rstd[r], &s_gw, &s_gwxhat);
    for (int64_t c = 0; c < C; c++) {
      int64_t i = base + c * inner;
      gx[i] += samx_norm_dx(x[i], gy[i], w[c], mean[r], rstd[r], s_gw / (float)C, s_gwxhat / (float)C);
    }
  }
}

void samx_cpu_norm_bwd_dwdb(const float *x, const float *gy, const float *mean, const float *rstd, float *gw,
                            float *gb, float *part, int64_t R, int64_t C, int64_t inner) {
  int64_t rows = samx_norm_chunk_rows(R), n_chunks = samx_norm_n_chunks(R);
  float *part_w = part, *part_b = part + n_chunks * C;
#pragma omp parallel for collapse(2) schedule(static) if (R * C > 32768)
  for (int64_t k = 0; k < n_chunks; k++)
    for (int64_t c = 0; c < C; c++) {
      int64_t r1 = (k + 1) * rows < R ? (k + 1) * rows : R;
      samx_norm_chunk_colsum(x, gy, mean, rstd, k * rows, r1, c, C, inner, &part_w[k * C + c], &part_b[k * C + c]);
    }
  for (int64_t c = 0; c < C; c++) {
    float sw = 0.0f, sb = 0.0f;
    for (int64_t k = 0; k < n_chunks; k++) sw += part_w[k * C + c], sb += part_b[k * C + c];
    if (gw) gw[c] += sw;
    if (gb) gb[c] += sb;
  }
}
