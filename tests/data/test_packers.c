// Packers on small fixtures written here (PNG/JPEG/TIFF/HDF5), image IO, and the samx pack / data
// command lines.
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/packers.h"
#include "data/predictions.h"
#include "data/rng.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[256];

static const char *at(const char *rel) { return samx_test_path(dir, rel); }

static uint64_t rng_state = 42;

static void random_image(uint8_t *img, size_t n) {
  for (size_t i = 0; i < n; i++) img[i] = (uint8_t)samx_splitmix64(&rng_state);
}

// A blocky mask (0/255) so nearest resizing and JPEG-free formats keep it exact.
static void random_mask(uint8_t *m, int64_t w, int64_t h) {
  int64_t x0 = (int64_t)(samx_splitmix64(&rng_state) % (uint64_t)(w / 2)), y0 = (int64_t)(samx_splitmix64(&rng_state) % (uint64_t)(h / 2));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) m[y * w + x] = (x >= x0 && x < x0 + w / 2 && y >= y0 && y < y0 + h / 2) ? 255 : 0;
}

static void write_png(const char *rel, const uint8_t *d, int64_t w, int64_t h, int c) {
  const char *p = at(rel);
  samx_test_make_parent(p);
  CHECK(samx_png_write(p, d, w, h, c) == 0, "write %s: %s", p, samx_last_error());
}

static int mask_equals(const uint8_t *bin, const uint8_t *m255, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (bin[i] != (m255[i] > 127)) return 0;
  return 1;
}

// Finds the row whose case id is id, or -1.
static int64_t row_of(SamxDataset *ds, const char *id) {
  for (int64_t i = 0; i < samx_dataset_n(ds); i++)
    if (!strcmp(samx_dataset_case_id(ds, i), id)) return i;
  return -1;
}

static void test_image_io(void) {
  enum { W = 7, H = 5 };
  uint8_t rgb[W * H * 3], grey[W * H];
  random_image(rgb, sizeof rgb);
  random_image(grey, sizeof grey);
  const char *png = at("io/x.png"), *tif = at("io/x.tif"), *jpg = at("io/x.jpg");
  samx_test_make_parent(png);
  SamxImage img;
  CHECK(samx_png_write(png, rgb, W, H, 3) == 0 && samx_image_read(png, &img) == 0 && img.channels == 3 &&
            img.w == W && img.h == H && !memcmp(img.data, rgb, sizeof rgb),
        "PNG RGB round trip");
  samx_image_free(&img);
  CHECK(samx_tiff_write(tif, grey, W, H, 1) == 0 && samx_image_read(tif, &img) == 0 && img.channels == 1 &&
            !memcmp(img.data, grey, sizeof grey),
        "TIFF grey round trip: %s", samx_last_error());
  samx_image_free(&img);
  uint8_t flat[W * H];
  memset(flat, 100, sizeof flat);
  CHECK(samx_jpeg_write(jpg, flat, W, H, 1, 95) == 0 && samx_image_read(jpg, &img) == 0 && img.channels == 1 &&
            abs(img.data[3] - 100) <= 2,
        "JPEG grey round trip");
  samx_image_free(&img);
  // Bilinear downsizing by 2 averages 2x2 blocks; nearest picks existing values.
  uint8_t four[16] = {0, 100, 50, 50, 100, 200, 50, 50, 10, 10, 20, 20, 10, 10, 20, 20};
  img.w = img.h = 4, img.channels = 1, img.data = malloc(16);
  memcpy(img.data, four, 16);
  samx_image_resize(&img, 2, 2, 0);
  CHECK(img.data[0] == 100 && img.data[1] == 50 && img.data[2] == 10 && img.data[3] == 20, "bilinear 2x down: %d %d %d %d",
        img.data[0], img.data[1], img.data[2], img.data[3]);
  samx_image_free(&img);
  CHECK(samx_image_read(at("io/absent.png"), &img) != 0 && strstr(samx_last_error(), "absent.png"), "missing image");
}

// BUSI: class folders, name.png + name_mask.png (+ name_mask_1.png); same stem in two folders.
static void test_folder_busi(void) {
  enum { W = 12, H = 10 };
  uint8_t img[3][W * H], m[4][W * H];
  for (int i = 0; i < 3; i++) random_image(img[i], W * H);
  for (int i = 0; i < 4; i++) random_mask(m[i], W, H);
  write_png("busi/benign/benign (1).png", img[0], W, H, 1);
  write_png("busi/benign/benign (1)_mask.png", m[0], W, H, 1);
  write_png("busi/benign/benign (1)_mask_1.png", m[1], W, H, 1);
  write_png("busi/benign/benign (2).png", img[1], W, H, 1);
  write_png("busi/benign/benign (2)_mask.png", m[2], W, H, 1);
  write_png("busi/malignant/benign (1).png", img[2], W, H, 1);  // same file name, other folder
  write_png("busi/malignant/benign (1)_mask.png", m[3], W, H, 1);
  write_png("busi/normal/lonely.png", img[2], W, H, 1);  // no mask: skipped
  SamxFolderOptions o = {.modality = "US", .ratios = {1, 0, 0}, .seed = 1};
  const char *out = at("busi.h5");
  CHECK(samx_pack_folder(at("busi"), out, &o) == 0, "pack BUSI: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(out);
  CHECK(ds != NULL, "open BUSI: %s", samx_last_error());
  if (!ds) return;
  CHECK(samx_dataset_n(ds) == 3 && samx_dataset_k(ds) == 2 && samx_dataset_h(ds) == H && samx_dataset_w(ds) == W &&
            samx_dataset_channels(ds) == 1,
        "BUSI shape N %lld K %lld", (long long)samx_dataset_n(ds), (long long)samx_dataset_k(ds));
  int64_t r1 = row_of(ds, "benign/benign (1)"), r2 = row_of(ds, "benign/benign (2)"), r3 = row_of(ds, "malignant/benign (1)");
  CHECK(r1 >= 0 && r2 >= 0 && r3 >= 0, "BUSI case ids keep the folder: %s, %s, %s", samx_dataset_case_id(ds, 0),
        samx_dataset_case_id(ds, 1), samx_dataset_case_id(ds, 2));
  if (r1 >= 0 && r2 >= 0 && r3 >= 0) {
    uint8_t gi[W * H], gm[2 * W * H];
    samx_dataset_read_image_u8(ds, r1, gi);
    samx_dataset_read_masks(ds, r1, gm);
    CHECK(!memcmp(gi, img[0], sizeof gi) && mask_equals(gm, m[0], W * H) && mask_equals(gm + W * H, m[1], W * H),
          "BUSI image 1 and its two masks (mask before mask_1)");
    samx_dataset_read_masks(ds, r2, gm);
    const uint8_t *v = samx_dataset_annotator_valid(ds);
    CHECK(mask_equals(gm, m[2], W * H) && v[r2 * 2] == 1 && v[r2 * 2 + 1] == 0, "BUSI image 2: one mask, second invalid");
    samx_dataset_read_image_u8(ds, r3, gi);
    CHECK(!memcmp(gi, img[2], sizeof gi), "BUSI malignant image");
  }
  char buf[64];
  CHECK(samx_dataset_attr(ds, "modality", buf, sizeof buf) == 0 && !strcmp(buf, "US"), "modality %s", buf);
  samx_dataset_close(ds);

  // --size resizes images (bilinear) and masks (nearest).
  o.size = 6;
  CHECK(samx_pack_folder(at("busi"), at("busi6.h5"), &o) == 0, "pack BUSI --size 6: %s", samx_last_error());
  ds = samx_dataset_open(at("busi6.h5"));
  CHECK(ds && samx_dataset_h(ds) == 6 && samx_dataset_w(ds) == 6, "resized to 6x6");
  samx_dataset_close(ds);
  // Without --size, images of another size are an error naming the file.
  uint8_t big[20 * 20];
  random_image(big, sizeof big);
  write_png("busi/benign/odd.png", big, 20, 20, 1);
  random_mask(big, 20, 20);
  write_png("busi/benign/odd_mask.png", big, 20, 20, 1);
  o.size = 0;
  CHECK(samx_pack_folder(at("busi"), at("busi_bad.h5"), &o) != 0 && strstr(samx_last_error(), "odd.png") &&
            strstr(samx_last_error(), "--size"),
        "size mismatch message: %s", samx_last_error());
  CHECK(access(at("busi_bad.h5"), F_OK) != 0, "a failed pack leaves no file");
}

// CVC-ClinicDB: Original/N.tif (RGB) + Ground Truth/N.tif.
static void test_folder_cvc(void) {
  enum { W = 9, H = 8 };
  uint8_t img[W * H * 3], m[W * H];
  random_image(img, sizeof img);
  random_mask(m, W, H);
  const char *pi = at("cvc/Original/1.tif"), *pm = at("cvc/Ground Truth/1.tif");
  samx_test_make_parent(pi), samx_test_make_parent(pm);
  samx_tiff_write(pi, img, W, H, 3);
  samx_tiff_write(pm, m, W, H, 1);
  samx_tiff_write(at("cvc/Original/2.tif"), img, W, H, 3);
  samx_tiff_write(at("cvc/Ground Truth/2.tif"), m, W, H, 1);
  SamxFolderOptions o = {.modality = "endoscopy", .ratios = {0.5, 0.5, 0}};
  CHECK(samx_pack_folder(at("cvc"), at("cvc.h5"), &o) == 0, "pack CVC: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(at("cvc.h5"));
  CHECK(ds != NULL, "open CVC: %s", samx_last_error());
  if (!ds) return;
  uint8_t gi[W * H * 3], gm[W * H];
  CHECK(samx_dataset_n(ds) == 2 && samx_dataset_channels(ds) == 3 && samx_dataset_k(ds) == 1, "CVC shape");
  CHECK(samx_dataset_read_image_u8(ds, 0, gi) == 0 && !memcmp(gi, img, sizeof gi), "CVC RGB image");
  CHECK(samx_dataset_read_masks(ds, 0, gm) == 0 && mask_equals(gm, m, W * H), "CVC mask");
  CHECK(!strcmp(samx_dataset_case_id(ds, 0), "1") && !strcmp(samx_dataset_case_id(ds, 1), "2"), "CVC ids");
  const uint8_t *s = samx_dataset_splits(ds);
  CHECK(s[0] != s[1] && s[0] <= 1 && s[1] <= 1, "CVC split 1:1 by case: %d %d", s[0], s[1]);
  samx_dataset_close(ds);
}

// ISIC: folders with arbitrary names, I.jpg + I_segmentation.png: paired by stem.
static void test_folder_isic(void) {
  enum { W = 16, H = 16 };
  uint8_t img[W * H * 3], m[W * H];
  memset(img, 120, sizeof img);
  random_mask(m, W, H);
  const char *pi = at("isic/ISIC2018_Task1-2_Training_Input/ISIC_0000001.jpg");
  samx_test_make_parent(pi);
  samx_jpeg_write(pi, img, W, H, 3, 95);
  write_png("isic/ISIC2018_Task1_Training_GroundTruth/ISIC_0000001_segmentation.png", m, W, H, 1);
  SamxFolderOptions o = {.modality = "dermoscopy", .ratios = {1, 0, 0}};
  CHECK(samx_pack_folder(at("isic"), at("isic.h5"), &o) == 0, "pack ISIC: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(at("isic.h5"));
  CHECK(ds != NULL, "open ISIC: %s", samx_last_error());
  if (!ds) return;
  uint8_t gi[W * H * 3], gm[W * H];
  CHECK(samx_dataset_n(ds) == 1 && samx_dataset_channels(ds) == 3, "ISIC shape");
  CHECK(samx_dataset_read_image_u8(ds, 0, gi) == 0 && abs(gi[40] - 120) <= 3, "ISIC JPEG image %d", gi[40]);
  CHECK(samx_dataset_read_masks(ds, 0, gm) == 0 && mask_equals(gm, m, W * H), "ISIC mask");
  CHECK(!strcmp(samx_dataset_case_id(ds, 0), "ISIC_0000001"), "ISIC id %s", samx_dataset_case_id(ds, 0));
  samx_dataset_close(ds);
}

// PHiSeg's layout, written with raw HDF5 like their script (no chunking, no attributes).
static void write_phiseg_group(hid_t f, const char *name, int n, float *images, uint8_t *labels, int base) {
  hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t di[3] = {(hsize_t)n, 16, 16}, dl[4] = {(hsize_t)n, 16, 16, 4}, du[1] = {(hsize_t)n};
  hid_t s = H5Screate_simple(3, di, NULL);
  hid_t d = H5Dcreate2(g, "images", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, images);
  H5Dclose(d), H5Sclose(s);
  s = H5Screate_simple(4, dl, NULL);
  d = H5Dcreate2(g, "labels", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
  H5Dclose(d), H5Sclose(s);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, 24);
  char uids[4][24] = {{0}};
  for (int i = 0; i < n; i++) snprintf(uids[i], 24, "LIDC-IDRI-%04d_slice%d", base + i / 2, i);
  s = H5Screate_simple(1, du, NULL);
  d = H5Dcreate2(g, "uids", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, uids);
  H5Dclose(d), H5Sclose(s), H5Tclose(t), H5Gclose(g);
}

static void test_phiseg(void) {
  enum { NG = 4 };
  static float images[3][NG * 256];
  static uint8_t labels[3][NG * 256 * 4];
  for (int s = 0; s < 3; s++) {
    for (int j = 0; j < NG * 256; j++) images[s][j] = (float)samx_unit(samx_splitmix64(&rng_state));
    for (int j = 0; j < NG * 256 * 4; j++) labels[s][j] = samx_splitmix64(&rng_state) % 4 == 0;
  }
  const char *in = at("data_lidc.hdf5");
  hid_t f = H5Fcreate(in, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const char *groups[3] = {"train", "val", "test"};
  for (int s = 0; s < 3; s++) write_phiseg_group(f, groups[s], NG, images[s], labels[s], 10 * s);
  H5Fclose(f);
  CHECK(samx_pack_phiseg(in, at("phiseg.h5")) == 0, "pack phiseg: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(at("phiseg.h5"));
  CHECK(ds != NULL, "open phiseg: %s", samx_last_error());
  if (!ds) return;
  SamxDatasetInfo info = samx_dataset_info(ds);
  CHECK(info.n == 3 * NG && info.k == 4 && info.h == 16 && info.dtype == SAMX_IMAGE_F32 && info.display_lo == 0 &&
            info.display_hi == 1,
        "phiseg info N %lld K %lld range %g..%g", (long long)info.n, (long long)info.k, info.display_lo, info.display_hi);
  float gi[256];
  uint8_t gm[4 * 256];
  int64_t row = NG + 3;  // val, row 3
  CHECK(samx_dataset_read_image_f32(ds, row, gi) == 0 && !memcmp(gi, images[1] + 3 * 256, sizeof gi), "phiseg image");
  int transposed = samx_dataset_read_masks(ds, row, gm) == 0;
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 256; j++) transposed &= gm[k * 256 + j] == labels[1][(3 * 256 + j) * 4 + k];
  CHECK(transposed, "phiseg labels [H,W,K] -> masks [K,H,W]");
  CHECK(samx_dataset_splits(ds)[0] == 0 && samx_dataset_splits(ds)[row] == 1 && samx_dataset_splits(ds)[2 * NG] == 2,
        "phiseg keeps its split");
  CHECK(!strcmp(samx_dataset_case_id(ds, row), "LIDC-IDRI-0011"), "phiseg case id %s", samx_dataset_case_id(ds, row));
  samx_dataset_close(ds);
  // A file without the val group.
  f = H5Fcreate(at("bad_phiseg.hdf5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  write_phiseg_group(f, "train", NG, images[0], labels[0], 0);
  H5Fclose(f);
  CHECK(samx_pack_phiseg(at("bad_phiseg.hdf5"), at("bad.h5")) != 0 && strstr(samx_last_error(), "/val"),
        "missing group message: %s", samx_last_error());
}

static void test_lidc_crops(void) {
  enum { S = 8 };
  uint8_t img[S * S], m[S * S];
  const char *splits[3] = {"train", "val", "test"};
  uint8_t first_mask[S * S];
  for (int s = 0; s < 3; s++)
    for (int p = 0; p < 2; p++)
      for (int z = 0; z < 2; z++) {
        char rel[256];
        random_image(img, sizeof img);
        snprintf(rel, sizeof rel, "lidc/%s/images/LIDC-IDRI-%d%d/z-%d.5_c0.png", splits[s], s, p, z);
        write_png(rel, img, S, S, 1);
        for (int l = 0; l < 4; l++) {
          if (s == 2 && p == 1 && z == 1 && l == 3) continue;  // one reader mask missing
          random_mask(m, S, S);
          if (s == 0 && p == 0 && z == 0 && l == 2) memcpy(first_mask, m, sizeof m);
          snprintf(rel, sizeof rel, "lidc/%s/gt/LIDC-IDRI-%d%d/z-%d.5_c0_l%d.png", splits[s], s, p, z, l);
          write_png(rel, m, S, S, 1);
        }
      }
  CHECK(samx_pack_lidc_crops(at("lidc"), at("lidc.h5")) == 0, "pack lidc-crops: %s", samx_last_error());
  SamxDataset *ds = samx_dataset_open(at("lidc.h5"));
  CHECK(ds != NULL, "open lidc: %s", samx_last_error());
  if (!ds) return;
  CHECK(samx_dataset_n(ds) == 12 && samx_dataset_k(ds) == 4 && samx_dataset_h(ds) == S, "lidc shape N %lld",
        (long long)samx_dataset_n(ds));
  uint8_t gm[4 * S * S];
  CHECK(samx_dataset_read_masks(ds, 0, gm) == 0 && mask_equals(gm + 2 * S * S, first_mask, S * S), "lidc reader 2 mask");
  CHECK(!strcmp(samx_dataset_case_id(ds, 0), "LIDC-IDRI-00") && samx_dataset_splits(ds)[0] == 0 &&
            samx_dataset_splits(ds)[4] == 1 && samx_dataset_splits(ds)[11] == 2,
        "lidc ids and splits");
  CHECK(samx_dataset_annotator_valid(ds)[11 * 4 + 3] == 0 && samx_dataset_annotator_valid(ds)[11 * 4 + 2] == 1,
        "missing reader mask marked invalid");
  samx_dataset_close(ds);
  CHECK(samx_pack_lidc_crops(at("busi"), at("x.h5")) != 0 && strstr(samx_last_error(), "no images"),
        "wrong layout message: %s", samx_last_error());
}

// The command lines, through the samx binary next to this test.
static void test_cli(void) {
  char cmd[4096];
  const char *samx = samx_test_samx_bin("");
  if (access(samx, X_OK) != 0) {
    printf("note: %s not built, command-line checks skipped\n", samx);
    return;
  }
  snprintf(cmd, sizeof cmd, "%s pack synthetic --out %s --n 24 --size 32 --annotators 3 --seed 5 > /dev/null", samx,
           at("cli.h5"));
  CHECK(system(cmd) == 0, "samx pack synthetic");
  snprintf(cmd, sizeof cmd, "%s data validate %s > /dev/null", samx, at("cli.h5"));
  CHECK(system(cmd) == 0, "samx data validate on a good file");
  snprintf(cmd, sizeof cmd, "%s data info %s > %s", samx, at("cli.h5"), at("info.txt"));
  CHECK(system(cmd) == 0, "samx data info");
  size_t n;
  char *info = samx_read_file(at("info.txt"), &n);
  CHECK(info && strstr(info, "samples N 24") && strstr(info, "annotators K 3") && strstr(info, "generator_seed"),
        "info output:\n%s", info ? info : "");
  free(info);
  // A prediction file pointing at that dataset: validate checks it against the dataset.
  uint8_t pm[2 * 32 * 32] = {0};
  for (int bad = 0; bad < 2; bad++) {
    SamxPredictionsSpec spec = {.m = 2, .h = 32, .w = 32, .method = "test", .dataset_path = at("cli.h5"), .split = "test"};
    SamxPredictionsWriter *w = samx_predictions_create(at("pred.h5"), &spec);
    samx_predictions_append(w, bad ? 24 : 3, pm, NULL, 0);
    samx_predictions_finish(w);
    snprintf(cmd, sizeof cmd, "%s data validate %s > /dev/null 2>&1", samx, at("pred.h5"));
    CHECK((system(cmd) == 0) == !bad, "samx data validate on a prediction file with index %d", bad ? 24 : 3);
  }
  snprintf(cmd, sizeof cmd, "%s data info %s > %s", samx, at("pred.h5"), at("info.txt"));
  info = system(cmd) == 0 ? samx_read_file(at("info.txt"), &n) : NULL;
  CHECK(info && strstr(info, "samx-predictions") && strstr(info, "M 2"), "prediction info:\n%s", info ? info : "");
  free(info);
  snprintf(cmd, sizeof cmd, "%s data validate %s 2> /dev/null", samx, at("io/x.png"));
  CHECK(system(cmd) != 0, "samx data validate on a PNG fails");
  snprintf(cmd, sizeof cmd, "%s pack synthetic --n 0 --out %s 2> /dev/null", samx, at("never.h5"));
  CHECK(system(cmd) != 0 && access(at("never.h5"), F_OK) != 0, "bad option refused");
}

int main(void) {
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_test_packers") != 0) return 1;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  test_image_io();
  test_folder_busi();
  test_folder_cvc();
  test_folder_isic();
  test_phiseg();
  test_lidc_crops();
  test_cli();
  if (samx_test_failed == 0) samx_test_remove_dir(dir);
  return samx_test_summary();
}
