// Dataset files: HDF5, schema "samx-dataset" version 1 (docs/contracts.md §3).
//
// Reading: samx_dataset_open validates the whole schema up front (root attributes, every dataset's
// dtype and rank, that all datasets agree on N, H, W, K) and loads the small per-sample arrays
// (annotator_valid, split, case_id, spacing) into memory; images and masks are read one sample at
// a time. Every failure returns NULL / -1 with samx_last_error() naming the file and the dataset.
//
// Writing: samx_dataset_create writes to "<path>.tmp.<pid>"; samx_dataset_finish writes the
// per-sample arrays and renames it to <path>, so a killed run never leaves a half file under the
// final name. Images and masks go to disk as they are appended (one chunk per sample, gzip).
//
// A handle is not thread-safe; open one handle per thread (or per process).
#ifndef SAMX_DATA_DATASET_H
#define SAMX_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_DATASET_SCHEMA "samx-dataset"
#define SAMX_DATASET_VERSION 1
// Bounds on what a dataset may declare (per-sample arrays are read whole at open): far above any
// medical set (LIDC has 15,096 samples and 4 annotators), far below an allocation that fails.
#define SAMX_DATASET_MAX_ROWS (1 << 24)
#define SAMX_DATASET_MAX_ANNOTATORS 64

typedef enum { SAMX_IMAGE_U8 = 0, SAMX_IMAGE_F32 = 1 } SamxImageDtype;
enum { SAMX_SPLIT_TRAIN = 0, SAMX_SPLIT_VAL = 1, SAMX_SPLIT_TEST = 2, SAMX_SPLIT_COUNT = 3 };
const char *samx_split_name(int split);  // "train", "val", "test", "?"
int samx_split_parse(const char *name);  // "train" / "val" / "validation" / "test" -> split, else -1

typedef struct {
  int64_t n, h, w, k;
  int channels;  // 1 ([N,H,W] images) or 3 ([N,H,W,3])
  SamxImageDtype dtype;
  // Float images: how stored values map to display, from the `window` or `value_range` attribute
  // (display 0 at lo, 255 at hi). U8 images: 0, 255.
  float display_lo, display_hi;
} SamxDatasetInfo;

// ---- reading ----
typedef struct SamxDataset SamxDataset;

SamxDataset *samx_dataset_open(const char *path);
void samx_dataset_close(SamxDataset *ds);
const char *samx_dataset_path(const SamxDataset *ds);
SamxDatasetInfo samx_dataset_info(const SamxDataset *ds);
int64_t samx_dataset_n(const SamxDataset *ds);
int64_t samx_dataset_h(const SamxDataset *ds);
int64_t samx_dataset_w(const SamxDataset *ds);
int64_t samx_dataset_k(const SamxDataset *ds);
int samx_dataset_channels(const SamxDataset *ds);
SamxImageDtype samx_dataset_dtype(const SamxDataset *ds);

// Image i as H*W*channels values (row-major, channels last). _u8: uint8 images as stored, float
// images mapped through the display range and clamped to [0, 255]. _f32: values as stored (uint8
// images give 0..255). Return 0 or -1.
int samx_dataset_read_image_u8(SamxDataset *ds, int64_t i, uint8_t *out);
int samx_dataset_read_image_f32(SamxDataset *ds, int64_t i, float *out);
// Masks of sample i: K*H*W values 0/1 (annotator-major).
int samx_dataset_read_masks(SamxDataset *ds, int64_t i, uint8_t *out);

// Per-sample arrays, loaded at open, owned by the handle.
const uint8_t *samx_dataset_annotator_valid(const SamxDataset *ds);  // [N*K]
const uint8_t *samx_dataset_splits(const SamxDataset *ds);           // [N]
const float *samx_dataset_spacing(const SamxDataset *ds);            // [N*2] (row, column) mm
const char *samx_dataset_case_id(const SamxDataset *ds, int64_t i);
// Rows of one split, in file order: writes up to cap indices to idx (may be NULL), returns the count.
int64_t samx_dataset_split_rows(const SamxDataset *ds, int split, int64_t *idx, int64_t cap);

// The optional class map /labels [N, H, W] uint8 (contracts §7): value c is class c (0 background),
// named by the dataset's `names` attribute. read_labels fails (naming the file) when it is absent.
int samx_dataset_has_labels(const SamxDataset *ds);
int samx_dataset_label_count(const SamxDataset *ds);                // classes named, background included
const char *samx_dataset_label_name(const SamxDataset *ds, int c);  // NULL outside [0, count)
int samx_dataset_read_labels(SamxDataset *ds, int64_t i, uint8_t *out);

// Root attribute `name` as text (strings as stored, numbers printed). Returns 0, or -1 when absent.
int samx_dataset_attr(const SamxDataset *ds, const char *name, char *buf, size_t n);
// Calls fn for every root attribute (name, value as text); for `samx data info`.
void samx_dataset_each_attr(const SamxDataset *ds, void (*fn)(const char *name, const char *value, void *user),
                            void *user);

// ---- writing ----
typedef struct {
  int64_t h, w, k;
  int channels;          // 1 or 3
  SamxImageDtype dtype;  // SAMX_IMAGE_U8 or SAMX_IMAGE_F32
  const char *source;    // what it was packed from
  const char *modality;  // CT, MR, US, endoscopy, dermoscopy, synthetic ...
  // Float images only: the attribute written on /images ("window" or "value_range"; NULL means
  // "value_range") and its [lo, hi].
  const char *display_attr;
  float display_lo, display_hi;
  int gzip_level;  // 0 means the default (4); negative: uncompressed (benchmarks only: contracts §3 asks for gzip)
} SamxDatasetSpec;

typedef struct {
  const void *image;               // H*W*channels of the spec's dtype
  const uint8_t *masks;            // K*H*W, 0/1 (nonzero is stored as 1)
  const uint8_t *annotator_valid;  // K, or NULL: all valid
  int split;                       // SAMX_SPLIT_*; may be reassigned later (samx_dataset_writer_split_by_case)
  const char *case_id;
  float spacing[2];  // 0 means unknown and is stored as 1.0
  const uint8_t *labels;  // H*W class map; required once samx_dataset_writer_enable_labels was called
} SamxSample;

typedef struct SamxDatasetWriter SamxDatasetWriter;

SamxDatasetWriter *samx_dataset_create(const char *path, const SamxDatasetSpec *spec);
int samx_dataset_append(SamxDatasetWriter *w, const SamxSample *s);
int64_t samx_dataset_writer_count(const SamxDatasetWriter *w);
// Adds the /labels [N, H, W] class map with its class names (names[0] is the background); call
// before the first append. n_names 0: name them later with samx_dataset_writer_label_names (before
// finish; a file without names does not open). Return 0 or -1.
int samx_dataset_writer_enable_labels(SamxDatasetWriter *w, const char *const *names, int n_names);
int samx_dataset_writer_label_names(SamxDatasetWriter *w, const char *const *names, int n_names);
// Extra root attributes (generator parameters, seed, preprocessing ...). Return 0 or -1.
int samx_dataset_writer_attr_string(SamxDatasetWriter *w, const char *name, const char *value);
int samx_dataset_writer_attr_int(SamxDatasetWriter *w, const char *name, int64_t value);
int samx_dataset_writer_attr_double(SamxDatasetWriter *w, const char *name, double value);
// Reassigns the splits of everything appended so far by case (samx_split_by_case) and records
// the ratios and seed as root attributes.
int samx_dataset_writer_split_by_case(SamxDatasetWriter *w, const double ratios[3], uint64_t seed);
// Writes the per-sample arrays, closes and renames to the final path; frees w. Returns 0 or -1
// (the temporary file is removed on failure).
int samx_dataset_finish(SamxDatasetWriter *w);
// Closes and deletes the temporary file; frees w.
void samx_dataset_abort(SamxDatasetWriter *w);

// ---- splits by case ----
// Assigns whole cases to train/val/test: the distinct case ids are shuffled with seed and cut in
// proportion to ratios (normalised; a split with a nonzero ratio gets at least one case when there
// are enough cases). No case ends up in two splits. Deterministic for given ids, ratios and seed.
void samx_split_by_case(const char *const *case_ids, int64_t n, const double ratios[3], uint64_t seed,
                        uint8_t *split_out);

// ---- whole-file scan (samx data info / validate) ----
typedef struct {
  int64_t split_rows[SAMX_SPLIT_COUNT], split_cases[SAMX_SPLIT_COUNT];
  int64_t *valid_count;  // [K]: samples annotator k read
  int64_t *empty_count;  // [K]: of those, how many masks are empty
  double *fg_fraction;   // [K]: mean foreground fraction of annotator k's non-empty masks
  int64_t problems;      // contents that break the schema's rules (each reported through `problem`)
} SamxDatasetStats;

// Reads every sample and checks what open cannot: masks strictly 0/1, no case in two splits, finite
// float images, positive finite spacing, empty masks where annotator_valid is 0. Each problem is
// passed to `problem` (may be NULL). Returns 0 when the file could be read to the end (problems or
// not), -1 on a read error.
int samx_dataset_scan(SamxDataset *ds, SamxDatasetStats *st, void (*problem)(const char *msg, void *user),
                      void *user);
void samx_dataset_stats_free(SamxDatasetStats *st);

#ifdef __cplusplus
}
#endif
#endif
