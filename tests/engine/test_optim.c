// Optimizers, schedules and clipping: 10 steps of AdamW / Adam / SGD (momentum, nesterov, plain), with
// parameter groups, a warm-up + cosine schedule and clipping, against torch.optim (reference file
// written at test time by tests/engine/ref_optim.py) and against a naive double-precision
// implementation written here; schedules against hand-computed values; CUDA against CPU when a GPU
// is present.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/optim.h"
#include "../harness.h"

#define STEPS 10
#define N_PARAMS 5
static const char *const names[N_PARAMS] = {"a.weight", "a.bias", "frozen.weight", "norm.weight", "head.weight"};
static const SamxShape shapes[N_PARAMS] = {SHAPE(3, 4), SHAPE(4), SHAPE(3), SHAPE(5), SHAPE(2, 3)};
static int is_frozen(int i) { return i == 2; }

typedef struct {
  const char *name;
  SamxOptimConfig cfg;
  float lr;
  int groups;      // "head." group (lr x0.1, wd 0.1), then no decay on 1-d parameters
  int schedule;    // lr from the warm-up + cosine schedule below instead of `lr`
  float clip;      // max gradient norm before each step; 0: none
} Case;

static const SamxSchedule sched = {SAMX_SCHED_COSINE, 0.02f, 0.002f, 3, STEPS};

// Host copies of every parameter (frozen included) and of the optimizer state of the trainable ones.
typedef struct {
  float *param[N_PARAMS], *m[N_PARAMS], *v[N_PARAMS];
} State;

static void state_free(State *s) {
  for (int i = 0; i < N_PARAMS; i++) free(s->param[i]), free(s->m[i]), free(s->v[i]);
  memset(s, 0, sizeof *s);
}

static float *ref_tensor(const SamxSafetensors *st, const char *fmt, const char *a, const char *b) {
  char key[256];
  snprintf(key, sizeof key, fmt, a, b);
  const SamxSTEntry *e = samx_st_find(st, key);
  if (!e) {
    printf("FAIL reference tensor %s missing\n", key);
    samx_test_failed++;
    return NULL;
  }
  return samx_st_to_f32(e);
}

static int64_t numel_of(int i) { return samx_shape_numel(shapes[i]); }

static void declare(SamxParams *p, SamxDevice dev, const SamxSafetensors *st) {
  samx_params_init(p);
  for (int i = 0; i < N_PARAMS; i++) samx_param(p, names[i], shapes[i], !is_frozen(i));
  samx_params_allocate(p, dev);
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) {
      float ones[3] = {1, 2, 3};
      samx_tensor_write(p->list[i], ones);
    } else {
      float *init = ref_tensor(st, "init.%s%s", names[i], "");
      if (init) samx_tensor_write(p->list[i], init);
      free(init);
    }
  }
}

static void set_grads(SamxParams *p, const SamxSafetensors *st, int t) {
  char step[16];
  snprintf(step, sizeof step, "%d", t);
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) continue;
    float *g = ref_tensor(st, "grad.%s.%s", step, names[i]);
    if (g) samx_tensor_write(p->list[i]->grad, g);
    free(g);
  }
}

static float *read_state(const SamxOptim *o, const float *buf, int i) {
  if (!buf) return NULL;
  float *host = (float *)malloc((size_t)numel_of(i) * sizeof(float));
  samx_memcpy(samx_cpu(), host, o->params->device, buf + o->offset[i], (size_t)numel_of(i) * sizeof(float));
  return host;
}

static void run_engine(const Case *c, SamxDevice dev, const SamxSafetensors *st, State *out) {
  SamxParams p;
  declare(&p, dev, st);
  SamxOptim o;
  samx_optim_init(&o, &p, c->cfg);
  if (c->groups) {
    samx_optim_add_group(&o, "head.", 0.1, 0.1);
    samx_optim_add_group_if(&o, samx_param_is_1d, NULL, 1.0, 0.0);
    CHECK(samx_optim_group_size(&o, 0) == 1 && samx_optim_group_size(&o, 1) == 1 && samx_optim_group_size(&o, 2) == 2,
          "%s: group sizes %d %d %d, expected 1 1 2", c->name, samx_optim_group_size(&o, 0),
          samx_optim_group_size(&o, 1), samx_optim_group_size(&o, 2));
  }
  for (int t = 0; t < STEPS; t++) {
    set_grads(&p, st, t);
    if (c->clip > 0) samx_clip_grad_norm(&p, c->clip);
    samx_optim_step(&o, c->schedule ? samx_lr_at(&sched, o.step) : c->lr);
  }
  CHECK(o.step == STEPS, "%s: step count %lld", c->name, (long long)o.step);
  memset(out, 0, sizeof *out);
  for (int i = 0; i < N_PARAMS; i++) {
    out->param[i] = (float *)malloc((size_t)numel_of(i) * sizeof(float));
    samx_tensor_read(p.list[i], out->param[i]);
    if (is_frozen(i)) continue;
    out->m[i] = read_state(&o, o.m, i);
    out->v[i] = read_state(&o, o.v, i);
  }
  samx_optim_free(&o);
  samx_params_free(&p);
}

// ---- the naive double-precision reference (textbook formulas, bias-corrected moments) ----

static double ref_lr(int64_t step) {
  double base = 0.02, floor = 0.002;
  if (step < 3) return base * (double)(step + 1) / 3.0;
  double t = (double)(step - 3) / (STEPS - 3);
  return floor + (base - floor) * 0.5 * (1 + cos(M_PI * (t > 1 ? 1 : t)));
}

static void ref_group(const Case *c, int i, double *lr_mult, double *wd) {
  *lr_mult = 1, *wd = c->cfg.weight_decay;
  if (!c->groups) return;
  if (strncmp(names[i], "head.", 5) == 0)
    *lr_mult = 0.1, *wd = 0.1;
  else if (shapes[i].ndim <= 1)
    *wd = 0;
}

static void run_reference(const Case *c, const SamxSafetensors *st, State *out) {
  double *p[N_PARAMS], *m[N_PARAMS], *v[N_PARAMS], *g[N_PARAMS];
  for (int i = 0; i < N_PARAMS; i++) {
    int64_t n = numel_of(i);
    p[i] = (double *)calloc((size_t)n, sizeof(double));
    m[i] = (double *)calloc((size_t)n, sizeof(double));
    v[i] = (double *)calloc((size_t)n, sizeof(double));
    g[i] = (double *)calloc((size_t)n, sizeof(double));
    float *init = is_frozen(i) ? NULL : ref_tensor(st, "init.%s%s", names[i], "");
    for (int64_t k = 0; k < n; k++) p[i][k] = init ? init[k] : (double)(k + 1);
    free(init);
  }
  const SamxOptimConfig *cfg = &c->cfg;
  for (int t = 1; t <= STEPS; t++) {
    double sumsq = 0;
    for (int i = 0; i < N_PARAMS; i++) {
      if (is_frozen(i)) continue;
      char step[16];
      snprintf(step, sizeof step, "%d", t - 1);
      float *gf = ref_tensor(st, "grad.%s.%s", step, names[i]);
      for (int64_t k = 0; k < numel_of(i); k++) g[i][k] = gf ? gf[k] : 0, sumsq += g[i][k] * g[i][k];
      free(gf);
    }
    double clip = c->clip > 0 ? c->clip / (sqrt(sumsq) + 1e-6) : 1;
    double lr = c->schedule ? ref_lr(t - 1) : c->lr;
    for (int i = 0; i < N_PARAMS; i++) {
      if (is_frozen(i)) continue;
      double lr_mult, wd;
      ref_group(c, i, &lr_mult, &wd);
      double a = lr * lr_mult;
      for (int64_t k = 0; k < numel_of(i); k++) {
        double gk = g[i][k] * (clip < 1 ? clip : 1);
        if (cfg->kind == SAMX_OPTIM_SGD) {
          gk += wd * p[i][k];
          if (cfg->momentum != 0) {
            m[i][k] = t == 1 ? gk : cfg->momentum * m[i][k] + (1 - cfg->dampening) * gk;
            gk = cfg->nesterov ? gk + cfg->momentum * m[i][k] : m[i][k];
          }
          p[i][k] -= a * gk;
          continue;
        }
        if (cfg->kind == SAMX_OPTIM_ADAMW)
          p[i][k] *= 1 - a * wd;
        else
          gk += wd * p[i][k];
        m[i][k] = cfg->beta1 * m[i][k] + (1 - cfg->beta1) * gk;
        v[i][k] = cfg->beta2 * v[i][k] + (1 - cfg->beta2) * gk * gk;
        double mhat = m[i][k] / (1 - pow(cfg->beta1, t)), vhat = v[i][k] / (1 - pow(cfg->beta2, t));
        p[i][k] -= a * mhat / (sqrt(vhat) + cfg->eps);
      }
    }
  }
  memset(out, 0, sizeof *out);
  for (int i = 0; i < N_PARAMS; i++) {
    int64_t n = numel_of(i);
    int has_m = !is_frozen(i) && !(cfg->kind == SAMX_OPTIM_SGD && cfg->momentum == 0);
    int has_v = !is_frozen(i) && cfg->kind != SAMX_OPTIM_SGD;
    out->param[i] = (float *)malloc((size_t)n * sizeof(float));
    if (has_m) out->m[i] = (float *)malloc((size_t)n * sizeof(float));
    if (has_v) out->v[i] = (float *)malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++) {
      out->param[i][k] = (float)p[i][k];
      if (has_m) out->m[i][k] = (float)m[i][k];
      if (has_v) out->v[i][k] = (float)v[i][k];
    }
    free(p[i]), free(m[i]), free(v[i]), free(g[i]);
  }
}

static State torch_state(const Case *c, const SamxSafetensors *st) {
  State s = {0};
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) continue;
    char key[256];
    s.param[i] = ref_tensor(st, "%s.param.%s", c->name, names[i]);
    snprintf(key, sizeof key, "%s.m.%s", c->name, names[i]);
    if (samx_st_find(st, key)) s.m[i] = ref_tensor(st, "%s.m.%s", c->name, names[i]);
    snprintf(key, sizeof key, "%s.v.%s", c->name, names[i]);
    if (samx_st_find(st, key)) s.v[i] = ref_tensor(st, "%s.v.%s", c->name, names[i]);
  }
  return s;
}

static void compare_buffer(const char *what, const char *label, const char *name, const float *got,
                           const float *want, int64_t n, double tol) {
  if (!got || !want) {
    CHECK(!got && !want, "%s %s %s: state present on one side only", what, label, name);
    return;
  }
  double e = samx_test_max_rel(got, want, n);
  CHECK(e <= tol, "%s %s %s: max rel err %.3g > %.3g", what, label, name, e, tol);
}

// Trainable parameters and state of `got` against `want`; the frozen parameter must be untouched.
static void compare_state(const char *what, const State *got, const State *want, double tol) {
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) {
      float expect[3] = {1, 2, 3};
      CHECK(memcmp(got->param[i], expect, sizeof expect) == 0, "%s: frozen parameter changed", what);
      continue;
    }
    compare_buffer(what, "param", names[i], got->param[i], want->param[i], numel_of(i), tol);
    compare_buffer(what, "exp_avg/momentum", names[i], got->m[i], want->m[i], numel_of(i), tol);
    compare_buffer(what, "exp_avg_sq", names[i], got->v[i], want->v[i], numel_of(i), tol);
  }
}

static void check_case(const Case *c, const SamxSafetensors *st, int have_gpu) {
  int before = samx_test_failed;
  State eng, ref, tor;
  run_engine(c, samx_cpu(), st, &eng);
  run_reference(c, st, &ref);
  tor = torch_state(c, st);
  compare_state(c->name, &eng, &ref, 1e-5);
  char what[128];
  snprintf(what, sizeof what, "%s vs torch", c->name);
  compare_state(what, &eng, &tor, 1e-5);
  // The parameters must have moved, or the comparisons above prove nothing.
  float *init = ref_tensor(st, "init.%s%s", names[0], "");
  CHECK(init && samx_test_max_rel(eng.param[0], init, numel_of(0)) > 1e-3, "%s: parameters did not move", c->name);
  free(init);
  if (have_gpu) {
    State gpu;
    run_engine(c, (SamxDevice){SAMX_CUDA, 0}, st, &gpu);
    snprintf(what, sizeof what, "%s cuda vs cpu", c->name);
    compare_state(what, &gpu, &eng, 1e-6);
    state_free(&gpu);
  }
  printf("%s %s (10 steps vs double reference and torch.optim%s)\n", samx_test_failed == before ? "PASS" : "FAIL",
         c->name, have_gpu ? ", cuda vs cpu" : "");
  state_free(&eng);
  state_free(&ref);
  state_free(&tor);
}

// clip_grad_norm_ on the first gradients: the norm and the clipped gradients, active and inactive.
static void check_clip(const SamxSafetensors *st, const char *name, float max_norm, SamxDevice dev) {
  SamxParams p;
  declare(&p, dev, st);
  set_grads(&p, st, 0);
  float norm = samx_clip_grad_norm(&p, max_norm);
  float *want_norm = ref_tensor(st, "%s.norm%s", name, "");
  double sumsq = 0;
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) continue;
    float *g = ref_tensor(st, "grad.0.%s%s", names[i], "");
    for (int64_t k = 0; k < numel_of(i); k++) sumsq += (double)g[k] * g[k];
    free(g);
  }
  CHECK(want_norm && fabs(norm - want_norm[0]) <= 1e-6 * want_norm[0], "%s: norm %.9g, torch %.9g", name, norm,
        want_norm ? want_norm[0] : -1);
  CHECK(fabs(norm - sqrt(sumsq)) <= 1e-6 * sqrt(sumsq), "%s: norm %.9g, double reference %.9g", name, norm,
        sqrt(sumsq));
  double scale = max_norm / (sqrt(sumsq) + 1e-6);
  for (int i = 0; i < N_PARAMS; i++) {
    if (is_frozen(i)) continue;
    float *got = (float *)malloc((size_t)numel_of(i) * sizeof(float));
    samx_tensor_read(p.list[i]->grad, got);
    float *want = ref_tensor(st, "%s.grad.%s", name, names[i]);
    float *orig = ref_tensor(st, "grad.0.%s%s", names[i], "");
    double e = want ? samx_test_max_rel(got, want, numel_of(i)) : INFINITY, e_ref = 0;
    for (int64_t k = 0; k < numel_of(i); k++) {
      double r = orig[k] * (scale < 1 ? scale : 1);
      double d = fabs(got[k] - r) / (1 + fabs(r));
      if (d > e_ref) e_ref = d;
    }
    CHECK(e <= 1e-6 && e_ref <= 1e-6, "%s %s: clipped gradient off by %.3g (torch), %.3g (double)", name, names[i], e,
          e_ref);
    free(got), free(want), free(orig);
  }
  free(want_norm);
  samx_params_free(&p);
}

static void check_clip_edge_cases(void) {
  SamxParams p;
  samx_params_init(&p);
  SamxTensor *w = samx_param(&p, "w", SHAPE(2), 1);
  samx_params_allocate(&p, samx_cpu());
  float g[2] = {3, 4}, got[2];
  samx_tensor_write(w->grad, g);
  CHECK(samx_clip_grad_norm(&p, 0) == 5.0f, "max_norm 0 must only measure");
  samx_tensor_read(w->grad, got);
  CHECK(got[0] == 3 && got[1] == 4, "max_norm 0 changed the gradient");
  CHECK(samx_clip_grad_norm(&p, 6.0f) == 5.0f, "norm of (3, 4)");
  samx_tensor_read(w->grad, got);
  CHECK(got[0] == 3 && got[1] == 4, "a norm below the limit must leave the gradient as it is");
  CHECK(samx_clip_grad_norm(&p, 2.5f) == 5.0f, "norm of (3, 4)");
  samx_tensor_read(w->grad, got);
  CHECK(fabsf(got[0] - 1.5f) < 1e-6f && fabsf(got[1] - 2.0f) < 1e-6f, "clip (3, 4) to 2.5: got (%g, %g)", got[0],
        got[1]);
  g[0] = NAN;
  samx_tensor_write(w->grad, g);
  CHECK(isnan(samx_clip_grad_norm(&p, 1.0f)), "a NaN gradient must give a NaN norm");
  samx_params_free(&p);
}

// The reduction is deterministic and exact to double rounding over many elements (several CUDA blocks).
static void check_sumsq_large(int have_gpu) {
  int64_t n = 1000003;
  float *x = (float *)malloc((size_t)n * sizeof(float));
  uint64_t state = 42;
  samx_test_fill_uniform(x, n, -2, 2, &state);
  double want = 0;
  for (int64_t i = 0; i < n; i++) want += (double)x[i] * x[i];
  double got = samx_cpu_optim_sumsq(x, n);
  CHECK(fabs(got - want) <= 1e-12 * want, "cpu sumsq %.17g, naive %.17g", got, want);
  CHECK(samx_cpu_optim_sumsq(x, n) == got, "cpu sumsq not deterministic");
#ifdef SAMX_WITH_CUDA
  if (have_gpu) {
    SamxDevice gpu = {SAMX_CUDA, 0};
    samx_device_activate(gpu);
    float *d = (float *)samx_dev_malloc(gpu, (size_t)n * sizeof(float));
    samx_memcpy(gpu, d, samx_cpu(), x, (size_t)n * sizeof(float));
    double g1 = samx_cuda_optim_sumsq(d, n), g2 = samx_cuda_optim_sumsq(d, n);
    CHECK(fabs(g1 - want) <= 1e-12 * want, "cuda sumsq %.17g, naive %.17g", g1, want);
    CHECK(g1 == g2, "cuda sumsq not deterministic: %.17g then %.17g", g1, g2);
    samx_cuda_optim_scale(d, 0.5f, n);
    float *back = (float *)malloc((size_t)n * sizeof(float));
    samx_memcpy(samx_cpu(), back, gpu, d, (size_t)n * sizeof(float));
    int same = 1;
    for (int64_t i = 0; i < n; i++) same &= back[i] == x[i] * 0.5f;
    CHECK(same, "cuda scale");
    free(back);
    samx_dev_free(gpu, d);
  }
#endif
  free(x);
}

static void check_lr(const SamxSchedule *s, int64_t step, double want) {
  float got = samx_lr_at(s, step);
  CHECK(fabs(got - want) <= 1e-6 * (1 + fabs(want)), "schedule %s (warm-up %lld, total %lld) step %lld: lr %.9g, "
        "expected %.9g", samx_schedule_kind_name(s->kind), (long long)s->warmup_steps, (long long)s->total_steps,
        (long long)step, got, want);
}

static void check_schedules(void) {
  SamxSchedule constant = {SAMX_SCHED_CONSTANT, 0.1f, 0, 0, 100};
  check_lr(&constant, 0, 0.1), check_lr(&constant, 1000, 0.1);
  SamxSchedule constant_warm = {SAMX_SCHED_CONSTANT, 0.1f, 0, 4, 100};
  check_lr(&constant_warm, 0, 0.025), check_lr(&constant_warm, 1, 0.05), check_lr(&constant_warm, 3, 0.1);
  check_lr(&constant_warm, 4, 0.1), check_lr(&constant_warm, 500, 0.1);
  SamxSchedule linear = {SAMX_SCHED_LINEAR, 1.0f, 0, 0, 10};
  check_lr(&linear, 0, 1.0), check_lr(&linear, 5, 0.5), check_lr(&linear, 9, 0.1), check_lr(&linear, 10, 0);
  check_lr(&linear, 20, 0);
  SamxSchedule linear_warm = {SAMX_SCHED_LINEAR, 1.0f, 0.1f, 2, 12};
  check_lr(&linear_warm, 0, 0.5), check_lr(&linear_warm, 1, 1.0), check_lr(&linear_warm, 2, 1.0);
  check_lr(&linear_warm, 7, 0.55), check_lr(&linear_warm, 12, 0.1), check_lr(&linear_warm, 13, 0.1);
  SamxSchedule cosine = {SAMX_SCHED_COSINE, 1.0f, 0, 0, 10};
  check_lr(&cosine, 0, 1.0), check_lr(&cosine, 2, 0.904508497), check_lr(&cosine, 5, 0.5);
  check_lr(&cosine, 8, 0.095491503), check_lr(&cosine, 10, 0), check_lr(&cosine, 11, 0);
  SamxSchedule cosine_warm = {SAMX_SCHED_COSINE, 1.0f, 0.1f, 5, 15};
  check_lr(&cosine_warm, 0, 0.2), check_lr(&cosine_warm, 4, 1.0), check_lr(&cosine_warm, 5, 1.0);
  check_lr(&cosine_warm, 10, 0.55), check_lr(&cosine_warm, 15, 0.1), check_lr(&cosine_warm, 100, 0.1);
  SamxScheduleKind k;
  CHECK(samx_schedule_kind_parse("cosine", &k) == 0 && k == SAMX_SCHED_COSINE, "parse cosine");
  CHECK(samx_schedule_kind_parse("exp", &k) == -1 && strstr(samx_last_error(), "'exp'"), "parse exp: %s",
        samx_last_error());
  SamxOptimKind o;
  CHECK(samx_optim_kind_parse("sgd", &o) == 0 && o == SAMX_OPTIM_SGD, "parse sgd");
  CHECK(samx_optim_kind_parse("lion", &o) == -1 && strstr(samx_last_error(), "'lion'"), "parse lion: %s",
        samx_last_error());
}

static SamxOptimConfig sgd_dampened(void) {
  SamxOptimConfig c = samx_sgd_config(0.9, 0, 0.01);
  c.dampening = 0.3;
  return c;
}

int main(void) {
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char dir[] = "/tmp/samx_optim_XXXXXX", path[512], cmd[1024];
  if (!mkdtemp(dir)) {
    printf("FAIL cannot create a temporary directory\n");
    return 1;
  }
  snprintf(path, sizeof path, "%s/ref.safetensors", dir);
  snprintf(cmd, sizeof cmd, "%s tests/engine/ref_optim.py %s", py, path);
  SamxSafetensors st;
  if (system(cmd) != 0 || samx_st_open(&st, path) != 0) {
    printf("FAIL could not produce the torch reference (%s): %s\n", cmd, samx_last_error());
    return 1;
  }
  int have_gpu = samx_cuda_device_count() > 0;
  if (!have_gpu) printf("SKIP cuda vs cpu checks: no CUDA device\n");

  const Case cases[] = {
      {"adamw", samx_adamw_config(0.05), 0.01f, 0, 0, 0},
      {"adamw_groups", samx_adamw_config(0.05), 0.01f, 1, 0, 0},
      {"adamw_sched", samx_adamw_config(0.05), 0, 0, 1, 0},
      {"adamw_clip", samx_adamw_config(0.05), 0.01f, 0, 0, 0.5f},
      {"adam", samx_adam_config(0.01), 0.01f, 0, 0, 0},
      {"sgd_momentum", samx_sgd_config(0.9, 0, 0.01), 0.05f, 0, 0, 0},
      {"sgd_nesterov", samx_sgd_config(0.9, 1, 0.01), 0.05f, 0, 0, 0},
      {"sgd_plain", samx_sgd_config(0, 0, 0), 0.05f, 0, 0, 0},
      {"sgd_dampening", sgd_dampened(), 0.05f, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_case(&cases[i], &st, have_gpu);
  check_clip(&st, "clip_active", 0.5f, samx_cpu());
  check_clip(&st, "clip_inactive", 100.0f, samx_cpu());
  if (have_gpu) {
    check_clip(&st, "clip_active", 0.5f, (SamxDevice){SAMX_CUDA, 0});
    check_clip(&st, "clip_inactive", 100.0f, (SamxDevice){SAMX_CUDA, 0});
  }
  check_clip_edge_cases();
  check_sumsq_large(have_gpu);
  check_schedules();

  samx_st_close(&st);
  unlink(path);
  rmdir(dir);
  return samx_test_summary();
}
