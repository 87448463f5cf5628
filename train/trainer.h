// The training loop behind `samx train`: model and data set-up, the step (forward, loss, backward,
// clipping, optimizer), validation, checkpoints, resumption, signals and the logs.
//
// Run directory (train.dir):
//   config.ini                     the resolved configuration (every key)
//   log.jsonl                      one JSON object per logged step, and one per validation
//   checkpoints/latest.safetensors every train.save_every steps and on SIGTERM / SIGUSR1 / SIGINT / SIGHUP
//   checkpoints/best.safetensors   at the best validation value of train.best_metric
//   checkpoints/final.safetensors  at the end
//   sam.safetensors                the SAM part of the final model (sam_load reads it: the base of
//                                  the next run and the checkpoint of `samx embed`)
//   curves.svg                     training loss and validation metrics against the step
// Checkpoints are written to a temporary file, fsynced and renamed; they hold the parameters,
// optimizer state, step, RNG position and, as JSON metadata, the method, SAM's architecture, the
// resolved configuration and the loader position (models/method.h: sam_method_load).
#ifndef SAMX_TRAIN_TRAINER_H
#define SAMX_TRAIN_TRAINER_H

#include <stdint.h>

#include "engine/dist.h"
#include "models/sam/sam_image.h"
#include "train/config.h"

#ifdef __cplusplus
extern "C" {
#endif

// Exit statuses of `samx train` (a requeue script resubmits on 143 and 138).
enum {
  SAMX_TRAIN_EXIT_OK = 0,
  SAMX_TRAIN_EXIT_ERROR = 1,      // bad configuration, data or checkpoint (one message on stderr)
  SAMX_TRAIN_EXIT_USAGE = 2,
  SAMX_TRAIN_EXIT_NONFINITE = 3,  // train.max_bad_steps non-finite steps in a row (no checkpoint written)
  SAMX_TRAIN_EXIT_SIGHUP = 129,   // checkpoint saved after SIGHUP (terminal or ssh session closed)
  SAMX_TRAIN_EXIT_SIGINT = 130,   // checkpoint saved at the step boundary after SIGINT
  SAMX_TRAIN_EXIT_SIGUSR1 = 138,  // checkpoint saved after SIGUSR1 (Slurm's --signal warning): requeue
  SAMX_TRAIN_EXIT_SIGTERM = 143,  // checkpoint saved after SIGTERM (preemption): requeue
};

typedef struct {
  const char *resume;  // NULL: fresh run; "auto": the newest complete checkpoint of the run (fresh if none); else a path
  int force;           // start over in a directory that holds a run
  const char *device;  // overrides [run] device when not NULL
  const char *precision;  // overrides [run] precision when not NULL
  int quiet;           // no progress output (errors only)
  const SamxLaunchArgs *launch;  // explicit --rank/--world-size/...; NULL: from the environment (engine/dist.h)
} SamxTrainOptions;

// Helpers shared with train/fewshot_train.c.
// mkdir -p: 0, or -1 with an error naming the directory.
int samx_mkdir_p(const char *path);
// Nearest-neighbour label at the low-res logits' pixels: pixel (y, x) of the L x L map covers the
// encoder frame around ((y + 0.5) S / L, ...); outside the resized image (the padding) it is 0.
void samx_lowres_label(const uint8_t *mask, const SamImageInfo *info, int S, int64_t L, float *out);

// Signals (SIGTERM, SIGUSR1, SIGINT, SIGHUP) noted by a handler and acted upon at the next step
// boundary: install (clears any noted one), the signal noted (0: none), its exit status.
void samx_train_signals_install(void);
int samx_train_signal(void);
int samx_train_signal_status(int sig);

// Returns the exit status (SAMX_TRAIN_EXIT_*); errors are printed to stderr.
int samx_train_run(const SamxTrainConfig *cfg, const SamxTrainOptions *opts);

#ifdef __cplusplus
}
#endif
#endif
