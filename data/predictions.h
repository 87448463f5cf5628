// Prediction files: HDF5, schema "samx-predictions" version 1 (docs/contracts.md §4). Written by
// `samx infer`, read by `samx eval`.
//
// Root attributes: schema, version, method, checkpoint, dataset, split. samx writes `checkpoint` and
// `dataset` each as a 1-D array of two variable-length UTF-8 strings: [path, sha256 hex] (the sha256
// may be "" when unknown). `split` is a split name ("train", "val", "test") or "all". The reader is
// strict about the data and lenient about provenance (files from h5py and other tools): only schema,
// version, /index (any integer type) and /pred_masks (uint8, int8 or bool; values 0/1) are required;
// checkpoint/dataset may be a single string, a pair or missing ("" then), method and split missing.
//
// Same conventions as dataset.h: open validates everything up front and loads /index, /pred_scores
// and /quality into memory; masks are read one sample at a time; the writer goes through a temporary
// file renamed on finish.
#ifndef SAMX_DATA_PREDICTIONS_H
#define SAMX_DATA_PREDICTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_PREDICTIONS_SCHEMA "samx-predictions"
#define SAMX_PREDICTIONS_VERSION 1
// The most samx reads of one sample's masks (M x H x W bytes, 1 GiB); N' is bounded as datasets' N.
#define SAMX_PREDICTIONS_MAX_SAMPLE_BYTES ((int64_t)1 << 30)

// ---- reading ----
typedef struct SamxPredictions SamxPredictions;

SamxPredictions *samx_predictions_open(const char *path);
void samx_predictions_close(SamxPredictions *p);
const char *samx_predictions_path(const SamxPredictions *p);
int64_t samx_predictions_n(const SamxPredictions *p);  // N'
int64_t samx_predictions_m(const SamxPredictions *p);  // hypotheses per sample
int64_t samx_predictions_h(const SamxPredictions *p);
int64_t samx_predictions_w(const SamxPredictions *p);
const int64_t *samx_predictions_index(const SamxPredictions *p);  // [N']: dataset row of each prediction
// Hypotheses of prediction i: M*H*W values 0/1. Returns 0 or -1.
int samx_predictions_read_masks(SamxPredictions *p, int64_t i, uint8_t *out);
const float *samx_predictions_scores(const SamxPredictions *p);   // [N'*M], NULL when the file has none
const float *samx_predictions_quality(const SamxPredictions *p);  // [N'], NULL when the file has none
// Root attributes.
const char *samx_predictions_method(const SamxPredictions *p);
const char *samx_predictions_split(const SamxPredictions *p);
const char *samx_predictions_checkpoint_path(const SamxPredictions *p);
const char *samx_predictions_checkpoint_sha256(const SamxPredictions *p);
const char *samx_predictions_dataset_path(const SamxPredictions *p);
const char *samx_predictions_dataset_sha256(const SamxPredictions *p);
// Checks that p fits ds: same H and W, every index within [0, N), no index twice. Returns 0 or -1
// (the message names both files).
int samx_predictions_check_dataset(const SamxPredictions *p, const SamxDataset *ds);

// Checks the dataset sha256 p records against the file data_path (which the caller is about to use
// with p): a mismatch is an error unless allow_mismatch (then a warning on stderr); a file that
// records none gets a warning that it cannot be checked. `who` prefixes the messages. Returns 0 or -1.
int samx_predictions_check_dataset_sha256(const SamxPredictions *p, const char *data_path, int allow_mismatch,
                                          const char *who);

// ---- writing ----
typedef struct {
  int64_t m, h, w;
  const char *method;
  const char *checkpoint_path, *checkpoint_sha256;  // sha256 NULL: "" (unknown)
  const char *dataset_path, *dataset_sha256;
  const char *split;  // "train" / "val" / "test" / "all"
  int with_scores;    // write /pred_scores
  int with_quality;   // write /quality
  int gzip_level;     // 0 means the default (4)
} SamxPredictionsSpec;

typedef struct SamxPredictionsWriter SamxPredictionsWriter;

SamxPredictionsWriter *samx_predictions_create(const char *path, const SamxPredictionsSpec *spec);
// masks: M*H*W (nonzero stored as 1); scores: M values (ignored unless with_scores); quality
// ignored unless with_quality.
int samx_predictions_append(SamxPredictionsWriter *w, int64_t index, const uint8_t *masks, const float *scores,
                            float quality);
int samx_predictions_finish(SamxPredictionsWriter *w);  // frees w
void samx_predictions_abort(SamxPredictionsWriter *w);  // frees w, deletes the temporary file

// sha256 of a file's bytes as 64 lowercase hex digits + NUL. Returns 0 or -1.
int samx_sha256_file(const char *path, char hex[65]);

#ifdef __cplusplus
}
#endif
#endif
