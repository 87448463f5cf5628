// Mask and prompt overlay (the look of segment_anything's notebooks: show_mask, show_box, show_points).
#include "sam_overlay.h"

#include <math.h>

static const uint8_t MASK_RGB[3] = {30, 144, 255};  // show_mask's colour
static const uint8_t BOX_RGB[3] = {0, 220, 0};
static const uint8_t FG_RGB[3] = {0, 200, 0}, BG_RGB[3] = {230, 0, 0}, RIM_RGB[3] = {255, 255, 255};

static void blend(uint8_t *px, const uint8_t *rgb, double alpha) {
  for (int c = 0; c < 3; c++) px[c] = (uint8_t)lrint((1 - alpha) * px[c] + alpha * rgb[c]);
}

static void fill_rect(uint8_t *img, int h, int w, int x0, int y0, int x1, int y1, const uint8_t *rgb) {
  x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
  x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) blend(img + ((size_t)y * w + x) * 3, rgb, 1.0);
}

static void fill_disc(uint8_t *img, int h, int w, double cx, double cy, double r, const uint8_t *rgb) {
  for (int y = (int)floor(cy - r); y <= (int)ceil(cy + r); y++)
    for (int x = (int)floor(cx - r); x <= (int)ceil(cx + r); x++) {
      double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (x >= 0 && y >= 0 && x < w && y < h && dx * dx + dy * dy <= r * r) blend(img + ((size_t)y * w + x) * 3, rgb, 1.0);
    }
}

static int mask_at(const uint8_t *mask, int h, int w, int y, int x) {
  return y >= 0 && x >= 0 && y < h && x < w && mask[(size_t)y * w + x];
}

// Tinted inside, opaque on the outline so that thin structures stay visible.
static void draw_mask(uint8_t *img, int h, int w, const uint8_t *mask) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      if (!mask[(size_t)y * w + x]) continue;
      int edge = !mask_at(mask, h, w, y - 1, x) || !mask_at(mask, h, w, y + 1, x) || !mask_at(mask, h, w, y, x - 1) ||
                 !mask_at(mask, h, w, y, x + 1);
      blend(img + ((size_t)y * w + x) * 3, MASK_RGB, edge ? 1.0 : 0.6);
    }
}

void sam_overlay_draw(uint8_t *rgb, int h, int w, const uint8_t *mask, const SamPrompt *prompt) {
  if (mask) draw_mask(rgb, h, w, mask);
  if (!prompt) return;
  int side = h < w ? h : w;
  int t = side / 200 > 1 ? side / 200 : 1;  // line width grows with the image
  double r = side / 60.0 > 3 ? side / 60.0 : 3;
  if (prompt->has_box) {
    int x0 = (int)lrint(prompt->box[0]), y0 = (int)lrint(prompt->box[1]);
    int x1 = (int)lrint(prompt->box[2]), y1 = (int)lrint(prompt->box[3]);
    fill_rect(rgb, h, w, x0 - t, y0 - t, x1 + t, y0, BOX_RGB);
    fill_rect(rgb, h, w, x0 - t, y1, x1 + t, y1 + t, BOX_RGB);
    fill_rect(rgb, h, w, x0 - t, y0, x0, y1, BOX_RGB);
    fill_rect(rgb, h, w, x1, y0, x1 + t, y1, BOX_RGB);
  }
  for (int i = 0; i < prompt->n_points; i++) {
    if (prompt->labels[i] < 0) continue;  // padding
    double x = prompt->points[i][0], y = prompt->points[i][1];
    fill_disc(rgb, h, w, x, y, r + t, RIM_RGB);
    fill_disc(rgb, h, w, x, y, r, prompt->labels[i] ? FG_RGB : BG_RGB);
  }
}
