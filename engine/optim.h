// Optimizers over a parameter store (AdamW, Adam, SGD with momentum; torch 1.13 semantics),
// parameter groups, learning-rate schedules and gradient clipping by global norm.
//
// Usage, once per step after the backward passes of all micro-batches:
//   samx_clip_grad_norm(&params, 1.0f);
//   samx_optim_step(&opt, samx_lr_at(&sched, opt.step));
//   samx_params_zero_grad(&params);
//
// Optimizer state (Adam's exp_avg and exp_avg_sq, SGD's momentum buffers) lives in the optimizer's
// own arena, each buffer laid out exactly like params->grad_flat (trainable parameters, declaration
// order, no padding), so state and gradient of a parameter share one offset.
#ifndef SAMX_OPTIM_H
#define SAMX_OPTIM_H

#include <stdint.h>

#include "../kernels/optim.h"
#include "arena.h"
#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

// Hyperparameters. Doubles because torch keeps them as Python floats and computes the per-step
// scalars in double; the kernels get them rounded to f32 once.
typedef struct {
  SamxOptimKind kind;
  double beta1, beta2, eps;     // Adam(W)
  double momentum, dampening;   // SGD (momentum 0: plain SGD, no state)
  int nesterov;                 // SGD; needs momentum > 0 and dampening 0, as in torch
  double weight_decay;          // of the default group
} SamxOptimConfig;

// torch's defaults: betas (0.9, 0.999), eps 1e-8.
SamxOptimConfig samx_adamw_config(double weight_decay);
SamxOptimConfig samx_adam_config(double weight_decay);
SamxOptimConfig samx_sgd_config(double momentum, int nesterov, double weight_decay);

// "adamw", "adam", "sgd" <-> kind. parse returns 0, or -1 with samx_last_error naming the value.
const char *samx_optim_kind_name(SamxOptimKind kind);
int samx_optim_kind_parse(const char *name, SamxOptimKind *out);

typedef int (*SamxParamPredicate)(const SamxTensor *param, void *user);

// A parameter group: the parameters it matches get lr * lr_mult and their own weight decay.
typedef struct {
  char prefix[128];          // name prefix ("" with a predicate)
  SamxParamPredicate match;  // NULL: match by prefix
  void *user;
  double lr_mult, weight_decay;
  double eps;           // Adam(W) epsilon of this group; 0: the optimizer's
  int decoupled_decay;  // 1: AdamW's decoupled weight decay in an Adam optimizer (P²SAM's assembling weights)
} SamxOptimGroup;

#define SAMX_OPTIM_MAX_GROUPS 16

typedef struct {
  SamxOptimConfig cfg;
  SamxParams *params;
  SamxArena state;
  float *m;              // Adam(W) exp_avg or SGD momentum buffer; NULL for plain SGD
  float *v;              // Adam(W) exp_avg_sq; NULL for SGD
  int64_t step;          // steps taken (torch's per-parameter "step"; all parameters step together)
  SamxOptimGroup groups[SAMX_OPTIM_MAX_GROUPS];  // groups[0]: the default (lr_mult 1, cfg.weight_decay)
  int n_groups;
  int *group_of;         // per entry of params->list: its group, -1 for frozen parameters
  int64_t *offset;       // per entry of params->list: offset in grad_flat / m / v, -1 for frozen ones
} SamxOptim;

// params must be allocated. State is zeroed, on the parameters' device.
void samx_optim_init(SamxOptim *o, SamxParams *params, SamxOptimConfig cfg);
void samx_optim_free(SamxOptim *o);

// Adds a group; a parameter belongs to the first group (in the order added) that matches it, else to
// the default group. Returns the group's index.
int samx_optim_add_group(SamxOptim *o, const char *prefix, double lr_mult, double weight_decay);
int samx_optim_add_group_if(SamxOptim *o, SamxParamPredicate match, void *user, double lr_mult,
                            double weight_decay);
// Predicate for the usual "no weight decay on biases and norm scales": tensors of at most 1 dim.
int samx_param_is_1d(const SamxTensor *param, void *unused);
// Number of trainable parameter tensors in group g (for logs and tests).
int samx_optim_group_size(const SamxOptim *o, int g);

// One update of every trainable parameter from params->grad_flat with base learning rate lr
// (each group uses lr * lr_mult). Gradients are left as they are.
void samx_optim_step(SamxOptim *o, float lr);

// The same update restricted to the trainable values in [lo, hi) of the flat layout (a ZeRO-1 shard):
// the state buffers m, v (NULL where the kind keeps none) hold that range only (m[0] is value lo), and
// g is the shard's gradient (g[0] is value lo). Counts a step like samx_optim_step.
void samx_optim_step_range(SamxOptim *o, float lr, int64_t lo, int64_t hi, float *m, float *v, const float *g);

// ---- learning-rate schedules ----
typedef enum { SAMX_SCHED_CONSTANT = 0, SAMX_SCHED_LINEAR = 1, SAMX_SCHED_COSINE = 2 } SamxScheduleKind;

typedef struct {
  SamxScheduleKind kind;
  float base_lr;
  float min_lr;           // floor reached at total_steps by linear and cosine decay
  int64_t warmup_steps;   // 0: none
  int64_t total_steps;    // end of the decay (warm-up included); later steps stay at min_lr
} SamxSchedule;

// Learning rate for 0-based step `step` (the number of optimizer steps already taken).
// Warm-up: base_lr * (step + 1) / warmup_steps for step < warmup_steps, so the first step already
// moves. Afterwards, with t = (step - warmup) / (total - warmup) clamped to [0, 1]:
//   constant: base_lr;  linear: min + (base - min) (1 - t);  cosine: min + (base - min) (1 + cos(pi t)) / 2.
float samx_lr_at(const SamxSchedule *s, int64_t step);
const char *samx_schedule_kind_name(SamxScheduleKind kind);
int samx_schedule_kind_parse(const char *name, SamxScheduleKind *out);

// ---- clipping ----
// Global L2 norm of all trainable gradients (params->grad_flat); when max_norm / (norm + 1e-6) < 1,
// scales every gradient by that factor (torch.nn.utils.clip_grad_norm_). Returns the norm before
// clipping (NaN or inf when a gradient is; then nothing is scaled). max_norm <= 0 only measures.
float samx_clip_grad_norm(SamxParams *p, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
