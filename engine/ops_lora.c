#include "ops_lora.h"

#include "../kernels/lora.h"
#include "ops_common.h"
#include "ops_linalg.h"
#include "ops_shape.h"

// w [3C, C], the adapters [r, C] and [C, r], all f32 on one device.
static void check_adapters(const char *op, const SamxTensor *w, const SamxTensor *a_q, const SamxTensor *b_q,
                           const SamxTensor *a_v, const SamxTensor *b_v) {
  SAMX_ASSERT(w->ndim == 2 && w->shape[0] % 3 == 0, "%s: qkv weight has %d dims, shape[0] %lld: expected [3C, in]", op,
              w->ndim, (long long)w->shape[0]);
  int64_t C = w->shape[0] / 3, in = w->shape[1], r = a_q->ndim == 2 ? a_q->shape[0] : -1;
  const SamxTensor *all[4] = {a_q, b_q, a_v, b_v};
  SamxShape want[4] = {SHAPE(r, in), SHAPE(C, r), SHAPE(r, in), SHAPE(C, r)};
  for (int i = 0; i < 4; i++) {
    samx_check_f32(op, all[i]);
    samx_check_same_device(op, w, all[i]);
    samx_check_shape(op, all[i], want[i]);
  }
}

SamxTensor *samx_lora_qkv(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *a_q, SamxTensor *b_q,
                          SamxTensor *a_v, SamxTensor *b_v) {
  check_adapters("lora_qkv", w, a_q, b_q, a_v, b_v);
  int64_t C = w->shape[0] / 3, r = a_q->shape[0];
  SamxTensor *zero_cr = samx_zeros(ctx, SAMX_F32, SHAPE(C, r)), *zero_c2r = samx_zeros(ctx, SAMX_F32, SHAPE(C, 2 * r));
  SamxTensor *a_parts[2] = {a_q, a_v};
  SamxTensor *q_rows[2] = {b_q, zero_cr}, *v_rows[2] = {zero_cr, b_v};
  SamxTensor *b_parts[3] = {samx_concat(ctx, q_rows, 2, 1), zero_c2r, samx_concat(ctx, v_rows, 2, 1)};
  SamxTensor *a = samx_concat(ctx, a_parts, 2, 0), *bb = samx_concat(ctx, b_parts, 3, 0);
  return samx_lora_linear(ctx, x, w, b, a, bb, 1.0f);
}

void samx_lora_merge_qkv(SamxTensor *w, const SamxTensor *a_q, const SamxTensor *b_q, const SamxTensor *a_v,
                         const SamxTensor *b_v, float sign) {
  check_adapters("lora_merge_qkv", w, a_q, b_q, a_v, b_v);
  int64_t C = w->shape[0] / 3, in = w->shape[1];
  int r = (int)a_q->shape[0];
  float *pw = samx_f32(w);
  const float *aq = samx_f32(a_q), *bq = samx_f32(b_q);
  const float *av = samx_f32(a_v), *bv = samx_f32(b_v);
  SAMX_ON_DEVICE(w, samx_cpu_lora_merge(pw, aq, bq, r, C, in, sign), samx_cuda_lora_merge(pw, aq, bq, r, C, in, sign));
  SAMX_ON_DEVICE(w, samx_cpu_lora_merge(pw + 2 * C * in, av, bv, r, C, in, sign),
                 samx_cuda_lora_merge(pw + 2 * C * in, av, bv, r, C, in, sign));
  samx_bump_version(w);
}
