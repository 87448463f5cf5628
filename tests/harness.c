#include "harness.h"

#include <stdlib.h>
#include <string.h>

int samx_test_passed, samx_test_failed;

int samx_test_summary(void) {
  printf("%d passed, %d failed\n", samx_test_passed, samx_test_failed);
  return samx_test_failed ? 1 : 0;
}

double samx_test_max_rel(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
    if (d > m || d != d) m = d != d ? INFINITY : d;
  }
  return m;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0); }

float *samx_test_host_f32(const SamxTensor *t) {
  float *h = (float *)malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
  samx_tensor_read_f32(t, h);
  return h;
}

void samx_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t *state) {
  for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)uniform01(state);
}

void samx_test_ctx(SamxCtx *ctx, SamxDevice dev) { samx_ctx_init(ctx, dev, (size_t)256 << 20, 4096); }

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
  return h;
}

// Host copies of a case's inputs.
typedef struct {
  int n;
  float *val[8];
  int64_t numel[8];
} Inputs;

static void make_inputs(const OpCase *c, Inputs *in) {
  uint64_t state = hash_name(c->name);
  in->n = c->n_in;
  for (int i = 0; i < c->n_in; i++) {
    const OpInput *d = &c->in[i];
    float lo = d->lo, hi = d->hi;
    if (lo == 0 && hi == 0) lo = -1, hi = 1;
    in->numel[i] = samx_shape_numel(d->shape);
    in->val[i] = (float *)malloc((size_t)in->numel[i] * sizeof(float) + 4);
    samx_test_fill_uniform(in->val[i], in->numel[i], lo, hi, &state);
    if (d->is_int)
      for (int64_t j = 0; j < in->numel[i]; j++) {
        float v = floorf(in->val[i][j]);
        in->val[i][j] = v > hi ? hi : v;
      }
  }
}

static void free_inputs(Inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->val[i]);
}

// Result of one engine run: output and input gradients on the host.
typedef struct {
  int64_t out_numel;
  float *out;
  float *grad[8];  // NULL where the input needs no gradient
  int stray_grad;  // an input that needs no gradient received one
  int backward_rc;
} RunResult;

static void free_result(RunResult *r) {
  free(r->out);
  for (int i = 0; i < 8; i++) free(r->grad[i]);
  memset(r, 0, sizeof *r);
}

static SamxTensor *upload(SamxCtx *ctx, const OpInput *d, const float *host) {
  if (d->is_int) {
    SamxTensor *t = samx_new(ctx, SAMX_I32, d->shape);
    samx_tensor_write_f32(t, host);
    return t;
  }
  SamxTensor *t = samx_from_host(ctx, d->shape, host);
  t->requires_grad = (uint8_t)d->needs_grad;
  return t;
}

// Runs forward and, if any input needs a gradient, backward with upstream gradient gout
// (generated here when *gout is NULL, with out's numel).
static void run_engine(const OpCase *c, SamxDevice dev, const Inputs *in, float **gout, RunResult *r) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *t[8] = {0};
  int any_grad = 0;
  for (int i = 0; i < c->n_in; i++) {
    t[i] = upload(&ctx, &c->in[i], in->val[i]);
    any_grad |= c->in[i].needs_grad && !c->in[i].is_int;
  }
  memset(r, 0, sizeof *r);
  SamxTensor *out = c->run(&ctx, t, c->args);
  r->out_numel = out->numel;
  r->out = (float *)malloc((size_t)out->numel * sizeof(float) + 4);
  samx_tensor_read_f32(out, r->out);
  if (any_grad) {
    if (!*gout) {
      uint64_t state = hash_name(c->name) ^ 0x5bd1e995u;
      *gout = (float *)malloc((size_t)out->numel * sizeof(float) + 4);
      samx_test_fill_uniform(*gout, out->numel, -1, 1, &state);
    }
    SamxTensor *g = samx_from_host(&ctx, samx_shape_of(out), *gout);
    r->backward_rc = samx_backward(&ctx, out, g);
    for (int i = 0; i < c->n_in; i++) {
      if (c->in[i].needs_grad && !c->in[i].is_int) {
        r->grad[i] = (float *)calloc((size_t)in->numel[i] + 1, sizeof(float));
        if (t[i]->grad) samx_tensor_read_f32(t[i]->grad, r->grad[i]);
      } else if (t[i]->grad) {
        r->stray_grad = 1;
      }
    }
  }
  samx_ctx_free(&ctx);
}

static double **to_double(const Inputs *in) {
  double **d = (double **)calloc(8, sizeof(double *));
  for (int i = 0; i < in->n; i++) {
    d[i] = (double *)malloc((size_t)in->numel[i] * sizeof(double) + 8);
    for (int64_t j = 0; j < in->numel[i]; j++) d[i][j] = in->val[i][j];
  }
  return d;
}

static void free_double(double **d, int n) {
  for (int i = 0; i < n; i++) free(d[i]);
  free(d);
}

static double weighted_ref(const OpCase *c, double **x, const float *g, double *scratch, int64_t n_out) {
  c->ref((const double *const *)x, scratch, c->args);
  double s = 0;
  for (int64_t k = 0; k < n_out; k++) s += (double)g[k] * scratch[k];
  return s;
}

static int check_cpu(const OpCase *c) {
  Inputs in;
  make_inputs(c, &in);
  float *gout = NULL;
  RunResult r;
  run_engine(c, samx_cpu(), &in, &gout, &r);
  double fwd_tol = c->fwd_tol > 0 ? c->fwd_tol : 1e-5;
  double grad_tol = c->grad_tol > 0 ? c->grad_tol : 1e-3;
  double **x = to_double(&in);
  double *ref = (double *)malloc((size_t)r.out_numel * sizeof(double) + 8);
  c->ref((const double *const *)x, ref, c->args);
  double fwd_err = 0;
  for (int64_t k = 0; k < r.out_numel; k++) {
    double e = fabs(r.out[k] - ref[k]) / (1.0 + fabs(ref[k]));
    if (e > fwd_err || e != e) fwd_err = e != e ? INFINITY : e;
  }
  int ok = fwd_err <= fwd_tol;
  printf("%s %s forward: max rel err %.3g (tol %.3g)\n", ok ? "PASS" : "FAIL", c->name, fwd_err, fwd_tol);
  int failures = !ok;
  if (gout) {
    if (r.backward_rc != 0) {
      printf("FAIL %s backward: %s\n", c->name, samx_last_error());
      failures++;
    }
    if (r.stray_grad) {
      printf("FAIL %s: an input that needs no gradient received one\n", c->name);
      failures++;
    }
    for (int i = 0; i < c->n_in; i++) {
      if (!r.grad[i]) continue;
      double max_fd = 0, max_err = 0;
      double *fd = (double *)malloc((size_t)in.numel[i] * sizeof(double) + 8);
      for (int64_t j = 0; j < in.numel[i]; j++) {
        double x0 = x[i][j], h = 1e-6 * (1.0 + fabs(x0));
        x[i][j] = x0 + h;
        double lp = weighted_ref(c, x, gout, ref, r.out_numel);
        x[i][j] = x0 - h;
        double lm = weighted_ref(c, x, gout, ref, r.out_numel);
        x[i][j] = x0;
        fd[j] = (lp - lm) / (2 * h);
        if (fabs(fd[j]) > max_fd) max_fd = fabs(fd[j]);
      }
      for (int64_t j = 0; j < in.numel[i]; j++) {
        double e = fabs(r.grad[i][j] - fd[j]);
        if (e > max_err || e != e) max_err = e != e ? INFINITY : e;
      }
      // Relative to the largest gradient (floored so that all-but-zero gradients do not demand the impossible).
      double scale = max_fd > 1e-2 ? max_fd : 1e-2;
      int gok = max_err <= grad_tol * scale;
      printf("%s %s grad[%d] vs finite differences: max err %.3g, scale %.3g (tol %.3g)\n", gok ? "PASS" : "FAIL",
             c->name, i, max_err, scale, grad_tol);
      failures += !gok;
      free(fd);
    }
  }
  free(ref);
  free_double(x, in.n);
  free(gout);
  free_result(&r);
  free_inputs(&in);
  return failures;
}

static int check_cuda(const OpCase *c, SamxDevice gpu) {
  Inputs in;
  make_inputs(c, &in);
  float *gout = NULL;
  RunResult rc, rg;
  run_engine(c, samx_cpu(), &in, &gout, &rc);
  run_engine(c, gpu, &in, &gout, &rg);
  double tol = c->cuda_tol > 0 ? c->cuda_tol : 1e-4;
  int failures = 0;
  double e = samx_test_max_rel(rg.out, rc.out, rc.out_numel);
  printf("%s %s cuda forward vs cpu: max rel err %.3g (tol %.3g)\n", e <= tol ? "PASS" : "FAIL", c->name, e, tol);
  failures += !(e <= tol);
  for (int i = 0; i < c->n_in; i++) {
    if (!rc.grad[i]) continue;
    e = samx_test_max_rel(rg.grad[i], rc.grad[i], in.numel[i]);
    printf("%s %s cuda grad[%d] vs cpu: max rel err %.3g (tol %.3g)\n", e <= tol ? "PASS" : "FAIL", c->name, i, e,
           tol);
    failures += !(e <= tol);
  }
  if (rg.stray_grad || rg.backward_rc) {
    printf("FAIL %s cuda: backward error or stray gradient\n", c->name);
    failures++;
  }
  free(gout);
  free_result(&rc);
  free_result(&rg);
  free_inputs(&in);
  return failures;
}

// Compares with PyTorch's tensors "<name>.in<i>", "<name>.out", "<name>.gout", "<name>.gin<i>".
static int check_torch(const OpCase *c, const SamxSafetensors *st) {
  char key[300];
  Inputs in = {0};
  in.n = c->n_in;
  OpCase shaped = *c;
  for (int i = 0; i < c->n_in; i++) {
    snprintf(key, sizeof key, "%s.in%d", c->name, i);
    const SamxSTEntry *e = samx_st_find(st, key);
    if (!e) {
      printf("FAIL %s torch: reference tensor %s missing (HINT: regenerate with tests/torch/make_refs.py)\n",
             c->name, key);
      free_inputs(&in);
      return 1;
    }
    shaped.in[i].shape.ndim = e->ndim;
    for (int k = 0; k < e->ndim; k++) shaped.in[i].shape.d[k] = e->shape[k];
    in.numel[i] = samx_shape_numel(shaped.in[i].shape);
    in.val[i] = samx_st_to_f32(e);
  }
  snprintf(key, sizeof key, "%s.gout", c->name);
  const SamxSTEntry *ge = samx_st_find(st, key);
  float *gout = ge ? samx_st_to_f32(ge) : NULL;
  RunResult r;
  run_engine(&shaped, samx_cpu(), &in, &gout, &r);
  double tol = c->fwd_tol > 0 ? 10 * c->fwd_tol : 1e-4;
  int failures = 0;
  snprintf(key, sizeof key, "%s.out", c->name);
  const SamxSTEntry *oe = samx_st_find(st, key);
  if (!oe || oe->numel != r.out_numel) {
    printf("FAIL %s torch: %s missing or of another size\n", c->name, key);
    failures++;
  } else {
    float *want = samx_st_to_f32(oe);
    double e = samx_test_max_rel(r.out, want, r.out_numel);
    printf("%s %s torch forward: max rel err %.3g (tol %.3g)\n", e <= tol ? "PASS" : "FAIL", c->name, e, tol);
    failures += !(e <= tol);
    free(want);
  }
  for (int i = 0; i < c->n_in && ge; i++) {
    if (!r.grad[i]) continue;
    snprintf(key, sizeof key, "%s.gin%d", c->name, i);
    const SamxSTEntry *e = samx_st_find(st, key);
    if (!e) {
      printf("FAIL %s torch: %s missing\n", c->name, key);
      failures++;
      continue;
    }
    float *want = samx_st_to_f32(e);
    double err = samx_test_max_rel(r.grad[i], want, in.numel[i]);
    printf("%s %s torch grad[%d]: max rel err %.3g (tol %.3g)\n", err <= tol ? "PASS" : "FAIL", c->name, i, err,
           tol);
    failures += !(err <= tol);
    free(want);
  }
  free(gout);
  free_result(&r);
  free_inputs(&in);
  return failures;
}

int samx_test_ops_main(int argc, char **argv, const OpCase *cases, int n) {
  const char *mode = argc > 1 ? argv[1] : "cpu";
  const char *torch_path = argc > 2 ? argv[2] : NULL;
  int failed_cases = 0, failures = 0;
  if (strcmp(mode, "cuda") == 0) {
    if (samx_cuda_device_count() == 0) {
      printf("skipped: no CUDA device\n");
      return SAMX_TEST_SKIP;
    }
    SamxDevice gpu = {SAMX_CUDA, 0};
    for (int i = 0; i < n; i++) failed_cases += check_cuda(&cases[i], gpu) != 0;
  } else {
    SamxSafetensors st;
    int have_torch = 0;
    if (torch_path) {
      if (samx_st_open(&st, torch_path) != 0) {
        printf("FAIL torch reference file: %s\n", samx_last_error());
        failures++;
      } else {
        have_torch = 1;
      }
    }
    for (int i = 0; i < n; i++) {
      int f = check_cpu(&cases[i]);
      if (cases[i].torch) {
        if (have_torch) {
          f += check_torch(&cases[i], &st);
        } else if (!torch_path) {
          printf("FAIL %s: no PyTorch reference file given\n", cases[i].name);
          f++;
        }
      }
      failed_cases += f != 0;
    }
    if (have_torch) samx_st_close(&st);
  }
  printf("%d passed, %d failed\n", n - failed_cases, failed_cases + failures);
  return failed_cases + failures ? 1 : 0;
}
