// Prediction files (schema samx-predictions v1): validating reader and crash-safe writer.
#include "data/predictions.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/h5io.h"
#include "engine/error.h"
#include "engine/fileio.h"

struct SamxPredictions {
  char *path;
  hid_t file, masks, mask_type;
  int64_t n, m, h, w;
  int64_t *index;
  float *scores, *quality;
  char *method, *split;
  char *checkpoint[2], *dataset[2];  // path, sha256
};

void samx_predictions_close(SamxPredictions *p) {
  if (!p) return;
  if (p->masks > 0) H5Dclose(p->masks);
  if (p->mask_type > 0) H5Tclose(p->mask_type);
  if (p->file > 0) H5Fclose(p->file);
  free(p->index);
  free(p->scores);
  free(p->quality);
  free(p->method);
  free(p->split);
  for (int i = 0; i < 2; i++) free(p->checkpoint[i]), free(p->dataset[i]);
  free(p->path);
  free(p);
}

// Provenance attribute `name` as [path, sha256]: a [path, sha256] pair (samx's own files), a single
// string (a path, as other tools write it) or missing (both ""). Any other shape or type is an error.
static int read_provenance(SamxPredictions *p, const char *name, char **out) {
  if (H5Aexists(p->file, name) <= 0) {
    out[0] = strdup(""), out[1] = strdup("");
    return 0;
  }
  hid_t a = H5Aopen(p->file, name, H5P_DEFAULT);
  hid_t space = a < 0 ? H5I_INVALID_HID : H5Aget_space(a);
  hssize_t count = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
  if (space >= 0) H5Sclose(space);
  if (a >= 0) H5Aclose(a);
  if (count != 1 && count != 2)
    return samx_fail("%s: attribute %s holds %lld values; expected a path or a [path, sha256] pair", p->path, name,
                     (long long)count);
  if (samx_h5_read_attr_strings(p->file, p->path, name, (int)count, out) != 0) return -1;
  if (count == 1) out[1] = strdup("");
  // Hex digits compare in lower case (sha256sum's); anything else is kept as written and simply
  // fails to match the file it is checked against.
  for (size_t i = 0; out[1][i]; i++) out[1][i] = (char)tolower((unsigned char)out[1][i]);
  return 0;
}

// An optional single-string attribute; `fallback` when missing.
static int read_optional_string(SamxPredictions *p, const char *name, const char *fallback, char **out) {
  if (H5Aexists(p->file, name) <= 0) {
    *out = strdup(fallback);
    return 0;
  }
  return samx_h5_read_attr_strings(p->file, p->path, name, 1, out);
}

// schema and version are required; the rest is provenance, read when present (contracts §4).
static int read_root_attrs(SamxPredictions *p) {
  if (samx_h5_check_schema(p->file, p->path, SAMX_PREDICTIONS_SCHEMA, SAMX_PREDICTIONS_VERSION) != 0) return -1;
  if (read_optional_string(p, "method", "", &p->method) != 0) return -1;
  if (read_optional_string(p, "split", "all", &p->split) != 0) return -1;
  if (read_provenance(p, "checkpoint", p->checkpoint) != 0) return -1;
  return read_provenance(p, "dataset", p->dataset);
}

// Reads an optional per-sample float dataset of shape [N'] (rank 1) or [N', M] (rank 2).
static int read_optional(SamxPredictions *p, const char *name, int rank, float **out) {
  if (H5Lexists(p->file, name, H5P_DEFAULT) <= 0) return 0;
  int64_t d[2];
  int r;
  SamxH5Kind k;
  hid_t id = samx_h5_open_dataset(p->file, p->path, name, rank, rank, d, &r, &k);
  if (id < 0) return -1;
  int rc = samx_h5_expect_kind(id, p->path, name, SAMX_H5_F32, SAMX_H5_OTHER);
  if (rc == 0 && (d[0] != p->n || (rank == 2 && d[1] != p->m)))
    rc = rank == 2 ? samx_fail("%s: dataset %s has shape [%lld,%lld], but /pred_masks has N' = %lld, M = %lld",
                               p->path, name, (long long)d[0], (long long)d[1], (long long)p->n, (long long)p->m)
                   : samx_fail("%s: dataset %s has %lld rows, but /pred_masks has N' = %lld", p->path, name,
                               (long long)d[0], (long long)p->n);
  if (rc == 0) {
    *out = (float *)malloc((size_t)(p->n * (rank == 2 ? p->m : 1)) * sizeof(float) + 1);
    rc = samx_h5_read_rows(id, p->path, name, H5T_NATIVE_FLOAT, 0, p->n, *out);
  }
  H5Dclose(id);
  return rc;
}

// /pred_masks as uint8 (samx's own), int8, or h5py's bool (an enum of FALSE = 0, TRUE = 1 over int8):
// all are read byte for byte, and read_masks checks every value is 0 or 1.
static int mask_memtype(SamxPredictions *p) {
  hid_t t = H5Dget_type(p->masks);
  H5T_class_t c = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  char tn[64];
  samx_h5_type_name(t, tn, sizeof tn);
  int rc = 0;
  if (size == 1 && c == H5T_INTEGER)
    p->mask_type = H5Tcopy(H5Tget_sign(t) == H5T_SGN_NONE ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT8);
  else if (size == 1 && c == H5T_ENUM) p->mask_type = H5Tget_native_type(t, H5T_DIR_ASCEND);
  else rc = samx_fail("%s: dataset /pred_masks has dtype %s, expected uint8 or bool (0/1)", p->path, tn);
  H5Tclose(t);
  return rc;
}

static int read_datasets(SamxPredictions *p) {
  int64_t d[4];
  int r;
  SamxH5Kind k;
  p->masks = samx_h5_open_dataset(p->file, p->path, "/pred_masks", 4, 4, d, &r, &k);
  if (p->masks < 0) return -1;
  if (mask_memtype(p) != 0) return -1;
  p->n = d[0], p->m = d[1], p->h = d[2], p->w = d[3];
  if (p->m <= 0) return samx_fail("%s: dataset /pred_masks has M = 0 hypotheses", p->path);
  // /index is allocated at open from N', and readers hold one sample's M x H x W masks: a damaged
  // header must not turn either into an allocation of terabytes (HDF5 datasets may declare far more
  // than the file stores).
  if (p->n > SAMX_DATASET_MAX_ROWS || p->h > (1 << 16) || p->w > (1 << 16) ||
      p->m * p->h * p->w > SAMX_PREDICTIONS_MAX_SAMPLE_BYTES)
    return samx_fail("%s: dataset /pred_masks declares [%lld, %lld, %lld, %lld]: more than samx reads (N' <= %d, "
                     "H, W <= 65536, M x H x W <= %lld)",
                     p->path, (long long)p->n, (long long)p->m, (long long)p->h, (long long)p->w,
                     SAMX_DATASET_MAX_ROWS, (long long)SAMX_PREDICTIONS_MAX_SAMPLE_BYTES);
  hid_t idx = samx_h5_open_dataset(p->file, p->path, "/index", 1, 1, d, &r, &k);
  if (idx < 0) return -1;
  // Any integer type (h5py writes int32 or uint32 as readily as int64); HDF5 converts exactly or fails.
  hid_t itype = H5Dget_type(idx);
  char tn[64];
  int rc = H5Tget_class(itype) == H5T_INTEGER
               ? 0
               : samx_fail("%s: dataset /index has dtype %s, expected integers", p->path,
                           samx_h5_type_name(itype, tn, sizeof tn));
  H5Tclose(itype);
  if (rc == 0 && d[0] != p->n)
    rc = samx_fail("%s: dataset /index has %lld rows, but /pred_masks has N' = %lld", p->path, (long long)d[0],
                   (long long)p->n);
  if (rc == 0) {
    p->index = (int64_t *)malloc((size_t)p->n * sizeof(int64_t) + 1);
    rc = samx_h5_read_rows(idx, p->path, "/index", H5T_NATIVE_INT64, 0, p->n, p->index);
  }
  H5Dclose(idx);
  if (rc != 0) return -1;
  if (read_optional(p, "/pred_scores", 2, &p->scores) != 0) return -1;
  return read_optional(p, "/quality", 1, &p->quality);
}

SamxPredictions *samx_predictions_open(const char *path) {
  SamxPredictions *p = (SamxPredictions *)calloc(1, sizeof *p);
  p->path = strdup(path);
  p->masks = p->mask_type = H5I_INVALID_HID;
  p->file = samx_h5_open_read(path);
  if (p->file < 0 || read_root_attrs(p) != 0 || read_datasets(p) != 0) {
    samx_predictions_close(p);
    return NULL;
  }
  return p;
}

const char *samx_predictions_path(const SamxPredictions *p) { return p->path; }
int64_t samx_predictions_n(const SamxPredictions *p) { return p->n; }
int64_t samx_predictions_m(const SamxPredictions *p) { return p->m; }
int64_t samx_predictions_h(const SamxPredictions *p) { return p->h; }
int64_t samx_predictions_w(const SamxPredictions *p) { return p->w; }
const int64_t *samx_predictions_index(const SamxPredictions *p) { return p->index; }
const float *samx_predictions_scores(const SamxPredictions *p) { return p->scores; }
const float *samx_predictions_quality(const SamxPredictions *p) { return p->quality; }
const char *samx_predictions_method(const SamxPredictions *p) { return p->method; }
const char *samx_predictions_split(const SamxPredictions *p) { return p->split; }
const char *samx_predictions_checkpoint_path(const SamxPredictions *p) { return p->checkpoint[0]; }
const char *samx_predictions_checkpoint_sha256(const SamxPredictions *p) { return p->checkpoint[1]; }
const char *samx_predictions_dataset_path(const SamxPredictions *p) { return p->dataset[0]; }
const char *samx_predictions_dataset_sha256(const SamxPredictions *p) { return p->dataset[1]; }

int samx_predictions_read_masks(SamxPredictions *p, int64_t i, uint8_t *out) {
  SAMX_ASSERT(i >= 0 && i < p->n, "%s: prediction %lld outside [0, %lld)", p->path, (long long)i, (long long)p->n);
  if (samx_h5_read_rows(p->masks, p->path, "/pred_masks", p->mask_type, i, 1, out) != 0) return -1;
  int64_t size = p->m * p->h * p->w;
  for (int64_t j = 0; j < size; j++)
    if (out[j] > 1)
      return samx_fail("%s: /pred_masks[%lld] holds the value %d; masks must be 0 or 1", p->path, (long long)i,
                       (int)(int8_t)out[j]);
  return 0;
}

int samx_predictions_check_dataset(const SamxPredictions *p, const SamxDataset *ds) {
  SamxDatasetInfo in = samx_dataset_info(ds);
  if (p->h != in.h || p->w != in.w)
    return samx_fail("%s: predictions are %lldx%lld but dataset %s has %lldx%lld images", p->path, (long long)p->h,
                     (long long)p->w, samx_dataset_path(ds), (long long)in.h, (long long)in.w);
  uint8_t *seen = (uint8_t *)calloc((size_t)in.n + 1, 1);
  int rc = 0;
  for (int64_t i = 0; i < p->n && rc == 0; i++) {
    int64_t r = p->index[i];
    if (r < 0 || r >= in.n)
      rc = samx_fail("%s: /index[%lld] = %lld is outside dataset %s (N = %lld)", p->path, (long long)i, (long long)r,
                     samx_dataset_path(ds), (long long)in.n);
    else if (seen[r]++)
      rc = samx_fail("%s: /index holds dataset row %lld twice", p->path, (long long)r);
  }
  free(seen);
  return rc;
}

int samx_predictions_check_dataset_sha256(const SamxPredictions *p, const char *data_path, int allow_mismatch,
                                          const char *who) {
  const char *want = p->dataset[1];
  if (!want[0]) {
    fprintf(stderr, "%s: warning: %s records no dataset sha256, so it cannot be checked that it was made from %s\n",
            who, p->path, data_path);
    return 0;
  }
  char have[65];
  if (samx_sha256_file(data_path, have) != 0) return -1;
  if (!strcmp(have, want)) return 0;
  if (allow_mismatch) {
    fprintf(stderr, "%s: warning: %s was made from a dataset with sha256 %s, not %s (sha256 %s); going on as asked\n",
            who, p->path, want, data_path, have);
    return 0;
  }
  return samx_fail("%s was made from dataset %s (sha256 %s), not from %s (sha256 %s); pass "
                   "--allow-dataset-mismatch to use it anyway",
                   p->path, p->dataset[0][0] ? p->dataset[0] : "?", want, data_path, have);
}

// ---- writer ----

struct SamxPredictionsWriter {
  char *path;
  char tmp[4096];
  hid_t file, masks;
  SamxPredictionsSpec spec;  // strings written at create, not kept
  int64_t n, cap;
  int64_t *index;
  float *scores, *quality;
};

static void writer_free(SamxPredictionsWriter *w) {
  if (w->masks > 0) H5Dclose(w->masks);
  if (w->file > 0) H5Fclose(w->file);
  free(w->index);
  free(w->scores);
  free(w->quality);
  free(w->path);
  free(w);
}

void samx_predictions_abort(SamxPredictionsWriter *w) {
  if (!w) return;
  if (w->masks > 0) H5Dclose(w->masks);
  if (w->file > 0) H5Fclose(w->file);
  w->masks = w->file = H5I_INVALID_HID;
  unlink(w->tmp);
  writer_free(w);
}

static int write_root_attrs(hid_t f, const SamxPredictionsSpec *s) {
  const char *ckpt[2] = {s->checkpoint_path ? s->checkpoint_path : "", s->checkpoint_sha256 ? s->checkpoint_sha256 : ""};
  const char *data[2] = {s->dataset_path ? s->dataset_path : "", s->dataset_sha256 ? s->dataset_sha256 : ""};
  int rc = samx_h5_write_attr_string(f, "schema", SAMX_PREDICTIONS_SCHEMA);
  rc |= samx_h5_write_attr_int(f, "version", SAMX_PREDICTIONS_VERSION);
  rc |= samx_h5_write_attr_string(f, "method", s->method ? s->method : "");
  rc |= samx_h5_write_attr_strings(f, "checkpoint", ckpt, 2);
  rc |= samx_h5_write_attr_strings(f, "dataset", data, 2);
  rc |= samx_h5_write_attr_string(f, "split", s->split ? s->split : "all");
  return rc;
}

SamxPredictionsWriter *samx_predictions_create(const char *path, const SamxPredictionsSpec *spec) {
  SAMX_ASSERT(spec->m > 0 && spec->h > 0 && spec->w > 0, "predictions spec: M %lld, H %lld, W %lld",
              (long long)spec->m, (long long)spec->h, (long long)spec->w);
  SamxPredictionsWriter *w = (SamxPredictionsWriter *)calloc(1, sizeof *w);
  w->path = strdup(path);
  w->spec = *spec;
  w->masks = H5I_INVALID_HID;
  samx_tmp_path(path, w->tmp, sizeof w->tmp);
  w->file = samx_h5_create(w->tmp);
  if (w->file < 0) {
    writer_free(w);
    return NULL;
  }
  int64_t row[3] = {spec->m, spec->h, spec->w};
  w->masks = samx_h5_create_rows(w->file, w->tmp, "/pred_masks", H5T_STD_U8LE, 4, row, 1,
                                 spec->gzip_level > 0 ? spec->gzip_level : 4);
  if (w->masks < 0 || write_root_attrs(w->file, spec) != 0) {
    if (w->masks >= 0) samx_fail("%s: cannot write root attributes", path);
    samx_predictions_abort(w);
    return NULL;
  }
  return w;
}

int samx_predictions_append(SamxPredictionsWriter *w, int64_t index, const uint8_t *masks, const float *scores,
                            float quality) {
  size_t m = (size_t)w->spec.m, n_px = m * (size_t)(w->spec.h * w->spec.w);
  uint8_t *bin = (uint8_t *)malloc(n_px);
  for (size_t j = 0; j < n_px; j++) bin[j] = masks[j] != 0;
  int rc = samx_h5_write_rows(w->masks, w->tmp, "/pred_masks", H5T_NATIVE_UINT8, w->n, 1, bin);
  free(bin);
  if (rc != 0) return -1;
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 256;
    w->index = (int64_t *)realloc(w->index, (size_t)w->cap * sizeof(int64_t));
    w->scores = (float *)realloc(w->scores, (size_t)w->cap * m * sizeof(float));
    w->quality = (float *)realloc(w->quality, (size_t)w->cap * sizeof(float));
  }
  w->index[w->n] = index;
  for (size_t j = 0; j < m; j++) w->scores[(size_t)w->n * m + j] = w->spec.with_scores && scores ? scores[j] : 0;
  w->quality[w->n] = quality;
  w->n++;
  return 0;
}

static int write_array(SamxPredictionsWriter *w, const char *name, hid_t filetype, hid_t memtype, int rank,
                       const int64_t *row, const void *buf) {
  int64_t chunk = w->n < 1 ? 1 : w->n < 65536 ? w->n : 65536;
  hid_t id = samx_h5_create_rows(w->file, w->tmp, name, filetype, rank, row, chunk,
                                 w->spec.gzip_level > 0 ? w->spec.gzip_level : 4);
  if (id < 0) return -1;
  int rc = samx_h5_write_rows(id, w->tmp, name, memtype, 0, w->n, buf);
  H5Dclose(id);
  return rc;
}

int samx_predictions_finish(SamxPredictionsWriter *w) {
  int64_t m_row[1] = {w->spec.m};
  int rc = write_array(w, "/index", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, NULL, w->index);
  if (rc == 0 && w->spec.with_scores)
    rc = write_array(w, "/pred_scores", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, m_row, w->scores);
  if (rc == 0 && w->spec.with_quality)
    rc = write_array(w, "/quality", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, NULL, w->quality);
  if (rc == 0) {
    H5Dclose(w->masks);
    w->masks = H5I_INVALID_HID;
    if (H5Fclose(w->file) < 0) rc = samx_fail("%s: closing the HDF5 file failed (disk full?)", w->path);
    w->file = H5I_INVALID_HID;
  }
  if (rc != 0) {
    samx_predictions_abort(w);
    return -1;
  }
  rc = samx_commit_tmp(w->tmp, w->path);
  writer_free(w);
  return rc;
}
