// Element types and their conversions (host and device).
#ifndef SAMX_DTYPE_H
#define SAMX_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels/common.h"

typedef enum { SAMX_F32 = 0, SAMX_BF16, SAMX_F16, SAMX_I32, SAMX_U8, SAMX_I64, SAMX_DTYPE_COUNT } SamxDType;

static inline size_t samx_dtype_size(SamxDType t) {
  static const size_t sizes[SAMX_DTYPE_COUNT] = {4, 2, 2, 4, 1, 8};
  return sizes[t];
}

// Names as safetensors spells them.
static inline const char *samx_dtype_name(SamxDType t) {
  static const char *names[SAMX_DTYPE_COUNT] = {"F32", "BF16", "F16", "I32", "U8", "I64"};
  return names[t];
}

// Returns -1 for an unknown name.
static inline int samx_dtype_from_name(const char *s) {
  for (int t = 0; t < SAMX_DTYPE_COUNT; t++)
    if (strcmp(s, samx_dtype_name((SamxDType)t)) == 0) return t;
  return -1;
}

SAMX_HD float samx_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } v;
  v.u = (uint32_t)h << 16;
  return v.f;
}

// Round to nearest even, NaN kept quiet: the same rounding as torch's .to(torch.bfloat16).
SAMX_HD uint16_t samx_f32_to_bf16(float f) {
  union { uint32_t u; float f; } v;
  v.f = f;
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
  return (uint16_t)((v.u + rounding) >> 16);
}

// f32 -> bf16 -> f32: the value a bf16 tensor holds for f (reference results of bf16 kernels).
SAMX_HD float samx_round_bf16(float f) { return samx_bf16_to_f32(samx_f32_to_bf16(f)); }

// f rounded to tf32 (8-bit exponent, 10-bit mantissa: the low 13 bits of the f32 mantissa cleared),
// to nearest even, NaN and inf kept: what a tensor core multiplies under cuBLAS's TF32 compute types.
SAMX_HD float samx_round_tf32(float f) {
  union { uint32_t u; float f; } v;
  v.f = f;
  if ((v.u & 0x7f800000u) == 0x7f800000u) return f;
  v.u = (v.u + 0xfffu + ((v.u >> 13) & 1u)) & ~0x1fffu;
  return v.f;
}

SAMX_HD float samx_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  union { uint32_t u; float f; } v;
  if (exp == 0) {
    if (mant == 0) {
      v.u = sign;
    } else {  // subnormal: value = mant * 2^-24
      float m = (float)mant * 5.9604644775390625e-8f;
      v.f = m;
      v.u |= sign;
    }
  } else if (exp == 31) {
    v.u = sign | 0x7f800000u | (mant << 13);
  } else {
    v.u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return v.f;
}

// Round to nearest even, with overflow to inf and gradual underflow.
SAMX_HD uint16_t samx_f32_to_f16(float f) {
  union { uint32_t u; float f; } v;
  v.f = f;
  uint32_t sign = (v.u >> 16) & 0x8000u;
  uint32_t a = v.u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to inf
  if (a < 0x38800000u) {  // below the smallest normal: subnormal or zero
    if (a < 0x33000000u) return (uint16_t)sign;  // < 2^-25 rounds to zero
    uint32_t e = a >> 23;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (112 - e) ... bring to 2^-24 units
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t out = ((a - 0x38000000u) >> 13);
  uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (out & 1))) out++;
  return (uint16_t)(sign | out);
}

#endif
