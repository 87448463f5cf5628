// samx pack: build a dataset file (docs/contracts.md §3) from a generator or another format.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/packers.h"
#include "data/synthetic.h"
#include "engine/error.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx pack SOURCE --out FILE.h5 [options]\n\n"
          "sources:\n"
          "  synthetic   the built-in CT-like dataset with K annotators of distinct styles\n"
          "              [--n N (256)] [--size S (128)] [--annotators K (4)] [--slices-per-case C (8)] [--seed S (0)]\n"
          "  folder      DIR of 2-D images with masks: BUSI's name.png + name_mask.png (+ name_mask_1.png ...),\n"
          "              or DIR/images + DIR/masks with the same stems (CVC-ClinicDB TIFFs, ISIC JPEG/PNG,\n"
          "              ISIC's name_segmentation.png); K = the largest number of masks of an image\n"
          "              (images with fewer get annotator_valid = 0)\n"
          "              --in DIR [--size S (resize to SxS; default: all images must share one size)]\n"
          "              [--modality M] [--ratios TRAIN,VAL,TEST (0.7,0.15,0.15)] [--seed S (0)]\n"
          "  phiseg-h5   PHiSeg's data_lidc.hdf5 (groups train/val/test, labels [N,128,128,4]); keeps its split\n"
          "              --in FILE\n"
          "  lidc-crops  LIDC crop folders {train,val,test}/images/<patient>/z-<pos>_c<k>.png and\n"
          "              {train,val,test}/gt/<patient>/z-<pos>_c<k>_l{0..3}.png; keeps the split\n"
          "              --in DIR\n\n"
          "The file is written to FILE.h5.tmp.<pid> and renamed when complete.\n");
}

// Parses an integer option value; returns 0 or -1 with a message.
static int parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "samx pack: %s wants an integer in [%lld, %lld], got '%s'\n", opt, (long long)lo, (long long)hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_ratios(const char *s, double r[3]) {
  if (sscanf(s, "%lf,%lf,%lf", &r[0], &r[1], &r[2]) != 3 || r[0] < 0 || r[1] < 0 || r[2] < 0 ||
      r[0] + r[1] + r[2] <= 0) {
    fprintf(stderr, "samx pack: --ratios wants TRAIN,VAL,TEST (non-negative, not all 0), got '%s'\n", s);
    return -1;
  }
  return 0;
}

int samx_cmd_pack(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *source = argv[1], *out = NULL, *in = NULL, *modality = NULL;
  SamxSyntheticParams sp = samx_synthetic_defaults();
  int64_t size = 0, seed = 0;
  double ratios[3] = {0.7, 0.15, 0.15};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "samx pack: %s needs a value (see samx pack --help)\n", a);
      return 2;
    }
    int rc = 0;
    i++;
    if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--in")) in = v;
    else if (!strcmp(a, "--modality")) modality = v;
    else if (!strcmp(a, "--n")) rc = parse_int(a, v, 1, 100000000, &sp.n);
    else if (!strcmp(a, "--size")) rc = parse_int(a, v, 8, 16384, &size);
    else if (!strcmp(a, "--annotators")) rc = parse_int(a, v, 1, 64, &sp.k);
    else if (!strcmp(a, "--slices-per-case")) rc = parse_int(a, v, 1, 100000, &sp.slices_per_case);
    else if (!strcmp(a, "--seed")) rc = parse_int(a, v, 0, INT64_MAX, &seed);
    else if (!strcmp(a, "--ratios")) rc = parse_ratios(v, ratios);
    else {
      fprintf(stderr, "samx pack: unknown option %s (see samx pack --help)\n", a);
      return 2;
    }
    if (rc) return 2;
  }
  if (!out) {
    fprintf(stderr, "samx pack: --out FILE.h5 is required\n");
    return 2;
  }
  int is_synthetic = !strcmp(source, "synthetic");
  if (!is_synthetic && !in) {
    fprintf(stderr, "samx pack %s: --in is required\n", source);
    return 2;
  }
  int rc;
  if (is_synthetic) {
    if (size) sp.size = size;
    sp.seed = (uint64_t)seed;
    rc = samx_pack_synthetic(out, &sp);
  } else if (!strcmp(source, "folder")) {
    SamxFolderOptions o = {.size = size, .modality = modality, .seed = (uint64_t)seed};
    memcpy(o.ratios, ratios, sizeof ratios);
    rc = samx_pack_folder(in, out, &o);
  } else if (!strcmp(source, "phiseg-h5")) {
    rc = samx_pack_phiseg(in, out);
  } else if (!strcmp(source, "lidc-crops")) {
    rc = samx_pack_lidc_crops(in, out);
  } else {
    fprintf(stderr, "samx pack: unknown source '%s' (see samx pack --help)\n", source);
    return 2;
  }
  if (rc != 0) {
    fprintf(stderr, "samx pack: %s\n", samx_last_error());
    return 1;
  }
  printf("wrote %s\n", out);
  return 0;
}
