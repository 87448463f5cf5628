// Broadcasting add/sub/mul, scale, add_scalar, softmax, sum/mean, cast: naive double references,
// finite differences, PyTorch, CUDA vs CPU; plain checks of cast rounding on special values (hand
// bit patterns and torch's), of the cast gradient, and of add_ tripping the tape's version check.
#include <string.h>

#include "../harness.h"
#include "../test_util.h"

// A shape as a brace initializer (SHAPE is a compound literal, not a constant inside another one).
#define DIMS(...) {SAMX_NARGS(__VA_ARGS__), {__VA_ARGS__}}

// ---- shapes, padded on the left to 5 dims as broadcasting aligns trailing dims ----

static void pad5(SamxShape s, int64_t *d) {
  for (int k = 0; k < 5; k++) d[k] = k < 5 - s.ndim ? 1 : s.d[k - (5 - s.ndim)];
}

// Advances a 5-dim odometer c over dims d; returns 0 after the last position.
static int next_index(int64_t *c, const int64_t *d) {
  for (int k = 4; k >= 0; k--) {
    if (++c[k] < d[k]) return 1;
    c[k] = 0;
  }
  return 0;
}

// Row-major offset of coordinate c in dims d, where a size-1 dim reads coordinate 0 (broadcast).
static int64_t broadcast_offset(const int64_t *c, const int64_t *d) {
  int64_t off = 0;
  for (int k = 0; k < 5; k++) off = off * d[k] + (d[k] == 1 ? 0 : c[k]);
  return off;
}

// ---- add / sub / mul ----

typedef struct {
  int op;  // 0 add, 1 sub, 2 mul
  SamxShape a, b;
} BinArgs;

static SamxTensor *run_binary(SamxCtx *c, SamxTensor **in, const void *args) {
  switch (((const BinArgs *)args)->op) {
    case 0: return samx_add(c, in[0], in[1]);
    case 1: return samx_sub(c, in[0], in[1]);
    default: return samx_mul(c, in[0], in[1]);
  }
}

static void ref_binary(const double *const *in, double *out, const void *args) {
  const BinArgs *a = (const BinArgs *)args;
  int64_t da[5], db[5], d[5], c[5] = {0};
  pad5(a->a, da);
  pad5(a->b, db);
  for (int k = 0; k < 5; k++) d[k] = da[k] == 1 ? db[k] : da[k];
  int64_t n = 0;
  do {
    double x = in[0][broadcast_offset(c, da)], y = in[1][broadcast_offset(c, db)];
    out[n++] = a->op == 0 ? x + y : a->op == 1 ? x - y : x * y;
  } while (next_index(c, d));
}

#define BIN_CASE(name_, op_, SA, SB, torch_)                                                         \
  {.name = name_, .n_in = 2, .in = {{SA, 1}, {SB, 1}}, .run = run_binary, .ref = ref_binary,        \
   .args = &(BinArgs){op_, SA, SB}, .torch = torch_}

// ---- scale, add_scalar ----

typedef struct {
  float s;
  int n;
} ScalarArgs;

static SamxTensor *run_scale(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_scale(c, in[0], ((const ScalarArgs *)a)->s);
}
static SamxTensor *run_add_scalar(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_add_scalar(c, in[0], ((const ScalarArgs *)a)->s);
}
static void ref_scale(const double *const *in, double *out, const void *args) {
  const ScalarArgs *a = (const ScalarArgs *)args;
  for (int i = 0; i < a->n; i++) out[i] = in[0][i] * a->s;
}
static void ref_add_scalar(const double *const *in, double *out, const void *args) {
  const ScalarArgs *a = (const ScalarArgs *)args;
  for (int i = 0; i < a->n; i++) out[i] = in[0][i] + a->s;
}

// ---- softmax over the last dim ----

typedef struct {
  int64_t rows, d;
} RowArgs;

static SamxTensor *run_softmax(SamxCtx *c, SamxTensor **in, const void *a) { return samx_softmax(c, in[0]); }
static void ref_softmax(const double *const *in, double *out, const void *args) {
  const RowArgs *a = (const RowArgs *)args;
  for (int64_t r = 0; r < a->rows; r++) {
    const double *x = in[0] + r * a->d;
    double sum = 0;
    for (int64_t k = 0; k < a->d; k++) sum += exp(x[k]);  // double holds exp(100): no max needed
    for (int64_t k = 0; k < a->d; k++) out[r * a->d + k] = exp(x[k]) / sum;
  }
}

// ---- sums and means ----

typedef struct {
  SamxShape x;
  int dim;  // -99: over all elements
  int keepdim, mean;
} SumArgs;

static SamxTensor *run_sum(SamxCtx *c, SamxTensor **in, const void *args) {
  const SumArgs *a = (const SumArgs *)args;
  if (a->dim == -99) return a->mean ? samx_mean(c, in[0]) : samx_sum(c, in[0]);
  return a->mean ? samx_mean_dim(c, in[0], a->dim, a->keepdim) : samx_sum_dim(c, in[0], a->dim, a->keepdim);
}

// Scatters every input element into the output element it is summed into.
static void ref_sum(const double *const *in, double *out, const void *args) {
  const SumArgs *a = (const SumArgs *)args;
  int64_t d[5], c[5] = {0};
  pad5(a->x, d);
  int k = a->dim == -99 ? -1 : 5 - a->x.ndim + (a->dim < 0 ? a->dim + a->x.ndim : a->dim);
  int64_t n_out = 1, count = 1;
  for (int i = 0; i < 5; i++) {
    if (k < 0 || i == k) count *= d[i];
    if (k >= 0 && i != k) n_out *= d[i];
  }
  for (int64_t i = 0; i < n_out; i++) out[i] = 0;
  int64_t src = 0;
  do {
    int64_t o = 0;
    for (int i = 0; i < 5 && k >= 0; i++)
      if (i != k) o = o * d[i] + c[i];
    out[o] += in[0][src++];
  } while (next_index(c, d));
  if (a->mean)
    for (int64_t i = 0; i < n_out; i++) out[i] /= (double)count;
}

#define SUM_CASE(name_, SX, dim_, keep_, mean_, torch_)                                                    \
  {.name = name_, .n_in = 1, .in = {{SX, 1}}, .run = run_sum, .ref = ref_sum,                            \
   .args = &(SumArgs){SX, dim_, keep_, mean_}, .torch = torch_}

// ---- casts: forward rounding only (a rounding has no useful finite differences) ----

typedef struct {
  SamxDType dt;
  int n;
} CastArgs;

static SamxTensor *run_cast(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_cast(c, in[0], ((const CastArgs *)a)->dt);
}

// Nearest representable value with `bits` significant bits and smallest exponent min_exp (values
// below 2^min_exp are multiples of 2^(min_exp - bits + 1)); nearbyint rounds ties to even.
static double round_to_format(double v, int bits, int min_exp) {
  if (v == 0) return v;
  int e;
  frexp(v, &e);  // v = m * 2^e with 0.5 <= |m| < 1
  if (e - 1 < min_exp) e = min_exp + 1;
  double unit = ldexp(1.0, e - bits);
  return nearbyint(v / unit) * unit;
}

static void ref_cast(const double *const *in, double *out, const void *args) {
  const CastArgs *a = (const CastArgs *)args;
  for (int i = 0; i < a->n; i++)
    out[i] = a->dt == SAMX_BF16 ? round_to_format(in[0][i], 8, -126) : round_to_format(in[0][i], 11, -14);
}

static const OpCase cases[] = {
    BIN_CASE("add_same", 0, DIMS(3, 4, 5), DIMS(3, 4, 5), 1),
    BIN_CASE("add_bias", 0, DIMS(2, 3, 4), DIMS(4), 1),
    BIN_CASE("sub_both", 1, DIMS(2, 1, 4), DIMS(3, 1), 1),
    BIN_CASE("sub_rank", 1, DIMS(5), DIMS(2, 3, 5), 1),
    BIN_CASE("mul_scalar", 2, DIMS(1), DIMS(2, 3), 1),
    BIN_CASE("mul_4d", 2, DIMS(2, 3, 1, 5), DIMS(3, 4, 1), 1),
    BIN_CASE("mul_outer", 2, DIMS(4, 1), DIMS(1, 5), 1),
    BIN_CASE("add_5d", 0, DIMS(2, 1, 3, 1, 2), DIMS(1, 4, 1, 5, 1), 1),
    // b frozen: it must receive no gradient, and a's product-rule gradient still reads b.
    {.name = "mul_frozen", .n_in = 2, .in = {{DIMS(3, 4), 1}, {DIMS(3, 1), 0}}, .run = run_binary,
     .ref = ref_binary, .args = &(BinArgs){2, DIMS(3, 4), DIMS(3, 1)}},
    {.name = "scale", .n_in = 1, .in = {{DIMS(3, 5), 1}}, .run = run_scale, .ref = ref_scale,
     .args = &(ScalarArgs){-2.5f, 15}, .torch = 1},
    {.name = "add_scalar", .n_in = 1, .in = {{DIMS(3, 5), 1}}, .run = run_add_scalar, .ref = ref_add_scalar,
     .args = &(ScalarArgs){0.75f, 15}, .torch = 1},
    {.name = "softmax", .n_in = 1, .in = {{DIMS(4, 7), 1, -5, 5}}, .run = run_softmax, .ref = ref_softmax,
     .args = &(RowArgs){4, 7}, .torch = 1},
    // exp(100) overflows f32: needs the max subtraction.
    {.name = "softmax_large", .n_in = 1, .in = {{DIMS(2, 3, 33), 1, -100, 100}}, .run = run_softmax,
     .ref = ref_softmax, .args = &(RowArgs){6, 33}, .torch = 1},
    // Rows longer than a CUDA block.
    {.name = "softmax_long_rows", .n_in = 1, .in = {{DIMS(3, 300), 1, -4, 4}}, .run = run_softmax,
     .ref = ref_softmax, .args = &(RowArgs){3, 300}},
    {.name = "softmax_d1", .n_in = 1, .in = {{DIMS(5, 1), 1}}, .run = run_softmax, .ref = ref_softmax,
     .args = &(RowArgs){5, 1}},
    SUM_CASE("sum", DIMS(3, 4, 5), -99, 0, 0, 1),
    SUM_CASE("mean", DIMS(3, 4, 5), -99, 0, 1, 1),
    SUM_CASE("sum_long", DIMS(2, 700), -99, 0, 0, 0),
    SUM_CASE("sum_dim1", DIMS(3, 4, 5), 1, 0, 0, 1),
    SUM_CASE("sum_dimlast_keep", DIMS(3, 4, 5), -1, 1, 0, 1),
    SUM_CASE("mean_dim0", DIMS(3, 4, 5), 0, 0, 1, 1),
    SUM_CASE("mean_dim1_long", DIMS(2, 100, 3), 1, 1, 1, 1),
    SUM_CASE("mean_dimlast_long", DIMS(2, 3, 100), -1, 0, 1, 0),
    {.name = "cast_bf16", .n_in = 1, .in = {{DIMS(257), 0, -3, 3}}, .run = run_cast, .ref = ref_cast,
     .args = &(CastArgs){SAMX_BF16, 257}, .fwd_tol = 1e-12, .cuda_tol = 1e-12},
    // Spans f16 subnormals (below 2^-14 = 6.1e-5) and normals.
    {.name = "cast_f16", .n_in = 1, .in = {{DIMS(257), 0, -1e-4f, 1e-4f}}, .run = run_cast, .ref = ref_cast,
     .args = &(CastArgs){SAMX_F16, 257}, .fwd_tol = 1e-12, .cuda_tol = 1e-12},
    {.name = "cast_f16_normal", .n_in = 1, .in = {{DIMS(257), 0, -60000, 60000}}, .run = run_cast,
     .ref = ref_cast, .args = &(CastArgs){SAMX_F16, 257}, .fwd_tol = 1e-12, .cuda_tol = 1e-12},
};

// ---- plain checks ----

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int is_nan16(uint16_t h, SamxDType dt) {
  return dt == SAMX_BF16 ? (h & 0x7fff) > 0x7f80 : (h & 0x7fff) > 0x7c00;
}

// The engine's cast of n f32 values on dev, as raw 16-bit patterns.
static void cast_bits(SamxDevice dev, const float *x, int n, SamxDType dt, uint16_t *out) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *t = samx_from_host(&ctx, SHAPE(n), x);
  samx_tensor_read(samx_cast(&ctx, t, dt), out);
  samx_ctx_free(&ctx);
}

// Hand-derived round-to-nearest-even results (also checked against torch when writing this table).
static void test_cast_bit_patterns(SamxDevice dev) {
  static const struct {
    uint32_t f32;
    uint16_t bf16, f16;
  } table[] = {
      {0x3f808000, 0x3f80, 0x3c04},  // 1 + 2^-8: bf16 tie, to even (down)
      {0x3f818000, 0x3f82, 0x3c0c},  // bf16 tie with an odd lower neighbour: up
      {0x3f808001, 0x3f81, 0x3c04},  // just above a bf16 tie
      {0x7f7fffff, 0x7f80, 0x7c00},  // FLT_MAX: bf16 rounds to inf, f16 overflows
      {0x00018000, 0x0002, 0x0000},  // bf16 subnormal tie, odd lower: up; f16 underflow
      {0x00008000, 0x0000, 0x0000},  // bf16 subnormal tie, even lower: down
      {0x80008000, 0x8000, 0x8000},  // negative tie to -0
      {0x3f801000, 0x3f80, 0x3c00},  // 1 + 2^-11: f16 tie, to even (down)
      {0x3f803000, 0x3f80, 0x3c02},  // f16 tie with an odd lower neighbour: up
      {0x477fe000, 0x4780, 0x7bff},  // 65504: f16 max
      {0x477fefff, 0x4780, 0x7bff},  // just below the f16 overflow threshold
      {0x477ff000, 0x4780, 0x7c00},  // 65520: f16 tie between max and inf: inf
      {0x33800000, 0x3380, 0x0001},  // 2^-24: smallest f16 subnormal
      {0x33000000, 0x3300, 0x0000},  // 2^-25: f16 tie to even zero
      {0x33000001, 0x3300, 0x0001},  // just above: up
      {0xb3c00000, 0xb3c0, 0x8002},  // -3 * 2^-25: f16 subnormal tie, odd lower: up
      {0x387fe000, 0x3880, 0x0400},  // 1023.875 * 2^-24: f16 subnormal rounds into the smallest normal
      {0x80000000, 0x8000, 0x8000},  // -0
      {0xff800000, 0xff80, 0xfc00},  // -inf
  };
  int n = (int)(sizeof table / sizeof *table);
  float x[32];
  uint16_t bf[32], hf[32];
  for (int i = 0; i < n; i++) x[i] = bits_f32(table[i].f32);
  x[n] = NAN;
  cast_bits(dev, x, n + 1, SAMX_BF16, bf);
  cast_bits(dev, x, n + 1, SAMX_F16, hf);
  for (int i = 0; i < n; i++) {
    CHECK(bf[i] == table[i].bf16, "bf16(0x%08x) = 0x%04x, want 0x%04x", table[i].f32, bf[i], table[i].bf16);
    CHECK(hf[i] == table[i].f16, "f16(0x%08x) = 0x%04x, want 0x%04x", table[i].f32, hf[i], table[i].f16);
  }
  CHECK(is_nan16(bf[n], SAMX_BF16) && is_nan16(hf[n], SAMX_F16), "NaN cast to bf16 0x%04x, f16 0x%04x", bf[n], hf[n]);
}

// Torch's .to(torch.bfloat16) / .half() of the same special values, from the reference file.
static void test_cast_vs_torch(SamxDevice dev, const char *ref_path) {
  SamxSafetensors st;
  if (samx_st_open(&st, ref_path) != 0) {
    CHECK(0, "torch reference file: %s", samx_last_error());
    return;
  }
  const char *names[2] = {"cast_special_bf16", "cast_special_f16"};
  SamxDType dts[2] = {SAMX_BF16, SAMX_F16};
  for (int c = 0; c < 2; c++) {
    char key[64];
    snprintf(key, sizeof key, "%s.in0", names[c]);
    const SamxSTEntry *ein = samx_st_find(&st, key);
    snprintf(key, sizeof key, "%s.out", names[c]);
    const SamxSTEntry *eout = samx_st_find(&st, key);
    CHECK(ein && eout && ein->numel == eout->numel, "%s: reference tensors missing", names[c]);
    if (!ein || !eout || ein->numel != eout->numel) continue;
    int n = (int)ein->numel;
    float *x = samx_st_to_f32(ein), *want = samx_st_to_f32(eout), *got = malloc((size_t)n * sizeof(float));
    SamxCtx ctx;
    samx_test_ctx(&ctx, dev);
    samx_tensor_read_f32(samx_cast(&ctx, samx_from_host(&ctx, SHAPE(n), x), dts[c]), got);
    samx_ctx_free(&ctx);
    int bad = 0;
    for (int i = 0; i < n; i++) {
      int same = isnan(want[i]) ? isnan(got[i]) : f32_bits(got[i]) == f32_bits(want[i]);
      if (!same && bad++ < 5)
        printf("  %s(0x%08x): got 0x%08x, torch 0x%08x\n", names[c], f32_bits(x[i]), f32_bits(got[i]),
               f32_bits(want[i]));
    }
    CHECK(bad == 0, "%s: %d of %d values differ from torch", names[c], bad, n);
    free(x);
    free(want);
    free(got);
  }
  samx_st_close(&st);
}

// f32 -> bf16 -> f32 passes the gradient through unchanged.
static void test_cast_gradient(SamxDevice dev) {
  float x[6] = {0.1f, -2, 3.3f, 4, -5.5f, 6}, g[6] = {1, -2, 0.5f, 0.25f, 7, -0.125f}, gx[6];
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *t = samx_from_host(&ctx, SHAPE(2, 3), x);
  t->requires_grad = 1;
  SamxTensor *y = samx_cast(&ctx, samx_cast(&ctx, t, SAMX_BF16), SAMX_F32);
  int rc = samx_backward(&ctx, y, samx_from_host(&ctx, SHAPE(2, 3), g));
  CHECK(rc == 0 && t->grad, "backward through casts: %s", rc ? samx_last_error() : "no gradient");
  if (rc == 0 && t->grad) {
    samx_tensor_read_f32(t->grad, gx);
    CHECK(memcmp(gx, g, sizeof g) == 0, "cast gradient is not the identity (%g vs %g)", gx[0], g[0]);
  }
  samx_ctx_free(&ctx);
}

// add_ adds, bumps the version, and a backward through a softmax whose saved output was then
// modified fails naming the op.
static void test_add_inplace(SamxDevice dev) {
  float a[4] = {1, 2, 3, 4}, b[4] = {0.5f, -1, 2, 0}, got[4];
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *ta = samx_from_host(&ctx, SHAPE(4), a), *tb = samx_from_host(&ctx, SHAPE(4), b);
  uint32_t v = samx_version(ta);
  samx_add_(&ctx, ta, tb);
  samx_tensor_read_f32(ta, got);
  CHECK(got[0] == 1.5f && got[1] == 1 && got[2] == 5 && got[3] == 4, "add_: got %g %g %g %g", got[0], got[1], got[2],
        got[3]);
  CHECK(samx_version(ta) != v, "add_ did not bump the version");

  ta->requires_grad = 1;
  SamxTensor *y = samx_softmax(&ctx, ta);
  CHECK(samx_backward(&ctx, y, NULL) == 0, "softmax backward before any in-place write: %s", samx_last_error());
  samx_ctx_reset(&ctx);

  ta = samx_from_host(&ctx, SHAPE(4), a);
  tb = samx_from_host(&ctx, SHAPE(4), b);
  ta->requires_grad = 1;
  y = samx_softmax(&ctx, ta);
  samx_add_(&ctx, y, tb);
  samx_clear_error();
  int rc = samx_backward(&ctx, y, NULL);
  CHECK(rc == -1, "backward after add_ on a saved tensor returned %d, want -1", rc);
  CHECK(strstr(samx_last_error(), "softmax") != NULL, "error does not name the op: '%s'", samx_last_error());
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  test_cast_bit_patterns(dev);
  if (argc > 2) test_cast_vs_torch(dev, argv[2]);
  test_cast_gradient(dev);
  test_add_inplace(dev);
  int plain = samx_test_summary();
  int ops = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return plain || ops;
}
