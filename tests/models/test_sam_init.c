// Fresh SAM weights (sam_init_random) follow PyTorch's defaults for each module kind, checked on every
// parameter of the tiny SAM of the main job: biases, pos_embed and the rel-pos tables 0 (SAM's zeros),
// LayerNorm scales 1, nn.Embedding tables and the Fourier buffer N(0, 1) (point_embeddings,
// not_a_point_embed, no_mask_embed, iou_token, mask_tokens, the Gaussian matrix), and every other weight
// (nn.Linear, nn.Conv2d, nn.ConvTranspose2d) U(+-1/sqrt(fan_in)) with fan_in = numel / dim 0. A name
// rule that matched by substring once drew the decoder's cross-attention projections
// (cross_attn_token_to_image, ...) from N(0, 1): 14x too large, and the stand-in SAM pretrained from
// scratch never read its box (bench/results/2026-12-06-standin).
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "models/sam/sam.h"

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

static int is_table(const char *n) {
  static const char *const tables[] = {"positional_encoding_gaussian_matrix", "not_a_point_embed.weight",
                                       "no_mask_embed.weight", "iou_token.weight", "mask_tokens.weight"};
  for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
    if (ends_with(n, tables[i])) return 1;
  return strstr(n, "point_embeddings.") != NULL;
}

int main(void) {
  SamConfig c;
  CHECK(sam_config_preset("tiny", &c) == 0, "tiny preset: %s", samx_last_error());
  c.img_size = 64, c.patch = 8, c.enc_dim = 64, c.enc_depth = 2, c.enc_heads = 2, c.enc_mlp = 128, c.window = 4;
  memset(c.global_block, 0, sizeof c.global_block);
  c.global_block[1] = 1;
  c.prompt_dim = c.out_chans = 64, c.dec_mlp = 128, c.iou_hidden = 64;
  SamModel m;
  sam_init_random(&m, &c, samx_cpu(), SAM_TRAIN_ENCODER | SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER, 7);
  int n_zero = 0, n_one = 0, n_table = 0, n_uniform = 0, n_attn = 0;
  for (int i = 0; i < m.params.n; i++) {
    const SamxTensor *t = m.params.list[i];
    const char *n = t->name;
    float *v = (float *)malloc(sizeof(float) * (size_t)t->numel);
    samx_tensor_read_f32(t, v);
    double lo = v[0], hi = v[0], sum = 0, sq = 0;
    for (int64_t k = 0; k < t->numel; k++) {
      lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
      sum += v[k], sq += (double)v[k] * v[k];
    }
    double mean = sum / (double)t->numel, sd = sqrt(fmax(sq / (double)t->numel - mean * mean, 0));
    if (ends_with(n, ".bias") || strstr(n, "pos_embed") || strstr(n, "rel_pos")) {
      CHECK(lo == 0 && hi == 0, "%s: want zeros, got [%g, %g]", n, lo, hi);
      n_zero++;
    } else if (t->ndim == 1) {
      CHECK(lo == 1 && hi == 1, "%s: a LayerNorm scale, want ones, got [%g, %g]", n, lo, hi);
      n_one++;
    } else if (is_table(n)) {
      // N(0, 1): the sample std of 64 or more draws lies within [0.6, 1.4] (|z| > 3 of its own spread)
      CHECK(t->numel < 64 || (sd > 0.6 && sd < 1.4), "%s: want N(0, 1), sample std %g over %lld", n, sd,
            (long long)t->numel);
      n_table++;
    } else {
      double bound = 1.0 / sqrt((double)(t->numel / t->shape[0]));
      // U(-b, b): every value within the bound, and the extremes near it (numel >= 32 draws)
      CHECK(lo >= -bound && hi <= bound, "%s: want U(+-%g) (nn.Linear / Conv default), got [%g, %g]", n, bound, lo, hi);
      CHECK(t->numel < 32 || (hi > 0.5 * bound && lo < -0.5 * bound), "%s: U(+-%g) drew only [%g, %g]", n, bound, lo, hi);
      n_uniform++;
      n_attn += strstr(n, "cross_attn_") != NULL || strstr(n, "final_attn_") != NULL;
    }
    free(v);
  }
  // The tiny SAM's decoder: 2 blocks x 2 cross-attentions + the final one, 4 projections each.
  CHECK(n_attn == 20, "%d cross-attention weights drawn as nn.Linear, want 20", n_attn);
  CHECK(n_table == 9, "%d N(0, 1) tables, want 9 (gaussian, 4 point, not-a-point, no-mask, iou, mask tokens)", n_table);
  printf("%d zero, %d one, %d N(0, 1), %d U(+-1/sqrt(fan_in)) parameters (%d in the decoder's cross-attention)\n",
         n_zero, n_one, n_table, n_uniform, n_attn);
  sam_free(&m);
  return samx_test_summary();
}
