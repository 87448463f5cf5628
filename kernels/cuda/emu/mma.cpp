// The collective bodies of the emulator's nvcuda::wmma (mma.h): each runs once per warp call, in
// the last lane to arrive, with every lane's arguments; it checks the documented contract and moves
// the tile between memory and the 32 lanes' fragments through the scrambled element mapping.
#include "mma.h"

#include <stdio.h>

#include <random>

namespace samx_emu {
namespace wmma_impl {

namespace {

struct Maps {
  unsigned short slot[KINDS][256];
  Maps() {
    // A fixed permutation per fragment kind (seeded by the kind, so runs are reproducible).
    for (int k = 0; k < KINDS; k++) {
      std::mt19937 rng(0x5a3d + 7919u * (unsigned)k);
      for (int p = 0; p < 256; p++) slot[k][p] = (unsigned short)p;
      for (int p = 255; p > 0; p--) {
        int j = (int)(rng() % (unsigned)(p + 1));
        unsigned short t = slot[k][p];
        slot[k][p] = slot[k][j], slot[k][j] = t;
      }
    }
  }
};

const Maps &maps() {
  static const Maps m;
  return m;
}

bool is_acc(int kind) { return kind == ACC; }
size_t elem_bytes(int kind) { return is_acc(kind) ? 4 : 2; }

// Whether tile position (r, c) lies at mptr[r * ldm + c] (row-major) or mptr[c * ldm + r].
bool row_major_mem(const Lane &l) {
  if (is_acc(l.kind)) return !l.col_major;
  return l.kind == A_ROW || l.kind == B_ROW;
}

char g_err[256];

// The arguments every lane must agree on, and the documented alignment of mptr and ldm.
const char *check_mem_args(void *const lanes[32]) {
  const Lane &l0 = *(const Lane *)lanes[0];
  for (int i = 1; i < 32; i++) {
    const Lane &li = *(const Lane *)lanes[i];
    if (li.ptr != l0.ptr || li.ldm != l0.ldm || li.col_major != l0.col_major) {
      snprintf(g_err, sizeof g_err, "lanes disagree: lane 0 passes mptr %p, ldm %u, layout %d, lane %d mptr %p, "
               "ldm %u, layout %d (all lanes of the warp must pass the same)", l0.ptr, l0.ldm, l0.col_major, i,
               li.ptr, li.ldm, li.col_major);
      return g_err;
    }
  }
  if ((uintptr_t)l0.ptr % 32) {
    snprintf(g_err, sizeof g_err, "mptr %p is not 256-bit (32-byte) aligned", l0.ptr);
    return g_err;
  }
  const size_t eb = elem_bytes(l0.kind);
  if ((l0.ldm * eb) % 16) {
    snprintf(g_err, sizeof g_err, "ldm %u is not a multiple of %zu %s elements (16 bytes)", l0.ldm, 16 / eb,
             eb == 2 ? "__nv_bfloat16" : "float");
    return g_err;
  }
  return nullptr;
}

// Element (r, c) of the tile in memory, as its byte offset from mptr.
size_t mem_offset(const Lane &l, int r, int c) {
  size_t e = row_major_mem(l) ? (size_t)r * l.ldm + c : (size_t)c * l.ldm + r;
  return e * elem_bytes(l.kind);
}

void copy_elem(void *dst, const void *src, int kind) { memcpy(dst, src, elem_bytes(kind)); }

// Tile position p's element inside lane data frag array, in fragments of `kind`.
char *frag_elem(void *const lanes_frag[32], int kind, int p) {
  const unsigned s = maps().slot[kind][p];
  return (char *)lanes_frag[s / 8] + (s % 8) * elem_bytes(kind);
}

// Moves the tile between memory and the lanes' fragments (to_frag: a load, else a store).
const char *move_tile(void *const lanes[32], bool to_frag) {
  if (const char *e = check_mem_args(lanes)) return e;
  const Lane &l0 = *(const Lane *)lanes[0];
  void *frags[32];
  for (int i = 0; i < 32; i++) frags[i] = ((const Lane *)lanes[i])->frag;
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) {
      char *f = frag_elem(frags, l0.kind, r * 16 + c), *m = (char *)l0.ptr + mem_offset(l0, r, c);
      if (to_frag)
        copy_elem(f, m, l0.kind);
      else
        copy_elem(m, f, l0.kind);
    }
  return nullptr;
}

const char *load_body(void *const lanes[32]) { return move_tile(lanes, true); }
const char *store_body(void *const lanes[32]) { return move_tile(lanes, false); }

float bf16_at(const char *p) {
  unsigned short u;
  memcpy(&u, p, 2);
  return __bfloat162float(__ushort_as_bfloat16(u));
}

const char *mma_body(void *const lanes[32]) {
  const Lane &l0 = *(const Lane *)lanes[0];
  const int ka = l0.kind & 15, kb = l0.kind >> 4;
  void *fa[32], *fb[32], *fc[32], *fd[32];
  for (int i = 0; i < 32; i++) {
    const Lane &l = *(const Lane *)lanes[i];
    fa[i] = (void *)l.a, fb[i] = (void *)l.b, fc[i] = (void *)l.c, fd[i] = l.frag;
  }
  // Gather every operand before writing d: d may be c, in any lane.
  float A[16][16], B[16][16], C[16][16];
  for (int p = 0; p < 256; p++) {
    A[p / 16][p % 16] = bf16_at(frag_elem(fa, ka, p));
    B[p / 16][p % 16] = bf16_at(frag_elem(fb, kb, p));
    memcpy(&C[p / 16][p % 16], frag_elem(fc, ACC, p), 4);
  }
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) {
      float s = C[r][c];
      for (int k = 0; k < 16; k++) s = fmaf(A[r][k], B[k][c], s);
      memcpy(frag_elem(fd, ACC, r * 16 + c), &s, 4);
    }
  return nullptr;
}

}  // namespace

void load(Lane *l, const char *file, int line) {
  warp_collective("wmma::load_matrix_sync", load_body, l, file, line);
}
void store(Lane *l, const char *file, int line) {
  warp_collective("wmma::store_matrix_sync", store_body, l, file, line);
}
void mma(Lane *l, const char *file, int line) { warp_collective("wmma::mma_sync", mma_body, l, file, line); }

const unsigned short *slots(int kind) { return maps().slot[kind]; }

}  // namespace wmma_impl
}  // namespace samx_emu
