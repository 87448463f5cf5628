// P²SAM against the authors' code: reference tensors and checkpoints written by
// shared/tools/p2sam_oracle.py (their modules, random weights, tiny variant) are read back; samx
// loads the checkpoints natively (final_weights.pth snapshot epoch_10 + mask weights; the stage-1
// file over the base SAM, resized to 128 px) and recomputes, on the same inputs and eps:
//   stage 2: prior features' mu, log sigma, z, image embeddings, Fcomb's dense prompt, the 8 low-res
//            logits, the 8 upsampled masks, the assembled logit and mask;
//   stage 1: low-res logits, masks, assembled logit (dense prompt = no_mask_embed).
// The weights are the oracle's snapshot epoch_10 as committed (tests/models/make_p2sam_refs.py: drawn
// in half precision, stored without loss); the authors' .pth/.pt forms are written from them by
// torch.save at test time (tests/models/make_p2sam_pth.py) and loaded natively, with clear errors for
// a missing snapshot, a truncated file, a stage-1 file without --base, and a wrong mask-weights file.
// argv[1] "cuda": the same on cuda:0 (skipped without). SAMX_P2SAM_REFS: another reference directory.
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "eval/metrics.h"
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

static const char *tmp_dir;

// Stage 2: one snapshot of a whole P2SAM (final_weights.pth, or the committed safetensors copy).
static void stage2(const char *ckpt, const char *mask_weights, const char *snapshot, SamxDevice dev) {
  SamMethodModel mm;
  int stage1 = -1;
  printf("-- %s%s%s\n", ckpt, snapshot ? " snapshot " : "", snapshot ? snapshot : "");
  if (p2sam_load_authors(&mm, ckpt, NULL, mask_weights, snapshot, 0, dev, 0, &stage1) != 0) {
    CHECK(0, "load %s: %s", ckpt, samx_last_error());
    return;
  }
  CHECK(stage1 == 0 && mm.sam.cfg.img_size == 128 && mm.sam.cfg.num_mask_tokens == 9, "%s: stage %d, size %d, tokens %d",
        ckpt, stage1, mm.sam.cfg.img_size, mm.sam.cfg.num_mask_tokens);
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
  p2sam_assemble(&ctx, &mm, low, &masks, NULL, &assembled);
  compare("assembled logit", assembled, "fwd.assembled", 1e-4);
  compare_mask(assembled, "fwd.pred");
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

// Stage 1: the LoRA / prompt encoder / decoder file over a base SAM; the dense prompt is no_mask_embed.
static void stage1(const char *ckpt, const char *base, const char *mask_weights, SamxDevice dev) {
  SamMethodModel mm;
  int is1 = -1;
  printf("-- %s over %s\n", ckpt, base);
  if (p2sam_load_authors(&mm, ckpt, base, mask_weights, NULL, 0, dev, 0, &is1) != 0) {
    CHECK(0, "load %s: %s", ckpt, samx_last_error());
    return;
  }
  CHECK(is1 == 1, "%s not recognised as a stage-1 file", ckpt);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *pixels = input(&ctx, "in.image_oc");
  SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, NULL, 2)), *masks, *assembled;
  compare("stage 1 low-res", low, "s1.low_res_logits", 1e-4);
  p2sam_assemble(&ctx, &mm, low, &masks, NULL, &assembled);
  compare("stage 1 assembled", assembled, "s1.assembled", 1e-4);
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

// Every reference gradient "<prefix><name>" against the gradient of samx's parameter map(name).
static void compare_grads(SamMethodModel *mm, const char *prefix, int to_p2sam, double tol) {
  int n = 0;
  double worst = 0;
  for (int i = 0; i < ref.n; i++) {
    const char *key = ref.entries[i].name;
    if (strncmp(key, prefix, strlen(prefix))) continue;
    const char *rest = key + strlen(prefix);
    char name[256];
    snprintf(name, sizeof name, "%s%s", to_p2sam && strncmp(rest, "prompt_encoder.", 15) ? "p2sam." : "", rest);
    SamxTensor *t = samx_params_find(&mm->sam.params, name);
    if (!t || !t->grad) {
      CHECK(0, "%s: samx has no gradient for %s", key, name);
      continue;
    }
    double e = compare(name, t->grad, key, tol);
    worst = fmax(worst, e);
    n++;
  }
  printf("%d gradients (%s*), worst %.3g\n", n, prefix, worst);
  CHECK(n > 0, "no reference gradients %s*", prefix);
}

static float *target_of(void) {
  const SamxSTEntry *e = want("in.target");
  float *t = (float *)malloc(sizeof(float) * (size_t)e->numel);
  for (int64_t i = 0; i < e->numel; i++) t[i] = ((const uint8_t *)e->data)[i] ? 1.0f : 0.0f;
  return t;
}

static void compare_losses(const P2samLoss *l, const char *stage) {
  const char *parts[5] = {"ce", "dice", "focal", "reg", "total"};
  SamxTensor *v[5] = {l->ce, l->dice, l->focal, l->reg, l->total};
  for (int k = 0; k < 5; k++) {
    if (!v[k]) continue;
    char key[64], what[64];
    snprintf(key, sizeof key, "%s.loss.%s", stage, parts[k]);
    snprintf(what, sizeof what, "%s loss %s", stage, parts[k]);
    if (samx_st_find(&ref, key)) compare(what, v[k], key, 1e-5);
  }
}

// Stage-1 loss terms and the gradients of LoRA, the assembling weights and no_mask_embed.
static void loss_stage1(const char *ckpt, const char *base, const char *mask_weights) {
  SamMethodModel mm;
  if (p2sam_load_authors(&mm, ckpt, base, mask_weights, NULL, 0, samx_cpu(), P2SAM_STAGE1, NULL) != 0) {
    CHECK(0, "load %s: %s", ckpt, samx_last_error());
    return;
  }
  SamxCtx ctx;
  samx_ctx_init(&ctx, samx_cpu(), (size_t)1536 << 20, 65536);
  SamxTensor *pixels = input(&ctx, "in.image_oc");
  SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, NULL, 2)), *weighted, *assembled;
  p2sam_assemble(&ctx, &mm, low, NULL, &weighted, &assembled);
  float *target = target_of();
  P2samLoss l;
  p2sam_loss(&ctx, &mm, weighted, assembled, target, 0.0f, &l);
  free(target);
  compare_losses(&l, "s1");
  samx_params_zero_grad(&mm.sam.params);
  CHECK(samx_backward(&ctx, l.total, NULL) == 0, "stage-1 backward: %s", samx_last_error());
  compare_grads(&mm, "s1.grad.", 1, 1e-4);
  // one step of their two optimisers (Adam lr 1e-3; AdamW lr 1e-3, eps 1e-4, wd 0.01), then the loss again
  SamxOptim opt;
  p2sam_optim_init(&opt, &mm, 1, 1.0, 1e-4, 0.01);
  samx_optim_step(&opt, 1e-3f);
  samx_optim_free(&opt);
  samx_ctx_reset(&ctx);
  compare("weights after a step", p2sam_weights(&ctx, &mm), "s1.weights_eight_after_step", 1e-6);
  pixels = input(&ctx, "in.image_oc");
  emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, NULL, 2));
  p2sam_assemble(&ctx, &mm, low, NULL, &weighted, &assembled);
  target = target_of();
  p2sam_loss(&ctx, &mm, weighted, assembled, target, 0.0f, &l);
  free(target);
  compare("s1 loss after a step", l.total, "s1.loss_after_step.total", 1e-5);
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

// Stage-2 loss terms (with the regulariser) and the gradients of the prior network's head and Fcomb.
static void loss_stage2(const char *ckpt) {
  SamMethodModel mm;
  if (p2sam_load_authors(&mm, ckpt, NULL, NULL, NULL, 0, samx_cpu(), P2SAM_STAGE2, NULL) != 0) {
    CHECK(0, "load %s: %s", ckpt, samx_last_error());
    return;
  }
  SamxCtx ctx;
  samx_ctx_init(&ctx, samx_cpu(), (size_t)1536 << 20, 65536);
  SamxTensor *pixels = input(&ctx, "in.image_oc"), *mu, *log_sigma;
  p2sam_prior(&ctx, &mm, pixels, &mu, &log_sigma);
  SamxTensor *z = samx_gaussian_reparam(&ctx, mu, log_sigma, input(&ctx, "in.eps"));
  int prev = samx_ctx_set_recording(&ctx, 0);  // the encoder is frozen in stage 2
  SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  samx_ctx_set_recording(&ctx, prev);
  SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, z, 2)), *weighted, *assembled;
  p2sam_assemble(&ctx, &mm, low, NULL, &weighted, &assembled);
  float *target = target_of();
  P2samLoss l;
  p2sam_loss(&ctx, &mm, weighted, assembled, target, 1e-5f, &l);
  free(target);
  compare_losses(&l, "s2");
  samx_params_zero_grad(&mm.sam.params);
  CHECK(samx_backward(&ctx, l.total, NULL) == 0, "stage-2 backward: %s", samx_last_error());
  compare_grads(&mm, "s2.grad.", 1, 1e-4);
  SamxOptim opt;  // Adam lr 1e-6 (train_second_stage.py's default), then the loss again with the same eps
  p2sam_optim_init(&opt, &mm, 2, 1.0, 0.0, 0.0);
  samx_optim_step(&opt, 1e-6f);
  samx_optim_free(&opt);
  samx_ctx_reset(&ctx);
  pixels = input(&ctx, "in.image_oc");
  p2sam_prior(&ctx, &mm, pixels, &mu, &log_sigma);
  z = samx_gaussian_reparam(&ctx, mu, log_sigma, input(&ctx, "in.eps"));
  prev = samx_ctx_set_recording(&ctx, 0);
  emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
  samx_ctx_set_recording(&ctx, prev);
  low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, z, 2));
  p2sam_assemble(&ctx, &mm, low, NULL, &weighted, &assembled);
  target = target_of();
  p2sam_loss(&ctx, &mm, weighted, assembled, target, 1e-5f, &l);
  free(target);
  compare("s2 loss after a step", l.total, "s2.loss_after_step.total", 1e-5);
  samx_ctx_free(&ctx);
  sam_method_free(&mm);
}

// evaluate.py's metrics on its 16 predictions per image (their utils.py): samx's GED, HM-IoU (rectangular
// matching), D_max (best pair, P2SAM's empty policy), and what evaluate.py prints as "GED" (IoU of
// prediction 0 and annotator 0, its unpacking bug).
static void eval_metrics(void) {
  const SamxSTEntry *pr = want("eval.preds"), *lb = want("in.labels4");
  const SamxSTEntry *ged = want("eval.ged"), *hm = want("eval.hm_iou"), *dm = want("eval.dmax"), *gp = want("eval.ged_printed");
  if (!pr || !lb || !ged || !hm || !dm || !gp) return;
  int64_t B = pr->shape[0], N = pr->shape[1], K = lb->shape[1], npix = pr->shape[2] * pr->shape[3];
  for (int64_t b = 0; b < B; b++) {
    const uint8_t *hp[64], *ap[16];
    for (int64_t j = 0; j < N; j++) hp[j] = (const uint8_t *)pr->data + (b * N + j) * npix;
    for (int64_t k = 0; k < K; k++) ap[k] = (const uint8_t *)lb->data + (b * K + k) * npix;
    double g = samx_ged(hp, N, ap, K, npix), h = samx_hm_iou(hp, N, ap, K, npix, 0);
    double d = samx_dmax_pairs(hp, N, ap, K, npix, SAMX_EMPTY_P2SAM), i0 = samx_iou(hp[0], ap[0], npix, SAMX_EMPTY_P2SAM);
    double rg = ((const float *)ged->data)[b], rh = ((const float *)hm->data)[b], rd = ((const float *)dm->data)[b];
    double ri = ((const float *)gp->data)[b];
    CHECK(fabs(g - rg) < 1e-5 && fabs(h - rh) < 1e-5 && fabs(d - rd) < 1e-5 && fabs(i0 - ri) < 1e-5,
          "image %lld: GED %g/%g HM-IoU %g/%g D_max %g/%g printed %g/%g", (long long)b, g, rg, h, rh, d, rd, i0, ri);
    printf("image %lld: GED %.6f (theirs %.6f), HM-IoU %.6f (%.6f), D_max %.6f (%.6f); evaluate.py prints %.6f as GED\n",
           (long long)b, g, rg, h, rh, d, rd, ri);
  }
}

// Loading errors name the file and what is wrong.
static void check_error(const char *ckpt, const char *base, const char *mask_weights, const char *snapshot,
                        const char *expect) {
  SamMethodModel mm;
  int rc = p2sam_load_authors(&mm, ckpt, base, mask_weights, snapshot, 0, samx_cpu(), 0, NULL);
  CHECK(rc != 0 && strstr(samx_last_error(), expect), "loading %s: expected an error with '%s', got %s", ckpt, expect,
        rc ? samx_last_error() : "success");
  if (rc == 0) sam_method_free(&mm);
  else printf("error as expected: %s\n", samx_last_error());
}

static void path_in(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// A base trained at 256 px under the stage-1 file: pos_embed and the global blocks' rel-pos tables
// as the authors' load_from resizes them (torch's F.interpolate, written by make_p2sam_pth.py).
static void check_resize(const char *s1, const char *tmp, const char *mw) {
  char base[700], refp[700];
  path_in(base, sizeof base, tmp, "sam_base_256.pth");
  path_in(refp, sizeof refp, tmp, "resized_ref.safetensors");
  SamMethodModel mm;
  SamxSafetensors r;
  if (p2sam_load_authors(&mm, s1, base, mw, NULL, 0, samx_cpu(), 0, NULL) != 0 || samx_st_open(&r, refp) != 0) {
    CHECK(0, "resize check: %s", samx_last_error());
    return;
  }
  int n = 0;
  for (int i = 0; i < r.n; i++) {
    const SamxSTEntry *e = &r.entries[i];
    SamxTensor *t = samx_params_find(&mm.sam.params, e->name);
    if (!t || t->numel != e->numel) {
      CHECK(0, "resized %s: missing or %lld values", e->name, t ? (long long)t->numel : -1LL);
      continue;
    }
    float *v = (float *)malloc(sizeof(float) * (size_t)t->numel);
    samx_tensor_read_f32(t, v);
    double err = samx_test_max_rel(v, (const float *)e->data, t->numel);
    free(v);
    CHECK(err < 1e-6, "resized %s vs torch F.interpolate: %g", e->name, err);
    printf("%-42s resized 256 -> 128 px vs load_from: %.3g\n", e->name, err);
    n++;
  }
  CHECK(n >= 2 && mm.sam.cfg.img_size == 128, "resize check covered %d tensors", n);
  samx_st_close(&r);
  sam_method_free(&mm);
}

int main(int argc, char **argv) {
  int cuda = argc > 1 && !strcmp(argv[1], "cuda");
  const char *dir = getenv("SAMX_P2SAM_REFS") ? getenv("SAMX_P2SAM_REFS") : "tests/data/p2sam";
  if (cuda && samx_cuda_device_count() == 0) {
    printf("skipped: no CUDA device\n");
    return SAMX_TEST_SKIP;
  }
  SamxDevice dev = cuda ? (SamxDevice){SAMX_CUDA, 0} : samx_cpu();
  char p[600], w[600];
  path_in(p, sizeof p, dir, "p2sam_tiny_ref.safetensors");
  path_in(w, sizeof w, dir, "p2sam_tiny_weights.safetensors");
  if (samx_st_open(&ref, p) != 0) {
    CHECK(0, "%s", samx_last_error());
    return samx_test_summary();
  }
  ref_open = 1;
  stage2(w, NULL, NULL, dev);
  // the authors' file forms, written by torch.save at test time
  static char tmp[128], cmd[1400];
  snprintf(tmp, sizeof tmp, "/tmp/samx_test_p2sam.%d", (int)getpid());
  tmp_dir = tmp;
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  snprintf(cmd, sizeof cmd, "%s tests/models/make_p2sam_pth.py %s %s", py, w, tmp);
  CHECK(system(cmd) == 0, "%s failed", cmd);
  char fw[700], s1[700], mw[700], base[700], trunc[700];
  path_in(fw, sizeof fw, tmp, "final_weights.pth");
  path_in(s1, sizeof s1, tmp, "last_model_epoch_101.pth");
  path_in(mw, sizeof mw, tmp, "last_mask_weights_epoch_101.pt");
  path_in(base, sizeof base, tmp, "sam_base.pth");
  path_in(trunc, sizeof trunc, tmp, "truncated.pth");
  stage2(fw, mw, "epoch_10", dev);
  stage2(fw, mw, NULL, dev);  // the first snapshot of the file
  stage1(s1, base, mw, dev);
  if (!cuda) {
    eval_metrics();
    loss_stage1(s1, base, mw);
    loss_stage2(w);
    // snapshot epoch_20 differs in Fcomb's last bias only: its dense prompt is epoch_10's + 1
    SamMethodModel a, b;
    if (p2sam_load_authors(&a, fw, NULL, mw, "epoch_20", 0, dev, 0, NULL) == 0 &&
        p2sam_load_authors(&b, fw, NULL, mw, "epoch_10", 0, dev, 0, NULL) == 0) {
      // the bias has the dense prompt's channels (256), not 4: read it whole
      SamxTensor *ta = samx_params_find(&a.sam.params, "p2sam.fcomb.last_layer.bias"),
                 *tb = samx_params_find(&b.sam.params, "p2sam.fcomb.last_layer.bias");
      int plus_one = ta && tb && ta->numel == tb->numel && ta->numel >= 4;
      if (plus_one) {
        float *x = (float *)malloc(samx_nbytes(ta)), *y = (float *)malloc(samx_nbytes(tb));
        samx_tensor_read_f32(ta, x);
        samx_tensor_read_f32(tb, y);
        for (int64_t i = 0; i < ta->numel; i++) plus_one &= x[i] == y[i] + 1.0f;
        free(x), free(y);
      }
      CHECK(plus_one, "--snapshot epoch_20 did not pick that snapshot");
      sam_method_free(&a);
      sam_method_free(&b);
    } else {
      CHECK(0, "epoch_20: %s", samx_last_error());
    }
    check_resize(s1, tmp, mw);
    check_error(fw, NULL, mw, "epoch_30", "no snapshot 'epoch_30'");
    check_error(trunc, NULL, mw, NULL, "truncated.pth");
    check_error(s1, NULL, mw, NULL, "--base");
    check_error(fw, NULL, s1, NULL, "expected one tensor");
    check_error(s1, mw, mw, NULL, "--base");
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
  samx_st_close(&ref);
  return samx_test_summary();
}
