// Image files (PNG, JPEG, TIFF incl. 16-bit and float; detected by content) through every reader
// of data/image_io.h and the resizes that follow them in the commands:
//  - samx_image_read + samx_image_to_channels + samx_image_resize (`samx pack folder --size`);
//  - samx_image_read_samples + samx_resize_f32 (wide samples; the medical packers' resize);
//  - samx_image_read_u16;
//  - sam_preprocess (PIL-compatible resize of the longest side to img_size) and sam_postprocess
//    (bilinear back to the original size), what `samx segment/embed/infer` do with an image.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "data/image_io.h"
#include "engine/tape.h"
#include "models/sam/sam_image.h"

enum { IMG_SIZE = 64 };  // a small model's img_size: the resize code is the same for 1024

static SamxCtx *ctx(void) {
  static SamxCtx c;
  static int init;
  if (!init) samx_ctx_init(&c, samx_cpu(), (size_t)1 << 30, 1 << 12), init = 1;
  samx_ctx_reset(&c);
  return &c;
}

// The SamPredictor path on an 8-bit RGB image.
static void sam_path(const SamxImage *im) {
  int h = (int)im->h, w = (int)im->w, ih, iw;
  sam_input_size(h, w, IMG_SIZE, &ih, &iw);
  if ((ih == 0 || iw == 0) && fuzz_skip("resize-zero-side")) return;
  SamModel m;
  memset(&m, 0, sizeof m);
  m.cfg.img_size = IMG_SIZE;
  SamImageInfo info;
  SamxCtx *c = ctx();
  sam_preprocess(c, &m, im->data, h, w, &info);
  if ((int64_t)h * w > (1 << 22)) return;  // the upsampled logits of a huge image: harness memory, not parsing
  SamxTensor *low = samx_zeros(c, SAMX_F32, SHAPE(1, 1, IMG_SIZE / 4, IMG_SIZE / 4));
  sam_postprocess(c, &m, low, &info);
}

// The pixel limit users can raise (SAMX_MAX_IMAGE_PIXELS, default PIL's 178,956,970) is held at 2^26
// here, so a valid image of the largest accepted size still fits the fuzzer's -rss_limit_mb.
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("SAMX_MAX_IMAGE_PIXELS", "67108864", 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  // libpng reads the declared size first: 8-byte signature, IHDR length and type, width, height.
  if (n >= 24 && !memcmp(data, "\x89PNG", 4) && fuzz_skip("png-huge-alloc")) {
    uint64_t w = (uint64_t)data[16] << 24 | data[17] << 16 | data[18] << 8 | data[19];
    uint64_t h = (uint64_t)data[20] << 24 | data[21] << 16 | data[22] << 8 | data[23];
    if (w * h > ((uint64_t)1 << 26)) return 0;
  }
  const char *path = fuzz_write_file(0, ".img", data, n);
  SamxImage im;
  if (samx_image_read(path, &im) == 0) {
    samx_image_to_channels(&im, 3);
    sam_path(&im);
    samx_image_to_channels(&im, 1);
    samx_image_resize(&im, 24, 16, 0);
    samx_image_resize(&im, 7, 9, 1);
    samx_image_free(&im);
  }
  SamxSamples s;
  if (samx_image_read_samples(path, &s) == 0) {
    float out[16 * 12 * 3];
    samx_resize_f32(s.data, s.w, s.h, s.channels, out, 16, 12, 0);
    samx_resize_f32(s.data, s.w, s.h, s.channels, out, 12, 16, 1);
    samx_samples_free(&s);
  }
  uint16_t *u16 = NULL;
  int64_t w, h;
  int ch, bits;
  if (samx_image_read_u16(path, &u16, &w, &h, &ch, &bits) == 0) free(u16);
  return 0;
}
