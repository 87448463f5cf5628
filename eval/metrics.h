// Segmentation metrics for 2-D binary masks and sets of them (hypotheses vs annotators).
// Definitions follow docs (method-notes §7). Masks are uint8, nonzero = foreground, npix = h*w
// values each; a set is an array of pointers to masks (annotators a sample's reader did not read are
// simply left out of the set by the caller).
//
// Empty masks: every metric has an explicit convention, chosen by SamxEmptyPolicy:
//  - SAMX_EMPTY_MONAI (default): MONAI's semantics. Dice and IoU of a prediction against an empty
//    reference are NaN (ignore_empty=True): skipped by means, which report how many values entered.
//    NSD: both empty NaN, one empty 0. ASSD / HD95: both empty NaN, one empty +inf.
//  - SAMX_EMPTY_SEQSAM: SeqSAM's code. Dice of two empty masks 0 (its NaN -> 0), IoU of two empty
//    masks 1 (its GED); D_max has no guard, so a both-empty pair makes that sample's D_max NaN.
//  - SAMX_EMPTY_P2SAM: P2SAM's code. Dice and IoU of two empty masks are 1.
// The pair rule of the policy applies to every Dice / IoU below (dice, iou, D_avg, both D_max).
// GED, diversity and HM-IoU need every pair, so they score two empty masks as IoU 1 under every
// policy (SeqSAM and P2SAM agree; MONAI's generalised Dice does the same); exactly one empty mask
// gives IoU 0 / Dice 0 everywhere. NSD, ASSD and HD95 are the same under every policy.
#ifndef SAMX_EVAL_METRICS_H
#define SAMX_EVAL_METRICS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAMX_EMPTY_MONAI = 0, SAMX_EMPTY_SEQSAM = 1, SAMX_EMPTY_P2SAM = 2 } SamxEmptyPolicy;

// "monai", "seqsam", "p2sam". parse returns 0, or -1 for an unknown name.
const char *samx_empty_policy_name(SamxEmptyPolicy p);
int samx_empty_policy_parse(const char *name, SamxEmptyPolicy *out);

int64_t samx_mask_count(const uint8_t *m, int64_t npix);
int64_t samx_mask_intersection(const uint8_t *a, const uint8_t *b, int64_t npix);

// Pair scores of a prediction against a reference under the policy.
double samx_dice(const uint8_t *pred, const uint8_t *ref, int64_t npix, SamxEmptyPolicy policy);
double samx_iou(const uint8_t *pred, const uint8_t *ref, int64_t npix, SamxEmptyPolicy policy);
// IoU with both empty = 1 (the symmetric convention of GED, diversity and HM-IoU).
double samx_iou_sym(const uint8_t *a, const uint8_t *b, int64_t npix);

// Generalised energy distance D^2 = 2/(NM) sum d(s,y) - 1/N^2 sum d(s,s') - 1/M^2 sum d(y,y'),
// d = 1 - IoU, i = j terms included, no square root. NaN when either set is empty.
double samx_ged(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann, int64_t npix);
// Sample diversity (SeqSAM): 1/N^2 sum d(s,s'), i = j included.
double samx_diversity(const uint8_t *const *hyp, int64_t n_hyp, int64_t npix);
// D_avg (SeqSAM): majority vote of the hypotheses (more than half set; a tie is 0, as numpy's round
// to even), Dice against each annotator under the policy, mean over the non-NaN ones (NaN if none).
// vote: npix bytes of scratch.
double samx_dice_avg(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                     int64_t npix, SamxEmptyPolicy policy, uint8_t *vote);
// D_max (SeqSAM): mean over hypotheses of the best Dice over annotators.
double samx_dmax(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann, int64_t npix,
                 SamxEmptyPolicy policy);
// D_max (P2SAM): the best Dice over all (hypothesis, annotator) pairs.
double samx_dmax_pairs(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                       int64_t npix, SamxEmptyPolicy policy);
// HM-IoU: Hungarian matching of hypotheses to annotators on cost 1 - IoU (both empty: IoU 1), mean
// IoU of the matched pairs. replicate = 0: rectangular N x M matching, min(N, M) pairs (P2SAM).
// replicate = 1: when N > M the annotator set is first repeated to N entries (annotator j mod M),
// giving N pairs (hierarchical probabilistic U-Net); when N <= M it is the rectangular matching.
double samx_hm_iou(const uint8_t *const *hyp, int64_t n_hyp, const uint8_t *const *ann, int64_t n_ann,
                   int64_t npix, int replicate);

// Normalised surface distance (surface Dice at tolerance), DeepMind's surface-distance in 2-D:
// marching-squares boundary elements with their lengths, distances from each boundary element to the
// other mask's boundary elements, tolerance in the units of spacing (spacing {1, 1}: pixels).
// Both empty NaN, one empty 0.
double samx_nsd(const uint8_t *gt, const uint8_t *pred, int64_t h, int64_t w, const double spacing[2],
                double tolerance);
// Average symmetric surface distance and 95th-percentile Hausdorff distance (medpy): borders are the
// masks XOR their erosion by the 4-connected cross, distances by exact EDT with spacing. Both empty
// NaN, one empty +inf. Either output may be NULL.
void samx_assd_hd95(const uint8_t *a, const uint8_t *b, int64_t h, int64_t w, const double spacing[2], double *assd,
                    double *hd95);

#ifdef __cplusplus
}
#endif
#endif
