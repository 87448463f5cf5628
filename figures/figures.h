// Figures drawn with cairo: per-sample grids of annotators and hypotheses, single overlays (`samx data
// show`), SQA score vs true quality scatter plots and training curves from a run's JSON-lines log.
//
// Output format follows the file name: ".svg" writes SVG (sizes in points = pixels), anything else
// PNG. Files are written to a temporary name and renamed, so a failure never leaves a half figure.
// Every function returns 0, or -1 with samx_last_error() naming the file and what was wrong.
//
// Colours: categorical colours (one per annotator, one per method) come from the Okabe-Ito palette,
// designed to stay distinguishable under the common colour-vision deficiencies; continuous maps
// (hypothesis variance, annotator disagreement) use viridis, which is perceptually uniform and
// readable in greyscale. Masks are drawn as a translucent fill (SAMX_FIG_FILL_ALPHA) with an opaque
// contour along the pixel edges, scaled with nearest-neighbour so pixels stay pixels.
#ifndef SAMX_FIGURES_H
#define SAMX_FIGURES_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_FIG_FILL_ALPHA 0.5

typedef struct {
  double r, g, b;  // 0..1
} SamxRgb;

// Okabe-Ito without black, cycling: orange, sky blue, bluish green, yellow, blue, vermillion,
// reddish purple.
SamxRgb samx_fig_palette(int i);
// Viridis at t in [0, 1] (clamped).
SamxRgb samx_fig_viridis(double t);

// ---- grids: one row per sample ----
// Columns: the image with its box prompt (the tight box around the union of the valid annotators'
// masks, as the SeqSAM/MedSAM box; dataset files store no prompt), each annotator (colour
// samx_fig_palette(k)), optionally the annotators' disagreement map, then for each prediction file
// its hypotheses (colour samx_fig_palette(k_max + p) for file p) and optionally their uncertainty
// map. Disagreement and uncertainty are the per-pixel variance p(1 - p) of the binary masks (p the
// fraction of masks that mark the pixel; 0..0.25), drawn with viridis over [0, 0.25].
//
// Geometry (pixels): every cell is cell x cell; cells are separated and surrounded by gap = 4;
// a title band of SAMX_FIG_TITLE_H above the first row; a colour-bar band of SAMX_FIG_COLORBAR_H
// below the last row when a variance column is drawn. Width = gap + cols (cell + gap),
// height = TITLE_H + gap + rows (cell + gap) [+ COLORBAR_H]. Cell (r, c) starts at
// x = gap + c (cell + gap), y = TITLE_H + gap + r (cell + gap). Images are scaled to fit the cell
// keeping their aspect ratio, centred.
#define SAMX_FIG_GAP 4
#define SAMX_FIG_TITLE_H 24
#define SAMX_FIG_COLORBAR_H 40

typedef struct {
  const char *data_path;
  const char *const *pred_paths;  // prediction files (may be 0 of them)
  int n_pred;
  const int64_t *indices;  // dataset rows, one per grid row
  int n_indices;
  int cell;         // cell size in pixels; 0: 160
  int max_hyp;      // hypotheses shown per method; 0: all
  int variance;     // draw the disagreement / uncertainty columns
  int box;          // draw the box prompt on the image column
  const char *out_path;
} SamxGridSpec;

int samx_figure_grid(const SamxGridSpec *spec);

// Number of columns and image size of a grid as samx_figure_grid would draw it (for tests and
// callers that lay out several figures). Opens the files; returns 0 or -1.
int samx_figure_grid_size(const SamxGridSpec *spec, int *cols, int *width, int *height);

// ---- overlays: one panel ----
// The image at `cell` pixels (0: the image's own size, at least 256 on the long side), the box
// prompt, every valid annotator's contour in its own colour (solid) and, for each prediction file,
// hypothesis `hyp` (-1: all of them) as dashed contours in the file's colour; below, a legend of
// lines of SAMX_FIG_LEGEND_H pixels, wrapped to the panel width (one line for two annotators at
// 256). Width = panel width, height = panel height + lines x LEGEND_H. Masks are contours only (no
// fill), so overlapping raters stay readable.
#define SAMX_FIG_LEGEND_H 28

typedef struct {
  const char *data_path;
  const char *const *pred_paths;
  int n_pred;
  int64_t index;  // dataset row
  int hyp;        // -1: all hypotheses
  int cell;       // long side of the panel; 0: as above
  int box;
  const char *out_path;
} SamxOverlaySpec;

int samx_figure_overlay(const SamxOverlaySpec *spec);

// `samx data show FILE --index i --out grid.png`: the overlay of sample i's annotators (no
// predictions, box drawn, default size).
int samx_figure_data_show(const char *data_path, int64_t index, const char *out_path);

// The name of prediction file p among n in one figure (column titles, legends): its method, or,
// when another file of the figure has the same method (SeqSAM with M = 3 and M = 10), the file's
// name without its directory and ".h5", so that every run is named apart.
void samx_figure_pred_label(const char *const *paths, const char *const *methods, int n, int p, char *out, size_t size);

// ---- plots ----
// Scatter of y against x (n points; pairs with a non-finite side are skipped and counted in the
// subtitle), title "<title>: Pearson r = .., Spearman rho = .. (n = ..)", axis labels, a fitted
// least-squares line. width x height pixels (0: 640 x 480).
int samx_figure_scatter(const double *x, const double *y, int64_t n, const char *title, const char *xlabel,
                        const char *ylabel, int width, int height, const char *out_path);

// Training curves from a JSON-lines log (one object per line; lines without a numeric "step" are
// skipped, lines that are not JSON objects are an error naming the line), the panels of nnU-Net's
// progress.png against "step": the training loss with its moving average and the validation loss
// ("val.loss" of the trainer's nested "val" record, or "val_loss"), the validation metrics ("val.*"
// or "val_*"), the learning rate ("lr"), log10 of the gradient norm ("grad_norm") and the seconds
// per step (from the cumulative "time_s"). A panel whose keys the log lacks is left out; other keys
// (constants and bookkeeping) are not drawn. SAMX_FIG_CURVE_COLS panels per row of
// SAMX_FIG_CURVE_W x SAMX_FIG_CURVE_H pixels.
#define SAMX_FIG_CURVE_COLS 3
#define SAMX_FIG_CURVE_W 360
#define SAMX_FIG_CURVE_H 260
int samx_figure_curves(const char *log_path, const char *out_path);
// Number of panels samx_figure_curves would draw for log_path, or -1.
int samx_figure_curves_count(const char *log_path);

#ifdef __cplusplus
}
#endif
#endif
