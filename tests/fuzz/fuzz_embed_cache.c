// Embedding caches (samx-embeddings HDF5, written by `samx embed`, read by training): samx_embed_open
// validates the file, then the first and last embeddings are read by dataset row as training does.
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "data/embed_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const char *path = fuzz_write_file(0, ".h5", data, n);
  if (fuzz_h5_upstream_fails(path, data, n)) return 0;
  SamxEmbedCache *c = samx_embed_open(path, NULL);
  if (!c) {
    fuzz_h5_expect_all_closed("a failed samx_embed_open");
    return 0;
  }
  int64_t ch, h, w, count = samx_embed_n(c);
  samx_embed_shape(c, &ch, &h, &w);
  const int64_t *index = samx_embed_index(c);
  float *buf = ch * h * w <= (1 << 24) ? (float *)malloc((size_t)(ch * h * w) * sizeof(float) + 1) : NULL;
  int64_t info[4];
  for (int64_t i = 0; buf && i < count && i < 2; i++) {
    int64_t at = i ? count - 1 : 0;
    samx_embed_read_row(c, index[at], buf, info);
  }
  if (buf) samx_embed_read_row(c, -1, buf, info);  // a row that is not there is an error, not a read
  free(buf);
  samx_embed_close(c);
  fuzz_h5_expect_all_closed("samx_embed_open/read/close");
  return 0;
}
