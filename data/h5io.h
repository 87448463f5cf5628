// HDF5 helpers shared by the dataset and prediction files (internal to samx_data).
// Every function that can fail sets samx_last_error naming the file (and dataset or attribute).
#ifndef SAMX_DATA_H5IO_H
#define SAMX_DATA_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SAMX_H5_U8, SAMX_H5_F32, SAMX_H5_I64, SAMX_H5_STR, SAMX_H5_OTHER } SamxH5Kind;

// Turns off HDF5's own error printing (once per process): samx reports errors itself.
void samx_h5_quiet(void);
// The innermost message on HDF5's error stack ("" when empty).
const char *samx_h5_last_message(char *buf, size_t n);

// Opens path read-only, with clear messages for a missing file, a non-HDF5 file and a locking failure.
hid_t samx_h5_open_read(const char *path);
// Creates (truncates) path for writing.
hid_t samx_h5_create(const char *path);

SamxH5Kind samx_h5_kind(hid_t type);
// "uint8", "float32", "int64", "string", "float64", "int16" ...
const char *samx_h5_type_name(hid_t type, char *buf, size_t n);

// Attributes on obj (a file or dataset). path is for messages.
int samx_h5_write_attr_string(hid_t obj, const char *name, const char *value);
int samx_h5_write_attr_strings(hid_t obj, const char *name, const char *const *values, int n);
int samx_h5_write_attr_int(hid_t obj, const char *name, int64_t value);
int samx_h5_write_attr_double(hid_t obj, const char *name, double value);
int samx_h5_write_attr_floats(hid_t obj, const char *name, const float *values, int n);
// Reads a string attribute holding exactly n strings (n = 1: scalar or [1]); out[i] are malloc'd.
int samx_h5_read_attr_strings(hid_t obj, const char *path, const char *name, int n, char **out);
int samx_h5_read_attr_int(hid_t obj, const char *path, const char *name, int64_t *out);
int samx_h5_read_attr_floats(hid_t obj, const char *path, const char *name, int n, float *out);
// Any attribute as text (strings, numbers, arrays joined with ", "). Returns 0 or -1.
int samx_h5_attr_text(hid_t obj, const char *name, char *buf, size_t n);
// Checks the root attributes schema == want_schema and version == want_version.
int samx_h5_check_schema(hid_t file, const char *path, const char *want_schema, int64_t want_version);

// Opens dataset name and checks its rank is within [rank_lo, rank_hi]; fills dims, rank and kind.
hid_t samx_h5_open_dataset(hid_t file, const char *path, const char *name, int rank_lo, int rank_hi,
                           int64_t *dims, int *rank, SamxH5Kind *kind);
// Fails with "path: dataset name has dtype X, expected Y" unless kind is want (or want2, if not OTHER).
int samx_h5_expect_kind(hid_t ds, const char *path, const char *name, SamxH5Kind want, SamxH5Kind want2);

// Row-appendable dataset: dims {0, row_dims...}, unlimited first dimension, chunk_rows rows per chunk,
// gzip level (0: none).
hid_t samx_h5_create_rows(hid_t file, const char *path, const char *name, hid_t filetype, int rank,
                          const int64_t *row_dims, int64_t chunk_rows, int gzip);
// Writes count rows of memtype at row `at`, growing the dataset as needed.
int samx_h5_write_rows(hid_t ds, const char *path, const char *name, hid_t memtype, int64_t at, int64_t count,
                       const void *buf);
// Reads count rows starting at row `at` into buf (memtype).
int samx_h5_read_rows(hid_t ds, const char *path, const char *name, hid_t memtype, int64_t at, int64_t count,
                      void *buf);
// Reads n strings (fixed or variable length) of a 1-D string dataset; out[i] malloc'd.
int samx_h5_read_strings(hid_t ds, const char *path, const char *name, int64_t n, char **out);
// Variable-length UTF-8 string type (caller closes).
hid_t samx_h5_vlen_string(void);

#endif
