#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "error.h"

void samx_arena_init(SamxArena *a, const char *name, SamxDevice device, size_t bytes, size_t meta_bytes) {
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  a->device = device;
  a->capacity = bytes;
  a->base = bytes ? (char *)samx_dev_malloc(device, bytes) : NULL;
  a->meta_capacity = meta_bytes;
  a->meta = meta_bytes ? (char *)samx_dev_malloc(samx_cpu(), meta_bytes) : NULL;
}

void samx_arena_free(SamxArena *a) {
  samx_dev_free(a->device, a->base);
  samx_dev_free(samx_cpu(), a->meta);
  memset(a, 0, sizeof *a);
}

void *samx_arena_alloc(SamxArena *a, size_t bytes) {
  size_t start = (a->used + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1);
  if (start + bytes > a->capacity)
    SAMX_DIE("arena '%s' is full: %zu bytes asked, %zu of %zu used (HINT: raise its size; the startup "
             "memory table shows the peak of a previous run)",
             a->name, bytes, a->used, a->capacity);
  a->used = start + bytes;
  if (a->used > a->peak) a->peak = a->used;
  return a->base + start;
}

void *samx_arena_meta(SamxArena *a, size_t bytes) {
  size_t start = (a->meta_used + 15) & ~(size_t)15;
  if (start + bytes > a->meta_capacity)
    SAMX_DIE("arena '%s': header space is full (%zu bytes)", a->name, a->meta_capacity);
  a->meta_used = start + bytes;
  memset(a->meta + start, 0, bytes);
  return a->meta + start;
}

void samx_arena_reset(SamxArena *a) {
  a->used = 0;
  a->meta_used = 0;
}

void samx_arena_table(SamxArena *const *arenas, int n, FILE *f) {
  fprintf(f, "| arena | device | capacity MiB | peak MiB |\n|---|---|---:|---:|\n");
  double total = 0;
  for (int i = 0; i < n; i++) {
    char dev[32];
    const SamxArena *a = arenas[i];
    fprintf(f, "| %s | %s | %.1f | %.1f |\n", a->name, samx_device_str(a->device, dev, sizeof dev),
            a->capacity / 1048576.0, a->peak / 1048576.0);
    total += (double)a->capacity;
  }
  fprintf(f, "| total | | %.1f | |\n", total / 1048576.0);
}
