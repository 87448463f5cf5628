// Few-shot target embeddings (samx_fewshot_masked_mean): a hand-computed case, numpy on random
// embeddings and masks (binary masks, a label absent from one image), the harness's naive double
// reference with finite differences, and CUDA against CPU.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"

typedef struct {
  int binary;    // weights rounded to {0, 1}
  int zero_row;  // > 0: weight row (n, l) = zero_row - 1 (flattened) is all zero: a label absent from a shot
  int64_t n, l, c, p;
} MeanCase;

static void edit_weights(const MeanCase *a, float *w) {
  if (a->binary)
    for (int64_t i = 0; i < a->n * a->l * a->p; i++) w[i] = w[i] > 0.5f ? 1.0f : 0.0f;
  if (a->zero_row > 0) memset(w + (a->zero_row - 1) * a->p, 0, (size_t)a->p * sizeof(float));
}

static SamxTensor *run_mean(SamxCtx *ctx, SamxTensor **in, const void *args) {
  const MeanCase *a = (const MeanCase *)args;
  float *w = (float *)malloc((size_t)in[1]->numel * sizeof(float));
  samx_tensor_read_f32(in[1], w);
  edit_weights(a, w);
  samx_tensor_write_f32(in[1], w);
  free(w);
  return samx_fewshot_masked_mean(ctx, in[0], in[1]);
}

static void ref_mean(const double *const *in, double *out, const void *args) {
  const MeanCase *a = (const MeanCase *)args;
  float *wf = (float *)malloc((size_t)(a->n * a->l * a->p) * sizeof(float));
  for (int64_t i = 0; i < a->n * a->l * a->p; i++) wf[i] = (float)in[1][i];
  edit_weights(a, wf);
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t l = 0; l < a->l; l++) {
      const float *w = wf + (n * a->l + l) * a->p;
      double s = 0;
      for (int64_t p = 0; p < a->p; p++) s += w[p];
      for (int64_t c = 0; c < a->c; c++) {
        double acc = 0;
        for (int64_t p = 0; p < a->p; p++) acc += w[p] * in[0][(n * a->c + c) * a->p + p];
        out[(n * a->l + l) * a->c + c] = s > 0 ? acc / s : 0;
      }
    }
  free(wf);
}

static const MeanCase soft = {.n = 2, .l = 3, .c = 4, .p = 16};
static const MeanCase binary_absent = {.binary = 1, .zero_row = 5, .n = 2, .l = 3, .c = 5, .p = 25};
static const MeanCase large = {.binary = 1, .zero_row = 2, .n = 2, .l = 2, .c = 8, .p = 256};

#define EMB(...) {SHAPE(__VA_ARGS__), 1}
#define W(...) {SHAPE(__VA_ARGS__), 0, 0, 1}
#define CASE(c, ...) {.name = #c, .n_in = 2, .in = {__VA_ARGS__}, .run = run_mean, .ref = ref_mean, .args = &c, .grad_tol = 1e-5}
static const OpCase cases[] = {
    CASE(soft, EMB(2, 4, 4, 4), W(2, 3, 4, 4)),
    CASE(binary_absent, EMB(2, 5, 5, 5), W(2, 3, 5, 5)),
    CASE(large, EMB(2, 8, 16, 16), W(2, 2, 16, 16)),
};

// emb [1, 2, 2, 2] = channel 0 (1 2 / 3 4), channel 1 (10 20 / 30 40); label 0 covers (0,1) and (1,1),
// label 1 nothing: out = [(2+4)/2, (20+40)/2] = [3, 30] and [0, 0].
static void test_hand(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  SamxTensor *emb = samx_new(&ctx, SAMX_F32, SHAPE(1, 2, 2, 2)), *w = samx_new(&ctx, SAMX_F32, SHAPE(1, 2, 2, 2));
  const float z[8] = {1, 2, 3, 4, 10, 20, 30, 40}, m[8] = {0, 1, 0, 1, 0, 0, 0, 0};
  samx_tensor_write_f32(emb, z);
  samx_tensor_write_f32(w, m);
  float got[4];
  samx_tensor_read_f32(samx_fewshot_masked_mean(&ctx, emb, w), got);
  CHECK(got[0] == 3 && got[1] == 30 && got[2] == 0 && got[3] == 0, "hand case: got %g %g %g %g, want 3 30 0 0",
        got[0], got[1], got[2], got[3]);
  samx_ctx_free(&ctx);
}

// numpy: einsum over random embeddings and binary masks with an absent label, through files.
static void test_numpy(void) {
  enum { NN = 3, L = 2, C = 8, P = 36 };
  char dir[256];
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_fewshot_np") != 0) return;
  uint64_t st = 11;
  static float z[NN * C * P], w[NN * L * P], got[NN * L * C], want[NN * L * C];
  samx_test_fill_uniform(z, NN * C * P, -2, 2, &st);
  samx_test_fill_uniform(w, NN * L * P, 0, 1, &st);
  for (int i = 0; i < NN * L * P; i++) w[i] = w[i] > 0.6f;
  memset(w + 3 * P, 0, P * sizeof(float));  // image 1, label 1 absent
  FILE *f = fopen(samx_test_path(dir, "in.f32"), "wb");
  fwrite(z, sizeof z, 1, f), fwrite(w, sizeof w, 1, f), fclose(f);
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "%s -c \"import numpy as np; a=np.fromfile('%s',np.float32); z=a[:%d].reshape(%d,%d,%d).astype(np.float64); "
           "w=a[%d:].reshape(%d,%d,%d).astype(np.float64); s=w.sum(-1); "
           "o=np.einsum('nlp,ncp->nlc',w,z)/np.where(s>0,s,1)[...,None]; o[s==0]=0; "
           "o.astype(np.float32).tofile('%s')\"",
           py, samx_test_path(dir, "in.f32"), NN * C * P, NN, C, P, NN * C * P, NN, L, P, samx_test_path(dir, "out.f32"));
  CHECK(samx_test_exit_status(system(cmd)) == 0, "numpy reference failed");
  f = fopen(samx_test_path(dir, "out.f32"), "rb");
  CHECK(f && fread(want, sizeof want, 1, f) == 1, "numpy output missing");
  if (f) fclose(f);
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  SamxTensor *te = samx_new(&ctx, SAMX_F32, SHAPE(NN, C, 6, 6)), *tw = samx_new(&ctx, SAMX_F32, SHAPE(NN, L, 6, 6));
  samx_tensor_write_f32(te, z);
  samx_tensor_write_f32(tw, w);
  samx_tensor_read_f32(samx_fewshot_masked_mean(&ctx, te, tw), got);
  double d = samx_test_max_rel(got, want, NN * L * C);
  CHECK(d < 1e-6, "numpy: max rel diff %g", d);
  CHECK(got[(1 * L + 1) * C] == 0, "absent label gives 0");
  samx_ctx_free(&ctx);
  samx_test_remove_dir(dir);
}

int main(int argc, char **argv) {
  int cuda = argc > 1 && strcmp(argv[1], "cuda") == 0;
  int plain = 0;
  if (!cuda) {
    test_hand();
    test_numpy();
    plain = samx_test_summary();
  }
  int rc = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return rc == SAMX_TEST_SKIP ? rc : (rc || plain);
}
