#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops_common.h"

SamxOptimConfig samx_adamw_config(double weight_decay) {
  SamxOptimConfig c = {0};
  c.kind = SAMX_OPTIM_ADAMW;
  c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
  c.weight_decay = weight_decay;
  return c;
}

SamxOptimConfig samx_adam_config(double weight_decay) {
  SamxOptimConfig c = samx_adamw_config(weight_decay);
  c.kind = SAMX_OPTIM_ADAM;
  return c;
}

SamxOptimConfig samx_sgd_config(double momentum, int nesterov, double weight_decay) {
  SamxOptimConfig c = {0};
  c.kind = SAMX_OPTIM_SGD;
  c.momentum = momentum;
  c.nesterov = nesterov;
  c.weight_decay = weight_decay;
  return c;
}

static const char *const optim_names[] = {"adamw", "adam", "sgd"};

const char *samx_optim_kind_name(SamxOptimKind kind) {
  return (unsigned)kind < 3 ? optim_names[kind] : "?";
}

int samx_optim_kind_parse(const char *name, SamxOptimKind *out) {
  for (int k = 0; k < 3; k++)
    if (strcmp(name, optim_names[k]) == 0) {
      *out = (SamxOptimKind)k;
      return 0;
    }
  return samx_fail("optimizer '%s': expected adamw, adam or sgd", name);
}

static int group_matches(const SamxOptimGroup *g, const SamxTensor *t) {
  if (g->match) return g->match(t, g->user);
  return strncmp(t->name, g->prefix, strlen(g->prefix)) == 0;
}

// Only parameters still in the default group can join a new group: the first match wins.
static int add_group(SamxOptim *o, SamxOptimGroup g) {
  SAMX_ASSERT(o->n_groups < SAMX_OPTIM_MAX_GROUPS, "optimizer: more than %d parameter groups",
              SAMX_OPTIM_MAX_GROUPS);
  int index = o->n_groups++;
  o->groups[index] = g;
  for (int i = 0; i < o->params->n; i++)
    if (o->group_of[i] == 0 && group_matches(&g, o->params->list[i])) o->group_of[i] = index;
  return index;
}

void samx_optim_init(SamxOptim *o, SamxParams *params, SamxOptimConfig cfg) {
  SAMX_ASSERT(params->allocated, "optimizer: parameters must be allocated first");
  SAMX_ASSERT(cfg.kind >= SAMX_OPTIM_ADAMW && cfg.kind <= SAMX_OPTIM_SGD, "optimizer: unknown kind %d",
              (int)cfg.kind);
  SAMX_ASSERT(!cfg.nesterov || (cfg.momentum > 0 && cfg.dampening == 0),
              "optimizer: nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)", cfg.momentum,
              cfg.dampening);
  memset(o, 0, sizeof *o);
  o->cfg = cfg;
  o->params = params;
  o->group_of = (int *)malloc((size_t)(params->n + 1) * sizeof(int));
  o->offset = (int64_t *)malloc((size_t)(params->n + 1) * sizeof(int64_t));
  int64_t off = 0;
  for (int i = 0; i < params->n; i++) {
    int trainable = params->list[i]->requires_grad;
    o->group_of[i] = trainable ? 0 : -1;
    o->offset[i] = trainable ? off : -1;
    if (trainable) off += params->list[i]->numel;
  }
  SAMX_ASSERT(off == params->n_trainable, "optimizer: %lld trainable values, the store says %lld", (long long)off,
              (long long)params->n_trainable);
  int n_buffers = cfg.kind == SAMX_OPTIM_SGD ? (cfg.momentum != 0) : 2;
  size_t bytes = (size_t)params->n_trainable * sizeof(float);
  samx_arena_init(&o->state, "optimizer", params->device, (size_t)n_buffers * (bytes + SAMX_ARENA_ALIGN), 0);
  if (n_buffers >= 1) o->m = (float *)samx_arena_alloc_tagged(&o->state, bytes, SAMX_F32);
  if (n_buffers >= 2) o->v = (float *)samx_arena_alloc_tagged(&o->state, bytes, SAMX_F32);
  if (o->state.capacity) samx_dev_memset0(params->device, o->state.base, o->state.capacity);
  SamxOptimGroup def = {.lr_mult = 1.0, .weight_decay = cfg.weight_decay};
  o->groups[0] = def;
  o->n_groups = 1;
}

void samx_optim_free(SamxOptim *o) {
  samx_arena_free(&o->state);
  free(o->group_of);
  free(o->offset);
  memset(o, 0, sizeof *o);
}

int samx_optim_add_group(SamxOptim *o, const char *prefix, double lr_mult, double weight_decay) {
  SamxOptimGroup g = {.lr_mult = lr_mult, .weight_decay = weight_decay};
  SAMX_ASSERT(strlen(prefix) < sizeof g.prefix, "optimizer group prefix '%s' is too long", prefix);
  strcpy(g.prefix, prefix);
  return add_group(o, g);
}

int samx_optim_add_group_if(SamxOptim *o, SamxParamPredicate match, void *user, double lr_mult,
                            double weight_decay) {
  SamxOptimGroup g = {.match = match, .user = user, .lr_mult = lr_mult, .weight_decay = weight_decay};
  return add_group(o, g);
}

int samx_param_is_1d(const SamxTensor *param, void *unused) { return param->ndim <= 1; }

int samx_optim_group_size(const SamxOptim *o, int g) {
  int n = 0;
  for (int i = 0; i < o->params->n; i++) n += o->group_of[i] == g;
  return n;
}

// The scalars torch computes in Python floats for step t, rounded to f32 once.
static SamxOptimCoef coefficients(const SamxOptimConfig *cfg, const SamxOptimGroup *g, double lr, int64_t t) {
  SamxOptimCoef c = {0};
  c.kind = (int)cfg->kind;
  c.lr = (float)lr;
  c.decay_mul = 1.0f;
  if (cfg->kind == SAMX_OPTIM_SGD) {
    c.l2 = (float)g->weight_decay;
    c.momentum = (float)cfg->momentum;
    c.one_minus_dampening = (float)(1.0 - cfg->dampening);
    c.nesterov = cfg->nesterov;
    c.first = t == 1;
    return c;
  }
  if (cfg->kind == SAMX_OPTIM_ADAMW || g->decoupled_decay)
    c.decay_mul = (float)(1.0 - lr * g->weight_decay);
  else
    c.l2 = (float)g->weight_decay;
  c.beta1 = (float)cfg->beta1;
  c.one_minus_beta1 = (float)(1.0 - cfg->beta1);
  c.beta2 = (float)cfg->beta2;
  c.one_minus_beta2 = (float)(1.0 - cfg->beta2);
  c.step_size = (float)(lr / (1.0 - pow(cfg->beta1, (double)t)));
  c.bc2_sqrt = (float)sqrt(1.0 - pow(cfg->beta2, (double)t));
  c.eps = (float)(g->eps > 0 ? g->eps : cfg->eps);
  return c;
}

void samx_optim_step(SamxOptim *o, float lr) {
  samx_optim_step_range(o, lr, 0, o->params->n_trainable, o->m, o->v, o->params->grad_flat);
}

void samx_optim_step_range(SamxOptim *o, float lr, int64_t lo, int64_t hi, float *m, float *v, const float *g) {
  SamxParams *p = o->params;
  o->step++;
  SamxOptimCoef coef[SAMX_OPTIM_MAX_GROUPS];
  for (int k = 0; k < o->n_groups; k++)
    coef[k] = coefficients(&o->cfg, &o->groups[k], (double)lr * o->groups[k].lr_mult, o->step);
  for (int i = 0; i < p->n; i++) {
    if (o->group_of[i] < 0) continue;
    SamxTensor *t = p->list[i];
    int64_t a = o->offset[i] > lo ? o->offset[i] : lo, b = o->offset[i] + t->numel < hi ? o->offset[i] + t->numel : hi;
    if (a >= b) continue;
    SamxOptimCoef c = coef[o->group_of[i]];
    float *x = samx_f32(t) + (a - o->offset[i]), *mm = m ? m + (a - lo) : NULL, *vv = v ? v + (a - lo) : NULL;
    SAMX_ON_DEVICE(t, samx_cpu_optim_update(c, x, mm, vv, g + (a - lo), b - a),
                   samx_cuda_optim_update(c, x, mm, vv, g + (a - lo), b - a));
    samx_bump_version(t);
  }
}

// ---- schedules ----

static const char *const sched_names[] = {"constant", "linear", "cosine"};

const char *samx_schedule_kind_name(SamxScheduleKind kind) {
  return (unsigned)kind < 3 ? sched_names[kind] : "?";
}

int samx_schedule_kind_parse(const char *name, SamxScheduleKind *out) {
  for (int k = 0; k < 3; k++)
    if (strcmp(name, sched_names[k]) == 0) {
      *out = (SamxScheduleKind)k;
      return 0;
    }
  return samx_fail("schedule '%s': expected constant, linear or cosine", name);
}

float samx_lr_at(const SamxSchedule *s, int64_t step) {
  double base = s->base_lr, floor = s->min_lr;
  if (step < 0) step = 0;
  if (step < s->warmup_steps) return (float)(base * (double)(step + 1) / (double)s->warmup_steps);
  if (s->kind == SAMX_SCHED_CONSTANT) return s->base_lr;
  int64_t span = s->total_steps - s->warmup_steps;
  double t = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
  if (t > 1.0) t = 1.0;
  if (s->kind == SAMX_SCHED_LINEAR) return (float)(floor + (base - floor) * (1.0 - t));
  return (float)(floor + (base - floor) * 0.5 * (1.0 + cos(M_PI * t)));
}

// ---- clipping ----

float samx_clip_grad_norm(SamxParams *p, float max_norm) {
  int64_t n = p->n_trainable;
  if (n == 0) return 0.0f;
  double sumsq = 0;
  SAMX_ON_DEVICE(p, sumsq = samx_cpu_optim_sumsq(p->grad_flat, n), sumsq = samx_cuda_optim_sumsq(p->grad_flat, n));
  float norm = (float)sqrt(sumsq);
  if (max_norm <= 0.0f) return norm;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on an f32 tensor, i.e. reciprocal then multiply.
  float coef = (1.0f / (norm + 1e-6f)) * max_norm;
  if (coef < 1.0f) {
    SAMX_ON_DEVICE(p, samx_cpu_optim_scale(p->grad_flat, coef, n), samx_cuda_optim_scale(p->grad_flat, coef, n));
    for (int i = 0; i < p->n; i++)
      if (p->list[i]->grad) samx_bump_version(p->list[i]->grad);
  }
  return norm;
}
