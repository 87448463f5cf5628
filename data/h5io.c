#include "h5io.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h"

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
void samx_h5_quiet(void) { pthread_once(&quiet_once, quiet_init); }

typedef struct {
  char *buf;
  size_t n;
  int has_lock, truncated;
} ErrWalk;

// Walked from the API call down to the innermost failure: the last description seen is the most specific.
static herr_t err_walk(unsigned depth, const H5E_error2_t *e, void *user) {
  ErrWalk *w = (ErrWalk *)user;
  if (e->desc) {
    snprintf(w->buf, w->n, "%s", e->desc);
    // Only the flock failure itself: the stack of a truncated file also passes through functions that
    // mention locks ("unable to lock the file" wrappers), which must not read as a locking problem.
    if (strstr(e->desc, "unable to lock file") || strstr(e->desc, "file locking")) w->has_lock = 1;
    if (strstr(e->desc, "truncated file")) w->truncated = 1;
  }
  return 0;
}

static ErrWalk walk_errors(char *buf, size_t n) {
  ErrWalk w = {buf, n, 0, 0};
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, err_walk, &w);
  return w;
}

const char *samx_h5_last_message(char *buf, size_t n) {
  walk_errors(buf, n);
  return buf;
}

hid_t samx_h5_open_read(const char *path) {
  samx_h5_quiet();
  struct stat st;
  if (stat(path, &st) != 0) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  htri_t is = H5Fis_hdf5(path);
  if (is == 0) return samx_fail("%s: not an HDF5 file", path);
  hid_t f = is > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : H5I_INVALID_HID;
  if (f < 0) {
    char msg[256];
    ErrWalk w = walk_errors(msg, sizeof msg);
    if (w.truncated)
      return samx_fail("%s: the HDF5 file is truncated (%lld bytes; HDF5 says: %s): an interrupted copy or "
                       "download? copy it again",
                       path, (long long)st.st_size, msg);
    // HDF5 says "unable to lock file, errno = 37/11/524 ..." when the filesystem refuses flock.
    if (w.has_lock && !w.truncated)
      return samx_fail("%s: cannot open: file locking failed (%s); on NFS, Lustre or GPFS set "
                       "HDF5_USE_FILE_LOCKING=FALSE in the environment",
                       path, msg);
    return samx_fail("%s: cannot open as HDF5: %s", path, msg[0] ? msg : "unknown error");
  }
  return f;
}

hid_t samx_h5_create(const char *path) {
  samx_h5_quiet();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    char msg[256];
    ErrWalk w = walk_errors(msg, sizeof msg);
    return samx_fail("%s: cannot create HDF5 file: %s%s", path, msg,
                     w.has_lock ? " (on NFS, Lustre or GPFS set HDF5_USE_FILE_LOCKING=FALSE)" : "");
  }
  return f;
}

SamxH5Kind samx_h5_kind(hid_t type) {
  H5T_class_t c = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (c == H5T_STRING) return SAMX_H5_STR;
  if (c == H5T_INTEGER && size == 1 && H5Tget_sign(type) == H5T_SGN_NONE) return SAMX_H5_U8;
  if (c == H5T_INTEGER && size == 8 && H5Tget_sign(type) == H5T_SGN_2) return SAMX_H5_I64;
  if (c == H5T_FLOAT && size == 4) return SAMX_H5_F32;
  return SAMX_H5_OTHER;
}

const char *samx_h5_type_name(hid_t type, char *buf, size_t n) {
  H5T_class_t c = H5Tget_class(type);
  size_t bits = H5Tget_size(type) * 8;
  if (c == H5T_STRING)
    snprintf(buf, n, "string");
  else if (c == H5T_INTEGER)
    snprintf(buf, n, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
  else if (c == H5T_FLOAT)
    snprintf(buf, n, "float%zu", bits);
  else if (c == H5T_COMPOUND)
    snprintf(buf, n, "compound");
  else
    snprintf(buf, n, "HDF5 type class %d", (int)c);
  return buf;
}

static const char *kind_name(SamxH5Kind k) {
  static const char *names[] = {"uint8", "float32", "int64", "string", "?"};
  return names[k];
}

hid_t samx_h5_vlen_string(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// Creates attribute name (replacing an existing one) and writes buf.
static int write_attr(hid_t obj, const char *name, hid_t type, hid_t memtype, int rank, hsize_t count,
                      const void *buf) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, NULL);
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, memtype, buf);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  if (rc < 0) return samx_fail("cannot write HDF5 attribute %s", name);
  return 0;
}

int samx_h5_write_attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = samx_h5_vlen_string();
  int rc = write_attr(obj, name, t, t, 0, 1, &value);
  H5Tclose(t);
  return rc;
}

int samx_h5_write_attr_strings(hid_t obj, const char *name, const char *const *values, int n) {
  hid_t t = samx_h5_vlen_string();
  int rc = write_attr(obj, name, t, t, 1, (hsize_t)n, values);
  H5Tclose(t);
  return rc;
}

int samx_h5_write_attr_int(hid_t obj, const char *name, int64_t value) {
  return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, 1, &value);
}

int samx_h5_write_attr_double(hid_t obj, const char *name, double value) {
  return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, 1, &value);
}

int samx_h5_write_attr_floats(hid_t obj, const char *name, const float *values, int n) {
  return write_attr(obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, (hsize_t)n, values);
}

// Opens attribute name and checks it holds n values; returns the attribute or -1.
static hid_t open_attr(hid_t obj, const char *path, const char *name, int n, hid_t *type) {
  if (H5Aexists(obj, name) <= 0) return samx_fail("%s: attribute %s is missing", path, name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return samx_fail("%s: cannot open attribute %s", path, name);
  hid_t space = H5Aget_space(a);
  hssize_t count = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  if (count != n) {
    H5Aclose(a);
    return samx_fail("%s: attribute %s holds %lld values, expected %d", path, name, (long long)count, n);
  }
  *type = H5Aget_type(a);
  return a;
}

// Reads n strings, fixed or variable length, from an attribute (is_attr) or a dataset.
static int read_strings(hid_t obj, int is_attr, hid_t type, int64_t n, char **out) {
  int rc = 0;
  for (int64_t i = 0; i < n; i++) out[i] = NULL;
  if (n == 0) return 0;
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_cset(mt, H5Tget_cset(type));
  if (H5Tis_variable_str(type) > 0) {
    H5Tset_size(mt, H5T_VARIABLE);
    char **tmp = (char **)calloc((size_t)n, sizeof *tmp);
    rc = is_attr ? H5Aread(obj, mt, tmp) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
    for (int64_t i = 0; i < n; i++) {
      if (rc >= 0) out[i] = strdup(tmp[i] ? tmp[i] : "");
      if (tmp[i]) H5free_memory(tmp[i]);
    }
    free(tmp);
  } else {
    size_t size = H5Tget_size(type);
    H5Tset_size(mt, size);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    char *tmp = (char *)calloc((size_t)n, size);
    rc = is_attr ? H5Aread(obj, mt, tmp) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
    for (int64_t i = 0; i < n && rc >= 0; i++) out[i] = strndup(tmp + (size_t)i * size, size);
    free(tmp);
  }
  H5Tclose(mt);
  return rc < 0 ? -1 : 0;
}

int samx_h5_read_attr_strings(hid_t obj, const char *path, const char *name, int n, char **out) {
  hid_t type;
  hid_t a = open_attr(obj, path, name, n, &type);
  if (a < 0) return -1;
  int rc;
  if (H5Tget_class(type) != H5T_STRING) {
    char tn[64];
    rc = samx_fail("%s: attribute %s has type %s, expected string", path, name, samx_h5_type_name(type, tn, sizeof tn));
  } else {
    rc = read_strings(a, 1, type, n, out);
    if (rc < 0) samx_fail("%s: cannot read attribute %s", path, name);
  }
  H5Tclose(type);
  H5Aclose(a);
  return rc;
}

int samx_h5_read_attr_int(hid_t obj, const char *path, const char *name, int64_t *out) {
  hid_t type;
  hid_t a = open_attr(obj, path, name, 1, &type);
  if (a < 0) return -1;
  int rc = 0;
  if (H5Tget_class(type) != H5T_INTEGER) {
    char tn[64];
    rc = samx_fail("%s: attribute %s has type %s, expected an integer", path, name,
                   samx_h5_type_name(type, tn, sizeof tn));
  } else if (H5Aread(a, H5T_NATIVE_INT64, out) < 0) {
    rc = samx_fail("%s: cannot read attribute %s", path, name);
  }
  H5Tclose(type);
  H5Aclose(a);
  return rc;
}

int samx_h5_read_attr_floats(hid_t obj, const char *path, const char *name, int n, float *out) {
  hid_t type;
  hid_t a = open_attr(obj, path, name, n, &type);
  if (a < 0) return -1;
  int rc = 0;
  H5T_class_t c = H5Tget_class(type);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    char tn[64];
    rc = samx_fail("%s: attribute %s has type %s, expected numbers", path, name, samx_h5_type_name(type, tn, sizeof tn));
  } else if (H5Aread(a, H5T_NATIVE_FLOAT, out) < 0) {
    rc = samx_fail("%s: cannot read attribute %s", path, name);
  }
  H5Tclose(type);
  H5Aclose(a);
  return rc;
}

int samx_h5_attr_text(hid_t obj, const char *name, char *buf, size_t n) {
  if (n == 0) return -1;
  buf[0] = 0;
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t type = H5Aget_type(a), space = H5Aget_space(a);
  hssize_t count = H5Sget_simple_extent_npoints(space);
  H5T_class_t c = H5Tget_class(type);
  int rc = 0;
  size_t used = 0;
  if (count > 0 && (c == H5T_STRING || c == H5T_INTEGER || c == H5T_FLOAT)) {
    char **s = c == H5T_STRING ? (char **)calloc((size_t)count, sizeof *s) : NULL;
    double *d = c == H5T_STRING ? NULL : (double *)calloc((size_t)count, sizeof *d);
    rc = c == H5T_STRING ? read_strings(a, 1, type, count, s) : (H5Aread(a, H5T_NATIVE_DOUBLE, d) < 0 ? -1 : 0);
    for (hssize_t i = 0; i < count && rc == 0 && used < n; i++) {
      const char *sep = i ? ", " : "";
      if (s)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", sep, s[i]);
      else
        used += (size_t)snprintf(buf + used, n - used, "%s%.10g", sep, d[i]);
    }
    if (s)
      for (hssize_t i = 0; i < count; i++) free(s[i]);
    free(s);
    free(d);
  } else if (count > 0) {
    char tn[64];
    snprintf(buf, n, "(%s)", samx_h5_type_name(type, tn, sizeof tn));
  }
  H5Sclose(space);
  H5Tclose(type);
  H5Aclose(a);
  return rc;
}

int samx_h5_check_schema(hid_t file, const char *path, const char *want_schema, int64_t want_version) {
  char *schema = NULL;
  if (samx_h5_read_attr_strings(file, path, "schema", 1, &schema) != 0)
    return samx_fail("%s (a %s file needs root attribute schema = \"%s\")", samx_last_error(), want_schema,
                     want_schema);
  int bad = strcmp(schema, want_schema) != 0;
  if (bad) samx_fail("%s: root attribute schema is \"%s\", expected \"%s\"", path, schema, want_schema);
  free(schema);
  if (bad) return -1;
  int64_t version;
  if (samx_h5_read_attr_int(file, path, "version", &version) != 0) return -1;
  if (version != want_version)
    return samx_fail("%s: %s version %lld, this samx reads version %lld", path, want_schema, (long long)version,
                     (long long)want_version);
  return 0;
}

hid_t samx_h5_open_dataset(hid_t file, const char *path, const char *name, int rank_lo, int rank_hi,
                           int64_t *dims, int *rank, SamxH5Kind *kind) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return samx_fail("%s: dataset %s is missing", path, name);
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return samx_fail("%s: %s is not a dataset", path, name);
  hid_t space = H5Dget_space(ds);
  int r = H5Sget_simple_extent_ndims(space);
  hsize_t d[H5S_MAX_RANK];
  if (r >= 0) H5Sget_simple_extent_dims(space, d, NULL);
  H5Sclose(space);
  if (r < rank_lo || r > rank_hi) {
    H5Dclose(ds);
    if (rank_lo == rank_hi) return samx_fail("%s: dataset %s has rank %d, expected %d", path, name, r, rank_lo);
    return samx_fail("%s: dataset %s has rank %d, expected %d to %d", path, name, r, rank_lo, rank_hi);
  }
  for (int i = 0; i < r; i++) dims[i] = (int64_t)d[i];
  *rank = r;
  hid_t type = H5Dget_type(ds);
  *kind = samx_h5_kind(type);
  H5Tclose(type);
  return ds;
}

int samx_h5_expect_kind(hid_t ds, const char *path, const char *name, SamxH5Kind want, SamxH5Kind want2) {
  hid_t type = H5Dget_type(ds);
  SamxH5Kind k = samx_h5_kind(type);
  char tn[64];
  samx_h5_type_name(type, tn, sizeof tn);
  H5Tclose(type);
  if (k == want || (want2 != SAMX_H5_OTHER && k == want2)) return 0;
  if (want2 != SAMX_H5_OTHER)
    return samx_fail("%s: dataset %s has dtype %s, expected %s or %s", path, name, tn, kind_name(want),
                     kind_name(want2));
  return samx_fail("%s: dataset %s has dtype %s, expected %s", path, name, tn, kind_name(want));
}

hid_t samx_h5_create_rows(hid_t file, const char *path, const char *name, hid_t filetype, int rank,
                          const int64_t *row_dims, int64_t chunk_rows, int gzip) {
  hsize_t dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
  dims[0] = 0;
  maxdims[0] = H5S_UNLIMITED;
  chunk[0] = (hsize_t)(chunk_rows > 0 ? chunk_rows : 1);
  for (int i = 1; i < rank; i++) {
    dims[i] = maxdims[i] = (hsize_t)row_dims[i - 1];
    chunk[i] = dims[i] > 0 ? dims[i] : 1;
  }
  hid_t space = H5Screate_simple(rank, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, rank, chunk);
  if (gzip > 0 && H5Tget_size(filetype) > 1 && H5Tget_class(filetype) != H5T_STRING)
    H5Pset_shuffle(dcpl);  // byte shuffling lets deflate see the slowly varying high bytes of floats
  if (gzip > 0) H5Pset_deflate(dcpl, (unsigned)gzip);
  hid_t ds = H5Dcreate2(file, name, filetype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(space);
  if (ds < 0) {
    char msg[256];
    return samx_fail("%s: cannot create dataset %s: %s", path, name, samx_h5_last_message(msg, sizeof msg));
  }
  return ds;
}

// Selects rows [at, at+count) of ds's file space (returned) and makes the matching memory space.
static hid_t select_rows(hid_t ds, int64_t at, int64_t count, hid_t *mem) {
  hid_t space = H5Dget_space(ds);
  int rank = H5Sget_simple_extent_ndims(space);
  hsize_t start[H5S_MAX_RANK] = {0}, cnt[H5S_MAX_RANK];
  H5Sget_simple_extent_dims(space, cnt, NULL);
  start[0] = (hsize_t)at;
  cnt[0] = (hsize_t)count;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, cnt, NULL);
  *mem = H5Screate_simple(rank, cnt, NULL);
  return space;
}

int samx_h5_write_rows(hid_t ds, const char *path, const char *name, hid_t memtype, int64_t at, int64_t count,
                       const void *buf) {
  if (count == 0) return 0;
  hid_t space = H5Dget_space(ds);
  hsize_t dims[H5S_MAX_RANK];
  H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  if ((int64_t)dims[0] < at + count) {
    dims[0] = (hsize_t)(at + count);
    if (H5Dset_extent(ds, dims) < 0) return samx_fail("%s: cannot grow dataset %s", path, name);
  }
  hid_t mem;
  space = select_rows(ds, at, count, &mem);
  herr_t rc = H5Dwrite(ds, memtype, mem, space, H5P_DEFAULT, buf);
  H5Sclose(mem);
  H5Sclose(space);
  if (rc < 0) {
    char msg[256];
    return samx_fail("%s: cannot write dataset %s (disk full?): %s", path, name,
                     samx_h5_last_message(msg, sizeof msg));
  }
  return 0;
}

int samx_h5_read_rows(hid_t ds, const char *path, const char *name, hid_t memtype, int64_t at, int64_t count,
                      void *buf) {
  if (count == 0) return 0;
  hid_t mem;
  hid_t space = select_rows(ds, at, count, &mem);
  herr_t rc = H5Dread(ds, memtype, mem, space, H5P_DEFAULT, buf);
  H5Sclose(mem);
  H5Sclose(space);
  if (rc < 0) {
    char msg[256];
    return samx_fail("%s: cannot read rows %lld..%lld of dataset %s (corrupt file?): %s", path, (long long)at,
                     (long long)(at + count - 1), name, samx_h5_last_message(msg, sizeof msg));
  }
  return 0;
}

int samx_h5_read_strings(hid_t ds, const char *path, const char *name, int64_t n, char **out) {
  hid_t type = H5Dget_type(ds);
  int rc = read_strings(ds, 0, type, n, out);
  H5Tclose(type);
  if (rc < 0) return samx_fail("%s: cannot read dataset %s", path, name);
  return 0;
}
