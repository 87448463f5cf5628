// defines: Philox counter-based random fills for initialisation, and reparameterised Gaussian sampling.
// Every draw is named by (seed, counter) (see kernels/random.h): CPU and CUDA give the same stream,
// and a checkpoint that stores ctx->seed and ctx->rng_offset reproduces the draws that follow.
#ifndef SAMX_OPS_RANDOM_H
#define SAMX_OPS_RANDOM_H

#include "tape.h"

// t[i] = mean + std * N(0, 1) draw (seed, offset + i). Any float dtype (converted from f32); bumps the version.
void samx_randn_fill(SamxTensor *t, uint64_t seed, uint64_t offset, float mean, float std);
// t[i] = lo + (hi - lo) * U(0, 1) draw (seed, offset + i). Any float dtype; bumps the version.
void samx_rand_uniform_fill(SamxTensor *t, uint64_t seed, uint64_t offset, float lo, float hi);

// z = mu + exp(log_sigma) * eps, eps[i] the normal draw (ctx->seed, ctx->rng_offset + i); advances
// ctx->rng_offset by numel. mu and log_sigma have the same shape; both receive gradients.
SamxTensor *samx_gaussian_sample(SamxCtx *ctx, SamxTensor *mu, SamxTensor *log_sigma);

// z = mu + exp(log_sigma) * eps with a given eps (P²SAM's z with a fixed noise, `samx segment
// --noise`; torch's rsample with that eps). All three have the same shape; all three receive gradients
// (dz/deps = sigma), eps usually needs none.
SamxTensor *samx_gaussian_reparam(SamxCtx *ctx, SamxTensor *mu, SamxTensor *log_sigma, SamxTensor *eps);

#endif
