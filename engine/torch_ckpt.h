// Reading torch.save checkpoints natively (no Python): the zip archive through libzip, data.pkl
// through the restricted unpickler (engine/pickle.h), tensors rebuilt from their storages with
// offset, size and stride, and returned as contiguous host arrays in their stored dtype.
#ifndef SAMX_TORCH_CKPT_H
#define SAMX_TORCH_CKPT_H

#include "safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char *path;
  SamxSTEntry *entries;  // data: malloc'd contiguous copies (owned)
  int n;
} SamxTorchCkpt;

// Loads every tensor of a state dict; a dict nesting it under "model" or "state_dict" is accepted.
// A dict of state dicts (P²SAM's final_weights.pth: {"epoch_10": {...}, ...}) gives entries named
// "outer/inner" in the file's order; a bare tensor (a torch.save of one tensor) one entry named "".
// Returns 0, or -1 with samx_last_error() naming the file and the entry at fault (not a zip,
// forbidden global, non-tensor entry, storage missing or too short, view out of range ...).
int samx_torch_load(SamxTorchCkpt *ck, const char *path);
void samx_torch_free(SamxTorchCkpt *ck);
const SamxSTEntry *samx_torch_find(const SamxTorchCkpt *ck, const char *name);

#ifdef __cplusplus
}
#endif
#endif
