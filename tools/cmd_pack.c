// samx pack: build a dataset file (docs/contracts.md §3) from a generator or another format.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/packers.h"
#include "data/synthetic.h"
#include "engine/error.h"
#include "engine/fileio.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx pack SOURCE --out FILE.h5 [options]\n\n"
          "sources:\n"
          "  synthetic   the built-in CT-like dataset with K annotators of distinct styles\n"
          "              (--kind anatomy: CT volumes of three structures for the few-shot method; see\n"
          "              samx pack volumes --help)\n"
          "  volumes     CT/MR NIfTI volumes with label maps, resampled and sliced (samx pack volumes --help)\n"
          "              [--n N (256)] [--size S (128)] [--annotators K (4)] [--slices-per-case C (8)] [--seed S (0)]\n"
          "  folder      DIR of 2-D images with masks: BUSI's name.png + name_mask.png (+ name_mask_1.png ...),\n"
          "              or DIR/images + DIR/masks with the same stems (CVC-ClinicDB TIFFs, ISIC JPEG/PNG,\n"
          "              ISIC's name_segmentation.png); K = the largest number of masks of an image\n"
          "              (images with fewer get annotator_valid = 0)\n"
          "              --in DIR [--size S (resize to SxS; default: all images must share one size)]\n"
          "              [--modality M] [--ratios TRAIN,VAL,TEST (0.7,0.15,0.15)] [--seed S (0)] [--binarize]\n"
          "              (masks hold 0/1 or 0/255; --binarize thresholds other values at 128)\n"
          "  phiseg-h5   PHiSeg's data_lidc.hdf5 (groups train/val/test, labels [N,128,128,4]); keeps its split\n"
          "              --in FILE\n"
          "  lidc-crops  LIDC crop folders {train,val,test}/images/<patient>/z-<pos>_c<k>.png and\n"
          "              {train,val,test}/gt/<patient>/z-<pos>_c<k>_l{0..3}.png; keeps the split\n"
          "              --in DIR\n"
          "  lidc-pickle  the data_lidc.pickle of the probabilistic U-Net ports: a dict of records with image\n"
          "              [128,128] float32 in [0,1], masks (list of 4 arrays) and series_uid; read without\n"
          "              Python (pickle protocols 2-4); split by series uid\n"
          "              --in FILE [--binarize] [--ratios ...] [--seed S]\n"
          "  qubiq       a QUBIQ task folder: DIR[/Training]/caseNN/image.nii.gz + taskTT_segMM.nii.gz;\n"
          "              raters sorted by number, K = all rater numbers seen (annotator_valid 0 where a\n"
          "              case has fewer); images of nx x ny become nx rows (nibabel's array)\n"
          "              --in DIR [--task T (1)] [--channel C (0)] [--modality M] [--size S] [intensity]\n"
          "              [--binarize] [--ratios ...] [--seed S]\n"
          "  brats       BraTS 2017-style <case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz under DIR; slices along\n"
          "              --axis (2: axial), K = 3 nested regions: enhancing tumour (label 4), tumour core\n"
          "              (1, 4), whole tumour (1, 2, 4); slices without tumour dropped unless --keep-empty\n"
          "              --in DIR [--modality t1|t1ce|t2|flair (t1)] [--axis A (2)] [--size S (128; 0 keeps)]\n"
          "              [intensity] [--keep-empty] [--ratios ...] [--seed S]\n\n"
          "intensity (qubiq, brats; recorded in the file's attributes):\n"
          "  --percentile LO,HI   clip at these percentiles of each case's nonzero values (default 0.5,99.5; MR)\n"
          "  --window L,W         CT window: level and width in HU\n"
          "  --hu-clip LO,HI      clip to [LO, HI] HU\n"
          "  then scaled to [0,1]; --storage f32 (default) keeps float32, u8 stores round(255 v)\n"
          "masks must hold only 0 and 1 (any other value is an error naming the file and the pixel);\n"
          "  --binarize thresholds at 0.5 instead\n\n"
          "The file is written to FILE.h5.tmp.<pid> and renamed when complete: a failed run leaves no output.\n");
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

static int parse_pair(const char *opt, const char *s, double *a, double *b) {
  char end;
  if (sscanf(s, "%lf,%lf%c", a, b, &end) != 2 || !isfinite(*a) || !isfinite(*b)) {
    fprintf(stderr, "samx pack: %s wants two numbers A,B, got '%s'\n", opt, s);
    return -1;
  }
  return 0;
}

// --percentile, --window, --hu-clip
static int parse_intensity(const char *opt, const char *v, SamxIntensity *it) {
  if (parse_pair(opt, v, &it->a, &it->b)) return -1;
  it->mode = !strcmp(opt, "--window") ? SAMX_INTENSITY_WINDOW : !strcmp(opt, "--hu-clip") ? SAMX_INTENSITY_CLIP
                                                                                          : SAMX_INTENSITY_PERCENTILE;
  int ok = it->mode == SAMX_INTENSITY_WINDOW ? it->b > 0
           : it->mode == SAMX_INTENSITY_CLIP ? it->b > it->a
                                             : it->a >= 0 && it->b <= 100 && it->b > it->a;
  if (!ok) {
    fprintf(stderr, "samx pack: %s %s is not a valid range (%s)\n", opt, v,
            it->mode == SAMX_INTENSITY_WINDOW ? "width must be positive"
            : it->mode == SAMX_INTENSITY_CLIP ? "LO < HI"
                                              : "0 <= LO < HI <= 100");
    return -1;
  }
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

int samx_cmd_pack_volumes(int argc, char **argv);  // tools/cmd_pack_volumes.c

static int is_anatomy(int argc, char **argv) {
  for (int i = 2; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--kind")) return strcmp(argv[i + 1], "lesion") != 0;
  return 0;
}

int samx_cmd_pack(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "volumes") || (!strcmp(argv[1], "synthetic") && is_anatomy(argc, argv))))
    return samx_cmd_pack_volumes(argc, argv);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *source = argv[1], *out = NULL, *in = NULL, *modality = NULL;
  SamxSyntheticParams sp = samx_synthetic_defaults();
  int64_t size = -1, seed = 0, task = 1, channel = 0, axis = 2;
  double ratios[3] = {0.7, 0.15, 0.15};
  SamxMedicalOptions med = samx_medical_defaults();
  const char *storage = "f32";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--binarize") || !strcmp(a, "--keep-empty")) {
      *(a[2] == 'b' ? &med.binarize : &med.keep_empty) = 1;
      continue;
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
    else if (!strcmp(a, "--size")) rc = parse_int(a, v, 0, 16384, &size);
    else if (!strcmp(a, "--task")) rc = parse_int(a, v, 0, 99, &task);
    else if (!strcmp(a, "--channel")) rc = parse_int(a, v, 0, 1000000, &channel);
    else if (!strcmp(a, "--axis")) rc = parse_int(a, v, 0, 2, &axis);
    else if (!strcmp(a, "--percentile") || !strcmp(a, "--window") || !strcmp(a, "--hu-clip"))
      rc = parse_intensity(a, v, &med.intensity);
    else if (!strcmp(a, "--storage")) {
      storage = v;
      if (strcmp(v, "f32") && strcmp(v, "u8")) {
        fprintf(stderr, "samx pack: --storage wants f32 or u8, got '%s'\n", v);
        rc = -1;
      }
    }
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
  if (samx_check_output_not_input("samx pack: --out", out, (const char *const[]){in}, 1)) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
  }
  if (size > 0 && size < 8) {
    fprintf(stderr, "samx pack: --size wants 0 (keep) or at least 8, got %lld\n", (long long)size);
    return 2;
  }
  memcpy(med.ratios, ratios, sizeof ratios);
  med.seed = (uint64_t)seed, med.task = (int)task, med.channel = (int)channel, med.axis = (int)axis;
  med.store_u8 = !strcmp(storage, "u8");
  med.size = size > 0 ? size : 0;
  int rc;
  if (is_synthetic) {
    if (size > 0) sp.size = size;
    sp.seed = (uint64_t)seed;
    rc = samx_pack_synthetic(out, &sp);
  } else if (!strcmp(source, "folder")) {
    SamxFolderOptions o = {.size = size > 0 ? size : 0, .modality = modality, .seed = (uint64_t)seed,
                           .binarize = med.binarize};
    memcpy(o.ratios, ratios, sizeof ratios);
    rc = samx_pack_folder(in, out, &o);
  } else if (!strcmp(source, "phiseg-h5")) {
    rc = samx_pack_phiseg(in, out);
  } else if (!strcmp(source, "lidc-crops")) {
    rc = samx_pack_lidc_crops(in, out);
  } else if (!strcmp(source, "lidc-pickle")) {
    med.modality = modality;
    rc = samx_pack_lidc_pickle(in, out, &med);
  } else if (!strcmp(source, "qubiq")) {
    med.modality = modality;
    rc = samx_pack_qubiq(in, out, &med);
  } else if (!strcmp(source, "brats")) {
    med.brats_modality = modality ? modality : "t1";
    if (size < 0) med.size = 128;
    rc = samx_pack_brats(in, out, &med);
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
