#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>

#include "engine/error.h"

SamxSummary samx_summarize(const double *x, int64_t n) {
  SamxSummary s = {NAN, NAN, 0};
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i])) sum += x[i], s.n_valid++;
  if (!s.n_valid) return s;
  s.mean = sum / (double)s.n_valid;
  double ss = 0.0;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
  s.std = sqrt(ss / (double)s.n_valid);
  return s;
}

typedef struct {
  double v;
  int64_t i;
} Keyed;

static int cmp_keyed(const void *a, const void *b) {
  const Keyed *x = (const Keyed *)a, *y = (const Keyed *)b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

// Indices of x in ascending order of value (stable: ties keep sample order).
static Keyed *sorted_keys(const double *x, int64_t n) {
  Keyed *k = (Keyed *)malloc((size_t)(n ? n : 1) * sizeof(Keyed));
  SAMX_ASSERT(k, "out of memory sorting %lld values", (long long)n);
  for (int64_t i = 0; i < n; i++) k[i] = (Keyed){x[i], i};
  qsort(k, (size_t)n, sizeof(Keyed), cmp_keyed);
  return k;
}

void samx_rank_average(const double *x, int64_t n, double *ranks) {
  Keyed *k = sorted_keys(x, n);
  for (int64_t a = 0; a < n;) {
    int64_t b = a;
    while (b + 1 < n && k[b + 1].v == k[a].v) b++;
    double r = 0.5 * (double)(a + b) + 1.0;
    for (int64_t j = a; j <= b; j++) ranks[k[j].i] = r;
    a = b + 1;
  }
  free(k);
}

double samx_pearson(const double *x, const double *y, int64_t n) {
  if (n < 2) return NAN;
  double mx = 0.0, my = 0.0;
  for (int64_t i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= (double)n, my /= (double)n;
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  if (sxx == 0.0 || syy == 0.0) return NAN;
  double r = sxy / sqrt(sxx * syy);
  return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

double samx_spearman(const double *x, const double *y, int64_t n) {
  if (n < 2) return NAN;
  double *rx = (double *)malloc((size_t)n * sizeof(double)), *ry = (double *)malloc((size_t)n * sizeof(double));
  SAMX_ASSERT(rx && ry, "samx_spearman: out of memory");
  samx_rank_average(x, n, rx);
  samx_rank_average(y, n, ry);
  double r = samx_pearson(rx, ry, n);
  free(rx), free(ry);
  return r;
}

double samx_bottom_detection(const double *score, const double *truth, int64_t n, double fraction) {
  if (n == 0) return NAN;
  int64_t k = (int64_t)llround(fraction * (double)n);
  if (k < 1) k = 1;
  if (k > n) k = n;
  Keyed *by_truth = sorted_keys(truth, n), *by_score = sorted_keys(score, n);
  uint8_t *poor = (uint8_t *)calloc((size_t)n, 1);
  SAMX_ASSERT(poor, "samx_bottom_detection: out of memory");
  for (int64_t j = 0; j < k; j++) poor[by_truth[j].i] = 1;
  int64_t hit = 0;
  for (int64_t j = 0; j < k; j++) hit += poor[by_score[j].i];
  free(by_truth), free(by_score), free(poor);
  return (double)hit / (double)k;
}

// Two-sided exact p-value of R+ = r for n untied nonzero differences: the null distribution of R+
// counts the subsets of {1..n} with each sum (dynamic programming over n), divided by 2^n.
static double wilcoxon_exact_p(int64_t n, int64_t r) {
  int64_t top = n * (n + 1) / 2;
  double *count = (double *)calloc((size_t)top + 1, sizeof(double));
  SAMX_ASSERT(count, "samx_wilcoxon: out of memory");
  count[0] = 1.0;
  for (int64_t k = 1; k <= n; k++)
    for (int64_t s = k * (k + 1) / 2; s >= k; s--) count[s] += count[s - k];
  double p;
  if (r == top / 2) {
    p = 1.0;  // scipy: R+ at the centre of the distribution (integer division, as scipy)
  } else {
    double total = ldexp(1.0, (int)n), less = 0.0, greater = 0.0;
    for (int64_t s = 0; s <= r && s <= top; s++) less += count[s];
    for (int64_t s = r < 0 ? 0 : r; s <= top; s++) greater += count[s];
    p = 2.0 * fmin(less, greater) / total;
    if (p > 1.0) p = 1.0;
  }
  free(count);
  return p;
}

SamxWilcoxon samx_wilcoxon(const double *x, const double *y, int64_t n) {
  SamxWilcoxon res = {NAN, NAN, NAN, 0, 0};
  if (n == 0) return res;
  double *d = (double *)malloc((size_t)n * sizeof(double)), *ad = (double *)malloc((size_t)n * sizeof(double));
  double *r = (double *)malloc((size_t)n * sizeof(double));
  SAMX_ASSERT(d && ad && r, "samx_wilcoxon: out of memory");
  int64_t m = 0, n_zero = 0;
  for (int64_t i = 0; i < n; i++) n_zero += x[i] - y[i] == 0.0;
  res.exact = n <= 50 && n_zero == 0;
  // "wilcox" zero method: the normal approximation drops the zero differences.
  for (int64_t i = 0; i < n; i++)
    if (x[i] - y[i] != 0.0) d[m++] = x[i] - y[i];
  res.n_used = m;
  if (m == 0) {
    free(d), free(ad), free(r);
    return res;
  }
  for (int64_t i = 0; i < m; i++) ad[i] = fabs(d[i]);
  samx_rank_average(ad, m, r);
  double r_plus = 0.0, r_minus = 0.0;
  for (int64_t i = 0; i < m; i++) {
    if (d[i] > 0) r_plus += r[i];
    else r_minus += r[i];
  }
  res.statistic = fmin(r_plus, r_minus);
  if (res.exact) {
    res.pvalue = wilcoxon_exact_p(m, (int64_t)r_plus);  // int(): truncation as scipy 1.10
  } else {
    double mn = (double)m * (double)(m + 1) * 0.25;
    double se = (double)m * (double)(m + 1) * (double)(2 * m + 1);
    // Tie correction: each group of t equal ranks lowers the variance by t (t^2 - 1) / 48.
    Keyed *k = sorted_keys(r, m);
    for (int64_t a = 0; a < m;) {
      int64_t b = a;
      while (b + 1 < m && k[b + 1].v == k[a].v) b++;
      double t = (double)(b - a + 1);
      if (t > 1) se -= 0.5 * t * (t * t - 1.0);
      a = b + 1;
    }
    free(k);
    se = sqrt(se / 24.0);
    res.z = (res.statistic - mn) / se;
    res.pvalue = erfc(fabs(res.z) / sqrt(2.0));  // 2 * normal survival function
  }
  free(d), free(ad), free(r);
  return res;
}
