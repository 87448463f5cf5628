// samx bench data: training loader throughput (samples/s) on synthetic datasets at 128² and 1024²,
// gzip on and off, with and without augmentation, through the prefetch thread as training uses it.
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synthetic.h"

static const char *USAGE =
    "usage: samx bench data [--dir D] [-r REPS] [-o md|json] [--quick]\n\n"
    "Writes synthetic datasets (128x128 and 1024x1024, K = 4, gzip level 4 and uncompressed) under D\n"
    "(default /tmp), then times full passes of the training loader (batch 8 / 2, prefetch 2) with and\n"
    "without augmentation (flips, 90-degree rotations, intensity jitter). Reports the median pass.\n";

typedef struct {
  int64_t size, n, batch;
  int gzip;  // deflate level; -1: uncompressed
} DataCase;

static int parse_extra(const char *opt, const char *value, void *user) {
  if (strcmp(opt, "--dir") || !value) return 0;
  *(const char **)user = value;
  return 2;
}

// Whether /images of path is deflate-compressed: the dataset writer decides, so ask the file.
static int file_is_gzipped(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return -1;
  hid_t d = H5Dopen2(f, "/images", H5P_DEFAULT);
  hid_t p = H5Dget_create_plist(d);
  int gz = 0;
  for (int i = 0; i < H5Pget_nfilters(p); i++) {
    unsigned flags;
    size_t nelem = 0;
    gz |= H5Pget_filter2(p, (unsigned)i, &flags, &nelem, NULL, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
  }
  H5Pclose(p), H5Dclose(d), H5Fclose(f);
  return gz;
}

static int write_dataset(const char *path, const DataCase *c) {
  SamxSyntheticParams sp = samx_synthetic_defaults();
  sp.n = c->n, sp.size = c->size, sp.k = 4, sp.seed = 1;
  SamxDatasetSpec spec = {.h = c->size,
                          .w = c->size,
                          .k = 4,
                          .channels = 1,
                          .dtype = SAMX_IMAGE_U8,
                          .source = "samx bench data",
                          .modality = "synthetic",
                          .gzip_level = c->gzip};
  SamxDatasetWriter *w = samx_dataset_create(path, &spec);
  if (!w) return -1;
  size_t hw = (size_t)(c->size * c->size);
  uint8_t *image = (uint8_t *)malloc(hw), *masks = (uint8_t *)malloc(4 * hw);
  int rc = 0;
  for (int64_t i = 0; i < c->n && rc == 0; i++) {
    samx_synthetic_sample(&sp, i, image, masks);
    SamxSample s = {.image = image, .masks = masks, .split = SAMX_SPLIT_TRAIN, .case_id = "bench"};
    rc = samx_dataset_append(w, &s);
  }
  free(image), free(masks);
  if (rc != 0) {
    samx_dataset_abort(w);
    return -1;
  }
  return samx_dataset_finish(w);
}

// Median milliseconds of one full pass over the dataset.
static double time_passes(const char *path, const DataCase *c, int augment, int reps) {
  SamxLoaderOpts o = samx_loader_defaults();
  o.split = -1, o.batch = c->batch, o.seed = 7, o.prefetch = 2;
  if (augment) o.aug = (SamxAugment){.hflip = 1, .vflip = 1, .rot90 = 1, .contrast = 0.1f, .brightness = 0.1f};
  SamxLoader *l = samx_loader_open(path, &o);
  if (!l) return -1;
  int64_t batches = samx_loader_batches_per_epoch(l);
  double *ms = (double *)malloc((size_t)reps * sizeof *ms);
  for (int r = 0; r < reps; r++) {
    double t0 = bench_now_ms();
    for (int64_t b = 0; b < batches; b++)
      if (!samx_loader_next(l)) {
        samx_loader_close(l);
        free(ms);
        return -1;
      }
    ms[r] = bench_now_ms() - t0;
  }
  samx_loader_close(l);
  for (int i = 1; i < reps; i++)  // insertion sort: reps is small
    for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
      double t = ms[j];
      ms[j] = ms[j - 1], ms[j - 1] = t;
    }
  double med = ms[reps / 2];
  free(ms);
  return med;
}

int samx_bench_data(int argc, char **argv) {
  BenchOpts o;
  const char *dir = "/tmp";
  if (bench_parse_opts_ex(argc, argv, &o, USAGE, parse_extra, &dir) < 0) return 2;
  DataCase cases[] = {
      {128, o.quick ? 64 : 512, 8, 4},
      {128, o.quick ? 64 : 512, 8, -1},
      {1024, o.quick ? 8 : 32, 2, 4},
      {1024, o.quick ? 8 : 32, 2, -1},
  };
  int nc = (int)(sizeof cases / sizeof *cases);
  BenchRow rows[16];
  int n = 0, rc = 0;
  for (int i = 0; i < nc && rc == 0; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/samx_bench_data_%d_%lld.h5", dir, (int)getpid(), (long long)cases[i].size);
    if (write_dataset(path, &cases[i]) != 0) {
      rc = -1;
      break;
    }
    int gz = file_is_gzipped(path);
    for (int augment = 0; augment <= 1 && rc == 0; augment++) {
      if (!o.json && isatty(2)) fprintf(stderr, "\r[%d/%d] %lld px%-20s", n + 1, 2 * nc, (long long)cases[i].size, "");
      double ms = time_passes(path, &cases[i], augment, o.reps);
      if (ms < 0) {
        rc = -1;
        break;
      }
      BenchRow *r = &rows[n++];
      memset(r, 0, sizeof *r);
      snprintf(r->name, sizeof r->name, "loader%s", augment ? " + augment" : "");
      snprintf(r->shape, sizeof r->shape, "%lld² K=4 N=%lld batch %lld, %s", (long long)cases[i].size,
               (long long)cases[i].n, (long long)cases[i].batch, gz ? "gzip 4" : "uncompressed");
      snprintf(r->unit, sizeof r->unit, "sample");
      r->ms = ms;
      r->items = (double)cases[i].n;
      r->bytes = (double)cases[i].n * (double)(cases[i].size * cases[i].size) * 5;  // image + 4 masks
      r->torch_ms = -1;
    }
    unlink(path);
  }
  if (!o.json && isatty(2)) fprintf(stderr, "\r%60s\r", "");
  if (rc != 0) {
    fprintf(stderr, "samx bench data: %s\n", samx_last_error());
    return 1;
  }
  HwLimits hw;
  bench_limits(samx_cpu(), SAMX_PRECISION_FP32, &hw);
  o.device = samx_cpu();  // the loader runs on the host whatever --device says
  bench_print("data", &o, &hw, rows, n);
  return 0;
}
