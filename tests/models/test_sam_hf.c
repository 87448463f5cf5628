// SAM against an independent implementation: Hugging Face transformers' SamModel (random weights,
// built by tests/models/hf_sam_reference.py in the venv made by scripts/setup-venv.sh). Checks that
// sam_load reads safetensors with HF key names (contracts §1) and that encoder, prompt encoder and
// decoder compute what SamModel computes. The reference runs in float64, so the tolerances bound
// samx's float32 error alone. The decoder is checked twice: on samx's own image embeddings (end to
// end) and on HF's (the decoder alone), so that a failure says on which side of the embeddings it is.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/sam/sam.h"

#define SCRIPT "tests/models/hf_sam_reference.py"
// Measured float32 errors are ~3e-6 (|values| up to ~4); the margins leave room for other summation
// orders (CUDA). Note: a decoder LayerNorm eps of 1e-6 instead of SAM's 1e-5 moves the logits by ~3e-5
// only, below TOL_DEC: the reference sets HF's mask_decoder layer_norm_eps to 1e-5 to match SAM.
#define TOL_EMB 1e-4     // image embeddings
#define TOL_PROMPT 1e-5  // sparse/dense prompt embeddings and the dense PE: a few float32 roundings
#define TOL_DEC 1e-4     // low-res logits and IoU predictions

static SamxSafetensors ref;
static SamxDevice device;

static const SamxSTEntry *ref_get(const char *fmt, const char *a, const char *b) { return samx_test_st_get(&ref, fmt, a, b); }

static SamxTensor *ref_tensor(SamxCtx *ctx, const SamxSTEntry *e) {
  SamxShape s = {.ndim = e->ndim};
  for (int i = 0; i < e->ndim; i++) s.d[i] = e->shape[i];
  float *v = samx_st_to_f32(e);
  SamxTensor *t = samx_from_host(ctx, s, v);
  free(v);
  return t;
}

// The case's P prompt sets, coordinates already in the input frame (no sam_prompt_to_input).
static int prompts_of(const char *cs, SamPrompt *out, int max) {
  const SamxSTEntry *pts = ref_get("%s.points%s", cs, ""), *lab = ref_get("%s.labels%s", cs, ""),
                    *box = ref_get("%s.box%s", cs, "");
  int P = (int)(pts ? pts->shape[0] : box->shape[0]);
  SAMX_ASSERT(P <= max, "case %s has %d prompt sets", cs, P);
  for (int p = 0; p < P; p++) {
    SamPrompt *q = &out[p];
    memset(q, 0, sizeof *q);
    if (pts) {
      q->n_points = (int)pts->shape[1];
      const float *xy = (const float *)pts->data + (size_t)p * q->n_points * 2;
      for (int i = 0; i < q->n_points; i++) {
        q->points[i][0] = xy[2 * i];
        q->points[i][1] = xy[2 * i + 1];
        q->labels[i] = ((const int32_t *)lab->data)[p * q->n_points + i];
      }
    }
    if (box) {
      q->has_box = 1;
      memcpy(q->box, (const float *)box->data + 4 * p, sizeof q->box);
    }
  }
  return P;
}

// One case through the prompt encoder and both decoder modes, against image embeddings emb.
// `tag` names the embeddings used in messages ("samx" end to end, "hf" for the decoder alone).
static void run_case(SamxCtx *ctx, SamModel *m, SamxTensor *emb, const char *cs, const char *tag) {
  SamPrompt prompts[4];
  int P = prompts_of(cs, prompts, 4);
  const SamxSTEntry *mi = ref_get("%s.mask_input%s", cs, "");
  SamxTensor *mask_in = mi ? ref_tensor(ctx, mi) : NULL, *sparse, *dense;
  sam_prompt_encode(ctx, m, prompts, P, mask_in, &sparse, &dense);
  double es = samx_test_max_abs_diff(sparse, ref_get("%s.sparse%s", cs, "")),
         ed = samx_test_max_abs_diff(dense, ref_get("%s.dense%s", cs, ""));
  CHECK(es <= TOL_PROMPT && ed <= TOL_PROMPT, "%s: sparse embeddings differ by %.3g, dense by %.3g", cs, es, ed);
  static const char *modes[] = {"multi", "single"};
  for (int multi = 1; multi >= 0; multi--) {
    const char *mode = modes[1 - multi];
    SamxTensor *low, *iou;
    sam_decode(ctx, m, emb, NULL, sparse, dense, multi, &low, &iou);
    double el = samx_test_max_abs_diff(low, ref_get("%s.%s.low_res", cs, mode)),
           ei = samx_test_max_abs_diff(iou, ref_get("%s.%s.iou", cs, mode));
    CHECK(el <= TOL_DEC && ei <= TOL_DEC, "%s.%s (%s embeddings): low-res logits differ by %.3g, IoU by %.3g", cs,
          mode, tag, el, ei);
    printf("%-10s %-6s %s embeddings: sparse %.3g dense %.3g low_res %.3g iou %.3g\n", cs, mode, tag, es, ed, el, ei);
  }
}

static void check_config(const SamConfig *c) {
  CHECK(c->img_size == 160 && c->patch == 16 && c->enc_dim == 64 && c->enc_depth == 4 && c->enc_heads == 2 &&
            c->enc_mlp == 256 && c->window == 4 && !c->global_block[0] && c->global_block[1] && !c->global_block[2] &&
            c->global_block[3] && c->out_chans == 64 && c->qkv_bias && c->rel_pos && c->prompt_dim == 64 &&
            c->mask_in_chans == 16 && c->dec_depth == 2 && c->dec_mlp == 128 && c->attn_downsample == 2 &&
            c->num_mask_tokens == 4 && c->iou_depth == 4 && c->iou_hidden == 64,
        "architecture read off the HF shapes differs from hf_sam_reference.py's SamConfig");
}

static void compare(SamModel *m) {
  static const char *cases[] = {"box", "points", "point1", "box_points", "batch", "box_maskin"};
  SamxCtx ctx;
  samx_ctx_init(&ctx, device, (size_t)256 << 20, 8192);
  samx_ctx_set_recording(&ctx, 0);
  SamxTensor *img = ref_tensor(&ctx, samx_st_find(&ref, "image"));
  SamxTensor *emb = sam_encode(&ctx, m, img);
  double e = samx_test_max_abs_diff(emb, samx_st_find(&ref, "image_embeddings"));
  CHECK(e <= TOL_EMB, "image embeddings differ by %.3g", e);
  printf("image_embeddings: max abs err %.3g\n", e);
  double ep = samx_test_max_abs_diff(sam_dense_pe(&ctx, m), samx_st_find(&ref, "dense_pe"));
  CHECK(ep <= TOL_PROMPT, "dense positional encoding differs by %.3g", ep);
  printf("dense_pe: max abs err %.3g\n", ep);
  SamxTensor *hf_emb = ref_tensor(&ctx, samx_st_find(&ref, "image_embeddings"));
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    run_case(&ctx, m, emb, cases[i], "samx");
    run_case(&ctx, m, hf_emb, cases[i], "hf");
  }
  samx_ctx_free(&ctx);
}

// Name of the first parameter whose values differ between a and b, or NULL.
static const char *first_difference(const SamModel *a, const SamModel *b) {
  if (a->params.n != b->params.n) return "(parameter count)";
  for (int i = 0; i < a->params.n; i++) {
    SamxTensor *x = a->params.list[i], *y = samx_params_find(&b->params, x->name);
    if (!y || y->numel != x->numel) return x->name;
    float *u = (float *)malloc(samx_nbytes(x)), *v = (float *)malloc(samx_nbytes(y));
    samx_tensor_read_f32(x, u);
    samx_tensor_read_f32(y, v);
    int same = !memcmp(u, v, samx_nbytes(x));
    free(u);
    free(v);
    if (!same) return x->name;
  }
  return NULL;
}

// Other files holding the same weights under HF names must load to the same parameters.
static void check_variant(const SamModel *m, const char *dir, const char *file, const char *what) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  SamModel other;
  int rc = sam_load(&other, path, device, 0, NULL);
  CHECK(rc == 0, "load HF-named weights (%s): %s", what, rc ? samx_last_error() : "");
  if (rc) return;
  const char *diff = first_difference(m, &other);
  CHECK(!diff, "%s: %s differs from the save_pretrained file's", what, diff);
  sam_free(&other);
}

int main(int argc, char **argv) {
  if (samx_test_device_arg(argc, argv, &device) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  char dir[256], path[512];
  if (samx_test_reference_script(SCRIPT, dir, sizeof dir, "samx_hf")) {
    samx_test_summary();
    return 1;  // no reference: a failure, never a skip
  }
  snprintf(path, sizeof path, "%s/sam_hf_cases.safetensors", dir);
  if (samx_st_open(&ref, path) == 0) {
    SamModel m;
    snprintf(path, sizeof path, "%s/sam_hf.safetensors", dir);
    int rc = sam_load(&m, path, device, 0, NULL);
    CHECK(rc == 0, "load HF-named weights (save_pretrained): %s", rc ? samx_last_error() : "");
    if (rc == 0) {
      check_config(&m.cfg);
      compare(&m);
      // A state_dict saved as is also holds prompt_encoder.shared_embedding.positional_embedding,
      // the prompt encoder's alias of the tied Gaussian matrix.
      check_variant(&m, dir, "sam_hf_full.safetensors", "full state_dict as safetensors");
      check_variant(&m, dir, "sam_hf.pth", "full state_dict as torch.save .pth");
      sam_free(&m);
    }
    samx_st_close(&ref);
  } else {
    CHECK(0, "open %s: %s", path, samx_last_error());
  }
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
