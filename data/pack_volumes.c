// samx pack volumes: CT/MR NIfTI volumes with label maps into 2-D slices on a fixed-spacing world grid
// (contracts §7; the few-shot paper's preprocessing, method-notes §6). The same path packs the
// synthetic anatomy volumes (data/synthetic_anatomy.c).
//
// Per case: image and label map must share dimensions and affine; both are resampled onto the
// world-aligned grid at the requested spacing (image trilinear, labels nearest), intensities are
// clipped to the CT window or the MR percentiles of the case and scaled to [0, 1], and every slice
// along the axis that holds a selected label (all slices with keep_empty) becomes a sample, centred in
// an h x w plane. Selected label ids become classes 1..L of /labels; /masks[:, 0] is their union (or,
// with masks_per_label, /masks[:, k] is class k + 1).
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/packers.h"
#include "data/volume.h"
#include "engine/error.h"

struct SamxVolumePacker {
  SamxDatasetWriter *wr;
  SamxVolumeOptions o;
  int64_t h, w;
  uint8_t class_of[256];  // label id -> class (0: not selected)
  int seen[256];          // without ids: which values occur (their class is the value itself)
  int64_t slices, dropped, cases;
};

SamxVolumeOptions samx_volume_defaults(void) {
  SamxVolumeOptions o = {.axis = 2, .spacing = {1, 1, 1}, .ratios = {0.7, 0.15, 0.15}};
  o.intensity.mode = SAMX_INTENSITY_CLIP, o.intensity.a = -160, o.intensity.b = 240;
  return o;
}

SamxVolumePacker *samx_volume_packer_create(const char *out, const SamxVolumeOptions *o, int64_t h, int64_t w,
                                            const char *source) {
  SAMX_ASSERT(!o->masks_per_label || o->n_ids > 0, "volume packer: masks per label needs label ids");
  SamxDatasetSpec spec = {.h = h, .w = w, .k = o->masks_per_label ? o->n_ids : 1, .channels = 1, .dtype = SAMX_IMAGE_F32, .source = source,
                          .modality = o->modality ? o->modality : "CT", .display_attr = "value_range",
                          .display_lo = 0, .display_hi = 1};
  SamxDatasetWriter *wr = samx_dataset_create(out, &spec);
  if (!wr) return NULL;
  SamxVolumePacker *p = (SamxVolumePacker *)calloc(1, sizeof *p);
  p->wr = wr, p->o = *o, p->h = h, p->w = w;
  for (int i = 0; i < o->n_ids; i++) p->class_of[o->ids[i]] = (uint8_t)(i + 1);
  char text[256], sp[128];
  samx_intensity_describe(&o->intensity, text, sizeof text);
  snprintf(sp, sizeof sp, "%g,%g,%g", o->spacing[0], o->spacing[1], o->spacing[2]);
  int rc = samx_dataset_writer_attr_string(wr, "intensity", text);
  rc |= samx_dataset_writer_attr_string(wr, "slice_axis", samx_axis_name(o->axis));
  rc |= samx_dataset_writer_attr_string(wr, "resampled_spacing_xyz_mm", sp);
  rc |= samx_dataset_writer_attr_string(wr, "world_space", "RAS+ (NIfTI), world-aligned grid; image trilinear, labels nearest");
  rc |= samx_dataset_writer_attr_int(wr, "empty_slices_dropped", !o->keep_empty);
  rc |= samx_dataset_writer_attr_string(wr, "masks", o->masks_per_label ? "one per label (annotator k = class k + 1)"
                                                                        : "the union of the selected labels");
  if (rc == 0 && o->n_ids > 0) {
    const char *names[256];
    char bufs[256][32];
    names[0] = "background";
    for (int i = 0; i < o->n_ids; i++) {
      if (o->names[i]) names[i + 1] = o->names[i];
      else snprintf(bufs[i], sizeof bufs[i], "label_%d", o->ids[i]), names[i + 1] = bufs[i];
    }
    rc = samx_dataset_writer_enable_labels(wr, names, o->n_ids + 1);
  } else if (rc == 0) {
    rc = samx_dataset_writer_enable_labels(wr, NULL, 0);
  }
  if (rc) {
    samx_fail("%s: cannot write the volume attributes", out);
    samx_dataset_abort(wr);
    free(p);
    return NULL;
  }
  return p;
}

// Grids of image and label must agree; voxels finite; labels integers in 0..255.
static int check_case(const SamxVolume *img, const SamxAffine *ai, const char *img_path, const SamxVolume *lab,
                      const SamxAffine *al, const char *lab_path) {
  if (img->dim[3] != 1 || lab->dim[3] != 1) return samx_fail("%s: a 4-D volume; volumes must be 3-D", img->dim[3] != 1 ? img_path : lab_path);
  for (int a = 0; a < 3; a++)
    if (img->dim[a] != lab->dim[a])
      return samx_fail("%s: label grid is %lldx%lldx%lld but its image %s is %lldx%lldx%lld", lab_path,
                       (long long)lab->dim[0], (long long)lab->dim[1], (long long)lab->dim[2], img_path,
                       (long long)img->dim[0], (long long)img->dim[1], (long long)img->dim[2]);
  double d = samx_affine_distance(ai, al);
  if (d > 1e-3)
    return samx_fail("%s: label affine differs from its image %s by %.4g mm (the grids must be the same)", lab_path,
                     img_path, d);
  int64_t nx = img->dim[0], ny = img->dim[1];
  size_t n = (size_t)(nx * ny * img->dim[2]);
  for (size_t i = 0; i < n; i++) {
    float f = img->data[i], l = lab->data[i];
    int bad_img = !isfinite(f), bad_lab = !(l >= 0 && l <= 255 && l == floorf(l));
    if (bad_img || bad_lab) {
      long long x = (long long)(i % (size_t)nx), y = (long long)(i / (size_t)nx % (size_t)ny),
                z = (long long)(i / (size_t)(nx * ny));
      if (bad_img) return samx_fail("%s: holds %s at voxel (%lld, %lld, %lld)", img_path, isnan(f) ? "NaN" : "Inf", x, y, z);
      return samx_fail("%s: holds label %g at voxel (%lld, %lld, %lld); labels are integers 0..255", lab_path, l, x, y,
                       z);
    }
  }
  return 0;
}

int samx_volume_packer_add(SamxVolumePacker *p, const SamxVolume *img, const SamxAffine *ai, const char *img_path,
                           const SamxVolume *lab, const SamxAffine *al, const char *lab_path, const char *case_id) {
  if (check_case(img, ai, img_path, lab, al, lab_path) != 0) return -1;
  size_t n = (size_t)(img->dim[0] * img->dim[1] * img->dim[2]);
  double lo, hi;
  samx_intensity_range(&p->o.intensity, img->data, n, &lo, &hi);
  float vmin = INFINITY;
  for (size_t i = 0; i < n; i++) vmin = fminf(vmin, img->data[i]);
  SamxGrid g;
  int64_t dim3[3] = {img->dim[0], img->dim[1], img->dim[2]};
  samx_world_grid(dim3, ai, p->o.spacing, &g);
  size_t gn = (size_t)(g.dim[0] * g.dim[1] * g.dim[2]), hw = (size_t)(p->h * p->w);
  float *vi = (float *)malloc(gn * sizeof(float)), *vl = (float *)malloc(gn * sizeof(float));
  // Outside the scanned volume is the case's lowest value (air in CT, background in MR).
  samx_resample_world(img->data, dim3, ai, &g, 0, vmin, vi);
  samx_resample_world(lab->data, dim3, ai, &g, 1, 0, vl);
  samx_intensity_apply(vi, gn, lo, hi);
  float pad = vmin;
  samx_intensity_apply(&pad, 1, lo, hi);
  float *plane = (float *)malloc(hw * sizeof(float)), *lplane = (float *)malloc(hw * sizeof(float));
  int64_t K = p->o.masks_per_label ? p->o.n_ids : 1;
  uint8_t *cls = (uint8_t *)malloc(hw), *mask = (uint8_t *)malloc(hw * (size_t)K);
  int64_t rows, cols;
  samx_slice_shape(&g, p->o.axis, &rows, &cols, NULL, NULL);
  int ra = p->o.axis == 2 ? 1 : 2, ca = p->o.axis == 0 ? 1 : 0;
  int rc = 0;
  for (int64_t at = 0; at < g.dim[p->o.axis] && rc == 0; at++) {
    samx_take_slice(vl, &g, p->o.axis, at, p->h, p->w, 0, lplane);
    int64_t fg = 0;
    for (size_t j = 0; j < hw; j++) {
      int id = (int)lplane[j];
      int c = p->o.n_ids > 0 ? p->class_of[id] : id;
      if (p->o.n_ids == 0 && id) p->seen[id] = 1;
      cls[j] = (uint8_t)c, fg += c != 0;
      for (int64_t k = 0; k < K; k++) mask[k * hw + j] = K == 1 ? c != 0 : c == k + 1;
    }
    if (fg == 0 && !p->o.keep_empty) {
      p->dropped++;
      continue;
    }
    samx_take_slice(vi, &g, p->o.axis, at, p->h, p->w, pad, plane);
    SamxSample s = {.image = plane, .masks = mask, .case_id = case_id, .labels = cls,
                    .spacing = {(float)g.spacing[ra], (float)g.spacing[ca]}};
    rc = samx_dataset_append(p->wr, &s);
    p->slices++;
  }
  p->cases++;
  free(vi), free(vl), free(plane), free(lplane), free(cls), free(mask);
  return rc;
}

int samx_volume_packer_finish(SamxVolumePacker *p, const char *what) {
  int rc = 0;
  if (p->slices == 0) rc = samx_fail("%s: no slice holds a selected label; nothing to pack", what);
  if (rc == 0 && p->o.n_ids == 0) {
    // Without --label-ids every value that occurs is its own class, named label_<value>.
    int top = 0;
    for (int v = 1; v < 256; v++)
      if (p->seen[v]) top = v;
    const char *names[256];
    char bufs[256][32];
    names[0] = "background";
    for (int v = 1; v <= top; v++) snprintf(bufs[v], sizeof bufs[v], "label_%d", v), names[v] = bufs[v];
    rc = samx_dataset_writer_label_names(p->wr, names, top + 1);
  }
  if (rc == 0) rc = samx_dataset_writer_split_by_case(p->wr, p->o.ratios, p->o.seed);
  if (rc == 0) {
    rc = samx_dataset_finish(p->wr);
    if (rc == 0)
      printf("packed %lld %s slices of %lld cases (%lldx%lld, %lld empty slices dropped) from %s\n",
             (long long)p->slices, samx_axis_name(p->o.axis), (long long)p->cases, (long long)p->h, (long long)p->w,
             (long long)p->dropped, what);
  } else {
    samx_dataset_abort(p->wr);
  }
  free(p);
  return rc;
}

void samx_volume_packer_abort(SamxVolumePacker *p) {
  if (!p) return;
  samx_dataset_abort(p->wr);
  free(p);
}

// ---- NIfTI folders ----

typedef struct {
  char **names;
  size_t n, cap;
} Names;

static int is_nifti(const char *name) {
  size_t n = strlen(name);
  return (n > 4 && !strcmp(name + n - 4, ".nii")) || (n > 7 && !strcmp(name + n - 7, ".nii.gz"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_nifti(const char *dir, Names *l) {
  DIR *d = opendir(dir);
  if (!d) return samx_fail("%s: cannot open folder", dir);
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.' && is_nifti(de->d_name)) {
      if (l->n == l->cap) l->cap = l->cap ? 2 * l->cap : 64, l->names = realloc(l->names, l->cap * sizeof(char *));
      l->names[l->n++] = strdup(de->d_name);
    }
  closedir(d);
  qsort(l->names, l->n, sizeof(char *), cmp_str);
  return 0;
}

// Case id: the file name without .nii(.gz) and without the MSD/nnU-Net channel suffix _0000.
static void case_of(const char *name, char *id, size_t n) {
  snprintf(id, n, "%s", name);
  char *dot = strstr(id, ".nii");
  if (dot) *dot = 0;
  size_t len = strlen(id);
  if (len > 5 && id[len - 5] == '_' && !strcmp(id + len - 4, "0000")) id[len - 5] = 0;
}

// The label file of a case: same case id in the labels folder.
static const char *label_for(const Names *labels, const char *id) {
  char other[1024];
  for (size_t i = 0; i < labels->n; i++) {
    case_of(labels->names[i], other, sizeof other);
    if (!strcmp(other, id)) return labels->names[i];
  }
  return NULL;
}

static int read_case(const char *path, SamxVolume *v, SamxAffine *a) {
  if (samx_nifti_affine(path, a) != 0) return -1;
  return samx_nifti_read(path, v);
}

int samx_pack_volumes(const char *images, const char *labels, const char *out, const SamxVolumeOptions *o) {
  Names li = {0}, ll = {0};
  int rc = list_nifti(images, &li);
  if (rc == 0) rc = list_nifti(labels, &ll);
  if (rc == 0 && li.n == 0) rc = samx_fail("%s: no .nii or .nii.gz files", images);
  // First pass over headers: every image has a label file, and the slice size is the largest in-plane
  // extent of all cases (unless o->size fixes it).
  int64_t h = o->size, w = o->size;
  char id[1024], ipath[8192], lpath[8192];
  for (size_t i = 0; i < li.n && rc == 0; i++) {
    case_of(li.names[i], id, sizeof id);
    const char *lab = label_for(&ll, id);
    snprintf(ipath, sizeof ipath, "%s/%s", images, li.names[i]);
    if (!lab) {
      rc = samx_fail("%s: no label file for case %s in %s", ipath, id, labels);
      break;
    }
    SamxAffine a;
    int64_t dim[4];
    rc = samx_nifti_affine(ipath, &a);
    if (rc == 0) rc = samx_nifti_dims(ipath, dim);
    if (rc == 0 && o->size == 0) {
      SamxGrid g;
      int64_t rows, cols;
      samx_world_grid(dim, &a, o->spacing, &g);
      samx_slice_shape(&g, o->axis, &rows, &cols, NULL, NULL);
      h = rows > h ? rows : h, w = cols > w ? cols : w;
    }
  }
  SamxVolumePacker *p = NULL;
  if (rc == 0) {
    char source[4200];
    snprintf(source, sizeof source, "NIfTI volumes %s with labels %s", images, labels);
    p = samx_volume_packer_create(out, o, h, w, source);
    if (!p) rc = -1;
  }
  for (size_t i = 0; i < li.n && rc == 0; i++) {
    case_of(li.names[i], id, sizeof id);
    snprintf(ipath, sizeof ipath, "%s/%s", images, li.names[i]);
    snprintf(lpath, sizeof lpath, "%s/%s", labels, label_for(&ll, id));
    SamxVolume vi = {0}, vl = {0};
    SamxAffine ai, al;
    rc = read_case(ipath, &vi, &ai);
    if (rc == 0) rc = read_case(lpath, &vl, &al);
    if (rc == 0) rc = samx_volume_packer_add(p, &vi, &ai, ipath, &vl, &al, lpath, id);
    samx_volume_free(&vi), samx_volume_free(&vl);
    if (rc == 0) printf("  case %zu/%zu %s\n", i + 1, li.n, id), fflush(stdout);
  }
  if (rc == 0) rc = samx_volume_packer_finish(p, images);
  else samx_volume_packer_abort(p);
  for (size_t i = 0; i < li.n; i++) free(li.names[i]);
  for (size_t i = 0; i < ll.n; i++) free(ll.names[i]);
  free(li.names), free(ll.names);
  return rc;
}
