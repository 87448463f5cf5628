// Eval metrics on small hand-computed cases: every set metric under every empty-mask policy, NSD,
// ASSD / HD95, statistics, and the per-sample driver. The expected values are worked out in the
// comments from the definitions (method-notes §7), not from the code.
#include <stdlib.h>
#include <string.h>

#include "eval/evaluate.h"
#include "eval/metrics.h"
#include "eval/stats.h"
#include "eval_test_util.h"
#include "tests/harness.h"

#define CLOSE(got, want, ...) CHECK(test_close((got), (want), 1e-12), __VA_ARGS__)

static const SamxEmptyPolicy policies[3] = {SAMX_EMPTY_MONAI, SAMX_EMPTY_SEQSAM, SAMX_EMPTY_P2SAM};

// Masks of 4 pixels written as strings: "1100" = pixels 0 and 1 set.
static void bits(const char *s, uint8_t *m) {
  for (int i = 0; s[i]; i++) m[i] = s[i] == '1';
}

// hyp 1100, 1000, 0000; ann 1100, 0110. IoU (hyp x ann) = [[1, 1/3], [1/2, 0], [0, 0]].
// GED: mean d(s,y) = (0 + 2/3 + 1/2 + 1 + 1 + 1)/6 = 25/36; mean d(s,s') = 2 (1/2 + 1 + 1)/9 = 5/9
// (h3 vs h3: both empty, IoU 1, d 0); mean d(y,y') = 2 (2/3)/4 = 1/3: 25/18 - 10/18 - 6/18 = 1/2.
// Vote: pixel 0 has 2 of 3 votes, pixel 1 has 1: 1000; Dice 2/3 and 0: D_avg 1/3.
// D_max: best per hypothesis 1, 2/3, 0: 5/9. Pairs: 1. HM-IoU: best 2 matches sum to 1: 1/2;
// replicated (a1, a2, a1): h1-a1 1, h2-a1' 1/2, h3-a2 0: 1/2.
static void test_no_empty_annotator(void) {
  uint8_t h[3][4], a[2][4], vote[4];
  bits("1100", h[0]), bits("1000", h[1]), bits("0000", h[2]);
  bits("1100", a[0]), bits("0110", a[1]);
  const uint8_t *hp[3] = {h[0], h[1], h[2]}, *ap[2] = {a[0], a[1]};
  CLOSE(samx_ged(hp, 3, ap, 2, 4), 0.5, "ged");
  CLOSE(samx_diversity(hp, 3, 4), 5.0 / 9.0, "diversity");
  for (int p = 0; p < 3; p++) {
    CLOSE(samx_dice_avg(hp, 3, ap, 2, 4, policies[p], vote), 1.0 / 3.0, "dice_avg policy %d", p);
    CLOSE(samx_dmax(hp, 3, ap, 2, 4, policies[p]), 5.0 / 9.0, "dmax policy %d", p);
    CLOSE(samx_dmax_pairs(hp, 3, ap, 2, 4, policies[p]), 1.0, "dmax_pairs policy %d", p);
  }
  CLOSE(samx_hm_iou(hp, 3, ap, 2, 4, 0), 0.5, "hm_iou");
  CLOSE(samx_hm_iou(hp, 3, ap, 2, 4, 1), 0.5, "hm_iou replicated");
  CLOSE(samx_dice(h[0], a[1], 4, SAMX_EMPTY_MONAI), 0.5, "dice 1100 vs 0110");
  CLOSE(samx_iou(h[0], a[1], 4, SAMX_EMPTY_MONAI), 1.0 / 3.0, "iou 1100 vs 0110");
}

// Replication matters: three copies of 1100 against 1100 and 0011. Rectangular: one hypothesis to
// each annotator, IoU 1 and 0: 1/2. Replicated (1100, 0011, 1100): 1, 1, 0: 2/3.
static void test_hm_replication(void) {
  uint8_t h[4], a[2][4];
  bits("1100", h), bits("1100", a[0]), bits("0011", a[1]);
  const uint8_t *hp[3] = {h, h, h}, *ap[2] = {a[0], a[1]};
  CLOSE(samx_hm_iou(hp, 3, ap, 2, 4, 0), 0.5, "hm_iou rectangular");
  CLOSE(samx_hm_iou(hp, 3, ap, 2, 4, 1), 2.0 / 3.0, "hm_iou replicated");
  CLOSE(samx_hm_iou(hp, 1, ap, 2, 4, 1), 1.0, "hm_iou N < M is rectangular");
}

// hyp 0000, 1000; ann 0000, 1000.
// First pair (empty vs empty): Dice NaN / 0 / 1 and IoU NaN / 1 / 1 (monai / seqsam / p2sam).
// GED: d(s,y) = 0, 1, 1, 0 -> 2 * 1/2; d(s,s') = d(y,y') = 1/2: GED 0; diversity 1/2.
// Vote: pixel 0 has 1 of 2 votes, a tie, so 0000. Dice(vote, 0000) NaN / 0 / 1, Dice(vote, 1000) 0:
// D_avg monai 0 (one value), seqsam 0, p2sam 1/2.
// D_max: monai skips the empty annotator: h1 0, h2 1: 1/2; seqsam: h1 vs a1 is 0/0: NaN;
// p2sam: h1 1 (both empty), h2 1: 1. Pairs: 1 everywhere (h2 vs a2). HM-IoU: identity, IoU 1 and 1.
static void test_empty_policies(void) {
  uint8_t h[2][4], a[2][4], vote[4];
  bits("0000", h[0]), bits("1000", h[1]), bits("0000", a[0]), bits("1000", a[1]);
  const uint8_t *hp[2] = {h[0], h[1]}, *ap[2] = {a[0], a[1]};
  const double dice[3] = {NAN, 0.0, 1.0}, iou[3] = {NAN, 1.0, 1.0};
  const double davg[3] = {0.0, 0.0, 0.5}, dmax[3] = {0.5, NAN, 1.0};
  for (int p = 0; p < 3; p++) {
    CLOSE(samx_dice(h[0], a[0], 4, policies[p]), dice[p], "dice both empty, policy %d", p);
    CLOSE(samx_iou(h[0], a[0], 4, policies[p]), iou[p], "iou both empty, policy %d", p);
    CLOSE(samx_dice(h[1], a[0], 4, policies[p]), p == 0 ? NAN : 0.0, "dice vs empty reference, policy %d", p);
    CLOSE(samx_dice(h[0], a[1], 4, policies[p]), 0.0, "dice of empty prediction, policy %d", p);
    CLOSE(samx_dice_avg(hp, 2, ap, 2, 4, policies[p], vote), davg[p], "dice_avg policy %d", p);
    CLOSE(samx_dmax(hp, 2, ap, 2, 4, policies[p]), dmax[p], "dmax policy %d", p);
    CLOSE(samx_dmax_pairs(hp, 2, ap, 2, 4, policies[p]), 1.0, "dmax_pairs policy %d", p);
  }
  CHECK(vote[0] == 0, "a tied vote is 0");
  CLOSE(samx_ged(hp, 2, ap, 2, 4), 0.0, "ged with empty masks");
  CLOSE(samx_diversity(hp, 2, 4), 0.5, "diversity with an empty mask");
  CLOSE(samx_hm_iou(hp, 2, ap, 2, 4, 0), 1.0, "hm_iou with empty masks");
  // Every annotator empty: MONAI has nothing to average.
  const uint8_t *only_empty[1] = {a[0]};
  CLOSE(samx_dice_avg(hp, 2, only_empty, 1, 4, SAMX_EMPTY_MONAI, vote), NAN, "dice_avg, all annotators empty");
  CLOSE(samx_dmax(hp + 1, 1, only_empty, 1, 4, SAMX_EMPTY_MONAI), NAN, "dmax, all annotators empty");
  CLOSE(samx_dmax(hp + 1, 1, only_empty, 1, 4, SAMX_EMPTY_SEQSAM), 0.0, "seqsam dmax 1000 vs 0000");
  CLOSE(samx_dmax_pairs(hp, 2, only_empty, 1, 4, SAMX_EMPTY_MONAI), NAN, "dmax_pairs, all annotators empty");
  CLOSE(samx_ged(hp, 2, ap, 0, 4), NAN, "ged without annotators");
}

// Single pixels at (1,1) and (1,2) of a 4x4 image: each has 4 corner surface elements of length
// sqrt(2)/2; two corners of each coincide with corners of the other (distance 0), the other two are
// 1 pixel away. NSD is 1/2 below tolerance 1, and 1 from tolerance 1 on. With spacing (1, 3) the
// far corners are 3 away.
static void test_nsd(void) {
  uint8_t gt[16] = {0}, pred[16] = {0}, none[16] = {0};
  gt[1 * 4 + 1] = 1, pred[1 * 4 + 2] = 1;
  const double unit[2] = {1, 1}, wide[2] = {1, 3};
  CLOSE(samx_nsd(gt, pred, 4, 4, unit, 0.0), 0.5, "nsd tol 0");
  CLOSE(samx_nsd(gt, pred, 4, 4, unit, 0.99), 0.5, "nsd tol 0.99");
  CLOSE(samx_nsd(gt, pred, 4, 4, unit, 1.0), 1.0, "nsd tol 1");
  CLOSE(samx_nsd(gt, pred, 4, 4, wide, 2.0), 0.5, "nsd spacing 1x3 tol 2");
  CLOSE(samx_nsd(gt, pred, 4, 4, wide, 3.0), 1.0, "nsd spacing 1x3 tol 3");
  CLOSE(samx_nsd(gt, gt, 4, 4, unit, 0.0), 1.0, "nsd identical");
  CLOSE(samx_nsd(gt, none, 4, 4, unit, 2.0), 0.0, "nsd one empty");
  CLOSE(samx_nsd(none, none, 4, 4, unit, 2.0), NAN, "nsd both empty");
}

// a = {(0,0), (0,1)}, b = {(2,0)} in 3x3 (borders: the pixels themselves). a -> b: 2, sqrt 5;
// b -> a: 2. ASSD = ((2 + sqrt 5)/2 + 2)/2. HD95 of [2, 2, sqrt 5]: rank 1.9, 2 + 0.9 (sqrt 5 - 2).
// Spacing (0.5, 1): a -> b: 1, sqrt 2; b -> a: 1.
static void test_assd_hd95(void) {
  uint8_t a[9] = {1, 1, 0, 0, 0, 0, 0, 0, 0}, b[9] = {0, 0, 0, 0, 0, 0, 1, 0, 0}, none[9] = {0};
  const double unit[2] = {1, 1}, sp[2] = {0.5, 1};
  double assd, hd95, s5 = sqrt(5.0);
  samx_assd_hd95(a, b, 3, 3, unit, &assd, &hd95);
  CLOSE(assd, ((2 + s5) / 2 + 2) / 2, "assd");
  CLOSE(hd95, 2 + 0.9 * (s5 - 2), "hd95");
  samx_assd_hd95(a, b, 3, 3, sp, &assd, &hd95);
  CLOSE(assd, ((1 + sqrt(2.0)) / 2 + 1) / 2, "assd with spacing");
  samx_assd_hd95(a, none, 3, 3, unit, &assd, &hd95);
  CHECK(isinf(assd) && isinf(hd95), "assd/hd95 one empty: inf");
  samx_assd_hd95(none, none, 3, 3, unit, &assd, &hd95);
  CHECK(isnan(assd) && isnan(hd95), "assd/hd95 both empty: NaN");
}

static void test_stats(void) {
  // d = x - y = 1, -2, 3, 4, 5: R+ = 13, R- = 2. Exact: P(R+ <= 2) = 3/32 ({}, {1}, {2}), two-sided
  // 6/32.
  double x[5] = {1, 0, 3, 4, 5}, y[5] = {0, 2, 0, 0, 0};
  SamxWilcoxon w = samx_wilcoxon(x, y, 5);
  CLOSE(w.statistic, 2.0, "wilcoxon statistic");
  CLOSE(w.pvalue, 6.0 / 32.0, "wilcoxon exact p");
  CHECK(w.exact, "wilcoxon n = 5 is exact");
  SamxWilcoxon z = samx_wilcoxon(x, x, 5);
  CHECK(isnan(z.pvalue), "wilcoxon with all differences zero");

  double a[3] = {1, 2, 3}, b[3] = {2, 4, 7};
  CLOSE(samx_pearson(a, b, 3), 15.0 / sqrt(228.0), "pearson");
  CLOSE(samx_spearman(a, b, 3), 1.0, "spearman of a monotone relation");
  double c[3] = {5, 5, 5};
  CHECK(isnan(samx_pearson(a, c, 3)), "pearson against a constant");

  // Poor by truth: samples 0 and 2; lowest scores: 1 and 0: one of two found.
  double truth[4] = {0.1, 0.9, 0.2, 0.8}, score[4] = {0.2, 0.1, 0.3, 0.9};
  CLOSE(samx_bottom_detection(score, truth, 4, 0.5), 0.5, "bottom 50%%");
  CLOSE(samx_bottom_detection(score, truth, 4, 0.25), 0.0, "bottom 25%%");
  CLOSE(samx_bottom_detection(truth, truth, 4, 0.25), 1.0, "bottom 25%% of a perfect score");

  double v[4] = {1, NAN, 3, INFINITY};
  SamxSummary s = samx_summarize(v, 4);
  CLOSE(s.mean, 2.0, "mean skips NaN and inf");
  CLOSE(s.std, 1.0, "population std");
  CHECK(s.n_valid == 2, "n_valid %lld", (long long)s.n_valid);
  double ranks[5], r_in[5] = {3, 1, 3, 2, 3};
  samx_rank_average(r_in, 5, ranks);
  CHECK(ranks[0] == 4 && ranks[1] == 1 && ranks[2] == 4 && ranks[3] == 2 && ranks[4] == 4, "average ranks");
}

// The driver: annotator 0 not read, so `dice` pairs the first hypothesis with annotator 1.
static void test_driver(void) {
  uint8_t enabled[SAMX_METRIC_COUNT];
  CHECK(samx_metric_list_parse("dice,ged", enabled) == 0 && enabled[SAMX_METRIC_DICE] && enabled[SAMX_METRIC_GED] &&
            !enabled[SAMX_METRIC_NSD],
        "metric list");
  CHECK(samx_metric_list_parse("dice,bogus", enabled) == -1 && strstr(samx_last_error(), "bogus"),
        "unknown metric named");
  CHECK(samx_metric_list_parse("all", enabled) == 0 && enabled[SAMX_METRIC_HD95], "all metrics");
  uint8_t hyp[2 * 4], ann[2 * 4], valid[2] = {0, 1};
  bits("1100", hyp), bits("1000", hyp + 4), bits("0011", ann), bits("1110", ann + 4);
  SamxEvalSample s = {hyp, 2, ann, valid, 2, 2, 2, {1, 1}};
  SamxEvalOptions o;
  samx_eval_options_default(&o);
  double out[SAMX_METRIC_COUNT];
  samx_eval_sample(&s, &o, enabled, out);
  CLOSE(out[SAMX_METRIC_DICE], 2.0 * 2 / 5, "driver dice against the first valid annotator");
  CLOSE(out[SAMX_METRIC_IOU], 2.0 / 3.0, "driver iou");
  // Only annotator 1 (1110): d(s,y) = 1/3, 2/3; d(s,s') = 2 (1/2) / 4; GED = 1 - 1/4 - 0.
  CLOSE(out[SAMX_METRIC_GED], 0.75, "driver ged skips the unread annotator");
  CLOSE(out[SAMX_METRIC_DMAX_PAIRS], 0.8, "driver dmax_pairs");
  CHECK(samx_eval_hm_replicate(&o) == 1, "HM-IoU replicates by default");
  o.policy = SAMX_EMPTY_P2SAM;
  CHECK(samx_eval_hm_replicate(&o) == 0, "P2SAM's HM-IoU does not replicate");
}

int main(void) {
  test_no_empty_annotator();
  test_hm_replication();
  test_empty_policies();
  test_nsd();
  test_assd_hd95();
  test_stats();
  test_driver();
  return samx_test_summary();
}
