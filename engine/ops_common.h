// Shared helpers for op implementations (engine/ops_*.c): device dispatch and argument checks.
#ifndef SAMX_OPS_COMMON_H
#define SAMX_OPS_COMMON_H

#include "error.h"
#include "profile.h"
#include "tape.h"
#include "tensor.h"

// Runs cpu_call or cuda_call depending on where tensor t lives; with the kernel profile on
// (profile.h), the launch is timed under the calling function's name.
#ifdef SAMX_WITH_CUDA
#define SAMX_DISPATCH(t, cpu_call, cuda_call) \
  do {                                        \
    if ((t)->device.type == SAMX_CUDA) {      \
      cuda_call;                              \
    } else {                                  \
      cpu_call;                               \
    }                                         \
  } while (0)
#else
#define SAMX_DISPATCH(t, cpu_call, cuda_call) \
  do {                                        \
    cpu_call;                                 \
  } while (0)
#endif
#define SAMX_ON_DEVICE(t, cpu_call, cuda_call)                       \
  do {                                                               \
    if (samx_profile_on) {                                           \
      const double samx_t0_ = samx_profile_begin((t)->device);       \
      SAMX_DISPATCH(t, cpu_call, cuda_call);                         \
      samx_profile_end(__func__, (t)->device, samx_t0_);             \
    } else {                                                         \
      SAMX_DISPATCH(t, cpu_call, cuda_call);                         \
    }                                                                \
  } while (0)

// Precondition checks: a violated one is a bug in the calling model code, reported with shapes.
void samx_check_f32(const char *op, const SamxTensor *t);
void samx_check_same_device(const char *op, const SamxTensor *a, const SamxTensor *b);
// BF16 activations are inference-only (their ops have no backward yet): dies when ctx would record a
// node for inputs in (n of them, NULL ones skipped).
void samx_check_bf16_inference(const char *op, const SamxCtx *ctx, int n, SamxTensor *const *in);
void samx_check_shape(const char *op, const SamxTensor *t, SamxShape want);
void samx_check_same_shape(const char *op, const SamxTensor *a, const SamxTensor *b);

// A new f32 tensor shaped like t, in the context's activation arena, on t's device.
SamxTensor *samx_new_like(SamxCtx *ctx, const SamxTensor *t);

#endif
