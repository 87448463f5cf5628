// SamPredictor's pre- and post-processing (segment_anything/predictor.py, utils/transforms.py).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam_image.h"
#include "sam_internal.h"

// ---- PIL-compatible bilinear resampling of 8-bit images (Pillow's Resample.c) ----
// Separable triangle filter whose support widens with the reduction factor (antialiasing when
// shrinking), coefficients normalised per output pixel and rounded to 22-bit fixed point, a
// horizontal pass into an 8-bit intermediate of only the rows the vertical pass needs, then the
// vertical pass. Matching this bit for bit is what makes embeddings agree with SamPredictor.
#define PIL_PRECISION_BITS (32 - 8 - 2)

typedef struct {
  int ksize;
  int *bounds;  // per output pixel: first input index, count
  int *k;       // fixed-point coefficients [out][ksize]
} PilCoeffs;

static double bilinear_filter(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

static void pil_coeffs(int in_size, int out_size, PilCoeffs *pc) {
  double scale = (double)in_size / out_size, filterscale = scale < 1 ? 1 : scale;
  double support = 1.0 * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double *kk = (double *)calloc((size_t)out_size * ksize, sizeof(double));
  pc->ksize = ksize;
  pc->bounds = (int *)malloc(sizeof(int) * 2 * (size_t)out_size);
  pc->k = (int *)malloc(sizeof(int) * (size_t)out_size * ksize);
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = kk + (size_t)xx * ksize;
    for (int x = 0; x < xmax; x++) ww += k[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
    for (int x = 0; x < xmax; x++)
      if (ww != 0) k[x] /= ww;
    pc->bounds[2 * xx] = xmin;
    pc->bounds[2 * xx + 1] = xmax;
  }
  for (size_t i = 0; i < (size_t)out_size * ksize; i++)
    pc->k[i] = kk[i] < 0 ? (int)(-0.5 + kk[i] * (1 << PIL_PRECISION_BITS)) : (int)(0.5 + kk[i] * (1 << PIL_PRECISION_BITS));
  free(kk);
}

static void pil_free(PilCoeffs *pc) {
  free(pc->bounds);
  free(pc->k);
}

static uint8_t clip8(int v) {
  v >>= PIL_PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void sam_resize_pil_bilinear(const uint8_t *src, int h, int w, int ch, uint8_t *dst, int oh, int ow) {
  PilCoeffs hc, vc;
  pil_coeffs(w, ow, &hc);
  pil_coeffs(h, oh, &vc);
  int need_h = ow != w, need_v = oh != h;
  int first = need_v ? vc.bounds[0] : 0;
  int last = need_v ? vc.bounds[2 * oh - 2] + vc.bounds[2 * oh - 1] : h;
  int th = need_h ? last - first : h, tw = need_h ? ow : w;
  const uint8_t *mid = src;
  uint8_t *tmp = NULL;
  if (need_h) {
    tmp = (uint8_t *)malloc((size_t)th * tw * ch);
    for (int y = 0; y < th; y++)
      for (int xx = 0; xx < ow; xx++) {
        int xmin = hc.bounds[2 * xx], xmax = hc.bounds[2 * xx + 1];
        const int *k = hc.k + (size_t)xx * hc.ksize;
        for (int c = 0; c < ch; c++) {
          int ss = 1 << (PIL_PRECISION_BITS - 1);
          for (int x = 0; x < xmax; x++) ss += src[((size_t)(y + first) * w + x + xmin) * ch + c] * k[x];
          tmp[((size_t)y * tw + xx) * ch + c] = clip8(ss);
        }
      }
    mid = tmp;
  } else {
    first = 0;
  }
  if (need_v) {
    for (int yy = 0; yy < oh; yy++) {
      int ymin = vc.bounds[2 * yy] - (need_h ? first : 0), ymax = vc.bounds[2 * yy + 1];
      const int *k = vc.k + (size_t)yy * vc.ksize;
      for (int x = 0; x < tw; x++)
        for (int c = 0; c < ch; c++) {
          int ss = 1 << (PIL_PRECISION_BITS - 1);
          for (int y = 0; y < ymax; y++) ss += mid[((size_t)(y + ymin) * tw + x) * ch + c] * k[y];
          dst[((size_t)yy * tw + x) * ch + c] = clip8(ss);
        }
    }
  } else {
    memcpy(dst, mid, (size_t)oh * ow * ch);
  }
  free(tmp);
  pil_free(&hc);
  pil_free(&vc);
}

// ---- SamPredictor ----

// ref: ResizeLongestSide.get_preprocess_shape
void sam_input_size(int h, int w, int target, int *oh, int *ow) {
  double scale = (double)target / (h > w ? h : w);
  *oh = (int)(h * scale + 0.5);
  *ow = (int)(w * scale + 0.5);
  // A very thin image (2000 x 1 at 1024) rounds its short side to 0, where SamPredictor fails inside
  // PIL; one pixel keeps the image usable and changes nothing for any image SamPredictor accepts.
  if (*oh < 1) *oh = 1;
  if (*ow < 1) *ow = 1;
}

// ref: SamPredictor.set_image + Sam.preprocess: resize, (x - mean) / std in float32, zero padding.
SamxTensor *sam_preprocess(SamxCtx *ctx, const SamModel *m, const uint8_t *rgb, int h, int w, SamImageInfo *info) {
  static const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
  int S = m->cfg.img_size, ih, iw;
  sam_input_size(h, w, S, &ih, &iw);
  uint8_t *resized = (uint8_t *)malloc((size_t)ih * iw * 3);
  sam_resize_pil_bilinear(rgb, h, w, 3, resized, ih, iw);
  float *x = (float *)calloc((size_t)3 * S * S, sizeof(float));
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < ih; y++)
      for (int xx = 0; xx < iw; xx++)
        x[((size_t)c * S + y) * S + xx] = ((float)resized[((size_t)y * iw + xx) * 3 + c] - mean[c]) / std[c];
  SamxTensor *t = samx_from_host(ctx, SHAPE(1, 3, S, S), x);
  free(x);
  free(resized);
  info->orig_h = h, info->orig_w = w, info->input_h = ih, info->input_w = iw;
  return t;
}

// ref: ResizeLongestSide.apply_coords: per-axis scaling in float64, then float32.
void sam_prompt_to_input(const SamImageInfo *info, SamPrompt *p) {
  double sx = (double)info->input_w / info->orig_w, sy = (double)info->input_h / info->orig_h;
  for (int i = 0; i < p->n_points; i++) {
    p->points[i][0] = (float)(p->points[i][0] * sx);
    p->points[i][1] = (float)(p->points[i][1] * sy);
  }
  if (p->has_box)
    for (int i = 0; i < 2; i++) {
      p->box[2 * i] = (float)(p->box[2 * i] * sx);
      p->box[2 * i + 1] = (float)(p->box[2 * i + 1] * sy);
    }
}

// ref: Sam.postprocess_masks: bilinear to S x S, crop the unpadded part, bilinear to the original size.
SamxTensor *sam_postprocess(SamxCtx *ctx, const SamModel *m, SamxTensor *low_res, const SamImageInfo *info) {
  int S = m->cfg.img_size;
  SamxTensor *x = samx_resize_bilinear(ctx, low_res, S, S);
  x = samx_slice(ctx, samx_slice(ctx, x, 2, 0, info->input_h), 3, 0, info->input_w);
  return samx_resize_bilinear(ctx, x, info->orig_h, info->orig_w);
}
