// LayerNorm and SAM's LayerNorm2d: naive double reference, finite differences, PyTorch, CUDA vs CPU.
// Row counts above 64 span several dw/db chunks; C = 300 spans many lanes of a CUDA warp.
#include "../harness.h"

// x viewed as [outer, C, inner]: LayerNorm has inner 1, LayerNorm2d inner H*W.
typedef struct {
  int64_t outer, C, inner;
  float eps;
} NormCase;

static SamxTensor *run_layernorm(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_layernorm(c, in[0], in[1], in[2], ((const NormCase *)a)->eps);
}
static SamxTensor *run_layernorm2d(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_layernorm2d(c, in[0], in[1], in[2], ((const NormCase *)a)->eps);
}

static void ref_norm(const double *const *in, double *out, const void *args) {
  const NormCase *a = (const NormCase *)args;
  const double *x = in[0], *w = in[1], *b = in[2];
  for (int64_t o = 0; o < a->outer; o++)
    for (int64_t i = 0; i < a->inner; i++) {
      double mean = 0, var = 0;
      for (int64_t c = 0; c < a->C; c++) mean += x[(o * a->C + c) * a->inner + i];
      mean /= (double)a->C;
      for (int64_t c = 0; c < a->C; c++) {
        double d = x[(o * a->C + c) * a->inner + i] - mean;
        var += d * d;
      }
      var /= (double)a->C;
      for (int64_t c = 0; c < a->C; c++) {
        int64_t k = (o * a->C + c) * a->inner + i;
        out[k] = (x[k] - mean) / sqrt(var + (double)a->eps) * w[c] + b[c];
      }
    }
}

// w in [0.5, 1.5]. x mostly in [-1, 3] (mean far from 0); the eps cases draw x from a range whose
// variance is close to eps, so a wrong eps changes the output far beyond the tolerance.
#define NORM_IN(xshape, C, gx, gw, gb) NORM_IN_RANGE(xshape, C, gx, gw, gb, -1, 3)
#define NORM_IN_RANGE(xshape, C, gx, gw, gb, lo, hi) {{xshape, gx, lo, hi}, {SHAPE(C), gw, 0.5f, 1.5f}, {SHAPE(C), gb}}

static const OpCase cases[] = {
    {.name = "layernorm_eps1e-5", .n_in = 3, .in = NORM_IN_RANGE(SHAPE(3, 5, 40), 40, 1, 1, 1, -0.012f, 0.004f),
     .run = run_layernorm, .ref = ref_norm, .args = &(NormCase){15, 40, 1, 1e-5f}, .torch = 1},
    {.name = "layernorm_eps1e-6", .n_in = 3, .in = NORM_IN_RANGE(SHAPE(7, 33), 33, 1, 1, 1, -0.001f, 0.003f),
     .run = run_layernorm, .ref = ref_norm, .args = &(NormCase){7, 33, 1, 1e-6f}, .torch = 1},
    {.name = "layernorm_rows150", .n_in = 3, .in = NORM_IN(SHAPE(150, 8), 8, 1, 1, 1), .run = run_layernorm,
     .ref = ref_norm, .args = &(NormCase){150, 8, 1, 1e-6f}, .torch = 1},
    {.name = "layernorm_wide_frozen_affine", .n_in = 3, .in = NORM_IN(SHAPE(2, 300), 300, 1, 0, 0),
     .run = run_layernorm, .ref = ref_norm, .args = &(NormCase){2, 300, 1, 1e-6f}},
    {.name = "layernorm2d", .n_in = 3, .in = NORM_IN(SHAPE(2, 6, 7, 9), 6, 1, 1, 1), .run = run_layernorm2d,
     .ref = ref_norm, .args = &(NormCase){2, 6, 63, 1e-6f}, .torch = 1},
    {.name = "layernorm2d_eps1e-5", .n_in = 3, .in = NORM_IN_RANGE(SHAPE(1, 16, 3, 4), 16, 1, 1, 1, -0.012f, 0.004f),
     .run = run_layernorm2d, .ref = ref_norm, .args = &(NormCase){1, 16, 12, 1e-5f}, .torch = 1},
    {.name = "layernorm2d_only_w", .n_in = 3, .in = NORM_IN(SHAPE(3, 5, 4, 2), 5, 0, 1, 0), .run = run_layernorm2d,
     .ref = ref_norm, .args = &(NormCase){3, 5, 8, 1e-6f}},
    // 323 pixels: a full 256-pixel tile of the CPU kernel and a partial one, in each of two images.
    {.name = "layernorm2d_pixel_tiles", .n_in = 3, .in = NORM_IN(SHAPE(2, 5, 17, 19), 5, 1, 1, 1),
     .run = run_layernorm2d, .ref = ref_norm, .args = &(NormCase){2, 5, 323, 1e-6f}},
    {.name = "layernorm2d_only_b", .n_in = 3, .in = NORM_IN(SHAPE(3, 5, 4, 2), 5, 0, 0, 1), .run = run_layernorm2d,
     .ref = ref_norm, .args = &(NormCase){3, 5, 8, 1e-6f}},
};

int main(int argc, char **argv) { return samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases); }
