// torch.save checkpoints (.pth: a zip holding data.pkl and the storages): samx_torch_load (libzip +
// the restricted unpickler + the storage views), then sam_load on the same file, the path of
// `samx segment/infer/train --checkpoint x.pth` (config read off the shapes, names mapped).
#include <stdint.h>

#include "common.h"
#include "engine/torch_ckpt.h"
#include "models/sam/sam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const char *path = fuzz_write_file(0, ".pth", data, n);
  SamxTorchCkpt ck;
  if (samx_torch_load(&ck, path) == 0) {
    volatile unsigned sink = 0;
    for (int i = 0; i < ck.n; i++) {
      const SamxSTEntry *e = &ck.entries[i];
      if (e->nbytes) sink += ((const uint8_t *)e->data)[e->nbytes - 1];
      sink += samx_torch_find(&ck, e->name) == e;
    }
    (void)sink;
    samx_torch_free(&ck);
    SamModel m;
    if (sam_load(&m, path, samx_cpu(), 0, NULL) == 0) sam_free(&m);
  }
  return 0;
}
