// SimSAM's host-side arithmetic (Towle et al., ISBI 2024; method-notes §3): where to click, with
// which label, and which of the K simulated masks to return. Pure functions of their inputs, so that
// tests/infer checks them against a reference written from the paper's equations.
#ifndef SAMX_INFER_SIMSAM_H
#define SAMX_INFER_SIMSAM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SAMX_SIMSAM_TOPK = 0,    // the K pixels of highest error (the authors' code, deterministic)
  SAMX_SIMSAM_SAMPLE = 1,  // K distinct pixels drawn with probability proportional to the error (q(z|x))
  SAMX_SIMSAM_RANDOM = 2,  // K distinct pixels drawn uniformly (the paper's "random" ablation)
} SamxSimsamClicks;

typedef enum {
  SAMX_SIMSAM_IOU = 0,    // the candidate with the highest mean IoU to all K candidates (diagonal included)
  SAMX_SIMSAM_PIXEL = 1,  // the mean of the K candidates' logits, thresholded at 0 (ablation)
} SamxSimsamAggregate;

typedef struct {
  int k;                          // clicks = candidates (50; 1 is the paper's K = 1 ablation)
  SamxSimsamClicks clicks;
  SamxSimsamAggregate aggregate;
  int raw_mask_prompt;            // 1: feed the initial low-res logits; 0: binarised to 0/1 (the authors' code)
  uint64_t seed;                  // SAMPLE / RANDOM: clicks depend on (seed, image key) only
} SamxSimsamOpts;

SamxSimsamOpts samx_simsam_defaults(void);  // k 50, top-K, IoU aggregation, binary mask prompt, seed 0
// "topk" / "sample" / "random" and "iou" / "pixel"; parse returns 0 or -1.
int samx_simsam_clicks_parse(const char *s, SamxSimsamClicks *out);
int samx_simsam_aggregate_parse(const char *s, SamxSimsamAggregate *out);

// Click pixels (row-major indices into the h*w image) from the initial prediction's logits at the
// original size. p = sigmoid(logit); error e = 0.5 - |p - 0.5| = sigmoid(-|logit|), so the top-K
// pixels are those of smallest |logit|, ties to the lower index. k is clamped to npix; returns the
// number of clicks written to idx (in decreasing order of error for TOPK, of draw key otherwise).
// image_key makes SAMPLE / RANDOM differ between images and stay reproducible.
int samx_simsam_clicks(const float *logits, int64_t npix, const SamxSimsamOpts *o, uint64_t image_key, int64_t *idx);
// Label of a click: 1 - b with b = p > 0.5, i.e. positive where the initial mask is background.
static inline int samx_simsam_label(const float *logits, int64_t i) { return logits[i] > 0 ? 0 : 1; }

// Mask prompt from the initial low-res logits (n values): 1 where > 0 else 0, or the logits as they are.
void samx_simsam_mask_prompt(const float *low_res, int64_t n, int raw, float *out);

// Image-level aggregation: masks are k binary masks of npix pixels packed as bits (words64 =
// ceil(npix / 64) uint64 per mask, unused high bits 0). iou (k*k, may be NULL) receives the IoU
// matrix (0 where the union is empty, i.e. NaN -> 0), row_mean (k, may be NULL) its row means.
// Returns the index of the highest row mean (ties to the lower index).
int samx_simsam_choose(const uint64_t *bits, int k, int64_t words64, double *iou, double *row_mean);
// Packs logits > 0 into bits (words64 words).
void samx_pack_mask_bits(const float *logits, int64_t npix, uint64_t *bits);

#ifdef __cplusplus
}
#endif
#endif
