#include "ops_elementwise.h"

#include "../kernels/elementwise.h"
#include "../kernels/bf16.h"
#include "ops_common.h"

// ---- broadcasting binary ops ----

static SamxShape broadcast_shape(const char *op, const SamxTensor *a, const SamxTensor *b) {
  SamxShape out = {a->ndim > b->ndim ? a->ndim : b->ndim, {0}};
  for (int k = 0; k < out.ndim; k++) {
    int ka = k - (out.ndim - a->ndim), kb = k - (out.ndim - b->ndim);
    int64_t da = ka >= 0 ? a->shape[ka] : 1, db = kb >= 0 ? b->shape[kb] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[96], sb[96];
      SAMX_DIE("%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", op,
               samx_shape_str(samx_shape_of(a), sa, sizeof sa), samx_shape_str(samx_shape_of(b), sb, sizeof sb), k,
               (long long)da, (long long)db);
    }
    out.d[k] = da == 1 ? db : da;
  }
  return out;
}

// The kernels' geometry for out = a (op) b. Dims of size 1 in the output are dropped and adjacent
// dims merged where both operands are broadcast (or not) alike, so that equal shapes become one
// flat dim and a bias over [.., C] two dims: fewer divisions per element.
static SamxBroadcast broadcast_geometry(SamxShape out, const SamxTensor *a, const SamxTensor *b) {
  const SamxTensor *x[2] = {a, b};
  int64_t o[SAMX_BCAST_DIMS], d[2][SAMX_BCAST_DIMS];
  int n = 0;
  for (int k = 0; k < out.ndim; k++) {
    if (out.d[k] == 1) continue;
    int64_t dk[2];
    for (int w = 0; w < 2; w++) {
      int kw = k - (out.ndim - x[w]->ndim);
      dk[w] = kw >= 0 ? x[w]->shape[kw] : 1;
    }
    int mergeable = n > 0 && (d[0][n - 1] == 1) == (dk[0] == 1) && (d[1][n - 1] == 1) == (dk[1] == 1);
    if (mergeable) {
      o[n - 1] *= out.d[k];
      for (int w = 0; w < 2; w++) d[w][n - 1] *= dk[w];
    } else {
      o[n] = out.d[k];
      for (int w = 0; w < 2; w++) d[w][n] = dk[w];
      n++;
    }
  }
  SamxBroadcast g;
  int pad = SAMX_BCAST_DIMS - n;
  int64_t so = 1, s[2] = {1, 1};
  for (int k = SAMX_BCAST_DIMS - 1; k >= 0; k--) {
    g.out[k] = k >= pad ? o[k - pad] : 1;
    g.out_stride[k] = so;
    so *= g.out[k];
    for (int w = 0; w < 2; w++) {
      g.dim[w][k] = k >= pad ? d[w][k - pad] : 1;
      g.stride[w][k] = g.dim[w][k] == 1 ? 0 : s[w];
      s[w] *= g.dim[w][k];
    }
  }
  return g;
}

typedef struct {
  int op;
} BinaryArgs;

static void binary_backward(SamxCtx *ctx, SamxNode *node) {
  int op = samx_node_args(node, BinaryArgs)->op;
  SamxTensor *y = node->out;
  SamxBroadcast g = broadcast_geometry(samx_shape_of(y), node->in[0], node->in[1]);
  for (int w = 0; w < 2; w++) {
    SamxTensor *gx = samx_grad_of(ctx, node->in[w]);
    if (!gx) continue;
    const float *other = samx_f32(node->in[1 - w]);
    // The CPU kernel sums a broadcast operand's terms in double accumulators (8-byte I64 elements).
    double *acc = y->device.type == SAMX_CPU && samx_bcast_reduces(&g, w)
                      ? (double *)samx_new(ctx, SAMX_I64, SHAPE(gx->numel))->data
                      : NULL;
    SAMX_ON_DEVICE(y, samx_cpu_elementwise_binary_bwd(op, w, &g, other, samx_f32(y->grad), samx_f32(gx), gx->numel, acc),
                   samx_cuda_elementwise_binary_bwd(op, w, &g, other, samx_f32(y->grad), samx_f32(gx), gx->numel));
  }
}

static SamxTensor *binary(SamxCtx *ctx, SamxTensor *a, SamxTensor *b, int op, const char *name) {
  samx_check_f32(name, a);
  samx_check_f32(name, b);
  samx_check_same_device(name, a, b);
  SamxShape s = broadcast_shape(name, a, b);
  SamxTensor *y = samx_new(ctx, SAMX_F32, s);
  SamxBroadcast g = broadcast_geometry(s, a, b);
  SAMX_ON_DEVICE(a, samx_cpu_elementwise_binary_fwd(op, &g, samx_f32(a), samx_f32(b), samx_f32(y), y->numel),
                 samx_cuda_elementwise_binary_fwd(op, &g, samx_f32(a), samx_f32(b), samx_f32(y), y->numel));
  SamxTensor *in[2] = {a, b};
  SamxNode *node = samx_record(ctx, name, binary_backward, y, 2, in);
  if (node) {
    samx_node_args(node, BinaryArgs)->op = op;
    // The product rule reads the other operand; add and sub need neither.
    if (op == SAMX_BIN_MUL && a->requires_grad) samx_node_save(node, b);
    if (op == SAMX_BIN_MUL && b->requires_grad) samx_node_save(node, a);
  }
  return y;
}

// Whether b's shape is a's with some leading dims of 1 (b repeats over them): [1, T, C] against [P, T, C].
static int leading_broadcast(const SamxTensor *a, const SamxTensor *b) {
  if (a->ndim != b->ndim) return 0;
  int d = 0;
  while (d < a->ndim && b->shape[d] == 1 && a->shape[d] != 1) d++;
  for (; d < a->ndim; d++)
    if (b->shape[d] != a->shape[d]) return 0;
  return 1;
}

// BF16 a + b (inference: residual adds, positional encodings added to a stream), b of a's shape or
// repeated over a's leading dims: bf16(a + b) in BF16 by the bf16 kernel.
static SamxTensor *add_bf16(SamxCtx *ctx, SamxTensor *a, SamxTensor *b) {
  SAMX_ASSERT(b->dtype == SAMX_BF16, "add: a is BF16, so b must be too (got %s)", samx_dtype_name(b->dtype));
  samx_check_same_device("add", a, b);
  char sa[96], sb[96];
  SAMX_ASSERT(leading_broadcast(a, b), "add: BF16 b %s must have a's shape %s or repeat over its leading dims",
              samx_shape_str(samx_shape_of(b), sb, sizeof sb), samx_shape_str(samx_shape_of(a), sa, sizeof sa));
  SamxTensor *in[2] = {a, b};
  samx_check_bf16_inference("add", ctx, 2, in);
  SamxTensor *y = samx_new(ctx, SAMX_BF16, samx_shape_of(a));
  const uint16_t *as = (const uint16_t *)a->data, *bs = (const uint16_t *)b->data;
  SAMX_ON_DEVICE(a, samx_cpu_bf16_add(as, bs, (uint16_t *)y->data, a->numel, b->numel),
                 samx_cuda_bf16_add(as, bs, (uint16_t *)y->data, a->numel, b->numel));
  return y;
}

SamxTensor *samx_add(SamxCtx *ctx, SamxTensor *a, SamxTensor *b) {
  if (a->dtype == SAMX_BF16) return add_bf16(ctx, a, b);
  return binary(ctx, a, b, SAMX_BIN_ADD, "add");
}
SamxTensor *samx_sub(SamxCtx *ctx, SamxTensor *a, SamxTensor *b) { return binary(ctx, a, b, SAMX_BIN_SUB, "sub"); }
SamxTensor *samx_mul(SamxCtx *ctx, SamxTensor *a, SamxTensor *b) { return binary(ctx, a, b, SAMX_BIN_MUL, "mul"); }

// ---- y = x * mul + add, and in-place accumulation ----

// gx += s * gy: the backward of every op whose Jacobian is s times the identity.
static void accumulate(SamxTensor *gx, const SamxTensor *gy, float s) {
  SAMX_ON_DEVICE(gx, samx_cpu_elementwise_axpy(s, samx_f32(gy), samx_f32(gx), gx->numel),
                 samx_cuda_elementwise_axpy(s, samx_f32(gy), samx_f32(gx), gx->numel));
}

typedef struct {
  float mul;
} AffineArgs;

static void affine_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *gx = samx_grad_of(ctx, node->in[0]);
  if (gx) accumulate(gx, node->out->grad, samx_node_args(node, AffineArgs)->mul);
}

static SamxTensor *affine(SamxCtx *ctx, SamxTensor *x, float mul, float add, const char *name) {
  samx_check_f32(name, x);
  SamxTensor *y = samx_new_like(ctx, x);
  SAMX_ON_DEVICE(x, samx_cpu_elementwise_affine(samx_f32(x), samx_f32(y), x->numel, mul, add),
                 samx_cuda_elementwise_affine(samx_f32(x), samx_f32(y), x->numel, mul, add));
  SamxNode *node = samx_record(ctx, name, affine_backward, y, 1, &x);
  if (node) samx_node_args(node, AffineArgs)->mul = mul;
  return y;
}

SamxTensor *samx_scale(SamxCtx *ctx, SamxTensor *x, float s) { return affine(ctx, x, s, 0.0f, "scale"); }
SamxTensor *samx_add_scalar(SamxCtx *ctx, SamxTensor *x, float s) { return affine(ctx, x, 1.0f, s, "add_scalar"); }

void samx_add_(SamxCtx *ctx, SamxTensor *a, const SamxTensor *b) {
  (void)ctx;
  samx_check_f32("add_", a);
  samx_check_f32("add_", b);
  samx_check_same_device("add_", a, b);
  samx_check_same_shape("add_", a, b);
  accumulate(a, b, 1.0f);
  samx_bump_version(a);
}

// ---- softmax over the last dim ----

static void softmax_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *y = node->out, *gx = samx_grad_of(ctx, node->in[0]);
  if (!gx) return;
  int64_t d = samx_dim(y, -1), rows = d ? y->numel / d : 0;
  SAMX_ON_DEVICE(y, samx_cpu_elementwise_softmax_bwd(samx_f32(y), samx_f32(y->grad), samx_f32(gx), rows, d),
                 samx_cuda_elementwise_softmax_bwd(samx_f32(y), samx_f32(y->grad), samx_f32(gx), rows, d));
}

SamxTensor *samx_softmax(SamxCtx *ctx, SamxTensor *x) {
  samx_check_f32("softmax", x);
  SAMX_ASSERT(x->ndim >= 1, "softmax: needs at least one dim, got a scalar");
  SamxTensor *y = samx_new_like(ctx, x);
  int64_t d = samx_dim(x, -1), rows = d ? x->numel / d : 0;
  SAMX_ON_DEVICE(x, samx_cpu_elementwise_softmax_fwd(samx_f32(x), samx_f32(y), rows, d),
                 samx_cuda_elementwise_softmax_fwd(samx_f32(x), samx_f32(y), rows, d));
  SamxNode *node = samx_record(ctx, "softmax", softmax_backward, y, 1, &x);
  if (node) samx_node_save(node, y);
  return y;
}

// ---- sums and means: x viewed as [outer, d, inner], summed over d ----

typedef struct {
  int64_t outer, d, inner;
  float scale;
} SumArgs;

static void sum_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *gx = samx_grad_of(ctx, node->in[0]), *gy = node->out->grad;
  if (!gx) return;
  SumArgs a = *samx_node_args(node, SumArgs);
  SAMX_ON_DEVICE(gx, samx_cpu_elementwise_sum_bwd(samx_f32(gy), samx_f32(gx), a.outer, a.d, a.inner, a.scale),
                 samx_cuda_elementwise_sum_bwd(samx_f32(gy), samx_f32(gx), a.outer, a.d, a.inner, a.scale));
}

static SamxTensor *reduce(SamxCtx *ctx, SamxTensor *x, SamxShape out, SumArgs a, const char *name) {
  SamxTensor *y = samx_new(ctx, SAMX_F32, out);
  SAMX_ON_DEVICE(x, samx_cpu_elementwise_sum_fwd(samx_f32(x), samx_f32(y), a.outer, a.d, a.inner, a.scale),
                 samx_cuda_elementwise_sum_fwd(samx_f32(x), samx_f32(y), a.outer, a.d, a.inner, a.scale));
  SamxNode *node = samx_record(ctx, name, sum_backward, y, 1, &x);
  if (node) *samx_node_args(node, SumArgs) = a;
  return y;
}

static SamxTensor *reduce_all(SamxCtx *ctx, SamxTensor *x, int mean, const char *name) {
  samx_check_f32(name, x);
  SAMX_ASSERT(!mean || x->numel > 0, "%s: mean of an empty tensor", name);
  SumArgs a = {1, x->numel, 1, mean ? 1.0f / (float)x->numel : 1.0f};
  return reduce(ctx, x, SHAPE(1), a, name);
}

static SamxTensor *reduce_dim(SamxCtx *ctx, SamxTensor *x, int dim, int keepdim, int mean, const char *name) {
  samx_check_f32(name, x);
  int k = dim < 0 ? dim + x->ndim : dim;
  SAMX_ASSERT(k >= 0 && k < x->ndim, "%s: dim %d out of range for a %d-dim tensor", name, dim, x->ndim);
  SAMX_ASSERT(!mean || x->shape[k] > 0, "%s: mean over an empty dim %d", name, dim);
  SumArgs a = {1, x->shape[k], 1, mean ? 1.0f / (float)x->shape[k] : 1.0f};
  SamxShape out = {0, {0}};
  for (int i = 0; i < x->ndim; i++) {
    if (i < k) a.outer *= x->shape[i];
    if (i > k) a.inner *= x->shape[i];
    if (i != k) out.d[out.ndim++] = x->shape[i];
    else if (keepdim) out.d[out.ndim++] = 1;
  }
  return reduce(ctx, x, out, a, name);
}

SamxTensor *samx_sum(SamxCtx *ctx, SamxTensor *x) { return reduce_all(ctx, x, 0, "sum"); }
SamxTensor *samx_mean(SamxCtx *ctx, SamxTensor *x) { return reduce_all(ctx, x, 1, "mean"); }
SamxTensor *samx_sum_dim(SamxCtx *ctx, SamxTensor *x, int dim, int keepdim) {
  return reduce_dim(ctx, x, dim, keepdim, 0, "sum_dim");
}
SamxTensor *samx_mean_dim(SamxCtx *ctx, SamxTensor *x, int dim, int keepdim) {
  return reduce_dim(ctx, x, dim, keepdim, 1, "mean_dim");
}

// ---- dtype casts ----

static void cast_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *gx = samx_grad_of(ctx, node->in[0]);
  if (gx) accumulate(gx, node->out->grad, 1.0f);
}

static int is_float_dtype(SamxDType t) { return t == SAMX_F32 || t == SAMX_BF16 || t == SAMX_F16; }

SamxTensor *samx_cast(SamxCtx *ctx, SamxTensor *x, SamxDType dtype) {
  SAMX_ASSERT(is_float_dtype(x->dtype) && is_float_dtype(dtype), "cast: %s -> %s, only F32, BF16, F16 are supported",
              samx_dtype_name(x->dtype), samx_dtype_name(dtype));
  SamxTensor *y = samx_new(ctx, dtype, samx_shape_of(x));
  SAMX_ON_DEVICE(x, samx_cpu_elementwise_cast(x->data, x->dtype, y->data, dtype, x->numel),
                 samx_cuda_elementwise_cast(x->data, x->dtype, y->data, dtype, x->numel));
  // Gradients are f32 whatever the tensor's dtype, so the backward is the identity.
  samx_record(ctx, "cast", cast_backward, y, 1, &x);
  return y;
}
