// Attention on tensor cores: bf16 q, k, v and output, fp32 accumulation and fp32 softmax statistics,
// SAM's decomposed relative-position bias fused (the math of kernels/attention.h, whose per-element
// functions both paths call). The CUDA kernels (kernels/cuda/attention_bf16.cu) use nvcuda::wmma
// 16x16x16 bf16 tiles; the CPU reference is the fp32 kernel on the bf16 values (engine/ops_attention.c).
//
// Layouts as in kernels/attention.h; q, k, v, out hold bf16 bits (uint16_t), rel_h, rel_w, lse,
// dout and every gradient are fp32. The head dim must be 16, 32, 64 or 128 (a whole number of
// 16-wide tensor-core tiles).
#ifndef SAMX_KERNELS_ATTENTION_BF16_H
#define SAMX_KERNELS_ATTENTION_BF16_H

#include "attention.h"

// Whether the tensor-core kernels take head dim D.
SAMX_HD int samx_attention_bf16_head_dim_ok(int64_t D) { return D == 16 || D == 32 || D == 64 || D == 128; }

// Forward: out [B,H,Tq,D] (bf16), lse [B,H,Tq] (fp32, may be NULL).
SAMX_EXTERN_C void samx_cuda_attention_bf16_fwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k,
                                                const uint16_t *v, const float *rel_h, const float *rel_w,
                                                uint16_t *out, float *lse);
// Backward (FlashAttention-2 order, logits recomputed from lse): adds into dq, dk, dv, drel_h, drel_w
// (fp32; any may be NULL). delta: [B,H,Tq] fp32 device scratch.
SAMX_EXTERN_C void samx_cuda_attention_bf16_bwd(SamxAttnDims d, const uint16_t *q, const uint16_t *k,
                                                const uint16_t *v, const float *rel_h, const float *rel_w,
                                                const uint16_t *out, const float *lse, const float *dout, float *dq,
                                                float *dk, float *dv, float *drel_h, float *drel_w, float *delta);

#endif
