// samx pack lidc-crops: LIDC crops as PNG folders, the split kept from the folder names:
//   DIR/{train,val,test}/images/<patient>/z-<pos>_c<k>.png
//   DIR/{train,val,test}/gt/<patient>/z-<pos>_c<k>_l{0..3}.png   (the four readers' masks)
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/packers.h"
#include "engine/error.h"

enum { LIDC_READERS = 4 };

typedef struct {
  char **s;
  size_t n, cap;
} Names;

static void names_free(Names *n) {
  for (size_t i = 0; i < n->n; i++) free(n->s[i]);
  free(n->s);
  memset(n, 0, sizeof *n);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted entries of dir: sub-folders (want_dirs) or .png files.
static void list_dir(const char *dir, int want_dirs, Names *out) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char full[8704];
    snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(full, &st) != 0) continue;
    size_t len = strlen(de->d_name);
    int ok = want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && len > 4 && !strcasecmp(de->d_name + len - 4, ".png");
    if (!ok) continue;
    if (out->n == out->cap) out->cap = out->cap ? 2 * out->cap : 64, out->s = realloc(out->s, out->cap * sizeof(char *));
    out->s[out->n++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(out->s, out->n, sizeof *out->s, cmp_str);
}

typedef struct {
  SamxDatasetWriter *w;
  int64_t size;  // H = W of the first image; all must agree
  uint8_t *masks;
  int64_t missing;  // reader masks not found (annotator_valid = 0)
} LidcPack;

static int read_grey(const char *path, int64_t want, SamxImage *img) {
  if (samx_image_read(path, img) != 0) return -1;
  samx_image_to_channels(img, 1);
  if (img->w != want || img->h != want) {
    int rc = samx_fail("%s: image is %lldx%lld, the crops are %lldx%lld", path, (long long)img->w, (long long)img->h,
                       (long long)want, (long long)want);
    samx_image_free(img);
    return rc;
  }
  return 0;
}

static int pack_slice(LidcPack *p, const char *split_dir, int split, const char *patient, const char *file) {
  char path[8192], stem[4096];
  snprintf(stem, sizeof stem, "%s", file);
  stem[strlen(stem) - 4] = 0;  // drop ".png"
  snprintf(path, sizeof path, "%s/images/%s/%s", split_dir, patient, file);
  SamxImage img;
  if (read_grey(path, p->size, &img) != 0) return -1;
  size_t hw = (size_t)(p->size * p->size);
  uint8_t valid[LIDC_READERS];
  int rc = 0;
  for (int k = 0; k < LIDC_READERS && rc == 0; k++) {
    snprintf(path, sizeof path, "%s/gt/%s/%s_l%d.png", split_dir, patient, stem, k);
    valid[k] = access(path, F_OK) == 0;
    memset(p->masks + k * hw, 0, hw);
    if (!valid[k]) {
      p->missing++;
      continue;
    }
    SamxImage m;
    rc = read_grey(path, p->size, &m);
    if (rc == 0) memcpy(p->masks + k * hw, m.data, hw), samx_image_free(&m);
  }
  SamxSample s = {.image = img.data, .masks = p->masks, .annotator_valid = valid, .split = split, .case_id = patient};
  if (rc == 0) rc = samx_dataset_append(p->w, &s);
  samx_image_free(&img);
  return rc;
}

// Calls fn(p, split_dir, split, patient, file) for every image, in sorted order; stops at the first error.
static int each_image(const char *dir, LidcPack *p,
                      int (*fn)(LidcPack *, const char *, int, const char *, const char *), int64_t *count) {
  int rc = 0;
  *count = 0;
  for (int s = 0; s < SAMX_SPLIT_COUNT && rc == 0; s++) {
    char split_dir[4200], images_dir[4300];
    snprintf(split_dir, sizeof split_dir, "%s/%s", dir, samx_split_name(s));
    snprintf(images_dir, sizeof images_dir, "%s/images", split_dir);
    Names patients = {0};
    list_dir(images_dir, 1, &patients);
    for (size_t i = 0; i < patients.n && rc == 0; i++) {
      char patient_dir[8192];
      snprintf(patient_dir, sizeof patient_dir, "%s/%s", images_dir, patients.s[i]);
      Names files = {0};
      list_dir(patient_dir, 0, &files);
      for (size_t j = 0; j < files.n && rc == 0; j++, (*count)++) rc = fn(p, split_dir, s, patients.s[i], files.s[j]);
      names_free(&files);
    }
    names_free(&patients);
  }
  return rc;
}

// First pass: the crop size, from the first image (returns 1 to stop the walk there).
static int probe_size(LidcPack *p, const char *split_dir, int split, const char *patient, const char *file) {
  char path[8192];
  snprintf(path, sizeof path, "%s/images/%s/%s", split_dir, patient, file);
  SamxImage img;
  if (samx_image_read(path, &img) != 0) return -1;
  int square = img.w == img.h;
  p->size = img.w;
  samx_image_free(&img);
  return square ? 1 : samx_fail("%s: LIDC crops must be square", path);
}

int samx_pack_lidc_crops(const char *dir, const char *out) {
  LidcPack p = {0};
  int64_t count;
  int rc = each_image(dir, &p, probe_size, &count);
  if (rc < 0) return -1;
  if (rc == 0)
    return samx_fail("%s: no images found under {train,val,test}/images/<patient>/*.png", dir);
  char source[4200];
  snprintf(source, sizeof source, "LIDC crops (%s)", dir);
  SamxDatasetSpec spec = {.h = p.size, .w = p.size, .k = LIDC_READERS, .channels = 1, .dtype = SAMX_IMAGE_U8,
                          .source = source, .modality = "CT"};
  p.w = samx_dataset_create(out, &spec);
  if (!p.w) return -1;
  p.masks = (uint8_t *)malloc((size_t)(LIDC_READERS * p.size * p.size));
  rc = samx_dataset_writer_attr_string(p.w, "split_method", "the source's train/val/test folders");
  if (rc == 0) rc = each_image(dir, &p, pack_slice, &count);
  free(p.masks);
  if (rc != 0) {
    samx_dataset_abort(p.w);
    return -1;
  }
  if (p.missing) fprintf(stderr, "samx pack lidc-crops: %lld reader masks missing (marked annotator_valid = 0)\n", (long long)p.missing);
  printf("packed %lld LIDC crops of %lldx%lld from %s\n", (long long)count, (long long)p.size, (long long)p.size, dir);
  return samx_dataset_finish(p.w);
}
