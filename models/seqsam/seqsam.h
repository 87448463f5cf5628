// SeqSAM (Towle et al., ISBI 2025) and the two baselines trained beside it, on top of SAM.
// defines: SamMethodModel (SAM plus the method's own parameters), the SeqSAM recurrent cell and
// rollout, hypotheses of any method, and loading the checkpoints `samx train` writes.
//
// SeqSAM's cell (method-notes §2): at step t the prompt encoder embeds the previous step's low-res
// logits (nothing at t = 1: the broadcast no_mask_embed) into d_t [P, C, g, g]; with
// x = concat(d_t, h_{t-1}) over channels (h_0 = 0), the dense prompt is conv_out(x) and the next
// hidden state conv_hidden(x), both 3x3 convolutions 2C -> C with bias and no nonlinearity. The
// decoder runs single-mask with the same box every step. Parameters live in the model's store as
// "seqsam.cell.conv_out.{weight,bias}" and "seqsam.cell.conv_hidden.{weight,bias}".
#ifndef SAMX_SEQSAM_H
#define SAMX_SEQSAM_H

#include "models/sam/sam.h"

// The order of train/config.h's [method] name choices.
typedef enum { SAM_METHOD_SAMFT = 0, SAM_METHOD_MCL = 1, SAM_METHOD_SEQSAM = 2 } SamMethod;
const char *sam_method_name(SamMethod m);       // "sam-ft", "mcl", "seqsam"
int sam_method_parse(const char *name, SamMethod *out);  // 0, or -1 (samx_last_error)

typedef struct {
  SamModel sam;      // its parameter store also holds the method's parameters (the cell for seqsam)
  SamMethod method;
  int n_masks;       // hypotheses per prompt by default: M (seqsam), 3 (mcl), 1 (sam-ft)
} SamMethodModel;

// Takes over *sam (left empty) and adds the method's parameters: for seqsam the cell, weights
// N(0, init_std) (HF's init of new modules: 0.02) drawn from seed, zero biases, trainable when
// train_cell. Parameter values of sam are kept.
void sam_method_init(SamMethodModel *mm, SamModel *sam, SamMethod method, int n_masks, int train_cell, uint64_t seed,
                     float init_std);
void sam_method_free(SamMethodModel *mm);

// SeqSAM rollout: outs[t] = low-res logits [P, 1, 4g, 4g] of step t < steps. image_emb and img_index
// as in sam_decode; P box/point prompt sets (the same every step). bptt_logits 0 feeds back a copy of
// the logits (no gradient through the mask path: ablation "sg").
void seqsam_rollout(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                    const SamPrompt *prompts, int P, int steps, int bptt_logits, SamxTensor **outs);

// The method's hypotheses: outs[j] [P, 1, 4g, 4g] for j < n. seqsam: n rollout steps (any n >= 1);
// mcl: the 3 multimask outputs (n = 3); sam-ft: the single-mask output (n = 1).
void sam_method_predict(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                        const SamPrompt *prompts, int P, int n, SamxTensor **outs);

// The JSON that `samx train` checkpoints carry in their metadata to be loadable alone:
// {"format": "samx-train", "method", "masks", "sam_config", "base_checkpoint"}; extra members are
// added by the trainer. Caller frees.
char *sam_method_meta_json(const SamMethodModel *mm, const char *base_checkpoint);

// Loads a `samx train` checkpoint for inference (or as the start of another run of the same method):
// architecture, method and M from its metadata; frozen weights it does not hold come from its
// base_checkpoint. trainable: SAM_TRAIN_* flags; the cell follows SAM_TRAIN_DECODER. Returns 0, or -1
// with samx_last_error naming the file and field.
int sam_method_load(SamMethodModel *mm, const char *path, SamxDevice device, int trainable);

// SAM weights from anything sam_load reads, or the SAM part of a `samx train` checkpoint (so that a
// model pretrained with samx is the base of the next run). Returns 0 or -1.
int sam_method_load_base(SamModel *m, const char *path, SamxDevice device, int trainable);

// Writes the SAM part of the model in samx's safetensors format (loadable by sam_load). Returns 0 or -1.
int sam_method_save_sam(const SamMethodModel *mm, const char *path);

#endif
