// The medical packers (lidc-pickle, qubiq, brats), wide-sample image reading and bad input: each packer
// runs on small files of its format made here (pickles by Debian's python3 + numpy through
// make_lidc_pickles.py, NIfTI through nifticlib, PNG through libpng) and the packed values are
// checked against formulas recomputed here. Bad input must fail with the file and item named and
// leave no output file.
#include <fcntl.h>
#include <glob.h>
#include <hdf5.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/packers.h"
#include "engine/pickle.h"
#include "tests/harness.h"
#include "tests/test_util.h"

static char dir[256];

static const char *at(const char *rel) { return samx_test_path(dir, rel); }

// 1 when neither path nor any temporary "path.tmp.*" exists (no half-written output).
static int no_output(const char *path) {
  char pattern[1100];
  snprintf(pattern, sizeof pattern, "%s*", path);
  glob_t g;
  int found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
  globfree(&g);
  return !found;
}

// Keeps the first `keep` bytes of src in dst.
static void truncate_copy(const char *src, const char *dst, double keep) {
  size_t n;
  char *d = samx_read_file(src, &n);
  FILE *f = fopen(dst, "wb");
  if (d && f) fwrite(d, 1, (size_t)(n * keep), f);
  if (f) fclose(f);
  free(d);
}

// Runs fn with stderr redirected to a file and returns 1 when it printed nothing there.
static int quiet(int (*fn)(const char *), const char *arg, int *rc) {
  fflush(stderr);
  int saved = dup(2), fd = open(at("stderr.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  dup2(fd, 2);
  *rc = fn(arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved), close(fd);
  struct stat st;
  return stat(at("stderr.txt"), &st) == 0 && st.st_size == 0;
}

// ---- lidc-pickle ----

static double pickle_image(int r, int i, int j) { return (float)(((r * 31 + i * 7 + j * 3) % 17) / 16.0); }
static int pickle_mask(int r, int k, int i, int j) { return (i + j + r + k) % 3 == 0; }

static void test_lidc_pickle(void) {
  char cmd[2048];
  const char *py = getenv("SAMX_PYTHON") && getenv("SAMX_PYTHON")[0] ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  mkdir(at("pk"), 0755);
  snprintf(cmd, sizeof cmd, "%s tests/data/make_lidc_pickles.py %s", py, at("pk"));
  int made = system(cmd) == 0;
  CHECK(made, "fixture script failed (needs python3 with numpy): %s", cmd);
  if (!made) return;
  SamxMedicalOptions o = samx_medical_defaults();
  for (int proto = 2; proto <= 4; proto++) {
    char in[64], out[64];
    snprintf(in, sizeof in, "pk/lidc_p%d.pickle", proto);
    snprintf(out, sizeof out, "pk/lidc_p%d.h5", proto);
    int rc = samx_pack_lidc_pickle(at(in), at(out), &o);
    CHECK(rc == 0, "protocol %d: %s", proto, samx_last_error());
    SamxDataset *ds = rc == 0 ? samx_dataset_open(at(out)) : NULL;
    if (!ds) continue;
    CHECK(samx_dataset_n(ds) == 5 && samx_dataset_h(ds) == 6 && samx_dataset_w(ds) == 5 && samx_dataset_k(ds) == 4 &&
              samx_dataset_dtype(ds) == SAMX_IMAGE_F32,
          "protocol %d: N %lld H %lld W %lld K %lld", proto, (long long)samx_dataset_n(ds), (long long)samx_dataset_h(ds),
          (long long)samx_dataset_w(ds), (long long)samx_dataset_k(ds));
    float img[30];
    uint8_t m[4 * 30];
    int bad_img = 0, bad_mask = 0, bad_id = 0;
    for (int r = 0; r < 5; r++) {
      samx_dataset_read_image_f32(ds, r, img);
      samx_dataset_read_masks(ds, r, m);
      char uid[32];
      snprintf(uid, sizeof uid, "uid-%d", r / 2);
      bad_id += strcmp(samx_dataset_case_id(ds, r), uid) != 0;
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++) {
          bad_img += img[i * 5 + j] != (float)pickle_image(r, i, j);
          for (int k = 0; k < 4; k++) bad_mask += m[k * 30 + i * 5 + j] != pickle_mask(r, k, i, j);
        }
    }
    // Records 0, 1 share uid-0 and 2, 3 uid-1: a case never straddles two splits.
    const uint8_t *split = samx_dataset_splits(ds);
    CHECK(bad_img == 0 && bad_mask == 0 && bad_id == 0 && split[0] == split[1] && split[2] == split[3],
          "protocol %d: %d image, %d mask, %d uid mismatches", proto, bad_img, bad_mask, bad_id);
    samx_dataset_close(ds);
  }
  struct {
    const char *file, *want;
  } bad[] = {
      {"pk/truncated.pickle", "truncated"},       {"pk/evil.pickle", "posix.system"},
      {"pk/mask2.pickle", "masks[2] holds 2"},    {"pk/nan.pickle", "NaN at row 2, column 3"},
      {"pk/fewer.pickle", "record 'b' has 3 masks"},
  };
  for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
    int rc = samx_pack_lidc_pickle(at(bad[b].file), at("pk/bad.h5"), &o);
    CHECK(rc != 0 && strstr(samx_last_error(), bad[b].want) && strstr(samx_last_error(), bad[b].file) &&
              no_output(at("pk/bad.h5")),
          "%s: rc %d, message '%s' (wants '%s')", bad[b].file, rc, samx_last_error(), bad[b].want);
  }
  o.binarize = 1;
  int rc = samx_pack_lidc_pickle(at("pk/mask2.pickle"), at("pk/bin.h5"), &o);
  SamxDataset *ds = rc == 0 ? samx_dataset_open(at("pk/bin.h5")) : NULL;
  uint8_t m[4 * 30];
  int ok = ds && samx_dataset_read_masks(ds, 0, m) == 0;
  for (int i = 0; i < 30 && ok; i++) ok = m[2 * 30 + i] == pickle_mask(0, 2, i / 5, i % 5);
  CHECK(ok, "--binarize thresholds the 0/2 mask: %s", samx_last_error());
  samx_dataset_close(ds);
}

// Hand-made hostile pickles: an unknown opcode, a memo reference to nothing, a string past the end.
static void test_pickle_hostile(void) {
  static const unsigned char cases[][16] = {
      {0x80, 2, 'i', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', '.'},  // INST: not accepted
      {0x80, 2, 'h', 7, '.'},                                                  // BINGET of an unset slot
      {0x80, 3, 'X', 0xff, 0xff, 0, 0, 'a', '.'},                              // BINUNICODE longer than the data
      {0x80, 4, 0x8c, 5, 'n', 'u', 'm', 'p', 'y', 0x8c, 2, 'o', 's', 0x93, '.'},  // STACK_GLOBAL numpy.os
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    PkArena *arena = NULL;
    PkValue *root = NULL;
    int rc = samx_pickle_load(cases[c], sizeof cases[c], "hostile", &arena, &root);
    CHECK(rc != 0 && arena == NULL && strstr(samx_last_error(), "hostile"), "hostile pickle %zu accepted: %s", c,
          samx_last_error());
  }
}

// ---- NIfTI fixtures ----

static void write_nifti(const char *rel, const float *data, int64_t nx, int64_t ny, int64_t nz, int as_u8) {
  SamxVolume v = {.dim = {nx, ny, nz, 1}, .spacing = {0.5, 0.75, 2.0}, .data = (float *)data};
  const char *p = at(rel);
  samx_test_make_parent(p);
  CHECK(samx_nifti_write(p, &v, as_u8) == 0, "write %s: %s", p, samx_last_error());
}

static float qubiq_image(int c, int64_t x, int64_t y) { return (float)((c * 13 + x * 5 + y * 11) % 23) * 10 - 100; }
static int qubiq_mask(int c, int r, int64_t x, int64_t y) { return (x * 2 + y + c + r) % 4 == 0; }

enum { QX = 6, QY = 5 };

// case01 with raters 1, 2, 3; case02 with 1 and 3; case03 with 1, 2, 3: K = 3, case02 rater 2 invalid.
static void make_qubiq(const char *root) {
  float img[QX * QY], seg[QX * QY];
  for (int c = 1; c <= 3; c++) {
    char rel[256];
    for (int64_t x = 0; x < QX; x++)
      for (int64_t y = 0; y < QY; y++) img[x + QX * y] = qubiq_image(c, x, y);
    snprintf(rel, sizeof rel, "%s/Training/case%02d/image.nii.gz", root, c);
    write_nifti(rel, img, QX, QY, 1, 0);
    for (int r = 1; r <= 3; r++) {
      if (c == 2 && r == 2) continue;
      for (int64_t x = 0; x < QX; x++)
        for (int64_t y = 0; y < QY; y++) seg[x + QX * y] = (float)qubiq_mask(c, r, x, y);
      snprintf(rel, sizeof rel, "%s/Training/case%02d/task01_seg%02d.nii.gz", root, c, r);
      write_nifti(rel, seg, QX, QY, 1, 1);
    }
  }
}

static void test_qubiq(void) {
  make_qubiq("qubiq/ok");
  SamxMedicalOptions o = samx_medical_defaults();
  o.intensity = (SamxIntensity){SAMX_INTENSITY_CLIP, -100, 100};
  int rc = samx_pack_qubiq(at("qubiq/ok"), at("qubiq/ok.h5"), &o);
  CHECK(rc == 0, "pack qubiq: %s", samx_last_error());
  SamxDataset *ds = rc == 0 ? samx_dataset_open(at("qubiq/ok.h5")) : NULL;
  if (ds) {
    CHECK(samx_dataset_n(ds) == 3 && samx_dataset_k(ds) == 3 && samx_dataset_h(ds) == QX && samx_dataset_w(ds) == QY,
          "qubiq shape");
    float img[QX * QY];
    uint8_t m[3 * QX * QY];
    int bad = 0;
    const uint8_t *valid = samx_dataset_annotator_valid(ds);
    for (int c = 1; c <= 3; c++) {
      samx_dataset_read_image_f32(ds, c - 1, img);
      samx_dataset_read_masks(ds, c - 1, m);
      for (int64_t x = 0; x < QX; x++)
        for (int64_t y = 0; y < QY; y++) {
          double want = fmin(fmax((qubiq_image(c, x, y) + 100) / 200.0, 0), 1);
          bad += fabs(img[x * QY + y] - want) > 1e-6;
          for (int r = 1; r <= 3; r++) {
            int expect = (c == 2 && r == 2) ? 0 : qubiq_mask(c, r, x, y);
            bad += m[(r - 1) * QX * QY + x * QY + y] != expect;
          }
        }
      for (int r = 1; r <= 3; r++) bad += valid[(c - 1) * 3 + r - 1] != !(c == 2 && r == 2);
    }
    const float *sp = samx_dataset_spacing(ds);
    CHECK(bad == 0 && !strcmp(samx_dataset_case_id(ds, 1), "case02") && sp[0] == 0.5f && sp[1] == 0.75f,
          "qubiq values: %d mismatches, spacing %g %g", bad, sp[0], sp[1]);
    char attr[256];
    CHECK(samx_dataset_attr(ds, "intensity_mode", attr, sizeof attr) == 0 && !strcmp(attr, "clip"), "intensity attr");
    samx_dataset_close(ds);
  }
  // Bad inputs, each on a fresh copy.
  float seg[QX * QY] = {0}, img[QX * QY];
  seg[7] = 2;  // x = 1, y = 1
  make_qubiq("qubiq/mask2");
  write_nifti("qubiq/mask2/Training/case03/task01_seg02.nii.gz", seg, QX, QY, 1, 1);
  rc = samx_pack_qubiq(at("qubiq/mask2"), at("qubiq/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "case03/task01_seg02.nii.gz") && strstr(samx_last_error(), "holds 2") &&
            no_output(at("qubiq/bad.h5")),
        "mask value 2: %s", samx_last_error());
  o.binarize = 1;
  CHECK(samx_pack_qubiq(at("qubiq/mask2"), at("qubiq/bin.h5"), &o) == 0, "--binarize: %s", samx_last_error());
  o.binarize = 0;
  make_qubiq("qubiq/nan");
  for (int i = 0; i < QX * QY; i++) img[i] = 1;
  img[3 + QX * 2] = NAN;
  write_nifti("qubiq/nan/Training/case02/image.nii.gz", img, QX, QY, 1, 0);
  rc = samx_pack_qubiq(at("qubiq/nan"), at("qubiq/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "case02/image.nii.gz") && strstr(samx_last_error(), "NaN at voxel (3, 2)") &&
            no_output(at("qubiq/bad.h5")),
        "NaN image: %s", samx_last_error());
  make_qubiq("qubiq/trunc");
  truncate_copy(at("qubiq/ok/Training/case03/image.nii.gz"), at("qubiq/trunc/Training/case03/image.nii.gz"), 0.6);
  rc = samx_pack_qubiq(at("qubiq/trunc"), at("qubiq/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "case03/image.nii.gz") && no_output(at("qubiq/bad.h5")),
        "truncated NIfTI: %s", samx_last_error());
  make_qubiq("qubiq/noimage");
  remove(at("qubiq/noimage/Training/case01/image.nii.gz"));
  rc = samx_pack_qubiq(at("qubiq/noimage"), at("qubiq/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "case01") && strstr(samx_last_error(), "no image") &&
            no_output(at("qubiq/bad.h5")),
        "case without image: %s", samx_last_error());
}

// ---- BraTS ----

enum { BX = 8, BY = 7, BZ = 6 };

static float brats_t1(int c, int64_t x, int64_t y, int64_t z) {
  return (x == 0 || y == 0) ? 0 : (float)(100 + (c * 7 + x * 3 + y * 5 + z * 11) % 50);
}
// Tumour in slices z = 1..3 only: whole tumour (2) around a core (1) around enhancing (4).
static int brats_label(int c, int64_t x, int64_t y, int64_t z) {
  if (z < 1 || z > 3) return 0;
  int64_t d = llabs(x - 4) + llabs(y - 3) + c;
  return d <= 1 ? 4 : d <= 2 ? 1 : d <= 4 ? 2 : 0;
}

static void make_brats(const char *root, int split_case) {
  float t1[BX * BY * BZ], seg[BX * BY * BZ];
  for (int c = 0; c < 2; c++) {
    for (int64_t z = 0; z < BZ; z++)
      for (int64_t y = 0; y < BY; y++)
        for (int64_t x = 0; x < BX; x++) {
          t1[x + BX * (y + BY * z)] = brats_t1(c, x, y, z);
          seg[x + BX * (y + BY * z)] = (float)brats_label(c, x, y, z);
        }
    char rel[256];
    snprintf(rel, sizeof rel, "%s/HGG/Brats17_X_%d/Brats17_X_%d_seg.nii.gz", root, c, c);
    write_nifti(rel, seg, BX, BY, BZ, 1);
    snprintf(rel, sizeof rel, "%s/%s/Brats17_X_%d/Brats17_X_%d_t1.nii.gz", root, split_case && c == 1 ? "LGG" : "HGG", c, c);
    write_nifti(rel, t1, BX, BY, BZ, 0);
  }
}

static void test_brats(void) {
  make_brats("brats/ok", 0);
  SamxMedicalOptions o = samx_medical_defaults();
  o.intensity = (SamxIntensity){SAMX_INTENSITY_CLIP, 100, 150};
  int rc = samx_pack_brats(at("brats/ok"), at("brats/ok.h5"), &o);
  CHECK(rc == 0, "pack brats: %s", samx_last_error());
  SamxDataset *ds = rc == 0 ? samx_dataset_open(at("brats/ok.h5")) : NULL;
  if (ds) {
    CHECK(samx_dataset_n(ds) == 6 && samx_dataset_k(ds) == 3 && samx_dataset_h(ds) == BX && samx_dataset_w(ds) == BY,
          "brats: N %lld (2 cases x 3 tumour slices)", (long long)samx_dataset_n(ds));
    float img[BX * BY];
    uint8_t m[3 * BX * BY];
    int bad = 0;
    for (int64_t i = 0; i < samx_dataset_n(ds); i++) {
      int c = (int)(i / 3), z = (int)(i % 3) + 1;
      samx_dataset_read_image_f32(ds, i, img);
      samx_dataset_read_masks(ds, i, m);
      for (int64_t x = 0; x < BX; x++)
        for (int64_t y = 0; y < BY; y++) {
          double want = fmin(fmax((brats_t1(c, x, y, z) - 100) / 50.0, 0), 1);
          int l = brats_label(c, x, y, z);
          bad += fabs(img[x * BY + y] - want) > 1e-6;
          bad += m[x * BY + y] != (l == 4) || m[BX * BY + x * BY + y] != (l == 1 || l == 4) ||
                 m[2 * BX * BY + x * BY + y] != (l != 0);
        }
    }
    const uint8_t *split = samx_dataset_splits(ds);
    CHECK(bad == 0 && split[0] == split[2] && split[3] == split[5] && !strcmp(samx_dataset_case_id(ds, 4), "Brats17_X_1"),
          "brats values: %d mismatches", bad);
    samx_dataset_close(ds);
  }
  // Axis 0 with empty slices kept and the default resize: x slices of y rows and z columns.
  o.axis = 0, o.keep_empty = 1, o.size = 16;
  rc = samx_pack_brats(at("brats/ok"), at("brats/axis0.h5"), &o);
  ds = rc == 0 ? samx_dataset_open(at("brats/axis0.h5")) : NULL;
  CHECK(ds && samx_dataset_n(ds) == 2 * BX && samx_dataset_h(ds) == 16 && samx_dataset_w(ds) == 16, "brats axis 0: %s",
        samx_last_error());
  samx_dataset_close(ds);
  o = samx_medical_defaults();
  make_brats("brats/split", 1);
  rc = samx_pack_brats(at("brats/split"), at("brats/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "split across folders") && strstr(samx_last_error(), "Brats17_X_1") &&
            no_output(at("brats/bad.h5")),
        "case split across folders: %s", samx_last_error());
  make_brats("brats/label3", 0);
  float seg[BX * BY * BZ] = {0};
  seg[2 + BX * (3 + BY * 4)] = 3;
  write_nifti("brats/label3/HGG/Brats17_X_1/Brats17_X_1_seg.nii.gz", seg, BX, BY, BZ, 1);
  rc = samx_pack_brats(at("brats/label3"), at("brats/bad.h5"), &o);
  CHECK(rc != 0 && strstr(samx_last_error(), "Brats17_X_1_seg.nii.gz") && strstr(samx_last_error(), "label 3 at voxel (2, 3, 4)") &&
            no_output(at("brats/bad.h5")),
        "BraTS label 3: %s", samx_last_error());
}

// Percentiles against a naive reference: numpy's linear interpolation over the sorted nonzero values.
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_intensity(void) {
  enum { N = 1001 };
  float v[N];
  double nz[N];
  int m = 0;
  uint64_t s = 7;
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = i % 5 == 0 ? 0 : (float)((s >> 40) % 1000) / 7.0f;
    if (v[i] != 0) nz[m++] = v[i];
  }
  qsort(nz, (size_t)m, sizeof *nz, cmp_double);
  double q[2] = {0.5, 99.5}, ref[2];
  for (int k = 0; k < 2; k++) {
    double pos = q[k] / 100 * (m - 1);
    int lo = (int)floor(pos);
    ref[k] = nz[lo] + (pos - lo) * (nz[lo + 1 < m ? lo + 1 : lo] - nz[lo]);
  }
  SamxIntensity it = {SAMX_INTENSITY_PERCENTILE, 0.5, 99.5};
  double lo, hi;
  samx_intensity_range(&it, v, N, &lo, &hi);
  CHECK(fabs(lo - ref[0]) < 1e-9 && fabs(hi - ref[1]) < 1e-9, "percentiles %g %g, reference %g %g", lo, hi, ref[0], ref[1]);
  it = (SamxIntensity){SAMX_INTENSITY_WINDOW, 40, 400};
  samx_intensity_range(&it, v, N, &lo, &hi);
  CHECK(lo == -160 && hi == 240, "window 40/400 -> [%g, %g]", lo, hi);
}

// ---- image files ----

static int read_8bit(const char *path) {
  SamxImage img;
  int rc = samx_image_read(path, &img);
  samx_image_free(&img);
  return rc;
}

static int read_volume(const char *path) {
  SamxVolume v;
  int rc = samx_nifti_read(path, &v);
  samx_volume_free(&v);
  return rc;
}

// A 16-bit grey PNG written with libpng's simplified API as linear data (it records gAMA 1.0 and
// would be passed through the sRGB curve by the simplified reader).
static int write_png16_linear(const char *path, const uint16_t *v, int w, int h) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = (png_uint_32)w, pi.height = (png_uint_32)h;
  pi.format = PNG_FORMAT_LINEAR_Y;
  return png_image_write_to_file(&pi, path, 0, v, 0, NULL) ? 0 : -1;
}

static void test_image_files(void) {
  enum { W = 9, H = 4 };
  uint16_t v[W * H];
  for (int i = 0; i < W * H; i++) v[i] = (uint16_t)(i * 1811 + 3);
  const char *p16 = at("io/x16.png"), *pw16 = at("io/w16.png");
  samx_test_make_parent(p16);
  CHECK(write_png16_linear(p16, v, W, H) == 0 && samx_png_write16(pw16, v, W, H, 1) == 0, "write 16-bit PNGs");
  const char *files[] = {p16, pw16};
  for (int f = 0; f < 2; f++) {
    uint16_t *got = NULL;
    int64_t w, h;
    int c, bits;
    int rc = samx_image_read_u16(files[f], &got, &w, &h, &c, &bits);
    int same = rc == 0 && w == W && h == H && c == 1 && bits == 16 && !memcmp(got, v, sizeof v);
    CHECK(same, "%s: raw 16-bit samples: %s", files[f], rc ? samx_last_error() : "values differ");
    free(got);
    SamxImage img;
    rc = samx_image_read(files[f], &img);
    int bad = rc != 0;
    for (int i = 0; i < W * H && !bad; i++) bad = img.data[i] != (uint8_t)((v[i] * 255u + 32767u) / 65535u);
    CHECK(!bad, "%s: 16-bit to 8-bit is linear (no sRGB curve)", files[f]);
    samx_image_free(&img);
  }
  // Damaged files: one error naming the file, nothing printed by the libraries.
  uint8_t px[64 * 48 * 3];
  for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7 + (i >> 5) * 13);
  CHECK(samx_jpeg_write(at("io/ok.jpg"), px, 64, 48, 3, 90) == 0 && samx_png_write(at("io/ok.png"), px, 64, 48, 3) == 0 &&
            samx_tiff_write(at("io/ok.tif"), px, 64, 48, 3) == 0,
        "write 8-bit fixtures");
  truncate_copy(at("io/ok.jpg"), at("io/cut.jpg"), 0.5);
  truncate_copy(at("io/ok.png"), at("io/cut.png"), 0.5);
  truncate_copy(at("io/ok.tif"), at("io/cut.tif"), 0.5);
  truncate_copy(at("qubiq/ok/Training/case01/image.nii.gz"), at("io/cut.nii.gz"), 0.5);
  struct {
    const char *file;
    int (*fn)(const char *);
  } cut[] = {{"io/cut.jpg", read_8bit}, {"io/cut.png", read_8bit}, {"io/cut.tif", read_8bit}, {"io/cut.nii.gz", read_volume}};
  for (size_t i = 0; i < sizeof cut / sizeof *cut; i++) {
    int rc;
    int silent = quiet(cut[i].fn, at(cut[i].file), &rc);
    CHECK(rc != 0 && silent && strstr(samx_last_error(), cut[i].file) && strstr(samx_last_error(), "truncated"),
          "%s: rc %d, silent %d, message '%s'", cut[i].file, rc, silent, samx_last_error());
  }
}

// Truncated HDF5: the PHiSeg packer and the dataset reader fail cleanly.
static void test_hdf5_truncated(void) {
  const char *src = access(at("qubiq/ok.h5"), F_OK) == 0 ? at("qubiq/ok.h5") : NULL;
  CHECK(src != NULL, "no packed file to truncate");
  if (!src) return;
  truncate_copy(src, at("cut.h5"), 0.5);
  SamxDataset *ds = samx_dataset_open(at("cut.h5"));
  CHECK(!ds && strstr(samx_last_error(), "cut.h5"), "truncated dataset opens: %s", samx_last_error());
  samx_dataset_close(ds);
  CHECK(samx_pack_phiseg(at("cut.h5"), at("phiseg_bad.h5")) != 0 && strstr(samx_last_error(), "cut.h5") &&
            no_output(at("phiseg_bad.h5")),
        "truncated PHiSeg input: %s", samx_last_error());
}

// The command line: one line on stderr, non-zero exit, no output.
static void test_cli(void) {
  char cmd[4096];
  const char *samx = samx_test_samx_bin("");
  if (access(samx, X_OK) != 0) {
    printf("note: %s not built, command-line checks skipped\n", samx);
    return;
  }
  snprintf(cmd, sizeof cmd, "%s pack qubiq --in %s --out %s --hu-clip -100,100 > /dev/null", samx, at("qubiq/ok"),
           at("cli_ok.h5"));
  CHECK(system(cmd) == 0 && access(at("cli_ok.h5"), F_OK) == 0, "samx pack qubiq");
  snprintf(cmd, sizeof cmd, "%s pack brats --in %s --out %s > /dev/null", samx, at("brats/ok"), at("cli_brats.h5"));
  SamxDataset *ds = system(cmd) == 0 ? samx_dataset_open(at("cli_brats.h5")) : NULL;
  CHECK(ds && samx_dataset_h(ds) == 128 && samx_dataset_n(ds) == 6, "samx pack brats resizes to 128 by default");
  samx_dataset_close(ds);
  snprintf(cmd, sizeof cmd, "%s pack qubiq --in %s --out %s 2> %s", samx, at("qubiq/mask2"), at("cli_bad.h5"),
           at("cli_err.txt"));
  int rc = system(cmd);
  size_t n;
  char *err = samx_read_file(at("cli_err.txt"), &n);
  int lines = 0;
  for (size_t i = 0; err && i < n; i++) lines += err[i] == '\n';
  CHECK(rc != 0 && lines == 1 && strstr(err, "task01_seg02.nii.gz") && no_output(at("cli_bad.h5")),
        "bad qubiq on the command line: rc %d, stderr '%s'", rc, err ? err : "");
  free(err);
  if (access(at("pk/lidc_p2.pickle"), F_OK) == 0) {
    snprintf(cmd, sizeof cmd, "%s pack lidc-pickle --in %s --out %s > /dev/null", samx, at("pk/lidc_p2.pickle"),
             at("cli_pk.h5"));
    CHECK(system(cmd) == 0 && access(at("cli_pk.h5"), F_OK) == 0, "samx pack lidc-pickle");
  }
}

int main(void) {
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_test_medical") != 0) return 1;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  test_lidc_pickle();
  test_pickle_hostile();
  test_qubiq();
  test_brats();
  test_intensity();
  test_image_files();
  test_hdf5_truncated();
  test_cli();
  if (samx_test_failed == 0) samx_test_remove_dir(dir);
  return samx_test_summary();
}
