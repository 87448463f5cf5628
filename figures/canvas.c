#define _GNU_SOURCE
#include "figures/canvas.h"

#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/fileio.h"

// ---- colours ----

SamxRgb samx_fig_palette(int i) {
  static const uint8_t okabe_ito[7][3] = {{230, 159, 0}, {86, 180, 233}, {0, 158, 115}, {240, 228, 66},
                                          {0, 114, 178}, {213, 94, 0},   {204, 121, 167}};
  const uint8_t *c = okabe_ito[((i % 7) + 7) % 7];
  return (SamxRgb){c[0] / 255.0, c[1] / 255.0, c[2] / 255.0};
}

SamxRgb samx_fig_viridis(double t) {
  // matplotlib's viridis at t = 0, 1/9, ..., 1; linear in between (within 1/255 of the full table).
  static const uint8_t stops[10][3] = {{68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142},
                                       {38, 130, 142}, {31, 158, 137}, {53, 183, 121}, {110, 206, 88},
                                       {181, 222, 43}, {253, 231, 37}};
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  double s = t * 9;
  int i = (int)s;
  if (i > 8) i = 8;
  double f = s - i;
  SamxRgb c;
  c.r = ((1 - f) * stops[i][0] + f * stops[i + 1][0]) / 255.0;
  c.g = ((1 - f) * stops[i][1] + f * stops[i + 1][1]) / 255.0;
  c.b = ((1 - f) * stops[i][2] + f * stops[i + 1][2]) / 255.0;
  return c;
}

void samx_fig_set_rgb(cairo_t *cr, SamxRgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

// ---- canvas ----

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcasecmp(s + n - m, suffix);
}

int samx_fig_canvas_open(SamxFigCanvas *c, const char *path, int width, int height) {
  memset(c, 0, sizeof *c);
  if (width <= 0 || height <= 0 || width > 32767 || height > 32767)
    return samx_fail("%s: a figure of %d x %d pixels cannot be drawn (at most 32767 per side)", path, width, height);
  if (strlen(path) >= sizeof c->path) return samx_fail("%s: path too long", path);
  // The format follows the extension: .svg, else PNG; any other image extension would get PNG data.
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (dot && (!slash || dot > slash) && strcasecmp(dot, ".png") && strcasecmp(dot, ".svg"))
    return samx_fail("%s: figures are written as .png or .svg, not '%s'", path, dot);
  snprintf(c->path, sizeof c->path, "%s", path);
  samx_tmp_path(path, c->tmp, sizeof c->tmp);
  c->svg = ends_with(path, ".svg");
  c->width = width, c->height = height;
  c->surface = c->svg ? cairo_svg_surface_create(c->tmp, width, height)
                      : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  if (cairo_surface_status(c->surface) != CAIRO_STATUS_SUCCESS) {
    int rc = samx_fail("%s: cannot create the figure (%s)", path, cairo_status_to_string(cairo_surface_status(c->surface)));
    cairo_surface_destroy(c->surface);
    unlink(c->tmp);
    c->surface = NULL;
    return rc;
  }
  c->cr = cairo_create(c->surface);
  cairo_set_source_rgb(c->cr, 1, 1, 1);
  cairo_paint(c->cr);
  cairo_select_font_face(c->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return 0;
}

int samx_fig_canvas_close(SamxFigCanvas *c) {
  cairo_status_t st = cairo_status(c->cr);
  cairo_destroy(c->cr);
  if (st == CAIRO_STATUS_SUCCESS && !c->svg) st = cairo_surface_write_to_png(c->surface, c->tmp);
  cairo_surface_finish(c->surface);  // an SVG surface writes its file here
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(c->surface);
  cairo_surface_destroy(c->surface);
  c->cr = NULL, c->surface = NULL;
  if (st != CAIRO_STATUS_SUCCESS) {
    unlink(c->tmp);
    return samx_fail("%s: cannot write the figure (%s)", c->path, cairo_status_to_string(st));
  }
  return samx_commit_tmp(c->tmp, c->path);
}

void samx_fig_canvas_abort(SamxFigCanvas *c) {
  if (c->cr) cairo_destroy(c->cr);
  if (c->surface) {
    cairo_surface_finish(c->surface);
    cairo_surface_destroy(c->surface);
  }
  c->cr = NULL, c->surface = NULL;
  unlink(c->tmp);
}

// ---- raster layers ----

// An ARGB32 surface of w x h premultiplied pixels filled by the caller through the returned rows.
static cairo_surface_t *argb_surface(int64_t h, int64_t w, uint32_t **pixels, int *stride_px) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)w, (int)h);
  cairo_surface_flush(s);
  *pixels = (uint32_t *)cairo_image_surface_get_data(s);
  *stride_px = cairo_image_surface_get_stride(s) / 4;
  return s;
}

static uint32_t argb(double a, SamxRgb c) {
  // Premultiplied, as cairo's ARGB32 stores it.
  uint32_t A = (uint32_t)lround(a * 255), R = (uint32_t)lround(a * c.r * 255), G = (uint32_t)lround(a * c.g * 255),
           B = (uint32_t)lround(a * c.b * 255);
  return A << 24 | R << 16 | G << 8 | B;
}

// Paints surface s (w x h image pixels) at (x, y) scaled, nearest-neighbour or smooth.
static void paint_scaled(cairo_t *cr, cairo_surface_t *s, double x, double y, double scale, int nearest) {
  cairo_surface_mark_dirty(s);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, s, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), nearest ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_rectangle(cr, 0, 0, (double)cairo_image_surface_get_width(s), (double)cairo_image_surface_get_height(s));
  cairo_fill(cr);
  cairo_restore(cr);
}

void samx_fig_draw_image(cairo_t *cr, const uint8_t *img, int64_t h, int64_t w, int channels, double x, double y,
                         double scale) {
  uint32_t *px;
  int stride;
  cairo_surface_t *s = argb_surface(h, w, &px, &stride);
  for (int64_t r = 0; r < h; r++)
    for (int64_t c = 0; c < w; c++) {
      const uint8_t *v = img + (r * w + c) * channels;
      uint32_t R = v[0], G = channels == 3 ? v[1] : v[0], B = channels == 3 ? v[2] : v[0];
      px[r * stride + c] = 0xff000000u | R << 16 | G << 8 | B;
    }
  paint_scaled(cr, s, x, y, scale, 0);
  cairo_surface_destroy(s);
}

// Contour along the pixel edges: every edge between a mask pixel and a background pixel (or the
// image border) is one segment; square caps close the corners.
static void mask_contour_path(cairo_t *cr, const uint8_t *m, int64_t h, int64_t w, double x, double y, double s) {
  for (int64_t r = 0; r < h; r++)
    for (int64_t c = 0; c < w; c++) {
      if (!m[r * w + c]) continue;
      double x0 = x + c * s, y0 = y + r * s, x1 = x0 + s, y1 = y0 + s;
      if (r == 0 || !m[(r - 1) * w + c]) cairo_move_to(cr, x0, y0), cairo_line_to(cr, x1, y0);
      if (r == h - 1 || !m[(r + 1) * w + c]) cairo_move_to(cr, x0, y1), cairo_line_to(cr, x1, y1);
      if (c == 0 || !m[r * w + c - 1]) cairo_move_to(cr, x0, y0), cairo_line_to(cr, x0, y1);
      if (c == w - 1 || !m[r * w + c + 1]) cairo_move_to(cr, x1, y0), cairo_line_to(cr, x1, y1);
    }
}

void samx_fig_draw_mask(cairo_t *cr, const uint8_t *mask, int64_t h, int64_t w, double x, double y, double scale,
                        SamxRgb colour, double fill_alpha, double line_width, int dashed) {
  if (fill_alpha > 0) {
    uint32_t *px;
    int stride;
    cairo_surface_t *s = argb_surface(h, w, &px, &stride);
    uint32_t on = argb(fill_alpha, colour);
    for (int64_t r = 0; r < h; r++)
      for (int64_t c = 0; c < w; c++) px[r * stride + c] = mask[r * w + c] ? on : 0;
    paint_scaled(cr, s, x, y, scale, 1);
    cairo_surface_destroy(s);
  }
  if (line_width > 0) {
    cairo_save(cr);
    cairo_new_path(cr);
    mask_contour_path(cr, mask, h, w, x, y, scale);
    samx_fig_set_rgb(cr, colour);
    cairo_set_line_width(cr, line_width);
    cairo_set_line_cap(cr, dashed ? CAIRO_LINE_CAP_BUTT : CAIRO_LINE_CAP_SQUARE);
    if (dashed) {
      // Per-segment dashes: each pixel edge shows a dash, so dashed contours read as dotted lines.
      double d[2] = {scale * 0.6 > 2 ? scale * 0.6 : 2, scale * 0.4 > 1.5 ? scale * 0.4 : 1.5};
      cairo_set_dash(cr, d, 2, 0);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
  }
}

void samx_fig_draw_heat(cairo_t *cr, const float *v, int64_t h, int64_t w, double lo, double hi, double x, double y,
                        double scale) {
  uint32_t *px;
  int stride;
  cairo_surface_t *s = argb_surface(h, w, &px, &stride);
  double span = hi > lo ? hi - lo : 1;
  for (int64_t r = 0; r < h; r++)
    for (int64_t c = 0; c < w; c++) px[r * stride + c] = argb(1, samx_fig_viridis((v[r * w + c] - lo) / span));
  paint_scaled(cr, s, x, y, scale, 1);
  cairo_surface_destroy(s);
}

void samx_fig_draw_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi,
                            const char *label) {
  cairo_pattern_t *g = cairo_pattern_create_linear(x, 0, x + w, 0);
  for (int i = 0; i <= 16; i++) {
    SamxRgb c = samx_fig_viridis(i / 16.0);
    cairo_pattern_add_color_stop_rgb(g, i / 16.0, c.r, c.g, c.b);
  }
  cairo_rectangle(cr, x, y, w, h);
  cairo_set_source(cr, g);
  cairo_fill_preserve(cr);
  cairo_pattern_destroy(g);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  char buf[32];
  for (int i = 0; i <= 2; i++) {
    double t = i / 2.0, tx = x + t * w;
    cairo_move_to(cr, tx, y + h), cairo_line_to(cr, tx, y + h + 3);
    cairo_stroke(cr);
    snprintf(buf, sizeof buf, "%g", lo + t * (hi - lo));
    samx_fig_text(cr, tx, y + h + 13, 10, 0, SAMX_FIG_CENTRE, buf);
  }
  samx_fig_text(cr, x + w + 8, y + h - 1, 11, 0, SAMX_FIG_LEFT, label);
}

void samx_fig_draw_box(cairo_t *cr, double x0, double y0, double x1, double y1) {
  cairo_save(cr);
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 4);
  cairo_stroke_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 2);
  cairo_stroke(cr);
  cairo_restore(cr);
}

// ---- text ----

void samx_fig_text(cairo_t *cr, double x, double y, double size, double max_width, int align, const char *s) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  if (max_width > 0 && e.x_advance > max_width) {
    cairo_set_font_size(cr, size * max_width / e.x_advance);
    cairo_text_extents(cr, s, &e);
  }
  double dx = align == SAMX_FIG_CENTRE ? -e.x_advance / 2 : align == SAMX_FIG_RIGHT ? -e.x_advance : 0;
  cairo_move_to(cr, x + dx, y);
  cairo_show_text(cr, s);
  cairo_new_path(cr);
}

// ---- axes ----

void samx_fig_range_fix(double *lo, double *hi) {
  if (!isfinite(*lo) || !isfinite(*hi)) *lo = 0, *hi = 1;
  if (*hi <= *lo) {
    double pad = *lo != 0 ? fabs(*lo) * 0.1 : 0.5;
    *lo -= pad, *hi += pad;
  }
}

double samx_fig_ax_x(const SamxFigAxes *a, double v) { return a->x + (v - a->xmin) / (a->xmax - a->xmin) * a->w; }
double samx_fig_ax_y(const SamxFigAxes *a, double v) { return a->y + a->h - (v - a->ymin) / (a->ymax - a->ymin) * a->h; }

// Tick spacing of 1, 2 or 5 x 10^k giving about five ticks over [lo, hi].
static double nice_step(double lo, double hi) {
  double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void tick_label(char *buf, size_t n, double v, double step) {
  if (fabs(v) < step * 1e-9) v = 0;
  snprintf(buf, n, "%.*g", fabs(v) >= 1e5 || (fabs(v) < 1e-3 && v != 0) ? 2 : 6, v);
}

void samx_fig_draw_axes(cairo_t *cr, const SamxFigAxes *a, const char *title, const char *xlabel, const char *ylabel) {
  char buf[48];
  cairo_set_line_width(cr, 1);
  double xs = nice_step(a->xmin, a->xmax), ys = nice_step(a->ymin, a->ymax);
  for (double v = ceil(a->xmin / xs) * xs; v <= a->xmax + xs * 1e-9; v += xs) {
    double px = samx_fig_ax_x(a, v);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, px, a->y), cairo_line_to(cr, px, a->y + a->h), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    tick_label(buf, sizeof buf, v, xs);
    samx_fig_text(cr, px, a->y + a->h + 14, 10, 0, SAMX_FIG_CENTRE, buf);
  }
  for (double v = ceil(a->ymin / ys) * ys; v <= a->ymax + ys * 1e-9; v += ys) {
    double py = samx_fig_ax_y(a, v);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, a->x, py), cairo_line_to(cr, a->x + a->w, py), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    tick_label(buf, sizeof buf, v, ys);
    samx_fig_text(cr, a->x - 4, py + 3.5, 10, 0, SAMX_FIG_RIGHT, buf);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, a->x, a->y, a->w, a->h);
  cairo_stroke(cr);
  if (title) samx_fig_text(cr, a->x + a->w / 2, a->y - 10, 13, a->w + 80, SAMX_FIG_CENTRE, title);
  if (xlabel) samx_fig_text(cr, a->x + a->w / 2, a->y + a->h + 32, 11, a->w, SAMX_FIG_CENTRE, xlabel);
  if (ylabel) {
    cairo_save(cr);
    cairo_translate(cr, a->x - 46, a->y + a->h / 2);
    cairo_rotate(cr, -M_PI / 2);
    samx_fig_text(cr, 0, 0, 11, a->h, SAMX_FIG_CENTRE, ylabel);
    cairo_restore(cr);
  }
}
