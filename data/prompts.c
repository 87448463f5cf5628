// Prompt derivation from masks (see prompts.h for the conventions).
#include "data/prompts.h"

#include <math.h>

#include <stdlib.h>

#include "data/rng.h"
#include "eval/edt.h"

// Salts for the hash so that the annotator choice and each jitter side draw independent values.
enum { SALT_ANNOTATOR = 1, SALT_JITTER = 2 };

int samx_prompt_box(const uint8_t *mask, int64_t h, int64_t w, int64_t box[4]) {
  int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      if (!mask[y * w + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  if (x1 < 0) return -1;
  box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
  return 0;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void samx_prompt_box_jitter(const int64_t box[4], int64_t h, int64_t w, int64_t max_shift, uint64_t seed,
                            int64_t out[4]) {
  // ref: MedSAM train_one_gpu.py: x_min = max(0, x_min - randint(0, shift)), x_max = min(W, x_max + ...)
  // (here clamped to the last pixel index, since samx boxes are pixel indices).
  int64_t shift[4];
  for (int s = 0; s < 4; s++)
    shift[s] = max_shift > 0 ? (int64_t)(samx_hash4(seed, SALT_JITTER, (uint64_t)s, 0) % (uint64_t)(max_shift + 1)) : 0;
  out[0] = clamp64(box[0] - shift[0], 0, w - 1);
  out[1] = clamp64(box[1] - shift[1], 0, h - 1);
  out[2] = clamp64(box[2] + shift[2], 0, w - 1);
  out[3] = clamp64(box[3] + shift[3], 0, h - 1);
}

int samx_prompt_extremes(const uint8_t *mask, int64_t h, int64_t w, int64_t pts[4][2]) {
  int64_t best[4] = {-1, -1, -1, -1};  // row-major index of left, right, top, bottom
  for (int64_t i = 0; i < h * w; i++) {
    if (!mask[i]) continue;
    int64_t x = i % w;
    // Scanning in row-major order, a strict comparison keeps the lowest index among ties.
    if (best[0] < 0 || x < best[0] % w) best[0] = i;
    if (best[1] < 0 || x > best[1] % w) best[1] = i;
    if (best[2] < 0) best[2] = i;                         // first pixel: topmost, lowest index
    if (best[3] < 0 || i / w > best[3] / w) best[3] = i;  // first pixel of the last row
  }
  if (best[0] < 0) return -1;
  for (int e = 0; e < 4; e++) pts[e][0] = best[e] % w, pts[e][1] = best[e] / w;
  return 0;
}

int samx_prompt_interior_point(const uint8_t *mask, int64_t h, int64_t w, int64_t pt[2], double *dist) {
  size_t n = (size_t)(h * w);
  uint8_t *background = (uint8_t *)malloc(n);
  double *d = (double *)malloc(n * sizeof *d);
  int any = 0;
  for (size_t i = 0; i < n; i++) background[i] = mask[i] == 0, any |= mask[i] != 0;
  int64_t best = -1;
  if (any) {
    // Distance of each pixel to the nearest background pixel; a full mask has none (+inf everywhere)
    // and the tie rule then picks pixel 0.
    samx_edt(background, h, w, 1.0, 1.0, d);
    for (size_t i = 0; i < n; i++)
      if (mask[i] && (best < 0 || d[i] > d[best])) best = (int64_t)i;
    pt[0] = best % w, pt[1] = best / w;
    if (dist) *dist = d[best];
  }
  free(background);
  free(d);
  return any ? 0 : -1;
}

int samx_prompt_centroid(const uint8_t *mask, int64_t h, int64_t w, double c[2]) {
  double sx = 0, sy = 0;
  int64_t count = 0;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++)
      if (mask[y * w + x]) sx += (double)x, sy += (double)y, count++;
  if (!count) return -1;
  c[0] = sx / (double)count, c[1] = sy / (double)count;
  return 0;
}

static int mask_nonempty(const uint8_t *mask, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (mask[i]) return 1;
  return 0;
}

int samx_prompt_pick_annotator(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                               uint64_t seed) {
  int64_t count = 0;
  for (int64_t a = 0; a < k; a++)
    count += (!annotator_valid || annotator_valid[a]) && mask_nonempty(masks + a * h * w, h * w);
  if (!count) return -1;
  int64_t pick = (int64_t)(samx_hash4(seed, SALT_ANNOTATOR, 0, 0) % (uint64_t)count);
  for (int64_t a = 0; a < k; a++)
    if ((!annotator_valid || annotator_valid[a]) && mask_nonempty(masks + a * h * w, h * w) && pick-- == 0)
      return (int)a;
  return -1;
}

int samx_prompts_derive(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                        int64_t box_jitter, uint64_t seed, SamxMaskPrompts *out) {
  out->annotator = samx_prompt_pick_annotator(masks, annotator_valid, k, h, w, seed);
  if (out->annotator < 0) return -1;
  const uint8_t *m = masks + (int64_t)out->annotator * h * w;
  samx_prompt_box(m, h, w, out->box);
  samx_prompt_box_jitter(out->box, h, w, box_jitter, seed, out->box_jittered);
  samx_prompt_extremes(m, h, w, out->extremes);
  samx_prompt_interior_point(m, h, w, out->interior, NULL);
  samx_prompt_centroid(m, h, w, out->centroid);
  return 0;
}

void samx_prompt_crop_window(const uint8_t *masks, const uint8_t *annotator_valid, int64_t k, int64_t h, int64_t w,
                             int64_t side, int64_t out[2]) {
  double sy = 0, sx = 0, n = 0;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      int on = 0;
      for (int64_t a = 0; a < k && !on; a++) on = (!annotator_valid || annotator_valid[a]) && masks[(a * h + y) * w + x];
      if (on) sy += (double)y, sx += (double)x, n++;
    }
  double cy = n > 0 ? sy / n : (double)(h - 1) / 2, cx = n > 0 ? sx / n : (double)(w - 1) / 2;
  // the window's centre pixel (side / 2 from its corner) at the rounded centroid, then clamped
  int64_t y0 = (int64_t)floor(cy + 0.5) - side / 2, x0 = (int64_t)floor(cx + 0.5) - side / 2;
  y0 = y0 > h - side ? h - side : y0;
  x0 = x0 > w - side ? w - side : x0;
  out[0] = y0 < 0 ? 0 : y0, out[1] = x0 < 0 ? 0 : x0;
}
