// SQA-SAM's objects, prompts and scores (see sqa.h).
#include "sqa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/components.h"
#include "eval/edt.h"

SamxSqaOpts samx_sqa_defaults(void) {
  SamxSqaOpts o = {.centroid = 0, .area_weighted = 0, .connectivity = 8};
  return o;
}

// The object pixel farthest from everything that is not the object, pixels beyond the image border
// included (a click on the border is a poor prompt). The distance transform runs on the object's box
// grown by one pixel: the nearest non-object pixel of any object pixel lies within that window (the
// ring around the box is all non-object), so the distances equal those over an unbounded plane.
static void deepest_point(const int32_t *labels, int64_t h, int64_t w, int32_t id, const float box[4], float pt[2]) {
  int64_t x0 = (int64_t)box[0] - 1, y0 = (int64_t)box[1] - 1, ch = (int64_t)box[3] - y0 + 2, cw = (int64_t)box[2] - x0 + 2;
  uint8_t *seeds = (uint8_t *)malloc((size_t)(ch * cw));
  double *dist = (double *)malloc(sizeof(double) * (size_t)(ch * cw));
  for (int64_t r = 0; r < ch; r++)
    for (int64_t c = 0; c < cw; c++) {
      int64_t y = y0 + r, x = x0 + c;
      seeds[r * cw + c] = y < 0 || y >= h || x < 0 || x >= w || labels[y * w + x] != id;
    }
  samx_edt(seeds, ch, cw, 1.0, 1.0, dist);
  double best = -1;
  for (int64_t r = 0; r < ch; r++)  // row-major within the window is row-major in the image
    for (int64_t c = 0; c < cw; c++)
      if (!seeds[r * cw + c] && dist[r * cw + c] > best) {
        best = dist[r * cw + c];
        pt[0] = (float)(x0 + c), pt[1] = (float)(y0 + r);
      }
  free(seeds);
  free(dist);
}

int samx_sqa_objects(const uint8_t *seg, int n_classes, int64_t h, int64_t w, const SamxSqaOpts *o, SamxSqaObjects *out) {
  memset(out, 0, sizeof *out);
  if (o->connectivity != 4 && o->connectivity != 8) return -1;
  int64_t hw = h * w;
  out->h = h, out->w = w, out->n_classes = n_classes;
  out->labels = (int32_t *)malloc(sizeof(int32_t) * (size_t)(hw * n_classes));
  int cap = 0;
  for (int c = 0; c < n_classes; c++) {
    int32_t *lab = out->labels + c * hw;
    int32_t count = samx_label_components(seg + c * hw, h, w, o->connectivity, lab);
    if (count == 0) continue;
    // Per label: area, box, coordinate sums (for the centroid).
    int64_t *area = (int64_t *)calloc((size_t)count + 1, sizeof(int64_t));
    double *sx = (double *)calloc((size_t)count + 1, sizeof(double)), *sy = (double *)calloc((size_t)count + 1, sizeof(double));
    int64_t *bx = (int64_t *)malloc(sizeof(int64_t) * 4 * ((size_t)count + 1));
    for (int32_t l = 0; l <= count; l++) bx[4 * l] = w, bx[4 * l + 1] = h, bx[4 * l + 2] = -1, bx[4 * l + 3] = -1;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        int32_t l = lab[y * w + x];
        if (!l) continue;
        area[l]++, sx[l] += (double)x, sy[l] += (double)y;
        int64_t *b = bx + 4 * l;
        if (x < b[0]) b[0] = x;
        if (y < b[1]) b[1] = y;
        if (x > b[2]) b[2] = x;
        if (y > b[3]) b[3] = y;
      }
    if (out->n + count > cap) {
      cap = 2 * (out->n + count);
      out->obj = (SamxSqaObject *)realloc(out->obj, sizeof(SamxSqaObject) * (size_t)cap);
    }
    for (int32_t l = 1; l <= count; l++) {
      SamxSqaObject *ob = &out->obj[out->n++];
      ob->cls = c, ob->label = l, ob->area = area[l];
      for (int k = 0; k < 4; k++) ob->box[k] = (float)bx[4 * l + k];
      if (o->centroid) {
        ob->point[0] = (float)lround(sx[l] / (double)area[l]), ob->point[1] = (float)lround(sy[l] / (double)area[l]);
      } else {
        deepest_point(lab, h, w, l, ob->box, ob->point);
      }
    }
    free(area), free(sx), free(sy), free(bx);
  }
  return 0;
}

void samx_sqa_objects_free(SamxSqaObjects *s) {
  free(s->labels);
  free(s->obj);
  memset(s, 0, sizeof *s);
}

static double object_dice(const SamxSqaObjects *s, int i, const uint8_t *mask, const float *logits) {
  const SamxSqaObject *ob = &s->obj[i];
  const int32_t *lab = s->labels + (int64_t)ob->cls * s->h * s->w;
  int64_t inter = 0, other = 0, hw = s->h * s->w;
  for (int64_t p = 0; p < hw; p++) {
    int on = mask ? mask[p] != 0 : logits[p] > 0;
    other += on;
    inter += on && lab[p] == ob->label;
  }
  int64_t denom = ob->area + other;
  return denom > 0 ? 2.0 * (double)inter / (double)denom : 1.0;
}

double samx_sqa_object_dice(const SamxSqaObjects *s, int i, const uint8_t *mask) { return object_dice(s, i, mask, NULL); }

double samx_sqa_object_dice_logits(const SamxSqaObjects *s, int i, const float *logits) {
  return object_dice(s, i, NULL, logits);
}

double samx_sqa_image_score(const SamxSqaObjects *s, const double *object_score, int area_weighted) {
  if (s->n == 0) return NAN;
  double num = 0, den = 0;
  for (int i = 0; i < s->n; i++) {
    double wgt = area_weighted ? (double)s->obj[i].area : 1.0;
    num += wgt * object_score[i], den += wgt;
  }
  return num / den;
}
