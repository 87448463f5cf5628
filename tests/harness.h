// Test harness shared by all samx tests.
//
// Op tests describe cases (OpCase) and hand them to samx_test_ops_main, which checks for each:
//  - cpu mode:  forward against the case's naive double-precision reference; backward against
//               central finite differences of that reference (double, so the oracle is exact to
//               ~1e-9); inputs that need no gradient must get none; and, for cases marked `torch`,
//               forward and backward against PyTorch's outputs stored by tests/torch/make_refs.py.
//  - cuda mode: the CUDA backend against the CPU backend on the same inputs (outputs and
//               gradients); exits 77 ("skipped: no CUDA device") without a GPU, which ctest
//               reports as skipped, never as passed.
// Plain tests use CHECK/CHECK_CLOSE and end with samx_test_summary().
#ifndef SAMX_TEST_HARNESS_H
#define SAMX_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

#include "../engine/samx.h"

#define SAMX_TEST_SKIP 77

typedef struct {
  SamxShape shape;
  int needs_grad;  // gradient checked against finite differences
  float lo, hi;    // values drawn uniformly from [lo, hi] (defaults to [-1, 1] when both are 0)
  int is_int;      // integer values in [lo, hi] given as an I32 tensor (indices); never differentiated
} OpInput;

typedef struct OpCase {
  const char *name;
  int n_in;
  OpInput in[8];
  // Runs the op through the engine on ctx (inputs already on ctx's device) and returns its output.
  SamxTensor *(*run)(SamxCtx *ctx, SamxTensor **in, const void *args);
  // Independent reference in double precision; out has the engine output's numel.
  void (*ref)(const double *const *in, double *out, const void *args);
  const void *args;
  double fwd_tol;   // |got - ref| <= fwd_tol * (1 + |ref|); default 1e-5
  double grad_tol;  // max|got - fd| <= grad_tol * max(0.01, max|fd|); default 1e-3
  double cuda_tol;  // CUDA vs CPU, relative as fwd_tol; default 1e-4
  int torch;        // also compare with PyTorch's reference tensors stored under this case's name
} OpCase;

// argv[1]: "cpu" (default) or "cuda"; argv[2]: optional torch reference file (.safetensors).
int samx_test_ops_main(int argc, char **argv, const OpCase *cases, int n);

// Plain checks.
extern int samx_test_passed, samx_test_failed;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (cond) {                                            \
      samx_test_passed++;                                  \
    } else {                                               \
      samx_test_failed++;                                  \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);          \
      printf(__VA_ARGS__);                                 \
      printf("\n");                                        \
    }                                                      \
  } while (0)
// Prints "N passed, N failed" and returns the exit code.
int samx_test_summary(void);

// Max of |a-b| / (1 + |b|) over n elements.
double samx_test_max_rel(const float *a, const float *b, int64_t n);
// Uniform floats in [lo, hi] from a fixed-seed generator (deterministic across machines).
void samx_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t *state);
// t's values as a malloc'd f32 host array (any float dtype, widened); the caller frees it.
float *samx_test_host_f32(const SamxTensor *t);
// A context on dev with a generous activation arena for tests.
void samx_test_ctx(SamxCtx *ctx, SamxDevice dev);

#endif
