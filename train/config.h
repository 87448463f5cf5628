// `samx train` configuration: an INI file (libinih) plus --set section.key=value overrides, checked
// against one table of keys (train/config.c) that also gives every key's default and meaning
// (`samx train --help-config`). An unknown section or key, or a value of the wrong type or out of
// range, is an error naming the file, line and key.
#ifndef SAMX_TRAIN_CONFIG_H
#define SAMX_TRAIN_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "engine/device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_CFG_STR 512

// Enumerated values are stored as their index in the key's choice list (given here in that order).
enum { SAMX_METHOD_SAMFT = 0, SAMX_METHOD_MCL = 1, SAMX_METHOD_SEQSAM = 2, SAMX_METHOD_P2SAM = 3, SAMX_METHOD_FEWSHOT = 4 };  // sam-ft|mcl|seqsam|p2sam|fewshot
enum { SAMX_SELECT_STRIDED = 0, SAMX_SELECT_RANDOM = 1, SAMX_SELECT_FIRST = 2 };  // strided|random|first
enum { SAMX_MATCH_HUNGARIAN = 0, SAMX_MATCH_IDENTITY = 1 };                       // hungarian|identity
enum { SAMX_MCL_DICE_MASK = 0, SAMX_MCL_DICE_ROWS = 1 };                          // mask|rows
enum { SAMX_BEST_GED = 0, SAMX_BEST_DAVG = 1, SAMX_BEST_DMAX = 2, SAMX_BEST_HMIOU = 3, SAMX_BEST_LOSS = 4 };
enum { SAMX_PROGRESS_AUTO = 0, SAMX_PROGRESS_BAR = 1, SAMX_PROGRESS_LINES = 2, SAMX_PROGRESS_NONE = 3 };

typedef struct {
  // [run]
  char dir[SAMX_CFG_STR];
  int64_t seed;
  char device[64];
  int precision;  // index of auto|fp32|tf32|bf16 (samx_train_config_choice gives the name)
  int64_t act_mem_mb;
  // [model]
  char checkpoint[SAMX_CFG_STR];
  char arch[32];
  int64_t img_size, patch, enc_dim, enc_depth, enc_heads, enc_mlp, window, prompt_dim, dec_heads, dec_mlp,
      iou_hidden;
  char global_blocks[128];
  int64_t init_seed;
  int train_encoder, train_prompt_encoder, train_decoder;
  // [method]
  int method;
  int64_t masks, eval_masks;
  int select, matching, bptt_logits;
  double cell_init_std;
  // [p2sam]
  int64_t p2sam_stage, p2sam_img_size, p2sam_snapshot_every, p2sam_snapshot_steps;
  int64_t p2sam_crop;  // side of the lesion-centred crop (0: the whole image)
  double p2sam_weights_lr, p2sam_weights_eps, p2sam_weights_decay, p2sam_reg_weight;
  char p2sam_from[SAMX_CFG_STR];
  int p2sam_from_best;
  int p2sam_assemble;  // affine|convex (P2SAM_ASSEMBLE_* of models/p2sam/p2sam.h)
  // [fewshot]
  int64_t fewshot_shots, fewshot_iterations;
  char fewshot_label[256];
  int fewshot_loss;  // ce|dice
  // [loss]
  double dice_eps, bce_weight, multimask_weight;
  int mcl_dice;
  // [data]
  char data[SAMX_CFG_STR];
  char train_split[32], val_split[32];
  char embeddings[SAMX_CFG_STR];
  int64_t box_jitter;
  int64_t train_first;  // -1: the method's default (samx_train_first)
  int shuffle;
  int allow_dataset_mismatch;  // use an embedding cache made from another dataset file
  // [optim]
  int optimizer;  // SamxOptimKind order: adamw|adam|sgd
  double lr, weight_decay, beta1, beta2, eps, momentum, min_lr, clip_norm;
  int schedule;   // SamxScheduleKind order: constant|linear|cosine
  int64_t warmup_steps, batch_size, accum_steps;
  int decay_1d;
  // [train]
  double epochs;
  int64_t steps, val_every, val_samples, save_every, max_bad_steps;
  int best_metric, save_frozen;
  // [log]
  int64_t log_every;
  double print_seconds;
  int progress;
  // [debug]
  char inject_nan_steps[256];
  int64_t step_sleep_ms;
  // data parallelism (contracts §8; train/data_parallel.h)
  int64_t zero;             // [optim] zero: 1 = ZeRO-1 optimizer-state sharding
  double bucket_mb;         // [optim] bucket_mb: all-reduce bucket size
  double step_timeout;      // [train] step_timeout: seconds without progress before the job is aborted
  int64_t inject_nan_rank;  // [debug] nan_rank: inject_nan_steps on this rank only (-1: all)
  int overlap;              // [optim] overlap: reduce buckets during the last backward pass
} SamxTrainConfig;

void samx_train_config_defaults(SamxTrainConfig *c);
// Reads an INI file over c. Returns 0, or -1 with samx_last_error() naming path:line and the key.
int samx_train_config_load(SamxTrainConfig *c, const char *path);
// Applies one "section.key=value" override. Returns 0 or -1 (the message names the override).
int samx_train_config_set(SamxTrainConfig *c, const char *assignment);
// Cross-key checks after all sources (required keys, consistent sizes). Returns 0 or -1.
int samx_train_config_validate(const SamxTrainConfig *c);
// Rows of the training split trained on: data.train_first, or its method default when -1 (P2SAM
// stage 2: 500; otherwise 0 = every row).
int64_t samx_train_first(const SamxTrainConfig *c);
// The resolved configuration as INI text (every key, defaults included) or as a JSON object
// {"section": {"key": value}}; caller frees.
char *samx_train_config_ini(const SamxTrainConfig *c);
char *samx_train_config_json(const SamxTrainConfig *c);
// Lists every key with its type, default and meaning.
void samx_train_config_help(FILE *f);
// The text of an enumerated key's value (e.g. the method's name).
const char *samx_train_config_choice(const char *section, const char *key, int index);
// Resolves run.precision (or opts_precision, the --precision override, when not NULL) for device d and
// makes it the default of new contexts (engine/precision.h). Returns 0, or -1 with samx_last_error().
int samx_train_config_precision(const SamxTrainConfig *c, const char *opts_precision, SamxDevice d);
// 1 when `step` is listed in debug.inject_nan_steps.
int samx_train_config_nan_step(const SamxTrainConfig *c, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
