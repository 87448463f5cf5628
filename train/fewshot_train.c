// Few-shot decoder training (train/fewshot_train.h).
#include "train/fewshot_train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/labels.h"
#include "data/predictions.h"
#include "data/rng.h"
#include "engine/fileio.h"
#include "engine/samx.h"
#include "models/fewshot/fewshot.h"
#include "models/sam/sam_image.h"

int64_t samx_fewshot_default_iterations(int64_t shots) { return shots <= 5 ? 50 : shots <= 20 ? 80 : 100; }

typedef struct {
  int L, ids[SAMX_MAX_LABELS];
  int64_t S, *rows;
  int64_t C, g, n;     // embedding channels, grid, low-res size (4g)
  int img_size;
  float *emb;          // [S, C, g, g]
  float *weights;      // [S, L, g, g]
  float *targets;      // [S, L, n * n]
  int tokens;
} Shots;

static void shots_free(Shots *s) { free(s->rows), free(s->emb), free(s->weights), free(s->targets); }

static int load_shots(const SamxTrainConfig *c, SamxDataset *ds, SamxEmbedCache *ec, Shots *s) {
  int split = samx_split_parse(c->train_split);
  if (split < 0) return samx_fail("data.train_split '%s': train, val or test", c->train_split);
  int64_t n_split = samx_dataset_split_rows(ds, split, NULL, 0);
  if (n_split < c->fewshot_shots)
    return samx_fail("%s: fewshot.shots = %lld but the %s split has %lld rows", c->data, (long long)c->fewshot_shots,
                     c->train_split, (long long)n_split);
  int64_t *all = (int64_t *)malloc((size_t)n_split * sizeof(int64_t));
  samx_dataset_split_rows(ds, split, all, n_split);
  uint64_t st = (uint64_t)c->seed ^ 0xf3357ULL;
  for (int64_t i = n_split - 1; i > 0; i--) {  // Fisher-Yates with the run's seed
    int64_t j = (int64_t)(samx_unit(samx_splitmix64(&st)) * (double)(i + 1));
    int64_t t = all[i];
    all[i] = all[j], all[j] = t;
  }
  s->S = c->fewshot_shots;
  s->rows = all;
  samx_embed_shape(ec, &s->C, &s->g, &s->g);
  s->img_size = (int)samx_embed_input_size(ec);
  s->n = 4 * s->g;
  int64_t H = samx_dataset_h(ds), W = samx_dataset_w(ds), cells = s->g * s->g;
  s->emb = (float *)malloc((size_t)(s->S * s->C * cells) * sizeof(float));
  s->weights = (float *)malloc((size_t)(s->S * s->L * cells) * sizeof(float));
  s->targets = (float *)malloc((size_t)(s->S * s->L * s->n * s->n) * sizeof(float));
  uint8_t *mask = (uint8_t *)malloc((size_t)(H * W));
  int rc = 0;
  s->tokens = 0;
  for (int64_t i = 0; i < s->S && rc == 0; i++) {
    int64_t info[4];
    rc = samx_embed_read_row(ec, s->rows[i], s->emb + i * s->C * cells, info);
    SamImageInfo ii = {.orig_h = (int)info[0], .orig_w = (int)info[1], .input_h = (int)info[2], .input_w = (int)info[3]};
    for (int l = 0; l < s->L && rc == 0; l++) {
      rc = samx_labels_read_mask(ds, s->rows[i], s->ids[l], mask);
      if (rc) break;
      s->tokens += samx_fewshot_region_weights(mask, H, W, s->img_size, s->g, s->weights + (i * s->L + l) * cells) >= 0;
      samx_lowres_label(mask, &ii, s->img_size, s->n, s->targets + (i * s->L + l) * s->n * s->n);
    }
  }
  free(mask);
  if (rc == 0 && s->tokens == 0) rc = samx_fail("%s: none of the %lld shots holds any of the labels", c->data, (long long)s->S);
  return rc;
}

// IoU of (fg > bg) against the targets on the shots, per label.
static void shot_iou(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *emb, const Shots *s, double *iou) {
  SamxTensor *outs[64];
  SamxMethodBatch b = {.image_emb = emb, .P = (int)s->S};
  SamxMethodOpts o = sam_method_opts_defaults();
  mm->def->hypotheses(ctx, mm, &b, 0, &o, outs);
  int64_t nn = s->n * s->n;
  float *d = (float *)malloc((size_t)(s->S * nn) * sizeof(float));
  for (int l = 0; l < s->L; l++) {
    samx_tensor_read_f32(outs[l], d);
    double inter = 0, uni = 0;
    for (int64_t i = 0; i < s->S; i++)
      for (int64_t j = 0; j < nn; j++) {
        int p = d[i * nn + j] > 0, y = s->targets[(i * s->L + l) * nn + j] > 0.5f;
        inter += p && y, uni += p || y;
      }
    iou[l] = uni > 0 ? inter / uni : 1.0;
  }
  free(d);
}

// Checkpoint checkpoints/NAME.safetensors. final: the whole model (the target embeddings are frozen
// parameters, which a trainable-only file would drop); latest: what --resume needs (the trainable
// tensors unless train.save_frozen, and the optimizer state: the frozen ones are the base's and the
// target embeddings are made again from the same shots). Metadata: the run's configuration and the
// few-shot record (shot rows, step, loss, IoU on the shots at the end, the encoder of the embeddings).
static int save(const SamxTrainConfig *c, SamMethodModel *mm, SamxOptim *opt, const char *name, const Shots *s,
                const char *enc_sha, const double *iou, int64_t step, int64_t iters, double loss) {
  char path[SAMX_CFG_STR + 64];
  snprintf(path, sizeof path, "%s/checkpoints", c->dir);
  if (samx_mkdir_p(path) != 0) return -1;
  snprintf(path, sizeof path, "%s/checkpoints/%s.safetensors", c->dir, name);
  char *base = sam_method_meta_json(mm, c->checkpoint), *cfg = samx_train_config_json(c);
  json_t *meta = json_loads(base, 0, NULL), *rows = json_array(), *ious = iou ? json_array() : json_null();
  for (int64_t i = 0; i < s->S; i++) json_array_append_new(rows, json_integer(s->rows[i]));
  for (int l = 0; iou && l < s->L; l++) json_array_append_new(ious, json_real(iou[l]));
  json_object_set_new(meta, "config", json_loads(cfg, 0, NULL));
  json_object_set_new(meta, "fewshot", json_pack("{s:o, s:I, s:I, s:f, s:o, s:s, s:s}", "shot_rows", rows, "iterations",
                                                 (json_int_t)iters, "step", (json_int_t)step, "final_loss", loss,
                                                 "shot_iou", ious, "encoder_sha256", enc_sha, "embeddings", c->embeddings));
  char *text = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
  int final = opt == NULL;
  SamxCheckpoint ck = {.params = &mm->sam.params, .optim = opt, .global_step = step,
                       .trainable_only = final ? 0 : !c->save_frozen};
  int rc = samx_checkpoint_save(path, &ck, text);
  free(text), free(base), free(cfg);
  json_decref(meta);
  return rc;
}

static int write_text(const char *dir, const char *name, const char *text) {
  char path[SAMX_CFG_STR + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return samx_write_file_atomic(path, text, strlen(text));
}

enum { RESUME_FRESH = 0, RESUME_FROM = 1, RESUME_FINISHED = 2 };

// What --resume continues: auto picks checkpoints/latest unless the run finished (final exists);
// no checkpoint at all starts afresh. A path is taken as it is.
static int resume_choice(const SamxTrainConfig *c, const char *want, char *path, size_t n) {
  if (strcmp(want, "auto")) {
    snprintf(path, n, "%s", want);
    return RESUME_FROM;
  }
  snprintf(path, n, "%s/checkpoints/final.safetensors", c->dir);
  if (access(path, F_OK) == 0) return RESUME_FINISHED;
  snprintf(path, n, "%s/checkpoints/latest.safetensors", c->dir);
  int stale = samx_remove_stale_tmp(path);  // a save killed by SIGKILL leaves latest.safetensors.tmp.PID
  if (stale) fprintf(stderr, "samx train: removed %d unfinished temporary file(s) of %s\n", stale, path);
  return access(path, F_OK) == 0 ? RESUME_FROM : RESUME_FRESH;
}

// Loads a latest checkpoint into the model and optimizer; it must be a fewshot run of the same shots.
static int resume_from(const char *path, SamMethodModel *mm, SamxOptim *opt, const Shots *s, int64_t *step) {
  SamxCheckpoint ck = {.params = &mm->sam.params, .optim = opt};
  char *text = NULL;
  if (samx_checkpoint_load(path, &ck, &text) != 0) return -1;
  json_t *meta = text ? json_loads(text, 0, NULL) : NULL, *fs = json_object_get(meta, "fewshot");
  json_t *rows = json_object_get(fs, "shot_rows");
  free(text);
  const char *method = json_string_value(json_object_get(meta, "method"));
  int rc = 0;
  if (!method || strcmp(method, "fewshot") || !json_is_array(rows)) {
    rc = samx_fail("%s: not a fewshot training checkpoint (method %s)", path, method ? method : "?");
  } else {
    int same = (int64_t)json_array_size(rows) == s->S;
    for (int64_t i = 0; same && i < s->S; i++) same = json_integer_value(json_array_get(rows, (size_t)i)) == s->rows[i];
    if (!same)
      rc = samx_fail("%s: its shots are other rows than this run draws (fewshot.shots, run.seed, data.path or "
                     "data.train_split changed): start over with --force",
                     path);
  }
  json_decref(meta);
  *step = ck.global_step;
  return rc;
}

// log.jsonl of a resumed run: the records up to its step (a killed run may have logged a few more).
static int log_truncate(const char *path, int64_t step) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t cap = 1 << 16, n = 0;
  char *keep = (char *)malloc(cap), line[1024];
  keep[0] = 0;
  while (fgets(line, sizeof line, f)) {
    json_t *o = json_loads(line, 0, NULL);
    json_t *st = json_object_get(o, "step");
    int ok = json_is_integer(st) && json_integer_value(st) <= step;
    json_decref(o);
    if (!ok) continue;
    size_t len = strlen(line);
    if (n + len + 1 > cap) keep = (char *)realloc(keep, cap = 2 * (n + len + 1));
    memcpy(keep + n, line, len + 1), n += len;
  }
  fclose(f);
  int rc = samx_write_file_atomic(path, keep, n);
  free(keep);
  return rc;
}

// The cached embeddings must come from the run's encoder (model.checkpoint) and, unless
// data.allow_dataset_mismatch, from its data set.
static SamxEmbedCache *open_cache(const SamxTrainConfig *c, char enc_sha[65]) {
  if (!c->embeddings[0]) return samx_fail("fewshot: data.embeddings (the cached embeddings) is required"), NULL;
  if (samx_sha256_file(c->checkpoint, enc_sha) != 0) return NULL;
  SamxEmbedCache *ec = samx_embed_open(c->embeddings, enc_sha);
  if (!ec || c->allow_dataset_mismatch) return ec;
  char data_sha[65];
  if (samx_sha256_file(c->data, data_sha) != 0 || strcmp(samx_embed_dataset_sha256(ec), data_sha)) {
    if (data_sha[0])
      samx_fail("%s: the embeddings were computed from dataset %s, not from %s; run `samx embed` on it again (or set "
                "data.allow_dataset_mismatch = true)",
                c->embeddings, samx_embed_dataset_path(ec), c->data);
    samx_embed_close(ec);
    return NULL;
  }
  return ec;
}

// One step on the shots idx[0..bs): forward, loss, backward, clipping, Adam. Returns 0 or -1.
static int step_once(SamxCtx *ctx, SamMethodModel *mm, SamxOptim *opt, const SamxTrainConfig *c, const SamxMethodOpts *mo,
                        SamxTensor *emb, const Shots *s, int *idx, int bs, float *tg, double *loss) {
  samx_ctx_reset(ctx);
  samx_ctx_set_recording(ctx, 1);
  SamxTensor *outs[64];
  int64_t per = s->L * s->n * s->n;
  for (int k = 0; k < bs; k++) memcpy(tg + (size_t)k * per, s->targets + (size_t)idx[k] * per, sizeof(float) * (size_t)per);
  SamxMethodBatch b = {.image_emb = emb, .img_index = idx, .P = bs, .labels = tg, .K = s->L};
  int m = mm->def->hypotheses(ctx, mm, &b, 1, mo, outs);
  SamxTensor *l = mm->def->loss(ctx, mm, outs, m, &b, 1, mo, 0);
  float v;
  samx_tensor_read_f32(l, &v);
  *loss = v;
  int rc = samx_backward(ctx, l, NULL);
  samx_ctx_set_recording(ctx, 0);
  if (rc != 0) return -1;
  if (c->clip_norm > 0) samx_clip_grad_norm(&mm->sam.params, (float)c->clip_norm);
  samx_optim_step(opt, (float)c->lr);
  samx_params_zero_grad(&mm->sam.params);
  return 0;
}

int samx_fewshot_train(const SamxTrainConfig *c, const SamxTrainOptions *opts) {
  SamxDevice dev;
  const char *dspec = opts->device ? opts->device : c->device;
  if (samx_device_parse(dspec, &dev) != 0 || samx_train_config_precision(c, opts->precision, dev) != 0) {
    fprintf(stderr, "samx train: %s\n", samx_last_error());
    return SAMX_TRAIN_EXIT_ERROR;
  }
  char probe[SAMX_CFG_STR + 32], resume_path[SAMX_CFG_STR + 64] = "";
  snprintf(probe, sizeof probe, "%s/log.jsonl", c->dir);
  int resuming = opts->resume ? resume_choice(c, opts->resume, resume_path, sizeof resume_path) : RESUME_FRESH;
  if (resuming == RESUME_FINISHED) {
    if (!opts->quiet) printf("fewshot: %s finished already (%s)\n", c->dir, resume_path);
    return SAMX_TRAIN_EXIT_OK;
  }
  if (!opts->resume && !opts->force && access(probe, F_OK) == 0) {
    fprintf(stderr, "samx train: %s already holds a run: continue it with --resume auto, or start over with --force\n", c->dir);
    return SAMX_TRAIN_EXIT_ERROR;
  }
  Shots s = {0};
  char enc_sha[65] = "";
  SamxDataset *ds = samx_dataset_open(c->data);
  SamxEmbedCache *ec = NULL;
  int rc = ds ? 0 : -1;
  if (rc == 0 && !(ec = open_cache(c, enc_sha))) rc = -1;
  if (rc == 0) rc = samx_labels_parse(ds, c->fewshot_label, s.ids, &s.L);
  if (rc == 0) rc = load_shots(c, ds, ec, &s);
  SamModel sam;
  if (rc == 0 && sam_method_load_base(&sam, c->checkpoint, dev, SAM_TRAIN_DECODER) != 0) rc = -1;
  SamMethodModel mm = {0};
  if (rc == 0 && sam.cfg.img_size != s.img_size)
    rc = samx_fail("%s: embedded at input size %d, the model's is %d", c->embeddings, s.img_size, sam.cfg.img_size);
  if (rc == 0) {
    samx_fewshot_set_shape((SamxFewshotShape){s.L, s.tokens, (int)s.S});
    sam_method_init(&mm, &sam, SAM_METHOD_FEWSHOT, s.L, 1, (uint64_t)c->seed, 0.0f);
  }
  if (rc == 0) rc = samx_mkdir_p(c->dir);
  if (rc) {
    fprintf(stderr, "samx train: %s\n", samx_last_error());
    if (mm.def) sam_method_free(&mm);
    shots_free(&s);
    if (ec) samx_embed_close(ec);
    if (ds) samx_dataset_close(ds);
    return SAMX_TRAIN_EXIT_ERROR;
  }
  int64_t cells = s.g * s.g, iters = c->fewshot_iterations ? c->fewshot_iterations : samx_fewshot_default_iterations(s.S);
  SamxCtx ctx, hold;  // hold: the shots' embeddings for the whole run; ctx: one step
  size_t act = (size_t)(c->act_mem_mb > 0 ? c->act_mem_mb : 512) << 20;
  samx_ctx_init(&ctx, dev, act, 1 << 16);
  samx_ctx_init(&hold, dev, (size_t)(s.S * s.C * cells) * sizeof(float) + (1 << 20), 16);
  SamxTensor *emb = samx_new(&hold, SAMX_F32, SHAPE(s.S, s.C, s.g, s.g));
  samx_tensor_write_f32(emb, s.emb);
  samx_fewshot_set_targets(&mm, emb, s.weights, s.ids, s.rows);
  SamxOptimConfig oc = c->optimizer == 2 ? samx_sgd_config(c->momentum, 0, c->weight_decay)
                       : c->optimizer == 1 ? samx_adam_config(c->weight_decay) : samx_adamw_config(c->weight_decay);
  oc.beta1 = c->beta1, oc.beta2 = c->beta2, oc.eps = c->eps;
  SamxOptim opt;
  samx_optim_init(&opt, &mm.sam.params, oc);
  int64_t start = 0;
  char logp[SAMX_CFG_STR + 32];
  snprintf(logp, sizeof logp, "%s/log.jsonl", c->dir);
  if (resuming == RESUME_FROM) {
    rc = resume_from(resume_path, &mm, &opt, &s, &start);
    if (rc == 0 && start > iters)
      rc = samx_fail("%s: at step %lld, beyond fewshot.iterations = %lld", resume_path, (long long)start, (long long)iters);
    if (rc == 0) rc = log_truncate(logp, start);
    if (rc == 0 && !opts->quiet) printf("resuming from %s (step %lld)\n", resume_path, (long long)start);
  } else {
    // rows.txt: the shots (also in the checkpoint's metadata and fewshot.shot_rows)
    char *text = (char *)malloc((size_t)s.S * 24 + 64);
    text[0] = 0;
    for (int64_t i = 0; i < s.S; i++) sprintf(text + strlen(text), "%lld\n", (long long)s.rows[i]);
    write_text(c->dir, "rows.txt", text);
    free(text);
    char *ini = samx_train_config_ini(c);
    write_text(c->dir, "config.ini", ini);
    free(ini);
  }
  SamxMethodOpts mo = sam_method_opts_defaults();
  mo.fewshot_loss = c->fewshot_loss, mo.dice_eps = (float)c->dice_eps;
  FILE *log = rc == 0 ? fopen(logp, start ? "a" : "w") : NULL;
  int bs = (int)(c->batch_size < s.S ? c->batch_size : s.S);
  if (rc == 0 && !opts->quiet)
    printf("fewshot: %lld shots (%d per step), %d label(s), %d target tokens, %lld iterations, %s loss, lr %g on %s\n",
           (long long)s.S, bs, s.L, s.tokens, (long long)iters, c->fewshot_loss ? "dice" : "ce", c->lr, dspec);
  int *order = (int *)malloc(sizeof(int) * (size_t)s.S), *idx = (int *)malloc(sizeof(int) * (size_t)bs);
  float *targets_buf = (float *)malloc(sizeof(float) * (size_t)(bs * s.L * s.n * s.n));
  uint64_t ost = (uint64_t)c->seed ^ 0xba7cULL;
  for (int64_t i = 0; i < s.S; i++) order[i] = (int)i;
  for (int64_t i = s.S - 1; i > 0; i--) {
    int64_t j = (int64_t)(samx_unit(samx_splitmix64(&ost)) * (double)(i + 1));
    int t = order[i];
    order[i] = order[j], order[j] = t;
  }
  double loss = NAN;
  int sig = 0;
  samx_train_signals_install();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int64_t it = start; rc == 0 && it < iters; it++) {
    // The step's shots: all of them, or optim.batch_size of them in a seeded order, epoch after epoch
    // (a function of the step alone, so a resumed run draws what the uninterrupted one did).
    for (int k = 0; k < bs; k++) idx[k] = order[(it * bs + k) % s.S];
    if (step_once(&ctx, &mm, &opt, c, &mo, emb, &s, idx, bs, targets_buf, &loss) != 0) {
      rc = -1;
      break;
    }
    if (log) fprintf(log, "{\"step\": %lld, \"loss\": %.6g}\n", (long long)(it + 1), loss), fflush(log);
    if (!opts->quiet && ((it + 1) % 10 == 0 || it + 1 == iters)) printf("  step %lld/%lld loss %.4f\n", (long long)(it + 1), (long long)iters, loss);
    if (c->step_sleep_ms) usleep((useconds_t)(c->step_sleep_ms * 1000));
    sig = samx_train_signal();
    int periodic = c->save_every > 0 && (it + 1) % c->save_every == 0 && it + 1 < iters;
    if ((periodic || sig) && save(c, &mm, &opt, "latest", &s, enc_sha, NULL, it + 1, iters, loss) != 0) rc = -1;
    if (sig) {
      fprintf(stderr, "samx train: signal %d at step %lld: checkpoint saved to %s/checkpoints/latest.safetensors; continue "
              "with --resume auto\n", sig, (long long)(it + 1), c->dir);
      break;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  double rate = (double)(bs * (iters - start)) / secs;
  if (rc == 0 && !sig) {
    double iou[64];
    samx_ctx_reset(&ctx);
    shot_iou(&ctx, &mm, emb, &s, iou);
    if (log) {
      fprintf(log, "{\"step\": %lld, \"shot_iou\": [", (long long)iters);
      for (int l = 0; l < s.L; l++) fprintf(log, "%s%.6g", l ? ", " : "", iou[l]);
      fprintf(log, "], \"seconds\": %.3f, \"samples_per_second\": %.1f}\n", secs, rate);
    }
    if (!opts->quiet) {
      printf("fewshot: %.2f s (%.1f samples/s); IoU on the shots:", secs, rate);
      for (int l = 0; l < s.L; l++) printf(" %s %.3f", samx_labels_name(ds, s.ids[l]), iou[l]);
      printf("\n");
    }
    if (save(c, &mm, NULL, "final", &s, enc_sha, iou, iters, iters, loss) != 0) rc = -1;
  }
  if (rc) fprintf(stderr, "samx train: %s\n", samx_last_error());
  if (log) fclose(log);
  free(order), free(idx), free(targets_buf);
  samx_optim_free(&opt);
  samx_ctx_free(&ctx);
  samx_ctx_free(&hold);
  sam_method_free(&mm);
  shots_free(&s);
  samx_embed_close(ec);
  samx_dataset_close(ds);
  return rc ? SAMX_TRAIN_EXIT_ERROR : sig ? samx_train_signal_status(sig) : SAMX_TRAIN_EXIT_OK;
}
