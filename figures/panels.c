// Mask figures: hypothesis grids (one row per sample) and single-panel overlays.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "figures/canvas.h"

// The dataset and prediction files of a figure, checked against each other.
typedef struct {
  SamxDataset *ds;
  SamxPredictions **preds;
  int n_pred;
  int64_t h, w, k;
  int channels;
} Sources;

static void sources_close(Sources *s) {
  for (int p = 0; p < s->n_pred; p++)
    if (s->preds[p]) samx_predictions_close(s->preds[p]);
  free(s->preds);
  if (s->ds) samx_dataset_close(s->ds);
  memset(s, 0, sizeof *s);
}

static int sources_open(Sources *s, const char *data_path, const char *const *pred_paths, int n_pred) {
  memset(s, 0, sizeof *s);
  if (!data_path) return samx_fail("figure: no dataset file given (--data)");
  s->ds = samx_dataset_open(data_path);
  if (!s->ds) return -1;
  s->h = samx_dataset_h(s->ds), s->w = samx_dataset_w(s->ds), s->k = samx_dataset_k(s->ds);
  s->channels = samx_dataset_channels(s->ds);
  s->preds = (SamxPredictions **)calloc((size_t)(n_pred > 0 ? n_pred : 1), sizeof *s->preds);
  s->n_pred = n_pred;
  for (int p = 0; p < n_pred; p++) {
    s->preds[p] = samx_predictions_open(pred_paths[p]);
    if (!s->preds[p] || samx_predictions_check_dataset(s->preds[p], s->ds)) {
      sources_close(s);
      return -1;
    }
  }
  return 0;
}

void samx_figure_pred_label(const char *const *paths, const char *const *methods, int n, int p, char *out, size_t size) {
  int shared = 0;
  for (int q = 0; q < n; q++) shared |= q != p && !strcmp(methods[q], methods[p]);
  if (!shared) {
    snprintf(out, size, "%s", methods[p]);
    return;
  }
  const char *base = strrchr(paths[p], '/');
  base = base ? base + 1 : paths[p];
  size_t len = strlen(base);
  if (len > 3 && !strcmp(base + len - 3, ".h5")) len -= 3;
  snprintf(out, size, "%.*s", (int)len, base);
}

// Label of prediction file p in this figure (samx_figure_pred_label).
static void pred_label(const Sources *s, int p, char *out, size_t size) {
  const char *paths[64], *methods[64];
  int n = s->n_pred < 64 ? s->n_pred : 64;
  for (int q = 0; q < n; q++)
    paths[q] = samx_predictions_path(s->preds[q]), methods[q] = samx_predictions_method(s->preds[q]);
  if (p >= n) {
    snprintf(out, size, "%s", samx_predictions_method(s->preds[p]));
    return;
  }
  samx_figure_pred_label(paths, methods, n, p, out, size);
}

static int check_index(const Sources *s, int64_t index) {
  if (index < 0 || index >= samx_dataset_n(s->ds))
    return samx_fail("%s: index %lld is out of range (the file has %lld samples)", samx_dataset_path(s->ds),
                     (long long)index, (long long)samx_dataset_n(s->ds));
  return 0;
}

// Row of prediction file p that holds dataset row index, or -1 with an error naming the file.
static int64_t pred_row(const Sources *s, int p, int64_t index) {
  const int64_t *idx = samx_predictions_index(s->preds[p]);
  for (int64_t i = 0; i < samx_predictions_n(s->preds[p]); i++)
    if (idx[i] == index) return i;
  samx_fail("%s: no prediction for dataset row %lld", samx_predictions_path(s->preds[p]), (long long)index);
  return -1;
}

// Tight box (inclusive pixel bounds) around the union of the valid annotators' masks; 0 when all
// are empty.
static int union_box(const uint8_t *masks, const uint8_t *valid, int64_t k, int64_t h, int64_t w, int64_t box[4]) {
  int64_t r0 = h, c0 = w, r1 = -1, c1 = -1;
  for (int64_t a = 0; a < k; a++) {
    if (valid && !valid[a]) continue;
    for (int64_t r = 0; r < h; r++)
      for (int64_t c = 0; c < w; c++)
        if (masks[(a * h + r) * w + c]) {
          if (r < r0) r0 = r;
          if (r > r1) r1 = r;
          if (c < c0) c0 = c;
          if (c > c1) c1 = c;
        }
  }
  box[0] = r0, box[1] = c0, box[2] = r1, box[3] = c1;
  return r1 >= 0;
}

// Per-pixel variance p(1 - p) of the masks that `use` selects (NULL: all n); 0 where none is used.
static void mask_variance(const uint8_t *masks, const uint8_t *use, int64_t n, int64_t npix, float *out) {
  int64_t used = 0;
  for (int64_t m = 0; m < n; m++) used += !use || use[m];
  for (int64_t i = 0; i < npix; i++) {
    int64_t on = 0;
    for (int64_t m = 0; m < n; m++) on += (!use || use[m]) && masks[m * npix + i];
    double p = used ? (double)on / (double)used : 0;
    out[i] = (float)(p * (1 - p));
  }
}

// ---- grid ----

typedef struct {
  int cell, cols, width, height;
  int64_t *m_shown;  // hypotheses shown per prediction file
} GridLayout;

static void grid_layout(const SamxGridSpec *spec, const Sources *s, GridLayout *g) {
  g->cell = spec->cell > 0 ? spec->cell : 160;
  g->m_shown = (int64_t *)calloc((size_t)(s->n_pred > 0 ? s->n_pred : 1), sizeof(int64_t));
  g->cols = 1 + (int)s->k + (spec->variance ? 1 : 0);
  for (int p = 0; p < s->n_pred; p++) {
    int64_t m = samx_predictions_m(s->preds[p]);
    g->m_shown[p] = spec->max_hyp > 0 && spec->max_hyp < m ? spec->max_hyp : m;
    g->cols += (int)g->m_shown[p] + (spec->variance ? 1 : 0);
  }
  g->width = SAMX_FIG_GAP + g->cols * (g->cell + SAMX_FIG_GAP);
  g->height = SAMX_FIG_TITLE_H + SAMX_FIG_GAP + spec->n_indices * (g->cell + SAMX_FIG_GAP) +
              (spec->variance ? SAMX_FIG_COLORBAR_H : 0);
}

// Where an h x w image sits inside a cell: scale and offset that keep the aspect ratio, centred.
static double fit(int cell, int64_t h, int64_t w, double *ox, double *oy) {
  double scale = (double)cell / (double)(h > w ? h : w);
  *ox = (cell - scale * (double)w) / 2, *oy = (cell - scale * (double)h) / 2;
  return scale;
}

typedef struct {
  cairo_t *cr;
  const GridLayout *g;
  double scale, ox, oy, y;  // y: top of the current row
  int64_t h, w;
} RowPen;

static double cell_x(const RowPen *pen, int col) { return SAMX_FIG_GAP + col * (pen->g->cell + SAMX_FIG_GAP); }

static void cell_image(const RowPen *pen, int col, const uint8_t *img, int channels) {
  samx_fig_draw_image(pen->cr, img, pen->h, pen->w, channels, cell_x(pen, col) + pen->ox, pen->y + pen->oy,
                      pen->scale);
}

static void cell_mask(const RowPen *pen, int col, const uint8_t *img, int channels, const uint8_t *mask,
                      SamxRgb colour) {
  cell_image(pen, col, img, channels);
  samx_fig_draw_mask(pen->cr, mask, pen->h, pen->w, cell_x(pen, col) + pen->ox, pen->y + pen->oy, pen->scale, colour,
                     SAMX_FIG_FILL_ALPHA, 1.5, 0);
}

static void cell_heat(const RowPen *pen, int col, const float *v) {
  samx_fig_draw_heat(pen->cr, v, pen->h, pen->w, 0, 0.25, cell_x(pen, col) + pen->ox, pen->y + pen->oy, pen->scale);
}

static void cell_note(const RowPen *pen, int col, const char *note) {
  cairo_set_source_rgb(pen->cr, 0.85, 0.85, 0.85);
  cairo_rectangle(pen->cr, cell_x(pen, col), pen->y, pen->g->cell, pen->g->cell);
  cairo_fill(pen->cr);
  cairo_set_source_rgb(pen->cr, 0.3, 0.3, 0.3);
  samx_fig_text(pen->cr, cell_x(pen, col) + pen->g->cell / 2.0, pen->y + pen->g->cell / 2.0, 11, pen->g->cell - 8,
                SAMX_FIG_CENTRE, note);
}

static void column_titles(cairo_t *cr, const GridLayout *g, const Sources *s, int variance) {
  char buf[160];
  int col = 0;
  RowPen pen = {.g = g};
  double y = SAMX_FIG_TITLE_H - 8;
  cairo_set_source_rgb(cr, 0, 0, 0);
  samx_fig_text(cr, cell_x(&pen, col++) + g->cell / 2.0, y, 12, g->cell, SAMX_FIG_CENTRE, "image");
  for (int64_t a = 0; a < s->k; a++) {
    snprintf(buf, sizeof buf, "annotator %lld", (long long)a + 1);
    samx_fig_text(cr, cell_x(&pen, col++) + g->cell / 2.0, y, 12, g->cell, SAMX_FIG_CENTRE, buf);
  }
  if (variance) samx_fig_text(cr, cell_x(&pen, col++) + g->cell / 2.0, y, 12, g->cell, SAMX_FIG_CENTRE, "annotator variance");
  for (int p = 0; p < s->n_pred; p++) {
    char method[128];
    pred_label(s, p, method, sizeof method);
    for (int64_t m = 0; m < g->m_shown[p]; m++) {
      snprintf(buf, sizeof buf, "%s %lld", method, (long long)m + 1);
      samx_fig_text(cr, cell_x(&pen, col++) + g->cell / 2.0, y, 12, g->cell, SAMX_FIG_CENTRE, buf);
    }
    if (variance) {
      snprintf(buf, sizeof buf, "%s variance", method);
      samx_fig_text(cr, cell_x(&pen, col++) + g->cell / 2.0, y, 12, g->cell, SAMX_FIG_CENTRE, buf);
    }
  }
}

// Buffers for one sample, sized for the largest prediction file.
typedef struct {
  uint8_t *img, *masks, *hyp;
  float *var;
} RowBuffers;

static int grid_row(const SamxGridSpec *spec, Sources *s, const GridLayout *g, cairo_t *cr, int row, RowBuffers *b) {
  int64_t index = spec->indices[row], npix = s->h * s->w;
  if (check_index(s, index)) return -1;
  if (samx_dataset_read_image_u8(s->ds, index, b->img) || samx_dataset_read_masks(s->ds, index, b->masks)) return -1;
  const uint8_t *valid = samx_dataset_annotator_valid(s->ds) + index * s->k;
  RowPen pen = {.cr = cr, .g = g, .h = s->h, .w = s->w};
  pen.scale = fit(g->cell, s->h, s->w, &pen.ox, &pen.oy);
  pen.y = SAMX_FIG_TITLE_H + SAMX_FIG_GAP + row * (g->cell + SAMX_FIG_GAP);
  int col = 0;

  cell_image(&pen, col, b->img, s->channels);
  int64_t box[4];
  if (spec->box && union_box(b->masks, valid, s->k, s->h, s->w, box)) {
    double x0 = cell_x(&pen, col) + pen.ox, y0 = pen.y + pen.oy;
    samx_fig_draw_box(cr, x0 + box[1] * pen.scale, y0 + box[0] * pen.scale, x0 + (box[3] + 1) * pen.scale,
                      y0 + (box[2] + 1) * pen.scale);
  }
  char label[160];
  snprintf(label, sizeof label, "#%lld %s", (long long)index, samx_dataset_case_id(s->ds, index));
  cairo_set_source_rgb(cr, 1, 1, 0.6);
  samx_fig_text(cr, cell_x(&pen, col) + 3, pen.y + 12, 10, g->cell - 6, SAMX_FIG_LEFT, label);
  col++;

  for (int64_t a = 0; a < s->k; a++, col++) {
    if (valid[a])
      cell_mask(&pen, col, b->img, s->channels, b->masks + a * npix, samx_fig_palette((int)a));
    else
      cell_note(&pen, col, "not read");
  }
  if (spec->variance) {
    mask_variance(b->masks, valid, s->k, npix, b->var);
    cell_heat(&pen, col++, b->var);
  }
  for (int p = 0; p < s->n_pred; p++) {
    int64_t prow = pred_row(s, p, index);
    if (prow < 0 || samx_predictions_read_masks(s->preds[p], prow, b->hyp)) return -1;
    for (int64_t m = 0; m < g->m_shown[p]; m++, col++)
      cell_mask(&pen, col, b->img, s->channels, b->hyp + m * npix, samx_fig_palette((int)s->k + p));
    if (spec->variance) {
      mask_variance(b->hyp, NULL, samx_predictions_m(s->preds[p]), npix, b->var);
      cell_heat(&pen, col++, b->var);
    }
  }
  return 0;
}

static int grid_draw(const SamxGridSpec *spec, Sources *s, const GridLayout *g, cairo_t *cr) {
  int64_t npix = s->h * s->w, m_max = 1;
  for (int p = 0; p < s->n_pred; p++)
    if (samx_predictions_m(s->preds[p]) > m_max) m_max = samx_predictions_m(s->preds[p]);
  RowBuffers b = {(uint8_t *)malloc((size_t)(npix * s->channels)), (uint8_t *)malloc((size_t)(npix * s->k)),
                  (uint8_t *)malloc((size_t)(npix * m_max)), (float *)malloc((size_t)npix * sizeof(float))};
  column_titles(cr, g, s, spec->variance);
  int rc = 0;
  for (int r = 0; r < spec->n_indices && rc == 0; r++) rc = grid_row(spec, s, g, cr, r, &b);
  if (rc == 0 && spec->variance) {
    double y = SAMX_FIG_TITLE_H + SAMX_FIG_GAP + spec->n_indices * (g->cell + SAMX_FIG_GAP) + 6;
    double w = g->width / 3.0 < 240 ? g->width / 3.0 : 240;
    samx_fig_draw_colorbar(cr, SAMX_FIG_GAP, y, w, 12, 0, 0.25, "per-pixel variance p(1 - p) of the masks");
  }
  free(b.img), free(b.masks), free(b.hyp), free(b.var);
  return rc;
}

int samx_figure_grid_size(const SamxGridSpec *spec, int *cols, int *width, int *height) {
  Sources s;
  if (sources_open(&s, spec->data_path, spec->pred_paths, spec->n_pred)) return -1;
  GridLayout g;
  grid_layout(spec, &s, &g);
  *cols = g.cols, *width = g.width, *height = g.height;
  free(g.m_shown);
  sources_close(&s);
  return 0;
}

int samx_figure_grid(const SamxGridSpec *spec) {
  if (spec->n_indices < 1) return samx_fail("figure grid: no sample indices given");
  Sources s;
  if (sources_open(&s, spec->data_path, spec->pred_paths, spec->n_pred)) return -1;
  GridLayout g;
  grid_layout(spec, &s, &g);
  SamxFigCanvas c;
  int rc = samx_fig_canvas_open(&c, spec->out_path, g.width, g.height);
  if (rc == 0) {
    rc = grid_draw(spec, &s, &g, c.cr);
    if (rc == 0)
      rc = samx_fig_canvas_close(&c);
    else
      samx_fig_canvas_abort(&c);
  }
  free(g.m_shown);
  sources_close(&s);
  return rc;
}

// ---- overlay ----

// The legend: one entry per valid annotator (solid) and per prediction file (dashed), laid out left
// to right and wrapped onto further lines of SAMX_FIG_LEGEND_H at the panel width.
#define MAX_LEGEND 64

typedef struct {
  char label[96];
  SamxRgb colour;
  int dashed;
} LegendEntry;

static int legend_entries(const SamxOverlaySpec *spec, const Sources *s, LegendEntry *e) {
  int n = 0;
  const uint8_t *valid = samx_dataset_annotator_valid(s->ds) + spec->index * s->k;
  for (int64_t a = 0; a < s->k && n < MAX_LEGEND; a++)
    if (valid[a]) {
      snprintf(e[n].label, sizeof e[n].label, "annotator %lld", (long long)a + 1);
      e[n].colour = samx_fig_palette((int)a), e[n].dashed = 0, n++;
    }
  for (int p = 0; p < s->n_pred && n < MAX_LEGEND; p++) {
    pred_label(s, p, e[n].label, sizeof e[n].label);
    if (spec->hyp >= 0) snprintf(e[n].label + strlen(e[n].label), sizeof e[n].label - strlen(e[n].label), " %d", spec->hyp + 1);
    e[n].colour = samx_fig_palette((int)s->k + p), e[n].dashed = 1, n++;
  }
  return n;
}

// Lays the entries out below y0 within width; draws them when draw is set. Returns the lines used.
static int legend_layout(cairo_t *cr, const LegendEntry *e, int n, double width, double y0, int draw) {
  cairo_set_font_size(cr, 11);
  double x = 8;
  int line = 0;
  for (int i = 0; i < n; i++) {
    cairo_text_extents_t t;
    cairo_text_extents(cr, e[i].label, &t);
    double w = 24 + t.x_advance + 14;
    if (x > 8 && x + w - 14 > width - 4) x = 8, line++;
    double y = y0 + (line + 1) * SAMX_FIG_LEGEND_H - 9;
    if (draw) {
      cairo_save(cr);
      samx_fig_set_rgb(cr, e[i].colour);
      cairo_set_line_width(cr, 3);
      if (e[i].dashed) cairo_set_dash(cr, (double[]){4, 3}, 2, 0);
      cairo_move_to(cr, x, y - 4), cairo_line_to(cr, x + 20, y - 4);
      cairo_stroke(cr);
      cairo_restore(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      samx_fig_text(cr, x + 24, y, 11, 0, SAMX_FIG_LEFT, e[i].label);
    }
    x += w;
  }
  return line + 1;
}

// Legend lines measured on a scratch surface, before the canvas (whose height depends on it) exists.
static int legend_lines(const LegendEntry *e, int n, double width) {
  cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create(scratch);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  int lines = legend_layout(cr, e, n, width, 0, 0);
  cairo_destroy(cr);
  cairo_surface_destroy(scratch);
  return lines;
}

static int overlay_draw(const SamxOverlaySpec *spec, Sources *s, cairo_t *cr, double scale) {
  int64_t npix = s->h * s->w, index = spec->index;
  uint8_t *img = (uint8_t *)malloc((size_t)(npix * s->channels)), *masks = (uint8_t *)malloc((size_t)(npix * s->k));
  int rc = samx_dataset_read_image_u8(s->ds, index, img) || samx_dataset_read_masks(s->ds, index, masks) ? -1 : 0;
  const uint8_t *valid = samx_dataset_annotator_valid(s->ds) + index * s->k;
  if (rc == 0) {
    samx_fig_draw_image(cr, img, s->h, s->w, s->channels, 0, 0, scale);
    int64_t box[4];
    if (spec->box && union_box(masks, valid, s->k, s->h, s->w, box))
      samx_fig_draw_box(cr, box[1] * scale, box[0] * scale, (box[3] + 1) * scale, (box[2] + 1) * scale);
    for (int64_t a = 0; a < s->k; a++)
      if (valid[a]) samx_fig_draw_mask(cr, masks + a * npix, s->h, s->w, 0, 0, scale, samx_fig_palette((int)a), 0, 2, 0);
  }
  for (int p = 0; p < s->n_pred && rc == 0; p++) {
    int64_t m = samx_predictions_m(s->preds[p]), prow = pred_row(s, p, index);
    uint8_t *hyp = (uint8_t *)malloc((size_t)(npix * m));
    rc = prow < 0 || samx_predictions_read_masks(s->preds[p], prow, hyp) ? -1 : 0;
    for (int64_t j = 0; j < m && rc == 0; j++)
      if (spec->hyp < 0 || spec->hyp == j)
        samx_fig_draw_mask(cr, hyp + j * npix, s->h, s->w, 0, 0, scale, samx_fig_palette((int)s->k + p), 0, 2, 1);
    free(hyp);
  }
  free(img), free(masks);
  return rc;
}

static int check_hyp(const SamxOverlaySpec *spec, const Sources *s) {
  for (int p = 0; p < s->n_pred; p++)
    if (spec->hyp >= samx_predictions_m(s->preds[p]))
      return samx_fail("%s: hypothesis %d asked for, the file has %lld", samx_predictions_path(s->preds[p]), spec->hyp,
                       (long long)samx_predictions_m(s->preds[p]));
  return 0;
}

int samx_figure_overlay(const SamxOverlaySpec *spec) {
  Sources s;
  if (sources_open(&s, spec->data_path, spec->pred_paths, spec->n_pred)) return -1;
  if (check_index(&s, spec->index) || check_hyp(spec, &s)) return sources_close(&s), -1;
  int64_t long_side = s.h > s.w ? s.h : s.w;
  double side = spec->cell > 0 ? spec->cell : (long_side < 256 ? 256 : (double)long_side);
  double scale = side / (double)long_side;
  int width = (int)lround(scale * (double)s.w), panel_h = (int)lround(scale * (double)s.h);
  LegendEntry entries[MAX_LEGEND];
  int n_entries = legend_entries(spec, &s, entries);
  int lines = legend_lines(entries, n_entries, width);
  SamxFigCanvas c;
  int rc = samx_fig_canvas_open(&c, spec->out_path, width, panel_h + lines * SAMX_FIG_LEGEND_H);
  if (rc == 0) {
    rc = overlay_draw(spec, &s, c.cr, scale);
    if (rc == 0) legend_layout(c.cr, entries, n_entries, width, panel_h, 1);
    if (rc == 0)
      rc = samx_fig_canvas_close(&c);
    else
      samx_fig_canvas_abort(&c);
  }
  sources_close(&s);
  return rc;
}

int samx_figure_data_show(const char *data_path, int64_t index, const char *out_path) {
  SamxOverlaySpec spec = {.data_path = data_path, .index = index, .hyp = -1, .box = 1, .out_path = out_path};
  return samx_figure_overlay(&spec);
}
