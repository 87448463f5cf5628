// `samx train` for method.name = fewshot (contracts §7): the few-shot decoder trained on a handful of
// labelled slices and their cached embeddings (models/fewshot/fewshot.h).
#ifndef SAMX_TRAIN_FEWSHOT_TRAIN_H
#define SAMX_TRAIN_FEWSHOT_TRAIN_H

#include "train/config.h"
#include "train/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// Draws fewshot.shots rows of data.train_split with run.seed (rows.txt in the run directory), makes
// the target embeddings, trains the decoder with Adam for fewshot.iterations steps of
// optim.batch_size shots (all of them when it is at least fewshot.shots; a seeded order otherwise), logs every step (log.jsonl) and the IoU on the shots per label, and writes
// run.dir/checkpoints/final.safetensors (the whole model with the target embeddings: inference needs
// no shots). The cache must come from model.checkpoint and data.path (sha256). checkpoints/latest is
// written every train.save_every steps and on SIGTERM / SIGUSR1 / SIGINT / SIGHUP (then the exit
// status says which); opts->resume ("auto" or a path) continues it with the same shots, bit-exact.
// Returns a SAMX_TRAIN_EXIT_* status; errors are printed.
int samx_fewshot_train(const SamxTrainConfig *c, const SamxTrainOptions *opts);

// The paper's iterations: 50 / 80 / 100 for up to 5 / 20 / more shots.
int64_t samx_fewshot_default_iterations(int64_t shots);

#ifdef __cplusplus
}
#endif
#endif
