// defines: samx_matmul, samx_linear, samx_linear_bf16, samx_linear_bf16_gelu, samx_linear_bf16_residual,
// samx_linear_residual, samx_lora_linear, samx_gemm_f32, samx_embedding (f32 unless stated).
#ifndef SAMX_OPS_LINALG_H
#define SAMX_OPS_LINALG_H

#include "tape.h"

// Batched matrix product op(a) op(b) -> [..., M, N] (torch.matmul with optional transposes of the last
// two dims). a: [..., M, K], or [..., K, M] when trans_a. b: [..., K, N], or [..., N, K] when trans_b,
// with the same leading (batch) dims as a, or 2-D: one matrix broadcast over a's batch (a weight; its
// gradient sums over the batch). b may be BF16 in inference (no transposes): fp32 products of its exact
// values, F32 out (SAM's mask product over the bf16 upscaled embedding).
SamxTensor *samx_matmul(SamxCtx *ctx, SamxTensor *a, SamxTensor *b, int trans_a, int trans_b);

// torch.nn.functional.linear: y = x w^T + b. x [..., in], w [out, in], b [out] or NULL -> y [..., out].
// x may be BF16 in bf16 precision (inference only): the GEMM's operand as is; y stays F32.
SamxTensor *samx_linear(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b);

// Inference in bf16 precision: y = x w^T + b written as BF16 by the GEMM itself (no f32 y, no cast
// kernel). x F32 or BF16; the bias enters in bf16, as cuBLASLt takes it with a bf16 output (and as
// PyTorch's autocast rounds a linear's bias). No backward: dies when recording with a trainable input.
SamxTensor *samx_linear_bf16(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b);

// Inference in bf16 precision: y = GELU(x w^T + b) as BF16, the GELU in the GEMM's epilogue (cuBLASLt's
// GELU_BIAS) on the fp32 sum before the one rounding, so neither the pre-activation nor a GELU pass
// exists. The GELU is the tanh form cuBLASLt computes (samx_gelu_tanhf, within 4.8e-4 of nn.GELU's erf
// form), not samx_gelu's. No backward.
SamxTensor *samx_linear_bf16_gelu(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b);

// Inference in bf16 precision: residual += x w^T + b in place (residual BF16 [..., out], dead after this
// as anything but the result), through the GEMM's beta C (cuBLASLt: C = D, one rounding of the fp32
// sum to bf16), so the residual add is no pass of its own. Returns residual. No backward.
SamxTensor *samx_linear_bf16_residual(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *residual);
// y = residual + x w^T + b, a new F32 tensor (residual F32 [..., out]; x F32, or BF16 in bf16 precision),
// with a backward. In bf16 precision on CUDA the add is the GEMM's: cuBLASLt's beta C with C = residual
// and D = y, so the product is never written and read back on its own (the residual streams of bf16
// training). Elsewhere samx_add(residual, samx_linear(x, w, b)), bit for bit.
SamxTensor *samx_linear_residual(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *residual);

// Linear with a LoRA adapter (peft's convention): y = x w^T + b + scale * (x lora_a^T) lora_b^T.
// lora_a [r, in], lora_b [out, r]; w and b (b may be NULL) are usually frozen, and then cost no
// gradient work.
SamxTensor *samx_lora_linear(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *lora_a,
                             SamxTensor *lora_b, float scale);

// A raw row-major GEMM for the other op families (convolutions), computed where `on` lives in the
// context's precision as the linear layers are: C [m, n] = op(A) op(B) + beta C with op(A) [m, k] and
// op(B) [k, n] (ta / tb: stored transposed). fp32 and tf32 as cuBLAS computes them; bf16 rounds A and
// B to bf16 (temporary copies) and accumulates in fp32 into the f32 C (cuBLASLt on CUDA, the reference
// rounding on the CPU).
void samx_gemm_f32(SamxCtx *ctx, const SamxTensor *on, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                   const float *b, float beta, float *c);

// torch.nn.functional.embedding: rows of table [V, D] picked by idx (I32, any shape) -> [..., D].
// An index outside [0, V) is a bug in the caller (SAMX_DIE naming it).
SamxTensor *samx_embedding(SamxCtx *ctx, SamxTensor *table, SamxTensor *idx);

#endif
