// samx pack phiseg-h5: PHiSeg's data_lidc.hdf5 (groups train/val/test; images [N,128,128] float,
// labels [N,128,128,4] uint8 with annotators last, uids) into a samx dataset, keeping its split.
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/h5io.h"
#include "data/packers.h"
#include "engine/error.h"

static const char *const GROUPS[SAMX_SPLIT_COUNT] = {"train", "val", "test"};

typedef struct {
  hid_t images, labels, uids;
  int64_t n, h, w, k;
} PhisegGroup;

static void group_close(PhisegGroup *g) {
  if (g->images > 0) H5Dclose(g->images);
  if (g->labels > 0) H5Dclose(g->labels);
  if (g->uids > 0) H5Dclose(g->uids);
  g->images = g->labels = g->uids = H5I_INVALID_HID;
}

static int group_open(hid_t f, const char *path, const char *name, PhisegGroup *g) {
  char ds[64];
  int64_t d[4];
  int rank;
  SamxH5Kind kind;
  g->images = g->labels = g->uids = H5I_INVALID_HID;
  snprintf(ds, sizeof ds, "/%s/images", name);
  g->images = samx_h5_open_dataset(f, path, ds, 3, 3, d, &rank, &kind);
  if (g->images < 0) return -1;
  hid_t t = H5Dget_type(g->images);
  H5T_class_t c = H5Tget_class(t);
  H5Tclose(t);
  if (c != H5T_FLOAT && c != H5T_INTEGER) return samx_fail("%s: dataset %s is not numeric", path, ds);
  g->n = d[0], g->h = d[1], g->w = d[2];
  snprintf(ds, sizeof ds, "/%s/labels", name);
  g->labels = samx_h5_open_dataset(f, path, ds, 4, 4, d, &rank, &kind);
  if (g->labels < 0) return -1;
  t = H5Dget_type(g->labels);
  c = H5Tget_class(t);
  H5Tclose(t);
  if (c != H5T_INTEGER) return samx_fail("%s: dataset %s is not an integer label array", path, ds);
  if (d[0] != g->n || d[1] != g->h || d[2] != g->w)
    return samx_fail("%s: dataset %s has shape [%lld,%lld,%lld,%lld], expected [%lld,%lld,%lld,K] like its images",
                     path, ds, (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3], (long long)g->n,
                     (long long)g->h, (long long)g->w);
  g->k = d[3];
  snprintf(ds, sizeof ds, "/%s/uids", name);
  if (H5Lexists(f, ds, H5P_DEFAULT) > 0) {
    g->uids = samx_h5_open_dataset(f, path, ds, 1, 2, d, &rank, &kind);
    if (g->uids < 0) return -1;
    if (d[0] != g->n) return samx_fail("%s: dataset %s has %lld rows, its images %lld", path, ds, (long long)d[0], (long long)g->n);
  }
  return 0;
}

// Case ids: the LIDC patient ("LIDC-IDRI-0001") when the uid names one, else the uid itself, else
// group and row (rows then count as separate cases).
static void case_ids(const PhisegGroup *g, const char *path, const char *group, char **out) {
  if (g->uids > 0) {
    hid_t t = H5Dget_type(g->uids);
    int is_str = H5Tget_class(t) == H5T_STRING;
    H5Tclose(t);
    hid_t space = H5Dget_space(g->uids);
    int rank = H5Sget_simple_extent_ndims(space);
    H5Sclose(space);
    if (is_str && rank == 1 && samx_h5_read_strings(g->uids, path, "uids", g->n, out) == 0) {
      for (int64_t i = 0; i < g->n; i++) {
        char *p = strstr(out[i], "LIDC-IDRI-");
        if (p && strlen(p) >= 14) memmove(out[i], p, 14), out[i][14] = 0;
      }
      return;
    }
  }
  for (int64_t i = 0; i < g->n; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s-%06lld", group, (long long)i);
    out[i] = strdup(buf);
  }
}

// The display range: [0, 1] when the images lie there (PHiSeg normalises), else their min and max.
static int value_range(PhisegGroup *groups, int n_groups, const char *path, float r[2]) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int s = 0; s < n_groups; s++) {
    size_t hw = (size_t)(groups[s].h * groups[s].w);
    float *img = (float *)malloc(hw * sizeof(float));
    for (int64_t i = 0; i < groups[s].n; i++) {
      if (samx_h5_read_rows(groups[s].images, path, "images", H5T_NATIVE_FLOAT, i, 1, img) != 0) {
        free(img);
        return -1;
      }
      for (size_t j = 0; j < hw; j++) {
        if (!isfinite(img[j])) {
          static const char *group_names[3] = {"train", "val", "test"};
          float v = img[j];
          free(img);
          return samx_fail("%s: /%s/images sample %lld pixel (%lld, %lld) is %s", path, s < 3 ? group_names[s] : "?",
                           (long long)i, (long long)(j / (size_t)groups[s].w), (long long)(j % (size_t)groups[s].w),
                           isnan(v) ? "NaN" : "infinite");
        }
        lo = img[j] < lo ? img[j] : lo, hi = img[j] > hi ? img[j] : hi;
      }
    }
    free(img);
  }
  if (lo >= 0 && hi <= 1) lo = 0, hi = 1;
  if (!(hi > lo)) hi = lo + 1;
  r[0] = lo, r[1] = hi;
  return 0;
}

static int copy_group(PhisegGroup *g, int split, const char *path, SamxDatasetWriter *w) {
  size_t hw = (size_t)(g->h * g->w), k = (size_t)g->k;
  float *img = (float *)malloc(hw * sizeof(float));
  uint8_t *labels = (uint8_t *)malloc(hw * k), *masks = (uint8_t *)malloc(hw * k);
  char **ids = (char **)calloc((size_t)g->n + 1, sizeof(char *));
  case_ids(g, path, GROUPS[split], ids);
  int rc = 0;
  for (int64_t i = 0; i < g->n && rc == 0; i++) {
    rc = samx_h5_read_rows(g->images, path, "images", H5T_NATIVE_FLOAT, i, 1, img);
    if (rc == 0) rc = samx_h5_read_rows(g->labels, path, "labels", H5T_NATIVE_UINT8, i, 1, labels);
    if (rc != 0) break;
    // [H, W, K] -> [K, H, W]
    for (size_t a = 0; a < k; a++)
      for (size_t j = 0; j < hw; j++) masks[a * hw + j] = labels[j * k + a];
    SamxSample s = {.image = img, .masks = masks, .split = split, .case_id = ids[i], .spacing = {0, 0}};
    rc = samx_dataset_append(w, &s);
  }
  for (int64_t i = 0; i < g->n; i++) free(ids[i]);
  free(ids);
  free(img);
  free(labels);
  free(masks);
  return rc;
}

int samx_pack_phiseg(const char *in, const char *out) {
  hid_t f = samx_h5_open_read(in);
  if (f < 0) return -1;
  PhisegGroup g[SAMX_SPLIT_COUNT];
  int n_groups = 0, rc = 0;
  for (int s = 0; s < SAMX_SPLIT_COUNT && rc == 0; s++) {
    if (H5Lexists(f, GROUPS[s], H5P_DEFAULT) <= 0) {
      rc = samx_fail("%s: group /%s is missing (PHiSeg's data_lidc.hdf5 has train, val and test)", in, GROUPS[s]);
      break;
    }
    rc = group_open(f, in, GROUPS[s], &g[s]);
    n_groups = s + 1;
    if (rc == 0 && s > 0 && (g[s].h != g[0].h || g[s].w != g[0].w || g[s].k != g[0].k))
      rc = samx_fail("%s: group /%s has %lldx%lld images with %lld labels, /train %lldx%lld with %lld", in, GROUPS[s],
                     (long long)g[s].h, (long long)g[s].w, (long long)g[s].k, (long long)g[0].h, (long long)g[0].w,
                     (long long)g[0].k);
  }
  float range[2] = {0, 1};
  if (rc == 0) rc = value_range(g, n_groups, in, range);
  SamxDatasetWriter *w = NULL;
  if (rc == 0) {
    char source[4200];
    snprintf(source, sizeof source, "PHiSeg data_lidc.hdf5 (%s)", in);
    SamxDatasetSpec spec = {.h = g[0].h, .w = g[0].w, .k = g[0].k, .channels = 1, .dtype = SAMX_IMAGE_F32,
                            .source = source, .modality = "CT", .display_attr = "value_range",
                            .display_lo = range[0], .display_hi = range[1]};
    w = samx_dataset_create(out, &spec);
    rc = w ? samx_dataset_writer_attr_string(w, "split_method", "PHiSeg's official train/val/test groups") : -1;
  }
  for (int s = 0; s < n_groups && rc == 0; s++) rc = copy_group(&g[s], s, in, w);
  for (int s = 0; s < n_groups; s++) group_close(&g[s]);
  H5Fclose(f);
  if (rc != 0) {
    samx_dataset_abort(w);
    return -1;
  }
  return samx_dataset_finish(w);
}
