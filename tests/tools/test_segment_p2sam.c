// `samx segment` on a P²SAM model (contracts §6) against the authors' code: image 0 of the oracle's batch
// (its pixels are k/255, so an 8-bit PNG holds it exactly) and its eps through --noise; the committed
// snapshot (tests/data/p2sam) as --checkpoint. --tensors must match the oracle's mu, log sigma, z, image
// embeddings, low-res logits and assembled logit, and --out its mask; without --noise, --seed draws eps
// reproducibly. argv[1] "cuda": the model on cuda:0 (--device cuda:0), against the same reference and
// against a CPU run of the same command; the conversion checks (device-independent) run in the CPU entry.
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/image_io.h"
#include "data/predictions.h"

static char dir[256], err_text[4096];
#define samx_run(...) samx_test_run_samx(dir, 0, err_text, sizeof err_text, __VA_ARGS__)

static SamxSafetensors ref, out;
static const char *device = "cpu";

// Max |out[name] - ref[key][row 0]| / max(1, |ref|).
static void compare(const char *name, const char *key, double tol) {
  const SamxSTEntry *o = samx_st_find(&out, name), *r = samx_st_find(&ref, key);
  if (!o || !r) {
    CHECK(0, "%s or %s missing", name, key);
    return;
  }
  int64_t n = o->numel;
  CHECK(r->numel == 2 * n, "%s: %lld values, the reference row has %lld", name, (long long)n, (long long)(r->numel / 2));
  const float *a = (const float *)o->data, *b = (const float *)r->data;
  double err = 0, scale = 1;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(a[i] - b[i]));
  CHECK(err / scale <= tol, "%s vs %s: %g", name, key, err / scale);
  printf("%-18s vs the authors' code: %.3g\n", name, err / scale);
}

// --seed: the same draw twice gives the same z.
static void seed_checks(const char *ck, const char *png, const char *mask, const char *tens, const char *tens2) {
  int rc = samx_run("segment --checkpoint %s --image %s --seed 7 --device %s --precision fp32 --out %s --tensors %s", ck, png, device, mask, tens);
  int rc2 = samx_run("segment --checkpoint %s --image %s --seed 7 --device %s --precision fp32 --out %s --tensors %s", ck, png, device, mask, tens2);
  CHECK(rc == 0 && rc2 == 0, "--seed runs: %s", err_text);
  SamxSafetensors s1, s2;
  if (rc == 0 && rc2 == 0 && samx_st_open(&s1, tens) == 0 && samx_st_open(&s2, tens2) == 0) {
    const SamxSTEntry *z1 = samx_st_find(&s1, "z"), *z2 = samx_st_find(&s2, "z");
    CHECK(z1 && z2 && !memcmp(z1->data, z2->data, z1->nbytes), "--seed 7 twice gave different z");
    samx_st_close(&s1), samx_st_close(&s2);
  }
}

static int finish(void) {
  samx_st_close(&ref);
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) printf("note: %s failed\n", rm);
  return samx_test_summary();
}

// Every tensor of run a's --tensors against run b's: max |a - b| / max(1, |b|) <= tol[k]. Masks: equal
// when band is 0, else a pixel may differ only where b's assembled logit is within band of 0.
static void compare_runs(const char *what, const char *a_file, const char *b_file, const double tol[6], double band) {
  SamxSafetensors a, b;
  if (samx_st_open(&a, a_file) != 0 || samx_st_open(&b, b_file) != 0) {
    CHECK(0, "%s", samx_last_error());
    return;
  }
  static const char *names[] = {"prior_mu", "prior_log_sigma", "z", "image_embeddings", "low_res_logits", "assembled_logits"};
  for (int k = 0; k < 6; k++) {
    const SamxSTEntry *x = samx_st_find(&a, names[k]), *y = samx_st_find(&b, names[k]);
    if (!x || !y || x->numel != y->numel) {
      CHECK(0, "%s missing or of another size in one of the runs (%s)", names[k], what);
      continue;
    }
    const float *u = (const float *)x->data, *v = (const float *)y->data;
    double err = 0, scale = 1;
    for (int64_t i = 0; i < x->numel; i++) scale = fmax(scale, fabs(v[i])), err = fmax(err, fabs(u[i] - v[i]));
    CHECK(err / scale <= tol[k], "%s: %s %g > %g", names[k], what, err / scale, tol[k]);
    printf("%-18s %s: %.3g\n", names[k], what, err / scale);
  }
  const SamxSTEntry *x = samx_st_find(&a, "masks"), *y = samx_st_find(&b, "masks"), *l = samx_st_find(&b, "assembled_logits");
  CHECK(x && y && l && x->nbytes == y->nbytes && l->numel == y->numel, "masks or logits missing (%s)", what);
  if (x && y && l && x->nbytes == y->nbytes && l->numel == y->numel) {
    const uint8_t *p = (const uint8_t *)x->data, *q = (const uint8_t *)y->data;
    int64_t differ = 0, decided = 0;
    for (int64_t i = 0; i < y->numel; i++)
      if ((p[i] != 0) != (q[i] != 0)) differ++, decided += fabs(((const float *)l->data)[i]) >= band;
    CHECK(decided == 0, "masks (%s): %lld pixels differ, %lld of them where |logit| >= %g", what, (long long)differ,
          (long long)decided, band);
    printf("masks %s: %lld of %lld pixels differ (all within %g of the threshold)\n", what, (long long)differ,
           (long long)y->numel, band);
  }
  samx_st_close(&a), samx_st_close(&b);
}

// Inference in bf16 precision (the encoder's activations and attention in bf16, the LoRA qkv in fp32)
// against the fp32 run of the same device. bf16 keeps 8 significant bits; the prompt network's
// convolutions are bf16 GEMMs too (mu, log sigma and z measured within 0.0021 of fp32: tolerance
// 0.01), the image embeddings carry the encoder's ~1% (test_sam_golden_bf16: EMB_TOL; measured 0.0077
// here), and the logits what the decoder's bf16 GEMMs, attentions, convolutions and upscaling add to it
// (0.0106 low-res, 0.0213 assembled; 94 of 16,384 mask pixels flip, all within 0.03 of the threshold).
static void bf16_checks(const char *ck, const char *png, const char *noise, const char *mask, const char *fp32_tensors,
                        const char *tens) {
  int rc = samx_run("segment --checkpoint %s --image %s --noise %s --device %s --precision bf16 --out %s --tensors %s", ck,
                    png, noise, device, mask, tens);
  CHECK(rc == 0, "samx segment --precision bf16 exit %d: %s", rc, err_text);
  static const double tol[6] = {0.01, 0.01, 0.01, 0.02, 0.03, 0.03};
  if (rc == 0) compare_runs("bf16 vs fp32", tens, fp32_tensors, tol, 0.03);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CUDA) device = "cuda:0";
  samx_test_samx_bin(argv[0]);
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_segment_p2sam") != 0) return 1;
  if (samx_st_open(&ref, "tests/data/p2sam/p2sam_tiny_ref.safetensors") != 0) {
    CHECK(0, "%s", samx_last_error());
    return samx_test_summary();
  }
  const SamxSTEntry *img = samx_st_find(&ref, "in.image_oc"), *eps = samx_st_find(&ref, "in.eps");
  uint8_t px[128 * 128];
  for (int i = 0; i < 128 * 128; i++) px[i] = (uint8_t)lrintf(((const float *)img->data)[i] * 255.0f);
  char png[400], noise[400], mask[400], tens[400], tens2[400];
  snprintf(png, sizeof png, "%s/img.png", dir);
  snprintf(noise, sizeof noise, "%s/eps.safetensors", dir);
  snprintf(mask, sizeof mask, "%s/mask.png", dir);
  snprintf(tens, sizeof tens, "%s/t.safetensors", dir);
  snprintf(tens2, sizeof tens2, "%s/t2.safetensors", dir);
  CHECK(samx_png_write(png, px, 128, 128, 1) == 0, "png: %s", samx_last_error());
  SamxSTWriter *w = samx_st_writer_new();
  int64_t es[2] = {1, 256};
  samx_st_writer_add(w, "eps", SAMX_F32, 2, es, eps->data);
  CHECK(samx_st_writer_save(w, noise) == 0, "eps file");
  samx_st_writer_free(w);
  const char *ck = "tests/data/p2sam/p2sam_tiny_weights.safetensors";
  int rc = samx_run("segment --checkpoint %s --image %s --noise %s --device %s --precision fp32 --out %s --tensors %s", ck, png, noise, device, mask, tens);
  CHECK(rc == 0, "samx segment exit %d: %s", rc, err_text);
  if (rc == 0 && samx_st_open(&out, tens) == 0) {
    compare("prior_mu", "fwd.mu", 1e-5);
    compare("prior_log_sigma", "fwd.log_sigma", 1e-5);
    compare("z", "fwd.z", 1e-5);
    compare("image_embeddings", "fwd.image_embeddings", 1e-4);
    compare("low_res_logits", "fwd.low_res_logits", 1e-4);
    compare("assembled_logits", "fwd.assembled", 1e-4);
    const SamxSTEntry *m = samx_st_find(&out, "masks"), *p = samx_st_find(&ref, "fwd.pred");
    SamxImage got;
    int diff = 0;
    if (m && p && samx_image_read(mask, &got) == 0) {
      for (int i = 0; i < 128 * 128; i++)
        diff += (((const uint8_t *)m->data)[i] != 0) != (((const uint8_t *)p->data)[i] != 0) || (got.data[i] != 0) != (((const uint8_t *)m->data)[i] != 0);
      samx_image_free(&got);
    } else {
      diff = -1;
    }
    CHECK(diff == 0, "mask: %d pixels differ from the authors' (or mask.png from --tensors)", diff);
    printf("mask.png: %d of 16384 pixels differ from the authors' mask\n", diff);
    samx_st_close(&out);
  }
  if (dev.type == SAMX_CUDA) {
    rc = samx_run("segment --checkpoint %s --image %s --noise %s --device cpu --out %s --tensors %s", ck, png, noise, mask, tens2);
    CHECK(rc == 0, "samx segment --device cpu exit %d: %s", rc, err_text);
    static const double same[6] = {1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4};
    if (rc == 0) compare_runs("cuda vs cpu", tens, tens2, same, 0.0);
    bf16_checks(ck, png, noise, mask, tens, tens2);
    seed_checks(ck, png, mask, tens, tens2);
    return finish();
  }
  // samx convert --p2sam: the authors' final_weights.pth (written by torch.save now) to a samx checkpoint,
  // which segments the same
  char cmd[1200], conv[400];
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  snprintf(cmd, sizeof cmd, "%s tests/models/make_p2sam_pth.py %s %s/pth > /dev/null", py, ck, dir);
  CHECK(system(cmd) == 0, "%s failed", cmd);
  snprintf(conv, sizeof conv, "%s/conv.safetensors", dir);
  rc = samx_run("convert --p2sam %s/pth/final_weights.pth %s --mask-weights %s/pth/last_mask_weights_epoch_101.pt", dir, conv, dir);
  CHECK(rc == 0, "samx convert --p2sam exit %d: %s", rc, err_text);
  rc = samx_run("segment --checkpoint %s --image %s --noise %s --device cpu --out %s --tensors %s", conv, png, noise, mask, tens);
  CHECK(rc == 0, "segment of the converted checkpoint: exit %d: %s", rc, err_text);
  if (rc == 0 && samx_st_open(&out, tens) == 0) {
    printf("-- the converted checkpoint:\n");
    compare("z", "fwd.z", 1e-5);
    compare("assembled_logits", "fwd.assembled", 1e-4);
    samx_st_close(&out);
  }
  rc = samx_run("segment --checkpoint %s --snapshot epoch_20 --image %s --noise %s --device cpu --out %s", conv, png, noise, mask);
  CHECK(rc == 0, "segment --snapshot epoch_20 of the converted checkpoint: %s", err_text);
  // samx infer --method p2sam on the authors' final_weights.pth: snapshots x samples hypotheses per row
  char syn[400], pred[400];
  snprintf(syn, sizeof syn, "%s/syn.h5", dir);
  snprintf(pred, sizeof pred, "%s/pred.h5", dir);
  rc = samx_run("pack synthetic --out %s --n 4 --size 128 --seed 1", syn);
  if (rc == 0)
    rc = samx_run("infer --method p2sam --checkpoint %s/pth/final_weights.pth --mask-weights %s/pth/last_mask_weights_epoch_101.pt "
                  "--snapshots 10,20 --samples 2 --data %s --split all --device %s --out %s -q", dir, dir, syn, device, pred);
  CHECK(rc == 0, "samx infer --method p2sam on final_weights.pth: exit %d: %s", rc, err_text);
  SamxPredictions *pr = rc == 0 ? samx_predictions_open(pred) : NULL;
  CHECK(pr && samx_predictions_m(pr) == 4 && samx_predictions_n(pr) == 4, "infer on final_weights.pth: M %lld, N %lld",
        pr ? (long long)samx_predictions_m(pr) : -1LL, pr ? (long long)samx_predictions_n(pr) : -1LL);
  if (pr) samx_predictions_close(pr);
  seed_checks(ck, png, mask, tens, tens2);
  rc = samx_run("segment --checkpoint %s --image %s --snapshot epoch_3 --device cpu --out %s", "/nonexistent.pth", png, mask);
  CHECK(rc == 1 && strstr(err_text, "nonexistent"), "a missing checkpoint: exit %d, %s", rc, err_text);
  return finish();
}
