// Parameter store: declare every parameter first, then one allocation for all values and one
// contiguous f32 gradient buffer for the trainable ones (a single all-reduce covers it).
#ifndef SAMX_PARAMS_H
#define SAMX_PARAMS_H

#include "arena.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  SamxDevice device;
  SamxTensor **list;  // in declaration order
  int n, cap;
  SamxArena values;   // all parameter values (f32)
  SamxArena grads;    // gradients of trainable parameters, contiguous in declaration order
  float *grad_flat;   // == grads.base once allocated
  SamxArena shadows;  // the parameters' bf16 GEMM operands (samx_params_shadow_bf16), when shadowed
  int64_t n_values, n_trainable;
  int allocated, shadowed;
} SamxParams;

void samx_params_init(SamxParams *p);
void samx_params_free(SamxParams *p);
// Declares a parameter (before samx_params_allocate). The name is copied.
SamxTensor *samx_param(SamxParams *p, const char *name, SamxShape s, int trainable);
// Changes trainability; only before allocation (the gradient buffer's layout depends on it).
void samx_param_set_trainable(SamxParams *p, SamxTensor *t, int trainable);
// Allocates values (zeroed) and gradients on `device`; and the bf16 shadows when the process's precision
// on that device is bf16 (samx_precision_on).
void samx_params_allocate(SamxParams *p, SamxDevice device);
// Gives every parameter a shadow: the operand a bf16 GEMM reads for it, which the linear layers make once
// and keep until the parameter is written again, instead of casting the fp32 values at every call (a
// ViT-B image read 343 MB of fp32 weights and wrote 172 MB of bf16 copies). BF16 on CUDA, f32 rounded to
// bf16 on the CPU (its reference mode). Their arena is p->shadows; a second call does nothing.
void samx_params_shadow_bf16(SamxParams *p);
void samx_params_zero_grad(SamxParams *p);
SamxTensor *samx_params_find(const SamxParams *p, const char *name);
// What the store holds on its device for the values: their arena and, when shadowed, the kept operands'
// (the gradients' arena apart).
size_t samx_params_value_bytes(const SamxParams *p);

#ifdef __cplusplus
}
#endif
#endif
