#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../attention.h"
#include "../attention_bf16.h"
#include "simd.h"
#include "small_gemm.h"

// Backward: query rows handled together; their logits ([QB, Tk]) live in the thread's scratch.
// q k^T and p v run as single-threaded OpenBLAS GEMMs inside OpenMP tasks over heads: OpenBLAS is
// told to use one thread for the duration, so the two levels never oversubscribe.
#define QB 16
// Forward: query rows per block and keys per block. A block's logits [96, 256], its K^T and V
// blocks and the output accumulators (~250 KB) stay in a core's L2 while the small GEMM runs.
#define Q_BLOCK 96
#define KEY_BLOCK 256

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// p + off, keeping NULL (an optional tensor) NULL.
static const float *at(const float *p, int64_t off) { return p ? p + off : NULL; }
static float *at_mut(float *p, int64_t off) { return p ? p + off : NULL; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static size_t fwd_floats(SamxAttnDims d);

size_t samx_cpu_attention_scratch_floats(SamxAttnDims d) {
  // Backward needs two [QB, Tk] blocks per thread (probabilities and dlogits).
  return (size_t)omp_get_max_threads() * max_size(2 * QB * (size_t)d.Tk, fwd_floats(d));
}

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C.
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

// Adds the decomposed bias of keys j0 .. j0+n-1 (the query row's rh [KH] and rw [KW]; NULL: none) to
// their logits s [n] and returns the maximum; bias terms go segment by segment of KW keys, so the
// key index is split into (kh, kw) once per segment.
static float bias_max(float *s, int64_t n, int64_t j0, const float *rh, const float *rw, int64_t KW) {
  v8f vm = v8_set1(-INFINITY);
  float m = -INFINITY;
  if (!rh) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) vm = v8_max(vm, v8_load(s + j));
    for (; j < n; j++) m = s[j] > m ? s[j] : m;
  } else {
    for (int64_t j = 0; j < n;) {
      const int64_t key = j0 + j, kh = key / KW, kw0 = key % KW, len = min64(n - j, KW - kw0);
      float *seg = s + j;
      const float *rwk = rw + kw0;
      const v8f h = v8_set1(rh[kh]);
      int64_t t = 0;
      for (; t + 8 <= len; t += 8) {
        v8f v = v8_load(seg + t) + (h + v8_load(rwk + t));
        v8_store(seg + t, v);
        vm = v8_max(vm, v);
      }
      for (; t < len; t++) {
        seg[t] += rh[kh] + rwk[t];
        m = seg[t] > m ? seg[t] : m;
      }
      j += len;
    }
  }
  const float hm = v8_hmax(vm);
  return hm > m ? hm : m;
}

// Logits of query rows i0..i0+n-1 of one head (pointers already at the head) into s [n, Tk]:
// scale * q k^T by GEMM, then the decomposed bias row by row (the forward's bias_max).
static void block_logits(SamxAttnDims d, const float *q, const float *k, const float *rel_h,
                         const float *rel_w, int64_t i0, int64_t n, float *s) {
  const int64_t D = d.D, Tk = d.Tk;
  gemm(0, 1, n, Tk, D, d.scale, q + i0 * D, D, k, D, 0.0f, s, Tk);
  if (!rel_h) return;
  for (int64_t r = 0; r < n; r++)
    bias_max(s + r * Tk, Tk, 0, rel_h + (i0 + r) * d.KH, rel_w + (i0 + r) * d.KW, d.KW);
}

// s [n] = exp(s - m) (m >= every s); returns their sum.
static float exp_sum(float *s, int64_t n, float m) {
  const v8f mv = v8_set1(m);
  v8f vl = v8_set1(0.0f);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    v8f e = v8_exp_nonpos(v8_load(s + j) - mv);
    v8_store(s + j, e);
    vl += e;
  }
  float l = v8_hsum(vl);
  if (j < n) {  // the tail through one padded vector, so that every element sees the same exp
    float tail[8] = {0};
    memcpy(tail, s + j, (size_t)(n - j) * sizeof *s);
    v8f e = v8_exp_nonpos(v8_load(tail) - mv);
    for (int64_t t = 0; t < n - j; t++) l += s[j + t] = e[t];
  }
  return l;
}

static float exp1(float x) { return v8_exp_nonpos(v8_set1(x))[0]; }

// Per-thread forward scratch: the head's K^T [D, Np] and V [Tk, Dp] (columns padded with zeros to the
// small GEMM's 16), one logit block [Q_BLOCK, KEY_BLOCK] and the output accumulators [Q_BLOCK, Dp].
static size_t fwd_floats(SamxAttnDims d) {
  const size_t np = (size_t)sg_round_up(d.Tk), dp = (size_t)sg_round_up(d.D);
  return (size_t)d.D * np + (size_t)d.Tk * dp + Q_BLOCK * (KEY_BLOCK + dp);
}

// Query rows i0 .. i0+n-1 of head bh, flash-style: key blocks of KEY_BLOCK, each one's logits by
// the small GEMM (cache-resident with the K^T and V blocks), the running row maximum m and sum l
// rescaling the output accumulators when the maximum grows, then o += p v by the small GEMM.
static void fwd_rows(SamxAttnDims d, const float *q, const float *rel_h, const float *rel_w, int64_t bh, int64_t i0,
                     int64_t n, const float *kt, const float *vp, float *s, float *o, float *out, float *lse) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, np = sg_round_up(Tk), dp = sg_round_up(D), first = bh * Tq + i0;
  float m[Q_BLOCK], l[Q_BLOCK];
  for (int64_t r = 0; r < n; r++) m[r] = -INFINITY, l[r] = 0.0f;
  memset(o, 0, (size_t)(n * dp) * sizeof *o);
  for (int64_t j0 = 0; j0 < Tk; j0 += KEY_BLOCK) {
    const int64_t w = min64(KEY_BLOCK, Tk - j0);
    small_gemm_nn(n, sg_round_up(w), D, d.scale, q + first * D, D, kt + j0, np, s, KEY_BLOCK, 0);
    for (int64_t r = 0; r < n; r++) {
      float *row = s + r * KEY_BLOCK;
      const float bm = bias_max(row, w, j0, at(rel_h, (first + r) * d.KH), at(rel_w, (first + r) * d.KW), d.KW);
      const float mn = bm > m[r] ? bm : m[r];
      if (j0 > 0 && mn > m[r]) {  // the row's earlier terms were scaled by exp(-m[r]): rescale to exp(-mn)
        const float f = exp1(m[r] - mn);
        l[r] *= f;
#pragma omp simd
        for (int64_t c = 0; c < dp; c++) o[r * dp + c] *= f;
      }
      m[r] = mn;
      l[r] += exp_sum(row, w, mn);
    }
    small_gemm_nn(n, dp, w, 1.0f, s, KEY_BLOCK, vp + j0 * dp, dp, o, dp, 1);
  }
  for (int64_t r = 0; r < n; r++) {
    const float inv = 1.0f / l[r];
#pragma omp simd
    for (int64_t c = 0; c < D; c++) out[(first + r) * D + c] = o[r * dp + c] * inv;
    if (lse) lse[first + r] = samx_attn_lse(m[r], l[r]);
  }
}

void samx_cpu_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                            const float *rel_w, float *out, float *lse, float *scratch) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, BH = d.B * d.H, np = sg_round_up(Tk), dp = sg_round_up(D);
  if (BH == 0 || Tq == 0) return;
  const size_t per_thread = samx_cpu_attention_scratch_floats(d) / (size_t)omp_get_max_threads();
  // Query rows of a head are cut into chunks only when there are too few heads for the threads: each
  // chunk re-packs its head's K and V (a thread's consecutive chunks of one head pack once).
  const int64_t max_chunks = (Tq + Q_BLOCK - 1) / Q_BLOCK, want = (4 * omp_get_max_threads() + BH - 1) / BH;
  const int64_t n_chunks = want < 1 ? 1 : (want > max_chunks ? max_chunks : want);
  const int64_t chunk = (Tq + n_chunks - 1) / n_chunks;
#pragma omp parallel
  {
    float *kt = scratch + (size_t)omp_get_thread_num() * per_thread, *vp = kt + D * np, *s = vp + Tk * dp,
          *o = s + Q_BLOCK * KEY_BLOCK;
    int64_t packed = -1;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < BH * n_chunks; t++) {
      const int64_t bh = t / n_chunks, c0 = (t % n_chunks) * chunk, c1 = min64(Tq, c0 + chunk);
      if (bh != packed) {
        sg_pack_transposed(kt, np, k + bh * Tk * D, Tk, D);
        sg_pack_rows(vp, dp, v + bh * Tk * D, Tk, D);
        packed = bh;
      }
      for (int64_t i0 = c0; i0 < c1; i0 += Q_BLOCK)
        fwd_rows(d, q, rel_h, rel_w, bh, i0, min64(Q_BLOCK, c1 - i0), kt, vp, s, o, out, lse);
    }
  }
}

static float dot(const float *a, const float *b, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
  return acc;
}

// Backward of one head (all pointers at the head; grads may be NULL). p, ds: [QB, Tk] scratch.
// Probabilities are recomputed from the saved log-sum-exp; every product is a GEMM that adds
// into the gradient (beta = 1).
static void backward_head(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                          const float *rel_w, const float *out, const float *lse, const float *dout, float *dq,
                          float *dk, float *dv, float *drel_h, float *drel_w, float *p, float *ds) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, KH = d.KH, KW = d.KW;
  for (int64_t i0 = 0; i0 < Tq; i0 += QB) {
    const int64_t n = min64(QB, Tq - i0);
    const float *dob = dout + i0 * D;
    block_logits(d, q, k, rel_h, rel_w, i0, n, p);
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < Tk; j++) p[r * Tk + j] = samx_attn_prob(p[r * Tk + j], lse[i0 + r]);
    gemm(0, 1, n, Tk, D, 1.0f, dob, D, v, D, 0.0f, ds, Tk);  // dP = dO V^T
    for (int64_t r = 0; r < n; r++) {
      const float delta = dot(dob + r * D, out + (i0 + r) * D, D);
      for (int64_t j = 0; j < Tk; j++) ds[r * Tk + j] = samx_attn_dlogit(p[r * Tk + j], ds[r * Tk + j], delta);
    }
    if (dv) gemm(1, 0, Tk, D, n, 1.0f, p, Tk, dob, D, 1.0f, dv, D);                  // dV += P^T dO
    if (dk) gemm(1, 0, Tk, D, n, d.scale, ds, Tk, q + i0 * D, D, 1.0f, dk, D);       // dK += s dS^T Q
    if (dq) gemm(0, 0, n, D, Tk, d.scale, ds, Tk, k, D, 1.0f, dq + i0 * D, D);       // dQ += s dS K
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
  int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < d.B * d.H; bh++) {
    const size_t per_thread = samx_cpu_attention_scratch_floats(d) / (size_t)omp_get_max_threads();
    float *p = scratch + (size_t)omp_get_thread_num() * per_thread;
    const int64_t qo = bh * Tq * D, ko = bh * Tk * D;
    backward_head(d, q + qo, k + ko, v + ko, at(rel_h, bh * Tq * KH), at(rel_w, bh * Tq * KW), out + qo,
                  lse + bh * Tq, dout + qo, at_mut(dq, qo), at_mut(dk, ko), at_mut(dv, ko),
                  at_mut(drel_h, bh * Tq * KH), at_mut(drel_w, bh * Tq * KW), p, p + QB * Tk);
  }
  openblas_set_num_threads(blas_threads);
}

void samx_cpu_rel_pos(const SamxAttnLayout *lay, const uint16_t *q, const float *table_h, const float *table_w,
                      int64_t B, int64_t H, int h, int w, int D, float *rel_h, float *rel_w) {
  const int64_t T = (int64_t)h * w, n_h = B * H * T * h, n = n_h + B * H * T * w;
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < n; e++) {
    const float v = samx_rel_pos_term(lay, q, table_h, table_w, B, H, h, w, D, e);
    if (e < n_h)
      rel_h[e] = v;
    else
      rel_w[e - n_h] = v;
  }
}
