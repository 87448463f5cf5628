// The interface every trained method implements, and the model that carries one.
//
// A method is SAM plus its own parameters (possibly none), a way to turn a batch of prompts into
// hypotheses (low-res logits), and a training loss. Each method lives in its own folder under models/
// (models/samft, models/mcl, models/seqsam, ...) and exports one SamxMethodDef, a table of functions;
// the registry below (models/method.c) lists them in the order of train/config.h's [method] name
// choices. train/trainer.c, infer/infer.c, tools/ and bench/ call only this interface: adding a method
// is one folder with its table, one line in the registry and one choice in the config.
//
// The table (fields may be added; existing ones keep their meaning):
//   name          "sam-ft", "mcl", "seqsam", "fewshot": the config's method.name and the checkpoint's "method"
//   fixed_masks   hypotheses the method always gives; 0: any number (SeqSAM's rollout steps)
//   full_res      hypotheses (and the targets the trainer prepares) at the input size S, not 4g (P²SAM)
//   param_prefix  the prefix of the method's own parameters in the store ("seqsam."), NULL when it has
//                 none. What a checkpoint holds: SAM's parameters, then these; sam.safetensors (the
//                 SAM part) drops the parameters with this prefix.
//   declare       build: declares the method's parameters in a fresh store, after SAM's (NULL: none)
//   init_params   build: fills them (seeded); called after the store is allocated and zeroed
//   encode        image embeddings of preprocessed images [N, 3, S, S] (NULL: sam_encode), for a method
//                 that changes the encoder (LoRA)
//   hypotheses    forward: outs[j] [P, 1, 4g, 4g] (S x S when full_res) for j < returned count, from the batch's embeddings
//                 and prompts; training selects the training-time variant (SeqSAM: masks steps with
//                 bptt_logits; otherwise eval_masks steps with the gradient through the mask path)
//   loss          a scalar tensor on the tape from the hypotheses and the batch's targets; seed: the
//                 step's random draws (SeqSAM's pooling), used only when training
// Build and load go through sam_method_init / sam_method_load for every method (generic: they call
// declare and init_params); inference is sam_method_predict (hypotheses with training = 0).
#ifndef SAMX_MODELS_METHOD_H
#define SAMX_MODELS_METHOD_H

#include <stdint.h>

#include "models/sam/sam.h"

#ifdef __cplusplus
extern "C" {
#endif

// The order of train/config.h's [method] name choices (and of the registry).
typedef enum { SAM_METHOD_SAMFT = 0, SAM_METHOD_MCL = 1, SAM_METHOD_SEQSAM = 2, SAM_METHOD_P2SAM = 3, SAM_METHOD_FEWSHOT = 4 } SamMethod;
#define SAM_METHOD_COUNT 5

typedef struct SamxMethodDef SamxMethodDef;

typedef struct {
  SamModel sam;      // its parameter store also holds the method's parameters (after SAM's)
  SamMethod method;
  const SamxMethodDef *def;
  int n_masks;       // hypotheses per prompt by default: M (seqsam), 3 (mcl), 1 (sam-ft)
  int variant;       // a method's variant, kept in its checkpoints' metadata (p2sam: P2SAM_ASSEMBLE_*); 0: the default
} SamMethodModel;

// What the trainer's configuration says about the method and its loss (train/config.h's [method]
// and [loss] keys); sam_method_opts_defaults gives the config's defaults.
typedef struct {
  int masks;          // seqsam: rollout steps in training
  int eval_masks;     // seqsam: steps at validation / inference (0: masks)
  int bptt_logits;    // seqsam: gradient through the fed-back logits in training
  int select;         // seqsam: SAMX_SELECT_* (train/config.h)
  int identity_match; // seqsam: output i to label i instead of Hungarian matching
  int mcl_rows;       // mcl: per-row Dice (SAMX_MCL_DICE_ROWS)
  float dice_eps;     // all: the soft Dice's smoothing
  float bce_weight;   // sam-ft: BCE beside Dice
  float multimask_weight; // sam-ft: weight of the min-over-3 Dice on the multimask tokens in training
  int stage;          // p2sam: 1 (no prompt generator: the dense prompt is no_mask_embed) or 2; 0: as 2
  float reg_weight;   // p2sam stage 2: weight of the norms regulariser
  int fewshot_loss;   // fewshot: SAMX_FEWSHOT_LOSS_CE or _DICE (models/fewshot/fewshot.h)
} SamxMethodOpts;
SamxMethodOpts sam_method_opts_defaults(void);

// One batch as the methods see it. Inference fills the first four; training adds the targets (host
// arrays at the low-res logits' resolution L x L).
typedef struct {
  SamxTensor *image_emb;     // [N, C, g, g]
  const int *img_index;      // [P]: the row of image_emb of each prompt (NULL: prompt i on image i)
  const SamPrompt *prompts;  // [P]
  int P;
  const float *labels;       // [P, K, L * L]: every annotator's mask
  const uint8_t *valid;      // [P * K]: annotators that exist
  int K;
  const float *target;       // [P, L * L]: the annotator drawn for this step
  // Methods that read the image itself (P²SAM's prior network); NULL for the others.
  SamxTensor *pixels;        // [P, 1, S, S]: the grey image in [0, 1] at the encoder's input size
  const float *eps;          // host [P, latent]: the Gaussian noise to use (NULL: drawn from ctx's RNG)
} SamxMethodBatch;

struct SamxMethodDef {
  const char *name;
  int fixed_masks;
  int full_res;  // 1: hypotheses and training targets at the input size S x S, not the low-res 4g x 4g
  const char *param_prefix;
  void (*declare)(const SamModel *sam, SamxParams *store, int trainable);
  void (*init_params)(SamMethodModel *mm, uint64_t seed, float init_std);
  SamxTensor *(*encode)(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *images);
  int (*hypotheses)(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int training, const SamxMethodOpts *o,
                    SamxTensor **outs);
  SamxTensor *(*loss)(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *const *outs, int m, const SamxMethodBatch *b,
                      int training, const SamxMethodOpts *o, uint64_t seed);
  // load: called with the checkpoint's path before declare, for methods whose parameter shapes
  // depend on the run (fewshot: labels, target embeddings). NULL: none. Returns 0 or -1.
  int (*prepare_load)(const char *path);
};

// The registry.
const SamxMethodDef *sam_method_def(SamMethod m);
const char *sam_method_name(SamMethod m);                // "sam-ft", "mcl", "seqsam"
int sam_method_parse(const char *name, SamMethod *out);  // 0, or -1 (samx_last_error lists the names)
// "sam-ft, mcl, seqsam": every registered name, for messages and --help.
const char *sam_method_names(void);

// Build: takes over *sam (left empty) and adds the method's parameters (def->declare), initialised by
// def->init_params from seed (new conv weights N(0, init_std)), trainable when train_params. The
// parameter values of sam are kept. n_masks: the default hypotheses (used when fixed_masks is 0).
void sam_method_init(SamMethodModel *mm, SamModel *sam, SamMethod method, int n_masks, int train_params, uint64_t seed,
                     float init_std);
void sam_method_free(SamMethodModel *mm);

// Image embeddings of preprocessed images through the method's encoder (def->encode or sam_encode).
SamxTensor *sam_method_encode(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *images);

// Inference: outs[j] [P, 1, 4g, 4g] for j < n (n must be fixed_masks when that is set).
void sam_method_predict(SamxCtx *ctx, SamMethodModel *mm, SamxTensor *image_emb, const int *img_index,
                        const SamPrompt *prompts, int P, int n, SamxTensor **outs);

// For methods that use SAM's decoder as it is: the single-mask output (outs[0]) or the multimask
// outputs (outs[j], j < num_mask_tokens - 1), each [P, 1, 4g, 4g]. Returns their count.
int sam_method_sam_outputs(SamxCtx *ctx, SamMethodModel *mm, const SamxMethodBatch *b, int multimask, SamxTensor **outs);

// ---- checkpoints ----

// The JSON that `samx train` checkpoints carry in their metadata to be loadable alone:
// {"format": "samx-train", "method", "masks", "sam_config", "base_checkpoint"}; extra members are
// added by the trainer. Caller frees.
char *sam_method_meta_json(const SamMethodModel *mm, const char *base_checkpoint);

// Loads a `samx train` checkpoint for inference (or as the start of another run of the same method):
// architecture, method and M from its metadata; frozen weights it does not hold come from its
// base_checkpoint. trainable: SAM_TRAIN_* flags; the method's parameters follow SAM_TRAIN_DECODER.
// Returns 0, or -1 with samx_last_error naming the file and field.
int sam_method_load(SamMethodModel *mm, const char *path, SamxDevice device, int trainable);
// The same with the method's train_params given (as sam_method_init's; -1: from SAM_TRAIN_DECODER).
int sam_method_load_ex(SamMethodModel *mm, const char *path, SamxDevice device, int trainable, int train_params);

// SAM weights from anything sam_load reads, or the SAM part of a `samx train` checkpoint (so that a
// model pretrained with samx is the base of the next run). Returns 0 or -1.
int sam_method_load_base(SamModel *m, const char *path, SamxDevice device, int trainable);

// Writes the SAM part of the model (without the def->param_prefix parameters) in samx's safetensors
// format (loadable by sam_load). Returns 0 or -1.
int sam_method_save_sam(const SamMethodModel *mm, const char *path);

// ---- the methods' tables (each in its folder) ----
extern const SamxMethodDef samx_method_samft;   // models/samft/samft.c
extern const SamxMethodDef samx_method_mcl;     // models/mcl/mcl.c
extern const SamxMethodDef samx_method_seqsam;  // models/seqsam/seqsam.c
extern const SamxMethodDef samx_method_p2sam;   // models/p2sam/p2sam.c
extern const SamxMethodDef samx_method_fewshot; // models/fewshot/fewshot.c

#ifdef __cplusplus
}
#endif
#endif
