// `samx bench kernels`: GEMM, attention (SAM's window and global shapes), LayerNorm, conv2d and
// conv-transpose2d through the engine's ops (inference mode), with the same work in PyTorch beside.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

static const char *USAGE =
    "usage: samx bench kernels [--device auto|cpu|cuda[:N]] [-r REPS] [-o md|json] [--quick] [--compare-torch]\n"
    "\n"
    "Times each kernel on SAM ViT-B shapes (one 1024x1024 image: 64x64 tokens, width 768, 12 heads of 64)\n"
    "and prints: milliseconds (median of REPS after one warm-up), GFLOP/s or GB/s, the fraction of the\n"
    "device's peak (FLOP/s in the run's precision for compute-bound ops, memory bandwidth for the\n"
    "others), and with --compare-torch the same work in PyTorch (same device and precision; in bf16 the\n"
    "attention through scaled_dot_product_attention) and samx's speed-up over it. In bf16 the GEMMs,\n"
    "attentions and LayerNorm read and write bf16 tensors as they do inside the encoder (a GEMM's weight\n"
    "already bf16, as samx keeps each parameter's bf16 copy; no operand casts timed), the convolutions\n"
    "take and give f32 tensors, as samx's convolution op does. The 3x3 convolutions run twice: as bf16's\n"
    "implicit GEMM on tensor cores (on CUDA; im2col elsewhere) and as im2col + GEMM.\n"
    "  --quick    small shapes (seconds on a laptop CPU; used by the tests)\n"
    "  -o json    machine-readable output with build commit, device and raw numbers\n";

typedef SamxTensor *(*BenchFn)(SamxCtx *ctx, SamxTensor **in, const int64_t *p);

typedef struct {
  const char *name;
  int n_in;
  SamxShape in[5];
  int64_t p[8];  // op parameters
  BenchFn fn, fn_bf16;  // fn_bf16: the op on the bf16 inputs in bf16 precision (NULL: fn)
  unsigned bf16_in;     // bit i: in[i] is a BF16 tensor in bf16 precision
  unsigned kept_in;     // bit i: in[i] is a weight with a kept bf16 operand in bf16 precision (as parameters)
  int im2col;           // convolutions: im2col + GEMM instead of bf16's implicit GEMM on CUDA
  // Bytes moved: elems values in the inputs' dtype (2 bytes for the bf16 inputs and outputs) plus
  // f32_bytes that stay f32 whatever the precision (rel-pos terms; convolutions' tensors).
  double flops, elems, f32_bytes;
  char spec[128];
} Case;

static SamxTensor *run_gemm(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  return samx_matmul(ctx, in[0], in[1], 0, (int)p[0]);
}
// bf16: x [m, k] BF16 and w [n, k] (its kept bf16 operand) -> BF16 [m, n], the encoder's linear layers.
static SamxTensor *run_linear_bf16(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  (void)p;
  return samx_linear_bf16(ctx, in[0], in[1], NULL);
}
static SamxTensor *run_attention(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  float scale = 1.0f / sqrtf((float)in[0]->shape[3]);
  return samx_attention(ctx, in[0], in[1], in[2], p[0] ? in[3] : NULL, p[0] ? in[4] : NULL, scale);
}
static SamxTensor *run_layernorm(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  return samx_layernorm(ctx, in[0], in[1], in[2], 1e-6f);
}
static SamxTensor *run_conv(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  return samx_conv2d(ctx, in[0], in[1], in[2], (int)p[0], (int)p[1]);
}
static SamxTensor *run_convt(SamxCtx *ctx, SamxTensor **in, const int64_t *p) {
  return samx_conv_transpose2d(ctx, in[0], in[1], in[2], (int)p[0], (int)p[1]);
}

static Case gemm(int64_t m, int64_t n, int64_t k, const char *what) {
  Case c = {.name = what, .n_in = 2, .in = {SHAPE(m, k), SHAPE(n, k)}, .p = {1}, .fn = run_gemm,
            .fn_bf16 = run_linear_bf16, .bf16_in = 1, .kept_in = 2};
  c.flops = 2.0 * m * n * k;
  c.elems = (double)(m * k + n * k + m * n);
  snprintf(c.spec, sizeof c.spec, "gemm %lld %lld %lld", (long long)m, (long long)n, (long long)k);
  return c;
}

static Case attention(int64_t b, int64_t h, int64_t t, int64_t d, int64_t side, const char *what) {
  Case c = {.name = what, .n_in = 5, .p = {1}, .fn = run_attention, .bf16_in = 7};  // q, k, v; rel_h/w f32
  c.in[0] = c.in[1] = c.in[2] = SHAPE(b, h, t, d);
  c.in[3] = c.in[4] = SHAPE(b, h, t, side);
  c.flops = 4.0 * b * h * t * t * d;
  c.elems = 4.0 * b * h * t * d;
  c.f32_bytes = 4.0 * 2 * b * h * t * side;
  snprintf(c.spec, sizeof c.spec, "attention %lld %lld %lld %lld %lld", (long long)b, (long long)h, (long long)t,
           (long long)d, (long long)side);
  return c;
}

static Case layernorm(int64_t n, int64_t ch) {
  Case c = {.name = "layernorm", .n_in = 3, .in = {SHAPE(n, ch), SHAPE(ch), SHAPE(ch)}, .fn = run_layernorm,
            .bf16_in = 1};
  c.elems = 2.0 * n * ch;
  snprintf(c.spec, sizeof c.spec, "layernorm %lld %lld", (long long)n, (long long)ch);
  return c;
}

static Case conv(const char *what, int64_t b, int64_t cin, int64_t hw, int64_t cout, int64_t k, int64_t s, int64_t pad,
                 int transpose) {
  Case c = {.name = what, .n_in = 3, .p = {s, pad}, .fn = transpose ? run_convt : run_conv};
  c.in[0] = SHAPE(b, cin, hw, hw);
  c.in[1] = transpose ? SHAPE(cin, cout, k, k) : SHAPE(cout, cin, k, k);
  c.in[2] = SHAPE(cout);
  int64_t out = transpose ? (hw - 1) * s - 2 * pad + k : (hw + 2 * pad - k) / s + 1;
  c.flops = transpose ? 2.0 * b * cin * hw * hw * cout * k * k : 2.0 * b * cout * out * out * cin * k * k;
  c.f32_bytes = 4.0 * (b * cin * hw * hw + b * cout * out * out + cin * cout * k * k);
  snprintf(c.spec, sizeof c.spec, "%s %lld %lld %lld %lld %lld %lld %lld", transpose ? "convt" : "conv2d", (long long)b,
           (long long)cin, (long long)hw, (long long)cout, (long long)k, (long long)s, (long long)pad);
  return c;
}

// The same convolution through im2col + GEMM (what fp32 and tf32 run; on CUDA in bf16 the
// alternative to the implicit GEMM, timed beside it).
static Case im2col(Case c, const char *what) {
  c.name = what;
  c.im2col = 1;
  return c;
}

static int make_cases(int quick, Case *c) {
  int n = 0;
  if (quick) {
    c[n++] = gemm(256, 384, 128, "gemm");
    c[n++] = attention(4, 2, 49, 32, 7, "attention window");
    c[n++] = attention(1, 2, 256, 32, 16, "attention global");
    c[n++] = layernorm(256, 128);
    c[n++] = conv("conv2d 3x3", 1, 32, 16, 32, 3, 1, 1, 0);
    c[n] = im2col(c[n - 1], "conv2d 3x3, im2col");
    n++;
    c[n++] = conv("conv-transpose 2x2", 1, 32, 16, 16, 2, 2, 0, 1);
    return n;
  }
  c[n++] = gemm(4096, 2304, 768, "gemm qkv");
  c[n++] = gemm(4096, 768, 768, "gemm proj");
  c[n++] = gemm(4096, 3072, 768, "gemm mlp fc1");
  c[n++] = gemm(4096, 768, 3072, "gemm mlp fc2");
  c[n++] = attention(25, 12, 196, 64, 14, "attention window 14x14");
  c[n++] = attention(1, 12, 4096, 64, 64, "attention global 64x64");
  c[n++] = layernorm(4096, 768);
  c[n++] = conv("conv2d patch-embed 16x16", 1, 3, 1024, 768, 16, 16, 0, 0);
  c[n++] = conv("conv2d neck 3x3", 1, 256, 64, 256, 3, 1, 1, 0);
  c[n] = im2col(c[n - 1], "conv2d neck 3x3, im2col");
  n++;
  c[n++] = conv("conv2d SeqSAM cell 3x3", 1, 512, 64, 256, 3, 1, 1, 0);
  c[n] = im2col(c[n - 1], "conv2d SeqSAM cell 3x3, im2col");
  n++;
  c[n++] = conv("conv-transpose 2x2", 1, 256, 64, 64, 2, 2, 0, 1);
  return n;
}

static void time_case(SamxCtx *ctx, const Case *c, int reps, BenchRow *row) {
  samx_ctx_reset(ctx);
  int bf16 = ctx->precision == SAMX_PRECISION_BF16 && c->bf16_in;  // the GEMM's kept weight moves 2 bytes too
  BenchFn fn = bf16 && c->fn_bf16 ? c->fn_bf16 : c->fn;
  SamxTensor *in[5];
  for (int i = 0; i < c->n_in; i++) {
    in[i] = samx_new(ctx, SAMX_F32, c->in[i]);
    bench_fill(in[i], (uint64_t)i + 1);
    if (bf16 && (c->bf16_in >> i & 1)) in[i] = samx_cast(ctx, in[i], SAMX_BF16);
    if (bf16 && (c->kept_in >> i & 1)) {  // filled by the warm-up, read as is by the timed runs
      in[i]->shadow = samx_new(ctx, SAMX_BF16, c->in[i]);
      in[i]->shadow_filled = 0;
    }
  }
  size_t mark = ctx->act.used;
  samx_conv_set_implicit(!c->im2col);
  double *t = (double *)malloc(sizeof(double) * (size_t)reps);
  for (int r = -1; r < reps; r++) {  // r = -1 is the warm-up
    samx_ctx_release(ctx, mark);  // outputs of the previous repetition are dead
    samx_device_sync(ctx->device);
    double t0 = bench_now_ms();
    fn(ctx, in, c->p);
    samx_device_sync(ctx->device);
    if (r >= 0) t[r] = bench_now_ms() - t0;
  }
  memset(row, 0, sizeof *row);
  snprintf(row->name, sizeof row->name, "%s", c->name);
  SamxShape s0 = c->in[0];
  samx_shape_str(s0, row->shape, sizeof row->shape);
  snprintf(row->spec, sizeof row->spec, "%s", c->spec);
  row->flops = c->flops;
  row->bytes = c->elems * (bf16 ? 2 : 4) + c->f32_bytes;
  row->ms = bench_median(t, reps);
  samx_conv_set_implicit(1);
  free(t);
}

int samx_bench_kernels(int argc, char **argv) {
  BenchOpts o;
  if (bench_parse_opts(argc, argv, &o, USAGE) < 0) return 2;
  Case cases[16];  // make_cases fills at most 13
  int n = make_cases(o.quick, cases);
  SamxCtx ctx;
  samx_ctx_init(&ctx, o.device, o.quick ? ((size_t)64 << 20) : ((size_t)2 << 30), 64);
  samx_ctx_set_recording(&ctx, 0);
  BenchRow rows[16];
  for (int i = 0; i < n; i++) {
    time_case(&ctx, &cases[i], o.reps, &rows[i]);
    if (!o.json && isatty(2)) fprintf(stderr, "\r[%d/%d] %-32s", i + 1, n, cases[i].name);
  }
  if (!o.json && isatty(2)) fprintf(stderr, "\r%60s\r", "");
  bench_torch("kernels", &o, rows, n);
  HwLimits hw;
  bench_limits(o.device, o.precision, &hw);
  bench_print("kernels", &o, &hw, rows, n);
  samx_ctx_free(&ctx);
  return 0;
}

