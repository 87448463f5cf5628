// The device side of the CUDA host emulator: what a kernel source sees when kernels/cuda/*.cu are
// compiled as host C++ (-DSAMX_CUDA_EMULATOR=ON). Every GPU thread of a block is a fiber on one OS
// thread; __syncthreads, warp shuffles/votes and __syncwarp are rendezvous points of the scheduler
// in runtime.cpp, which also checks that they are reached the way CUDA requires (see docs/engine.md).
#ifndef SAMX_CUDA_EMU_H
#define SAMX_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// Static shared arrays live in one ELF section that the scheduler fills with NaN bytes before every
// block (blocks of a launch run one at a time, so one copy serves all of them). ASan protects the
// section's variables through -fsanitize-sections=samx_shared.
#define __shared__ static __attribute__((section("samx_shared")))

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// The built-in variables of the thread the scheduler runs right now.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static constexpr int warpSize = 32;

namespace samx_emu {

enum WarpOp { OP_SHFL_IDX, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_SYNCWARP, OP_BALLOT, OP_ANY, OP_ALL, OP_COLLECTIVE };

void syncthreads(const char *file, int line);
uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int b, int width, const char *file, int line);
unsigned active_mask();
// A warp-collective operation on data every lane keeps (the WMMA calls of mma.h): all 32 lanes of
// the warp rendezvous at it (an exited or absent lane is a fault, as for a full-mask shuffle); the
// last lane to arrive calls fn with what each lane passed, lane by lane. fn returns NULL, or the text
// of a fault (the block is then abandoned and the launch fails, the kernel named).
typedef const char *(*WarpCollectiveFn)(void *const lane_data[32]);
void warp_collective(const char *name, WarpCollectiveFn fn, void *data, const char *file, int line);
char *dynamic_shared();

// One launch: the kernel (type-erased), its name and launch site, the configuration.
struct LaunchSpec {
  const void *fn;  // identity of the kernel (cudaFuncSetAttribute)
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t smem;
  void (*thunk)(void *);  // runs the kernel body of the current thread
  void *args;
};
void launch(const LaunchSpec &spec);

template <class... P>
struct Launcher {
  void (*fn)(P...);
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t smem;
  Launcher(void (*f)(P...), const char *n, dim3 g, dim3 b, size_t s, const char *fl, int ln)
      : fn(f), name(n), file(fl), line(ln), grid(g), block(b), smem(s) {}
  // Arguments are converted to the parameter types once, as at a real launch; every thread then
  // receives its own copy (a kernel may modify its parameters).
  template <class... A>
  void operator()(A &&...a) const {
    struct Call {
      void (*fn)(P...);
      std::tuple<std::decay_t<P>...> args;
    } call{fn, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
    LaunchSpec spec{(const void *)fn, name, file, line, grid, block, smem,
                    [](void *c) {
                      Call *k = (Call *)c;
                      std::apply(k->fn, k->args);
                    },
                    &call};
    launch(spec);
  }
};
template <class... P>
Launcher(void (*)(P...), const char *, dim3, dim3, size_t, const char *, int) -> Launcher<P...>;

template <class T>
static inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled types are at most 8 bytes");
  uint64_t u = 0;
  memcpy(&u, &v, sizeof v);
  return u;
}
template <class T>
static inline T from_bits(uint64_t u) {
  T v;
  memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace samx_emu

#define SAMX_LAUNCH(kernel, grid, block, smem) \
  ::samx_emu::Launcher(kernel, #kernel, dim3(grid), dim3(block), (size_t)(smem), __FILE__, __LINE__)
#define SAMX_EXTERN_SHARED(type, name) type *const name = (type *)::samx_emu::dynamic_shared()

// ---- synchronisation (call sites are recorded for the error messages) ----
static inline void __syncthreads(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  samx_emu::syncthreads(file, line);
}
static inline void __syncwarp(unsigned mask = 0xffffffffu, const char *file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  samx_emu::warp_op(samx_emu::OP_SYNCWARP, mask, 0, 0, 32, file, line);
}
static inline void __threadfence() {}
static inline void __threadfence_block() {}
static inline unsigned __activemask() { return samx_emu::active_mask(); }

#define SAMX_EMU_SHFL(fname, op)                                                                            \
  template <class T>                                                                                        \
  static inline T fname(unsigned mask, T var, int b, int width = 32, const char *file = __builtin_FILE(), \
                        int line = __builtin_LINE()) {                                                      \
    return samx_emu::from_bits<T>(samx_emu::warp_op(op, mask, samx_emu::to_bits(var), b, width, file, line)); \
  }
SAMX_EMU_SHFL(__shfl_sync, samx_emu::OP_SHFL_IDX)
SAMX_EMU_SHFL(__shfl_up_sync, samx_emu::OP_SHFL_UP)
SAMX_EMU_SHFL(__shfl_down_sync, samx_emu::OP_SHFL_DOWN)
SAMX_EMU_SHFL(__shfl_xor_sync, samx_emu::OP_SHFL_XOR)
#undef SAMX_EMU_SHFL

static inline unsigned __ballot_sync(unsigned mask, int pred, const char *file = __builtin_FILE(),
                                     int line = __builtin_LINE()) {
  return (unsigned)samx_emu::warp_op(samx_emu::OP_BALLOT, mask, pred != 0, 0, 32, file, line);
}
static inline int __any_sync(unsigned mask, int pred, const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return (int)samx_emu::warp_op(samx_emu::OP_ANY, mask, pred != 0, 0, 32, file, line);
}
static inline int __all_sync(unsigned mask, int pred, const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return (int)samx_emu::warp_op(samx_emu::OP_ALL, mask, pred != 0, 0, 32, file, line);
}

// ---- atomics: fibers never run concurrently, so a read-modify-write is atomic; the old value is returned ----
template <class T, class U>
static inline T __samx_atomic_rmw(T *p, U v, int op) {
  T old = *p;
  switch (op) {
    case 0: *p = old + (T)v; break;
    case 1: *p = old - (T)v; break;
    case 2: *p = (T)v < old ? (T)v : old; break;
    case 3: *p = (T)v > old ? (T)v : old; break;
    case 4: *p = (T)v; break;
  }
  return old;
}
#define SAMX_EMU_ATOMIC(fname, op)                                                                  \
  static inline int fname(int *p, int v) { return __samx_atomic_rmw(p, v, op); }                    \
  static inline unsigned fname(unsigned *p, unsigned v) { return __samx_atomic_rmw(p, v, op); }     \
  static inline unsigned long long fname(unsigned long long *p, unsigned long long v) {             \
    return __samx_atomic_rmw(p, v, op);                                                             \
  }                                                                                                 \
  static inline long long fname(long long *p, long long v) { return __samx_atomic_rmw(p, v, op); }
SAMX_EMU_ATOMIC(atomicAdd, 0)
SAMX_EMU_ATOMIC(atomicSub, 1)
SAMX_EMU_ATOMIC(atomicMin, 2)
SAMX_EMU_ATOMIC(atomicMax, 3)
SAMX_EMU_ATOMIC(atomicExch, 4)
#undef SAMX_EMU_ATOMIC
static inline float atomicAdd(float *p, float v) { return __samx_atomic_rmw(p, v, 0); }
static inline double atomicAdd(double *p, double v) { return __samx_atomic_rmw(p, v, 0); }
static inline float atomicExch(float *p, float v) { return __samx_atomic_rmw(p, v, 4); }
template <class T>
static inline T atomicCAS(T *p, T compare, T v) {
  T old = *p;
  if (old == compare) *p = v;
  return old;
}
static inline unsigned atomicInc(unsigned *p, unsigned limit) {
  unsigned old = *p;
  *p = old >= limit ? 0 : old + 1;
  return old;
}
#define SAMX_EMU_ATOMIC_BITS(fname, expr)                                              \
  template <class T>                                                                  \
  static inline T fname(T *p, T v) {                                                  \
    T old = *p;                                                                       \
    *p = expr;                                                                        \
    return old;                                                                       \
  }
SAMX_EMU_ATOMIC_BITS(atomicAnd, old & v)
SAMX_EMU_ATOMIC_BITS(atomicOr, old | v)
SAMX_EMU_ATOMIC_BITS(atomicXor, old ^ v)
#undef SAMX_EMU_ATOMIC_BITS

// ---- device math that is not in the C library ----
template <class A, class B>
static inline typename std::common_type<A, B>::type min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
static inline typename std::common_type<A, B>::type max(A a, B b) {
  return a < b ? b : a;
}
// __expf and __logf come from glibc.
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline int __float_as_int(float x) { return samx_emu::from_bits<int>(samx_emu::to_bits(x)); }
static inline unsigned __float_as_uint(float x) { return samx_emu::from_bits<unsigned>(samx_emu::to_bits(x)); }
static inline float __int_as_float(int x) { return samx_emu::from_bits<float>(samx_emu::to_bits(x)); }
static inline float __uint_as_float(unsigned x) { return samx_emu::from_bits<float>(samx_emu::to_bits(x)); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T>
static inline T __ldg(const T *p) {
  return *p;
}

// For the emulator's own tests: the message of the last fault found in a kernel ("" if none).
extern "C" const char *samx_cuda_emu_last_fault(void);
// Sets the thread order as SAMX_CUDA_EMU_SCHEDULE does ("forward", "reverse", "random:SEED"); 0 or -1.
extern "C" int samx_cuda_emu_set_schedule(const char *spec);

#endif
