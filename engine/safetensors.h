// safetensors reading (mmap, fully validated header) and atomic writing.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// optional "__metadata__" (string -> string), then the data block.
#ifndef SAMX_SAFETENSORS_H
#define SAMX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char *name;
  SamxDType dtype;
  int ndim;
  int64_t shape[SAMX_MAX_DIMS];
  int64_t numel;
  const void *data;  // inside the mapping
  size_t nbytes;
} SamxSTEntry;

typedef struct {
  char *path;
  SamxSTEntry *entries;
  int n;
  char **meta_keys, **meta_values;
  int n_meta;
  void *map;
  size_t map_size;
} SamxSafetensors;

// Opens and validates path. Returns 0, or -1 with samx_last_error() naming the file and the
// tensor or field at fault (truncated file, bad JSON, duplicate names, unknown dtype, offsets out
// of range or overlapping, byte size != dtype size x shape product).
int samx_st_open(SamxSafetensors *st, const char *path);
void samx_st_close(SamxSafetensors *st);
const SamxSTEntry *samx_st_find(const SamxSafetensors *st, const char *name);
// NULL when absent.
const char *samx_st_meta(const SamxSafetensors *st, const char *key);
// The entry converted to f32 (malloc'd; caller frees).
float *samx_st_to_f32(const SamxSTEntry *e);
// Copies the entry into tensor t (same numel; converts F32/F16/BF16 into t's float dtype).
// Returns -1 with a message naming the tensor when the shapes differ.
int samx_st_load_into(const SamxSafetensors *st, const SamxSTEntry *e, SamxTensor *t);

typedef struct SamxSTWriter SamxSTWriter;
SamxSTWriter *samx_st_writer_new(void);
// Adds a tensor; host data is copied at add time (tensors on a GPU: use samx_st_writer_add_tensor).
void samx_st_writer_add(SamxSTWriter *w, const char *name, SamxDType dt, int ndim, const int64_t *shape,
                        const void *host_data);
void samx_st_writer_add_tensor(SamxSTWriter *w, const char *name, const SamxTensor *t);
void samx_st_writer_meta(SamxSTWriter *w, const char *key, const char *value);
// Writes atomically (tmp + fsync + rename). Returns 0 or -1.
int samx_st_writer_save(SamxSTWriter *w, const char *path);
void samx_st_writer_free(SamxSTWriter *w);

#ifdef __cplusplus
}
#endif
#endif
