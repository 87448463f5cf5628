// matmul (all transposes, batched, shared weight), linear, LoRA linear, embedding: naive double
// references, finite differences, PyTorch, CUDA vs CPU; plus an out-of-range embedding index aborting,
// and matmul of an f32 a by a BF16 b (inference) against a double reference of the same values: its
// sums are fp32 in k order, so within k 2^-24 sum_k |a b| (plus 1e-30) of it.
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "../../kernels/linalg.h"
#include "../test_util.h"

// ---- matmul ----

typedef struct {
  int64_t batch, m, n, k;
  int trans_a, trans_b;
  int b_shared;  // b is one 2-D matrix for the whole batch
} MatmulArgs;

static SamxTensor *run_matmul(SamxCtx *c, SamxTensor **in, const void *args) {
  const MatmulArgs *p = (const MatmulArgs *)args;
  return samx_matmul(c, in[0], in[1], p->trans_a, p->trans_b);
}

static void ref_matmul(const double *const *in, double *out, const void *args) {
  const MatmulArgs *p = (const MatmulArgs *)args;
  int64_t m = p->m, n = p->n, k = p->k;
  for (int64_t t = 0; t < p->batch; t++) {
    const double *a = in[0] + t * m * k, *b = in[1] + (p->b_shared ? 0 : t * k * n);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t q = 0; q < k; q++)
          s += (p->trans_a ? a[q * m + i] : a[i * k + q]) * (p->trans_b ? b[j * k + q] : b[q * n + j]);
        out[(t * m + i) * n + j] = s;
      }
  }
}

static const MatmulArgs mm_nn = {1, 5, 4, 7, 0, 0, 0}, mm_tn = {1, 5, 4, 7, 1, 0, 0}, mm_nt = {1, 5, 4, 7, 0, 1, 0},
                        mm_tt = {1, 5, 4, 7, 1, 1, 0};
static const MatmulArgs mm_b3_tn = {3, 5, 4, 6, 1, 0, 0}, mm_b4_nt = {6, 4, 6, 5, 0, 1, 0},
                        mm_b4_tt = {4, 3, 4, 5, 1, 1, 0};
static const MatmulArgs mm_sh_nn = {6, 5, 4, 7, 0, 0, 1}, mm_sh_nt = {4, 5, 3, 7, 0, 1, 1},
                        mm_sh_tn = {3, 5, 4, 7, 1, 0, 1}, mm_sh_tt = {3, 5, 4, 7, 1, 1, 1};
// Above OpenBLAS's single-thread size (m*n*k > 262144): the unsplit batch loop; forward only (FD too slow).
static const MatmulArgs mm_large = {2, 64, 80, 72, 0, 1, 0};

// a a^T: both operands are the same tensor, so its gradient receives two contributions (backward adds).
static SamxTensor *run_gram(SamxCtx *c, SamxTensor **in, const void *args) { return samx_matmul(c, in[0], in[0], 0, 1); }

static void ref_gram(const double *const *in, double *out, const void *args) {
  const MatmulArgs *p = (const MatmulArgs *)args;
  for (int64_t i = 0; i < p->m; i++)
    for (int64_t j = 0; j < p->m; j++) {
      double s = 0;
      for (int64_t q = 0; q < p->k; q++) s += in[0][i * p->k + q] * in[0][j * p->k + q];
      out[i * p->m + j] = s;
    }
}

static const MatmulArgs mm_gram = {1, 5, 5, 7, 0, 1, 0};

// ---- linear and LoRA linear ----

typedef struct {
  int64_t rows, in, out, rank;
  float scale;
  int bias_in, lora_a_in, lora_b_in;  // input positions, -1 when absent
} LinearArgs;

static SamxTensor *run_linear(SamxCtx *c, SamxTensor **in, const void *args) {
  const LinearArgs *p = (const LinearArgs *)args;
  SamxTensor *b = p->bias_in >= 0 ? in[p->bias_in] : NULL;
  if (p->lora_a_in < 0) return samx_linear(c, in[0], in[1], b);
  return samx_lora_linear(c, in[0], in[1], b, in[p->lora_a_in], in[p->lora_b_in], p->scale);
}

static double dot(const double *u, const double *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += u[i] * v[i];
  return s;
}

static void ref_linear(const double *const *in, double *out, const void *args) {
  const LinearArgs *p = (const LinearArgs *)args;
  const double *x = in[0], *w = in[1];
  double h[16];
  for (int64_t r = 0; r < p->rows; r++) {
    const double *xr = x + r * p->in;
    for (int64_t q = 0; q < p->rank; q++) h[q] = dot(xr, in[p->lora_a_in] + q * p->in, p->in);
    for (int64_t o = 0; o < p->out; o++) {
      double s = dot(xr, w + o * p->in, p->in);
      if (p->bias_in >= 0) s += in[p->bias_in][o];
      if (p->rank > 0) s += p->scale * dot(h, in[p->lora_b_in] + o * p->rank, p->rank);
      out[r * p->out + o] = s;
    }
  }
}

static const LinearArgs lin_bias = {6, 5, 4, 0, 0, 2, -1, -1}, lin_nobias = {6, 5, 4, 0, 0, -1, -1, -1},
                        lin_3d = {6, 5, 4, 0, 0, 2, -1, -1};
// More than one 256-column tile and enough work for the threaded bias loops.
static const LinearArgs lin_wide = {120, 3, 300, 0, 0, 2, -1, -1};
static const LinearArgs lora_with_bias = {6, 6, 5, 2, 0.5f, 2, 3, 4}, lora_nobias = {4, 6, 5, 3, 2.0f, -1, 2, 3};

// linear(linear(x, w, b), w, b) with a square w: w and b each receive two gradient contributions.
static SamxTensor *run_linear_twice(SamxCtx *c, SamxTensor **in, const void *args) {
  return samx_linear(c, samx_linear(c, in[0], in[1], in[2]), in[1], in[2]);
}

static void ref_linear_twice(const double *const *in, double *out, const void *args) {
  const LinearArgs *p = (const LinearArgs *)args;
  double y1[64];
  const double *w = in[1], *b = in[2];
  for (int64_t r = 0; r < p->rows; r++) {
    for (int64_t o = 0; o < p->out; o++) y1[o] = dot(in[0] + r * p->in, w + o * p->in, p->in) + b[o];
    for (int64_t o = 0; o < p->out; o++) out[r * p->out + o] = dot(y1, w + o * p->in, p->in) + b[o];
  }
}

static const LinearArgs lin_twice = {4, 5, 5, 0, 0, 2, -1, -1};

// ---- embedding ----

typedef struct {
  int64_t n, n_rows, dim;
} EmbeddingArgs;

static SamxTensor *run_embedding(SamxCtx *c, SamxTensor **in, const void *args) {
  return samx_embedding(c, in[0], in[1]);
}

static void ref_embedding(const double *const *in, double *out, const void *args) {
  const EmbeddingArgs *p = (const EmbeddingArgs *)args;
  for (int64_t i = 0; i < p->n; i++)
    for (int64_t d = 0; d < p->dim; d++) out[i * p->dim + d] = in[0][(int64_t)in[1][i] * p->dim + d];
}

// embedding(table, idx) table^T: the table's gradient adds the matmul's and the embedding's parts.
static SamxTensor *run_embedding_matmul(SamxCtx *c, SamxTensor **in, const void *args) {
  return samx_matmul(c, samx_embedding(c, in[0], in[1]), in[0], 0, 1);
}

static void ref_embedding_matmul(const double *const *in, double *out, const void *args) {
  const EmbeddingArgs *p = (const EmbeddingArgs *)args;
  for (int64_t i = 0; i < p->n; i++)
    for (int64_t v = 0; v < p->n_rows; v++)
      out[i * p->n_rows + v] = dot(in[0] + (int64_t)in[1][i] * p->dim, in[0] + v * p->dim, p->dim);
}

// 12 draws from 10 rows, 120 from 7: repeated indices check the scatter-add.
static const EmbeddingArgs emb_small = {12, 10, 6}, emb_wide = {120, 7, 300};

#define MM(nm, sa, sb, mm_args) \
  {.name = nm, .n_in = 2, .in = {{sa, 1}, {sb, 1}}, .run = run_matmul, .ref = ref_matmul, .args = &mm_args, .torch = 1}

static const OpCase cases[] = {
    MM("matmul_nn", SHAPE(5, 7), SHAPE(7, 4), mm_nn),
    MM("matmul_tn", SHAPE(7, 5), SHAPE(7, 4), mm_tn),
    MM("matmul_nt", SHAPE(5, 7), SHAPE(4, 7), mm_nt),
    MM("matmul_tt", SHAPE(7, 5), SHAPE(4, 7), mm_tt),
    MM("matmul_batch3_tn", SHAPE(3, 6, 5), SHAPE(3, 6, 4), mm_b3_tn),
    MM("matmul_batch4_nt", SHAPE(2, 3, 4, 5), SHAPE(2, 3, 6, 5), mm_b4_nt),
    MM("matmul_batch4_tt", SHAPE(2, 2, 5, 3), SHAPE(2, 2, 4, 5), mm_b4_tt),
    MM("matmul_shared_nn", SHAPE(2, 3, 5, 7), SHAPE(7, 4), mm_sh_nn),
    MM("matmul_shared_nt", SHAPE(4, 5, 7), SHAPE(3, 7), mm_sh_nt),
    MM("matmul_shared_tn", SHAPE(3, 7, 5), SHAPE(7, 4), mm_sh_tn),
    MM("matmul_shared_tt", SHAPE(3, 7, 5), SHAPE(4, 7), mm_sh_tt),
    {.name = "matmul_gram", .n_in = 1, .in = {{SHAPE(5, 7), 1}}, .run = run_gram, .ref = ref_gram,
     .args = &mm_gram},
    {.name = "matmul_large", .n_in = 2, .in = {{SHAPE(2, 64, 72), 0}, {SHAPE(2, 80, 72), 0}}, .run = run_matmul,
     .ref = ref_matmul, .args = &mm_large},
    {.name = "linear_bias", .n_in = 3, .in = {{SHAPE(6, 5), 1}, {SHAPE(4, 5), 1}, {SHAPE(4), 1}}, .run = run_linear,
     .ref = ref_linear, .args = &lin_bias, .torch = 1},
    {.name = "linear_nobias", .n_in = 2, .in = {{SHAPE(6, 5), 1}, {SHAPE(4, 5), 1}}, .run = run_linear,
     .ref = ref_linear, .args = &lin_nobias, .torch = 1},
    {.name = "linear_3d", .n_in = 3, .in = {{SHAPE(2, 3, 5), 1}, {SHAPE(4, 5), 1}, {SHAPE(4), 1}}, .run = run_linear,
     .ref = ref_linear, .args = &lin_3d, .torch = 1},
    {.name = "linear_wide", .n_in = 3, .in = {{SHAPE(120, 3), 1}, {SHAPE(300, 3), 1}, {SHAPE(300), 1}},
     .run = run_linear, .ref = ref_linear, .args = &lin_wide},
    {.name = "linear_twice", .n_in = 3, .in = {{SHAPE(4, 5), 1}, {SHAPE(5, 5), 1}, {SHAPE(5), 1}},
     .run = run_linear_twice, .ref = ref_linear_twice, .args = &lin_twice},
    // W and b frozen: the harness fails the case if either receives a gradient.
    {.name = "lora_frozen",
     .n_in = 5,
     .in = {{SHAPE(2, 3, 6), 1}, {SHAPE(5, 6), 0}, {SHAPE(5), 0}, {SHAPE(2, 6), 1}, {SHAPE(5, 2), 1}},
     .run = run_linear,
     .ref = ref_linear,
     .args = &lora_with_bias,
     .torch = 1},
    // Only the adapter trains (x frozen too): dL/dh is still needed for lora_a.
    {.name = "lora_adapter_only",
     .n_in = 5,
     .in = {{SHAPE(2, 3, 6), 0}, {SHAPE(5, 6), 0}, {SHAPE(5), 0}, {SHAPE(2, 6), 1}, {SHAPE(5, 2), 1}},
     .run = run_linear,
     .ref = ref_linear,
     .args = &lora_with_bias},
    // Only lora_b trains: no dL/dh at all.
    {.name = "lora_b_only",
     .n_in = 5,
     .in = {{SHAPE(2, 3, 6), 0}, {SHAPE(5, 6), 0}, {SHAPE(5), 0}, {SHAPE(2, 6), 0}, {SHAPE(5, 2), 1}},
     .run = run_linear,
     .ref = ref_linear,
     .args = &lora_with_bias},
    // Only x trains: its gradient still needs the adapter's path through dL/dh.
    {.name = "lora_x_only",
     .n_in = 5,
     .in = {{SHAPE(2, 3, 6), 1}, {SHAPE(5, 6), 0}, {SHAPE(5), 0}, {SHAPE(2, 6), 0}, {SHAPE(5, 2), 0}},
     .run = run_linear,
     .ref = ref_linear,
     .args = &lora_with_bias},
    {.name = "lora_trainable",
     .n_in = 4,
     .in = {{SHAPE(4, 6), 1}, {SHAPE(5, 6), 1}, {SHAPE(3, 6), 1}, {SHAPE(5, 3), 1}},
     .run = run_linear,
     .ref = ref_linear,
     .args = &lora_nobias,
     .torch = 1},
    {.name = "embedding",
     .n_in = 2,
     .in = {{SHAPE(10, 6), 1}, {SHAPE(3, 4), 0, 0, 9, 1}},
     .run = run_embedding,
     .ref = ref_embedding,
     .args = &emb_small,
     .torch = 1},
    {.name = "embedding_wide",
     .n_in = 2,
     .in = {{SHAPE(7, 300), 1}, {SHAPE(120), 0, 0, 6, 1}},
     .run = run_embedding,
     .ref = ref_embedding,
     .args = &emb_wide},
    {.name = "embedding_matmul",
     .n_in = 2,
     .in = {{SHAPE(10, 6), 1}, {SHAPE(3, 4), 0, 0, 9, 1}},
     .run = run_embedding_matmul,
     .ref = ref_embedding_matmul,
     .args = &emb_small},
};

// An out-of-range index must abort the process with a message naming it. Runs in a forked child (before
// this process touches CUDA, so the child may use it); returns 1 on failure, 77 when the device is absent.
static void embed_bad_index(void *arg) {
  const int on_cuda = *(const int *)arg;
  if (on_cuda && samx_cuda_device_count() == 0) _exit(SAMX_TEST_SKIP);
  SamxCtx ctx;
  SamxDevice dev = {on_cuda ? SAMX_CUDA : SAMX_CPU, 0};
  samx_ctx_init(&ctx, dev, (size_t)1 << 20, 16);
  float table[6] = {0};
  int32_t idx[4] = {0, 2, 7, 1};
  SamxTensor *t = samx_from_host(&ctx, SHAPE(3, 2), table);
  SamxTensor *ix = samx_new(&ctx, SAMX_I32, SHAPE(4));
  samx_tensor_write(ix, idx);
  samx_embedding(&ctx, t, ix);
}

static int check_bad_index_dies(int on_cuda) {
  char msg[2048];
  int status = samx_test_run_child(embed_bad_index, &on_cuda, msg, sizeof msg);
  if (status == -1) return 1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  int ok = WIFSIGNALED(status) && strstr(msg, "index 7 (element 2") != NULL;
  printf("%s embedding_bad_index %s: aborts naming the index\n", ok ? "PASS" : "FAIL", on_cuda ? "cuda" : "cpu");
  if (!ok) printf("  child status %d, stderr: %s\n", status, msg);
  return !ok;
}

// The GEMM launcher's reducing mode (stride_c 0) with alpha and beta other than 1, which the ops never
// use but the contract promises: C = alpha * sum_i A_i B_i^T + beta * C.
static int check_gemm_reduce(SamxDevice dev) {
  enum { BATCH = 3, M = 2, N = 3, K = 4 };
  float a[BATCH * M * K], b[BATCH * N * K], c[M * N], got[M * N];
  uint64_t state = 42;
  samx_test_fill_uniform(a, BATCH * M * K, -1, 1, &state);
  samx_test_fill_uniform(b, BATCH * N * K, -1, 1, &state);
  samx_test_fill_uniform(c, M * N, -1, 1, &state);
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, (size_t)1 << 20, 16);
  SamxTensor *ta = samx_from_host(&ctx, SHAPE(BATCH, M, K), a), *tb = samx_from_host(&ctx, SHAPE(BATCH, N, K), b);
  SamxTensor *tc = samx_from_host(&ctx, SHAPE(M, N), c);
  if (dev.type == SAMX_CUDA) {
#ifdef SAMX_WITH_CUDA
    samx_cuda_linalg_gemm(BATCH, M, N, K, 0, 1, 2.0f, samx_f32(ta), M * K, samx_f32(tb), N * K, 0.5f, samx_f32(tc), 0);
#endif
  } else {
    samx_cpu_linalg_gemm(BATCH, M, N, K, 0, 1, 2.0f, samx_f32(ta), M * K, samx_f32(tb), N * K, 0.5f, samx_f32(tc), 0);
  }
  samx_tensor_read(tc, got);
  samx_ctx_free(&ctx);
  double err = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int t = 0; t < BATCH; t++)
        for (int q = 0; q < K; q++) s += (double)a[(t * M + i) * K + q] * b[(t * N + j) * K + q];
      double want = 2.0 * s + 0.5 * c[i * N + j], e = fabs(got[i * N + j] - want) / (1 + fabs(want));
      if (!(e <= err)) err = e;
    }
  int ok = err <= 1e-5;
  printf("%s gemm_reduce_beta %s: max rel err %.3g (tol 1e-05)\n", ok ? "PASS" : "FAIL",
         dev.type == SAMX_CUDA ? "cuda" : "cpu", err);
  return !ok;
}

// samx_matmul(a F32, b BF16): SAM's mask product shape (4 rows, k 32, a wide n), 11 rows (more than one
// group of 8), and a 2-D b shared by a batched a (one tall product).
static int check_matmul_bf16b(SamxDevice dev) {
  typedef struct {
    int batch, m, n, k, shared;
  } Case;
  const Case cases_b[3] = {{3, 4, 300, 32, 0}, {2, 11, 37, 5, 0}, {2, 3, 20, 7, 1}};
  int failed = 0;
  for (int t = 0; t < 3; t++) {
    Case c = cases_b[t];
    int64_t na = (int64_t)c.batch * c.m * c.k, nb = (int64_t)(c.shared ? 1 : c.batch) * c.k * c.n;
    int64_t nc = (int64_t)c.batch * c.m * c.n;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb), *got = malloc(sizeof(float) * nc);
    uint64_t state = 7 + t;
    samx_test_fill_uniform(a, na, -1, 1, &state);
    samx_test_fill_uniform(b, nb, -2, 2, &state);
    for (int64_t i = 0; i < nb; i++) b[i] = samx_round_bf16(b[i]);  // the values the BF16 b holds
    SamxCtx ctx;
    samx_test_ctx(&ctx, dev);
    samx_ctx_set_recording(&ctx, 0);
    SamxTensor *ta = samx_from_host(&ctx, SHAPE(c.batch, c.m, c.k), a);
    SamxTensor *tb = samx_new(&ctx, SAMX_BF16, c.shared ? SHAPE(c.k, c.n) : SHAPE(c.batch, c.k, c.n));
    samx_tensor_write_f32(tb, b);
    SamxTensor *y = samx_matmul(&ctx, ta, tb, 0, 0);
    samx_tensor_read(y, got);
    double worst = 0;
    for (int z = 0; z < c.batch; z++)
      for (int i = 0; i < c.m; i++)
        for (int j = 0; j < c.n; j++) {
          const float *bz = b + (c.shared ? 0 : (int64_t)z * c.k * c.n);
          double s = 0, mag = 0;
          for (int q = 0; q < c.k; q++) {
            double p = (double)a[((int64_t)z * c.m + i) * c.k + q] * bz[(int64_t)q * c.n + j];
            s += p, mag += fabs(p);
          }
          double e = fabs(got[((int64_t)z * c.m + i) * c.n + j] - s) / (c.k * ldexp(1, -24) * mag + 1e-30);
          worst = e > worst ? e : worst;
        }
    int ok = y->dtype == SAMX_F32 && worst <= 1;
    printf("%s matmul f32 x bf16 %s, batch %d, %d x %d x %d%s: %.3g of the bound\n", ok ? "PASS" : "FAIL",
           dev.type == SAMX_CUDA ? "cuda" : "cpu", c.batch, c.m, c.n, c.k, c.shared ? ", shared b" : "", worst);
    failed |= !ok;
    samx_ctx_free(&ctx);
    free(a), free(b), free(got);
  }
  return failed;
}

int main(int argc, char **argv) {
  int on_cuda = argc > 1 && strcmp(argv[1], "cuda") == 0;
  int died_badly = check_bad_index_dies(on_cuda);
  int rc = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  if (rc == SAMX_TEST_SKIP) return rc;
  SamxDevice dev = {on_cuda ? SAMX_CUDA : SAMX_CPU, 0};
  int gemm_failed = check_gemm_reduce(dev), bf16b_failed = check_matmul_bf16b(dev);
  return rc || died_badly == 1 || gemm_failed || bf16b_failed;
}
