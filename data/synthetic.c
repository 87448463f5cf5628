#include "data/synthetic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/rng.h"

#define SYNTH_VERSION "samx-synthetic v1"

// Hash streams: what each random draw is for, so draws never collide across uses.
enum { R_BODY = 1, R_LESION, R_HARMONIC, R_NOISE, R_TEXTURE, R_RATER, R_MISS, R_RATER_STYLE };

SamxSyntheticParams samx_synthetic_defaults(void) { return (SamxSyntheticParams){256, 128, 4, 8, 0}; }

static double draw(const SamxSyntheticParams *p, uint64_t stream, uint64_t a, uint64_t b, double lo, double hi) {
  return lo + (hi - lo) * samx_unit(samx_hash4(p->seed, stream, a, b));
}

// Value noise: random values on a lattice of cell px, smoothly interpolated; roughly in [-1, 1].
static double value_noise(const SamxSyntheticParams *p, uint64_t sample, uint64_t octave, double x, double y,
                          double cell) {
  double fx = x / cell, fy = y / cell;
  int64_t ix = (int64_t)floor(fx), iy = (int64_t)floor(fy);
  double tx = fx - (double)ix, ty = fy - (double)iy;
  tx = tx * tx * (3 - 2 * tx), ty = ty * ty * (3 - 2 * ty);
  double v[2][2];
  for (int dy = 0; dy < 2; dy++)
    for (int dx = 0; dx < 2; dx++) {
      uint64_t lattice = (uint64_t)(ix + dx + 1024) * 4096 + (uint64_t)(iy + dy + 1024);
      v[dy][dx] = 2 * samx_unit(samx_hash4(p->seed, R_NOISE + 16 * octave, sample, lattice)) - 1;
    }
  double top = v[0][0] + (v[0][1] - v[0][0]) * tx, bottom = v[1][0] + (v[1][1] - v[1][0]) * tx;
  return top + (bottom - top) * ty;
}

// A lesion outline: r(theta) = radius * (1 + sum_h amp_h cos(h theta + phase_h)).
#define N_HARMONICS 5
typedef struct {
  double cx, cy, radius, softness, contrast;
  double amp[N_HARMONICS], phase[N_HARMONICS];
} Lesion;

static double outline(const Lesion *l, double theta) {
  double s = 1;
  for (int h = 0; h < N_HARMONICS; h++) s += l->amp[h] * cos((h + 2) * theta + l->phase[h]);
  return l->radius * s;
}

// How much of pixel (x, y) is lesion, in [0, 1], for an outline scaled by (1 + wobble(theta)).
static double lesion_membership(const Lesion *l, double x, double y, const Lesion *wobble) {
  double dx = x - l->cx, dy = y - l->cy, theta = atan2(dy, dx);
  double r = outline(l, theta);
  if (wobble) r *= 1 + (outline(wobble, theta) - wobble->radius);
  return 1 / (1 + exp((sqrt(dx * dx + dy * dy) - r) / l->softness));
}

typedef struct {
  double bx, by, ax, ay;  // body ellipse
  Lesion lesion;          // this slice's cut through the case's lesion
  double lesion_scale;    // this slice's lesion radius / the case's largest
} Slice;

static Slice make_slice(const SamxSyntheticParams *p, int64_t i) {
  double s = (double)p->size;
  uint64_t c = (uint64_t)(i / p->slices_per_case);
  double z = ((double)(i % p->slices_per_case) + 0.5) / (double)p->slices_per_case * 2 - 1;  // (-1, 1) through the case
  Slice sl;
  sl.bx = s * draw(p, R_BODY, c, 0, 0.46, 0.54);
  sl.by = s * draw(p, R_BODY, c, 1, 0.46, 0.54);
  sl.ax = s * draw(p, R_BODY, c, 2, 0.38, 0.46);
  sl.ay = s * draw(p, R_BODY, c, 3, 0.28, 0.36);
  Lesion *l = &sl.lesion;
  // Inside the body, away from its rim; drifting a little from slice to slice.
  double ang = draw(p, R_LESION, c, 0, 0, 2 * M_PI), rad = draw(p, R_LESION, c, 1, 0, 0.5);
  l->cx = sl.bx + rad * sl.ax * cos(ang) + z * s * draw(p, R_LESION, c, 2, -0.02, 0.02);
  l->cy = sl.by + rad * sl.ay * sin(ang) + z * s * draw(p, R_LESION, c, 3, -0.02, 0.02);
  sl.lesion_scale = sqrt(1 - 0.85 * z * z);  // a roughly spherical lesion cut at height z
  l->radius = s * draw(p, R_LESION, c, 4, 0.05, 0.12) * sl.lesion_scale;
  l->softness = draw(p, R_LESION, c, 5, 1.5, 4.0) * s / 128;
  l->contrast = draw(p, R_LESION, c, 6, 45, 85);
  for (int h = 0; h < N_HARMONICS; h++) {
    l->amp[h] = draw(p, R_HARMONIC, c, (uint64_t)h, 0, 0.12 / (h + 1));
    l->phase[h] = draw(p, R_HARMONIC, c, (uint64_t)(h + 16), 0, 2 * M_PI);
  }
  return sl;
}

static void render_image(const SamxSyntheticParams *p, int64_t i, const Slice *sl, uint8_t *image) {
  int64_t s = p->size;
  double cell = (double)s / 8;
  for (int64_t y = 0; y < s; y++)
    for (int64_t x = 0; x < s; x++) {
      double ex = (x - sl->bx) / sl->ax, ey = (y - sl->by) / sl->ay, e = sqrt(ex * ex + ey * ey);
      double smooth = value_noise(p, (uint64_t)i, 0, x, y, cell) + 0.5 * value_noise(p, (uint64_t)i, 1, x, y, cell / 2);
      double grain = draw(p, R_TEXTURE, (uint64_t)i, (uint64_t)(y * s + x), -1, 1);
      double v;
      if (e > 1) {
        v = 10 + 4 * grain;  // air
      } else {
        double tissue = e > 0.9 ? 70 : 100;  // a darker fat rim under the skin
        // A bright spine-like structure at the back of the body.
        double sx = (x - sl->bx) / (0.12 * sl->ax), sy = (y - (sl->by + 0.7 * sl->ay)) / (0.12 * sl->ay);
        if (sx * sx + sy * sy < 1) tissue = 210;
        double m = lesion_membership(&sl->lesion, (double)x, (double)y, NULL);
        v = tissue + 14 * smooth + 7 * grain + sl->lesion.contrast * m * (1 + 0.12 * smooth);
      }
      image[y * s + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
    }
}

// Annotator k's style: membership threshold, outline wobble amplitude, chance of marking nothing.
typedef struct {
  double threshold, jitter, miss;
} Rater;

static Rater rater_style(const SamxSyntheticParams *p, int64_t k) {
  static const Rater styles[4] = {{0.78, 0.02, 0.0}, {0.18, 0.03, 0.0}, {0.5, 0.16, 0.0}, {0.5, 0.05, 0.3}};
  Rater r = styles[k % 4];
  if (k >= 4) {  // later raters: same style, their own habits
    r.threshold += draw(p, R_RATER_STYLE, (uint64_t)k, 0, -0.08, 0.08);
    r.jitter *= draw(p, R_RATER_STYLE, (uint64_t)k, 1, 0.7, 1.4);
  }
  return r;
}

static void render_masks(const SamxSyntheticParams *p, int64_t i, const Slice *sl, uint8_t *masks) {
  int64_t s = p->size;
  for (int64_t k = 0; k < p->k; k++) {
    uint8_t *m = masks + k * s * s;
    Rater r = rater_style(p, k);
    // Small cuts through a lesion get missed twice as often.
    double miss = r.miss * (sl->lesion_scale < 0.7 ? 2 : 1);
    if (draw(p, R_MISS, (uint64_t)i, (uint64_t)k, 0, 1) < miss) {
      memset(m, 0, (size_t)(s * s));
      continue;
    }
    // This rater's wobble for this slice: an outline whose deviation from its radius scales r(theta).
    Lesion wobble = {0};
    wobble.radius = 1;
    for (int h = 0; h < N_HARMONICS; h++) {
      wobble.amp[h] = r.jitter * draw(p, R_RATER, (uint64_t)i, (uint64_t)(k * 64 + h), -1, 1) / 1.5;
      wobble.phase[h] = draw(p, R_RATER, (uint64_t)i, (uint64_t)(k * 64 + 32 + h), 0, 2 * M_PI);
    }
    for (int64_t y = 0; y < s; y++)
      for (int64_t x = 0; x < s; x++)
        m[y * s + x] = lesion_membership(&sl->lesion, (double)x, (double)y, &wobble) > r.threshold;
  }
}

void samx_synthetic_sample(const SamxSyntheticParams *p, int64_t i, uint8_t *image, uint8_t *masks) {
  Slice sl = make_slice(p, i);
  render_image(p, i, &sl, image);
  render_masks(p, i, &sl, masks);
}

int samx_pack_synthetic(const char *out, const SamxSyntheticParams *p) {
  SamxDatasetSpec spec = {.h = p->size, .w = p->size, .k = p->k, .channels = 1, .dtype = SAMX_IMAGE_U8,
                          .source = SYNTH_VERSION " (samx pack synthetic)", .modality = "synthetic"};
  SamxDatasetWriter *w = samx_dataset_create(out, &spec);
  if (!w) return -1;
  int rc = samx_dataset_writer_attr_string(w, "generator", SYNTH_VERSION);
  rc |= samx_dataset_writer_attr_int(w, "generator_seed", (int64_t)p->seed);
  rc |= samx_dataset_writer_attr_int(w, "generator_n", p->n);
  rc |= samx_dataset_writer_attr_int(w, "generator_size", p->size);
  rc |= samx_dataset_writer_attr_int(w, "generator_annotators", p->k);
  rc |= samx_dataset_writer_attr_int(w, "generator_slices_per_case", p->slices_per_case);
  size_t hw = (size_t)(p->size * p->size);
  uint8_t *image = (uint8_t *)malloc(hw), *masks = (uint8_t *)malloc(hw * (size_t)p->k);
  for (int64_t i = 0; i < p->n && rc == 0; i++) {
    samx_synthetic_sample(p, i, image, masks);
    char case_id[64];
    snprintf(case_id, sizeof case_id, "synth-%05lld", (long long)(i / p->slices_per_case));
    SamxSample s = {.image = image, .masks = masks, .split = SAMX_SPLIT_TRAIN, .case_id = case_id,
                    .spacing = {0.7f, 0.7f}};
    rc = samx_dataset_append(w, &s);
  }
  free(image);
  free(masks);
  double ratios[3] = {0.7, 0.15, 0.15};
  if (rc == 0) rc = samx_dataset_writer_split_by_case(w, ratios, p->seed);
  if (rc != 0) {
    samx_dataset_abort(w);
    return -1;
  }
  return samx_dataset_finish(w);
}
