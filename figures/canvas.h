// Drawing helpers shared by the figure files (internal to samx_figures): an output canvas that
// writes PNG or SVG through a temporary file, and the primitives every figure is made of (images,
// masks, heat maps, colour bars, text, axes).
#ifndef SAMX_FIGURES_CANVAS_H
#define SAMX_FIGURES_CANVAS_H

#include <cairo.h>
#include <limits.h>
#include <stdint.h>

#include "figures/figures.h"

typedef struct {
  cairo_surface_t *surface;
  cairo_t *cr;
  int svg;
  int width, height;
  char path[PATH_MAX];
  char tmp[PATH_MAX + 32];
} SamxFigCanvas;

// A white width x height canvas for path (SVG when it ends in ".svg"). Returns 0 or -1.
int samx_fig_canvas_open(SamxFigCanvas *c, const char *path, int width, int height);
// Writes the file under its final name. Returns 0 or -1 (nothing left behind on failure).
int samx_fig_canvas_close(SamxFigCanvas *c);
void samx_fig_canvas_abort(SamxFigCanvas *c);

// An h x w image (1 or 3 channels, uint8) drawn with its top-left corner at (x, y), scale device
// pixels per image pixel.
void samx_fig_draw_image(cairo_t *cr, const uint8_t *img, int64_t h, int64_t w, int channels, double x, double y,
                         double scale);
// A binary mask: translucent fill of colour at fill_alpha (0: none) and a contour along the pixel
// edges between mask and background (line_width 0: none; dashed for hypotheses in overlays).
void samx_fig_draw_mask(cairo_t *cr, const uint8_t *mask, int64_t h, int64_t w, double x, double y, double scale,
                        SamxRgb colour, double fill_alpha, double line_width, int dashed);
// Values v (h x w) through viridis over [lo, hi].
void samx_fig_draw_heat(cairo_t *cr, const float *v, int64_t h, int64_t w, double lo, double hi, double x, double y,
                        double scale);
// Horizontal viridis bar at (x, y, w, h) with ticks at lo, the middle and hi, and a label beside it.
void samx_fig_draw_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi,
                            const char *label);
// Rectangle outline visible on any background: a black line of width 4 under a white one of width 2,
// centred on the rectangle's edges.
void samx_fig_draw_box(cairo_t *cr, double x0, double y0, double x1, double y1);

enum { SAMX_FIG_LEFT = 0, SAMX_FIG_CENTRE = 1, SAMX_FIG_RIGHT = 2 };
// Text with its baseline at y, anchored at x by align; shrunk to fit max_width when > 0.
void samx_fig_text(cairo_t *cr, double x, double y, double size, double max_width, int align, const char *s);
void samx_fig_set_rgb(cairo_t *cr, SamxRgb c);

// A plot area in device coordinates and the data range it shows.
typedef struct {
  double x, y, w, h;
  double xmin, xmax, ymin, ymax;
} SamxFigAxes;

// Pads a degenerate or empty range so it can be drawn.
void samx_fig_range_fix(double *lo, double *hi);
double samx_fig_ax_x(const SamxFigAxes *a, double v);
double samx_fig_ax_y(const SamxFigAxes *a, double v);
// Frame, "nice" ticks with labels (1, 2, 5 x 10^k), light grid lines, axis labels and a title.
void samx_fig_draw_axes(cairo_t *cr, const SamxFigAxes *a, const char *title, const char *xlabel, const char *ylabel);

#endif
