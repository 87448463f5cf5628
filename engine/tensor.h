// Tensors: contiguous row-major blocks of up to 5 dims with a dtype, a device and a version counter.
// Headers live in arenas (host side), data in the arena's device memory.
#ifndef SAMX_TENSOR_H
#define SAMX_TENSOR_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "device.h"
#include "dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_MAX_DIMS 5

typedef struct {
  int ndim;
  int64_t d[SAMX_MAX_DIMS];
} SamxShape;

#define SAMX_NARGS_(_1, _2, _3, _4, _5, N, ...) N
#define SAMX_NARGS(...) SAMX_NARGS_(__VA_ARGS__, 5, 4, 3, 2, 1, 0)
// SHAPE(2, 3, 4) -> a 3-dim shape.
#define SHAPE(...) ((SamxShape){SAMX_NARGS(__VA_ARGS__), {__VA_ARGS__}})

typedef struct SamxTensor {
  void *data;
  SamxDType dtype;
  SamxDevice device;
  int ndim;
  int64_t shape[SAMX_MAX_DIMS];
  int64_t numel;
  struct SamxTensor *grad;  // f32, same shape and device; NULL until backward reaches it
  struct SamxTensor *base;  // a view (reshape) shares its base's data and version counter
  uint32_t version;         // bumped by every in-place write; read through samx_version()
  uint8_t requires_grad;    // trainable parameter, or computed from one with recording on
  uint8_t is_param;         // gradient buffer owned by a parameter store (kept across steps)
  uint8_t shadow_filled;    // shadow holds this tensor's values at version shadow_of
  uint32_t shadow_of;
  // A parameter's bf16 GEMM operand kept between calls (samx_params_shadow_bf16), or NULL: refilled by
  // the GEMM that reads it when the parameter has been written since (its version moved).
  struct SamxTensor *shadow;
  const char *name;
} SamxTensor;

SamxShape samx_shape_of(const SamxTensor *t);
int64_t samx_shape_numel(SamxShape s);
int samx_shape_eq(SamxShape a, SamxShape b);
// "[2, 3, 4]" into buf.
const char *samx_shape_str(SamxShape s, char *buf, size_t n);
size_t samx_nbytes(const SamxTensor *t);

// A tensor with uninitialised data carved from arena a.
SamxTensor *samx_tensor_new(SamxArena *a, SamxDType dt, SamxShape s);
SamxTensor *samx_tensor_zeros(SamxArena *a, SamxDType dt, SamxShape s);
// A header over existing memory (not owned).
SamxTensor *samx_tensor_wrap(SamxArena *a, void *data, SamxDevice dev, SamxDType dt, SamxShape s);

// Dim i counted from the end when negative.
int64_t samx_dim(const SamxTensor *t, int i);

static inline float *samx_f32(const SamxTensor *t) { return (float *)t->data; }

uint32_t samx_version(const SamxTensor *t);
// Every function that writes into an existing tensor calls this (see the tape's saved-version check).
void samx_bump_version(SamxTensor *t);

// Host <-> tensor copies; the tensor's dtype must match (f32 helpers convert from/to f32).
void samx_tensor_write(SamxTensor *t, const void *host);       // bumps the version
void samx_tensor_read(const SamxTensor *t, void *host);
void samx_tensor_write_f32(SamxTensor *t, const float *host);  // converts to t's dtype, bumps the version
void samx_tensor_read_f32(const SamxTensor *t, float *host);   // converts from t's dtype
void samx_tensor_fill(SamxTensor *t, float value);             // any float dtype; bumps the version
void samx_tensor_copy(SamxTensor *dst, const SamxTensor *src); // same dtype and numel, any devices

// Debug print of the first elements.
void samx_tensor_print(const SamxTensor *t, const char *label, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
