// samx segment: one image, one prompt set, SamPredictor's outputs (docs: contracts §2).
// The call sequence is SamPredictor.set_image + predict: preprocess -> encode -> prompt_to_input ->
// prompt_encode -> decode -> postprocess.
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
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
          "                    --out mask.png [--tensors out.safetensors] [--overlay overlay.png]\n"
          "                    [--intensity-range lo,hi] [-v]\n"
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
          "  --out mask.png      the mask with the highest predicted IoU, 8-bit 0/255, original image size\n"
          "  --tensors F         safetensors with image_embeddings F32 [1,C,h,w], low_res_logits F32\n"
          "                      [1,M,4h,4w], iou_predictions F32 [1,M], masks U8 0/1 [1,M,H,W]\n"
          "  --overlay F.png     the image with the chosen mask tinted and the prompts drawn\n"
          "  -v                  timings (load, encode, decode) and memory use on stderr\n"
          "\n"
          "At least one of --box, --point, --mask-input. A box or point outside the image (0 <= x <= width,\n"
          "0 <= y <= height) is an error.\n"
          "\n"
          "Exit status 0 on success; otherwise one line on stderr says what is wrong.\n");
}

typedef struct {
  const char *checkpoint, *image, *mask_input, *out, *tensors, *overlay, *device;
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
                                       "--device", "--box", "--point", "--intensity-range"};
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

// ---- images: 8-bit through samx_image_read, wider samples read here and mapped to 8 bits ----

typedef struct {
  int h, w, channels;  // channels 1 or 3
  float *v;            // h * w * channels samples
} WideImage;

typedef struct {
  jmp_buf jump;
  char message[256];
} PngError;

static void png_error_fn(png_structp png, png_const_charp msg) {
  PngError *e = (PngError *)png_get_error_ptr(png);
  snprintf(e->message, sizeof e->message, "%s", msg);
  longjmp(e->jump, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg) {}

// 16-bit PNG: raw sample values (no gamma handling: medical data stores intensities, not light).
static int read_png_wide(const char *path, WideImage *im) {
  FILE *f = fopen(path, "rb");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  PngError err;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info || setjmp(err.jump)) {
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return samx_fail("%s: cannot decode PNG: %s", path, info ? err.message : "out of memory");
  }
  png_init_io(png, f);
  png_read_png(png, info, PNG_TRANSFORM_EXPAND | PNG_TRANSFORM_STRIP_ALPHA, NULL);
  int c = png_get_channels(png, info), depth = png_get_bit_depth(png, info);
  im->h = (int)png_get_image_height(png, info), im->w = (int)png_get_image_width(png, info);
  im->channels = c >= 3 ? 3 : 1;
  im->v = (float *)malloc(sizeof(float) * (size_t)im->h * im->w * im->channels);
  png_bytepp rows = png_get_rows(png, info);
  for (int y = 0; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      for (int k = 0; k < im->channels; k++) {
        const png_byte *s = rows[y] + ((size_t)x * c + k) * (depth == 16 ? 2 : 1);
        im->v[((size_t)y * im->w + x) * im->channels + k] = depth == 16 ? (float)(s[0] << 8 | s[1]) : (float)s[0];
      }
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  return 0;
}

static float tiff_sample(const uint8_t *row, int64_t i, int bits, int format) {
  if (format == SAMPLEFORMAT_IEEEFP) return bits == 32 ? ((const float *)row)[i] : (float)((const double *)row)[i];
  if (format == SAMPLEFORMAT_INT) return bits == 16 ? (float)((const int16_t *)row)[i] : (float)((const int32_t *)row)[i];
  return bits == 16 ? (float)((const uint16_t *)row)[i] : (float)((const uint32_t *)row)[i];
}

// Striped, interleaved TIFF with 16/32-bit integer or 32/64-bit float samples.
static int read_tiff_wide(TIFF *t, const char *path, WideImage *im) {
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bits = 8, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &photometric);
  int ok_type = (format == SAMPLEFORMAT_IEEEFP && (bits == 32 || bits == 64)) ||
                ((format == SAMPLEFORMAT_UINT || format == SAMPLEFORMAT_INT) && (bits == 16 || bits == 32));
  if (!ok_type || TIFFIsTiled(t) || planar != PLANARCONFIG_CONTIG || spp < 1 || spp > 4)
    return samx_fail("%s: TIFF with %d-bit samples (format %d, %d per pixel%s%s) is not supported: use 8/16-bit or float, "
                     "striped and interleaved",
                     path, bits, format, spp, TIFFIsTiled(t) ? ", tiled" : "", planar != PLANARCONFIG_CONTIG ? ", planar" : "");
  im->h = (int)h, im->w = (int)w, im->channels = spp >= 3 ? 3 : 1;
  im->v = (float *)malloc(sizeof(float) * (size_t)h * w * im->channels);
  uint8_t *row = (uint8_t *)_TIFFmalloc(TIFFScanlineSize(t));
  for (uint32_t y = 0; y < h; y++) {
    if (TIFFReadScanline(t, row, y, 0) < 0) {
      _TIFFfree(row);
      free(im->v);
      return samx_fail("%s: cannot decode TIFF row %u", path, y);
    }
    for (uint32_t x = 0; x < w; x++)
      for (int k = 0; k < im->channels; k++) {
        float s = tiff_sample(row, (int64_t)x * spp + k, bits, format);
        // Min-is-white stores inverted intensities; negating keeps the min-max mapping meaningful.
        im->v[((size_t)y * w + x) * im->channels + k] = photometric == PHOTOMETRIC_MINISWHITE ? -s : s;
      }
  }
  _TIFFfree(row);
  return 0;
}

// Linear map of [lo, hi] to [0, 255], clipped; NaN -> 0. lo == hi (a constant image) gives 0.
static void map_to_u8(const float *v, size_t n, double lo, double hi, uint8_t *out) {
  double scale = hi > lo ? 255.0 / (hi - lo) : 0;
  for (size_t i = 0; i < n; i++) {
    double x = isnan(v[i]) ? 0 : ((double)v[i] - lo) * scale;
    out[i] = (uint8_t)(x <= 0 ? 0 : x >= 255 ? 255 : lrint(x));
  }
}

// 1: the file holds samples wider than 8 bits (read them with the wide readers), 0: 8 bits or less.
static int is_wide(const char *path, TIFF **tiff_out) {
  *tiff_out = NULL;
  uint8_t head[26] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return 0;  // samx_image_read reports it
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  if (got >= 26 && !memcmp(head, "\x89PNG", 4)) return head[24] == 16;  // IHDR bit depth
  int tiff = got >= 4 && ((head[0] == 'I' && head[1] == 'I' && head[2] == 42) || (head[0] == 'M' && head[1] == 'M' && head[3] == 42));
  if (!tiff) return 0;
  TIFF *t = TIFFOpen(path, "r");
  if (!t) return 0;
  uint16_t bits = 8;
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  if (bits <= 8) {
    TIFFClose(t);
    return 0;
  }
  *tiff_out = t;
  return 1;
}

// Reads any supported image as RGB uint8 [h, w, 3] (see --help for the mapping of wide samples).
static int read_rgb8(const SegmentArgs *a, uint8_t **rgb, int *h, int *w) {
  TIFFSetErrorHandler(NULL);  // libtiff's messages would add lines to stderr; failures are reported once here
  TIFFSetWarningHandler(NULL);
  TIFF *tiff;
  int channels;
  uint8_t *pix;
  if (is_wide(a->image, &tiff)) {
    WideImage im;
    int rc = tiff ? read_tiff_wide(tiff, a->image, &im) : read_png_wide(a->image, &im);
    if (tiff) TIFFClose(tiff);
    if (rc) return -1;
    size_t n = (size_t)im.h * im.w * im.channels;
    double lo = a->range[0], hi = a->range[1];
    if (!a->has_range) {
      lo = INFINITY, hi = -INFINITY;
      for (size_t i = 0; i < n; i++)
        if (isfinite(im.v[i])) lo = fmin(lo, im.v[i]), hi = fmax(hi, im.v[i]);
    }
    pix = (uint8_t *)malloc(n);
    map_to_u8(im.v, n, lo, hi, pix);
    free(im.v);
    *h = im.h, *w = im.w, channels = im.channels;
  } else {
    SamxImage img;
    if (samx_image_read(a->image, &img)) return -1;
    pix = img.data, *h = (int)img.h, *w = (int)img.w, channels = img.channels;
    if (a->has_range) {
      size_t n = (size_t)img.h * img.w * channels;
      float *v = (float *)malloc(sizeof(float) * n);
      for (size_t i = 0; i < n; i++) v[i] = pix[i];
      map_to_u8(v, n, a->range[0], a->range[1], pix);
      free(v);
    }
  }
  if (*h <= 0 || *w <= 0) {
    free(pix);
    return samx_fail("%s: empty image", a->image);
  }
  if (channels == 3) {
    *rgb = pix;
    return 0;
  }
  size_t n = (size_t)*h * *w;
  *rgb = (uint8_t *)malloc(3 * n);
  for (size_t i = 0; i < n; i++) (*rgb)[3 * i] = (*rgb)[3 * i + 1] = (*rgb)[3 * i + 2] = pix[i];
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

// Activation arena for the encoder: inference keeps every intermediate until the context is freed, so
// the size is the sum over blocks. Measured on a 1024-px, 4-block model: about 10 token-by-width f32
// buffers per block with MLP 4x width (norms, qkv, relative-position terms, projections, residuals,
// window padding; the attention logits are never stored). This allows ~1.9x that.
static size_t encoder_arena_bytes(const SamConfig *c) {
  int64_t g = sam_embed_grid(c), gp = c->window > 0 ? (g + c->window - 1) / c->window * c->window : g;
  int64_t tokens = gp * gp, S = c->img_size;
  int64_t per_block = tokens * (10 * (int64_t)c->enc_dim + 2 * (int64_t)c->enc_mlp) * 4;
  int64_t image = 3 * S * S * 4 * 4 + tokens * c->enc_dim * 4 * 4;
  int64_t neck = g * g * c->out_chans * 4 * 8;
  return (size_t)(c->enc_depth * per_block + image + neck + (64 << 20));
}

// Decoder and postprocessing: two-way transformer over g*g tokens, upscaling to 4g, then the masks at
// S x S and at the original size.
static size_t decoder_arena_bytes(const SamConfig *c, int h, int w) {
  int64_t g = sam_embed_grid(c), S = c->img_size, C = c->prompt_dim, M = c->num_mask_tokens;
  int64_t transformer = (int64_t)c->dec_depth * g * g * (12 * C + 2 * (int64_t)c->dec_mlp) * 4;
  int64_t upscale = 16 * g * g * C * 4 * 2;
  int64_t post = M * (S * S * 3 + (int64_t)h * w * 2) * 4;
  return (size_t)(2 * (transformer + upscale + post) + (64 << 20));
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
  samx_ctx_init(&enc, m->device, encoder_arena_bytes(c), 4096 + 512 * c->enc_depth);
  samx_ctx_set_recording(&enc, 0);
  SamImageInfo info;
  SamxTensor *emb_enc = sam_encode(&enc, m, sam_preprocess(&enc, m, rgb, h, w, &info));
  // The embedding moves to the decoder's context so that the encoder's activations can go.
  SamxCtx dec;
  samx_ctx_init(&dec, m->device, decoder_arena_bytes(c, h, w), 4096);
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
  if (rc == 0) rc = samx_png_write(a->out, png, w, h, 1);
  if (rc == 0 && a->overlay) {
    uint8_t *canvas = (uint8_t *)malloc(3 * hw);
    memcpy(canvas, rgb, 3 * hw);
    sam_overlay_draw(canvas, h, w, chosen, &a->prompt);
    rc = samx_png_write(a->overlay, canvas, w, h, 3);
    free(canvas);
  }
  free(png);
  free(masks);
  return rc;
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
  if (check_prompt(&a->prompt, h, w, a->image) || samx_device_parse(a->device, &device)) {
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
    rc = write_outputs(a, &r, rgb, h, w, best);
    if (a->verbose) {
      char dev[64];
      fprintf(stderr, "samx segment: %s, %dx%d image, mask %d of %d (predicted IoU %.4f)\n",
              samx_device_str(device, dev, sizeof dev), w, h, best, r.M, r.iou[best]);
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

int samx_cmd_segment(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
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
