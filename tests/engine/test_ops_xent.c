// Cross-entropy with class-index targets, sqrt and the L2 norm: naive double references, finite
// differences, CUDA vs CPU.
#include "../harness.h"

enum { N = 2, C = 4, S = 7 };

static SamxTensor *run_xent(SamxCtx *c, SamxTensor **in, const void *a) { return samx_cross_entropy(c, in[0], in[1]); }
static void ref_xent(const double *const *in, double *out, const void *a) {
  for (int n = 0; n < N; n++)
    for (int s = 0; s < S; s++) {
      double m = -INFINITY, sum = 0;
      for (int c = 0; c < C; c++) m = fmax(m, in[0][(n * C + c) * S + s]);
      for (int c = 0; c < C; c++) sum += exp(in[0][(n * C + c) * S + s] - m);
      int t = (int)in[1][n * S + s];
      out[n * S + s] = m + log(sum) - in[0][(n * C + t) * S + s];
    }
}

#define M 33
static SamxTensor *run_sqrt(SamxCtx *c, SamxTensor **in, const void *a) { return samx_sqrt(c, in[0]); }
static void ref_sqrt(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < M; i++) out[i] = sqrt(in[0][i]);
}
static SamxTensor *run_norm(SamxCtx *c, SamxTensor **in, const void *a) { return samx_l2_norm(c, in[0]); }
static void ref_norm(const double *const *in, double *out, const void *a) {
  double s = 0;
  for (int i = 0; i < M; i++) s += in[0][i] * in[0][i];
  out[0] = sqrt(s);
}

static const OpCase cases[] = {
    {.name = "cross_entropy", .n_in = 2, .in = {{SHAPE(N, C, S), 1, -4, 4}, {SHAPE(N, S), 0, 0, C - 1, 1}},
     .run = run_xent, .ref = ref_xent},
    {.name = "sqrt", .n_in = 1, .in = {{SHAPE(M), 1, 0.1f, 4}}, .run = run_sqrt, .ref = ref_sqrt},
    {.name = "l2_norm", .n_in = 1, .in = {{SHAPE(M), 1, -2, 2}}, .run = run_norm, .ref = ref_norm},
};

int main(int argc, char **argv) { return samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases); }
