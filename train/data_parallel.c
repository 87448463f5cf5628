// Data parallelism over the flat gradient buffer (train/data_parallel.h).
#include "train/data_parallel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/tape.h"
#include "engine/ops_common.h"
#include "kernels/elementwise.h"
#include "kernels/optim.h"

static size_t fbytes(int64_t n) { return (size_t)n * sizeof(float); }

static void bump_grads(SamxParams *p) {
  for (int i = 0; i < p->n; i++)
    if (p->list[i]->grad) samx_bump_version(p->list[i]->grad);
}

int samx_dp_init(SamxDataParallel *dp, SamxDist *dist, SamxParams *params, SamxOptim *opt, int zero, double bucket_mb,
                 int accum_steps) {
  memset(dp, 0, sizeof *dp);
  dp->dist = dist, dp->params = params, dp->opt = opt;
  dp->world = dist ? dist->world : 1;
  dp->rank = dist ? dist->rank : 0;
  dp->zero = zero && dp->world > 1;
  dp->accum_steps = accum_steps;
  dp->n = params->n_trainable;
  dp->bucket = (int64_t)(bucket_mb * (1 << 20) / sizeof(float));
  if (dp->bucket < 1) dp->bucket = 1;
  dp->shard_n = (dp->n + dp->world - 1) / dp->world;
  dp->padded = dp->shard_n * dp->world;  // padded rather than refused (llm.c fell back to stage 0)
  dp->shard_lo = dp->shard_n * dp->rank;
  int has_m = opt->m != NULL, has_v = opt->v != NULL;
  size_t bytes = 6 * SAMX_ARENA_ALIGN;
  if (accum_steps > 1) bytes += fbytes(dp->n);
  if (dp->zero) bytes += fbytes(dp->padded) + fbytes(dp->shard_n) * (size_t)(1 + has_m + has_v);
  samx_arena_init(&dp->mem, "data parallel", params->device, bytes, 0);
  if (accum_steps > 1) dp->accum = (float *)samx_arena_alloc(&dp->mem, fbytes(dp->n));
  if (dp->zero) {
    dp->flat = (float *)samx_arena_alloc(&dp->mem, fbytes(dp->padded));
    dp->shard_grad = (float *)samx_arena_alloc(&dp->mem, fbytes(dp->shard_n));
    if (has_m) dp->m = (float *)samx_arena_alloc(&dp->mem, fbytes(dp->shard_n));
    if (has_v) dp->v = (float *)samx_arena_alloc(&dp->mem, fbytes(dp->shard_n));
    samx_dev_memset0(params->device, dp->mem.base, dp->mem.capacity);
    // The optimizer's full buffers give way to this rank's shard of them.
    samx_arena_free(&opt->state);
    opt->m = opt->v = NULL;
  }
  return 0;
}

void samx_dp_free(SamxDataParallel *dp) {
  samx_arena_free(&dp->mem);
  free(dp->ready);
  free(dp->order);
  memset(dp, 0, sizeof *dp);
}

static void axpy1(SamxDataParallel *dp, const float *x, float *y, int64_t n) {
  SamxParams *p = dp->params;
  SAMX_ON_DEVICE(p, samx_cpu_elementwise_axpy(1.0f, x, y, n), samx_cuda_elementwise_axpy(1.0f, x, y, n));
}

void samx_dp_micro_done(SamxDataParallel *dp, int64_t micro) {
  int64_t A = dp->accum_steps;
  if (A <= 1 || dp->n == 0) return;
  if (micro == A - 1 && dp->active) return;  // each bucket added its accumulator before its launch
  SamxParams *p = dp->params;
  if (micro == A - 1) {
    axpy1(dp, dp->accum, p->grad_flat, dp->n);  // g_last + (g_0 + ... ): one more sum, like the ranks'
    bump_grads(p);
    return;
  }
  if (micro == 0)
    samx_memcpy(p->device, dp->accum, p->device, p->grad_flat, fbytes(dp->n));
  else
    axpy1(dp, p->grad_flat, dp->accum, dp->n);
  samx_params_zero_grad(p);
  bump_grads(p);
}

// ---- overlap: bucket sums started from inside the backward pass ----
typedef struct {
  const SamxTensor *t;
  int64_t off;
} ParamRef;

static int cmp_ref(const void *a, const void *b) {
  const SamxTensor *x = ((const ParamRef *)a)->t, *y = ((const ParamRef *)b)->t;
  return x < y ? -1 : x > y;
}

// Launch order: descending ready index, ties by ascending bucket index (a stable insertion sort; a
// few hundred buckets at most).
static void launch_order(int *order, const int *ready, int64_t nb) {
  for (int64_t b = 0; b < nb; b++) {
    int64_t k = b;
    while (k > 0 && ready[order[k - 1]] < ready[b]) order[k] = order[k - 1], k--;
    order[k] = (int)b;
  }
}

// Starts the sums of the next buckets in launch order whose ready index is >= upto (all when -1).
static void launch_ready(SamxDataParallel *dp, int upto) {
  SamxParams *p = dp->params;
  while (dp->next < dp->n_buckets && (upto < 0 || dp->ready[dp->order[dp->next]] >= upto)) {
    int64_t b = dp->order[dp->next++], lo = b * dp->bucket, len = dp->n - lo < dp->bucket ? dp->n - lo : dp->bucket;
    if (dp->accum_steps > 1) axpy1(dp, dp->accum + lo, p->grad_flat + lo, len);  // as samx_dp_micro_done
    if (samx_dist_allreduce_start(dp->dist, p->grad_flat + lo, len, SAMX_DIST_F32) != 0) dp->launch_failed = 1;
  }
}

static void after_node(void *user, int i) { launch_ready((SamxDataParallel *)user, i); }

int samx_dp_overlap_begin(SamxDataParallel *dp, SamxCtx *ctx) {
  dp->active = 0;
  if (!dp->overlap || dp->zero || dp->world == 1 || dp->n == 0) return 0;
  SamxParams *p = dp->params;
  SamxOptim *o = dp->opt;
  int64_t nb = (dp->n + dp->bucket - 1) / dp->bucket;
  if (nb != dp->n_buckets) {
    dp->n_buckets = nb;
    dp->ready = (int *)realloc(dp->ready, sizeof(int) * (size_t)nb);
    dp->order = (int *)realloc(dp->order, sizeof(int) * (size_t)nb);
  }
  ParamRef *refs = (ParamRef *)malloc(sizeof(ParamRef) * (size_t)(p->n + 1));
  int nr = 0;
  for (int i = 0; i < p->n; i++)
    if (o->offset[i] >= 0) refs[nr].t = p->list[i], refs[nr++].off = o->offset[i];
  qsort(refs, (size_t)nr, sizeof *refs, cmp_ref);
  // A bucket is final once the backward pass has passed the earliest node reading any of its
  // parameters; a bucket nobody reads is final from the start.
  for (int64_t b = 0; b < nb; b++) dp->ready[b] = ctx->tape.n;
  for (int i = 0; i < ctx->tape.n; i++) {
    const SamxNode *node = &ctx->tape.nodes[i];
    for (int j = 0; j < node->n_in; j++) {
      if (!node->in[j] || !node->in[j]->is_param) continue;
      ParamRef key = {node->in[j], 0};
      const ParamRef *r = (const ParamRef *)bsearch(&key, refs, (size_t)nr, sizeof *refs, cmp_ref);
      if (!r) continue;  // frozen
      for (int64_t b = r->off / dp->bucket; b <= (r->off + r->t->numel - 1) / dp->bucket; b++)
        if (dp->ready[b] > i) dp->ready[b] = i;
    }
  }
  free(refs);
  launch_order(dp->order, dp->ready, nb);
  // The launch order must be every rank's (the same tape structure); else this step waits.
  uint64_t h = 1469598103934665603ull, h0;
  for (int64_t b = 0; b < nb; b++) h = (h ^ (uint64_t)(uint32_t)dp->ready[b]) * 1099511628211ull;
  h0 = h;
  double differs;
  if (samx_dist_broadcast(dp->dist, &h0, sizeof h0, 0) != 0) return -1;
  differs = h != h0;
  if (samx_dist_allreduce_host_f64(dp->dist, &differs, 1) != 0) return -1;
  if (differs) return 0;
  dp->next = 0, dp->launch_failed = 0, dp->active = 1, dp->ctx = ctx;
  ctx->after_node = after_node, ctx->after_node_user = dp;
  return 0;
}

int samx_dp_reduce(SamxDataParallel *dp) {
  if (dp->world == 1 || dp->n == 0) return 0;
  SamxParams *p = dp->params;
  if (dp->active) {
    launch_ready(dp, -1);  // whatever the backward pass did not reach
    dp->active = 0;
    dp->ctx->after_node = NULL, dp->ctx->after_node_user = NULL;
    bump_grads(p);
    int rc = samx_dist_wait(dp->dist);
    return dp->launch_failed ? -1 : rc;
  }
  if (dp->zero) {
    samx_memcpy(p->device, dp->flat, p->device, p->grad_flat, fbytes(dp->n));
    if (dp->padded > dp->n) samx_dev_memset0(p->device, dp->flat + dp->n, fbytes(dp->padded - dp->n));
    return samx_dist_reduce_scatter_sum(dp->dist, dp->flat, dp->shard_grad, dp->shard_n, SAMX_DIST_F32);
  }
  // Contiguous buckets, in buffer order, the same on every rank.
  for (int64_t off = 0; off < dp->n; off += dp->bucket) {
    int64_t len = dp->n - off < dp->bucket ? dp->n - off : dp->bucket;
    if (samx_dist_allreduce_sum(dp->dist, p->grad_flat + off, len, SAMX_DIST_F32) != 0) return -1;
  }
  bump_grads(p);
  return 0;
}

float samx_dp_clip(SamxDataParallel *dp, float max_norm, int *err) {
  *err = 0;
  if (!dp->zero) return samx_clip_grad_norm(dp->params, max_norm);
  SamxParams *p = dp->params;
  double sumsq = 0;
  SAMX_ON_DEVICE(p, sumsq = samx_cpu_optim_sumsq(dp->shard_grad, dp->shard_n),
                 sumsq = samx_cuda_optim_sumsq(dp->shard_grad, dp->shard_n));
  if (samx_dist_allreduce_host_f64(dp->dist, &sumsq, 1) != 0) *err = 1;
  float norm = (float)sqrt(sumsq);
  if (max_norm <= 0.0f || !isfinite(norm)) return norm;
  float coef = (1.0f / (norm + 1e-6f)) * max_norm;  // as samx_clip_grad_norm (torch)
  if (coef < 1.0f)
    SAMX_ON_DEVICE(p, samx_cpu_optim_scale(dp->shard_grad, coef, dp->shard_n),
                   samx_cuda_optim_scale(dp->shard_grad, coef, dp->shard_n));
  return norm;
}

// ZeRO-1: this rank's updated values into flat, all-gathered, and back into every parameter.
static int gather_params(SamxDataParallel *dp) {
  SamxParams *p = dp->params;
  SamxOptim *o = dp->opt;
  for (int i = 0; i < p->n; i++)
    if (o->offset[i] >= 0)
      samx_memcpy(p->device, dp->flat + o->offset[i], p->device, p->list[i]->data, fbytes(p->list[i]->numel));
  if (samx_dist_allgather(dp->dist, dp->flat + dp->shard_lo, dp->flat, dp->shard_n, SAMX_DIST_F32) != 0) return -1;
  for (int i = 0; i < p->n; i++)
    if (o->offset[i] >= 0) {
      samx_memcpy(p->device, p->list[i]->data, p->device, dp->flat + o->offset[i], fbytes(p->list[i]->numel));
      samx_bump_version(p->list[i]);
    }
  return 0;
}

int samx_dp_step(SamxDataParallel *dp, float lr) {
  if (!dp->zero) {
    samx_optim_step(dp->opt, lr);
    return 0;
  }
  int64_t hi = dp->shard_lo + dp->shard_n < dp->n ? dp->shard_lo + dp->shard_n : dp->n;
  if (dp->shard_lo < hi)
    samx_optim_step_range(dp->opt, lr, dp->shard_lo, hi, dp->m, dp->v, dp->shard_grad);
  else
    dp->opt->step++;  // a shard wholly in the padding still counts the step
  return gather_params(dp);
}

int samx_dp_sum(SamxDataParallel *dp, double *v, int n) {
  return dp->world == 1 ? 0 : samx_dist_allreduce_host_f64(dp->dist, v, n);
}

int samx_dp_state_begin(SamxDataParallel *dp, int gather) {
  if (!dp->zero) return 0;
  SamxDevice dev = dp->params->device;
  float **full[2] = {&dp->full_m, &dp->full_v};
  float *shard[2] = {dp->m, dp->v};
  for (int k = 0; k < 2; k++) {
    if (!shard[k]) continue;
    *full[k] = (float *)samx_dev_malloc(dev, fbytes(dp->padded));
    samx_dev_memset0(dev, *full[k], fbytes(dp->padded));
    if (gather) {
      samx_memcpy(dev, *full[k] + dp->shard_lo, dev, shard[k], fbytes(dp->shard_n));
      if (samx_dist_allgather(dp->dist, *full[k] + dp->shard_lo, *full[k], dp->shard_n, SAMX_DIST_F32) != 0) return -1;
    }
  }
  dp->opt->m = dp->full_m, dp->opt->v = dp->full_v;
  return 0;
}

void samx_dp_state_end(SamxDataParallel *dp, int keep_loaded) {
  if (!dp->zero) return;
  SamxDevice dev = dp->params->device;
  if (keep_loaded) {
    if (dp->m) samx_memcpy(dev, dp->m, dev, dp->full_m + dp->shard_lo, fbytes(dp->shard_n));
    if (dp->v) samx_memcpy(dev, dp->v, dev, dp->full_v + dp->shard_lo, fbytes(dp->shard_n));
  }
  samx_dev_free(dev, dp->full_m);
  samx_dev_free(dev, dp->full_v);
  dp->full_m = dp->full_v = NULL;
  dp->opt->m = dp->opt->v = NULL;
}

// FNV-1a over bytes, continued from h.
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = (const unsigned char *)data;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static uint64_t device_hash(uint64_t h, SamxDevice dev, const void *data, size_t n) {
  if (dev.type == SAMX_CPU) return fnv(h, data, n);
  void *host = malloc(n ? n : 1);
  samx_memcpy(samx_cpu(), host, dev, data, n);
  h = fnv(h, host, n);
  free(host);
  return h;
}

int samx_dp_check_same(SamxDataParallel *dp, const char *when) {
  if (dp->world == 1) return 0;
  SamxParams *p = dp->params;
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < p->n; i++) h = device_hash(h, p->device, p->list[i]->data, fbytes(p->list[i]->numel));
  h = fnv(h, &dp->opt->step, sizeof dp->opt->step);
  if (!dp->zero) {  // replicated optimizer state must agree too
    if (dp->opt->m) h = device_hash(h, p->device, dp->opt->m, fbytes(dp->n));
    if (dp->opt->v) h = device_hash(h, p->device, dp->opt->v, fbytes(dp->n));
  }
  uint64_t h0 = h;
  if (samx_dist_broadcast(dp->dist, &h0, sizeof h0, 0) != 0) return -1;
  double *differs = (double *)calloc((size_t)dp->world, sizeof(double));
  differs[dp->rank] = h != h0;
  int rc = samx_dist_allreduce_host_f64(dp->dist, differs, dp->world);
  char list[256] = "";
  size_t len = 0;
  for (int r = 0; rc == 0 && r < dp->world && len < sizeof list - 16; r++)
    if (differs[r] != 0) len += (size_t)snprintf(list + len, sizeof list - len, " %d", r);
  free(differs);
  if (rc != 0) return -1;
  if (len)
    return samx_fail("%s: the parameters or optimizer state of rank(s)%s differ from rank 0's (HINT: every rank must "
                     "read the same checkpoint: a shared run directory)",
                     when, list);
  return 0;
}
