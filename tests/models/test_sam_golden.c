// SAM against the original segment_anything code (tests/data/sam_tiny: a real torch.save checkpoint
// and SamPredictor's outputs for 3 images x 6 prompt sets, plus one full gradient step).
// Tolerances from the data's README: 1e-3 absolute on embeddings and logits, gradients within 1e-3
// of each tensor's largest magnitude, masks may differ only where |logit| < 1e-2.
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/sam/sam.h"
#include "models/sam/sam_image.h"
#include "sam_golden_cases.h"

#define CASES SAM_GOLDEN_CASES
#define CKPT SAM_GOLDEN_CKPT

static SamxSafetensors golden;
static SamxDevice device;

static const SamxSTEntry *get(const char *fmt, const char *a, const char *b) { return samx_test_st_get(&golden, fmt, a, b); }

// Pixels where the mask differs although the reference logit is not within 1e-2 of 0.
static int64_t mask_mismatches(SamxTensor *logits, const SamxSTEntry *masks, const SamxSTEntry *ref_logits) {
  float *got = (float *)malloc(samx_nbytes(logits)), *ref = samx_st_to_f32(ref_logits);
  samx_tensor_read_f32(logits, got);
  const uint8_t *want = (const uint8_t *)masks->data;
  int64_t bad = 0;
  for (int64_t i = 0; i < logits->numel; i++)
    if ((got[i] > 0) != (want[i] != 0) && fabs(ref[i]) >= 1e-2) bad++;
  free(got);
  free(ref);
  return bad;
}

static void run_image(SamModel *m, const char *img) {
  static const char *cases[] = {"box", "box_multi", "points", "point1", "box_points", "box_maskin"};
  const SamxSTEntry *image = get("%s.image%s", img, "");
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)512 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  SamImageInfo info;
  SamxTensor *x = sam_preprocess(&ctx, m, (const uint8_t *)image->data, (int)image->shape[0], (int)image->shape[1], &info);
  const int32_t *isz = (const int32_t *)get("%s.input_size%s", img, "")->data;
  CHECK(info.input_h == isz[0] && info.input_w == isz[1], "%s: input size %dx%d, SamPredictor %dx%d", img,
        info.input_h, info.input_w, isz[0], isz[1]);
  SamxTensor *emb = sam_encode(&ctx, m, x);
  double e = samx_test_max_abs_diff(emb, get("%s.image_embeddings%s", img, ""));
  CHECK(e <= 1e-3, "%s: image embeddings differ by %.3g", img, e);
  printf("%s image_embeddings: max abs err %.3g\n", img, e);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const char *cs = cases[c];
    SamPrompt p;
    sam_golden_prompt(&golden, img, cs, &p);
    sam_prompt_to_input(&info, &p);
    const SamxSTEntry *mi = get("%s.%s.mask_input", img, cs);
    SamxTensor *mask_in = NULL;
    if (mi) {
      float *v = samx_st_to_f32(mi);
      mask_in = samx_from_host(&ctx, SHAPE(1, 1, mi->shape[1], mi->shape[2]), v);
      free(v);
    }
    int multimask = ((const int32_t *)get("%s.%s.multimask", img, cs)->data)[0];
    SamxTensor *sparse, *dense, *low, *iou;
    sam_prompt_encode(&ctx, m, &p, 1, mask_in, &sparse, &dense);
    // The decoder alone, from the reference embeddings, so that its errors are not the encoder's.
    float *ref_emb = samx_st_to_f32(get("%s.image_embeddings%s", img, ""));
    SamxTensor *golden_emb = samx_from_host(&ctx, samx_shape_of(emb), ref_emb);
    free(ref_emb);
    sam_decode(&ctx, m, golden_emb, NULL, sparse, dense, multimask, &low, &iou);
    double dl = samx_test_max_abs_diff(low, get("%s.%s.low_res_logits", img, cs));
    double di = samx_test_max_abs_diff(iou, get("%s.%s.iou_predictions", img, cs));
    CHECK(dl <= 1e-3 && di <= 1e-3, "%s.%s: decoder alone: low-res %.3g, iou %.3g", img, cs, dl, di);
    sam_decode(&ctx, m, emb, NULL, sparse, dense, multimask, &low, &iou);
    SamxTensor *logits = sam_postprocess(&ctx, m, low, &info);
    double el = samx_test_max_abs_diff(low, get("%s.%s.low_res_logits", img, cs));
    double ei = samx_test_max_abs_diff(iou, get("%s.%s.iou_predictions", img, cs));
    double eu = samx_test_max_abs_diff(logits, get("%s.%s.logits", img, cs));
    int64_t bad = mask_mismatches(logits, get("%s.%s.masks", img, cs), get("%s.%s.logits", img, cs));
    CHECK(el <= 1e-3 && ei <= 1e-3 && eu <= 1e-3 && bad == 0,
          "%s.%s: low-res %.3g, iou %.3g, logits %.3g, %lld mask pixels off", img, cs, el, ei, eu, (long long)bad);
    printf("%s.%s: low_res %.3g iou %.3g logits %.3g mask mismatches %lld\n", img, cs, el, ei, eu, (long long)bad);
  }
  samx_ctx_free(&ctx);
}

// One training step through the whole model: soft Dice (squared, eps 1e-5) + BCE + 0.1 * sum(iou^2).
static void run_gradient(void) {
  SamModel m;
  int rc = sam_load(&m, CKPT, device, SAM_TRAIN_ENCODER | SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER, NULL);
  CHECK(rc == 0, "load for training: %s", samx_last_error());
  if (rc) return;
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)1 << 30, 8192);
  const SamxSTEntry *image = samx_st_find(&golden, "grad.image"), *box = samx_st_find(&golden, "grad.box"),
                    *target = samx_st_find(&golden, "grad.target");
  SamImageInfo info;
  SamxTensor *x = sam_preprocess(&ctx, &m, (const uint8_t *)image->data, (int)image->shape[0], (int)image->shape[1], &info);
  SamPrompt p = {.has_box = 1};
  memcpy(p.box, box->data, sizeof p.box);
  sam_prompt_to_input(&info, &p);
  SamxTensor *emb = sam_encode(&ctx, &m, x), *sparse, *dense, *low, *iou;
  sam_prompt_encode(&ctx, &m, &p, 1, NULL, &sparse, &dense);
  sam_decode(&ctx, &m, emb, NULL, sparse, dense, 0, &low, &iou);
  float *t = samx_st_to_f32(target);
  SamxTensor *tgt = samx_from_host(&ctx, samx_shape_of(low), t);
  free(t);
  SamxDiceOpts dice = {.from_logits = 1, .squared = 1, .eps = 1e-5f, .reduction = SAMX_REDUCE_MEAN};
  SamxTensor *loss = samx_add(&ctx, samx_soft_dice_loss(&ctx, low, tgt, &dice),
                              samx_bce_with_logits(&ctx, low, tgt, SAMX_REDUCE_MEAN));
  loss = samx_add(&ctx, loss, samx_scale(&ctx, samx_sum(&ctx, samx_mul(&ctx, iou, iou)), 0.1f));
  double el = samx_test_max_abs_diff(loss, samx_st_find(&golden, "grad.loss"));
  CHECK(el <= 1e-4, "loss differs by %.3g", el);
  rc = samx_backward(&ctx, loss, NULL);
  CHECK(rc == 0, "backward: %s", samx_last_error());
  // Gradients that are zero analytically (the k_proj biases: softmax ignores a constant added to a
  // whole row of logits) hold only rounding noise in both implementations; they are measured
  // against a floor of 1e-3 of the largest gradient in the model instead of their own noise.
  double global_max = 0;
  for (int i = 0; i < golden.n; i++)
    if (!strncmp(golden.entries[i].name, "grad.d.", 7)) {
      float *v = samx_st_to_f32(&golden.entries[i]);
      for (int64_t k = 0; k < golden.entries[i].numel; k++) global_max = fmax(global_max, fabs(v[k]));
      free(v);
    }
  int compared = 0;
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < m.params.n; i++) {
    SamxTensor *prm = m.params.list[i];
    if (!prm->requires_grad) continue;
    char key[300];
    snprintf(key, sizeof key, "grad.d.%s", prm->name);
    const SamxSTEntry *want = samx_st_find(&golden, key);
    CHECK(want != NULL, "no reference gradient for %s", prm->name);
    if (!want) continue;
    float *ref = samx_st_to_f32(want), *got = (float *)malloc(samx_nbytes(prm));
    samx_tensor_read_f32(prm->grad, got);
    double scale = 0, err = 0;
    for (int64_t k = 0; k < prm->numel; k++) scale = fmax(scale, fabs(ref[k]));
    for (int64_t k = 0; k < prm->numel; k++) err = fmax(err, fabs((double)got[k] - ref[k]));
    double rel = err / fmax(scale, 1e-3 * global_max);
    CHECK(rel <= 1e-3, "gradient of %s: max err %.3g relative to max |grad| %.3g", prm->name, err, scale);
    if (rel > worst) worst = rel, worst_name = prm->name;
    compared++;
    free(ref);
    free(got);
  }
  printf("gradients: %d parameters compared, worst relative error %.3g (%s)\n", compared, worst, worst_name);
  CHECK(compared == 201, "%d parameter gradients compared, expected 201", compared);
  samx_ctx_free(&ctx);
  sam_free(&m);
}

// The dense positional encoding is cached per model: after the Gaussian matrix changes (here to zeros,
// where sin(0) = 0 and cos(0) = 1 give a hand-known answer) the next call must not return the old one,
// and restoring the matrix must give the golden decodes' encoding back.
static void check_dense_pe_cache(SamModel *m) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)16 << 20, 256);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *gauss = samx_params_find(&m->params, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
  float *saved = (float *)malloc(samx_nbytes(gauss)), *zeros = (float *)calloc(gauss->numel, sizeof(float));
  samx_tensor_read(gauss, saved);
  SamxTensor *pe = sam_dense_pe(&ctx, m);
  int64_t C = pe->shape[1], hw = pe->shape[2] * pe->shape[3];
  float *before = (float *)malloc(samx_nbytes(pe)), *h = (float *)malloc(samx_nbytes(pe));
  samx_tensor_read(pe, before);
  samx_tensor_write(gauss, zeros);
  samx_tensor_read(sam_dense_pe(&ctx, m), h);
  int64_t wrong = 0;
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < hw; i++) wrong += h[c * hw + i] != (c < C / 2 ? 0.0f : 1.0f);
  CHECK(wrong == 0, "dense PE after zeroing the Gaussian matrix: %lld of %lld values are not sin 0 / cos 0",
        (long long)wrong, (long long)(C * hw));
  samx_tensor_write(gauss, saved);
  samx_tensor_read(sam_dense_pe(&ctx, m), h);
  CHECK(memcmp(h, before, samx_nbytes(pe)) == 0, "dense PE after restoring the Gaussian matrix differs");
  printf("dense PE cache: recomputed after the Gaussian matrix changed\n");
  free(h);
  free(before);
  free(zeros);
  free(saved);
  samx_ctx_free(&ctx);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (samx_st_open(&golden, CASES)) {
    printf("FAIL %s\n", samx_last_error());
    return 1;
  }
  SamModel m;
  int rc = sam_load(&m, CKPT, device, 0, NULL);
  CHECK(rc == 0, "load %s: %s", CKPT, samx_last_error());
  if (rc == 0) {
    const SamConfig *c = &m.cfg;
    CHECK(c->img_size == 160 && c->patch == 16 && c->enc_dim == 64 && c->enc_depth == 4 && c->enc_heads == 2 &&
              c->window == 4 && c->global_block[1] && c->global_block[3] && !c->global_block[0] && c->dec_depth == 2 &&
              c->dec_mlp == 128 && c->attn_downsample == 2 && c->num_mask_tokens == 4 && c->iou_depth == 3 &&
              c->mask_in_chans == 16,
          "architecture read off the shapes does not match the README's table");
    run_image(&m, "same");
    run_image(&m, "up");
    run_image(&m, "down");
    check_dense_pe_cache(&m);
    sam_free(&m);
  }
  run_gradient();
  samx_st_close(&golden);
  return samx_test_summary();
}
