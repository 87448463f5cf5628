// The bfloat16 type of the CUDA toolkit's <cuda_bf16.h>, as the host emulator provides it: the
// subset samx's kernels call, with NVIDIA's documented semantics. Found before the toolkit's header
// because kernels/cuda/emu is first on the emulated build's include path.
//   __float2bfloat16, __float2bfloat16_rn: round to nearest, ties to even; NaN -> 0x7fff (the
//     canonical NaN the toolkit's conversion returns); overflow rounds to infinity.
//   __bfloat162float: exact (the 16 bits become the high half of a float).
// The implicit float <-> __nv_bfloat16 conversions of the toolkit are left out on purpose: kernels
// convert explicitly, so what compiles here compiles under nvcc as well.
#ifndef SAMX_EMU_CUDA_BF16_H
#define SAMX_EMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16_raw {
  unsigned short x;
};

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  constexpr __nv_bfloat16(const __nv_bfloat16_raw &r) : __x(r.x) {}
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};

static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16(__nv_bfloat16_raw{u}); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(0x7fff);
  u += 0x7fffu + ((u >> 16) & 1u);
  return __ushort_as_bfloat16((unsigned short)(u >> 16));
}
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }

static inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = (uint32_t)h.__x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

#endif
