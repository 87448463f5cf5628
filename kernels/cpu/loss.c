#include "../loss.h"

void samx_cpu_loss_elementwise(SamxLossSpec s, const float *x, const float *t, float *out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = samx_loss_elem(&s, x[i], t[i]);
}

// Each chunk is a fixed contiguous range of its row, so the sums do not depend on the thread count.
static void chunk_sums(const SamxLossSpec *s, const float *x, const float *t, int64_t cols, int64_t chunks,
                       int64_t r, int64_t c, double *out) {
  int64_t len = (cols + chunks - 1) / chunks;
  int64_t begin = c * len, end = begin + len < cols ? begin + len : cols;
  double a = 0, b = 0;
  for (int64_t j = begin; j < end; j++) {
    double ta, tb;
    samx_loss_terms(s, x[r * cols + j], t[r * cols + j], &ta, &tb);
    a += ta;
    b += tb;
  }
  out[0] = a;
  out[1] = b;
}

void samx_cpu_loss_reduce(SamxLossSpec s, const float *x, const float *t, const float *weight, int64_t rows,
                          int64_t cols, int keep_rows, int weight_mean, double scale, double *partials, double *sums,
                          double *rowscale, float *out) {
  int64_t chunks = samx_loss_chunks(cols);
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t k = 0; k < rows * chunks; k++) chunk_sums(&s, x, t, cols, chunks, k / chunks, k % chunks, &partials[2 * k]);
  double wsum = 0;
  for (int64_t r = 0; r < rows; r++) {
    samx_loss_row_total(partials, r, chunks, sums);
    wsum += weight ? weight[r] : 1.0;
  }
  double norm = !weight_mean ? 1.0 : (wsum > 0 ? 1.0 / wsum : 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; r++) {
    rowscale[r] = (weight ? weight[r] : 1.0) * scale * norm;
    double v = rowscale[r] * samx_loss_row_value(&s, sums[2 * r], sums[2 * r + 1]);
    if (keep_rows) out[r] = (float)v;
    total += v;
  }
  if (!keep_rows) out[0] = (float)total;
}

void samx_cpu_loss_bwd(SamxLossSpec s, const float *x, const float *t, const double *sums, const double *rowscale,
                       const float *gy, int gy_mode, float *gx, int64_t rows, int64_t cols) {
  int64_t n = rows * cols;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i / cols;
    double g = gy[gy_mode == SAMX_GY_ELEM ? i : (gy_mode == SAMX_GY_ROW ? r : 0)];
    if (rowscale) g *= rowscale[r];
    double a = sums ? sums[2 * r] : 0, b = sums ? sums[2 * r + 1] : 0;
    gx[i] += (float)(g * samx_loss_grad(&s, x[i], t[i], a, b));
  }
}
