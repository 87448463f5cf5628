// samx pack qubiq: QUBIQ challenge folders, DIR/Training/caseNN/image.nii.gz with one
// taskTT_segMM.nii.gz per rater MM, and the helpers shared by the medical packers.
//
// Orientation: a 2-D NIfTI image of nx x ny becomes an nx-row, ny-column sample, as nibabel's
// get_fdata() array of the file (what Python users of these datasets see).
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/packers.h"
#include "engine/error.h"

// ---- shared by the medical packers ----

SamxMedicalOptions samx_medical_defaults(void) {
  SamxMedicalOptions o = {.ratios = {0.7, 0.15, 0.15}, .intensity = {SAMX_INTENSITY_PERCENTILE, 0.5, 99.5},
                          .task = 1, .brats_modality = "t1", .axis = 2};
  return o;
}

int samx_mask_from_values(const float *v, size_t n, int binarize, uint8_t *out, size_t *bad) {
  for (size_t i = 0; i < n; i++) {
    if (binarize) {
      out[i] = v[i] >= 0.5f;
    } else if (v[i] == 0 || v[i] == 1) {
      out[i] = v[i] == 1;
    } else {
      *bad = i;
      return -1;
    }
  }
  return 0;
}

SamxDatasetWriter *samx_medical_create(const char *out, const SamxMedicalOptions *o, int64_t h, int64_t w, int64_t k,
                                       const char *source, const char *modality) {
  SamxDatasetSpec spec = {.h = o->size ? o->size : h, .w = o->size ? o->size : w, .k = k, .channels = 1,
                          .dtype = o->store_u8 ? SAMX_IMAGE_U8 : SAMX_IMAGE_F32, .source = source,
                          .modality = o->modality ? o->modality : modality, .display_attr = "value_range",
                          .display_lo = 0, .display_hi = 1};
  SamxDatasetWriter *wr = samx_dataset_create(out, &spec);
  if (!wr) return NULL;
  char text[256];
  samx_intensity_describe(&o->intensity, text, sizeof text);
  static const char *const modes[] = {"percentile", "window", "clip"};
  float params[2] = {(float)o->intensity.a, (float)o->intensity.b};
  int rc = samx_dataset_writer_attr_string(wr, "intensity", text);
  rc |= samx_dataset_writer_attr_string(wr, "intensity_mode", modes[o->intensity.mode]);
  rc |= samx_dataset_writer_attr_double(wr, "intensity_a", params[0]);
  rc |= samx_dataset_writer_attr_double(wr, "intensity_b", params[1]);
  rc |= samx_dataset_writer_attr_string(wr, "intensity_storage", o->store_u8 ? "uint8 round(255 v)" : "float32 [0,1]");
  if (o->binarize) rc |= samx_dataset_writer_attr_string(wr, "masks_binarized", "value >= 0.5");
  if (o->size) rc |= samx_dataset_writer_attr_int(wr, "resized_to", o->size);
  if (rc) {
    samx_fail("%s: cannot write the intensity attributes", out);
    samx_dataset_abort(wr);
    return NULL;
  }
  return wr;
}

int samx_medical_append(SamxDatasetWriter *wr, const SamxMedicalOptions *o, const float *image, int64_t h, int64_t w,
                        int64_t k, const uint8_t *masks, const uint8_t *valid, const char *case_id,
                        const double spacing[2]) {
  int64_t oh = o->size ? o->size : h, ow = o->size ? o->size : w;
  size_t ohw = (size_t)(oh * ow), hw = (size_t)(h * w);
  float *img = (float *)malloc(ohw * sizeof(float)), *mf = (float *)malloc(hw * sizeof(float)),
        *mr = (float *)malloc(ohw * sizeof(float));
  uint8_t *img8 = (uint8_t *)malloc(ohw), *m = (uint8_t *)malloc(ohw * (size_t)k);
  samx_resize_f32(image, w, h, 1, img, ow, oh, 0);
  for (size_t j = 0; j < ohw; j++) img8[j] = (uint8_t)lrintf(255.0f * img[j]);
  for (int64_t a = 0; a < k; a++) {
    for (size_t j = 0; j < hw; j++) mf[j] = masks[(size_t)a * hw + j];
    samx_resize_f32(mf, w, h, 1, mr, ow, oh, 1);
    for (size_t j = 0; j < ohw; j++) m[(size_t)a * ohw + j] = mr[j] != 0;
  }
  SamxSample s = {.image = o->store_u8 ? (const void *)img8 : (const void *)img, .masks = m, .annotator_valid = valid,
                  .case_id = case_id,
                  .spacing = {(float)(spacing[0] * (double)h / (double)oh), (float)(spacing[1] * (double)w / (double)ow)}};
  int rc = samx_dataset_append(wr, &s);
  free(img), free(mf), free(mr), free(img8), free(m);
  return rc;
}

// ---- QUBIQ ----

typedef struct {
  char *dir, *name;  // case folder and its name
  char *image;       // image.nii.gz path
  int n_raters;
  int rater[64];     // rater numbers, sorted
  char *seg[64];     // their files
} QubiqCase;

typedef struct {
  QubiqCase *c;
  size_t n, cap;
} QubiqCases;

static void cases_free(QubiqCases *cs) {
  for (size_t i = 0; i < cs->n; i++) {
    free(cs->c[i].dir), free(cs->c[i].name), free(cs->c[i].image);
    for (int r = 0; r < cs->c[i].n_raters; r++) free(cs->c[i].seg[r]);
  }
  free(cs->c);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const QubiqCase *)a)->name, ((const QubiqCase *)b)->name);
}

static int is_nifti(const char *name) {
  size_t n = strlen(name);
  return (n > 4 && !strcmp(name + n - 4, ".nii")) || (n > 7 && !strcmp(name + n - 7, ".nii.gz"));
}

// Fills c from the files of one case folder; returns 0 (c->image NULL when the folder holds no NIfTI)
// or -1 for a folder with segmentations but no image, or the reverse.
static int scan_case(const char *dir, const char *name, int task, QubiqCase *c) {
  memset(c, 0, sizeof *c);
  c->dir = strdup(dir), c->name = strdup(name);
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  int any_nifti = 0, rc = 0;
  while ((de = readdir(d)) && rc == 0) {
    if (!is_nifti(de->d_name)) continue;
    any_nifti = 1;
    char path[8448];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    int t, r, used = 0;
    if (!strncmp(de->d_name, "image.nii", 9)) {
      free(c->image);
      c->image = strdup(path);
    } else if (sscanf(de->d_name, "task%d_seg%d.nii%n", &t, &r, &used) == 2 && used > 0 && t == task) {
      if (c->n_raters == 64) rc = samx_fail("%s: more than 64 raters", dir);
      // insertion by rater number
      int at = c->n_raters++;
      while (at > 0 && c->rater[at - 1] > r) c->rater[at] = c->rater[at - 1], c->seg[at] = c->seg[at - 1], at--;
      c->rater[at] = r, c->seg[at] = strdup(path);
    }
  }
  closedir(d);
  if (rc == 0 && any_nifti && !c->image)
    rc = samx_fail("%s: case folder has segmentations but no image.nii.gz (is the case split across folders?)", dir);
  if (rc == 0 && c->image && c->n_raters == 0)
    rc = samx_fail("%s: case folder has image.nii.gz but no task%02d_seg*.nii.gz (see --task)", dir, task);
  return rc;
}

static int list_cases(const char *dir, int task, QubiqCases *cs) {
  char root[4200];
  struct stat st;
  snprintf(root, sizeof root, "%s/Training", dir);
  if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(root, sizeof root, "%s", dir);
  DIR *d = opendir(root);
  if (!d) return samx_fail("%s: cannot open folder", root);
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) && rc == 0) {
    if (de->d_name[0] == '.') continue;
    char sub[8192];
    snprintf(sub, sizeof sub, "%s/%s", root, de->d_name);
    if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (cs->n == cs->cap) cs->cap = cs->cap ? 2 * cs->cap : 64, cs->c = realloc(cs->c, cs->cap * sizeof *cs->c);
    rc = scan_case(sub, de->d_name, task, &cs->c[cs->n]);
    if (cs->c[cs->n].image || rc) cs->n++;
    else free(cs->c[cs->n].dir), free(cs->c[cs->n].name);
  }
  closedir(d);
  if (rc == 0 && cs->n == 0)
    rc = samx_fail("%s: no case folders with image.nii.gz and task%02d_seg*.nii.gz found", root, task);
  qsort(cs->c, cs->n, sizeof *cs->c, cmp_name);
  return rc;
}

// Rater numbers over all cases, sorted and distinct: slot k of the dataset is rater number slots[k].
static int rater_slots(const QubiqCases *cs, int *slots) {
  int n = 0;
  for (size_t i = 0; i < cs->n; i++)
    for (int r = 0; r < cs->c[i].n_raters; r++) {
      int v = cs->c[i].rater[r], at = 0;
      while (at < n && slots[at] < v) at++;
      if (at < n && slots[at] == v) continue;
      if (n == 64) return n;
      memmove(slots + at + 1, slots + at, (size_t)(n - at) * sizeof *slots);
      slots[at] = v, n++;
    }
  return n;
}

// Channel `channel` of a 2-D (possibly multi-channel) image as nx rows x ny columns.
static int image_plane(const SamxVolume *v, const char *path, int channel, float *out) {
  int64_t nx = v->dim[0], ny = v->dim[1], nc = v->dim[2] * v->dim[3];
  if (channel >= nc)
    return samx_fail("%s: image has %lld channel(s), --channel %d asked", path, (long long)nc, channel);
  const float *p = v->data + (size_t)channel * (size_t)(nx * ny);
  for (int64_t x = 0; x < nx; x++)
    for (int64_t y = 0; y < ny; y++) {
      float f = p[x + nx * y];
      if (!isfinite(f))
        return samx_fail("%s: image holds %s at voxel (%lld, %lld)", path, isnan(f) ? "NaN" : "Inf", (long long)x,
                         (long long)y);
      out[x * ny + y] = f;
    }
  return 0;
}

static int read_mask(const char *path, int64_t nx, int64_t ny, int binarize, uint8_t *out) {
  SamxVolume v;
  if (samx_nifti_read(path, &v) != 0) return -1;
  int rc = 0;
  if (v.dim[0] != nx || v.dim[1] != ny || v.dim[2] * v.dim[3] != 1) {
    rc = samx_fail("%s: segmentation is %lldx%lldx%lld, its image %lldx%lld", path, (long long)v.dim[0],
                   (long long)v.dim[1], (long long)(v.dim[2] * v.dim[3]), (long long)nx, (long long)ny);
  } else {
    float *t = (float *)malloc((size_t)(nx * ny) * sizeof(float));
    for (int64_t x = 0; x < nx; x++)
      for (int64_t y = 0; y < ny; y++) t[x * ny + y] = v.data[x + nx * y];
    size_t bad;
    if (samx_mask_from_values(t, (size_t)(nx * ny), binarize, out, &bad) != 0)
      rc = samx_fail("%s: segmentation holds %g at voxel (%zu, %zu); masks must be 0/1 (--binarize thresholds at 0.5)",
                     path, t[bad], bad / (size_t)ny, bad % (size_t)ny);
    free(t);
  }
  samx_volume_free(&v);
  return rc;
}

static int pack_case(SamxDatasetWriter *wr, const QubiqCase *c, const int *slots, int k, int64_t h0, int64_t w0,
                     const SamxMedicalOptions *o) {
  SamxVolume v;
  if (samx_nifti_read(c->image, &v) != 0) return -1;
  int64_t nx = v.dim[0], ny = v.dim[1];
  int rc = 0;
  if (!o->size && (nx != h0 || ny != w0))
    rc = samx_fail("%s: image is %lldx%lld but the first case's is %lldx%lld (use --size S to resize all)", c->image,
                   (long long)nx, (long long)ny, (long long)h0, (long long)w0);
  size_t hw = (size_t)(nx * ny);
  float *img = (float *)malloc(hw * sizeof(float));
  uint8_t *masks = (uint8_t *)calloc(hw * (size_t)k, 1), valid[64] = {0};
  if (rc == 0) rc = image_plane(&v, c->image, o->channel, img);
  for (int r = 0; r < c->n_raters && rc == 0; r++) {
    int slot = 0;
    while (slots[slot] != c->rater[r]) slot++;
    valid[slot] = 1;
    rc = read_mask(c->seg[r], nx, ny, o->binarize, masks + (size_t)slot * hw);
  }
  if (rc == 0) {
    double lo, hi, spacing[2] = {v.spacing[0], v.spacing[1]};
    samx_intensity_range(&o->intensity, img, hw, &lo, &hi);
    samx_intensity_apply(img, hw, lo, hi);
    rc = samx_medical_append(wr, o, img, nx, ny, k, masks, valid, c->name, spacing);
  }
  free(img);
  free(masks);
  samx_volume_free(&v);
  return rc;
}

int samx_pack_qubiq(const char *dir, const char *out, const SamxMedicalOptions *o) {
  QubiqCases cs = {0};
  int rc = list_cases(dir, o->task, &cs);
  int slots[64], k = rc == 0 ? rater_slots(&cs, slots) : 0;
  SamxVolume first = {0};
  if (rc == 0) rc = samx_nifti_read(cs.c[0].image, &first);
  SamxDatasetWriter *wr = NULL;
  if (rc == 0) {
    char source[4200];
    snprintf(source, sizeof source, "QUBIQ task %02d (%s)", o->task, dir);
    wr = samx_medical_create(out, o, first.dim[0], first.dim[1], k, source, "unknown");
    rc = wr ? 0 : -1;
  }
  if (rc == 0) rc = samx_dataset_writer_attr_int(wr, "qubiq_task", o->task);
  if (rc == 0) rc = samx_dataset_writer_attr_int(wr, "qubiq_channel", o->channel);
  for (size_t i = 0; i < cs.n && rc == 0; i++) rc = pack_case(wr, &cs.c[i], slots, k, first.dim[0], first.dim[1], o);
  if (rc == 0) rc = samx_dataset_writer_split_by_case(wr, o->ratios, o->seed);
  if (rc == 0) {
    rc = samx_dataset_finish(wr);
    if (rc == 0) printf("packed %zu QUBIQ cases with %d raters from %s\n", cs.n, k, dir);
  } else if (wr) {
    samx_dataset_abort(wr);
  }
  samx_volume_free(&first);
  cases_free(&cs);
  return rc;
}
