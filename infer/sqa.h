// SQA-SAM's host-side arithmetic (Zhang et al. 2023; method-notes §5): the objects of a segmentation
// (connected components per class, 8-connectivity by default), the prompt derived from each (an
// interior point and a box) and the quality score built from the masks SAM returns for them.
#ifndef SAMX_INFER_SQA_H
#define SAMX_INFER_SQA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int centroid;       // 0: the pixel farthest from the background (EDT maximum, ties to the lower
                      // row-major index; beyond the image border counts as background);
                      // 1: the centroid rounded to the nearest pixel (may fall off the object)
  int area_weighted;  // image score: 0 mean over objects, 1 weighted by object area
  int connectivity;   // 8 (default) or 4
} SamxSqaOpts;

SamxSqaOpts samx_sqa_defaults(void);

typedef struct {
  int cls;         // class channel
  int32_t label;   // component label within labels[cls]
  int64_t area;    // pixels
  float point[2];  // x, y (pixel indices)
  float box[4];    // x_min, y_min, x_max, y_max of the object's pixel indices
} SamxSqaObject;

typedef struct {
  int64_t h, w;
  int n_classes;
  int32_t *labels;  // [n_classes * h * w] component labels per class channel
  int n;            // objects over all classes
  SamxSqaObject *obj;
} SamxSqaObjects;

// seg: n_classes binary channels of h*w (nonzero = the class). Returns 0 (objects may be 0: an empty
// segmentation) or -1 on a bad connectivity.
int samx_sqa_objects(const uint8_t *seg, int n_classes, int64_t h, int64_t w, const SamxSqaOpts *o, SamxSqaObjects *out);
void samx_sqa_objects_free(SamxSqaObjects *s);

// Dice of object i against a binary mask (h*w, nonzero = foreground); empty union gives 1.
double samx_sqa_object_dice(const SamxSqaObjects *s, int i, const uint8_t *mask);
// Dice of object i against logits > 0 (the form SAM's output arrives in).
double samx_sqa_object_dice_logits(const SamxSqaObjects *s, int i, const float *logits);
// Image score from per-object scores (each the mean of its point-mask and box-mask Dice): the mean, or
// the area-weighted mean. NaN when there is no object.
double samx_sqa_image_score(const SamxSqaObjects *s, const double *object_score, int area_weighted);

#ifdef __cplusplus
}
#endif
#endif
