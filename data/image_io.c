// 8-bit image files: PNG through libpng's simplified API, JPEG through libjpeg, TIFF through libtiff.
#include "data/image_io.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include "engine/error.h"
#include "engine/fileio.h"

void samx_image_free(SamxImage *img) {
  free(img->data);
  memset(img, 0, sizeof *img);
}

static int read_png(const char *path, SamxImage *img) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&pi, path)) return samx_fail("%s: cannot read PNG: %s", path, pi.message);
  img->channels = (pi.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  pi.format = img->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;  // alpha composited on black
  img->w = pi.width, img->h = pi.height;
  img->data = (uint8_t *)malloc(PNG_IMAGE_SIZE(pi));
  if (!png_image_finish_read(&pi, NULL, img->data, 0, NULL)) {
    samx_image_free(img);
    return samx_fail("%s: cannot decode PNG: %s", path, pi.message);
  }
  return 0;
}

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

static int read_jpeg(const char *path, SamxImage *img) {
  FILE *f = fopen(path, "rb");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  struct jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    samx_image_free(img);
    return samx_fail("%s: cannot decode JPEG: %s", path, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img->w = cinfo.output_width, img->h = cinfo.output_height, img->channels = cinfo.output_components;
  img->data = (uint8_t *)malloc((size_t)(img->w * img->h * img->channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img->data + (size_t)cinfo.output_scanline * (size_t)(img->w * img->channels);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  fclose(f);
  return 0;
}

static int read_tiff(const char *path, SamxImage *img) {
  TIFFSetWarningHandler(NULL);
  TIFF *t = TIFFOpen(path, "r");
  if (!t) return samx_fail("%s: cannot read TIFF", path);
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &photometric);
  // libtiff's RGBA reader handles every bit depth, palette and layout; grey stays grey.
  uint32_t *rgba = (uint32_t *)_TIFFmalloc((tmsize_t)w * h * sizeof(uint32_t));
  int ok = rgba && TIFFReadRGBAImageOriented(t, w, h, rgba, ORIENTATION_TOPLEFT, 0);
  TIFFClose(t);
  if (!ok) {
    if (rgba) _TIFFfree(rgba);
    return samx_fail("%s: cannot decode TIFF", path);
  }
  int grey = spp == 1 && photometric != PHOTOMETRIC_PALETTE;
  img->w = w, img->h = h, img->channels = grey ? 1 : 3;
  img->data = (uint8_t *)malloc((size_t)w * h * (size_t)img->channels);
  for (size_t i = 0; i < (size_t)w * h; i++) {
    uint32_t p = rgba[i];
    if (grey)
      img->data[i] = (uint8_t)TIFFGetR(p);
    else
      img->data[3 * i] = (uint8_t)TIFFGetR(p), img->data[3 * i + 1] = (uint8_t)TIFFGetG(p),
      img->data[3 * i + 2] = (uint8_t)TIFFGetB(p);
  }
  _TIFFfree(rgba);
  return 0;
}

int samx_image_read(const char *path, SamxImage *img) {
  memset(img, 0, sizeof *img);
  FILE *f = fopen(path, "rb");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  uint8_t magic[4] = {0};
  size_t got = fread(magic, 1, 4, f);
  fclose(f);
  if (got >= 4 && magic[0] == 0x89 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G') return read_png(path, img);
  if (got >= 2 && magic[0] == 0xff && magic[1] == 0xd8) return read_jpeg(path, img);
  if (got >= 4 && ((magic[0] == 'I' && magic[1] == 'I' && magic[2] == 42) || (magic[0] == 'M' && magic[1] == 'M' && magic[3] == 42)))
    return read_tiff(path, img);
  return samx_fail("%s: not a PNG, JPEG or TIFF image", path);
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
void samx_image_resize(SamxImage *img, int64_t w, int64_t h, int nearest) {
  if (img->w == w && img->h == h) return;
  int c = img->channels;
  uint8_t *out = (uint8_t *)malloc((size_t)(w * h * c));
  double sx = (double)img->w / (double)w, sy = (double)img->h / (double)h;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double fx = (x + 0.5) * sx - 0.5, fy = (y + 0.5) * sy - 0.5;
      if (nearest) {
        int64_t ix = (int64_t)floor((x + 0.5) * sx), iy = (int64_t)floor((y + 0.5) * sy);
        ix = ix < img->w ? ix : img->w - 1, iy = iy < img->h ? iy : img->h - 1;
        memcpy(out + (y * w + x) * c, img->data + (iy * img->w + ix) * c, (size_t)c);
        continue;
      }
      fx = fx < 0 ? 0 : fx, fy = fy < 0 ? 0 : fy;
      int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      int64_t x1 = x0 + 1 < img->w ? x0 + 1 : x0, y1 = y0 + 1 < img->h ? y0 + 1 : y0;
      double tx = fx - (double)x0, ty = fy - (double)y0;
      for (int ch = 0; ch < c; ch++) {
        const uint8_t *d = img->data;
        double top = d[(y0 * img->w + x0) * c + ch] * (1 - tx) + d[(y0 * img->w + x1) * c + ch] * tx;
        double bot = d[(y1 * img->w + x0) * c + ch] * (1 - tx) + d[(y1 * img->w + x1) * c + ch] * tx;
        out[(y * w + x) * c + ch] = (uint8_t)lrint(top * (1 - ty) + bot * ty);
      }
    }
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

int samx_jpeg_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels, int quality) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) return samx_fail("%s: cannot create: %s", tmp, strerror(errno));
  struct jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
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
