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
  int64_t n_values, n_trainable;
  int allocated;
} SamxParams;

void samx_params_init(SamxParams *p);
void samx_params_free(SamxParams *p);
// Declares a parameter (before samx_params_allocate). The name is copied.
SamxTensor *samx_param(SamxParams *p, const char *name, SamxShape s, int trainable);
// Changes trainability; only before allocation (the gradient buffer's layout depends on it).
void samx_param_set_trainable(SamxParams *p, SamxTensor *t, int trainable);
// Allocates values (zeroed) and gradients on `device`.
void samx_params_allocate(SamxParams *p, SamxDevice device);
void samx_params_zero_grad(SamxParams *p);
SamxTensor *samx_params_find(const SamxParams *p, const char *name);

#ifdef __cplusplus
}
#endif
#endif
