// Dataset files (schema samx-dataset v1): validating reader and crash-safe writer.
#include "data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/h5io.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "version.h"

struct SamxDataset {
  char *path;
  hid_t file, images, masks;
  hid_t labels;          // optional /labels [N,H,W] class map (contracts §7); H5I_INVALID_HID when absent
  int n_label_names;
  char **label_names;    // its `names` attribute: name of class c at c (0 background)
  SamxDatasetInfo info;
  uint8_t *valid;  // [N*K]
  uint8_t *split;  // [N]
  float *spacing;  // [N*2]
  char **case_ids;
};

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id > 0) fn(*id);
  *id = H5I_INVALID_HID;
}

void samx_dataset_close(SamxDataset *ds) {
  if (!ds) return;
  close_id(&ds->images, H5Dclose);
  close_id(&ds->masks, H5Dclose);
  close_id(&ds->labels, H5Dclose);
  close_id(&ds->file, H5Fclose);
  for (int c = 0; c < ds->n_label_names; c++) free(ds->label_names[c]);
  free(ds->label_names);
  if (ds->case_ids)
    for (int64_t i = 0; i < ds->info.n; i++) free(ds->case_ids[i]);
  free(ds->case_ids);
  free(ds->valid);
  free(ds->split);
  free(ds->spacing);
  free(ds->path);
  free(ds);
}

// "path: dataset D has <what> = got, but /images has want" for the first disagreeing axis.
static int expect_dim(const char *path, const char *name, const char *what, int64_t got, int64_t want) {
  if (got == want) return 0;
  return samx_fail("%s: dataset %s has %s = %lld, but /images has %lld (all datasets must agree)", path, name, what,
                   (long long)got, (long long)want);
}

static int open_images(SamxDataset *ds) {
  int64_t d[4];
  int rank;
  SamxH5Kind kind;
  const char *p = ds->path;
  ds->images = samx_h5_open_dataset(ds->file, p, "/images", 3, 4, d, &rank, &kind);
  if (ds->images < 0) return -1;
  if (samx_h5_expect_kind(ds->images, p, "/images", SAMX_H5_U8, SAMX_H5_F32) != 0) return -1;
  if (rank == 4 && d[3] != 3)
    return samx_fail("%s: dataset /images has shape [%lld,%lld,%lld,%lld], expected [N,H,W] or [N,H,W,3]", p,
                     (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3]);
  SamxDatasetInfo *in = &ds->info;
  in->n = d[0], in->h = d[1], in->w = d[2], in->channels = rank == 4 ? 3 : 1;
  in->dtype = kind == SAMX_H5_U8 ? SAMX_IMAGE_U8 : SAMX_IMAGE_F32;
  in->display_lo = 0, in->display_hi = 255;
  if (in->h <= 0 || in->w <= 0) return samx_fail("%s: dataset /images has empty images (H = %lld, W = %lld)", p,
                                                 (long long)in->h, (long long)in->w);
  // The per-sample arrays are allocated at open from the declared N: a damaged header must not make
  // that an allocation of terabytes (HDF5 datasets may declare far more rows than the file stores).
  if (in->n > SAMX_DATASET_MAX_ROWS)
    return samx_fail("%s: dataset /images declares %lld samples, more than samx reads (%d)", p, (long long)in->n,
                     SAMX_DATASET_MAX_ROWS);
  if (in->dtype == SAMX_IMAGE_F32) {
    float r[2];
    const char *attr = H5Aexists(ds->images, "window") > 0 ? "window" : "value_range";
    if (H5Aexists(ds->images, attr) <= 0)
      return samx_fail("%s: dataset /images is float32 but has neither a `window` nor a `value_range` attribute "
                       "saying how values map to display",
                       p);
    if (samx_h5_read_attr_floats(ds->images, p, attr, 2, r) != 0) return -1;
    if (!(r[1] > r[0])) return samx_fail("%s: /images attribute %s = [%g, %g] is not an increasing range", p, attr,
                                        r[0], r[1]);
    in->display_lo = r[0], in->display_hi = r[1];
  }
  return 0;
}

// Opens a per-sample dataset of the given kind whose leading dims must equal want[0..rank-1].
static hid_t open_checked(SamxDataset *ds, const char *name, int rank, SamxH5Kind kind, const int64_t *want,
                          const char *const *axis) {
  int64_t d[4];
  int r;
  SamxH5Kind k;
  hid_t id = samx_h5_open_dataset(ds->file, ds->path, name, rank, rank, d, &r, &k);
  if (id < 0) return -1;
  int bad = samx_h5_expect_kind(id, ds->path, name, kind, SAMX_H5_OTHER) != 0;
  for (int i = 0; i < rank && !bad; i++)
    if (want[i] >= 0) bad = expect_dim(ds->path, name, axis[i], d[i], want[i]) != 0;
  if (bad) {
    H5Dclose(id);
    return -1;
  }
  return id;
}

static int load_per_sample(SamxDataset *ds) {
  SamxDatasetInfo *in = &ds->info;
  const char *p = ds->path;
  static const char *const axis_nkhw[] = {"N", "K", "H", "W"};
  static const char *const axis_n2[] = {"N", "second dimension"};
  // K is whatever /masks says; everything else must agree with it.
  int64_t d[4];
  int r;
  SamxH5Kind k;
  hid_t probe = samx_h5_open_dataset(ds->file, p, "/masks", 4, 4, d, &r, &k);
  if (probe < 0) return -1;
  H5Dclose(probe);
  in->k = d[1];
  int64_t want_masks[4] = {in->n, in->k, in->h, in->w}, want_nk[2] = {in->n, in->k}, want_n2[2] = {in->n, 2};
  ds->masks = open_checked(ds, "/masks", 4, SAMX_H5_U8, want_masks, axis_nkhw);
  if (ds->masks < 0) return -1;
  if (in->k <= 0) return samx_fail("%s: dataset /masks has K = 0 annotators", p);
  if (in->k > SAMX_DATASET_MAX_ANNOTATORS)
    return samx_fail("%s: dataset /masks declares %lld annotators, more than samx reads (%d)", p, (long long)in->k,
                     SAMX_DATASET_MAX_ANNOTATORS);

  size_t n = (size_t)in->n;
  ds->valid = (uint8_t *)malloc(n * (size_t)in->k + 1);
  ds->split = (uint8_t *)malloc(n + 1);
  ds->spacing = (float *)malloc(n * 2 * sizeof(float) + 1);
  ds->case_ids = (char **)calloc(n + 1, sizeof(char *));
  struct {
    const char *name;
    int rank;
    SamxH5Kind kind;
    const int64_t *want;
    const char *const *axis;
    hid_t memtype;
    void *buf;
  } arrays[] = {
      {"/annotator_valid", 2, SAMX_H5_U8, want_nk, axis_nkhw, H5T_NATIVE_UINT8, ds->valid},
      {"/split", 1, SAMX_H5_U8, want_nk, axis_nkhw, H5T_NATIVE_UINT8, ds->split},
      {"/spacing", 2, SAMX_H5_F32, want_n2, axis_n2, H5T_NATIVE_FLOAT, ds->spacing},
      {"/case_id", 1, SAMX_H5_STR, want_nk, axis_nkhw, 0, ds->case_ids},
  };
  for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
    hid_t id = open_checked(ds, arrays[a].name, arrays[a].rank, arrays[a].kind, arrays[a].want, arrays[a].axis);
    if (id < 0) return -1;
    int rc = arrays[a].kind == SAMX_H5_STR
                 ? samx_h5_read_strings(id, p, arrays[a].name, in->n, (char **)arrays[a].buf)
                 : samx_h5_read_rows(id, p, arrays[a].name, arrays[a].memtype, 0, in->n, arrays[a].buf);
    H5Dclose(id);
    if (rc != 0) return -1;
  }
  for (int64_t i = 0; i < in->n; i++)
    if (ds->split[i] >= SAMX_SPLIT_COUNT)
      return samx_fail("%s: dataset /split has value %d at row %lld (0 train, 1 val, 2 test)", p, ds->split[i],
                       (long long)i);
  return 0;
}

// The optional class map: [N, H, W] uint8 with a `names` string-array attribute (one per class value).
static int open_labels(SamxDataset *ds) {
  if (H5Lexists(ds->file, "labels", H5P_DEFAULT) <= 0) return 0;
  static const char *const axis_nhw[] = {"N", "H", "W"};
  int64_t want[3] = {ds->info.n, ds->info.h, ds->info.w};
  ds->labels = open_checked(ds, "/labels", 3, SAMX_H5_U8, want, axis_nhw);
  if (ds->labels < 0) return -1;
  int64_t count = 0;
  if (H5Aexists(ds->labels, "n_names") <= 0 || samx_h5_read_attr_int(ds->labels, ds->path, "n_names", &count) != 0 ||
      count < 1 || count > 256)
    return samx_fail("%s: dataset /labels needs an `n_names` attribute in [1, 256] and `names` (contracts §7)", ds->path);
  ds->label_names = (char **)calloc((size_t)count, sizeof(char *));
  ds->n_label_names = (int)count;
  return samx_h5_read_attr_strings(ds->labels, ds->path, "names", (int)count, ds->label_names);
}

SamxDataset *samx_dataset_open(const char *path) {
  SamxDataset *ds = (SamxDataset *)calloc(1, sizeof *ds);
  ds->path = strdup(path);
  ds->images = ds->masks = ds->labels = H5I_INVALID_HID;
  ds->file = samx_h5_open_read(path);
  int ok = ds->file >= 0 && samx_h5_check_schema(ds->file, path, SAMX_DATASET_SCHEMA, SAMX_DATASET_VERSION) == 0 &&
           open_images(ds) == 0 && load_per_sample(ds) == 0 && open_labels(ds) == 0;
  if (!ok) {
    samx_dataset_close(ds);
    return NULL;
  }
  return ds;
}

const char *samx_dataset_path(const SamxDataset *ds) { return ds->path; }
SamxDatasetInfo samx_dataset_info(const SamxDataset *ds) { return ds->info; }
int64_t samx_dataset_n(const SamxDataset *ds) { return ds->info.n; }
int64_t samx_dataset_h(const SamxDataset *ds) { return ds->info.h; }
int64_t samx_dataset_w(const SamxDataset *ds) { return ds->info.w; }
int64_t samx_dataset_k(const SamxDataset *ds) { return ds->info.k; }
int samx_dataset_channels(const SamxDataset *ds) { return ds->info.channels; }
SamxImageDtype samx_dataset_dtype(const SamxDataset *ds) { return ds->info.dtype; }
const uint8_t *samx_dataset_annotator_valid(const SamxDataset *ds) { return ds->valid; }
const uint8_t *samx_dataset_splits(const SamxDataset *ds) { return ds->split; }
const float *samx_dataset_spacing(const SamxDataset *ds) { return ds->spacing; }

const char *samx_dataset_case_id(const SamxDataset *ds, int64_t i) {
  SAMX_ASSERT(i >= 0 && i < ds->info.n, "case_id: row %lld outside [0, %lld)", (long long)i, (long long)ds->info.n);
  return ds->case_ids[i];
}

int64_t samx_dataset_split_rows(const SamxDataset *ds, int split, int64_t *idx, int64_t cap) {
  int64_t count = 0;
  for (int64_t i = 0; i < ds->info.n; i++)
    if (ds->split[i] == split) {
      if (idx && count < cap) idx[count] = i;
      count++;
    }
  return count;
}

static void check_row(const SamxDataset *ds, int64_t i) {
  SAMX_ASSERT(i >= 0 && i < ds->info.n, "%s: row %lld outside [0, %lld)", ds->path, (long long)i,
              (long long)ds->info.n);
}

int samx_dataset_read_image_f32(SamxDataset *ds, int64_t i, float *out) {
  check_row(ds, i);
  return samx_h5_read_rows(ds->images, ds->path, "/images", H5T_NATIVE_FLOAT, i, 1, out);
}

int samx_dataset_read_image_u8(SamxDataset *ds, int64_t i, uint8_t *out) {
  check_row(ds, i);
  if (ds->info.dtype == SAMX_IMAGE_U8) return samx_h5_read_rows(ds->images, ds->path, "/images", H5T_NATIVE_UINT8, i, 1, out);
  size_t n = (size_t)(ds->info.h * ds->info.w * ds->info.channels);
  float *tmp = (float *)malloc(n * sizeof *tmp);
  int rc = samx_h5_read_rows(ds->images, ds->path, "/images", H5T_NATIVE_FLOAT, i, 1, tmp);
  float lo = ds->info.display_lo, scale = 255.0f / (ds->info.display_hi - ds->info.display_lo);
  for (size_t j = 0; j < n && rc == 0; j++) {
    float v = (tmp[j] - lo) * scale;
    out[j] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)lrintf(v));
  }
  free(tmp);
  return rc;
}

int samx_dataset_read_masks(SamxDataset *ds, int64_t i, uint8_t *out) {
  check_row(ds, i);
  return samx_h5_read_rows(ds->masks, ds->path, "/masks", H5T_NATIVE_UINT8, i, 1, out);
}

int samx_dataset_has_labels(const SamxDataset *ds) { return ds->labels > 0; }
int samx_dataset_label_count(const SamxDataset *ds) { return ds->n_label_names; }
const char *samx_dataset_label_name(const SamxDataset *ds, int c) {
  return c >= 0 && c < ds->n_label_names ? ds->label_names[c] : NULL;
}

int samx_dataset_read_labels(SamxDataset *ds, int64_t i, uint8_t *out) {
  check_row(ds, i);
  if (ds->labels <= 0) return samx_fail("%s: has no /labels class map (pack with label ids: contracts §7)", ds->path);
  return samx_h5_read_rows(ds->labels, ds->path, "/labels", H5T_NATIVE_UINT8, i, 1, out);
}

int samx_dataset_attr(const SamxDataset *ds, const char *name, char *buf, size_t n) {
  return samx_h5_attr_text(ds->file, name, buf, n);
}

typedef struct {
  hid_t file;
  void (*fn)(const char *, const char *, void *);
  void *user;
} AttrVisit;

static herr_t visit_attr(hid_t loc, const char *name, const H5A_info_t *info, void *user) {
  AttrVisit *v = (AttrVisit *)user;
  char buf[1024];
  samx_h5_attr_text(v->file, name, buf, sizeof buf);
  v->fn(name, buf, v->user);
  return 0;
}

void samx_dataset_each_attr(const SamxDataset *ds, void (*fn)(const char *, const char *, void *), void *user) {
  AttrVisit v = {ds->file, fn, user};
  hsize_t idx = 0;
  H5Aiterate2(ds->file, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_attr, &v);
}

// ---- writer ----

struct SamxDatasetWriter {
  char *path;
  char tmp[4096];
  hid_t file, images, masks;
  hid_t labels;          // /labels when samx_dataset_writer_enable_labels was called
  SamxDatasetSpec spec;  // strings not kept: they are written at create
  int64_t n, cap;
  uint8_t *valid, *split;
  float *spacing;
  char **case_ids;
};

static void writer_free(SamxDatasetWriter *w) {
  close_id(&w->labels, H5Dclose);
  close_id(&w->images, H5Dclose);
  close_id(&w->masks, H5Dclose);
  close_id(&w->file, H5Fclose);
  for (int64_t i = 0; i < w->n; i++) free(w->case_ids[i]);
  free(w->case_ids);
  free(w->valid);
  free(w->split);
  free(w->spacing);
  free(w->path);
  free(w);
}

void samx_dataset_abort(SamxDatasetWriter *w) {
  if (!w) return;
  close_id(&w->file, H5Fclose);
  unlink(w->tmp);
  writer_free(w);
}

static int write_root_attrs(SamxDatasetWriter *w, const SamxDatasetSpec *s) {
  char created[256];
  snprintf(created, sizeof created, "samx %s (commit %s)", SAMX_VERSION, SAMX_GIT_COMMIT);
  int rc = samx_h5_write_attr_string(w->file, "schema", SAMX_DATASET_SCHEMA);
  rc |= samx_h5_write_attr_int(w->file, "version", SAMX_DATASET_VERSION);
  rc |= samx_h5_write_attr_string(w->file, "source", s->source ? s->source : "unknown");
  rc |= samx_h5_write_attr_string(w->file, "modality", s->modality ? s->modality : "unknown");
  rc |= samx_h5_write_attr_string(w->file, "created_by", created);
  if (s->dtype == SAMX_IMAGE_F32) {
    float r[2] = {s->display_lo, s->display_hi};
    rc |= samx_h5_write_attr_floats(w->images, s->display_attr ? s->display_attr : "value_range", r, 2);
  }
  return rc ? samx_fail("%s: cannot write root attributes", w->path) : 0;
}

SamxDatasetWriter *samx_dataset_create(const char *path, const SamxDatasetSpec *spec) {
  SAMX_ASSERT(spec->h > 0 && spec->w > 0 && spec->k > 0 && (spec->channels == 1 || spec->channels == 3),
              "dataset spec: H %lld, W %lld, K %lld, channels %d", (long long)spec->h, (long long)spec->w,
              (long long)spec->k, spec->channels);
  SAMX_ASSERT(spec->dtype != SAMX_IMAGE_F32 || spec->display_hi > spec->display_lo,
              "dataset spec: float images need a display range, got [%g, %g]", spec->display_lo, spec->display_hi);
  SamxDatasetWriter *w = (SamxDatasetWriter *)calloc(1, sizeof *w);
  w->path = strdup(path);
  w->spec = *spec;
  w->images = w->masks = w->labels = H5I_INVALID_HID;
  samx_tmp_path(path, w->tmp, sizeof w->tmp);
  w->file = samx_h5_create(w->tmp);
  if (w->file < 0) {
    writer_free(w);
    return NULL;
  }
  int gzip = spec->gzip_level > 0 ? spec->gzip_level : spec->gzip_level < 0 ? 0 : 4;
  int64_t image_row[3] = {spec->h, spec->w, 3}, mask_row[3] = {spec->k, spec->h, spec->w};
  hid_t image_type = spec->dtype == SAMX_IMAGE_U8 ? H5T_STD_U8LE : H5T_IEEE_F32LE;
  w->images = samx_h5_create_rows(w->file, w->tmp, "/images", image_type, spec->channels == 3 ? 4 : 3, image_row, 1,
                                  gzip);
  w->masks = w->images < 0 ? -1 : samx_h5_create_rows(w->file, w->tmp, "/masks", H5T_STD_U8LE, 4, mask_row, 1, gzip);
  if (w->masks < 0 || write_root_attrs(w, spec) != 0) {
    samx_dataset_abort(w);
    return NULL;
  }
  return w;
}

int64_t samx_dataset_writer_count(const SamxDatasetWriter *w) { return w->n; }

static void grow(SamxDatasetWriter *w) {
  if (w->n < w->cap) return;
  w->cap = w->cap ? 2 * w->cap : 256;
  size_t c = (size_t)w->cap, k = (size_t)w->spec.k;
  w->valid = (uint8_t *)realloc(w->valid, c * k);
  w->split = (uint8_t *)realloc(w->split, c);
  w->spacing = (float *)realloc(w->spacing, c * 2 * sizeof(float));
  w->case_ids = (char **)realloc(w->case_ids, c * sizeof(char *));
}

int samx_dataset_append(SamxDatasetWriter *w, const SamxSample *s) {
  SAMX_ASSERT(s->split >= 0 && s->split < SAMX_SPLIT_COUNT, "dataset append: split %d", s->split);
  size_t k = (size_t)w->spec.k, hw = (size_t)(w->spec.h * w->spec.w);
  // Masks are stored strictly 0/1 whatever nonzero value the caller used (PNG masks are 0/255).
  uint8_t *masks = (uint8_t *)malloc(k * hw);
  for (size_t j = 0; j < k * hw; j++) masks[j] = s->masks[j] != 0;
  hid_t image_mem = w->spec.dtype == SAMX_IMAGE_U8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
  int rc = samx_h5_write_rows(w->images, w->tmp, "/images", image_mem, w->n, 1, s->image);
  if (rc == 0) rc = samx_h5_write_rows(w->masks, w->tmp, "/masks", H5T_NATIVE_UINT8, w->n, 1, masks);
  free(masks);
  if (rc == 0 && w->labels > 0) {
    SAMX_ASSERT(s->labels, "%s: /labels enabled but sample %lld has none", w->path, (long long)w->n);
    rc = samx_h5_write_rows(w->labels, w->tmp, "/labels", H5T_NATIVE_UINT8, w->n, 1, s->labels);
  }
  if (rc != 0) return -1;
  grow(w);
  for (size_t a = 0; a < k; a++) w->valid[(size_t)w->n * k + a] = s->annotator_valid ? s->annotator_valid[a] != 0 : 1;
  w->split[w->n] = (uint8_t)s->split;
  for (int a = 0; a < 2; a++) w->spacing[2 * w->n + a] = s->spacing[a] > 0 ? s->spacing[a] : 1.0f;
  w->case_ids[w->n] = strdup(s->case_id ? s->case_id : "");
  w->n++;
  return 0;
}

int samx_dataset_writer_enable_labels(SamxDatasetWriter *w, const char *const *names, int n_names) {
  SAMX_ASSERT(w->n == 0 && w->labels <= 0 && n_names >= 0 && n_names <= 256, "enable_labels: %d names after %lld rows",
              n_names, (long long)w->n);
  int64_t row[2] = {w->spec.h, w->spec.w};
  int gzip = w->spec.gzip_level > 0 ? w->spec.gzip_level : w->spec.gzip_level < 0 ? 0 : 4;
  w->labels = samx_h5_create_rows(w->file, w->tmp, "/labels", H5T_STD_U8LE, 3, row, 1, gzip);
  if (w->labels < 0) return -1;
  return n_names ? samx_dataset_writer_label_names(w, names, n_names) : 0;
}

int samx_dataset_writer_label_names(SamxDatasetWriter *w, const char *const *names, int n_names) {
  SAMX_ASSERT(w->labels > 0 && n_names >= 1 && n_names <= 256, "label_names: %d names", n_names);
  int rc = samx_h5_write_attr_strings(w->labels, "names", names, n_names);
  rc |= samx_h5_write_attr_int(w->labels, "n_names", n_names);
  return rc ? samx_fail("%s: cannot write the /labels names", w->path) : 0;
}

int samx_dataset_writer_attr_string(SamxDatasetWriter *w, const char *name, const char *value) {
  return samx_h5_write_attr_string(w->file, name, value);
}
int samx_dataset_writer_attr_int(SamxDatasetWriter *w, const char *name, int64_t value) {
  return samx_h5_write_attr_int(w->file, name, value);
}
int samx_dataset_writer_attr_double(SamxDatasetWriter *w, const char *name, double value) {
  return samx_h5_write_attr_double(w->file, name, value);
}

int samx_dataset_writer_split_by_case(SamxDatasetWriter *w, const double ratios[3], uint64_t seed) {
  samx_split_by_case((const char *const *)w->case_ids, w->n, ratios, seed, w->split);
  char buf[128];
  snprintf(buf, sizeof buf, "by case, train/val/test ratios %g/%g/%g", ratios[0], ratios[1], ratios[2]);
  int rc = samx_h5_write_attr_string(w->file, "split_method", buf);
  rc |= samx_h5_write_attr_int(w->file, "split_seed", (int64_t)seed);
  return rc;
}

static int write_per_sample(SamxDatasetWriter *w) {
  int64_t chunk = w->n < 1 ? 1 : w->n < 65536 ? w->n : 65536;
  int64_t k_row[1] = {w->spec.k}, two_row[1] = {2};
  hid_t str = samx_h5_vlen_string();
  struct {
    const char *name;
    hid_t filetype, memtype;
    int rank;
    const int64_t *row;
    const void *buf;
  } arrays[] = {
      {"/annotator_valid", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, k_row, w->valid},
      {"/split", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, NULL, w->split},
      {"/case_id", str, str, 1, NULL, w->case_ids},
      {"/spacing", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, two_row, w->spacing},
  };
  int rc = 0;
  for (size_t a = 0; a < sizeof arrays / sizeof *arrays && rc == 0; a++) {
    int gzip = w->spec.gzip_level > 0 ? w->spec.gzip_level : w->spec.gzip_level < 0 ? 0 : 4;
    hid_t id = samx_h5_create_rows(w->file, w->tmp, arrays[a].name, arrays[a].filetype, arrays[a].rank,
                                   arrays[a].row, chunk, gzip);
    if (id < 0) {
      rc = -1;
      break;
    }
    rc = samx_h5_write_rows(id, w->tmp, arrays[a].name, arrays[a].memtype, 0, w->n, arrays[a].buf);
    H5Dclose(id);
  }
  H5Tclose(str);
  return rc;
}

int samx_dataset_finish(SamxDatasetWriter *w) {
  if (write_per_sample(w) != 0) {
    samx_dataset_abort(w);
    return -1;
  }
  close_id(&w->images, H5Dclose);
  close_id(&w->masks, H5Dclose);
  close_id(&w->labels, H5Dclose);
  herr_t closed = H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
  if (closed < 0) {
    samx_fail("%s: closing the HDF5 file failed (disk full?)", w->path);
    samx_dataset_abort(w);
    return -1;
  }
  int rc = samx_commit_tmp(w->tmp, w->path);
  writer_free(w);
  return rc;
}
