// SQA-SAM (infer/sqa.h, infer/infer.h).
// 1. Objects: components, boxes and the EDT-maximum point against brute force on random masks.
// 2. Ranking: perturbed ground truths of known quality (eroded, dilated, shifted, with holes, with
//    spurious blobs) scored with an ideal stand-in for SAM (a point returns the true component under
//    it, a box the truth inside it): the score must fall as each perturbation grows, and it must
//    correlate with the true Dice (reported). A random-weight SAM cannot rank anything, so this is
//    where the scoring rule itself is tested.
// 3. The driver on the golden tiny SAM: its quality equals the score computed here from one
//    sam_decode per prompt through the public SAM API (point: multimask, best predicted IoU; box:
//    single mask), plain mean and area-weighted, and an empty segmentation gives NaN.
#include <stdlib.h>
#include <string.h>

#include "../eval/eval_test_util.h"
#include "../harness.h"
#include "../test_util.h"
#include "eval/components.h"
#include "eval/stats.h"
#include "infer/infer.h"
#include "models/sam/sam_image.h"

static SamxDevice device;

// ---- 1. objects ----

static void test_objects(void) {
  uint64_t rng = 7;
  int64_t h = 23, w = 31;
  uint8_t m[23 * 31];
  int checked = 0;
  for (int trial = 0; trial < 40; trial++) {
    test_random_mask(&rng, m, h, w, 0.1);
    SamxSqaOpts o = samx_sqa_defaults();
    SamxSqaObjects s;
    CHECK(samx_sqa_objects(m, 1, h, w, &o, &s) == 0, "objects");
    int32_t lab[23 * 31];
    CHECK(s.n == samx_label_components(m, h, w, 8, lab), "trial %d: %d objects", trial, s.n);
    for (int i = 0; i < s.n; i++) {
      const SamxSqaObject *ob = &s.obj[i];
      // Brute force: box, and the object pixel with the largest distance to a non-object pixel (those
      // beyond the image border included), first in row-major order.
      int64_t x0 = w, y0 = h, x1 = -1, y1 = -1, area = 0, best = -1;
      double bd = -1;
      for (int64_t p = 0; p < h * w; p++) {
        if (s.labels[p] != ob->label) continue;
        int64_t y = p / w, x = p % w;
        area++, x0 = x < x0 ? x : x0, y0 = y < y0 ? y : y0, x1 = x > x1 ? x : x1, y1 = y > y1 ? y : y1;
        double d = (double)(x + 1 < y + 1 ? x + 1 : y + 1);
        d = fmin(d, fmin((double)(w - x), (double)(h - y)));
        for (int64_t q = 0; q < h * w; q++)
          if (s.labels[q] != ob->label) d = fmin(d, hypot((double)(q / w - y), (double)(q % w - x)));
        if (d > bd) bd = d, best = p;
      }
      CHECK(ob->area == area && ob->box[0] == x0 && ob->box[1] == y0 && ob->box[2] == x1 && ob->box[3] == y1,
            "trial %d object %d: area/box", trial, i);
      CHECK(ob->point[0] == best % w && ob->point[1] == best / w, "trial %d object %d: point (%g,%g), brute force (%lld,%lld)",
            trial, i, ob->point[0], ob->point[1], (long long)(best % w), (long long)(best / w));
      checked++;
    }
    samx_sqa_objects_free(&s);
  }
  // 4- vs 8-connectivity, and the centroid option: two diagonal pixels and a 3x3 block on the border
  // (the EDT point stays off the border: outside the image is background).
  uint8_t d[6 * 6] = {0};
  d[0] = d[7] = 1;
  for (int y = 3; y < 6; y++)
    for (int x = 3; x < 6; x++) d[y * 6 + x] = 1;
  SamxSqaOpts o = samx_sqa_defaults();
  SamxSqaObjects s8, s4;
  samx_sqa_objects(d, 1, 6, 6, &o, &s8);
  o.connectivity = 4, o.centroid = 0;
  SamxSqaObjects e4;
  samx_sqa_objects(d, 1, 6, 6, &o, &e4);
  CHECK(e4.n == 3 && e4.obj[2].point[0] == 4 && e4.obj[2].point[1] == 4, "3x3 block on the border: EDT point (%g,%g), want (4,4)",
        e4.obj[2].point[0], e4.obj[2].point[1]);
  samx_sqa_objects_free(&e4);
  o.connectivity = 4, o.centroid = 1;
  samx_sqa_objects(d, 1, 6, 6, &o, &s4);
  CHECK(s8.n == 2 && s4.n == 3, "diagonal pixels: %d objects at 8-connectivity (want 2), %d at 4 (want 3)", s8.n, s4.n);
  CHECK(s4.obj[2].point[0] == 4 && s4.obj[2].point[1] == 4 && s8.obj[1].point[0] == 4 && s8.obj[1].point[1] == 4 &&
            s4.obj[0].point[0] == 0 && s8.obj[0].point[0] == 0 && s8.obj[0].point[1] == 0,
        "3x3 block: centre (4,4); diagonal pair: first pixel (0,0)");
  samx_sqa_objects_free(&s8), samx_sqa_objects_free(&s4);
  printf("objects: %d checked against brute force (box, area, EDT point)\n", checked);
}

// ---- 2. ranking with an ideal SAM ----

#define S 96

static void disc(uint8_t *m, double cy, double cx, double r, int value) {
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++)
      if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r) m[y * S + x] = (uint8_t)value;
}

// Morphology with a (2r+1)^2 square: erode (want 1) or dilate (want 0).
static void morph(const uint8_t *in, uint8_t *out, int r, int dilate) {
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int v = !dilate;
      for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
          int yy = y + dy, xx = x + dx, on = yy >= 0 && yy < S && xx >= 0 && xx < S && in[yy * S + xx];
          v = dilate ? v | on : v & on;
        }
      out[y * S + x] = (uint8_t)v;
    }
}

// The ideal SAM: a point gives the true component under it (nothing off the object), a box the truth
// inside it.
static double ideal_score(const uint8_t *truth, const uint8_t *seg, int area_weighted) {
  SamxSqaOpts o = samx_sqa_defaults();
  o.area_weighted = area_weighted;
  SamxSqaObjects s;
  samx_sqa_objects(seg, 1, S, S, &o, &s);
  int32_t lab[S * S];
  samx_label_components(truth, S, S, 8, lab);
  double *score = (double *)malloc(sizeof(double) * ((size_t)s.n + 1));
  uint8_t pm[S * S], bm[S * S];
  for (int i = 0; i < s.n; i++) {
    const SamxSqaObject *ob = &s.obj[i];
    int32_t under = lab[(int)ob->point[1] * S + (int)ob->point[0]];
    for (int p = 0; p < S * S; p++) {
      int y = p / S, x = p % S;
      pm[p] = under && lab[p] == under;
      bm[p] = truth[p] && x >= ob->box[0] && x <= ob->box[2] && y >= ob->box[1] && y <= ob->box[3];
    }
    score[i] = 0.5 * (samx_sqa_object_dice(&s, i, pm) + samx_sqa_object_dice(&s, i, bm));
  }
  double q = samx_sqa_image_score(&s, score, area_weighted);
  free(score);
  samx_sqa_objects_free(&s);
  return q;
}

static double true_dice(const uint8_t *a, const uint8_t *b) {
  int64_t ia = 0, ib = 0, both = 0;
  for (int p = 0; p < S * S; p++) ia += a[p], ib += b[p], both += a[p] && b[p];
  return ia + ib ? 2.0 * both / (ia + ib) : 1.0;
}

static void test_ranking(void) {
  uint8_t truth[S * S] = {0};
  disc(truth, 40, 44, 22, 1);
  disc(truth, 66, 62, 12, 1);  // a second lobe: one non-convex object
  enum { FAMILIES = 5, LEVELS = 4 };
  const char *family[FAMILIES] = {"eroded", "dilated", "shifted", "holes", "spurious blobs"};
  double score[FAMILIES][LEVELS], dice[FAMILIES][LEVELS], all_s[FAMILIES * LEVELS + 1], all_d[FAMILIES * LEVELS + 1];
  double all_w[FAMILIES * LEVELS + 1];
  int n = 0;
  all_s[n] = ideal_score(truth, truth, 0), all_w[n] = ideal_score(truth, truth, 1), all_d[n] = 1, n++;
  CHECK(fabs(all_s[0] - 1) < 1e-12, "the truth itself must score 1, got %g", all_s[0]);
  for (int f = 0; f < FAMILIES; f++)
    for (int l = 0; l < LEVELS; l++) {
      uint8_t seg[S * S];
      int r = 1 + 2 * l;
      if (f == 0) morph(truth, seg, r, 0);
      else if (f == 1) morph(truth, seg, r, 1);
      else if (f == 2) {
        memset(seg, 0, sizeof seg);
        for (int p = 0; p < S * S; p++)
          if (p % S + 2 * r < S && truth[p]) seg[p + 2 * r] = 1;  // shifted right by 2r
      } else if (f == 3) {
        memcpy(seg, truth, sizeof seg);
        for (int k = 0; k <= l; k++) disc(seg, 32 + 8 * (k % 2), 30 + 9 * k, 4, 0);
      } else {
        memcpy(seg, truth, sizeof seg);
        for (int k = 0; k <= l; k++) disc(seg, 8 + 20 * k, 86, 3, 1);
      }
      score[f][l] = ideal_score(truth, seg, 0), dice[f][l] = true_dice(seg, truth);
      all_s[n] = score[f][l], all_w[n] = ideal_score(truth, seg, 1), all_d[n] = dice[f][l], n++;
    }
  for (int f = 0; f < FAMILIES; f++) {
    int ordered = 1;
    for (int l = 1; l < LEVELS; l++) ordered &= score[f][l] < score[f][l - 1] && dice[f][l] < dice[f][l - 1];
    CHECK(ordered, "%s: scores %.3f %.3f %.3f %.3f must fall with the perturbation", family[f], score[f][0], score[f][1],
          score[f][2], score[f][3]);
    printf("sqa %-15s score %.3f %.3f %.3f %.3f   true dice %.3f %.3f %.3f %.3f\n", family[f], score[f][0], score[f][1],
           score[f][2], score[f][3], dice[f][0], dice[f][1], dice[f][2], dice[f][3]);
  }
  // Over all families the plain mean correlates only weakly: one small spurious blob halves the score
  // while the true Dice barely moves (the paper's rule counts objects, not pixels). The area-weighted
  // option follows the true Dice closely.
  double pearson = samx_pearson(all_s, all_d, n), spearman = samx_spearman(all_s, all_d, n);
  double pearson_w = samx_pearson(all_w, all_d, n), spearman_w = samx_spearman(all_w, all_d, n);
  printf("sqa vs true dice over %d segmentations (ideal SAM): mean: pearson %.3f, spearman %.3f; area-weighted: pearson %.3f, "
         "spearman %.3f\n", n, pearson, spearman, pearson_w, spearman_w);
  CHECK(pearson_w > 0.9 && spearman_w > 0.9, "area-weighted score vs true Dice: pearson %.3f spearman %.3f, want > 0.9",
        pearson_w, spearman_w);
  // Without the spurious-blob family the plain mean tracks the true Dice too.
  double sp = samx_spearman(all_s, all_d, n - LEVELS), pe = samx_pearson(all_s, all_d, n - LEVELS);
  printf("sqa vs true dice without spurious blobs (mean): pearson %.3f, spearman %.3f\n", pe, sp);
  CHECK(pe > 0.9 && sp > 0.9, "mean score vs true Dice (no blobs): pearson %.3f spearman %.3f, want > 0.9", pe, sp);
  // Area weighting: a big perfect object and a small spurious one weigh by their sizes.
  uint8_t seg[S * S];
  memcpy(seg, truth, sizeof seg);
  disc(seg, 8, 86, 3, 1);
  double plain = ideal_score(truth, seg, 0), weighted = ideal_score(truth, seg, 1);
  CHECK(fabs(plain - 0.5) < 1e-12 && weighted > 0.95, "blob: mean %.4f (want 0.5), area-weighted %.4f (want > 0.95)", plain,
        weighted);
}

// ---- 3. the driver on the golden tiny SAM ----

static float *decode_alone(SamModel *m, const SamxInferInput *in, const SamPrompt *prompt, int multimask, int *best) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)256 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  SamImageInfo info;
  SamxTensor *emb = sam_encode(&ctx, m, sam_preprocess(&ctx, m, in->rgb, in->h, in->w, &info));
  SamPrompt p = *prompt;
  sam_prompt_to_input(&info, &p);
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(&ctx, m, &p, 1, NULL, &sparse, &dense);
  sam_decode(&ctx, m, emb, NULL, sparse, dense, multimask, &low, &iou);
  SamxTensor *logits = sam_postprocess(&ctx, m, low, &info);
  float *out = (float *)malloc(samx_nbytes(logits)), ious[8];
  samx_tensor_read_f32(logits, out);
  samx_tensor_read_f32(iou, ious);
  *best = 0;
  for (int k = 1; k < iou->shape[1]; k++)
    if (ious[k] > ious[*best]) *best = k;
  samx_ctx_free(&ctx);
  return out;
}

static void test_driver(void) {
  SamxSafetensors golden;
  SamModel m;
  if (samx_st_open(&golden, "tests/data/sam_tiny/sam_tiny_cases.safetensors") ||
      sam_load(&m, "tests/data/sam_tiny/sam_tiny.pth", device, 0, NULL)) {
    CHECK(0, "golden data: %s", samx_last_error());
    return;
  }
  const SamxSTEntry *im = samx_st_find(&golden, "same.image"), *gm = samx_st_find(&golden, "same.box.masks");
  int h = (int)im->shape[0], w = (int)im->shape[1];
  // A segmentation of three objects of different sizes (a disc, a bar, one pixel), an empty one and
  // the box case's mask.
  uint8_t *seg = (uint8_t *)calloc((size_t)h * w, 1), *empty = (uint8_t *)calloc((size_t)h * w, 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      seg[y * w + x] = (y - 30) * (y - 30) + (x - 40) * (x - 40) <= 15 * 15 || (y >= 80 && y < 95 && x >= 120 && x < 150) ||
                       (y == 100 && x == 10);
  SamxInferInput in[3] = {{.rgb = (const uint8_t *)im->data, .h = h, .w = w, .seg = seg, .n_classes = 1},
                          {.rgb = (const uint8_t *)im->data, .h = h, .w = w, .seg = empty, .n_classes = 1},
                          {.rgb = (const uint8_t *)im->data, .h = h, .w = w, .seg = gm->data, .n_classes = 1}};
  for (int weighted = 0; weighted <= 1; weighted++) {
    SamxInferOpts o = samx_infer_defaults(SAMX_INFER_SQA);
    o.max_batch = 3, o.decode_chunk = 3, o.sqa.area_weighted = weighted;
    SamxInferer *r = samx_inferer_new(&m, &o, h, w);
    SamxInferOutput out[3];
    samx_inferer_run(r, in, 3, out);
    CHECK(isnan(out[1].quality) && out[1].n_objects == 0, "empty segmentation: quality %g, want NaN", out[1].quality);
    for (int i = 0; i <= 2; i += 2) {
      SamxSqaObjects s;
      samx_sqa_objects(in[i].seg, 1, h, w, &o.sqa, &s);
      double *score = (double *)malloc(sizeof(double) * ((size_t)s.n + 1)), worst = 0;
      for (int k = 0; k < s.n; k++) {
        SamPrompt pp = {.n_points = 1, .points = {{s.obj[k].point[0], s.obj[k].point[1]}}, .labels = {1}};
        SamPrompt bp = {.has_box = 1};
        memcpy(bp.box, s.obj[k].box, sizeof bp.box);
        int best, unused;
        float *pl = decode_alone(&m, &in[i], &pp, 1, &best), *bl = decode_alone(&m, &in[i], &bp, 0, &unused);
        score[k] = 0.5 * (samx_sqa_object_dice_logits(&s, k, pl + (size_t)best * h * w) + samx_sqa_object_dice_logits(&s, k, bl));
        worst = fmax(worst, fabs(score[k] - out[i].object_score[k]));
        free(pl), free(bl);
      }
      double want = samx_sqa_image_score(&s, score, weighted);
      CHECK(out[i].n_objects == s.n && fabs(out[i].quality - want) < 1e-5 && worst < 1e-5,
            "segmentation %d (weighted %d): %d objects, quality %.6f, direct decodes %.6f (objects within %.2g)", i, weighted,
            out[i].n_objects, out[i].quality, want, worst);
      printf("sqa tiny SAM, segmentation %d, %s: %d objects, quality %.4f\n", i, weighted ? "area-weighted" : "mean", s.n,
             out[i].quality);
      free(score);
      samx_sqa_objects_free(&s);
    }
    for (int i = 0; i < 3; i++) samx_infer_output_free(&out[i]);
    samx_inferer_free(r);
  }
  free(seg), free(empty);
  sam_free(&m);
  samx_st_close(&golden);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (device.type == SAMX_CPU) {
    test_objects();
    test_ranking();
  }
  test_driver();
  return samx_test_summary();
}
