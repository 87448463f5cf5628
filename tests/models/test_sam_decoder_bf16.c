// SAM's prompt encoder and mask decoder in bf16 precision at the decoder's real widths (256 channels,
// 8 heads: attention head dims 32 in the token self-attention and 16 in the cross-attentions, the
// tensor-core kernel's), on a 16x16 image embedding, against fp32. In bf16 inference the two-way
// transformer's token and image streams, norms, positional-encoding adds and MLP are bf16, its q/k/v
// projections write bf16, its attentions run on the bf16 kernel and the residual adds are in the GEMMs;
// every linear layer and transposed convolution is a bf16 GEMM, and the upscaling between the two
// convolutions (LayerNorm2d, GELU) and the mask product's wide operand are bf16.
//  cpu:  the CPU's bf16 reference mode against fp32: low-res logits within LOGIT_REL of the largest
//        fp32 logit, masks (logits > 0) with IoU >= IOU_MIN, IoU predictions within IOU_PRED_TOL.
//  cuda: the same against fp32 on cuda:0, and against the CPU's bf16 reference within KERNEL_REL of the
//        largest logit: the order of the fp32 sums differs, and the tensor-core attention also rounds
//        its probabilities to bf16 before P V, which the CPU's does not (test_ops_attention_bf16: 6e-3
//        of each attention's output); measured 0.72%.
// bf16 rounds each operand by up to 2^-9; the decoder has ~10-20 rounding stages between the embedding
// and the logits, so ~1% of the logits' scale is expected (measured 0.77% on the CPU, 0.79% on CUDA;
// mask IoU 0.9937 / 0.9940; 0.63% / 0.70% while the upscaling was f32, 0.49% / 0.42% while the streams
// were f32); 3% leaves margin and still catches
// a wrong kernel (errors of the order of the logits themselves).
// Both devices: fp32 inference (the hand-backs, the in-place steps, the upscaling reading the stream
// channels-last) against the recorded forward of training, bit for bit, with 3 prompts.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "engine/precision.h"
#include "models/sam/sam.h"

#define LOGIT_REL 0.03
#define IOU_MIN 0.98
#define IOU_PRED_TOL 0.01
#define KERNEL_REL 0.015

typedef struct {
  float *low, *iou;
  int64_t n_low, n_iou;
} Decoded;

// P prompts (a box and a point, shifted by 8 px each), multimask; recording: the training path's forward
// (no hand-backs, nothing in place, the upscaling's recorded ops) instead of inference's.
static Decoded decode(SamModel *m, SamxPrecision p, const float *emb_host, int P, int recording) {
  const SamConfig *c = &m->cfg;
  int g = sam_embed_grid(c);
  SamxCtx ctx;
  samx_ctx_init(&ctx, m->device, (size_t)256 << 20, 16384);
  samx_ctx_set_recording(&ctx, recording);
  ctx.precision = p;
  SamxTensor *emb = samx_from_host(&ctx, SHAPE(1, c->prompt_dim, g, g), emb_host);
  SamPrompt pr[4];
  memset(pr, 0, sizeof pr);
  for (int i = 0; i < P; i++) {
    pr[i].has_box = 1;
    float box[4] = {40 + 8 * i, 60, 180, 200 - 8 * i};
    memcpy(pr[i].box, box, sizeof box);
    pr[i].n_points = 1, pr[i].points[0][0] = 100 + 8 * i, pr[i].points[0][1] = 120, pr[i].labels[0] = 1;
  }
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(&ctx, m, pr, P, NULL, &sparse, &dense);
  sam_decode(&ctx, m, emb, NULL, sparse, dense, 1, &low, &iou);
  Decoded d = {malloc(sizeof(float) * low->numel), malloc(sizeof(float) * iou->numel), low->numel, iou->numel};
  samx_tensor_read_f32(low, d.low);
  samx_tensor_read_f32(iou, d.iou);
  samx_ctx_free(&ctx);
  return d;
}

// fp32 inference (hand-backs, in-place norms, adds and GELU, the channels-last upscaling) gives the
// recorded forward's values bit for bit, with 3 prompts (every upscaled tensor over 32,768 elements).
static void inference_is_forward(SamModel *m, const float *emb, const char *dev) {
  Decoded inf = decode(m, SAMX_PRECISION_FP32, emb, 3, 0), fwd = decode(m, SAMX_PRECISION_FP32, emb, 3, 1);
  int same = inf.n_low == fwd.n_low && !memcmp(inf.low, fwd.low, sizeof(float) * (size_t)inf.n_low) &&
             !memcmp(inf.iou, fwd.iou, sizeof(float) * (size_t)inf.n_iou);
  CHECK(same, "%s fp32: inference's logits or IoU predictions differ from the recorded forward's", dev);
  if (same) printf("%s fp32, 3 prompts: inference gives the recorded forward's %lld logits bit for bit\n", dev,
                  (long long)inf.n_low);
  free(inf.low), free(inf.iou), free(fwd.low), free(fwd.iou);
}

static void compare(const char *what, const Decoded *got, const Decoded *want, double rel, int masks) {
  double scale = 0, err = 0, ierr = 0;
  int64_t inter = 0, uni = 0;
  for (int64_t i = 0; i < want->n_low; i++) {
    scale = fmax(scale, fabs(want->low[i]));
    err = fmax(err, fabs((double)got->low[i] - want->low[i]));
    int a = got->low[i] > 0, b = want->low[i] > 0;
    inter += a && b, uni += a || b;
  }
  for (int64_t i = 0; i < want->n_iou; i++) ierr = fmax(ierr, fabs((double)got->iou[i] - want->iou[i]));
  double iou = uni ? (double)inter / uni : 1.0;
  CHECK(err <= rel * scale, "%s: low-res logits differ by %.3g (%.2f%% of max |logit| %.3g, tolerance %.2g%%)", what,
        err, 100 * err / scale, scale, 100 * rel);
  CHECK(ierr <= IOU_PRED_TOL, "%s: IoU predictions differ by %.3g", what, ierr);
  if (masks) CHECK(iou >= IOU_MIN, "%s: mask IoU %.4f < %.2f", what, iou, IOU_MIN);
  CHECK(err > 0, "%s: logits identical: the bf16 path did not run", what);
  printf("%s: logits within %.3g (%.2f%% of max |logit| %.3g), mask IoU %.4f, IoU predictions within %.3g\n", what, err,
         100 * err / scale, scale, iou, ierr);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.img_size = 256, c.enc_depth = 1;  // 16x16 embedding; the encoder is not run
  c.out_chans = c.prompt_dim = 256, c.dec_mlp = 2048, c.iou_hidden = 256;  // SAM's decoder
  int g = sam_embed_grid(&c);
  float *emb = malloc(sizeof(float) * 256 * g * g);
  uint64_t s = 3;
  samx_test_fill_uniform(emb, 256 * g * g, -1.0f, 1.0f, &s);
  SamModel cpu_m;
  sam_init_random(&cpu_m, &c, samx_cpu(), 0, 9);
  Decoded f32 = decode(&cpu_m, SAMX_PRECISION_FP32, emb, 1, 0), ref = decode(&cpu_m, SAMX_PRECISION_BF16, emb, 1, 0);
  if (dev.type == SAMX_CPU) {
    compare("cpu bf16 reference vs fp32", &ref, &f32, LOGIT_REL, 1);
    inference_is_forward(&cpu_m, emb, "cpu");
  } else {
    SamModel m;
    sam_init_random(&m, &c, dev, 0, 9);
    Decoded got = decode(&m, SAMX_PRECISION_BF16, emb, 1, 0), got32 = decode(&m, SAMX_PRECISION_FP32, emb, 1, 0);
    compare("cuda bf16 vs cuda fp32", &got, &got32, LOGIT_REL, 1);
    compare("cuda bf16 vs cpu bf16 reference", &got, &ref, KERNEL_REL, 0);
    free(got.low), free(got.iou), free(got32.low), free(got32.iou);
    inference_is_forward(&m, emb, "cuda");
    sam_free(&m);
  }
  free(f32.low), free(f32.iou), free(ref.low), free(ref.iou), free(emb);
  sam_free(&cpu_m);
  return samx_test_summary();
}
