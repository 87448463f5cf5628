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
// An I32 tensor on the context's device from host values.
SamxTensor *sam_index_tensor(SamxCtx *ctx, SamxShape s, const int32_t *host);
// Permute with the permutation given inline: SAM_PERMUTE(ctx, x, 0, 2, 1, 3).
#define SAM_PERMUTE(ctx, x, ...) samx_permute((ctx), (x), (const int[]){__VA_ARGS__})

#endif
