#include "ops_random.h"

#include <stdlib.h>

#include "../kernels/random.h"
#include "ops_common.h"

static void random_fill(SamxTensor *t, int kind, uint64_t seed, uint64_t offset, float a, float b) {
  SAMX_ASSERT(t->dtype == SAMX_F32 || t->dtype == SAMX_BF16 || t->dtype == SAMX_F16,
              "random fill of %s: dtype %s is not a float type", t->name ? t->name : "tensor",
              samx_dtype_name(t->dtype));
  if (t->dtype != SAMX_F32) {  // initialisation only: draw in f32 on the host and convert
    float *tmp = (float *)malloc((size_t)t->numel * sizeof(float) + 4);
    SAMX_ASSERT(tmp, "random fill: out of host memory for %lld values", (long long)t->numel);
    samx_cpu_random_fill(kind, tmp, t->numel, seed, offset, a, b);
    samx_tensor_write_f32(t, tmp);
    free(tmp);
    return;
  }
  SAMX_ON_DEVICE(t, samx_cpu_random_fill(kind, samx_f32(t), t->numel, seed, offset, a, b),
                 samx_cuda_random_fill(kind, samx_f32(t), t->numel, seed, offset, a, b));
  samx_bump_version(t);
}

void samx_randn_fill(SamxTensor *t, uint64_t seed, uint64_t offset, float mean, float std) {
  random_fill(t, SAMX_RNG_NORMAL, seed, offset, mean, std);
}

void samx_rand_uniform_fill(SamxTensor *t, uint64_t seed, uint64_t offset, float lo, float hi) {
  random_fill(t, SAMX_RNG_UNIFORM, seed, offset, lo, hi);
}

typedef struct {
  uint64_t seed, offset;  // eps is regenerated from these in backward instead of being stored
} SampleArgs;

static void gaussian_sample_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *mu = node->in[0], *log_sigma = node->in[1], *z = node->out;
  SamxTensor *gmu = samx_grad_of(ctx, mu), *gls = samx_grad_of(ctx, log_sigma);
  if (!gmu && !gls) return;
  const SampleArgs *a = samx_node_args(node, SampleArgs);
  float *pgmu = gmu ? samx_f32(gmu) : NULL, *pgls = gls ? samx_f32(gls) : NULL;
  SAMX_ON_DEVICE(z,
                 samx_cpu_gaussian_sample_bwd(samx_f32(log_sigma), samx_f32(z->grad), pgmu, pgls, z->numel, a->seed,
                                              a->offset),
                 samx_cuda_gaussian_sample_bwd(samx_f32(log_sigma), samx_f32(z->grad), pgmu, pgls, z->numel, a->seed,
                                               a->offset));
}

SamxTensor *samx_gaussian_sample(SamxCtx *ctx, SamxTensor *mu, SamxTensor *log_sigma) {
  const char *op = "gaussian_sample";
  samx_check_f32(op, mu);
  samx_check_f32(op, log_sigma);
  samx_check_same_device(op, mu, log_sigma);
  samx_check_same_shape(op, mu, log_sigma);
  uint64_t seed = ctx->seed, offset = ctx->rng_offset;
  ctx->rng_offset += (uint64_t)mu->numel;
  SamxTensor *z = samx_new_like(ctx, mu);
  SAMX_ON_DEVICE(mu,
                 samx_cpu_gaussian_sample_fwd(samx_f32(mu), samx_f32(log_sigma), samx_f32(z), mu->numel, seed, offset),
                 samx_cuda_gaussian_sample_fwd(samx_f32(mu), samx_f32(log_sigma), samx_f32(z), mu->numel, seed,
                                               offset));
  SamxTensor *in[2] = {mu, log_sigma};
  SamxNode *node = samx_record(ctx, op, gaussian_sample_backward, z, 2, in);
  if (node) {
    SampleArgs *a = samx_node_args(node, SampleArgs);
    a->seed = seed;
    a->offset = offset;
    samx_node_save(node, log_sigma);
  }
  return z;
}

static void gaussian_reparam_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *log_sigma = node->in[1], *eps = node->in[2], *z = node->out;
  SamxTensor *gmu = samx_grad_of(ctx, node->in[0]), *gls = samx_grad_of(ctx, log_sigma), *geps = samx_grad_of(ctx, eps);
  if (!gmu && !gls && !geps) return;
  float *pgmu = gmu ? samx_f32(gmu) : NULL, *pgls = gls ? samx_f32(gls) : NULL, *pgeps = geps ? samx_f32(geps) : NULL;
  SAMX_ON_DEVICE(z,
                 samx_cpu_reparam_bwd(samx_f32(log_sigma), samx_f32(eps), samx_f32(z->grad), pgmu, pgls, pgeps, z->numel),
                 samx_cuda_reparam_bwd(samx_f32(log_sigma), samx_f32(eps), samx_f32(z->grad), pgmu, pgls, pgeps,
                                       z->numel));
}

SamxTensor *samx_gaussian_reparam(SamxCtx *ctx, SamxTensor *mu, SamxTensor *log_sigma, SamxTensor *eps) {
  const char *op = "gaussian_reparam";
  SamxTensor *in[3] = {mu, log_sigma, eps};
  for (int i = 0; i < 3; i++) {
    samx_check_f32(op, in[i]);
    samx_check_same_device(op, mu, in[i]);
    samx_check_same_shape(op, mu, in[i]);
  }
  SamxTensor *z = samx_new_like(ctx, mu);
  SAMX_ON_DEVICE(mu, samx_cpu_reparam_fwd(samx_f32(mu), samx_f32(log_sigma), samx_f32(eps), samx_f32(z), mu->numel),
                 samx_cuda_reparam_fwd(samx_f32(mu), samx_f32(log_sigma), samx_f32(eps), samx_f32(z), mu->numel));
  SamxNode *node = samx_record(ctx, op, gaussian_reparam_backward, z, 3, in);
  if (node) {
    samx_node_save(node, log_sigma);
    samx_node_save(node, eps);
  }
  return z;
}
