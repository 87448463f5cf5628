// Trained models (SeqSAM, MCL, SAM fine-tuned) through the batch driver: every hypothesis of a
// batch of three differently sized images, decoded in chunks that mix images, equals the model's
// own sam_method_predict on that image alone, postprocessed through the public SAM API.
// The models are the golden tiny SAM with the method's parameters initialised by sam_method_init.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "infer/infer.h"
#include "models/sam/sam_image.h"

#define NIMG 3

static SamxDevice device;
static SamxSafetensors golden;
static SamxInferInput inputs[NIMG];

// Hypotheses [n, h, w] logits of image i alone.
static float *predict_alone(SamMethodModel *mm, int i, int n) {
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)256 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  SamImageInfo info;
  SamxTensor *emb = sam_encode(&ctx, &mm->sam, sam_preprocess(&ctx, &mm->sam, inputs[i].rgb, inputs[i].h, inputs[i].w, &info));
  SamPrompt p = {.has_box = 1};
  memcpy(p.box, inputs[i].box, sizeof p.box);
  sam_prompt_to_input(&info, &p);
  SamxTensor *outs[8];
  sam_method_predict(&ctx, mm, emb, NULL, &p, 1, n, outs);
  int64_t px = (int64_t)inputs[i].h * inputs[i].w;
  float *logits = (float *)malloc(sizeof(float) * (size_t)(n * px));
  for (int j = 0; j < n; j++) samx_tensor_read_f32(sam_postprocess(&ctx, &mm->sam, outs[j], &info), logits + j * px);
  samx_ctx_free(&ctx);
  return logits;
}

static void check_method(SamMethod method, int n_masks) {
  SamModel sam;
  if (sam_load(&sam, "tests/data/sam_tiny/sam_tiny.pth", device, 0, NULL)) {
    CHECK(0, "load: %s", samx_last_error());
    return;
  }
  SamMethodModel mm;
  sam_method_init(&mm, &sam, method, n_masks, 0, 5, 0.02f);
  SamxInferOpts o = samx_infer_defaults(SAMX_INFER_TRAINED);
  o.max_batch = NIMG, o.decode_chunk = 2;
  SamxInferer *r = samx_inferer_new_trained(&mm, &o, 300, 211);
  CHECK(r != NULL, "inferer: %s", samx_last_error());
  if (!r) return;
  SamxInferOutput out[NIMG];
  samx_inferer_run(r, inputs, NIMG, out);
  for (int i = 0; i < NIMG; i++) {
    int64_t px = (int64_t)inputs[i].h * inputs[i].w, bad = 0;
    float *want = predict_alone(&mm, i, mm.n_masks);
    for (int64_t q = 0; q < mm.n_masks * px; q++) bad += out[i].mask[q] != (want[q] > 0) && fabsf(want[q]) > 1e-4f;
    CHECK(out[i].n_masks == mm.n_masks && bad == 0, "%s image %d: %d hypotheses (want %d), %lld pixels differ",
          sam_method_name(method), i, out[i].n_masks, mm.n_masks, (long long)bad);
    free(want);
    samx_infer_output_free(&out[i]);
  }
  printf("%s: %d hypotheses per image, batched driver = single-image predictions\n", sam_method_name(method), mm.n_masks);
  samx_inferer_free(r);
  // Asking an MCL / SAM-ft model for another number of hypotheses is refused.
  if (method != SAM_METHOD_SEQSAM) {
    o.n_masks = mm.n_masks + 1;
    CHECK(samx_inferer_new_trained(&mm, &o, 300, 211) == NULL, "%s with %d hypotheses must be refused", sam_method_name(method),
          o.n_masks);
  }
  sam_method_free(&mm);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (samx_st_open(&golden, "tests/data/sam_tiny/sam_tiny_cases.safetensors")) {
    printf("FAIL %s\n", samx_last_error());
    return 1;
  }
  const char *names[NIMG] = {"same", "up", "down"};
  for (int i = 0; i < NIMG; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s.image", names[i]);
    const SamxSTEntry *im = samx_st_find(&golden, key);
    snprintf(key, sizeof key, "%s.box.box", names[i]);
    const SamxSTEntry *box = samx_st_find(&golden, key);
    inputs[i] = (SamxInferInput){.rgb = (const uint8_t *)im->data, .h = (int)im->shape[0], .w = (int)im->shape[1]};
    memcpy(inputs[i].box, box->data, sizeof inputs[i].box);
  }
  check_method(SAM_METHOD_SEQSAM, 3);
  check_method(SAM_METHOD_MCL, 3);
  check_method(SAM_METHOD_SAMFT, 1);
  samx_st_close(&golden);
  return samx_test_summary();
}
