// SeqSAM's recurrent rollout (models/seqsam/seqsam.h) on a small random SAM: gradients of a fixed
// random linear functional of all M steps' logits against central finite differences, for the
// cell's two convolutions (the hidden-state path is only reached through back-propagation through
// time), the prompt encoder's mask path (reached only through the fed-back logits), the decoder,
// the box embedding and the image embedding. Also: the "sg" ablation (bptt_logits = 0) cuts the
// gradient through the fed-back logits (it differs, and the hidden path still gets one), one step
// leaves conv_hidden without gradient, and a checkpoint written by the trainer's format loads back
// bit-exactly through sam_method_load. argv[1] "cuda": cuda:0 against the CPU backend, and the
// finite-difference check on cuda:0.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/seqsam/seqsam.h"

#define B 2
#define M 3
#define FD_H 1e-3  // with the five-point stencil: ~1e-4 absolute error from f32 rounding

static SamConfig small_config(void) {
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.img_size = 32, c.patch = 8, c.enc_dim = 16, c.enc_depth = 1, c.enc_heads = 2, c.enc_mlp = 32, c.window = 2;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[0] = 1;
  c.prompt_dim = c.out_chans = 16, c.dec_heads = 2, c.dec_mlp = 32, c.iou_hidden = 16;
  return c;
}

static void make_model(SamMethodModel *mm, SamxDevice dev) {
  SamConfig c = small_config();
  SamModel sam;
  sam_init_random(&sam, &c, dev, SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER, 5);
  sam_method_init(mm, &sam, SAM_METHOD_SEQSAM, M, 1, 9, 0.1f);
}

static const SamPrompt PROMPTS[B] = {{.has_box = 1, .box = {4, 6, 20, 25}}, {.has_box = 1, .box = {10, 3, 28, 17}}};

typedef struct {
  float emb[B * 16 * 4 * 4];
  float w[M * B * 16 * 16];  // weights of the functional, per step
} Inputs;

// L = sum_t sum_i w_t[i] * logits_t[i]; with grads: recorded and back-propagated, *emb_grad filled.
static double run(SamMethodModel *mm, SamxDevice dev, const Inputs *in, int steps, int bptt, int with_grad,
                  float *emb_grad) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, with_grad);
  samx_params_zero_grad(&mm->sam.params);
  SamxTensor *emb = samx_from_host(&ctx, SHAPE(B, 16, 4, 4), in->emb), *outs[M];
  emb->requires_grad = (uint8_t)with_grad;
  seqsam_rollout(&ctx, mm, emb, NULL, PROMPTS, B, steps, bptt, outs);
  int64_t n = outs[0]->numel;
  double loss = 0;
  float *o = (float *)malloc(sizeof(float) * (size_t)n);
  SamxTensor *total = NULL;
  for (int t = 0; t < steps; t++) {
    samx_tensor_read_f32(outs[t], o);
    for (int64_t i = 0; i < n; i++) loss += (double)in->w[t * n + i] * o[i];
    if (with_grad) {
      SamxTensor *term = samx_sum(&ctx, samx_mul(&ctx, outs[t], samx_from_host(&ctx, samx_shape_of(outs[t]), in->w + t * n)));
      total = total ? samx_add(&ctx, total, term) : term;
    }
  }
  free(o);
  if (with_grad) {
    CHECK(samx_backward(&ctx, total, NULL) == 0, "backward: %s", samx_last_error());
    if (emb_grad) samx_tensor_read_f32(emb->grad, emb_grad);
  }
  samx_ctx_free(&ctx);
  return loss;
}

typedef struct {
  const char *param;  // NULL: the image embedding
  int index;
} Probe;

static const Probe PROBES[] = {
    {"seqsam.cell.conv_out.weight", 0},      {"seqsam.cell.conv_out.weight", 1234},
    {"seqsam.cell.conv_out.bias", 3},        {"seqsam.cell.conv_hidden.weight", 77},
    {"seqsam.cell.conv_hidden.weight", 2000}, {"seqsam.cell.conv_hidden.bias", 5},
    {"prompt_encoder.mask_downscaling.0.weight", 2}, {"prompt_encoder.mask_downscaling.6.weight", 40},
    {"mask_decoder.output_upscaling.0.weight", 7}, {"prompt_encoder.point_embeddings.2.weight", 1},
    {NULL, 17},                               {NULL, 200},
};
#define N_PROBES (int)(sizeof PROBES / sizeof *PROBES)

// Analytic gradients of the probes (after a recorded run).
static void probe_grads(SamMethodModel *mm, const float *emb_grad, double *g) {
  for (int p = 0; p < N_PROBES; p++) {
    if (!PROBES[p].param) {
      g[p] = emb_grad[PROBES[p].index];
      continue;
    }
    SamxTensor *t = samx_params_find(&mm->sam.params, PROBES[p].param);
    g[p] = t && t->grad ? samx_test_get_elem(t->grad, PROBES[p].index) : 0.0;
  }
}

static void check_fd(SamxDevice dev, Inputs *in) {
  SamMethodModel mm;
  make_model(&mm, dev);
  static float emb_grad[B * 16 * 4 * 4];
  double g[N_PROBES], fd[N_PROBES], scale = 0;
  run(&mm, dev, in, M, 1, 1, emb_grad);
  probe_grads(&mm, emb_grad, g);
  const double h = FD_H;
  for (int p = 0; p < N_PROBES; p++) {
    SamxTensor *t = PROBES[p].param ? samx_params_find(&mm.sam.params, PROBES[p].param) : NULL;
    CHECK(!PROBES[p].param || t, "no parameter %s", PROBES[p].param);
    float *slot = t ? NULL : &in->emb[PROBES[p].index];
    float keep = t ? samx_test_get_elem(t, PROBES[p].index) : *slot;
    // Five-point stencil: O(h^4) truncation lets h stay well above f32 rounding noise.
    static const double at[4] = {2, 1, -1, -2};
    double l[4];
    for (int s = 0; s < 4; s++) {
      float v = keep + (float)(at[s] * h);
      if (t) samx_test_set_elem(t, PROBES[p].index, v); else *slot = v;
      l[s] = run(&mm, dev, in, M, 1, 0, NULL);
    }
    if (t) samx_test_set_elem(t, PROBES[p].index, keep); else *slot = keep;
    fd[p] = (8 * (l[1] - l[2]) - (l[0] - l[3])) / (12 * h);
    scale = fmax(scale, fabs(fd[p]));
  }
  int nonzero = 0;
  for (int p = 0; p < N_PROBES; p++) {
    double err = fabs(g[p] - fd[p]);
    nonzero += fabs(fd[p]) > 1e-3 * scale;
    CHECK(err <= 2e-2 * fabs(fd[p]) + 3e-4, "%s[%d]: gradient %.6g, finite differences %.6g",
          PROBES[p].param ? PROBES[p].param : "image_embedding", PROBES[p].index, g[p], fd[p]);
    printf("%-42s [%4d] grad %+.6f  fd %+.6f\n", PROBES[p].param ? PROBES[p].param : "image_embedding", PROBES[p].index,
           g[p], fd[p]);
  }
  CHECK(nonzero == N_PROBES, "only %d of %d probes have a gradient: the test would not see a missing path", nonzero, N_PROBES);

  // "sg": no gradient through the fed-back logits; the mask path's parameters and the hidden state
  // still get gradients, but different ones.
  double gs[N_PROBES];
  run(&mm, dev, in, M, 0, 1, emb_grad);
  probe_grads(&mm, emb_grad, gs);
  double diff = 0;
  for (int p = 0; p < N_PROBES; p++) diff = fmax(diff, fabs(gs[p] - g[p]));
  CHECK(diff > 1e-4 * scale, "bptt_logits = 0 leaves the gradients unchanged");
  CHECK(gs[3] != 0.0 && gs[6] != 0.0, "bptt_logits = 0: hidden-state / mask-path parameters lost their gradient");
  // One step: the hidden state is never used.
  run(&mm, dev, in, 1, 1, 1, emb_grad);
  SamxTensor *wh = samx_params_find(&mm.sam.params, "seqsam.cell.conv_hidden.weight");
  CHECK(!wh->grad || samx_test_get_elem(wh->grad, 77) == 0.0f, "one step: conv_hidden got a gradient");
  sam_method_free(&mm);
}

// CUDA against CPU: the same model (same seeds) gives the same logits functional and gradients.
static void check_cuda(Inputs *in) {
  SamMethodModel a, b;
  make_model(&a, samx_cpu());
  make_model(&b, (SamxDevice){SAMX_CUDA, 0});
  static float ga[B * 16 * 4 * 4], gb[B * 16 * 4 * 4];
  double la = run(&a, samx_cpu(), in, M, 1, 1, ga), lb = run(&b, (SamxDevice){SAMX_CUDA, 0}, in, M, 1, 1, gb);
  double pa[N_PROBES], pb[N_PROBES], worst = 0, scale = 0;
  probe_grads(&a, ga, pa);
  probe_grads(&b, gb, pb);
  for (int p = 0; p < N_PROBES; p++) worst = fmax(worst, fabs(pa[p] - pb[p])), scale = fmax(scale, fabs(pa[p]));
  // The rollout feeds each step's logits back: rounding differences between the backends grow over
  // the M steps, so the two functions themselves differ (measured on the emulator: their
  // finite-difference slopes differ by 1.2e-3 of 1.0 on conv_out.weight[0], like their gradients).
  // Each backend's own gradient is checked against its own finite differences (check_fd on cuda).
  CHECK(fabs(la - lb) <= 1e-4 * (1 + fabs(la)) && worst <= 3e-3 * scale, "cuda: loss %.7g vs cpu %.7g, grad diff %.3g of %.3g",
        lb, la, worst, scale);
  printf("cuda: functional %.6f (cpu %.6f), probe gradient diff %.2g of %.2g\n", lb, la, worst, scale);
  sam_method_free(&a);
  sam_method_free(&b);
}

// A checkpoint in the trainer's format loads back through sam_method_load, bit-exactly.
static void check_load(void) {
  SamMethodModel mm;
  make_model(&mm, samx_cpu());
  char path[] = "/tmp/samx_rollout_ckpt_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  close(fd);
  char *meta = sam_method_meta_json(&mm, "");
  SamxCheckpoint ck = {.params = &mm.sam.params};
  CHECK(samx_checkpoint_save(path, &ck, meta) == 0, "save: %s", samx_last_error());
  free(meta);
  SamMethodModel back;
  int rc = sam_method_load(&back, path, samx_cpu(), 0);
  CHECK(rc == 0, "sam_method_load: %s", samx_last_error());
  if (rc == 0) {
    CHECK(back.method == SAM_METHOD_SEQSAM && back.n_masks == M && back.sam.params.n == mm.sam.params.n,
          "loaded method %d, masks %d, %d parameters", back.method, back.n_masks, back.sam.params.n);
    int same = 1;
    for (int i = 0; i < mm.sam.params.n && same; i++) {
      SamxTensor *a = mm.sam.params.list[i], *b = samx_params_find(&back.sam.params, a->name);
      if (!b || b->numel != a->numel) {
        same = 0;
        break;
      }
      float *va = (float *)malloc(samx_nbytes(a)), *vb = (float *)malloc(samx_nbytes(b));
      samx_tensor_read_f32(a, va);
      samx_tensor_read_f32(b, vb);
      same = !memcmp(va, vb, samx_nbytes(a));
      free(va);
      free(vb);
    }
    CHECK(same, "parameters differ after the checkpoint round trip");
    sam_method_free(&back);
  }
  unlink(path);
  sam_method_free(&mm);
  printf("checkpoint round trip through sam_method_load: %s\n", rc == 0 ? "ok" : "failed");
}

int main(int argc, char **argv) {
  static Inputs in;
  uint64_t st = 42;
  samx_test_fill_uniform(in.emb, (int64_t)(sizeof in.emb / sizeof *in.emb), -1, 1, &st);
  samx_test_fill_uniform(in.w, (int64_t)(sizeof in.w / sizeof *in.w), -1, 1, &st);
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CUDA) {
    check_cuda(&in);
    check_fd(dev, &in);
    return samx_test_summary();
  }
  check_fd(samx_cpu(), &in);
  check_load();
  return samx_test_summary();
}
