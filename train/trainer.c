// The training loop. One step: for each of optim.accum_steps micro-batches, the batch is prepared
// (embeddings from the cache or the encoder, a box from a random non-empty annotator, targets at
// the low-res logits' resolution), the method's loss is computed and back-propagated with weight
// 1 / accum_steps; then the gradient norm is measured (and clipped), a non-finite loss or norm skips
// the update, and the optimizer steps at the schedule's learning rate for that step.
//
// Every random choice of a step is a hash of (run.seed, what, step, sample): the loader's
// per-sample seed for the annotator and jitter, samx_hash4 for SeqSAM's pooling. A run resumed from
// a checkpoint therefore repeats the uninterrupted run's choices, and its losses (bit-exact on CPU).
#include "trainer.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/loader.h"
#include "data/predictions.h"
#include "data/prompts.h"
#include "data/rng.h"
#include "engine/samx.h"
#include "eval/metrics.h"
#include "models/sam/sam_image.h"
#include "models/method.h"
#include "models/p2sam/p2sam.h"
#include "train/curves.h"
#include "train/data_parallel.h"

#define MAX_NODES 65536
#define MAX_MASKS 64

// ---- signals: noted by the handler, acted upon at the next step boundary ----
static volatile sig_atomic_t stop_signal = 0;

static void on_signal(int sig) { stop_signal = sig; }

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);  // a closed terminal or ssh session: save, as for SIGTERM
}

static int exit_status_of(int sig) {
  return sig == SIGTERM   ? SAMX_TRAIN_EXIT_SIGTERM
         : sig == SIGUSR1 ? SAMX_TRAIN_EXIT_SIGUSR1
         : sig == SIGHUP  ? SAMX_TRAIN_EXIT_SIGHUP
                          : SAMX_TRAIN_EXIT_SIGINT;
}

void samx_train_signals_install(void) {
  stop_signal = 0;
  install_signals();
}
int samx_train_signal(void) { return stop_signal; }
int samx_train_signal_status(int sig) { return exit_status_of(sig); }

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- the trainer's state ----
typedef struct {
  double ged, d_avg, d_max, hm_iou, loss;
  int64_t n;
} ValMetrics;

typedef struct {
  const SamxTrainConfig *cfg;
  const SamxTrainOptions *opts;
  SamxDevice dev;
  SamMethodModel mm;
  SamxMethodOpts mo;       // the [method] and [loss] keys as the method sees them
  SamxOptim opt;
  SamxSchedule sched;
  SamxCtx ctx;
  SamxLoader *train, *val;
  SamxLoaderState val_start;
  int64_t K, L;            // annotators; side of the hypotheses (4 x the embedding grid, or S for full_res methods)
  int p2sam;               // P2SAM: pixels for the prior network, its own encoder input and optimiser
  SamxTensor *pixels;      // P2SAM: the batch's grey images [n, 1, S, S] in [0, 1] (in ctx)
  int64_t *crop_at;        // P2SAM with p2sam.crop: [B, 2] each usable sample's window corner (y0, x0)
  uint8_t *crop_masks;     // P2SAM with p2sam.crop: [K, crop, crop] scratch
  int64_t total_steps, step, epoch;
  int64_t skipped, bad_in_row;
  double best;
  int64_t best_step;
  char ckpt_dir[SAMX_CFG_STR + 32];
  char ckpt_sha[65];       // sha256 of model.checkpoint, which an embedding cache must have been made by
  char data_sha[65];       // sha256 of data.path, which an embedding cache must have been made from
  FILE *log;
  int bar, color;
  double t_start, t_last_print;
  int64_t samples, step_at_start;
  // per-batch scratch, sized for optim.batch_size samples
  uint8_t *rgb;
  float *labels, *target;
  uint8_t *valid;
  SamPrompt *prompts;
  SamImageInfo *info;
  int64_t *use;
  char resumed_from[SAMX_CFG_STR + 64];
  // several ranks (contracts §8): rank 0 alone writes checkpoints, logs and curves
  SamxDist dist;
  SamxDataParallel dp;
  int rank, world;
} Trainer;

// Seconds of the last sign of progress, read by the watchdog thread (several ranks).
static volatile double heartbeat = 0;

// ---- small helpers ----
static void path_join(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

int samx_mkdir_p(const char *path) {
  char buf[SAMX_CFG_STR + 64];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return samx_fail("%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST) return samx_fail("%s: cannot create directory: %s", buf, strerror(errno));
  return 0;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

// A JSON number, or null for NaN / inf (JSON has neither).
static void json_num(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ",\"%s\":%.9g", key, v);
  else
    fprintf(f, ",\"%s\":null", key);
}

static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void format_duration(double s, char *buf, size_t n) {
  if (!isfinite(s) || s < 0) {
    snprintf(buf, n, "?");
  } else if (s < 60) {
    snprintf(buf, n, "%.0fs", s);
  } else if (s < 3600) {
    snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  } else {
    snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
  }
}

// ---- model ----
static int build_sam_config(const SamxTrainConfig *c, SamConfig *sc) {
  if (sam_config_preset(c->arch, sc) != 0) return samx_fail("config: [model] arch: %s", samx_last_error());
#define OVERRIDE(field) \
  if (c->field) sc->field = (int)c->field
  OVERRIDE(img_size);
  OVERRIDE(patch);
  OVERRIDE(enc_dim);
  OVERRIDE(enc_depth);
  OVERRIDE(enc_heads);
  OVERRIDE(enc_mlp);
  OVERRIDE(window);
  OVERRIDE(dec_heads);
  OVERRIDE(dec_mlp);
  OVERRIDE(iou_hidden);
#undef OVERRIDE
  if (c->prompt_dim) sc->prompt_dim = sc->out_chans = (int)c->prompt_dim;
  if (c->global_blocks[0]) {
    memset(sc->global_block, 0, sizeof sc->global_block);
    for (const char *p = c->global_blocks; *p;) {
      char *end;
      long b = strtol(p, &end, 10);
      if (b >= sc->enc_depth) return samx_fail("config: [model] global_blocks names block %ld of %d", b, sc->enc_depth);
      sc->global_block[b] = 1;
      for (p = end; *p == ',' || *p == ' ';) p++;
    }
  } else {
    for (int i = sc->enc_depth; i < SAM_MAX_DEPTH; i++) sc->global_block[i] = 0;
  }
  if (sc->img_size % sc->patch) return samx_fail("config: [model] img_size %d is not a multiple of patch %d", sc->img_size, sc->patch);
  if (sc->enc_dim % sc->enc_heads) return samx_fail("config: [model] enc_dim %d does not divide into %d heads", sc->enc_dim, sc->enc_heads);
  if (sc->prompt_dim % (2 * sc->dec_heads) || sc->prompt_dim % 8)
    return samx_fail("config: [model] prompt_dim %d must be a multiple of 8 and of 2 x dec_heads (%d)", sc->prompt_dim, sc->dec_heads);
  return 0;
}

// P2SAM's stage 1 checkpoint for stage 2: p2sam.from is a run directory (its final or best
// checkpoint) or a file.
static void p2sam_from_path(const SamxTrainConfig *c, char *out, size_t n) {
  struct stat st;
  if (stat(c->p2sam_from, &st) == 0 && S_ISDIR(st.st_mode))
    snprintf(out, n, "%s/checkpoints/%s.safetensors", c->p2sam_from, c->p2sam_from_best ? "best" : "final");
  else
    snprintf(out, n, "%s", c->p2sam_from);
}

// P2SAM: stage 1 puts LoRA, the 9 mask tokens and the prompt-generation network on the base SAM at
// p2sam.img_size; stage 2 continues stage 1's model with the prior network and Fcomb trainable.
static int build_p2sam(Trainer *t, int trainable) {
  const SamxTrainConfig *c = t->cfg;
  if (c->p2sam_stage == 2) {
    char from[SAMX_CFG_STR + 64];
    p2sam_from_path(c, from, sizeof from);
    if (sam_method_load_ex(&t->mm, from, t->dev, 0, P2SAM_STAGE2) != 0)
      return samx_fail("config: [p2sam] from: %s", samx_last_error());
    if (t->mm.method != SAM_METHOD_P2SAM) return samx_fail("config: [p2sam] from: %s holds a %s model", from, t->mm.def->name);
    int64_t crop1 = p2sam_samx_config_key(from, "crop");
    if (c->embeddings[0] && crop1 != c->p2sam_crop)  // the cache holds what stage 1's encoder saw
      return samx_fail("config: [p2sam] crop = %lld, but stage 1 (%s) and so its embedding cache %s use crop %lld", (long long)c->p2sam_crop,
                       from, c->embeddings, (long long)crop1);
    return 0;
  }
  SamModel base, sam;
  if (c->checkpoint[0]) {
    if (sam_method_load_base(&base, c->checkpoint, t->dev, 0) != 0) return -1;
  } else {
    SamConfig sc;
    if (build_sam_config(c, &sc) != 0) return -1;
    sam_init_random(&base, &sc, t->dev, 0, (uint64_t)c->init_seed);
  }
  int rc = p2sam_sam_from_base(&sam, &base, (int)c->p2sam_img_size, trainable & (SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER),
                               samx_hash4((uint64_t)c->seed, 13, 0, 0));
  sam_free(&base);
  if (rc) return rc;
  sam_method_init(&t->mm, &sam, SAM_METHOD_P2SAM, (int)c->masks, P2SAM_STAGE1, samx_hash4((uint64_t)c->seed, 7, 0, 0), 0.0f);
  p2sam_set_assemble(&t->mm, c->p2sam_assemble);
  return 0;
}

static int build_model(Trainer *t) {
  const SamxTrainConfig *c = t->cfg;
  int trainable = (c->train_encoder ? SAM_TRAIN_ENCODER : 0) | (c->train_prompt_encoder ? SAM_TRAIN_PROMPT : 0) |
                  (c->train_decoder ? SAM_TRAIN_DECODER : 0);
  SamModel sam;
  t->p2sam = c->method == SAMX_METHOD_P2SAM;
  if (t->p2sam) {
    if (build_p2sam(t, trainable) != 0) return -1;
  } else if (c->checkpoint[0]) {
    if (sam_method_load_base(&sam, c->checkpoint, t->dev, trainable) != 0) return -1;
  } else {
    SamConfig sc;
    if (build_sam_config(c, &sc) != 0) return -1;
    sam_init_random(&sam, &sc, t->dev, trainable, (uint64_t)c->init_seed);
  }
  if (!t->p2sam)
    sam_method_init(&t->mm, &sam, (SamMethod)c->method, (int)c->masks, c->train_decoder,
                    samx_hash4((uint64_t)c->seed, 7, 0, 0), (float)c->cell_init_std);
  t->L = t->mm.def->full_res ? t->mm.sam.cfg.img_size : 4 * sam_embed_grid(&t->mm.sam.cfg);
  SamxMethodOpts *mo = &t->mo;
  *mo = sam_method_opts_defaults();
  mo->masks = (int)c->masks, mo->eval_masks = (int)c->eval_masks, mo->bptt_logits = c->bptt_logits;
  mo->select = c->select, mo->identity_match = c->matching == SAMX_MATCH_IDENTITY;
  mo->mcl_rows = c->mcl_dice == SAMX_MCL_DICE_ROWS, mo->dice_eps = (float)c->dice_eps, mo->bce_weight = (float)c->bce_weight;
  mo->multimask_weight = (float)c->multimask_weight;
  mo->stage = (int)c->p2sam_stage, mo->reg_weight = (float)c->p2sam_reg_weight;
  int64_t n_train = 0;
  for (int i = 0; i < t->mm.sam.params.n; i++)
    if (t->mm.sam.params.list[i]->requires_grad) n_train += t->mm.sam.params.list[i]->numel;
  if (n_train == 0) return samx_fail("config: nothing to train ([model] train_* are all false)");
  return 0;
}

// ---- data ----
static int open_loader(Trainer *t, const char *split_name, int training, SamxLoader **out) {
  const SamxTrainConfig *c = t->cfg;
  int split = samx_split_parse(split_name);
  if (split < 0) return samx_fail("config: [data] %s_split = '%s': expected train, val or test", training ? "train" : "val", split_name);
  SamxLoaderOpts o = samx_loader_defaults();
  o.split = split;
  o.batch = c->batch_size;
  o.seed = (uint64_t)c->seed + (training ? 0 : 1);
  o.shuffle = training ? c->shuffle : 0;
  o.prefetch = training ? 2 : 1;
  if (training && t->world > 1) o.batch_rank = t->rank, o.batch_world = t->world;  // whole batches per rank
  if (training) o.first = samx_train_first(c);
  if (c->embeddings[0]) {
    // P2SAM stage 2: the encoder is stage 1's (LoRA), so the cache must have been made from that checkpoint
    char p2from[SAMX_CFG_STR + 64];
    const char *enc = c->checkpoint;
    if (t->p2sam) p2sam_from_path(c, p2from, sizeof p2from), enc = p2from;
    if (!enc[0]) return samx_fail("config: [data] embeddings needs [model] checkpoint (the encoder that made them)");
    if (c->train_encoder) return samx_fail("config: [data] embeddings and [model] train_encoder = true exclude each other");
    if (!t->ckpt_sha[0] && samx_sha256_file(enc, t->ckpt_sha) != 0) return -1;
    o.embed_path = c->embeddings;
    o.checkpoint_sha256 = t->ckpt_sha;
    if (!c->allow_dataset_mismatch && !t->data_sha[0] && samx_sha256_file(c->data, t->data_sha) != 0) return -1;
    o.dataset_sha256 = c->allow_dataset_mismatch ? NULL : t->data_sha;
  }
  *out = samx_loader_open(c->data, &o);
  if (!*out && !training && c->embeddings[0]) {
    // The cache may hold the training split only: validate with the encoder instead.
    fprintf(stderr, "samx train: note: validation without the embedding cache (%s)\n", samx_last_error());
    o.embed_path = NULL;
    o.checkpoint_sha256 = NULL;
    o.dataset_sha256 = NULL;
    *out = samx_loader_open(c->data, &o);
  }
  return *out ? 0 : -1;
}

void samx_lowres_label(const uint8_t *mask, const SamImageInfo *info, int S, int64_t L, float *out) {
  double scale = (double)S / (double)L;
  for (int64_t y = 0; y < L; y++) {
    double fy = ((double)y + 0.5) * scale;
    int64_t oy = (int64_t)(fy * info->orig_h / info->input_h);
    for (int64_t x = 0; x < L; x++) {
      double fx = ((double)x + 0.5) * scale;
      int64_t ox = (int64_t)(fx * info->orig_w / info->input_w);
      int inside = fy < info->input_h && fx < info->input_w && oy < info->orig_h && ox < info->orig_w;
      out[y * L + x] = inside && mask[oy * info->orig_w + ox] ? 1.0f : 0.0f;
    }
  }
}

typedef struct {
  int n;              // usable samples (with at least one non-empty annotator)
  SamxTensor *emb;    // [n, C, g, g]
  const SamxBatch *raw;
} Prepared;

// P2SAM: the grey images in [0, 1] (channel 0 of colour images) resized bilinearly to S x S, kept in
// t->pixels for the prior network; the encoder sees them replicated to 3 channels (mean 0, std 1),
// recorded in stage 1 (LoRA trains through it).
static SamxTensor *p2sam_embed(Trainer *t, const SamxBatch *b, int n, SamxTensor *cached) {
  int64_t C = t->cfg->p2sam_crop, h = C ? C : b->h, w = C ? C : b->w, S = t->mm.sam.cfg.img_size;
  float *grey = (float *)malloc(sizeof(float) * (size_t)(n * h * w));
  for (int i = 0; i < n; i++) {
    int64_t y0 = C ? t->crop_at[2 * i] : 0, x0 = C ? t->crop_at[2 * i + 1] : 0;
    const uint8_t *img = b->image_u8 + t->use[i] * b->h * b->w * b->channels;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) grey[(i * h + y) * w + x] = img[((y0 + y) * b->w + x0 + x) * b->channels] / 255.0f;
  }
  int prev = samx_ctx_set_recording(&t->ctx, 0);
  SamxTensor *x = samx_from_host(&t->ctx, SHAPE(n, 1, h, w), grey);
  free(grey);
  t->pixels = h == S && w == S ? x : samx_resize_bilinear(&t->ctx, x, S, S);
  if (cached) {  // stage 2 from the cache of stage 1's encoder: only the prior network needs the pixels
    samx_ctx_set_recording(&t->ctx, prev);
    return cached;
  }
  samx_ctx_set_recording(&t->ctx, prev && t->cfg->p2sam_stage == 1);
  SamxTensor *emb = sam_method_encode(&t->ctx, &t->mm, p2sam_encoder_input(&t->ctx, t->pixels));
  samx_ctx_set_recording(&t->ctx, prev);
  return emb;
}

// Image embeddings of the usable samples: from the cache, or the encoder (recorded only when it trains).
static SamxTensor *embed_batch(Trainer *t, const SamxBatch *b, int n) {
  SamModel *m = &t->mm.sam;
  int g = sam_embed_grid(&m->cfg), C = m->cfg.out_chans;
  if (b->embeddings) {
    if (b->emb_c != C || b->emb_h != g || b->emb_w != g)
      SAMX_DIE("embedding cache gives [%lld, %lld, %lld], the model expects [%d, %d, %d]", (long long)b->emb_c,
               (long long)b->emb_h, (long long)b->emb_w, C, g, g);
    int64_t per = b->emb_c * b->emb_h * b->emb_w;
    SamxTensor *e = samx_new(&t->ctx, SAMX_F32, SHAPE(n, C, g, g));
    for (int i = 0; i < n; i++)
      samx_memcpy(e->device, (float *)e->data + i * per, samx_cpu(), b->embeddings + t->use[i] * per, sizeof(float) * (size_t)per);
    return t->p2sam ? p2sam_embed(t, b, n, e) : e;
  }
  if (t->p2sam) return p2sam_embed(t, b, n, NULL);
  SamxTensor **imgs = (SamxTensor **)malloc(sizeof(SamxTensor *) * (size_t)n);
  int64_t hw = b->h * b->w;
  for (int i = 0; i < n; i++) {
    const uint8_t *src = b->image_u8 + t->use[i] * hw * b->channels;
    for (int64_t p = 0; p < hw; p++)
      for (int ch = 0; ch < 3; ch++) t->rgb[p * 3 + ch] = src[p * b->channels + (b->channels == 3 ? ch : 0)];
    SamImageInfo info;
    imgs[i] = sam_preprocess(&t->ctx, m, t->rgb, (int)b->h, (int)b->w, &info);
  }
  SamxTensor *x = n == 1 ? imgs[0] : samx_concat(&t->ctx, imgs, n, 0);
  free(imgs);
  int prev = t->ctx.recording;
  samx_ctx_set_recording(&t->ctx, prev && t->cfg->train_encoder);
  SamxTensor *emb = sam_method_encode(&t->ctx, &t->mm, x);
  samx_ctx_set_recording(&t->ctx, prev);
  return emb;
}

// Prompts and targets of the samples of b that have a non-empty annotator (t->use lists their
// positions in b). Returns how many there are.
static int prepare(Trainer *t, const SamxBatch *b) {
  const SamxTrainConfig *c = t->cfg;
  int S = t->mm.sam.cfg.img_size, n = 0;
  int64_t K = b->k, H = b->h, W = b->w, LL = t->L * t->L;
  for (int64_t i = 0; i < b->n; i++) {
    const uint8_t *masks = b->masks + i * K * H * W, *valid = b->annotator_valid + i * K;
    SamxMaskPrompts mp;
    if (samx_prompts_derive(masks, valid, K, H, W, c->box_jitter, b->sample_seed[i], &mp) != 0) continue;
    SamImageInfo *info = &t->info[n];
    info->orig_h = (int)H, info->orig_w = (int)W;
    int64_t C = t->p2sam ? c->p2sam_crop : 0, mh = C ? C : H, mw = C ? C : W;
    if (C) {  // the lesion-centred window: the model's image and every annotator's mask
      samx_prompt_crop_window(masks, valid, K, H, W, C, t->crop_at + 2 * n);
      for (int64_t k = 0; k < K; k++)
        for (int64_t y = 0; y < C; y++)
          memcpy(t->crop_masks + (k * C + y) * C, masks + (k * H + t->crop_at[2 * n] + y) * W + t->crop_at[2 * n + 1], (size_t)C);
      info->orig_h = info->orig_w = (int)C;
    }
    if (t->p2sam) {  // the whole image (or crop) resized to S x S (load_LIDC_data.py's RandomGenerator zoom)
      info->input_h = info->input_w = S;
    } else if (b->image_info) {
      info->input_h = (int)b->image_info[i * 4 + 2], info->input_w = (int)b->image_info[i * 4 + 3];
    } else {
      sam_input_size((int)H, (int)W, S, &info->input_h, &info->input_w);
    }
    SamPrompt *p = &t->prompts[n];
    memset(p, 0, sizeof *p);
    p->has_box = 1;
    for (int j = 0; j < 4; j++) p->box[j] = (float)mp.box_jittered[j];
    sam_prompt_to_input(info, p);
    for (int64_t k = 0; k < K; k++) {
      samx_lowres_label(C ? t->crop_masks + k * mh * mw : masks + k * H * W, info, S, t->L, t->labels + (n * K + k) * LL);
      t->valid[n * K + k] = valid[k];
    }
    memcpy(t->target + n * LL, t->labels + (n * K + mp.annotator) * LL, sizeof(float) * (size_t)LL);
    t->use[n++] = i;
  }
  return n;
}

// The n prepared samples as the method sees them (prompts and targets in the trainer's scratch).
static SamxMethodBatch method_batch(Trainer *t, SamxTensor *emb, int n) {
  SamxMethodBatch mb = {.image_emb = emb, .prompts = t->prompts, .P = n, .labels = t->labels, .valid = t->valid,
                        .K = (int)t->K, .target = t->target, .pixels = t->pixels};
  return mb;
}

// The method's hypotheses for the n prepared samples: outs[j] [n, 1, L, L].
static int hypotheses(Trainer *t, SamxTensor *emb, int n, int training, SamxTensor **outs) {
  SamxMethodBatch mb = method_batch(t, emb, n);
  return t->mm.def->hypotheses(&t->ctx, &t->mm, &mb, training, &t->mo, outs);
}

// The method's loss of n prepared samples. seed: the step's random draws (training only).
static SamxTensor *method_loss(Trainer *t, SamxTensor *emb, SamxTensor **outs, int m, int n, int training, uint64_t seed) {
  SamxMethodBatch mb = method_batch(t, emb, n);
  return t->mm.def->loss(&t->ctx, &t->mm, outs, m, &mb, training, &t->mo, seed);
}

static float read_scalar(const SamxTensor *x) {
  float v;
  samx_tensor_read_f32(x, &v);
  return v;
}

// The next batch with at least one usable sample; NULL on a read error or when none has one.
static const SamxBatch *next_usable(Trainer *t, SamxLoader *l, int *n) {
  int64_t tries = samx_loader_batches_per_epoch(l) + 1;
  for (int64_t i = 0; i < tries; i++) {
    const SamxBatch *b = samx_loader_next(l);
    if (!b) return NULL;
    if ((*n = prepare(t, b)) > 0) return b;
  }
  samx_fail("%s: no sample of the split has a non-empty annotator mask", t->cfg->data);
  return NULL;
}

typedef struct {
  double loss, grad_norm, lr;
  int64_t samples;
  int skipped;
  double comm_s;  // several ranks: seconds in the gradient reduction and the optimizer's collectives
  char first_bad[128];  // the first parameter (store order) whose gradient is not finite, for the message
} StepResult;

// Names the first trainable parameter with a non-finite gradient (read back only on a skipped step).
static void find_bad_gradient(const SamxParams *p, char *out, size_t n) {
  out[0] = 0;
  for (int i = 0; i < p->n && !out[0]; i++) {
    const SamxTensor *t = p->list[i];
    if (!t->grad) continue;
    float *g = (float *)malloc(sizeof(float) * (size_t)t->numel);
    samx_tensor_read_f32(t->grad, g);
    for (int64_t k = 0; k < t->numel; k++)
      if (!isfinite(g[k])) {
        snprintf(out, n, "%s", t->name);
        break;
      }
    free(g);
  }
}

static int train_step(Trainer *t, StepResult *r) {
  const SamxTrainConfig *c = t->cfg;
  SamxParams *params = &t->mm.sam.params;
  samx_params_zero_grad(params);
  memset(r, 0, sizeof *r);
  r->lr = samx_lr_at(&t->sched, t->step);
  // Micro-batch `micro` of this rank is batch micro * W + rank of the step in the one-process stream:
  // its random draws and its share of the loss (1 / (accum x W)) are that batch's.
  int64_t parts = c->accum_steps * t->world;
  int nan_here = c->inject_nan_rank < 0 || c->inject_nan_rank == t->rank;
  for (int64_t micro = 0; micro < c->accum_steps; micro++) {
    heartbeat = now_seconds();
    samx_ctx_reset(&t->ctx);
    int n;
    const SamxBatch *b = next_usable(t, t->train, &n);
    if (!b) return -1;
    t->epoch = b->epoch;
    SamxTensor *outs[MAX_MASKS];
    SamxTensor *emb = embed_batch(t, b, n);
    int m = hypotheses(t, emb, n, 1, outs);
    uint64_t select_seed = samx_hash4((uint64_t)c->seed, 11, (uint64_t)t->step, (uint64_t)(micro * t->world + t->rank));
    SamxTensor *loss = method_loss(t, emb, outs, m, n, 1, select_seed);
    if (nan_here && samx_train_config_nan_step(c, t->step + 1)) loss = samx_scale(&t->ctx, loss, NAN);
    loss = samx_scale(&t->ctx, loss, 1.0f / (float)parts);
    r->loss += read_scalar(loss);
    if (micro == c->accum_steps - 1 && samx_dp_overlap_begin(&t->dp, &t->ctx) != 0) return -1;
    if (samx_backward(&t->ctx, loss, NULL) != 0) return -1;
    samx_dp_micro_done(&t->dp, micro);
    r->samples += n;
  }
  // Summed over ranks: the loss and sample count for the logs, the gradient for the update. A NaN on
  // one rank is a NaN in every sum, so every rank skips the same step.
  double sums[2] = {r->loss, (double)r->samples}, t0 = now_seconds();
  int err = 0;
  if (samx_dp_sum(&t->dp, sums, 2) != 0 || samx_dp_reduce(&t->dp) != 0) return -1;
  r->comm_s = now_seconds() - t0;
  r->loss = sums[0], r->samples = (int64_t)sums[1];
  r->grad_norm = samx_dp_clip(&t->dp, (float)c->clip_norm, &err);
  if (err) return -1;
  r->skipped = !isfinite(r->loss) || !isfinite(r->grad_norm);
  if (r->skipped && isfinite(r->loss)) find_bad_gradient(params, r->first_bad, sizeof r->first_bad);
  if (!r->skipped && samx_dp_step(&t->dp, (float)r->lr) != 0) return -1;
  heartbeat = now_seconds();
  return 0;
}

// ---- validation ----
static double nan_mean(double sum, int64_t n) { return n ? sum / (double)n : NAN; }

typedef struct {
  double sum[5];  // GED, D_avg, D_max, HM-IoU, loss
  int64_t cnt[5];
  uint8_t *hyp, *vote;
  float *logits;
} ValAccum;

static void accumulate(ValAccum *a, int k, double v) {
  if (isfinite(v)) a->sum[k] += v, a->cnt[k]++;
}

// Scores prepared sample i of batch b: its nh hypotheses (low-res logits outs[j][i]) upsampled to the
// dataset's resolution and thresholded at 0, against the annotators that exist (empty ones included).
static void score_sample(Trainer *t, const SamxBatch *b, int i, SamxTensor **outs, int nh, ValAccum *a) {
  int64_t HW = b->h * b->w, K = b->k;
  SamxTensor *rows[MAX_MASKS];
  for (int j = 0; j < nh; j++) rows[j] = samx_slice(&t->ctx, outs[j], 0, i, i + 1);
  SamxTensor *low = nh == 1 ? rows[0] : samx_concat(&t->ctx, rows, nh, 1);
  samx_tensor_read_f32(sam_postprocess(&t->ctx, &t->mm.sam, low, &t->info[i]), a->logits);
  const uint8_t *hp[MAX_MASKS], *ap[MAX_MASKS];
  int64_t C = t->p2sam ? t->cfg->p2sam_crop : 0;  // P2SAM's window: pasted back, background outside
  for (int j = 0; j < nh; j++) {
    for (int64_t p = 0; p < HW; p++) a->hyp[j * HW + p] = !C && a->logits[j * HW + p] > 0.0f;
    for (int64_t y = 0; y < C; y++)
      for (int64_t x = 0; x < C; x++)
        a->hyp[j * HW + (t->crop_at[2 * i] + y) * b->w + t->crop_at[2 * i + 1] + x] = a->logits[(j * C + y) * C + x] > 0.0f;
    hp[j] = a->hyp + j * HW;
  }
  int na = 0;
  for (int64_t k = 0; k < K && na < MAX_MASKS; k++)
    if (b->annotator_valid[t->use[i] * K + k]) ap[na++] = b->masks + (t->use[i] * K + k) * HW;
  accumulate(a, 0, samx_ged(hp, nh, ap, na, HW));
  accumulate(a, 1, samx_dice_avg(hp, nh, ap, na, HW, SAMX_EMPTY_SEQSAM, a->vote));
  accumulate(a, 2, samx_dmax(hp, nh, ap, na, HW, SAMX_EMPTY_SEQSAM));
  accumulate(a, 3, samx_hm_iou(hp, nh, ap, na, HW, 0));
}

// One pass over the validation split (or its first train.val_samples samples), in inference mode.
// Samples whose annotators are all empty have no box and are not scored.
static int validate(Trainer *t, ValMetrics *out) {
  if (samx_loader_set_state(t->val, &t->val_start) != 0) return -1;
  int64_t cap = samx_loader_split_rows(t->val), done = 0;
  if (t->cfg->val_samples && t->cfg->val_samples < cap) cap = t->cfg->val_samples;
  SamxDatasetInfo di = samx_loader_info(t->val);
  ValAccum a = {{0}, {0}, (uint8_t *)malloc((size_t)(MAX_MASKS * di.h * di.w)), (uint8_t *)malloc((size_t)(di.h * di.w)),
                (float *)malloc(sizeof(float) * (size_t)(MAX_MASKS * di.h * di.w))};
  int prev = samx_ctx_set_recording(&t->ctx, 0), rc = 0;
  // Draws made in validation (P2SAM's z) come from their own stream position, so that a run that
  // validates at a step and one that does not (a resumed run) train with the same draws.
  uint64_t rng_at = t->ctx.rng_offset;
  t->ctx.rng_offset = samx_hash4((uint64_t)t->cfg->seed, 17, (uint64_t)t->step, 0);
  while (done < cap) {
    heartbeat = now_seconds();
    samx_ctx_reset(&t->ctx);
    const SamxBatch *b = samx_loader_next(t->val);
    if (!b) {
      rc = -1;
      break;
    }
    done += b->n;
    int n = prepare(t, b);
    if (n == 0) continue;
    SamxTensor *outs[MAX_MASKS];
    SamxTensor *emb = embed_batch(t, b, n);
    int nh = hypotheses(t, emb, n, 0, outs);
    accumulate(&a, 4, read_scalar(method_loss(t, emb, outs, nh, n, 0, 0)));
    for (int i = 0; i < n; i++) score_sample(t, b, i, outs, nh, &a);
  }
  samx_ctx_set_recording(&t->ctx, prev);
  t->ctx.rng_offset = rng_at;
  free(a.hyp);
  free(a.vote);
  free(a.logits);
  double *v[5] = {&out->ged, &out->d_avg, &out->d_max, &out->hm_iou, &out->loss};
  for (int k = 0; k < 5; k++) *v[k] = nan_mean(a.sum[k], a.cnt[k]);
  out->n = a.cnt[0];
  return rc;
}

static double metric_of(const ValMetrics *v, int which) {
  switch (which) {
    case SAMX_BEST_GED: return v->ged;
    case SAMX_BEST_DAVG: return v->d_avg;
    case SAMX_BEST_DMAX: return v->d_max;
    case SAMX_BEST_HMIOU: return v->hm_iou;
    default: return v->loss;
  }
}

static int lower_is_better(int which) { return which == SAMX_BEST_GED || which == SAMX_BEST_LOSS; }

// ---- checkpoints ----
static void checkpoint_path(const Trainer *t, const char *name, char *out, size_t n) {
  snprintf(out, n, "%s/%s.safetensors", t->ckpt_dir, name);
}

static json_t *json_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int write_checkpoint(Trainer *t, const char *name, int finished);

// Every rank calls it (ZeRO-1 gathers the optimizer shards first); rank 0 writes, and its outcome
// is every rank's.
static int save_checkpoint(Trainer *t, const char *name, int finished) {
  heartbeat = now_seconds();
  if (samx_dp_state_begin(&t->dp, 1) != 0) return -1;
  int rc = t->rank == 0 ? write_checkpoint(t, name, finished) : 0;
  samx_dp_state_end(&t->dp, 0);
  if (t->world > 1) {
    double failed = rc != 0;
    if (samx_dp_sum(&t->dp, &failed, 1) != 0) return -1;
    if (failed && rc == 0) return samx_fail("rank 0 could not write the %s checkpoint", name);
  }
  heartbeat = now_seconds();
  return rc;
}

static int write_checkpoint(Trainer *t, const char *name, int finished) {
  const SamxTrainConfig *c = t->cfg;
  char path[SAMX_CFG_STR + 64], loader_json[1024];
  checkpoint_path(t, name, path, sizeof path);
  SamxLoaderState ls = samx_loader_get_state(t->train);
  if (samx_loader_state_to_json(&ls, loader_json, sizeof loader_json) != 0) return -1;
  char *base = sam_method_meta_json(&t->mm, c->checkpoint), *cfg = samx_train_config_json(c);
  json_t *meta = json_loads(base, 0, NULL);
  json_object_set_new(meta, "config", json_loads(cfg, 0, NULL));
  json_t *train = json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:I, s:b, s:s}", "step", (json_int_t)t->step,
                            "total_steps", (json_int_t)t->total_steps, "epoch", (json_int_t)t->epoch, "loader",
                            json_loads(loader_json, 0, NULL), "skipped", (json_int_t)t->skipped, "bad_in_row",
                            (json_int_t)t->bad_in_row, "best", json_or_null(t->best), "best_step",
                            (json_int_t)t->best_step, "finished", finished, "samx_version", SAMX_VERSION);
  json_object_set_new(train, "world", json_integer(t->world));  // informative: the file does not depend on it
  json_object_set_new(meta, "train", train);
  char *meta_text = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
  SamxCheckpoint ck = {.params = &t->mm.sam.params, .optim = &t->opt, .ctx = &t->ctx, .global_step = t->step,
                       .trainable_only = !c->save_frozen};
  int rc = samx_checkpoint_save(path, &ck, meta_text);
  free(meta_text);
  json_decref(meta);
  free(base);
  free(cfg);
  return rc;
}

static int64_t checkpoint_step(const char *path) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return -1;
  const SamxSTEntry *e = samx_st_find(&st, "__train__/global_step");
  int64_t step = -1;
  if (e && e->dtype == SAMX_I64 && e->numel == 1) memcpy(&step, e->data, 8);
  samx_st_close(&st);
  return step;
}

enum { RESUME_INCOMPATIBLE = -2 };  // a checkpoint this run's settings cannot continue

static int resume_from(Trainer *t, const char *path) {
  SamxCheckpoint ck = {.params = &t->mm.sam.params, .optim = &t->opt, .ctx = &t->ctx};
  char *meta_text = NULL;
  if (samx_dp_state_begin(&t->dp, 0) != 0) return -1;
  int loaded = samx_checkpoint_load(path, &ck, &meta_text) == 0;
  samx_dp_state_end(&t->dp, loaded);  // ZeRO-1: keep this rank's shard of the full state
  if (!loaded) return -1;
  json_t *meta = meta_text ? json_loads(meta_text, 0, NULL) : NULL, *train = json_object_get(meta, "train");
  free(meta_text);
  if (!json_is_object(train)) {
    json_decref(meta);
    return samx_fail("%s: no training state in its metadata (not written by samx train?)", path);
  }
  const char *method = json_string_value(json_object_get(meta, "method"));
  if (!method || strcmp(method, sam_method_name(t->mm.method))) {
    json_decref(meta);
    return samx_fail("%s: a %s checkpoint, this run trains %s", path, method ? method : "?", sam_method_name(t->mm.method));
  }
  // The global batch (batch x accum x ranks) must stay, else the data stream and the schedule change.
  json_t *saved_cfg = json_object_get(meta, "config"), *saved_world = json_object_get(train, "world");
  int64_t sb = json_integer_value(json_object_get(json_object_get(saved_cfg, "optim"), "batch_size"));
  int64_t sa = json_integer_value(json_object_get(json_object_get(saved_cfg, "optim"), "accum_steps"));
  int64_t sw = json_is_integer(saved_world) ? json_integer_value(saved_world) : 1;
  const SamxTrainConfig *c = t->cfg;
  if (sb > 0 && sa > 0 && sb * sa * sw != c->batch_size * c->accum_steps * t->world) {
    int64_t global = sb * sa * sw, per = c->batch_size * t->world;
    json_decref(meta);
    samx_fail("%s: saved with a global batch of %lld (batch %lld x accum %lld x %lld ranks), this run has %lld x %lld "
                     "x %d ranks (HINT: %s)",
                     path, (long long)global, (long long)sb, (long long)sa, (long long)sw, (long long)c->batch_size,
                     (long long)c->accum_steps, t->world,
                     global % per == 0 ? "set optim.accum_steps so that the product stays; e.g. --set optim.accum_steps=N"
                                       : "keep optim.batch_size and pick ranks x accum_steps with the same product");
    return RESUME_INCOMPATIBLE;
  }
  char *loader_json = json_dumps(json_object_get(train, "loader"), JSON_COMPACT);
  SamxLoaderState ls;
  int rc = loader_json && samx_loader_state_from_json(loader_json, &ls) == 0 ? samx_loader_set_state(t->train, &ls) : -1;
  free(loader_json);
  if (rc == 0) {
    snprintf(t->resumed_from, sizeof t->resumed_from, "%s", path);
    t->step = ck.global_step;
    t->epoch = json_integer_value(json_object_get(train, "epoch"));
    t->skipped = json_integer_value(json_object_get(train, "skipped"));
    t->bad_in_row = json_integer_value(json_object_get(train, "bad_in_row"));
    json_t *best = json_object_get(train, "best");
    t->best = json_is_number(best) ? json_number_value(best) : NAN;
    t->best_step = json_integer_value(json_object_get(train, "best_step"));
  } else {
    samx_fail("%s: loader state: %s", path, samx_last_error());
  }
  json_decref(meta);
  return rc;
}

// --resume auto: the complete checkpoint with the highest step (final, then latest, then best on a
// tie); one that does not load is reported and the next one tried. Returns 1 when none exists.
static int resume_auto(Trainer *t) {
  static const char *names[3] = {"final", "latest", "best"};
  char paths[3][SAMX_CFG_STR + 64];
  int64_t steps[3];
  for (int i = 0; i < 3; i++) {
    checkpoint_path(t, names[i], paths[i], sizeof paths[i]);
    // A save killed by SIGKILL (or a power cut) leaves NAME.safetensors.tmp.PID behind.
    int stale = samx_remove_stale_tmp(paths[i]);
    if (stale) fprintf(stderr, "samx train: removed %d unfinished temporary file(s) of %s\n", stale, paths[i]);
    steps[i] = file_exists(paths[i]) ? checkpoint_step(paths[i]) : -1;
    if (steps[i] < 0 && file_exists(paths[i]))
      fprintf(stderr, "samx train: warning: %s is not a complete checkpoint, skipped\n", paths[i]);
  }
  for (int round = 0; round < 3; round++) {
    int pick = -1;
    for (int i = 0; i < 3; i++)
      if (steps[i] >= 0 && (pick < 0 || steps[i] > steps[pick])) pick = i;
    if (pick < 0) return 1;
    int rc = resume_from(t, paths[pick]);
    if (rc == 0) {
      printf("resuming from %s (step %lld)\n", paths[pick], (long long)t->step);
      return 0;
    }
    if (rc == RESUME_INCOMPATIBLE) return -1;  // the run's settings, not the file, are at fault
    fprintf(stderr, "samx train: warning: cannot resume from %s: %s\n", paths[pick], samx_last_error());
    steps[pick] = -1;
  }
  return 1;
}

// Keeps the log's records up to `step` (a killed run may have logged steps after its checkpoint,
// and its last line may be cut).
static int truncate_log(const char *path, int64_t step) {
  if (!file_exists(path)) return 0;
  size_t size;
  char *text = samx_read_file(path, &size);
  if (!text) return -1;
  char *out = (char *)malloc(size + 1);
  size_t len = 0;
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    if (!nl) break;  // no newline: a cut record
    *nl = 0;
    json_t *o = json_loads(line, 0, NULL);
    if (o && json_integer_value(json_object_get(o, "step")) <= step) {
      len += (size_t)sprintf(out + len, "%s\n", line);
    }
    json_decref(o);
    line = nl + 1;
  }
  int rc = samx_write_file_atomic(path, out, len);
  free(out);
  free(text);
  return rc;
}

// ---- output ----
static void log_step(Trainer *t, const StepResult *r) {
  if (!t->log || (!r->skipped && t->step % t->cfg->log_every != 0)) return;
  double elapsed = now_seconds() - t->t_start;
  fprintf(t->log, "{\"step\":%lld,\"epoch\":%lld", (long long)t->step, (long long)t->epoch);
  json_num(t->log, "loss", r->loss);
  json_num(t->log, "lr", r->lr);
  json_num(t->log, "grad_norm", r->grad_norm);
  fprintf(t->log, ",\"skipped\":%d,\"skipped_total\":%lld,\"samples\":%lld", r->skipped, (long long)t->skipped,
          (long long)r->samples);
  json_num(t->log, "samples_per_s", elapsed > 0 ? (double)t->samples / elapsed : NAN);
  json_num(t->log, "act_peak_mb", (double)t->ctx.act.peak / (1 << 20));
  json_num(t->log, "rss_mb", rss_mb());
  json_num(t->log, "time_s", elapsed);
  if (t->world > 1) json_num(t->log, "comm_ms", 1e3 * r->comm_s);
  fprintf(t->log, "}\n");
  fflush(t->log);
}

static void log_validation(Trainer *t, const ValMetrics *v, double seconds) {
  if (t->log) {
    fprintf(t->log, "{\"step\":%lld,\"val\":{\"n\":%lld", (long long)t->step, (long long)v->n);
    json_num(t->log, "ged", v->ged);
    json_num(t->log, "d_avg", v->d_avg);
    json_num(t->log, "d_max", v->d_max);
    json_num(t->log, "hm_iou", v->hm_iou);
    json_num(t->log, "loss", v->loss);
    json_num(t->log, "seconds", seconds);
    fprintf(t->log, "}}\n");
    fflush(t->log);
  }
  if (t->opts->quiet) return;
  if (t->bar) fprintf(stderr, "\r\033[K");
  printf("step %lld validation (%lld samples, %.1fs): GED %.4f  D_avg %.4f  D_max %.4f  HM-IoU %.4f  loss %.4f\n",
         (long long)t->step, (long long)v->n, seconds, v->ged, v->d_avg, v->d_max, v->hm_iou, v->loss);
  fflush(stdout);
}

static void show_progress(Trainer *t, const StepResult *r, int force) {
  if (t->opts->quiet || t->cfg->progress == SAMX_PROGRESS_NONE) return;
  double now = now_seconds(), elapsed = now - t->t_start;
  int64_t done = t->step - t->step_at_start;
  double rate = elapsed > 0 ? (double)t->samples / elapsed : 0;
  double eta = done > 0 ? elapsed / (double)done * (double)(t->total_steps - t->step) : NAN;
  char eta_s[32];
  format_duration(eta, eta_s, sizeof eta_s);
  double frac = (double)t->step / (double)t->total_steps;
  if (t->bar) {
    char bar[32];
    int fill = (int)(frac * 24);
    for (int i = 0; i < 24; i++) bar[i] = i < fill ? '#' : '.';
    bar[24] = 0;
    fprintf(stderr, "\r\033[K%s[%s]%s %lld/%lld loss %s%.4f%s lr %.2e %.1f samples/s ETA %s%s", t->color ? "\033[32m" : "",
            bar, t->color ? "\033[0m" : "", (long long)t->step, (long long)t->total_steps,
            r->skipped && t->color ? "\033[31m" : "", r->loss, r->skipped && t->color ? "\033[0m" : "", r->lr, rate,
            eta_s, t->skipped ? " (skipped steps!)" : "");
    fflush(stderr);
    return;
  }
  if (!force && now - t->t_last_print < t->cfg->print_seconds) return;
  t->t_last_print = now;
  printf("step %lld/%lld (%.0f%%) epoch %lld loss %.4f lr %.2e grad %.3g %.1f samples/s ETA %s skipped %lld\n",
         (long long)t->step, (long long)t->total_steps, 100 * frac, (long long)t->epoch, r->loss, r->lr,
         r->grad_norm, rate, eta_s, (long long)t->skipped);
  fflush(stdout);
}

// ---- set-up and the loop ----
static int run_dir_holds_run(const SamxTrainConfig *c, const char *ckpt_dir) {
  static const char *files[] = {"config.ini", "log.jsonl"};
  char p[SAMX_CFG_STR + 64];
  for (int i = 0; i < 2; i++) {
    path_join(p, sizeof p, c->dir, files[i]);
    if (file_exists(p)) return 1;
  }
  DIR *d = opendir(ckpt_dir);
  if (!d) return 0;
  int found = 0;
  for (struct dirent *e; (e = readdir(d)) && !found;) found = strstr(e->d_name, ".safetensors") != NULL;
  closedir(d);
  return found;
}

// --force: removes what a run writes (and nothing else).
static void clear_run(const SamxTrainConfig *c, const char *ckpt_dir) {
  static const char *files[] = {"config.ini", "log.jsonl", "curves.svg", "sam.safetensors"};
  static const char *ckpts[] = {"latest", "best", "final"};
  char p[SAMX_CFG_STR + 64];
  for (int i = 0; i < 4; i++) {
    path_join(p, sizeof p, c->dir, files[i]);
    unlink(p);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s.safetensors", ckpt_dir, ckpts[i]);
    unlink(p);
  }
}

static int agree(Trainer *t, int rc, const char *what);

// --resume: rank 0 picks the checkpoint (auto: the newest complete one), every rank loads that file.
static int resume(Trainer *t) {
  const SamxTrainOptions *o = t->opts;
  char chosen[SAMX_CFG_STR + 64] = "";
  int rc = 0;
  if (t->world == 1 || t->rank == 0) {
    rc = !strcmp(o->resume, "auto") ? resume_auto(t) : resume_from(t, o->resume);
    if (rc == 0) snprintf(chosen, sizeof chosen, "%s", t->resumed_from);
    if (rc == 1) printf("no checkpoint in %s: starting a fresh run\n", t->ckpt_dir);
  }
  if (t->world == 1) return rc < 0 ? -1 : 0;
  if (agree(t, rc < 0 ? -1 : 0, "resume") != 0) return -1;
  if (samx_dist_broadcast(&t->dist, chosen, sizeof chosen, 0) != 0) return -1;
  if (t->rank != 0 && chosen[0]) return resume_from(t, chosen);
  return 0;
}

// Rank 0's verdict (0 or -1) becomes every rank's; the others report that rank 0 failed.
static int agree(Trainer *t, int rc, const char *what) {
  if (t->world == 1) return rc;
  int32_t v = rc;
  if (samx_dist_broadcast(&t->dist, &v, sizeof v, 0) != 0) return -1;
  if (v != 0 && t->rank != 0) return samx_fail("rank 0 failed to %s (its message is above)", what);
  return v;
}

// The ranks of the job (a world of one without a launcher), and its device: a CUDA rank takes the
// GPU of its local rank.
static int join_ranks(Trainer *t) {
  const SamxTrainOptions *o = t->opts;
  SamxLaunch launch;
  if (samx_launch_detect(o->launch, NULL, NULL, &launch) != 0) return -1;
  if (samx_dist_init(&t->dist, &launch, t->dev) != 0) return -1;
  t->rank = t->dist.rank, t->world = t->dist.world;
  t->dev = t->dist.device;
  if (t->world > 1 && !o->quiet) {
    char line[1024];
    samx_launch_describe(&t->dist.launch, line, sizeof line);
    printf("samx train: %s; %s back end\n", line, samx_dist_backend_name(t->dist.backend));
    fflush(stdout);
  }
  return 0;
}

static int prepare_run_dir(Trainer *t) {
  const SamxTrainConfig *c = t->cfg;
  const SamxTrainOptions *o = t->opts;
  if (run_dir_holds_run(c, t->ckpt_dir)) {
    if (!o->resume && !o->force)
      return samx_fail("%s already holds a run: continue it with --resume auto, or start over with --force", c->dir);
    if (!o->resume) clear_run(c, t->ckpt_dir);
  }
  return samx_mkdir_p(t->ckpt_dir);
}

static int setup(Trainer *t) {
  const SamxTrainConfig *c = t->cfg;
  const SamxTrainOptions *o = t->opts;
  snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", c->dir);
  t->world = 1;
  if (samx_device_parse(o->device ? o->device : c->device, &t->dev) != 0) return -1;
  if (join_ranks(t) != 0) return -1;
  if (samx_train_config_precision(c, o->precision, t->dev) != 0) return -1;
  if (agree(t, t->rank == 0 ? prepare_run_dir(t) : 0, "prepare the run directory") != 0) return -1;
  samx_device_activate(t->dev);
  if (build_model(t) != 0) return -1;
  if (open_loader(t, c->train_split, 1, &t->train) != 0) return -1;
  if (c->val_split[0]) {
    if (open_loader(t, c->val_split, 0, &t->val) != 0) return -1;
    t->val_start = samx_loader_get_state(t->val);
  }
  SamxDatasetInfo di = samx_loader_info(t->train);
  t->K = di.k;
  int64_t B = c->batch_size, LL = t->L * t->L;
  t->rgb = (uint8_t *)malloc((size_t)(di.h * di.w * 3));
  t->labels = (float *)malloc(sizeof(float) * (size_t)(B * t->K * LL));
  t->target = (float *)malloc(sizeof(float) * (size_t)(B * LL));
  t->valid = (uint8_t *)malloc((size_t)(B * t->K));
  t->prompts = (SamPrompt *)calloc((size_t)B, sizeof(SamPrompt));
  t->info = (SamImageInfo *)calloc((size_t)B, sizeof(SamImageInfo));
  t->use = (int64_t *)calloc((size_t)B, sizeof(int64_t));
  if (t->p2sam && c->p2sam_crop) {
    if (c->p2sam_crop > di.h || c->p2sam_crop > di.w) {
      samx_fail("config: [p2sam] crop = %lld is larger than the %lldx%lld images of %s", (long long)c->p2sam_crop,
                (long long)di.h, (long long)di.w, c->data);
      return -1;
    }
    t->crop_at = (int64_t *)calloc((size_t)B * 2, sizeof(int64_t));
    t->crop_masks = (uint8_t *)malloc((size_t)(t->K * c->p2sam_crop * c->p2sam_crop));
  }
  int64_t bpe = samx_loader_batches_per_epoch(t->train);
  // bpe counts batches of the one-process stream; a step takes accum_steps x W of them.
  t->total_steps = c->steps ? c->steps : (int64_t)ceil(c->epochs * (double)bpe / (double)(c->accum_steps * t->world));
  if (t->total_steps < 1) t->total_steps = 1;
  SamxOptimConfig oc = c->optimizer == SAMX_OPTIM_SGD ? samx_sgd_config(c->momentum, 0, c->weight_decay)
                       : c->optimizer == SAMX_OPTIM_ADAM ? samx_adam_config(c->weight_decay)
                                                         : samx_adamw_config(c->weight_decay);
  oc.beta1 = c->beta1, oc.beta2 = c->beta2, oc.eps = c->eps;
  if (t->p2sam) {
    p2sam_optim_init(&t->opt, &t->mm, (int)c->p2sam_stage, c->lr > 0 ? c->p2sam_weights_lr / c->lr : 0.0,
                     c->p2sam_weights_eps, c->p2sam_weights_decay);
  } else {
    samx_optim_init(&t->opt, &t->mm.sam.params, oc);
    if (!c->decay_1d) samx_optim_add_group_if(&t->opt, samx_param_is_1d, NULL, 1.0, 0.0);
  }
  t->sched = (SamxSchedule){(SamxScheduleKind)c->schedule, (float)c->lr, (float)c->min_lr, c->warmup_steps, t->total_steps};
  if (samx_dp_init(&t->dp, &t->dist, &t->mm.sam.params, &t->opt, (int)c->zero, c->bucket_mb, (int)c->accum_steps) != 0)
    return -1;
  t->dp.overlap = c->overlap;
  samx_ctx_init(&t->ctx, t->dev, (size_t)c->act_mem_mb << 20, MAX_NODES);
  t->ctx.seed = (uint64_t)c->seed;
  t->best = NAN;
  t->best_step = -1;
  if (o->resume && resume(t) != 0) return -1;
  // Same seed, same checkpoint: every rank must now hold the same model.
  if (samx_dp_check_same(&t->dp, t->step ? "after resuming" : "at the start") != 0) return -1;
  if (t->rank != 0) return 0;  // rank 0 alone writes the log and the resolved configuration
  char p[SAMX_CFG_STR + 64];
  path_join(p, sizeof p, c->dir, "log.jsonl");
  if (truncate_log(p, t->step) != 0) return -1;
  t->log = fopen(p, "a");
  if (!t->log) return samx_fail("%s: cannot open for writing: %s", p, strerror(errno));
  char *ini = samx_train_config_ini(c);
  path_join(p, sizeof p, c->dir, "config.ini");
  int rc = samx_write_file_atomic(p, ini, strlen(ini));
  free(ini);
  return rc;
}

// The arenas (capacity, high-water mark and what it held by dtype): at the start, and after the first
// step, whose activation peak (forward, backward and update; in bf16 with the GEMMs' bf16 copies of
// activations) is what every step takes. In bf16 the parameters' kept GEMM operands are a row of their own.
static void print_memory(Trainer *t) {
  if (t->opts->quiet || t->rank != 0) return;
  SamxParams *p = &t->mm.sam.params;
  SamxArena *arenas[5] = {&p->values, &p->grads, &t->opt.state, &t->ctx.act, &p->shadows};
  if (t->step > t->step_at_start) {
    if (t->bar) fprintf(stderr, "\r\033[K");
    printf("memory after the first step:\n");
  }
  samx_arena_table(arenas, p->shadowed ? 5 : 4, stdout);
  fflush(stdout);
}

static void print_summary(Trainer *t) {
  if (t->opts->quiet) return;
  const SamxTrainConfig *c = t->cfg;
  const SamxParams *p = &t->mm.sam.params;
  char dev[64];
  samx_device_str(t->dev, dev, sizeof dev);
  char ranks[48] = "";
  if (t->world > 1) snprintf(ranks, sizeof ranks, " x %d ranks%s", t->world, t->dp.zero ? " (ZeRO-1)" : "");
  printf("samx train: %s on %s, %.2fM of %.2fM parameters trained, %lld training samples, batch %lld x %lld%s, %lld steps\n",
         sam_method_name(t->mm.method), dev, (double)p->n_trainable / 1e6, (double)p->n_values / 1e6,
         (long long)samx_loader_split_rows(t->train), (long long)c->batch_size, (long long)c->accum_steps, ranks,
         (long long)t->total_steps);
  printf("run directory %s; encoder %s; GEMMs in %s\n", c->dir,
         c->embeddings[0] ? "from the embedding cache" : c->train_encoder ? "trained" : "frozen (run on the fly)",
         samx_precision_name(samx_precision_on(t->dev)));
  // Every byte the run will use is allocated here; nothing is allocated inside a step.
  print_memory(t);
}

static void teardown(Trainer *t) {
  samx_dp_free(&t->dp);
  samx_dist_finalize(&t->dist);
  if (t->log) fclose(t->log);
  if (t->train) samx_loader_close(t->train);
  if (t->val) samx_loader_close(t->val);
  if (t->opt.params) samx_optim_free(&t->opt);
  if (t->ctx.tape.nodes) samx_ctx_free(&t->ctx);
  if (t->mm.sam.params.list) sam_method_free(&t->mm);
  free(t->rgb);
  free(t->labels);
  free(t->target);
  free(t->valid);
  free(t->prompts);
  free(t->info);
  free(t->crop_at), free(t->crop_masks);
  free(t->use);
}

static int run_validation(Trainer *t) {
  ValMetrics v;
  double t0 = now_seconds();
  if (validate(t, &v) != 0) return -1;
  log_validation(t, &v, now_seconds() - t0);
  int which = t->cfg->best_metric;
  double x = metric_of(&v, which);
  int better = isfinite(x) && (!isfinite(t->best) || (lower_is_better(which) ? x < t->best : x > t->best));
  if (better) {
    t->best = x;
    t->best_step = t->step;
    if (save_checkpoint(t, "best", 0) != 0) return -1;
  }
  return 0;
}

static void write_curves(Trainer *t) {
  if (t->rank != 0) return;
  char log[SAMX_CFG_STR + 64], svg[SAMX_CFG_STR + 64];
  path_join(log, sizeof log, t->cfg->dir, "log.jsonl");
  path_join(svg, sizeof svg, t->cfg->dir, "curves.svg");
  if (samx_train_curves_svg(log, svg) != 0)
    fprintf(stderr, "samx train: warning: curves not drawn: %s\n", samx_last_error());
}

// The SAM part of the final model; P2SAM's LoRA is merged into qkv for it (and taken out again).
static int save_sam_part(Trainer *t, const char *path) {
  SamModel *m = &t->mm.sam;
  char name[128];
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < m->cfg.enc_depth && m->lora[i][0]; i++) {
      snprintf(name, sizeof name, "image_encoder.blocks.%d.attn.qkv.weight", i);
      samx_lora_merge_qkv(samx_params_find(&m->params, name), m->lora[i][0], m->lora[i][1], m->lora[i][2], m->lora[i][3],
                          pass ? -1.0f : 1.0f);
    }
    if (pass == 0 && sam_method_save_sam(&t->mm, path) != 0) return -1;
  }
  return 0;
}

static int finish(Trainer *t) {
  if (t->val && (t->cfg->val_every == 0 || t->step % t->cfg->val_every != 0))
    if (run_validation(t) != 0) return -1;
  if (save_checkpoint(t, "final", 1) != 0) return -1;
  char p[SAMX_CFG_STR + 64];
  path_join(p, sizeof p, t->cfg->dir, "sam.safetensors");
  if (agree(t, t->rank == 0 ? save_sam_part(t, p) : 0, "write sam.safetensors") != 0) return -1;
  write_curves(t);
  if (!t->opts->quiet) {
    if (t->bar) fprintf(stderr, "\n");
    printf("done: %lld steps (%lld skipped), checkpoints in %s, SAM weights %s\n", (long long)t->step,
           (long long)t->skipped, t->ckpt_dir, p);
  }
  return 0;
}

// P2SAM stage 2: every p2sam.snapshot_every epochs, the prior network and Fcomb as they are
// (train_second_stage.py:114-118 save_non_lora_weights), to checkpoints/snapshot_epoch_N.safetensors
// (crash-safe write); inference ensembles them (samx infer --method p2sam).
static int p2sam_snapshot(Trainer *t) {
  const SamxTrainConfig *c = t->cfg;
  if (!t->p2sam || c->p2sam_stage != 2 || t->rank != 0) return 0;  // rank 0 writes files
  int64_t spe = (samx_loader_batches_per_epoch(t->train) + c->accum_steps - 1) / c->accum_steps, epoch = 0;
  char path[SAMX_CFG_STR + 96], meta[64];
  if (c->p2sam_snapshot_steps) {
    if (t->step % c->p2sam_snapshot_steps) return 0;
    snprintf(path, sizeof path, "%s/snapshot_step_%lld.safetensors", t->ckpt_dir, (long long)t->step);
  } else {
    if (!c->p2sam_snapshot_every || spe < 1 || t->step % (spe * c->p2sam_snapshot_every) != 0) return 0;
    epoch = t->step / spe;
    snprintf(path, sizeof path, "%s/snapshot_epoch_%lld.safetensors", t->ckpt_dir, (long long)epoch);
  }
  SamxSTWriter *w = samx_st_writer_new();
  for (int i = 0; i < t->mm.sam.params.n; i++) {
    const SamxTensor *p = t->mm.sam.params.list[i];
    if (!strncmp(p->name, "p2sam.prior_dense.", 18) || !strncmp(p->name, "p2sam.fcomb.", 12)) samx_st_writer_add_tensor(w, p->name, p);
  }
  snprintf(meta, sizeof meta, "%lld", (long long)epoch);
  samx_st_writer_meta(w, "epoch", meta);
  samx_st_writer_meta(w, "format", "samx-p2sam-snapshot");
  int rc = samx_st_writer_save(w, path);
  samx_st_writer_free(w);
  if (rc == 0 && !t->opts->quiet) printf("snapshot of the prompt-generation network at step %lld: %s\n", (long long)t->step, path);
  return rc;
}

static int agree_on_signal(Trainer *t);

// Returns an exit status.
static int loop(Trainer *t) {
  const SamxTrainConfig *c = t->cfg;
  t->t_start = t->t_last_print = now_seconds();
  t->step_at_start = t->step;
  StepResult r = {0};
  while (t->step < t->total_steps) {
    if (agree_on_signal(t) != 0) return SAMX_TRAIN_EXIT_ERROR;
    if (stop_signal) break;
    if (train_step(t, &r) != 0) return SAMX_TRAIN_EXIT_ERROR;
    t->step++;
    t->samples += r.samples;
    if (r.skipped) {
      t->skipped++;
      t->bad_in_row++;
      if (t->bar) fprintf(stderr, "\r\033[K");
      if (t->rank == 0)
        fprintf(stderr, "samx train: step %lld skipped: loss %g, gradient norm %g (%lld in a row, %lld in all)%s%s\n",
                (long long)t->step, r.loss, r.grad_norm, (long long)t->bad_in_row, (long long)t->skipped,
                r.first_bad[0] ? "; first non-finite gradient: " : "", r.first_bad);
    } else {
      t->bad_in_row = 0;
    }
    log_step(t, &r);
    if (t->step == t->step_at_start + 1) print_memory(t);
    if (p2sam_snapshot(t) != 0) return SAMX_TRAIN_EXIT_ERROR;
    if (t->bad_in_row >= c->max_bad_steps) {
      samx_fail("%lld non-finite steps in a row (train.max_bad_steps), the last at step %lld: stopping without a "
                "checkpoint (HINT: lower optim.lr, raise optim.warmup_steps, or check the data)",
                (long long)t->bad_in_row, (long long)t->step);
      return SAMX_TRAIN_EXIT_NONFINITE;
    }
    show_progress(t, &r, t->step == t->total_steps);
    if (t->val && c->val_every && t->step % c->val_every == 0 && run_validation(t) != 0) return SAMX_TRAIN_EXIT_ERROR;
    if (c->save_every && t->step % c->save_every == 0 && t->step < t->total_steps) {
      if (save_checkpoint(t, "latest", 0) != 0) return SAMX_TRAIN_EXIT_ERROR;
      write_curves(t);
    }
    if (c->step_sleep_ms) usleep((useconds_t)(c->step_sleep_ms * 1000));
  }
  if (agree_on_signal(t) != 0) return SAMX_TRAIN_EXIT_ERROR;  // a signal during the last step
  if (stop_signal) {
    if (t->bar) fprintf(stderr, "\r\033[K");
    if (save_checkpoint(t, "latest", 0) != 0) return SAMX_TRAIN_EXIT_ERROR;
    write_curves(t);
    const char *name = stop_signal == SIGTERM ? "SIGTERM" : stop_signal == SIGUSR1 ? "SIGUSR1"
                       : stop_signal == SIGHUP  ? "SIGHUP"
                                                : "SIGINT";
    if (t->rank == 0)
      fprintf(stderr, "samx train: %s at step %lld: checkpoint saved to %s/latest.safetensors; continue with --resume auto\n",
              name, (long long)t->step, t->ckpt_dir);
    else
      fprintf(stderr, "samx train: rank %d of %d: %s at step %lld: checkpoint saved by rank 0\n", t->rank, t->world, name,
              (long long)t->step);
    return exit_status_of(stop_signal);
  }
  return finish(t) == 0 ? SAMX_TRAIN_EXIT_OK : SAMX_TRAIN_EXIT_ERROR;
}

// Several ranks: a rank that sees no progress for train.step_timeout seconds (a peer died or hangs in
// a collective) ends the whole job, naming itself, instead of waiting forever.
static struct {
  double timeout;
  int rank, world;
  SamxDist *dist;
} watch;

static void *watchdog_main(void *arg) {
  (void)arg;
  for (;;) {
    sleep(1);
    double idle = now_seconds() - heartbeat;
    if (idle > watch.timeout) {
      fprintf(stderr, "samx train: rank %d of %d: no progress for %.0f s (train.step_timeout): another rank died or "
                      "hangs; aborting the job\n",
              watch.rank, watch.world, idle);
      samx_dist_abort(watch.dist, SAMX_TRAIN_EXIT_ERROR);
    }
  }
  return NULL;
}

static void start_watchdog(Trainer *t) {
  if (t->world == 1 || t->cfg->step_timeout <= 0) return;
  watch.timeout = t->cfg->step_timeout, watch.rank = t->rank, watch.world = t->world, watch.dist = &t->dist;
  heartbeat = now_seconds();
  pthread_t th;
  if (pthread_create(&th, NULL, watchdog_main, NULL) == 0) pthread_detach(th);
}

// Every rank agrees at the step boundary on a signal any of them received (SIGTERM before SIGUSR1
// before SIGINT), so that all checkpoint together and exit with the same status.
static int agree_on_signal(Trainer *t) {
  if (t->world == 1) return 0;
  double seen[3] = {stop_signal == SIGTERM, stop_signal == SIGUSR1, stop_signal == SIGINT};
  if (samx_dp_sum(&t->dp, seen, 3) != 0) return -1;
  if (seen[0] > 0)
    stop_signal = SIGTERM;
  else if (seen[1] > 0)
    stop_signal = SIGUSR1;
  else if (seen[2] > 0)
    stop_signal = SIGINT;
  return 0;
}

int samx_train_run(const SamxTrainConfig *cfg, const SamxTrainOptions *opts) {
  Trainer t;
  memset(&t, 0, sizeof t);
  SamxTrainOptions local = *opts;
  t.cfg = cfg;
  t.opts = &local;
  stop_signal = 0;
  install_signals();
  heartbeat = now_seconds();
  int status = SAMX_TRAIN_EXIT_ERROR, ok = setup(&t) == 0;
  if (t.rank != 0) local.quiet = 1;  // rank 0 speaks for the job
  if (ok) start_watchdog(&t);
  if (ok) {
    int tty = isatty(2);
    t.bar = cfg->progress == SAMX_PROGRESS_BAR || (cfg->progress == SAMX_PROGRESS_AUTO && tty);
    const char *nc = getenv("NO_COLOR");
    t.color = t.bar && tty && !(nc && nc[0]);
    if (t.step >= t.total_steps) {
      if (t.rank == 0) printf("the run already finished (step %lld of %lld)\n", (long long)t.step, (long long)t.total_steps);
      status = SAMX_TRAIN_EXIT_OK;
    } else {
      print_summary(&t);
      status = loop(&t);
    }
  }
  if (status == SAMX_TRAIN_EXIT_ERROR || status == SAMX_TRAIN_EXIT_NONFINITE) {
    if (t.world > 1)
      fprintf(stderr, "samx train: rank %d of %d: %s\n", t.rank, t.world, samx_last_error());
    else
      fprintf(stderr, "samx train: %s\n", samx_last_error());
    // One rank's failure ends the job: the others would wait for it in the next collective.
    if (t.world > 1 && status == SAMX_TRAIN_EXIT_ERROR) samx_dist_abort(&t.dist, status);
  }
  teardown(&t);
  return status;
}
