// samx segment: one image, one prompt set, SamPredictor's outputs (docs: contracts §2).
// The call sequence is SamPredictor.set_image + predict: preprocess -> encode -> prompt_to_input ->
// prompt_encode -> decode -> postprocess.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/image_io.h"
#include "engine/samx.h"
#include "models/sam/sam.h"
#include "models/sam/sam_image.h"
#include "models/sam/sam_overlay.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx segment --checkpoint W --image IMG [--box x0,y0,x1,y1] [--point x,y,label]...\n"
          "                    [--mask-input F.safetensors] [--multimask] [--device auto|cpu|cuda[:N]]\n"
          "                    [--precision auto|fp32|tf32|bf16] --out mask.png [--tensors out.safetensors]\n"
          "                    [--overlay overlay.png] [--intensity-range lo,hi] [-v]\n"
          "\n"
          "Segments one image with SAM from one prompt set, exactly like segment_anything's SamPredictor.\n"
          "\n"
          "  --checkpoint W      SAM weights: torch.save .pth (sam_vit_b_01ec64.pth, medsam_vit_b.pth, ...),\n"
          "                      safetensors with original or Hugging Face names, or samx's own format\n"
          "  --image IMG         PNG, JPEG or TIFF; grey images are replicated to RGB. 8-bit images are used\n"
          "                      as they are. Wider samples (16-bit PNG; 16/32-bit integer or float TIFF,\n"
          "                      striped) are mapped linearly to 8 bits, the image's minimum to 0 and its\n"
          "                      maximum to 255 (over all channels), unless --intensity-range is given\n"
          "  --intensity-range lo,hi  maps [lo, hi] linearly to [0, 255], clipping outside (a CT window,\n"
          "                      say); applies to 8-bit images too\n"
          "  --box x0,y0,x1,y1   box prompt, in pixels of the original image (x right, y down)\n"
          "  --point x,y,label   point prompt, label 1 foreground, 0 background; repeat for more points\n"
          "  --mask-input F      safetensors holding low_res_logits [1,1,4h,4w] or [1,4h,4w] (h x w: the image\n"
          "                      embedding grid), e.g. a previous run's --tensors output with one mask\n"
          "  --multimask         SAM's three mask tokens (ambiguity-aware) instead of the single-mask token\n"
          "  --device D          auto (a GPU when present, default), cpu, cuda or cuda:N\n"
          SAMX_PRECISION_HELP
          "  --out mask.png      the mask with the highest predicted IoU, 8-bit 0/255, original image size;\n"
          "                      PNG, JPEG (.jpg/.jpeg, quality 95) or TIFF (.tif/.tiff) by the extension\n"
          "  --tensors F         safetensors with image_embeddings F32 [1,C,h,w], low_res_logits F32\n"
          "                      [1,M,4h,4w], iou_predictions F32 [1,M], masks U8 0/1 [1,M,H,W]\n"
          "  --overlay F.png     the image with the chosen mask tinted and the prompts drawn\n"
          "  -v                  timings (load, encode, decode) and memory use on stderr\n"
          "\n"
          "At least one of --box, --point, --mask-input. A box or point outside the image (0 <= x <= width,\n"
          "0 <= y <= height) is an error. Non-finite model outputs (NaN weights or inputs) are an error, not\n"
          "a mask. Images above SAMX_MAX_IMAGE_PIXELS pixels (default 178956970, PIL's limit; 0: none) are\n"
          "refused before their pixels are allocated.\n"
          "\n"
          "Exit status 0 on success; otherwise one line on stderr says what is wrong.\n");
}

typedef struct {
  const char *checkpoint, *image, *mask_input, *out, *tensors, *overlay, *device, *precision;
  int multimask, verbose, has_range;
  double range[2];
  SamPrompt prompt;  // original-image pixels
} SegmentArgs;

// Parses exactly n comma-separated finite numbers.
static int parse_numbers(const char *opt, const char *s, double *v, int n) {
  const char *p = s;
  for (int i = 0; i < n; i++) {
    char *end;
    errno = 0;
    v[i] = strtod(p, &end);
    if (end == p || errno || !isfinite(v[i]) || *end != (i + 1 < n ? ',' : '\0'))
      return samx_fail("%s '%s': expected %d comma-separated numbers", opt, s, n);
    p = end + 1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, SegmentArgs *a) {
  memset(a, 0, sizeof *a);
  a->device = "auto";
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (!strcmp(opt, "--multimask")) {
      a->multimask = 1;
      continue;
    }
    if (!strcmp(opt, "-v") || !strcmp(opt, "--verbose")) {
      a->verbose = 1;
      continue;
    }
    static const char *with_value[] = {"--checkpoint", "--image", "--mask-input", "--out", "--tensors", "--overlay",
                                       "--device", "--box", "--point", "--intensity-range", "--precision"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(opt, with_value[k]);
    if (!known) return samx_fail("unknown option '%s' (see samx segment --help)", opt);
    if (i + 1 >= argc) return samx_fail("%s needs a value (see samx segment --help)", opt);
    const char *val = argv[++i];
    double v[4];
    if (!strcmp(opt, "--checkpoint")) {
      a->checkpoint = val;
    } else if (!strcmp(opt, "--image")) {
      a->image = val;
    } else if (!strcmp(opt, "--mask-input")) {
      a->mask_input = val;
    } else if (!strcmp(opt, "--out")) {
      a->out = val;
    } else if (!strcmp(opt, "--tensors")) {
      a->tensors = val;
    } else if (!strcmp(opt, "--overlay")) {
      a->overlay = val;
    } else if (!strcmp(opt, "--device")) {
      a->device = val;
    } else if (!strcmp(opt, "--precision")) {
      a->precision = val;
    } else if (!strcmp(opt, "--box")) {
      if (a->prompt.has_box) return samx_fail("--box given twice: SamPredictor takes one box");
      if (parse_numbers(opt, val, v, 4)) return -1;
      a->prompt.has_box = 1;
      for (int k = 0; k < 4; k++) a->prompt.box[k] = (float)v[k];
    } else if (!strcmp(opt, "--point")) {
      if (parse_numbers(opt, val, v, 3)) return -1;
      if (v[2] != 0 && v[2] != 1) return samx_fail("--point '%s': label must be 1 (foreground) or 0 (background)", val);
      if (a->prompt.n_points == SAM_MAX_POINTS) return samx_fail("more than %d --point prompts", SAM_MAX_POINTS);
      int n = a->prompt.n_points++;
      a->prompt.points[n][0] = (float)v[0], a->prompt.points[n][1] = (float)v[1];
      a->prompt.labels[n] = (int)v[2];
    } else {  // --intensity-range
      if (parse_numbers(opt, val, a->range, 2)) return -1;
      if (!(a->range[1] > a->range[0])) return samx_fail("--intensity-range '%s': needs lo < hi", val);
      a->has_range = 1;
    }
  }
  if (!a->checkpoint) return samx_fail("--checkpoint is required (see samx segment --help)");
  if (!a->image) return samx_fail("--image is required (see samx segment --help)");
  if (!a->out) return samx_fail("--out is required (see samx segment --help)");
  if (!a->prompt.has_box && !a->prompt.n_points && !a->mask_input)
    return samx_fail("no prompt: give at least one of --box, --point, --mask-input");
  if (samx_image_write_format(a->out) < 0 || (a->overlay && samx_image_write_format(a->overlay) < 0)) return -1;
  const char *inputs[] = {a->image, a->checkpoint, a->mask_input};
  if (samx_check_output_not_input("--out", a->out, inputs, 3) ||
      samx_check_output_not_input("--overlay", a->overlay, inputs, 3) ||
      samx_check_output_not_input("--tensors", a->tensors, inputs, 3))
    return -1;
  return 0;
}

// A box or point must lie on the image: 0 <= x <= width, 0 <= y <= height (SamPredictor's frame).
static int check_prompt(const SamPrompt *p, int h, int w, const char *image) {
  if (p->has_box) {
    const float *b = p->box;
    if (b[0] < 0 || b[1] < 0 || b[2] > w || b[3] > h)
      return samx_fail("--box %g,%g,%g,%g lies outside %s (%d x %d pixels, width x height)", b[0], b[1], b[2], b[3],
                       image, w, h);
    if (b[0] > b[2] || b[1] > b[3]) return samx_fail("--box %g,%g,%g,%g: needs x0 <= x1 and y0 <= y1", b[0], b[1], b[2], b[3]);
  }
  for (int i = 0; i < p->n_points; i++) {
    float x = p->points[i][0], y = p->points[i][1];
    if (x < 0 || y < 0 || x > w || y > h)
      return samx_fail("--point %g,%g,%d lies outside %s (%d x %d pixels, width x height)", x, y, p->labels[i], image, w,
                       h);
  }
  return 0;
}

// ---- images: samples through image_io, wider than 8 bits mapped to 8 ----

// Linear map of [lo, hi] to [0, 255], clipped; NaN -> 0. lo == hi (a constant image) gives 0.
static void map_to_u8(const float *v, size_t n, double lo, double hi, uint8_t *out) {
  double scale = hi > lo ? 255.0 / (hi - lo) : 0;
  for (size_t i = 0; i < n; i++) {
    double x = isnan(v[i]) ? 0 : ((double)v[i] - lo) * scale;
    out[i] = (uint8_t)(x <= 0 ? 0 : x >= 255 ? 255 : lrint(x));
  }
}

// Reads any supported image as RGB uint8 [h, w, 3] (see --help for the mapping of wide samples).
static int read_rgb8(const SegmentArgs *a, uint8_t **rgb, int *h, int *w) {
  SamxSamples im;
  if (samx_image_read_samples(a->image, &im)) return -1;
  size_t n = (size_t)(im.h * im.w * im.channels);
  int wide = im.bits > 8 || im.format != SAMX_SAMPLE_UINT;
  double lo = 0, hi = 255;  // 8-bit samples as they are
  if (a->has_range) {
    lo = a->range[0], hi = a->range[1];
  } else if (wide) {
    lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
      if (isfinite(im.data[i])) lo = fmin(lo, im.data[i]), hi = fmax(hi, im.data[i]);
  }
  uint8_t *pix = (uint8_t *)malloc(n);
  map_to_u8(im.data, n, lo, hi, pix);
  *h = (int)im.h, *w = (int)im.w;
  int channels = im.channels;
  samx_samples_free(&im);
  if (channels == 3) {
    *rgb = pix;
    return 0;
  }
  size_t hw = (size_t)*h * *w;
  *rgb = (uint8_t *)malloc(3 * hw);
  for (size_t i = 0; i < hw; i++) (*rgb)[3 * i] = (*rgb)[3 * i + 1] = (*rgb)[3 * i + 2] = pix[i];
  free(pix);
  return 0;
}

// ---- the model ----

// low_res_logits [1, 1, 4g, 4g] or [1, 4g, 4g] as host f32 (malloc'd).
static int read_mask_input(const char *path, int side, float **out) {
  SamxSafetensors st;
  if (samx_st_open(&st, path)) return -1;
  const SamxSTEntry *e = samx_st_find(&st, "low_res_logits");
  int rc = 0;
  if (!e) {
    rc = samx_fail("%s: no tensor 'low_res_logits' (expected a previous run's --tensors output)", path);
  } else if (e->dtype != SAMX_F32 && e->dtype != SAMX_F16 && e->dtype != SAMX_BF16) {
    rc = samx_fail("%s: low_res_logits has dtype %s, expected F32, F16 or BF16", path, samx_dtype_name(e->dtype));
  } else {
    int ok4 = e->ndim == 4 && e->shape[0] == 1 && e->shape[1] == 1 && e->shape[2] == side && e->shape[3] == side;
    int ok3 = e->ndim == 3 && e->shape[0] == 1 && e->shape[1] == side && e->shape[2] == side;
    if (!ok4 && !ok3) {
      char buf[96];
      SamxShape s = {e->ndim, {0}};
      for (int i = 0; i < e->ndim; i++) s.d[i] = e->shape[i];
      rc = samx_fail("%s: low_res_logits has shape %s, this model needs [1, 1, %d, %d] or [1, %d, %d] (one mask)", path,
                     samx_shape_str(s, buf, sizeof buf), side, side, side, side);
    } else {
      *out = samx_st_to_f32(e);
    }
  }
  samx_st_close(&st);
  return rc;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct {
  int M, g, C;
  float *emb, *low, *iou, *logits;  // host copies
  double encode_ms, decode_ms;
  size_t enc_peak, dec_peak;
} SegmentResult;

static void host_copy(SamxTensor *t, float **out) {
  *out = (float *)malloc(sizeof(float) * (size_t)t->numel);
  samx_tensor_read_f32(t, *out);
}

static void run_sam(SamModel *m, const SegmentArgs *a, const uint8_t *rgb, int h, int w, const float *mask_in,
                    SegmentResult *r) {
  const SamConfig *c = &m->cfg;
  int g = sam_embed_grid(c);
  double t0 = now_ms();
  SamxCtx enc;
  samx_ctx_init(&enc, m->device, sam_encoder_arena_bytes(c, 1, samx_precision_on(m->device)),
                4096 + 512 * c->enc_depth);
  samx_ctx_set_recording(&enc, 0);
  SamImageInfo info;
  SamxTensor *emb_enc = sam_encode(&enc, m, sam_preprocess(&enc, m, rgb, h, w, &info));
  // The embedding moves to the decoder's context so that the encoder's activations can go.
  SamxCtx dec;
  samx_ctx_init(&dec, m->device, sam_decoder_arena_bytes(c, h, w), 4096);
  samx_ctx_set_recording(&dec, 0);
  SamxTensor *emb = samx_new(&dec, SAMX_F32, samx_shape_of(emb_enc));
  samx_tensor_copy(emb, emb_enc);
  samx_device_sync(m->device);
  r->enc_peak = enc.act.peak;
  samx_ctx_free(&enc);
  double t1 = now_ms();
  SamPrompt p = a->prompt;
  sam_prompt_to_input(&info, &p);
  SamxTensor *mask = mask_in ? samx_from_host(&dec, SHAPE(1, 1, 4 * g, 4 * g), mask_in) : NULL;
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(&dec, m, &p, 1, mask, &sparse, &dense);
  sam_decode(&dec, m, emb, NULL, sparse, dense, a->multimask, &low, &iou);
  SamxTensor *logits = sam_postprocess(&dec, m, low, &info);
  samx_device_sync(m->device);
  double t2 = now_ms();
  r->M = (int)iou->shape[1], r->g = g, r->C = (int)emb->shape[1];
  host_copy(emb, &r->emb);
  host_copy(low, &r->low);
  host_copy(iou, &r->iou);
  host_copy(logits, &r->logits);
  r->dec_peak = dec.act.peak;
  samx_ctx_free(&dec);
  r->encode_ms = t1 - t0, r->decode_ms = t2 - t1;
}

// ---- outputs ----

static int write_tensors(const char *path, const SegmentResult *r, const uint8_t *masks, int h, int w) {
  int64_t se[4] = {1, r->C, r->g, r->g}, sl[4] = {1, r->M, 4 * r->g, 4 * r->g}, si[2] = {1, r->M}, sm[4] = {1, r->M, h, w};
  SamxSTWriter *wr = samx_st_writer_new();
  samx_st_writer_add(wr, "image_embeddings", SAMX_F32, 4, se, r->emb);
  samx_st_writer_add(wr, "low_res_logits", SAMX_F32, 4, sl, r->low);
  samx_st_writer_add(wr, "iou_predictions", SAMX_F32, 2, si, r->iou);
  samx_st_writer_add(wr, "masks", SAMX_U8, 4, sm, masks);
  samx_st_writer_meta(wr, "producer", "samx segment " SAMX_VERSION);
  int rc = samx_st_writer_save(wr, path);
  samx_st_writer_free(wr);
  return rc;
}

static int write_outputs(const SegmentArgs *a, const SegmentResult *r, const uint8_t *rgb, int h, int w, int best) {
  size_t hw = (size_t)h * w;
  uint8_t *masks = (uint8_t *)malloc(hw * r->M);
  for (size_t i = 0; i < hw * r->M; i++) masks[i] = r->logits[i] > 0;  // SamPredictor: logits > mask_threshold (0)
  const uint8_t *chosen = masks + hw * best;
  uint8_t *png = (uint8_t *)malloc(hw);
  for (size_t i = 0; i < hw; i++) png[i] = chosen[i] ? 255 : 0;
  int rc = a->tensors ? write_tensors(a->tensors, r, masks, h, w) : 0;
  if (rc == 0) rc = samx_image_write(a->out, png, w, h, 1);
  if (rc == 0 && a->overlay) {
    uint8_t *canvas = (uint8_t *)malloc(3 * hw);
    memcpy(canvas, rgb, 3 * hw);
    sam_overlay_draw(canvas, h, w, chosen, &a->prompt);
    rc = samx_image_write(a->overlay, canvas, w, h, 3);
    free(canvas);
  }
  free(png);
  free(masks);
  return rc;
}

// NaN or infinite logits (NaN weights, a NaN --mask-input) would threshold to a plausible-looking
// mask: they are an error, never an output.
static int check_finite(const SegmentResult *r, int h, int w) {
  size_t n_logits = (size_t)h * w * r->M, bad = 0;
  for (size_t i = 0; i < n_logits; i++) bad += !isfinite(r->logits[i]);
  for (int i = 0; i < r->M; i++) bad += !isfinite(r->iou[i]);
  if (bad)
    return samx_fail("the model's outputs hold %zu non-finite values (NaN or inf) of %zu: the checkpoint's weights or "
                     "the --mask-input hold NaN/inf; no output written",
                     bad, n_logits + (size_t)r->M);
  return 0;
}

static int argmax(const float *v, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

static int segment(const SegmentArgs *a) {
  uint8_t *rgb = NULL;
  int h, w;
  if (read_rgb8(a, &rgb, &h, &w)) return -1;
  SamxDevice device;
  if (check_prompt(&a->prompt, h, w, a->image) || samx_device_parse(a->device, &device) ||
      samx_precision_setup(a->precision, device)) {
    free(rgb);
    return -1;
  }
  double t0 = now_ms();
  SamModel m;
  if (sam_load(&m, a->checkpoint, device, 0, NULL)) {
    free(rgb);
    return -1;
  }
  double load_ms = now_ms() - t0;
  float *mask_in = NULL;
  int rc = a->mask_input ? read_mask_input(a->mask_input, 4 * sam_embed_grid(&m.cfg), &mask_in) : 0;
  if (rc == 0) {
    SegmentResult r;
    run_sam(&m, a, rgb, h, w, mask_in, &r);
    int best = argmax(r.iou, r.M);
    rc = check_finite(&r, h, w);
    if (rc == 0) rc = write_outputs(a, &r, rgb, h, w, best);
    if (a->verbose) {
      char dev[64];
      fprintf(stderr, "samx segment: %s (%s), %dx%d image, mask %d of %d (predicted IoU %.4f)\n",
              samx_device_str(device, dev, sizeof dev), samx_precision_name(samx_precision_default()), w, h, best, r.M, r.iou[best]);
      fprintf(stderr, "samx segment: load %.1f ms, encode %.1f ms, decode %.1f ms; activations %.1f MiB (encoder), %.1f MiB (decoder)\n",
              load_ms, r.encode_ms, r.decode_ms, r.enc_peak / 1048576.0, r.dec_peak / 1048576.0);
    }
    free(r.emb), free(r.low), free(r.iou), free(r.logits);
  }
  free(mask_in);
  sam_free(&m);
  free(rgb);
  return rc;
}

// tools/cmd_segment_p2sam.c
void samx_segment_p2sam_usage(FILE *f);
int samx_segment_p2sam(int argc, char **argv);
int samx_is_samx_p2sam(const char *path);

// P2SAM options, or a samx P2SAM checkpoint, select the P2SAM path (contracts §6).
static int wants_p2sam(int argc, char **argv) {
  static const char *p2[] = {"--mask-weights", "--snapshot", "--base", "--noise", "--seed", "--img-size"};
  for (int i = 1; i < argc; i++) {
    for (size_t k = 0; k < sizeof p2 / sizeof *p2; k++)
      if (!strcmp(argv[i], p2[k])) return 1;
    if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc && samx_is_samx_p2sam(argv[i + 1])) return 1;
  }
  return 0;
}

int samx_cmd_segment(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      samx_segment_p2sam_usage(stdout);
      return 0;
    }
  if (wants_p2sam(argc, argv)) {
    int rc = samx_segment_p2sam(argc, argv);
    if (rc) fprintf(stderr, "samx segment: %s\n", samx_last_error());
    return rc;
  }
  SegmentArgs a;
  if (parse_args(argc, argv, &a)) {
    fprintf(stderr, "samx segment: %s\n", samx_last_error());
    return 2;
  }
  if (segment(&a)) {
    fprintf(stderr, "samx segment: %s\n", samx_last_error());
    return 1;
  }
  return 0;
}
