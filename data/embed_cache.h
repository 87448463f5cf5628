// Embedding cache: the frozen image encoder's output for the samples of a dataset, computed once by
// `samx embed` and read by training instead of running the encoder every step.
//
// HDF5 file, schema "samx-embeddings" version 1:
//   /embeddings  [N, C, h, w]  float32, or float16 / bfloat16: 16-bit floats described by their IEEE
//                              bit fields, so HDF5 converts them on read (h5py shows f16 as float16
//                              and bf16 as float32); chunked one sample per chunk
//   /index       [N] int64     dataset row of each embedding (distinct, any order)
//   /image_info  [N, 4] int64  orig_h, orig_w, input_h, input_w (SamImageInfo: SAM's postprocessing
//                              needs the original and resized-before-padding sizes)
// Root attributes: schema, version, dtype ("f32" | "f16" | "bf16"), checkpoint [path, sha256],
// dataset [path, sha256], model_config (the SAM config as JSON), input_size (the encoder's
// img_size), split ("train" | "val" | "test" | "all"), created_by.
//
// The writer goes through "<path>.tmp.<pid>", renamed on finish. The reader validates everything
// at open and refuses a cache made from another checkpoint: training must not mix embeddings of
// one encoder with a decoder fine-tuned on another.
#ifndef SAMX_DATA_EMBED_CACHE_H
#define SAMX_DATA_EMBED_CACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_EMBED_SCHEMA "samx-embeddings"
#define SAMX_EMBED_VERSION 1

typedef enum { SAMX_EMBED_F32 = 0, SAMX_EMBED_F16 = 1, SAMX_EMBED_BF16 = 2 } SamxEmbedDtype;
const char *samx_embed_dtype_name(SamxEmbedDtype d);  // "f32", "f16", "bf16"
int samx_embed_dtype_parse(const char *name);         // -> SamxEmbedDtype, or -1

// ---- writing ----
typedef struct {
  int64_t c, h, w;  // one embedding is [C, h, w]
  SamxEmbedDtype dtype;
  const char *checkpoint_path, *checkpoint_sha256;  // sha256: 64 hex digits (required)
  const char *dataset_path, *dataset_sha256;        // sha256 may be NULL: "" (unknown)
  const char *model_config;                         // JSON text, or NULL: "{}"
  int64_t input_size;                               // encoder img_size
  const char *split;                                // NULL: "all"
  int gzip_level;                                   // 0: uncompressed (embeddings compress poorly)
} SamxEmbedSpec;

typedef struct SamxEmbedWriter SamxEmbedWriter;

SamxEmbedWriter *samx_embed_create(const char *path, const SamxEmbedSpec *spec);
// emb: C*h*w float32 (rounded to nearest-even into f16 / bf16); info: orig_h, orig_w, input_h, input_w.
int samx_embed_append(SamxEmbedWriter *w, int64_t row, const float *emb, const int64_t info[4]);
int64_t samx_embed_writer_count(const SamxEmbedWriter *w);
int samx_embed_finish(SamxEmbedWriter *w);  // writes /index and /image_info, renames; frees w
void samx_embed_abort(SamxEmbedWriter *w);  // deletes the temporary file; frees w

// ---- reading ----
typedef struct SamxEmbedCache SamxEmbedCache;

// Opens and validates path. want_checkpoint_sha256 (NULL: not checked) must equal the recorded
// checkpoint sha256, else NULL with an error naming both checkpoints. Returns NULL with
// samx_last_error naming the file and dataset / attribute at fault.
SamxEmbedCache *samx_embed_open(const char *path, const char *want_checkpoint_sha256);
void samx_embed_close(SamxEmbedCache *c);
const char *samx_embed_path(const SamxEmbedCache *c);
int64_t samx_embed_n(const SamxEmbedCache *c);
void samx_embed_shape(const SamxEmbedCache *c, int64_t *ch, int64_t *h, int64_t *w);
SamxEmbedDtype samx_embed_dtype(const SamxEmbedCache *c);
int64_t samx_embed_input_size(const SamxEmbedCache *c);
const int64_t *samx_embed_index(const SamxEmbedCache *c);       // [N] dataset rows
const int64_t *samx_embed_image_info(const SamxEmbedCache *c);  // [N, 4]
const char *samx_embed_checkpoint_path(const SamxEmbedCache *c);
const char *samx_embed_checkpoint_sha256(const SamxEmbedCache *c);
const char *samx_embed_dataset_path(const SamxEmbedCache *c);
const char *samx_embed_dataset_sha256(const SamxEmbedCache *c);
const char *samx_embed_model_config(const SamxEmbedCache *c);
const char *samx_embed_split(const SamxEmbedCache *c);
// Position of dataset row `row` in the cache, or -1 when it was not embedded.
int64_t samx_embed_find(const SamxEmbedCache *c, int64_t row);
// Embedding at position i (0 <= i < N) as C*h*w float32. Returns 0 or -1.
int samx_embed_read(SamxEmbedCache *c, int64_t i, float *out);
// Embedding of dataset row `row`; -1 with an error when the row is not in the cache.
int samx_embed_read_row(SamxEmbedCache *c, int64_t row, float *out, int64_t info[4]);

#ifdef __cplusplus
}
#endif
#endif
