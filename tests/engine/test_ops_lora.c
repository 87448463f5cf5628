// LoRA on the q/v slices of a fused qkv (samx_lora_qkv), merging adapters into qkv
// (samx_lora_merge_qkv), and the Gaussian reparameterisation with a given eps
// (samx_gaussian_reparam): naive double references, finite differences of every input, CUDA vs CPU.
#include "../harness.h"

enum { T = 5, C = 6, R = 2, N3 = 3 * C };

// inputs: x [T, C], w [3C, C], b [3C], a_q [R, C], b_q [C, R], a_v [R, C], b_v [C, R]
static SamxTensor *run_lora_qkv(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_lora_qkv(c, in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
}

// (B A x)[row] for one adapter.
static double adapter(const double *x, const double *a, const double *b, int row) {
  double s = 0;
  for (int k = 0; k < R; k++) {
    double h = 0;
    for (int j = 0; j < C; j++) h += a[k * C + j] * x[j];
    s += b[row * R + k] * h;
  }
  return s;
}

static void ref_lora_qkv(const double *const *in, double *out, const void *a) {
  for (int t = 0; t < T; t++) {
    const double *x = in[0] + t * C;
    for (int o = 0; o < N3; o++) {
      double y = in[2][o];
      for (int j = 0; j < C; j++) y += in[1][o * C + j] * x[j];
      if (o < C) y += adapter(x, in[3], in[4], o);
      if (o >= 2 * C) y += adapter(x, in[5], in[6], o - 2 * C);
      out[t * N3 + o] = y;
    }
  }
}

// The merged weight (a copy of w, so the input stays as it was).
static SamxTensor *run_merge(SamxCtx *c, SamxTensor **in, const void *a) {
  SamxTensor *w = samx_new(c, SAMX_F32, samx_shape_of(in[0]));
  samx_tensor_copy(w, in[0]);
  samx_lora_merge_qkv(w, in[1], in[2], in[3], in[4], 1.0f);
  return w;
}

static void ref_merge(const double *const *in, double *out, const void *a) {
  for (int o = 0; o < N3; o++)
    for (int j = 0; j < C; j++) {
      double d = 0;
      for (int k = 0; k < R; k++) {
        if (o < C) d += in[2][o * R + k] * in[1][k * C + j];
        if (o >= 2 * C) d += in[4][(o - 2 * C) * R + k] * in[3][k * C + j];
      }
      out[o * C + j] = in[0][o * C + j] + d;
    }
}

#define NZ 300
static SamxTensor *run_reparam(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_gaussian_reparam(c, in[0], in[1], in[2]);
}
static void ref_reparam(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < NZ; i++) out[i] = in[0][i] + exp(in[1][i]) * in[2][i];
}

static const OpCase cases[] = {
    {.name = "lora_qkv",
     .n_in = 7,
     .in = {{SHAPE(T, C), 1}, {SHAPE(N3, C), 1}, {SHAPE(N3), 1}, {SHAPE(R, C), 1}, {SHAPE(C, R), 1}, {SHAPE(R, C), 1},
            {SHAPE(C, R), 1}},
     .run = run_lora_qkv,
     .ref = ref_lora_qkv},
    // frozen qkv (the P²SAM case): only x and the adapters get gradients
    {.name = "lora_qkv_frozen",
     .n_in = 7,
     .in = {{SHAPE(T, C), 1}, {SHAPE(N3, C), 0}, {SHAPE(N3), 0}, {SHAPE(R, C), 1}, {SHAPE(C, R), 1}, {SHAPE(R, C), 1},
            {SHAPE(C, R), 1}},
     .run = run_lora_qkv,
     .ref = ref_lora_qkv},
    {.name = "lora_merge_qkv",
     .n_in = 5,
     .in = {{SHAPE(N3, C), 0}, {SHAPE(R, C), 0}, {SHAPE(C, R), 0}, {SHAPE(R, C), 0}, {SHAPE(C, R), 0}},
     .run = run_merge,
     .ref = ref_merge},
    {.name = "gaussian_reparam",
     .n_in = 3,
     .in = {{SHAPE(NZ), 1, -2, 2}, {SHAPE(NZ), 1, -3, 1}, {SHAPE(NZ), 1, -3, 3}},
     .run = run_reparam,
     .ref = ref_reparam},
};

// Merging then unmerging gives back the weight, and the merged plain projection equals the adapted one.
static int merge_round_trip(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  uint64_t st = 7;
  float host[N3 * C];
  SamxTensor *t[7];
  SamxShape shapes[7] = {SHAPE(T, C), SHAPE(N3, C), SHAPE(N3), SHAPE(R, C), SHAPE(C, R), SHAPE(R, C), SHAPE(C, R)};
  for (int i = 0; i < 7; i++) {
    samx_test_fill_uniform(host, samx_shape_numel(shapes[i]), -1, 1, &st);
    t[i] = samx_from_host(&ctx, shapes[i], host);
  }
  float adapted[T * N3], merged[T * N3], w0[N3 * C], w1[N3 * C];
  samx_tensor_read_f32(samx_lora_qkv(&ctx, t[0], t[1], t[2], t[3], t[4], t[5], t[6]), adapted);
  samx_tensor_read_f32(t[1], w0);
  samx_lora_merge_qkv(t[1], t[3], t[4], t[5], t[6], 1.0f);
  samx_tensor_read_f32(samx_linear(&ctx, t[0], t[1], t[2]), merged);
  samx_lora_merge_qkv(t[1], t[3], t[4], t[5], t[6], -1.0f);
  samx_tensor_read_f32(t[1], w1);
  double e1 = samx_test_max_rel(merged, adapted, T * N3), e2 = samx_test_max_rel(w1, w0, N3 * C);
  CHECK(e1 < 1e-5, "merged qkv vs adapter path: max rel err %g", e1);
  CHECK(e2 < 1e-6, "merge then unmerge: max rel err %g", e2);
  printf("%s lora merge round trip: merged vs adapter %.3g, unmerged vs original %.3g\n",
         e1 < 1e-5 && e2 < 1e-6 ? "PASS" : "FAIL", e1, e2);
  samx_ctx_free(&ctx);
  return e1 < 1e-5 && e2 < 1e-6 ? 0 : 1;
}

int main(int argc, char **argv) {
  int bad = argc > 1 && !strcmp(argv[1], "cuda") ? 0 : merge_round_trip();
  int rc = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return rc ? rc : bad;
}
