// BF16 attention (samx_attention on BF16 q, k, v): on CUDA the tensor-core flash attention
// (kernels/cuda/attention_bf16.cu, WMMA; run on the emulator here), on the CPU the fp32 kernels on
// the bf16 values. Oracle: the fp32 CPU attention (itself checked against a double reference,
// finite differences and PyTorch in test_ops_attention), forward and backward, for each shape class
// SAM has: encoder window blocks, global blocks, the decoder's attentions.
//
// Tolerances (|got - ref| <= tol * max(1, max|ref|), per tensor) and why:
//  - CPU, vs fp32 on the same bf16-rounded inputs: the only difference is the output's rounding to
//    bf16, at most 2^-9 relative: tol 2^-9 + 1e-6. Backward: delta = <dout, out> reads that bf16 output
//    (as on CUDA), each of its d terms off by up to 2^-9 relative with random signs: tol 5e-3.
//  - CUDA, vs fp32 on the bf16-rounded inputs: the probabilities fed to P V are bf16 (2^-9 relative
//    each, errors of random sign over the keys) and the output is rounded (2^-9): tol 6e-3 forward.
//    Backward adds bf16 roundings of dout, P and dS before their tensor-core products, each a
//    relative 2^-9 on terms of both signs (about 4 x 2^-9 together): tol 1e-2 of the largest
//    gradient.
//  - either device, vs fp32 on the unrounded inputs: add the rounding of q and k, whose dot product
//    over d terms errs by ~2^-8 sqrt(d) |q||k| scale (~0.005 in the logit for d = 64, q, k in
//    [-2, 2], scale 1/8) and of v (2^-9): tol 3e-2.
// The global case uses 1,024 tokens (32 x 32) instead of SAM's 4,096 to keep the emulator fast;
// the kernels loop over key tiles the same way at any length. SAMX_TEST_FULL_GLOBAL=1 adds SAM's
// 64 x 64 global block (one head).
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"

typedef struct {
  const char *name;
  int B, H, Tq, Tk, D, KH, KW;  // KH = KW = 0: no bias
  float scale;
} Case;

static const Case kCases[] = {
    {"encoder window 14x14, D 64", 2, 2, 196, 196, 64, 14, 14, 0.125f},
    {"encoder global 32x32, D 64", 1, 1, 1024, 1024, 64, 32, 32, 0.125f},
    {"decoder token->image 7 x 4096, D 16", 1, 2, 7, 4096, 16, 0, 0, 0.25f},
    {"decoder image->token 4096 x 7, D 16", 1, 2, 4096, 7, 16, 0, 0, 0.25f},
    {"decoder token self-attention 7 x 7, D 32", 2, 2, 7, 7, 32, 0, 0, 0.1767767f},
    {"partial tiles 40 x 70, bias 7x10, D 128", 1, 2, 40, 70, 128, 7, 10, 0.0884f},
    {"encoder global 64x64, D 64 (one head)", 1, 1, 4096, 4096, 64, 64, 64, 0.125f},  // SAMX_TEST_FULL_GLOBAL
};

enum { Q, K, V, RH, RW, N_IN };

typedef struct {
  float *out, *grad[N_IN];
} Result;

static float round_bf16(float x) { return samx_bf16_to_f32(samx_f32_to_bf16(x)); }

static int64_t numel_of(const Case *c, int i) {
  const int64_t bh = (int64_t)c->B * c->H;
  switch (i) {
    case Q: return bh * c->Tq * c->D;
    case K: case V: return bh * c->Tk * c->D;
    case RH: return bh * c->Tq * c->KH;
    default: return bh * c->Tq * c->KW;
  }
}

static SamxShape shape_of(const Case *c, int i) {
  switch (i) {
    case Q: return SHAPE(c->B, c->H, c->Tq, c->D);
    case K: case V: return SHAPE(c->B, c->H, c->Tk, c->D);
    case RH: return SHAPE(c->B, c->H, c->Tq, c->KH);
    default: return SHAPE(c->B, c->H, c->Tq, c->KW);
  }
}

// Forward and backward on dev with q, k, v of dtype dt; returns host copies (caller frees).
static Result run(const Case *c, SamxDevice dev, SamxDType dt, float *const in[N_IN], const float *dout,
                  int backward) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)512 << 20, 64);
  SamxTensor *t[N_IN] = {0};
  const int n_in = c->KH ? N_IN : 3;
  for (int i = 0; i < n_in; i++) {
    t[i] = samx_new(&ctx, i < 3 ? dt : SAMX_F32, shape_of(c, i));
    samx_tensor_write_f32(t[i], in[i]);
    t[i]->requires_grad = (uint8_t)backward;
  }
  SamxTensor *out = samx_attention(&ctx, t[Q], t[K], t[V], t[RH], t[RW], c->scale);
  Result r = {0};
  r.out = malloc((size_t)out->numel * sizeof(float));
  samx_tensor_read_f32(out, r.out);
  if (backward) {
    SamxTensor *g = samx_new(&ctx, SAMX_F32, samx_shape_of(out));
    samx_tensor_write_f32(g, dout);
    CHECK(samx_backward(&ctx, out, g) == 0, "%s: backward", c->name);
    for (int i = 0; i < n_in; i++) {
      r.grad[i] = calloc((size_t)numel_of(c, i), sizeof(float));
      if (t[i]->grad) samx_tensor_read_f32(t[i]->grad, r.grad[i]);
    }
  }
  samx_ctx_free(&ctx);
  return r;
}

static void free_result(Result *r) {
  free(r->out);
  for (int i = 0; i < N_IN; i++) free(r->grad[i]);
}

// max |a - b| / max(1, max |b|).
static double err_of(const float *a, const float *b, int64_t n) {
  double e = 0, m = 1;
  for (int64_t i = 0; i < n; i++) {
    e = fmax(e, fabs((double)a[i] - b[i]));
    m = fmax(m, fabs((double)b[i]));
    if (isnan(a[i])) return INFINITY;
  }
  return e / m;
}

// Bad arguments: a BF16 q with head dim 48 (no whole 16-wide tiles), or BF16 q with F32 k.
static void call_bad(SamxDevice dev, int which) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)1 << 20, 16);
  const int D = which == 0 ? 48 : 16;
  SamxTensor *q = samx_new(&ctx, SAMX_BF16, SHAPE(1, 1, 4, D));
  SamxTensor *k = samx_new(&ctx, which == 0 ? SAMX_BF16 : SAMX_F32, SHAPE(1, 1, 4, D));
  SamxTensor *v = samx_new(&ctx, SAMX_BF16, SHAPE(1, 1, 4, D));
  samx_attention(&ctx, q, k, v, NULL, NULL, 0.25f);
}

// Whether call_bad(dev, which) dies with a message containing needle (run in a child).
typedef struct {
  SamxDevice dev;
  int which;
} BadCall;

static void run_bad(void *arg) {
  const BadCall *b = (const BadCall *)arg;
  call_bad(b->dev, b->which);
}

static int dies_with(SamxDevice dev, int which, const char *needle) {
  BadCall b = {dev, which};
  char msg[2048];
  int status = samx_test_run_child(run_bad, &b, msg, sizeof msg);
  const int ok = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) && strstr(msg, needle) != NULL;
  if (!ok) printf("child status %d, stderr: %s\n", status, msg);
  return ok;
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  const int cuda = dev.type == SAMX_CUDA;
  CHECK(dies_with(dev, 0, "head dim 48; the tensor-core path takes 16, 32, 64 or 128"), "head dim 48 refused");
  CHECK(dies_with(dev, 1, "q is BF16, so k must be too (got F32)"), "mixed dtypes refused");
  static const char *names[N_IN] = {"dq", "dk", "dv", "drel_h", "drel_w"};
  const double tol_out = cuda ? 6e-3 : 0x1p-9 + 1e-6, tol_grad = cuda ? 1e-2 : 5e-3, tol_raw = 3e-2;
  const char *full = getenv("SAMX_TEST_FULL_GLOBAL");
  const size_t n_cases = sizeof kCases / sizeof *kCases - (full && strcmp(full, "1") == 0 ? 0 : 1);
  for (size_t ci = 0; ci < n_cases; ci++) {
    const Case *c = &kCases[ci];
    const int n_in = c->KH ? N_IN : 3;
    uint64_t state = 0x9e3779b97f4a7c15ull + ci;
    float *raw[N_IN] = {0}, *rnd[N_IN] = {0};
    for (int i = 0; i < n_in; i++) {
      const int64_t n = numel_of(c, i);
      raw[i] = malloc((size_t)n * sizeof(float));
      rnd[i] = malloc((size_t)n * sizeof(float));
      samx_test_fill_uniform(raw[i], n, i < 2 ? -2 : -1, i < 2 ? 2 : 1, &state);
      for (int64_t j = 0; j < n; j++) rnd[i][j] = i < 3 ? round_bf16(raw[i][j]) : raw[i][j];
    }
    const int64_t n_out = numel_of(c, Q);
    float *dout = malloc((size_t)n_out * sizeof(float));
    samx_test_fill_uniform(dout, n_out, -1, 1, &state);

    Result ref = run(c, samx_cpu(), SAMX_F32, rnd, dout, 1);
    Result ref_raw = run(c, samx_cpu(), SAMX_F32, raw, dout, 0);
    const clock_t t0 = clock();
    Result got = run(c, dev, SAMX_BF16, raw, dout, 1);
    const double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;

    const double e_out = err_of(got.out, ref.out, n_out), e_raw = err_of(got.out, ref_raw.out, n_out);
    CHECK(e_out <= tol_out, "%s: out vs fp32 on the bf16 inputs: error %.3g > %.3g", c->name, e_out, tol_out);
    CHECK(e_raw <= tol_raw, "%s: out vs fp32 on the unrounded inputs: error %.3g > %.3g", c->name, e_raw, tol_raw);
    // An output that is not bf16 (e.g. fp32 leaking through) would not survive rounding unchanged.
    int not_bf16 = 0;
    for (int64_t j = 0; j < n_out; j++) not_bf16 += got.out[j] != round_bf16(got.out[j]);
    CHECK(not_bf16 == 0, "%s: %d outputs are not bf16 values", c->name, not_bf16);
    printf("%-44s %s: out err %.2e (unrounded inputs %.2e)", c->name, cuda ? "cuda" : "cpu", e_out, e_raw);
    for (int i = 0; i < n_in; i++) {
      const double e = err_of(got.grad[i], ref.grad[i], numel_of(c, i));
      CHECK(e <= tol_grad, "%s: %s vs fp32: error %.3g > %.3g", c->name, names[i], e, tol_grad);
      printf(", %s %.2e", names[i], e);
    }
    printf(" [%.2f s]\n", secs);
    free_result(&ref), free_result(&ref_raw), free_result(&got);
    for (int i = 0; i < n_in; i++) free(raw[i]), free(rnd[i]);
    free(dout);
  }

  return samx_test_summary();
}
