// Multi-head scaled-dot-product attention with SAM's decomposed relative-position bias.
//
//   logits[b,h,i,j] = scale * <q_i, k_j> + bias[b,h,i,j]
//   bias[b,h,i,kh*KW + kw] = rel_h[b,h,i,kh] + rel_w[b,h,i,kw]     (add_decomposed_rel_pos)
//   out[b,h,i,:] = sum_j softmax_j(logits[b,h,i,:]) v_j
//
// Forward keeps only the per-row log-sum-exp lse = log sum_j exp(logits[i,j]); backward recomputes
// the probabilities p = exp(logit - lse) from it, never storing a Tq x Tk matrix.
// Backward, with delta_i = <dout_i, out_i> and dlogit_ij = p_ij (<dout_i, v_j> - delta_i):
//   dq_i += scale sum_j dlogit_ij k_j      dk_j += scale sum_i dlogit_ij q_i      dv_j += sum_i p_ij dout_i
//   drel_h[i,kh] += sum_kw dlogit[i, kh*KW+kw]        drel_w[i,kw] += sum_kh dlogit[i, kh*KW+kw]
//
// defines: SamxAttnDims, the shared per-element math, and the launchers.
#ifndef SAMX_KERNELS_ATTENTION_H
#define SAMX_KERNELS_ATTENTION_H

#include <stddef.h>

#include "common.h"

#define SAMX_ATTN_MAX_D 128

// Sizes of one attention call. q [B,H,Tq,D]; k, v [B,H,Tk,D]; out [B,H,Tq,D]; lse [B,H,Tq];
// rel_h [B,H,Tq,KH] and rel_w [B,H,Tq,KW] with KH*KW == Tk, or KH = KW = 0 for no bias.
typedef struct {
  int64_t B, H, Tq, Tk, D;
  int64_t KH, KW;
  float scale;
} SamxAttnDims;

// Bias of key j for one query row (rel_h_row, rel_w_row: that row of rel_h, rel_w; NULL: no bias).
SAMX_HD float samx_attn_bias(const float *rel_h_row, const float *rel_w_row, int KW, int j) {
  return rel_h_row ? rel_h_row[j / KW] + rel_w_row[j % KW] : 0.0f;
}

SAMX_HD float samx_attn_logit(float qk, float scale, float bias) { return scale * qk + bias; }

// Log-sum-exp of a row from its running max m and sum l of exp(logit - m).
SAMX_HD float samx_attn_lse(float m, float l) { return m + logf(l); }

SAMX_HD float samx_attn_prob(float logit, float lse) { return expf(logit - lse); }

// dL/dlogit from the probability p, dp = <dout_i, v_j> and delta_i = <dout_i, out_i>.
SAMX_HD float samx_attn_dlogit(float p, float dp, float delta) { return p * (dp - delta); }

// ---- launchers on raw pointers (all contiguous f32; d passed by value) ----
// Argument order: dims, inputs (q, k, v, rel_h, rel_w), outputs (out, lse), then scratch.
// rel_h, rel_w: NULL when d.KH == 0. lse: may be NULL (inference; backward then impossible).

// Floats of scratch the CPU launchers need (forward and backward), for the current OpenMP thread count.
SAMX_EXTERN_C size_t samx_cpu_attention_scratch_floats(SamxAttnDims d);
SAMX_EXTERN_C void samx_cpu_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                          const float *rel_h, const float *rel_w, float *out, float *lse,
                                          float *scratch);
// Backward: adds into dq, dk, dv, drel_h, drel_w; any of them may be NULL (no gradient wanted).
SAMX_EXTERN_C void samx_cpu_attention_bwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                          const float *rel_h, const float *rel_w, const float *out,
                                          const float *lse, const float *dout, float *dq, float *dk, float *dv,
                                          float *drel_h, float *drel_w, float *scratch);

// CUDA: all pointers on the current device. delta: [B,H,Tq] device scratch for backward.
SAMX_EXTERN_C void samx_cuda_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                           const float *rel_h, const float *rel_w, float *out, float *lse);
SAMX_EXTERN_C void samx_cuda_attention_bwd(SamxAttnDims d, const float *q, const float *k, const float *v,
                                           const float *rel_h, const float *rel_w, const float *out,
                                           const float *lse, const float *dout, float *dq, float *dk, float *dv,
                                           float *drel_h, float *drel_w, float *delta);

#endif
