#include "tape.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void samx_ctx_init(SamxCtx *ctx, SamxDevice device, size_t act_bytes, int max_nodes) {
  memset(ctx, 0, sizeof *ctx);
  ctx->device = device;
  samx_device_activate(device);
  // Headers: a generous fixed share of host memory, proportional to the tape size.
  size_t meta = (size_t)max_nodes * 8 * sizeof(SamxTensor) + (1 << 20);
  samx_arena_init(&ctx->act, "activations", device, act_bytes, meta);
  ctx->tape.capacity = max_nodes;
  ctx->tape.nodes = (SamxNode *)calloc((size_t)max_nodes, sizeof(SamxNode));
  SAMX_ASSERT(ctx->tape.nodes, "out of memory for a tape of %d nodes", max_nodes);
  ctx->recording = 1;
  ctx->precision = samx_precision_on(device);
}

void samx_ctx_free(SamxCtx *ctx) {
  samx_arena_free(&ctx->act);
  samx_free_list_free(&ctx->grad_free);
  free(ctx->tape.nodes);
  memset(ctx, 0, sizeof *ctx);
}

void samx_ctx_reset(SamxCtx *ctx) {
  samx_arena_reset(&ctx->act);
  ctx->tape.n = 0;
}

int samx_ctx_set_recording(SamxCtx *ctx, int on) {
  int prev = ctx->recording;
  ctx->recording = on;
  return prev;
}

size_t samx_ctx_mark(const SamxCtx *ctx) { return ctx->act.used; }

// Whether t's bytes lie in the activation arena at or past byte `mark` (what a rewind to it frees).
static int above_mark(const SamxCtx *ctx, const SamxTensor *t, size_t mark) {
  const char *p = (const char *)t->data;
  return p >= ctx->act.base + mark && p < ctx->act.base + ctx->act.used;
}

void samx_ctx_release_keep(SamxCtx *ctx, size_t mark, SamxTensor **keep, int n) {
  SAMX_ASSERT(!ctx->recording, "samx_ctx_release_keep while recording: the tape still needs those tensors");
  // Park the kept tensors above everything in use, then copy them down from the mark: sources and
  // destinations never overlap that way. One below the mark (or outside the arena) stays as it is.
  void **parked = (void **)malloc(sizeof(void *) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) {
    parked[i] = NULL;
    if (!above_mark(ctx, keep[i], mark)) continue;
    parked[i] = samx_arena_alloc(&ctx->act, samx_nbytes(keep[i]));
    samx_memcpy(ctx->device, parked[i], ctx->device, keep[i]->data, samx_nbytes(keep[i]));
  }
  samx_arena_rewind(&ctx->act, mark);
  for (int i = 0; i < n; i++) {
    if (!parked[i]) continue;
    void *dst = samx_arena_alloc_tagged(&ctx->act, samx_nbytes(keep[i]), keep[i]->dtype);
    samx_memcpy(ctx->device, dst, ctx->device, parked[i], samx_nbytes(keep[i]));
    keep[i]->data = dst;
    keep[i]->base = NULL;
  }
  free(parked);
}

void samx_ctx_release(SamxCtx *ctx, size_t mark) {
  SAMX_ASSERT(!ctx->recording, "samx_ctx_release while recording: the tape still needs those tensors");
  SAMX_ASSERT(mark <= ctx->act.used, "samx_ctx_release: mark %zu is past the arena's use %zu", mark, ctx->act.used);
  samx_arena_rewind(&ctx->act, mark);
}

SamxTensor *samx_ctx_release_to(SamxCtx *ctx, size_t mark, SamxTensor *keep) {
  SAMX_ASSERT(!ctx->recording, "samx_ctx_release_to while recording: the tape still needs those tensors");
  size_t start = (mark + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1);
  char *dst = ctx->act.base + start, *src = (char *)keep->data;
  size_t bytes = samx_nbytes(keep);
  SAMX_ASSERT(src >= ctx->act.base && src + bytes <= ctx->act.base + ctx->act.used,
              "samx_ctx_release_to: the kept tensor is not in the activation arena");
  if (dst != src) {
    // Regions may overlap when the block allocated little besides its output: copy through the end.
    if (dst + bytes > src) {
      char *tmp = (char *)samx_arena_alloc(&ctx->act, bytes);
      samx_memcpy(ctx->device, tmp, ctx->device, src, bytes);
      src = tmp;
    }
    samx_memcpy(ctx->device, dst, ctx->device, src, bytes);
  }
  keep->data = dst;
  keep->base = NULL;  // the view's base (if any) is released; the kept tensor now owns its bytes
  samx_arena_rewind(&ctx->act, start);
  samx_arena_claim(&ctx->act, start, bytes, keep->dtype);
  return keep;
}

SamxTensor *samx_new(SamxCtx *ctx, SamxDType dt, SamxShape s) { return samx_tensor_new(&ctx->act, dt, s); }

SamxTensor *samx_zeros(SamxCtx *ctx, SamxDType dt, SamxShape s) { return samx_tensor_zeros(&ctx->act, dt, s); }

SamxTensor *samx_from_host(SamxCtx *ctx, SamxShape s, const float *host) {
  SamxTensor *t = samx_new(ctx, SAMX_F32, s);
  samx_tensor_write(t, host);
  return t;
}

SamxNode *samx_record(SamxCtx *ctx, const char *op, SamxBackwardFn backward, SamxTensor *out, int n_in,
                      SamxTensor *const *in) {
  if (!ctx->recording) return NULL;
  int any = 0;
  for (int i = 0; i < n_in; i++) any |= in[i] && in[i]->requires_grad;
  if (!any) return NULL;
  SAMX_ASSERT(n_in <= SAMX_NODE_MAX_IN, "op %s: %d inputs, at most %d", op, n_in, SAMX_NODE_MAX_IN);
  SAMX_ASSERT(ctx->tape.n < ctx->tape.capacity, "tape full (%d nodes) at op %s (HINT: raise max_nodes)",
              ctx->tape.capacity, op);
  SamxNode *node = &ctx->tape.nodes[ctx->tape.n++];
  memset(node, 0, offsetof(SamxNode, args));
  node->op = op;
  node->backward = backward;
  node->n_in = n_in;
  for (int i = 0; i < n_in; i++) node->in[i] = in[i];
  node->out = out;
  out->requires_grad = 1;
  return node;
}

void samx_node_save(SamxNode *node, SamxTensor *t) {
  SAMX_ASSERT(node->n_saved < SAMX_NODE_MAX_SAVED, "op %s saves too many tensors", node->op);
  node->saved[node->n_saved] = t;
  node->saved_version[node->n_saved] = samx_version(t);
  node->n_saved++;
}

void *samx_node_args_(SamxNode *node, size_t size) {
  SAMX_ASSERT(size <= SAMX_NODE_ARGS_BYTES, "op %s: args of %zu bytes exceed %d", node->op, size,
              SAMX_NODE_ARGS_BYTES);
  return node->args;
}

SamxTensor *samx_grad_of(SamxCtx *ctx, SamxTensor *t) {
  if (!t || !t->requires_grad) return NULL;
  if (!t->grad) {
    SAMX_ASSERT(!t->is_param, "parameter %s has no gradient buffer", t->name ? t->name : "?");
    size_t start, bytes = (size_t)t->numel * sizeof(float);
    if (ctx->in_backward && samx_free_list_take(&ctx->grad_free, bytes, &start)) {
      t->grad = samx_tensor_wrap(&ctx->act, ctx->act.base + start, ctx->act.device, SAMX_F32, samx_shape_of(t));
      samx_dev_memset0(ctx->act.device, t->grad->data, bytes);
    } else {
      t->grad = samx_tensor_zeros(&ctx->act, SAMX_F32, samx_shape_of(t));
    }
  }
  return t->grad;
}

// After node's backward: its output's gradient is dead (every consumer of the output came later on
// the tape and has run), unless the output is also an input (an op in place) or its gradient is not
// an activation gradient of this arena.
static void release_out_grad(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *out = node->out, *g = out->grad;
  if (!g || out->is_param) return;
  for (int i = 0; i < node->n_in; i++)
    if (node->in[i] == out) return;
  char *p = (char *)g->data, *base = ctx->act.base;
  if (p < base || p >= base + ctx->act.capacity) return;
  samx_free_list_give(&ctx->grad_free, (size_t)(p - base), (size_t)g->numel * sizeof(float));
  out->grad = NULL;
}

static int check_saved(const SamxNode *node) {
  for (int i = 0; i < node->n_saved; i++) {
    const SamxTensor *t = node->saved[i];
    if (samx_version(t) != node->saved_version[i]) {
      char s[96];
      return samx_fail("backward of %s: saved tensor %s%s%s %s was modified in place after it was saved "
                       "(version %u, now %u); its gradient would be wrong (HINT: write into a copy)",
                       node->op, t->name ? "'" : "", t->name ? t->name : "", t->name ? "'" : "",
                       samx_shape_str(samx_shape_of(t), s, sizeof s), node->saved_version[i], samx_version(t));
    }
  }
  return 0;
}

int samx_backward(SamxCtx *ctx, SamxTensor *loss, SamxTensor *grad_out) {
  if (!loss->requires_grad) return samx_fail("backward: the loss does not depend on any trainable tensor");
  int prev = samx_ctx_set_recording(ctx, 0);  // backward kernels are never recorded
  SamxTensor *g = samx_grad_of(ctx, loss);
  if (grad_out) {
    SAMX_ASSERT(grad_out->numel == loss->numel, "backward: grad_out has %lld elements, loss %lld",
                (long long)grad_out->numel, (long long)loss->numel);
    samx_tensor_copy(g, grad_out);
  } else {
    samx_tensor_fill(g, 1.0f);
  }
  int rc = 0;
  ctx->in_backward = 1;
  for (int i = ctx->tape.n - 1; i >= 0; i--) {
    SamxNode *node = &ctx->tape.nodes[i];
    if (node->out->grad) {  // else nothing downstream of this op reached the loss
      if ((rc = check_saved(node)) != 0) break;
      node->backward(ctx, node);
      release_out_grad(ctx, node);
    }
    if (ctx->after_node) ctx->after_node(ctx->after_node_user, i);
  }
  // The blocks stay carved, dead, to the arena's next reset or rewind, which the list must not outlive.
  ctx->grad_free.n = 0;
  ctx->in_backward = 0;
  samx_ctx_set_recording(ctx, prev);
  return rc;
}
