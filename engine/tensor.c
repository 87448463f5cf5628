#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

SamxShape samx_shape_of(const SamxTensor *t) {
  SamxShape s = {t->ndim, {0}};
  for (int i = 0; i < t->ndim; i++) s.d[i] = t->shape[i];
  return s;
}

int64_t samx_shape_numel(SamxShape s) {
  int64_t n = 1;
  for (int i = 0; i < s.ndim; i++) n *= s.d[i];
  return n;
}

int samx_shape_eq(SamxShape a, SamxShape b) {
  if (a.ndim != b.ndim) return 0;
  for (int i = 0; i < a.ndim; i++)
    if (a.d[i] != b.d[i]) return 0;
  return 1;
}

const char *samx_shape_str(SamxShape s, char *buf, size_t n) {
  size_t off = 0;
  off += (size_t)snprintf(buf + off, n - off, "[");
  for (int i = 0; i < s.ndim && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)s.d[i]);
  if (off < n) snprintf(buf + off, n - off, "]");
  return buf;
}

size_t samx_nbytes(const SamxTensor *t) { return (size_t)t->numel * samx_dtype_size(t->dtype); }

static SamxTensor *header(SamxArena *a, SamxDType dt, SamxShape s) {
  SAMX_ASSERT(s.ndim >= 0 && s.ndim <= SAMX_MAX_DIMS, "tensor rank %d outside 0..%d", s.ndim, SAMX_MAX_DIMS);
  SamxTensor *t = (SamxTensor *)samx_arena_meta(a, sizeof(SamxTensor));
  t->dtype = dt;
  t->device = a->device;
  t->ndim = s.ndim;
  t->numel = 1;
  for (int i = 0; i < s.ndim; i++) {
    SAMX_ASSERT(s.d[i] >= 0, "negative dimension %lld", (long long)s.d[i]);
    t->shape[i] = s.d[i];
    t->numel *= s.d[i];
  }
  return t;
}

SamxTensor *samx_tensor_new(SamxArena *a, SamxDType dt, SamxShape s) {
  SamxTensor *t = header(a, dt, s);
  t->data = samx_arena_alloc_tagged(a, samx_nbytes(t), dt);
  return t;
}

SamxTensor *samx_tensor_zeros(SamxArena *a, SamxDType dt, SamxShape s) {
  SamxTensor *t = samx_tensor_new(a, dt, s);
  samx_dev_memset0(t->device, t->data, samx_nbytes(t));
  return t;
}

SamxTensor *samx_tensor_wrap(SamxArena *a, void *data, SamxDevice dev, SamxDType dt, SamxShape s) {
  SamxTensor *t = header(a, dt, s);
  t->device = dev;
  t->data = data;
  return t;
}

int64_t samx_dim(const SamxTensor *t, int i) {
  if (i < 0) i += t->ndim;
  SAMX_ASSERT(i >= 0 && i < t->ndim, "dim %d out of range for a %d-dim tensor", i, t->ndim);
  return t->shape[i];
}

static const SamxTensor *root(const SamxTensor *t) {
  while (t->base) t = t->base;
  return t;
}

uint32_t samx_version(const SamxTensor *t) { return root(t)->version; }

void samx_bump_version(SamxTensor *t) { ((SamxTensor *)root(t))->version++; }

void samx_tensor_write(SamxTensor *t, const void *host) {
  samx_memcpy(t->device, t->data, samx_cpu(), host, samx_nbytes(t));
  samx_bump_version(t);
}

void samx_tensor_read(const SamxTensor *t, void *host) {
  samx_memcpy(samx_cpu(), host, t->device, t->data, samx_nbytes(t));
}

static void convert_from_f32(SamxDType dt, const float *src, void *dst, int64_t n) {
  switch (dt) {
    case SAMX_F32: memcpy(dst, src, (size_t)n * 4); break;
    case SAMX_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = samx_f32_to_bf16(src[i]); break;
    case SAMX_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = samx_f32_to_f16(src[i]); break;
    case SAMX_I32: for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)src[i]; break;
    case SAMX_U8: for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)src[i]; break;
    case SAMX_I64: for (int64_t i = 0; i < n; i++) ((int64_t *)dst)[i] = (int64_t)src[i]; break;
    default: SAMX_DIE("bad dtype %d", (int)dt);
  }
}

static void convert_to_f32(SamxDType dt, const void *src, float *dst, int64_t n) {
  switch (dt) {
    case SAMX_F32: memcpy(dst, src, (size_t)n * 4); break;
    case SAMX_BF16: for (int64_t i = 0; i < n; i++) dst[i] = samx_bf16_to_f32(((const uint16_t *)src)[i]); break;
    case SAMX_F16: for (int64_t i = 0; i < n; i++) dst[i] = samx_f16_to_f32(((const uint16_t *)src)[i]); break;
    case SAMX_I32: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
    case SAMX_U8: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const uint8_t *)src)[i]; break;
    case SAMX_I64: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int64_t *)src)[i]; break;
    default: SAMX_DIE("bad dtype %d", (int)dt);
  }
}

void samx_tensor_write_f32(SamxTensor *t, const float *host) {
  if (t->dtype == SAMX_F32 && t->device.type == SAMX_CPU) {
    memcpy(t->data, host, samx_nbytes(t));
    samx_bump_version(t);
    return;
  }
  void *tmp = malloc(samx_nbytes(t) + 1);
  convert_from_f32(t->dtype, host, tmp, t->numel);
  samx_tensor_write(t, tmp);
  free(tmp);
}

void samx_tensor_read_f32(const SamxTensor *t, float *host) {
  if (t->dtype == SAMX_F32) {
    samx_tensor_read(t, host);
    return;
  }
  void *tmp = malloc(samx_nbytes(t) + 1);
  samx_tensor_read(t, tmp);
  convert_to_f32(t->dtype, tmp, host, t->numel);
  free(tmp);
}

void samx_tensor_fill(SamxTensor *t, float value) {
  float *tmp = (float *)malloc((size_t)t->numel * sizeof(float) + 4);
  for (int64_t i = 0; i < t->numel; i++) tmp[i] = value;
  samx_tensor_write_f32(t, tmp);
  free(tmp);
}

void samx_tensor_copy(SamxTensor *dst, const SamxTensor *src) {
  SAMX_ASSERT(dst->dtype == src->dtype && dst->numel == src->numel, "tensor_copy: dtype or size mismatch");
  samx_memcpy(dst->device, dst->data, src->device, src->data, samx_nbytes(src));
  samx_bump_version(dst);
}

void samx_tensor_print(const SamxTensor *t, const char *label, FILE *f) {
  char s[96];
  int64_t n = t->numel < 8 ? t->numel : 8;
  float *tmp = (float *)malloc((size_t)t->numel * sizeof(float) + 4);
  samx_tensor_read_f32(t, tmp);
  fprintf(f, "%s %s %s:", label, samx_dtype_name(t->dtype), samx_shape_str(samx_shape_of(t), s, sizeof s));
  for (int64_t i = 0; i < n; i++) fprintf(f, " %.6g", tmp[i]);
  fprintf(f, t->numel > n ? " ...\n" : "\n");
  free(tmp);
}
