// CPU-only 8-lane float vectors (GCC/Clang vector extensions: AVX with -march=native, two SSE
// halves otherwise) for the loops the auto-vectoriser leaves scalar, e.g. inside OpenMP-outlined
// regions or with bit casts.
#ifndef SAMX_KERNELS_CPU_SIMD_H
#define SAMX_KERNELS_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v8_load(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);  // an unaligned vector load
  return v;
}
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8_set1(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
// Lanes where mask is set from a, the others from b (C has no vector ?:).
static inline v8f v8_select(v8i mask, v8f a, v8f b) { return (v8f)((mask & (v8i)a) | (~mask & (v8i)b)); }
static inline v8f v8_max(v8f a, v8f b) { return v8_select(a > b, a, b); }
static inline float v8_hmax(v8f v) {
  float m = v[0];
  for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
  return m;
}
static inline float v8_hsum(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// exp(x) for x <= 0 (softmax arguments after subtracting the row max): x = n ln2 + r with
// |r| <= ln2/2, exp(r) by a degree-6 polynomial (Cephes' expf coefficients, ~1 ulp), 2^n by
// building the exponent bits. Below -87 the result flushes to 0 (2^-126 scale, then denormal-free).
static inline v8f v8_exp_nonpos(v8f x) {
  const v8f lo = v8_set1(-87.0f);
  x = v8_select(x < lo, lo, x);
  // Round to nearest by the 1.5 * 2^23 trick, exact for |x| < 2^22.
  const v8f shifter = v8_set1(12582912.0f);
  v8f n = (x * 1.44269504088896341f + shifter) - shifter;
  v8f r = x - n * 0.693359375f + n * 2.12194440e-4f;
  v8f p = v8_set1(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  return p * (v8f)bits;
}

#endif
