// Shared by the SAM implementation files.
#ifndef SAMX_SAM_INTERNAL_H
#define SAMX_SAM_INTERNAL_H

#include "engine/ops_common.h"
#include "sam.h"

// The parameter with the printf-formatted name (aborts if it was not declared: a bug).
SamxTensor *sam_param(const SamModel *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// y = x W^T + b for the Linear module at `prefix` (its .weight and .bias).
SamxTensor *sam_linear(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix);
// A linear layer whose output is an activation of dtype act: in BF16 (inference in bf16 precision)
// the GEMM writes bf16 itself; F32 is sam_linear.
SamxTensor *sam_linear_to(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, SamxDType act);
// x + linear(h) for the layer `prefix`. In bf16 inference (x BF16) the GEMM adds the residual itself,
// in place over x (samx_linear_bf16_residual: cuBLASLt's beta C, one rounding), so neither the layer's
// output nor the sum is a pass of its own; fp32 and tf32 inference add in place too (samx_add_, the
// same arithmetic as samx_add), so a block's output stream sits where its input was and a release moves
// none of it. Either way the caller must not read x afterwards. Training gets a new tensor.
SamxTensor *sam_residual_linear(SamxCtx *ctx, const SamModel *m, SamxTensor *x, SamxTensor *h, const char *prefix);
// The boundary between bf16 activations and ops that take F32 only (conv, matmul, LoRA; permute,
// slice and window partition move either, in inference): t in dtype dt, t itself when it already is
// (so fp32 runs are unchanged). A cast passes gradients through unchanged.
SamxTensor *sam_as_dtype(SamxCtx *ctx, SamxTensor *t, SamxDType dt);
// The dtype of an attention's q, k and v: BF16 (the tensor-core kernel, forward and backward) in bf16
// precision when it takes the head dim, in training too; else F32.
SamxDType sam_attention_dtype(const SamxCtx *ctx, int64_t head_dim);
// An I32 tensor on the context's device from host values.
SamxTensor *sam_index_tensor(SamxCtx *ctx, SamxShape s, const int32_t *host);
// Permute with the permutation given inline: SAM_PERMUTE(ctx, x, 0, 2, 1, 3).
#define SAM_PERMUTE(ctx, x, ...) samx_permute((ctx), (x), (const int[]){__VA_ARGS__})

#endif
