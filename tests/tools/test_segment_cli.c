// `samx segment` and `samx convert` through the command line, against SamPredictor's outputs in
// tests/data/sam_tiny (3 images x 6 prompt sets). Tolerances from the data's README: 1e-3 absolute
// on embeddings, logits and IoU predictions; masks may differ only where the reference logit is
// within 1e-2 of 0. Also: grey and 16-bit inputs, the overlay, the convert round trip, and the
// error paths (non-zero exit, exactly one line on stderr, no output file).
//
// The samx binary: $SAMX_BIN, else "samx" next to this test executable, else build/samx (relative to
// the repository root, the tests' working directory). argv[1] "cuda" runs the model on cuda:0.
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/image_io.h"

#define CASES "tests/data/sam_tiny/sam_tiny_cases.safetensors"
#define CKPT "tests/data/sam_tiny/sam_tiny.pth"

static SamxSafetensors golden;
static const char *bin;
static char dir[256];
static const char *device = "cpu";
static char err_text[8192];  // stderr of the last command

static const char *IMAGES[] = {"same", "up", "down"};
static const char *PROMPT_CASES[] = {"box", "box_multi", "points", "point1", "box_points", "box_maskin"};

// Runs `samx ARGS`; returns the exit status (-1 when killed by a signal); stderr lands in err_text.
#define samx_run(...) samx_test_run_samx(dir, 0, err_text, sizeof err_text, __VA_ARGS__)

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static const SamxSTEntry *gold(const char *img, const char *cs, const char *name) {
  char key[256];
  if (cs)
    snprintf(key, sizeof key, "%s.%s.%s", img, cs, name);
  else
    snprintf(key, sizeof key, "%s.%s", img, name);
  return samx_st_find(&golden, key);
}

// A path in the temporary directory; a ring of buffers, so that one call can use several.
static char *path_in_dir(const char *fmt, const char *a, const char *b) {
  static char buf[16][512];
  static int k;
  char name[256];
  snprintf(name, sizeof name, fmt, a, b);
  k = (k + 1) % 16;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static int file_exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

// ---- comparing one run with SamPredictor ----

static double max_abs_diff(const SamxSTEntry *got, const SamxSTEntry *want) {
  if (!got || !want || got->numel != want->numel || got->dtype != SAMX_F32) return INFINITY;
  const float *g = (const float *)got->data;
  float *w = samx_st_to_f32(want);
  double m = 0;
  for (int64_t i = 0; i < got->numel; i++) {
    double d = fabs((double)g[i] - w[i]);
    m = d > m || d != d ? (d != d ? INFINITY : d) : m;
  }
  free(w);
  return m;
}

static int has_shape(const SamxSTEntry *e, SamxDType dt, int ndim, const int64_t *shape) {
  if (!e || e->dtype != dt || e->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (e->shape[i] != shape[i]) return 0;
  return 1;
}

// Pixels of mask m (values 0/on) that disagree with the golden mask m although the golden logit
// is not within 1e-2 of 0.
static int64_t mask_mismatches(const uint8_t *got, uint8_t on, const char *img, const char *cs, int m) {
  const SamxSTEntry *masks = gold(img, cs, "masks"), *logits = gold(img, cs, "logits");
  int64_t hw = masks->shape[1] * masks->shape[2], bad = 0;
  const uint8_t *want = (const uint8_t *)masks->data + hw * m;
  float *ref = samx_st_to_f32(logits);
  for (int64_t i = 0; i < hw; i++)
    if ((got[i] == on) != (want[i] != 0) && fabs(ref[hw * m + i]) >= 1e-2) bad++;
  free(ref);
  return bad;
}

static int golden_best(const char *img, const char *cs, int *second) {
  const SamxSTEntry *e = gold(img, cs, "iou_predictions");
  const float *v = (const float *)e->data;
  int best = 0;
  for (int i = 1; i < e->numel; i++)
    if (v[i] > v[best]) best = i;
  *second = best;  // another hypothesis within 1e-3 may legitimately win in fp32
  for (int i = 0; i < e->numel; i++)
    if (i != best && v[best] - v[i] <= 1e-3) *second = i;
  return best;
}

static void check_out_png(const char *png, const char *img, const char *cs) {
  SamxImage im;
  const SamxSTEntry *image = gold(img, NULL, "image");
  int rc = samx_image_read(png, &im);
  CHECK(rc == 0, "%s: %s", png, samx_last_error());
  if (rc) return;
  CHECK(im.channels == 1 && im.h == image->shape[0] && im.w == image->shape[1], "%s: %lldx%lld with %d channels", png,
        (long long)im.w, (long long)im.h, im.channels);
  int64_t not_binary = 0;
  for (int64_t i = 0; i < im.w * im.h * im.channels; i++) not_binary += im.data[i] != 0 && im.data[i] != 255;
  CHECK(not_binary == 0, "%s: %lld pixels neither 0 nor 255", png, (long long)not_binary);
  if (im.channels == 1 && im.h == image->shape[0] && im.w == image->shape[1]) {
    int second, best = golden_best(img, cs, &second);
    int64_t bad = mask_mismatches(im.data, 255, img, cs, best), bad2 = mask_mismatches(im.data, 255, img, cs, second);
    CHECK(bad == 0 || bad2 == 0, "%s.%s --out: %lld pixels differ from SamPredictor's best mask %d", img, cs,
          (long long)bad, best);
  }
  samx_image_free(&im);
}

static void check_tensors(const char *path, const char *img, const char *cs, const char *what) {
  SamxSafetensors st;
  int rc = samx_st_open(&st, path);
  CHECK(rc == 0, "%s: %s", path, samx_last_error());
  if (rc) return;
  const SamxSTEntry *image = gold(img, NULL, "image"), *ref_low = gold(img, cs, "low_res_logits");
  const SamxSTEntry *ref_emb = gold(img, NULL, "image_embeddings");
  int64_t M = ref_low->shape[0], H = image->shape[0], W = image->shape[1];
  int64_t se[4] = {1, ref_emb->shape[1], ref_emb->shape[2], ref_emb->shape[3]};
  int64_t sl[4] = {1, M, ref_low->shape[1], ref_low->shape[2]}, si[2] = {1, M}, sm[4] = {1, M, H, W};
  const SamxSTEntry *emb = samx_st_find(&st, "image_embeddings"), *low = samx_st_find(&st, "low_res_logits");
  const SamxSTEntry *iou = samx_st_find(&st, "iou_predictions"), *masks = samx_st_find(&st, "masks");
  CHECK(has_shape(emb, SAMX_F32, 4, se) && has_shape(low, SAMX_F32, 4, sl) && has_shape(iou, SAMX_F32, 2, si) &&
            has_shape(masks, SAMX_U8, 4, sm),
        "%s.%s%s: --tensors names, dtypes or shapes differ from the contract", img, cs, what);
  if (has_shape(masks, SAMX_U8, 4, sm)) {
    double ee = max_abs_diff(emb, ref_emb), el = max_abs_diff(low, ref_low);
    double ei = max_abs_diff(iou, gold(img, cs, "iou_predictions"));
    int64_t bad = 0, not01 = 0;
    for (int m = 0; m < M; m++) bad += mask_mismatches((const uint8_t *)masks->data + m * H * W, 1, img, cs, m);
    for (int64_t i = 0; i < masks->numel; i++) not01 += ((const uint8_t *)masks->data)[i] > 1;
    CHECK(ee <= 1e-3 && el <= 1e-3 && ei <= 1e-3 && bad == 0 && not01 == 0,
          "%s.%s%s: embeddings %.3g, low-res %.3g, iou %.3g, %lld mask pixels off, %lld not 0/1", img, cs, what, ee, el,
          ei, (long long)bad, (long long)not01);
    printf("%s.%s%s: embeddings %.2g, low_res %.2g, iou %.2g, mask mismatches %lld\n", img, cs, what, ee, el, ei,
           (long long)bad);
  }
  samx_st_close(&st);
}

// The prompt of a golden case as command-line options (%.9g: floats survive the trip exactly).
static void prompt_args(const char *img, const char *cs, char *buf, size_t n) {
  const SamxSTEntry *box = gold(img, cs, "box"), *pc = gold(img, cs, "point_coords"), *pl = gold(img, cs, "point_labels");
  size_t len = 0;
  buf[0] = 0;
  if (box) {
    const float *b = (const float *)box->data;
    len += (size_t)snprintf(buf + len, n - len, " --box %.9g,%.9g,%.9g,%.9g", b[0], b[1], b[2], b[3]);
  }
  for (int64_t i = 0; pc && i < pc->shape[0]; i++) {
    const float *p = (const float *)pc->data + 2 * i;
    len += (size_t)snprintf(buf + len, n - len, " --point %.9g,%.9g,%d", p[0], p[1], ((const int32_t *)pl->data)[i]);
  }
  if (((const int32_t *)gold(img, cs, "multimask")->data)[0]) len += (size_t)snprintf(buf + len, n - len, " --multimask");
}

static int write_mask_input(const char *path, const SamxSTEntry *mi) {
  SamxSTWriter *w = samx_st_writer_new();
  samx_st_writer_add(w, "low_res_logits", SAMX_F32, mi->ndim, mi->shape, mi->data);
  int rc = samx_st_writer_save(w, path);
  samx_st_writer_free(w);
  return rc;
}

static int write_image(const char *img) {
  const SamxSTEntry *e = gold(img, NULL, "image");
  return samx_png_write(path_in_dir("%s.png", img, ""), (const uint8_t *)e->data, e->shape[1], e->shape[0], 3);
}

static void golden_cases(void) {
  for (int i = 0; i < 3; i++) {
    const char *img = IMAGES[i];
    CHECK(write_image(img) == 0, "write %s.png: %s", img, samx_last_error());
    for (int c = 0; c < 6; c++) {
      const char *cs = PROMPT_CASES[c];
      char prompt[1024], extra[600] = "";
      prompt_args(img, cs, prompt, sizeof prompt);
      const SamxSTEntry *mi = gold(img, cs, "mask_input");
      if (mi) {
        char *mpath = path_in_dir("%s.%s.mask_input.safetensors", img, cs);
        CHECK(write_mask_input(mpath, mi) == 0, "write %s: %s", mpath, samx_last_error());
        snprintf(extra, sizeof extra, " --mask-input %s", mpath);
      }
      char *out = path_in_dir("%s.%s.png", img, cs), *tensors = path_in_dir("%s.%s.safetensors", img, cs);
      int rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s --tensors %s%s%s", CKPT,
                        path_in_dir("%s.png", img, ""), device, out, tensors, prompt, extra);
      CHECK(rc == 0, "%s.%s: samx segment exited with %d: %s", img, cs, rc, err_text);
      if (rc) continue;
      check_tensors(tensors, img, cs, "");
      check_out_png(out, img, cs);
      if (mi) {
        // The box case's own --tensors output ([1, 1, 40, 40]) fed back, as a user would chain runs.
        rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s --tensors %s%s --mask-input %s", CKPT,
                      path_in_dir("%s.png", img, ""), device, out, tensors, prompt,
                      path_in_dir("%s.%s.safetensors", img, "box"));
        CHECK(rc == 0, "%s.%s chained: exited with %d: %s", img, cs, rc, err_text);
        if (rc == 0) check_tensors(tensors, img, cs, " (chained)");
      }
    }
  }
}

// ---- grey, 16-bit and overlay ----

static int write_png16_grey(const char *path, const uint16_t *v, int w, int h) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = (png_uint_32)w, pi.height = (png_uint_32)h;
  pi.format = PNG_FORMAT_LINEAR_Y;  // 16-bit grey, samples stored as given
  return png_image_write_to_file(&pi, path, 0, v, 0, NULL) ? 0 : -1;
}

// Grey TIFF with `bits`-wide samples of the given SAMPLEFORMAT, striped.
static int write_tiff_grey(const char *path, const void *v, int w, int h, int bits, int format) {
  TIFF *t = TIFFOpen(path, "w");
  if (!t) return -1;
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)1);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)bits);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)format);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)8);
  int ok = 1;
  for (int y = 0; y < h && ok; y++)
    ok = TIFFWriteScanline(t, (void *)((const char *)v + (size_t)y * w * (bits / 8)), (uint32_t)y, 0) >= 0;
  TIFFClose(t);
  return ok ? 0 : -1;
}

static uint8_t *read_whole(const char *path, size_t *n) { return (uint8_t *)samx_read_file(path, n); }

static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  uint8_t *da = read_whole(a, &na), *db = read_whole(b, &nb);
  int same = da && db && na == nb && memcmp(da, db, na) == 0;
  free(da);
  free(db);
  return same;
}

// A grey image given as 8-bit grey, as RGB with equal channels, as 16-bit PNG and TIFF holding
// 1000 + 37 g and as float TIFF holding 0.5 + g / 64: the first two must be the same input to SAM
// (replication); the wide files span exactly their values for g = 0 .. 255, so the documented
// min-max mapping gives back g bit for bit (a plain >> 8, or libpng's linear-to-sRGB conversion,
// would not).
static void grey_and_wide_inputs(void) {
  const SamxSTEntry *e = gold("same", NULL, "image");
  int h = (int)e->shape[0], w = (int)e->shape[1];
  size_t n = (size_t)h * w;
  uint8_t *g = (uint8_t *)malloc(n), *rgb = (uint8_t *)malloc(3 * n);
  uint16_t *v = (uint16_t *)malloc(2 * n);
  float *f = (float *)malloc(4 * n);
  for (size_t i = 0; i < n; i++) g[i] = ((const uint8_t *)e->data)[3 * i + 1];
  g[0] = 0, g[1] = 255;  // the full 8-bit range, so that min-max is the identity
  for (size_t i = 0; i < n; i++) {
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g[i];
    v[i] = (uint16_t)(1000 + 37 * g[i]);
    f[i] = 0.5f + g[i] / 64.0f;
  }
  const char *names[] = {"grey8.png", "grey_rgb.png", "grey16.png", "grey16.tif", "grey32f.tif", "grey16.png"};
  const char *extra[] = {"", "", "", "", "", " --intensity-range 1000,10435"};
  int ok = samx_png_write(path_in_dir("%s%s", names[0], ""), g, w, h, 1) == 0 &&
           samx_png_write(path_in_dir("%s%s", names[1], ""), rgb, w, h, 3) == 0 &&
           write_png16_grey(path_in_dir("%s%s", names[2], ""), v, w, h) == 0 &&
           write_tiff_grey(path_in_dir("%s%s", names[3], ""), v, w, h, 16, SAMPLEFORMAT_UINT) == 0 &&
           write_tiff_grey(path_in_dir("%s%s", names[4], ""), f, w, h, 32, SAMPLEFORMAT_IEEEFP) == 0;
  CHECK(ok, "writing the grey test images");
  char prompt[1024];
  prompt_args("same", "box_multi", prompt, sizeof prompt);
  for (int k = 0; k < 6 && ok; k++) {
    char tensors[600];
    snprintf(tensors, sizeof tensors, "%s/grey.%d.safetensors", dir, k);
    int rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s/grey.png --tensors %s%s%s", CKPT,
                      path_in_dir("%s%s", names[k], ""), device, dir, tensors, prompt, extra[k]);
    CHECK(rc == 0, "%s%s: exited with %d: %s", names[k], extra[k], rc, err_text);
    char first[600];
    snprintf(first, sizeof first, "%s/grey.0.safetensors", dir);
    if (k > 0 && rc == 0)
      CHECK(same_file(first, tensors), "%s%s: outputs differ from the 8-bit grey image's", names[k], extra[k]);
  }
  free(g);
  free(rgb);
  free(v);
  free(f);
}

static void overlay(void) {
  const char *img = "same", *cs = "box_points";
  char prompt[1024];
  prompt_args(img, cs, prompt, sizeof prompt);
  char *ov = path_in_dir("%s%s", "overlay.png", ""), *tensors = path_in_dir("%s%s", "overlay.safetensors", "");
  int rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s/ov_mask.png --tensors %s --overlay %s%s",
                    CKPT, path_in_dir("%s.png", img, ""), device, dir, tensors, ov, prompt);
  CHECK(rc == 0, "overlay: exited with %d: %s", rc, err_text);
  SamxImage im;
  SamxSafetensors st;
  if (rc || samx_image_read(ov, &im)) return;
  const SamxSTEntry *image = gold(img, NULL, "image"), *box = gold(img, cs, "box");
  int h = (int)image->shape[0], w = (int)image->shape[1];
  CHECK(im.channels == 3 && im.h == h && im.w == w, "overlay is %lldx%lld with %d channels", (long long)im.w,
        (long long)im.h, im.channels);
  if (im.channels == 3 && im.h == h && im.w == w && samx_st_open(&st, tensors) == 0) {
    const uint8_t *mask = (const uint8_t *)samx_st_find(&st, "masks")->data, *src = (const uint8_t *)image->data;
    const float *b = (const float *)box->data, *pc = (const float *)gold(img, cs, "point_coords")->data;
    int64_t pc_n = gold(img, cs, "point_coords")->shape[0], changed_in = 0, n_in = 0, changed_out = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int near_box = x > b[0] - 6 && x < b[2] + 6 && y > b[1] - 6 && y < b[3] + 6 &&
                       !(x > b[0] + 6 && x < b[2] - 6 && y > b[1] + 6 && y < b[3] - 6);
        for (int64_t i = 0; i < pc_n; i++) near_box |= fabs(x - pc[2 * i]) < 8 && fabs(y - pc[2 * i + 1]) < 8;
        size_t k = (size_t)y * w + x;
        int changed = memcmp(im.data + 3 * k, src + 3 * k, 3) != 0;
        if (near_box) continue;
        if (mask[k]) n_in++, changed_in += changed;
        else changed_out += changed;
      }
    CHECK(changed_out == 0, "overlay changes %lld pixels outside the mask and the prompt", (long long)changed_out);
    CHECK(n_in > 0 && changed_in >= n_in * 9 / 10, "overlay tints %lld of %lld mask pixels", (long long)changed_in,
          (long long)n_in);
    samx_st_close(&st);
  }
  samx_image_free(&im);
}

// ---- errors: non-zero exit, one line on stderr, no output written ----

// `needle`: a word the line must contain, so that it names the actual problem.
static void expect_error(const char *what, const char *args, const char *needle) {
  char *out = path_in_dir("%s%s", "error_out.png", "");
  remove(out);
  int rc = samx_run("segment --checkpoint %s --device %s --precision fp32 --out %s %s", CKPT, device, out, args);
  int lines = count_lines(err_text);
  CHECK(rc > 0 && lines == 1 && err_text[0] != '\n' && !file_exists(out) && strstr(err_text, needle),
        "%s: exit %d, %d stderr lines (want a non-zero exit, 1 line naming '%s', no --out file): %s", what, rc, lines,
        needle, err_text);
  printf("%s: exit %d: %s", what, rc, err_text);
}

static void error_cases(void) {
  char same[512], args[2048];
  snprintf(same, sizeof same, "%s/same.png", dir);
  // Flags after the defaults: a later --checkpoint overrides the first.
  snprintf(args, sizeof args, "--checkpoint %s/missing.pth --image %s --box 10,10,50,50", dir, same);
  expect_error("missing checkpoint", args, "missing.pth");
  char *junk = path_in_dir("%s%s", "junk.pth", "");
  samx_write_file_atomic(junk, "PK\003\004 this is not a checkpoint", 30);
  snprintf(args, sizeof args, "--checkpoint %s --image %s --box 10,10,50,50", junk, same);
  expect_error("corrupt checkpoint", args, "junk.pth");
  char *bad = path_in_dir("%s%s", "corrupt.png", "");
  samx_write_file_atomic(bad, "not an image at all, just text", 30);
  snprintf(args, sizeof args, "--image %s --box 10,10,50,50", bad);
  expect_error("corrupt image", args, "corrupt.png");
  size_t n = 0;
  char *png = samx_read_file(same, &n);
  char *cut = path_in_dir("%s%s", "truncated.png", "");
  if (png) samx_write_file_atomic(cut, png, n / 2);
  free(png);
  snprintf(args, sizeof args, "--image %s --box 10,10,50,50", cut);
  expect_error("truncated image", args, "truncated.png");
  snprintf(args, sizeof args, "--image %s/none.png --box 10,10,50,50", dir);
  expect_error("missing image", args, "none.png");
  snprintf(args, sizeof args, "--image %s --box 10,10,170,50", same);  // same.png is 160 x 112
  expect_error("box outside the image", args, "outside");
  snprintf(args, sizeof args, "--image %s --box 10,10,50,112.5", same);
  expect_error("box below the image", args, "outside");
  snprintf(args, sizeof args, "--image %s --point 20,20,1 --point -1,5,0", same);
  expect_error("point outside the image", args, "--point -1,5,0");
  snprintf(args, sizeof args, "--image %s", same);
  expect_error("no prompt", args, "prompt");
  snprintf(args, sizeof args, "--image %s --point 20,20,2", same);
  expect_error("bad point label", args, "label");
  snprintf(args, sizeof args, "--image %s --box 10,10,50", same);
  expect_error("box with 3 numbers", args, "--box");
  snprintf(args, sizeof args, "--image %s --box 50,10,10,50", same);
  expect_error("box with x0 > x1", args, "x0 <= x1");
  snprintf(args, sizeof args, "--image %s --mask-input %s", same, path_in_dir("%s.%s.safetensors", "same", "box_multi"));
  expect_error("mask input with 3 masks", args, "[1, 3, 40, 40]");
  snprintf(args, sizeof args, "--image %s --mask-input %s", same, path_in_dir("%s.%s.png", "same", "box"));
  expect_error("mask input not safetensors", args, "same.box.png");
  snprintf(args, sizeof args, "--image %s --box 10,10,50,50 --frobnicate", same);
  expect_error("unknown option", args, "--frobnicate");
  snprintf(args, sizeof args, "--image %s --box 10,10,50,50 --device cuda:99", same);
  expect_error("device that does not exist", args, "cuda:99");
  // The full range of the image is allowed (SamPredictor's frame runs from 0 to width/height).
  int rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s/edge.png --box 0,0,160,112 --point 160,112,1",
                    CKPT, same, device, dir);
  CHECK(rc == 0, "box and point on the image border: exit %d: %s", rc, err_text);
  rc = samx_run("segment --help");
  CHECK(rc == 0, "segment --help: exit %d", rc);
  size_t hn = 0;
  char *help = samx_read_file(path_in_dir("%s%s", "stdout.txt", ""), &hn);
  CHECK(help && strstr(help, "--mask-input") && strstr(help, "--intensity-range") && strstr(help, "16-bit"),
        "segment --help does not explain the options");
  free(help);
}

// ---- convert: .pth -> samx safetensors, identical outputs ----

static void convert_round_trip(void) {
  char conv[512], conv2[512];
  snprintf(conv, sizeof conv, "%s/converted.safetensors", dir);
  snprintf(conv2, sizeof conv2, "%s/converted2.safetensors", dir);
  int rc = samx_run("convert %s %s", CKPT, conv);
  CHECK(rc == 0, "convert: exit %d: %s", rc, err_text);
  if (rc) return;
  SamxSafetensors st;
  rc = samx_st_open(&st, conv);
  CHECK(rc == 0, "%s: %s", conv, samx_last_error());
  if (rc == 0) {
    const char *cfg = samx_st_meta(&st, "samx_config");
    CHECK(cfg && strstr(cfg, "\"img_size\":160") && strstr(cfg, "\"dec_heads\":8"), "converted file's samx_config: %s",
          cfg ? cfg : "(none)");
    CHECK(samx_st_find(&st, "image_encoder.blocks.0.attn.qkv.weight") != NULL, "converted file lacks the original key names");
    samx_st_close(&st);
  }
  rc = samx_run("convert %s %s", conv, conv2);
  CHECK(rc == 0 && same_file(conv, conv2), "converting samx's own file again changes it (exit %d: %s)", rc, err_text);
  for (int i = 0; i < 3; i++)
    for (int c = 1; c <= 2; c++) {  // box_multi and points: all three mask tokens
      const char *img = IMAGES[i], *cs = PROMPT_CASES[c];
      char prompt[1024];
      prompt_args(img, cs, prompt, sizeof prompt);
      char *tensors = path_in_dir("%s.%s.converted.safetensors", img, cs);
      rc = samx_run("segment --checkpoint %s --image %s --device %s --precision fp32 --out %s/conv.png --tensors %s%s", conv,
                    path_in_dir("%s.png", img, ""), device, dir, tensors, prompt);
      CHECK(rc == 0, "segment with the converted checkpoint: exit %d: %s", rc, err_text);
      CHECK(rc == 0 && same_file(tensors, path_in_dir("%s.%s.safetensors", img, cs)),
            "%s.%s: outputs with the converted checkpoint differ from the .pth's", img, cs);
    }
  rc = samx_run("convert %s/missing.pth %s", dir, conv2);
  CHECK(rc > 0 && count_lines(err_text) == 1, "convert of a missing file: exit %d: %s", rc, err_text);
  rc = samx_run("convert %s", CKPT);
  CHECK(rc > 0 && count_lines(err_text) == 1, "convert without OUT: exit %d: %s", rc, err_text);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CUDA) device = "cuda:0";
  bin = samx_test_samx_bin(argv[0]);
  if (access(bin, X_OK) != 0) {
    printf("FAIL: no samx binary at %s (set SAMX_BIN)\n", bin);
    return 1;
  }
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_segment") != 0 || samx_st_open(&golden, CASES)) {
    printf("FAIL: %s\n", samx_last_error());
    return 1;
  }
  printf("samx: %s, device %s, files in %s\n", bin, device, dir);
  golden_cases();
  grey_and_wide_inputs();
  overlay();
  error_cases();
  convert_round_trip();
  samx_st_close(&golden);
  int rc = samx_test_summary();
  if (rc == 0) samx_test_remove_dir(dir);
  return rc;
}
