#include "eval/edt.h"

#include <math.h>
#include <stdlib.h>

#include "engine/error.h"

// 1-D squared distance transform of f (n values, +inf where there is no seed) with sample spacing s:
// d[q] = min_p f[p] + (s (q - p))^2. v and z are scratch of n and n + 1 entries.
static void edt_1d(const double *f, int64_t n, double s, double *d, int64_t *v, double *z) {
  double s2 = s * s;
  int64_t k = -1;
  for (int64_t q = 0; q < n; q++) {
    if (isinf(f[q])) continue;  // no parabola: infinite heights never reach the envelope
    double fq = f[q] + s2 * (double)q * (double)q;
    while (k >= 0) {
      int64_t p = v[k];
      double x = (fq - (f[p] + s2 * (double)p * (double)p)) / (2.0 * s2 * (double)(q - p));
      if (x > z[k]) {
        z[k + 1] = x;
        break;
      }
      k--;
    }
    if (k < 0) z[0] = -INFINITY;
    v[++k] = q;
    z[k + 1] = INFINITY;
  }
  if (k < 0) {
    for (int64_t q = 0; q < n; q++) d[q] = INFINITY;
    return;
  }
  int64_t j = 0;
  for (int64_t q = 0; q < n; q++) {
    while (z[j + 1] < (double)q) j++;
    double dq = s * (double)(q - v[j]);
    d[q] = dq * dq + f[v[j]];
  }
}

void samx_edt(const uint8_t *seeds, int64_t h, int64_t w, double spacing_row, double spacing_col, double *dist) {
  SAMX_ASSERT(spacing_row > 0 && spacing_col > 0, "samx_edt: spacing %g x %g must be positive", spacing_row,
              spacing_col);
  int64_t n = h > w ? h : w;
  if (h * w == 0) return;
  double *f = (double *)calloc((size_t)n, sizeof(double)), *d = (double *)malloc((size_t)n * sizeof(double));
  double *z = (double *)malloc((size_t)(n + 1) * sizeof(double));
  int64_t *v = (int64_t *)malloc((size_t)n * sizeof(int64_t));
  SAMX_ASSERT(f && d && z && v, "samx_edt: out of memory for %lld x %lld", (long long)h, (long long)w);
  // Columns first (distance along rows), then rows on the squared partial distances.
  for (int64_t c = 0; c < w; c++) {
    for (int64_t r = 0; r < h; r++) f[r] = seeds[r * w + c] ? 0.0 : INFINITY;
    edt_1d(f, h, spacing_row, d, v, z);
    for (int64_t r = 0; r < h; r++) dist[r * w + c] = d[r];
  }
  for (int64_t r = 0; r < h; r++) {
    for (int64_t c = 0; c < w; c++) f[c] = dist[r * w + c];
    edt_1d(f, w, spacing_col, d, v, z);
    for (int64_t c = 0; c < w; c++) dist[r * w + c] = sqrt(d[c]);
  }
  free(f), free(d), free(z), free(v);
}
