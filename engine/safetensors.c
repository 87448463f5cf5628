#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"

// Larger headers are refused before parsing (the reference implementation uses 100 MB).
#define ST_MAX_HEADER (100u << 20)

static int cmp_by_begin(const void *a, const void *b) {
  const SamxSTEntry *x = *(SamxSTEntry *const *)a, *y = *(SamxSTEntry *const *)b;
  const char *xa = (const char *)x->data, *ya = (const char *)y->data;
  if (xa != ya) return xa < ya ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;  // empty tensors first: they own no bytes
}

static int parse_entry(SamxSafetensors *st, const char *name, json_t *v, const char *data, size_t data_size,
                       SamxSTEntry *e) {
  const char *path = st->path;
  if (!json_is_object(v)) return samx_fail("%s: tensor '%s': entry is not a JSON object", path, name);
  json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
         *offs = json_object_get(v, "data_offsets");
  if (!json_is_string(dt)) return samx_fail("%s: tensor '%s': missing or non-string \"dtype\"", path, name);
  int d = samx_dtype_from_name(json_string_value(dt));
  if (d < 0)
    return samx_fail("%s: tensor '%s': dtype %s is not supported (F32, BF16, F16, I32, I64, U8)", path, name,
                     json_string_value(dt));
  if (!json_is_array(shape)) return samx_fail("%s: tensor '%s': missing or non-array \"shape\"", path, name);
  size_t nd = json_array_size(shape);
  if (nd > SAMX_MAX_DIMS) return samx_fail("%s: tensor '%s': %zu dims, at most %d", path, name, nd, SAMX_MAX_DIMS);
  e->name = strdup(name);
  e->dtype = (SamxDType)d;
  e->ndim = (int)nd;
  e->numel = 1;
  for (size_t i = 0; i < nd; i++) {
    json_t *s = json_array_get(shape, i);
    if (!json_is_integer(s) || json_integer_value(s) < 0)
      return samx_fail("%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
    e->shape[i] = json_integer_value(s);
    if (e->shape[i] > 0 && e->numel > INT64_MAX / 16 / e->shape[i])
      return samx_fail("%s: tensor '%s': shape product overflows", path, name);
    e->numel *= e->shape[i];
  }
  if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
      !json_is_integer(json_array_get(offs, 1)))
    return samx_fail("%s: tensor '%s': \"data_offsets\" must be [begin, end]", path, name);
  json_int_t b = json_integer_value(json_array_get(offs, 0)), en = json_integer_value(json_array_get(offs, 1));
  if (b < 0 || en < b)
    return samx_fail("%s: tensor '%s': data_offsets [%lld, %lld] are not ordered", path, name, (long long)b,
                     (long long)en);
  if ((size_t)en > data_size)
    return samx_fail("%s: tensor '%s': data_offsets end %lld is past the data block (%zu bytes; file truncated?)",
                     path, name, (long long)en, data_size);
  size_t want = (size_t)e->numel * samx_dtype_size(e->dtype);
  if ((size_t)(en - b) != want)
    return samx_fail("%s: tensor '%s': %lld bytes stored, but %s x %lld elements need %zu", path, name,
                     (long long)(en - b), samx_dtype_name(e->dtype), (long long)e->numel, want);
  e->data = data + b;
  e->nbytes = want;
  return 0;
}

static int parse_metadata(SamxSafetensors *st, json_t *meta) {
  if (!json_is_object(meta)) return samx_fail("%s: \"__metadata__\" is not an object", st->path);
  size_t n = json_object_size(meta);
  st->meta_keys = (char **)calloc(n + 1, sizeof(char *));
  st->meta_values = (char **)calloc(n + 1, sizeof(char *));
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (!json_is_string(v)) return samx_fail("%s: __metadata__ '%s' is not a string", st->path, k);
    st->meta_keys[st->n_meta] = strdup(k);
    st->meta_values[st->n_meta] = strdup(json_string_value(v));
    st->n_meta++;
  }
  return 0;
}

static int parse_header(SamxSafetensors *st, const char *hdr, size_t hlen, const char *data, size_t data_size) {
  json_error_t err;
  json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &err);
  if (!root) return samx_fail("%s: header is not valid JSON: %s (line %d, column %d)", st->path, err.text, err.line,
                              err.column);
  int rc = 0;
  if (!json_is_object(root)) {
    rc = samx_fail("%s: header is not a JSON object", st->path);
    goto done;
  }
  size_t n = json_object_size(root);
  st->entries = (SamxSTEntry *)calloc(n + 1, sizeof(SamxSTEntry));
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "__metadata__") == 0) {
      if ((rc = parse_metadata(st, v)) != 0) goto done;
      continue;
    }
    if ((rc = parse_entry(st, key, v, data, data_size, &st->entries[st->n])) != 0) {
      st->n++;  // so close() frees its name
      goto done;
    }
    st->n++;
  }
  // No two tensors may share bytes.
  SamxSTEntry **order = (SamxSTEntry **)malloc((size_t)(st->n + 1) * sizeof *order);
  for (int i = 0; i < st->n; i++) order[i] = &st->entries[i];
  qsort(order, (size_t)st->n, sizeof *order, cmp_by_begin);
  for (int i = 1; i < st->n && rc == 0; i++) {
    const char *prev_end = (const char *)order[i - 1]->data + order[i - 1]->nbytes;
    if ((const char *)order[i]->data < prev_end)
      rc = samx_fail("%s: tensors '%s' and '%s' overlap in the data block", st->path, order[i - 1]->name,
                     order[i]->name);
  }
  free(order);
done:
  json_decref(root);
  return rc;
}

int samx_st_open(SamxSafetensors *st, const char *path) {
  memset(st, 0, sizeof *st);
  st->path = strdup(path);
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    int e = errno;
    samx_st_close(st);
    return samx_fail("%s: cannot open: %s", path, strerror(e));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_size < 8) {
    close(fd);
    samx_st_close(st);
    return samx_fail("%s: not a safetensors file (shorter than the 8-byte header length)", path);
  }
  st->map_size = (size_t)sb.st_size;
  st->map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (st->map == MAP_FAILED) {
    st->map = NULL;
    samx_st_close(st);
    return samx_fail("%s: mmap failed", path);
  }
  const unsigned char *p = (const unsigned char *)st->map;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
  if (hlen > ST_MAX_HEADER || hlen > st->map_size - 8) {
    uint64_t avail = st->map_size - 8;
    samx_st_close(st);
    return samx_fail("%s: header length %llu exceeds the file (%llu bytes after the length field; truncated?)", path,
                     (unsigned long long)hlen, (unsigned long long)avail);
  }
  if (hlen == 0 || p[8] != '{') {
    samx_st_close(st);
    return samx_fail("%s: header does not start with '{' (not a safetensors file)", path);
  }
  const char *data = (const char *)p + 8 + hlen;
  if (parse_header(st, (const char *)p + 8, (size_t)hlen, data, st->map_size - 8 - (size_t)hlen) != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", samx_last_error());
    samx_st_close(st);
    return samx_fail("%s", msg);
  }
  return 0;
}

void samx_st_close(SamxSafetensors *st) {
  for (int i = 0; i < st->n; i++) free(st->entries[i].name);
  for (int i = 0; i < st->n_meta; i++) free(st->meta_keys[i]), free(st->meta_values[i]);
  free(st->entries);
  free(st->meta_keys);
  free(st->meta_values);
  if (st->map) munmap(st->map, st->map_size);
  free(st->path);
  memset(st, 0, sizeof *st);
}

const SamxSTEntry *samx_st_find(const SamxSafetensors *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i];
  return NULL;
}

const char *samx_st_meta(const SamxSafetensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
  return NULL;
}

float *samx_st_to_f32(const SamxSTEntry *e) {
  float *out = (float *)malloc((size_t)e->numel * sizeof(float) + 4);
  const unsigned char *d = (const unsigned char *)e->data;
  for (int64_t i = 0; i < e->numel; i++) {
    switch (e->dtype) {
      case SAMX_F32: { float v; memcpy(&v, d + 4 * i, 4); out[i] = v; break; }
      case SAMX_BF16: { uint16_t v; memcpy(&v, d + 2 * i, 2); out[i] = samx_bf16_to_f32(v); break; }
      case SAMX_F16: { uint16_t v; memcpy(&v, d + 2 * i, 2); out[i] = samx_f16_to_f32(v); break; }
      case SAMX_I32: { int32_t v; memcpy(&v, d + 4 * i, 4); out[i] = (float)v; break; }
      case SAMX_I64: { int64_t v; memcpy(&v, d + 8 * i, 8); out[i] = (float)v; break; }
      case SAMX_U8: out[i] = (float)d[i]; break;
      default: out[i] = 0; break;
    }
  }
  return out;
}

int samx_st_load_into(const SamxSafetensors *st, const SamxSTEntry *e, SamxTensor *t) {
  SamxShape want = samx_shape_of(t), got = {e->ndim, {0}};
  for (int i = 0; i < e->ndim; i++) got.d[i] = e->shape[i];
  if (!samx_shape_eq(want, got)) {
    char a[96], b[96];
    return samx_fail("%s: tensor '%s' has shape %s, the model expects %s", st->path, e->name,
                     samx_shape_str(got, a, sizeof a), samx_shape_str(want, b, sizeof b));
  }
  if (e->dtype == t->dtype) {
    samx_tensor_write(t, e->data);
    return 0;
  }
  float *tmp = samx_st_to_f32(e);
  samx_tensor_write_f32(t, tmp);
  free(tmp);
  return 0;
}

typedef struct {
  char *name;
  SamxDType dtype;
  int ndim;
  int64_t shape[SAMX_MAX_DIMS];
  void *data;
  size_t nbytes;
} WEntry;

struct SamxSTWriter {
  WEntry *e;
  int n, cap;
  json_t *meta;
};

SamxSTWriter *samx_st_writer_new(void) {
  SamxSTWriter *w = (SamxSTWriter *)calloc(1, sizeof *w);
  w->meta = json_object();
  return w;
}

static WEntry *writer_slot(SamxSTWriter *w, const char *name, SamxDType dt, int ndim, const int64_t *shape) {
  SAMX_ASSERT(ndim <= SAMX_MAX_DIMS, "safetensors writer: %s has %d dims", name, ndim);
  for (int i = 0; i < w->n; i++) SAMX_ASSERT(strcmp(w->e[i].name, name), "safetensors writer: %s added twice", name);
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 32;
    w->e = (WEntry *)realloc(w->e, (size_t)w->cap * sizeof *w->e);
  }
  WEntry *e = &w->e[w->n++];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  e->dtype = dt;
  e->ndim = ndim;
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) e->shape[i] = shape[i], numel *= shape[i];
  e->nbytes = (size_t)numel * samx_dtype_size(dt);
  e->data = malloc(e->nbytes + 1);
  return e;
}

void samx_st_writer_add(SamxSTWriter *w, const char *name, SamxDType dt, int ndim, const int64_t *shape,
                        const void *host_data) {
  WEntry *e = writer_slot(w, name, dt, ndim, shape);
  memcpy(e->data, host_data, e->nbytes);
}

void samx_st_writer_add_tensor(SamxSTWriter *w, const char *name, const SamxTensor *t) {
  WEntry *e = writer_slot(w, name, t->dtype, t->ndim, t->shape);
  samx_tensor_read(t, e->data);
}

void samx_st_writer_meta(SamxSTWriter *w, const char *key, const char *value) {
  json_object_set_new(w->meta, key, json_string(value));
}

int samx_st_writer_save(SamxSTWriter *w, const char *path) {
  json_t *root = json_object();
  if (json_object_size(w->meta)) json_object_set(root, "__metadata__", w->meta);
  // Widest elements first, as the reference writer does: with the 8-byte-padded header every tensor
  // then starts at a multiple of its element size, so readers may use the mapped bytes in place.
  int *order = (int *)malloc(sizeof(int) * (size_t)(w->n + 1)), n_order = 0;
  for (size_t es = 8; es >= 1; es /= 2)
    for (int i = 0; i < w->n; i++)
      if (samx_dtype_size(w->e[i].dtype) == es) order[n_order++] = i;
  size_t off = 0;
  for (int oi = 0; oi < n_order; oi++) {
    WEntry *e = &w->e[order[oi]];
    json_t *shape = json_array();
    for (int k = 0; k < e->ndim; k++) json_array_append_new(shape, json_integer(e->shape[k]));
    json_t *o = json_pack("{s:s, s:o, s:[I, I]}", "dtype", samx_dtype_name(e->dtype), "shape", shape,
                          "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
    json_object_set_new(root, e->name, o);
    off += e->nbytes;
  }
  char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;  // 8-byte aligned data block
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(hdr);
    free(order);
    return samx_fail("%s: cannot create: %s", tmp, strerror(errno));
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(padded >> (8 * i));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
  for (size_t i = hlen; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
  for (int oi = 0; oi < n_order && ok; oi++) ok = fwrite(w->e[order[oi]].data, 1, w->e[order[oi]].nbytes, f) == w->e[order[oi]].nbytes;
  free(order);
  free(hdr);
  if (fclose(f) != 0) ok = 0;
  if (!ok) {
    unlink(tmp);
    return samx_fail("%s: write failed (disk full?)", path);
  }
  return samx_commit_tmp(tmp, path);
}

void samx_st_writer_free(SamxSTWriter *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->e[i].name), free(w->e[i].data);
  free(w->e);
  json_decref(w->meta);
  free(w);
}
