#include "ops_linalg.h"

#include "../kernels/activation.h"
#include "../kernels/elementwise.h"
#include "../kernels/linalg.h"
#include "ops_common.h"
#include "ops_elementwise.h"
#include "precision.h"

// C = op(A) op(B) as one batched GEMM: sizes, transposes and how far each operand steps per batch
// entry (the contract of samx_cpu_linalg_gemm; a stride of 0 broadcasts, or for C reduces).
typedef struct {
  int64_t batch, m, n, k;
  int trans_a, trans_b;
  int64_t stride_a, stride_b, stride_c;
} Gemm;

static float *f32_or_null(SamxTensor *t) { return t ? samx_f32(t) : NULL; }

// cuBLASLt's workspace for one bf16 GEMM: its recommended 32 MiB on Hopper, or the largest power of
// two within half of what the activation arena has free (none below 64 KiB; it is handed back right
// after the call, so the rest stays for what follows). Powers of two keep the per-shape algorithm cache
// from seeing a new workspace limit at every call. The inference arenas (models/sam/sam_memory.c) leave
// room for the whole 32 MiB.
#define LT_WORKSPACE_MAX ((size_t)32 << 20)
#define LT_WORKSPACE_MIN ((size_t)64 << 10)

static size_t lt_workspace_bytes(const SamxArena *a) {
  size_t spare = (a->capacity - a->used) / 2, ws = LT_WORKSPACE_MAX;
  while (ws > spare && ws >= LT_WORKSPACE_MIN) ws /= 2;
  return ws >= LT_WORKSPACE_MIN ? ws : 0;
}

// The precision a GEMM of this context runs in. tf32 and bf16 are CUDA modes; a CPU context set to bf16
// is the CPU's reference mode (operands rounded to bf16, fp32 GEMM), tf32 there is fp32. bf16 applies to
// the linear layers (allow_bf16); the batched products of matmul stay fp32 in bf16 mode.
static SamxPrecision gemm_precision(const SamxCtx *ctx, const SamxTensor *on, int allow_bf16) {
  SamxPrecision p = ctx->precision;
  if (p == SAMX_PRECISION_BF16 && !allow_bf16) return SAMX_PRECISION_FP32;
  if (p == SAMX_PRECISION_TF32 && on->device.type == SAMX_CPU) return SAMX_PRECISION_FP32;
  return p;
}

// t cast as a bf16 GEMM operand into r: a bf16 copy on CUDA, an f32 copy rounded to bf16 on the CPU.
static void cast_operand(const SamxTensor *t, SamxTensor *r) {
  SAMX_ON_DEVICE(t, samx_cpu_linalg_round_bf16(samx_f32(t), samx_f32(r), t->numel),
                 samx_cuda_linalg_cast_f32_bf16(samx_f32(t), (uint16_t *)r->data, t->numel));
}

// A parameter's kept operand (samx_params_shadow_bf16), refilled when the parameter has been written
// since (its version moved: the optimizer, a load, a copy); NULL when t has none. A reshape view of a
// parameter reads its root's.
static SamxTensor *kept_operand(SamxTensor *t) {
  SamxTensor *r = t;
  while (r->base) r = r->base;
  if (!r->shadow || r->data != t->data || r->numel != t->numel) return NULL;
  uint32_t v = samx_version(r);
  if (!r->shadow_filled || r->shadow_of != v) {
    cast_operand(r, r->shadow);
    r->shadow_of = v, r->shadow_filled = 1;
    samx_bump_version(r->shadow);
  }
  return r->shadow;
}

// A GEMM operand in precision p: t itself for fp32/tf32; in bf16 a parameter's kept operand, or else a
// copy made by cast_operand in the arena.
// A BF16 t (an activation already in bf16) is its own operand on CUDA and widened exactly on the CPU.
static SamxTensor *gemm_operand(SamxCtx *ctx, SamxPrecision p, SamxTensor *t) {
  if (p != SAMX_PRECISION_BF16) return t;
  if (t->dtype == SAMX_BF16) return t->device.type == SAMX_CPU ? samx_cast(ctx, t, SAMX_F32) : t;
  SamxTensor *kept = kept_operand(t);
  if (kept) return kept;
  SamxTensor *r = samx_new(ctx, t->device.type == SAMX_CPU ? SAMX_F32 : SAMX_BF16, samx_shape_of(t));
  cast_operand(t, r);
  return r;
}

// One bf16 GEMM through cuBLASLt with its workspace carved from the top of the activation arena and
// handed back right after (the stream orders the GEMM before any later use of that memory).
// D is c (f32, bias f32) or, with d_bf16, a bf16 output whose bias is bf16 too (cuBLASLt's bias type
// follows D's); gelu applies the tanh GELU epilogue last.
// D = alpha op(A) op(B) + beta C (+ bias, then GELU when gelu) through cuBLASLt; c_in NULL: C is D.
// cuBLASLt may read the bias in 16-byte vectors, and its alignment preferences do not cover the bias
// (pytorch/pytorch#194497): one that is not 16-byte aligned (a view into a larger tensor) is copied.
static void gemm_lt(SamxCtx *ctx, Gemm g, float alpha, const void *a, const void *b, float beta, const void *c_in,
                    void *d, int d_bf16, const void *bias, int gelu) {
  SAMX_ASSERT(g.batch == 1, "gemm: bf16 GEMMs are single (batch %lld)", (long long)g.batch);
  size_t mark = ctx->act.used;
  if (bias && (uintptr_t)bias % 16) {
    size_t bytes = (size_t)g.n * (d_bf16 ? 2 : 4);
    void *aligned = samx_arena_alloc(&ctx->act, bytes);
    samx_memcpy(ctx->device, aligned, ctx->device, bias, bytes);
    bias = aligned;
  }
  size_t ws = lt_workspace_bytes(&ctx->act);
  void *work = ws ? samx_arena_alloc(&ctx->act, ws) : NULL;
  samx_cuda_linalg_gemm_bf16(g.m, g.n, g.k, g.trans_a, g.trans_b, alpha, (const uint16_t *)a, (const uint16_t *)b,
                             beta, c_in ? c_in : d, d, d_bf16, bias, gelu, work, ws);
  samx_arena_rewind(&ctx->act, mark);
}

// The family's one GEMM entry point, run where `on` lives in precision p (operands from gemm_operand).
// bias (f32 [n], or NULL) is added to every row of C; fp32 and tf32 GEMMs take it through beta = 1 on
// a C filled with it, bf16 ones through cuBLASLt's bias epilogue.
static void gemm(SamxCtx *ctx, SamxPrecision p, const SamxTensor *on, Gemm g, float alpha, const void *a,
                 const void *b, float beta, float *c, const float *bias) {
  if (p == SAMX_PRECISION_BF16 && on->device.type == SAMX_CUDA) {
    SAMX_ON_DEVICE(on, (void)0, gemm_lt(ctx, g, alpha, a, b, beta, NULL, c, 0, bias, 0));
    return;
  }
  if (bias) {
    SAMX_ASSERT(g.batch == 1 && beta == 0.0f, "gemm: a bias goes with one GEMM that overwrites C");
    SAMX_ON_DEVICE(on, samx_cpu_linalg_bias_fill(c, bias, g.m, g.n), samx_cuda_linalg_bias_fill(c, bias, g.m, g.n));
    beta = 1.0f;
  }
  const float *fa = (const float *)a, *fb = (const float *)b;
  if (p == SAMX_PRECISION_TF32)
    SAMX_ON_DEVICE(on, (void)0,
                   samx_cuda_linalg_gemm_tf32(g.batch, g.m, g.n, g.k, g.trans_a, g.trans_b, alpha, fa, g.stride_a, fb,
                                              g.stride_b, beta, c, g.stride_c));
  else
    SAMX_ON_DEVICE(on,
                   samx_cpu_linalg_gemm(g.batch, g.m, g.n, g.k, g.trans_a, g.trans_b, alpha, fa, g.stride_a, fb,
                                        g.stride_b, beta, c, g.stride_c),
                   samx_cuda_linalg_gemm(g.batch, g.m, g.n, g.k, g.trans_a, g.trans_b, alpha, fa, g.stride_a, fb,
                                         g.stride_b, beta, c, g.stride_c));
}

// A raw f32 operand of n values in precision p, as gemm_operand makes it from a tensor: itself unless
// bf16; then a bf16 copy on CUDA, an f32 copy rounded to bf16 on the CPU (both in the arena).
static const void *raw_operand(SamxCtx *ctx, SamxPrecision p, const SamxTensor *on, const float *v, int64_t n) {
  if (p != SAMX_PRECISION_BF16) return v;
  if (on->device.type == SAMX_CPU) {
    float *r = samx_f32(samx_new(ctx, SAMX_F32, SHAPE(n)));
    samx_cpu_linalg_round_bf16(v, r, n);
    return r;
  }
  uint16_t *r = (uint16_t *)samx_new(ctx, SAMX_BF16, SHAPE(n))->data;
  SAMX_ON_DEVICE(on, (void)0, samx_cuda_linalg_cast_f32_bf16(v, r, n));
  return r;
}

void samx_gemm_f32(SamxCtx *ctx, const SamxTensor *on, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                   const float *b, float beta, float *c) {
  SamxPrecision p = gemm_precision(ctx, on, 1);
  size_t mark = ctx->act.used;  // the operands' copies are dead once the GEMM is queued
  const void *al = raw_operand(ctx, p, on, a, m * k), *bl = raw_operand(ctx, p, on, b, k * n);
  gemm(ctx, p, on, (Gemm){1, m, n, k, ta, tb, 0, 0, 0}, 1.0f, al, bl, beta, c, NULL);
  samx_arena_rewind(&ctx->act, mark);
}

// Backward of C (+)= alpha op(A) op(B): given gc = dL/dC, adds dL/dA into ga and dL/dB into gb,
// skipping a NULL one. From d op(A) = alpha dC op(B)^T and d op(B) = alpha op(A)^T dC, rewritten as
// GEMMs on the stored matrices. A broadcast B (stride 0) makes gb's stride 0: the GEMM sums over the batch.
// In bf16, a, b and gc are bf16 operands (gemm_operand) and the f32 gradients accumulate in fp32.
static void gemm_backward(SamxCtx *ctx, SamxPrecision p, const SamxTensor *on, Gemm g, float alpha, const void *a,
                          const void *b, const void *gc, float *ga, float *gb) {
  if (ga) {
    if (g.trans_a)  // dA [k, m] = op(B) dC^T
      gemm(ctx, p, on, (Gemm){g.batch, g.k, g.m, g.n, g.trans_b, 1, g.stride_b, g.stride_c, g.stride_a}, alpha, b, gc,
           1.0f, ga, NULL);
    else  // dA [m, k] = dC op(B)^T
      gemm(ctx, p, on, (Gemm){g.batch, g.m, g.k, g.n, 0, !g.trans_b, g.stride_c, g.stride_b, g.stride_a}, alpha, gc, b,
           1.0f, ga, NULL);
  }
  if (gb) {
    if (g.trans_b)  // dB [n, k] = dC^T op(A)
      gemm(ctx, p, on, (Gemm){g.batch, g.n, g.k, g.m, 1, g.trans_a, g.stride_c, g.stride_a, g.stride_b}, alpha, gc, a,
           1.0f, gb, NULL);
    else  // dB [k, n] = op(A)^T dC
      gemm(ctx, p, on, (Gemm){g.batch, g.k, g.n, g.m, !g.trans_a, 0, g.stride_a, g.stride_c, g.stride_b}, alpha, a, gc,
           1.0f, gb, NULL);
  }
}

// ---- matmul ----

static void matmul_die(const SamxTensor *a, const SamxTensor *b, int trans_a, int trans_b) {
  char sa[96], sb[96];
  SAMX_DIE("matmul: a %s (trans_a %d) and b %s (trans_b %d) do not multiply (b needs a's batch dims or none)",
           samx_shape_str(samx_shape_of(a), sa, sizeof sa), trans_a, samx_shape_str(samx_shape_of(b), sb, sizeof sb),
           trans_b);
}

// Maps op(a) op(b) onto one GEMM and gives the output shape.
static Gemm matmul_plan(const SamxTensor *a, const SamxTensor *b, int trans_a, int trans_b, SamxShape *out) {
  int nd = a->ndim;
  int b_broadcast = b->ndim == 2 && nd > 2;
  if (nd < 2 || b->ndim < 2 || (b->ndim != nd && !b_broadcast)) matmul_die(a, b, trans_a, trans_b);
  int64_t batch = 1;
  for (int i = 0; i < nd - 2; i++) {
    if (!b_broadcast && a->shape[i] != b->shape[i]) matmul_die(a, b, trans_a, trans_b);
    batch *= a->shape[i];
  }
  int64_t m = samx_dim(a, trans_a ? -1 : -2), k = samx_dim(a, trans_a ? -2 : -1);
  int64_t kb = samx_dim(b, trans_b ? -1 : -2), n = samx_dim(b, trans_b ? -2 : -1);
  if (k != kb) matmul_die(a, b, trans_a, trans_b);
  *out = samx_shape_of(a);
  out->d[nd - 2] = m;
  out->d[nd - 1] = n;
  Gemm g = {batch, m, n, k, trans_a, trans_b, m * k, b_broadcast ? 0 : k * n, m * n};
  // A shared weight times untransposed a: the batch's rows follow each other in memory, so it is one
  // tall GEMM (and the weight gradient one GEMM instead of a reduction over the batch).
  if (b_broadcast && !trans_a) {
    g.m *= g.batch;
    g.batch = 1;
  }
  return g;
}

static void matmul_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *a = node->in[0], *b = node->in[1];
  gemm_backward(ctx, gemm_precision(ctx, a, 0), a, *samx_node_args(node, Gemm), 1.0f, samx_f32(a), samx_f32(b),
                samx_f32(node->out->grad), f32_or_null(samx_grad_of(ctx, a)), f32_or_null(samx_grad_of(ctx, b)));
}

// An f32 a times a BF16 b (inference): fp32 products and sums over b's exact values, on both backends
// by samx_matmul_bf16b_column; neither operand is copied or rounded.
static SamxTensor *matmul_bf16b(SamxCtx *ctx, SamxTensor *a, SamxTensor *b, int trans_a, int trans_b) {
  samx_check_f32("matmul", a);
  samx_check_same_device("matmul", a, b);
  SAMX_ASSERT(!trans_a && !trans_b, "matmul: a BF16 b takes no transposes (trans_a %d, trans_b %d)", trans_a,
              trans_b);
  SamxTensor *in[2] = {a, b};
  samx_check_bf16_inference("matmul", ctx, 2, in);
  SamxShape out_shape;
  Gemm g = matmul_plan(a, b, 0, 0, &out_shape);
  SamxTensor *c = samx_new(ctx, SAMX_F32, out_shape);
  const uint16_t *bs = (const uint16_t *)b->data;
  SAMX_ON_DEVICE(a,
                 samx_cpu_matmul_bf16b(g.batch, g.m, g.n, g.k, samx_f32(a), g.stride_a, bs, g.stride_b, samx_f32(c),
                                       g.stride_c),
                 samx_cuda_matmul_bf16b(g.batch, g.m, g.n, g.k, samx_f32(a), g.stride_a, bs, g.stride_b,
                                        samx_f32(c), g.stride_c));
  return c;
}

SamxTensor *samx_matmul(SamxCtx *ctx, SamxTensor *a, SamxTensor *b, int trans_a, int trans_b) {
  if (b->dtype == SAMX_BF16) return matmul_bf16b(ctx, a, b, trans_a, trans_b);
  samx_check_f32("matmul", a);
  samx_check_f32("matmul", b);
  samx_check_same_device("matmul", a, b);
  SamxShape out_shape;
  Gemm g = matmul_plan(a, b, trans_a, trans_b, &out_shape);
  SamxTensor *c = samx_new(ctx, SAMX_F32, out_shape);
  gemm(ctx, gemm_precision(ctx, a, 0), a, g, 1.0f, samx_f32(a), samx_f32(b), 0.0f, samx_f32(c), NULL);
  SamxTensor *in[2] = {a, b};
  SamxNode *node = samx_record(ctx, "matmul", matmul_backward, c, 2, in);
  if (node) {
    *samx_node_args(node, Gemm) = g;
    samx_node_save(node, a);
    samx_node_save(node, b);
  }
  return c;
}

// ---- linear and LoRA linear ----

// x [..., in] times w [out, in]^T over all rows of x: one GEMM.
static Gemm linear_plan(const SamxTensor *x, const SamxTensor *w) {
  int64_t in = samx_dim(x, -1);
  return (Gemm){1, in ? x->numel / in : 0, w->shape[0], in, 0, 1, 0, 0, 0};
}

static SamxShape with_last_dim(const SamxTensor *t, int64_t d) {
  SamxShape s = samx_shape_of(t);
  s.d[s.ndim - 1] = d;
  return s;
}

// Checks that w is a [rows, cols] f32 matrix on x's device.
static void check_matrix(const char *op, const SamxTensor *x, const SamxTensor *w, int64_t rows, int64_t cols) {
  samx_check_f32(op, w);
  samx_check_same_device(op, x, w);
  samx_check_shape(op, w, SHAPE(rows, cols));
}

// x [..., in], w [out, in] f32 on x's device, b [out] f32 or NULL.
static void check_linear(const char *op, const SamxTensor *x, const SamxTensor *w, const SamxTensor *b) {
  SAMX_ASSERT(x->ndim >= 1 && w->ndim == 2, "%s: x has %d dims and w %d, expected x [..., in] and w [out, in]", op,
              x->ndim, w->ndim);
  check_matrix(op, x, w, w->shape[0], samx_dim(x, -1));
  if (b) {
    samx_check_f32(op, b);
    samx_check_same_device(op, x, b);
    samx_check_shape(op, b, SHAPE(w->shape[0]));
  }
}

typedef struct {
  float scale;
  SamxPrecision precision;  // of the main GEMM (x w^T); LoRA's small products are always fp32
  SamxTensor *xl, *wl;      // x and w as that GEMM's operands (gemm_operand), kept for its backward
  SamxTensor *h;            // x lora_a^T, kept for lora_b's gradient; NULL without an adapter
  int residual;             // input 3 is a residual added to y (samx_linear_residual), no adapter
} LinearArgs;

// Inputs: x, w, b, lora_a, lora_b, any of the last three NULL when absent. Every product goes through
// gemm_backward; a frozen tensor has no gradient buffer and its GEMM is skipped there. In bf16 the
// main GEMM's backward reads dL/dy in bf16 too (fp32 accumulation; dW lands in the fp32 gradient),
// and the bias gradient sums dL/dy in fp32.
static void linear_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
  SamxTensor *gy = node->out->grad;
  SamxTensor *gx = samx_grad_of(ctx, x), *gb = samx_grad_of(ctx, b), *gw = samx_grad_of(ctx, w);
  const LinearArgs *args = samx_node_args(node, LinearArgs);
  Gemm g = linear_plan(x, w);
  if (gx || gw) {
    SamxTensor *gyl = gemm_operand(ctx, args->precision, gy);
    gemm_backward(ctx, args->precision, x, g, 1.0f, args->xl->data, args->wl->data, gyl->data, f32_or_null(gx),
                  f32_or_null(gw));
  }
  if (gb)
    SAMX_ON_DEVICE(x, samx_cpu_linalg_bias_grad(samx_f32(gy), samx_f32(gb), g.m, g.n),
                   samx_cuda_linalg_bias_grad(samx_f32(gy), samx_f32(gb), g.m, g.n));
  SamxTensor *gr = args->residual ? samx_grad_of(ctx, node->in[3]) : NULL;
  if (gr)  // y = residual + ...: dL/dresidual = dL/dy
    SAMX_ON_DEVICE(x, samx_cpu_elementwise_axpy(1.0f, samx_f32(gy), samx_f32(gr), gy->numel),
                   samx_cuda_elementwise_axpy(1.0f, samx_f32(gy), samx_f32(gr), gy->numel));
  if (node->n_in < 5) return;
  SamxTensor *la = node->in[3], *lb = node->in[4];
  SamxTensor *gla = samx_grad_of(ctx, la), *h = args->h;
  SamxPrecision fp32 = SAMX_PRECISION_FP32;
  // dL/dh is only needed on the way to lora_a or x.
  SamxTensor *gh = gla || gx ? samx_zeros(ctx, SAMX_F32, samx_shape_of(h)) : NULL;
  gemm_backward(ctx, fp32, x, linear_plan(h, lb), args->scale, samx_f32(h), samx_f32(lb), samx_f32(gy),
                f32_or_null(gh), f32_or_null(samx_grad_of(ctx, lb)));
  if (gh)
    gemm_backward(ctx, fp32, x, linear_plan(x, la), 1.0f, samx_f32(x), samx_f32(la), samx_f32(gh), f32_or_null(gx),
                  f32_or_null(gla));
}

// Records y = linear(inputs) (x, w, b, then the adapter's) for linear_backward, saving x and w.
static SamxNode *record_linear(SamxCtx *ctx, const char *op, SamxTensor *y, SamxTensor **inputs, int n_in,
                               LinearArgs args) {
  SamxNode *node = samx_record(ctx, op, linear_backward, y, n_in, inputs);
  if (node) {
    *samx_node_args(node, LinearArgs) = args;
    samx_node_save(node, inputs[0]);
    samx_node_save(node, inputs[1]);
  }
  return node;
}

// y = x w^T + b, plus scale * (x lora_a^T) lora_b^T when lora_a is given. The main GEMM runs in the
// context's precision (bf16: x and w cast to bf16, cuBLASLt with the bias epilogue, y in f32).
static SamxTensor *linear_op(SamxCtx *ctx, const char *op, SamxTensor *x, SamxTensor *w, SamxTensor *b,
                             SamxTensor *lora_a, SamxTensor *lora_b, float scale) {
  if (x->dtype == SAMX_BF16) {  // a bf16 activation (bf16 precision, no adapter): its own GEMM operand
    SAMX_ASSERT(ctx->precision == SAMX_PRECISION_BF16 && !lora_a,
                "%s: BF16 x needs the bf16 precision and no LoRA adapter (precision %s%s)", op,
                samx_precision_name(ctx->precision), lora_a ? ", adapter given" : "");
  } else {
    samx_check_f32(op, x);
  }
  check_linear(op, x, w, b);
  int64_t in = samx_dim(x, -1), out = w->shape[0];
  SamxTensor *inputs[5] = {x, w, b, lora_a, lora_b};
  int n_in = lora_a ? 5 : 3, records = 0;
  for (int i = 0; i < n_in && ctx->recording; i++) records |= inputs[i] && inputs[i]->requires_grad;
  SamxPrecision p = gemm_precision(ctx, x, 1);
  SamxTensor *y = samx_new(ctx, SAMX_F32, with_last_dim(x, out));
  size_t mark = ctx->act.used;
  SamxTensor *xl = gemm_operand(ctx, p, x), *wl = gemm_operand(ctx, p, w);
  gemm(ctx, p, x, linear_plan(x, w), 1.0f, xl->data, wl->data, 0.0f, samx_f32(y), b ? samx_f32(b) : NULL);
  // Without a backward the bf16 copies are dead once the GEMM is queued (the stream orders any reuse
  // of their memory after it): inference needs no more activation memory than in fp32.
  if (!records && p == SAMX_PRECISION_BF16) samx_arena_rewind(&ctx->act, mark);
  SamxTensor *h = NULL;
  if (lora_a) {
    int64_t rank = lora_a->ndim == 2 ? lora_a->shape[0] : -1;
    check_matrix(op, x, lora_a, rank, in);
    check_matrix(op, x, lora_b, out, rank);
    h = samx_new(ctx, SAMX_F32, with_last_dim(x, rank));
    SamxPrecision fp32 = SAMX_PRECISION_FP32;
    gemm(ctx, fp32, x, linear_plan(x, lora_a), 1.0f, samx_f32(x), samx_f32(lora_a), 0.0f, samx_f32(h), NULL);
    gemm(ctx, fp32, x, linear_plan(h, lora_b), scale, samx_f32(h), samx_f32(lora_b), 1.0f, samx_f32(y), NULL);
  }
  SamxNode *node = record_linear(ctx, op, y, inputs, n_in, (LinearArgs){scale, p, xl, wl, h});
  if (node && lora_a) {
    samx_node_save(node, lora_a);
    samx_node_save(node, lora_b);
    samx_node_save(node, h);
  }
  return y;
}

SamxTensor *samx_linear(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b) {
  return linear_op(ctx, "linear", x, w, b, NULL, NULL, 0.0f);
}

// The GEMM writes bf16 itself: cuBLASLt's output type on CUDA; the CPU reference mode rounds its fp32
// result once, which is what cuBLASLt's conversion does up to the order of the fp32 sums. beta = 1
// adds what y holds (a residual, bf16) before that one rounding: cuBLASLt's beta C with C = D. gelu
// applies GELU's tanh form to the fp32 sum before the rounding: cuBLASLt's GELU epilogue.
// Returns x's and w's GEMM operands in *xl_out and *wl_out when given (kept for a backward).
static void linear_bf16_gemm(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *y, float beta,
                             int gelu, SamxTensor **xl_out, SamxTensor **wl_out) {
  const SamxPrecision bf16 = SAMX_PRECISION_BF16;
  SamxTensor *xl = gemm_operand(ctx, bf16, x), *wl = gemm_operand(ctx, bf16, w);
  if (xl_out) *xl_out = xl, *wl_out = wl;
  SamxTensor *bl = b ? gemm_operand(ctx, bf16, b) : NULL;  // the bias in bf16, as cuBLASLt takes it here
  if (x->device.type == SAMX_CPU) {
    SamxTensor *y32 = samx_new(ctx, SAMX_F32, samx_shape_of(y));
    gemm(ctx, bf16, x, linear_plan(x, w), 1.0f, xl->data, wl->data, 0.0f, samx_f32(y32), bl ? samx_f32(bl) : NULL);
    float *v = samx_f32(y32);
    const uint16_t *c = (const uint16_t *)y->data;
    if (beta != 0.0f)
      for (int64_t i = 0; i < y->numel; i++) v[i] += beta * samx_bf16_to_f32(c[i]);
    if (gelu)
      for (int64_t i = 0; i < y->numel; i++) v[i] = samx_gelu_tanhf(v[i]);
    samx_cpu_linalg_cast_f32_bf16(v, (uint16_t *)y->data, y->numel);
    return;
  }
  SAMX_ON_DEVICE(x, (void)0, gemm_lt(ctx, linear_plan(x, w), 1.0f, xl->data, wl->data, beta, NULL, y->data, 1,
                                     bl ? bl->data : NULL, gelu));
}

// samx_linear_bf16 and samx_linear_bf16_gelu: a new bf16 y from the GEMM, its epilogue optionally GELU.
// Without GELU it has a backward: linear_backward's, on the kept bf16 operands with the fp32 dL/dy (a
// bf16 y has an fp32 gradient, like every tensor on the tape). The GELU epilogue keeps no pre-activation,
// so that one is for inference (training takes samx_linear_bf16 and samx_gelu on its bf16 output).
static SamxTensor *linear_bf16_out(SamxCtx *ctx, const char *op, SamxTensor *x, SamxTensor *w, SamxTensor *b,
                                   int gelu) {
  SAMX_ASSERT(ctx->precision == SAMX_PRECISION_BF16, "%s: needs the bf16 precision (precision %s)", op,
              samx_precision_name(ctx->precision));
  SamxTensor *in[3] = {x, w, b};
  if (gelu) samx_check_bf16_inference(op, ctx, 3, in);
  if (x->dtype != SAMX_BF16) samx_check_f32(op, x);
  check_linear(op, x, w, b);
  SamxTensor *y = samx_new(ctx, SAMX_BF16, with_last_dim(x, w->shape[0])), *xl, *wl;
  size_t mark = ctx->act.used;
  linear_bf16_gemm(ctx, x, w, b, y, 0.0f, gelu, &xl, &wl);
  // Without a backward the operands' copies are dead once the GEMM is queued.
  if (!record_linear(ctx, op, y, in, 3, (LinearArgs){0.0f, SAMX_PRECISION_BF16, xl, wl, NULL}))
    samx_arena_rewind(&ctx->act, mark);
  return y;
}

SamxTensor *samx_linear_bf16(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b) {
  return linear_bf16_out(ctx, "linear_bf16", x, w, b, 0);
}

SamxTensor *samx_linear_bf16_gelu(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b) {
  return linear_bf16_out(ctx, "linear_bf16_gelu", x, w, b, 1);
}

SamxTensor *samx_linear_bf16_residual(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *residual) {
  const char *op = "linear_bf16_residual";
  SAMX_ASSERT(ctx->precision == SAMX_PRECISION_BF16, "%s: needs the bf16 precision (precision %s)", op,
              samx_precision_name(ctx->precision));
  SamxTensor *in[4] = {x, w, b, residual};
  samx_check_bf16_inference(op, ctx, 4, in);
  if (x->dtype != SAMX_BF16) samx_check_f32(op, x);
  check_linear(op, x, w, b);
  if (residual->dtype != SAMX_BF16)
    SAMX_DIE("%s: the residual must be BF16, got %s", op, samx_dtype_name(residual->dtype));
  samx_check_same_device(op, x, residual);
  samx_check_shape(op, residual, with_last_dim(x, w->shape[0]));
  SAMX_ASSERT(residual->data != x->data, "%s: the residual cannot be the GEMM's own input", op);
  size_t mark = ctx->act.used;
  linear_bf16_gemm(ctx, x, w, b, residual, 1.0f, 0, NULL, NULL);
  samx_arena_rewind(&ctx->act, mark);
  return residual;
}

SamxTensor *samx_linear_residual(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *residual) {
  const char *op = "linear_residual";
  if (ctx->precision != SAMX_PRECISION_BF16 || x->device.type != SAMX_CUDA)
    return samx_add(ctx, residual, samx_linear(ctx, x, w, b));
  if (x->dtype != SAMX_BF16) samx_check_f32(op, x);
  check_linear(op, x, w, b);
  samx_check_f32(op, residual);
  samx_check_same_device(op, x, residual);
  samx_check_shape(op, residual, with_last_dim(x, w->shape[0]));
  SamxTensor *y = samx_new(ctx, SAMX_F32, with_last_dim(x, w->shape[0]));
  size_t mark = ctx->act.used;
  SamxTensor *xl = gemm_operand(ctx, SAMX_PRECISION_BF16, x), *wl = gemm_operand(ctx, SAMX_PRECISION_BF16, w);
  SAMX_ON_DEVICE(x, (void)0, gemm_lt(ctx, linear_plan(x, w), 1.0f, xl->data, wl->data, 1.0f, residual->data, y->data, 0,
                                     b ? b->data : NULL, 0));
  SamxTensor *in[4] = {x, w, b, residual};
  if (!record_linear(ctx, op, y, in, 4, (LinearArgs){0.0f, SAMX_PRECISION_BF16, xl, wl, NULL, 1}))
    samx_arena_rewind(&ctx->act, mark);
  return y;
}

SamxTensor *samx_lora_linear(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, SamxTensor *lora_a,
                             SamxTensor *lora_b, float scale) {
  SAMX_ASSERT(lora_a && lora_b, "lora_linear: lora_a and lora_b are required (use samx_linear without an adapter)");
  return linear_op(ctx, "lora_linear", x, w, b, lora_a, lora_b, scale);
}

// ---- embedding ----

static void embedding_backward(SamxCtx *ctx, SamxNode *node) {
  SamxTensor *table = node->in[0], *idx = node->in[1];
  SamxTensor *gt = samx_grad_of(ctx, table);
  if (!gt) return;
  const float *gout = samx_f32(node->out->grad);
  SAMX_ON_DEVICE(table,
                 samx_cpu_linalg_embedding_bwd(gout, (const int32_t *)idx->data, idx->numel, table->shape[1],
                                               samx_f32(gt)),
                 samx_cuda_linalg_embedding_bwd(gout, (const int32_t *)idx->data, idx->numel, table->shape[1],
                                                samx_f32(gt)));
}

SamxTensor *samx_embedding(SamxCtx *ctx, SamxTensor *table, SamxTensor *idx) {
  char s[96];
  samx_check_f32("embedding", table);
  samx_check_same_device("embedding", table, idx);
  SAMX_ASSERT(table->ndim == 2, "embedding: table %s, expected [V, D]",
              samx_shape_str(samx_shape_of(table), s, sizeof s));
  SAMX_ASSERT(idx->dtype == SAMX_I32, "embedding: indices are %s, expected I32", samx_dtype_name(idx->dtype));
  SAMX_ASSERT(idx->ndim < SAMX_MAX_DIMS, "embedding: indices %s have too many dims for the output",
              samx_shape_str(samx_shape_of(idx), s, sizeof s));
  int64_t n_rows = table->shape[0], dim = table->shape[1];
  SamxShape out_shape = samx_shape_of(idx);
  out_shape.d[out_shape.ndim++] = dim;
  SamxTensor *out = samx_new(ctx, SAMX_F32, out_shape);
  const int32_t *ix = (const int32_t *)idx->data;
  int32_t bad = 0;
  int64_t pos = -1;
  SAMX_ON_DEVICE(table, pos = samx_cpu_linalg_embedding_fwd(samx_f32(table), n_rows, dim, ix, idx->numel, samx_f32(out), &bad),
                 pos = samx_cuda_linalg_embedding_fwd(samx_f32(table), n_rows, dim, ix, idx->numel, samx_f32(out), &bad));
  if (pos >= 0)
    SAMX_DIE("embedding: index %d (element %lld of indices %s) is outside the table's %lld rows", (int)bad,
             (long long)pos, samx_shape_str(samx_shape_of(idx), s, sizeof s), (long long)n_rows);
  SamxTensor *in[2] = {table, idx};
  SamxNode *node = samx_record(ctx, "embedding", embedding_backward, out, 2, in);
  if (node) samx_node_save(node, idx);
  return out;
}
