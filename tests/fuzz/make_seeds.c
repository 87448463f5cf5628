// Writes the seed inputs that samx's own writers produce (tests/fuzz/make_corpus.sh runs it):
//   OUT/data_check/   a dataset (uint8 grey, float RGB) and a predictions file
//   OUT/embed_cache/  caches in f32, f16 and bf16
//   OUT/nifti/        uint8 and float volumes, each behind the packer-choosing first byte
//   OUT/image/        8- and 16-bit PNG (grey, RGB), JPEG, TIFF
//   OUT/safetensors/  a micro SAM (every tensor of the architecture, tiny sizes) as sam_save writes it
// Everything is a few KiB so that mutations stay cheap.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/image_io.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "models/sam/sam.h"

static const char *out;

static const char *at(const char *dir, const char *name) {
  static char p[1024];
  char d[900];
  snprintf(d, sizeof d, "%s/%s", out, dir);
  mkdir(d, 0755);
  snprintf(p, sizeof p, "%s/%s", d, name);
  return p;
}

static void check(int rc, const char *what) {
  if (rc) fprintf(stderr, "make_seeds: %s: %s\n", what, samx_last_error()), exit(1);
}

static void dataset(const char *name, SamxImageDtype dt, int channels) {
  SamxDatasetSpec spec = {.h = 4, .w = 5, .k = 2, .channels = channels, .dtype = dt, .source = "fuzz seed",
                          .modality = "synthetic", .display_lo = -1, .display_hi = 1};
  SamxDatasetWriter *w = samx_dataset_create(at("data_check", name), &spec);
  check(!w, name);
  for (int i = 0; i < 3; i++) {
    float img_f[4 * 5 * 3];
    uint8_t img_u[4 * 5 * 3], masks[2 * 4 * 5], valid[2] = {1, (uint8_t)(i != 1)};
    for (int j = 0; j < 4 * 5 * channels; j++) img_f[j] = (float)((i * 7 + j) % 9) / 4 - 1, img_u[j] = (uint8_t)(i * 40 + j);
    for (int j = 0; j < 2 * 4 * 5; j++) masks[j] = valid[j / 20] && (j + i) % 3 == 0;
    char case_id[16];
    snprintf(case_id, sizeof case_id, "case%d", i);
    SamxSample s = {.image = dt == SAMX_IMAGE_U8 ? (const void *)img_u : img_f, .masks = masks,
                    .annotator_valid = valid, .split = i % 3, .case_id = case_id, .spacing = {0.5f, 0.7f}};
    check(samx_dataset_append(w, &s), name);
  }
  check(samx_dataset_finish(w), name);
}

static void predictions(void) {
  SamxPredictionsSpec spec = {.m = 2, .h = 4, .w = 5, .method = "mcl", .checkpoint_path = "ck.safetensors",
                              .dataset_path = "", .split = "test", .with_scores = 1, .with_quality = 1};
  SamxPredictionsWriter *w = samx_predictions_create(at("data_check", "predictions.h5"), &spec);
  check(!w, "predictions");
  for (int i = 0; i < 2; i++) {
    uint8_t masks[2 * 4 * 5];
    for (int j = 0; j < 40; j++) masks[j] = (j + i) % 2;
    float scores[2] = {0.25f * i, 0.5f};
    check(samx_predictions_append(w, 2 - i, masks, scores, 0.75f), "predictions");
  }
  check(samx_predictions_finish(w), "predictions");
}

static void embed(const char *name, SamxEmbedDtype dt) {
  SamxEmbedSpec spec = {.c = 2, .h = 2, .w = 3, .dtype = dt, .checkpoint_path = "sam.pth",
                        .checkpoint_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        .dataset_path = "d.h5", .model_config = "{\"img_size\": 64}", .input_size = 64};
  SamxEmbedWriter *w = samx_embed_create(at("embed_cache", name), &spec);
  check(!w, name);
  for (int i = 0; i < 2; i++) {
    float e[12];
    for (int j = 0; j < 12; j++) e[j] = (float)(j - 5 * i) / 3;
    int64_t info[4] = {40 + i, 50, 51, 64};
    check(samx_embed_append(w, 3 * i + 1, e, info), name);
  }
  check(samx_embed_finish(w), name);
}

// The fuzz_nifti input: one mode byte (bit 0: BraTS layout, else QUBIQ) and the .nii bytes.
static void nifti(const char *name, uint8_t mode, int as_u8, int64_t nz) {
  float data[6 * 5 * 3];
  for (int i = 0; i < 6 * 5 * 3; i++) data[i] = (float)(i % 3 == 0 ? (i % 4 == 0 ? 4 : 1) : 0);
  SamxVolume v = {.dim = {6, 5, nz, 1}, .spacing = {0.8, 0.8, 2}, .data = data};
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s/tmp.nii", out);
  check(samx_nifti_write(tmp, &v, as_u8), name);
  FILE *f = fopen(tmp, "rb"), *g = fopen(at("nifti", name), "wb");
  fputc(mode, g);
  for (int c; (c = fgetc(f)) != EOF;) fputc(c, g);
  fclose(f), fclose(g);
  remove(tmp);
}

static void images(void) {
  uint8_t px[6 * 5 * 3];
  uint16_t px16[6 * 5 * 3];
  for (int i = 0; i < 6 * 5 * 3; i++) px[i] = (uint8_t)(i * 17), px16[i] = (uint16_t)(i * 2111);
  check(samx_png_write(at("image", "grey.png"), px, 6, 5, 1), "png");
  check(samx_png_write(at("image", "rgb.png"), px, 6, 5, 3), "png");
  check(samx_png_write16(at("image", "grey16.png"), px16, 6, 5, 1), "png16");
  check(samx_png_write16(at("image", "rgb16.png"), px16, 5, 6, 3), "png16");
  check(samx_jpeg_write(at("image", "grey.jpg"), px, 6, 5, 1, 90), "jpeg");
  check(samx_jpeg_write(at("image", "rgb.jpg"), px, 6, 5, 3, 75), "jpeg");
  check(samx_tiff_write(at("image", "grey.tif"), px, 6, 5, 1), "tiff");
  check(samx_tiff_write(at("image", "rgb.tif"), px, 5, 6, 3), "tiff");
}

// Every tensor the SAM architecture has, at the smallest sizes its shape rules allow.
static void micro_sam(void) {
  SamConfig c;
  check(sam_config_preset("tiny", &c), "preset");
  c.img_size = 32, c.patch = 16, c.enc_dim = 8, c.enc_depth = 2, c.enc_heads = 2, c.enc_mlp = 8, c.window = 1;
  // the decoder's attention width (prompt_dim / 2) must hold its 8 heads
  c.out_chans = c.prompt_dim = 16, c.mask_in_chans = 4, c.dec_depth = 1, c.dec_heads = 8, c.dec_mlp = 8;
  c.iou_hidden = 8;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[1] = 1;
  SamModel m;
  sam_init_random(&m, &c, samx_cpu(), 0, 1);
  check(sam_save(&m, at("safetensors", "micro_sam.safetensors")), "sam_save");
  sam_free(&m);
}

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: fuzz_make_seeds OUTDIR\n"), 2;
  out = argv[1];
  mkdir(out, 0755);
  dataset("dataset_u8.h5", SAMX_IMAGE_U8, 1);
  dataset("dataset_f32_rgb.h5", SAMX_IMAGE_F32, 3);
  predictions();
  embed("embed_f32.h5", SAMX_EMBED_F32);
  embed("embed_f16.h5", SAMX_EMBED_F16);
  embed("embed_bf16.h5", SAMX_EMBED_BF16);
  nifti("qubiq_u8.nii.in", 0x00, 1, 1);
  nifti("qubiq_f32_resize.nii.in", 0x10, 0, 1);
  nifti("brats_u8_axial.nii.in", 0x45, 1, 3);
  nifti("brats_f32_window.nii.in", 0x21, 0, 3);
  images();
  micro_sam();
  return 0;
}
