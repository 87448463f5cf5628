#include "../random.h"

void samx_cpu_random_fill(int kind, float *x, int64_t n, uint64_t seed, uint64_t offset, float a, float b) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) x[i] = samx_random_value(kind, seed, offset + (uint64_t)i, a, b);
}

void samx_cpu_gaussian_sample_fwd(const float *mu, const float *log_sigma, float *z, int64_t n, uint64_t seed,
                                  uint64_t offset) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) z[i] = mu[i] + expf(log_sigma[i]) * samx_philox_normal(seed, offset + (uint64_t)i);
}

void samx_cpu_gaussian_sample_bwd(const float *log_sigma, const float *gz, float *gmu, float *glog_sigma, int64_t n,
                                  uint64_t seed, uint64_t offset) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) {
    if (gmu) gmu[i] += gz[i];
    if (glog_sigma) glog_sigma[i] += gz[i] * expf(log_sigma[i]) * samx_philox_normal(seed, offset + (uint64_t)i);
  }
}

void samx_cpu_reparam_fwd(const float *mu, const float *log_sigma, const float *eps, float *z, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) z[i] = samx_reparam_value(mu[i], log_sigma[i], eps[i]);
}

void samx_cpu_reparam_bwd(const float *log_sigma, const float *eps, const float *gz, float *gmu, float *glog_sigma,
                          float *geps, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) {
    if (gmu) gmu[i] += gz[i];
    if (glog_sigma) glog_sigma[i] += samx_reparam_grad_log_sigma(gz[i], log_sigma[i], eps[i]);
    if (geps) geps[i] += samx_reparam_grad_eps(gz[i], log_sigma[i]);
  }
}
