// The few-shot decoder (models/fewshot/fewshot.h) on a small random SAM: region weights on the grid
// (majority, the fallback for a label that vanishes, an absent label) by hand; target embeddings as
// tokens; gradients of both losses (two-channel CE and Dice) against central finite differences for
// the new output tokens, their hypernetwork MLPs, the two-way transformer, the upscaling and the image
// embedding; the frozen target embeddings get none; a saved checkpoint loads back with its target
// embeddings and gives the same logits. argv[1] "cuda": cuda:0 against the CPU backend.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/fewshot/fewshot.h"

#define NP 2  // images decoded
#define S 2   // shots
#define L 2   // labels
#define C 16
#define G 4   // grid
#define HW (16 * 16)
#define FD_H 3e-3  // five-point stencil, of the loss in double from the f32 logits

static SamConfig small_config(void) {
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.img_size = 32, c.patch = 8, c.enc_dim = 16, c.enc_depth = 1, c.enc_heads = 2, c.enc_mlp = 32, c.window = 2;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[0] = 1;
  c.prompt_dim = c.out_chans = C, c.dec_heads = 2, c.dec_mlp = 32, c.iou_hidden = 16;
  return c;
}

typedef struct {
  float shots[S * C * G * G];  // the shots' embeddings
  float emb[NP * C * G * G];    // the images decoded
  float target[NP * L * HW];    // 0/1 label maps at the low-res logits' resolution
} Inputs;

// Shot masks at 32 x 32: label 0 a square (majority cells), label 1 a 3 x 3 blob in shot 0 only (it
// vanishes on the 4 x 4 grid: fractions), so T = 3 tokens.
static void shot_weights(float *w) {
  static uint8_t m[32 * 32];
  for (int i = 0; i < S; i++)
    for (int l = 0; l < L; l++) {
      memset(m, 0, sizeof m);
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
          m[y * 32 + x] = l == 0 ? (y >= 8 + 4 * i && y < 24 && x >= 4 && x < 20) : (i == 0 && y >= 2 && y < 5 && x >= 9 && x < 12);
      samx_fewshot_region_weights(m, 32, 32, 32, G, w + (i * L + l) * G * G);
    }
}

static void make_model(SamMethodModel *mm, SamxDevice dev, const Inputs *in) {
  SamConfig c = small_config();
  SamModel sam;
  sam_init_random(&sam, &c, dev, SAM_TRAIN_DECODER, 5);
  samx_fewshot_set_shape((SamxFewshotShape){L, 3, S});
  sam_method_init(mm, &sam, SAM_METHOD_FEWSHOT, L, 1, 9, 0.0f);
  static float w[S * L * G * G];
  shot_weights(w);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *shots = samx_from_host(&ctx, SHAPE(S, C, G, G), in->shots);
  const int ids[L] = {1, 3};
  const int64_t rows[S] = {7, 11};
  samx_fewshot_set_targets(mm, shots, w, ids, rows);
  samx_ctx_free(&ctx);
}

// The losses of models/fewshot/fewshot.h written out in double from the hypotheses fg - bg: the finite
// differences use this (an independent form of the loss, free of the f32 sums' rounding).
static double host_loss(SamxTensor *const *outs, const float *target, int kind, double eps) {
  static float d[NP * HW];
  double total = 0;
  for (int l = 0; l < L; l++) {
    samx_tensor_read_f32(outs[l], d);
    double acc = 0;
    for (int p = 0; p < NP; p++) {
      double inter = 0, pp = 0, yy = 0, inter_b = 0, qq = 0, yb = 0;
      for (int j = 0; j < HW; j++) {
        double x = d[p * HW + j], y = target[(p * L + l) * HW + j], pr = 1 / (1 + exp(-x));
        if (kind == SAMX_FEWSHOT_LOSS_CE) {
          acc += -(y * log(pr) + (1 - y) * log(1 - pr)) / (NP * HW);  // softmax CE over (fg, bg)
        } else {
          inter += pr * y, pp += pr * pr, yy += y * y;
          inter_b += (1 - pr) * (1 - y), qq += (1 - pr) * (1 - pr), yb += (1 - y) * (1 - y);
        }
      }
      if (kind == SAMX_FEWSHOT_LOSS_DICE)
        acc += 0.5 * ((1 - (2 * inter + eps) / (pp + yy + eps)) + (1 - (2 * inter_b + eps) / (qq + yb + eps))) / NP;
    }
    total += acc / L;
  }
  return total;
}

static double run(SamMethodModel *mm, SamxDevice dev, const Inputs *in, int kind, int with_grad, float *emb_grad) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, with_grad);
  samx_params_zero_grad(&mm->sam.params);
  SamxTensor *emb = samx_from_host(&ctx, SHAPE(NP, C, G, G), in->emb), *outs[L];
  emb->requires_grad = (uint8_t)with_grad;
  SamxMethodOpts o = sam_method_opts_defaults();
  o.fewshot_loss = kind, o.dice_eps = 1e-5f;
  SamxMethodBatch b = {.image_emb = emb, .P = NP, .labels = in->target, .K = L};
  int n = mm->def->hypotheses(&ctx, mm, &b, 1, &o, outs);
  CHECK(n == L && outs[0]->shape[2] == 16, "hypotheses: %d of [%lld, %lld, %lld, %lld]", n, (long long)outs[0]->shape[0],
        (long long)outs[0]->shape[1], (long long)outs[0]->shape[2], (long long)outs[0]->shape[3]);
  SamxTensor *loss = mm->def->loss(&ctx, mm, outs, L, &b, 1, &o, 0);
  float v;
  samx_tensor_read_f32(loss, &v);
  double ref = host_loss(outs, in->target, kind, 1e-5);
  CHECK(fabs(v - ref) <= 1e-5 * (1 + fabs(ref)), "%s loss %.7g, written out in double %.7g", kind ? "dice" : "ce", v, ref);
  if (with_grad) {
    CHECK(samx_backward(&ctx, loss, NULL) == 0, "backward: %s", samx_last_error());
    if (emb_grad) samx_tensor_read_f32(emb->grad, emb_grad);
  }
  samx_ctx_free(&ctx);
  return with_grad ? v : ref;
}

typedef struct {
  const char *param;  // NULL: the image embedding
  int index;
} Probe;

static const Probe PROBES[] = {
    {"fewshot.output_tokens.weight", 0},
    {"fewshot.hypernetworks_mlps.0.layers.0.weight", 5}, {"fewshot.hypernetworks_mlps.3.layers.2.bias", 1},
    {"fewshot.hypernetworks_mlps.1.layers.1.weight", 100},
    {"mask_decoder.transformer.layers.0.self_attn.q_proj.weight", 9},
    {"mask_decoder.transformer.layers.1.cross_attn_image_to_token.v_proj.weight", 21},
    {"mask_decoder.transformer.final_attn_token_to_image.k_proj.weight", 3},
    {"mask_decoder.output_upscaling.0.weight", 7}, {NULL, 17},
};
#define N_PROBES (int)(sizeof PROBES / sizeof *PROBES)

static void probe_grads(SamMethodModel *mm, const float *emb_grad, const int *idx, double *g) {
  for (int p = 0; p < N_PROBES; p++) {
    SamxTensor *t = PROBES[p].param ? samx_params_find(&mm->sam.params, PROBES[p].param) : NULL;
    g[p] = !PROBES[p].param ? emb_grad[idx[p]] : t && t->grad ? samx_test_get_elem(t->grad, idx[p]) : 0.0;
  }
}

// Each probe's element: the one with the largest analytic gradient among the first 4096, so that the
// finite differences (of a mean loss, in f32) resolve it; a wrong gradient there still disagrees
// with them, and a path without any gradient leaves the probe at 0 and fails the count below.
static void pick_indices(SamMethodModel *mm, const float *emb_grad, int *idx) {
  for (int p = 0; p < N_PROBES; p++) {
    SamxTensor *t = PROBES[p].param ? samx_params_find(&mm->sam.params, PROBES[p].param) : NULL;
    int64_t n = t ? t->numel : NP * C * G * G;
    float *v = (float *)malloc((size_t)n * sizeof(float));
    if (t && t->grad) samx_tensor_read_f32(t->grad, v);
    else if (t) memset(v, 0, (size_t)n * sizeof(float));
    else memcpy(v, emb_grad, (size_t)n * sizeof(float));
    idx[p] = PROBES[p].index;
    for (int64_t i = 0; i < n && i < 4096; i++)
      if (fabsf(v[i]) > fabsf(v[idx[p]])) idx[p] = (int)i;
    free(v);
  }
}

static void check_fd(Inputs *in, int kind) {
  SamMethodModel mm;
  make_model(&mm, samx_cpu(), in);
  static float emb_grad[NP * C * G * G];
  double g[N_PROBES], fd[N_PROBES], scale = 0;
  int idx[N_PROBES];
  run(&mm, samx_cpu(), in, kind, 1, emb_grad);
  pick_indices(&mm, emb_grad, idx);
  probe_grads(&mm, emb_grad, idx, g);
  SamxTensor *tgt = samx_params_find(&mm.sam.params, "fewshot.target_embeddings");
  CHECK(tgt && !tgt->requires_grad && !tgt->grad, "the target embeddings are frozen");
  for (int p = 0; p < N_PROBES; p++) {
    SamxTensor *t = PROBES[p].param ? samx_params_find(&mm.sam.params, PROBES[p].param) : NULL;
    CHECK(!PROBES[p].param || t, "no parameter %s", PROBES[p].param);
    float *slot = t ? NULL : &in->emb[idx[p]];
    float keep = t ? samx_test_get_elem(t, idx[p]) : *slot;
    static const double at[4] = {2, 1, -1, -2};
    double l[4];
    for (int s = 0; s < 4; s++) {
      float v = keep + (float)(at[s] * FD_H);
      if (t) samx_test_set_elem(t, idx[p], v); else *slot = v;
      l[s] = run(&mm, samx_cpu(), in, kind, 0, NULL);
    }
    if (t) samx_test_set_elem(t, idx[p], keep); else *slot = keep;
    fd[p] = (8 * (l[1] - l[2]) - (l[0] - l[3])) / (12 * FD_H);
    scale = fmax(scale, fabs(fd[p]));
  }
  int nonzero = 0;
  for (int p = 0; p < N_PROBES; p++) {
    double err = fabs(g[p] - fd[p]);
    nonzero += fabs(fd[p]) > 1e-4 * scale;
    CHECK(err <= 3e-2 * fabs(fd[p]) + 2e-4 * scale + 1e-6, "%s loss, %s[%d]: gradient %.6g, finite differences %.6g",
          kind ? "dice" : "ce", PROBES[p].param ? PROBES[p].param : "image_embedding", idx[p], g[p], fd[p]);
    printf("%s %-62s [%4d] grad %+.6e  fd %+.6e\n", kind ? "dice" : "ce  ", PROBES[p].param ? PROBES[p].param : "image_embedding",
           idx[p], g[p], fd[p]);
  }
  CHECK(nonzero == N_PROBES, "only %d of %d probes have a gradient", nonzero, N_PROBES);
  sam_method_free(&mm);
}

// Region weights by hand: a 2 x 2 grid of 8 x 8 images, one cell half covered (majority), one cell
// with 3 pixels (fractions only when no cell is a majority), nothing.
static void check_weights(void) {
  uint8_t m[8 * 8] = {0};
  float w[4];
  for (int y = 0; y < 4; y++)
    for (int x = 4; x < 6; x++) m[y * 8 + x] = 1;  // top-right cell: 8 of 16 pixels
  m[7 * 8 + 0] = 1;                                // bottom-left: 1 of 16
  CHECK(samx_fewshot_region_weights(m, 8, 8, 8, 2, w) == 1 && w[0] == 0 && w[1] == 1 && w[2] == 0 && w[3] == 0,
        "majority: %g %g %g %g", w[0], w[1], w[2], w[3]);
  memset(m, 0, sizeof m);
  m[0] = m[1] = m[7 * 8 + 7] = 1;
  CHECK(samx_fewshot_region_weights(m, 8, 8, 8, 2, w) == 0 && w[0] == 2.0f / 16 && w[3] == 1.0f / 16 && w[1] == 0,
        "vanishing label keeps its fractions: %g %g %g %g", w[0], w[1], w[2], w[3]);
  memset(m, 0, sizeof m);
  CHECK(samx_fewshot_region_weights(m, 8, 8, 8, 2, w) == -1 && w[0] == 0, "empty mask");
  // a 4 x 8 image in a 16-pixel input frame (scale 2): rows 0..3 fill grid row 0 only; row 1 is padding
  uint8_t r[4 * 8];
  memset(r, 1, sizeof r);
  CHECK(samx_fewshot_region_weights(r, 4, 8, 16, 2, w) == 1 && w[0] == 1 && w[1] == 1 && w[2] == 0 && w[3] == 0,
        "padding cells get nothing: %g %g %g %g", w[0], w[1], w[2], w[3]);
}

static void check_cuda(Inputs *in) {
  SamMethodModel a, b;
  SamxDevice cuda = {SAMX_CUDA, 0};
  make_model(&a, samx_cpu(), in);
  make_model(&b, cuda, in);
  for (int kind = 0; kind < 2; kind++) {
    static float ga[NP * C * G * G], gb[NP * C * G * G];
    double la = run(&a, samx_cpu(), in, kind, 1, ga), lb = run(&b, cuda, in, kind, 1, gb);
    double pa[N_PROBES], pb[N_PROBES], worst = 0, scale = 0;
    int idx[N_PROBES];
    pick_indices(&a, ga, idx);
    probe_grads(&a, ga, idx, pa);
    probe_grads(&b, gb, idx, pb);
    for (int p = 0; p < N_PROBES; p++) worst = fmax(worst, fabs(pa[p] - pb[p])), scale = fmax(scale, fabs(pa[p]));
    CHECK(fabs(la - lb) <= 1e-4 * (1 + fabs(la)) && worst <= 1e-3 * scale, "cuda %s: loss %.7g vs cpu %.7g, grad diff %.3g of %.3g",
          kind ? "dice" : "ce", lb, la, worst, scale);
    printf("cuda %s: loss %.6f (cpu %.6f), probe gradient diff %.2g of %.2g\n", kind ? "dice" : "ce", lb, la, worst, scale);
  }
  sam_method_free(&a);
  sam_method_free(&b);
}

// A checkpoint as samx train writes it (the whole model, method metadata) loads back through
// sam_method_load with the shapes read from the file (prepare_load): the same target embeddings,
// label ids and shot rows, and the same logits, so inference needs no shots.
static void check_checkpoint(Inputs *in) {
  SamMethodModel a, b;
  make_model(&a, samx_cpu(), in);
  char dir[256];
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_fewshot_ck") != 0) return;
  const char *path = samx_test_path(dir, "final.safetensors");
  char *meta = sam_method_meta_json(&a, "");
  SamxCheckpoint ck = {.params = &a.sam.params, .trainable_only = 0};
  CHECK(samx_checkpoint_save(path, &ck, meta) == 0, "save: %s", samx_last_error());
  free(meta);
  samx_fewshot_set_shape((SamxFewshotShape){1, 1, 1});  // the load must not depend on what was set last
  CHECK(sam_method_load(&b, path, samx_cpu(), 0) == 0, "load: %s", samx_last_error());
  if (b.def) {
    SamxFewshotShape sa = samx_fewshot_shape(&a), sb = samx_fewshot_shape(&b);
    CHECK(b.method == SAM_METHOD_FEWSHOT && b.n_masks == L && sa.n_tokens == sb.n_tokens && sa.n_shots == sb.n_shots,
          "loaded: method %d, %d masks, %d tokens, %d shots", (int)b.method, b.n_masks, sb.n_tokens, sb.n_shots);
    static const char *names[] = {"fewshot.target_embeddings", "fewshot.label_ids", "fewshot.shot_rows",
                                  "fewshot.output_tokens.weight", "fewshot.hypernetworks_mlps.3.layers.2.bias"};
    for (int i = 0; i < 5; i++) {
      SamxTensor *ta = samx_params_find(&a.sam.params, names[i]), *tb = samx_params_find(&b.sam.params, names[i]);
      float *va = (float *)malloc(samx_nbytes(ta)), *vb = (float *)malloc(samx_nbytes(ta));
      samx_tensor_read_f32(ta, va);
      samx_tensor_read_f32(tb, vb);
      CHECK(ta->numel == tb->numel && !memcmp(va, vb, samx_nbytes(ta)), "%s differs after the round trip", names[i]);
      if (i == 2) CHECK(vb[0] == 7 && vb[1] == 11, "shot rows %g %g", vb[0], vb[1]);
      free(va), free(vb);
    }
    double la = run(&a, samx_cpu(), in, SAMX_FEWSHOT_LOSS_DICE, 0, NULL), lb = run(&b, samx_cpu(), in, SAMX_FEWSHOT_LOSS_DICE, 0, NULL);
    CHECK(la == lb, "loss of the loaded model %.9g, saved %.9g", lb, la);
    sam_method_free(&b);
  }
  sam_method_free(&a);
  samx_test_remove_dir(dir);
}

int main(int argc, char **argv) {
  static Inputs in;
  uint64_t st = 42;
  samx_test_fill_uniform(in.shots, S * C * G * G, -1, 1, &st);
  samx_test_fill_uniform(in.emb, NP * C * G * G, -1, 1, &st);
  samx_test_fill_uniform(in.target, NP * L * HW, 0, 1, &st);
  for (int i = 0; i < NP * L * HW; i++) in.target[i] = in.target[i] > 0.7f;
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CUDA) {
    check_cuda(&in);
    return samx_test_summary();
  }
  check_weights();
  check_fd(&in, SAMX_FEWSHOT_LOSS_CE);
  check_fd(&in, SAMX_FEWSHOT_LOSS_DICE);
  check_checkpoint(&in);
  return samx_test_summary();
}
