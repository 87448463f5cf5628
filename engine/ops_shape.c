#include "ops_shape.h"

#include "../kernels/shape.h"
#include "ops_common.h"

static void contiguous_strides(const SamxTensor *t, int64_t *stride) {
  int64_t s = 1;
  for (int k = t->ndim - 1; k >= 0; k--) {
    stride[k] = s;
    s *= t->shape[k];
  }
}

static int normalize_dim(const char *op, const SamxTensor *x, int dim) {
  int k = dim < 0 ? dim + x->ndim : dim;
  if (k < 0 || k >= x->ndim) {
    char s[96];
    SAMX_DIE("%s: dim %d out of range for shape %s", op, dim, samx_shape_str(samx_shape_of(x), s, sizeof s));
  }
  return k;
}

// Whether a strided map reaches its packed elements as one run of the mapped tensor from m->offset (its
// strides are its dims' row-major ones, dims of size 1 aside: a slice or a concatenation's block along
// a leading dim).
static int map_is_run(const SamxIndexMap *m) {
  if (m->kind != SAMX_MAP_STRIDED) return 0;
  int64_t s = 1;
  for (int k = m->ndim - 1; k >= 0; k--) {
    if (m->dims[k] != 1 && m->stride[k] != s) return 0;
    s *= m->dims[k];
  }
  return 1;
}

// A move through a map that is one run, done as one plain copy of n elements of elem bytes; 0 otherwise.
static int moved_as_run(const SamxIndexMap *m, int64_t n, int dir, size_t elem, const SamxTensor *src,
                        SamxTensor *dst) {
  if (!map_is_run(m)) return 0;
  size_t at = (size_t)m->offset * elem, bytes = (size_t)n * elem;
  if (dir == SAMX_GATHER)
    samx_memcpy(dst->device, dst->data, src->device, (const char *)src->data + at, bytes);
  else
    samx_memcpy(dst->device, (char *)dst->data + at, src->device, src->data, bytes);
  return 1;
}

static void copy(const SamxIndexMap *m, int64_t n, int dir, int accumulate, const SamxTensor *src, SamxTensor *dst) {
  if (!accumulate && moved_as_run(m, n, dir, sizeof(float), src, dst)) return;
  SAMX_ON_DEVICE(dst, samx_cpu_shape_copy(m, n, dir, accumulate, samx_f32(src), samx_f32(dst)),
                 samx_cuda_shape_copy(m, n, dir, accumulate, samx_f32(src), samx_f32(dst)));
}

// BF16 activations (bf16 precision) move through the same maps as 16-bit payloads; their gradients are
// F32 like every gradient on the tape, so the backward is the F32 one.
static void move16(const SamxIndexMap *m, int64_t n, int dir, const SamxTensor *src, SamxTensor *dst) {
  const uint16_t *s = (const uint16_t *)src->data;
  uint16_t *d = (uint16_t *)dst->data;
  if (moved_as_run(m, n, dir, sizeof(uint16_t), src, dst)) return;
  SAMX_ON_DEVICE(dst, samx_cpu_shape_move16(m, n, dir, s, d), samx_cuda_shape_move16(m, n, dir, s, d));
}

// The data-movement ops take F32 and BF16.
static void check_moved(const char *op, SamxTensor *x) {
  if (x->dtype != SAMX_BF16) samx_check_f32(op, x);
}

// A block of shape `part` inside `whole`, starting at `start` along dim (all other dims equal).
static SamxIndexMap embed_map(const SamxTensor *whole, SamxShape part, int dim, int64_t start) {
  SamxIndexMap m = {0};
  m.kind = SAMX_MAP_STRIDED;
  m.ndim = part.ndim;
  contiguous_strides(whole, m.stride);
  for (int k = 0; k < part.ndim; k++) m.dims[k] = part.d[k];
  m.offset = start * m.stride[dim];
  return m;
}

// ---- single-input ops: out = x moved through one index map ----

typedef struct {
  SamxIndexMap map;
  int dir;  // forward direction: gather (x is the mapped side) or scatter (x is the packed side)
} MapArgs;

static int64_t packed_numel(int dir, const SamxTensor *x, const SamxTensor *y) {
  return dir == SAMX_GATHER ? y->numel : x->numel;
}

// The map is injective, so the backward is the same map run the other way, accumulating.
static void mapped_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *y = node->out, *gx = samx_grad_of(ctx, x);
  if (!gx) return;
  MapArgs *a = samx_node_args(node, MapArgs);
  copy(&a->map, packed_numel(a->dir, x, y), 1 - a->dir, 1, y->grad, gx);
}

static SamxTensor *mapped(SamxCtx *ctx, SamxTensor *x, SamxShape out, SamxIndexMap map, int dir, const char *name) {
  check_moved(name, x);
  SamxTensor *y = samx_new(ctx, x->dtype, out);
  if (x->dtype == SAMX_BF16)
    move16(&map, packed_numel(dir, x, y), dir, x, y);
  else
    copy(&map, packed_numel(dir, x, y), dir, 0, x, y);
  SamxNode *node = samx_record(ctx, name, mapped_backward, y, 1, &x);
  if (node) {
    MapArgs *a = samx_node_args(node, MapArgs);
    a->map = map;
    a->dir = dir;
  }
  return y;
}

// ---- reshape: a view ----

static void reshape_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *gx = samx_grad_of(ctx, node->in[0]);
  if (!gx) return;
  SamxIndexMap flat = {.kind = SAMX_MAP_STRIDED, .ndim = 1, .dims = {gx->numel}, .stride = {1}};
  copy(&flat, gx->numel, SAMX_GATHER, 1, node->out->grad, gx);
}

SamxTensor *samx_reshape(SamxCtx *ctx, SamxTensor *x, SamxShape s) {
  char sx[96], ss[96];
  SAMX_ASSERT(s.ndim >= 0 && s.ndim <= SAMX_MAX_DIMS, "reshape: rank %d outside 0..%d", s.ndim, SAMX_MAX_DIMS);
  int infer = -1;
  int64_t known = 1;
  for (int k = 0; k < s.ndim; k++) {
    if (s.d[k] == -1 && infer < 0)
      infer = k;
    else if (s.d[k] < 0)
      SAMX_DIE("reshape: bad target shape %s for %s (one -1 at most)", samx_shape_str(s, ss, sizeof ss),
               samx_shape_str(samx_shape_of(x), sx, sizeof sx));
    else
      known *= s.d[k];
  }
  if (infer >= 0) s.d[infer] = known > 0 ? x->numel / known : -1;
  if ((infer >= 0 && s.d[infer] < 0) || samx_shape_numel(s) != x->numel)
    SAMX_DIE("reshape: cannot view %s (%lld elements) as %s", samx_shape_str(samx_shape_of(x), sx, sizeof sx),
             (long long)x->numel, samx_shape_str(s, ss, sizeof ss));
  SamxTensor *v = samx_tensor_wrap(&ctx->act, x->data, x->device, x->dtype, s);
  v->base = x;
  samx_record(ctx, "reshape", reshape_backward, v, 1, &x);
  return v;
}

// ---- permute, slice, concat ----

SamxTensor *samx_permute(SamxCtx *ctx, SamxTensor *x, const int *perm) {
  SamxIndexMap m = {0};
  m.kind = SAMX_MAP_STRIDED;
  m.ndim = x->ndim;
  int64_t xs[SAMX_MAX_DIMS];
  contiguous_strides(x, xs);
  SamxShape out = {x->ndim, {0}};
  int seen[SAMX_MAX_DIMS] = {0};
  for (int k = 0; k < x->ndim; k++) {
    int p = perm[k];
    if (p < 0 || p >= x->ndim || seen[p]++) {
      char s[96];
      SAMX_DIE("permute: entry %d of the permutation is %d, not a permutation of the %d dims of %s", k, p, x->ndim,
               samx_shape_str(samx_shape_of(x), s, sizeof s));
    }
    out.d[k] = m.dims[k] = x->shape[p];
    m.stride[k] = xs[p];
  }
  return mapped(ctx, x, out, m, SAMX_GATHER, "permute");
}

SamxTensor *samx_slice(SamxCtx *ctx, SamxTensor *x, int dim, int64_t start, int64_t end) {
  int k = normalize_dim("slice", x, dim);
  if (start < 0 || start > end || end > x->shape[k]) {
    char s[96];
    SAMX_DIE("slice: [%lld, %lld) out of range for dim %d of %s", (long long)start, (long long)end, dim,
             samx_shape_str(samx_shape_of(x), s, sizeof s));
  }
  SamxShape out = samx_shape_of(x);
  out.d[k] = end - start;
  return mapped(ctx, x, out, embed_map(x, out, k, start), SAMX_GATHER, "slice");
}

typedef struct {
  int dim;
} ConcatArgs;

static void concat_backward(SamxCtx *ctx, SamxNode *node) {
  int dim = samx_node_args(node, ConcatArgs)->dim;
  SamxTensor *y = node->out;
  int64_t start = 0;
  for (int j = 0; j < node->n_in; j++) {
    SamxTensor *x = node->in[j], *gx = samx_grad_of(ctx, x);
    if (gx) {
      SamxIndexMap m = embed_map(y, samx_shape_of(x), dim, start);
      copy(&m, x->numel, SAMX_GATHER, 1, y->grad, gx);
    }
    start += x->shape[dim];
  }
}

// The shape of the concatenation along dim k, every input checked against input 0 (op names the caller).
static SamxShape concat_shape(const char *op, SamxTensor **xs, int n, int k) {
  SAMX_ASSERT(n >= 1, "%s: no inputs", op);
  SamxShape out = samx_shape_of(xs[0]);
  out.d[k] = 0;
  for (int j = 0; j < n; j++) {
    check_moved(op, xs[j]);
    samx_check_same_device(op, xs[0], xs[j]);
    if (xs[j]->dtype != xs[0]->dtype)
      SAMX_DIE("%s: input %d is %s, input 0 %s", op, j, samx_dtype_name(xs[j]->dtype), samx_dtype_name(xs[0]->dtype));
    int ok = xs[j]->ndim == xs[0]->ndim;
    for (int i = 0; ok && i < xs[0]->ndim; i++) ok = i == k || xs[j]->shape[i] == xs[0]->shape[i];
    if (!ok) {
      char s0[96], sj[96];
      SAMX_DIE("%s along dim %d: input %d has shape %s, input 0 %s", op, k, j,
               samx_shape_str(samx_shape_of(xs[j]), sj, sizeof sj), samx_shape_str(samx_shape_of(xs[0]), s0, sizeof s0));
    }
    out.d[k] += xs[j]->shape[k];
  }
  return out;
}

static void concat_write(SamxTensor *y, SamxTensor **xs, int n, int k) {
  int64_t start = 0;
  for (int j = 0; j < n; j++) {
    SamxIndexMap m = embed_map(y, samx_shape_of(xs[j]), k, start);
    if (y->dtype == SAMX_BF16)
      move16(&m, xs[j]->numel, SAMX_SCATTER, xs[j], y);
    else
      copy(&m, xs[j]->numel, SAMX_SCATTER, 0, xs[j], y);
    start += xs[j]->shape[k];
  }
}

SamxTensor *samx_concat(SamxCtx *ctx, SamxTensor **xs, int n, int dim) {
  SAMX_ASSERT(n >= 1, "concat: no inputs");
  int k = normalize_dim("concat", xs[0], dim);
  SamxTensor *y = samx_new(ctx, xs[0]->dtype, concat_shape("concat", xs, n, k));
  concat_write(y, xs, n, k);
  SamxNode *node = samx_record(ctx, "concat", concat_backward, y, n, xs);
  if (node) samx_node_args(node, ConcatArgs)->dim = k;
  return y;
}

void samx_concat_into(SamxCtx *ctx, SamxTensor *y, SamxTensor **xs, int n, int dim) {
  SAMX_ASSERT(n >= 1, "concat_into: no inputs");
  for (int j = 0; j < n; j++)
    if (ctx->recording && xs[j]->requires_grad)
      SAMX_DIE("concat_into: input %d needs a gradient, and y is no op's output (HINT: samx_concat while recording)", j);
  int k = normalize_dim("concat_into", xs[0], dim);
  SamxShape want = concat_shape("concat_into", xs, n, k);
  if (!samx_shape_eq(samx_shape_of(y), want)) {
    char sy[96], sw[96];
    SAMX_DIE("concat_into: y has shape %s, the concatenation %s", samx_shape_str(samx_shape_of(y), sy, sizeof sy),
             samx_shape_str(want, sw, sizeof sw));
  }
  samx_check_same_device("concat_into", y, xs[0]);
  if (y->dtype != xs[0]->dtype)
    SAMX_DIE("concat_into: y is %s, the inputs %s", samx_dtype_name(y->dtype), samx_dtype_name(xs[0]->dtype));
  concat_write(y, xs, n, k);
  samx_bump_version(y);
}

// ---- SAM's window partition / unpartition ----

static SamxIndexMap window_map(int64_t H, int64_t W, int64_t C, int64_t ws) {
  SamxIndexMap m = {0};
  m.kind = SAMX_MAP_WINDOW;
  m.H = H, m.W = W, m.C = C, m.ws = ws;
  m.nh = (H + ws - 1) / ws;
  m.nw = (W + ws - 1) / ws;
  return m;
}

SamxTensor *samx_window_partition(SamxCtx *ctx, SamxTensor *x, int ws) {
  char s[96];
  SAMX_ASSERT(x->ndim == 4 && ws > 0, "window_partition: expected x [B, H, W, C] and ws > 0, got %s and ws %d",
              samx_shape_str(samx_shape_of(x), s, sizeof s), ws);
  SamxIndexMap m = window_map(x->shape[1], x->shape[2], x->shape[3], ws);
  SamxShape out = SHAPE(x->shape[0] * m.nh * m.nw, ws, ws, x->shape[3]);
  return mapped(ctx, x, out, m, SAMX_GATHER, "window_partition");
}

SamxTensor *samx_window_unpartition(SamxCtx *ctx, SamxTensor *windows, int ws, int64_t H, int64_t W) {
  char s[96];
  const int64_t *d = windows->shape;
  SAMX_ASSERT(windows->ndim == 4 && ws > 0 && d[1] == ws && d[2] == ws && H > 0 && W > 0,
              "window_unpartition: expected windows [B * nh * nw, %d, %d, C] and H, W > 0, got %s, H %lld, W %lld", ws,
              ws, samx_shape_str(samx_shape_of(windows), s, sizeof s), (long long)H, (long long)W);
  SamxIndexMap m = window_map(H, W, d[3], ws);
  SAMX_ASSERT(d[0] % (m.nh * m.nw) == 0, "window_unpartition: %lld windows is not a multiple of %lld x %lld for %lld x %lld",
              (long long)d[0], (long long)m.nh, (long long)m.nw, (long long)H, (long long)W);
  SamxShape out = SHAPE(d[0] / (m.nh * m.nw), H, W, d[3]);
  return mapped(ctx, windows, out, m, SAMX_SCATTER, "window_unpartition");
}

SamxTensor *samx_concat_many(SamxCtx *ctx, SamxTensor **xs, int n, int dim) {
  // Only a tape node limits the inputs: inference concatenates them all at once, with no partial copies.
  if (n <= SAMX_NODE_MAX_IN || !ctx->recording) return samx_concat(ctx, xs, n, dim);
  SamxTensor *parts[SAMX_NODE_MAX_IN];
  int groups = 0, per = (n + SAMX_NODE_MAX_IN - 1) / SAMX_NODE_MAX_IN;
  for (int i = 0; i < n; i += per) {
    int k = n - i < per ? n - i : per;
    parts[groups++] = samx_concat_many(ctx, xs + i, k, dim);
  }
  return samx_concat(ctx, parts, groups, dim);
}
