// samx pack volumes and samx pack synthetic --kind anatomy: CT/MR volumes into 2-D slices on a
// fixed-spacing world grid with an optional /labels class map (contracts §7).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/packers.h"
#include "data/synthetic_anatomy.h"
#include "data/volume.h"
#include "engine/error.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx pack volumes --images DIR --labels DIR --axis axial|coronal|sagittal --spacing MM\n"
          "                         [--window LO,HI | --percentile LO,HI] [--label-ids ID[=NAME],...]\n"
          "                         [--size S] [--keep-empty] [--modality M] [--ratios TR,VA,TE] [--seed S] --out D.h5\n"
          "       samx pack synthetic --kind anatomy --out D.h5 [--n CASES (24)] [--size S (64)]\n"
          "                         [--spacing MM (1.25)] [--axis A (axial)] [--seed S (0)] [--masks union|per-label]\n\n"
          "Volumes: IMAGES/<case>.nii[.gz] (or <case>_0000.nii.gz, the MSD/nnU-Net/AMOS layout) with\n"
          "LABELS/<case>.nii[.gz] of the same grid. Each case is resampled through its affine (sform, else\n"
          "qform, as nibabel) onto a world-aligned RAS grid of --spacing mm (one value: isotropic; X,Y,Z:\n"
          "per world axis), image trilinear and labels nearest; outside the scan is the case's lowest value.\n"
          "Slices along --axis are shown as radiology viewers do (axial: anterior up, patient's right on the\n"
          "left) and centred in S x S (default: the largest extent of all cases), and keep their spacing.\n"
          "Intensities (recorded in the file):\n"
          "  --window LO,HI       CT: clip to [LO, HI] HU (the paper: -500,1300 bone; -160,240 abdomen; default -160,240)\n"
          "                       (note: qubiq/brats take --window LEVEL,WIDTH; volumes take the bounds)\n"
          "  --percentile LO,HI   MR: clip at these percentiles of each case's nonzero voxels (e.g. 0.5,99.5)\n"
          "  then scaled to [0, 1] and stored as float32.\n"
          "Labels: --label-ids 1=aorta,2=postcava keeps those ids as classes 1, 2 ... of /labels [N,H,W] with\n"
          "their names (others become background); without it every id is its own class (label_<id>).\n"
          "/masks[:, 0] is the union of the classes (--masks per-label: K = one mask per class, for training\n"
          "SAM on class-agnostic objects). Slices without any are dropped unless --keep-empty.\n"
          "Cases are never cut across splits (--ratios, default 0.7,0.15,0.15, drawn with --seed).\n"
          "Errors name the file: label and image grids that differ (dimensions or affine), NaN/Inf voxels,\n"
          "non-integer labels.\n\n"
          "synthetic --kind anatomy: the built-in CT-like volumes (organ, vessel, bone; shapes, positions\n"
          "and HU vary per case, noise, a tilted affine on 1 x 1 x 2.5 mm voxels) through the same path\n"
          "with the abdomen window -160,240 HU.\n");
}

static int parse_list3(const char *s, double v[3]) {
  char end;
  int n = sscanf(s, "%lf,%lf,%lf%c", &v[0], &v[1], &v[2], &end);
  if (n == 1) v[1] = v[2] = v[0];
  if (!(n == 1 || n == 3) || !(v[0] > 0 && v[1] > 0 && v[2] > 0) || !isfinite(v[0] + v[1] + v[2])) {
    fprintf(stderr, "samx pack: --spacing wants MM or X,Y,Z (positive mm), got '%s'\n", s);
    return -1;
  }
  return 0;
}

static int parse_pair(const char *opt, const char *s, double *a, double *b) {
  char end;
  if (sscanf(s, "%lf,%lf%c", a, b, &end) != 2 || !isfinite(*a) || !isfinite(*b) || !(*b > *a)) {
    fprintf(stderr, "samx pack: %s wants LO,HI with LO < HI, got '%s'\n", opt, s);
    return -1;
  }
  return 0;
}

// "1=aorta,2,5=ivc": ids with optional names (pointers into a copy of s kept in *keep).
static int parse_ids(const char *s, SamxVolumeOptions *o, char **keep) {
  *keep = strdup(s);
  o->n_ids = 0;
  for (char *save = NULL, *tok = strtok_r(*keep, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '='), *end;
    if (eq) *eq = 0;
    long id = strtol(tok, &end, 10);
    if (*end || end == tok || id < 1 || id > 255 || o->n_ids == 255) {
      fprintf(stderr, "samx pack: --label-ids wants ID[=NAME],... with ids in 1..255, got '%s'\n", s);
      return -1;
    }
    for (int i = 0; i < o->n_ids; i++)
      if (o->ids[i] == id) {
        fprintf(stderr, "samx pack: --label-ids lists id %ld twice\n", id);
        return -1;
      }
    o->ids[o->n_ids] = (int)id;
    o->names[o->n_ids++] = eq && eq[1] ? eq + 1 : NULL;
  }
  return 0;
}

static int pack_anatomy(const char *out, int64_t cases, const SamxVolumeOptions *o, uint64_t seed) {
  SamxAnatomyParams ap = samx_anatomy_defaults();
  ap.cases = cases, ap.seed = seed;
  SamxVolumeOptions vo = *o;
  vo.n_ids = 3;
  for (int i = 0; i < 3; i++) vo.ids[i] = i + 1, vo.names[i] = samx_anatomy_names[i + 1];
  vo.modality = "synthetic CT";
  char source[256];
  snprintf(source, sizeof source, "samx synthetic anatomy: %lld cases of %lldx%lldx%lld voxels %gx%gx%g mm, seed %llu",
           (long long)cases, (long long)ap.nx, (long long)ap.ny, (long long)ap.nz, ap.voxel[0], ap.voxel[1],
           ap.voxel[2], (unsigned long long)seed);
  SamxVolumePacker *p = samx_volume_packer_create(out, &vo, o->size, o->size, source);
  if (!p) return -1;
  int rc = 0;
  for (int64_t c = 0; c < cases && rc == 0; c++) {
    SamxVolume v, l;
    SamxAffine a;
    samx_anatomy_case(&ap, c, &v, &l, &a);
    char id[64];
    snprintf(id, sizeof id, "anatomy_%03lld", (long long)c);
    rc = samx_volume_packer_add(p, &v, &a, id, &l, &a, id, id);
    samx_volume_free(&v), samx_volume_free(&l);
  }
  if (rc == 0) return samx_volume_packer_finish(p, "synthetic anatomy");
  samx_volume_packer_abort(p);
  return rc;
}

// argv[1] is "volumes" or "synthetic" (with --kind anatomy).
int samx_cmd_pack_volumes(int argc, char **argv) {
  int synthetic = !strcmp(argv[1], "synthetic");
  SamxVolumeOptions o = samx_volume_defaults();
  const char *images = NULL, *labels = NULL, *out = NULL;
  char *ids_copy = NULL;
  int64_t cases = 24, seed = 0, size = synthetic ? 64 : 0;
  if (synthetic) o.spacing[0] = o.spacing[1] = o.spacing[2] = 1.25;
  int have_spacing = synthetic, have_axis = synthetic, rc = 0;
  for (int i = 2; i < argc && rc == 0; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(ids_copy);
      return 0;
    }
    if (!strcmp(a, "--keep-empty")) {
      o.keep_empty = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "samx pack: %s needs a value (see samx pack volumes --help)\n", a);
      rc = -1;
      break;
    }
    i++;
    char *end;
    if (!strcmp(a, "--images")) images = v;
    else if (!strcmp(a, "--labels")) labels = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--kind")) rc = strcmp(v, "anatomy") ? (fprintf(stderr, "samx pack: --kind %s unknown (anatomy)\n", v), -1) : 0;
    else if (!strcmp(a, "--modality")) o.modality = v;
    else if (!strcmp(a, "--masks")) {
      o.masks_per_label = !strcmp(v, "per-label");
      if (strcmp(v, "per-label") && strcmp(v, "union"))
        rc = (fprintf(stderr, "samx pack: --masks wants union or per-label, got '%s'\n", v), -1);
    }
    else if (!strcmp(a, "--axis")) {
      rc = (o.axis = samx_axis_parse(v)) < 0 ? (fprintf(stderr, "samx pack: --axis wants axial, coronal or sagittal, got '%s'\n", v), -1) : 0;
      have_axis = 1;
    } else if (!strcmp(a, "--spacing")) rc = parse_list3(v, o.spacing), have_spacing = 1;
    else if (!strcmp(a, "--window")) rc = parse_pair(a, v, &o.intensity.a, &o.intensity.b), o.intensity.mode = SAMX_INTENSITY_CLIP;
    else if (!strcmp(a, "--percentile")) {
      rc = parse_pair(a, v, &o.intensity.a, &o.intensity.b);
      o.intensity.mode = SAMX_INTENSITY_PERCENTILE;
      if (rc == 0 && (o.intensity.a < 0 || o.intensity.b > 100))
        rc = (fprintf(stderr, "samx pack: --percentile wants 0 <= LO < HI <= 100, got '%s'\n", v), -1);
    } else if (!strcmp(a, "--label-ids")) rc = parse_ids(v, &o, &ids_copy);
    else if (!strcmp(a, "--size") || !strcmp(a, "--n") || !strcmp(a, "--seed")) {
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (errno || *end || x < 0 || (!strcmp(a, "--size") && x != 0 && (x < 8 || x > 16384)) ||
          (!strcmp(a, "--n") && x < 3)) {
        fprintf(stderr, "samx pack: %s got '%s' (size 0 or 8..16384; n at least 3; seed >= 0)\n", a, v);
        rc = -1;
      }
      *(!strcmp(a, "--size") ? &size : !strcmp(a, "--n") ? &cases : &seed) = x;
    } else if (!strcmp(a, "--ratios")) {
      if (sscanf(v, "%lf,%lf,%lf", &o.ratios[0], &o.ratios[1], &o.ratios[2]) != 3 || o.ratios[0] < 0 ||
          o.ratios[1] < 0 || o.ratios[2] < 0 || o.ratios[0] + o.ratios[1] + o.ratios[2] <= 0)
        rc = (fprintf(stderr, "samx pack: --ratios wants TRAIN,VAL,TEST, got '%s'\n", v), -1);
    } else {
      fprintf(stderr, "samx pack: unknown option %s (see samx pack volumes --help)\n", a);
      rc = -1;
    }
  }
  if (rc == 0 && !out) rc = (fprintf(stderr, "samx pack: --out D.h5 is required\n"), -1);
  if (rc == 0 && !synthetic && (!images || !labels || !have_spacing || !have_axis))
    rc = (fprintf(stderr, "samx pack volumes: --images, --labels, --axis and --spacing are required\n"), -1);
  if (rc == 0 && !synthetic && o.masks_per_label && o.n_ids == 0)
    rc = (fprintf(stderr, "samx pack volumes: --masks per-label needs --label-ids\n"), -1);
  if (rc != 0) {
    free(ids_copy);
    return 2;
  }
  o.size = size, o.seed = (uint64_t)seed;
  rc = synthetic ? pack_anatomy(out, cases, &o, (uint64_t)seed) : samx_pack_volumes(images, labels, out, &o);
  free(ids_copy);
  if (rc != 0) {
    fprintf(stderr, "samx pack: %s\n", samx_last_error());
    return 1;
  }
  printf("wrote %s\n", out);
  return 0;
}
