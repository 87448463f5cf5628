// Memory arenas: one allocation up front, bump-pointer carving, reset between steps.
// Parameters, gradients, optimizer state and activations each live in their own arena so that
// nothing is allocated inside a training step and the startup memory table is exact.
#ifndef SAMX_ARENA_H
#define SAMX_ARENA_H

#include <stddef.h>
#include <stdio.h>

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_ARENA_ALIGN 256

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
} SamxArena;

void samx_arena_init(SamxArena *a, const char *name, SamxDevice device, size_t bytes, size_t meta_bytes);
void samx_arena_free(SamxArena *a);
// Device memory, aligned to SAMX_ARENA_ALIGN; aborts with the arena's name and sizes when full.
void *samx_arena_alloc(SamxArena *a, size_t bytes);
// Zeroed host memory for headers and small records.
void *samx_arena_meta(SamxArena *a, size_t bytes);
void samx_arena_reset(SamxArena *a);

// Prints a table of arenas (name, device, capacity, peak use) to f.
void samx_arena_table(SamxArena *const *arenas, int n, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
