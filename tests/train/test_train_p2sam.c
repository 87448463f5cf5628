// `samx train` with method.name = p2sam on a tiny SAM (32 px) and synthetic data, through the command line:
//  - stage 1 trains (the loss falls), its checkpoint loads back through sam_method_load as a P2SAM at 32 px with
//    9 mask tokens, LoRA's B (zero at the start) has moved, and sam.safetensors (LoRA merged) loads with sam_load;
//  - stage 2 from stage 1's run directory writes a snapshot of the prompt-generation network every epoch, changes
//    the prior network and Fcomb and leaves SAM, LoRA and the assembling weights bit for bit as stage 1 left them;
//  - stage 2 without p2sam.from is a configuration error;
//  - data.train_first: the loader visits only the split's first N rows (every epoch, shuffled), and stage 2
//    with train_first = 8 runs 2 steps of batch 4 per epoch;
//  - stage 2 from `samx embed` of stage 1's checkpoint logs the losses of the run without the cache (lr 0:
//    the same parameters at every step; 1e-5 relative, the encoder's batch differs), and a cache of another
//    crop or a cache in stage 1 is refused;
//  - p2sam.crop: stage 1 on 16 px windows trains and validates; samx infer on that stage-1 checkpoint gives 1
//    hypothesis per row, empty outside the window of the row's annotators; samx infer on stage 2 with
//    --snapshots 1,2 --samples 2 writes 4 hypotheses;
//  - p2sam.assemble = convex: the checkpoint loads back convex (its metadata), its 8 weights positive and summing to 1.
// argv[1] "cuda": stage 1 and stage 2 (from the same stage-1 run) on cuda:0 log the CPU runs' losses step by
// step (relative 1e-3: f32 reduction order differs and the difference grows over the steps), and stage 2 on
// cuda:0 leaves the frozen parts bit for bit as stage 1 left them.
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/predictions.h"
#include "data/prompts.h"
#include "data/synthetic.h"
#include "models/p2sam/p2sam.h"

static char dir[256], data[512], err_text[8192];
static const char *device_name = "cpu";

#define samx_run(...) samx_test_run_samx(dir, 1, err_text, sizeof err_text, __VA_ARGS__)

static void write_config(const char *name, const char *body) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "[run]\ndevice = %s\nprecision = fp32\nact_mem_mb = 1024\n"
          "[model]\narch = tiny\nimg_size = 32\npatch = 8\nenc_dim = 16\nenc_depth = 1\nenc_heads = 2\n"
          "enc_mlp = 32\nwindow = 2\nglobal_blocks = 0\nprompt_dim = 16\ndec_heads = 2\ndec_mlp = 32\niou_hidden = 16\n"
          "[method]\nname = p2sam\nmasks = 2\n[data]\npath = %s\n"
          "[optim]\nbatch_size = 4\nschedule = constant\nclip_norm = 0\n"
          "[train]\nval_every = 0\nval_samples = 4\nsave_every = 0\n[log]\nprogress = none\n%s",
          device_name, data, body);
  fclose(f);
}

static float *read_param(SamMethodModel *mm, const char *name, int64_t *n) {
  SamxTensor *t = samx_params_find(&mm->sam.params, name);
  if (!t) return NULL;
  float *v = (float *)malloc(sizeof(float) * (size_t)t->numel);
  samx_tensor_read_f32(t, v);
  *n = t->numel;
  return v;
}

// 1 when parameter `name` is bit-identical in a and b.
static int same(SamMethodModel *a, SamMethodModel *b, const char *name) {
  int64_t na = 0, nb = 0;
  float *x = read_param(a, name, &na), *y = read_param(b, name, &nb);
  int eq = x && y && na == nb && !memcmp(x, y, sizeof(float) * (size_t)na);
  free(x), free(y);
  return eq;
}

// The training losses of run `run`, in step order; returns how many (at most max).
static int losses(const char *run, double *out, int max) {
  char path[512], line[4096];
  snprintf(path, sizeof path, "%s/%s/log.jsonl", dir, run);
  FILE *f = fopen(path, "r");
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    json_t *o = json_loads(line, 0, NULL);
    json_t *l = json_object_get(o, "loss");
    if (l && !json_object_get(o, "val") && n < max) out[n++] = json_number_value(l);
    json_decref(o);
  }
  if (f) fclose(f);
  return n;
}

// The first (first = 1) or last training loss of run `run`; NaN without any.
static double loss_at(const char *run, int first) {
  static double l[1024];
  int n = losses(run, l, 1024);
  return n == 0 ? NAN : first ? l[0] : l[n - 1];
}

// Config `ini` (stage `stage`) run for `steps` steps on the CPU and on cuda:0: the same losses.
static void parity(const char *ini, int stage, int steps) {
  double l[2][16];
  int n[2];
  const char *devs[2] = {"cpu", "cuda"};
  for (int d = 0; d < 2; d++) {
    char set[400];
    snprintf(set, sizeof set, "run.dir=%s/s%d_%s", dir, stage, devs[d]);
    int rc = samx_run("train %s/%s --set %s --set run.device=%s --set train.steps=%d", dir, ini, set, devs[d], steps);
    CHECK(rc == 0, "stage %d on %s: exit %d: %s", stage, devs[d], rc, err_text);
    snprintf(set, sizeof set, "s%d_%s", stage, devs[d]);
    n[d] = losses(set, l[d], 16);
  }
  double worst = 0;
  for (int i = 0; i < n[0] && i < n[1]; i++) worst = fmax(worst, fabs(l[1][i] - l[0][i]) / (1e-6 + fabs(l[0][i])));
  CHECK(n[0] == steps && n[1] == steps && worst <= 1e-3, "stage %d: %d cuda losses, %d cpu, worst rel diff %.3g", stage,
        n[1], n[0], worst);
  CHECK(n[1] == steps && l[1][0] != l[1][steps - 1], "stage %d on cuda: the loss never changed", stage);
  printf("stage %d: %d steps on cuda, losses %.5f -> %.5f, worst rel diff to cpu %.2g\n", stage, n[1], l[1][0],
         l[1][n[1] > 0 ? n[1] - 1 : 0], worst);
}

// data.train_first: the loader's rows, and the steps of a stage-2 epoch.
static void check_train_first(const char *run1) {
  SamxLoaderOpts o = samx_loader_defaults();
  o.batch = 3, o.first = 5, o.prefetch = 0, o.seed = 9;
  SamxLoader *l = samx_loader_open(data, &o);
  SamxDataset *ds = samx_dataset_open(data);
  CHECK(l && ds, "open %s: %s", data, samx_last_error());
  if (l && ds) {
    int64_t all[64], rows[64], n = samx_dataset_split_rows(ds, SAMX_SPLIT_TRAIN, all, 64);
    CHECK(samx_loader_split_rows(l) == 5 && n > 5, "train_first 5: %lld rows of %lld", (long long)samx_loader_split_rows(l), (long long)n);
    for (int e = 0; e < 3; e++) {
      int64_t m = samx_loader_epoch_rows(l, e, rows, 64), hit = 0;
      for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < 5; j++) hit += rows[i] == all[j];
      CHECK(m == 5 && hit == 5, "epoch %d visits %lld rows, %lld of them among the split's first 5", e, (long long)m, (long long)hit);
    }
  }
  if (l) samx_loader_close(l);
  if (ds) samx_dataset_close(ds);
  char body[700], cfg[500];
  snprintf(body, sizeof body, "[p2sam]\nstage = 2\nfrom = %s\nsnapshot_every = 0\n[data]\ntrain_first = 8\n[train]\nepochs = 1\n", run1);
  write_config("tf.ini", body);
  snprintf(cfg, sizeof cfg, "%s/tf.ini", dir);
  int rc = samx_run("train %s --set run.dir=%s/tf", cfg, dir);
  double ls[16];
  int n = losses("tf", ls, 16);
  CHECK(rc == 0 && n == 2, "stage 2 with train_first 8, batch 4, 1 epoch: exit %d, %d steps (want 2): %s", rc, n, err_text);
}

// Stage 2 from the embedding cache of stage 1's encoder: the losses of the run without it.
static void check_cache(const char *run1) {
  char body[900], cfg[500];
  int rc = samx_run("embed --checkpoint %s/checkpoints/final.safetensors --data %s --split train --out %s/emb.h5 --device %s", run1,
                    data, dir, device_name);
  CHECK(rc == 0, "samx embed of the stage-1 checkpoint: exit %d: %s", rc, err_text);
  snprintf(body, sizeof body, "[p2sam]\nstage = 2\nfrom = %s\nsnapshot_every = 0\n[optim]\nlr = 0\n[train]\nsteps = 4\n", run1);
  write_config("c.ini", body);
  snprintf(cfg, sizeof cfg, "%s/c.ini", dir);
  int ra = samx_run("train %s --set run.dir=%s/nocache", cfg, dir);
  int rb = samx_run("train %s --set run.dir=%s/cache --set data.embeddings=%s/emb.h5", cfg, dir, dir);
  CHECK(ra == 0 && rb == 0, "stage 2 without / with the cache: exit %d %d: %s", ra, rb, err_text);
  double la[8], lb[8], worst = 0;
  int na = losses("nocache", la, 8), nb = losses("cache", lb, 8);
  for (int i = 0; i < na && i < nb; i++) worst = fmax(worst, fabs(la[i] - lb[i]) / fabs(la[i]));
  CHECK(na == 4 && nb == 4 && worst < 1e-5 && la[0] != la[1], "cache: %d and %d losses, worst rel diff %.3g", na, nb, worst);
  printf("stage 2 from the embedding cache: 4 losses within %.2g of the encoder's\n", worst);
  rc = samx_run("train %s --set run.dir=%s/cache2 --set data.embeddings=%s/emb.h5 --set p2sam.crop=8", cfg, dir, dir);
  CHECK(rc == 1 && strstr(err_text, "use crop 0"), "a cache of another crop: exit %d: %s", rc, err_text);
  rc = samx_run("train %s/s1.ini --set run.dir=%s/cache3 --set data.embeddings=%s/emb.h5", dir, dir, dir);
  CHECK(rc == 1 && strstr(err_text, "stage 1 trains LoRA"), "a cache in stage 1: exit %d: %s", rc, err_text);
}

// p2sam.crop in training and samx infer (stage 1: one hypothesis, pasted into its window); stage 2's count.
static void check_crop(const char *run2) {
  char cfg[500];
  snprintf(cfg, sizeof cfg, "%s/s1.ini", dir);
  int rc = samx_run("train %s --set run.dir=%s/crop --set p2sam.crop=16 --set train.steps=4 --set train.val_every=2", cfg, dir);
  CHECK(rc == 0, "stage 1 with p2sam.crop 16: exit %d: %s", rc, err_text);
  rc = samx_run("infer --method p2sam --checkpoint %s/crop/checkpoints/final.safetensors --data %s --split all --device %s "
                "--out %s/crop.h5 -q", dir, data, device_name, dir);
  CHECK(rc == 0, "infer on the cropped stage-1 run: exit %d: %s", rc, err_text);
  char pred[400];
  snprintf(pred, sizeof pred, "%s/crop.h5", dir);
  SamxPredictions *p = samx_predictions_open(pred);
  SamxDataset *ds = samx_dataset_open(data);
  if (p && ds) {
    int64_t H = samx_dataset_h(ds), W = samx_dataset_w(ds), K = samx_dataset_k(ds), outside = 0, inside = 0;
    uint8_t *m = (uint8_t *)malloc((size_t)(H * W)), *gt = (uint8_t *)malloc((size_t)(K * H * W));
    CHECK(samx_predictions_m(p) == 1 && samx_predictions_n(p) == samx_dataset_n(ds), "stage-1 infer: M %lld, N %lld",
          (long long)samx_predictions_m(p), (long long)samx_predictions_n(p));
    for (int64_t i = 0; i < samx_predictions_n(p); i++) {
      int64_t row = samx_predictions_index(p)[i], at[2];
      if (samx_predictions_read_masks(p, i, m) || samx_dataset_read_masks(ds, row, gt)) break;
      samx_prompt_crop_window(gt, samx_dataset_annotator_valid(ds) + row * K, K, H, W, 16, at);
      for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
          int in = y >= at[0] && y < at[0] + 16 && x >= at[1] && x < at[1] + 16;
          outside += !in && m[y * W + x], inside += in && m[y * W + x];
        }
    }
    CHECK(outside == 0, "%lld predicted pixels outside the 16 px windows (%lld inside)", (long long)outside, (long long)inside);
    printf("crop 16: %lld predicted pixels, all inside the rows' windows\n", (long long)inside);
    free(m), free(gt);
  } else {
    CHECK(0, "open %s / %s: %s", pred, data, samx_last_error());
  }
  if (p) samx_predictions_close(p);
  if (ds) samx_dataset_close(ds);
  rc = samx_run("infer --method p2sam --checkpoint %s/checkpoints/final.safetensors --snapshots 1,2 --samples 2 --data %s "
                "--split all --device %s --out %s/s2.h5 -q", run2, data, device_name, dir);
  snprintf(pred, sizeof pred, "%s/s2.h5", dir);
  p = rc == 0 ? samx_predictions_open(pred) : NULL;
  CHECK(p && samx_predictions_m(p) == 4, "stage 2, 2 snapshots x 2 samples: exit %d, M %lld: %s", rc,
        p ? (long long)samx_predictions_m(p) : -1LL, err_text);
  if (p) samx_predictions_close(p);
}

static void check_convex(void) {
  int rc = samx_run("train %s/s1.ini --set run.dir=%s/convex --set p2sam.assemble=convex --set train.steps=3", dir, dir);
  CHECK(rc == 0, "stage 1 with convex assembling: exit %d: %s", rc, err_text);
  char ck[400];
  snprintf(ck, sizeof ck, "%s/convex/checkpoints/final.safetensors", dir);
  SamMethodModel mm;
  if (rc == 0 && sam_method_load(&mm, ck, samx_cpu(), 0) == 0) {
    SamxCtx ctx;
    samx_ctx_init(&ctx, samx_cpu(), 1 << 20, 64);
    float w[P2SAM_MASKS], sum = 0, lo = 1;
    samx_tensor_read_f32(p2sam_weights(&ctx, &mm), w);
    for (int j = 0; j < P2SAM_MASKS; j++) sum += w[j], lo = fminf(lo, w[j]);
    CHECK(mm.variant == P2SAM_ASSEMBLE_CONVEX && lo > 0 && fabsf(sum - 1) < 1e-6 && w[0] != w[1],
          "convex checkpoint: variant %d, min weight %g, sum %.7f", mm.variant, lo, sum);
    printf("convex assembling after 3 steps: w0 %.4f, w1 %.4f, sum %.7f\n", w[0], w[1], sum);
    samx_ctx_free(&ctx);
    sam_method_free(&mm);
  } else {
    CHECK(0, "load %s: %s", ck, samx_last_error());
  }
}

static int cuda_main(void) {
  write_config("s1.ini", "[p2sam]\nstage = 1\nimg_size = 32\n[optim]\nlr = 3e-3\n[train]\nsteps = 4\n");
  parity("s1.ini", 1, 4);
  char body[700], from[400], ck1[500], ck2[500];
  snprintf(from, sizeof from, "%s/s1_cpu", dir);
  snprintf(body, sizeof body, "[p2sam]\nstage = 2\nfrom = %s\nsnapshot_every = 0\n[optim]\nlr = 1e-3\n[train]\nsteps = 4\n", from);
  write_config("s2.ini", body);
  parity("s2.ini", 2, 4);
  snprintf(ck1, sizeof ck1, "%s/checkpoints/final.safetensors", from);
  snprintf(ck2, sizeof ck2, "%s/s2_cuda/checkpoints/final.safetensors", dir);
  SamMethodModel a, b;
  if (sam_method_load(&a, ck1, samx_cpu(), 0) == 0) {
    if (sam_method_load(&b, ck2, samx_cpu(), 0) == 0) {
      const char *frozen[] = {"p2sam.w_a_000", "p2sam.w_b_000", "p2sam.mask_weights.weights", "mask_decoder.mask_tokens.weight"};
      for (int i = 0; i < 4; i++) CHECK(same(&a, &b, frozen[i]), "stage 2 on cuda changed %s", frozen[i]);
      CHECK(!same(&a, &b, "p2sam.fcomb.last_layer.weight"), "stage 2 on cuda left Fcomb as it was");
      sam_method_free(&b);
    } else {
      CHECK(0, "load %s: %s", ck2, samx_last_error());
    }
    sam_method_free(&a);
  } else {
    CHECK(0, "load %s: %s", ck1, samx_last_error());
  }
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) printf("note: %s failed\n", rm);
  return samx_test_summary();
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  samx_test_samx_bin(argv[0]);
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_train_p2sam") != 0) return 1;
  snprintf(data, sizeof data, "%s/syn.h5", dir);
  SamxSyntheticParams sp = samx_synthetic_defaults();
  sp.n = 24, sp.size = 32, sp.k = 4, sp.slices_per_case = 4, sp.seed = 5;
  if (samx_pack_synthetic(data, &sp) != 0) return printf("FAIL synthetic data: %s\n", samx_last_error()), 1;
  char run1[300], run2[300];
  snprintf(run1, sizeof run1, "%s/s1", dir);
  snprintf(run2, sizeof run2, "%s/s2", dir);
  if (dev.type == SAMX_CUDA) return cuda_main();

  write_config("s1.ini", "[p2sam]\nstage = 1\nimg_size = 32\n[optim]\nlr = 3e-3\n[train]\nsteps = 16\n");
  char cfg[600], set[600];
  snprintf(cfg, sizeof cfg, "%s/s1.ini", dir);
  snprintf(set, sizeof set, "run.dir=%s", run1);
  int rc = samx_run("train %s --set %s", cfg, set);
  CHECK(rc == 0, "stage 1 exit %d: %s", rc, err_text);
  double l0 = loss_at("s1", 1), l1 = loss_at("s1", 0);
  CHECK(l1 < l0, "stage 1 loss did not fall: %g -> %g", l0, l1);
  printf("stage 1 loss %.2f -> %.2f over 16 steps\n", l0, l1);

  char ck1[400], ck2[400], sam1[400];
  snprintf(ck1, sizeof ck1, "%s/checkpoints/final.safetensors", run1);
  snprintf(ck2, sizeof ck2, "%s/checkpoints/final.safetensors", run2);
  snprintf(sam1, sizeof sam1, "%s/sam.safetensors", run1);
  SamMethodModel a, b;
  rc = sam_method_load(&a, ck1, samx_cpu(), 0);
  CHECK(rc == 0, "load %s: %s", ck1, samx_last_error());
  if (rc == 0) {
    CHECK(a.method == SAM_METHOD_P2SAM && a.sam.cfg.img_size == 32 && a.sam.cfg.num_mask_tokens == 9 && a.sam.lora[0][0],
          "stage-1 checkpoint: method %d, size %d, tokens %d", a.method, a.sam.cfg.img_size, a.sam.cfg.num_mask_tokens);
    int64_t n = 0;
    float *wb = read_param(&a, "p2sam.w_b_000", &n);
    double s = 0;
    for (int64_t i = 0; wb && i < n; i++) s += fabs(wb[i]);
    free(wb);
    CHECK(s > 0, "LoRA B of block 0 is still zero after stage 1");
  }
  SamModel plain;
  rc = sam_load(&plain, sam1, samx_cpu(), 0, NULL);
  CHECK(rc == 0 && plain.cfg.num_mask_tokens == 9, "sam.safetensors: %s", rc ? samx_last_error() : "wrong tokens");
  if (rc == 0) sam_free(&plain);

  char body[700];
  snprintf(body, sizeof body, "[p2sam]\nstage = 2\nfrom = %s\nsnapshot_every = 1\n[optim]\nlr = 1e-3\n[train]\nepochs = 2\n", run1);
  write_config("s2.ini", body);
  snprintf(cfg, sizeof cfg, "%s/s2.ini", dir);
  snprintf(set, sizeof set, "run.dir=%s", run2);
  rc = samx_run("train %s --set %s", cfg, set);
  CHECK(rc == 0, "stage 2 exit %d: %s", rc, err_text);
  for (int e = 1; e <= 2; e++) {
    char snap[500];
    struct stat st;
    snprintf(snap, sizeof snap, "%s/checkpoints/snapshot_epoch_%d.safetensors", run2, e);
    CHECK(stat(snap, &st) == 0, "%s missing", snap);
  }
  if (sam_method_load(&b, ck2, samx_cpu(), 0) == 0 && a.sam.params.list) {
    const char *frozen[] = {"p2sam.w_a_000", "p2sam.w_b_001", "p2sam.mask_weights.weights", "mask_decoder.mask_tokens.weight",
                            "image_encoder.blocks.0.attn.qkv.weight", "prompt_encoder.no_mask_embed.weight"};
    for (int i = 0; i < 6; i++) CHECK(same(&a, &b, frozen[i]), "stage 2 changed %s", frozen[i]);
    CHECK(!same(&a, &b, "p2sam.fcomb.last_layer.weight") && !same(&a, &b, "p2sam.prior_dense.conv_layer.weight"),
          "stage 2 left the prompt-generation network as it was");
    sam_method_free(&b);
  } else {
    CHECK(0, "load %s: %s", ck2, samx_last_error());
  }
  if (a.sam.params.list) sam_method_free(&a);

  // stage 2 stopped after 2 steps and resumed gives the uninterrupted run's losses (z's draws included)
  snprintf(body, sizeof body, "[p2sam]\nstage = 2\nfrom = %s\nsnapshot_every = 0\n[optim]\nlr = 1e-4\n[train]\nsteps = 4\nsave_every = 2\n", run1);
  write_config("s2r.ini", body);
  snprintf(cfg, sizeof cfg, "%s/s2r.ini", dir);
  int ra = samx_run("train %s --set run.dir=%s/ra", cfg, dir);
  int rb = samx_run("train %s --set run.dir=%s/rb --set train.steps=2", cfg, dir);
  int rc2 = samx_run("train %s --set run.dir=%s/rb --resume auto", cfg, dir);
  CHECK(ra == 0 && rb == 0 && rc2 == 0, "stage-2 resume runs: %d %d %d: %s", ra, rb, rc2, err_text);
  double a4 = loss_at("ra", 0), b4 = loss_at("rb", 0);
  CHECK(a4 == b4 && isfinite(a4), "stage 2 resumed: last loss %.9g, uninterrupted %.9g", b4, a4);
  printf("stage 2 resumed at step 2: step-4 loss %.9g = uninterrupted %.9g\n", b4, a4);

  check_train_first(run1);
  check_cache(run1);
  check_crop(run2);
  check_convex();

  write_config("bad.ini", "[p2sam]\nstage = 2\n[train]\nsteps = 1\n");
  snprintf(cfg, sizeof cfg, "%s/bad.ini", dir);
  snprintf(set, sizeof set, "run.dir=%s/bad", dir);
  rc = samx_run("train %s --set %s", cfg, set);
  CHECK(rc == 1 && strstr(err_text, "[p2sam] from is required"), "stage 2 without from: exit %d, %s", rc, err_text);
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) printf("note: %s failed\n", rm);
  return samx_test_summary();
}
