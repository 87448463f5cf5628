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

// Numeric values of obj under their keys; those of a nested object (the trainer's "val" record) as
// "<name>.<key>".
static void add_object(SeriesSet *set, json_t *obj, const char *prefix, double step) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    if (is_axis_key(key)) continue;
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (json_is_number(v)) series_push(series_get(set, name), step, json_number_value(v));
    else if (json_is_object(v) && !*prefix) add_object(set, v, name, step);
  }
}

static int add_line(SeriesSet *set, json_t *obj) {
  json_t *step = json_object_get(obj, "step");
  if (!json_is_number(step)) return 0;
  add_object(set, obj, "", json_number_value(step));
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

static const Series *series_find(const SeriesSet *set, const char *name) {
  for (int i = 0; i < set->n; i++)
    if (!strcmp(set->s[i].name, name) && set->s[i].n > 0) return &set->s[i];
  return NULL;
}

// ---- the panels of curves.png (nnU-Net's progress.png: loss, validation, learning rate, ...) ----

#define PANEL_LINES 8
typedef struct {
  char title[64];
  int n;
  Series line[PANEL_LINES];  // borrowed or derived (owned when owned[i])
  int owned[PANEL_LINES];
  char label[PANEL_LINES][64];
  int faint[PANEL_LINES];  // drawn light and thin (raw values under their moving average)
} Panel;

static Series *panel_add(Panel *p, const Series *s, const char *label, int owned) {
  if (!s || s->n == 0 || p->n == PANEL_LINES) return NULL;
  p->line[p->n] = *s, p->owned[p->n] = owned, p->faint[p->n] = 0;
  snprintf(p->label[p->n], sizeof p->label[0], "%s", label);
  return &p->line[p->n++];
}

static Series derived(const char *name, int64_t n) {
  Series d = {strdup(name), (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)),
              (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)), n, n};
  return d;
}

// Trailing moving average over a window of 1/25 of the log (at least 5 records), finite values only.
static Series moving_average(const Series *s) {
  Series m = derived("moving average", s->n);
  int64_t w = s->n / 25 > 5 ? s->n / 25 : 5;
  double sum = 0;
  int64_t cnt = 0;
  for (int64_t i = 0; i < s->n; i++) {
    if (isfinite(s->value[i])) sum += s->value[i], cnt++;
    if (i >= w && isfinite(s->value[i - w])) sum -= s->value[i - w], cnt--;
    m.step[i] = s->step[i], m.value[i] = cnt ? sum / (double)cnt : NAN;
  }
  return m;
}

// Seconds per step from the cumulative "time_s" (its difference over the difference of steps).
static Series step_time(const Series *t) {
  Series d = derived("step time", t->n > 1 ? t->n - 1 : 0);
  int64_t k = 0;
  for (int64_t i = 1; i < t->n; i++)
    if (t->step[i] > t->step[i - 1]) {
      d.step[k] = t->step[i], d.value[k] = (t->value[i] - t->value[i - 1]) / (t->step[i] - t->step[i - 1]);
      k++;
    }
  d.n = k;
  return d;
}

static Series log10_of(const Series *s) {
  Series d = derived("log10", s->n);
  for (int64_t i = 0; i < s->n; i++) d.step[i] = s->step[i], d.value[i] = s->value[i] > 0 ? log10(s->value[i]) : NAN;
  return d;
}

// Validation metrics: the trainer's nested "val" record, or top-level "val_*" keys of other logs.
static int is_val_metric(const char *name) {
  if (!strncmp(name, "val.", 4))
    return strcmp(name, "val.loss") && strcmp(name, "val.n") && strcmp(name, "val.seconds");
  return !strncmp(name, "val_", 4) && strcmp(name, "val_loss");
}

// The panels, in order: training loss with its moving average (and the validation loss), the
// validation metrics, the learning rate, the gradient norm (log10: spikes span decades), the time
// per step. A panel whose series the log lacks is left out. Constants and bookkeeping (samples,
// skipped, memory) are not drawn. Returns the number of panels.
static int build_panels(const SeriesSet *set, Panel *panels) {
  int n = 0;
  Panel *p = &panels[n];
  memset(p, 0, sizeof *p);
  const Series *loss = series_find(set, "loss");
  if (loss) {
    panel_add(p, loss, "train", 0);
    p->faint[0] = 1;
    Series ma = moving_average(loss);
    panel_add(p, &ma, "train, moving average", 1);
  }
  const Series *vl = series_find(set, "val.loss");
  if (!vl) vl = series_find(set, "val_loss");
  panel_add(p, vl, "validation", 0);
  if (p->n) snprintf(p->title, sizeof p->title, "loss"), n++;

  p = &panels[n];
  memset(p, 0, sizeof *p);
  for (int i = 0; i < set->n; i++)
    if (is_val_metric(set->s[i].name)) panel_add(p, &set->s[i], set->s[i].name + 4, 0);
  if (p->n) snprintf(p->title, sizeof p->title, "validation"), n++;

  p = &panels[n];
  memset(p, 0, sizeof *p);
  if (panel_add(p, series_find(set, "lr"), "lr", 0)) snprintf(p->title, sizeof p->title, "learning rate"), n++;

  p = &panels[n];
  memset(p, 0, sizeof *p);
  const Series *gn = series_find(set, "grad_norm");
  if (gn) {
    Series lg = log10_of(gn);
    panel_add(p, &lg, "grad_norm", 1);
    snprintf(p->title, sizeof p->title, "log10 gradient norm (before clipping)"), n++;
  }

  p = &panels[n];
  memset(p, 0, sizeof *p);
  const Series *ts = series_find(set, "time_s");
  if (ts) {
    Series st = step_time(ts);
    if (st.n > 0 && panel_add(p, &st, "s / step", 1)) snprintf(p->title, sizeof p->title, "seconds per step"), n++;
    else free(st.name), free(st.step), free(st.value);
  }
  return n;
}

static void panels_free(Panel *panels, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < panels[i].n; j++)
      if (panels[i].owned[j]) free(panels[i].line[j].name), free(panels[i].line[j].step), free(panels[i].line[j].value);
}

static void draw_line(cairo_t *cr, const SamxFigAxes *a, const Series *s) {
  int started = 0;
  for (int64_t i = 0; i < s->n; i++) {
    if (!isfinite(s->value[i])) {  // a NaN loss breaks the line where it happened
      started = 0;
      continue;
    }
    double px = samx_fig_ax_x(a, s->step[i]), py = samx_fig_ax_y(a, s->value[i]);
    if (started) cairo_line_to(cr, px, py);
    else cairo_move_to(cr, px, py);
    started = 1;
  }
  cairo_stroke(cr);
  if (s->n <= 50)  // sparse series (validation) get markers so single points show
    for (int64_t i = 0; i < s->n; i++)
      if (isfinite(s->value[i])) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, samx_fig_ax_x(a, s->step[i]), samx_fig_ax_y(a, s->value[i]), 3, 0, 2 * M_PI);
      }
  cairo_fill(cr);
}

// The union of a panel's ranges (steps and values over all its lines).
static void panel_range(const Panel *p, SamxFigAxes *a) {
  a->xmin = a->ymin = INFINITY, a->xmax = a->ymax = -INFINITY;
  for (int j = 0; j < p->n; j++) {
    double lo, hi;
    padded_range(p->line[j].step, p->line[j].n, &lo, &hi);
    a->xmin = fmin(a->xmin, lo), a->xmax = fmax(a->xmax, hi);
    padded_range(p->line[j].value, p->line[j].n, &lo, &hi);
    a->ymin = fmin(a->ymin, lo), a->ymax = fmax(a->ymax, hi);
  }
}

static void draw_panel(cairo_t *cr, const Panel *p, double x, double y) {
  SamxFigAxes a = {.x = x + 70, .y = y + 34, .w = SAMX_FIG_CURVE_W - 90, .h = SAMX_FIG_CURVE_H - 84};
  panel_range(p, &a);
  samx_fig_draw_axes(cr, &a, p->title, "step", NULL);
  cairo_save(cr);
  cairo_rectangle(cr, a.x, a.y, a.w, a.h);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (int j = 0; j < p->n; j++) {
    SamxRgb c = samx_fig_palette(p->faint[j] ? 4 : 4 + j);
    cairo_set_source_rgba(cr, c.r, c.g, c.b, p->faint[j] ? 0.3 : 1.0);
    cairo_set_line_width(cr, p->faint[j] ? 1.0 : 1.8);
    draw_line(cr, &a, &p->line[j]);
  }
  cairo_restore(cr);
  if (p->n < 2) return;
  for (int j = 0; j < p->n; j++) {  // legend, top right inside the frame
    SamxRgb c = samx_fig_palette(p->faint[j] ? 4 : 4 + j);
    double ly = a.y + 12 + 12 * j, lx = a.x + a.w - 8;
    cairo_set_source_rgba(cr, c.r, c.g, c.b, p->faint[j] ? 0.4 : 1.0);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, lx - 16, ly - 3), cairo_line_to(cr, lx, ly - 3);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    samx_fig_text(cr, lx - 20, ly, 9, a.w / 2, SAMX_FIG_RIGHT, p->label[j]);
  }
}

int samx_figure_curves_count(const char *log_path) {
  SeriesSet set;
  if (read_log(log_path, &set)) return -1;
  Panel panels[5];
  int n = build_panels(&set, panels);
  panels_free(panels, n);
  series_free(&set);
  return n;
}

int samx_figure_curves(const char *log_path, const char *out_path) {
  SeriesSet set;
  if (read_log(log_path, &set)) return -1;
  Panel panels[5];
  int n = build_panels(&set, panels), rc = 0;
  if (n == 0)
    rc = samx_fail("%s: none of loss, validation metrics, lr, grad_norm or time_s to plot", log_path);
  int cols = n < SAMX_FIG_CURVE_COLS ? n : SAMX_FIG_CURVE_COLS, rows = cols ? (n + cols - 1) / cols : 0;
  SamxFigCanvas c;
  if (rc == 0) rc = samx_fig_canvas_open(&c, out_path, cols * SAMX_FIG_CURVE_W, rows * SAMX_FIG_CURVE_H);
  if (rc == 0) {
    for (int i = 0; i < n; i++) draw_panel(c.cr, &panels[i], (i % cols) * SAMX_FIG_CURVE_W, (i / cols) * SAMX_FIG_CURVE_H);
    rc = samx_fig_canvas_close(&c);
  }
  panels_free(panels, n);
  series_free(&set);
  return rc;
}
