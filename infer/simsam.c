// SimSAM's click simulation and image-level aggregation (see simsam.h).
#include "simsam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"

SamxSimsamOpts samx_simsam_defaults(void) {
  SamxSimsamOpts o = {.k = 50, .clicks = SAMX_SIMSAM_TOPK, .aggregate = SAMX_SIMSAM_IOU, .raw_mask_prompt = 0, .seed = 0};
  return o;
}

int samx_simsam_clicks_parse(const char *s, SamxSimsamClicks *out) {
  if (!strcmp(s, "topk")) *out = SAMX_SIMSAM_TOPK;
  else if (!strcmp(s, "sample")) *out = SAMX_SIMSAM_SAMPLE;
  else if (!strcmp(s, "random")) *out = SAMX_SIMSAM_RANDOM;
  else return -1;
  return 0;
}

int samx_simsam_aggregate_parse(const char *s, SamxSimsamAggregate *out) {
  if (!strcmp(s, "iou")) *out = SAMX_SIMSAM_IOU;
  else if (!strcmp(s, "pixel")) *out = SAMX_SIMSAM_PIXEL;
  else return -1;
  return 0;
}

// ---- top-K by key: a min-heap of the K best (key, index) pairs seen so far ----

typedef struct {
  double key;
  int64_t idx;
} Keyed;

// a ranks below b: smaller key, or the same key and a higher index (ties go to the lower index).
static int worse(Keyed a, Keyed b) { return a.key < b.key || (a.key == b.key && a.idx > b.idx); }

static void sift_down(Keyed *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && worse(h[l], h[m])) m = l;
    if (r < n && worse(h[r], h[m])) m = r;
    if (m == i) return;
    Keyed t = h[i];
    h[i] = h[m], h[m] = t, i = m;
  }
}

static int best_first(const void *a, const void *b) {
  Keyed x = *(const Keyed *)a, y = *(const Keyed *)b;
  return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

// Draw key of pixel i. TOPK: -|logit| (e = sigmoid(-|logit|) is decreasing in |logit|, and this
// avoids the sigmoid's saturation). SAMPLE / RANDOM: Efraimidis-Spirakis keys log(u) / weight, whose
// K largest are a weighted sample without replacement (weight e, or 1 for uniform).
static double click_key(const float *logits, int64_t i, const SamxSimsamOpts *o, uint64_t image_key) {
  double l = fabs((double)logits[i]);
  if (o->clicks == SAMX_SIMSAM_TOPK) return -l;
  double u = ((double)(samx_hash4(o->seed, image_key, (uint64_t)i, 0x51c) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  if (o->clicks == SAMX_SIMSAM_RANDOM) return log(u);
  double e = 1.0 / (1.0 + exp(l));
  return e > 0 ? log(u) / e : -INFINITY;
}

int samx_simsam_clicks(const float *logits, int64_t npix, const SamxSimsamOpts *o, uint64_t image_key, int64_t *idx) {
  int k = o->k < npix ? o->k : (int)npix;
  if (k <= 0) return 0;
  Keyed *heap = (Keyed *)malloc(sizeof(Keyed) * (size_t)k);
  int n = 0;
  for (int64_t i = 0; i < npix; i++) {
    Keyed c = {click_key(logits, i, o, image_key), i};
    if (n < k) {
      heap[n++] = c;
      if (n == k)
        for (int j = k / 2 - 1; j >= 0; j--) sift_down(heap, k, j);
    } else if (worse(heap[0], c)) {
      heap[0] = c;
      sift_down(heap, k, 0);
    }
  }
  qsort(heap, (size_t)n, sizeof(Keyed), best_first);
  for (int j = 0; j < n; j++) idx[j] = heap[j].idx;
  free(heap);
  return n;
}

void samx_simsam_mask_prompt(const float *low_res, int64_t n, int raw, float *out) {
  for (int64_t i = 0; i < n; i++) out[i] = raw ? low_res[i] : (low_res[i] > 0 ? 1.0f : 0.0f);
}

void samx_pack_mask_bits(const float *logits, int64_t npix, uint64_t *bits) {
  int64_t words = (npix + 63) / 64;
  memset(bits, 0, sizeof(uint64_t) * (size_t)words);
  for (int64_t i = 0; i < npix; i++)
    if (logits[i] > 0) bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

static int64_t popcount_and(const uint64_t *a, const uint64_t *b, int64_t words) {
  int64_t n = 0;
  for (int64_t i = 0; i < words; i++) n += __builtin_popcountll(a[i] & b[i]);
  return n;
}

int samx_simsam_choose(const uint64_t *bits, int k, int64_t words64, double *iou, double *row_mean) {
  int64_t *count = (int64_t *)malloc(sizeof(int64_t) * (size_t)k);
  double *m = (double *)malloc(sizeof(double) * (size_t)k * k);
  for (int i = 0; i < k; i++) count[i] = popcount_and(bits + i * words64, bits + i * words64, words64);
  for (int i = 0; i < k; i++)
    for (int j = i; j < k; j++) {
      int64_t inter = popcount_and(bits + i * words64, bits + j * words64, words64);
      int64_t uni = count[i] + count[j] - inter;
      m[i * k + j] = m[j * k + i] = uni > 0 ? (double)inter / (double)uni : 0.0;  // NaN -> 0
    }
  int best = 0;
  double best_mean = -1;
  for (int i = 0; i < k; i++) {
    double s = 0;
    for (int j = 0; j < k; j++) s += m[i * k + j];
    s /= k;
    if (row_mean) row_mean[i] = s;
    if (s > best_mean) best_mean = s, best = i;
  }
  if (iou) memcpy(iou, m, sizeof(double) * (size_t)k * k);
  free(m);
  free(count);
  return best;
}
