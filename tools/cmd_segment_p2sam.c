// samx segment on a P²SAM model (contracts §6): the authors' final_weights.pth (a snapshot of it),
// their stage-1 *_model_epoch_N.pth over --base, or a samx P²SAM checkpoint; no box or point.
// cmd_segment.c hands over when P²SAM options are given or the checkpoint is a P²SAM one.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_io.h"
#include "engine/samx.h"
#include "kernels/random.h"
#include "models/p2sam/p2sam.h"

void samx_segment_p2sam_usage(FILE *f) {
  fprintf(f,
          "\nP2SAM models (no box or point; contracts §6):\n"
          "  samx segment --checkpoint final_weights.pth --mask-weights W.pt [--snapshot epoch_N] --image IMG\n"
          "               [--noise eps.safetensors | --seed S] [--device D] [--precision P] --out mask.png\n"
          "               [--tensors F]\n"
          "  samx segment --checkpoint X_model_epoch_N.pth --base SAM.pth --mask-weights W.pt [--img-size 128]\n"
          "               --image IMG [--device D] --out mask.png [--tensors F]\n"
          "  --checkpoint also takes a samx P2SAM checkpoint (samx train, method.name = p2sam; --snapshot epoch_N\n"
          "  then reads checkpoints/snapshot_epoch_N.safetensors beside it; a stage-1 one, like a stage-1 file,\n"
          "  has no prompt-generation network: its dense prompt is no_mask_embed).\n"
          "  --mask-weights W.pt   the [8, 1] assembling weights (*_mask_weights_epoch_N.pt)\n"
          "  --snapshot epoch_N    a snapshot of final_weights.pth (default: the file's first)\n"
          "  --base SAM.pth        the SAM under a stage-1 file, resized to --img-size (default 128) as load_from does\n"
          "  --noise F             eps F32 [1, 256]: z = mu + sigma eps exactly; otherwise eps ~ N(0, 1) from --seed (0)\n"
          "  The image is one grey channel in [0, 1] (8-bit / 255, 16-bit / 65535; the first channel of colour\n"
          "  images), resized bilinearly to the input size when it differs; the assembled logit is resized back.\n"
          "  --out: assembled logit > 0 as 0/255 PNG. --tensors: prior_mu, prior_log_sigma, z [1, 256] (not for a\n"
          "  stage-1 file), image_embeddings, low_res_logits [1, 8, 4g, 4g], assembled_logits [1, 1, S, S], masks U8\n"
          "  [1, 1, H, W].\n");
}

typedef struct {
  const char *checkpoint, *image, *out, *tensors, *device, *mask_weights, *snapshot, *base, *noise, *precision;
  uint64_t seed;
  int img_size;
} P2Args;

static int parse(int argc, char **argv, P2Args *a) {
  memset(a, 0, sizeof *a);
  a->device = "auto";
  static const char *opts[] = {"--checkpoint", "--image", "--out", "--tensors", "--device", "--mask-weights",
                               "--snapshot", "--base", "--noise", "--precision", "--seed", "--img-size"};
  const char **dst[] = {&a->checkpoint, &a->image, &a->out, &a->tensors, &a->device, &a->mask_weights, &a->snapshot,
                        &a->base, &a->noise, &a->precision};
  for (int i = 1; i < argc; i++) {
    int k = -1;
    for (int j = 0; j < 12; j++)
      if (!strcmp(argv[i], opts[j])) k = j;
    if (k < 0) return samx_fail("%s: not an option for a P2SAM model (see samx segment --help)", argv[i]);
    if (i + 1 >= argc) return samx_fail("%s needs a value", argv[i]);
    const char *v = argv[++i];
    if (k < 10) {
      *dst[k] = v;
    } else {
      char *end;
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (*end || errno || x < 0) return samx_fail("%s '%s': expected a non-negative integer", opts[k], v);
      if (k == 10) a->seed = (uint64_t)x;
      else a->img_size = (int)x;
    }
  }
  if (!a->checkpoint || !a->image || !a->out) return samx_fail("--checkpoint, --image and --out are required");
  return 0;
}

// 1 when path is a `samx train` checkpoint of method p2sam.
int samx_is_samx_p2sam(const char *path) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) {
    samx_clear_error();
    return 0;
  }
  const char *meta = samx_st_meta(&st, "meta");
  int yes = meta && strstr(meta, "\"method\":\"p2sam\"") != NULL;
  samx_st_close(&st);
  return yes;
}

// A samx checkpoint's snapshot: checkpoints/snapshot_<name>.safetensors beside it, into mm's
// prompt-generation network.
static int load_samx_snapshot(SamMethodModel *mm, const char *ckpt, const char *snapshot) {
  char path[1200];
  const char *slash = strrchr(ckpt, '/');
  snprintf(path, sizeof path, "%.*ssnapshot_%s.safetensors", slash ? (int)(slash - ckpt + 1) : 0, ckpt, snapshot);
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return samx_fail("--snapshot %s: %s", snapshot, samx_last_error());
  int rc = 0;
  for (int i = 0; i < st.n && rc == 0; i++) {
    SamxTensor *t = samx_params_find(&mm->sam.params, st.entries[i].name);
    rc = t ? samx_st_load_into(&st, &st.entries[i], t) : samx_fail("%s: unexpected tensor %s", path, st.entries[i].name);
  }
  samx_st_close(&st);
  return rc;
}

// The grey image in [0, 1] (first channel), h x w.
static float *read_grey(const char *path, int *h, int *w) {
  SamxSamples im;
  if (samx_image_read_samples(path, &im)) return NULL;
  double scale = im.format == SAMX_SAMPLE_UINT ? 1.0 / (pow(2.0, im.bits) - 1.0) : 1.0;
  *h = (int)im.h, *w = (int)im.w;
  float *g = (float *)malloc(sizeof(float) * (size_t)(im.h * im.w));
  for (int64_t i = 0; i < im.h * im.w; i++) g[i] = (float)(im.data[i * im.channels] * scale);
  samx_samples_free(&im);
  return g;
}

static int read_noise(const char *path, float *eps) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return -1;
  const SamxSTEntry *e = samx_st_find(&st, "eps");
  int rc = 0;
  if (!e || e->dtype != SAMX_F32 || e->numel != P2SAM_LATENT)
    rc = samx_fail("%s: expected a tensor 'eps' F32 [1, %d]", path, P2SAM_LATENT);
  else
    memcpy(eps, e->data, sizeof(float) * P2SAM_LATENT);
  samx_st_close(&st);
  return rc;
}

static void add(SamxSTWriter *w, const char *name, SamxTensor *t) {
  if (t) samx_st_writer_add_tensor(w, name, t);
}

int samx_segment_p2sam(int argc, char **argv) {
  P2Args a;
  if (parse(argc, argv, &a)) return 2;
  SamxDevice dev;
  if (samx_device_parse(a.device, &dev) || samx_precision_setup(a.precision, dev)) return 1;
  SamMethodModel mm;
  int stage1 = 0, rc;
  if (samx_is_samx_p2sam(a.checkpoint)) {
    rc = sam_method_load(&mm, a.checkpoint, dev, 0);
    stage1 = p2sam_samx_config_key(a.checkpoint, "stage") == 1;  // no trained prompt generator: no_mask_embed
    if (rc == 0 && stage1 && (a.snapshot || a.noise)) rc = samx_fail("%s: a stage-1 checkpoint has no snapshots and no z (--snapshot, --noise)", a.checkpoint);
    if (rc == 0 && a.snapshot) rc = load_samx_snapshot(&mm, a.checkpoint, a.snapshot);
  } else {
    rc = p2sam_load_authors(&mm, a.checkpoint, a.base, a.mask_weights, a.snapshot, a.img_size, dev, 0, &stage1);
  }
  if (rc) return 1;
  int h, w;
  float *grey = read_grey(a.image, &h, &w), eps[P2SAM_LATENT];
  rc = grey ? 0 : -1;
  if (rc == 0 && !stage1) {
    if (a.noise) rc = read_noise(a.noise, eps);
    else samx_cpu_random_fill(SAMX_RNG_NORMAL, eps, P2SAM_LATENT, a.seed, 0, 0.0f, 1.0f);
  }
  if (rc == 0) {
    int64_t S = mm.sam.cfg.img_size;
    SamxCtx ctx;
    samx_ctx_init(&ctx, dev, (size_t)(512 << 20) + (size_t)h * w * 64, 16384);
    samx_ctx_set_recording(&ctx, 0);
    SamxTensor *x = samx_from_host(&ctx, SHAPE(1, 1, h, w), grey);
    SamxTensor *pixels = h == S && w == S ? x : samx_resize_bilinear(&ctx, x, S, S), *mu = NULL, *log_sigma = NULL, *z = NULL;
    SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
    if (!stage1) {
      p2sam_prior(&ctx, &mm, pixels, &mu, &log_sigma);
      z = samx_gaussian_reparam(&ctx, mu, log_sigma, samx_from_host(&ctx, SHAPE(1, P2SAM_LATENT), eps));
    }
    SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, z, 1)), *assembled;
    p2sam_assemble(&ctx, &mm, low, NULL, NULL, &assembled);
    SamxTensor *orig = h == S && w == S ? assembled : samx_resize_bilinear(&ctx, assembled, h, w);
    float *logit = (float *)malloc(sizeof(float) * (size_t)h * w);
    samx_tensor_read_f32(orig, logit);
    uint8_t *mask = (uint8_t *)malloc((size_t)h * w), *png = (uint8_t *)malloc((size_t)h * w);
    for (int64_t i = 0; i < (int64_t)h * w; i++) mask[i] = logit[i] > 0, png[i] = mask[i] ? 255 : 0;
    rc = samx_png_write(a.out, png, w, h, 1);
    if (rc == 0 && a.tensors) {
      SamxSTWriter *wr = samx_st_writer_new();
      add(wr, "prior_mu", mu);
      add(wr, "prior_log_sigma", log_sigma);
      add(wr, "z", z);
      add(wr, "image_embeddings", emb);
      add(wr, "low_res_logits", low);
      add(wr, "assembled_logits", assembled);
      int64_t sm[4] = {1, 1, h, w};
      samx_st_writer_add(wr, "masks", SAMX_U8, 4, sm, mask);
      samx_st_writer_meta(wr, "producer", "samx segment " SAMX_VERSION);
      rc = samx_st_writer_save(wr, a.tensors);
      samx_st_writer_free(wr);
    }
    free(logit), free(mask), free(png);
    samx_ctx_free(&ctx);
  }
  free(grey);
  sam_method_free(&mm);
  return rc ? 1 : 0;
}
