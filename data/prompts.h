// Prompts derived from ground-truth masks for training and evaluation, in pixel coordinates of the
// mask (x right, y down, pixel indices, as SamPredictor takes them before sam_prompt_to_input).
//   box       tight box of a mask: its pixel-index extremities [x_min, y_min, x_max, y_max]
//             (SeqSAM; no +1 on the max side)
//   jitter    MedSAM's box augmentation: each side moved outwards by an integer drawn uniformly
//             from [0, max_shift], clamped to the image (pixel indices 0 .. W-1, 0 .. H-1)
//   extremes  leftmost, rightmost, topmost, bottommost pixels (ties: the lowest row-major index)
//   interior  the pixel farthest from the background (maximum of the Euclidean distance transform
//             of the mask, pixels outside the image not counting as background; ties: the lowest
//             row-major index): a point safely inside even for non-convex masks
//   centroid  mean x and mean y of the mask's pixels (may fall outside a non-convex mask)
// Randomness (which annotator, the jitter) is a hash of the seed: the same seed gives the same
// prompt on every machine. The loader hands out one seed per sample (SamxBatch.sample_seed).
#ifndef SAMX_DATA_PROMPTS_H
#define SAMX_DATA_PROMPTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Tight box of mask [H, W] (nonzero = foreground) as x_min, y_min, x_max, y_max. Returns 0, or -1
// (box untouched) when the mask is empty.
int samx_prompt_box(const uint8_t *mask, int64_t h, int64_t w, int64_t box[4]);
// MedSAM jitter of box within an H x W image.
void samx_prompt_box_jitter(const int64_t box[4], int64_t h, int64_t w, int64_t max_shift, uint64_t seed,
                            int64_t out[4]);
// Extremity points as (x, y): [0] leftmost, [1] rightmost, [2] topmost, [3] bottommost. -1 when empty.
int samx_prompt_extremes(const uint8_t *mask, int64_t h, int64_t w, int64_t pts[4][2]);
// Interior point (x, y) at the maximum of the distance transform; *dist (may be NULL) gets that
// distance in pixels. -1 when empty.
int samx_prompt_interior_point(const uint8_t *mask, int64_t h, int64_t w, int64_t pt[2], double *dist);
// Centroid (x, y). -1 when empty.
int samx_prompt_centroid(const uint8_t *mask, int64_t h, int64_t w, double c[2]);

// A uniformly random annotator among those with annotator_valid (NULL: all) and a non-empty
// mask, drawn from seed; -1 when there is none. masks [K, H, W].
int samx_prompt_pick_annotator(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                               uint64_t seed);

// The top-left corner (y0, x0) of a side x side window centred on the centroid of the union of the
// valid annotators' masks (annotator_valid NULL: all), the image centre when all are empty, moved
// inside the H x W image (side <= H, W). P²SAM's lesion-centred crops (the LIDC pickle's 128 px
// crops are centred on the lesion the annotators marked).
void samx_prompt_crop_window(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                             int64_t side, int64_t out[2]);

// Every prompt of one sample at once, for the training step.
typedef struct {
  int annotator;            // the chosen annotator, -1 when every mask is empty (nothing else set)
  int64_t box[4];           // tight box of that annotator's mask
  int64_t box_jittered[4];  // box after jitter (== box when box_jitter is 0)
  int64_t extremes[4][2];   // (x, y): left, right, top, bottom
  int64_t interior[2];      // (x, y)
  double centroid[2];       // (x, y)
} SamxMaskPrompts;

// Chooses an annotator (samx_prompt_pick_annotator with seed) and derives all prompts from its mask;
// box_jitter is MedSAM's max_shift in pixels (0: none). Returns 0, or -1 when all masks are empty.
int samx_prompts_derive(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                        int64_t box_jitter, uint64_t seed, SamxMaskPrompts *out);

#ifdef __cplusplus
}
#endif
#endif
