// samx eval: score a prediction file against its dataset (docs/contracts.md §5).
// samx compare: a table of several eval results with paired Wilcoxon tests against the first.
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "eval/evaluate.h"
#include "eval/stats.h"

// ---------------------------------------------------------------- samx eval

static void eval_usage(FILE *f) {
  fprintf(f,
          "usage: samx eval --data D.h5 --pred P.h5 [--metrics LIST] [--empty-policy P] [--nsd-tolerance T]\n"
          "                 [--nsd-units px|mm] [--hm-replicate yes|no] [--split train|val|test]\n"
          "                 [--subset N | A:B] [--json out.json] [--csv per_sample.csv] [-q|--quiet]\n"
          "                 [--allow-dataset-mismatch]\n\n"
          "Scores every prediction of P.h5 (M hypotheses per sample) against the valid annotators of its\n"
          "dataset row in D.h5, prints a table and optionally writes JSON / per-sample CSV.\n\n"
          "metrics (--metrics all, or a comma-separated list):\n");
  for (int m = 0; m < SAMX_METRIC_COUNT; m++) fprintf(f, "  %-10s %s\n", samx_metric_name(m), samx_metric_help(m));
  fprintf(f,
          "\n--empty-policy (how empty masks score; means skip NaN and n_valid counts what entered):\n"
          "  monai   (default) MONAI semantics: Dice / IoU against an empty reference are NaN (ignored):\n"
          "          dice_avg averages the non-empty annotators, dmax / dmax_pairs take the best non-empty one.\n"
          "  seqsam  SeqSAM's code: Dice of two empty masks 0 (its NaN -> 0), IoU of two empty masks 1;\n"
          "          its dmax has no guard, so a both-empty pair makes that sample's dmax NaN.\n"
          "  p2sam   P2SAM's code: Dice and IoU of two empty masks 1; hm_iou without annotator replication.\n"
          "  Under every policy: a non-empty mask against an empty one scores 0; ged, diversity and hm_iou\n"
          "  score two empty masks as IoU 1; nsd is NaN for two empty masks and 0 for one; assd / hd95 are\n"
          "  NaN for two empty masks and inf for one (inf is left out of the mean, null in JSON, inf in CSV).\n"
          "--hm-replicate yes|no  repeat the annotators to the number of hypotheses before matching\n"
          "                       (hierarchical prob. U-Net's HM-IoU; default yes, no under p2sam).\n"
          "--nsd-tolerance T      NSD tolerance (default 2) in pixels (--nsd-units px, default, as SimSAM)\n"
          "                       or mm with the dataset's spacing (--nsd-units mm). assd / hd95 are in mm.\n"
          "--split S              only predictions whose dataset row is in split S.\n"
          "--subset N | A:B       only the first N predictions (after --split), or those at positions [A, B).\n"
          "--labels all|ID,NAME,...  per-label IoU and ASSD in mm against /labels (samx eval --labels x --help)\n"
          "dice and iou pair the first hypothesis with the first valid annotator. When P.h5 has /quality,\n"
          "its Pearson / Spearman correlation with dice (SQA) and the bottom 25%% / 50%% detection accuracy\n"
          "are reported too.\n"
          "P.h5 needs schema, version, /index (any integer type) and /pred_masks (uint8 or bool, 0/1);\n"
          "its method, split, checkpoint and dataset attributes are read when present (contracts §4). When\n"
          "P.h5 records the sha256 of its dataset, D.h5 must have it (--allow-dataset-mismatch: warn only);\n"
          "when it records none, a warning says that this cannot be checked.\n");
}

typedef struct {
  const char *data, *pred, *metrics, *policy, *json, *csv, *split, *subset, *nsd_units, *hm_replicate;
  double nsd_tolerance;
  int quiet, allow_dataset_mismatch;
} EvalArgs;

static int parse_eval_args(int argc, char **argv, EvalArgs *a) {
  memset(a, 0, sizeof *a);
  a->metrics = "all", a->policy = "monai", a->nsd_units = "px", a->nsd_tolerance = 2.0;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (!strcmp(k, "--help") || !strcmp(k, "-h")) return 1;
    if (!strcmp(k, "--quiet") || !strcmp(k, "-q")) {
      a->quiet = 1;
      continue;
    }
    if (!strcmp(k, "--allow-dataset-mismatch")) {
      a->allow_dataset_mismatch = 1;
      continue;
    }
    if (i + 1 >= argc) return samx_fail("samx eval: %s needs a value", k);
    const char *v = argv[++i];
    if (!strcmp(k, "--data")) a->data = v;
    else if (!strcmp(k, "--pred")) a->pred = v;
    else if (!strcmp(k, "--metrics")) a->metrics = v;
    else if (!strcmp(k, "--empty-policy")) a->policy = v;
    else if (!strcmp(k, "--json")) a->json = v;
    else if (!strcmp(k, "--csv")) a->csv = v;
    else if (!strcmp(k, "--split")) a->split = v;
    else if (!strcmp(k, "--subset")) a->subset = v;
    else if (!strcmp(k, "--nsd-units")) a->nsd_units = v;
    else if (!strcmp(k, "--hm-replicate")) a->hm_replicate = v;
    else if (!strcmp(k, "--nsd-tolerance")) {
      char *end;
      errno = 0;
      a->nsd_tolerance = strtod(v, &end);
      if (errno || *end || !(a->nsd_tolerance >= 0)) return samx_fail("samx eval: --nsd-tolerance '%s' is not a number >= 0", v);
    } else {
      return samx_fail("samx eval: unknown option '%s' (see samx eval --help)", k);
    }
  }
  if (!a->data || !a->pred) return samx_fail("samx eval: --data and --pred are required (see samx eval --help)");
  const char *inputs[] = {a->data, a->pred};
  if (samx_check_output_not_input("samx eval: --json", a->json, inputs, 2) ||
      samx_check_output_not_input("samx eval: --csv", a->csv, inputs, 2))
    return -1;
  if (a->json && a->csv && !strcmp(a->json, a->csv)) return samx_fail("samx eval: --json and --csv name the same file");
  return 0;
}

// Positions [lo, hi) of the selected predictions from "--subset N" or "--subset A:B".
static int parse_subset(const char *s, int64_t n, int64_t *lo, int64_t *hi) {
  *lo = 0, *hi = n;
  if (!s) return 0;
  long long a, b;
  char tail;
  if (sscanf(s, "%lld:%lld%c", &a, &b, &tail) == 2 && a >= 0 && b >= a) *lo = a, *hi = b;
  else if (sscanf(s, "%lld%c", &a, &tail) == 1 && a >= 0) *hi = a;
  else return samx_fail("samx eval: --subset '%s' is not N or A:B", s);
  if (*lo > n) *lo = n;
  if (*hi > n) *hi = n;
  return 0;
}

static json_t *json_number_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

typedef struct {
  int64_t n;          // evaluated predictions
  int64_t *index;     // [n] dataset rows
  double *values;     // [n * SAMX_METRIC_COUNT]
  double *quality;    // [n] or NULL
  uint8_t enabled[SAMX_METRIC_COUNT];
} EvalResult;

static int write_csv(const char *path, const EvalResult *r, const SamxDataset *ds) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "w");
  if (!f) return samx_fail("%s: cannot write: %s", tmp, strerror(errno));
  fprintf(f, "index,case_id");
  for (int m = 0; m < SAMX_METRIC_COUNT; m++)
    if (r->enabled[m]) fprintf(f, ",%s", samx_metric_name(m));
  if (r->quality) fprintf(f, ",quality");
  fprintf(f, "\n");
  for (int64_t i = 0; i < r->n; i++) {
    const char *case_id = samx_dataset_case_id(ds, r->index[i]);
    fprintf(f, "%lld,\"%s\"", (long long)r->index[i], case_id ? case_id : "");
    for (int m = 0; m < SAMX_METRIC_COUNT; m++) {
      if (!r->enabled[m]) continue;
      double v = r->values[i * SAMX_METRIC_COUNT + m];
      if (isnan(v)) fprintf(f, ",");
      else if (isinf(v)) fprintf(f, ",%sinf", v < 0 ? "-" : "");
      else fprintf(f, ",%.17g", v);
    }
    if (r->quality) fprintf(f, ",%.9g", r->quality[i]);
    fprintf(f, "\n");
  }
  int failed = ferror(f);
  if (fclose(f) != 0 || failed) {
    int e = errno;
    unlink(tmp);  // a failed write leaves nothing behind
    return samx_fail("%s: write failed: %s", path, strerror(e));
  }
  return samx_commit_tmp(tmp, path);
}

// Correlation of the prediction file's quality score with the true Dice (SQA-SAM's evaluation).
static json_t *quality_report(const EvalResult *r, int print) {
  double *q = (double *)malloc((size_t)(r->n + 1) * sizeof(double)), *d = (double *)malloc((size_t)(r->n + 1) * sizeof(double));
  int64_t n = 0;
  for (int64_t i = 0; i < r->n; i++) {
    double dice = r->values[i * SAMX_METRIC_COUNT + SAMX_METRIC_DICE];
    if (isfinite(dice) && isfinite(r->quality[i])) q[n] = r->quality[i], d[n] = dice, n++;
  }
  double pearson = samx_pearson(q, d, n), spearman = samx_spearman(q, d, n);
  double b25 = samx_bottom_detection(q, d, n, 0.25), b50 = samx_bottom_detection(q, d, n, 0.5);
  if (print)
    printf("\nquality vs dice (n = %lld): pearson %.4f, spearman %.4f, bottom-25%% detection %.4f, bottom-50%% %.4f\n",
           (long long)n, pearson, spearman, b25, b50);
  json_t *o = json_object();
  json_object_set_new(o, "n", json_integer(n));
  json_object_set_new(o, "pearson", json_number_or_null(pearson));
  json_object_set_new(o, "spearman", json_number_or_null(spearman));
  json_object_set_new(o, "bottom25_detection", json_number_or_null(b25));
  json_object_set_new(o, "bottom50_detection", json_number_or_null(b50));
  free(q), free(d);
  return o;
}

static json_t *result_json(const EvalResult *r, const EvalArgs *a, const SamxPredictions *p, const SamxEvalOptions *o) {
  json_t *root = json_object(), *metrics = json_object(), *per = json_array();
  json_object_set_new(root, "n", json_integer(r->n));
  double *col = (double *)malloc((size_t)(r->n + 1) * sizeof(double));
  for (int m = 0; m < SAMX_METRIC_COUNT; m++) {
    if (!r->enabled[m]) continue;
    for (int64_t i = 0; i < r->n; i++) col[i] = r->values[i * SAMX_METRIC_COUNT + m];
    SamxSummary s = samx_summarize(col, r->n);
    json_t *e = json_object();
    json_object_set_new(e, "mean", json_number_or_null(s.mean));
    json_object_set_new(e, "std", json_number_or_null(s.std));
    json_object_set_new(e, "n_valid", json_integer(s.n_valid));
    json_object_set_new(metrics, samx_metric_name(m), e);
  }
  free(col);
  json_object_set_new(root, "metrics", metrics);
  for (int64_t i = 0; i < r->n; i++) {
    json_t *e = json_object();
    json_object_set_new(e, "index", json_integer(r->index[i]));
    for (int m = 0; m < SAMX_METRIC_COUNT; m++)
      if (r->enabled[m]) json_object_set_new(e, samx_metric_name(m), json_number_or_null(r->values[i * SAMX_METRIC_COUNT + m]));
    json_array_append_new(per, e);
  }
  json_object_set_new(root, "per_sample", per);
  // Provenance, so that a JSON file alone says what it scored and how.
  json_object_set_new(root, "method", json_string(samx_predictions_method(p) ? samx_predictions_method(p) : ""));
  json_object_set_new(root, "data", json_string(a->data));
  json_object_set_new(root, "pred", json_string(a->pred));
  json_object_set_new(root, "empty_policy", json_string(samx_empty_policy_name(o->policy)));
  json_object_set_new(root, "hm_replicate", json_boolean(samx_eval_hm_replicate(o)));
  json_object_set_new(root, "nsd_tolerance", json_real(o->nsd_tolerance));
  json_object_set_new(root, "nsd_units", json_string(o->nsd_mm ? "mm" : "px"));
  if (a->split) json_object_set_new(root, "split", json_string(a->split));
  if (r->quality && r->enabled[SAMX_METRIC_DICE]) json_object_set_new(root, "quality", quality_report(r, 0));
  return root;
}

static void print_table(const EvalResult *r) {
  double *col = (double *)malloc((size_t)(r->n + 1) * sizeof(double));
  printf("%-12s %10s %10s %8s\n", "metric", "mean", "std", "n_valid");
  for (int m = 0; m < SAMX_METRIC_COUNT; m++) {
    if (!r->enabled[m]) continue;
    for (int64_t i = 0; i < r->n; i++) col[i] = r->values[i * SAMX_METRIC_COUNT + m];
    SamxSummary s = samx_summarize(col, r->n);
    printf("%-12s %10.4f %10.4f %8lld\n", samx_metric_name(m), s.mean, s.std, (long long)s.n_valid);
  }
  free(col);
}

static int eval_options(const EvalArgs *a, SamxEvalOptions *o) {
  samx_eval_options_default(o);
  if (samx_empty_policy_parse(a->policy, &o->policy))
    return samx_fail("samx eval: --empty-policy '%s' (monai, seqsam or p2sam)", a->policy);
  if (!strcmp(a->nsd_units, "mm")) o->nsd_mm = 1;
  else if (strcmp(a->nsd_units, "px")) return samx_fail("samx eval: --nsd-units '%s' (px or mm)", a->nsd_units);
  o->nsd_tolerance = a->nsd_tolerance;
  if (a->hm_replicate) {
    if (!strcmp(a->hm_replicate, "yes")) o->hm_replicate = 1;
    else if (!strcmp(a->hm_replicate, "no")) o->hm_replicate = 0;
    else return samx_fail("samx eval: --hm-replicate '%s' (yes or no)", a->hm_replicate);
  }
  return 0;
}

// Scores the selected predictions into r. Returns 0 or -1.
static int run_eval(const EvalArgs *a, const SamxEvalOptions *o, SamxDataset *ds, SamxPredictions *p, EvalResult *r) {
  int64_t np = samx_predictions_n(p), m = samx_predictions_m(p), k = samx_dataset_k(ds);
  int64_t h = samx_dataset_h(ds), w = samx_dataset_w(ds);
  const int64_t *index = samx_predictions_index(p);
  int split = -1;
  if (a->split && (split = samx_split_parse(a->split)) < 0)
    return samx_fail("samx eval: --split '%s' (train, val or test)", a->split);
  const uint8_t *splits = samx_dataset_splits(ds);
  int64_t *chosen = (int64_t *)malloc((size_t)(np + 1) * sizeof(int64_t)), n_chosen = 0;
  for (int64_t i = 0; i < np; i++)
    if (split < 0 || splits[index[i]] == split) chosen[n_chosen++] = i;
  int64_t lo, hi;
  if (parse_subset(a->subset, n_chosen, &lo, &hi)) return free(chosen), -1;

  r->n = hi - lo;
  r->index = (int64_t *)malloc((size_t)(r->n + 1) * sizeof(int64_t));
  r->values = (double *)malloc((size_t)(r->n + 1) * SAMX_METRIC_COUNT * sizeof(double));
  const float *quality = samx_predictions_quality(p);
  r->quality = quality ? (double *)malloc((size_t)(r->n + 1) * sizeof(double)) : NULL;
  uint8_t *hyp = (uint8_t *)malloc((size_t)(m * h * w) + 1), *ann = (uint8_t *)malloc((size_t)(k * h * w) + 1);
  SAMX_ASSERT(chosen && r->index && r->values && hyp && ann, "samx eval: out of memory");
  const uint8_t *valid = samx_dataset_annotator_valid(ds);
  const float *spacing = samx_dataset_spacing(ds);
  int rc = 0;
  for (int64_t j = 0; j < r->n && rc == 0; j++) {
    int64_t i = chosen[lo + j], row = index[i];
    if (samx_predictions_read_masks(p, i, hyp) || samx_dataset_read_masks(ds, row, ann)) {
      rc = -1;
      break;
    }
    SamxEvalSample s = {hyp, m, ann, valid + row * k, k, h, w, {spacing[2 * row], spacing[2 * row + 1]}};
    for (int q = 0; q < SAMX_METRIC_COUNT; q++) r->values[j * SAMX_METRIC_COUNT + q] = NAN;
    samx_eval_sample(&s, o, r->enabled, r->values + j * SAMX_METRIC_COUNT);
    r->index[j] = row;
    if (quality) r->quality[j] = quality[i];
  }
  free(chosen), free(hyp), free(ann);
  return rc;
}

int samx_cmd_eval_labels(int argc, char **argv);  // tools/cmd_eval_labels.c

int samx_cmd_eval(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--labels")) return samx_cmd_eval_labels(argc, argv);
  EvalArgs a;
  int prc = parse_eval_args(argc, argv, &a);
  if (prc == 1) return eval_usage(stdout), 0;
  SamxEvalOptions o;
  EvalResult r = {0};
  if (prc || eval_options(&a, &o) || samx_metric_list_parse(a.metrics, r.enabled)) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
  }
  SamxDataset *ds = samx_dataset_open(a.data);
  SamxPredictions *p = ds ? samx_predictions_open(a.pred) : NULL;
  int rc = !ds || !p || samx_predictions_check_dataset(p, ds) ||
           samx_predictions_check_dataset_sha256(p, a.data, a.allow_dataset_mismatch, "samx eval") ||
           run_eval(&a, &o, ds, p, &r);
  if (!rc) {
    if (!a.quiet) {
      printf("%s: %lld predictions of %s (%lld hypotheses), policy %s\n", a.pred, (long long)r.n, a.data,
             (long long)samx_predictions_m(p), samx_empty_policy_name(o.policy));
      print_table(&r);
      if (r.quality && r.enabled[SAMX_METRIC_DICE]) json_decref(quality_report(&r, 1));
    }
    if (a.csv && write_csv(a.csv, &r, ds)) rc = 1;
    if (!rc && a.json) {
      json_t *root = result_json(&r, &a, p, &o);
      char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
      rc = !text || samx_write_file_atomic(a.json, text, strlen(text));
      free(text);
      json_decref(root);
    }
  }
  if (rc) fprintf(stderr, "samx eval: %s\n", samx_last_error());
  if (p) samx_predictions_close(p);
  if (ds) samx_dataset_close(ds);
  free(r.index), free(r.values), free(r.quality);
  return rc ? 1 : 0;
}

// ---------------------------------------------------------------- samx compare

typedef struct {
  const char *path;
  json_t *root;
  const char *label;
} EvalFile;

static int load_eval_json(const char *path, EvalFile *f) {
  json_error_t err;
  f->path = path;
  f->root = json_load_file(path, 0, &err);
  f->label = path;
  if (!f->root) return samx_fail("%s: not a samx eval JSON file: %s (line %d)", path, err.text, err.line);
  if (!json_is_object(json_object_get(f->root, "metrics")) || !json_is_array(json_object_get(f->root, "per_sample")))
    return samx_fail("%s: field 'metrics' or 'per_sample' missing (not written by samx eval --json?)", path);
  json_t *e;
  size_t i;
  json_array_foreach(json_object_get(f->root, "per_sample"), i, e) {
    if (!json_is_integer(json_object_get(e, "index")))
      return samx_fail("%s: per_sample[%zu] has no integer 'index' (not written by samx eval --json?)", path, i);
  }
  const char *method = json_string_value(json_object_get(f->root, "method"));
  f->label = method && *method ? method : path;
  return 0;
}

// Value of metric for dataset row `index` in f, NaN when absent or null.
static double sample_value(const EvalFile *f, json_int_t index, const char *metric) {
  json_t *per = json_object_get(f->root, "per_sample"), *e;
  size_t i;
  json_array_foreach(per, i, e) {
    if (json_integer_value(json_object_get(e, "index")) != index) continue;
    json_t *v = json_object_get(e, metric);
    return json_is_number(v) ? json_number_value(v) : NAN;
  }
  return NAN;
}

// Paired values of metric in a and b over the samples both scored with a finite value.
static SamxWilcoxon paired_test(const EvalFile *a, const EvalFile *b, const char *metric, int64_t *n_pairs) {
  json_t *per = json_object_get(a->root, "per_sample"), *e;
  size_t n = json_array_size(per), i;
  double *x = (double *)malloc((n + 1) * sizeof(double)), *y = (double *)malloc((n + 1) * sizeof(double));
  int64_t k = 0;
  json_array_foreach(per, i, e) {
    json_t *v = json_object_get(e, metric);
    if (!json_is_number(v)) continue;
    double xv = json_number_value(v), yv = sample_value(b, json_integer_value(json_object_get(e, "index")), metric);
    if (isfinite(xv) && isfinite(yv)) x[k] = xv, y[k] = yv, k++;
  }
  SamxWilcoxon w = samx_wilcoxon(x, y, k);
  free(x), free(y);
  *n_pairs = k;
  return w;
}

static void compare_usage(FILE *f) {
  fprintf(f,
          "usage: samx compare A.json B.json [C.json ...] [--metrics LIST] [--alpha P]\n\n"
          "Prints a markdown table of the methods (eval JSON files from samx eval --json) with mean +- std\n"
          "per metric and, for every method after the first, the two-sided paired Wilcoxon signed-rank\n"
          "p-value against the first on the samples both scored (scipy's defaults); p < alpha (default\n"
          "0.01) is marked with *.\n");
}

int samx_cmd_compare(int argc, char **argv) {
  const char *metrics = NULL;
  double alpha = 0.01;
  EvalFile *files = (EvalFile *)calloc((size_t)argc + 1, sizeof(EvalFile));
  int nf = 0, rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return compare_usage(stdout), free(files), 0;
    if (!strcmp(argv[i], "--metrics") && i + 1 < argc) metrics = argv[++i];
    else if (!strcmp(argv[i], "--alpha") && i + 1 < argc) {
      char *end;
      alpha = strtod(argv[++i], &end);
      if (*end || !(alpha > 0 && alpha < 1)) rc = samx_fail("samx compare: --alpha '%s' is not a number in (0, 1)", argv[i]);
    } else if (!strcmp(argv[i], "--metrics") || !strcmp(argv[i], "--alpha"))
      rc = samx_fail("samx compare: %s needs a value", argv[i]);
    else if (argv[i][0] == '-' && argv[i][1] == '-') rc = samx_fail("samx compare: unknown option '%s'", argv[i]);
    else if ((rc = load_eval_json(argv[i], &files[nf])) != 0) json_decref(files[nf].root);
    else nf++;
  }
  // Methods are named by their JSON's "method"; files of the same method are named by path.
  uint8_t *shared = (uint8_t *)calloc((size_t)nf + 1, 1);
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nf; j++) shared[i] |= i != j && !strcmp(files[i].label, files[j].label);
  for (int i = 0; i < nf; i++)
    if (shared[i]) files[i].label = files[i].path;
  free(shared);
  uint8_t enabled[SAMX_METRIC_COUNT];
  if (!rc && nf < 2) rc = samx_fail("samx compare: needs at least two eval JSON files (see samx compare --help)");
  if (!rc) rc = samx_metric_list_parse(metrics ? metrics : "all", enabled);
  if (rc) {
    fprintf(stderr, "%s\n", samx_last_error());
    for (int i = 0; i < nf; i++) json_decref(files[i].root);
    free(files);
    return 2;
  }
  // Columns: metrics every file has.
  int cols[SAMX_METRIC_COUNT], nc = 0;
  for (int m = 0; m < SAMX_METRIC_COUNT; m++) {
    int all = enabled[m];
    for (int i = 0; i < nf && all; i++) all = json_object_get(json_object_get(files[i].root, "metrics"), samx_metric_name(m)) != NULL;
    if (all) cols[nc++] = m;
  }
  printf("| method |");
  for (int c = 0; c < nc; c++) printf(" %s |", samx_metric_name(cols[c]));
  printf("\n|---|");
  for (int c = 0; c < nc; c++) printf("---|");
  printf("\n");
  for (int i = 0; i < nf; i++) {
    printf("| %s |", files[i].label);
    for (int c = 0; c < nc; c++) {
      const char *name = samx_metric_name(cols[c]);
      json_t *e = json_object_get(json_object_get(files[i].root, "metrics"), name);
      json_t *mean = json_object_get(e, "mean"), *std = json_object_get(e, "std");
      if (json_is_number(mean)) printf(" %.4f ± %.4f", json_number_value(mean), json_is_number(std) ? json_number_value(std) : NAN);
      else printf(" -");
      if (i > 0) {
        int64_t n_pairs;
        SamxWilcoxon w = paired_test(&files[0], &files[i], name, &n_pairs);
        if (isnan(w.pvalue)) printf(" (p -)");
        else printf(" (p %.2g%s)", w.pvalue, w.pvalue < alpha ? "*" : "");
      }
      printf(" |");
    }
    printf("\n");
  }
  printf("\np: two-sided paired Wilcoxon signed-rank test against %s; * p < %g\n", files[0].label, alpha);
  for (int i = 0; i < nf; i++) json_decref(files[i].root);
  free(files);
  return 0;
}
