// Zero-shot batch inference with SAM (issue 8): plain SAM from a box, SimSAM, SQA-SAM.
//
// An inferer owns two activation contexts on the model's device, sized once for the largest batch
// and image: the encoder's (one batch of images) and the decoder's (the batch's embeddings plus one
// chunk of prompts). samx_inferer_run encodes up to max_batch images in one call, then decodes every
// prompt of the batch against the cached embeddings in chunks (sam_decode's img_index), mixing images
// within a chunk, and brings back only what each method needs at the original image size.
#ifndef SAMX_INFER_INFER_H
#define SAMX_INFER_INFER_H

#include <stdint.h>

#include "infer/simsam.h"
#include "infer/sqa.h"
#include "models/sam/sam.h"
#include "models/method.h"

#ifdef __cplusplus
extern "C" {
#endif

// TRAINED: a model from `samx train` (any method of models/method.h), its hypotheses from the box.
typedef enum { SAMX_INFER_SAM = 0, SAMX_INFER_SIMSAM = 1, SAMX_INFER_SQA = 2, SAMX_INFER_TRAINED = 3 } SamxInferMethod;
const char *samx_infer_method_name(SamxInferMethod m);  // "sam", "simsam", "sqa", "trained"

typedef struct {
  SamxInferMethod method;
  SamxSimsamOpts simsam;
  SamxSqaOpts sqa;
  int max_batch;        // images per encoder call (>= 1)
  int decode_chunk;     // prompts per decoder call; 0: as many as decode_budget allows
  size_t decode_budget; // bytes of decoder activations per chunk; 0: 6 GiB on CUDA (ViT-B: ~27
                        // prompts), 1 GiB on CPU
  int n_masks;          // TRAINED: hypotheses per image (0: the model's default)
  // P²SAM (a trained model of that method): its hypotheses are snapshots x samples assembled masks,
  // in the order sample-major (hypothesis j s + k: sample j of snapshot k); no prompt is used.
  const struct P2samSnapshotsTag *p2sam_snapshots;  // P2samSnapshots (models/p2sam/p2sam.h); NULL: the model as loaded
  int p2sam_samples;    // z draws per snapshot (default 4)
  int p2sam_stage1;     // a stage-1 model: one hypothesis, the dense prompt no_mask_embed (no prior, no z)
  uint64_t p2sam_seed;  // eps of image `key`, snapshot k, sample j: normal draws (hash(seed, key), (j S + k) 256 + i)
  int keep_candidates;  // SimSAM: return the K candidate masks
  int trace;            // SimSAM: also return the initial prediction and candidate logits (tests)
} SamxInferOpts;

SamxInferOpts samx_infer_defaults(SamxInferMethod method);

typedef struct {
  const uint8_t *rgb;  // h*w*3
  int h, w;
  float box[4];        // SAM / SimSAM prompt: x_min, y_min, x_max, y_max in original pixels
  const uint8_t *seg;  // SQA: the segmentation to score, n_classes channels of h*w
  int n_classes;
  uint64_t key;        // identifies the image for SimSAM's seeded click draws (the dataset row)
  int crop[3];         // P2SAM: y0, x0, side of the window the model sees; its masks are pasted back into
                       // the h x w image (0 outside). side 0: the whole image
  // The image's cached embedding (C*g*g floats, samx embed) and its SamImageInfo (orig_h, orig_w,
  // input_h, input_w): the encoder does not run. All images of a call have one or none.
  const float *embedding;
  const int64_t *embed_info;
} SamxInferInput;

typedef struct {
  uint8_t *mask;  // n_masks*h*w, 0/1: the prediction (SAM, SimSAM: 1 mask; TRAINED: its hypotheses);
                  // NULL for SQA
  int n_masks;
  float score;    // SAM: predicted IoU; SimSAM: the chosen candidate's predicted IoU (pixel
                  // aggregation: the candidates' mean)
  // SQA
  float quality;         // image score; NaN for an empty segmentation
  int n_objects;
  double *object_score;  // [n_objects]
  // SimSAM
  int k, chosen;         // chosen is -1 under pixel aggregation
  int64_t *clicks;       // [k] row-major pixel indices
  int *labels;           // [k]
  float *cand_iou;       // [k] predicted IoU of each candidate
  double *row_mean;      // [k] mean IoU with all candidates (IoU aggregation)
  uint8_t *candidates;   // [k*h*w] when keep_candidates
  // trace (SimSAM)
  int low_side;          // 4g
  float *init_logits;    // [h*w] initial prediction at the original size
  float *init_low_res;   // [low_side^2]
  float *mask_prompt;    // [low_side^2] what the K prompts received as mask input
  float *cand_logits;    // [k*h*w]
} SamxInferOutput;

typedef struct SamxInferer SamxInferer;

// max_h, max_w: the largest image that will be passed. Returns NULL on bad options (samx_last_error).
SamxInferer *samx_inferer_new(SamModel *m, const SamxInferOpts *o, int max_h, int max_w);
// The same for a trained model (o->method must be SAMX_INFER_TRAINED).
SamxInferer *samx_inferer_new_trained(SamMethodModel *mm, const SamxInferOpts *o, int max_h, int max_w);
void samx_inferer_free(SamxInferer *r);
int samx_inferer_chunk(const SamxInferer *r);  // prompts per decoder call in use
// Non-finite (NaN/inf) mask logits produced so far: nonzero means the masks are not to be trusted.
int64_t samx_inferer_nonfinite(const SamxInferer *r);
// Runs n (<= max_batch) images; out[i] is filled (free with samx_infer_output_free).
void samx_inferer_run(SamxInferer *r, const SamxInferInput *in, int n, SamxInferOutput *out);
void samx_infer_output_free(SamxInferOutput *o);
// Peak bytes used so far by the encoder and decoder contexts.
void samx_inferer_peaks(const SamxInferer *r, size_t *enc, size_t *dec);

// The box prompt of the issue and both papers: [x_min, y_min, x_max, y_max] of the mask's pixel
// indices (nonzero = foreground). Returns 0, or -1 for an empty mask.
int samx_mask_box(const uint8_t *mask, int64_t h, int64_t w, float box[4]);

#ifdef __cplusplus
}
#endif
#endif
