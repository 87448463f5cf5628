// SAM inference in bf16 precision against the same model in fp32, on the golden cases of
// tests/data/sam_tiny (3 images x 6 prompt sets). In bf16 the image encoder's residual stream,
// LayerNorms, GELUs, residual adds and attention q, k, v are BF16 tensors and every linear layer is a
// bf16 GEMM (fp32 accumulation); on CUDA that is the tensor-core path, on the CPU the reference mode
// (the same roundings, fp32 arithmetic). Checked: every mask (logits > 0 at full resolution) agrees
// with the fp32 mask and the logits are close (LOGIT_TOL, IOU_MIN below), and the image embeddings are
// within EMB_TOL of fp32 relative to their largest magnitude (see there), and not equal to them (the
// bf16 path really ran). The golden checkpoint has random weights; the same prompt kinds run on a
// trained one too (standin_images below), where every case reaches IOU_MIN. On each golden case samx's
// bf16 mask must also agree with fp32 at least as well as PyTorch's own bf16 runs of the official code
// agree with theirs (TORCH_SCRIPT below).
#include <math.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "engine/precision.h"
#include "models/sam/sam.h"
#include "data/prompts.h"
#include "data/synthetic.h"
#include "models/sam/sam_image.h"
#include "sam_golden_cases.h"

#define CASES SAM_GOLDEN_CASES
#define CKPT SAM_GOLDEN_CKPT
#define N_CASES 6
// bf16 keeps 8 significant bits: each rounding moves a value by up to 2^-9 (0.2%) of itself. The
// encoder rounds its activations about 10 times per block (4 blocks) and the neck's LayerNorms
// rescale what remains; the errors add up like a random walk, measured at 0.8-1.0% of the largest
// embedding here (0.84-0.88% on the CPU, 0.83-0.88% on the emulator). 2% leaves that margin and still catches
// a wrong kernel, whose errors are of the order of the embeddings themselves.
#define EMB_TOL 0.02
// Logits: within LOGIT_TOL of fp32 (measured at most 0.023 on the CPU, 0.026 on CUDA, with the
// encoder's qkv, projection and MLP layers writing bf16 with their bias in bf16, the projection and
// second MLP layer adding the residual inside the GEMM (one rounding), and every convolution
// (patch embedding, neck, the decoder's transposed convolutions) a bf16 GEMM, the decoder's upscaling
// in bf16 between them; this checkpoint's logits
// reach 0.4-1.9, so that is the ~1-2% of the embeddings carried through the decoder's bf16 GEMMs).
// Masks: a pixel may flip only where |fp32 logit| < LOGIT_TOL (no decided pixel changes), and the IoU
// of the two masks must reach IOU_MIN (0.99) on every case but one. The checkpoint has random weights
// and small logits, and down.box_maskin has the most of its fp32 mask near the threshold (9% within
// 0.01 of 0; the others 1.8-5.4%): its IoU is 0.977 (0.976 on CUDA) although no decided pixel flips,
// and it is held to IOU_MIN_NEAR instead. No one half is at fault: with only the encoder in bf16 (the
// decoder fp32) it measured 0.983 on the CPU, with only the decoder in bf16 0.991, while the upscaling
// was f32 (the same kind of case on the trained stand-in below, whose logits are decided, measures
// >= 0.997). The other 17 cases measure >= 0.9939 on the CPU and >= 0.9937 on CUDA (the emulator).
#define LOGIT_TOL 0.04
#define IOU_MIN 0.99
#define IOU_MIN_NEAR 0.96
#define NEAR_LOGIT 0.01
// The oracle for what bf16 costs on these masks: segment_anything's SamPredictor on the same checkpoint
// and cases, its encoder and decoder in bf16 three ways (as written, the attention logits a bf16
// matmul's output; under autocast with CUDA's fp32 op list; and with a flash kernel's roundings, as
// `samx bench --compare-torch` runs PyTorch), each against its own fp32. It reaches IOU_MIN on 2-4 of
// the 18 cases depending on the way (its best per case 0.9826-0.9937, and 0.9573 on down.box_maskin),
// with logits up to 0.03-0.09 from fp32. samx's mask IoU must reach PyTorch's best on every case
// (measured 0.0035-0.019 above it on the CPU and 0.0036-0.019 on the emulator). So the one case held
// to IOU_MIN_NEAR is one where bf16 itself, as PyTorch runs it, moves the mask the most.
#define TORCH_SCRIPT "tests/models/torch_sam_bf16.py"

static SamxSafetensors golden, torch_bf16;
static SamxDevice device;
static const char *cases[N_CASES] = {"box", "box_multi", "points", "point1", "box_points", "box_maskin"};

static const SamxSTEntry *get(const char *fmt, const char *a, const char *b) { return samx_test_st_get(&golden, fmt, a, b); }

// What one precision gives for one image: the embeddings and each case's full-resolution logits.
typedef struct {
  float *emb, *logits[N_CASES];
  int64_t n_emb, n_logits[N_CASES];
  SamxDType emb_dtype;
} Outputs;

static float *read_host(SamxTensor *t, int64_t *n) {
  float *v = (float *)malloc(t->numel * sizeof(float));
  samx_tensor_read_f32(t, v);
  *n = t->numel;
  return v;
}

static Outputs run(SamModel *m, const char *img, SamxPrecision precision) {
  Outputs o = {0};
  const SamxSTEntry *image = get("%s.image%s", img, "");
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)512 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  ctx.precision = precision;
  SamImageInfo info;
  SamxTensor *x = sam_preprocess(&ctx, m, (const uint8_t *)image->data, (int)image->shape[0], (int)image->shape[1], &info);
  SamxTensor *emb = sam_encode(&ctx, m, x);
  o.emb_dtype = emb->dtype;
  o.emb = read_host(emb, &o.n_emb);
  for (int c = 0; c < N_CASES; c++) {
    SamPrompt p;
    sam_golden_prompt(&golden, img, cases[c], &p);
    sam_prompt_to_input(&info, &p);
    const SamxSTEntry *mi = get("%s.%s.mask_input", img, cases[c]);
    SamxTensor *mask_in = NULL;
    if (mi) {
      float *v = samx_st_to_f32(mi);
      mask_in = samx_from_host(&ctx, SHAPE(1, 1, mi->shape[1], mi->shape[2]), v);
      free(v);
    }
    int multimask = ((const int32_t *)get("%s.%s.multimask", img, cases[c])->data)[0];
    SamxTensor *sparse, *dense, *low, *iou;
    sam_prompt_encode(&ctx, m, &p, 1, mask_in, &sparse, &dense);
    sam_decode(&ctx, m, emb, NULL, sparse, dense, multimask, &low, &iou);
    o.logits[c] = read_host(sam_postprocess(&ctx, m, low, &info), &o.n_logits[c]);
  }
  samx_ctx_free(&ctx);
  return o;
}

static void free_outputs(Outputs *o) {
  free(o->emb);
  for (int c = 0; c < N_CASES; c++) free(o->logits[c]);
}

// IoU of the masks logits > 0 (1 when both are empty).
static double mask_iou(const float *a, const float *b, int64_t n) {
  int64_t inter = 0, uni = 0;
  for (int64_t i = 0; i < n; i++) {
    int x = a[i] > 0, y = b[i] > 0;
    inter += x && y;
    uni += x || y;
  }
  return uni ? (double)inter / (double)uni : 1.0;
}

// One case's full-resolution logits, fp32 (lf) against bf16 (lh): no pixel whose fp32 logit is at least
// tol from 0 flips, the logits are within tol and the masks' IoU reaches iou_min and torch_iou (PyTorch's
// bf16 against its fp32 on the same case; < 0 where there is none).
static void compare_masks(const char *name, const float *lf, const float *lh, int64_t n, double tol, double iou_min,
                          double torch_iou) {
  double iou = mask_iou(lf, lh, n), lerr = 0, lmax = 0;
  int64_t decided_off = 0;  // flipped pixels whose fp32 logit is not within tol of 0
  int64_t near = 0, in_mask = 0;  // fp32 mask pixels within NEAR_LOGIT of the threshold, and all of them
  for (int64_t i = 0; i < n; i++) {
    lerr = fmax(lerr, fabs((double)lh[i] - lf[i]));
    lmax = fmax(lmax, fabs(lf[i]));
    decided_off += (lf[i] > 0) != (lh[i] > 0) && fabs(lf[i]) >= tol;
    in_mask += lf[i] > 0;
    near += lf[i] > 0 && lf[i] < NEAR_LOGIT;
  }
  CHECK(decided_off == 0, "%s: %lld mask pixels flip in bf16 although |fp32 logit| >= %.3g", name,
        (long long)decided_off, tol);
  CHECK(lerr <= tol, "%s: bf16 logits differ from fp32 by %.3g > %.3g", name, lerr, tol);
  CHECK(iou >= iou_min, "%s: bf16 mask IoU with fp32 %.4f < %.2f", name, iou, iou_min);
  CHECK(iou >= torch_iou, "%s: bf16 mask IoU with fp32 %.4f < PyTorch bf16's %.4f", name, iou, torch_iou);
  printf("%s: mask IoU bf16 vs fp32 %.4f (>= %.2f: %lld mask pixels, %.1f%% within %g of 0), logits max abs err "
         "%.3g (max |logit| %.3g)",
         name, iou, iou_min, (long long)in_mask, 100.0 * near / (in_mask ? in_mask : 1), NEAR_LOGIT, lerr, lmax);
  if (torch_iou >= 0) printf("; PyTorch bf16 IoU %.4f", torch_iou);
  printf("\n");
}

// PyTorch's best bf16 mask IoU on golden case `name` (1, failing the case, when the reference lacks it).
static double torch_best_iou(const char *name) {
  const SamxSTEntry *e = samx_test_st_get(&torch_bf16, "%s.%s", name, "iou");
  int ok = e && e->dtype == SAMX_F32 && e->numel == 3;
  CHECK(ok, "%s: no PyTorch bf16 IoU [3] in %s's output", name, TORCH_SCRIPT);
  if (!ok) return 1;
  const float *v = (const float *)e->data;
  return fmax(v[0], fmax(v[1], v[2]));
}

// Runs TORCH_SCRIPT into a fresh folder dir (size n) and opens its output as torch_bf16; 0 on success.
static int load_torch_bf16(char *dir, size_t n) {
  if (samx_test_reference_script(TORCH_SCRIPT, dir, n, "samx_torch_bf16")) return -1;
  char path[600];
  snprintf(path, sizeof path, "%s/torch_sam_bf16.safetensors", dir);
  if (samx_st_open(&torch_bf16, path) == 0) return 0;
  CHECK(0, "open %s: %s", path, samx_last_error());
  samx_test_remove_dir(dir);
  return -1;
}

static void compare_image(SamModel *m, const char *img) {
  Outputs f = run(m, img, SAMX_PRECISION_FP32), h = run(m, img, SAMX_PRECISION_BF16);
  CHECK(f.emb_dtype == SAMX_F32 && h.emb_dtype == SAMX_F32, "%s: embeddings are %s / %s, expected F32", img,
        samx_dtype_name(f.emb_dtype), samx_dtype_name(h.emb_dtype));
  double scale = 0, err = 0;
  for (int64_t i = 0; i < f.n_emb; i++) scale = fmax(scale, fabs(f.emb[i]));
  for (int64_t i = 0; i < f.n_emb; i++) err = fmax(err, fabs((double)h.emb[i] - f.emb[i]));
  CHECK(err <= EMB_TOL * scale, "%s: bf16 embeddings differ from fp32 by %.3g (max |emb| %.3g, tolerance %.0f%%)", img,
        err, scale, 100 * EMB_TOL);
  CHECK(err > 0, "%s: bf16 embeddings equal the fp32 ones bit for bit: the bf16 path did not run", img);
  printf("%s image_embeddings: bf16 vs fp32 max abs err %.3g = %.2f%% of max |emb| %.3g\n", img, err,
         100 * err / scale, scale);
  for (int c = 0; c < N_CASES; c++) {
    CHECK(f.n_logits[c] == h.n_logits[c], "%s.%s: %lld vs %lld logits", img, cases[c], (long long)f.n_logits[c],
          (long long)h.n_logits[c]);
    char name[64];
    snprintf(name, sizeof name, "%s.%s", img, cases[c]);
    double iou_min = !strcmp(img, "down") && !strcmp(cases[c], "box_maskin") ? IOU_MIN_NEAR : IOU_MIN;
    compare_masks(name, f.logits[c], h.logits[c], f.n_logits[c], LOGIT_TOL, iou_min, torch_best_iou(name));
  }
  free_outputs(&f);
  free_outputs(&h);
}

// The image encoder in bf16 on a batch of two images against each image alone: the batch repeats what
// is per image (pos_embed, added by the patch embedding's GEMM over a copy repeated per image); the
// batch's GEMMs may sum in another order, so within one bf16 step of the largest embedding value.
static void batch_of_two(SamModel *m) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)768 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  ctx.precision = SAMX_PRECISION_BF16;
  const char *imgs[2] = {"same", "up"};
  SamxTensor *x[2], *alone[2];
  for (int i = 0; i < 2; i++) {
    const SamxSTEntry *image = get("%s.image%s", imgs[i], "");
    SamImageInfo info;
    x[i] = sam_preprocess(&ctx, m, (const uint8_t *)image->data, (int)image->shape[0], (int)image->shape[1], &info);
    alone[i] = sam_encode(&ctx, m, x[i]);
  }
  SamxTensor *both = sam_encode(&ctx, m, samx_concat(&ctx, x, 2, 0));
  int64_t n0, n1;
  float *b = read_host(both, &n0), *a0 = read_host(alone[0], &n1), *a1 = read_host(alone[1], &n1);
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < n1; i++) {
    worst = fmax(worst, fmax(fabs(b[i] - a0[i]), fabs(b[n1 + i] - a1[i])));
    scale = fmax(scale, fmax(fabs(a0[i]), fabs(a1[i])));
  }
  CHECK(n0 == 2 * n1 && worst <= ldexp(scale, -8), "bf16 encoder, batch of 2 vs one by one: %.3g (max |emb| %.3g)", worst,
        scale);
  printf("bf16 encoder, batch of 2 vs one image at a time: max abs diff %.3g (max |emb| %.3g)\n", worst, scale);
  free(b), free(a0), free(a1);
  samx_ctx_free(&ctx);
}

// The golden prompt kinds on a trained model: the main job's stand-in SAM (tests/data/sam_standin,
// pretrained with box prompts on the built-in synthetic data) on synthetic images it never saw: drawn at
// 4x its 64 x 64 training size (SamPredictor resizes them to 64 and upsamples the logits back, as for
// the golden "down" image) and prompted from annotator 2's mask, as the main job prompts its test split.
// Its logits are decided (|logit| up to 15-20; the fp32 masks have 0-0.2% of their pixels within 0.01
// of 0, box_multi's third token 2-3%), so every case, the mask-input one included, is held to IOU_MIN;
// measured >= 0.997 on the CPU and >= 0.996 on CUDA (the emulator). The logits are held to STANDIN_LOGIT_REL of the case's largest
// (measured 0.3-0.5%: the same ~1% of the embeddings as above, through larger weights). Box prompts
// only: the model never saw a point prompt, and its point-only masks are empty.
#define STANDIN_CKPT "tests/data/sam_standin/sam.safetensors"
#define STANDIN_IMAGES 6
#define STANDIN_MIN_PIXELS 2400  // annotator 2's mask at 256 x 256 (150 pixels at the model's 64)
#define STANDIN_LOGIT_REL 0.01
#define STANDIN_CASES 4
static const char *standin_cases[STANDIN_CASES] = {"box", "box_multi", "box_points", "box_maskin"};

typedef struct {
  float *logits[STANDIN_CASES];
  int64_t n[STANDIN_CASES];
} StandinOutputs;

// One synthetic image (RGB, side `size`) with the tight box b of its mask and the mask's centre (cx, cy),
// in one precision: each standin case's full-resolution logits; box_maskin feeds back box's low-res ones.
static StandinOutputs standin_run(SamModel *m, const uint8_t *rgb, int size, const int64_t b[4], float cx, float cy,
                                  SamxPrecision precision) {
  StandinOutputs o;
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)256 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  ctx.precision = precision;
  SamImageInfo info;
  SamxTensor *emb = sam_encode(&ctx, m, sam_preprocess(&ctx, m, rgb, size, size, &info));
  SamxTensor *box_low = NULL;
  for (int c = 0; c < STANDIN_CASES; c++) {
    SamPrompt p = {.has_box = 1, .box = {(float)b[0], (float)b[1], (float)b[2], (float)b[3]}};
    if (!strcmp(standin_cases[c], "box_points")) p.points[0][0] = cx, p.points[0][1] = cy, p.labels[0] = 1, p.n_points = 1;
    sam_prompt_to_input(&info, &p);
    SamxTensor *sparse, *dense, *low, *iou;
    sam_prompt_encode(&ctx, m, &p, 1, !strcmp(standin_cases[c], "box_maskin") ? box_low : NULL, &sparse, &dense);
    sam_decode(&ctx, m, emb, NULL, sparse, dense, !strcmp(standin_cases[c], "box_multi"), &low, &iou);
    if (c == 0) box_low = low;
    o.logits[c] = read_host(sam_postprocess(&ctx, m, low, &info), &o.n[c]);
  }
  samx_ctx_free(&ctx);
  return o;
}

static void standin_images(void) {
  SamModel m;
  int rc = sam_load(&m, STANDIN_CKPT, device, 0, NULL);
  CHECK(rc == 0, "load %s: %s", STANDIN_CKPT, samx_last_error());
  if (rc) return;
  SamxSyntheticParams sp = samx_synthetic_defaults();
  sp.size = 4 * m.cfg.img_size;
  int64_t hw = sp.size * sp.size;
  uint8_t *grey = (uint8_t *)malloc((size_t)hw), *masks = (uint8_t *)malloc((size_t)(sp.k * hw)),
          *rgb = (uint8_t *)malloc((size_t)(3 * hw));
  for (int done = 0, idx = 1000; done < STANDIN_IMAGES; idx++) {
    samx_synthetic_sample(&sp, idx, grey, masks);
    const uint8_t *mask = masks + 2 * hw;
    int64_t box[4], cnt = 0;
    double cx = 0, cy = 0;
    for (int64_t i = 0; i < hw; i++) {
      for (int ch = 0; ch < 3; ch++) rgb[3 * i + ch] = grey[i];  // as the trainer feeds grey images
      if (mask[i]) cx += (double)(i % sp.size), cy += (double)(i / sp.size), cnt++;
    }
    if (cnt < STANDIN_MIN_PIXELS || samx_prompt_box(mask, sp.size, sp.size, box)) continue;
    done++;
    StandinOutputs f = standin_run(&m, rgb, (int)sp.size, box, (float)(cx / cnt), (float)(cy / cnt),
                                   SAMX_PRECISION_FP32),
                   h = standin_run(&m, rgb, (int)sp.size, box, (float)(cx / cnt), (float)(cy / cnt),
                                   SAMX_PRECISION_BF16);
    for (int c = 0; c < STANDIN_CASES; c++) {
      char name[64];
      snprintf(name, sizeof name, "standin.%d.%s", idx, standin_cases[c]);
      double lmax = 0;
      int64_t on = 0;
      for (int64_t i = 0; i < f.n[c]; i++) lmax = fmax(lmax, fabs(f.logits[c][i])), on += f.logits[c][i] > 0;
      CHECK(on > 0, "%s: the fp32 mask is empty, so its IoU says nothing", name);
      compare_masks(name, f.logits[c], h.logits[c], f.n[c], STANDIN_LOGIT_REL * lmax, IOU_MIN, -1);
      free(f.logits[c]), free(h.logits[c]);
    }
  }
  free(grey), free(masks), free(rgb);
  sam_free(&m);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (samx_st_open(&golden, CASES)) {
    printf("FAIL %s\n", samx_last_error());
    return 1;
  }
  char torch_dir[256];
  if (load_torch_bf16(torch_dir, sizeof torch_dir)) {
    samx_st_close(&golden);
    samx_test_summary();
    return 1;  // a missing oracle fails the test, also when no CHECK did
  }
  SamModel m;
  int rc = sam_load(&m, CKPT, device, 0, NULL);
  CHECK(rc == 0, "load %s: %s", CKPT, samx_last_error());
  if (rc == 0) {
    compare_image(&m, "same");
    compare_image(&m, "up");
    compare_image(&m, "down");
    batch_of_two(&m);
    sam_free(&m);
  }
  standin_images();
  samx_st_close(&golden);
  samx_st_close(&torch_bf16);
  samx_test_remove_dir(torch_dir);
  return samx_test_summary();
}
