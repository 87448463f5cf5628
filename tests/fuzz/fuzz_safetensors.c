// safetensors files: samx_st_open (header JSON, offsets, sizes), every entry converted to f32 and
// its metadata read, then sam_load on the same file (samx's own names and Hugging Face SamModel
// names, the mapping `samx segment --checkpoint model.safetensors` goes through).
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "engine/safetensors.h"
#include "models/sam/sam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const char *path = fuzz_write_file(0, ".safetensors", data, n);
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return 0;
  volatile float sink = 0;
  for (int i = 0; i < st.n; i++) {
    const SamxSTEntry *e = &st.entries[i];
    if (e->numel > (1 << 22)) continue;  // conversion of big tensors is not what is tested
    float *f = samx_st_to_f32(e);
    if (f && e->numel) sink += f[e->numel - 1];
    free(f);
    sink += samx_st_find(&st, e->name) == e;
  }
  sink += samx_st_meta(&st, "format") != NULL;
  (void)sink;
  samx_st_close(&st);
  SamModel m;
  if (sam_load(&m, path, samx_cpu(), 0, NULL) == 0) sam_free(&m);
  return 0;
}
