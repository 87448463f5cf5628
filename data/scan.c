// Whole-file checks and statistics of a dataset file: what `samx data info` and `validate` report.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

typedef struct {
  void (*fn)(const char *, void *);
  void *user;
  int64_t *count;
} Reporter;

static void report(Reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(Reporter *r, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  (*r->count)++;
  if (r->fn) r->fn(msg, r->user);
}

typedef struct {
  const char *id;
  uint8_t split;
} CaseSplit;

static int cmp_case_split(const void *a, const void *b) {
  const CaseSplit *x = (const CaseSplit *)a, *y = (const CaseSplit *)b;
  int c = strcmp(x->id, y->id);
  return c ? c : (int)x->split - (int)y->split;
}

// Counts distinct cases per split and reports every case found in more than one split.
static void scan_cases(const SamxDataset *ds, SamxDatasetStats *st, Reporter *r) {
  int64_t n = samx_dataset_n(ds);
  const uint8_t *split = samx_dataset_splits(ds);
  CaseSplit *cs = (CaseSplit *)malloc((size_t)n * sizeof *cs + 1);
  for (int64_t i = 0; i < n; i++) {
    cs[i] = (CaseSplit){samx_dataset_case_id(ds, i), split[i]};
    st->split_rows[split[i]]++;
  }
  qsort(cs, (size_t)n, sizeof *cs, cmp_case_split);
  for (int64_t i = 0; i < n;) {
    int64_t j = i, splits_of_case = 0;
    while (j < n && !strcmp(cs[j].id, cs[i].id)) {
      if (j == i || cs[j].split != cs[j - 1].split) st->split_cases[cs[j].split]++, splits_of_case++;
      j++;
    }
    if (splits_of_case > 1)
      report(r, "%s: case '%s' is in %lld splits (a case must stay in one)", samx_dataset_path(ds), cs[i].id,
             (long long)splits_of_case);
    i = j;
  }
  free(cs);
}

typedef struct {
  uint64_t hash;
  int64_t row;
} ImageHash;

// FNV-1a over the image's bytes: equal images hash equal, and 64 bits make a chance collision
// among a dataset's images negligible.
static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static int cmp_image_hash(const void *a, const void *b) {
  const ImageHash *x = (const ImageHash *)a, *y = (const ImageHash *)b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  return (x->row > y->row) - (x->row < y->row);
}

// The same image under two case ids: a duplicated file (a symlink, a copy) that leaks between
// splits or counts twice. Constant images (blank slices) are left out: those repeat legitimately.
static void scan_duplicates(const SamxDataset *ds, ImageHash *h, int64_t n, Reporter *r) {
  qsort(h, (size_t)n, sizeof *h, cmp_image_hash);
  const uint8_t *split = samx_dataset_splits(ds);
  int64_t reported = 0;
  for (int64_t i = 0; i < n; i++) {
    if (h[i].row < 0) continue;  // constant
    for (int64_t j = i + 1; j < n && h[j].hash == h[i].hash; j++) {
      const char *a = samx_dataset_case_id(ds, h[i].row), *b = samx_dataset_case_id(ds, h[j].row);
      if (h[j].row < 0 || !strcmp(a, b)) continue;
      if (reported++ < 10)
        report(r, "%s: rows %lld and %lld hold identical images under cases '%s' (%s) and '%s' (%s)%s",
               samx_dataset_path(ds), (long long)h[i].row, (long long)h[j].row, a, samx_split_name(split[h[i].row]), b,
               samx_split_name(split[h[j].row]),
               split[h[i].row] != split[h[j].row] ? ": the same image in two splits" : "");
      else
        (*r->count)++;
      break;
    }
  }
}

static void scan_spacing(const SamxDataset *ds, Reporter *r) {
  const float *sp = samx_dataset_spacing(ds);
  for (int64_t i = 0; i < 2 * samx_dataset_n(ds); i++)
    if (!(isfinite(sp[i]) && sp[i] > 0)) {
      report(r, "%s: /spacing[%lld] = %g is not a positive pixel size", samx_dataset_path(ds), (long long)(i / 2),
             sp[i]);
      return;
    }
}

int samx_dataset_scan(SamxDataset *ds, SamxDatasetStats *st, void (*problem)(const char *msg, void *user),
                      void *user) {
  SamxDatasetInfo in = samx_dataset_info(ds);
  memset(st, 0, sizeof *st);
  st->valid_count = (int64_t *)calloc((size_t)in.k, sizeof(int64_t));
  st->empty_count = (int64_t *)calloc((size_t)in.k, sizeof(int64_t));
  st->fg_fraction = (double *)calloc((size_t)in.k, sizeof(double));
  Reporter r = {problem, user, &st->problems};
  const char *path = samx_dataset_path(ds);
  scan_cases(ds, st, &r);
  scan_spacing(ds, &r);
  size_t hw = (size_t)(in.h * in.w), n_img = hw * (size_t)in.channels;
  uint8_t *masks = (uint8_t *)malloc(hw * (size_t)in.k);
  float *image = (float *)malloc(n_img * sizeof(float));
  const uint8_t *valid = samx_dataset_annotator_valid(ds);
  int64_t bad_values = 0, bad_pixels = 0, marked_invalid = 0;
  ImageHash *hashes = (ImageHash *)malloc((size_t)in.n * sizeof *hashes + 1);
  int rc = 0;
  for (int64_t i = 0; i < in.n && rc == 0; i++) {
    rc = samx_dataset_read_masks(ds, i, masks);
    if (rc == 0) rc = samx_dataset_read_image_f32(ds, i, image);
    if (rc != 0) break;
    int constant = 1;
    for (size_t j = 1; j < n_img && constant; j++) constant = image[j] == image[0];
    hashes[i] = (ImageHash){hash_bytes(image, n_img * sizeof(float)), constant ? -1 : i};
    for (size_t j = 0; j < n_img && in.dtype == SAMX_IMAGE_F32; j++)
      if (!isfinite(image[j]) && bad_pixels++ == 0)
        report(&r, "%s: /images[%lld] holds NaN or Inf", path, (long long)i);
    for (int64_t k = 0; k < in.k; k++) {
      const uint8_t *m = masks + (size_t)k * hw;
      int64_t fg = 0;
      for (size_t j = 0; j < hw; j++) {
        fg += m[j] != 0;
        if (m[j] > 1 && bad_values++ == 0)
          report(&r, "%s: /masks[%lld, %lld] holds value %d (masks are 0/1)", path, (long long)i, (long long)k, m[j]);
      }
      if (!valid[i * in.k + k]) {
        if (fg && marked_invalid++ == 0)
          report(&r, "%s: /masks[%lld, %lld] is not empty but /annotator_valid says annotator %lld did not read it",
                 path, (long long)i, (long long)k, (long long)k);
        continue;
      }
      st->valid_count[k]++;
      if (fg == 0)
        st->empty_count[k]++;
      else
        st->fg_fraction[k] += (double)fg / (double)hw;
    }
  }
  if (rc == 0) scan_duplicates(ds, hashes, in.n, &r);
  free(hashes);
  for (int64_t k = 0; k < in.k; k++) {
    int64_t nonempty = st->valid_count[k] - st->empty_count[k];
    st->fg_fraction[k] = nonempty > 0 ? st->fg_fraction[k] / (double)nonempty : 0;
  }
  free(masks);
  free(image);
  return rc;
}

void samx_dataset_stats_free(SamxDatasetStats *st) {
  free(st->valid_count);
  free(st->empty_count);
  free(st->fg_fraction);
  memset(st, 0, sizeof *st);
}
