// Few-shot decoders (the SAM few-shot paper: shared/seeds/sam-fewshot.txt; method-notes §6;
// contracts §7): SAM's mask decoder prompted by target embeddings instead of points and boxes.
//
// Target embeddings: for label l and shot i, the masked average of the shot's cached image embedding
// over the label's region on the embedding grid (samx_fewshot_masked_mean). The ground truth is taken
// to the grid by area averaging: each grid cell gets the fraction of the label's pixels among the
// pixels whose centres fall into it in the encoder's input frame (resize to img_size, longest side,
// as SAM's preprocessing; cells in the padding get none). The region is the cells with a fraction of
// at least 0.5 (a majority vote, the natural reading of "downsampled to 64 x 64"); where a label
// vanishes at that resolution (no cell reaches 0.5: a thin vessel on an 8 x 8 grid), the fractions
// themselves are the weights, so the label still gets the coverage-weighted average of the cells it
// touches. A label absent from a shot gives no token for that shot.
//
// Decoder: SAM's two-way transformer with the prompt encoder removed. Tokens are
// [2L output tokens (foreground, background per label; new, He-initialised), T target embeddings],
// the target embeddings after the output tokens in the place of SAM's sparse prompts; the image
// positional encoding is kept. SAM's IoU token, mask tokens and IoU head are unused. Each output
// token has its own hypernetwork MLP, initialised from SAM's first mask token's (pretrained) MLP.
// Dense prompt: SAM's no_mask_embed is still added to the image embedding (frozen): it is not a
// prompt but the constant SAM's decoder saw on every image prompted without a mask, so dropping it
// would shift every key the pretrained decoder attends to; with it the decoder starts in distribution.
//
// Output: per label the two channels at 4g x 4g; hypothesis l is fg_l - bg_l (the label's mask is
// where foreground beats background, i.e. > 0), which also carries both losses exactly:
//   ce:   two-class softmax cross-entropy over (fg, bg) = BCE with logits of fg - bg;
//   dice: the mean of the soft Dice of the foreground channel, softmax(fg, bg)_fg = sigmoid(fg - bg),
//         against the label and of the background channel against its complement.
//
// Parameters (prefix "fewshot."): output_tokens.weight [2L, C], hypernetworks_mlps.J.layers.K.* (J <
// 2L), and, frozen, target_embeddings [T, C], target_labels [T] (the label index of each token),
// label_ids [L] (classes of /labels; 0: /masks[:, 0]) and shot_rows [S] (dataset rows of the shots):
// the checkpoint is self-contained and inference needs no shots.
#ifndef SAMX_MODELS_FEWSHOT_H
#define SAMX_MODELS_FEWSHOT_H

#include <stdint.h>

#include "models/method.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int n_labels;  // L
  int n_tokens;  // T target embeddings
  int n_shots;   // S
} SamxFewshotShape;

// The shape the next sam_method_init of the fewshot method declares (the interface's declare sees
// only SAM); sam_method_load sets it from the checkpoint (samx_method_fewshot.prepare_load).
void samx_fewshot_set_shape(SamxFewshotShape s);
SamxFewshotShape samx_fewshot_shape(const SamMethodModel *mm);

// Region weights of a 0/1 mask (h x w, original pixels) on the g x g grid of an encoder with input
// size img_size (area average, majority, fallback to fractions; see above). Returns 1 when some cell
// is a majority, 0 when the fractions were used, -1 when the mask is empty (w all zero).
int samx_fewshot_region_weights(const uint8_t *mask, int64_t h, int64_t w, int64_t img_size, int64_t g, float *weights);

// Fills the frozen tensors: target embeddings from the shots' embeddings emb [S, C, g, g] (device
// tensor) and region weights wts [S, L, g, g] (host), dropping (shot, label) pairs whose weights are
// all zero; the order is label-major (all shots of label 0 first). n_tokens of the shape must equal
// the count of non-empty pairs. label_ids [L], shot_rows [S].
void samx_fewshot_set_targets(SamMethodModel *mm, SamxTensor *emb, const float *wts, const int *label_ids,
                              const int64_t *shot_rows);

// The decoder: low-res logits [P, 2L, 4g, 4g] (channel 2l foreground, 2l + 1 background of label l)
// for P images of image_emb (img_index as sam_decode).
SamxTensor *samx_fewshot_decode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index, int P);

enum { SAMX_FEWSHOT_LOSS_CE = 0, SAMX_FEWSHOT_LOSS_DICE = 1 };
// Loss over L hypotheses outs[l] [P, 1, h, w] (fg - bg) and host targets [P, L, h * w] (0/1):
// the mean over labels of the CE or Dice above (Dice per image, MONAI's squared form, eps).
SamxTensor *samx_fewshot_loss(SamxCtx *ctx, SamxTensor *const *outs, int L, const float *targets, int P, int kind,
                              float eps);

#ifdef __cplusplus
}
#endif
#endif
