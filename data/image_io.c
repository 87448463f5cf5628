// Image files: PNG through libpng's classic API (raw samples, no gamma), JPEG through libjpeg (quiet,
// damaged data is an error), TIFF through libtiff; NIfTI through nifticlib; resizing and intensities.
#include "data/image_io.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>
#include <nifti2_io.h>

#include "engine/error.h"
#include "engine/fileio.h"

void samx_image_free(SamxImage *img) {
  free(img->data);
  memset(img, 0, sizeof *img);
}

void samx_samples_free(SamxSamples *img) {
  free(img->data);
  memset(img, 0, sizeof *img);
}

static float *alloc_samples(SamxSamples *img) {
  img->data = (float *)malloc((size_t)(img->w * img->h * img->channels) * sizeof(float) + 1);
  return img->data;
}

// ---- PNG ----

typedef struct {
  jmp_buf jump;
  char message[256];
  FILE *f;
  png_bytep pix;
  png_bytepp rows;
} PngRead;

static void png_error_fn(png_structp png, png_const_charp msg) {
  PngRead *r = (PngRead *)png_get_error_ptr(png);
  snprintf(r->message, sizeof r->message, "%s", msg);
  longjmp(r->jump, 1);
}

// Warnings concern ancillary chunks only (a damaged text or colour-profile chunk); the samples are intact.
static void png_warning_fn(png_structp png, png_const_charp msg) {
  (void)png, (void)msg;
}

static void png_read_cleanup(PngRead *r, png_structp *png, png_infop *info) {
  png_destroy_read_struct(png, info, NULL);
  free(r->pix);
  free(r->rows);
  if (r->f) fclose(r->f);
}

// Decompression-bomb guard, as PIL's Image.MAX_IMAGE_PIXELS (which errors at twice its 89,478,485):
// a header may declare any size, the pixels must then fit in memory (float samples).
#define SAMX_DEFAULT_MAX_IMAGE_PIXELS 178956970LL

int64_t samx_image_max_pixels(void) {
  const char *e = getenv("SAMX_MAX_IMAGE_PIXELS");
  if (!e || !*e) return SAMX_DEFAULT_MAX_IMAGE_PIXELS;
  char *end;
  long long v = strtoll(e, &end, 10);
  if (*end || v < 0) return SAMX_DEFAULT_MAX_IMAGE_PIXELS;
  return v == 0 ? INT64_MAX : v;
}

int samx_image_check_size(const char *path, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0) return samx_fail("%s: the image declares %lld x %lld pixels", path, (long long)w, (long long)h);
  int64_t limit = samx_image_max_pixels();
  if (w > limit / h)
    return samx_fail("%s: the image declares %lld x %lld pixels, more than the limit of %lld; set "
                     "SAMX_MAX_IMAGE_PIXELS to a larger number (0: no limit) if the file is genuine",
                     path, (long long)w, (long long)h, (long long)limit);
  return 0;
}

static int read_png(const char *path, SamxSamples *img) {
  PngRead r = {.f = fopen(path, "rb")};
  if (!r.f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_error_fn, png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_read_cleanup(&r, &png, &info);
    return samx_fail("%s: out of memory reading PNG", path);
  }
  if (setjmp(r.jump)) {
    png_read_cleanup(&r, &png, &info);
    samx_samples_free(img);
    return samx_fail("%s: cannot decode PNG (truncated or corrupt): %s", path, r.message);
  }
  png_init_io(png, r.f);
  png_read_info(png, info);
  png_set_expand(png);  // palette -> RGB, grey below 8 bits -> 8, tRNS -> alpha
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int c = png_get_channels(png, info), bits = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  img->w = png_get_image_width(png, info), img->h = png_get_image_height(png, info);
  img->channels = c, img->bits = bits, img->format = SAMX_SAMPLE_UINT;
  if (samx_image_check_size(path, img->w, img->h) != 0) {
    char why[1024];
    snprintf(why, sizeof why, "%s", samx_last_error());
    png_read_cleanup(&r, &png, &info);
    img->data = NULL;
    return samx_fail("%s", why);
  }
  r.pix = (png_bytep)malloc(rowbytes * (size_t)img->h + 1);
  r.rows = (png_bytepp)malloc(sizeof(png_bytep) * (size_t)img->h + 1);
  for (int64_t y = 0; y < img->h; y++) r.rows[y] = r.pix + (size_t)y * rowbytes;
  png_read_image(png, r.rows);
  png_read_end(png, NULL);
  float *out = alloc_samples(img);
  size_t n = (size_t)(img->w * img->h * c);
  for (size_t i = 0; i < n; i++)  // 16-bit samples are big-endian in the file
    out[i] = bits == 16 ? (float)(r.pix[2 * i] << 8 | r.pix[2 * i + 1]) : (float)r.pix[i];
  png_read_cleanup(&r, &png, &info);
  return 0;
}

// ---- JPEG ----

typedef struct {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} JpegError;

static void jpeg_error_exit(j_common_ptr cinfo) {
  JpegError *e = (JpegError *)cinfo->err;
  cinfo->err->format_message(cinfo, e->message);
  longjmp(e->jump, 1);
}

// libjpeg reports damaged data as warnings and decodes grey blocks in its place; samx treats those
// as errors. Extraneous bytes before a marker and a bad ICC profile leave the pixels intact (PIL
// accepts such files too), so they, like every other message, are dropped silently.
static void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE ||
      code == JWRN_ARITH_BAD_CODE || code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION)
    jpeg_error_exit(cinfo);
}

static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_quiet_errors(struct jpeg_error_mgr *mgr) {
  jpeg_std_error(mgr);
  mgr->error_exit = jpeg_error_exit;
  mgr->emit_message = jpeg_emit_message;
  mgr->output_message = jpeg_output_message;
}

static int read_jpeg(const char *path, SamxSamples *img) {
  FILE *f = fopen(path, "rb");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  struct jpeg_decompress_struct cinfo;
  JpegError err;
  uint8_t *volatile row = NULL;
  cinfo.err = &err.mgr;
  jpeg_quiet_errors(&err.mgr);
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    free(row);
    samx_samples_free(img);
    return samx_fail("%s: cannot decode JPEG (truncated or corrupt): %s", path, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  if (samx_image_check_size(path, cinfo.image_width, cinfo.image_height) != 0) {
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    return -1;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img->w = cinfo.output_width, img->h = cinfo.output_height, img->channels = cinfo.output_components;
  img->bits = 8, img->format = SAMX_SAMPLE_UINT;
  size_t stride = (size_t)(img->w * img->channels);
  row = (uint8_t *)malloc(stride + 1);
  float *out = alloc_samples(img);
  while (cinfo.output_scanline < cinfo.output_height) {
    size_t y = cinfo.output_scanline;
    JSAMPROW rp = row;
    jpeg_read_scanlines(&cinfo, &rp, 1);
    for (size_t i = 0; i < stride; i++) out[y * stride + i] = row[i];
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(row);
  fclose(f);
  return 0;
}

// ---- TIFF ----

// 8-bit and lower: libtiff's RGBA reader handles every layout, palette and photometric; grey stays grey.
static int read_tiff_rgba(TIFF *t, const char *path, SamxSamples *img) {
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &photometric);
  if (samx_image_check_size(path, w, h) != 0) return -1;
  uint32_t *rgba = (uint32_t *)_TIFFmalloc((tmsize_t)w * h * sizeof(uint32_t) + 1);
  int ok = rgba && TIFFReadRGBAImageOriented(t, w, h, rgba, ORIENTATION_TOPLEFT, 1);
  if (!ok) {
    if (rgba) _TIFFfree(rgba);
    return samx_fail("%s: cannot decode TIFF (truncated or corrupt)", path);
  }
  int grey = (spp == 1 || spp == 2) && photometric != PHOTOMETRIC_PALETTE;
  img->w = w, img->h = h, img->channels = grey ? 1 : 3, img->bits = 8, img->format = SAMX_SAMPLE_UINT;
  float *out = alloc_samples(img);
  for (size_t i = 0; i < (size_t)w * h; i++) {
    uint32_t p = rgba[i];
    if (grey)
      out[i] = (float)TIFFGetR(p);
    else
      out[3 * i] = (float)TIFFGetR(p), out[3 * i + 1] = (float)TIFFGetG(p), out[3 * i + 2] = (float)TIFFGetB(p);
  }
  _TIFFfree(rgba);
  return 0;
}

static double tiff_sample(const uint8_t *row, int64_t i, int bits, int format) {
  if (format == SAMPLEFORMAT_IEEEFP) return bits == 32 ? ((const float *)row)[i] : ((const double *)row)[i];
  if (format == SAMPLEFORMAT_INT) return bits == 16 ? ((const int16_t *)row)[i] : ((const int32_t *)row)[i];
  return bits == 16 ? ((const uint16_t *)row)[i] : ((const uint32_t *)row)[i];
}

// Wider samples: striped, interleaved TIFF with 16/32-bit integer or 32/64-bit float samples.
static int read_tiff_wide(TIFF *t, const char *path, SamxSamples *img) {
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bits = 8, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &photometric);
  if (samx_image_check_size(path, w, h) != 0) return -1;
  int ok_type = (format == SAMPLEFORMAT_IEEEFP && (bits == 32 || bits == 64)) ||
                ((format == SAMPLEFORMAT_UINT || format == SAMPLEFORMAT_INT) && (bits == 16 || bits == 32));
  if (!ok_type || TIFFIsTiled(t) || planar != PLANARCONFIG_CONTIG || spp < 1 || spp > 4)
    return samx_fail("%s: TIFF with %d-bit samples (format %d, %d per pixel%s%s) is not supported: use 8/16-bit or "
                     "float, striped and interleaved",
                     path, bits, format, spp, TIFFIsTiled(t) ? ", tiled" : "", planar != PLANARCONFIG_CONTIG ? ", planar" : "");
  img->w = w, img->h = h, img->channels = spp >= 3 ? 3 : 1, img->bits = bits;
  img->format = format == SAMPLEFORMAT_IEEEFP ? SAMX_SAMPLE_FLOAT : format == SAMPLEFORMAT_INT ? SAMX_SAMPLE_INT : SAMX_SAMPLE_UINT;
  float *out = alloc_samples(img);
  uint8_t *row = (uint8_t *)_TIFFmalloc(TIFFScanlineSize(t));
  double white = img->format == SAMX_SAMPLE_UINT ? ldexp(1.0, bits) - 1 : 0;
  for (uint32_t y = 0; y < h; y++) {
    if (!row || TIFFReadScanline(t, row, y, 0) < 0) {
      if (row) _TIFFfree(row);
      samx_samples_free(img);
      return samx_fail("%s: cannot decode TIFF row %u (truncated or corrupt)", path, y);
    }
    for (uint32_t x = 0; x < w; x++)
      for (int k = 0; k < img->channels; k++) {
        double v = tiff_sample(row, (int64_t)x * spp + k, bits, format);
        // Min-is-white stores inverted intensities.
        out[((size_t)y * w + x) * img->channels + k] = (float)(photometric == PHOTOMETRIC_MINISWHITE ? white - v : v);
      }
  }
  _TIFFfree(row);
  return 0;
}

static int read_tiff(const char *path, SamxSamples *img) {
  // libtiff's messages would add lines to stderr; failures are reported once, here.
  TIFFSetErrorHandler(NULL);
  TIFFSetWarningHandler(NULL);
  TIFF *t = TIFFOpen(path, "r");
  if (!t) return samx_fail("%s: cannot read TIFF (truncated or corrupt)", path);
  uint32_t w = 0, h = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  if (samx_image_check_size(path, w, h) != 0) {
    TIFFClose(t);
    return -1;
  }
  uint16_t bits = 8;
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  int rc = bits <= 8 ? read_tiff_rgba(t, path, img) : read_tiff_wide(t, path, img);
  TIFFClose(t);
  return rc;
}

int samx_image_read_samples(const char *path, SamxSamples *img) {
  memset(img, 0, sizeof *img);
  FILE *f = fopen(path, "rb");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  uint8_t magic[4] = {0};
  size_t got = fread(magic, 1, 4, f);
  fclose(f);
  int rc;
  if (got >= 4 && magic[0] == 0x89 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G')
    rc = read_png(path, img);
  else if (got >= 2 && magic[0] == 0xff && magic[1] == 0xd8)
    rc = read_jpeg(path, img);
  else if (got >= 4 && ((magic[0] == 'I' && magic[1] == 'I' && magic[2] == 42) || (magic[0] == 'M' && magic[1] == 'M' && magic[3] == 42)))
    rc = read_tiff(path, img);
  else
    return samx_fail("%s: not a PNG, JPEG or TIFF image", path);
  if (rc == 0 && (img->w <= 0 || img->h <= 0)) {
    samx_samples_free(img);
    return samx_fail("%s: empty image", path);
  }
  return rc;
}

int samx_image_read(const char *path, SamxImage *img) {
  memset(img, 0, sizeof *img);
  SamxSamples s;
  if (samx_image_read_samples(path, &s) != 0) return -1;
  if (s.format != SAMX_SAMPLE_UINT || s.bits > 16) {
    int rc = samx_fail("%s: %d-bit %s samples have no 8-bit reading without an intensity mapping", path, s.bits,
                       s.format == SAMX_SAMPLE_FLOAT ? "float" : "integer");
    samx_samples_free(&s);
    return rc;
  }
  size_t n = (size_t)(s.w * s.h * s.channels);
  img->w = s.w, img->h = s.h, img->channels = s.channels;
  img->data = (uint8_t *)malloc(n + 1);
  // 16-bit to 8: the linear scale 65535 -> 255, rounded (no sRGB or gamma curve).
  for (size_t i = 0; i < n; i++)
    img->data[i] = (uint8_t)(s.bits == 16 ? ((uint32_t)s.data[i] * 255u + 32767u) / 65535u : (uint32_t)s.data[i]);
  samx_samples_free(&s);
  return 0;
}

int samx_image_read_u16(const char *path, uint16_t **out, int64_t *w, int64_t *h, int *channels, int *bits) {
  *out = NULL;
  SamxSamples s;
  if (samx_image_read_samples(path, &s) != 0) return -1;
  if (s.format != SAMX_SAMPLE_UINT || s.bits > 16) {
    int rc = samx_fail("%s: %d-bit %s samples do not fit uint16", path, s.bits,
                       s.format == SAMX_SAMPLE_FLOAT ? "float" : s.format == SAMX_SAMPLE_INT ? "signed" : "unsigned");
    samx_samples_free(&s);
    return rc;
  }
  size_t n = (size_t)(s.w * s.h * s.channels);
  *out = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
  for (size_t i = 0; i < n; i++) (*out)[i] = (uint16_t)s.data[i];
  *w = s.w, *h = s.h, *channels = s.channels, *bits = s.bits;
  samx_samples_free(&s);
  return 0;
}

void samx_image_to_channels(SamxImage *img, int channels) {
  if (img->channels == channels) return;
  size_t n = (size_t)(img->w * img->h);
  uint8_t *out = (uint8_t *)malloc(n * (size_t)channels);
  for (size_t i = 0; i < n; i++) {
    if (channels == 3) {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img->data[i];
    } else {
      const uint8_t *p = img->data + 3 * i;
      out[i] = (uint8_t)lrint(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]);
    }
  }
  free(img->data);
  img->data = out;
  img->channels = channels;
}

// Pixel centres align (half-pixel convention), as in PIL and torch's align_corners=False.
void samx_resize_f32(const float *in, int64_t w, int64_t h, int c, float *out, int64_t ow, int64_t oh, int nearest) {
  double sx = (double)w / (double)ow, sy = (double)h / (double)oh;
  for (int64_t y = 0; y < oh; y++)
    for (int64_t x = 0; x < ow; x++) {
      float *o = out + (y * ow + x) * c;
      if (nearest) {
        int64_t ix = (int64_t)floor((x + 0.5) * sx), iy = (int64_t)floor((y + 0.5) * sy);
        ix = ix < w ? ix : w - 1, iy = iy < h ? iy : h - 1;
        memcpy(o, in + (iy * w + ix) * c, (size_t)c * sizeof(float));
        continue;
      }
      double fx = (x + 0.5) * sx - 0.5, fy = (y + 0.5) * sy - 0.5;
      fx = fx < 0 ? 0 : fx, fy = fy < 0 ? 0 : fy;
      int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      int64_t x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
      double tx = fx - (double)x0, ty = fy - (double)y0;
      for (int ch = 0; ch < c; ch++) {
        double top = in[(y0 * w + x0) * c + ch] * (1 - tx) + in[(y0 * w + x1) * c + ch] * tx;
        double bot = in[(y1 * w + x0) * c + ch] * (1 - tx) + in[(y1 * w + x1) * c + ch] * tx;
        o[ch] = (float)(top * (1 - ty) + bot * ty);
      }
    }
}

void samx_image_resize(SamxImage *img, int64_t w, int64_t h, int nearest) {
  if (img->w == w && img->h == h) return;
  int c = img->channels;
  size_t n_in = (size_t)(img->w * img->h * c), n_out = (size_t)(w * h * c);
  float *in = (float *)malloc(n_in * sizeof(float) + 1), *res = (float *)malloc(n_out * sizeof(float) + 1);
  for (size_t i = 0; i < n_in; i++) in[i] = img->data[i];
  samx_resize_f32(in, img->w, img->h, c, res, w, h, nearest);
  uint8_t *out = (uint8_t *)malloc(n_out + 1);
  for (size_t i = 0; i < n_out; i++) out[i] = (uint8_t)lrintf(res[i]);
  free(in);
  free(res);
  free(img->data);
  img->data = out;
  img->w = w, img->h = h;
}

int samx_png_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = (png_uint_32)w, pi.height = (png_uint_32)h;
  pi.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  if (!png_image_write_to_file(&pi, tmp, 0, data, 0, NULL)) {
    remove(tmp);
    return samx_fail("%s: cannot write PNG: %s", path, pi.message);
  }
  return samx_commit_tmp(tmp, path);
}

static int has_ext(const char *path, const char *ext) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  return dot && (!slash || dot > slash) && !strcasecmp(dot + 1, ext);
}

int samx_image_write_format(const char *path) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) return SAMX_IMAGE_FMT_PNG;  // no extension (/dev/stdout ...): PNG
  if (has_ext(path, "png")) return SAMX_IMAGE_FMT_PNG;
  if (has_ext(path, "jpg") || has_ext(path, "jpeg")) return SAMX_IMAGE_FMT_JPEG;
  if (has_ext(path, "tif") || has_ext(path, "tiff")) return SAMX_IMAGE_FMT_TIFF;
  return samx_fail("%s: unknown image extension '%s' (samx writes .png, .jpg/.jpeg, .tif/.tiff)", path, dot);
}

int samx_image_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels) {
  switch (samx_image_write_format(path)) {
    case SAMX_IMAGE_FMT_PNG: return samx_png_write(path, data, w, h, channels);
    case SAMX_IMAGE_FMT_JPEG: return samx_jpeg_write(path, data, w, h, channels, 95);
    case SAMX_IMAGE_FMT_TIFF: return samx_tiff_write(path, data, w, h, channels);
    default: return -1;
  }
}

int samx_jpeg_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels, int quality) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) return samx_fail("%s: cannot create: %s", tmp, strerror(errno));
  struct jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = &err.mgr;
  jpeg_quiet_errors(&err.mgr);
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    fclose(f);
    remove(tmp);
    return samx_fail("%s: cannot write JPEG: %s", path, err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = (JDIMENSION)w, cinfo.image_height = (JDIMENSION)h, cinfo.input_components = channels;
  cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(data + (size_t)cinfo.next_scanline * (size_t)(w * channels));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  if (fclose(f) != 0) {
    remove(tmp);
    return samx_fail("%s: write failed", path);
  }
  return samx_commit_tmp(tmp, path);
}

int samx_tiff_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  TIFF *t = TIFFOpen(tmp, "w");
  if (!t) return samx_fail("%s: cannot create TIFF", tmp);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)channels);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)8);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)1);
  int ok = 1;
  for (int64_t y = 0; y < h && ok; y++)
    ok = TIFFWriteScanline(t, (void *)(data + (size_t)(y * w * channels)), (uint32_t)y, 0) >= 0;
  TIFFClose(t);
  if (!ok) {
    remove(tmp);
    return samx_fail("%s: cannot write TIFF", path);
  }
  return samx_commit_tmp(tmp, path);
}

int samx_png_write16(const char *path, const uint16_t *data, int64_t w, int64_t h, int channels) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  PngRead r = {.f = fopen(tmp, "wb")};
  if (!r.f) return samx_fail("%s: cannot create: %s", tmp, strerror(errno));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &r, png_error_fn, png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info || setjmp(r.jump)) {
    png_destroy_write_struct(&png, &info);
    free(r.pix);
    fclose(r.f);
    remove(tmp);
    return samx_fail("%s: cannot write PNG: %s", path, info ? r.message : "out of memory");
  }
  png_init_io(png, r.f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 16, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  size_t stride = (size_t)(w * channels);
  r.pix = (png_bytep)malloc(2 * stride + 1);
  for (int64_t y = 0; y < h; y++) {
    for (size_t i = 0; i < stride; i++) {
      uint16_t v = data[(size_t)y * stride + i];
      r.pix[2 * i] = (png_byte)(v >> 8), r.pix[2 * i + 1] = (png_byte)(v & 0xff);
    }
    png_write_row(png, r.pix);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(r.pix);
  if (fclose(r.f) != 0) {
    remove(tmp);
    return samx_fail("%s: write failed", path);
  }
  return samx_commit_tmp(tmp, path);
}

// ---- NIfTI ----

static int nifti_to_float(int datatype, const void *p, float *out, size_t n) {
  switch (datatype) {
#define CONVERT(DT, T) \
  case DT:             \
    for (size_t i = 0; i < n; i++) out[i] = (float)((const T *)p)[i]; \
    return 0;
    CONVERT(DT_UINT8, uint8_t)
    CONVERT(DT_INT8, int8_t)
    CONVERT(DT_INT16, int16_t)
    CONVERT(DT_UINT16, uint16_t)
    CONVERT(DT_INT32, int32_t)
    CONVERT(DT_UINT32, uint32_t)
    CONVERT(DT_INT64, int64_t)
    CONVERT(DT_UINT64, uint64_t)
    CONVERT(DT_FLOAT32, float)
    CONVERT(DT_FLOAT64, double)
#undef CONVERT
    default: return -1;
  }
}

// The voxels, read here rather than by nifti_image_load: nifticlib silently turns NaN and Inf into 0,
// which would hide exactly the damage samx must report.
static void *nifti_raw_data(const nifti_image *nim, const char *path) {
  size_t n = (size_t)nim->nvox * (size_t)nim->nbyper;
  size_t len = strlen(nim->iname);
  znzFile fp = znzopen(nim->iname, "rb", len > 3 && !strcmp(nim->iname + len - 3, ".gz"));
  if (znz_isnull(fp)) {
    samx_fail("%s: cannot open its data file %s", path, nim->iname);
    return NULL;
  }
  void *buf = malloc(n + 1);
  size_t got = 0;
  if (znzseek(fp, (znz_off_t)nim->iname_offset, SEEK_SET) >= 0) got = znzread(buf, 1, n, fp);
  znzclose(fp);
  if (got != n) {
    free(buf);
    samx_fail("%s: cannot read NIfTI voxels (truncated or corrupt: %zu of %zu bytes)", path, got, n);
    return NULL;
  }
  if (nim->swapsize > 1 && nim->byteorder != nifti_short_order()) nifti_swap_Nbytes((int64_t)nim->nvox, nim->swapsize, buf);
  return buf;
}

// Whether the voxels the header declares fit in the file: uncompressed data must be there byte for
// byte; gzip inflates at most 1032:1 (deflate's limit). *n receives the voxel count.
static int nifti_data_fits(const nifti_image *nim, const char *path, const int64_t dim[4], size_t *n) {
  uint64_t voxels = 1, bytes;
  for (int a = 0; a < 4; a++)
    if (__builtin_mul_overflow(voxels, (uint64_t)dim[a], &voxels)) return 0;
  if (__builtin_mul_overflow(voxels, (uint64_t)(nim->nbyper > 0 ? nim->nbyper : 1), &bytes)) return 0;
  struct stat sb;
  const char *data_file = nim->iname ? nim->iname : path;
  if (stat(data_file, &sb) != 0) return 1;  // the read reports the missing file
  size_t len = strlen(data_file);
  int gz = len > 3 && !strcmp(data_file + len - 3, ".gz");
  uint64_t have = (uint64_t)sb.st_size, offset = nim->iname_offset > 0 ? (uint64_t)nim->iname_offset : 0;
  if (gz ? bytes / 1032 > have : offset > have || bytes > have - offset) return 0;
  *n = (size_t)voxels;
  return 1;
}

int samx_nifti_read(const char *path, SamxVolume *v) {
  memset(v, 0, sizeof *v);
  if (access(path, R_OK) != 0) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  nifti_set_debug_level(0);  // nifticlib would print its own messages; failures are reported once, here
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim) return samx_fail("%s: cannot read NIfTI header (truncated, corrupt or not a .nii/.nii.gz file)", path);
  int rc = 0;
  void *raw = NULL;
  if (nim->nu > 1 || nim->nv > 1 || nim->nw > 1) {
    rc = samx_fail("%s: NIfTI has %lld dimensions; samx reads up to 4 (x, y, z, t)", path, (long long)nim->ndim);
  } else {
    int64_t d[4] = {nim->nx, nim->ny, nim->nz, nim->nt};
    for (int a = 0; a < 4; a++) v->dim[a] = d[a] > 0 ? d[a] : 1;
    double sp[3] = {nim->dx, nim->dy, nim->dz};
    for (int a = 0; a < 3; a++) v->spacing[a] = isfinite(sp[a]) && sp[a] > 0 ? sp[a] : 1.0;
    size_t n = 0;
    int fits = nifti_data_fits(nim, path, v->dim, &n);
    v->data = fits ? (float *)malloc(n * sizeof(float) + 1) : NULL;
    if (!fits) {
      rc = samx_fail("%s: NIfTI header declares %lld x %lld x %lld x %lld voxels of %d bytes, more than the file "
                     "can hold (truncated or corrupt)", path, (long long)v->dim[0], (long long)v->dim[1],
                     (long long)v->dim[2], (long long)v->dim[3], nim->nbyper);
    } else if (n != (size_t)nim->nvox) {
      rc = samx_fail("%s: NIfTI header holds %lld voxels, its dimensions %zu", path, (long long)nim->nvox, n);
    } else if (nifti_to_float(nim->datatype, NULL, NULL, 0) != 0) {
      rc = samx_fail("%s: NIfTI datatype %d (%s) is not supported (integers, float32, float64)", path, nim->datatype,
                     nifti_datatype_string(nim->datatype));
    } else if (!(raw = nifti_raw_data(nim, path))) {
      rc = -1;
    } else {
      nifti_to_float(nim->datatype, raw, v->data, n);
      if (nim->scl_slope != 0 && isfinite(nim->scl_slope) && isfinite(nim->scl_inter) &&
          !(nim->scl_slope == 1 && nim->scl_inter == 0))
        for (size_t i = 0; i < n; i++) v->data[i] = (float)(v->data[i] * nim->scl_slope + nim->scl_inter);
    }
  }
  free(raw);
  nifti_image_free(nim);
  if (rc) samx_volume_free(v);
  return rc;
}

void samx_volume_free(SamxVolume *v) {
  free(v->data);
  memset(v, 0, sizeof *v);
}

int samx_nifti_write(const char *path, const SamxVolume *v, int as_u8) {
  int ndim = v->dim[3] > 1 ? 4 : v->dim[2] > 1 ? 3 : 2;
  int64_t dims[8] = {ndim, v->dim[0], v->dim[1], v->dim[2], v->dim[3], 1, 1, 1};
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_make_new_nim(dims, as_u8 ? DT_UINT8 : DT_FLOAT32, 1);
  if (!nim) return samx_fail("%s: cannot create a NIfTI image", path);
  size_t n = (size_t)(v->dim[0] * v->dim[1] * v->dim[2] * v->dim[3]);
  for (size_t i = 0; i < n; i++) {
    if (as_u8)
      ((uint8_t *)nim->data)[i] = (uint8_t)v->data[i];
    else
      ((float *)nim->data)[i] = v->data[i];
  }
  nim->dx = nim->pixdim[1] = v->spacing[0];
  nim->dy = nim->pixdim[2] = v->spacing[1];
  nim->dz = nim->pixdim[3] = v->spacing[2];
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  int rc = 0;
  if (nifti_set_filenames(nim, path, 0, 1) != 0)
    rc = samx_fail("%s: not a NIfTI file name (.nii or .nii.gz)", path);
  else
    nifti_image_write(nim);
  nifti_image_free(nim);
  if (rc == 0 && access(path, F_OK) != 0) rc = samx_fail("%s: cannot write NIfTI", path);
  return rc;
}

// ---- intensities ----

// The k-th smallest of v[0..n) (quickselect; reorders v so that everything after index k is >= v[k]).
static float select_kth(float *v, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    float pivot = v[lo + (hi - lo) / 2];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        float t = v[i];
        v[i++] = v[j], v[j--] = t;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return v[k];
  }
  return v[k];
}

// numpy.percentile's default (linear interpolation between the order statistics); reorders v.
static double percentile(float *v, size_t n, double q) {
  double pos = q / 100.0 * (double)(n - 1);
  size_t k = (size_t)floor(pos);
  double a = select_kth(v, (int64_t)n, (int64_t)k);
  if (k + 1 >= n) return a;
  float b = v[k + 1];  // after the selection everything above k is >= v[k]: the next order statistic is their minimum
  for (size_t i = k + 2; i < n; i++) b = v[i] < b ? v[i] : b;
  return a + (pos - (double)k) * ((double)b - a);
}

void samx_intensity_range(const SamxIntensity *it, const float *v, size_t n, double *lo, double *hi) {
  if (it->mode == SAMX_INTENSITY_WINDOW) {
    *lo = it->a - it->b / 2, *hi = it->a + it->b / 2;
  } else if (it->mode == SAMX_INTENSITY_CLIP) {
    *lo = it->a, *hi = it->b;
  } else {
    // Over the nonzero values: MR background is 0 and would otherwise set the lower percentile.
    float *tmp = (float *)malloc(n * sizeof(float) + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (v[i] != 0 && isfinite(v[i])) tmp[m++] = v[i];
    if (m == 0)
      for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) tmp[m++] = v[i];
    *lo = m ? percentile(tmp, m, it->a) : 0;
    *hi = m ? percentile(tmp, m, it->b) : 1;
    free(tmp);
  }
  if (!(*hi > *lo)) *hi = *lo + 1;
}

void samx_intensity_apply(float *v, size_t n, double lo, double hi) {
  double scale = 1.0 / (hi - lo);
  for (size_t i = 0; i < n; i++) {
    double x = ((double)v[i] - lo) * scale;
    v[i] = (float)(x <= 0 ? 0 : x >= 1 ? 1 : x);
  }
}

void samx_intensity_describe(const SamxIntensity *it, char *buf, size_t n) {
  if (it->mode == SAMX_INTENSITY_WINDOW)
    snprintf(buf, n, "CT window level %g width %g HU, scaled to [0,1]", it->a, it->b);
  else if (it->mode == SAMX_INTENSITY_CLIP)
    snprintf(buf, n, "HU clip [%g, %g], scaled to [0,1]", it->a, it->b);
  else
    snprintf(buf, n, "percentile clip %g..%g of each case's nonzero values, scaled to [0,1]", it->a, it->b);
}
