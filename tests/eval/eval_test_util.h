// Helpers shared by the eval tests: a deterministic generator of random masks and comparisons that
// treat NaN and inf as values.
#ifndef SAMX_EVAL_TEST_UTIL_H
#define SAMX_EVAL_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t test_rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline double test_rng_uniform(uint64_t *s) { return (double)(test_rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static inline int64_t test_rng_int(uint64_t *s, int64_t lo, int64_t hi) {  // inclusive
  return lo + (int64_t)(test_rng_next(s) % (uint64_t)(hi - lo + 1));
}

// A random h x w mask: empty with probability p_empty, else one to three discs / rectangles and a
// sprinkle of isolated pixels, so surfaces have corners, saddles and several components.
static inline void test_random_mask(uint64_t *s, uint8_t *m, int64_t h, int64_t w, double p_empty) {
  memset(m, 0, (size_t)(h * w));
  if (test_rng_uniform(s) < p_empty) return;
  int shapes = (int)test_rng_int(s, 1, 3);
  for (int k = 0; k < shapes; k++) {
    double cr = test_rng_uniform(s) * (double)h, cc = test_rng_uniform(s) * (double)w;
    double rr = 1.0 + test_rng_uniform(s) * (double)(h < w ? h : w) / 3.0;
    int disc = test_rng_uniform(s) < 0.5;
    for (int64_t r = 0; r < h; r++)
      for (int64_t c = 0; c < w; c++) {
        double dr = (double)r - cr, dc = (double)c - cc;
        int in = disc ? dr * dr + dc * dc <= rr * rr : fabs(dr) <= rr && fabs(dc) <= 0.6 * rr;
        if (in) m[r * w + c] = 1;
      }
  }
  for (int64_t i = 0; i < h * w; i++)
    if (test_rng_uniform(s) < 0.03) m[i] ^= 1;
}

// Equal as values: both NaN, the same infinity, or |a - b| <= tol (1 + |b|).
static inline int test_close(double a, double b, double tol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= tol * (1.0 + fabs(b));
}

#endif
