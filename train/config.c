// The table of `samx train` keys and the INI reader around it.
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/precision.h"

typedef enum { CFG_INT, CFG_FLOAT, CFG_BOOL, CFG_STR, CFG_ENUM } CfgType;

typedef struct {
  const char *section, *key;
  CfgType type;
  size_t offset, size;  // size: string capacity
  const char *def;      // default, as it would be written in the file
  const char *choices;  // CFG_ENUM: "a|b|c"
  double lo, hi;        // numeric range (inclusive)
  const char *help;
} CfgKey;

#define OFF(f) offsetof(SamxTrainConfig, f)
#define STR(sec, k, f, d, h) {sec, k, CFG_STR, OFF(f), sizeof(((SamxTrainConfig *)0)->f), d, NULL, 0, 0, h}
#define INT(sec, k, f, d, lo, hi, h) {sec, k, CFG_INT, OFF(f), 0, d, NULL, lo, hi, h}
#define FLT(sec, k, f, d, lo, hi, h) {sec, k, CFG_FLOAT, OFF(f), 0, d, NULL, lo, hi, h}
#define BOOL(sec, k, f, d, h) {sec, k, CFG_BOOL, OFF(f), 0, d, NULL, 0, 1, h}
#define ENUM(sec, k, f, d, ch, h) {sec, k, CFG_ENUM, OFF(f), 0, d, ch, 0, 0, h}
#define BIG 1e15

static const CfgKey KEYS[] = {
    STR("run", "dir", dir, "", "run directory (required): config.ini, log.jsonl, checkpoints/, curves.svg"),
    INT("run", "seed", seed, "42", 0, BIG, "seed of every random choice (data order, annotator, pooling, init)"),
    STR("run", "device", device, "auto", "auto | cpu | cuda | cuda:N (--device overrides)"),
    ENUM("run", "precision", precision, "auto", "auto|fp32|tf32|bf16",
         "GEMM precision (--precision overrides): auto is bf16 on CUDA devices of compute capability >= 8.0 and "
         "fp32 on the CPU; bf16 and tf32 need such a GPU (the CPU computes in fp32 only). Parameters, their "
         "gradients and the optimizer state stay fp32; bf16 GEMMs accumulate in fp32"),
    INT("run", "act_mem_mb", act_mem_mb, "4096", 16, 1e7, "activation arena per step, MiB"),

    STR("model", "checkpoint", checkpoint, "",
        "SAM weights (.pth, safetensors, samx), or a `samx train` checkpoint (its SAM part; a SeqSAM cell starts fresh); empty: fresh weights from model.arch"),
    STR("model", "arch", arch, "tiny", "architecture of fresh weights: vit_b | vit_l | vit_h | tiny (sizes below override)"),
    INT("model", "img_size", img_size, "0", 0, 4096, "encoder input side (0: the arch's)"),
    INT("model", "patch", patch, "0", 0, 64, "patch size (0: the arch's)"),
    INT("model", "enc_dim", enc_dim, "0", 0, 4096, "encoder width (0: the arch's)"),
    INT("model", "enc_depth", enc_depth, "0", 0, 64, "encoder blocks (0: the arch's)"),
    INT("model", "enc_heads", enc_heads, "0", 0, 64, "encoder heads (0: the arch's)"),
    INT("model", "enc_mlp", enc_mlp, "0", 0, 16384, "encoder MLP width (0: the arch's)"),
    INT("model", "window", window, "0", 0, 64, "window size of windowed blocks (0: the arch's)"),
    STR("model", "global_blocks", global_blocks, "", "comma list of global-attention blocks (empty: the arch's)"),
    INT("model", "prompt_dim", prompt_dim, "0", 0, 1024, "prompt / decoder width = encoder output channels (0: the arch's)"),
    INT("model", "dec_heads", dec_heads, "0", 0, 64, "decoder heads (0: the arch's, 8)"),
    INT("model", "dec_mlp", dec_mlp, "0", 0, 16384, "decoder MLP width (0: the arch's)"),
    INT("model", "iou_hidden", iou_hidden, "0", 0, 4096, "IoU head width (0: the arch's)"),
    INT("model", "init_seed", init_seed, "0", 0, BIG, "seed of fresh SAM weights"),
    BOOL("model", "train_encoder", train_encoder, "false", "train the image encoder (false: frozen, run in inference mode)"),
    BOOL("model", "train_prompt_encoder", train_prompt_encoder, "true", "train the prompt encoder"),
    BOOL("model", "train_decoder", train_decoder, "true", "train the mask decoder"),

    ENUM("method", "name", method, "seqsam", "sam-ft|mcl|seqsam|p2sam|fewshot",
         "sam-ft: single mask, Dice + BCE; mcl: 3 multimask outputs, winner-takes-all Dice against one random "
         "non-empty annotator; seqsam: recurrent rollout, Hungarian-matched soft-Dice set loss; p2sam: LoRA SAM "
         "with 8 assembled masks (stage 1) and a prompt-generation network (stage 2), see [p2sam]; fewshot: the "
         "decoder prompted by target embeddings of a few labelled slices (contracts §7, [fewshot])"),
    INT("method", "masks", masks, "4", 1, 64, "seqsam: M, rollout steps (hypotheses) per prompt"),
    INT("method", "eval_masks", eval_masks, "0", 0, 64, "seqsam: hypotheses at validation (0: masks)"),
    ENUM("method", "select", select, "strided", "strided|random|first",
         "seqsam, M > K: which K outputs enter the matching: one drawn from each of K consecutive near-equal chunks "
         "(randomised strided pooling), K drawn at random, or the first K"),
    ENUM("method", "matching", matching, "hungarian", "hungarian|identity",
         "seqsam: Hungarian matching of outputs to labels, or output i to label i (ablation no_ha)"),
    BOOL("method", "bptt_logits", bptt_logits, "true",
         "seqsam: back-propagate through the logits fed back as mask prompts (false: ablation sg)"),
    FLT("method", "cell_init_std", cell_init_std, "0.02", 0, 10, "seqsam: std of the cell's fresh conv weights (HF's init)"),

    INT("p2sam", "stage", p2sam_stage, "1", 1, 2,
        "1: LoRA, prompt encoder, decoder and the assembling weights on the frozen encoder from model.checkpoint; "
        "2: the prior network and Fcomb on stage 1's model (p2sam.from), everything else frozen. Both use Adam "
        "without weight decay at optim.lr (the authors' 1e-3 and 1e-6; optim.name is not used) and no box or point"),
    INT("p2sam", "crop", p2sam_crop, "0", 0, 1 << 20,
        "side in dataset pixels of a square crop centred on the centroid of the union of the annotators' masks, "
        "what the model sees (resized to img_size) and is trained on (0: the whole image, as the LIDC pickle's "
        "128 px crops already are lesion-centred); samx infer --method p2sam crops the same way (--crop) and "
        "pastes the masks back"),
    INT("p2sam", "img_size", p2sam_img_size, "128", 16, 4096,
        "stage 1: input side; pos_embed and global rel-pos tables of model.checkpoint resized as the authors' load_from"),
    FLT("p2sam", "weights_lr", p2sam_weights_lr, "1e-3", 0, 10, "stage 1: learning rate of the 7 assembling weights (AdamW)"),
    FLT("p2sam", "weights_eps", p2sam_weights_eps, "1e-4", 0, 1, "stage 1: AdamW epsilon of the assembling weights"),
    FLT("p2sam", "weights_decay", p2sam_weights_decay, "0.01", 0, 1, "stage 1: AdamW weight decay of the assembling weights"),
    FLT("p2sam", "reg_weight", p2sam_reg_weight, "1e-5", 0, 1,
        "stage 2: weight of the sum of unsquared norms of the prior network and Fcomb (last layer excluded)"),
    INT("p2sam", "snapshot_every", p2sam_snapshot_every, "10", 0, BIG,
        "stage 2: epochs between snapshots of the prior network and Fcomb (checkpoints/snapshot_epoch_N.safetensors; 0: none)"),
    INT("p2sam", "snapshot_steps", p2sam_snapshot_steps, "0", 0, BIG,
        "stage 2: a snapshot every N steps instead (snapshot_step_N.safetensors; 0: by epochs), for short runs"),
    STR("p2sam", "from", p2sam_from, "",
        "stage 2 (required): stage 1's run directory (its checkpoints/final.safetensors) or a checkpoint file"),
    ENUM("p2sam", "assemble", p2sam_assemble, "affine", "affine|convex",
         "stage 1: the assembling weights w of the 8 masks from 7 numbers v: affine w = [1 - sum v, v] (the authors'; "
         "sums to 1, may be negative) or convex w = softmax([0, v]) (each in (0, 1)); stage 2 keeps stage 1's"),
    BOOL("p2sam", "from_best", p2sam_from_best, "false", "stage 2: start from stage 1's best checkpoint instead of its last"),

    INT("fewshot", "shots", fewshot_shots, "5", 1, 100000, "labelled training slices drawn with run.seed from data.train_split"),
    INT("fewshot", "iterations", fewshot_iterations, "0", 0, 100000000,
        "Adam steps on all shots at once (0: the paper's 50 / 80 / 100 for up to 5 / 20 / more shots)"),
    STR("fewshot", "label", fewshot_label, "", "comma list of /labels classes (ids or names), one decoder, two output "
        "tokens per label (empty: /masks[:, 0])"),
    ENUM("fewshot", "loss", fewshot_loss, "dice", "ce|dice",
         "two-channel cross-entropy or Dice (README: the default chosen by experiment)"),
    FLT("loss", "dice_eps", dice_eps, "1e-5", 0, 1, "soft Dice smoothing (MONAI smooth_nr = smooth_dr)"),
    FLT("loss", "bce_weight", bce_weight, "1", 0, 1e3, "sam-ft: weight of BCE beside Dice"),
    FLT("loss", "multimask_weight", multimask_weight, "0", 0, 1e3,
        "sam-ft: also train SAM's 3 multimask tokens with the minimum Dice over them (SAM's own training), at this "
        "weight beside the single-mask loss; 0: token 0 only"),
    ENUM("loss", "mcl_dice", mcl_dice, "mask", "mask|rows",
         "mcl: Dice per mask, or per image row averaged over rows (what SeqSAM's code computes)"),

    STR("data", "path", data, "", "dataset file (samx-dataset HDF5, required)"),
    STR("data", "train_split", train_split, "train", "split trained on"),
    STR("data", "val_split", val_split, "val", "split validated on (empty: no validation)"),
    STR("data", "embeddings", embeddings, "", "embedding cache (`samx embed`) of model.checkpoint's frozen encoder (empty: run the encoder on the fly); "
        "p2sam stage 2: made from stage 1's checkpoint (p2sam.from), whose LoRA encoder stage 2 keeps frozen"),
    INT("data", "box_jitter", box_jitter, "0", 0, 4096, "MedSAM box jitter: each side moved out by up to this many image pixels (0: tight box)"),
    INT("data", "train_first", train_first, "-1", -1, BIG,
        "train on the training split's first N rows in file order only (0: all; -1: the method's default: 500 "
        "for p2sam stage 2, the authors' indices[:500] (train_second_stage.py), all rows otherwise)"),
    BOOL("data", "shuffle", shuffle, "true", "reshuffle the training split every epoch"),
    BOOL("data", "allow_dataset_mismatch", allow_dataset_mismatch, "false",
         "use data.embeddings even when the cache records another dataset's sha256 (false: refuse)"),

    ENUM("optim", "name", optimizer, "adamw", "adamw|adam|sgd", "optimizer"),
    FLT("optim", "lr", lr, "1e-4", 0, 10, "base learning rate"),
    FLT("optim", "weight_decay", weight_decay, "0.01", 0, 10, "weight decay"),
    BOOL("optim", "decay_1d", decay_1d, "false", "also decay biases and norm scales (HF Trainer: no)"),
    FLT("optim", "beta1", beta1, "0.9", 0, 1, "Adam beta1"),
    FLT("optim", "beta2", beta2, "0.999", 0, 1, "Adam beta2"),
    FLT("optim", "eps", eps, "1e-8", 0, 1, "Adam eps"),
    FLT("optim", "momentum", momentum, "0.9", 0, 1, "SGD momentum"),
    ENUM("optim", "schedule", schedule, "linear", "constant|linear|cosine", "learning-rate schedule over train.steps"),
    INT("optim", "warmup_steps", warmup_steps, "0", 0, BIG, "linear warm-up steps"),
    FLT("optim", "min_lr", min_lr, "0", 0, 10, "learning rate at the end of the decay"),
    INT("optim", "batch_size", batch_size, "2", 1, 4096, "samples per micro-batch"),
    INT("optim", "accum_steps", accum_steps, "1", 1, 4096, "micro-batches per optimizer step"),
    FLT("optim", "clip_norm", clip_norm, "1", 0, 1e9, "clip gradients to this global L2 norm (0: off)"),
    INT("optim", "zero", zero, "0", 0, 1, "several ranks: 1 shards the optimizer state (ZeRO-1: reduce-scatter, update, all-gather)"),
    FLT("optim", "bucket_mb", bucket_mb, "25", 0.001, 1e6, "several ranks: gradient all-reduce bucket size in MiB"),
    BOOL("optim", "overlap", overlap, "true",
         "several ranks: start each bucket's all-reduce as soon as the backward pass has finished its gradients"),

    FLT("train", "epochs", epochs, "1", 0, 1e6, "epochs over the training split (when steps = 0)"),
    INT("train", "steps", steps, "0", 0, BIG, "optimizer steps (0: from epochs)"),
    INT("train", "val_every", val_every, "200", 0, BIG, "validate every N steps, and at the end (0: only at the end)"),
    INT("train", "val_samples", val_samples, "0", 0, BIG, "validation samples (0: the whole split)"),
    ENUM("train", "best_metric", best_metric, "ged", "ged|d_avg|d_max|hm_iou|loss",
         "validation metric that picks best.safetensors (ged, loss: lower is better)"),
    INT("train", "save_every", save_every, "100", 0, BIG, "write checkpoints/latest.safetensors every N steps (0: only at the end)"),
    INT("train", "max_bad_steps", max_bad_steps, "10", 1, BIG, "abort after this many non-finite steps in a row"),
    FLT("train", "step_timeout", step_timeout, "600", 0, 1e9,
        "several ranks: abort the job when no step finishes for this many seconds (a rank died or hangs; 0: off)"),
    BOOL("train", "save_frozen", save_frozen, "true", "checkpoints hold the frozen weights too (a file alone runs the model)"),

    INT("log", "every", log_every, "1", 1, BIG, "log.jsonl: one record every N steps"),
    FLT("log", "print_seconds", print_seconds, "30", 0, 1e9, "without a terminal: one progress line every N seconds"),
    ENUM("log", "progress", progress, "auto", "auto|bar|lines|none", "progress display (auto: a bar on a terminal)"),

    STR("debug", "inject_nan_steps", inject_nan_steps, "", "comma list of steps whose loss is made NaN (tests)"),
    INT("debug", "step_sleep_ms", step_sleep_ms, "0", 0, 1e7, "sleep after every step (tests of signals)"),
    INT("debug", "nan_rank", inject_nan_rank, "-1", -1, 1 << 24, "inject_nan_steps only on this rank (-1: every rank)"),
};
#define N_KEYS (sizeof KEYS / sizeof *KEYS)

static const CfgKey *find_key(const char *section, const char *key) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].key, key)) return &KEYS[i];
  return NULL;
}

static int known_section(const char *section) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (!strcmp(KEYS[i].section, section)) return 1;
  return 0;
}

// Index of value in "a|b|c", or -1.
static int choice_index(const char *choices, const char *value) {
  size_t n = strlen(value);
  int idx = 0;
  for (const char *p = choices; *p; idx++) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && !strncmp(p, value, n)) return idx;
    if (!bar) break;
    p = bar + 1;
  }
  return -1;
}

static void choice_text(const char *choices, int index, char *out, size_t n) {
  const char *p = choices;
  for (int i = 0; i < index && p; i++) {
    p = strchr(p, '|');
    if (p) p++;
  }
  if (!p) {
    snprintf(out, n, "?");
    return;
  }
  const char *bar = strchr(p, '|');
  size_t len = bar ? (size_t)(bar - p) : strlen(p);
  snprintf(out, n, "%.*s", (int)len, p);
}

// Parses value into the key's field; on error writes a message (without location) to err.
static int set_value(SamxTrainConfig *c, const CfgKey *k, const char *value, char *err, size_t en) {
  char *field = (char *)c + k->offset, *end = NULL;
  switch (k->type) {
    case CFG_STR:
      if (strlen(value) >= k->size) {
        snprintf(err, en, "[%s] %s: value longer than %zu characters", k->section, k->key, k->size - 1);
        return -1;
      }
      snprintf(field, k->size, "%s", value);
      return 0;
    case CFG_INT: {
      errno = 0;
      long long v = strtoll(value, &end, 10);
      if (!*value || *end || errno) {
        snprintf(err, en, "[%s] %s = '%s': expected an integer", k->section, k->key, value);
        return -1;
      }
      if (v < k->lo || v > k->hi) {
        snprintf(err, en, "[%s] %s = %lld: out of range [%.0f, %.0f]", k->section, k->key, v, k->lo, k->hi);
        return -1;
      }
      *(int64_t *)field = v;
      return 0;
    }
    case CFG_FLOAT: {
      errno = 0;
      double v = strtod(value, &end);
      if (!*value || *end || errno || !isfinite(v)) {
        snprintf(err, en, "[%s] %s = '%s': expected a number", k->section, k->key, value);
        return -1;
      }
      if (v < k->lo || v > k->hi) {
        snprintf(err, en, "[%s] %s = %g: out of range [%g, %g]", k->section, k->key, v, k->lo, k->hi);
        return -1;
      }
      *(double *)field = v;
      return 0;
    }
    case CFG_BOOL:
      if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on")) {
        *(int *)field = 1;
      } else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "off")) {
        *(int *)field = 0;
      } else {
        snprintf(err, en, "[%s] %s = '%s': expected true or false", k->section, k->key, value);
        return -1;
      }
      return 0;
    case CFG_ENUM: {
      int idx = choice_index(k->choices, value);
      if (idx < 0) {
        snprintf(err, en, "[%s] %s = '%s': expected one of %s", k->section, k->key, value, k->choices);
        return -1;
      }
      *(int *)field = idx;
      return 0;
    }
  }
  return -1;
}

static void value_text(const SamxTrainConfig *c, const CfgKey *k, char *out, size_t n) {
  const char *field = (const char *)c + k->offset;
  switch (k->type) {
    case CFG_STR: snprintf(out, n, "%s", field); break;
    case CFG_INT: snprintf(out, n, "%lld", (long long)*(const int64_t *)field); break;
    case CFG_FLOAT: snprintf(out, n, "%.17g", *(const double *)field); break;
    case CFG_BOOL: snprintf(out, n, "%s", *(const int *)field ? "true" : "false"); break;
    case CFG_ENUM: choice_text(k->choices, *(const int *)field, out, n); break;
  }
}

void samx_train_config_defaults(SamxTrainConfig *c) {
  memset(c, 0, sizeof *c);
  char err[256];
  for (size_t i = 0; i < N_KEYS; i++)
    if (set_value(c, &KEYS[i], KEYS[i].def, err, sizeof err)) SAMX_DIE("bad default in the key table: %s", err);
}

typedef struct {
  SamxTrainConfig *c;
  char err[1024];
} IniState;

static int on_ini_entry(void *user, const char *section, const char *name, const char *value) {
  IniState *s = (IniState *)user;
  if (!known_section(section)) {
    snprintf(s->err, sizeof s->err, "unknown section [%s] (see samx train --help-config)", section);
    return 0;
  }
  const CfgKey *k = find_key(section, name);
  if (!k) {
    snprintf(s->err, sizeof s->err, "unknown key '%s' in section [%s] (see samx train --help-config)", name, section);
    return 0;
  }
  return set_value(s->c, k, value, s->err, sizeof s->err) == 0;
}

int samx_train_config_load(SamxTrainConfig *c, const char *path) {
  IniState s = {c, ""};
  int rc = ini_parse(path, on_ini_entry, &s);
  if (rc == -1) return samx_fail("%s: cannot open the config file", path);
  if (rc == -2) return samx_fail("%s: out of memory reading the config file", path);
  if (rc > 0) return samx_fail("%s:%d: %s", path, rc, s.err[0] ? s.err : "syntax error (expected key = value or [section])");
  return 0;
}

int samx_train_config_set(SamxTrainConfig *c, const char *assignment) {
  const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
  if (!dot || !eq || dot > eq)
    return samx_fail("--set %s: expected section.key=value", assignment);
  char section[64], key[64], err[1024];
  snprintf(section, sizeof section, "%.*s", (int)(dot - assignment), assignment);
  snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
  if (!known_section(section)) return samx_fail("--set %s: unknown section [%s] (see samx train --help-config)", assignment, section);
  const CfgKey *k = find_key(section, key);
  if (!k) return samx_fail("--set %s: unknown key '%s' in section [%s] (see samx train --help-config)", assignment, key, section);
  if (set_value(c, k, eq + 1, err, sizeof err)) return samx_fail("--set %s: %s", assignment, err);
  return 0;
}

int64_t samx_train_first(const SamxTrainConfig *c) {
  if (c->train_first >= 0) return c->train_first;
  return c->method == SAMX_METHOD_P2SAM && c->p2sam_stage == 2 ? 500 : 0;  // ref: train_second_stage.py indices[:500]
}

int samx_train_config_validate(const SamxTrainConfig *c) {
  if (!c->dir[0]) return samx_fail("config: [run] dir is required (the run directory)");
  if (!c->data[0]) return samx_fail("config: [data] path is required (the dataset file)");
  if (c->global_blocks[0]) {
    const char *p = c->global_blocks;
    while (*p) {
      char *end;
      long v = strtol(p, &end, 10);
      if (end == p || v < 0 || v >= 64) return samx_fail("config: [model] global_blocks = '%s': expected a comma list of block numbers", c->global_blocks);
      p = end;
      while (*p == ',' || *p == ' ') p++;
    }
  }
  if (c->method == SAMX_METHOD_P2SAM) {
    if (c->p2sam_stage == 2 && !c->p2sam_from[0])
      return samx_fail("config: [p2sam] from is required in stage 2 (stage 1's run directory or checkpoint)");
    if (c->embeddings[0] && c->p2sam_stage == 1)
      return samx_fail("config: [data] embeddings: P2SAM's stage 1 trains LoRA through the encoder; the cache is for stage 2 "
                       "(`samx embed --checkpoint STAGE1/checkpoints/final.safetensors`)");
    if (!c->save_frozen)
      return samx_fail("config: [train] save_frozen = false: a P2SAM checkpoint must hold its resized SAM (keep it true)");
  }
  if (c->inject_nan_steps[0]) {
    const char *p = c->inject_nan_steps;
    while (*p) {
      char *end;
      strtoll(p, &end, 10);
      if (end == p) return samx_fail("config: [debug] inject_nan_steps = '%s': expected a comma list of steps", c->inject_nan_steps);
      p = end;
      while (*p == ',' || *p == ' ') p++;
    }
  }
  return 0;
}

int samx_train_config_nan_step(const SamxTrainConfig *c, int64_t step) {
  const char *p = c->inject_nan_steps;
  while (*p) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) return 0;
    if (v == step) return 1;
    p = end;
    while (*p == ',' || *p == ' ') p++;
  }
  return 0;
}

const char *samx_train_config_choice(const char *section, const char *key, int index) {
  static _Thread_local char buf[64];
  const CfgKey *k = find_key(section, key);
  SAMX_ASSERT(k && k->type == CFG_ENUM, "no enumerated key [%s] %s", section, key);
  choice_text(k->choices, index, buf, sizeof buf);
  return buf;
}

int samx_train_config_precision(const SamxTrainConfig *c, const char *opts_precision, SamxDevice d) {
  const char *spec = opts_precision ? opts_precision : samx_train_config_choice("run", "precision", c->precision);
  SamxPrecision p;
  if (samx_precision_resolve(spec, d, opts_precision ? "--precision" : "run.precision", &p) != 0) return -1;
  samx_precision_set_default(p);
  return 0;
}

char *samx_train_config_ini(const SamxTrainConfig *c) {
  size_t cap = 16384, len = 0;
  char *out = (char *)malloc(cap), val[SAMX_CFG_STR + 32];
  out[0] = 0;
  const char *section = "";
  for (size_t i = 0; i < N_KEYS; i++) {
    const CfgKey *k = &KEYS[i];
    value_text(c, k, val, sizeof val);
    char line[SAMX_CFG_STR + 128];
    int n = 0;
    if (strcmp(section, k->section)) {
      n = snprintf(line, sizeof line, "%s[%s]\n", i ? "\n" : "", k->section);
      section = k->section;
    }
    n += snprintf(line + n, sizeof line - (size_t)n, "%s = %s\n", k->key, val);
    if (len + (size_t)n + 1 > cap) out = (char *)realloc(out, cap *= 2);
    memcpy(out + len, line, (size_t)n + 1);
    len += (size_t)n;
  }
  return out;
}

char *samx_train_config_json(const SamxTrainConfig *c) {
  json_t *root = json_object();
  char val[SAMX_CFG_STR + 32];
  for (size_t i = 0; i < N_KEYS; i++) {
    const CfgKey *k = &KEYS[i];
    json_t *sec = json_object_get(root, k->section);
    if (!sec) {
      sec = json_object();
      json_object_set_new(root, k->section, sec);
    }
    const char *field = (const char *)c + k->offset;
    json_t *v;
    switch (k->type) {
      case CFG_INT: v = json_integer(*(const int64_t *)field); break;
      case CFG_FLOAT: v = json_real(*(const double *)field); break;
      case CFG_BOOL: v = json_boolean(*(const int *)field); break;
      default: value_text(c, k, val, sizeof val), v = json_string(val); break;
    }
    json_object_set_new(sec, k->key, v);
  }
  char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  return s;
}

void samx_train_config_help(FILE *f) {
  static const char *type_names[] = {"integer", "number", "bool", "text", "choice"};
  fprintf(f, "samx train configuration keys (INI: [section] then key = value; ';' starts a comment;\n"
             "--set section.key=value overrides the file)\n");
  const char *section = "";
  for (size_t i = 0; i < N_KEYS; i++) {
    const CfgKey *k = &KEYS[i];
    if (strcmp(section, k->section)) fprintf(f, "\n[%s]\n", section = k->section);
    fprintf(f, "  %-22s %-7s default %s%s%s%s\n", k->key, type_names[k->type], k->def[0] ? k->def : "(empty)",
            k->choices ? "  (" : "", k->choices ? k->choices : "", k->choices ? ")" : "");
    fprintf(f, "      %s\n", k->help);
  }
}
