// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11; Random123), the same integer
// stream on CPU and CUDA. Draw number k of stream `seed` is the block of counter k:
//   key = {lo32(seed), hi32(seed)}, counter = {lo32(k), hi32(k), 0, 0},
// with k = offset + element index, so (seed, offset) names every draw and nothing is stateful.
// Uniforms are exact functions of the integers (bit-identical across backends); normals go through
// logf/cosf, whose last-ulp rounding may differ between libm and CUDA.
// defines: samx_philox4x32_10, samx_philox_uniform, samx_philox_normal, SamxRngKind, the launchers.
#ifndef SAMX_KERNELS_RANDOM_H
#define SAMX_KERNELS_RANDOM_H

#include "common.h"

typedef struct {
  uint32_t v[4];
} SamxU32x4;

SAMX_HD SamxU32x4 samx_philox4x32_10(SamxU32x4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; round++) {
    if (round > 0) {  // the key schedule: Weyl increments by the golden ratio and sqrt(3) - 1
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint64_t p0 = (uint64_t)0xD2511F53u * ctr.v[0];
    uint64_t p1 = (uint64_t)0xCD9E8D57u * ctr.v[2];
    SamxU32x4 next;
    next.v[0] = (uint32_t)(p1 >> 32) ^ ctr.v[1] ^ k0;
    next.v[1] = (uint32_t)p1;
    next.v[2] = (uint32_t)(p0 >> 32) ^ ctr.v[3] ^ k1;
    next.v[3] = (uint32_t)p0;
    ctr = next;
  }
  return ctr;
}

// The 4 words of draw `counter` of stream `seed`.
SAMX_HD SamxU32x4 samx_philox_draw(uint64_t seed, uint64_t counter) {
  SamxU32x4 c = {{(uint32_t)counter, (uint32_t)(counter >> 32), 0u, 0u}};
  return samx_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// The top 23 bits as the midpoint of one of 2^23 equal cells of (0, 1): exact in f32, never 0 or 1.
SAMX_HD float samx_u32_to_uniform(uint32_t w) { return (float)(2u * (w >> 9) + 1u) * (1.0f / 16777216.0f); }

SAMX_HD float samx_philox_uniform(uint64_t seed, uint64_t counter) {
  return samx_u32_to_uniform(samx_philox_draw(seed, counter).v[0]);
}

// Standard normal by Box-Muller from words 0 and 1 (|z| <= sqrt(2 ln 2^24) ~ 5.8).
SAMX_HD float samx_philox_normal(uint64_t seed, uint64_t counter) {
  SamxU32x4 w = samx_philox_draw(seed, counter);
  float u1 = samx_u32_to_uniform(w.v[0]), u2 = samx_u32_to_uniform(w.v[1]);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

typedef enum { SAMX_RNG_UNIFORM = 0, SAMX_RNG_NORMAL = 1 } SamxRngKind;

// Uniform: a + (b - a) u; normal: a + b z (a = mean, b = std).
SAMX_HD float samx_random_value(int kind, uint64_t seed, uint64_t counter, float a, float b) {
  if (kind == SAMX_RNG_NORMAL) return a + b * samx_philox_normal(seed, counter);
  return a + (b - a) * samx_philox_uniform(seed, counter);
}

// The reparameterisation trick with a given eps: z = mu + sigma eps, sigma = exp(log_sigma) the
// standard deviation; dz/dlog_sigma = sigma eps, dz/deps = sigma.
SAMX_HD float samx_reparam_value(float mu, float log_sigma, float eps) { return mu + expf(log_sigma) * eps; }
SAMX_HD float samx_reparam_grad_log_sigma(float gz, float log_sigma, float eps) { return gz * expf(log_sigma) * eps; }
SAMX_HD float samx_reparam_grad_eps(float gz, float log_sigma) { return gz * expf(log_sigma); }

// x[i] = samx_random_value(kind, seed, offset + i, a, b).
SAMX_EXTERN_C void samx_cpu_random_fill(int kind, float *x, int64_t n, uint64_t seed, uint64_t offset, float a,
                                        float b);
// z = mu + exp(log_sigma) eps_i, eps_i = samx_philox_normal(seed, offset + i).
SAMX_EXTERN_C void samx_cpu_gaussian_sample_fwd(const float *mu, const float *log_sigma, float *z, int64_t n,
                                                uint64_t seed, uint64_t offset);
// gmu += gz and glog_sigma += gz exp(log_sigma) eps_i, eps regenerated; either may be NULL (skipped).
SAMX_EXTERN_C void samx_cpu_gaussian_sample_bwd(const float *log_sigma, const float *gz, float *gmu,
                                                float *glog_sigma, int64_t n, uint64_t seed, uint64_t offset);
// z[i] = samx_reparam_value(mu[i], log_sigma[i], eps[i]); backward adds into gmu, glog_sigma, geps
// (each may be NULL: skipped).
SAMX_EXTERN_C void samx_cpu_reparam_fwd(const float *mu, const float *log_sigma, const float *eps, float *z, int64_t n);
SAMX_EXTERN_C void samx_cpu_reparam_bwd(const float *log_sigma, const float *eps, const float *gz, float *gmu,
                                        float *glog_sigma, float *geps, int64_t n);
SAMX_EXTERN_C void samx_cuda_reparam_fwd(const float *mu, const float *log_sigma, const float *eps, float *z,
                                         int64_t n);
SAMX_EXTERN_C void samx_cuda_reparam_bwd(const float *log_sigma, const float *eps, const float *gz, float *gmu,
                                         float *glog_sigma, float *geps, int64_t n);
SAMX_EXTERN_C void samx_cuda_random_fill(int kind, float *x, int64_t n, uint64_t seed, uint64_t offset, float a,
                                         float b);
SAMX_EXTERN_C void samx_cuda_gaussian_sample_fwd(const float *mu, const float *log_sigma, float *z, int64_t n,
                                                 uint64_t seed, uint64_t offset);
SAMX_EXTERN_C void samx_cuda_gaussian_sample_bwd(const float *log_sigma, const float *gz, float *gmu,
                                                 float *glog_sigma, int64_t n, uint64_t seed, uint64_t offset);

#endif
