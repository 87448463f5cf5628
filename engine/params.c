#include "params.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "precision.h"

void samx_params_init(SamxParams *p) { memset(p, 0, sizeof *p); }

void samx_params_free(SamxParams *p) {
  for (int i = 0; i < p->n; i++) {
    free((void *)p->list[i]->name);
    free(p->list[i]->grad);
    free(p->list[i]);
  }
  free(p->list);
  if (p->allocated) {
    samx_arena_free(&p->values);
    samx_arena_free(&p->grads);
  }
  if (p->shadowed) samx_arena_free(&p->shadows);
  memset(p, 0, sizeof *p);
}

SamxTensor *samx_param(SamxParams *p, const char *name, SamxShape s, int trainable) {
  SAMX_ASSERT(!p->allocated, "parameter %s declared after allocation", name);
  SAMX_ASSERT(!samx_params_find(p, name), "parameter %s declared twice", name);
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->list = (SamxTensor **)realloc(p->list, (size_t)p->cap * sizeof *p->list);
  }
  SamxTensor *t = (SamxTensor *)calloc(1, sizeof *t);
  t->dtype = SAMX_F32;
  t->ndim = s.ndim;
  t->numel = samx_shape_numel(s);
  for (int i = 0; i < s.ndim; i++) t->shape[i] = s.d[i];
  t->name = strdup(name);
  t->requires_grad = (uint8_t)(trainable != 0);
  t->is_param = 1;
  p->list[p->n++] = t;
  return t;
}

void samx_param_set_trainable(SamxParams *p, SamxTensor *t, int trainable) {
  SAMX_ASSERT(!p->allocated, "trainability of %s changed after allocation", t->name);
  t->requires_grad = (uint8_t)(trainable != 0);
}

static size_t aligned(size_t bytes) { return (bytes + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1); }

void samx_params_allocate(SamxParams *p, SamxDevice device) {
  SAMX_ASSERT(!p->allocated, "parameters allocated twice");
  size_t vbytes = 0, gbytes = 0;
  p->n_values = p->n_trainable = 0;
  for (int i = 0; i < p->n; i++) {
    vbytes += aligned(samx_nbytes(p->list[i]));
    p->n_values += p->list[i]->numel;
    if (p->list[i]->requires_grad) {
      gbytes += (size_t)p->list[i]->numel * sizeof(float);
      p->n_trainable += p->list[i]->numel;
    }
  }
  p->device = device;
  samx_arena_init(&p->values, "parameters", device, vbytes, 0);
  samx_arena_init(&p->grads, "gradients", device, gbytes, 0);
  // Gradients packed with no padding so that grad_flat is one dense vector.
  size_t goff = 0;
  for (int i = 0; i < p->n; i++) {
    SamxTensor *t = p->list[i];
    t->device = device;
    t->data = samx_arena_alloc_tagged(&p->values, samx_nbytes(t), t->dtype);
    if (t->requires_grad) {
      SamxTensor *g = (SamxTensor *)calloc(1, sizeof *g);
      *g = *t;
      g->name = NULL;
      g->requires_grad = 0;
      g->is_param = 0;
      g->grad = NULL;
      g->data = p->grads.base + goff;
      goff += (size_t)t->numel * sizeof(float);
      t->grad = g;
    }
  }
  if (goff) samx_arena_claim(&p->grads, 0, goff, SAMX_F32);
  p->grad_flat = (float *)p->grads.base;
  samx_dev_memset0(device, p->values.base, vbytes);
  samx_params_zero_grad(p);
  p->allocated = 1;
  if (samx_precision_on(device) == SAMX_PRECISION_BF16) samx_params_shadow_bf16(p);
}

void samx_params_shadow_bf16(SamxParams *p) {
  SAMX_ASSERT(p->allocated, "parameters shadowed before allocation");
  if (p->shadowed) return;
  SamxDType dt = p->device.type == SAMX_CUDA ? SAMX_BF16 : SAMX_F32;
  size_t bytes = 0;
  for (int i = 0; i < p->n; i++) bytes += aligned((size_t)p->list[i]->numel * samx_dtype_size(dt));
  samx_arena_init(&p->shadows, "bf16 weights", p->device, bytes, (size_t)p->n * (sizeof(SamxTensor) + 16));
  for (int i = 0; i < p->n; i++) {
    SamxTensor *t = p->list[i];
    t->shadow = samx_tensor_new(&p->shadows, dt, samx_shape_of(t));
    t->shadow_filled = 0;
  }
  p->shadowed = 1;
}

void samx_params_zero_grad(SamxParams *p) {
  if (p->n_trainable) samx_dev_memset0(p->device, p->grads.base, (size_t)p->n_trainable * sizeof(float));
}

size_t samx_params_value_bytes(const SamxParams *p) {
  return (p->allocated ? p->values.capacity : 0) + (p->shadowed ? p->shadows.capacity : 0);
}

SamxTensor *samx_params_find(const SamxParams *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->list[i]->name, name) == 0) return p->list[i];
  return NULL;
}
