#include <stdio.h>
#include <stdlib.h>
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
  free(a->log);
  memset(a, 0, sizeof *a);
}

void samx_arena_claim(SamxArena *a, size_t start, size_t bytes, int tag) {
  const size_t top = a->log_len ? a->log[a->log_len - 1].start + a->log[a->log_len - 1].bytes : 0;
  SAMX_ASSERT(tag >= 0 && tag <= SAMX_ARENA_RAW && start >= top && start + bytes <= a->capacity,
              "arena '%s': claim of [%zu, %zu) tag %d below its last carving (%zu) or past its end", a->name, start,
              start + bytes, tag, top);
  if (a->log_len == a->log_cap) {
    a->log_cap = a->log_cap ? 2 * a->log_cap : 256;
    a->log = (SamxArenaRecord *)realloc(a->log, a->log_cap * sizeof *a->log);
    SAMX_ASSERT(a->log, "out of host memory for arena '%s''s log", a->name);
  }
  a->log[a->log_len++] = (SamxArenaRecord){start, bytes, tag};
  a->live[tag] += bytes;
  a->used = start + bytes;
  if (a->used > a->peak) {
    a->peak = a->used;
    memcpy(a->at_peak, a->live, sizeof a->live);
  }
}

void *samx_arena_alloc_tagged(SamxArena *a, size_t bytes, int tag) {
  size_t start = (a->used + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1);
  if (start + bytes > a->capacity)
    SAMX_DIE("arena '%s' is full: %zu bytes asked, %zu of %zu used (HINT: raise its size; the "
             "memory table after a run's first step shows what a step takes)",
             a->name, bytes, a->used, a->capacity);
  samx_arena_claim(a, start, bytes, tag);
  return a->base + start;
}

void *samx_arena_alloc(SamxArena *a, size_t bytes) { return samx_arena_alloc_tagged(a, bytes, SAMX_ARENA_RAW); }

void samx_arena_rewind(SamxArena *a, size_t mark) {
  SAMX_ASSERT(mark <= a->used, "arena '%s': rewind to %zu past its use %zu", a->name, mark, a->used);
  while (a->log_len && a->log[a->log_len - 1].start >= mark) {
    const SamxArenaRecord *r = &a->log[--a->log_len];
    a->live[r->tag] -= r->bytes;
  }
  a->used = mark;
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
  samx_arena_rewind(a, 0);
  a->meta_used = 0;
}

// "F32 640.2, BF16 172.1, raw 32.0" (MiB) for the bytes live at an arena's peak, leaving out tags
// under 0.05 MiB unless all are; "-" before any.
static void peak_split(const SamxArena *a, char *out, size_t n) {
  size_t len = 0, big = 0;
  out[0] = 0;
  for (int tag = 0; tag <= SAMX_ARENA_RAW; tag++) big += a->at_peak[tag] >= 52429;
  for (int tag = 0; tag <= SAMX_ARENA_RAW && len < n; tag++)
    if (a->at_peak[tag] && (a->at_peak[tag] >= 52429 || !big))
      len += (size_t)snprintf(out + len, n - len, "%s%s %.1f", len ? ", " : "",
                              tag == SAMX_ARENA_RAW ? "raw" : samx_dtype_name((SamxDType)tag),
                              a->at_peak[tag] / 1048576.0);
  if (!len) snprintf(out, n, "-");
}

void samx_arena_table(SamxArena *const *arenas, int n, FILE *f) {
  fprintf(f, "| arena | device | capacity MiB | peak MiB | at the peak, MiB |\n|---|---|---:|---:|---|\n");
  double total = 0;
  for (int i = 0; i < n; i++) {
    char dev[32], split[160];
    const SamxArena *a = arenas[i];
    peak_split(a, split, sizeof split);
    fprintf(f, "| %s | %s | %.1f | %.1f | %s |\n", a->name, samx_device_str(a->device, dev, sizeof dev),
            a->capacity / 1048576.0, a->peak / 1048576.0, split);
    total += (double)a->capacity;
  }
  fprintf(f, "| total | | %.1f | | |\n", total / 1048576.0);
}

static size_t align_up(size_t v) { return (v + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1); }

void samx_free_list_give(SamxArenaFreeList *f, size_t start, size_t bytes) {
  SAMX_ASSERT(start % SAMX_ARENA_ALIGN == 0, "free list: block at %zu is not aligned", start);
  bytes = align_up(bytes);
  if (!bytes) return;
  int i = 0;
  while (i < f->n && f->b[i].start < start) i++;
  SAMX_ASSERT((i == 0 || f->b[i - 1].start + f->b[i - 1].bytes <= start) &&
                  (i == f->n || start + bytes <= f->b[i].start),
              "free list: block [%zu, %zu) overlaps a free one", start, start + bytes);
  int merge_prev = i > 0 && f->b[i - 1].start + f->b[i - 1].bytes == start;
  int merge_next = i < f->n && start + bytes == f->b[i].start;
  if (merge_prev && merge_next) {
    f->b[i - 1].bytes += bytes + f->b[i].bytes;
    memmove(f->b + i, f->b + i + 1, sizeof *f->b * (size_t)(f->n - i - 1));
    f->n--;
  } else if (merge_prev) {
    f->b[i - 1].bytes += bytes;
  } else if (merge_next) {
    f->b[i].start = start;
    f->b[i].bytes += bytes;
  } else {
    if (f->n == f->cap) {
      f->cap = f->cap ? 2 * f->cap : 64;
      f->b = (SamxArenaBlock *)realloc(f->b, sizeof *f->b * (size_t)f->cap);
      SAMX_ASSERT(f->b, "free list: out of host memory for %d blocks", f->cap);
    }
    memmove(f->b + i + 1, f->b + i, sizeof *f->b * (size_t)(f->n - i));
    f->b[i] = (SamxArenaBlock){start, bytes};
    f->n++;
  }
}

int samx_free_list_take(SamxArenaFreeList *f, size_t bytes, size_t *start) {
  bytes = align_up(bytes ? bytes : 1);
  int best = -1;
  for (int i = 0; i < f->n; i++)
    if (f->b[i].bytes >= bytes && (best < 0 || f->b[i].bytes < f->b[best].bytes)) best = i;
  if (best < 0) return 0;
  *start = f->b[best].start;
  f->b[best].start += bytes;
  f->b[best].bytes -= bytes;
  if (!f->b[best].bytes) {
    memmove(f->b + best, f->b + best + 1, sizeof *f->b * (size_t)(f->n - best - 1));
    f->n--;
  }
  return 1;
}

void samx_free_list_free(SamxArenaFreeList *f) {
  free(f->b);
  memset(f, 0, sizeof *f);
}
