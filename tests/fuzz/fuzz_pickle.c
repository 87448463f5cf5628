// The restricted unpickler (engine/pickle.c) on raw bytes: every value it returns is walked the way
// the checkpoint loader and the LIDC packer read them (dict lookups, array elements).
#include <stdint.h>

#include "common.h"
#include "engine/pickle.h"

// Shared references (memo GETs) make the value a DAG: the walk visits at most `budget` nodes.
static int64_t budget;

static double walk(const PkValue *v, int depth) {
  if (!v || depth > 64 || --budget < 0) return 0;
  double acc = 0;
  switch (v->type) {
    case PK_TUPLE: case PK_LIST: case PK_DICT:
      for (int i = 0; i < v->n; i++) acc += walk(v->items[i], depth + 1);
      if (v->type == PK_DICT) acc += samx_pickle_get(v, "image") != NULL;
      break;
    case PK_NDARRAY: {
      int64_t n = samx_pickle_array_numel(v);
      for (int64_t i = 0; i < n && i < 4096; i++) acc += samx_pickle_array_get(v, i);
      if (n > 0) acc += samx_pickle_array_get(v, n - 1);
      break;
    }
    case PK_TENSOR: acc += walk(v->storage, depth + 1); break;
    case PK_STR: case PK_BYTES: acc += v->len ? (unsigned char)v->s[v->len - 1] : 0; break;
    default: break;
  }
  return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  PkArena *arena = NULL;
  PkValue *root = NULL;
  budget = 1 << 16;
  if (samx_pickle_load(data, n, "fuzz.pkl", &arena, &root) == 0) {
    volatile double sink = walk(root, 0);
    (void)sink;
  }
  samx_pickle_free(arena);
  return 0;
}
