// samx infer --method sam --prompt point|box --per-component: the few-shot paper's SAM baselines
// (contracts §7; infer/components.h), one hypothesis per label; and samx infer --method atlas --shots
// rows.txt: the atlas baseline of the few-shot method's tests (each label's mask is where at least half
// of the shots' masks are, placed where they were), the same on every row.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/dataset.h"
#include "data/labels.h"
#include "data/predictions.h"
#include "engine/samx.h"
#include "infer/components.h"
#include "models/method.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx infer --method sam --prompt point|box --per-component --checkpoint W --data D.h5 --out P.h5\n"
          "                  [--labels all|ID,NAME,...] [--split test|val|train|all] [--limit N] [--device D] [--precision P]\n"
          "                  [--quiet]\n\n"
          "SAM prompted from the ground truth with one prompt per connected component (8-connected) of each\n"
          "label, the component masks united (the few-shot paper's Table 2 baselines):\n"
          "  --prompt point  the component's interior point at the maximum of its distance transform\n"
          "  --prompt box    the component's tight box\n"
          "Single-mask output. Hypothesis l of P.h5 is label l of --labels (default: every class of /labels,\n"
          "or /masks[:, 0] without one); a label absent from a slice gives an empty mask. Every row of the\n"
          "split is written. W: any SAM weights samx reads, or a samx train checkpoint's SAM part.\n\n"
          "usage: samx infer --method atlas --shots rows.txt --data D.h5 --out P.h5 [--labels ...] [--split S]\n"
          "The atlas of a few-shot run's shots (rows.txt in its run directory): label l is predicted where at\n"
          "least half of the shots have it, on every row (what a method that ignores the image gets).\n");
}

// The atlas [L, h, w] of the shots listed in path (one dataset row per line).
static int atlas_masks(SamxDataset *ds, const char *path, const int *ids, int L, uint8_t *pred) {
  FILE *f = fopen(path, "r");
  if (!f) return samx_fail("%s: cannot open the shots' rows", path);
  size_t hw = (size_t)(samx_dataset_h(ds) * samx_dataset_w(ds));
  int *count = (int *)calloc(hw * (size_t)L, sizeof(int)), n = 0, rc = 0;
  uint8_t *m = (uint8_t *)malloc(hw);
  long long row;
  while (rc == 0 && fscanf(f, "%lld", &row) == 1) {
    if (row < 0 || row >= samx_dataset_n(ds)) rc = samx_fail("%s: row %lld is not in %s", path, row, samx_dataset_path(ds));
    for (int l = 0; l < L && rc == 0; l++) {
      rc = samx_labels_read_mask(ds, row, ids[l], m);
      for (size_t j = 0; j < hw && rc == 0; j++) count[l * hw + j] += m[j];
    }
    n++;
  }
  fclose(f);
  if (rc == 0 && n == 0) rc = samx_fail("%s: no rows", path);
  for (size_t j = 0; j < hw * (size_t)L && rc == 0; j++) pred[j] = 2 * count[j] >= n;
  free(count), free(m);
  return rc;
}

int samx_cmd_infer_components(int argc, char **argv) {
  const char *ckpt = NULL, *data = NULL, *out = NULL, *split = "test", *prompt = NULL, *labels = NULL,
             *device = "auto", *shots = NULL, *precision = NULL;
  int atlas = 0;
  int64_t limit = -1;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
    if (!strcmp(a, "--per-component")) continue;
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
      continue;
    }
    if (!v) return fprintf(stderr, "samx infer: %s needs a value\n", a), 2;
    i++;
    if (!strcmp(a, "--method")) {
      atlas = !strcmp(v, "atlas");
      if (strcmp(v, "sam") && !atlas) return fprintf(stderr, "samx infer: --per-component is for --method sam\n"), 2;
    } else if (!strcmp(a, "--shots")) shots = v;
    else if (!strcmp(a, "--checkpoint")) ckpt = v;
    else if (!strcmp(a, "--data")) data = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--split")) split = v;
    else if (!strcmp(a, "--prompt")) prompt = v;
    else if (!strcmp(a, "--labels")) labels = v;
    else if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--precision")) precision = v;
    else if (!strcmp(a, "--limit")) limit = atoll(v);
    else return fprintf(stderr, "samx infer: unknown option %s with --per-component (see --per-component --help)\n", a), 2;
  }
  if (atlas && (!shots || !data || !out)) return fprintf(stderr, "samx infer: --method atlas needs --shots, --data and --out\n"), 2;
  if (!atlas && (!ckpt || !data || !out || !prompt || (strcmp(prompt, "point") && strcmp(prompt, "box"))))
    return fprintf(stderr, "samx infer: --per-component needs --checkpoint, --data, --out and --prompt point|box\n"), 2;
  if (atlas) ckpt = shots, prompt = "atlas";
  int kind = !strcmp(prompt, "box") ? SAMX_COMPONENT_BOX : SAMX_COMPONENT_POINT;
  SamxDevice dev;
  SamxDataset *ds = samx_dataset_open(data);
  int rc = ds ? 0 : -1, ids[SAMX_MAX_LABELS], L = 0;
  if (rc == 0) rc = samx_labels_parse(ds, labels ? labels : samx_dataset_has_labels(ds) ? "all" : "", ids, &L);
  if (rc == 0) rc = samx_device_parse(device, &dev);
  if (rc == 0) rc = samx_precision_setup(precision, dev);
  SamModel sam;
  int loaded = 0;
  if (rc == 0 && !atlas) rc = sam_method_load_base(&sam, ckpt, dev, 0), loaded = rc == 0;
  int64_t n = ds ? samx_dataset_n(ds) : 0, *rows = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n + 1)), nrows = 0;
  if (rc == 0 && !strcmp(split, "all")) {
    for (int64_t i = 0; i < n; i++) rows[nrows++] = i;
  } else if (rc == 0) {
    int s = samx_split_parse(split);
    if (s < 0) rc = samx_fail("--split '%s': train, val, test or all", split);
    else nrows = samx_dataset_split_rows(ds, s, rows, n);
  }
  if (limit >= 0 && limit < nrows) nrows = limit;
  SamxPredictionsWriter *w = NULL;
  char ck_sha[65] = "", d_sha[65] = "";
  if (rc == 0) rc = samx_sha256_file(ckpt, ck_sha) || samx_sha256_file(data, d_sha);
  if (rc == 0) {
    char method[32];
    snprintf(method, sizeof method, atlas ? "atlas" : "sam-%s-per-component", prompt);
    SamxPredictionsSpec spec = {.m = L, .h = samx_dataset_h(ds), .w = samx_dataset_w(ds), .method = method,
                                .checkpoint_path = ckpt, .checkpoint_sha256 = ck_sha, .dataset_path = data,
                                .dataset_sha256 = d_sha, .split = split};
    w = samx_predictions_create(out, &spec);
    rc = w ? 0 : -1;
  }
  int h = ds ? (int)samx_dataset_h(ds) : 0, wd = ds ? (int)samx_dataset_w(ds) : 0;
  size_t hw = (size_t)h * (size_t)wd;
  int ch = ds ? samx_dataset_channels(ds) : 1;
  uint8_t *img = (uint8_t *)malloc(hw * 3), *rgb = (uint8_t *)malloc(hw * 3);
  uint8_t *lab = (uint8_t *)malloc(hw * (size_t)(L + 1)), *pred = (uint8_t *)malloc(hw * (size_t)(L + 1));
  SamxCtx ctx;
  if (loaded) samx_ctx_init(&ctx, dev, (size_t)1 << 30, 1 << 16);
  if (rc == 0 && atlas) rc = atlas_masks(ds, shots, ids, L, pred);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int64_t r = 0; r < nrows && rc == 0; r++) {
    rc = samx_dataset_read_image_u8(ds, rows[r], img);
    for (size_t q = 0; q < hw && rc == 0; q++)
      for (int c = 0; c < 3; c++) rgb[3 * q + c] = ch == 3 ? img[3 * q + c] : img[q];
    for (int l = 0; l < L && rc == 0; l++) rc = samx_labels_read_mask(ds, rows[r], ids[l], lab + l * hw);
    if (rc) break;
    if (!atlas) {
      samx_ctx_reset(&ctx);
      samx_sam_components(&ctx, &sam, rgb, h, wd, lab, L, kind, pred);
    }
    rc = samx_predictions_append(w, rows[r], pred, NULL, NAN);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (rc == 0) rc = samx_predictions_finish(w), w = NULL;
  if (w) samx_predictions_abort(w);
  if (rc == 0 && !quiet)
    fprintf(stderr, "samx infer: %s%s, %lld rows x %d labels in %.1f s -> %s\n", atlas ? "" : "sam per component, ", prompt, (long long)nrows, L,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), out);
  if (rc) fprintf(stderr, "samx infer: %s\n", samx_last_error());
  if (loaded) samx_ctx_free(&ctx), sam_free(&sam);
  free(rows), free(img), free(rgb), free(lab), free(pred);
  if (ds) samx_dataset_close(ds);
  return rc ? 1 : 0;
}
