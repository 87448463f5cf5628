// samx bench infer: zero-shot inference throughput (SAM with a box, SimSAM, SQA-SAM) through the
// batch driver of `samx infer`, on synthetic CT-like images, and SimSAM's cost over plain SAM in
// units of one encoder pass (the issue: a small fraction, not the paper's 62%).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "data/synthetic.h"
#include "infer/infer.h"
#include "models/sam/sam_image.h"

#define USAGE                                                                                                  \
  "usage: samx bench infer [--method sam|simsam|sqa|all] [--model vit_b|vit_l|vit_h|tiny] [--checkpoint W]\n"   \
  "                        [--images N] [--size S] [--batch B] [--k K] [--device D] [-r REPS] [-o md|json]\n"  \
  "                        [--quick]\n"                                                                        \
  "  images/s and ms per image of each method over N synthetic S x S images (default 8 of 256 x 256),\n"      \
  "  a random-weight model of the given architecture (default vit_b; --quick: tiny, 4 images) or the\n"        \
  "  checkpoint's; the encoder alone is timed too, and SimSAM's extra time per image is reported as a\n"       \
  "  fraction of one encoder pass. Median of REPS runs (default 5; 1 with --quick).\n"

typedef struct {
  const char *method, *model, *checkpoint;
  int images, size, batch, k;
} InferBenchArgs;

static int extra_opt(const char *opt, const char *value, void *user) {
  InferBenchArgs *a = (InferBenchArgs *)user;
  if (!value) return 0;
  if (!strcmp(opt, "--method")) a->method = value;
  else if (!strcmp(opt, "--model")) a->model = value;
  else if (!strcmp(opt, "--checkpoint")) a->checkpoint = value;
  else if (!strcmp(opt, "--images")) a->images = atoi(value);
  else if (!strcmp(opt, "--size")) a->size = atoi(value);
  else if (!strcmp(opt, "--batch")) a->batch = atoi(value);
  else if (!strcmp(opt, "--k")) a->k = atoi(value);
  else return 0;
  return 2;
}

typedef struct {
  int n, size;
  uint8_t *rgb, *mask;  // n * size^2 * 3, n * size^2 (annotator 0)
  SamxInferInput *in;
} BenchImages;

static void make_images(BenchImages *b, int n, int size) {
  SamxSyntheticParams p = samx_synthetic_defaults();
  p.size = size, p.k = 1;
  int64_t hw = (int64_t)size * size;
  b->n = n, b->size = size;
  b->rgb = (uint8_t *)malloc((size_t)(n * 3 * hw));
  b->mask = (uint8_t *)malloc((size_t)(n * hw));
  b->in = (SamxInferInput *)calloc((size_t)n, sizeof(SamxInferInput));
  uint8_t *grey = (uint8_t *)malloc((size_t)hw);
  for (int i = 0; i < n; i++) {
    uint8_t *m = b->mask + i * hw, *rgb = b->rgb + i * 3 * hw;
    // Lesions that annotator 0 skips would leave no prompt: take the next sample.
    for (int64_t s = i;; s += n) {
      samx_synthetic_sample(&p, s, grey, m);
      if (samx_mask_box(m, size, size, b->in[i].box) == 0) break;
    }
    for (int64_t q = 0; q < hw; q++) rgb[3 * q] = rgb[3 * q + 1] = rgb[3 * q + 2] = grey[q];
    b->in[i] = (SamxInferInput){.rgb = rgb, .h = size, .w = size, .seg = m, .n_classes = 1, .key = (uint64_t)i,
                                .box = {b->in[i].box[0], b->in[i].box[1], b->in[i].box[2], b->in[i].box[3]}};
  }
  free(grey);
}

// Median ms per image of one method over all images, batch by batch.
static double time_method(SamModel *m, const SamxInferOpts *o, const BenchImages *b, int reps, int *chunk) {
  SamxInferer *r = samx_inferer_new(m, o, b->size, b->size);
  if (!r) return -1;
  *chunk = samx_inferer_chunk(r);
  SamxInferOutput *out = (SamxInferOutput *)calloc((size_t)o->max_batch, sizeof *out);
  double *t = (double *)malloc(sizeof(double) * (size_t)reps);
  for (int rep = -1; rep < reps; rep++) {  // rep -1 warms up (cuBLAS handles, caches)
    double t0 = bench_now_ms();
    for (int s = 0; s < b->n; s += o->max_batch) {
      int n = b->n - s < o->max_batch ? b->n - s : o->max_batch;
      samx_inferer_run(r, b->in + s, n, out);
      for (int i = 0; i < n; i++) samx_infer_output_free(&out[i]);
    }
    samx_device_sync(m->device);
    if (rep >= 0) t[rep] = (bench_now_ms() - t0) / b->n;
  }
  double ms = bench_median(t, reps);
  free(t), free(out);
  samx_inferer_free(r);
  return ms;
}

// One encoder pass per image (preprocessing included), batch of 1. Arena: three blocks' worth of
// activations (sam_encode keeps one block alive in inference), the input image and slack.
static double time_encoder(SamModel *m, const BenchImages *b, int reps) {
  const SamConfig *c = &m->cfg;
  int64_t g = sam_embed_grid(c), gp = c->window > 0 ? (g + c->window - 1) / c->window * c->window : g, S = c->img_size;
  size_t bytes = (size_t)(3 * gp * gp * (10 * (int64_t)c->enc_dim + 2 * (int64_t)c->enc_mlp) * 4 + 16 * 3 * S * S) + ((size_t)256 << 20);
  SamxCtx ctx;
  samx_ctx_init(&ctx, m->device, bytes, 8192);
  samx_ctx_set_recording(&ctx, 0);
  double *t = (double *)malloc(sizeof(double) * (size_t)reps);
  for (int rep = -1; rep < reps; rep++) {
    double t0 = bench_now_ms();
    for (int i = 0; i < b->n; i++) {
      samx_ctx_reset(&ctx);
      SamImageInfo info;
      sam_encode(&ctx, m, sam_preprocess(&ctx, m, b->in[i].rgb, b->size, b->size, &info));
    }
    samx_device_sync(m->device);
    if (rep >= 0) t[rep] = (bench_now_ms() - t0) / b->n;
  }
  double ms = bench_median(t, reps);
  free(t);
  samx_ctx_free(&ctx);
  return ms;
}

int samx_bench_infer(int argc, char **argv) {
  InferBenchArgs a = {.method = "all", .model = NULL, .images = 0, .size = 256, .batch = 0, .k = 50};
  BenchOpts bo;
  if (bench_parse_opts_ex(argc, argv, &bo, USAGE, extra_opt, &a) < 0) return 2;
  if (!a.model) a.model = bo.quick ? "tiny" : "vit_b";
  if (!a.images) a.images = bo.quick ? 4 : 8;
  if (bo.quick) bo.reps = 1;
  int run_method[3] = {0};
  for (int k = 0; k < 3; k++) run_method[k] = !strcmp(a.method, "all") || !strcmp(a.method, samx_infer_method_name((SamxInferMethod)k));
  if (!run_method[0] && !run_method[1] && !run_method[2]) {
    fprintf(stderr, "samx bench infer: --method %s: expected sam, simsam, sqa or all\n", a.method);
    return 2;
  }
  if (a.images < 1 || a.size < 8 || a.k < 1) {
    fprintf(stderr, "samx bench infer: --images >= 1, --size >= 8, --k >= 1\n");
    return 2;
  }
  SamModel m;
  if (a.checkpoint) {
    if (sam_load(&m, a.checkpoint, bo.device, 0, NULL)) {
      fprintf(stderr, "samx bench infer: %s\n", samx_last_error());
      return 1;
    }
  } else {
    SamConfig c;
    if (sam_config_preset(a.model, &c)) {
      fprintf(stderr, "samx bench infer: --model %s: expected vit_b, vit_l, vit_h or tiny\n", a.model);
      return 2;
    }
    sam_init_random(&m, &c, bo.device, 0, 1);
  }
  int batch = a.batch > 0 ? a.batch : bo.device.type == SAMX_CUDA ? 4 : 1;
  BenchImages b;
  make_images(&b, a.images, a.size);
  double enc = time_encoder(&m, &b, bo.reps), ms[3] = {-1, -1, -1};
  int chunk[3] = {0};
  for (int k = 0; k < 3; k++) {
    if (!run_method[k] && !(k == 0 && run_method[1])) continue;  // SimSAM's overhead needs plain SAM
    SamxInferOpts o = samx_infer_defaults((SamxInferMethod)k);
    o.max_batch = batch, o.simsam.k = a.k;
    ms[k] = time_method(&m, &o, &b, bo.reps, &chunk[k]);
  }
  char dev[64];
  samx_device_str(bo.device, dev, sizeof dev);
  const char *label = a.checkpoint ? a.checkpoint : a.model;
  if (bo.json) {
    printf("{\"device\": \"%s\", \"model\": \"%s\", \"images\": %d, \"size\": %d, \"batch\": %d, \"k\": %d, \"encoder_ms\": %.4f",
           dev, label, a.images, a.size, batch, a.k, enc);
    for (int k = 0; k < 3; k++)
      if (ms[k] >= 0)
        printf(", \"%s\": {\"ms_per_image\": %.4f, \"images_per_s\": %.4f, \"decode_chunk\": %d}", samx_infer_method_name((SamxInferMethod)k),
               ms[k], 1e3 / ms[k], chunk[k]);
    if (ms[1] >= 0) printf(", \"simsam_overhead_encoder_passes\": %.4f", (ms[1] - ms[0]) / enc);
    printf("}\n");
  } else {
    printf("## samx bench infer (%s, %s, %d images of %dx%d, batch %d, median of %d)\n\n", dev, label, a.images, a.size, a.size,
           batch, bo.reps);
    printf("| method | ms / image | images / s | prompts per decoder call |\n|---|---:|---:|---:|\n");
    printf("| encoder alone | %.2f | %.2f | |\n", enc, 1e3 / enc);
    for (int k = 0; k < 3; k++) {
      if (ms[k] < 0) continue;
      char name[64];
      snprintf(name, sizeof name, k == 1 ? "%s (K = %d)" : "%s", samx_infer_method_name((SamxInferMethod)k), a.k);
      printf("| %s | %.2f | %.2f | %d |\n", name, ms[k], 1e3 / ms[k], chunk[k]);
    }
    if (ms[1] >= 0)
      printf("\nSimSAM (K = %d) over plain SAM: %+.2f ms per image = %.3f encoder passes (paper: 152 ms = 0.62 of SAM's time)\n",
             a.k, ms[1] - ms[0], (ms[1] - ms[0]) / enc);
  }
  free(b.rgb), free(b.mask), free(b.in);
  sam_free(&m);
  return 0;
}
