// Image files for the packers, tools and tests: PNG (libpng), JPEG (libjpeg), TIFF (libtiff), NIfTI
// volumes (nifticlib); resizing and the intensity mappings of medical images.
//
// Sample values are never passed through a gamma or sRGB curve: medical images store intensities,
// not light, so a 16-bit PNG sample 1234 is read as 1234 (and as 1234 >> 8 scaled to 8 bits).
// Library warnings are never printed; a file whose data is damaged (truncated PNG, "Premature end of
// JPEG file", bad Huffman code ...) is an error naming the file.
#ifndef SAMX_DATA_IMAGE_IO_H
#define SAMX_DATA_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The most pixels a JPEG or TIFF may declare (8192 x 8192): larger sizes are refused before any
// allocation (PIL's decompression-bomb limit is of the same order).
#define SAMX_IMAGE_MAX_PIXELS ((int64_t)1 << 26)

typedef struct {
  int64_t w, h;
  int channels;   // 1 (grey) or 3 (RGB)
  uint8_t *data;  // h*w*channels, malloc'd
} SamxImage;

// Reads a PNG, JPEG or TIFF (by content, not extension) as 8-bit grey or RGB (alpha dropped, palettes
// expanded, 16-bit samples scaled linearly to 8 bits). Returns 0 or -1 with samx_last_error naming
// the file.
int samx_image_read(const char *path, SamxImage *img);
void samx_image_free(SamxImage *img);
// Converts to 1 or 3 channels in place (RGB -> grey by ITU-R 601 luma).
void samx_image_to_channels(SamxImage *img, int channels);
// Resizes in place to w x h: bilinear (nearest when `nearest`, for masks).
void samx_image_resize(SamxImage *img, int64_t w, int64_t h, int nearest);

// ---- samples at the file's own precision ----
enum { SAMX_SAMPLE_UINT = 1, SAMX_SAMPLE_INT = 2, SAMX_SAMPLE_FLOAT = 3 };
typedef struct {
  int64_t w, h;
  int channels;  // 1 or 3 (alpha dropped, palettes expanded)
  int bits;      // bits per sample in the file after palette/low-depth expansion: 8, 16, 32 or 64
  int format;    // SAMX_SAMPLE_*
  float *data;   // h*w*channels samples as stored (exact for integers up to 24 bits), malloc'd
} SamxSamples;
// Any PNG (1-16 bit), JPEG, or TIFF (8/16/32-bit integer, 32/64-bit float; wide TIFFs striped and
// interleaved). Min-is-white TIFFs are inverted (max - v for unsigned samples, -v otherwise) so that
// larger always means brighter. Returns 0 or -1.
int samx_image_read_samples(const char *path, SamxSamples *img);
void samx_samples_free(SamxSamples *img);
// For callers that want raw 16-bit samples: PNG or TIFF with unsigned samples of at most 16 bits,
// as uint16 (8-bit files give 0..255). *bits receives the file's depth. out is malloc'd h*w*channels.
int samx_image_read_u16(const char *path, uint16_t **out, int64_t *w, int64_t *h, int *channels, int *bits);

// Resamples h x w x channels floats to oh x ow (half-pixel centres as PIL and torch's
// align_corners=False; bilinear, or nearest for label images).
void samx_resize_f32(const float *in, int64_t w, int64_t h, int channels, float *out, int64_t ow, int64_t oh,
                     int nearest);

// Writers (for tests, fixtures and figures). Return 0 or -1.
int samx_png_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels);
// 16-bit grey or RGB PNG with the samples as given (no gamma chunk).
int samx_png_write16(const char *path, const uint16_t *data, int64_t w, int64_t h, int channels);
int samx_jpeg_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels, int quality);
int samx_tiff_write(const char *path, const uint8_t *data, int64_t w, int64_t h, int channels);

// ---- NIfTI volumes ----
typedef struct {
  int64_t dim[4];     // nx, ny, nz, nt (1 for absent axes)
  double spacing[3];  // pixdim of x, y, z in mm (1 where the file says 0)
  float *data;        // dim[0]*dim[1]*dim[2]*dim[3] values, x fastest (the file's order), scl_slope/inter applied
} SamxVolume;
// Reads a .nii or .nii.gz (NIfTI-1 or -2) of any integer or float type. Returns 0 or -1 (a missing,
// truncated or corrupt file is an error naming it; nifticlib prints nothing).
int samx_nifti_read(const char *path, SamxVolume *v);
void samx_volume_free(SamxVolume *v);
// Writes v as NIfTI-1 (.nii or .nii.gz by the name): uint8 when as_u8, else float32. For tests.
int samx_nifti_write(const char *path, const SamxVolume *v, int as_u8);

// ---- intensities of medical images, mapped to [0, 1] ----
typedef enum {
  SAMX_INTENSITY_PERCENTILE = 0,  // a, b: lower and upper percentile (0..100) of the image's nonzero values (MR)
  SAMX_INTENSITY_WINDOW = 1,      // a, b: level and width (CT window, HU)
  SAMX_INTENSITY_CLIP = 2,        // a, b: lo and hi (HU clip)
} SamxIntensityMode;
typedef struct {
  SamxIntensityMode mode;
  double a, b;
} SamxIntensity;
// The [lo, hi] that maps to [0, 1] for these n values (lo < hi: a constant image gets hi = lo + 1).
void samx_intensity_range(const SamxIntensity *it, const float *v, size_t n, double *lo, double *hi);
// v <- clamp((v - lo) / (hi - lo), 0, 1).
void samx_intensity_apply(float *v, size_t n, double lo, double hi);
// "MR percentile clip 0.5..99.5 of nonzero values per case, scaled to [0,1]" and alike.
void samx_intensity_describe(const SamxIntensity *it, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
