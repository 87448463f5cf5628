// Memory arenas: one allocation up front, bump-pointer carving, reset between steps.
// Parameters, gradients, optimizer state and activations each live in their own arena so that
// nothing is allocated inside a training step and the startup memory table is exact.
#ifndef SAMX_ARENA_H
#define SAMX_ARENA_H

#include <stddef.h>
#include <stdio.h>

#include "device.h"
#include "dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_ARENA_ALIGN 256
// The tag of raw allocations (workspaces, staging): what is not a tensor of some dtype.
#define SAMX_ARENA_RAW SAMX_DTYPE_COUNT

// One carving, for the bytes-by-dtype accounting: where it starts, its size and its tag.
typedef struct {
  size_t start, bytes;
  int tag;
} SamxArenaRecord;

typedef struct {
  char name[32];
  SamxDevice device;
  char *base;        // device memory
  size_t capacity;   // bytes
  size_t used;       // bytes carved so far
  size_t peak;       // high-water mark across resets
  // Host-side bookkeeping (tensor headers) lives in a growable-free host block of its own.
  char *meta;
  size_t meta_capacity, meta_used;
  // Live bytes by tag (a SamxDType, or SAMX_ARENA_RAW) and their split when `peak` was reached, kept
  // through a log of the carvings since the last reset that a rewind pops.
  size_t live[SAMX_DTYPE_COUNT + 1], at_peak[SAMX_DTYPE_COUNT + 1];
  SamxArenaRecord *log;
  size_t log_len, log_cap;
} SamxArena;

void samx_arena_init(SamxArena *a, const char *name, SamxDevice device, size_t bytes, size_t meta_bytes);
void samx_arena_free(SamxArena *a);
// Device memory, aligned to SAMX_ARENA_ALIGN; aborts with the arena's name and sizes when full.
// samx_arena_alloc counts the bytes as raw; _tagged as a tensor of dtype tag.
void *samx_arena_alloc(SamxArena *a, size_t bytes);
void *samx_arena_alloc_tagged(SamxArena *a, size_t bytes, int tag);
// Hands back everything carved at or above offset mark (a value `used` had): used = mark.
void samx_arena_rewind(SamxArena *a, size_t mark);
// Counts bytes [start, start + bytes) as carved with tag, used = their end (for arenas laid out by
// hand, and for a tensor moved down over a rewound region).
void samx_arena_claim(SamxArena *a, size_t start, size_t bytes, int tag);
// Zeroed host memory for headers and small records.
void *samx_arena_meta(SamxArena *a, size_t bytes);
void samx_arena_reset(SamxArena *a);

// Dead blocks inside an arena's carved part, as offsets from its base, sorted by address with
// neighbours merged: a scope that knows when its tensors die (samx_backward, for activation gradients)
// carves later tensors from their bytes instead of growing `used`. The blocks stay counted as carved.
// A rewind below a block would hand its bytes out twice: clear the list before one.
typedef struct {
  size_t start, bytes;
} SamxArenaBlock;

typedef struct {
  SamxArenaBlock *b;
  int n, cap;
} SamxArenaFreeList;

// Adds [start, start + bytes) (bytes rounded up to SAMX_ARENA_ALIGN, start aligned to it).
void samx_free_list_give(SamxArenaFreeList *f, size_t start, size_t bytes);
// The smallest block that holds bytes (rounded up to SAMX_ARENA_ALIGN): its start in *start and 1, its
// rest staying in the list; 0 when none does.
int samx_free_list_take(SamxArenaFreeList *f, size_t bytes, size_t *start);
void samx_free_list_free(SamxArenaFreeList *f);

// Prints a table of arenas (name, device, capacity, peak use, and what the bytes at the peak were by
// dtype) to f.
void samx_arena_table(SamxArena *const *arenas, int n, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
