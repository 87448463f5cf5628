#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../attention.h"
#include "simd.h"
#include "small_gemm.h"

// Query rows handled together: their logits ([QB, Tk]) live in the thread's scratch. In the
// backward, q k^T and p v run as single-threaded OpenBLAS GEMMs inside OpenMP tasks over heads:
// OpenBLAS is told to use one thread for the duration, so the two levels never oversubscribe.
#define QB 16
// Forward rows per task (short key sequences) or per thread (long ones).
#define FWD_ROWS 256
// Key sequences at least this long (SAM's global blocks: 4096 keys) take the multi-threaded GEMM
// path; shorter ones (windows: 196 keys) the cache-resident small-GEMM path.
#define LONG_KEYS 1024

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// p + off, keeping NULL (an optional tensor) NULL.
static const float *at(const float *p, int64_t off) { return p ? p + off : NULL; }
static float *at_mut(float *p, int64_t off) { return p ? p + off : NULL; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// Per thread, the short-sequence forward keeps logits [FWD_ROWS, Np], K^T [D, Np], V [Tk, Dp] and
// the output rows [FWD_ROWS, Dp], with Np and Dp rounded up to the small GEMM's 16 columns.
static size_t short_fwd_floats(SamxAttnDims d) {
  const size_t np = (size_t)sg_round_up(d.Tk), dp = (size_t)sg_round_up(d.D);
  return FWD_ROWS * (np + dp) + (size_t)d.D * np + (size_t)d.Tk * dp;
}

size_t samx_cpu_attention_scratch_floats(SamxAttnDims d) {
  // Backward needs two [QB, Tk] blocks per thread (probabilities and dlogits); the long forward one
  // [FWD_ROWS, Tk] block and the rows' 1 / sum.
  size_t per_thread = max_size(2 * QB * (size_t)d.Tk, FWD_ROWS * ((size_t)d.Tk + 1));
  if (d.Tk < LONG_KEYS) per_thread = max_size(per_thread, short_fwd_floats(d));
  return (size_t)omp_get_max_threads() * per_thread;
}

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C.
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

// Logits of query rows i0..i0+n-1 of one head (pointers already at the head) into s [n, Tk]:
// scale * q k^T by GEMM, then the decomposed bias row by row.
static void block_logits(SamxAttnDims d, const float *q, const float *k, const float *rel_h,
                         const float *rel_w, int64_t i0, int64_t n, float *s) {
  const int64_t D = d.D, Tk = d.Tk;
  gemm(0, 1, n, Tk, D, d.scale, q + i0 * D, D, k, D, 0.0f, s, Tk);
  if (!rel_h) return;
  for (int64_t r = 0; r < n; r++) {
    const float *rh = rel_h + (i0 + r) * d.KH, *rw = rel_w + (i0 + r) * d.KW;
    for (int64_t kh = 0; kh < d.KH; kh++) {
      // samx_attn_bias(rh, rw, KW, kh * KW + kw) = rh[kh] + rw[kw], with the division hoisted.
      float *row = s + r * Tk + kh * d.KW;
      const float h = rh[kh];
#pragma omp simd
      for (int64_t kw = 0; kw < d.KW; kw++) row[kw] += h + rw[kw];
    }
  }
}

// One row of logits s [Tk] (bias rows rh [KH], rw [KW], or NULL) becomes unnormalised
// probabilities exp(s + bias - max); returns the row's maximum, its sum in *sum.
static float softmax_row(float *s, int64_t Tk, const float *rh, const float *rw, int64_t KW, float *sum) {
  v8f vm = v8_set1(-INFINITY);
  float m = -INFINITY;
  if (rh) {  // the decomposed bias is added in the same pass that finds the row maximum
    for (int64_t kh = 0; kh < Tk / KW; kh++) {
      float *seg = s + kh * KW;
      const v8f h = v8_set1(rh[kh]);
      int64_t kw = 0;
      for (; kw + 8 <= KW; kw += 8) {
        v8f v = v8_load(seg + kw) + (h + v8_load(rw + kw));
        v8_store(seg + kw, v);
        vm = v8_max(vm, v);
      }
      for (; kw < KW; kw++) {
        seg[kw] += rh[kh] + rw[kw];
        m = seg[kw] > m ? seg[kw] : m;
      }
    }
  } else {
    int64_t j = 0;
    for (; j + 8 <= Tk; j += 8) vm = v8_max(vm, v8_load(s + j));
    for (; j < Tk; j++) m = s[j] > m ? s[j] : m;
  }
  const float hm = v8_hmax(vm);
  m = hm > m ? hm : m;
  const v8f mv = v8_set1(m);
  v8f vl = v8_set1(0.0f);
  int64_t j = 0;
  for (; j + 8 <= Tk; j += 8) {
    v8f e = v8_exp_nonpos(v8_load(s + j) - mv);
    v8_store(s + j, e);
    vl += e;
  }
  float l = v8_hsum(vl);
  if (j < Tk) {  // the tail through one padded vector, so that every element sees the same exp
    float tail[8] = {0};
    memcpy(tail, s + j, (size_t)(Tk - j) * sizeof *s);
    v8f e = v8_exp_nonpos(v8_load(tail) - mv);
    for (int64_t t = 0; t < Tk - j; t++) l += s[j + t] = e[t];
  }
  *sum = l;
  return m;
}

// Rows of the scaled q k^T block s [n, Tk] (row stride ld) (bias rows rel_h, rel_w at the block's first row; NULL:
// none) become unnormalised probabilities exp(s - max); stores each row's log-sum-exp and 1 / sum
// (the normalisation is applied to the [n, D] output instead of the [n, Tk] block: one pass over
// the block fewer).
static void block_softmax(SamxAttnDims d, const float *rel_h, const float *rel_w, int64_t n, float *s, int64_t ld,
                          float *lse_rows, float *inv_sum) {
  for (int64_t r = 0; r < n; r++) {
    float l, m = softmax_row(s + r * ld, d.Tk, at(rel_h, r * d.KH), at(rel_w, r * d.KW), d.KW, &l);
    if (lse_rows) lse_rows[r] = samx_attn_lse(m, l);
    inv_sum[r] = 1.0f / l;
  }
}

// out [n, D] *= inv_sum per row.
static void scale_rows(float *out, int64_t n, int64_t D, const float *inv_sum) {
  for (int64_t r = 0; r < n; r++)
#pragma omp simd
    for (int64_t c = 0; c < D; c++) out[r * D + c] *= inv_sum[r];
}

// Long key sequences: one block of threads x FWD_ROWS query rows at a
// time, with the two GEMMs multi-threaded by OpenBLAS and the softmax rows spread over OpenMP. A
// single-threaded GEMM per task (below) spends too long re-packing K and V when Tk is large:
// measured 1.44 s -> 0.78 s for 12 heads x 4096 tokens on 2 cores.
static void long_fwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                     const float *rel_w, float *out, float *lse, float *scratch) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, rows = (int64_t)omp_get_max_threads() * FWD_ROWS;
  float *inv_sum = scratch + rows * Tk;
  for (int64_t bh = 0; bh < d.B * d.H; bh++)
    for (int64_t i0 = 0; i0 < Tq; i0 += rows) {
      const int64_t n = min64(rows, Tq - i0), first = bh * Tq + i0;
      gemm(0, 1, n, Tk, D, d.scale, q + first * D, D, k + bh * Tk * D, D, 0.0f, scratch, Tk);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < n; r++)
        block_softmax(d, at(rel_h, (first + r) * d.KH), at(rel_w, (first + r) * d.KW), 1, scratch + r * Tk, Tk,
                      at_mut(lse, first + r), inv_sum + r);
      gemm(0, 0, n, D, Tk, 1.0f, scratch, Tk, v + bh * Tk * D, D, 0.0f, out + first * D, D);
      scale_rows(out + first * D, n, D, inv_sum);
    }
}

void samx_cpu_attention_fwd(SamxAttnDims d, const float *q, const float *k, const float *v, const float *rel_h,
                            const float *rel_w, float *out, float *lse, float *scratch) {
  const int64_t D = d.D, Tq = d.Tq, Tk = d.Tk, rows = FWD_ROWS;
  const size_t per_thread = samx_cpu_attention_scratch_floats(d) / (size_t)omp_get_max_threads();
  if (Tk >= LONG_KEYS) {
    long_fwd(d, q, k, v, rel_h, rel_w, out, lse, scratch);
    return;
  }
  const int64_t n_blocks = (Tq + rows - 1) / rows, n_tasks = d.B * d.H * n_blocks;
  const int64_t np = sg_round_up(Tk), dp = sg_round_up(D);
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < n_tasks; t++) {
    const int64_t bh = t / n_blocks, i0 = (t % n_blocks) * rows, n = min64(rows, Tq - i0), first = bh * Tq + i0;
    float *s = scratch + (size_t)omp_get_thread_num() * per_thread, *kt = s + rows * np, *vp = kt + D * np,
          *o = vp + Tk * dp, inv_sum[FWD_ROWS];
    sg_pack_transposed(kt, np, k + bh * Tk * D, Tk, D);
    sg_pack_rows(vp, dp, v + bh * Tk * D, Tk, D);
    small_gemm_nn(n, np, D, d.scale, q + first * D, D, kt, np, s, np);
    block_softmax(d, at(rel_h, first * d.KH), at(rel_w, first * d.KW), n, s, np, at_mut(lse, first), inv_sum);
    small_gemm_nn(n, dp, Tk, 1.0f, s, np, vp, dp, o, dp);
    for (int64_t r = 0; r < n; r++)
#pragma omp simd
      for (int64_t c = 0; c < D; c++) out[(first + r) * D + c] = o[r * dp + c] * inv_sum[r];
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
    float *p = scratch + (size_t)omp_get_thread_num() * (samx_cpu_attention_scratch_floats(d) / (size_t)omp_get_max_threads());
    const int64_t qo = bh * Tq * D, ko = bh * Tk * D;
    backward_head(d, q + qo, k + ko, v + ko, at(rel_h, bh * Tq * KH), at(rel_w, bh * Tq * KW), out + qo,
                  lse + bh * Tq, dout + qo, at_mut(dq, qo), at_mut(dk, ko), at_mut(dv, ko),
                  at_mut(drel_h, bh * Tq * KH), at_mut(drel_w, bh * Tq * KW), p, p + QB * Tk);
  }
  openblas_set_num_threads(blas_threads);
}
