// `samx bench train`: training steps per second with cached embeddings. The encoder is frozen and
// its output is a random [B, C, g, g] host tensor (what the embedding cache hands the trainer); one
// step is upload of the embeddings, prompt encoder + mask decoder (SeqSAM: the recurrent cell and
// the M-step rollout with back-propagation through time), the method's loss, backward, gradient
// clipping and AdamW, exactly as train/trainer.c's train_step does it. bench/torch_train.py times the
// same step with the official segment_anything modules.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "data/rng.h"
#include "models/p2sam/p2sam.h"
#include "models/fewshot/fewshot.h"
#include "models/seqsam/seqsam.h"
#include "train/config.h"
#include "train/losses.h"

#define MAX_STEPS 64
#define TAPE_NODES 65536

static const char *USAGE =
    "usage: samx bench train [--method seqsam|mcl|sam-ft|p2sam|fewshot[,...]] [--model tiny|vit_b|vit_l|vit_h] [--masks M]\n"
    "                        [--stage 1|2 (p2sam)]\n"
    "                        [--batch B] [--annotators K] [--act-mb MB] [--device ...] [-r REPS] [-o md|json]\n"
    "                        [--quick] [--compare-torch]\n"
    "\n"
    "One training step per repetition (median of REPS, default 5, after one warm-up step) with the encoder\n"
    "frozen and its embeddings cached: B random embeddings (default 2, the papers' batch) uploaded, the\n"
    "prompt encoder + mask decoder on one box per sample, the method's loss against K random annotator\n"
    "masks (default 4, LIDC's), backward, clipping to norm 1 and AdamW (lr 1e-4, weight decay 0.01; the\n"
    "configs' defaults). seqsam: M-step rollout (default 4) with the recurrent cell and BPTT, Hungarian-\n"
    "matched soft-Dice set loss; mcl: 3 multimask outputs, winner-takes-all Dice; sam-ft: Dice + BCE.\n"
    "fewshot: the K annotator masks are K labels, each sample a shot whose K masked averages are the\n"
    "target tokens (B * K), Dice over the two channels, Adam (0.9, 0.99) without clipping (the paper's).\n"
    "Default: seqsam, mcl and sam-ft on the tiny architecture with random weights (--model vit_b: SAM's decoder).\n"
    "\n"
    "items/s = training samples/s. GFLOP/s counts the step as 3 x forward (sam_decoder_flops per decoder\n"
    "pass, plus SeqSAM's cell convolutions and mask path): the dense prompt is trained, so the gradient\n"
    "does flow into the image side of the decoder and no frozen-input dX is saved. GB/s counts the\n"
    "activation arena's high-water mark written once and read once, the optimizer's pass over parameters,\n"
    "gradients and AdamW state, and the embeddings. peak MB: the step's working set (decoder-side\n"
    "parameters, gradients, AdamW state, activations); the frozen encoder's weights are not counted.\n"
    "--compare-torch: the same step with segment_anything's PromptEncoder/MaskDecoder, the same cell, loss\n"
    "(scipy's linear_sum_assignment), clipping and torch.optim.AdamW (bench/torch_train.py), in the run's\n"
    "precision (bf16: forward and loss under torch.autocast, attention through scaled_dot_product_attention).\n"
    "--quick: the tiny model, one repetition (for tests).\n"
    "\n"
    "--method p2sam --stage 1|2 (P2SAM, method-notes §4): the model's SAM resized to 128 px with LoRA r = 4 and 9\n"
    "mask tokens, B random grey images (default 10, the authors' batch) and one random annotator mask each.\n"
    "Stage 1 trains through the encoder (LoRA) with the decoder and the assembling weights (Adam + AdamW);\n"
    "stage 2 runs the encoder frozen and trains the prior network and Fcomb (Adam, lr 1e-6); loss CE + Dice +\n"
    "focal (+ the norms), no clipping, as the authors' scripts. GFLOP/s counts the encoder forward (x3 in\n"
    "stage 1), 3 x (decoder + prior network). --compare-torch times the same step built from the authors'\n"
    "modules (bench/torch_train_p2sam.py; needs $P2SAM_SRC, an extracted yu2hi13/P2SAM tree).\n";

typedef struct {
  char methods[64];
  char model[32];
  int masks, batch, annotators, act_mb, model_given, stage, batch_given;
} TrainBenchArgs;

static int extra_opt(const char *opt, const char *val, void *user) {
  TrainBenchArgs *a = (TrainBenchArgs *)user;
  if (!val) return 0;
  if (!strcmp(opt, "--method")) return snprintf(a->methods, sizeof a->methods, "%s", val), 2;
  if (!strcmp(opt, "--model")) return a->model_given = 1, snprintf(a->model, sizeof a->model, "%s", val), 2;
  if (!strcmp(opt, "--masks")) return a->masks = atoi(val), 2;
  if (!strcmp(opt, "--batch")) return a->batch = atoi(val), a->batch_given = 1, 2;
  if (!strcmp(opt, "--stage")) return a->stage = atoi(val), 2;
  if (!strcmp(opt, "--annotators")) return a->annotators = atoi(val), 2;
  if (!strcmp(opt, "--act-mb")) return a->act_mb = atoi(val), 2;
  return 0;
}

// ---- work counted from the architecture ----

// One 3x3 convolution of the SeqSAM cell, 2C -> C over the g x g grid.
static double cell_conv_flops(const SamConfig *c) {
  double g = sam_embed_grid(c), C = c->prompt_dim;
  return 2 * g * g * C * 2 * C * 9;
}

// The prompt encoder's mask path (ref: PromptEncoder.mask_downscaling): 2x2/2 conv 1 -> mic/4 on the
// 2g grid, 2x2/2 conv mic/4 -> mic on the g grid, 1x1 conv mic -> C.
static double mask_path_flops(const SamConfig *c) {
  double g = sam_embed_grid(c), mic = c->mask_in_chans, C = c->prompt_dim;
  return 2 * (4 * g * g * (mic / 4) * 4 + g * g * mic * (mic / 4) * 4 + g * g * mic * C);
}

// Forward FLOPs of one sample: a box is 2 sparse tokens. SeqSAM's step t runs the mask path (t > 0),
// conv_out, conv_hidden (t < M - 1) and the decoder.
static double forward_flops(const SamConfig *c, SamMethod method, int M) {
  double dec = sam_decoder_flops(c, 2);
  if (method != SAM_METHOD_SEQSAM) return dec;
  return M * dec + (2.0 * M - 1) * cell_conv_flops(c) + (M - 1.0) * mask_path_flops(c);
}

// ---- inputs: embeddings, boxes, annotator masks ----

typedef struct {
  int B, K, M, C, g, L, S;
  float *emb;       // [B, C, g, g]
  float *labels;    // [B, K, L, L]
  float *target;    // [B, L, L]: annotator 0 (MCL, sam-ft)
  uint8_t *valid;   // [B, K]
  uint8_t *selected;  // [B, M]: SeqSAM's pooled outputs when M > K
  SamPrompt *prompts;
} Inputs;

// Sample b gets a box around a disc, annotator k a disc of its own radius inside the box.
static void make_inputs(Inputs *in, const SamConfig *c, int B, int K, int M) {
  in->B = B, in->K = K, in->M = M, in->C = c->prompt_dim, in->g = sam_embed_grid(c), in->L = 4 * in->g;
  in->S = c->img_size;
  int64_t LL = (int64_t)in->L * in->L, emb_n = (int64_t)B * in->C * in->g * in->g;
  in->emb = (float *)malloc(sizeof(float) * (size_t)emb_n);
  uint64_t s = 0x5eed;
  for (int64_t i = 0; i < emb_n; i++) in->emb[i] = (float)((double)(samx_hash4(s, (uint64_t)i, 0, 0) >> 11) / 9007199254740992.0 - 0.5);
  in->labels = (float *)malloc(sizeof(float) * (size_t)(B * K * LL));
  in->target = (float *)malloc(sizeof(float) * (size_t)(B * LL));
  in->valid = (uint8_t *)malloc((size_t)(B * K));
  in->selected = (uint8_t *)malloc((size_t)(B * M));
  in->prompts = (SamPrompt *)calloc((size_t)B, sizeof(SamPrompt));
  for (int b = 0; b < B; b++) {
    double cx = in->L * (0.35 + 0.3 * b / (double)B), cy = in->L * (0.6 - 0.2 * b / (double)B), r0 = in->L * 0.15;
    for (int k = 0; k < K; k++) {
      double r = r0 * (0.6 + 0.4 * k / (double)K);
      float *lab = in->labels + ((int64_t)b * K + k) * LL;
      for (int64_t y = 0; y < in->L; y++)
        for (int64_t x = 0; x < in->L; x++) lab[y * in->L + x] = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r;
      in->valid[b * K + k] = 1;
    }
    memcpy(in->target + b * LL, in->labels + (int64_t)b * K * LL, sizeof(float) * (size_t)LL);
    double scale = (double)in->S / in->L;
    SamPrompt *p = &in->prompts[b];
    p->has_box = 1;
    float box[4] = {(float)((cx - r0) * scale), (float)((cy - r0) * scale), (float)((cx + r0) * scale), (float)((cy + r0) * scale)};
    memcpy(p->box, box, sizeof box);
    samx_seqsam_select(M, K, SAMX_SELECT_STRIDED, samx_hash4(42, 11, (uint64_t)b, 0), in->selected + b * M);
  }
}

static void free_inputs(Inputs *in) {
  free(in->emb);
  free(in->labels);
  free(in->target);
  free(in->valid);
  free(in->selected);
  free(in->prompts);
}

// ---- the step ----

typedef struct {
  SamMethodModel mm;
  SamxOptim opt;
  SamxCtx ctx;
} Trainee;

static SamxTensor *method_loss(SamxCtx *ctx, SamMethod method, SamxTensor **outs, int n, const Inputs *in) {
  if (method == SAM_METHOD_FEWSHOT)  // the K annotator masks are K labels
    return samx_fewshot_loss(ctx, outs, n, in->labels, in->B, SAMX_FEWSHOT_LOSS_DICE, 1e-5f);
  if (method == SAM_METHOD_SEQSAM)
    return samx_set_dice_loss(ctx, outs, n, in->labels, in->valid, in->B, in->K, in->selected, 0, 1e-5f, NULL);
  if (method == SAM_METHOD_MCL)
    return samx_wta_dice_loss(ctx, samx_concat(ctx, outs, n, 1), in->target, 0, 1e-5f, NULL);
  return samx_samft_loss(ctx, outs[0], in->target, 1e-5f, 1.0f);
}

// The target embeddings of the few-shot decoder: each sample's masked averages over its K masks.
static void fewshot_targets(SamMethodModel *mm, const Inputs *in, SamxDevice dev) {
  int64_t LL = (int64_t)in->L * in->L, cells = (int64_t)in->g * in->g;
  float *w = (float *)malloc(sizeof(float) * (size_t)(in->B * in->K * cells));
  uint8_t *m = (uint8_t *)malloc((size_t)LL);
  for (int64_t r = 0; r < (int64_t)in->B * in->K; r++) {
    for (int64_t j = 0; j < LL; j++) m[j] = in->labels[r * LL + j] > 0.5f;
    samx_fewshot_region_weights(m, in->L, in->L, in->L, in->g, w + r * cells);
  }
  SamxCtx ctx;
  samx_ctx_init(&ctx, dev, sizeof(float) * (size_t)(in->B * in->C * cells) + (1 << 20), 16);
  int ids[64];
  int64_t rows[4096];
  for (int l = 0; l < in->K && l < 64; l++) ids[l] = l + 1;
  for (int b = 0; b < in->B && b < 4096; b++) rows[b] = b;
  samx_fewshot_set_targets(mm, samx_from_host(&ctx, SHAPE(in->B, in->C, in->g, in->g), in->emb), w, ids, rows);
  samx_ctx_free(&ctx);
  free(w), free(m);
}

// Returns the loss (read back, as the trainer does for its log).
static float train_step(Trainee *t, const Inputs *in) {
  SamxParams *params = &t->mm.sam.params;
  samx_params_zero_grad(params);
  samx_ctx_reset(&t->ctx);
  SamxTensor *emb = samx_from_host(&t->ctx, SHAPE(in->B, in->C, in->g, in->g), in->emb), *outs[MAX_STEPS];
  int n = t->mm.n_masks;
  sam_method_predict(&t->ctx, &t->mm, emb, NULL, in->prompts, in->B, n, outs);
  SamxTensor *loss = method_loss(&t->ctx, t->mm.method, outs, n, in);
  float value;
  samx_tensor_read_f32(loss, &value);
  if (samx_backward(&t->ctx, loss, NULL) != 0) SAMX_DIE("samx bench train: backward: %s", samx_last_error());
  if (t->mm.method != SAM_METHOD_FEWSHOT) samx_clip_grad_norm(params, 1.0f);  // fewshot: the paper's plain Adam
  samx_optim_step(&t->opt, 1e-4f);
  return value;
}

// Activations of one sample's pass scale with the image side's N x C values (the transformer's [N, C]
// tensors and their gradients; the upscaled masks are another 2 N C): measured ~86 N C floats per
// decoder pass (mcl, vit_b) and ~126-156 per SeqSAM step (the cell's two im2col buffers add 36 N C);
// the estimate leaves half as much again on top. --act-mb overrides it.
static size_t act_bytes_estimate(const SamConfig *c, SamMethod method, int B, int passes) {
  double g = sam_embed_grid(c), NC = g * g * c->prompt_dim;
  double per_pass = 4.0 * NC * (method == SAM_METHOD_SEQSAM ? 240 : 150);
  return (size_t)(B * passes * per_pass) + ((size_t)64 << 20);
}

static double decoder_side_params(const SamxParams *p) {
  int64_t n = 0;
  for (int i = 0; i < p->n; i++)
    if (strncmp(p->list[i]->name, "image_encoder.", 14)) n += p->list[i]->numel;
  return (double)n;
}

static int bench_method(SamMethod method, const SamConfig *c, const TrainBenchArgs *a, const BenchOpts *o,
                        BenchRow *row) {
  Trainee t;
  SamModel sam;
  sam_init_random(&sam, c, o->device, SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER, 1);
  // fewshot: K labels (the annotator masks), the B samples are the shots and their B * K target tokens
  if (method == SAM_METHOD_FEWSHOT) samx_fewshot_set_shape((SamxFewshotShape){a->annotators, a->batch * a->annotators, a->batch});
  sam_method_init(&t.mm, &sam, method, method == SAM_METHOD_FEWSHOT ? a->annotators : a->masks, 1, 7, 0.02f);
  if (method == SAM_METHOD_FEWSHOT) {
    SamxOptimConfig oc = samx_adam_config(0);
    oc.beta2 = 0.99;
    samx_optim_init(&t.opt, &t.mm.sam.params, oc);
  } else {
    samx_optim_init(&t.opt, &t.mm.sam.params, samx_adamw_config(0.01));
    samx_optim_add_group_if(&t.opt, samx_param_is_1d, NULL, 1.0, 0.0);
  }
  int passes = method == SAM_METHOD_SEQSAM ? a->masks : 1;
  size_t act = a->act_mb > 0 ? (size_t)a->act_mb << 20 : act_bytes_estimate(c, method, a->batch, passes);
  samx_ctx_init(&t.ctx, o->device, act, TAPE_NODES);
  Inputs in;
  make_inputs(&in, c, a->batch, a->annotators, t.mm.n_masks);
  if (method == SAM_METHOD_FEWSHOT) fewshot_targets(&t.mm, &in, t.ctx.device);
  double *ms = (double *)malloc(sizeof(double) * (size_t)o->reps);
  for (int r = -1; r < o->reps; r++) {  // r = -1 warms up (cuBLAS handles, first-touch pages)
    samx_device_sync(o->device);
    double t0 = bench_now_ms();
    float loss = train_step(&t, &in);
    samx_device_sync(o->device);
    if (r >= 0) ms[r] = bench_now_ms() - t0;
    if (!(loss == loss)) fprintf(stderr, "samx bench train: %s loss is NaN\n", sam_method_name(method));
  }
  const char *name = sam_method_name(method);
  snprintf(row->name, sizeof row->name, "train %s %s", name, a->model);
  if (method == SAM_METHOD_SEQSAM)
    snprintf(row->shape, sizeof row->shape, "B=%d M=%d K=%d emb %dx%dx%d", a->batch, a->masks, a->annotators, in.C, in.g, in.g);
  else
    snprintf(row->shape, sizeof row->shape, "B=%d K=%d emb %dx%dx%d", a->batch, a->annotators, in.C, in.g, in.g);
  snprintf(row->spec, sizeof row->spec, "train %s %s %d %d %d", name, a->model, a->batch, a->masks, a->annotators);
  snprintf(row->unit, sizeof row->unit, "sample");
  row->ms = bench_median(ms, o->reps);
  row->items = a->batch;
  row->flops = a->batch * 3 * forward_flops(c, method, passes);
  double trainable = (double)t.mm.sam.params.n_trainable, peak = (double)t.ctx.act.peak;
  // AdamW reads parameter, gradient and both moments and writes three of them; zeroing and the
  // clipping norm touch the gradient twice more.
  row->bytes = 2 * peak + 4 * 9 * trainable + 4.0 * in.B * in.C * in.g * in.g;
  row->mem_mb = (4 * decoder_side_params(&t.mm.sam.params) + 4 * 3 * trainable + peak) / 1048576.0;
  free(ms);
  free_inputs(&in);
  samx_ctx_free(&t.ctx);
  samx_optim_free(&t.opt);
  sam_method_free(&t.mm);
  return 0;
}

// ---- P2SAM ----

// Forward FLOPs of the prior network on an S x S image (3x3 convs, then the 1x1 head).
static double prior_flops(int S) {
  static const int width[4] = {32, 64, 128, 192};
  double f = 0, in = 1, side = S;
  for (int b = 0; b < 4; b++) {
    if (b) side /= 2;
    for (int k = 0; k < 3; k++) f += 2.0 * side * side * in * width[b] * 9, in = width[b];
  }
  return f + 2.0 * in * 2 * P2SAM_LATENT;
}

static int bench_p2sam(const SamConfig *c, const TrainBenchArgs *a, const BenchOpts *o, BenchRow *row) {
  int stage = a->stage == 2 ? 2 : 1, B = a->batch_given ? a->batch : 10, S = 128;
  SamModel base, sam;
  sam_init_random(&base, c, o->device, 0, 1);
  if (p2sam_sam_from_base(&sam, &base, S, stage == 1 ? SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER : 0, 2) != 0) {
    fprintf(stderr, "samx bench train: p2sam: %s\n", samx_last_error());
    sam_free(&base);
    return -1;
  }
  sam_free(&base);
  SamMethodModel mm;
  sam_method_init(&mm, &sam, SAM_METHOD_P2SAM, 4, stage == 1 ? P2SAM_STAGE1 : P2SAM_STAGE2, 7, 0.0f);
  SamxOptim opt;
  p2sam_optim_init(&opt, &mm, stage, 1.0, 1e-4, 0.01);
  float lr = stage == 1 ? 1e-3f : 1e-6f;
  SamxCtx ctx;
  size_t act = a->act_mb > 0 ? (size_t)a->act_mb << 20 : (size_t)B * ((size_t)(stage == 1 ? 400 : 160) << 20) + ((size_t)256 << 20);
  samx_ctx_init(&ctx, o->device, act, TAPE_NODES);
  float *px = (float *)malloc(sizeof(float) * (size_t)B * S * S), *target = (float *)malloc(sizeof(float) * (size_t)B * S * S);
  for (int64_t i = 0; i < (int64_t)B * S * S; i++) px[i] = (float)((samx_hash4(3, (uint64_t)i, 0, 0) >> 11) / 9007199254740992.0);
  for (int b = 0; b < B; b++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) target[((int64_t)b * S + y) * S + x] = (x - 50 - b) * (x - 50 - b) + (y - 64) * (y - 64) < 400;
  double *ms = (double *)malloc(sizeof(double) * (size_t)o->reps);
  for (int r = -1; r < o->reps; r++) {
    samx_device_sync(o->device);
    double t0 = bench_now_ms();
    samx_params_zero_grad(&mm.sam.params);
    samx_ctx_reset(&ctx);
    SamxTensor *pixels = samx_from_host(&ctx, SHAPE(B, 1, S, S), px), *z = NULL;
    int prev = samx_ctx_set_recording(&ctx, stage == 1);
    SamxTensor *emb = sam_encode(&ctx, &mm.sam, p2sam_encoder_input(&ctx, pixels));
    samx_ctx_set_recording(&ctx, prev);
    if (stage == 2) {
      SamxTensor *mu, *log_sigma;
      p2sam_prior(&ctx, &mm, pixels, &mu, &log_sigma);
      z = samx_gaussian_sample(&ctx, mu, log_sigma);
    }
    SamxTensor *low = p2sam_decode(&ctx, &mm, emb, NULL, p2sam_dense_prompt(&ctx, &mm, z, B)), *weighted, *assembled;
    p2sam_assemble(&ctx, &mm, low, NULL, &weighted, &assembled);
    P2samLoss l;
    p2sam_loss(&ctx, &mm, weighted, assembled, target, stage == 2 ? 1e-5f : 0.0f, &l);
    float value;
    samx_tensor_read_f32(l.total, &value);
    if (samx_backward(&ctx, l.total, NULL) != 0) SAMX_DIE("samx bench train: backward: %s", samx_last_error());
    samx_optim_step(&opt, lr);
    samx_device_sync(o->device);
    if (r >= 0) ms[r] = bench_now_ms() - t0;
    if (!(value == value)) fprintf(stderr, "samx bench train: p2sam loss is NaN\n");
  }
  const SamConfig *pc = &mm.sam.cfg;
  snprintf(row->name, sizeof row->name, "train p2sam stage %d %s", stage, a->model);
  snprintf(row->shape, sizeof row->shape, "B=%d 128x128, emb %dx%dx%d", B, pc->out_chans, sam_embed_grid(pc), sam_embed_grid(pc));
  snprintf(row->spec, sizeof row->spec, "train p2sam-s%d %s %d 0 0", stage, a->model, B);
  snprintf(row->unit, sizeof row->unit, "sample");
  row->ms = bench_median(ms, o->reps);
  row->items = B;
  double enc = sam_encoder_flops(pc), dec = sam_decoder_flops(pc, 0);
  row->flops = B * ((stage == 1 ? 3 : 1) * enc + 3 * (dec + (stage == 2 ? prior_flops(S) : 0)));
  row->bytes = 2 * (double)ctx.act.peak + 4 * 9 * (double)mm.sam.params.n_trainable;
  row->mem_mb = (4 * (double)mm.sam.params.n_values + 4 * 3 * (double)mm.sam.params.n_trainable + (double)ctx.act.peak) / 1048576.0;
  free(ms), free(px), free(target);
  samx_ctx_free(&ctx);
  samx_optim_free(&opt);
  sam_method_free(&mm);
  return 0;
}

int samx_bench_train(int argc, char **argv) {
  BenchOpts o;
  TrainBenchArgs a = {.methods = "seqsam,mcl,sam-ft", .model = "tiny", .masks = 4, .batch = 2, .annotators = 4};
  if (bench_parse_opts_ex(argc, argv, &o, USAGE, extra_opt, &a) < 0) return 2;
  if (o.quick) {
    o.reps = 1;
    if (!a.model_given) snprintf(a.model, sizeof a.model, "tiny");
  }
  if (a.masks < 1 || a.masks > MAX_STEPS || a.batch < 1 || a.annotators < 1) {
    fprintf(stderr, "samx bench train: --masks must be in 1..%d, --batch and --annotators positive\n", MAX_STEPS);
    return 2;
  }
  SamConfig c;
  if (sam_config_preset(a.model, &c) != 0) {
    fprintf(stderr, "samx bench train: --model: %s\n", samx_last_error());
    return 2;
  }
  BenchRow rows[SAM_METHOD_COUNT];
  memset(rows, 0, sizeof rows);
  int n = 0;
  char list[64];
  snprintf(list, sizeof list, "%s", a.methods);
  for (char *tok = strtok(list, ","); tok && n < SAM_METHOD_COUNT; tok = strtok(NULL, ",")) {
    SamMethod m;
    if (sam_method_parse(tok, &m) != 0) {
      fprintf(stderr, "samx bench train: --method: %s\n", samx_last_error());
      return 2;
    }
    if (m == SAM_METHOD_P2SAM) {
      if (bench_p2sam(&c, &a, &o, &rows[n]) != 0) return 1;
      n++;
      continue;
    }
    bench_method(m, &c, &a, &o, &rows[n++]);
  }
  bench_torch("train", &o, rows, n);
  HwLimits hw;
  bench_limits(o.device, o.precision, &hw);
  bench_print("train", &o, &hw, rows, n);
  return 0;
}
