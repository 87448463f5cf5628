// SimSAM and plain SAM through the batch driver (infer/infer.h) on the golden tiny SAM.
// Oracles: (1) the driver's batched, chunked decoding against one sam_decode call per prompt
// through the public SAM API (so mixing images and prompts in a chunk changes nothing);
// (2) clicks, labels, mask prompt, IoU row means and the choice against tests/infer/ref_simsam.py,
// written from the paper's equations in numpy/torch; (3) the ablations against their definitions.
// Images: the three golden images (112x160, 48x64, 300x211, so one batch mixes sizes); the
// "ground truth" whose box prompts SAM is the golden box case's mask.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "infer/infer.h"
#include "models/sam/sam_image.h"

#define CASES "tests/data/sam_tiny/sam_tiny_cases.safetensors"
#define CKPT "tests/data/sam_tiny/sam_tiny.pth"
#define NIMG 3

static const char *names[NIMG] = {"same", "up", "down"};
static SamxSafetensors golden;
static SamxDevice device;
static SamModel model;
static SamxInferInput inputs[NIMG];
static uint8_t *gt[NIMG];

static const SamxSTEntry *get(const char *img, const char *what) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", img, what);
  const SamxSTEntry *e = samx_st_find(&golden, key);
  SAMX_ASSERT(e, "golden file has no %s", key);
  return e;
}

static void load_inputs(void) {
  for (int i = 0; i < NIMG; i++) {
    const SamxSTEntry *im = get(names[i], "image"), *m = get(names[i], "box.masks");
    SamxInferInput *in = &inputs[i];
    memset(in, 0, sizeof *in);
    in->rgb = (const uint8_t *)im->data, in->h = (int)im->shape[0], in->w = (int)im->shape[1], in->key = (uint64_t)i;
    gt[i] = (uint8_t *)m->data;  // [1, H, W] of the box case
    int rc = samx_mask_box(gt[i], in->h, in->w, in->box);
    CHECK(rc == 0, "%s: the golden box mask is empty", names[i]);
  }
}

// One prompt decoded alone through the SAM API: logits at the original size (malloc'd) and IoU.
static float *decode_alone(int i, const SamPrompt *prompt_orig, const float *mask_in, float *iou_out) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)256 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  SamImageInfo info;
  SamxTensor *emb = sam_encode(&ctx, &model, sam_preprocess(&ctx, &model, inputs[i].rgb, inputs[i].h, inputs[i].w, &info));
  SamPrompt p = *prompt_orig;
  sam_prompt_to_input(&info, &p);
  int side = 4 * sam_embed_grid(&model.cfg);
  SamxTensor *mask = mask_in ? samx_from_host(&ctx, SHAPE(1, 1, side, side), mask_in) : NULL, *sparse, *dense, *low, *iou;
  sam_prompt_encode(&ctx, &model, &p, 1, mask, &sparse, &dense);
  sam_decode(&ctx, &model, emb, NULL, sparse, dense, 0, &low, &iou);
  SamxTensor *logits = sam_postprocess(&ctx, &model, low, &info);
  float *out = (float *)malloc(samx_nbytes(logits));
  samx_tensor_read_f32(logits, out);
  samx_tensor_read_f32(iou, iou_out);
  samx_ctx_free(&ctx);
  return out;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

static void run(const SamxInferOpts *o, SamxInferOutput *out) {
  SamxInferer *r = samx_inferer_new(&model, o, 300, 211);
  SAMX_ASSERT(r, "inferer: %s", samx_last_error());
  samx_inferer_run(r, inputs, NIMG, out);
  samx_inferer_free(r);
}

static void test_mask_box(void) {
  uint8_t m[5 * 7] = {0};
  float box[4];
  CHECK(samx_mask_box(m, 5, 7, box) == -1, "empty mask must have no box");
  m[1 * 7 + 5] = m[3 * 7 + 2] = m[2 * 7 + 3] = 1;
  CHECK(samx_mask_box(m, 5, 7, box) == 0 && box[0] == 2 && box[1] == 1 && box[2] == 5 && box[3] == 3,
        "box of pixels (r1,c5),(r3,c2),(r2,c3): got %g,%g,%g,%g, want 2,1,5,3", box[0], box[1], box[2], box[3]);
}

// Plain SAM: the driver's batch of three differently sized images equals three separate decodes.
static void test_sam(void) {
  SamxInferOpts o = samx_infer_defaults(SAMX_INFER_SAM);
  o.max_batch = NIMG, o.decode_chunk = 2;
  SamxInferOutput out[NIMG];
  run(&o, out);
  for (int i = 0; i < NIMG; i++) {
    SamPrompt p = {.has_box = 1};
    memcpy(p.box, inputs[i].box, sizeof p.box);
    float iou;
    float *want = decode_alone(i, &p, NULL, &iou);
    int64_t px = (int64_t)inputs[i].h * inputs[i].w, bad = 0;
    for (int64_t q = 0; q < px; q++) bad += out[i].mask[q] != (want[q] > 0) && fabs(want[q]) > 1e-4;
    CHECK(bad == 0 && fabs(out[i].score - iou) < 1e-5, "sam %s: %lld mask pixels differ, iou %g vs %g", names[i],
          (long long)bad, out[i].score, iou);
    free(want);
    samx_infer_output_free(&out[i]);
  }
}

// Writes the trace, runs the Python reference, returns its outputs (caller closes).
static int python_reference(const SamxInferOutput *out, SamxSafetensors *ref) {
  char dir[] = "/tmp/samx_simsam_XXXXXX", in_path[128], out_path[128], cmd[512];
  if (!mkdtemp(dir)) return -1;
  snprintf(in_path, sizeof in_path, "%s/trace.safetensors", dir);
  snprintf(out_path, sizeof out_path, "%s/ref.safetensors", dir);
  SamxSTWriter *w = samx_st_writer_new();
  for (int i = 0; i < NIMG; i++) {
    char key[128];
    int64_t h = inputs[i].h, wd = inputs[i].w, k = out[i].k, s = out[i].low_side;
    int64_t shp[3] = {h, wd}, sl[2] = {s, s}, sk[1] = {k}, sc[3] = {k, h, wd};
    snprintf(key, sizeof key, "%s.init_logits", names[i]), samx_st_writer_add(w, key, SAMX_F32, 2, shp, out[i].init_logits);
    snprintf(key, sizeof key, "%s.init_low_res", names[i]), samx_st_writer_add(w, key, SAMX_F32, 2, sl, out[i].init_low_res);
    snprintf(key, sizeof key, "%s.clicks", names[i]), samx_st_writer_add(w, key, SAMX_I64, 1, sk, out[i].clicks);
    snprintf(key, sizeof key, "%s.cand_logits", names[i]), samx_st_writer_add(w, key, SAMX_F32, 3, sc, out[i].cand_logits);
  }
  int rc = samx_st_writer_save(w, in_path);
  samx_st_writer_free(w);
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  snprintf(cmd, sizeof cmd, "%s tests/infer/ref_simsam.py %s %s", py, in_path, out_path);
  if (rc == 0) rc = system(cmd) == 0 ? 0 : -1;
  if (rc == 0) rc = samx_st_open(ref, out_path);
  unlink(in_path), unlink(out_path), rmdir(dir);
  return rc;
}

static const SamxSTEntry *ref_get(SamxSafetensors *ref, int i, const char *what) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", names[i], what);
  return samx_st_find(ref, key);
}

static void compare_reference(SamxSafetensors *ref, const SamxInferOutput *out) {
  for (int i = 0; i < NIMG; i++) {
    const SamxInferOutput *o = &out[i];
    int64_t px = (int64_t)inputs[i].h * inputs[i].w, side2 = (int64_t)o->low_side * o->low_side;
    const int64_t *clicks = (const int64_t *)ref_get(ref, i, "clicks")->data;
    const int32_t *labels = (const int32_t *)ref_get(ref, i, "labels")->data;
    const float *err = (const float *)ref_get(ref, i, "error")->data;
    // A different pixel at the same rank is tolerated only where the reference's error map cannot
    // tell the two apart although their logits differ (rounding of the sigmoid); logits of equal
    // magnitude are a true tie, which must go to the lower index on both sides.
    int click_bad = 0, ties = 0, label_bad = 0;
    for (int k = 0; k < o->k; k++) {
      if (o->clicks[k] != clicks[k]) {
        float la = fabsf(o->init_logits[o->clicks[k]]), lb = fabsf(o->init_logits[clicks[k]]);
        if (la != lb && err[o->clicks[k]] == err[clicks[k]]) ties++;
        else click_bad++;
      }
      label_bad += o->labels[k] != samx_simsam_label(o->init_logits, clicks[k]) || o->labels[k] != labels[k];
    }
    CHECK(click_bad == 0 && label_bad == 0, "%s: %d clicks and %d labels differ from the reference", names[i], click_bad, label_bad);
    const float *mp = (const float *)ref_get(ref, i, "mask_prompt")->data;
    CHECK(max_diff(o->mask_prompt, mp, side2) == 0, "%s: mask prompt differs from (low-res > 0)", names[i]);
    double rm = 0;
    const float *row = (const float *)ref_get(ref, i, "row_mean")->data;
    for (int k = 0; k < o->k; k++) rm = fmax(rm, fabs(o->row_mean[k] - row[k]));
    int chosen = ((const int32_t *)ref_get(ref, i, "chosen")->data)[0];
    const uint8_t *mask = (const uint8_t *)ref_get(ref, i, "mask")->data;
    int64_t mask_bad = 0;
    for (int64_t q = 0; q < px; q++) mask_bad += o->mask[q] != mask[q];
    CHECK(rm < 1e-6 && o->chosen == chosen && mask_bad == 0, "%s: row means differ by %.3g, chosen %d vs %d, %lld mask pixels",
          names[i], rm, o->chosen, chosen, (long long)mask_bad);
    int positive = 0;
    for (int k = 0; k < o->k; k++) positive += o->labels[k];
    printf("simsam %s (%dx%d): K=%d clicks (%d positive), %d swapped at equal rounded error, chosen %d (mean IoU %.4f), "
           "row means within %.2g of the reference\n",
           names[i], inputs[i].w, inputs[i].h, o->k, positive, ties, o->chosen, o->row_mean[o->chosen], rm);
  }
}

// Every candidate equals its prompt (box, click, label, mask prompt) decoded alone.
static void check_candidates(const SamxInferOutput *out) {
  for (int i = 0; i < NIMG; i++) {
    const SamxInferOutput *o = &out[i];
    int64_t px = (int64_t)inputs[i].h * inputs[i].w;
    double worst = 0, iou_worst = 0;
    for (int k = 0; k < o->k; k += 7) {
      SamPrompt p = {.has_box = 1, .n_points = 1};
      memcpy(p.box, inputs[i].box, sizeof p.box);
      p.points[0][0] = (float)(o->clicks[k] % inputs[i].w), p.points[0][1] = (float)(o->clicks[k] / inputs[i].w);
      p.labels[0] = o->labels[k];
      float iou;
      float *want = decode_alone(i, &p, o->mask_prompt, &iou);
      worst = fmax(worst, max_diff(o->cand_logits + k * px, want, px));
      iou_worst = fmax(iou_worst, fabs(iou - o->cand_iou[k]));
      int64_t mask_bad = 0;
      for (int64_t q = 0; q < px; q++) mask_bad += o->candidates[k * px + q] != (o->cand_logits[k * px + q] > 0);
      CHECK(mask_bad == 0, "%s: candidate %d: %lld mask pixels are not logits > 0", names[i], k, (long long)mask_bad);
      free(want);
    }
    CHECK(worst < 1e-4 && iou_worst < 1e-5, "%s: batched candidates differ from single decodes by %.3g (iou %.3g)", names[i],
          worst, iou_worst);
  }
}

static void test_simsam(void) {
  SamxInferOpts o = samx_infer_defaults(SAMX_INFER_SIMSAM);
  o.max_batch = NIMG, o.decode_chunk = 7, o.trace = 1, o.keep_candidates = 1;  // chunks straddle images
  SamxInferOutput out[NIMG];
  run(&o, out);
  float iou;
  for (int i = 0; i < NIMG; i++) {
    SamPrompt p = {.has_box = 1};
    memcpy(p.box, inputs[i].box, sizeof p.box);
    float *want = decode_alone(i, &p, NULL, &iou);
    double d = max_diff(out[i].init_logits, want, (int64_t)inputs[i].h * inputs[i].w);
    CHECK(d < 1e-4, "%s: initial prediction differs from a single decode by %.3g", names[i], d);
    CHECK(out[i].k == 50, "%s: K = %d", names[i], out[i].k);
    free(want);
  }
  check_candidates(out);
  SamxSafetensors ref;
  int rc = python_reference(out, &ref);
  CHECK(rc == 0, "python reference failed: %s", samx_last_error());
  if (rc == 0) {
    compare_reference(&ref, out);
    samx_st_close(&ref);
  }
  // Pixel aggregation: the same clicks and candidates; the mask is mean(candidate logits) > 0.
  o.simsam.aggregate = SAMX_SIMSAM_PIXEL, o.trace = 0, o.keep_candidates = 0;
  SamxInferOutput pix[NIMG];
  run(&o, pix);
  for (int i = 0; i < NIMG; i++) {
    int64_t px = (int64_t)inputs[i].h * inputs[i].w, bad = 0;
    for (int64_t q = 0; q < px; q++) {
      double s = 0;
      for (int k = 0; k < out[i].k; k++) s += out[i].cand_logits[k * px + q];
      bad += pix[i].mask[q] != (s > 0) && fabs(s) > 1e-3 * out[i].k;
    }
    CHECK(bad == 0 && pix[i].chosen == -1, "%s: pixel aggregation: %lld pixels differ from mean logits > 0", names[i], (long long)bad);
    samx_infer_output_free(&pix[i]);
  }
  // K = 1: the single candidate from the highest-error click is the answer.
  o.simsam.aggregate = SAMX_SIMSAM_IOU, o.simsam.k = 1, o.keep_candidates = 1;
  SamxInferOutput one[NIMG];
  run(&o, one);
  for (int i = 0; i < NIMG; i++) {
    int64_t px = (int64_t)inputs[i].h * inputs[i].w;
    CHECK(one[i].k == 1 && one[i].chosen == 0 && one[i].clicks[0] == out[i].clicks[0] &&
              !memcmp(one[i].mask, one[i].candidates, (size_t)px) && !memcmp(one[i].candidates, out[i].candidates, (size_t)px),
          "%s: K = 1 must return the first click's candidate", names[i]);
    samx_infer_output_free(&one[i]);
  }
  for (int i = 0; i < NIMG; i++) samx_infer_output_free(&out[i]);
}

// Sampled and random clicks: K distinct pixels, reproducible by seed, and sampling follows the error.
static void test_click_draws(void) {
  SamxSimsamOpts o = samx_simsam_defaults();
  int64_t n = 4000;
  float *logits = (float *)malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; i++) logits[i] = (float)(i % 400) / 20.0f - 10.0f;  // |logit| 0..10, each value 10 times
  int64_t a[50], b[50], c[50];
  for (int mode = SAMX_SIMSAM_SAMPLE; mode <= SAMX_SIMSAM_RANDOM; mode++) {
    o.clicks = (SamxSimsamClicks)mode, o.seed = 1;
    int na = samx_simsam_clicks(logits, n, &o, 3, a), nb = samx_simsam_clicks(logits, n, &o, 3, b);
    o.seed = 2;
    samx_simsam_clicks(logits, n, &o, 3, c);
    int distinct = 1, differs = 0;
    double mean_abs = 0;
    for (int i = 0; i < 50; i++) {
      for (int j = 0; j < i; j++) distinct &= a[i] != a[j];
      differs |= a[i] != c[i];
      mean_abs += fabs(logits[a[i]]) / 50;
    }
    CHECK(na == 50 && nb == 50 && !memcmp(a, b, sizeof a) && distinct && differs, "%s clicks: not 50 distinct reproducible draws",
          mode == SAMX_SIMSAM_SAMPLE ? "sampled" : "random");
    // Uniform draws have mean |logit| ~5; error-weighted ones concentrate where |logit| is small.
    if (mode == SAMX_SIMSAM_SAMPLE) CHECK(mean_abs < 2.5, "sampled clicks: mean |logit| %.2f, want < 2.5", mean_abs);
    else CHECK(mean_abs > 3.5 && mean_abs < 6.5, "random clicks: mean |logit| %.2f, want ~5", mean_abs);
  }
  // Top-K with ties: |logit| 0 occurs at 200, 600, ...: the lower indices first.
  o.clicks = SAMX_SIMSAM_TOPK, o.k = 12;
  int nk = samx_simsam_clicks(logits, n, &o, 0, a);
  int ok = nk == 12;
  for (int i = 0; i < 10 && ok; i++) ok = a[i] == 200 + 400 * i;
  ok = ok && a[10] == 199 && a[11] == 201;  // |logit| 0.05 at 199 and 201 (and later copies)
  CHECK(ok, "top-K ties must go to the lower index");
  free(logits);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  test_mask_box();
  test_click_draws();
  if (samx_st_open(&golden, CASES) || sam_load(&model, CKPT, device, 0, NULL)) {
    printf("FAIL %s\n", samx_last_error());
    return 1;
  }
  load_inputs();
  test_sam();
  test_simsam();
  sam_free(&model);
  samx_st_close(&golden);
  return samx_test_summary();
}
