// samx pack brats: BraTS 2017-style volumes, DIR/.../<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz, into
// 2-D slices along one axis with the three nested tumour regions as K = 3 "annotators" (as P²SAM):
//   k = 0 enhancing tumour (label 4) ⊂ k = 1 tumour core (1, 4) ⊂ k = 2 whole tumour (1, 2, 4).
// Slices without tumour are dropped unless asked. A slice of axis a keeps the other two axes in
// order as rows and columns (axial, a = 2: x rows, y columns, as nibabel's img[:, :, z]).
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/packers.h"
#include "engine/error.h"

enum { BRATS_K = 3 };

typedef struct {
  char *path, *dir, *name;
} NiftiFile;

typedef struct {
  NiftiFile *f;
  size_t n, cap;
} NiftiList;

static void list_free(NiftiList *l) {
  for (size_t i = 0; i < l->n; i++) free(l->f[i].path), free(l->f[i].dir), free(l->f[i].name);
  free(l->f);
}

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const NiftiFile *)a)->path, ((const NiftiFile *)b)->path);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

static void walk(const char *dir, NiftiList *l) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      walk(path, l);
    } else if (ends_with(de->d_name, ".nii.gz") || ends_with(de->d_name, ".nii")) {
      if (l->n == l->cap) l->cap = l->cap ? 2 * l->cap : 256, l->f = realloc(l->f, l->cap * sizeof *l->f);
      l->f[l->n++] = (NiftiFile){strdup(path), strdup(dir), strdup(de->d_name)};
    }
  }
  closedir(d);
}

// The case's file with this suffix ("seg", "t1" ...): in the seg file's folder, else an error that
// names where it is (a case split across folders) or that it is missing.
static const NiftiFile *find_part(const NiftiList *l, const NiftiFile *seg, const char *id, const char *part) {
  char want_gz[1024], want[1024];
  snprintf(want_gz, sizeof want_gz, "%s_%s.nii.gz", id, part);
  snprintf(want, sizeof want, "%s_%s.nii", id, part);
  const NiftiFile *elsewhere = NULL;
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->f[i].name, want_gz) && strcmp(l->f[i].name, want)) continue;
    if (!strcmp(l->f[i].dir, seg->dir)) return &l->f[i];
    elsewhere = &l->f[i];
  }
  if (elsewhere)
    samx_fail("%s: case %s is split across folders: its %s file is in %s (keep each case's files in one folder)",
              seg->path, id, part, elsewhere->dir);
  else
    samx_fail("%s: case %s has no %s next to it (%s)", seg->path, id, part, want_gz);
  return NULL;
}

// Every case id once: a second <case>_seg file in another folder is the same case split in two.
static int check_unique(const NiftiList *l) {
  for (size_t i = 0; i < l->n; i++) {
    if (!ends_with(l->f[i].name, "_seg.nii.gz") && !ends_with(l->f[i].name, "_seg.nii")) continue;
    for (size_t j = i + 1; j < l->n; j++)
      if (!strcmp(l->f[i].name, l->f[j].name))
        return samx_fail("%s and %s: case is split across folders (the same case in two places)", l->f[i].path,
                         l->f[j].path);
  }
  return 0;
}

typedef struct {
  int64_t rows, cols, n;      // slice size and count along the axis
  int64_t stride[3];          // element strides of x, y, z
  int r, c;                   // the row and column axes
} Slicing;

static Slicing slicing(const SamxVolume *v, int axis) {
  Slicing s;
  s.stride[0] = 1, s.stride[1] = v->dim[0], s.stride[2] = v->dim[0] * v->dim[1];
  s.r = axis == 0 ? 1 : 0, s.c = axis == 2 ? 1 : 2;
  s.rows = v->dim[s.r], s.cols = v->dim[s.c], s.n = v->dim[axis];
  return s;
}

static void take_slice(const SamxVolume *v, const Slicing *s, int axis, int64_t at, float *out) {
  for (int64_t i = 0; i < s->rows; i++)
    for (int64_t j = 0; j < s->cols; j++)
      out[i * s->cols + j] = v->data[at * s->stride[axis] + i * s->stride[s->r] + j * s->stride[s->c]];
}

static int check_volume(const SamxVolume *img, const char *img_path, const SamxVolume *seg, const char *seg_path) {
  if (img->dim[3] != 1) return samx_fail("%s: a 4-D volume; BraTS modalities are 3-D", img_path);
  for (int a = 0; a < 4; a++)
    if (img->dim[a] != seg->dim[a])
      return samx_fail("%s: segmentation is %lldx%lldx%lld, its image %s is %lldx%lldx%lld", seg_path,
                       (long long)seg->dim[0], (long long)seg->dim[1], (long long)seg->dim[2], img_path,
                       (long long)img->dim[0], (long long)img->dim[1], (long long)img->dim[2]);
  int64_t nx = img->dim[0], ny = img->dim[1];
  size_t n = (size_t)(nx * ny * img->dim[2]);
  for (size_t i = 0; i < n; i++) {
    float f = img->data[i], l = seg->data[i];
    const char *bad_path = NULL;
    if (!isfinite(f)) bad_path = img_path;
    else if (!(l == 0 || l == 1 || l == 2 || l == 4)) bad_path = seg_path;
    if (bad_path) {
      long long x = (long long)(i % (size_t)nx), y = (long long)(i / (size_t)nx % (size_t)ny), z = (long long)(i / (size_t)(nx * ny));
      if (bad_path == img_path) return samx_fail("%s: holds %s at voxel (%lld, %lld, %lld)", img_path, isnan(f) ? "NaN" : "Inf", x, y, z);
      return samx_fail("%s: holds label %g at voxel (%lld, %lld, %lld); BraTS labels are 0, 1, 2 and 4", seg_path, l, x,
                       y, z);
    }
  }
  return 0;
}

// Labels to the nested regions; returns the whole tumour's voxel count.
static int64_t regions(const float *labels, size_t hw, uint8_t *masks) {
  int64_t whole = 0;
  for (size_t j = 0; j < hw; j++) {
    int l = (int)labels[j];
    masks[j] = l == 4;
    masks[hw + j] = l == 1 || l == 4;
    masks[2 * hw + j] = l != 0;
    whole += l != 0;
  }
  return whole;
}

typedef struct {
  SamxDatasetWriter *wr;
  int64_t rows, cols;  // slice size of the first case; all must agree unless resized
  int64_t slices, dropped;
} BratsPack;

static int pack_case(BratsPack *p, const char *id, const char *img_path, const char *seg_path, const SamxMedicalOptions *o) {
  SamxVolume img, seg;
  if (samx_nifti_read(img_path, &img) != 0) return -1;
  if (samx_nifti_read(seg_path, &seg) != 0) {
    samx_volume_free(&img);
    return -1;
  }
  int rc = check_volume(&img, img_path, &seg, seg_path);
  Slicing s = slicing(&img, o->axis);
  if (rc == 0 && !o->size && (s.rows != p->rows || s.cols != p->cols))
    rc = samx_fail("%s: slices are %lldx%lld but the first case's are %lldx%lld (use --size S to resize all)", img_path,
                   (long long)s.rows, (long long)s.cols, (long long)p->rows, (long long)p->cols);
  size_t hw = (size_t)(s.rows * s.cols);
  float *plane = (float *)malloc(hw * sizeof(float)), *labels = (float *)malloc(hw * sizeof(float));
  uint8_t *masks = (uint8_t *)malloc(hw * BRATS_K);
  double lo = 0, hi = 1, spacing[2] = {img.spacing[s.r], img.spacing[s.c]};
  if (rc == 0) samx_intensity_range(&o->intensity, img.data, (size_t)(img.dim[0] * img.dim[1] * img.dim[2]), &lo, &hi);
  for (int64_t at = 0; at < s.n && rc == 0; at++) {
    take_slice(&seg, &s, o->axis, at, labels);
    if (regions(labels, hw, masks) == 0 && !o->keep_empty) {
      p->dropped++;
      continue;
    }
    take_slice(&img, &s, o->axis, at, plane);
    samx_intensity_apply(plane, hw, lo, hi);
    rc = samx_medical_append(p->wr, o, plane, s.rows, s.cols, BRATS_K, masks, NULL, id, spacing);
    p->slices++;
  }
  free(plane), free(labels), free(masks);
  samx_volume_free(&img);
  samx_volume_free(&seg);
  return rc;
}

static int first_slice_size(const char *path, int axis, BratsPack *p) {
  SamxVolume v;
  if (samx_nifti_read(path, &v) != 0) return -1;
  Slicing s = slicing(&v, axis);
  p->rows = s.rows, p->cols = s.cols;
  samx_volume_free(&v);
  return 0;
}

int samx_pack_brats(const char *dir, const char *out, const SamxMedicalOptions *o) {
  SAMX_ASSERT(o->axis >= 0 && o->axis <= 2, "brats: slice axis %d", o->axis);
  const char *modality = o->brats_modality ? o->brats_modality : "t1";
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return samx_fail("%s: not a folder", dir);
  NiftiList l = {0};
  walk(dir, &l);
  qsort(l.f, l.n, sizeof *l.f, cmp_file);
  int rc = check_unique(&l);
  // The cases: every <case>_seg file, in path order.
  size_t n_cases = 0;
  for (size_t i = 0; i < l.n && rc == 0; i++) {
    if (!ends_with(l.f[i].name, "_seg.nii.gz") && !ends_with(l.f[i].name, "_seg.nii")) continue;
    char id[1024];
    snprintf(id, sizeof id, "%.*s", (int)(strstr(l.f[i].name, "_seg.nii") - l.f[i].name), l.f[i].name);
    if (!find_part(&l, &l.f[i], id, modality)) rc = -1;
    n_cases++;
  }
  if (rc == 0 && n_cases == 0) rc = samx_fail("%s: no <case>_seg.nii.gz files found (BraTS layout)", dir);
  BratsPack p = {0};
  for (size_t i = 0; i < l.n && rc == 0; i++) {
    if (!ends_with(l.f[i].name, "_seg.nii.gz") && !ends_with(l.f[i].name, "_seg.nii")) continue;
    char id[1024];
    snprintf(id, sizeof id, "%.*s", (int)(strstr(l.f[i].name, "_seg.nii") - l.f[i].name), l.f[i].name);
    const NiftiFile *img = find_part(&l, &l.f[i], id, modality);
    if (!p.wr) {
      char source[4200];
      snprintf(source, sizeof source, "BraTS %s, axis %d (%s)", modality, o->axis, dir);
      rc = first_slice_size(img->path, o->axis, &p);
      if (rc == 0) p.wr = samx_medical_create(out, o, p.rows, p.cols, BRATS_K, source, "MR");
      if (rc == 0 && !p.wr) rc = -1;
      if (rc == 0)
        rc = samx_dataset_writer_attr_string(p.wr, "annotators",
                                             "k0 enhancing tumour (label 4), k1 tumour core (labels 1, 4), k2 whole "
                                             "tumour (labels 1, 2, 4)");
      if (rc == 0) rc = samx_dataset_writer_attr_string(p.wr, "brats_modality", modality);
      if (rc == 0) rc = samx_dataset_writer_attr_int(p.wr, "slice_axis", o->axis);
      if (rc == 0) rc = samx_dataset_writer_attr_int(p.wr, "empty_slices_dropped", !o->keep_empty);
    }
    if (rc == 0) rc = pack_case(&p, id, img->path, l.f[i].path, o);
  }
  if (rc == 0 && p.slices == 0) rc = samx_fail("%s: every slice is empty (no tumour labels); nothing to pack", dir);
  if (rc == 0) rc = samx_dataset_writer_split_by_case(p.wr, o->ratios, o->seed);
  if (rc == 0) {
    rc = samx_dataset_finish(p.wr);
    if (rc == 0)
      printf("packed %lld slices of %zu BraTS cases (%lld empty slices dropped) from %s\n", (long long)p.slices, n_cases,
             (long long)p.dropped, dir);
  } else if (p.wr) {
    samx_dataset_abort(p.wr);
  }
  list_free(&l);
  return rc;
}
