#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "eval/border.h"
#include "eval/edt.h"
#include "eval/hungarian.h"

const char *samx_empty_policy_name(SamxEmptyPolicy p) {
  switch (p) {
    case SAMX_EMPTY_MONAI: return "monai";
    case SAMX_EMPTY_SEQSAM: return "seqsam";
    case SAMX_EMPTY_P2SAM: return "p2sam";
  }
  return "?";
}

int samx_empty_policy_parse(const char *name, SamxEmptyPolicy *out) {
  for (int p = SAMX_EMPTY_MONAI; p <= SAMX_EMPTY_P2SAM; p++)
    if (!strcmp(name, samx_empty_policy_name((SamxEmptyPolicy)p))) {
      *out = (SamxEmptyPolicy)p;
      return 0;
    }
  return -1;
}

// Pixel counts run in blocks with a 32-bit accumulator so that the loops vectorise (byte compares
// summed in SIMD lanes); GED over 16 x 4 masks is dominated by these two functions.
#define COUNT_BLOCK 65536

int64_t samx_mask_count(const uint8_t *m, int64_t npix) {
  int64_t n = 0;
  for (int64_t i0 = 0; i0 < npix; i0 += COUNT_BLOCK) {
    int64_t end = i0 + COUNT_BLOCK < npix ? i0 + COUNT_BLOCK : npix;
    uint32_t s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < end; i++) s += (uint32_t)(m[i] != 0);
    n += s;
  }
  return n;
}

int64_t samx_mask_intersection(const uint8_t *a, const uint8_t *b, int64_t npix) {
  int64_t n = 0;
  for (int64_t i0 = 0; i0 < npix; i0 += COUNT_BLOCK) {
    int64_t end = i0 + COUNT_BLOCK < npix ? i0 + COUNT_BLOCK : npix;
    uint32_t s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < end; i++) s += (uint32_t)((a[i] != 0) & (b[i] != 0));
    n += s;
  }
  return n;
}

// Value of a pair whose reference is empty: NaN (MONAI ignores it) or the policy's both-empty score
// (a non-empty prediction against an empty reference scores 0 outside MONAI).
static double empty_ref_value(int64_t n_pred, SamxEmptyPolicy policy, double both_empty) {
  if (policy == SAMX_EMPTY_MONAI) return NAN;
  return n_pred == 0 ? both_empty : 0.0;
}

static double dice_counts(int64_t inter, int64_t n_pred, int64_t n_ref, SamxEmptyPolicy policy) {
  if (n_ref == 0) return empty_ref_value(n_pred, policy, policy == SAMX_EMPTY_P2SAM ? 1.0 : 0.0);
  return 2.0 * (double)inter / (double)(n_pred + n_ref);
}

static double iou_counts(int64_t inter, int64_t n_pred, int64_t n_ref, SamxEmptyPolicy policy) {
  if (n_ref == 0) return empty_ref_value(n_pred, policy, 1.0);
  return (double)inter / (double)(n_pred + n_ref - inter);
}

double samx_dice(const uint8_t *pred, const uint8_t *ref, int64_t npix, SamxEmptyPolicy policy) {
  return dice_counts(samx_mask_intersection(pred, ref, npix), samx_mask_count(pred, npix),
                     samx_mask_count(ref, npix), policy);
}

double samx_iou(const uint8_t *pred, const uint8_t *ref, int64_t npix, SamxEmptyPolicy policy) {
  return iou_counts(samx_mask_intersection(pred, ref, npix), samx_mask_count(pred, npix),
                    samx_mask_count(ref, npix), policy);
}

double samx_iou_sym(const uint8_t *a, const uint8_t *b, int64_t npix) {
  int64_t inter = samx_mask_intersection(a, b, npix), uni = samx_mask_count(a, npix) + samx_mask_count(b, npix) - inter;
  return uni == 0 ? 1.0 : (double)inter / (double)uni;
}

// Mean of 1 - IoU over all pairs of two sets (i = j included when they are the same set); each
// mask's pixel count is computed once, not once per pair.
static double mean_distance(const uint8_t *const *a, int64_t na, const uint8_t *const *b, int64_t nb, int64_t npix) {
  int64_t *cb = (int64_t *)malloc(sizeof(int64_t) * (size_t)(nb ? nb : 1));
  for (int64_t j = 0; j < nb; j++) cb[j] = samx_mask_count(b[j], npix);
  double s = 0.0;
  for (int64_t i = 0; i < na; i++) {
    int64_t ca = samx_mask_count(a[i], npix);
    for (int64_t j = 0; j < nb; j++) {
      int64_t inter = samx_mask_intersection(a[i], b[j], npix), uni = ca + cb[j] - inter;
      s += 1.0 - (uni == 0 ? 1.0 : (double)inter / (double)uni);
    }
  }
  free(cb);
  return s / ((double)na * (double)nb);
}

double samx_ged(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann, int64_t npix) {
  if (n_hyp == 0 || n_ann == 0) return NAN;
  return 2.0 * mean_distance(hyp, n_hyp, ann, n_ann, npix) - mean_distance(hyp, n_hyp, hyp, n_hyp, npix) -
         mean_distance(ann, n_ann, ann, n_ann, npix);
}

double samx_diversity(const uint8_t *const *hyp, int64_t n_hyp, int64_t npix) {
  if (n_hyp == 0) return NAN;
  return mean_distance(hyp, n_hyp, hyp, n_hyp, npix);
}

double samx_dice_avg(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                     int64_t npix, SamxEmptyPolicy policy, uint8_t *vote) {
  if (n_hyp == 0 || n_ann == 0) return NAN;
  for (int64_t p = 0; p < npix; p++) {
    int64_t on = 0;
    for (int64_t i = 0; i < n_hyp; i++) on += hyp[i][p] != 0;
    vote[p] = (uint8_t)(2 * on > n_hyp);
  }
  double s = 0.0;
  int64_t n = 0;
  for (int64_t j = 0; j < n_ann; j++) {
    double d = samx_dice(vote, ann[j], npix, policy);
    if (!isnan(d)) s += d, n++;
  }
  return n ? s / (double)n : NAN;
}

double samx_dmax(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann, int64_t npix,
                 SamxEmptyPolicy policy) {
  if (n_hyp == 0 || n_ann == 0) return NAN;
  double s = 0.0;
  int64_t n = 0;
  for (int64_t i = 0; i < n_hyp; i++) {
    double best = NAN;
    for (int64_t j = 0; j < n_ann; j++) {
      double d;
      if (policy == SAMX_EMPTY_SEQSAM) {
        // SeqSAM's D_max computes 2|A&B|/(|A|+|B|) unguarded: 0/0 is NaN and np.max propagates it.
        int64_t np_ = samx_mask_count(hyp[i], npix), nr = samx_mask_count(ann[j], npix);
        if (np_ + nr == 0) return NAN;
        d = 2.0 * (double)samx_mask_intersection(hyp[i], ann[j], npix) / (double)(np_ + nr);
      } else {
        d = samx_dice(hyp[i], ann[j], npix, policy);
      }
      if (!isnan(d) && (isnan(best) || d > best)) best = d;
    }
    if (!isnan(best)) s += best, n++;
  }
  return n ? s / (double)n : NAN;
}

double samx_dmax_pairs(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                       int64_t npix, SamxEmptyPolicy policy) {
  double best = NAN;
  for (int64_t i = 0; i < n_hyp; i++)
    for (int64_t j = 0; j < n_ann; j++) {
      double d = samx_dice(hyp[i], ann[j], npix, policy);
      if (!isnan(d) && (isnan(best) || d > best)) best = d;
    }
  return best;
}

double samx_hm_iou(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                   int64_t npix, int replicate) {
  if (n_hyp == 0 || n_ann == 0) return NAN;
  int64_t cols = replicate && n_hyp > n_ann ? n_hyp : n_ann;
  double *iou = (double *)malloc((size_t)(n_hyp * n_ann) * sizeof(double));
  double *cost = (double *)calloc((size_t)(n_hyp * cols), sizeof(double));
  int64_t *match = (int64_t *)malloc((size_t)n_hyp * sizeof(int64_t));
  SAMX_ASSERT(iou && cost && match, "samx_hm_iou: out of memory");
  for (int64_t i = 0; i < n_hyp; i++)
    for (int64_t j = 0; j < n_ann; j++) iou[i * n_ann + j] = samx_iou_sym(hyp[i], ann[j], npix);
  for (int64_t i = 0; i < n_hyp; i++)
    for (int64_t j = 0; j < cols; j++) cost[i * cols + j] = 1.0 - iou[i * n_ann + j % n_ann];
  samx_hungarian(cost, n_hyp, cols, match, NULL);
  double s = 0.0;
  int64_t n = 0;
  for (int64_t i = 0; i < n_hyp; i++)
    if (match[i] >= 0) s += iou[i * n_ann + match[i] % n_ann], n++;
  free(iou), free(cost), free(match);
  return s / (double)n;
}

// ---- surface metrics ----

// Distances (EDT, with spacing) from every element of `from` to the nearest element of `to`, both
// h x w 0/1 grids. Writes one distance per element of `from` to out (in raster order), returns the
// count; +inf distances when `to` is empty.
static int64_t distances_between(const uint8_t *from, const uint8_t *to, int64_t h, int64_t w, const double spacing[2],
                                 double *scratch, double *out) {
  samx_edt(to, h, w, spacing[0], spacing[1], scratch);
  int64_t n = 0;
  for (int64_t i = 0; i < h * w; i++)
    if (from[i]) out[n++] = scratch[i];
  return n;
}

double samx_nsd(const uint8_t *gt, const uint8_t *pred, int64_t h, int64_t w, const double spacing[2],
                double tolerance) {
  int64_t gh = h + 1, gw = w + 1, ng = gh * gw;
  uint8_t *code_gt = (uint8_t *)malloc((size_t)ng), *code_pred = (uint8_t *)malloc((size_t)ng);
  uint8_t *surf_gt = (uint8_t *)malloc((size_t)ng), *surf_pred = (uint8_t *)malloc((size_t)ng);
  double *dist_to_gt = (double *)malloc((size_t)ng * sizeof(double));
  double *dist_to_pred = (double *)malloc((size_t)ng * sizeof(double));
  SAMX_ASSERT(code_gt && code_pred && surf_gt && surf_pred && dist_to_gt && dist_to_pred, "samx_nsd: out of memory");
  samx_neighbour_codes(gt, h, w, code_gt);
  samx_neighbour_codes(pred, h, w, code_pred);
  for (int64_t i = 0; i < ng; i++) {
    surf_gt[i] = code_gt[i] != 0 && code_gt[i] != 15;
    surf_pred[i] = code_pred[i] != 0 && code_pred[i] != 15;
  }
  // The corner grid lies half a pixel off the pixel grid; distances are translation invariant, so the
  // EDT runs on it directly (DeepMind crops to the bounding box first, which changes no distance).
  samx_edt(surf_gt, gh, gw, spacing[0], spacing[1], dist_to_gt);
  samx_edt(surf_pred, gh, gw, spacing[0], spacing[1], dist_to_pred);
  double len[16];
  samx_contour_length_table(spacing[0], spacing[1], len);
  double total = 0.0, within = 0.0;
  for (int64_t i = 0; i < ng; i++) {
    if (surf_gt[i]) {
      total += len[code_gt[i]];
      if (dist_to_pred[i] <= tolerance) within += len[code_gt[i]];
    }
    if (surf_pred[i]) {
      total += len[code_pred[i]];
      if (dist_to_gt[i] <= tolerance) within += len[code_pred[i]];
    }
  }
  free(code_gt), free(code_pred), free(surf_gt), free(surf_pred), free(dist_to_gt), free(dist_to_pred);
  return total > 0.0 ? within / total : NAN;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void samx_assd_hd95(const uint8_t *a, const uint8_t *b, int64_t h, int64_t w, const double spacing[2], double *assd,
                    double *hd95) {
  int64_t npix = h * w, na = samx_mask_count(a, npix), nb = samx_mask_count(b, npix);
  if (na == 0 || nb == 0) {
    double v = na == 0 && nb == 0 ? NAN : INFINITY;
    if (assd) *assd = v;
    if (hd95) *hd95 = v;
    return;
  }
  uint8_t *border_a = (uint8_t *)malloc((size_t)npix), *border_b = (uint8_t *)malloc((size_t)npix);
  double *scratch = (double *)malloc((size_t)npix * sizeof(double));
  double *d = (double *)malloc((size_t)(2 * npix) * sizeof(double));
  SAMX_ASSERT(border_a && border_b && scratch && d, "samx_assd_hd95: out of memory");
  samx_mask_border(a, h, w, 4, border_a);
  samx_mask_border(b, h, w, 4, border_b);
  int64_t nab = distances_between(border_a, border_b, h, w, spacing, scratch, d);
  int64_t nba = distances_between(border_b, border_a, h, w, spacing, scratch, d + nab);
  double sab = 0.0, sba = 0.0;
  for (int64_t i = 0; i < nab; i++) sab += d[i];
  for (int64_t i = 0; i < nba; i++) sba += d[nab + i];
  if (assd) *assd = 0.5 * (sab / (double)nab + sba / (double)nba);
  if (hd95) {
    // numpy.percentile(..., 95) with linear interpolation between the closest ranks.
    int64_t n = nab + nba;
    qsort(d, (size_t)n, sizeof(double), cmp_double);
    double pos = 0.95 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos);
    double t = pos - (double)lo;
    *hd95 = lo + 1 < n ? d[lo] + t * (d[lo + 1] - d[lo]) : d[lo];
  }
  free(border_a), free(border_b), free(scratch), free(d);
}
