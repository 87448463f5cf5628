// P²SAM against the authors' code: reference tensors and checkpoints written by
// shared/tools/p2sam_oracle.py (their modules, random weights, tiny variant) are read back; samx
// loads the checkpoints natively (final_weights.pth snapshot epoch_10 + mask weights; the stage-1
// file over the base SAM, resized to 128 px) and recomputes, on the same inputs and eps:
//   stage 2: prior features' mu, log sigma, z, image embeddings, Fcomb's dense prompt, the 8 low-res
//            logits, the 8 upsampled masks, the assembled logit and mask;
//   stage 1: low-res logits, masks, assembled logit (dense prompt = no_mask_embed).
// argv[1]: the directory holding p2sam_tiny_cases.safetensors and work/{sam_vit_b_01ec64.pth,
// checkpoint/...} (default tests/data/p2sam). argv[1] "cuda": the same on cuda:0 (skipped without).
#include <string.h>

#include "../harness.h"
#include "models/p2sam/p2sam.h"

static SamxSafetensors ref;
static int ref_open;

static const SamxSTEntry *want(const char *name) {
  const SamxSTEntry *e = samx_st_find(&ref, name);
  if (!e) printf("FAIL reference %s missing\n", name), samx_test_failed++;
  return e;
}

static SamxTensor *input(SamxCtx *ctx, const char *name) {
  const SamxSTEntry *e = want(name);
  SamxShape s = {e->ndim, {0}};
  for (int i = 0; i < e->ndim; i++) s.d[i] = e->shape[i];
  return samx_from_host(ctx, s, (const float *)e->data);
}

// max |got - ref| / max(1, max |ref|), reported and checked against tol.
static double compare(const char *what, SamxTensor *got, const char *name, double tol) {
  const SamxSTEntry *e = want(name);
  if (!e) return INFINITY;
  if (e->numel != got->numel) {
    CHECK(0, "%s: %lld values, reference %s has %lld", what, (long long)got->numel, name, (long long)e->numel);
    return INFINITY;
  }
  float *g = (float *)malloc(sizeof(float) * (size_t)got->numel);
  samx_tensor_read_f32(got, g);
  const float *r = (const float *)e->data;
  double err = 0, scale = 1;
  for (int64_t i = 0; i < e->numel; i++) scale = fmax(scale, fabs(r[i]));
  for (int64_t i = 0; i < e->numel; i++) err = fmax(err, fabs(g[i] - r[i]));
  free(g);
  err /= scale;
  CHECK(err <= tol, "%s vs %s: max err %.3g (scale %.3g) > %.3g", what, name, err, scale, tol);
  printf("%-22s max |samx - P2SAM| / max(1, |ref|) = %.3g\n", what, err);
  return err;
}

// Pixels that disagree between the assembled logit > 0 and the reference mask.
static void compare_mask(SamxTensor *assembled, const char *name) {
  const SamxSTEntry *e = want(name);
  if (!e) return;
  float *g = (float *)malloc(sizeof(float) * (size_t)assembled->numel);
  samx_tensor_read_f32(assembled, g);
  int64_t diff = 0;
  for (int64_t i = 0; i < e->numel; i++) diff += (g[i] > 0) != (((const uint8_t *)e->data)[i] != 0);
  free(g);
  CHECK(diff == 0, "%s: %lld pixels differ", name, (long long)diff);
  printf("%-22s %lld of %lld pixels differ\n", "mask (logit > 0)", (long long)diff, (long long)e->numel);
}

static void stage2(const char *dir, SamxDevice dev) {
  char ck[600], mw[600];
  snprintf(ck, sizeof ck, "%s/work/checkpoint/final_weights.pth", dir);
  snprintf(mw, sizeof mw, "%s/work/checkpoint/last_mask_weights_epoch_101.pt", dir);
  SamMethodModel mm;
  int stage1 = -1;
  if (p2sam_load_authors(&mm, ck, NULL, mw, "epoch_10", 0, dev, &stage1) != 0) {
    CHECK(0, "load %s: %s", ck, samx_last_error());
    return;
  }
  CHECK(stage1 == 0 && mm.sam.cfg.img_size == 128 && mm.sam.cfg.num_mask_tokens == 9, "final_weights: stage %d, size %d, tokens %d",
        stage1, mm.sam.cfg.img_size, mm.sam.cfg.num_mask_tokens);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *pixels = input(&ctx, "in.image_oc"), *mu, *log_sigma;
  p2sam_prior(&ctx, &mm, pixels, &mu, &log_sigma);
  compare("mu", mu, "fwd.mu", 1e-5);
  compare("log sigma", log_sigma, "fwd.log_sigma", 1e-5);
  SamxTensor *z = samx_gaussian_reparam(&ctx, mu, log_sigma, input(&ctx, "in.eps"));
  compare("z", z, "fwd.z", 1e-5);
  SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  compare("image embeddings", emb, "fwd.image_embeddings", 1e-4);
  SamxTensor *dense = p2sam_dense_prompt(&ctx, &mm, z, 2);
  compare("dense prompt (Fcomb)", dense, "fwd.dense_prompt", 1e-5);
  SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, dense), *masks, *assembled;
  compare("low-res logits", low, "fwd.low_res_logits", 1e-4);
  p2sam_assemble(&ctx, &mm, low, &masks, &assembled);
  compare("masks (128 px)", masks, "fwd.masks", 1e-4);
  compare("assembled logit", assembled, "fwd.assembled", 1e-4);
  compare_mask(assembled, "fwd.pred");
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

static void stage1(const char *dir, SamxDevice dev) {
  char ck[600], mw[600], base[600];
  snprintf(ck, sizeof ck, "%s/work/checkpoint/last_model_epoch_101.pth", dir);
  snprintf(mw, sizeof mw, "%s/work/checkpoint/last_mask_weights_epoch_101.pt", dir);
  snprintf(base, sizeof base, "%s/work/sam_vit_b_01ec64.pth", dir);
  SamMethodModel mm;
  int is1 = -1;
  if (p2sam_load_authors(&mm, ck, base, mw, NULL, 0, dev, &is1) != 0) {
    CHECK(0, "load %s: %s", ck, samx_last_error());
    return;
  }
  CHECK(is1 == 1, "%s not recognised as a stage-1 file", ck);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *pixels = input(&ctx, "in.image_oc");
  SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, NULL, 2)), *masks, *assembled;
  compare("stage 1 low-res", low, "s1.low_res_logits", 1e-4);
  p2sam_assemble(&ctx, &mm, low, &masks, &assembled);
  compare("stage 1 masks", masks, "s1.masks", 1e-4);
  compare("stage 1 assembled", assembled, "s1.assembled", 1e-4);
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

int main(int argc, char **argv) {
  int cuda = argc > 1 && !strcmp(argv[1], "cuda");
  const char *dir = argc > 1 && !cuda ? argv[1] : getenv("SAMX_P2SAM_ORACLE") ? getenv("SAMX_P2SAM_ORACLE") : "tests/data/p2sam";
  if (cuda && samx_cuda_device_count() == 0) {
    printf("skipped: no CUDA device\n");
    return SAMX_TEST_SKIP;
  }
  SamxDevice dev = cuda ? (SamxDevice){SAMX_CUDA, 0} : samx_cpu();
  char p[600];
  snprintf(p, sizeof p, "%s/p2sam_tiny_cases.safetensors", dir);
  if (samx_st_open(&ref, p) != 0) {
    CHECK(0, "%s", samx_last_error());
    return samx_test_summary();
  }
  ref_open = 1;
  stage2(dir, dev);
  stage1(dir, dev);
  samx_st_close(&ref);
  return samx_test_summary();
}
