// ReLU, GELU (exact erf), sigmoid: naive double reference, finite differences, PyTorch, CUDA vs CPU.
#include "../harness.h"

static SamxTensor *run_relu(SamxCtx *c, SamxTensor **in, const void *a) { return samx_relu(c, in[0]); }
static SamxTensor *run_gelu(SamxCtx *c, SamxTensor **in, const void *a) { return samx_gelu(c, in[0]); }
static SamxTensor *run_sigmoid(SamxCtx *c, SamxTensor **in, const void *a) { return samx_sigmoid(c, in[0]); }

#define N 257
static void ref_relu(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < N; i++) out[i] = in[0][i] > 0 ? in[0][i] : 0;
}
static void ref_gelu(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < N; i++) out[i] = 0.5 * in[0][i] * (1 + erf(in[0][i] / sqrt(2.0)));
}
static void ref_sigmoid(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < N; i++) out[i] = 1 / (1 + exp(-in[0][i]));
}

static const OpCase cases[] = {
    {.name = "relu", .n_in = 1, .in = {{SHAPE(N), 1, -3, 3}}, .run = run_relu, .ref = ref_relu, .torch = 1},
    {.name = "gelu", .n_in = 1, .in = {{SHAPE(N), 1, -5, 5}}, .run = run_gelu, .ref = ref_gelu, .torch = 1},
    {.name = "sigmoid", .n_in = 1, .in = {{SHAPE(N), 1, -20, 20}}, .run = run_sigmoid, .ref = ref_sigmoid,
     .torch = 1},
};

int main(int argc, char **argv) { return samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases); }
