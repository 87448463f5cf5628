#include "eval/hungarian.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

// Layout of the workspace for an n x m problem (n <= m, 1-based as in the classic formulation).
typedef struct {
  double *u, *v, *minv;  // row potentials [n+1], column potentials [m+1], slack [m+1]
  int64_t *p, *way;      // p[j]: row matched to column j (0: none); way[j]: previous column on the path
  uint8_t *used;         // [m+1]
} Work;

size_t samx_hungarian_workspace_size(int64_t rows, int64_t cols) {
  int64_t n = rows < cols ? rows : cols, m = rows < cols ? cols : rows;
  return (size_t)(n + 1 + 2 * (m + 1)) * sizeof(double) + (size_t)(2 * (m + 1)) * sizeof(int64_t) +
         (size_t)(m + 1);
}

static Work carve(void *base, int64_t n, int64_t m) {
  Work w;
  char *p = (char *)base;
  w.u = (double *)p, p += (size_t)(n + 1) * sizeof(double);
  w.v = (double *)p, p += (size_t)(m + 1) * sizeof(double);
  w.minv = (double *)p, p += (size_t)(m + 1) * sizeof(double);
  w.p = (int64_t *)p, p += (size_t)(m + 1) * sizeof(int64_t);
  w.way = (int64_t *)p, p += (size_t)(m + 1) * sizeof(int64_t);
  w.used = (uint8_t *)p;
  return w;
}

// a(i, j) for 1-based i < = n rows of the (possibly transposed) problem.
static inline double cost_at(const double *cost, int64_t cols, int transposed, int64_t i, int64_t j) {
  return transposed ? cost[(j - 1) * cols + (i - 1)] : cost[(i - 1) * cols + (j - 1)];
}

double samx_hungarian(const double *cost, int64_t rows, int64_t cols, int64_t *row_to_col, void *work) {
  SAMX_ASSERT(rows >= 0 && cols >= 0, "samx_hungarian: bad shape %lld x %lld", (long long)rows, (long long)cols);
  for (int64_t r = 0; r < rows; r++) row_to_col[r] = -1;
  if (rows == 0 || cols == 0) return 0.0;
  for (int64_t i = 0; i < rows * cols; i++)
    SAMX_ASSERT(isfinite(cost[i]), "samx_hungarian: cost[%lld] is not finite", (long long)i);
  int transposed = rows > cols;
  int64_t n = transposed ? cols : rows, m = transposed ? rows : cols;
  void *owned = work ? NULL : malloc(samx_hungarian_workspace_size(rows, cols));
  SAMX_ASSERT(work || owned, "samx_hungarian: out of memory");
  Work w = carve(work ? work : owned, n, m);
  memset(w.u, 0, (size_t)(n + 1) * sizeof(double));
  memset(w.v, 0, (size_t)(m + 1) * sizeof(double));
  memset(w.p, 0, (size_t)(m + 1) * sizeof(int64_t));
  memset(w.way, 0, (size_t)(m + 1) * sizeof(int64_t));

  // Adds row i to the matching along a shortest augmenting path (Dijkstra on reduced costs).
  for (int64_t i = 1; i <= n; i++) {
    w.p[0] = i;
    int64_t j0 = 0;
    for (int64_t j = 0; j <= m; j++) w.minv[j] = INFINITY, w.used[j] = 0;
    do {
      w.used[j0] = 1;
      int64_t i0 = w.p[j0], j1 = 0;
      double delta = INFINITY;
      for (int64_t j = 1; j <= m; j++) {
        if (w.used[j]) continue;
        double cur = cost_at(cost, cols, transposed, i0, j) - w.u[i0] - w.v[j];
        if (cur < w.minv[j]) w.minv[j] = cur, w.way[j] = j0;
        if (w.minv[j] < delta) delta = w.minv[j], j1 = j;
      }
      for (int64_t j = 0; j <= m; j++) {
        if (w.used[j]) {
          w.u[w.p[j]] += delta;
          w.v[j] -= delta;
        } else {
          w.minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (w.p[j0] != 0);
    do {
      int64_t j1 = w.way[j0];
      w.p[j0] = w.p[j1];
      j0 = j1;
    } while (j0);
  }

  double total = 0.0;
  for (int64_t j = 1; j <= m; j++) {
    if (!w.p[j]) continue;
    int64_t i = w.p[j];
    total += cost_at(cost, cols, transposed, i, j);
    if (transposed) row_to_col[j - 1] = i - 1;
    else row_to_col[i - 1] = j - 1;
  }
  free(owned);
  return total;
}
