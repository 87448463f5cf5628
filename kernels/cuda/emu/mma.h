// nvcuda::wmma (the toolkit's <mma.h>) as the host emulator provides it: bf16 16x16x16 tiles with
// fp32 accumulators, the subset samx's kernels call, with NVIDIA's documented contract checked:
// - load_matrix_sync, store_matrix_sync and mma_sync are warp-collective: all 32 lanes of the warp
//   must call them (the same call site, the same mptr, ldm and layout); they are rendezvous points
//   of the scheduler, like a full-mask shuffle, and a lane that exited or never comes is a fault.
// - mptr must be 256-bit (32-byte) aligned and ldm a multiple of 16 bytes (8 bf16 or 4 float
//   elements); otherwise the launch fails with an error naming the kernel and the call site.
// - The mapping of tile elements to the lanes' x[] is unspecified by NVIDIA. Here it is a fixed
//   pseudo-random permutation of the 256 (row, col) positions over 32 lanes x 8 elements, different
//   for matrix_a row/col-major, matrix_b row/col-major and the accumulator: a kernel that touches
//   x[] other than uniformly (fill, load, store, mma, one operation on every element) gets wrong
//   results here (see tests/kernels/cuda/emu/test_cuda_emu_wmma.cu).
// mma_sync computes D = A B + C with exact bf16 products and fp32 sums in k order (tensor cores
// sum in at least fp32; their exact order and rounding are not modelled).
#ifndef SAMX_EMU_MMA_H
#define SAMX_EMU_MMA_H

#include <type_traits>

#include "cuda_bf16.h"
#include "samx_cuda_emu.h"

namespace samx_emu {
namespace wmma_impl {

enum Kind { A_ROW, A_COL, B_ROW, B_COL, ACC, KINDS };

// What one lane passes to a collective WMMA call.
struct Lane {
  int kind;
  void *frag;              // load: the destination; store: the source (const); mma: d
  const void *a, *b, *c;   // mma: the operands
  const void *ptr;         // load/store: mptr
  unsigned ldm;
  int col_major;           // load/store of the accumulator: mem_col_major
};

void load(Lane *l, const char *file, int line);
void store(Lane *l, const char *file, int line);
void mma(Lane *l, const char *file, int line);
// slot[r * 16 + c] = lane * 8 + element of tile position (r, c) in fragments of kind k.
const unsigned short *slots(int kind);

}  // namespace wmma_impl
}  // namespace samx_emu

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int m, int n, int k, class T, class Layout = void>
class fragment {
  static_assert(m == 16 && n == 16 && k == 16, "samx CUDA emulator: wmma has the m16n16k16 shape only");
  static_assert(std::is_same<Use, accumulator>::value
                    ? std::is_same<T, float>::value && std::is_void<Layout>::value
                    : std::is_same<T, __nv_bfloat16>::value &&
                          (std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value),
                "samx CUDA emulator: wmma fragments are matrix_a/matrix_b of __nv_bfloat16 (row_major or "
                "col_major) and accumulator of float");

 public:
  enum { num_elements = 8 };
  T x[num_elements];
  // Which element mapping the emulator uses for this fragment type.
  static constexpr int samx_kind =
      std::is_same<Use, accumulator>::value ? samx_emu::wmma_impl::ACC
      : std::is_same<Use, matrix_a>::value  ? (std::is_same<Layout, row_major>::value ? samx_emu::wmma_impl::A_ROW
                                                                                       : samx_emu::wmma_impl::A_COL)
                                            : (std::is_same<Layout, row_major>::value ? samx_emu::wmma_impl::B_ROW
                                                                                       : samx_emu::wmma_impl::B_COL);
};

template <class Use, class T, class Layout>
static inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout> &f, const T &v) {
  for (int i = 0; i < f.num_elements; i++) f.x[i] = v;
}

template <class Use, class Layout>
static inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout> &f, const __nv_bfloat16 *mptr,
                                    unsigned ldm, const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  samx_emu::wmma_impl::Lane l{f.samx_kind, &f, nullptr, nullptr, nullptr, mptr, ldm, 0};
  samx_emu::wmma_impl::load(&l, file, line);
}

static inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *mptr, unsigned ldm,
                                    layout_t layout, const char *file = __builtin_FILE(),
                                    int line = __builtin_LINE()) {
  samx_emu::wmma_impl::Lane l{f.samx_kind, &f, nullptr, nullptr, nullptr, mptr, ldm, layout == mem_col_major};
  samx_emu::wmma_impl::load(&l, file, line);
}

static inline void store_matrix_sync(float *mptr, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                                     layout_t layout, const char *file = __builtin_FILE(),
                                     int line = __builtin_LINE()) {
  samx_emu::wmma_impl::Lane l{f.samx_kind, (void *)&f, nullptr, nullptr, nullptr, mptr, ldm, layout == mem_col_major};
  samx_emu::wmma_impl::store(&l, file, line);
}

template <class LA, class LB>
static inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                            const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                            const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                            const fragment<accumulator, 16, 16, 16, float> &c, const char *file = __builtin_FILE(),
                            int line = __builtin_LINE()) {
  // kind packs the operands' kinds: a's in bits 0-3, b's in bits 4-7.
  samx_emu::wmma_impl::Lane l{a.samx_kind | b.samx_kind << 4, &d, &a, &b, &c, nullptr, 0, 0};
  samx_emu::wmma_impl::mma(&l, file, line);
}

}  // namespace wmma
}  // namespace nvcuda

#endif
