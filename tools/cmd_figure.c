// samx figure: hypothesis grids, overlays, SQA scatter plots and training curves (figures/figures.h).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "eval/evaluate.h"
#include "figures/figures.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx figure grid    --data D.h5 [--pred P.h5]... [--indices LIST] [--cell PX] [--max-hyp N]\n"
          "                           [--no-variance] [--no-box] --out fig.png|fig.svg\n"
          "       samx figure overlay --data D.h5 --index I [--pred P.h5]... [--hyp J] [--cell PX] [--no-box]\n"
          "                           --out fig.png|fig.svg\n"
          "       samx figure scatter --data D.h5 --pred P.h5 [--metric NAME] [--empty-policy P] [--title T]\n"
          "                           --out fig.png|fig.svg\n"
          "       samx figure curves  RUN_DIR|LOG.jsonl [--out fig.png|fig.svg]\n"
          "       samx figure curves  RUN_DIR...\n\n"
          "grid     one row per sample (LIST: comma-separated rows and ranges A-B of D.h5; default: the\n"
          "         first 4 rows of the first prediction file, else of D.h5). Columns: the image with its\n"
          "         box prompt (tight box around the union of the annotators' masks), each annotator, the\n"
          "         annotators' disagreement map, then for each prediction file its hypotheses (at most\n"
          "         --max-hyp) and their uncertainty map. Maps are the per-pixel variance p(1-p) of the\n"
          "         binary masks (viridis, 0 to 0.25, colour bar below). --cell: cell size (default 160).\n"
          "overlay  one panel: the image, each annotator's contour in its own colour, and hypotheses of\n"
          "         each prediction file as dashed contours (--hyp J: only hypothesis J, 0-based).\n"
          "scatter  the prediction file's /quality (SQA score) against the true per-sample metric (default\n"
          "         dice: first hypothesis vs first valid annotator; any `samx eval` metric name), with\n"
          "         Pearson and Spearman correlation in the title.\n"
          "curves   the panels of nnU-Net's progress.png from RUN_DIR/log.jsonl against \"step\": training loss\n"
          "         with its moving average (and the validation loss), validation metrics, learning rate,\n"
          "         log10 gradient norm, seconds per step;\n"
          "         without --out writes RUN_DIR/curves.png and RUN_DIR/curves.svg, for each RUN_DIR given\n"
          "         (one process for many runs: the main job draws all of its runs at once).\n\n"
          "Output is SVG when the name ends in .svg, PNG otherwise. Colours: Okabe-Ito per annotator and\n"
          "method (colour-blind safe), viridis for maps.\n");
}

#define MAX_PRED 16
#define MAX_RUNS 256

typedef struct {
  const char *data, *out, *indices, *metric, *policy, *title, *run;
  const char *pred[MAX_PRED], *runs[MAX_RUNS];  // runs: the positional arguments (curves), run = runs[0]
  int n_pred, n_runs, cell, max_hyp, hyp, no_variance, no_box;
  int64_t index;
} FigArgs;

static int parse_int(const char *opt, const char *v, int64_t lo, int64_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo) return samx_fail("%s '%s' is not an integer >= %lld", opt, v, (long long)lo);
  *out = x;
  return 0;
}

static int is_value_option(const char *k) {
  static const char *with_value[] = {"--data", "--out", "--indices", "--metric", "--empty-policy", "--title",
                                     "--pred", "--index", "--cell", "--max-hyp", "--hyp"};
  for (size_t i = 0; i < sizeof with_value / sizeof *with_value; i++)
    if (!strcmp(k, with_value[i])) return 1;
  return 0;
}

static int parse_args(int argc, char **argv, FigArgs *a) {
  memset(a, 0, sizeof *a);
  a->index = -1, a->hyp = -1, a->metric = "dice", a->policy = "monai";
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i];
    int64_t x = 0;
    if (!strcmp(k, "--no-variance")) a->no_variance = 1;
    else if (!strcmp(k, "--no-box")) a->no_box = 1;
    else if (k[0] != '-') {
      if (a->n_runs == MAX_RUNS) return samx_fail("at most %d run directories", MAX_RUNS);
      if (!a->run) a->run = k;
      a->runs[a->n_runs++] = k;
    } else if (!is_value_option(k)) return samx_fail("unknown option %s (see samx figure --help)", k);
    else if (i + 1 >= argc) return samx_fail("%s needs a value", k);
    else {
      const char *v = argv[++i];
      if (!strcmp(k, "--data")) a->data = v;
      else if (!strcmp(k, "--out")) a->out = v;
      else if (!strcmp(k, "--indices")) a->indices = v;
      else if (!strcmp(k, "--metric")) a->metric = v;
      else if (!strcmp(k, "--empty-policy")) a->policy = v;
      else if (!strcmp(k, "--title")) a->title = v;
      else if (!strcmp(k, "--pred")) {
        if (a->n_pred == MAX_PRED) return samx_fail("at most %d --pred files", MAX_PRED);
        a->pred[a->n_pred++] = v;
      } else if (!strcmp(k, "--index")) {
        if (parse_int(k, v, 0, &a->index)) return -1;
      } else if (!strcmp(k, "--cell") || !strcmp(k, "--max-hyp") || !strcmp(k, "--hyp")) {
        if (parse_int(k, v, !strcmp(k, "--hyp") ? 0 : 1, &x)) return -1;
        if (x > 4096) return samx_fail("%s %s is too large", k, v);
        *(!strcmp(k, "--cell") ? &a->cell : !strcmp(k, "--max-hyp") ? &a->max_hyp : &a->hyp) = (int)x;
      } else return samx_fail("unknown option %s (see samx figure --help)", k);
    }
  }
  return 0;
}

// "3,5,10-12" into rows; returns the count or -1.
static int parse_indices(const char *s, int64_t **out) {
  int n = 0, cap = 16;
  int64_t *v = (int64_t *)malloc((size_t)cap * sizeof(int64_t));
  const char *p = s;
  while (*p) {
    char *end;
    long long a = strtoll(p, &end, 10), b = a;
    if (end == p || a < 0) goto bad;
    if (*end == '-') {
      p = end + 1;
      b = strtoll(p, &end, 10);
      if (end == p || b < a || b - a > 100000) goto bad;
    }
    for (long long x = a; x <= b; x++) {
      if (n == cap) v = (int64_t *)realloc(v, (size_t)(cap *= 2) * sizeof(int64_t));
      v[n++] = x;
    }
    if (*end == ',') end++;
    else if (*end) goto bad;
    p = end;
  }
  if (n == 0) goto bad;
  *out = v;
  return n;
bad:
  free(v);
  return samx_fail("--indices '%s' is not a list like 0,3,10-12", s);
}

// First rows of the first prediction file (or the dataset) when no --indices are given.
static int default_indices(const FigArgs *a, int64_t **out) {
  int64_t n = 0;
  const int64_t *idx = NULL;
  SamxPredictions *p = a->n_pred ? samx_predictions_open(a->pred[0]) : NULL;
  SamxDataset *ds = a->n_pred ? NULL : samx_dataset_open(a->data);
  if (!p && !ds) return -1;
  if (p) n = samx_predictions_n(p), idx = samx_predictions_index(p);
  else n = samx_dataset_n(ds);
  int k = n < 4 ? (int)n : 4;
  *out = (int64_t *)malloc(4 * sizeof(int64_t));
  for (int i = 0; i < k; i++) (*out)[i] = idx ? idx[i] : i;
  if (p) samx_predictions_close(p);
  if (ds) samx_dataset_close(ds);
  return k > 0 ? k : samx_fail("%s has no samples", a->n_pred ? a->pred[0] : a->data);
}

static int cmd_grid(const FigArgs *a) {
  if (!a->data || !a->out) return samx_fail("grid: --data and --out are required");
  int64_t *rows = NULL;
  int n = a->indices ? parse_indices(a->indices, &rows) : default_indices(a, &rows);
  if (n < 0) return -1;
  SamxGridSpec spec = {.data_path = a->data, .pred_paths = a->pred, .n_pred = a->n_pred, .indices = rows,
                       .n_indices = n, .cell = a->cell, .max_hyp = a->max_hyp, .variance = !a->no_variance,
                       .box = !a->no_box, .out_path = a->out};
  int rc = samx_figure_grid(&spec);
  free(rows);
  return rc;
}

static int cmd_overlay(const FigArgs *a) {
  if (!a->data || !a->out || a->index < 0) return samx_fail("overlay: --data, --index and --out are required");
  SamxOverlaySpec spec = {.data_path = a->data, .pred_paths = a->pred, .n_pred = a->n_pred, .index = a->index,
                          .hyp = a->hyp, .cell = a->cell, .box = !a->no_box, .out_path = a->out};
  return samx_figure_overlay(&spec);
}

// The true metric of every prediction of p against its dataset row, and the file's /quality.
static int scatter_values(SamxDataset *ds, SamxPredictions *p, int metric, const SamxEvalOptions *o, double *x,
                          double *y) {
  int64_t n = samx_predictions_n(p), m = samx_predictions_m(p), k = samx_dataset_k(ds);
  int64_t h = samx_dataset_h(ds), w = samx_dataset_w(ds);
  uint8_t *hyp = (uint8_t *)malloc((size_t)(m * h * w)), *ann = (uint8_t *)malloc((size_t)(k * h * w));
  uint8_t enabled[SAMX_METRIC_COUNT] = {0};
  enabled[metric] = 1;
  const float *q = samx_predictions_quality(p);
  int rc = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    int64_t row = samx_predictions_index(p)[i];
    if (samx_predictions_read_masks(p, i, hyp) || samx_dataset_read_masks(ds, row, ann)) {
      rc = -1;
      break;
    }
    const float *sp = samx_dataset_spacing(ds) + 2 * row;
    SamxEvalSample s = {hyp, m, ann, samx_dataset_annotator_valid(ds) + row * k, k, h, w, {sp[0], sp[1]}};
    double out[SAMX_METRIC_COUNT];
    samx_eval_sample(&s, o, enabled, out);
    x[i] = q[i], y[i] = out[metric];
  }
  free(hyp), free(ann);
  return rc;
}

static int cmd_scatter(const FigArgs *a) {
  if (!a->data || a->n_pred != 1 || !a->out)
    return samx_fail("scatter: --data, one --pred and --out are required");
  int metric = samx_metric_parse(a->metric);
  if (metric < 0) return samx_fail("scatter: unknown metric '%s' (see samx eval --help)", a->metric);
  SamxEvalOptions o;
  samx_eval_options_default(&o);
  if (samx_empty_policy_parse(a->policy, &o.policy))
    return samx_fail("scatter: --empty-policy '%s' is not monai, seqsam or p2sam", a->policy);
  SamxDataset *ds = samx_dataset_open(a->data);
  if (!ds) return -1;
  SamxPredictions *p = samx_predictions_open(a->pred[0]);
  int rc = p ? samx_predictions_check_dataset(p, ds) : -1;
  if (rc == 0 && !samx_predictions_quality(p))
    rc = samx_fail("%s: no /quality dataset (SQA scores) to plot", a->pred[0]);
  if (rc == 0) {
    int64_t n = samx_predictions_n(p);
    double *x = (double *)malloc((size_t)(n + 1) * sizeof(double)), *y = (double *)malloc((size_t)(n + 1) * sizeof(double));
    rc = scatter_values(ds, p, metric, &o, x, y);
    char title[160], ylabel[96];
    snprintf(title, sizeof title, "%s", a->title ? a->title : samx_predictions_method(p));
    snprintf(ylabel, sizeof ylabel, "true %s", a->metric);
    if (rc == 0) rc = samx_figure_scatter(x, y, n, title, "SQA score (/quality)", ylabel, 0, 0, a->out);
    free(x), free(y);
  }
  if (p) samx_predictions_close(p);
  samx_dataset_close(ds);
  return rc;
}

static int curves_one(const char *run, const char *out_path) {
  struct stat st;
  char log[PATH_MAX], out[PATH_MAX];
  int is_dir = stat(run, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(log, sizeof log, is_dir ? "%s/log.jsonl" : "%s", run);
  if (out_path) return samx_figure_curves(log, out_path);
  if (!is_dir) return samx_fail("curves: --out is required when giving a log file");
  const char *ext[2] = {"png", "svg"};
  for (int i = 0; i < 2; i++) {
    snprintf(out, sizeof out, "%s/curves.%s", run, ext[i]);
    if (samx_figure_curves(log, out)) return -1;
    printf("%s\n", out);
  }
  return 0;
}

static int cmd_curves(const FigArgs *a) {
  if (!a->n_runs) return samx_fail("curves: give a run directory or its log.jsonl");
  if (a->out && a->n_runs > 1) return samx_fail("curves: --out takes one run directory or log, %d given", a->n_runs);
  for (int i = 0; i < a->n_runs; i++)
    if (curves_one(a->runs[i], a->out)) return -1;
  return 0;
}

int samx_cmd_figure(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout), 0;
  FigArgs a;
  int rc = parse_args(argc, argv, &a);
  if (rc == 0 && strcmp(argv[1], "curves") && a.n_runs > 1) rc = samx_fail("unexpected argument '%s'", a.runs[1]);
  const char *inputs[MAX_PRED + 1] = {a.data};
  for (int i = 0; rc == 0 && i < a.n_pred; i++) inputs[i + 1] = a.pred[i];
  if (rc == 0) rc = samx_check_output_not_input("--out", a.out, inputs, a.n_pred + 1);
  if (rc) {  // a usage error
    fprintf(stderr, "samx figure: %s\n", samx_last_error());
    return 2;
  }
  if (rc == 0) {
    const char *what = argv[1];
    if (!strcmp(what, "grid")) rc = cmd_grid(&a);
    else if (!strcmp(what, "overlay")) rc = cmd_overlay(&a);
    else if (!strcmp(what, "scatter")) rc = cmd_scatter(&a);
    else if (!strcmp(what, "curves")) rc = cmd_curves(&a);
    else rc = samx_fail("unknown figure '%s' (grid, overlay, scatter, curves)", what);
  }
  if (rc) {
    fprintf(stderr, "samx figure: %s\n", samx_last_error());
    return 1;
  }
  if (a.out) printf("%s\n", a.out);
  return 0;
}
