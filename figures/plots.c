// Plots: scatter with correlations, and training curves from a JSON-lines log.
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "eval/stats.h"
#include "figures/canvas.h"

// Data range of v[0..n) over finite values, padded by 5% on each side.
static void padded_range(const double *v, int64_t n, double *lo, double *hi) {
  *lo = INFINITY, *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(v[i])) {
      if (v[i] < *lo) *lo = v[i];
      if (v[i] > *hi) *hi = v[i];
    }
  samx_fig_range_fix(lo, hi);
  double pad = 0.05 * (*hi - *lo);
  *lo -= pad, *hi += pad;
}

// ---- scatter ----

static void least_squares(const double *x, const double *y, int64_t n, double *slope, double *icept) {
  double mx = 0, my = 0, sxx = 0, sxy = 0;
  for (int64_t i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= (double)n, my /= (double)n;
  for (int64_t i = 0; i < n; i++) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
  *slope = sxx > 0 ? sxy / sxx : 0;
  *icept = my - *slope * mx;
}

int samx_figure_scatter(const double *x, const double *y, int64_t n, const char *title, const char *xlabel,
                        const char *ylabel, int width, int height, const char *out_path) {
  // Only pairs with both sides finite enter the plot and the correlations.
  double *fx = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  double *fy = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i]) && isfinite(y[i])) fx[m] = x[i], fy[m] = y[i], m++;
  if (m == 0) {
    free(fx), free(fy);
    return samx_fail("%s: no pair of finite values to plot (%lld given)", out_path, (long long)n);
  }
  SamxFigCanvas c;
  if (samx_fig_canvas_open(&c, out_path, width > 0 ? width : 640, height > 0 ? height : 480)) {
    free(fx), free(fy);
    return -1;
  }
  cairo_t *cr = c.cr;
  SamxFigAxes a = {.x = 70, .y = 50, .w = c.width - 90, .h = c.height - 110};
  padded_range(fx, m, &a.xmin, &a.xmax);
  padded_range(fy, m, &a.ymin, &a.ymax);
  char head[512];
  snprintf(head, sizeof head, "%s: Pearson r = %.3f, Spearman rho = %.3f (n = %lld)", title ? title : "",
           samx_pearson(fx, fy, m), samx_spearman(fx, fy, m), (long long)m);
  samx_fig_draw_axes(cr, &a, head, xlabel, ylabel);
  if (m < n) {
    char note[96];
    snprintf(note, sizeof note, "%lld pairs with a NaN or infinite value left out", (long long)(n - m));
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    samx_fig_text(cr, a.x + a.w, c.height - 8, 10, 0, SAMX_FIG_RIGHT, note);
  }
  cairo_save(cr);
  cairo_rectangle(cr, a.x, a.y, a.w, a.h);
  cairo_clip(cr);
  double slope, icept;
  least_squares(fx, fy, m, &slope, &icept);
  samx_fig_set_rgb(cr, samx_fig_palette(5));
  cairo_set_line_width(cr, 1.5);
  cairo_move_to(cr, samx_fig_ax_x(&a, a.xmin), samx_fig_ax_y(&a, icept + slope * a.xmin));
  cairo_line_to(cr, samx_fig_ax_x(&a, a.xmax), samx_fig_ax_y(&a, icept + slope * a.xmax));
  cairo_stroke(cr);
  SamxRgb dot = samx_fig_palette(4);
  cairo_set_source_rgba(cr, dot.r, dot.g, dot.b, 0.7);
  for (int64_t i = 0; i < m; i++) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, samx_fig_ax_x(&a, fx[i]), samx_fig_ax_y(&a, fy[i]), 3, 0, 2 * M_PI);
  }
  cairo_fill(cr);
  cairo_restore(cr);
  free(fx), free(fy);
  return samx_fig_canvas_close(&c);
}

// ---- curves ----

typedef struct {
  char *name;
  double *step, *value;
  int64_t n, cap;
} Series;

typedef struct {
  Series *s;
  int n, cap;
} SeriesSet;

static Series *series_get(SeriesSet *set, const char *name) {
  for (int i = 0; i < set->n; i++)
    if (!strcmp(set->s[i].name, name)) return &set->s[i];
  if (set->n == set->cap) {
    set->cap = set->cap ? 2 * set->cap : 8;
    set->s = (Series *)realloc(set->s, (size_t)set->cap * sizeof(Series));
  }
  Series *s = &set->s[set->n++];
  memset(s, 0, sizeof *s);
  s->name = strdup(name);
  return s;
}

static void series_push(Series *s, double step, double value) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->step = (double *)realloc(s->step, (size_t)s->cap * sizeof(double));
    s->value = (double *)realloc(s->value, (size_t)s->cap * sizeof(double));
  }
  s->step[s->n] = step, s->value[s->n] = value, s->n++;
}

static void series_free(SeriesSet *set) {
  for (int i = 0; i < set->n; i++) free(set->s[i].name), free(set->s[i].step), free(set->s[i].value);
  free(set->s);
  memset(set, 0, sizeof *set);
}

// Keys that are bookkeeping rather than curves.
static int is_axis_key(const char *key) { return !strcmp(key, "step") || !strcmp(key, "ts") || !strcmp(key, "rank"); }

static int add_line(SeriesSet *set, json_t *obj) {
  json_t *step = json_object_get(obj, "step");
  if (!json_is_number(step)) return 0;
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    if (is_axis_key(key) || !json_is_number(v)) continue;
    series_push(series_get(set, key), json_number_value(step), json_number_value(v));
  }
  return 0;
}

static int read_log(const char *path, SeriesSet *set) {
  memset(set, 0, sizeof *set);
  FILE *f = fopen(path, "r");
  if (!f) return samx_fail("%s: cannot open the training log", path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t lineno = 0;
  int rc = 0;
  while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (strspn(line, " \t\r\n") == (size_t)len) continue;  // blank lines
    json_error_t err;
    json_t *obj = json_loads(line, JSON_DECODE_ANY, &err);
    if (!json_is_object(obj))
      rc = samx_fail("%s: line %lld is not a JSON object (%s)", path, (long long)lineno,
                     obj ? "another JSON value" : err.text);
    else
      rc = add_line(set, obj);
    json_decref(obj);
  }
  free(line);
  fclose(f);
  if (rc == 0 && set->n == 0) rc = samx_fail("%s: no numeric values against a numeric \"step\" to plot", path);
  if (rc) series_free(set);
  return rc;
}

static void draw_series(cairo_t *cr, const Series *s, double x, double y) {
  SamxFigAxes a = {.x = x + 70, .y = y + 34, .w = SAMX_FIG_CURVE_W - 90, .h = SAMX_FIG_CURVE_H - 84};
  padded_range(s->step, s->n, &a.xmin, &a.xmax);
  padded_range(s->value, s->n, &a.ymin, &a.ymax);
  samx_fig_draw_axes(cr, &a, s->name, "step", NULL);
  cairo_save(cr);
  cairo_rectangle(cr, a.x, a.y, a.w, a.h);
  cairo_clip(cr);
  SamxRgb colour = samx_fig_palette(4);
  samx_fig_set_rgb(cr, colour);
  cairo_set_line_width(cr, 1.5);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  int started = 0;
  for (int64_t i = 0; i < s->n; i++) {
    if (!isfinite(s->value[i])) {  // a NaN loss breaks the line where it happened
      started = 0;
      continue;
    }
    double px = samx_fig_ax_x(&a, s->step[i]), py = samx_fig_ax_y(&a, s->value[i]);
    if (started) cairo_line_to(cr, px, py);
    else cairo_move_to(cr, px, py);
    started = 1;
  }
  cairo_stroke(cr);
  if (s->n <= 50)  // sparse series (validation) get markers so single points show
    for (int64_t i = 0; i < s->n; i++)
      if (isfinite(s->value[i])) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, samx_fig_ax_x(&a, s->step[i]), samx_fig_ax_y(&a, s->value[i]), 3, 0, 2 * M_PI);
      }
  cairo_fill(cr);
  cairo_restore(cr);
}

int samx_figure_curves_count(const char *log_path) {
  SeriesSet set;
  if (read_log(log_path, &set)) return -1;
  int n = set.n;
  series_free(&set);
  return n;
}

int samx_figure_curves(const char *log_path, const char *out_path) {
  SeriesSet set;
  if (read_log(log_path, &set)) return -1;
  int cols = set.n < SAMX_FIG_CURVE_COLS ? set.n : SAMX_FIG_CURVE_COLS, rows = (set.n + cols - 1) / cols;
  SamxFigCanvas c;
  int rc = samx_fig_canvas_open(&c, out_path, cols * SAMX_FIG_CURVE_W, rows * SAMX_FIG_CURVE_H);
  if (rc == 0) {
    for (int i = 0; i < set.n; i++)
      draw_series(c.cr, &set.s[i], (i % cols) * SAMX_FIG_CURVE_W, (i / cols) * SAMX_FIG_CURVE_H);
    rc = samx_fig_canvas_close(&c);
  }
  series_free(&set);
  return rc;
}
