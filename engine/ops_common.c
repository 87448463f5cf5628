#include "ops_common.h"

void samx_check_f32(const char *op, const SamxTensor *t) {
  if (t->dtype != SAMX_F32)
    SAMX_DIE("%s: expected an F32 tensor, got %s (HINT: cast with samx_cast first)", op, samx_dtype_name(t->dtype));
}

void samx_check_bf16_inference(const char *op, const SamxCtx *ctx, int n, SamxTensor *const *in) {
  if (!ctx->recording) return;
  for (int i = 0; i < n; i++)
    if (in[i] && in[i]->requires_grad)
      SAMX_DIE("%s: BF16 activations have no backward yet (HINT: train in fp32/tf32, or turn recording off)", op);
}

void samx_check_same_device(const char *op, const SamxTensor *a, const SamxTensor *b) {
  if (!samx_device_eq(a->device, b->device)) {
    char da[16], db[16];
    SAMX_DIE("%s: tensors on different devices (%s and %s)", op, samx_device_str(a->device, da, sizeof da),
             samx_device_str(b->device, db, sizeof db));
  }
}

void samx_check_shape(const char *op, const SamxTensor *t, SamxShape want) {
  if (!samx_shape_eq(samx_shape_of(t), want)) {
    char a[96], b[96];
    SAMX_DIE("%s: tensor %s has shape %s, expected %s", op, t->name ? t->name : "", 
             samx_shape_str(samx_shape_of(t), a, sizeof a), samx_shape_str(want, b, sizeof b));
  }
}

void samx_check_same_shape(const char *op, const SamxTensor *a, const SamxTensor *b) {
  samx_check_shape(op, b, samx_shape_of(a));
}

SamxTensor *samx_new_like(SamxCtx *ctx, const SamxTensor *t) {
  SamxTensor *out = samx_new(ctx, SAMX_F32, samx_shape_of(t));
  return out;
}
