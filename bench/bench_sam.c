// `samx bench encoder` and `samx bench decoder`: SAM throughput on random weights of a preset
// architecture (or a checkpoint), with the official segment_anything code beside it in PyTorch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "models/sam/sam.h"

static const char *USAGE =
    "usage: samx bench encoder|decoder [--model vit_b|vit_l|vit_h|tiny] [--checkpoint W] [--batch N]\n"
    "                                  [--prompts P] [--device ...] [-r REPS] [-o md|json] [--compare-torch]\n"
    "\n"
    "encoder: images through the image encoder, batch N (default 1; a comma list such as 1,8,32 runs each);\n"
    "         items/s = images/s; % of peak = achieved FLOP/s over the device's peak in the run's precision\n"
    "         (bf16: the tensor cores'); peak MB = parameters (in bf16 with their kept bf16 copies)\n"
    "         plus the activation arena's high-water mark.\n"
    "decoder: P prompt sets (box prompts, default 1,16,50) decoded in one call against one cached embedding\n"
    "         (prompt encoder + mask decoder, single-mask output); items/s = prompts/s.\n"
    "Weights are random (the architecture is what is timed) unless --checkpoint is given.\n"
    "--compare-torch times the same work with the official segment_anything package (installed into .venv by\n"
    "scripts/setup-venv.sh) on the same device in the same precision (bf16: bf16 modules, attention through\n"
    "scaled_dot_product_attention, as segment-anything-fast; see samx bench --help).\n";

typedef struct {
  char model[32];
  const char *checkpoint;
  char batches[64];
} SamBenchOpts;

static int extra_opt(const char *opt, const char *val, void *user) {
  SamBenchOpts *s = (SamBenchOpts *)user;
  if (!val) return 0;
  if (!strcmp(opt, "--model")) return snprintf(s->model, sizeof s->model, "%s", val), 2;
  if (!strcmp(opt, "--checkpoint")) return s->checkpoint = val, 2;
  if (!strcmp(opt, "--batch") || !strcmp(opt, "--prompts")) return snprintf(s->batches, sizeof s->batches, "%s", val), 2;
  return 0;
}

static int load_model(const SamBenchOpts *s, SamxDevice dev, SamModel *m) {
  if (s->checkpoint) return sam_load(m, s->checkpoint, dev, 0, NULL);
  SamConfig c;
  if (sam_config_preset(s->model, &c)) return -1;
  sam_init_random(m, &c, dev, 0, 1);
  return 0;
}

static double param_mb(const SamModel *m) { return (double)samx_params_value_bytes(&m->params) / 1048576.0; }

// One timed row: `work` runs once per repetition after a warm-up, on a context reset to `mark`.
typedef void (*Work)(SamxCtx *ctx, SamModel *m, int n, void *state);

static void time_work(SamxCtx *ctx, SamModel *m, int n, int reps, Work work, void *state, BenchRow *row) {
  size_t mark = samx_ctx_mark(ctx);
  double *t = (double *)malloc(sizeof(double) * (size_t)reps);
  for (int r = -1; r < reps; r++) {
    samx_ctx_release(ctx, mark);
    samx_device_sync(ctx->device);
    double t0 = bench_now_ms();
    work(ctx, m, n, state);
    samx_device_sync(ctx->device);
    if (r >= 0) t[r] = bench_now_ms() - t0;
  }
  row->ms = bench_median(t, reps);
  row->mem_mb = param_mb(m) + ctx->act.peak / 1048576.0;
  free(t);
}

static void encode_work(SamxCtx *ctx, SamModel *m, int n, void *state) {
  SamxTensor *img = (SamxTensor *)state;
  (void)n;
  sam_encode(ctx, m, img);
}

typedef struct {
  SamxTensor *emb;
  SamPrompt *prompts;
} DecodeState;

static void decode_work(SamxCtx *ctx, SamModel *m, int n, void *state) {
  DecodeState *d = (DecodeState *)state;
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(ctx, m, d->prompts, n, NULL, &sparse, &dense);
  sam_decode(ctx, m, d->emb, NULL, sparse, dense, 0, &low, &iou);
}

static int run(int argc, char **argv, int decoder) {
  BenchOpts o;
  SamBenchOpts s = {.model = "vit_b"};
  snprintf(s.batches, sizeof s.batches, "%s", decoder ? "1,16,50" : "1");
  if (bench_parse_opts_ex(argc, argv, &o, USAGE, extra_opt, &s) < 0) return 2;
  SamModel m;
  if (load_model(&s, o.device, &m)) {
    fprintf(stderr, "samx bench: %s\n", samx_last_error());
    return 1;
  }
  const SamConfig *c = &m.cfg;
  int S = c->img_size, g = sam_embed_grid(c), sizes[16], n_sizes = 0;
  for (char *tok = strtok(s.batches, ","); tok && n_sizes < 16; tok = strtok(NULL, ",")) sizes[n_sizes++] = atoi(tok);
  BenchRow rows[16];
  memset(rows, 0, sizeof rows);
  SamxCtx ctx;
  // Encoder: one block's activations per image in inference (see sam_encode), sized generously.
  size_t act = decoder ? ((size_t)256 << 20) * 16 : (size_t)(sam_encoder_flops(c) / 972e9 * 1.5e9 + 64e6);
  int max_n = 1;
  for (int i = 0; i < n_sizes; i++) max_n = sizes[i] > max_n ? sizes[i] : max_n;
  samx_ctx_init(&ctx, o.device, decoder ? act : act * (size_t)max_n, 1 << 16);
  samx_ctx_set_recording(&ctx, 0);
  for (int i = 0; i < n_sizes; i++) {
    int n = sizes[i] > 0 ? sizes[i] : 1;
    samx_ctx_reset(&ctx);
    ctx.act.peak = 0;
    BenchRow *r = &rows[i];
    if (!decoder) {
      SamxTensor *img = samx_new(&ctx, SAMX_F32, SHAPE(n, 3, S, S));
      bench_fill(img, 7);
      time_work(&ctx, &m, n, o.reps, encode_work, img, r);
      snprintf(r->name, sizeof r->name, "encoder %s", s.checkpoint ? "checkpoint" : s.model);
      snprintf(r->shape, sizeof r->shape, "%dx3x%dx%d", n, S, S);
      snprintf(r->spec, sizeof r->spec, "encoder %s %d", s.model, n);
      r->flops = n * sam_encoder_flops(c);
      snprintf(r->unit, sizeof r->unit, "img");
    } else {
      DecodeState d = {samx_new(&ctx, SAMX_F32, SHAPE(1, c->prompt_dim, g, g)), calloc((size_t)n, sizeof(SamPrompt))};
      bench_fill(d.emb, 3);
      for (int p = 0; p < n; p++) {
        d.prompts[p].has_box = 1;
        float x0 = (float)(p * 7 % (S / 2)), y0 = (float)(p * 13 % (S / 2));
        float box[4] = {x0, y0, x0 + S / 3.0f, y0 + S / 4.0f};
        memcpy(d.prompts[p].box, box, sizeof box);
      }
      time_work(&ctx, &m, n, o.reps, decode_work, &d, r);
      free(d.prompts);
      snprintf(r->name, sizeof r->name, "decoder %s", s.checkpoint ? "checkpoint" : s.model);
      snprintf(r->shape, sizeof r->shape, "%d box prompts", n);
      snprintf(r->spec, sizeof r->spec, "decoder %s %d", s.model, n);
      r->flops = n * sam_decoder_flops(c, 2);
      snprintf(r->unit, sizeof r->unit, "prompt");
    }
    r->items = n;
  }
  bench_torch(decoder ? "decoder" : "encoder", &o, rows, n_sizes);
  HwLimits hw;
  bench_limits(o.device, o.precision, &hw);
  bench_print(decoder ? "decoder" : "encoder", &o, &hw, rows, n_sizes);
  samx_ctx_free(&ctx);
  sam_free(&m);
  return 0;
}

int samx_bench_encoder(int argc, char **argv) { return run(argc, argv, 0); }
int samx_bench_decoder(int argc, char **argv) { return run(argc, argv, 1); }
