// samx pack folder: generic 2-D image + mask folders (BUSI, CVC-ClinicDB, ISIC and alike).
//
// Every PNG/JPEG/TIFF under the folder (recursively) is either a mask or an image. A file is a mask
// when its stem ends in _mask, _mask_<n>, _segmentation or _Segmentation, or when it lies under a
// folder named masks, mask, ground truth, groundtruth, gt, labels or annotations. Masks and images
// meet on a key: the relative path with those mask/image folder names (images, image, original,
// imgs) and the mask suffix removed. So BUSI's benign/x.png + benign/x_mask.png + benign/x_mask_1.png,
// CVC's Original/1.tif + Ground Truth/1.tif and ISIC's images/I.jpg + masks/I_segmentation.png all
// pair up, and the key (unique by construction) is the case id.
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/packers.h"
#include "engine/error.h"

typedef struct {
  char *path;  // full path
  char *key;   // matching key
  int is_mask;
} Entry;

typedef struct {
  Entry *e;
  size_t n, cap;
} EntryList;

static int has_image_ext(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  static const char *exts[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff"};
  for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
    if (!strcasecmp(dot, exts[i])) return 1;
  return 0;
}

static int dir_is_one_of(const char *name, const char *const *names) {
  for (; *names; names++)
    if (!strcasecmp(name, *names)) return 1;
  return 0;
}

static const char *const MASK_DIRS[] = {"masks", "mask", "ground truth", "groundtruth", "gt", "labels", "annotations", NULL};
static const char *const IMAGE_DIRS[] = {"images", "image", "original", "imgs", NULL};

// Strips a mask suffix from stem in place; returns 1 when there was one.
static int strip_mask_suffix(char *stem) {
  static const char *suffixes[] = {"_segmentation", "_Segmentation", "_mask"};
  char *u = strrchr(stem, '_');
  // _mask_<n>
  if (u && u[1] && strspn(u + 1, "0123456789") == strlen(u + 1)) {
    char *before = u - 5;
    if (before >= stem && !strncmp(before, "_mask", 5)) {
      *before = 0;
      return 1;
    }
  }
  size_t n = strlen(stem);
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    size_t m = strlen(suffixes[i]);
    if (n > m && !strcmp(stem + n - m, suffixes[i])) {
      stem[n - m] = 0;
      return 1;
    }
  }
  return 0;
}

// Builds the key and mask flag of relative path rel (components separated by '/').
static void classify(const char *rel, Entry *e) {
  char *copy = strdup(rel), *key = (char *)calloc(strlen(rel) + 1, 1);
  int in_mask_dir = 0;
  char *save = NULL, *part = strtok_r(copy, "/", &save), *next;
  for (; part; part = next) {
    next = strtok_r(NULL, "/", &save);
    if (!next) {  // the file name
      char *dot = strrchr(part, '.');
      if (dot) *dot = 0;
      int suffix = strip_mask_suffix(part);
      e->is_mask = in_mask_dir || suffix;
      strcat(key, part);
    } else if (dir_is_one_of(part, MASK_DIRS)) {
      in_mask_dir = 1;
    } else if (!dir_is_one_of(part, IMAGE_DIRS)) {
      strcat(key, part);
      strcat(key, "/");
    }
  }
  free(copy);
  e->key = key;
}

// Identity of a file or folder reached while walking (symlinks followed).
typedef struct {
  dev_t dev;
  ino_t ino;
  char *path;
} Seen;

typedef struct {
  Seen *dirs;  // the folders from the root down to the current one: a loop leads back to one of them
  int n_dirs;
  Seen *files;  // every image file listed: the same file reached twice would be packed twice
  size_t n_files, cap_files;
} Walk;

static int seen_file(Walk *w, const struct stat *st, const char *path) {
  for (size_t i = 0; i < w->n_files; i++)
    if (w->files[i].dev == st->st_dev && w->files[i].ino == st->st_ino)
      return samx_fail("%s and %s are the same file (a symlink or hard link): it would be packed twice, as two "
                       "cases that may land in different splits; remove one",
                       w->files[i].path, path);
  if (w->n_files == w->cap_files)
    w->cap_files = w->cap_files ? 2 * w->cap_files : 256, w->files = realloc(w->files, w->cap_files * sizeof(Seen));
  w->files[w->n_files++] = (Seen){st->st_dev, st->st_ino, strdup(path)};
  return 0;
}

static int list_files(const char *root, const char *rel, EntryList *out, Walk *w) {
  char path[4096];
  snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
  struct stat self;
  if (stat(path, &self) != 0) return 0;
  for (int i = 0; i < w->n_dirs; i++)
    if (w->dirs[i].dev == self.st_dev && w->dirs[i].ino == self.st_ino)
      return samx_fail("%s: symlink loop (this folder is %s again); remove the link", path, w->dirs[i].path);
  DIR *d = opendir(path);
  if (!d) return 0;
  w->dirs = realloc(w->dirs, (size_t)(w->n_dirs + 1) * sizeof(Seen));
  w->dirs[w->n_dirs++] = (Seen){self.st_dev, self.st_ino, strdup(path)};
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char sub[4096], full[8192];
    snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
    snprintf(full, sizeof full, "%s/%s", root, sub);
    struct stat st;
    if (stat(full, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      rc = list_files(root, sub, out, w);
    } else if (has_image_ext(de->d_name)) {
      if ((rc = seen_file(w, &st, full)) != 0) break;
      if (out->n == out->cap) out->cap = out->cap ? 2 * out->cap : 256, out->e = realloc(out->e, out->cap * sizeof(Entry));
      Entry *e = &out->e[out->n++];
      e->path = strdup(full);
      classify(sub, e);
    }
  }
  closedir(d);
  free(w->dirs[--w->n_dirs].path);
  return rc;
}

// Images first by key, each followed by its masks in path order (x_mask before x_mask_1).
static int cmp_entry(const void *a, const void *b) {
  const Entry *x = (const Entry *)a, *y = (const Entry *)b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  if (x->is_mask != y->is_mask) return x->is_mask - y->is_mask;
  size_t lx = strlen(x->path), ly = strlen(y->path);
  return lx != ly ? (lx > ly) - (lx < ly) : strcmp(x->path, y->path);
}

typedef struct {
  size_t image;     // index of the image entry
  size_t mask0, k;  // its masks: entries mask0 .. mask0+k-1
} Group;

// Reads a mask and checks its size against the image's. Masks are two-valued, {0, 255} (PNG
// convention) or {0, 1}; any other value (JPEG artefacts, label maps) is an error naming the pixel
// unless `binarize`, which thresholds at half the 8-bit range.
static int load_mask(const char *path, int64_t w, int64_t h, int64_t size, int binarize, uint8_t *out) {
  SamxImage m;
  if (samx_image_read(path, &m) != 0) return -1;
  if (m.w != w || m.h != h) {
    int64_t mw = m.w, mh = m.h;  // samx_image_free zeroes them
    samx_image_free(&m);
    return samx_fail("%s: mask is %lldx%lld but its image is %lldx%lld", path, (long long)mw, (long long)mh,
                     (long long)w, (long long)h);
  }
  samx_image_to_channels(&m, 1);
  int has_255 = 0, has_1 = 0;
  for (int64_t j = 0; j < m.w * m.h; j++) {
    uint8_t v = m.data[j];
    has_255 |= v == 255, has_1 |= v == 1;
    if (!binarize && v != 0 && v != 1 && v != 255) {
      int64_t x = j % m.w, y = j / m.w;
      samx_image_free(&m);
      return samx_fail("%s: mask pixel (%lld, %lld) has value %u; masks hold 0/1 or 0/255 (HINT: --binarize "
                       "thresholds at 128)", path, (long long)y, (long long)x, v);
    }
  }
  if (!binarize && has_255 && has_1) {
    samx_image_free(&m);
    return samx_fail("%s: mask mixes the values 1 and 255 (HINT: --binarize thresholds at 128)", path);
  }
  uint8_t threshold = binarize || has_255 ? 128 : 1;
  if (size) samx_image_resize(&m, size, size, 1);
  for (int64_t j = 0; j < m.w * m.h; j++) out[j] = m.data[j] >= threshold;
  samx_image_free(&m);
  return 0;
}

static int pack_groups(const EntryList *list, const Group *g, size_t n_groups, int64_t k_max, int channels, int64_t w,
                       int64_t h, const char *dir, const char *out, const SamxFolderOptions *o) {
  char source[4200];
  snprintf(source, sizeof source, "folder %s", dir);
  SamxDatasetSpec spec = {.h = h, .w = w, .k = k_max, .channels = channels, .dtype = SAMX_IMAGE_U8, .source = source,
                          .modality = o->modality ? o->modality : "unknown"};
  SamxDatasetWriter *wr = samx_dataset_create(out, &spec);
  if (!wr) return -1;
  size_t hw = (size_t)(w * h);
  uint8_t *masks = (uint8_t *)malloc(hw * (size_t)k_max), *valid = (uint8_t *)malloc((size_t)k_max);
  int rc = 0;
  for (size_t i = 0; i < n_groups && rc == 0; i++) {
    SamxImage img;
    rc = samx_image_read(list->e[g[i].image].path, &img);
    if (rc != 0) break;
    int64_t w0 = img.w, h0 = img.h;
    samx_image_to_channels(&img, channels);
    if (o->size) samx_image_resize(&img, o->size, o->size, 0);
    if (img.w != w || img.h != h)
      rc = samx_fail("%s: image is %lldx%lld but the first one is %lldx%lld (use --size S to resize all)",
                     list->e[g[i].image].path, (long long)img.w, (long long)img.h, (long long)w, (long long)h);
    memset(masks, 0, hw * (size_t)k_max);
    for (int64_t k = 0; k < k_max && rc == 0; k++) {
      valid[k] = k < (int64_t)g[i].k;
      if (valid[k]) rc = load_mask(list->e[g[i].mask0 + k].path, w0, h0, o->size, o->binarize, masks + k * hw);
    }
    SamxSample s = {.image = img.data, .masks = masks, .annotator_valid = valid, .case_id = list->e[g[i].image].key};
    if (rc == 0) rc = samx_dataset_append(wr, &s);
    samx_image_free(&img);
  }
  free(masks);
  free(valid);
  if (rc == 0) rc = samx_dataset_writer_split_by_case(wr, o->ratios, o->seed);
  if (rc != 0) {
    samx_dataset_abort(wr);
    return -1;
  }
  return samx_dataset_finish(wr);
}

// Pairs each image with the masks of the same key; returns the number of pairs.
static size_t group_entries(EntryList *list, Group *g, int64_t *k_max, size_t *orphans) {
  qsort(list->e, list->n, sizeof *list->e, cmp_entry);
  size_t n_groups = 0;
  *k_max = 0, *orphans = 0;
  for (size_t i = 0; i < list->n;) {
    size_t j = i;
    while (j < list->n && !strcmp(list->e[j].key, list->e[i].key) && !list->e[j].is_mask) j++;
    size_t images = j - i, m0 = j;
    while (j < list->n && !strcmp(list->e[j].key, list->e[i].key)) j++;
    if (images == 1 && j > m0) {
      g[n_groups++] = (Group){i, m0, j - m0};
      *k_max = (int64_t)(j - m0) > *k_max ? (int64_t)(j - m0) : *k_max;
    } else if (images > 0) {
      *orphans += images;
    }
    i = j;
  }
  return n_groups;
}

// Keys without folders, for layouts whose image and mask folders have arbitrary names (ISIC's
// ..._Training_Input and ..._Training_GroundTruth).
static void keys_to_stems(EntryList *list) {
  for (size_t i = 0; i < list->n; i++) {
    char *slash = strrchr(list->e[i].key, '/');
    if (slash) memmove(list->e[i].key, slash + 1, strlen(slash + 1) + 1);
  }
}

int samx_pack_folder(const char *dir, const char *out, const SamxFolderOptions *o) {
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return samx_fail("%s: not a folder", dir);
  EntryList list = {0};
  Walk walk = {0};
  int walked = list_files(dir, "", &list, &walk);
  for (size_t i = 0; i < walk.n_files; i++) free(walk.files[i].path);
  for (int i = 0; i < walk.n_dirs; i++) free(walk.dirs[i].path);
  free(walk.files), free(walk.dirs);
  if (walked != 0) {
    for (size_t i = 0; i < list.n; i++) free(list.e[i].path), free(list.e[i].key);
    free(list.e);
    return -1;
  }
  Group *g = (Group *)calloc(list.n + 1, sizeof *g);
  size_t orphans;
  int64_t k_max;
  size_t n_groups = group_entries(&list, g, &k_max, &orphans);
  if (n_groups == 0) {
    keys_to_stems(&list);
    n_groups = group_entries(&list, g, &k_max, &orphans);
  }
  int rc;
  if (n_groups == 0) {
    rc = samx_fail("%s: found %zu image files but no image with a mask (see samx pack --help for the layouts)", dir,
                   list.n);
  } else {
    if (orphans) fprintf(stderr, "samx pack folder: %zu images without a mask (or sharing a name) skipped\n", orphans);
    // Size and channels: from --size, else the first image; RGB if any image is RGB.
    int channels = 1;
    int64_t w = o->size, h = o->size;
    rc = 0;
    for (size_t i = 0; i < n_groups && rc == 0; i++) {
      SamxImage img;
      rc = samx_image_read(list.e[g[i].image].path, &img);
      if (rc == 0 && !o->size && i == 0) w = img.w, h = img.h;
      if (rc == 0 && img.channels == 3) channels = 3;
      samx_image_free(&img);
    }
    if (rc == 0) rc = pack_groups(&list, g, n_groups, k_max, channels, w, h, dir, out, o);
    if (rc == 0) printf("packed %zu images with up to %lld masks each from %s\n", n_groups, (long long)k_max, dir);
  }
  for (size_t i = 0; i < list.n; i++) free(list.e[i].path), free(list.e[i].key);
  free(list.e);
  free(g);
  return rc;
}
