// Deterministic random numbers for the data tools: splitmix64 as a sequential generator and as a
// counter-based hash, so that a generated sample depends only on (seed, sample, what) and never on
// the order in which samples are made or on the platform's rand().
#ifndef SAMX_DATA_RNG_H
#define SAMX_DATA_RNG_H

#include <stdint.h>

static inline uint64_t samx_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Sequential: each call advances *state.
static inline uint64_t samx_splitmix64(uint64_t *state) {
  *state += 0x9e3779b97f4a7c15ULL;
  return samx_mix64(*state);
}

// Counter-based: a hash of (seed, a, b, c).
static inline uint64_t samx_hash4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = samx_mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = samx_mix64(h ^ (a + 0x632be59bd9b4e019ULL));
  h = samx_mix64(h ^ (b + 0x8cb92ba72f3d8dd7ULL));
  return samx_mix64(h ^ (c + 0xd6e8feb86659fd93ULL));
}

// Top 53 bits as a double in [0, 1).
static inline double samx_unit(uint64_t x) { return (double)(x >> 11) * (1.0 / 9007199254740992.0); }

#endif
