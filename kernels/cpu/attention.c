#include <math.h>
#include <omp.h>
#include <string.h>

#include "../attention.h"

// Query rows handled together: their logits ([QB, Tk]) live in the thread's scratch, and each key
// and value row is read once per block of rows instead of once per row.
#define QB 16

// `omp simd reduction` lets the compiler vectorise the sum (reassociating it) without -ffast-math.
static float dot(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static void axpy(float *y, float a, const float *x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

// p + off, keeping NULL (an optional tensor) NULL.
static const float *at(const float *p, int64_t off) { return p ? p + off : NULL; }
static float *at_mut(float *p, int64_t off) { return p ? p + off : NULL; }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

size_t samx_cpu_attention_scratch_floats(SamxAttnDims d) {
  // Backward needs two [QB, Tk] blocks per thread (probabilities and dlogits); forward uses one.
  return (size_t)omp_get_max_threads() * 2 * QB * (size_t)d.Tk;
}

// Logits of query rows i0..i0+n-1 of one head (pointers already at the head) into s [n, Tk].
static void block_logits(SamxAttnDims d, const float *q, const float *k, const float *rel_h,
                         const float *rel_w, int64_t i0, int64_t n, float *s) {
  const int64_t D = d.D, Tk = d.Tk;
  for (int64_t j = 0; j < Tk; j++)
    for (int64_t r = 0; r < n; r++) {
      int64_t i = i0 + r;
      float bias = samx_attn_bias(at(rel_h, i * d.KH), at(rel_w, i * d.KW), (int)d.KW, (int)j);
      s[r * Tk + j] = samx_attn_logit(dot(q + i * D, k + j * D, D), d.scale, bias);
    }
}

// Turns the logits of row block s [n, Tk] into probabilities; stores each row's log-sum-exp.
static void block_softmax(SamxAttnDims d, int64_t n, float *s, float *lse_rows) {
  const int64_t Tk = d.Tk;
  for (int64_t r = 0; r < n; r++) {
    float *row = s + r * Tk;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j = 0; j < Tk; j++) m = fmaxf(m, row[j]);
    for (int64_t j = 0; j < Tk; j++) l += expf(row[j] - m);
    float L = samx_attn_lse(m, l);
    if (lse_rows) lse_rows[r] = L;
    for (int64_t j = 0; j < Tk; j++) row[j] = samx_attn_prob(row[j], L);
  }
}

void samx_cpu_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                            const float *rel_w, float *out, float *lse, float *scratch) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk;
  const int64_t n_blocks = (Tq + QB - 1) / QB, n_tasks = d.B * d.H * n_blocks;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < n_tasks; t++) {
    const int64_t bh = t / n_blocks, i0 = (t % n_blocks) * QB, n = min64(QB, Tq - i0);
    float *p = scratch + (size_t)omp_get_thread_num() * 2 * QB * (size_t)Tk;
    const float *vh = v + bh * Tk * D;
    float *o = out + (bh * Tq + i0) * D;
    block_logits(d, q + bh * Tq * D, k + bh * Tk * D, at(rel_h, bh * Tq * d.KH), at(rel_w, bh * Tq * d.KW), i0, n, p);
    block_softmax(d, n, p, at_mut(lse, bh * Tq + i0));
    memset(o, 0, (size_t)(n * D) * sizeof(float));
    for (int64_t j = 0; j < Tk; j++)
      for (int64_t r = 0; r < n; r++) axpy(o + r * D, p[r * Tk + j], vh + j * D, D);
  }
}

// Backward of one head (all pointers at the head; grads may be NULL). p, ds: [QB, Tk] scratch.
static void backward_head(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                          const float *rel_w, const float *out, const float *lse, const float *dout, float *dq,
                          float *dk, float *dv, float *drel_h, float *drel_w, float *p, float *ds) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, KH = d.KH, KW = d.KW;
  for (int64_t i0 = 0; i0 < Tq; i0 += QB) {
    const int64_t n = min64(QB, Tq - i0);
    block_logits(d, q, k, rel_h, rel_w, i0, n, p);
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < Tk; j++) p[r * Tk + j] = samx_attn_prob(p[r * Tk + j], lse[i0 + r]);
    for (int64_t j = 0; j < Tk; j++)
      for (int64_t r = 0; r < n; r++) ds[r * Tk + j] = dot(dout + (i0 + r) * D, v + j * D, D);
    for (int64_t r = 0; r < n; r++) {
      const int64_t i = i0 + r;
      const float delta = dot(dout + i * D, out + i * D, D);
      for (int64_t j = 0; j < Tk; j++) ds[r * Tk + j] = samx_attn_dlogit(p[r * Tk + j], ds[r * Tk + j], delta);
    }
    if (dv)
      for (int64_t j = 0; j < Tk; j++)
        for (int64_t r = 0; r < n; r++) axpy(dv + j * D, p[r * Tk + j], dout + (i0 + r) * D, D);
    if (dk)
      for (int64_t j = 0; j < Tk; j++)
        for (int64_t r = 0; r < n; r++) axpy(dk + j * D, d.scale * ds[r * Tk + j], q + (i0 + r) * D, D);
    if (dq)
      for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < Tk; j++) axpy(dq + (i0 + r) * D, d.scale * ds[r * Tk + j], k + j * D, D);
    for (int64_t r = 0; r < n && (drel_h || drel_w); r++) {
      const int64_t i = i0 + r;
      for (int64_t j = 0; j < Tk; j++) {
        if (drel_h) drel_h[i * KH + j / KW] += ds[r * Tk + j];
        if (drel_w) drel_w[i * KW + j % KW] += ds[r * Tk + j];
      }
    }
  }
}

void samx_cpu_attention_bwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                            const float *rel_w, const float *out, const float *lse, const float *dout, float *dq,
                            float *dk, float *dv, float *drel_h, float *drel_w, float *scratch) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, KH = d.KH, KW = d.KW;
  // dk and dv of a head sum over all its query rows: one thread owns a whole head, so the sums
  // need neither locks nor per-thread copies and do not depend on the thread count.
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < d.B * d.H; bh++) {
    float *p = scratch + (size_t)omp_get_thread_num() * 2 * QB * (size_t)Tk;
    const int64_t qo = bh * Tq * D, ko = bh * Tk * D;
    backward_head(d, q + qo, k + ko, v + ko, at(rel_h, bh * Tq * KH), at(rel_w, bh * Tq * KW), out + qo,
                  lse + bh * Tq, dout + qo, at_mut(dq, qo), at_mut(dk, ko), at_mut(dv, ko),
                  at_mut(drel_h, bh * Tq * KH), at_mut(drel_w, bh * Tq * KW), p, p + QB * Tk);
  }
}
