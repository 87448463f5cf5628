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

static size_t align_up(size_t v) { return (v + SAMX_ARENA_ALIGN - 1) & ~(size_t)(SAMX_ARENA_ALIGN - 1); }

// Moves bytes from `from` down to `to` (to < from) without writing over bytes still to be read: one
// copy when the gap is at least their size, else pieces of the gap's size, front first (each piece lands
// on bytes the pieces before it have already read).
static void move_down(SamxDevice dev, char *to, const char *from, size_t bytes) {
  size_t gap = (size_t)(from - to);
  for (size_t off = 0; off < bytes; off += gap)
    samx_memcpy(dev, to + off, dev, from + off, bytes - off < gap ? bytes - off : gap);
}

// Where kept bytes at offset `at` go when the free space starts at `cursor`: down to it, or where they
// are when the space below them is under an eighth of their size (the move would take over eight copies
// to win back less than that).
static size_t kept_place(size_t cursor, size_t at, size_t bytes) {
  cursor = align_up(cursor);
  return at <= cursor || at - cursor < bytes / 8 ? at : cursor;
}

static int by_address(const void *a, const void *b) {
  const char *x = (const char *)(*(SamxTensor *const *)a)->data, *y = (const char *)(*(SamxTensor *const *)b)->data;
  return x < y ? -1 : x > y;
}

void samx_ctx_release_keep(SamxCtx *ctx, size_t mark, SamxTensor **keep, int n) {
  SAMX_ASSERT(!ctx->recording, "samx_ctx_release_keep while recording: the tape still needs those tensors");
  // The kept tensors the rewind frees, lowest first: each moves down (or stays) and is carved again in
  // that order, so none is written over before it has moved. The others stay as they are.
  SamxTensor **live = (SamxTensor **)malloc(sizeof(SamxTensor *) * (size_t)(n > 0 ? n : 1));
  char **place = (char **)malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
  int k = 0;
  for (int i = 0; i < n; i++)
    if (above_mark(ctx, keep[i], mark)) live[k++] = keep[i];
  qsort(live, (size_t)k, sizeof *live, by_address);
  samx_arena_rewind(&ctx->act, mark);
  size_t cursor = mark;
  for (int i = 0; i < k; i++) {
    SamxTensor *t = live[i];
    size_t bytes = samx_nbytes(t), at = (size_t)((char *)t->data - ctx->act.base);
    if (i > 0 && t->data == live[i - 1]->data && bytes == samx_nbytes(live[i - 1])) {
      place[i] = place[i - 1];  // the same bytes kept twice (a tensor and a reshape of it)
      continue;
    }
    SAMX_ASSERT(at >= cursor, "samx_ctx_release_keep: two kept tensors overlap in part (one of %zu bytes at "
                "offset %zu, one reaching %zu)", bytes, at, cursor);
    size_t to = kept_place(cursor, at, bytes);
    if (to != at) move_down(ctx->device, ctx->act.base + to, (char *)t->data, bytes);
    samx_arena_claim(&ctx->act, to, bytes, t->dtype);
    place[i] = ctx->act.base + to;
    cursor = to + bytes;
  }
  // Each header now owns its bytes: a view's base, if it had one, was released.
  for (int i = 0; i < k; i++) live[i]->data = place[i], live[i]->base = NULL;
  free(live);
  free(place);
}

void samx_ctx_release(SamxCtx *ctx, size_t mark) {
  SAMX_ASSERT(!ctx->recording, "samx_ctx_release while recording: the tape still needs those tensors");
  SAMX_ASSERT(mark <= ctx->act.used, "samx_ctx_release: mark %zu is past the arena's use %zu", mark, ctx->act.used);
  samx_arena_rewind(&ctx->act, mark);
}

SamxTensor *samx_ctx_release_to(SamxCtx *ctx, size_t mark, SamxTensor *keep) {
  const char *p = (const char *)keep->data;
  SAMX_ASSERT(p >= ctx->act.base && p + samx_nbytes(keep) <= ctx->act.base + ctx->act.used,
              "samx_ctx_release_to: the kept tensor is not in the activation arena");
  samx_ctx_release_keep(ctx, mark, &keep, 1);
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
