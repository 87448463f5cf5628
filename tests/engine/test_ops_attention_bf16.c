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
// samx_attention_packed_bf16 (q, k, v read from a qkv projection's rows, the output written as the
// projection reads it) is checked bit for bit against samx_attention on q, k, v cut out of the same
// rows by host loops, its output put back the same way: only the addressing differs.
// samx_rel_pos_packed_bf16 (the relative-position terms from the same rows) against a double reference.
// Windowed (SAM's window blocks folded into the addressing): both ops against the windows cut by host
// loops, bit for bit. samx_attention_packed_rel_bf16 (the terms computed inside the attention) against
// the two ops it fuses, bit for bit, windowed and whole-image.
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

// qkv [B, T, 3, H, D] of case c (Tq == Tk) as host arrays: the packed rows, and q, k, v cut out of
// them as [B, H, T, D] each.
static float *packed_rows(const Case *c, float *sep[3], uint64_t *state) {
  const int64_t B = c->B, H = c->H, T = c->Tq, D = c->D, per = B * H * T * D;
  float *qkv = malloc((size_t)(3 * per) * sizeof(float));
  samx_test_fill_uniform(qkv, 3 * per, -2, 2, state);
  for (int i = 0; i < 3; i++) sep[i] = malloc((size_t)per * sizeof(float));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int i = 0; i < 3; i++)
        for (int64_t h = 0; h < H; h++)
          for (int64_t e = 0; e < D; e++)
            sep[i][((b * H + h) * T + t) * D + e] = qkv[(((b * T + t) * 3 + i) * H + h) * D + e];
  return qkv;
}

static float *read_host(SamxTensor *t) {
  float *h = malloc((size_t)t->numel * sizeof(float));
  samx_tensor_read_f32(t, h);
  return h;
}

static void packed_check(const Case *c, SamxDevice dev, uint64_t *state) {
  const int64_t B = c->B, H = c->H, T = c->Tq, D = c->D;
  float *sep[3], *qkv = packed_rows(c, sep, state), *rel[2] = {0};
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)512 << 20, 64);
  samx_ctx_set_recording(&ctx, 0);
  // The tokens as a grid: the bias's KH x KW when there is one, else a column.
  const int64_t gh = c->KH ? c->KH : T, gw = c->KH ? c->KW : 1;
  SamxTensor *tqkv = samx_new(&ctx, SAMX_BF16, SHAPE(B, gh, gw, 3 * H * D)), *ts[3], *trel[2] = {0};
  samx_tensor_write_f32(tqkv, qkv);
  for (int i = 0; i < 3; i++) {
    ts[i] = samx_new(&ctx, SAMX_BF16, SHAPE(B, H, T, D));
    samx_tensor_write_f32(ts[i], sep[i]);
  }
  for (int i = 0; c->KH && i < 2; i++) {
    rel[i] = malloc((size_t)numel_of(c, RH + i) * sizeof(float));
    samx_test_fill_uniform(rel[i], numel_of(c, RH + i), -1, 1, state);
    trel[i] = samx_new(&ctx, SAMX_F32, shape_of(c, RH + i));
    samx_tensor_write_f32(trel[i], rel[i]);
  }
  SamxTensor *packed = samx_attention_packed_bf16(&ctx, tqkv, H, 0, NULL, trel[0], trel[1], c->scale);
  SamxTensor *plain = samx_attention(&ctx, ts[0], ts[1], ts[2], trel[0], trel[1], c->scale);
  CHECK(packed->dtype == SAMX_BF16 && packed->ndim == 4 && packed->shape[0] == B && packed->shape[1] == gh &&
            packed->shape[2] == gw && packed->shape[3] == H * D,
        "%s: packed output is %s [%lld, %lld, %lld, %lld]", c->name, samx_dtype_name(packed->dtype),
        (long long)packed->shape[0], (long long)packed->shape[1], (long long)packed->shape[2],
        (long long)packed->shape[3]);
  float *got = read_host(packed), *want = read_host(plain);
  int64_t differ = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t e = 0; e < D; e++)
          differ += got[((b * T + t) * H + h) * D + e] != want[((b * H + h) * T + t) * D + e];
  CHECK(differ == 0, "%s: packed layout differs from samx_attention in %lld of %lld outputs", c->name,
        (long long)differ, (long long)(B * T * H * D));
  printf("%-44s %s: packed layout bit for bit\n", c->name, dev.type == SAMX_CUDA ? "cuda" : "cpu");
  free(got), free(want), free(qkv), free(rel[0]), free(rel[1]);
  for (int i = 0; i < 3; i++) free(sep[i]);
  samx_ctx_free(&ctx);
}

// samx_rel_pos_packed_bf16 against a double reference of add_decomposed_rel_pos on the same bf16 q:
// both sum the same D products, the kernel in fp32 (error <= D 2^-24 sum |q_c r_c|, doubled for
// contracted multiply-adds), so every term must lie within 2 D 2^-24 sum |q_c r_c| of it.
static void rel_pos_check(SamxDevice dev, int B, int H, int h, int w, int D, uint64_t *state) {
  const int64_t T = (int64_t)h * w, n = (int64_t)B * T * 3 * H * D;
  float *qkv = malloc((size_t)n * sizeof(float)), *th = malloc(sizeof(float) * (size_t)(2 * h - 1) * D),
        *tw = malloc(sizeof(float) * (size_t)(2 * w - 1) * D);
  samx_test_fill_uniform(qkv, n, -2, 2, state);
  samx_test_fill_uniform(th, (int64_t)(2 * h - 1) * D, -1, 1, state);
  samx_test_fill_uniform(tw, (int64_t)(2 * w - 1) * D, -1, 1, state);
  for (int64_t i = 0; i < n; i++) qkv[i] = round_bf16(qkv[i]);
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)64 << 20, 64);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *tq = samx_new(&ctx, SAMX_BF16, SHAPE(B, h, w, 3 * H * D));
  SamxTensor *tth = samx_new(&ctx, SAMX_F32, SHAPE(2 * h - 1, D)), *ttw = samx_new(&ctx, SAMX_F32, SHAPE(2 * w - 1, D));
  samx_tensor_write_f32(tq, qkv), samx_tensor_write_f32(tth, th), samx_tensor_write_f32(ttw, tw);
  SamxTensor *rh, *rw;
  samx_rel_pos_packed_bf16(&ctx, tq, H, 0, NULL, tth, ttw, &rh, &rw);
  CHECK(rh->ndim == 4 && rh->shape[0] == B && rh->shape[1] == H && rh->shape[2] == T && rh->shape[3] == h &&
            rw->shape[3] == w,
        "rel_pos_packed: shapes");
  float *got[2] = {read_host(rh), read_host(rw)};
  double worst = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t hd = 0; hd < H; hd++)
      for (int64_t t = 0; t < T; t++)
        for (int which = 0; which < 2; which++) {
          const int K = which ? w : h, pos = which ? (int)(t % w) : (int)(t / w);
          const float *table = which ? tw : th;
          for (int k = 0; k < K; k++) {
            double ref = 0, mag = 0;
            for (int c = 0; c < D; c++) {
              double p = (double)qkv[((b * T + t) * 3 * H + hd) * D + c] * table[(pos - k + K - 1) * D + c];
              ref += p, mag += fabs(p);
            }
            double g = got[which][((b * H + hd) * T + t) * K + k];
            worst = fmax(worst, fabs(g - ref) / (2.0 * D * 0x1p-24 * mag + 1e-30));
          }
        }
  CHECK(worst <= 1, "rel_pos_packed %dx%d, D %d on %s: %.3g of the fp32 bound", h, w, D,
        dev.type == SAMX_CUDA ? "cuda" : "cpu", worst);
  printf("rel_pos_packed %2dx%-2d D %3d, %d heads %s: %.3f of the fp32 bound\n", h, w, D, H,
         dev.type == SAMX_CUDA ? "cuda" : "cpu", worst);
  free(got[0]), free(got[1]), free(qkv), free(th), free(tw);
  samx_ctx_free(&ctx);
}

static int64_t count_differ(const float *a, const float *b, int64_t n) {
  int64_t d = 0;
  for (int64_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

// samx_attention_packed_rel_bf16 on whole images (a global block's call) against
// samx_rel_pos_packed_bf16 then samx_attention_packed_bf16 on the same qkv and tables: bit for bit
// (the same arithmetic; on CUDA the terms never reach memory).
static void fused_rel_check(SamxDevice dev, int B, int H, int h, int w, int D, uint64_t *state) {
  const int64_t C = 3 * (int64_t)H * D, n = (int64_t)B * h * w * C;
  float *qkv = malloc(sizeof(float) * (size_t)n), *th = malloc(sizeof(float) * (size_t)(2 * h - 1) * D),
        *tw = malloc(sizeof(float) * (size_t)(2 * w - 1) * D);
  samx_test_fill_uniform(qkv, n, -2, 2, state);
  samx_test_fill_uniform(th, (int64_t)(2 * h - 1) * D, -1, 1, state);
  samx_test_fill_uniform(tw, (int64_t)(2 * w - 1) * D, -1, 1, state);
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)256 << 20, 64);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *tq = samx_new(&ctx, SAMX_BF16, SHAPE(B, h, w, C));
  SamxTensor *tth = samx_new(&ctx, SAMX_F32, SHAPE(2 * h - 1, D)), *ttw = samx_new(&ctx, SAMX_F32, SHAPE(2 * w - 1, D));
  samx_tensor_write_f32(tq, qkv), samx_tensor_write_f32(tth, th), samx_tensor_write_f32(ttw, tw);
  const float scale = 1.0f / sqrtf((float)D);
  SamxTensor *rh, *rw;
  samx_rel_pos_packed_bf16(&ctx, tq, H, 0, NULL, tth, ttw, &rh, &rw);
  SamxTensor *two = samx_attention_packed_bf16(&ctx, tq, H, 0, NULL, rh, rw, scale);
  size_t before = ctx.act.used;
  SamxTensor *one = samx_attention_packed_rel_bf16(&ctx, tq, H, 0, NULL, tth, ttw, scale);
  const size_t took = ctx.act.used - before;
  float *a = read_host(one), *b = read_host(two);
  const int64_t differ = count_differ(a, b, two->numel);
  CHECK(differ == 0, "attention_packed_rel %dx%d, D %d: differs from rel_pos + attention in %lld of %lld", h, w, D,
        (long long)differ, (long long)two->numel);
  // On CUDA the op allocates its output and nothing else (the terms stay in shared memory).
  CHECK(dev.type == SAMX_CPU || took <= (size_t)one->numel * 2 + 256, "attention_packed_rel on cuda took %zu bytes",
        took);
  printf("attention_packed_rel %2dx%-2d D %3d, %d heads %s: bit for bit rel_pos + attention\n", h, w, D, H,
         dev.type == SAMX_CUDA ? "cuda" : "cpu");
  free(a), free(b), free(qkv), free(th), free(tw);
  samx_ctx_free(&ctx);
}

// SAM's windowed attention with the windows in the addressing (win > 0): qkv [B, ih, iw, 3 H D] and
// the padding row, against the windows cut by host loops (window_partition's order, padding tokens
// given the pad row) run through the whole-image path (win 0: rel_pos and attention, each checked
// above), the output put back by host loops with the padding dropped. Bit for bit: only addressing
// differs. pad_given 0: no pad row (a qkv layer without bias), the padding reads zeros.
static void window_check(SamxDevice dev, int B, int H, int ih, int iw, int win, int D, int pad_given,
                         uint64_t *state) {
  const int64_t C = 3 * (int64_t)H * D, nwy = (ih + win - 1) / win, nwx = (iw + win - 1) / win, T = (int64_t)win * win;
  const int64_t E = B * nwy * nwx, n = (int64_t)B * ih * iw * C;
  float *qkv = malloc((size_t)n * sizeof(float)), *pad = calloc((size_t)C, sizeof(float));
  float *wins = malloc(sizeof(float) * (size_t)(E * T * C)), *th = malloc(sizeof(float) * (size_t)(2 * win - 1) * D),
        *tw = malloc(sizeof(float) * (size_t)(2 * win - 1) * D);
  samx_test_fill_uniform(qkv, n, -2, 2, state);
  if (pad_given) samx_test_fill_uniform(pad, C, -1, 1, state);
  samx_test_fill_uniform(th, (int64_t)(2 * win - 1) * D, -1, 1, state);
  samx_test_fill_uniform(tw, (int64_t)(2 * win - 1) * D, -1, 1, state);
  for (int64_t e = 0; e < E; e++)
    for (int64_t t = 0; t < T; t++) {
      const int64_t b = e / (nwy * nwx), wy = e / nwx % nwy, wx = e % nwx, y = wy * win + t / win, x = wx * win + t % win;
      const float *src = y < ih && x < iw ? qkv + ((b * ih + y) * iw + x) * C : pad;
      memcpy(wins + (e * T + t) * C, src, sizeof(float) * (size_t)C);
    }
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)256 << 20, 64);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *tq = samx_new(&ctx, SAMX_BF16, SHAPE(B, ih, iw, C)), *tpad = samx_new(&ctx, SAMX_BF16, SHAPE(C));
  SamxTensor *twin = samx_new(&ctx, SAMX_BF16, SHAPE(E, win, win, C));
  SamxTensor *tth = samx_new(&ctx, SAMX_F32, SHAPE(2 * win - 1, D)), *ttw = samx_new(&ctx, SAMX_F32, SHAPE(2 * win - 1, D));
  samx_tensor_write_f32(tq, qkv), samx_tensor_write_f32(tpad, pad), samx_tensor_write_f32(twin, wins);
  samx_tensor_write_f32(tth, th), samx_tensor_write_f32(ttw, tw);
  SamxTensor *rh, *rw, *rh0, *rw0;
  samx_rel_pos_packed_bf16(&ctx, tq, H, win, pad_given ? tpad : NULL, tth, ttw, &rh, &rw);
  samx_rel_pos_packed_bf16(&ctx, twin, H, 0, NULL, tth, ttw, &rh0, &rw0);
  float *g[2] = {read_host(rh), read_host(rw)}, *w0[2] = {read_host(rh0), read_host(rw0)};
  const int64_t rel_differ = count_differ(g[0], w0[0], rh->numel) + count_differ(g[1], w0[1], rw->numel);
  CHECK(rh->numel == rh0->numel && rel_differ == 0, "window %d over %dx%d: rel_pos differs from the cut windows' in %lld",
        win, ih, iw, (long long)rel_differ);
  const float scale = 1.0f / sqrtf((float)D);
  SamxTensor *o = samx_attention_packed_bf16(&ctx, tq, H, win, pad_given ? tpad : NULL, rh, rw, scale);
  SamxTensor *o0 = samx_attention_packed_bf16(&ctx, twin, H, 0, NULL, rh0, rw0, scale);
  CHECK(o->ndim == 4 && o->shape[0] == B && o->shape[1] == ih && o->shape[2] == iw && o->shape[3] == H * D,
        "window %d over %dx%d: output shape", win, ih, iw);
  float *got = read_host(o), *cut = read_host(o0);  // [B, ih, iw, H D] and [E, win, win, H D]
  int64_t differ = 0;
  for (int64_t e = 0; e < E; e++)
    for (int64_t t = 0; t < T; t++) {
      const int64_t b = e / (nwy * nwx), wy = e / nwx % nwy, wx = e % nwx, y = wy * win + t / win, x = wx * win + t % win;
      if (y < ih && x < iw)
        differ += count_differ(got + ((b * ih + y) * iw + x) * H * D, cut + (e * T + t) * H * D, (int64_t)H * D);
    }
  CHECK(differ == 0, "window %d over %dx%d%s: attention differs from the cut windows' in %lld outputs", win, ih, iw,
        pad_given ? "" : " (no pad row)", (long long)differ);
  // The fused op (terms computed in the attention, padding queries' from the pad row) against the two.
  float *fused = read_host(samx_attention_packed_rel_bf16(&ctx, tq, H, win, pad_given ? tpad : NULL, tth, ttw, scale));
  const int64_t fused_differ = count_differ(fused, got, o->numel);
  CHECK(fused_differ == 0, "window %d over %dx%d%s: attention_packed_rel differs from rel_pos + attention in %lld", win,
        ih, iw, pad_given ? "" : " (no pad row)", (long long)fused_differ);
  free(fused);
  printf("windows %d over %dx%d, D %d, %d heads%s %s: rel_pos, attention and the fused op bit for bit\n", win, ih,
         iw, D, H,
         pad_given ? "" : " (zero padding)", dev.type == SAMX_CUDA ? "cuda" : "cpu");
  free(g[0]), free(g[1]), free(w0[0]), free(w0[1]), free(got), free(cut);
  free(qkv), free(pad), free(wins), free(th), free(tw);
  samx_ctx_free(&ctx);
}

// Bad arguments: a BF16 q with head dim 48 (no whole 16-wide tiles), BF16 q with F32 k, or packed
// qkv rows that 3 x heads does not divide.
static void call_bad(SamxDevice dev, int which) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)1 << 20, 16);
  if (which == 2) {
    samx_ctx_set_recording(&ctx, 0);
    samx_attention_packed_bf16(&ctx, samx_new(&ctx, SAMX_BF16, SHAPE(1, 2, 2, 3 * 2 * 16 + 2)), 2, 0, NULL, NULL, NULL,
                               0.25f);
    return;
  }
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
  CHECK(dies_with(dev, 2, "qkv must be BF16 [B, h, w, 3 x 2 heads x D], got BF16 [1, 2, 2, 98] (window 0)"),
        "packed qkv width refused");
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
    if (c->Tq == c->Tk) packed_check(c, dev, &state);
  }
  // A head dim of 128 over partial tiles (70 tokens, 7 x 10 bias), three heads.
  const Case tail = {"packed: 70 tokens, bias 7x10, D 128, 3 heads", 1, 3, 70, 70, 128, 7, 10, 0.0884f};
  uint64_t state = 7;
  packed_check(&tail, dev, &state);
  rel_pos_check(dev, 2, 2, 14, 14, 64, &state);  // a window block's grid
  rel_pos_check(dev, 1, 3, 5, 9, 128, &state);   // not square
  rel_pos_check(dev, 1, 1, 64, 64, 64, &state);  // a global block's grid, one head
  fused_rel_check(dev, 1, 2, 32, 32, 64, &state);  // a global block's call, smaller
  fused_rel_check(dev, 2, 3, 5, 9, 128, &state);   // not square, partial tiles
  window_check(dev, 2, 2, 20, 18, 14, 64, 1, &state);  // padding on both sides (SAM's 64 over 14: 6 rows)
  window_check(dev, 1, 3, 7, 10, 4, 32, 0, &state);    // small windows, no pad row: zeros
  window_check(dev, 1, 1, 28, 14, 14, 64, 1, &state);  // no padding at all

  return samx_test_summary();
}
