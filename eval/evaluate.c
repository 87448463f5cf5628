#include "eval/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

static const struct {
  const char *name, *help;
} metric_info[SAMX_METRIC_COUNT] = {
    {"dice_avg", "SeqSAM's D_avg: majority vote of the hypotheses, Dice against each annotator, mean"},
    {"ged", "generalised energy distance D^2 with d = 1 - IoU (i = j terms included, no square root)"},
    {"diversity", "sample diversity: mean 1 - IoU over all hypothesis pairs (i = j included)"},
    {"dmax", "SeqSAM's D_max: mean over hypotheses of the best Dice over annotators"},
    {"dmax_pairs", "P2SAM's D_max: best Dice over all (hypothesis, annotator) pairs"},
    {"hm_iou", "Hungarian-matched IoU of hypotheses and annotators (cost 1 - IoU)"},
    {"dice", "Dice of the first hypothesis against the first annotator"},
    {"iou", "IoU of the first hypothesis against the first annotator"},
    {"nsd", "normalised surface distance (DeepMind surface Dice) at --nsd-tolerance"},
    {"assd", "average symmetric surface distance in mm (medpy borders)"},
    {"hd95", "95th percentile Hausdorff distance in mm (medpy borders)"},
};

const char *samx_metric_name(int metric) {
  return metric >= 0 && metric < SAMX_METRIC_COUNT ? metric_info[metric].name : "?";
}

const char *samx_metric_help(int metric) {
  return metric >= 0 && metric < SAMX_METRIC_COUNT ? metric_info[metric].help : "";
}

int samx_metric_parse(const char *name) {
  for (int m = 0; m < SAMX_METRIC_COUNT; m++)
    if (!strcmp(name, metric_info[m].name)) return m;
  return -1;
}

int samx_metric_list_parse(const char *list, uint8_t *enabled) {
  int all = !strcmp(list, "all");
  for (int m = 0; m < SAMX_METRIC_COUNT; m++) enabled[m] = (uint8_t)all;
  if (all) return 0;
  const char *p = list;
  int any = 0;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char name[64];
    if (len == 0 || len >= sizeof name) return samx_fail("--metrics: bad list '%s'", list);
    memcpy(name, p, len);
    name[len] = 0;
    int m = samx_metric_parse(name);
    if (m < 0) return samx_fail("--metrics: unknown metric '%s' (see samx eval --help)", name);
    enabled[m] = 1;
    any = 1;
    p += len + (end ? 1 : 0);
  }
  if (!any) return samx_fail("--metrics: empty list");
  return 0;
}

void samx_eval_options_default(SamxEvalOptions *o) {
  o->policy = SAMX_EMPTY_MONAI;
  o->hm_replicate = -1;
  o->nsd_tolerance = 2.0;
  o->nsd_mm = 0;
}

int samx_eval_hm_replicate(const SamxEvalOptions *o) {
  if (o->hm_replicate >= 0) return o->hm_replicate;
  return o->policy != SAMX_EMPTY_P2SAM;
}

void samx_eval_sample(const SamxEvalSample *s, const SamxEvalOptions *o, const uint8_t *enabled, double *out) {
  int64_t npix = s->h * s->w;
  SAMX_ASSERT(s->n_hyp >= 0 && s->n_ann >= 0 && npix >= 0, "samx_eval_sample: bad sizes %lld hyp, %lld ann, %lldx%lld",
              (long long)s->n_hyp, (long long)s->n_ann, (long long)s->h, (long long)s->w);
  const uint8_t **hyp = (const uint8_t **)malloc((size_t)(s->n_hyp + 1) * sizeof(*hyp));
  const uint8_t **ann = (const uint8_t **)malloc((size_t)(s->n_ann + 1) * sizeof(*ann));
  uint8_t *vote = (uint8_t *)malloc((size_t)npix + 1);
  SAMX_ASSERT(hyp && ann && vote, "samx_eval_sample: out of memory");
  for (int64_t i = 0; i < s->n_hyp; i++) hyp[i] = s->hyp + i * npix;
  int64_t n_ann = 0;
  for (int64_t j = 0; j < s->n_ann; j++)
    if (!s->ann_valid || s->ann_valid[j]) ann[n_ann++] = s->ann + j * npix;
  int64_t n_hyp = s->n_hyp;
  int have_pair = n_hyp > 0 && n_ann > 0;
  const double unit[2] = {1.0, 1.0};

  for (int m = 0; m < SAMX_METRIC_COUNT; m++) {
    if (!enabled[m]) continue;
    double v = NAN;
    switch ((SamxMetric)m) {
      case SAMX_METRIC_DICE_AVG: v = samx_dice_avg(hyp, n_hyp, ann, n_ann, npix, o->policy, vote); break;
      case SAMX_METRIC_GED: v = samx_ged(hyp, n_hyp, ann, n_ann, npix); break;
      case SAMX_METRIC_DIVERSITY: v = samx_diversity(hyp, n_hyp, npix); break;
      case SAMX_METRIC_DMAX: v = samx_dmax(hyp, n_hyp, ann, n_ann, npix, o->policy); break;
      case SAMX_METRIC_DMAX_PAIRS: v = samx_dmax_pairs(hyp, n_hyp, ann, n_ann, npix, o->policy); break;
      case SAMX_METRIC_HM_IOU: v = samx_hm_iou(hyp, n_hyp, ann, n_ann, npix, samx_eval_hm_replicate(o)); break;
      case SAMX_METRIC_DICE:
        if (have_pair) v = samx_dice(hyp[0], ann[0], npix, o->policy);
        break;
      case SAMX_METRIC_IOU:
        if (have_pair) v = samx_iou(hyp[0], ann[0], npix, o->policy);
        break;
      case SAMX_METRIC_NSD:
        if (have_pair) v = samx_nsd(ann[0], hyp[0], s->h, s->w, o->nsd_mm ? s->spacing : unit, o->nsd_tolerance);
        break;
      case SAMX_METRIC_ASSD:  // hd95 comes from the same pass over the borders
        if (enabled[SAMX_METRIC_HD95]) out[SAMX_METRIC_HD95] = NAN;
        if (have_pair)
          samx_assd_hd95(hyp[0], ann[0], s->h, s->w, s->spacing, &v, enabled[SAMX_METRIC_HD95] ? &out[SAMX_METRIC_HD95] : NULL);
        break;
      case SAMX_METRIC_HD95:
        if (enabled[SAMX_METRIC_ASSD]) continue;  // done with assd
        if (have_pair) samx_assd_hd95(hyp[0], ann[0], s->h, s->w, s->spacing, NULL, &v);
        break;
      case SAMX_METRIC_COUNT: break;
    }
    out[m] = v;
  }
  free(hyp), free(ann), free(vote);
}
