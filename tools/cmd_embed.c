// samx embed: runs the frozen SAM image encoder once per sample of a dataset file and writes the
// embedding cache (data/embed_cache.h) that training reads instead of encoding every step.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/predictions.h"
#include "engine/dist.h"
#include "engine/samx.h"
#include "data/prompts.h"
#include "models/p2sam/p2sam.h"
#include "models/sam/sam.h"
#include "models/sam/sam_image.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx embed --checkpoint W --data D.h5 --out E.h5 [--dtype f16|bf16|f32] [--split S]\n"
          "                  [--device auto|cpu|cuda[:N]] [--precision P] [--batch N] [--gzip L]\n\n"
          "Runs the frozen image encoder of checkpoint W on every sample of D.h5 (images replicated to RGB\n"
          "uint8 and preprocessed as SamPredictor does) and writes the embeddings to E.h5, with the\n"
          "checkpoint's and the dataset's sha256, so that training refuses a cache made by another encoder.\n\n"
          "  --checkpoint W   SAM weights (.pth or safetensors)\n"
          "  --data D.h5      dataset file (samx-dataset v1)\n"
          "  --out E.h5       embedding cache to write (written to a temporary name, renamed at the end)\n"
          "  --dtype T        stored precision: f32 (default, exact), f16 or bf16 (half the size)\n"
          "  --split S        train, val, test or all (default all)\n"
          "  --device D       auto (a GPU when present, default), cpu, cuda or cuda:N\n"
          SAMX_PRECISION_HELP
          "  --batch N        images per encoder call (default 1)\n"
          "  --gzip L         deflate level 0-9 for the embeddings (default 0: they compress poorly)\n\n"
          "On several ranks each computes every W-th batch and rank 0 writes the file, the same file one\n"
          "process writes.\n");
  fputs(samx_launch_help, f);
}

typedef struct {
  const char *checkpoint, *data, *out, *split, *device, *precision;
  SamxEmbedDtype dtype;
  int batch, gzip;
  SamxLaunchArgs launch;
} EmbedArgs;

static int parse_int(const char *opt, const char *val, int lo, int hi, int *out) {
  char *end;
  long v = strtol(val, &end, 10);
  if (*end || !*val || v < lo || v > hi)
    return samx_fail("samx embed: %s '%s' is not an integer in [%d, %d]", opt, val, lo, hi);
  *out = (int)v;
  return 0;
}

// Returns 0, 1 for --help, or -1 with samx_last_error.
static int parse_args(int argc, char **argv, EmbedArgs *a) {
  memset(a, 0, sizeof *a);
  a->split = "all", a->device = "auto", a->dtype = SAMX_EMBED_F32, a->batch = 1;
  a->launch = SAMX_LAUNCH_ARGS_NONE;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) return 1;
    int took = samx_launch_take_arg(argc, argv, &i, &a->launch);
    if (took < 0) return -1;
    if (took) continue;
    static const char *with_value[] = {"--checkpoint", "--data", "--out", "--split", "--device", "--dtype", "--batch",
                                       "--gzip", "--precision"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(opt, with_value[k]);
    if (!known) return samx_fail("samx embed: unknown option %s (see samx embed --help)", opt);
    if (i + 1 >= argc) return samx_fail("samx embed: %s needs a value (see samx embed --help)", opt);
    const char *val = argv[++i];
    if (!strcmp(opt, "--checkpoint"))
      a->checkpoint = val;
    else if (!strcmp(opt, "--data"))
      a->data = val;
    else if (!strcmp(opt, "--out"))
      a->out = val;
    else if (!strcmp(opt, "--split"))
      a->split = val;
    else if (!strcmp(opt, "--device"))
      a->device = val;
    else if (!strcmp(opt, "--precision"))
      a->precision = val;
    else if (!strcmp(opt, "--dtype")) {
      int d = samx_embed_dtype_parse(val);
      if (d < 0) return samx_fail("samx embed: --dtype '%s' is not f32, f16 or bf16", val);
      a->dtype = (SamxEmbedDtype)d;
    } else if (!strcmp(opt, "--batch")) {
      if (parse_int(opt, val, 1, 1024, &a->batch)) return -1;
    } else if (!strcmp(opt, "--gzip")) {
      if (parse_int(opt, val, 0, 9, &a->gzip)) return -1;
    } else
      return samx_fail("samx embed: unknown option %s (see samx embed --help)", opt);
  }
  if (!a->checkpoint || !a->data || !a->out)
    return samx_fail("samx embed: --checkpoint, --data and --out are required");
  if (strcmp(a->split, "all") && samx_split_parse(a->split) < 0)
    return samx_fail("samx embed: --split '%s' is not train, val, test or all", a->split);
  const char *inputs[] = {a->data, a->checkpoint};
  if (samx_check_output_not_input("samx embed: --out", a->out, inputs, 2)) return -1;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Dataset image i as RGB uint8 (grey replicated to 3 channels, as SamPredictor is given).
static int read_rgb(SamxDataset *ds, int64_t i, uint8_t *raw, uint8_t *rgb) {
  if (samx_dataset_read_image_u8(ds, i, raw) != 0) return -1;
  int64_t hw = samx_dataset_h(ds) * samx_dataset_w(ds);
  if (samx_dataset_channels(ds) == 3)
    memcpy(rgb, raw, (size_t)hw * 3);
  else
    for (int64_t p = 0; p < hw; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = raw[p];
  return 0;
}

typedef struct {
  int tty;
  double start, last;
} Progress;

static void progress(Progress *p, int64_t done, int64_t total) {
  double t = now_s();
  if (p->tty) {
    fprintf(stderr, "\rsamx embed: %lld/%lld (%.1f images/s)", (long long)done, (long long)total,
            done / (t - p->start + 1e-9));
    if (done == total) fputc('\n', stderr);
  } else if (t - p->last >= 30 || done == total) {
    fprintf(stderr, "samx embed: %lld/%lld images, %.1f images/s\n", (long long)done, (long long)total,
            done / (t - p->start + 1e-9));
    p->last = t;
  }
}

int samx_is_samx_p2sam(const char *path);  // tools/cmd_segment_p2sam.c

// A P2SAM model (a samx P2SAM checkpoint: its LoRA encoder) and its input: the grey image in [0, 1]
// (the p2sam.crop window centred on the annotators' lesion, when its config has one) resized to S,
// replicated to 3 channels, as stage 2 of samx train feeds it. NULL model: SAM's preprocessing.
typedef struct {
  SamMethodModel *mm;
  int64_t crop;
  uint8_t *masks;  // [K, H, W] scratch
} P2Embed;

static SamxTensor *p2sam_input(SamxCtx *ctx, P2Embed *p2, SamxDataset *ds, int64_t row, const uint8_t *raw, int h, int w,
                               SamImageInfo *info) {
  int64_t S = p2->mm->sam.cfg.img_size, C = p2->crop, ch = C ? C : h, cw = C ? C : w, at[2] = {0, 0}, K = samx_dataset_k(ds);
  int ch_in = samx_dataset_channels(ds);
  if (C) {
    if (samx_dataset_read_masks(ds, row, p2->masks)) return NULL;
    samx_prompt_crop_window(p2->masks, samx_dataset_annotator_valid(ds) + row * K, K, h, w, C, at);
  }
  float *g = (float *)malloc(sizeof(float) * (size_t)(ch * cw));
  for (int64_t y = 0; y < ch; y++)
    for (int64_t x = 0; x < cw; x++) g[y * cw + x] = raw[((at[0] + y) * w + at[1] + x) * ch_in] / 255.0f;
  SamxTensor *x = samx_from_host(ctx, SHAPE(1, 1, ch, cw), g);
  free(g);
  if (ch != S || cw != S) x = samx_resize_bilinear(ctx, x, S, S);
  info->orig_h = (int)ch, info->orig_w = (int)cw, info->input_h = info->input_w = (int)S;
  return p2sam_encoder_input(ctx, x);
}

// Encodes rows[0..n) in batches and appends them to w (rank 0). On W ranks, batch k is encoded by rank
// k mod W; after each round of W batches rank 0 receives them in batch order, so the file is the
// one-process file (the same batches, encoded the same way).
static int embed_rows(SamModel *m, P2Embed *p2, SamxDataset *ds, const int64_t *rows, int64_t n, int batch,
                      SamxEmbedWriter *w, SamxDist *d) {
  const SamConfig *c = &m->cfg;
  int h = (int)samx_dataset_h(ds), wd = (int)samx_dataset_w(ds);
  size_t hw = (size_t)h * (size_t)wd;
  uint8_t *raw = (uint8_t *)malloc(hw * 3), *rgb = (uint8_t *)malloc(hw * 3);
  SamxCtx ctx;
  samx_ctx_init(&ctx, m->device, sam_encoder_arena_bytes(c, batch, samx_precision_on(m->device)),
                4096 + 512 * c->enc_depth);
  samx_ctx_set_recording(&ctx, 0);
  int64_t g = sam_embed_grid(c), per = (int64_t)c->out_chans * g * g;
  int W = d->world, me = d->rank;
  // One slot per rank of a round: embeddings [batch, per] and infos [batch, 4].
  float *host = (float *)malloc((size_t)W * (size_t)(batch * per) * sizeof *host);
  int64_t *info = (int64_t *)malloc((size_t)W * (size_t)batch * 4 * sizeof *info);
  SamxTensor **inputs = (SamxTensor **)malloc((size_t)batch * sizeof *inputs);
  SamImageInfo *infos = (SamImageInfo *)malloc((size_t)batch * sizeof *infos);
  Progress pr = {isatty(2), now_s(), now_s()};
  int rc = 0;
  int64_t n_batches = (n + batch - 1) / batch;
  for (int64_t round = 0; round * W < n_batches && rc == 0; round++) {
    int64_t k = round * W + me, at = k * batch;
    if (k < n_batches) {
      int b = (int)(n - at < batch ? n - at : batch);
      float *out = host + (size_t)me * (size_t)(batch * per);
      samx_ctx_reset(&ctx);
      for (int j = 0; j < b && rc == 0; j++) {
        if (p2) {
          rc = samx_dataset_read_image_u8(ds, rows[at + j], raw);
          if (rc == 0 && !(inputs[j] = p2sam_input(&ctx, p2, ds, rows[at + j], raw, h, wd, &infos[j]))) rc = -1;
          continue;
        }
        rc = read_rgb(ds, rows[at + j], raw, rgb);
        if (rc == 0) inputs[j] = sam_preprocess(&ctx, m, rgb, h, wd, &infos[j]);
      }
      if (rc == 0) {
        SamxTensor *x = b == 1 ? inputs[0] : samx_concat(&ctx, inputs, b, 0);
        samx_tensor_read_f32(sam_encode(&ctx, m, x), out);
        for (int j = 0; j < b; j++) {
          int64_t *o = info + ((size_t)me * (size_t)batch + (size_t)j) * 4;
          o[0] = infos[j].orig_h, o[1] = infos[j].orig_w, o[2] = infos[j].input_h, o[3] = infos[j].input_w;
        }
      }
    }
    if (W > 1) {  // a read error on any rank stops every rank
      double bad = rc != 0;
      if (samx_dist_allreduce_host_f64(d, &bad, 1) != 0 || bad) {
        if (rc == 0) samx_fail("samx embed: another rank failed (its message is above)");
        rc = -1;
        break;
      }
    }
    for (int r = 0; r < W && rc == 0; r++) {
      int64_t kr = round * W + r, ar = kr * batch;
      if (kr >= n_batches) break;
      int b = (int)(n - ar < batch ? n - ar : batch);
      float *slot = host + (size_t)r * (size_t)(batch * per);
      int64_t *islot = info + (size_t)r * (size_t)batch * 4;
      if (W > 1 && (samx_dist_broadcast(d, slot, (size_t)(b * per) * sizeof *slot, r) != 0 ||
                    samx_dist_broadcast(d, islot, (size_t)b * 4 * sizeof *islot, r) != 0)) {
        rc = -1;
        break;
      }
      for (int j = 0; w && j < b && rc == 0; j++)
        rc = samx_embed_append(w, rows[ar + j], slot + (size_t)j * (size_t)per, islot + (size_t)j * 4);
      if (me == 0) progress(&pr, ar + b, n);
    }
  }
  free(info);
  samx_ctx_free(&ctx);
  free(raw), free(rgb), free(host), free(inputs), free(infos);
  return rc;
}

static int64_t *split_rows(SamxDataset *ds, const char *split, int64_t *n) {
  int s = strcmp(split, "all") ? samx_split_parse(split) : -1;
  *n = s < 0 ? samx_dataset_n(ds) : samx_dataset_split_rows(ds, s, NULL, 0);
  int64_t *rows = (int64_t *)malloc((size_t)(*n + 1) * sizeof *rows);
  if (s < 0)
    for (int64_t i = 0; i < *n; i++) rows[i] = i;
  else
    samx_dataset_split_rows(ds, s, rows, *n);
  return rows;
}

static int run_ranks(const EmbedArgs *a, SamxDevice device, SamxDist *dist);

static int run(const EmbedArgs *a) {
  SamxDevice device;
  if (samx_device_parse(a->device, &device) != 0) return -1;
  SamxLaunch launch;
  SamxDist dist;
  if (samx_launch_detect(&a->launch, NULL, NULL, &launch) != 0 || samx_dist_init(&dist, &launch, device) != 0) return -1;
  device = dist.device;
  int rc = samx_precision_setup(a->precision, device);
  if (rc == 0) rc = run_ranks(a, device, &dist);
  samx_dist_finalize(&dist);
  return rc;
}

static int run_ranks(const EmbedArgs *a, SamxDevice device, SamxDist *dist) {
  char ckpt_sha[65], data_sha[65];
  if (samx_sha256_file(a->checkpoint, ckpt_sha) != 0 || samx_sha256_file(a->data, data_sha) != 0) return -1;
  SamxDataset *ds = samx_dataset_open(a->data);
  if (!ds) return -1;
  int64_t n;
  int64_t *rows = split_rows(ds, a->split, &n);
  SamModel m;
  SamMethodModel mm;
  P2Embed p2 = {NULL, 0, NULL};
  int is_p2 = samx_is_samx_p2sam(a->checkpoint);
  if (n == 0) {
    samx_fail("%s: split %s has no rows", a->data, a->split);
  } else if (is_p2 ? sam_method_load(&mm, a->checkpoint, device, 0) == 0 : sam_load(&m, a->checkpoint, device, 0, NULL) == 0) {
    if (is_p2) {  // the stage-1 encoder (LoRA) of a P2SAM run, for its stage 2
      m = mm.sam;
      p2.mm = &mm, p2.crop = p2sam_samx_config_key(a->checkpoint, "crop");
      p2.masks = (uint8_t *)malloc((size_t)(samx_dataset_k(ds) * samx_dataset_h(ds) * samx_dataset_w(ds)));
      if (p2.crop > samx_dataset_h(ds) || p2.crop > samx_dataset_w(ds)) {
        free(p2.masks), sam_method_free(&mm), free(rows), samx_dataset_close(ds);
        return samx_fail("%s: its p2sam.crop %lld is larger than the images of %s", a->checkpoint, (long long)p2.crop, a->data);
      }
    }
    const SamConfig *c = &m.cfg;
    int64_t g = sam_embed_grid(c);
    char *config = sam_config_json(c);
    if (is_p2) {  // the crop is part of what the encoder saw: recorded beside SAM's config
      size_t len = strlen(config);
      char *with = (char *)malloc(len + 48);
      snprintf(with, len + 48, "%.*s,\"p2sam_crop\":%lld}", (int)(len - 1), config, (long long)p2.crop);
      free(config);
      config = with;
    }
    SamxEmbedSpec spec = {.c = c->out_chans,
                          .h = g,
                          .w = g,
                          .dtype = a->dtype,
                          .checkpoint_path = a->checkpoint,
                          .checkpoint_sha256 = ckpt_sha,
                          .dataset_path = a->data,
                          .dataset_sha256 = data_sha,
                          .model_config = config,
                          .input_size = c->img_size,
                          .split = a->split,
                          .gzip_level = a->gzip};
    SamxEmbedWriter *w = dist->rank == 0 ? samx_embed_create(a->out, &spec) : NULL;
    double no_writer = dist->rank == 0 && !w;  // every rank learns whether rank 0 could create the file
    int rc = samx_dist_allreduce_host_f64(dist, &no_writer, 1) != 0 || no_writer ? -1 : 0;
    if (rc != 0 && dist->rank != 0) samx_fail("samx embed: rank 0 could not create %s", a->out);
    if (rc == 0) rc = embed_rows(&m, is_p2 ? &p2 : NULL, ds, rows, n, a->batch, w, dist);
    if (w && rc != 0) samx_embed_abort(w);
    if (w && rc == 0) rc = samx_embed_finish(w);
    if (rc == 0 && dist->rank == 0)
      fprintf(stderr, "samx embed: wrote %lld embeddings [%d, %lld, %lld] %s to %s\n", (long long)n, c->out_chans,
              (long long)g, (long long)g, samx_embed_dtype_name(a->dtype), a->out);
    free(config);
    if (is_p2) sam_method_free(&mm), free(p2.masks);
    else sam_free(&m);
    free(rows);
    samx_dataset_close(ds);
    return rc;
  }
  free(rows);
  samx_dataset_close(ds);
  return -1;
}

int samx_cmd_embed(int argc, char **argv) {
  EmbedArgs a;
  int p = parse_args(argc, argv, &a);
  if (p == 1) {
    usage(stdout);
    return 0;
  }
  if (p != 0) {  // a usage error
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
  }
  if (run(&a) != 0) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 1;
  }
  return 0;
}
