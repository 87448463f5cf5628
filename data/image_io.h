// 8-bit image files for the packers and tests: PNG (libpng), JPEG (libjpeg), TIFF (libtiff).
#ifndef SAMX_DATA_IMAGE_IO_H
#define SAMX_DATA_IMAGE_IO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t w, h;
  int channels;   // 1 (grey) or 3 (RGB)
  uint8_t *data;  // h*w*channels, malloc'd
} SamxImage;

// Reads a PNG, JPEG or TIFF (by content, not extension) as 8-bit grey or RGB (alpha dropped, 16-bit
// reduced to 8, palettes expanded). Returns 0 or -1 with samx_last_error naming the file.
int samx_image_read(const char *path, SamxImage *img);
void samx_image_free(SamxImage *img);
// Converts to 1 or 3 channels in place (RGB -> grey by ITU-R 601 luma).
void samx_image_to_channels(SamxImage *img, int channels);
// Resizes in place to w x h: bilinear (nearest when `nearest`, for masks).
void samx_image_resize(SamxImage *img, int64_t w, int64_t h, int nearest);
// Writers (for tests, fixtures and figures). Return 0 or -1.
int samx_png_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels);
int samx_jpeg_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels, int quality);
int samx_tiff_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels);

#ifdef __cplusplus
}
#endif
#endif
