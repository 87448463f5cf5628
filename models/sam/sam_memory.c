// Activation arenas for SAM inference (recording off), shared by samx segment, embed and infer. A GPU
// holds an arena's whole size from the start, so these follow what tests/models/test_sam_memory.c and
// `samx bench encoder` measure (high-water marks of the same calls, at 1024 px, fp32 / bf16):
//   encoder, batch 1: ViT-B 420 / 110 MiB, ViT-L 556 / 132, ViT-H 688 / 474 (head dim 80: its qkv and
//   attention stay f32);
//   decoder + postprocessing, multimask, ViT-B: 129 MiB (512x384 original), 136 (1024x768), 163 (2048x1536).
// Each estimate stays 25-160% above its measurement (ViT-H's bf16 encoder, sized as fp32: 85%). An
// arena that overflows stops the run naming it.
#include "../../kernels/attention_bf16.h"
#include "sam.h"

// cuBLASLt's workspace in bf16 (engine/ops_linalg.c: at most 32 MiB, less when the arena has less free).
#define LT_WORKSPACE ((int64_t)32 << 20)

// The encoder keeps one block's activations alive at a time (sam_encode). In fp32: about 10
// token-by-width and 2 token-by-MLP-width buffers per block over the window-padded tokens, of which 1.5x
// that is live at the block's peak, plus the preprocessed image, the patch embedding and the neck. In
// bf16, when the attention's head dim has the tensor-core kernel, a block's peak holds bf16 buffers
// only: the stream, the norm's output, q, k and v, the attention's output and the MLP's hidden layer;
// the patch embedding writes the bf16 stream itself.
size_t sam_encoder_arena_bytes(const SamConfig *c, int batch, SamxPrecision p) {
  int64_t g = sam_embed_grid(c), gp = c->window > 0 ? (g + c->window - 1) / c->window * c->window : g;
  int64_t tokens = gp * gp, S = c->img_size, dim = c->enc_dim, mlp = c->enc_mlp;
  int bf16 = p == SAMX_PRECISION_BF16 && samx_attention_bf16_head_dim_ok(c->enc_dim / c->enc_heads);
  int64_t block = bf16 ? tokens * (6 * dim + mlp) * 2 : tokens * (10 * dim + 2 * mlp) * 4 * 3 / 2;
  int64_t image = bf16 ? 3 * S * S * 4 * 2 : 3 * S * S * 4 * 4 + tokens * dim * 4 * 4;
  int64_t neck = g * g * c->out_chans * 4 * 8;
  return (size_t)((int64_t)batch * (block + image + neck) + LT_WORKSPACE + ((int64_t)16 << 20));
}

// Decoder and postprocessing of one prompt set for an h x w original: the two-way transformer and the
// upscaling over the g x g embedding (24 embedding-sized f32 buffers cover both), then the masks at
// S x S and at h x w (all mask tokens, three buffers at S x S and two at h x w each).
size_t sam_decoder_arena_bytes(const SamConfig *c, int h, int w) {
  int64_t g = sam_embed_grid(c), S = c->img_size, M = c->num_mask_tokens;
  int64_t decoder = 24 * g * g * c->prompt_dim * 4;
  int64_t post = M * (S * S * 3 + (int64_t)h * w * 2) * 4;
  return (size_t)(decoder + post + LT_WORKSPACE);
}
