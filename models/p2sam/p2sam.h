// P²SAM (method-notes §4; yu2hi13/P2SAM): SAM at a small input size (128) with LoRA r = 4 on q and v
// of every encoder block, no point or box prompt, 9 mask tokens whose 8 multimask outputs are
// assembled with learned affine weights, and a prompt-generation network (a prior encoder giving
// mu and log sigma, z = mu + sigma eps, Fcomb over [no_mask_embed, tiled z]) whose output replaces
// the dense prompt.
//
// Parameters (after SAM's, names as the authors' files have them, under "p2sam."):
//   p2sam.w_a_%03d [r, D], p2sam.w_b_%03d [D, r]   LoRA; index 2i: block i's q, 2i + 1: its v
//   p2sam.prior_dense.encoder.layers.N.{weight,bias}  the prior encoder's 12 3x3 convolutions
//   p2sam.prior_dense.conv_layer.{weight,bias}        the 1x1 head 192 -> 2 x latent
//   p2sam.fcomb.layers.{0,2,4}.{weight,bias}, p2sam.fcomb.last_layer.{weight,bias}
//   p2sam.mask_weights.weights [7, 1]                 the assembling weights w1..w7 (w0 = 1 - sum)
// Training stages (sam_method_init's train_params): P2SAM_STAGE1 trains LoRA and the assembling
// weights (SAM's prompt encoder and decoder by SAM's own flags), P2SAM_STAGE2 the prior network and
// Fcomb; 0 trains nothing of P²SAM's own.
#ifndef SAMX_P2SAM_H
#define SAMX_P2SAM_H

#include "models/method.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { P2SAM_STAGE1 = 1, P2SAM_STAGE2 = 2 };
#define P2SAM_LATENT 256
#define P2SAM_RANK 4
#define P2SAM_MASKS 8

// The P²SAM SAM from a base SAM (any input size): input size img_size, pos_embed resized bilinearly
// (align_corners = False) and the global blocks' relative-position tables linearly (half-pixel) where
// the sizes differ, exactly as the authors' load_from; 9 mask tokens with fresh mask tokens,
// hypernetwork MLPs and IoU head (PyTorch's default init from seed). base is left as it was.
// Returns 0, or -1 (samx_last_error) when img_size is not a multiple of the patch size.
int p2sam_sam_from_base(SamModel *out, const SamModel *base, int img_size, int trainable, uint64_t seed);

// The pieces of the forward pass (ref: P2SAM.forward, p2sam.py:127-156).
// prior: pixels [P, 1, S, S] -> mu, log_sigma [P, latent].
void p2sam_prior(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *pixels, SamxTensor **mu, SamxTensor **log_sigma);
// Fcomb over [no_mask_embed broadcast, z tiled] -> the dense prompt [P, C, g, g]; z NULL: stage 1's
// dense prompt (no_mask_embed broadcast to P).
SamxTensor *p2sam_dense_prompt(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *z, int P);
// The decoder without point or box: low-res logits [P, 8, 4g, 4g] (tokens 1..8).
SamxTensor *p2sam_decode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                         SamxTensor *dense);
// masks [P, 8, S, S] (bilinear 4g -> S), the weighted maps w_j masks_j and the assembled logit
// [P, 1, S, S] = sum_j w_j masks_j. masks and weighted may be NULL.
void p2sam_assemble(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *low_res, SamxTensor **masks, SamxTensor **weighted,
                    SamxTensor **assembled);

// The training loss of both stages (method-notes §4; train_first_stage.py:149-157,
// train_second_stage.py:95-107, utils.py:228-269): target host [P, S * S] 0/1 (one annotator),
//   ce    = CrossEntropyLoss over the 8 weighted maps as class logits (mean over P S S),
//   dice  = sum over images and rows of 1 - (2 sum_x p t + 1) / (sum_x p + sum_x t + 1), / 5,
//   focal = sum over pixels of the sigmoid focal loss (alpha 0.25, gamma 2) of the assembled logit, / 5,
//   reg   = sum of the unsquared norms of every prior-network and Fcomb tensor but last_layer's
//           (computed when reg_weight > 0),
//   total = ce + dice + focal + reg_weight reg.
typedef struct {
  SamxTensor *ce, *dice, *focal, *reg, *total;
} P2samLoss;
void p2sam_loss(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *weighted, SamxTensor *assembled, const float *target,
                float reg_weight, P2samLoss *out);
// The assembling weights [8] from the parameter v = p2sam.mask_weights.weights [7, 1]:
//   P2SAM_ASSEMBLE_AFFINE (mm->variant 0, the authors'): w = [1 - sum v, v1..v7]; they sum to 1 but may
//     be negative (train_first_stage.py:145); v starts at 1/8;
//   P2SAM_ASSEMBLE_CONVEX: w = softmax([0, v1..v7]), the 8 logits with the first fixed at 0 (the same
//     7 numbers, so checkpoints keep their layout; every w in (0, 1), summing to 1); v starts at 0 (w = 1/8).
enum { P2SAM_ASSEMBLE_AFFINE = 0, P2SAM_ASSEMBLE_CONVEX = 1 };
SamxTensor *p2sam_weights(SamxCtx *ctx, SamMethodModel *mm);
// Switches mm's assembling (a P2SAM_ASSEMBLE_*) and resets the weights to that parameterisation's
// start (every w = 1/8).
void p2sam_set_assemble(SamMethodModel *mm, int assemble);

// Encoder input from the grey pixels: [P, 1, S, S] replicated to 3 channels (mean 0, std 1).
SamxTensor *p2sam_encoder_input(SamxCtx *ctx, SamxTensor *pixels);

// Snapshots of the prompt-generation network (stage 2 saves one every 10 epochs; the evaluation
// ensembles 4): the values of every prior_dense / fcomb parameter of each, on the host.
typedef struct P2samSnapshotsTag {
  int n, n_params;
  char names[16][64];
  SamxTensor **dst;  // [n_params] the model's parameters
  float **values;    // [n][n_params] host copies
} P2samSnapshots;
// names[i] "epoch_N": from a final_weights.pth (its "epoch_N/..." entries) or, for a samx P²SAM
// checkpoint, from checkpoints/snapshot_epoch_N.safetensors beside it. Returns 0, or -1 naming the
// missing snapshot and the ones there are.
int p2sam_snapshots_load(P2samSnapshots *s, SamMethodModel *mm, const char *ckpt, const char *const *names, int n);
void p2sam_snapshot_apply(const P2samSnapshots *s, int k);
void p2sam_snapshots_free(P2samSnapshots *s);

// The optimiser of a stage (train_first_stage.py:113-116, train_second_stage.py:75): Adam without
// weight decay over everything trainable; in stage 1 the assembling weights form their own group,
// AdamW (decoupled decay weights_decay, eps weights_eps) at weights_lr_mult times the step's lr.
void p2sam_optim_init(SamxOptim *o, SamMethodModel *mm, int stage, double weights_lr_mult, double weights_eps,
                      double weights_decay);

#ifdef __cplusplus
}
#endif
#endif

// ---- the authors' checkpoints (contracts §6; method-notes §4 "Checkpoints") ----
// Loads a P²SAM model for inference from the files the authors' code writes:
//   ckpt = final_weights.pth (stage 2): the snapshot named `snapshot` ("epoch_N"; NULL: the first in
//          the file's order) holds the whole SAM at its input size, LoRA, prior network and Fcomb;
//   ckpt = *_model_epoch_N.pth (stage 1): LoRA w_a_*/w_b_*, prompt_encoder.*, mask_decoder.*; the
//          image encoder comes from `base` (any SAM checkpoint sam_load reads) resized to img_size
//          (0: 128); the prior network and Fcomb keep their fresh init (unused in stage 1).
// mask_weights: *_mask_weights_epoch_N.pt, a bare [8, 1] tensor (NULL: 1/8 each). *stage1 is set
// to 1 for a stage-1 file. train: 0 (inference), P2SAM_STAGE1 or P2SAM_STAGE2 (what gets gradients).
// Returns 0, or -1 with samx_last_error naming the file and entry.
int p2sam_load_authors(SamMethodModel *mm, const char *ckpt, const char *base, const char *mask_weights,
                       const char *snapshot, int img_size, SamxDevice device, int train, int *stage1);
// An integer key of the [p2sam] section of the config a `samx train` P2SAM checkpoint records ("stage":
// 1 has no prompt-generation network, its dense prompt is no_mask_embed; "crop"); 0 when absent.
int64_t p2sam_samx_config_key(const char *path, const char *key);
// The snapshot names of a final_weights.pth in the file's order (caller frees the array and names).
int p2sam_snapshots(const char *ckpt, char ***names, int *n);
