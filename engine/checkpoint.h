// Training checkpoints: parameters, optimizer state, the global step, the context's RNG position and a
// JSON metadata string in ONE safetensors file, written atomically (tmp + fsync + rename).
//
// Layout (all f32 unless stated):
//   <param name>                 every parameter (or only the trainable ones, see trainable_only)
//   __optim__/m/<param name>     Adam(W) exp_avg or SGD momentum buffer of each trainable parameter
//   __optim__/v/<param name>     Adam(W) exp_avg_sq
//   __optim__/step               I64 [1]: optimizer steps taken
//   __train__/global_step        I64 [1]
//   __train__/rng                I64 [2]: ctx seed and offset (the uint64 bit patterns)
//   __metadata__: "format" = "samx-checkpoint", "version" = "1", "optimizer" = adamw|adam|sgd|none,
//                 "params" = all|trainable, "meta" = the caller's JSON string
// Loading validates everything (names, dtypes, shapes, optimizer kind) before it writes anything, so a
// refused file leaves the model as it was. A save/load round trip is bit-exact.
#ifndef SAMX_CHECKPOINT_H
#define SAMX_CHECKPOINT_H

#include <stdint.h>

#include "optim.h"
#include "params.h"
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  SamxParams *params;
  SamxOptim *optim;       // NULL: no optimizer state saved / loaded
  SamxCtx *ctx;           // NULL: no RNG position saved / loaded
  int64_t global_step;    // saved; set by load
  int trainable_only;     // save: skip frozen parameters (they come from the base weights)
} SamxCheckpoint;

// meta_json: a JSON value (usually an object: config, metrics), or NULL. Returns 0 or -1.
int samx_checkpoint_save(const char *path, const SamxCheckpoint *ck, const char *meta_json);
// Loads into ck's params (and optim, ctx when given). *meta_json (when meta_json is not NULL) receives a
// malloc'd copy of the saved metadata string, or NULL when there was none. Returns 0, or -1 with
// samx_last_error() naming the file and the tensor or field at fault.
int samx_checkpoint_load(const char *path, SamxCheckpoint *ck, char **meta_json);

#ifdef __cplusplus
}
#endif
#endif
