// Segment Anything (facebookresearch/segment-anything) built from samx ops.
// defines: SamConfig (architecture, read off checkpoint shapes), SamModel (parameters under the
// original key names), sam_load, sam_encode, sam_prompt_encode, sam_decode.
// Every block carries a `// ref:` to the segment_anything function it mirrors.
#ifndef SAMX_SAM_H
#define SAMX_SAM_H

#include "engine/samx.h"

#define SAM_MAX_DEPTH 64
#define SAM_MAX_POINTS 64

typedef struct {
  // image encoder
  int img_size, patch, enc_dim, enc_depth, enc_heads, enc_mlp, window, out_chans;
  int global_block[SAM_MAX_DEPTH];  // 1: global attention, 0: windowed
  int qkv_bias, rel_pos;
  // prompt encoder
  int prompt_dim, mask_in_chans;
  // mask decoder
  int dec_depth, dec_heads, dec_mlp, attn_downsample, num_mask_tokens, iou_depth, iou_hidden;
  float ln_eps;  // encoder LayerNorms (1e-6); the decoder's use torch's default 1e-5
} SamConfig;

typedef struct {
  SamConfig cfg;
  SamxParams params;
  SamxDevice device;
  // Host cache of the dense positional encoding [C, g, g] (a function of the Gaussian matrix alone,
  // but 4096 x 128 sin/cos per decode call) and a copy of the matrix it was computed from.
  float *dense_pe, *dense_pe_gauss;
  // LoRA adapters on the q and v slices of block i's qkv (P²SAM): {A_q, B_q, A_v, B_v}, or NULL
  // (plain qkv). Set by the method that owns them (models/p2sam); sam_encode uses samx_lora_qkv.
  SamxTensor *lora[SAM_MAX_DEPTH][4];
} SamModel;

// Which parts get gradients (SeqSAM/MCL: decoder and prompt encoder; full fine-tuning: all).
enum { SAM_TRAIN_ENCODER = 1, SAM_TRAIN_PROMPT = 2, SAM_TRAIN_DECODER = 4 };

int sam_embed_grid(const SamConfig *c);  // tokens per side of the image embedding (img_size / patch)

// Loads a checkpoint: torch.save .pth (original keys, optionally nested under model/state_dict),
// safetensors with original or Hugging Face SamModel keys, or samx's own safetensors. The
// architecture is read off the shapes; cfg_override (may be NULL) sets what shapes cannot tell
// (dec_heads). Missing, unexpected or mis-shaped tensors are errors naming them.
int sam_load(SamModel *m, const char *path, SamxDevice device, int trainable, const SamConfig *cfg_override);
void sam_free(SamModel *m);
// The same from tensors already in memory under SAM's original key names (path names them in
// messages): the authors' P²SAM files hold SAM inside larger dicts.
int sam_load_entries(SamModel *m, const char *path, const SamxSTEntry *entries, int n, SamxDevice device, int trainable);
// Architecture presets: "vit_b", "vit_l", "vit_h" (the official SAM sizes) and "tiny" (the test
// model of tests/data/sam_tiny). Returns -1 for an unknown name.
int sam_config_preset(const char *name, SamConfig *c);
// A model with fresh weights: PyTorch's default initialisation (uniform +-1/sqrt(fan_in) for
// linear and conv weights, zero biases, unit norms, N(0,1) embeddings and Fourier matrix, zero
// positional tables), deterministic by seed.
void sam_init_random(SamModel *m, const SamConfig *c, SamxDevice device, int trainable, uint64_t seed);
// Writes samx's safetensors format with the config as JSON metadata.
int sam_save(const SamModel *m, const char *path);
// The config as JSON (for checkpoint metadata); caller frees.
char *sam_config_json(const SamConfig *c);

// ref: ImageEncoderViT.forward. img [B, 3, S, S] normalised and padded -> [B, out_chans, g, g].
SamxTensor *sam_encode(SamxCtx *ctx, SamModel *m, SamxTensor *img);

// One prompt set, coordinates in the encoder's input frame (already scaled to img_size).
typedef struct {
  int n_points;
  float points[SAM_MAX_POINTS][2];  // x, y
  int labels[SAM_MAX_POINTS];       // 1 foreground, 0 background, -1 padding
  int has_box;
  float box[4];                     // x0, y0, x1, y1
} SamPrompt;

// ref: PromptEncoder.forward for P prompt sets that share their point count (pad with label -1).
// mask_input: [P, 1, 4g, 4g] logits or NULL. Returns sparse [P, Ns, C] and dense [P or 1, C, g, g].
void sam_prompt_encode(SamxCtx *ctx, SamModel *m, const SamPrompt *prompts, int P, SamxTensor *mask_input,
                       SamxTensor **sparse, SamxTensor **dense);
// The dense positional encoding [1, C, g, g] (ref: PromptEncoder.get_dense_pe); no gradient.
SamxTensor *sam_dense_pe(SamxCtx *ctx, SamModel *m);

// ref: MaskDecoder.forward. image_emb [B, C, g, g]; prompt p decodes against image img_index[p]
// (NULL: image p, or image 0 when B == 1). Returns low-res logits [P, M, 4g, 4g] and IoU
// predictions [P, M] with M = 1 (single) or num_mask_tokens - 1 (multimask). multimask = SAM_MASKS_ALL:
// every mask token, single-mask token first (M = num_mask_tokens; SAM's training, which supervises
// both outputs from one pass).
enum { SAM_MASKS_SINGLE = 0, SAM_MASKS_MULTI = 1, SAM_MASKS_ALL = 2 };
void sam_decode(SamxCtx *ctx, SamModel *m, SamxTensor *image_emb, const int *img_index, SamxTensor *sparse,
                SamxTensor *dense, int multimask, SamxTensor **low_res, SamxTensor **iou);

// The decoder without its heads, for decoders with other output tokens (models/fewshot): the
// two-way transformer of tokens [P, T, C] (their own positional encoding, as SAM's sparse prompts)
// against image_emb (+ dense when not NULL; per prompt as in sam_decode) with the image PE, the final
// token-to-image attention, and the upscaling. queries [P, T, C]; up [P, C/8, 4g, 4g].
void sam_decode_core(SamxCtx *ctx, SamModel *m, SamxTensor *image_emb, const int *img_index, SamxTensor *tokens,
                     SamxTensor *dense, SamxTensor **queries, SamxTensor **up);
// ref: MLP.forward (mask_decoder.py) with the linear layers prefix.layers.{0..layers-1}.
SamxTensor *sam_decoder_mlp(SamxCtx *ctx, const SamModel *m, SamxTensor *x, const char *prefix, int layers);
// ref: predict_masks' hypernetworks: masks [P, n, 4g, 4g] from query tokens first..first+n-1, token i
// through the 3-layer MLP prefix.i, dotted with the upscaled image features up [P, C/8, 4g, 4g].
SamxTensor *sam_decoder_masks(SamxCtx *ctx, const SamModel *m, SamxTensor *queries, int first, int n,
                              const char *prefix, SamxTensor *up);

// Activation arena bytes for inference (recording off): the encoder on `batch` images in precision p
// (the context's: samx_precision_on(device)), and the decoder plus postprocessing of one prompt set
// for an h x w original (sam_memory.c).
size_t sam_encoder_arena_bytes(const SamConfig *c, int batch, SamxPrecision p);
size_t sam_decoder_arena_bytes(const SamConfig *c, int h, int w);

// FLOPs (2 x MACs) of one image through the encoder, and of one prompt set through the decoder.
double sam_encoder_flops(const SamConfig *c);
double sam_decoder_flops(const SamConfig *c, int sparse_tokens);

#endif
