// Per-sample evaluation: every metric of `samx eval` for one sample's hypotheses and annotators.
#ifndef SAMX_EVAL_EVALUATE_H
#define SAMX_EVAL_EVALUATE_H

#include <stdint.h>

#include "eval/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

// In the order `samx eval` prints them. Names as in docs/contracts.md §5.
typedef enum {
  SAMX_METRIC_DICE_AVG,
  SAMX_METRIC_GED,
  SAMX_METRIC_DIVERSITY,
  SAMX_METRIC_DMAX,
  SAMX_METRIC_DMAX_PAIRS,
  SAMX_METRIC_HM_IOU,
  SAMX_METRIC_DICE,
  SAMX_METRIC_IOU,
  SAMX_METRIC_NSD,
  SAMX_METRIC_ASSD,
  SAMX_METRIC_HD95,
  SAMX_METRIC_COUNT
} SamxMetric;

const char *samx_metric_name(int metric);
// Short description for --help.
const char *samx_metric_help(int metric);
// Index of a metric name, or -1.
int samx_metric_parse(const char *name);
// "all" or a comma-separated list of names into enabled[SAMX_METRIC_COUNT]. Returns 0, or -1 with
// samx_last_error naming the unknown metric.
int samx_metric_list_parse(const char *list, uint8_t *enabled);

typedef struct {
  SamxEmptyPolicy policy;
  int hm_replicate;      // 1: replicate the annotators to N (HPU-Net), 0: rectangular (P2SAM); -1: the policy's
  double nsd_tolerance;  // in pixels, or in mm when nsd_mm
  int nsd_mm;            // 0: NSD on the pixel grid (spacing 1, 1), as SimSAM; 1: with the sample's spacing
} SamxEvalOptions;

// MONAI policy, HM-IoU with replication (P2SAM policy: without), NSD at 2 pixels.
void samx_eval_options_default(SamxEvalOptions *o);
// The replication HM-IoU uses under these options.
int samx_eval_hm_replicate(const SamxEvalOptions *o);

typedef struct {
  const uint8_t *hyp;        // n_hyp x h x w
  int64_t n_hyp;
  const uint8_t *ann;        // n_ann x h x w
  const uint8_t *ann_valid;  // n_ann, 0 where the annotator did not read the sample; NULL: all valid
  int64_t n_ann, h, w;
  double spacing[2];  // mm per pixel (row, column); ASSD and HD95 are in mm
} SamxEvalSample;

// out[m] for every enabled metric (others untouched). Undefined values are NaN (see metrics.h for
// each convention); ASSD / HD95 against exactly one empty mask are +inf. `dice` and `iou` score the
// first hypothesis against the first valid annotator.
void samx_eval_sample(const SamxEvalSample *s, const SamxEvalOptions *o, const uint8_t *enabled, double *out);

#ifdef __cplusplus
}
#endif
#endif
