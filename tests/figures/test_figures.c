// Figures: a tiny dataset and prediction file written here, drawn by the library and by the `samx
// figure` binary; the PNGs are read back with cairo and checked for size (from the documented
// geometry, recomputed here) and for the colour of known pixels (worked out by hand below).
//
// 16x16 black images, K = 2, M = 3.
//   annotator 0: rows/cols 4..11, annotator 1: rows/cols 6..13 (sample 2: annotator 1 not read).
//   hypothesis 0 = annotator 0's block, hypothesis 1 = annotator 1's block, hypothesis 2 empty.
// Over black, a fill at alpha 1/2 shows half the colour. Variance p(1-p) on [0, 0.25] through viridis:
//   pixel (5,5): annotators 1 of 2 -> 0.25 -> viridis(1) (253,231,37); hypotheses 1 of 3 -> 2/9 ->
//   viridis(8/9) (181,222,43). Pixel (8,8): annotators 2 of 2 -> 0 -> viridis(0) (68,1,84).
//   Sample 2 (only annotator 0 valid): annotator variance 0 everywhere.
#include <cairo.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "figures/figures.h"
#include "tests/harness.h"
#include "tests/test_util.h"

enum { S = 16, K = 2, M = 3 };
static char dir[64], data_path[128], pred_path[128];
static const char *samx_bin;

static void block(uint8_t *m, int lo, int hi) {
  for (int r = lo; r <= hi; r++)
    for (int c = lo; c <= hi; c++) m[r * S + c] = 1;
}

static int write_files(void) {
  SamxDatasetSpec spec = {.h = S, .w = S, .k = K, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test",
                          .modality = "synthetic"};
  SamxDatasetWriter *dw = samx_dataset_create(data_path, &spec);
  if (!dw) return -1;
  uint8_t image[S * S] = {0}, masks[K * S * S] = {0}, hyp[M * S * S] = {0};
  block(masks, 4, 11), block(masks + S * S, 6, 13);
  block(hyp, 4, 11), block(hyp + S * S, 6, 13);
  const char *case_id[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    uint8_t valid[K] = {1, (uint8_t)(i != 2)}, m[K * S * S];
    memcpy(m, masks, sizeof m);
    if (i == 2) memset(m + S * S, 0, S * S);
    SamxSample s = {image, m, valid, SAMX_SPLIT_TEST, case_id[i], {1, 1}};
    if (samx_dataset_append(dw, &s)) return samx_dataset_abort(dw), -1;
  }
  if (samx_dataset_finish(dw)) return -1;
  SamxPredictionsSpec ps = {.m = M, .h = S, .w = S, .method = "test", .checkpoint_path = "none",
                            .dataset_path = data_path, .split = "all", .with_quality = 1};
  SamxPredictionsWriter *pw = samx_predictions_create(pred_path, &ps);
  if (!pw) return -1;
  int64_t rows[2] = {0, 2};  // no prediction for row 1, on purpose
  for (int i = 0; i < 2; i++)
    if (samx_predictions_append(pw, rows[i], hyp, NULL, 0.5f + 0.1f * (float)i)) return samx_predictions_abort(pw), -1;
  return samx_predictions_finish(pw);
}

// ---- reading figures back ----

typedef struct {
  cairo_surface_t *s;
  int w, h;
} Png;

static int png_open(Png *p, const char *path) {
  p->s = cairo_image_surface_create_from_png(path);
  if (cairo_surface_status(p->s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(p->s);
    p->s = NULL;
    return -1;
  }
  p->w = cairo_image_surface_get_width(p->s), p->h = cairo_image_surface_get_height(p->s);
  return 0;
}

static void png_pixel(const Png *p, int x, int y, int rgb[3]) {
  const uint8_t *row = cairo_image_surface_get_data(p->s) + (size_t)y * (size_t)cairo_image_surface_get_stride(p->s);
  uint32_t v = ((const uint32_t *)row)[x];
  rgb[0] = (int)(v >> 16 & 255), rgb[1] = (int)(v >> 8 & 255), rgb[2] = (int)(v & 255);
}

static void check_pixel(const Png *p, int x, int y, int r, int g, int b, const char *what) {
  int got[3] = {-1, -1, -1};
  if (x >= 0 && y >= 0 && x < p->w && y < p->h) png_pixel(p, x, y, got);
  int ok = abs(got[0] - r) <= 3 && abs(got[1] - g) <= 3 && abs(got[2] - b) <= 3;
  CHECK(ok, "%s: pixel (%d, %d) is (%d,%d,%d), expected (%d,%d,%d)", what, x, y, got[0], got[1], got[2], r, g, b);
}

static int file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return strstr(buf, needle) != NULL;
}

static int no_temp_files(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int clean = 1;
  while (d && (e = readdir(d))) clean &= strstr(e->d_name, ".tmp.") == NULL;
  if (d) closedir(d);
  return clean;
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// ---- tests ----

static void test_colours(void) {
  SamxRgb o = samx_fig_palette(0), v0 = samx_fig_viridis(0), v1 = samx_fig_viridis(1), v9 = samx_fig_viridis(8.0 / 9);
  CHECK(lround(o.r * 255) == 230 && lround(o.g * 255) == 159 && lround(o.b * 255) == 0, "palette(0) is Okabe-Ito orange");
  CHECK(samx_fig_palette(7).r == o.r && samx_fig_palette(7).g == o.g, "palette cycles after 7 colours");
  CHECK(lround(v0.r * 255) == 68 && lround(v0.g * 255) == 1 && lround(v0.b * 255) == 84, "viridis(0)");
  CHECK(lround(v1.r * 255) == 253 && lround(v1.g * 255) == 231 && lround(v1.b * 255) == 37, "viridis(1)");
  CHECK(lround(v9.r * 255) == 181 && lround(v9.g * 255) == 222, "viridis(8/9)");
  CHECK(samx_fig_viridis(-1).r == v0.r && samx_fig_viridis(2).r == v1.r, "viridis clamps");
}

// Device pixel of image pixel (r, c) in grid cell (row, col) at cell 64 (4 device pixels per pixel).
static int gx(int col, int c) { return SAMX_FIG_GAP + col * (64 + SAMX_FIG_GAP) + c * 4 + 2; }
static int gy(int row, int r) { return SAMX_FIG_TITLE_H + SAMX_FIG_GAP + row * (64 + SAMX_FIG_GAP) + r * 4 + 2; }

static void test_grid(void) {
  char out[160], svg[160];
  path_in(out, sizeof out, "grid.png"), path_in(svg, sizeof svg, "grid.svg");
  const char *preds[1] = {pred_path};
  int64_t rows[2] = {0, 2};
  SamxGridSpec spec = {.data_path = data_path, .pred_paths = preds, .n_pred = 1, .indices = rows, .n_indices = 2,
                       .cell = 64, .variance = 1, .box = 1, .out_path = out};
  int rc = samx_figure_grid(&spec);
  CHECK(rc == 0, "grid: %s", rc ? samx_last_error() : "");
  // image | 2 annotators | annotator variance | 3 hypotheses | hypothesis variance
  int cols = 8, width = 4 + cols * 68, height = 24 + 4 + 2 * 68 + 40, c2, w2, h2;
  CHECK(samx_figure_grid_size(&spec, &c2, &w2, &h2) == 0 && c2 == cols && w2 == width && h2 == height,
        "grid size %d cols %d x %d, expected %d cols %d x %d", c2, w2, h2, cols, width, height);
  Png p;
  CHECK(png_open(&p, out) == 0, "grid PNG readable");
  if (!p.s) return;
  CHECK(p.w == width && p.h == height, "grid PNG is %d x %d, expected %d x %d", p.w, p.h, width, height);
  check_pixel(&p, gx(1, 8), gy(0, 8), 115, 80, 0, "annotator 1 fill: half orange");
  check_pixel(&p, gx(1, 1), gy(0, 1), 0, 0, 0, "annotator 1 outside: black image");
  check_pixel(&p, gx(2, 10), gy(0, 10), 43, 90, 117, "annotator 2 fill: half sky blue");
  check_pixel(&p, gx(3, 5), gy(0, 5), 253, 231, 37, "annotator variance 1 of 2");
  check_pixel(&p, gx(3, 8), gy(0, 8), 68, 1, 84, "annotator variance 2 of 2");
  check_pixel(&p, gx(4, 8), gy(0, 8), 0, 79, 58, "hypothesis 1 fill: half bluish green");
  check_pixel(&p, gx(6, 8), gy(0, 8), 0, 0, 0, "empty hypothesis 3");
  check_pixel(&p, gx(7, 5), gy(0, 5), 181, 222, 43, "hypothesis variance 1 of 3");
  check_pixel(&p, gx(7, 8), gy(0, 8), 181, 222, 43, "hypothesis variance 2 of 3");
  check_pixel(&p, gx(7, 1), gy(0, 1), 68, 1, 84, "hypothesis variance 0 of 3");
  // Box prompt: union of the annotators, columns 4..13: its left edge at device x = 16 in the cell,
  // the white line covers [15, 17].
  check_pixel(&p, gx(0, 0) + 14, gy(0, 9), 255, 255, 255, "box prompt edge");
  check_pixel(&p, gx(2, 0) + 2, gy(1, 0) + 2, 217, 217, 217, "annotator 2 not read: grey cell");
  check_pixel(&p, gx(3, 5), gy(1, 5), 68, 1, 84, "variance over the valid annotators only");
  cairo_surface_destroy(p.s);

  spec.out_path = svg;
  rc = samx_figure_grid(&spec);
  CHECK(rc == 0 && file_contains(svg, "<svg") && file_contains(svg, "width=\"548"), "grid SVG written with its size");

  // Bad input: an index out of range, a row the prediction file lacks; neither leaves a file behind.
  char bad[160];
  path_in(bad, sizeof bad, "bad.png");
  spec.out_path = bad;
  int64_t far[1] = {7};
  spec.indices = far, spec.n_indices = 1;
  rc = samx_figure_grid(&spec);
  CHECK(rc == -1 && strstr(samx_last_error(), "out of range") && strstr(samx_last_error(), data_path),
        "index out of range names the file: %s", samx_last_error());
  int64_t missing[1] = {1};
  spec.indices = missing;
  rc = samx_figure_grid(&spec);
  CHECK(rc == -1 && strstr(samx_last_error(), "no prediction for dataset row 1") && strstr(samx_last_error(), pred_path),
        "missing prediction names the file: %s", samx_last_error());
  CHECK(access(bad, F_OK) != 0 && no_temp_files(), "failed figures leave no file");
}

static void test_overlay(void) {
  char out[160];
  path_in(out, sizeof out, "show.png");
  int rc = samx_figure_data_show(data_path, 0, out);
  CHECK(rc == 0, "data show: %s", rc ? samx_last_error() : "");
  Png p;
  CHECK(png_open(&p, out) == 0, "overlay PNG readable");
  if (!p.s) return;
  // 16 px image drawn at 256 (16 device pixels per pixel), legend band below.
  CHECK(p.w == 256 && p.h == 256 + SAMX_FIG_LEGEND_H, "overlay is %d x %d", p.w, p.h);
  check_pixel(&p, 136, 64, 230, 159, 0, "annotator 1 contour (top edge)");
  check_pixel(&p, 96, 200, 86, 180, 233, "annotator 2 contour (left edge)");
  check_pixel(&p, 136, 80, 0, 0, 0, "inside the contours: the image");
  check_pixel(&p, 64, 200, 255, 255, 255, "box prompt edge");
  cairo_surface_destroy(p.s);

  const char *preds[1] = {pred_path};
  SamxOverlaySpec spec = {.data_path = data_path, .pred_paths = preds, .n_pred = 1, .index = 2, .hyp = 1, .cell = 100,
                          .box = 1, .out_path = out};
  rc = samx_figure_overlay(&spec);
  // Three legend entries do not fit on one line of a 100-pixel panel: the legend wraps.
  CHECK(rc == 0 && png_open(&p, out) == 0 && p.w == 100 && p.h > 100 + SAMX_FIG_LEGEND_H &&
            (p.h - 100) % SAMX_FIG_LEGEND_H == 0,
        "overlay with a hypothesis, legend wrapped (%d x %d)", p.w, p.h);
  if (p.s) cairo_surface_destroy(p.s);
  spec.hyp = 5;
  CHECK(samx_figure_overlay(&spec) == -1 && strstr(samx_last_error(), "hypothesis 5"), "hypothesis out of range: %s",
        samx_last_error());
}

static void test_scatter(void) {
  char out[160];
  path_in(out, sizeof out, "scatter.png");
  double x[21], y[21];
  for (int i = 0; i < 20; i++) x[i] = i / 20.0, y[i] = 0.8 * x[i] + 0.05 * ((i * 7) % 5 - 2);
  x[20] = NAN, y[20] = 0.3;
  int rc = samx_figure_scatter(x, y, 21, "test", "score", "dice", 0, 0, out);
  Png p = {0};
  CHECK(rc == 0 && png_open(&p, out) == 0 && p.w == 640 && p.h == 480, "scatter 640 x 480: %s", rc ? samx_last_error() : "");
  if (p.s) cairo_surface_destroy(p.s);
  CHECK(samx_figure_scatter(x + 20, y + 20, 1, "t", "x", "y", 0, 0, out) == -1, "scatter without finite pairs fails");
}

static void test_pred_label(void) {
  const char *paths[] = {"runs/pred/seed1/mcl.h5", "runs/pred/seed1/seqsam_m3.h5", "seqsam_m10.h5", "x/p2sam"};
  const char *methods[] = {"mcl", "seqsam", "seqsam", "p2sam"};
  char out[64];
  samx_figure_pred_label(paths, methods, 4, 0, out, sizeof out);
  CHECK(!strcmp(out, "mcl"), "a method alone in the figure is named by its method: '%s'", out);
  samx_figure_pred_label(paths, methods, 4, 1, out, sizeof out);
  CHECK(!strcmp(out, "seqsam_m3"), "two SeqSAM runs: the first named by its file: '%s'", out);
  samx_figure_pred_label(paths, methods, 4, 2, out, sizeof out);
  CHECK(!strcmp(out, "seqsam_m10"), "two SeqSAM runs: the second named by its file: '%s'", out);
  samx_figure_pred_label(paths, methods, 2, 1, out, sizeof out);
  CHECK(!strcmp(out, "seqsam"), "one SeqSAM run among the first two: its method: '%s'", out);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void test_curves(void) {
  char run[128], log[160], out[160], svg[160];
  path_in(run, sizeof run, "run");
  mkdir(run, 0755);
  snprintf(log, sizeof log, "%s/log.jsonl", run);
  FILE *f = fopen(log, "w");
  for (int s = 0; s < 10; s++)
    fprintf(f, "{\"ts\": %d, \"step\": %d, \"loss\": %g, \"lr\": %g, \"grad_norm\": %g, \"event\": \"train\"}\n",
            1000 + s, s, 1.0 / (s + 1), 1e-4, 0.5 + s);
  fprintf(f, "\n{\"step\": 5, \"val_dice\": 0.5, \"split\": \"val\"}\n{\"step\": 9, \"val_dice\": 0.6}\n");
  fclose(f);
  CHECK(samx_figure_curves_count(log) == 4, "4 panels (loss, validation, lr, grad_norm), got %d",
        samx_figure_curves_count(log));
  snprintf(out, sizeof out, "%s/c.png", run), snprintf(svg, sizeof svg, "%s/c.svg", run);
  int rc = samx_figure_curves(log, out);
  Png p = {0};
  CHECK(rc == 0 && png_open(&p, out) == 0 && p.w == 3 * SAMX_FIG_CURVE_W && p.h == 2 * SAMX_FIG_CURVE_H,
        "curves: 3 panels a row, 2 rows (%d x %d)", p.w, p.h);
  if (p.s) cairo_surface_destroy(p.s);
  CHECK(samx_figure_curves(log, svg) == 0 && file_contains(svg, "<svg"), "curves SVG");

  // The trainer's log: constants and bookkeeping (samples, skipped, memory) make no panel, the nested
  // "val" record makes the validation panel and the validation loss, time_s the seconds per step.
  char trainer[160];
  path_in(trainer, sizeof trainer, "trainer.jsonl");
  f = fopen(trainer, "w");
  for (int s = 1; s <= 40; s++) {
    fprintf(f, "{\"step\":%d,\"epoch\":0,\"loss\":%g,\"lr\":1e-3,\"grad_norm\":%g,\"skipped\":0,\"samples\":8,"
            "\"samples_per_s\":100,\"act_peak_mb\":33.7,\"rss_mb\":211,\"time_s\":%g}\n", s, 1.0 / s, s == 20 ? 2e4 : 1.0, 0.05 * s);
    if (s % 20 == 0)
      fprintf(f, "{\"step\":%d,\"val\":{\"n\":32,\"ged\":0.9,\"d_avg\":0.4,\"d_max\":0.5,\"hm_iou\":0.3,\"loss\":0.5,"
              "\"seconds\":0.05}}\n", s);
  }
  fclose(f);
  CHECK(samx_figure_curves_count(trainer) == 5, "trainer log: 5 panels (loss, validation, lr, grad norm, step time), got %d",
        samx_figure_curves_count(trainer));
  rc = samx_figure_curves(trainer, out);
  CHECK(rc == 0 && png_open(&p, out) == 0 && p.w == 3 * SAMX_FIG_CURVE_W && p.h == 2 * SAMX_FIG_CURVE_H,
        "trainer curves: 3 panels a row, 2 rows (%d x %d)", p.w, p.h);
  if (p.s) cairo_surface_destroy(p.s);
  // Without the loss and lr, and with the clock missing, those panels go; constants never make one.
  write_text(trainer, "{\"step\":1,\"grad_norm\":2,\"samples\":8,\"rss_mb\":3}\n{\"step\":2,\"grad_norm\":3,\"samples\":8}\n"
             "{\"step\":2,\"val\":{\"n\":4,\"d_avg\":0.5,\"seconds\":1}}\n");
  CHECK(samx_figure_curves_count(trainer) == 2, "grad_norm and val.d_avg only: 2 panels, got %d",
        samx_figure_curves_count(trainer));

  char bad[160];
  path_in(bad, sizeof bad, "bad.jsonl");
  write_text(bad, "{\"step\": 1, \"loss\": 2}\nnot json\n");
  CHECK(samx_figure_curves(bad, out) == -1 && strstr(samx_last_error(), "line 2") && strstr(samx_last_error(), bad),
        "malformed line named: %s", samx_last_error());
  write_text(bad, "{\"loss\": 2}\n");
  CHECK(samx_figure_curves(bad, out) == -1 && strstr(samx_last_error(), "step"), "no step: %s", samx_last_error());
  write_text(bad, "{\"step\": 1, \"samples\": 8, \"skipped\": 0}\n");
  CHECK(samx_figure_curves(bad, out) == -1 && strstr(samx_last_error(), "loss") && strstr(samx_last_error(), bad),
        "only bookkeeping keys: %s", samx_last_error());
}

static int run_samx(const char *args, const char *out_path) {
  char cmd[4 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "%s %s > %s 2>&1", samx_bin, args, out_path);
  return samx_test_exit_status(system(cmd));
}

static void test_cli(void) {
  char args[2048], out[160], log[160];
  path_in(out, sizeof out, "cli.png"), path_in(log, sizeof log, "cli.log");
  snprintf(args, sizeof args, "figure grid --data %s --pred %s --indices 0,2 --cell 64 --out %s", data_path, pred_path, out);
  Png p = {0};
  CHECK(run_samx(args, log) == 0 && png_open(&p, out) == 0 && p.w == 548 && p.h == 204, "samx figure grid");
  if (p.s) cairo_surface_destroy(p.s);
  snprintf(args, sizeof args, "figure grid --data %s --pred %s --indices 0,2 --no-variance --max-hyp 1 --cell 64 --out %s",
           data_path, pred_path, out);
  CHECK(run_samx(args, log) == 0 && png_open(&p, out) == 0 && p.w == 4 + 4 * 68 && p.h == 24 + 4 + 2 * 68,
        "grid without variance, one hypothesis");
  if (p.s) cairo_surface_destroy(p.s);
  snprintf(args, sizeof args, "figure scatter --data %s --pred %s --out %s/sc.svg", data_path, pred_path, dir);
  char sc[160];
  path_in(sc, sizeof sc, "sc.svg");
  CHECK(run_samx(args, log) == 0 && file_contains(sc, "<svg"), "samx figure scatter");
  snprintf(args, sizeof args, "figure curves %s/run", dir);
  char png[160], svg[160];
  path_in(png, sizeof png, "run/curves.png"), path_in(svg, sizeof svg, "run/curves.svg");
  CHECK(run_samx(args, log) == 0 && access(png, F_OK) == 0 && access(svg, F_OK) == 0, "samx figure curves RUN_DIR");
  snprintf(args, sizeof args, "figure grid --data %s/nothing.h5 --out %s", dir, out);
  CHECK(run_samx(args, log) == 1 && file_contains(log, "nothing.h5"), "missing dataset: exit 1 naming the file");
  snprintf(args, sizeof args, "figure grid --data %s --indices 2-1 --out %s", data_path, out);
  CHECK(run_samx(args, log) == 1 && file_contains(log, "--indices"), "bad --indices");
  CHECK(run_samx("bench metrics --quick -r 1", log) == 0 && file_contains(log, "hm_iou") &&
            file_contains(log, "sample/s"),
        "samx bench metrics --quick");
}

int main(int argc, char **argv) {
  samx_bin = samx_test_samx_bin(argv[0]);
  SAMX_ASSERT(samx_test_mkdtemp(dir, sizeof dir, "samx_figures") == 0, "mkdtemp failed");
  snprintf(data_path, sizeof data_path, "%s/d.h5", dir), snprintf(pred_path, sizeof pred_path, "%s/p.h5", dir);
  SAMX_ASSERT(write_files() == 0, "writing the test files: %s", samx_last_error());
  test_colours();
  test_grid();
  test_overlay();
  test_scatter();
  test_curves();
  test_pred_label();
  if (access(samx_bin, X_OK) == 0)
    test_cli();
  else
    CHECK(0, "%s not built", samx_bin);
  int rc = samx_test_summary();
  if (rc == 0) samx_test_remove_dir(dir);
  return rc;
}
