// Philox4x32-10 against Random123's known-answer vectors, the statistics of its uniforms and
// normals, reproducibility through (seed, offset), and the reparameterised Gaussian sampler
// (forward, finite differences, CUDA vs CPU). The fill cases have no gradient: they exist for their
// CUDA entries, which compare the GPU's stream with the CPU's (uniforms bit for bit).
#include <string.h>

#include "../../kernels/random.h"
#include "../harness.h"

// Random123's kat_vectors for philox4x32_10: counter, key, expected output.
static void test_known_answers(void) {
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
       0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
       0x24126ea1},
  };
  for (int k = 0; k < 3; k++) {
    SamxU32x4 c = {{kat[k][0], kat[k][1], kat[k][2], kat[k][3]}};
    SamxU32x4 r = samx_philox4x32_10(c, kat[k][4], kat[k][5]);
    CHECK(memcmp(r.v, &kat[k][6], sizeof r.v) == 0, "philox KAT %d: got %08x %08x %08x %08x", k, r.v[0], r.v[1],
          r.v[2], r.v[3]);
  }
  // (seed, counter) -> (key, counter words): low word first.
  SamxU32x4 c = {{0x13198a2e, 0x03707344, 0, 0}};
  SamxU32x4 want = samx_philox4x32_10(c, 0xa4093822, 0x299f31d0);
  SamxU32x4 got = samx_philox_draw(0x299f31d0a4093822ull, 0x0370734413198a2eull);
  CHECK(memcmp(got.v, want.v, sizeof got.v) == 0, "philox_draw maps seed/counter words in the wrong order");
}

// Mean, variance, range of n draws of tensor t (filled on the CPU).
static void moments(SamxTensor *t, double *mean, double *var, double *lo, double *hi) {
  float *v = samx_f32(t);
  double s = 0, s2 = 0;
  *lo = INFINITY, *hi = -INFINITY;
  for (int64_t i = 0; i < t->numel; i++) {
    s += v[i];
    if (v[i] < *lo) *lo = v[i];
    if (v[i] > *hi) *hi = v[i];
  }
  *mean = s / t->numel;
  for (int64_t i = 0; i < t->numel; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
  *var = s2 / (t->numel - 1);
}

// 1e5 draws: standard errors are 0.0032 (mean of N(0,1)) and 0.0045 (its variance); tolerances ~5 sigma.
static void test_distributions(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  SamxTensor *t = samx_new(&ctx, SAMX_F32, SHAPE(100000));
  double mean, var, lo, hi;
  uint32_t v0 = samx_version(t);
  samx_randn_fill(t, 1234, 0, 0.0f, 1.0f);
  CHECK(samx_version(t) != v0, "randn_fill did not bump the version");
  moments(t, &mean, &var, &lo, &hi);
  CHECK(fabs(mean) < 0.016 && fabs(var - 1) < 0.023, "N(0,1): mean %g var %g", mean, var);
  int64_t beyond2 = 0;
  for (int64_t i = 0; i < t->numel; i++) beyond2 += fabsf(samx_f32(t)[i]) > 2.0f;
  // P(|z| > 2) = 0.0455; binomial standard error 6.6e-4.
  CHECK(fabs(beyond2 / 1e5 - 0.0455) < 0.0033, "N(0,1): P(|z| > 2) = %g, want 0.0455", beyond2 / 1e5);
  samx_randn_fill(t, 99, 7, 3.0f, 2.0f);
  moments(t, &mean, &var, &lo, &hi);
  CHECK(fabs(mean - 3) < 0.032 && fabs(var - 4) < 0.092, "N(3,4): mean %g var %g", mean, var);
  samx_rand_uniform_fill(t, 5, 0, -2.0f, 6.0f);
  moments(t, &mean, &var, &lo, &hi);
  // U(-2, 6): mean 2, variance 64/12; standard errors 0.0073 and 0.0095.
  CHECK(fabs(mean - 2) < 0.037 && fabs(var - 64.0 / 12) < 0.05 && lo > -2 && hi < 6 && lo < -1.99 && hi > 5.99,
        "U(-2,6): mean %g var %g range [%g, %g]", mean, var, lo, hi);
  // Uniform words never reach 0 or 1, even at the extremes.
  CHECK(samx_u32_to_uniform(0) > 0 && samx_u32_to_uniform(0xffffffffu) < 1, "uniform reaches an end of (0, 1)");
  // A bf16 tensor gets the same draws, rounded.
  SamxTensor *b = samx_new(&ctx, SAMX_BF16, SHAPE(64));
  float fb[64];
  samx_randn_fill(b, 1234, 0, 0.0f, 1.0f);
  samx_tensor_read_f32(b, fb);
  double err = 0;
  for (int i = 0; i < 64; i++) err = fmax(err, fabs(fb[i] - samx_philox_normal(1234, i)));
  CHECK(err < 0.02, "bf16 randn_fill differs from the f32 draws by %g", err);
  samx_ctx_free(&ctx);
}

// gaussian_sample advances ctx->rng_offset by numel; the same (seed, offset) reproduces a draw.
static void test_offsets(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  ctx.seed = 42;
  ctx.rng_offset = 1000;
  float zeros[12] = {0};
  SamxTensor *mu = samx_from_host(&ctx, SHAPE(3, 4), zeros), *ls = samx_from_host(&ctx, SHAPE(3, 4), zeros);
  SamxTensor *z1 = samx_gaussian_sample(&ctx, mu, ls);
  CHECK(ctx.rng_offset == 1012, "rng_offset %llu after 12 draws from 1000", (unsigned long long)ctx.rng_offset);
  SamxTensor *z2 = samx_gaussian_sample(&ctx, mu, ls);
  ctx.rng_offset = 1000;
  SamxTensor *z3 = samx_gaussian_sample(&ctx, mu, ls);
  CHECK(memcmp(samx_f32(z1), samx_f32(z3), 12 * sizeof(float)) == 0, "same seed and offset: different draws");
  CHECK(memcmp(samx_f32(z1), samx_f32(z2), 12 * sizeof(float)) != 0, "consecutive samples repeat their draws");
  CHECK(samx_f32(z2)[0] == samx_philox_normal(42, 1012), "the second sample does not start at offset 1012");
  samx_ctx_free(&ctx);
}

typedef struct {
  uint64_t seed, offset;
  int kind;
  float a, b;
  int64_t n;
} RandCase;

static SamxTensor *run_sample(SamxCtx *ctx, SamxTensor **in, const void *args) {
  const RandCase *a = (const RandCase *)args;
  ctx->seed = a->seed;
  ctx->rng_offset = a->offset;
  return samx_gaussian_sample(ctx, in[0], in[1]);
}

// eps is an input of the function under test, regenerated here from the same (seed, offset).
static void ref_sample(const double *const *in, double *out, const void *args) {
  const RandCase *a = (const RandCase *)args;
  for (int64_t i = 0; i < a->n; i++) out[i] = in[0][i] + exp(in[1][i]) * samx_philox_normal(a->seed, a->offset + i);
}

static SamxTensor *run_fill(SamxCtx *ctx, SamxTensor **in, const void *args) {
  const RandCase *a = (const RandCase *)args;
  SamxTensor *t = samx_new(ctx, SAMX_F32, samx_shape_of(in[0]));
  if (a->kind == SAMX_RNG_NORMAL)
    samx_randn_fill(t, a->seed, a->offset, a->a, a->b);
  else
    samx_rand_uniform_fill(t, a->seed, a->offset, a->a, a->b);
  return t;
}

// From the words, written out: uniform = (2 (w >> 9) + 1) / 2^24; Box-Muller in double.
static void ref_fill(const double *const *in, double *out, const void *args) {
  const RandCase *a = (const RandCase *)args;
  for (int64_t i = 0; i < a->n; i++) {
    SamxU32x4 w = samx_philox_draw(a->seed, a->offset + i);
    double u1 = (2.0 * (w.v[0] >> 9) + 1) / 16777216.0, u2 = (2.0 * (w.v[1] >> 9) + 1) / 16777216.0;
    if (a->kind == SAMX_RNG_NORMAL)
      out[i] = a->a + a->b * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    else
      out[i] = a->a + (a->b - a->a) * u1;
  }
}

static const RandCase sample_args = {.seed = 0x0123456789abcdefull, .offset = 5000000000ull, .n = 2 * 3 * 7};
static const RandCase randn_args = {.seed = 7, .offset = 3, .kind = SAMX_RNG_NORMAL, .a = 0.5f, .b = 0.02f,
                                    .n = 4097};
static const RandCase uniform_args = {.seed = 1ull << 40, .offset = 0xfffffffffffff000ull, .kind = SAMX_RNG_UNIFORM,
                                      .a = -0.1f, .b = 0.3f, .n = 4097};

static const OpCase cases[] = {
    {.name = "gaussian_sample", .n_in = 2, .in = {{SHAPE(2, 3, 7), 1, -2, 2}, {SHAPE(2, 3, 7), 1, -2, 1}},
     .run = run_sample, .ref = ref_sample, .args = &sample_args, .grad_tol = 1e-5},
    // Normals through libm vs CUDA's logf/cosf: a few ulp apart.
    {.name = "randn_fill", .n_in = 1, .in = {{SHAPE(4097), 0}}, .run = run_fill, .ref = ref_fill,
     .args = &randn_args, .fwd_tol = 2e-6, .cuda_tol = 2e-6},
    // Uniforms are exact functions of the integer stream: bit-identical on both backends.
    {.name = "rand_uniform_fill", .n_in = 1, .in = {{SHAPE(4097), 0}}, .run = run_fill, .ref = ref_fill,
     .args = &uniform_args, .fwd_tol = 2e-7, .cuda_tol = 1e-12},
};

int main(int argc, char **argv) {
  int cuda = argc > 1 && strcmp(argv[1], "cuda") == 0;
  int plain = 0;
  if (!cuda) {
    test_known_answers();
    test_distributions();
    test_offsets();
    plain = samx_test_summary();
  }
  int rc = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return rc == SAMX_TEST_SKIP ? rc : (rc || plain);
}
