// `samx bench metrics`: evaluation throughput in samples/s on the CPU: GED and HM-IoU with 16
// hypotheses x 4 annotators at 128x128, NSD at 256x256, and every `samx eval` metric together, from
// which the time to score a 1,500-sample LIDC test split follows.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "data/synthetic.h"
#include "eval/evaluate.h"
#include "eval/metrics.h"

static const char *USAGE =
    "usage: samx bench metrics [-r REPS] [-o md|json] [--quick]\n"
    "\n"
    "Times the evaluation metrics (eval/metrics.h) on synthetic multi-annotator masks and prints samples/s\n"
    "(median of REPS after one warm-up). Hypotheses are synthetic annotator styles, so the sets are as\n"
    "varied as real ones. Metrics run on the CPU, one thread, whatever --device says.\n"
    "  --quick    fewer samples per repetition (used by the tests)\n";

enum { N_HYP = 16, N_ANN = 4 };

typedef enum { CASE_GED, CASE_HM_IOU, CASE_NSD, CASE_EVAL_ALL } CaseKind;

typedef struct {
  int64_t samples, size, n_masks;
  uint8_t *masks;  // samples x n_masks x size x size: hypotheses first, then annotators
} MaskSet;

static void make_masks(MaskSet *s, int64_t samples, int64_t size, int64_t n_masks) {
  SamxSyntheticParams p = samx_synthetic_defaults();
  p.n = samples, p.size = size, p.k = n_masks, p.seed = 7;
  s->samples = samples, s->size = size, s->n_masks = n_masks;
  s->masks = (uint8_t *)malloc((size_t)(samples * n_masks * size * size));
  uint8_t *image = (uint8_t *)malloc((size_t)(size * size));
  for (int64_t i = 0; i < samples; i++) samx_synthetic_sample(&p, i, image, s->masks + i * n_masks * size * size);
  free(image);
}

// Runs the case once over every sample; the sum keeps the compiler from dropping the work.
static double run_case(CaseKind kind, const MaskSet *s) {
  int64_t npix = s->size * s->size;
  double sum = 0, spacing[2] = {1, 1};
  SamxEvalOptions o;
  samx_eval_options_default(&o);
  uint8_t all[SAMX_METRIC_COUNT];
  memset(all, 1, sizeof all);
  for (int64_t i = 0; i < s->samples; i++) {
    const uint8_t *base = s->masks + i * s->n_masks * npix;
    const uint8_t *hyp[N_HYP], *ann[N_ANN];
    for (int m = 0; m < N_HYP && m < s->n_masks; m++) hyp[m] = base + m * npix;
    for (int a = 0; a < N_ANN && N_HYP + a < s->n_masks; a++) ann[a] = base + (N_HYP + a) * npix;
    if (kind == CASE_GED) sum += samx_ged(hyp, N_HYP, ann, N_ANN, npix);
    if (kind == CASE_HM_IOU) sum += samx_hm_iou(hyp, N_HYP, ann, N_ANN, npix, 1);
    if (kind == CASE_NSD) sum += samx_nsd(base, base + npix, s->size, s->size, spacing, 2.0);
    if (kind == CASE_EVAL_ALL) {
      SamxEvalSample es = {base, N_HYP, base + N_HYP * npix, NULL, N_ANN, s->size, s->size, {1, 1}};
      double out[SAMX_METRIC_COUNT];
      samx_eval_sample(&es, &o, all, out);
      sum += out[SAMX_METRIC_GED];
    }
  }
  return sum;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void time_case(CaseKind kind, const MaskSet *s, int reps, BenchRow *row) {
  volatile double sink = run_case(kind, s);  // warm-up
  double *ms = (double *)malloc((size_t)reps * sizeof(double));
  for (int r = 0; r < reps; r++) {
    double t0 = bench_now_ms();
    sink += run_case(kind, s);
    ms[r] = bench_now_ms() - t0;
  }
  (void)sink;
  qsort(ms, (size_t)reps, sizeof(double), cmp_double);
  row->ms = ms[reps / 2];
  row->items = (double)s->samples;
  snprintf(row->unit, sizeof row->unit, "sample");
  row->bytes = (double)(s->samples * s->n_masks * s->size * s->size);  // every mask read once
  row->torch_ms = -1;
  free(ms);
}

int samx_bench_metrics(int argc, char **argv) {
  BenchOpts o;
  if (bench_parse_opts(argc, argv, &o, USAGE) < 0) return 2;
  o.device = samx_cpu();
  o.compare_torch = 0;
  int64_t samples = o.quick ? 4 : 64;
  MaskSet set128, set256;
  make_masks(&set128, samples, 128, N_HYP + N_ANN);
  make_masks(&set256, samples, 256, 2);
  struct {
    const char *name, *shape;
    CaseKind kind;
    const MaskSet *set;
  } cases[] = {
      {"ged", "16 hyp x 4 ann, 128x128", CASE_GED, &set128},
      {"hm_iou (replicated)", "16 hyp x 4 ann, 128x128", CASE_HM_IOU, &set128},
      {"nsd (tau 2 px)", "1 vs 1, 256x256", CASE_NSD, &set256},
      {"samx eval, all metrics", "16 hyp x 4 ann, 128x128", CASE_EVAL_ALL, &set128},
  };
  int n = (int)(sizeof cases / sizeof *cases);
  BenchRow rows[4];
  memset(rows, 0, sizeof rows);
  for (int i = 0; i < n; i++) {
    snprintf(rows[i].name, sizeof rows[i].name, "%s", cases[i].name);
    snprintf(rows[i].shape, sizeof rows[i].shape, "%s", cases[i].shape);
    time_case(cases[i].kind, cases[i].set, o.reps, &rows[i]);
  }
  HwLimits hw;
  bench_limits(o.device, o.precision, &hw);
  bench_print("metrics", &o, &hw, rows, n);
  if (!o.json) {
    const BenchRow *all = &rows[n - 1];
    printf("a 1,500-sample test split (16 hypotheses x 4 annotators, 128x128, all metrics): %.1f s on one thread\n",
           1500.0 * all->ms * 1e-3 / all->items);
  }
  free(set128.masks), free(set256.masks);
  return 0;
}
