#include "ops_fewshot.h"

#include "../kernels/fewshot.h"
#include "ops_common.h"

typedef struct {
  SamxTensor *wsum;  // [N, L], from the forward
  int64_t N, L, C, P;
} MaskedMeanArgs;

static void masked_mean_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *emb = node->in[0], *w = node->in[1], *out = node->out;
  SamxTensor *gz = samx_grad_of(ctx, emb);
  if (!gz) return;
  const MaskedMeanArgs *a = samx_node_args(node, MaskedMeanArgs);
  SAMX_ON_DEVICE(out,
                 samx_cpu_fewshot_masked_mean_bwd(samx_f32(w), samx_f32(a->wsum), samx_f32(out->grad), samx_f32(gz),
                                                  a->N, a->L, a->C, a->P),
                 samx_cuda_fewshot_masked_mean_bwd(samx_f32(w), samx_f32(a->wsum), samx_f32(out->grad), samx_f32(gz),
                                                   a->N, a->L, a->C, a->P));
}

SamxTensor *samx_fewshot_masked_mean(SamxCtx *ctx, SamxTensor *emb, SamxTensor *w) {
  const char *op = "fewshot_masked_mean";
  samx_check_f32(op, emb);
  samx_check_f32(op, w);
  samx_check_same_device(op, emb, w);
  SAMX_ASSERT(emb->ndim >= 3 && w->ndim == emb->ndim && emb->shape[0] == w->shape[0],
              "%s: emb [N, C, ...] and w [N, L, ...] must agree on N and rank (got ranks %d, %d)", op,
              emb->ndim, w->ndim);
  int64_t N = emb->shape[0], C = emb->shape[1], L = w->shape[1], P = emb->numel / (N * C);
  SAMX_ASSERT(w->numel == N * L * P, "%s: w has %lld values, expected N %lld x L %lld x P %lld", op,
              (long long)w->numel, (long long)N, (long long)L, (long long)P);
  SamxTensor *out = samx_new(ctx, SAMX_F32, SHAPE(N, L, C)), *wsum = samx_new(ctx, SAMX_F32, SHAPE(N, L));
  SAMX_ON_DEVICE(emb, samx_cpu_fewshot_masked_mean_fwd(samx_f32(emb), samx_f32(w), samx_f32(wsum), samx_f32(out), N, L, C, P),
                 samx_cuda_fewshot_masked_mean_fwd(samx_f32(emb), samx_f32(w), samx_f32(wsum), samx_f32(out), N, L, C, P));
  SamxTensor *in[2] = {emb, w};
  SamxNode *node = samx_record(ctx, op, masked_mean_backward, out, 2, in);
  if (node) {
    MaskedMeanArgs *a = samx_node_args(node, MaskedMeanArgs);
    *a = (MaskedMeanArgs){wsum, N, L, C, P};
    samx_node_save(node, w);
  }
  return out;
}
