// Shared helpers for op implementations (engine/ops_*.c): device dispatch and argument checks.
#ifndef SAMX_OPS_COMMON_H
#define SAMX_OPS_COMMON_H

#include "error.h"
#include "tape.h"
#include "tensor.h"

// Runs cpu_call or cuda_call depending on where tensor t lives.
#ifdef SAMX_WITH_CUDA
#define SAMX_ON_DEVICE(t, cpu_call, cuda_call) \
  do {                                         \
    if ((t)->device.type == SAMX_CUDA) {       \
      cuda_call;                               \
    } else {                                   \
      cpu_call;                                \
    }                                          \
  } while (0)
#else
#define SAMX_ON_DEVICE(t, cpu_call, cuda_call) \
  do {                                         \
    cpu_call;                                  \
  } while (0)
#endif

// Precondition checks: a violated one is a bug in the calling model code, reported with shapes.
void samx_check_f32(const char *op, const SamxTensor *t);
void samx_check_same_device(const char *op, const SamxTensor *a, const SamxTensor *b);
void samx_check_shape(const char *op, const SamxTensor *t, SamxShape want);
void samx_check_same_shape(const char *op, const SamxTensor *a, const SamxTensor *b);

// A new f32 tensor shaped like t, in the context's activation arena, on t's device.
SamxTensor *samx_new_like(SamxCtx *ctx, const SamxTensor *t);

#endif
