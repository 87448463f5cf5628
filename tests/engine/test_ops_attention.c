// Attention with SAM's decomposed relative-position bias: naive double reference (materialised
// logits, softmax, AV), finite differences, PyTorch (ref_ops_attention.py), CUDA vs CPU.
#include <stdlib.h>

#include "../harness.h"

typedef struct {
  int B, H, Tq, Tk, D;
  int KH, KW;  // 0, 0: no bias (the case has 3 inputs)
  float scale;
} AttnCase;

static SamxTensor *run_attention(SamxCtx *ctx, SamxTensor **in, const void *args) {
  const AttnCase *a = (const AttnCase *)args;
  return samx_attention(ctx, in[0], in[1], in[2], a->KH ? in[3] : NULL, a->KH ? in[4] : NULL, a->scale);
}

// in: q [B,H,Tq,D], k, v [B,H,Tk,D], rel_h [B,H,Tq,KH], rel_w [B,H,Tq,KW].
static void ref_attention(const double *const *in, double *out, const void *args) {
  const AttnCase *a = (const AttnCase *)args;
  const int Tq = a->Tq, Tk = a->Tk, D = a->D;
  double *logit = (double *)malloc((size_t)Tk * sizeof(double));
  for (int bh = 0; bh < a->B * a->H; bh++)
    for (int i = 0; i < Tq; i++) {
      const double *q = in[0] + ((size_t)bh * Tq + i) * D;
      double max = -INFINITY, sum = 0;
      for (int j = 0; j < Tk; j++) {
        const double *k = in[1] + ((size_t)bh * Tk + j) * D;
        double dot = 0;
        for (int c = 0; c < D; c++) dot += q[c] * k[c];
        logit[j] = a->scale * dot;
        if (a->KH) {
          int kh = j / a->KW, kw = j % a->KW;
          logit[j] += in[3][((size_t)bh * Tq + i) * a->KH + kh] + in[4][((size_t)bh * Tq + i) * a->KW + kw];
        }
        if (logit[j] > max) max = logit[j];
      }
      for (int j = 0; j < Tk; j++) sum += logit[j] = exp(logit[j] - max);
      double *o = out + ((size_t)bh * Tq + i) * D;
      for (int c = 0; c < D; c++) {
        double acc = 0;
        for (int j = 0; j < Tk; j++) acc += logit[j] / sum * in[2][((size_t)bh * Tk + j) * D + c];
        o[c] = acc;
      }
    }
  free(logit);
}

// Shapes of a case's inputs from its sizes; q and k span [-2, 2] so softmax is far from uniform.
#define QKV(a, gq, gk, gv)                                                                    \
  {SHAPE((a).B, (a).H, (a).Tq, (a).D), gq, -2, 2}, {SHAPE((a).B, (a).H, (a).Tk, (a).D), gk, -2, 2}, \
      {SHAPE((a).B, (a).H, (a).Tk, (a).D), gv, -1, 1}
#define REL(a, g) {SHAPE((a).B, (a).H, (a).Tq, (a).KH), g, -1, 1}, {SHAPE((a).B, (a).H, (a).Tq, (a).KW), g, -1, 1}

static const AttnCase nobias_d16 = {1, 2, 9, 9, 16, 0, 0, 0.25f};
static const AttnCase relpos_4x4_d32 = {2, 1, 16, 16, 32, 4, 4, 0.1767767f};
static const AttnCase relpos_4x4_d64 = {1, 2, 16, 16, 64, 4, 4, 0.125f};
static const AttnCase cross_d16 = {2, 2, 7, 64, 16, 0, 0, 0.25f};      // decoder: 7 tokens to 8x8 image
static const AttnCase relpos_5x8_d16 = {1, 3, 40, 40, 16, 5, 8, 0.25f}; // partial tiles, KW < 32
static const AttnCase relpos_1x40_d48 = {1, 1, 40, 40, 48, 1, 40, 0.144f}; // KW > 32, D not a multiple of 32
static const AttnCase cross_d128 = {1, 2, 5, 12, 128, 0, 0, 0.0884f};
static const AttnCase fwd_16x16_d64 = {1, 2, 256, 256, 64, 16, 16, 0.125f}; // many tiles, forward only
// >= 1024 keys take the CPU's long-sequence path (row blocks of threads x 256, multi-threaded GEMMs).
static const AttnCase fwd_long_32x32 = {1, 2, 1024, 1024, 16, 32, 32, 0.25f};
static const AttnCase fwd_long_cross = {2, 1, 600, 1100, 16, 0, 0, 0.25f};  // partial row blocks, no bias
// The short-key path's small GEMM: a SAM window (14 x 14, D = 64), and several row blocks with a
// partial last one, key count and D not multiples of its 16 columns, rows not multiples of its 6.
static const AttnCase fwd_window_14x14 = {2, 2, 196, 196, 64, 14, 14, 0.125f};
static const AttnCase fwd_short_cross = {1, 2, 600, 200, 20, 0, 0, 0.2236f};
// Several 256-key blocks of the CPU forward, with bias segments (KW = 30 and 20) straddling block
// edges: forward only at 600 keys, and with gradients (they read the forward's log-sum-exp) at 260.
static const AttnCase fwd_blocks_20x30 = {1, 2, 600, 600, 16, 20, 30, 0.25f};
static const AttnCase relpos_blocks_13x20 = {1, 1, 6, 260, 4, 13, 20, 0.5f};

int main(int argc, char **argv) {
  // Built here: input shapes come from the AttnCase sizes, which are not constant expressions in C.
  const OpCase cases[] = {
    {.name = "attn_nobias_d16", .n_in = 3, .in = {QKV(nobias_d16, 1, 1, 1)}, .run = run_attention,
     .ref = ref_attention, .args = &nobias_d16, .torch = 1},
    {.name = "attn_relpos_4x4_d32", .n_in = 5, .in = {QKV(relpos_4x4_d32, 1, 1, 1), REL(relpos_4x4_d32, 1)},
     .run = run_attention, .ref = ref_attention, .args = &relpos_4x4_d32, .torch = 1},
    // v and rel_w frozen: their gradients must not be written.
    {.name = "attn_relpos_4x4_d64", .n_in = 5,
     .in = {QKV(relpos_4x4_d64, 1, 1, 0), {SHAPE(1, 2, 16, 4), 1, -1, 1}, {SHAPE(1, 2, 16, 4), 0, -1, 1}},
     .run = run_attention, .ref = ref_attention, .args = &relpos_4x4_d64, .torch = 1},
    {.name = "attn_cross_d16", .n_in = 3, .in = {QKV(cross_d16, 1, 1, 1)}, .run = run_attention,
     .ref = ref_attention, .args = &cross_d16, .torch = 1},
    // Only the bias tables and q need gradients: the dk/dv kernel is skipped.
    {.name = "attn_relpos_5x8_d16", .n_in = 5, .in = {QKV(relpos_5x8_d16, 1, 0, 0), REL(relpos_5x8_d16, 1)},
     .run = run_attention, .ref = ref_attention, .args = &relpos_5x8_d16, .torch = 1},
    {.name = "attn_relpos_1x40_d48", .n_in = 5, .in = {QKV(relpos_1x40_d48, 1, 1, 1), REL(relpos_1x40_d48, 1)},
     .run = run_attention, .ref = ref_attention, .args = &relpos_1x40_d48, .torch = 1},
    {.name = "attn_cross_d128", .n_in = 3, .in = {QKV(cross_d128, 1, 1, 1)}, .run = run_attention,
     .ref = ref_attention, .args = &cross_d128, .torch = 1},
    {.name = "attn_fwd_16x16_d64", .n_in = 5, .in = {QKV(fwd_16x16_d64, 0, 0, 0), REL(fwd_16x16_d64, 0)},
     .run = run_attention, .ref = ref_attention, .args = &fwd_16x16_d64},
    {.name = "attn_fwd_long_32x32", .n_in = 5, .in = {QKV(fwd_long_32x32, 0, 0, 0), REL(fwd_long_32x32, 0)},
     .run = run_attention, .ref = ref_attention, .args = &fwd_long_32x32},
    {.name = "attn_fwd_long_cross", .n_in = 3, .in = {QKV(fwd_long_cross, 0, 0, 0)}, .run = run_attention,
     .ref = ref_attention, .args = &fwd_long_cross},
    {.name = "attn_fwd_window_14x14", .n_in = 5, .in = {QKV(fwd_window_14x14, 0, 0, 0), REL(fwd_window_14x14, 0)},
     .run = run_attention, .ref = ref_attention, .args = &fwd_window_14x14},
    {.name = "attn_fwd_blocks_20x30", .n_in = 5, .in = {QKV(fwd_blocks_20x30, 0, 0, 0), REL(fwd_blocks_20x30, 0)},
     .run = run_attention, .ref = ref_attention, .args = &fwd_blocks_20x30},
    {.name = "attn_relpos_blocks_13x20", .n_in = 5,
     .in = {QKV(relpos_blocks_13x20, 1, 1, 1), REL(relpos_blocks_13x20, 1)}, .run = run_attention,
     .ref = ref_attention, .args = &relpos_blocks_13x20},
    {.name = "attn_fwd_short_cross", .n_in = 3, .in = {QKV(fwd_short_cross, 0, 0, 0)}, .run = run_attention,
     .ref = ref_attention, .args = &fwd_short_cross},
  };
  return samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
}
