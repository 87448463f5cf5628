#include "torch_ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "error.h"
#include "pickle.h"

#define MAX_PICKLE_BYTES ((zip_uint64_t)1 << 30)

typedef struct {
  char *key;
  unsigned char *data;
  size_t size;
} Storage;

typedef struct {
  const char *path;
  zip_t *zip;
  char prefix[512];
  Storage *storages;
  int n_storages;
  uint64_t file_size;  // of the archive, bounds what its members can hold
} Reader;

// Reads a whole archive member; NULL (with an error) when absent or unreadable.
static unsigned char *read_member(Reader *r, const char *name, size_t *size, zip_uint64_t limit) {
  zip_stat_t st;
  if (zip_stat(r->zip, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    samx_fail("%s: archive member '%s' is missing", r->path, name);
    return NULL;
  }
  if (st.size > limit) {
    samx_fail("%s: archive member '%s' is implausibly large (%llu bytes)", r->path, name, (unsigned long long)st.size);
    return NULL;
  }
  // The size the directory declares must be what the member's bytes can give (stored: as many;
  // deflate: at most 1032:1) before it is allocated: a damaged directory must not ask for gigabytes.
  if ((st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD) &&
      (st.comp_size > r->file_size ||
       st.size > (st.comp_method == ZIP_CM_STORE ? st.comp_size : st.comp_size * 1032 + 64))) {
    samx_fail("%s: archive member '%s' declares %llu bytes from %llu stored (corrupt zip directory)", r->path, name,
              (unsigned long long)st.size, (unsigned long long)st.comp_size);
    return NULL;
  }
  zip_file_t *f = zip_fopen(r->zip, name, 0);
  unsigned char *buf = (unsigned char *)malloc(st.size + 1);
  zip_int64_t got = f ? zip_fread(f, buf, st.size) : -1;
  // libzip compares the member's CRC-32 only when a read reaches its end: one more read does that, so
  // a flipped byte in stored (uncompressed) tensor data fails here instead of loading silently.
  unsigned char probe;
  zip_int64_t end = got >= 0 && (zip_uint64_t)got == st.size ? zip_fread(f, &probe, 1) : 0;
  int crc_bad = end < 0 && zip_error_code_zip(zip_file_get_error(f)) == ZIP_ER_CRC;
  if (f) zip_fclose(f);
  if (got < 0 || (zip_uint64_t)got != st.size || end != 0) {
    free(buf);
    samx_fail("%s: archive member '%s' is %s", r->path, name,
              crc_bad ? "corrupt (its CRC-32 does not match the archive's record)" : "truncated or corrupt");
    return NULL;
  }
  *size = (size_t)st.size;
  return buf;
}

static int find_prefix(Reader *r) {
  zip_int64_t n = zip_get_num_entries(r->zip, 0);
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(r->zip, (zip_uint64_t)i, 0);
    size_t len = name ? strlen(name) : 0;
    if (len >= 9 && !strcmp(name + len - 9, "/data.pkl") && len - 9 < sizeof r->prefix) {
      memcpy(r->prefix, name, len - 9);
      r->prefix[len - 9] = 0;
      if (!strchr(r->prefix, '/')) return 0;
    }
  }
  return samx_fail("%s: no <archive>/data.pkl inside: not a torch.save checkpoint", r->path);
}

static const Storage *get_storage(Reader *r, const PkValue *s) {
  for (int i = 0; i < r->n_storages; i++)
    if (!strcmp(r->storages[i].key, s->s)) return &r->storages[i];
  char name[1024];
  snprintf(name, sizeof name, "%s/data/%s", r->prefix, s->s);
  size_t size;
  unsigned char *data = read_member(r, name, &size, (zip_uint64_t)1 << 40);
  if (!data) return NULL;
  size_t want = (size_t)s->numel * samx_dtype_size(s->dtype);
  if (size < want) {
    free(data);
    samx_fail("%s: storage '%s' holds %zu bytes, but its header declares %lld %s elements (%zu bytes)", r->path,
              s->s, size, (long long)s->numel, samx_dtype_name(s->dtype), want);
    return NULL;
  }
  r->storages = (Storage *)realloc(r->storages, (size_t)(r->n_storages + 1) * sizeof(Storage));
  Storage *st = &r->storages[r->n_storages++];
  st->key = strdup(s->s);
  st->data = data;
  st->size = size;
  return st;
}

// Copies a strided view into a contiguous buffer after checking that every element lies inside
// the storage.
static int gather(Reader *r, const char *name, const PkValue *t, SamxSTEntry *e) {
  const PkValue *s = t->storage;
  const Storage *st = get_storage(r, s);
  if (!st) return -1;
  int64_t numel = 1, last = t->offset;
  if (t->offset < 0) return samx_fail("%s: tensor '%s' has a negative storage offset", r->path, name);
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0 || t->stride[i] < 0)
      return samx_fail("%s: tensor '%s' has a negative size or stride", r->path, name);
    int64_t span;
    if (__builtin_mul_overflow(numel, t->shape[i], &numel) ||
        (t->shape[i] > 0 && (__builtin_mul_overflow(t->shape[i] - 1, t->stride[i], &span) ||
                             __builtin_add_overflow(last, span, &last))))
      return samx_fail("%s: tensor '%s' has a size or stride too large to index", r->path, name);
  }
  // The storage is cached by key: a later reference may declare another size or dtype than the one
  // that was checked when it was read, so the bound is what its bytes hold, in this view's dtype.
  size_t es = samx_dtype_size(t->dtype);
  int64_t have = (int64_t)(st->size / es);
  if (numel > 0 && (last >= s->numel || last >= have))
    return samx_fail("%s: tensor '%s' reads element %lld of storage '%s', which has %lld (offset %lld out of range)",
                     r->path, name, (long long)last, s->s, (long long)(s->numel < have ? s->numel : have),
                     (long long)t->offset);
  // Overlapping views (expand, as_strided) could ask for far more memory than the file holds.
  if (numel > have)
    return samx_fail("%s: tensor '%s' is a view of %lld elements over storage '%s' of %lld (overlapping strides: "
                     "re-save it with .contiguous())", r->path, name, (long long)numel, s->s, (long long)have);
  unsigned char *out = (unsigned char *)malloc((size_t)numel * es + 1);
  int64_t idx[SAMX_MAX_DIMS] = {0};
  for (int64_t k = 0; k < numel; k++) {
    int64_t src = t->offset;
    for (int i = 0; i < t->ndim; i++) src += idx[i] * t->stride[i];
    memcpy(out + (size_t)k * es, st->data + (size_t)src * es, es);
    for (int i = t->ndim - 1; i >= 0; i--) {
      if (++idx[i] < t->shape[i]) break;
      idx[i] = 0;
    }
  }
  e->name = strdup(name);
  e->dtype = t->dtype;
  e->ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++) e->shape[i] = t->shape[i];
  e->numel = numel;
  e->data = out;
  e->nbytes = (size_t)numel * es;
  return 0;
}

static const char *type_name(PkType t) {
  static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                "global", "storage", "tensor", "mark"};
  return names[t];
}

static int add_entry(Reader *r, SamxTorchCkpt *ck, int *cap, const char *name, const PkValue *v) {
  for (int j = 0; j < ck->n; j++)
    if (!strcmp(ck->entries[j].name, name)) return samx_fail("%s: entry '%s' appears twice", r->path, name);
  if (ck->n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    ck->entries = (SamxSTEntry *)realloc(ck->entries, sizeof(SamxSTEntry) * (size_t)*cap);
  }
  memset(&ck->entries[ck->n], 0, sizeof ck->entries[ck->n]);
  if (gather(r, name, v, &ck->entries[ck->n]) != 0) return -1;
  ck->n++;
  return 0;
}

// Every tensor of dict; a value that is itself a dict of tensors (P²SAM's final_weights.pth:
// {"epoch_10": state_dict, ...}) contributes its entries as "key/inner".
static int collect(Reader *r, const PkValue *dict, const char *prefix, SamxTorchCkpt *ck, int *cap) {
  for (int i = 0; i + 1 < dict->n; i += 2) {
    const PkValue *k = dict->items[i], *v = dict->items[i + 1];
    if (k->type != PK_STR) return samx_fail("%s: state dict has a non-string key", r->path);
    char name[1024];
    snprintf(name, sizeof name, "%s%s", prefix, k->s);
    if (v->type == PK_DICT && !prefix[0]) {
      char sub[1100];
      snprintf(sub, sizeof sub, "%s/", name);
      if (collect(r, v, sub, ck, cap) != 0) return -1;
      continue;
    }
    if (v->type != PK_TENSOR)
      return samx_fail("%s: entry '%s' is a %s, not a tensor", r->path, name, type_name(v->type));
    if (add_entry(r, ck, cap, name, v) != 0) return -1;
  }
  return 0;
}

int samx_torch_load(SamxTorchCkpt *ck, const char *path) {
  memset(ck, 0, sizeof *ck);
  ck->path = strdup(path);
  Reader r = {.path = path};
  struct stat sb;
  r.file_size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  int err = 0;
  r.zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!r.zip) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    samx_fail("%s: not a readable torch.save zip archive (%s)%s", path, zip_error_strerror(&ze),
              err == ZIP_ER_NOZIP ? " (HINT: legacy non-zip .pth files: re-save with torch >= 1.6)" : "");
    zip_error_fini(&ze);
    samx_torch_free(ck);
    return -1;
  }
  int rc = find_prefix(&r);
  size_t pk_size = 0;
  unsigned char *pk = NULL;
  PkArena *arena = NULL;
  PkValue *root = NULL;
  char what[1100];
  if (rc == 0) {
    char name[600];
    snprintf(name, sizeof name, "%s/data.pkl", r.prefix);
    snprintf(what, sizeof what, "%s: %s", path, name);
    pk = read_member(&r, name, &pk_size, MAX_PICKLE_BYTES);
    rc = pk ? samx_pickle_load(pk, pk_size, what, &arena, &root) : -1;
  }
  if (rc == 0) {
    char bo[16] = {0};
    char name[600];
    snprintf(name, sizeof name, "%s/byteorder", r.prefix);
    if (zip_name_locate(r.zip, name, 0) >= 0) {
      size_t n;
      unsigned char *b = read_member(&r, name, &n, 16);
      if (b) memcpy(bo, b, n < 15 ? n : 15), free(b);
      if (strncmp(bo, "little", 6)) rc = samx_fail("%s: big-endian checkpoints are not supported", path);
    }
  }
  if (rc == 0) {
    const PkValue *sd = root;
    if (root->type == PK_DICT) {
      const PkValue *nested = samx_pickle_get(root, "model");
      if (!nested || nested->type != PK_DICT) nested = samx_pickle_get(root, "state_dict");
      if (nested && nested->type == PK_DICT) sd = nested;
    }
    int cap = 0;
    if (sd->type == PK_TENSOR)  // a bare tensor (P²SAM's *_mask_weights_epoch_N.pt): one entry named ""
      rc = add_entry(&r, ck, &cap, "", sd);
    else if (sd->type != PK_DICT)
      rc = samx_fail("%s: the pickle holds a %s, not a state dict", path, type_name(sd->type));
    else
      rc = collect(&r, sd, "", ck, &cap);
  }
  samx_pickle_free(arena);
  free(pk);
  for (int i = 0; i < r.n_storages; i++) free(r.storages[i].key), free(r.storages[i].data);
  free(r.storages);
  zip_discard(r.zip);
  if (rc != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", samx_last_error());
    samx_torch_free(ck);
    return samx_fail("%s", msg);
  }
  return 0;
}

void samx_torch_free(SamxTorchCkpt *ck) {
  for (int i = 0; i < ck->n; i++) free(ck->entries[i].name), free((void *)ck->entries[i].data);
  free(ck->entries);
  free(ck->path);
  memset(ck, 0, sizeof *ck);
}

const SamxSTEntry *samx_torch_find(const SamxTorchCkpt *ck, const char *name) {
  for (int i = 0; i < ck->n; i++)
    if (!strcmp(ck->entries[i].name, name)) return &ck->entries[i];
  return NULL;
}
