// A restricted unpickler: enough of the pickle virtual machine (protocols 2-5) to read PyTorch
// state dicts (torch.save) and dicts of numpy arrays (protocols 2-4), and nothing more. It never executes code: a
// GLOBAL is only a name, and only the names in an explicit allow-list may be called by REDUCE,
// each interpreted by C code here. Every read is bounds-checked; malformed input is an error.
#ifndef SAMX_PICKLE_H
#define SAMX_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST, PK_DICT,
  PK_GLOBAL,   // an allowed callable, by name
  PK_STORAGE,  // torch persistent storage reference: key, dtype, numel
  PK_TENSOR,   // torch tensor view into a storage
  PK_NPDTYPE,  // numpy dtype of a plain number type: np_kind, np_itemsize
  PK_NDARRAY,  // numpy array: np_kind, np_itemsize, ndim, shape; s/len its elements, C order, native byte order
  PK_MARK
} PkType;

typedef struct PkValue PkValue;
struct PkValue {
  PkType type;
  int64_t i;     // INT, BOOL
  double f;      // FLOAT
  char *s;       // STR (NUL-terminated), BYTES, GLOBAL ("module.name"), STORAGE key
  size_t len;    // STR/BYTES length
  PkValue **items;  // TUPLE, LIST: items; DICT: keys and values interleaved
  int n;            // number of items (DICT: 2 * pairs)
  int cap;
  // STORAGE / TENSOR
  SamxDType dtype;
  int64_t numel;           // STORAGE: elements
  PkValue *storage;        // TENSOR
  int64_t offset;          // TENSOR: element offset into the storage
  int ndim;
  int64_t shape[SAMX_MAX_DIMS], stride[SAMX_MAX_DIMS];
  // NPDTYPE / NDARRAY: numpy's kind ('f' float, 'i' signed, 'u' unsigned, 'b' bool) and element size.
  char np_kind;
  int np_itemsize;
  int np_big_endian;  // NPDTYPE: elements stored big-endian in the pickle (swapped when an array is built)
};

typedef struct PkArena PkArena;

// Parses a pickle; *out is owned by *arena (free with samx_pickle_free). `what` names the source in
// error messages. Returns 0 or -1 with samx_last_error().
int samx_pickle_load(const unsigned char *data, size_t n, const char *what, PkArena **arena, PkValue **out);
void samx_pickle_free(PkArena *arena);
// DICT lookup by string key; NULL when absent or not a dict.
PkValue *samx_pickle_get(const PkValue *dict, const char *key);
// Element i of a numeric NDARRAY as a double (bool as 0/1).
double samx_pickle_array_get(const PkValue *a, int64_t i);
// Elements of an NDARRAY (product of its shape).
int64_t samx_pickle_array_numel(const PkValue *a);

#ifdef __cplusplus
}
#endif
#endif
