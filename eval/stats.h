// Statistics for evaluation: summaries that count what entered them, correlations, SQA-SAM's
// bottom-X% detection accuracy and the Wilcoxon signed-rank test.
#ifndef SAMX_EVAL_STATS_H
#define SAMX_EVAL_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  double mean, std;  // std is the population one (ddof 0, numpy's default); NaN when n_valid == 0
  int64_t n_valid;   // finite values that entered (NaN and +-inf are left out)
} SamxSummary;

SamxSummary samx_summarize(const double *x, int64_t n);

// Ranks 1..n, ties get the average of their ranks (scipy.stats.rankdata's default).
void samx_rank_average(const double *x, int64_t n, double *ranks);

// Correlation coefficients over n pairs (all finite); NaN when n < 2 or a side is constant.
double samx_pearson(const double *x, const double *y, int64_t n);
double samx_spearman(const double *x, const double *y, int64_t n);

// SQA-SAM's detection accuracy of the bottom `fraction` (0.25, 0.5) of samples by true quality:
// k = round(fraction * n) (at least 1); the k samples with the lowest truth are the poor ones, the k
// with the lowest score are the detected ones, accuracy = |detected & poor| / k. Ties are broken by
// sample order. NaN when n == 0.
double samx_bottom_detection(const double *score, const double *truth, int64_t n, double fraction);

typedef struct {
  double statistic;  // min(R+, R-)
  double pvalue;     // two-sided
  double z;          // normal-approximation z (NaN for the exact test)
  int64_t n_used;    // differences that entered the ranks
  int exact;         // 1: exact null distribution, 0: normal approximation
} SamxWilcoxon;

// Paired two-sided Wilcoxon signed-rank test on d = x - y, as scipy.stats.wilcoxon (scipy 1.10) with
// its defaults (zero_method "wilcox", no continuity correction, method "auto"): the exact
// distribution when n <= 50 and no difference is zero, else the normal approximation on the nonzero
// differences with the tie correction of the variance. As in scipy, the exact test with tied ranks
// truncates a half-integer R+. p is NaN when n == 0 or every difference is zero.
SamxWilcoxon samx_wilcoxon(const double *x, const double *y, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
