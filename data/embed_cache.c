// Embedding cache files (schema samx-embeddings v1): crash-safe writer and validating reader.
#include "data/embed_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/h5io.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "version.h"

enum { EMBED_MAX_ROW_VALUES = 1 << 26 };

static const char *dtype_names[] = {"f32", "f16", "bf16"};

const char *samx_embed_dtype_name(SamxEmbedDtype d) { return d >= 0 && d <= SAMX_EMBED_BF16 ? dtype_names[d] : "?"; }

int samx_embed_dtype_parse(const char *name) {
  for (int d = 0; d <= SAMX_EMBED_BF16; d++)
    if (!strcmp(name, dtype_names[d])) return d;
  return -1;
}

// The HDF5 type of stored values. 16-bit floats are described by their bit fields (as h5py does
// for float16), so HDF5 and h5py know them as floats; samx converts them itself, with
// round-to-nearest-even, and moves raw bits through HDF5. Caller closes.
static hid_t value_type(SamxEmbedDtype d) {
  if (d == SAMX_EMBED_F32) return H5Tcopy(H5T_IEEE_F32LE);
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  if (d == SAMX_EMBED_F16) {
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
  } else {
    H5Tset_fields(t, 15, 7, 8, 0, 7);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 127);
  }
  return t;
}

static size_t value_size(SamxEmbedDtype d) { return d == SAMX_EMBED_F32 ? 4 : 2; }

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id > 0) fn(*id);
  *id = H5I_INVALID_HID;
}

// ---- writing ----
struct SamxEmbedWriter {
  char *path;
  char tmp[4096];
  hid_t file, emb, type;
  SamxEmbedSpec spec;  // strings not kept: written at create
  int64_t n, cap;
  int64_t *index, *info;  // [cap], [cap*4]
  void *packed;           // one embedding in the stored dtype
};

static void writer_free(SamxEmbedWriter *w) {
  close_id(&w->emb, H5Dclose);
  close_id(&w->type, H5Tclose);
  close_id(&w->file, H5Fclose);
  free(w->index);
  free(w->info);
  free(w->packed);
  free(w->path);
  free(w);
}

void samx_embed_abort(SamxEmbedWriter *w) {
  if (!w) return;
  close_id(&w->emb, H5Dclose);
  close_id(&w->file, H5Fclose);
  unlink(w->tmp);
  writer_free(w);
}

static int write_root_attrs(SamxEmbedWriter *w, const SamxEmbedSpec *s) {
  char created[256];
  snprintf(created, sizeof created, "samx %s (commit %s)", SAMX_VERSION, SAMX_GIT_COMMIT);
  const char *ckpt[2] = {s->checkpoint_path ? s->checkpoint_path : "", s->checkpoint_sha256};
  const char *data[2] = {s->dataset_path ? s->dataset_path : "", s->dataset_sha256 ? s->dataset_sha256 : ""};
  hid_t f = w->file;
  int rc = samx_h5_write_attr_string(f, "schema", SAMX_EMBED_SCHEMA);
  rc |= samx_h5_write_attr_int(f, "version", SAMX_EMBED_VERSION);
  rc |= samx_h5_write_attr_string(f, "dtype", samx_embed_dtype_name(s->dtype));
  rc |= samx_h5_write_attr_strings(f, "checkpoint", ckpt, 2);
  rc |= samx_h5_write_attr_strings(f, "dataset", data, 2);
  rc |= samx_h5_write_attr_string(f, "model_config", s->model_config ? s->model_config : "{}");
  rc |= samx_h5_write_attr_int(f, "input_size", s->input_size);
  rc |= samx_h5_write_attr_string(f, "split", s->split ? s->split : "all");
  rc |= samx_h5_write_attr_string(f, "created_by", created);
  return rc ? samx_fail("%s: cannot write root attributes", w->path) : 0;
}

SamxEmbedWriter *samx_embed_create(const char *path, const SamxEmbedSpec *spec) {
  SAMX_ASSERT(spec->c > 0 && spec->h > 0 && spec->w > 0, "embedding cache spec: C %lld, h %lld, w %lld",
              (long long)spec->c, (long long)spec->h, (long long)spec->w);
  SAMX_ASSERT(spec->dtype >= SAMX_EMBED_F32 && spec->dtype <= SAMX_EMBED_BF16, "embedding cache spec: dtype %d",
              (int)spec->dtype);
  SAMX_ASSERT(spec->checkpoint_sha256 && strlen(spec->checkpoint_sha256) == 64,
              "embedding cache spec: the checkpoint sha256 (64 hex digits) is required");
  SamxEmbedWriter *w = (SamxEmbedWriter *)calloc(1, sizeof *w);
  w->path = strdup(path);
  w->spec = *spec;
  w->emb = H5I_INVALID_HID;
  w->type = value_type(spec->dtype);
  w->packed = malloc((size_t)(spec->c * spec->h * spec->w) * value_size(spec->dtype));
  samx_tmp_path(path, w->tmp, sizeof w->tmp);
  w->file = samx_h5_create(w->tmp);
  if (w->file < 0) {
    writer_free(w);
    return NULL;
  }
  int64_t row[3] = {spec->c, spec->h, spec->w};
  w->emb = samx_h5_create_rows(w->file, w->tmp, "/embeddings", w->type, 4, row, 1, spec->gzip_level);
  if (w->emb < 0 || write_root_attrs(w, spec) != 0) {
    samx_embed_abort(w);
    return NULL;
  }
  return w;
}

int64_t samx_embed_writer_count(const SamxEmbedWriter *w) { return w->n; }

int samx_embed_append(SamxEmbedWriter *w, int64_t row, const float *emb, const int64_t info[4]) {
  SAMX_ASSERT(row >= 0, "embedding cache append: row %lld", (long long)row);
  size_t n = (size_t)(w->spec.c * w->spec.h * w->spec.w);
  const void *buf = emb;
  if (w->spec.dtype != SAMX_EMBED_F32) {
    uint16_t *p = (uint16_t *)w->packed;
    for (size_t j = 0; j < n; j++)
      p[j] = w->spec.dtype == SAMX_EMBED_F16 ? samx_f32_to_f16(emb[j]) : samx_f32_to_bf16(emb[j]);
    buf = p;
  }
  hid_t mem = w->spec.dtype == SAMX_EMBED_F32 ? H5T_NATIVE_FLOAT : w->type;
  if (samx_h5_write_rows(w->emb, w->tmp, "/embeddings", mem, w->n, 1, buf) != 0) return -1;
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 256;
    w->index = (int64_t *)realloc(w->index, (size_t)w->cap * sizeof *w->index);
    w->info = (int64_t *)realloc(w->info, (size_t)w->cap * 4 * sizeof *w->info);
  }
  w->index[w->n] = row;
  memcpy(w->info + 4 * w->n, info, 4 * sizeof *info);
  w->n++;
  return 0;
}

static int write_rows_dataset(SamxEmbedWriter *w, const char *name, int rank, const int64_t *row, const int64_t *buf) {
  int64_t chunk = w->n < 1 ? 1 : w->n < 65536 ? w->n : 65536;
  hid_t id = samx_h5_create_rows(w->file, w->tmp, name, H5T_STD_I64LE, rank, row, chunk, 4);
  if (id < 0) return -1;
  int rc = samx_h5_write_rows(id, w->tmp, name, H5T_NATIVE_INT64, 0, w->n, buf);
  H5Dclose(id);
  return rc;
}

int samx_embed_finish(SamxEmbedWriter *w) {
  int64_t four[1] = {4};
  if (write_rows_dataset(w, "/index", 1, NULL, w->index) != 0 ||
      write_rows_dataset(w, "/image_info", 2, four, w->info) != 0) {
    samx_embed_abort(w);
    return -1;
  }
  close_id(&w->emb, H5Dclose);
  herr_t closed = H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
  if (closed < 0) {
    samx_fail("%s: closing the HDF5 file failed (disk full?)", w->path);
    samx_embed_abort(w);
    return -1;
  }
  int rc = samx_commit_tmp(w->tmp, w->path);
  writer_free(w);
  return rc;
}

// ---- reading ----
struct SamxEmbedCache {
  char *path;
  hid_t file, emb, type;
  int64_t n, c, h, w, input_size;
  SamxEmbedDtype dtype;
  int64_t *index, *info;
  int64_t *sorted;  // positions ordered by row, for samx_embed_find
  char *checkpoint[2], *dataset[2], *model_config, *split, *dtype_name;
  void *packed;
};

void samx_embed_close(SamxEmbedCache *c) {
  if (!c) return;
  close_id(&c->emb, H5Dclose);
  close_id(&c->type, H5Tclose);
  close_id(&c->file, H5Fclose);
  for (int i = 0; i < 2; i++) free(c->checkpoint[i]), free(c->dataset[i]);
  free(c->model_config);
  free(c->split);
  free(c->dtype_name);
  free(c->index);
  free(c->info);
  free(c->sorted);
  free(c->packed);
  free(c->path);
  free(c);
}

static int read_root_attrs(SamxEmbedCache *c, const char *want_sha) {
  const char *p = c->path;
  if (samx_h5_check_schema(c->file, p, SAMX_EMBED_SCHEMA, SAMX_EMBED_VERSION) != 0) return -1;
  if (samx_h5_read_attr_strings(c->file, p, "checkpoint", 2, c->checkpoint) != 0) return -1;
  if (samx_h5_read_attr_strings(c->file, p, "dataset", 2, c->dataset) != 0) return -1;
  if (samx_h5_read_attr_strings(c->file, p, "model_config", 1, &c->model_config) != 0) return -1;
  if (samx_h5_read_attr_strings(c->file, p, "split", 1, &c->split) != 0) return -1;
  if (samx_h5_read_attr_strings(c->file, p, "dtype", 1, &c->dtype_name) != 0) return -1;
  if (samx_h5_read_attr_int(c->file, p, "input_size", &c->input_size) != 0) return -1;
  int d = samx_embed_dtype_parse(c->dtype_name);
  if (d < 0) return samx_fail("%s: attribute dtype is '%s', expected f32, f16 or bf16", p, c->dtype_name);
  c->dtype = (SamxEmbedDtype)d;
  if (want_sha && strcmp(want_sha, c->checkpoint[1]) != 0)
    return samx_fail(
        "%s: the embeddings were computed with checkpoint %s (sha256 %s), not with the one given "
        "(sha256 %s); run `samx embed` with this checkpoint again",
        p, c->checkpoint[0], c->checkpoint[1], want_sha);
  return 0;
}

static int open_embeddings(SamxEmbedCache *c) {
  int64_t d[4];
  int rank;
  SamxH5Kind kind;
  c->emb = samx_h5_open_dataset(c->file, c->path, "/embeddings", 4, 4, d, &rank, &kind);
  if (c->emb < 0) return -1;
  hid_t t = H5Dget_type(c->emb);
  size_t size = H5Tget_size(t);
  int is_float = H5Tget_class(t) == H5T_FLOAT;
  H5Tclose(t);
  if (!is_float || size != value_size(c->dtype))
    return samx_fail("%s: dataset /embeddings is not a %zu-byte float as attribute dtype = %s says", c->path,
                     value_size(c->dtype), c->dtype_name);
  c->n = d[0], c->c = d[1], c->h = d[2], c->w = d[3];
  // One row is allocated at open and the per-row tables at N: a damaged header must not turn either into
  // an allocation of terabytes. SAM ViT-H's row is 256 x 64 x 64 = 2^20 values; samx datasets hold <= 2^24 rows.
  if (c->n > SAMX_DATASET_MAX_ROWS || c->c < 1 || c->h < 1 || c->w < 1 || c->c > (1 << 16) || c->h > (1 << 16) ||
      c->w > (1 << 16) || c->c * c->h * c->w > EMBED_MAX_ROW_VALUES)
    return samx_fail("%s: dataset /embeddings declares [%lld, %lld, %lld, %lld]: more than samx reads (N <= %d, "
                     "C x H x W <= %d values per row)",
                     c->path, (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3],
                     SAMX_DATASET_MAX_ROWS, EMBED_MAX_ROW_VALUES);
  c->type = value_type(c->dtype);
  c->packed = malloc((size_t)(c->c * c->h * c->w) * value_size(c->dtype));
  return 0;
}

static int read_i64(SamxEmbedCache *c, const char *name, int rank, int64_t cols, int64_t **out) {
  int64_t d[2];
  int r;
  SamxH5Kind kind;
  hid_t id = samx_h5_open_dataset(c->file, c->path, name, rank, rank, d, &r, &kind);
  if (id < 0) return -1;
  int rc = samx_h5_expect_kind(id, c->path, name, SAMX_H5_I64, SAMX_H5_OTHER);
  if (rc == 0 && (d[0] != c->n || (rank == 2 && d[1] != cols)))
    rc = samx_fail("%s: dataset %s has %lld rows%s, but /embeddings has N = %lld", c->path, name, (long long)d[0],
                   rank == 2 && d[1] != cols ? " or the wrong row length" : "", (long long)c->n);
  if (rc == 0) {
    *out = (int64_t *)malloc((size_t)(c->n * cols + 1) * sizeof **out);
    rc = samx_h5_read_rows(id, c->path, name, H5T_NATIVE_INT64, 0, c->n, *out);
  }
  H5Dclose(id);
  return rc;
}

// qsort has no user pointer: the rows being sorted are passed through a thread-local.
static _Thread_local const int64_t *tl_rows;
static int by_row_tl(const void *a, const void *b) {
  int64_t x = tl_rows[*(const int64_t *)a], y = tl_rows[*(const int64_t *)b];
  return (x > y) - (x < y);
}

static int build_lookup(SamxEmbedCache *c) {
  c->sorted = (int64_t *)malloc((size_t)(c->n + 1) * sizeof *c->sorted);
  for (int64_t i = 0; i < c->n; i++) c->sorted[i] = i;
  tl_rows = c->index;
  qsort(c->sorted, (size_t)c->n, sizeof *c->sorted, by_row_tl);
  for (int64_t i = 0; i < c->n; i++) {
    int64_t r = c->index[c->sorted[i]];
    if (r < 0) return samx_fail("%s: /index[%lld] = %lld is negative", c->path, (long long)c->sorted[i], (long long)r);
    if (i > 0 && r == c->index[c->sorted[i - 1]])
      return samx_fail("%s: /index holds dataset row %lld twice", c->path, (long long)r);
  }
  for (int64_t i = 0; i < c->n; i++) {
    const int64_t *f = c->info + 4 * i;
    if (f[0] <= 0 || f[1] <= 0 || f[2] <= 0 || f[3] <= 0 || f[2] > c->input_size || f[3] > c->input_size)
      return samx_fail(
          "%s: /image_info[%lld] = (%lld, %lld, %lld, %lld) is not (orig_h, orig_w, input_h, input_w) "
          "with input sizes within input_size %lld",
          c->path, (long long)i, (long long)f[0], (long long)f[1], (long long)f[2], (long long)f[3],
          (long long)c->input_size);
  }
  return 0;
}

SamxEmbedCache *samx_embed_open(const char *path, const char *want_checkpoint_sha256) {
  SamxEmbedCache *c = (SamxEmbedCache *)calloc(1, sizeof *c);
  c->path = strdup(path);
  c->emb = c->type = H5I_INVALID_HID;
  c->file = samx_h5_open_read(path);
  int ok = c->file >= 0 && read_root_attrs(c, want_checkpoint_sha256) == 0 && open_embeddings(c) == 0 &&
           read_i64(c, "/index", 1, 1, &c->index) == 0 && read_i64(c, "/image_info", 2, 4, &c->info) == 0 &&
           build_lookup(c) == 0;
  if (!ok) {
    samx_embed_close(c);
    return NULL;
  }
  return c;
}

const char *samx_embed_path(const SamxEmbedCache *c) { return c->path; }
int64_t samx_embed_n(const SamxEmbedCache *c) { return c->n; }
void samx_embed_shape(const SamxEmbedCache *c, int64_t *ch, int64_t *h, int64_t *w) {
  *ch = c->c, *h = c->h, *w = c->w;
}
SamxEmbedDtype samx_embed_dtype(const SamxEmbedCache *c) { return c->dtype; }
int64_t samx_embed_input_size(const SamxEmbedCache *c) { return c->input_size; }
const int64_t *samx_embed_index(const SamxEmbedCache *c) { return c->index; }
const int64_t *samx_embed_image_info(const SamxEmbedCache *c) { return c->info; }
const char *samx_embed_checkpoint_path(const SamxEmbedCache *c) { return c->checkpoint[0]; }
const char *samx_embed_checkpoint_sha256(const SamxEmbedCache *c) { return c->checkpoint[1]; }
const char *samx_embed_dataset_path(const SamxEmbedCache *c) { return c->dataset[0]; }
const char *samx_embed_dataset_sha256(const SamxEmbedCache *c) { return c->dataset[1]; }
const char *samx_embed_model_config(const SamxEmbedCache *c) { return c->model_config; }
const char *samx_embed_split(const SamxEmbedCache *c) { return c->split; }

int64_t samx_embed_find(const SamxEmbedCache *c, int64_t row) {
  int64_t lo = 0, hi = c->n;  // binary search over positions sorted by row
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (c->index[c->sorted[mid]] < row)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < c->n && c->index[c->sorted[lo]] == row ? c->sorted[lo] : -1;
}

int samx_embed_read(SamxEmbedCache *c, int64_t i, float *out) {
  SAMX_ASSERT(i >= 0 && i < c->n, "embedding cache %s: position %lld outside [0, %lld)", c->path, (long long)i,
              (long long)c->n);
  if (c->dtype == SAMX_EMBED_F32) return samx_h5_read_rows(c->emb, c->path, "/embeddings", H5T_NATIVE_FLOAT, i, 1, out);
  if (samx_h5_read_rows(c->emb, c->path, "/embeddings", c->type, i, 1, c->packed) != 0) return -1;
  const uint16_t *p = (const uint16_t *)c->packed;
  size_t n = (size_t)(c->c * c->h * c->w);
  for (size_t j = 0; j < n; j++) out[j] = c->dtype == SAMX_EMBED_F16 ? samx_f16_to_f32(p[j]) : samx_bf16_to_f32(p[j]);
  return 0;
}

int samx_embed_read_row(SamxEmbedCache *c, int64_t row, float *out, int64_t info[4]) {
  int64_t i = samx_embed_find(c, row);
  if (i < 0)
    return samx_fail("%s: dataset row %lld has no embedding (the cache holds %lld rows of split '%s')", c->path,
                     (long long)row, (long long)c->n, c->split);
  if (info) memcpy(info, c->info + 4 * i, 4 * sizeof *info);
  return samx_embed_read(c, i, out);
}
