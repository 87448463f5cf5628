// samx pack lidc-pickle: the data_lidc.pickle of the probabilistic U-Net ports, a pickled dict
//   {key: {"image": [H,W] float32 in [0,1], "masks": [K arrays [H,W]], "series_uid": str}, ...}
// read with the restricted unpickler (no Python). Everything is validated before the output file is
// created; cases are series uids.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/packers.h"
#include "engine/error.h"
#include "engine/pickle.h"

typedef struct {
  const char *key, *uid;
  const PkValue *image;
  const PkValue *masks[64];
} Record;

typedef struct {
  const char *path;
  Record *rec;
  int64_t n, h, w, k;
  float lo, hi;  // image value range
} Parsed;

// A 2-D numeric array of h x w (h, w < 0: take its shape).
static int check_array(const Parsed *p, const char *key, const char *what, const PkValue *a, int64_t h, int64_t w) {
  if (!a || a->type != PK_NDARRAY)
    return samx_fail("%s: record '%s': %s is %s, expected a numpy array", p->path, key, what, a ? "not an array" : "missing");
  if (a->ndim != 2) return samx_fail("%s: record '%s': %s is %d-D, expected a 2-D array", p->path, key, what, a->ndim);
  if (h >= 0 && (a->shape[0] != h || a->shape[1] != w))
    return samx_fail("%s: record '%s': %s has shape [%lld, %lld], expected [%lld, %lld] like the first record", p->path,
                     key, what, (long long)a->shape[0], (long long)a->shape[1], (long long)h, (long long)w);
  return 0;
}

static int check_image(Parsed *p, const Record *r) {
  const PkValue *a = r->image;
  for (int64_t i = 0; i < p->h * p->w; i++) {
    double v = samx_pickle_array_get(a, i);
    if (!isfinite(v))
      return samx_fail("%s: record '%s': image holds %s at row %lld, column %lld", p->path, r->key, isnan(v) ? "NaN" : "Inf",
                       (long long)(i / p->w), (long long)(i % p->w));
    p->lo = v < p->lo ? (float)v : p->lo, p->hi = v > p->hi ? (float)v : p->hi;
  }
  return 0;
}

static int parse_record(Parsed *p, const char *key, const PkValue *v, const SamxMedicalOptions *o, Record *r) {
  r->key = key;
  if (!v || v->type != PK_DICT) return samx_fail("%s: record '%s' is not a dict", p->path, key);
  r->image = samx_pickle_get(v, "image");
  if (check_array(p, key, "image", r->image, p->h, p->w) != 0) return -1;
  if (p->h < 0) p->h = r->image->shape[0], p->w = r->image->shape[1];
  if (check_image(p, r) != 0) return -1;
  const PkValue *uid = samx_pickle_get(v, "series_uid");
  if (!uid || (uid->type != PK_STR && uid->type != PK_BYTES) || uid->len == 0)
    return samx_fail("%s: record '%s': series_uid is missing or not a string", p->path, key);
  r->uid = uid->s;
  const PkValue *m = samx_pickle_get(v, "masks");
  if (!m || (m->type != PK_LIST && m->type != PK_TUPLE) || m->n == 0 || m->n > 64)
    return samx_fail("%s: record '%s': masks is not a list of 1 to 64 arrays", p->path, key);
  if (p->k < 0) p->k = m->n;
  if (m->n != p->k)
    return samx_fail("%s: record '%s' has %d masks, the first record %lld (all records need the same K)", p->path, key,
                     m->n, (long long)p->k);
  size_t hw = (size_t)(p->h * p->w), bad;
  float *vals = (float *)malloc(hw * sizeof(float));
  uint8_t *bin = (uint8_t *)malloc(hw);
  int rc = 0;
  for (int k = 0; k < m->n && rc == 0; k++) {
    char what[32];
    snprintf(what, sizeof what, "masks[%d]", k);
    r->masks[k] = m->items[k];
    rc = check_array(p, key, what, r->masks[k], p->h, p->w);
    for (size_t i = 0; i < hw && rc == 0; i++) vals[i] = (float)samx_pickle_array_get(r->masks[k], (int64_t)i);
    if (rc == 0 && samx_mask_from_values(vals, hw, o->binarize, bin, &bad) != 0)
      rc = samx_fail("%s: record '%s': %s holds %g at row %zu, column %zu; masks must be 0/1 (--binarize thresholds at 0.5)",
                     p->path, key, what, vals[bad], bad / (size_t)p->w, bad % (size_t)p->w);
  }
  free(vals);
  free(bin);
  return rc;
}

static int parse_all(Parsed *p, const PkValue *root, const SamxMedicalOptions *o) {
  if (!root || root->type != PK_DICT || root->n == 0)
    return samx_fail("%s: expected a non-empty dict of records (key -> {image, masks, series_uid})", p->path);
  p->n = root->n / 2, p->h = p->w = p->k = -1;
  p->lo = INFINITY, p->hi = -INFINITY;
  p->rec = (Record *)calloc((size_t)p->n, sizeof(Record));
  for (int64_t i = 0; i < p->n; i++) {
    const PkValue *key = root->items[2 * i];
    char fallback[32];
    snprintf(fallback, sizeof fallback, "#%lld", (long long)i);
    const char *name = key->type == PK_STR ? key->s : fallback;
    if (parse_record(p, name, root->items[2 * i + 1], o, &p->rec[i]) != 0) return -1;
  }
  return 0;
}

static int write_all(const Parsed *p, const char *out, const SamxMedicalOptions *o) {
  char source[4200];
  snprintf(source, sizeof source, "LIDC data_lidc.pickle (%s)", p->path);
  // PHiSeg-style images lie in [0, 1]; anything else keeps its own range for display.
  float lo = p->lo >= 0 && p->hi <= 1 ? 0 : p->lo, hi = p->lo >= 0 && p->hi <= 1 ? 1 : p->hi;
  if (!(hi > lo)) hi = lo + 1;
  SamxDatasetSpec spec = {.h = p->h, .w = p->w, .k = p->k, .channels = 1, .dtype = SAMX_IMAGE_F32, .source = source,
                          .modality = o->modality ? o->modality : "CT", .display_attr = "value_range",
                          .display_lo = lo, .display_hi = hi};
  SamxDatasetWriter *w = samx_dataset_create(out, &spec);
  if (!w) return -1;
  size_t hw = (size_t)(p->h * p->w), bad;
  float *img = (float *)malloc(hw * sizeof(float)), *vals = (float *)malloc(hw * sizeof(float));
  uint8_t *masks = (uint8_t *)malloc(hw * (size_t)p->k);
  int rc = samx_dataset_writer_attr_string(w, "case_id_is", "series_uid");
  if (rc == 0 && o->binarize) rc = samx_dataset_writer_attr_string(w, "masks_binarized", "value >= 0.5");
  for (int64_t i = 0; i < p->n && rc == 0; i++) {
    const Record *r = &p->rec[i];
    for (size_t j = 0; j < hw; j++) img[j] = (float)samx_pickle_array_get(r->image, (int64_t)j);
    for (int64_t k = 0; k < p->k; k++) {
      for (size_t j = 0; j < hw; j++) vals[j] = (float)samx_pickle_array_get(r->masks[k], (int64_t)j);
      samx_mask_from_values(vals, hw, o->binarize, masks + (size_t)k * hw, &bad);  // checked in parse_all
    }
    SamxSample s = {.image = img, .masks = masks, .case_id = r->uid};
    rc = samx_dataset_append(w, &s);
  }
  free(img);
  free(vals);
  free(masks);
  if (rc == 0) rc = samx_dataset_writer_split_by_case(w, o->ratios, o->seed);
  if (rc != 0) {
    samx_dataset_abort(w);
    return -1;
  }
  return samx_dataset_finish(w);
}

int samx_pack_lidc_pickle(const char *in, const char *out, const SamxMedicalOptions *o) {
  int fd = open(in, O_RDONLY);
  if (fd < 0) return samx_fail("%s: cannot open: %s", in, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    close(fd);
    return samx_fail("%s: empty or unreadable file", in);
  }
  // Mapped, not read: the file can be gigabytes and the parse copies what it keeps.
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return samx_fail("%s: cannot map: %s", in, strerror(errno));
  PkArena *arena = NULL;
  PkValue *root = NULL;
  int rc = samx_pickle_load((const unsigned char *)map, (size_t)st.st_size, in, &arena, &root);
  munmap(map, (size_t)st.st_size);
  Parsed p = {.path = in};
  if (rc == 0) rc = parse_all(&p, root, o);
  if (rc == 0) rc = write_all(&p, out, o);
  if (rc == 0)
    printf("packed %lld LIDC slices of %lldx%lld with %lld masks each from %s\n", (long long)p.n, (long long)p.h,
           (long long)p.w, (long long)p.k, in);
  free(p.rec);
  samx_pickle_free(arena);
  return rc;
}
