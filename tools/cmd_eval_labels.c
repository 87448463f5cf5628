// samx eval --labels: IoU and ASSD (mm, with the dataset's spacing) per label, the few-shot paper's
// Table 2 metrics (contracts §7): hypothesis l of the prediction file against class l of --labels.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/labels.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "eval/metrics.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx eval --data D.h5 --pred P.h5 --labels all|ID,NAME,... [--split S] [--json out.json] [--quiet]\n\n"
          "Per label l (hypothesis l of P.h5 against class l of --labels in /labels; 'all': every class):\n"
          "  iou    over the rows whose ground truth holds the label (an empty prediction scores 0)\n"
          "  assd   average symmetric surface distance in mm with the row's spacing (medpy's borders), over\n"
          "         the same rows where the prediction is not empty (those are counted as 'missed')\n"
          "  fp     fraction of the rows without the label where the prediction is not empty\n"
          "mean and std over rows, like the paper's Table 2.\n");
}

typedef struct {
  double sum, sq;
  int64_t n;
} Acc;

static void add(Acc *a, double v) { a->sum += v, a->sq += v * v, a->n++; }
static double mean(const Acc *a) { return a->n ? a->sum / (double)a->n : NAN; }
static double sd(const Acc *a) {
  return a->n ? sqrt(fmax(0, a->sq / (double)a->n - mean(a) * mean(a))) : NAN;
}

static json_t *stat_json(const Acc *a) {
  return json_pack("{s:o, s:o, s:I}", "mean", a->n ? json_real(mean(a)) : json_null(), "std",
                   a->n ? json_real(sd(a)) : json_null(), "n", (json_int_t)a->n);
}

int samx_cmd_eval_labels(int argc, char **argv) {
  const char *data = NULL, *pred = NULL, *labels = NULL, *split = NULL, *json = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
      continue;
    }
    if (!v) return fprintf(stderr, "samx eval: %s needs a value\n", a), 2;
    i++;
    if (!strcmp(a, "--data")) data = v;
    else if (!strcmp(a, "--pred")) pred = v;
    else if (!strcmp(a, "--labels")) labels = v;
    else if (!strcmp(a, "--split")) split = v;
    else if (!strcmp(a, "--json")) json = v;
    else return fprintf(stderr, "samx eval: %s is not an option of the per-label mode (samx eval --labels --help)\n", a), 2;
  }
  if (!data || !pred) return fprintf(stderr, "samx eval: --data and --pred are required\n"), 2;
  SamxDataset *ds = samx_dataset_open(data);
  SamxPredictions *p = ds ? samx_predictions_open(pred) : NULL;
  int ids[SAMX_MAX_LABELS], L = 0, rc = !ds || !p || samx_predictions_check_dataset(p, ds);
  if (!rc) rc = samx_labels_parse(ds, labels, ids, &L);
  if (!rc && samx_predictions_m(p) != L)
    rc = samx_fail("%s: %lld hypotheses per row, but --labels names %d labels", pred, (long long)samx_predictions_m(p), L);
  int want_split = split ? samx_split_parse(split) : -1;
  if (!rc && split && want_split < 0) rc = samx_fail("--split '%s': train, val or test", split);
  Acc iou[SAMX_MAX_LABELS] = {{0}}, assd[SAMX_MAX_LABELS] = {{0}};
  int64_t missed[SAMX_MAX_LABELS] = {0}, fp[SAMX_MAX_LABELS] = {0}, absent[SAMX_MAX_LABELS] = {0}, rows = 0;
  int64_t h = ds ? samx_dataset_h(ds) : 0, w = ds ? samx_dataset_w(ds) : 0, hw = h * w;
  uint8_t *pm = (uint8_t *)malloc((size_t)(hw * (L + 1))), *gt = (uint8_t *)malloc((size_t)hw);
  for (int64_t i = 0; !rc && i < samx_predictions_n(p); i++) {
    int64_t row = samx_predictions_index(p)[i];
    if (want_split >= 0 && samx_dataset_splits(ds)[row] != want_split) continue;
    if ((rc = samx_predictions_read_masks(p, i, pm))) break;
    const float *s = samx_dataset_spacing(ds) + 2 * row;
    double spacing[2] = {s[0], s[1]};
    rows++;
    for (int l = 0; l < L && !rc; l++) {
      if ((rc = samx_labels_read_mask(ds, row, ids[l], gt))) break;
      const uint8_t *q = pm + l * hw;
      int64_t ng = samx_mask_count(gt, hw), np = samx_mask_count(q, hw);
      if (ng == 0) {
        absent[l]++, fp[l] += np > 0;
        continue;
      }
      add(&iou[l], (double)samx_mask_intersection(q, gt, hw) / (double)(ng + np - samx_mask_intersection(q, gt, hw)));
      if (np == 0) {
        missed[l]++;
        continue;
      }
      double d;
      samx_assd_hd95(q, gt, h, w, spacing, &d, NULL);
      add(&assd[l], d);
    }
  }
  if (!rc && !quiet) {
    printf("%s: %lld rows of %s\n| label | IoU %% | ASSD mm | rows | missed | fp rate |\n|---|---:|---:|---:|---:|---:|\n", pred,
           (long long)rows, data);
    for (int l = 0; l < L; l++)
      printf("| %s | %.1f ± %.1f | %.2f ± %.2f | %lld | %lld | %.3f |\n", samx_labels_name(ds, ids[l]), 100 * mean(&iou[l]),
             100 * sd(&iou[l]), mean(&assd[l]), sd(&assd[l]), (long long)iou[l].n, (long long)missed[l],
             absent[l] ? (double)fp[l] / (double)absent[l] : 0.0);
  }
  if (!rc && json) {
    json_t *root = json_pack("{s:s, s:s, s:I, s:[]}", "data", data, "pred", pred, "rows", (json_int_t)rows, "labels");
    for (int l = 0; l < L; l++)
      json_array_append_new(json_object_get(root, "labels"),
                            json_pack("{s:s, s:i, s:o, s:o, s:I, s:f}", "name", samx_labels_name(ds, ids[l]), "id", ids[l],
                                      "iou", stat_json(&iou[l]), "assd_mm", stat_json(&assd[l]), "missed",
                                      (json_int_t)missed[l], "fp_rate", absent[l] ? (double)fp[l] / (double)absent[l] : 0.0));
    char *text = json_dumps(root, JSON_INDENT(1));
    rc = samx_write_file_atomic(json, text, strlen(text));
    free(text);
    json_decref(root);
  }
  if (rc) fprintf(stderr, "samx eval: %s\n", samx_last_error());
  free(pm), free(gt);
  if (p) samx_predictions_close(p);
  if (ds) samx_dataset_close(ds);
  return rc ? 1 : 0;
}
