// A dependency-free SVG plot of log.jsonl: two panels sharing the step axis.
#include "curves.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/fileio.h"

typedef struct {
  double *x, *y;
  int n, cap;
} Series;

static void push(Series *s, double x, double y) {
  if (!isfinite(y)) return;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 256;
    s->x = (double *)realloc(s->x, sizeof(double) * (size_t)s->cap);
    s->y = (double *)realloc(s->y, sizeof(double) * (size_t)s->cap);
  }
  s->x[s->n] = x, s->y[s->n++] = y;
}

typedef struct {
  char *buf;
  size_t len, cap;
} Text;

static void put(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    t->cap = t->cap * 2 + (size_t)n + 1024;
    t->buf = (char *)realloc(t->buf, t->cap);
  }
}

enum { W = 760, PH = 260, MARGIN = 60 };

// One panel at vertical offset top: the series share its y range.
static void panel(Text *t, int top, const char *title, Series *s, const char **names, const char **colors, int ns,
                  double x_max) {
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < ns; k++)
    for (int i = 0; i < s[k].n; i++) lo = fmin(lo, s[k].y[i]), hi = fmax(hi, s[k].y[i]);
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1e-3, lo -= 1e-3;
  double pw = W - 2 * MARGIN, ph = PH - 50;
  int y0 = top + 30;
  put(t, "<text x='%d' y='%d' font-size='14'>%s</text>\n", MARGIN, top + 18, title);
  put(t, "<rect x='%d' y='%d' width='%.0f' height='%.0f' fill='none' stroke='#999'/>\n", MARGIN, y0, pw, ph);
  for (int g = 0; g <= 4; g++) {
    double v = lo + (hi - lo) * g / 4, y = y0 + ph - ph * g / 4;
    put(t, "<text x='%d' y='%.1f' font-size='10' text-anchor='end'>%.4g</text>\n", MARGIN - 4, y + 3, v);
    put(t, "<text x='%.1f' y='%.0f' font-size='10' text-anchor='middle'>%.0f</text>\n", MARGIN + pw * g / 4,
        y0 + ph + 14, x_max * g / 4);
  }
  for (int k = 0; k < ns; k++) {
    if (!s[k].n) continue;
    put(t, "<polyline fill='none' stroke='%s' stroke-width='1.2' points='", colors[k]);
    for (int i = 0; i < s[k].n; i++)
      put(t, "%.1f,%.1f ", MARGIN + pw * s[k].x[i] / x_max, y0 + ph - ph * (s[k].y[i] - lo) / (hi - lo));
    put(t, "'/>\n<text x='%.0f' y='%d' font-size='11' fill='%s'>%s</text>\n", MARGIN + pw - 90.0 * (ns - k), top + 18,
        colors[k], names[k]);
  }
}

int samx_train_curves_svg(const char *log_path, const char *svg_path) {
  size_t size;
  char *text = samx_read_file(log_path, &size);
  if (!text) return -1;
  Series s[6];
  memset(s, 0, sizeof s);
  double x_max = 1, mean = NAN;
  static const char *val_keys[4] = {"ged", "d_avg", "d_max", "hm_iou"};
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    json_t *o = json_loads(line, 0, NULL);
    if (!o) continue;
    double step = (double)json_integer_value(json_object_get(o, "step"));
    x_max = fmax(x_max, step);
    json_t *val = json_object_get(o, "val"), *loss = json_object_get(o, "loss");
    if (json_is_object(val)) {
      for (int k = 0; k < 4; k++) {
        json_t *v = json_object_get(val, val_keys[k]);
        if (json_is_number(v)) push(&s[2 + k], step, json_number_value(v));
      }
    } else if (json_is_number(loss)) {
      double v = json_number_value(loss);
      push(&s[0], step, v);
      if (isfinite(v)) mean = isfinite(mean) ? 0.95 * mean + 0.05 * v : v;
      push(&s[1], step, mean);
    }
    json_decref(o);
  }
  free(text);
  Text t = {(char *)malloc(65536), 0, 65536};
  put(&t, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n", W, 2 * PH);
  put(&t, "<rect width='100%%' height='100%%' fill='white'/>\n");
  const char *loss_names[2] = {"loss", "running mean"}, *loss_colors[2] = {"#bbb", "#1f77b4"};
  panel(&t, 0, "training loss", s, loss_names, loss_colors, 2, x_max);
  const char *val_colors[4] = {"#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  panel(&t, PH, "validation (GED, D_avg, D_max, HM-IoU)", s + 2, val_keys, val_colors, 4, x_max);
  put(&t, "</svg>\n");
  int rc = samx_write_file_atomic(svg_path, t.buf, t.len);
  free(t.buf);
  for (int k = 0; k < 6; k++) free(s[k].x), free(s[k].y);
  return rc;
}
