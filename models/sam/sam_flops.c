// Work done by SAM's encoder and decoder, counted from the architecture (1 FLOP = 1/2 MAC), as in
// /work/shared/docs/perf-anchors.md §1: ViT-B at 1024^2 is ~972 GFLOP, the decoder ~3.6 GFLOP per prompt.
#include "sam.h"

double sam_encoder_flops(const SamConfig *c) {
  double g = sam_embed_grid(c), D = c->enc_dim, T = g * g;
  double mac = T * D * 3.0 * c->patch * c->patch;  // patch embedding
  for (int i = 0; i < c->enc_depth; i++) {
    int global = c->global_block[i] || c->window <= 0;
    double side = global ? g : c->window;
    double windows = global ? 1 : ((int)g + c->window - 1) / c->window * (double)(((int)g + c->window - 1) / c->window);
    double tp = windows * side * side;                     // tokens after zero padding
    mac += tp * D * 3 * D + tp * D * D;                    // qkv, proj
    mac += 2 * windows * side * side * side * side * D;    // q k^T and p v over all heads
    if (c->rel_pos) mac += tp * 2 * side * D;              // rel_h, rel_w
    mac += 2 * T * D * c->enc_mlp;                         // MLP
  }
  mac += T * D * c->out_chans + T * (double)c->out_chans * c->out_chans * 9;  // neck
  return 2 * mac;
}

double sam_decoder_flops(const SamConfig *c, int sparse_tokens) {
  double g = sam_embed_grid(c), N = g * g, C = c->prompt_dim, Ci = C / c->attn_downsample;
  double T = 1 + c->num_mask_tokens + sparse_tokens;
  double t2i = T * C * Ci + 2 * N * C * Ci + 2 * T * N * Ci + T * Ci * C;  // token -> image attention
  double i2t = N * C * Ci + 2 * T * C * Ci + 2 * N * T * Ci + N * Ci * C;  // image -> token attention
  double self = 4 * T * C * C + 2 * T * T * C;
  double mac = c->dec_depth * (self + t2i + 2 * T * C * c->dec_mlp + i2t) + t2i;
  mac += N * C * (C / 4) * 4 + 4 * N * (C / 4) * (C / 8) * 4;            // two transposed convs
  mac += c->num_mask_tokens * (2 * C * C + C * C / 8 + (C / 8) * 16 * N);  // hypernetworks and masks
  return 2 * mac;
}
