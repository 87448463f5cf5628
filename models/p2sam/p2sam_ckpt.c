// The authors' P²SAM checkpoints (models/p2sam/p2sam.h: p2sam_load_authors), read natively through
// engine/torch_ckpt.h (which flattens final_weights.pth's {"epoch_N": state_dict} to "epoch_N/key").
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/ops_common.h"
#include "engine/torch_ckpt.h"
#include "p2sam.h"

static int starts_with(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

// SAM's trainable parts in a training stage: stage 1 the prompt encoder and the decoder.
static int sam_trainable(int train) { return train & P2SAM_STAGE1 ? SAM_TRAIN_PROMPT | SAM_TRAIN_DECODER : 0; }

int p2sam_snapshots(const char *ckpt, char ***names, int *n) {
  SamxTorchCkpt ck;
  if (samx_torch_load(&ck, ckpt) != 0) return -1;
  *names = (char **)calloc((size_t)ck.n + 1, sizeof(char *));
  *n = 0;
  for (int i = 0; i < ck.n; i++) {
    const char *slash = strchr(ck.entries[i].name, '/');
    if (!slash) continue;
    size_t len = (size_t)(slash - ck.entries[i].name);
    if (*n && strlen((*names)[*n - 1]) == len && !strncmp((*names)[*n - 1], ck.entries[i].name, len)) continue;
    (*names)[(*n)++] = strndup(ck.entries[i].name, len);
  }
  samx_torch_free(&ck);
  if (*n == 0) {
    free(*names);
    return samx_fail("%s: no snapshots (not a final_weights.pth of {\"epoch_N\": state_dict})", ckpt);
  }
  return 0;
}

// Copies entry e into parameter `name` of mm (shapes must agree).
static int load_param(SamMethodModel *mm, const char *path, const SamxSTEntry *e, const char *name) {
  SamxTensor *t = samx_params_find(&mm->sam.params, name);
  if (!t) return samx_fail("%s: entry %s has no place in the P2SAM model (%s)", path, e->name, name);
  SamxSafetensors holder = {.path = (char *)path};
  return samx_st_load_into(&holder, e, t);
}

// The samx name of a LoRA entry "....blocks.I.attn.qkv.linear_{a,b}_{q,v}.weight", or 0.
static int lora_name(const char *key, char *out, size_t n) {
  const char *b = strstr(key, "blocks."), *l = strstr(key, ".attn.qkv.linear_");
  if (!b || !l) return 0;
  int blk = atoi(b + 7);
  char ab = l[17], qv = l[19];
  snprintf(out, n, "p2sam.w_%c_%03d", ab, 2 * blk + (qv == 'v'));
  return 1;
}

// SAM's key for an entry of the authors' P2SAM state dict ("sam." prefix, "qkv.qkv." for the plain
// qkv under _LoRA_qkv), or NULL when the entry is not SAM's.
static const char *sam_key(const char *key, char *buf, size_t n) {
  if (!starts_with(key, "sam.")) return NULL;
  snprintf(buf, n, "%s", key + 4);
  char *q = strstr(buf, ".attn.qkv.qkv.");
  if (q) memmove(q + 9, q + 13, strlen(q + 13) + 1);  // ".attn.qkv.qkv.weight" -> ".attn.qkv.weight"
  return buf;
}

static int load_weights_eight(SamMethodModel *mm, const char *path, const SamxSTEntry *e);

static int load_mask_weights(SamMethodModel *mm, const char *path) {
  SamxTorchCkpt ck;
  if (samx_torch_load(&ck, path) != 0) return -1;
  int rc = ck.n == 1 ? load_weights_eight(mm, path, &ck.entries[0])
                     : samx_fail("%s: expected one tensor (the [8, 1] assembling weights), found %d", path, ck.n);
  samx_torch_free(&ck);
  return rc;
}

// A whole P2SAM state dict: one snapshot of final_weights.pth (entries "epoch_N/key"), or the same
// keys at the top level (a safetensors copy of one snapshot; snapshot NULL).
static int load_final(SamMethodModel *mm, const SamxTorchCkpt *ck, const char *path, const char *snapshot, SamxDevice dev,
                      int train) {
  char prefix[128] = "";
  const char *slash = strchr(ck->entries[0].name, '/');
  if (snapshot)
    snprintf(prefix, sizeof prefix, "%s/", snapshot);
  else if (slash)
    snprintf(prefix, sizeof prefix, "%.*s/", (int)(slash - ck->entries[0].name), ck->entries[0].name);
  size_t pl = strlen(prefix);
  SamxSTEntry *sam_entries = (SamxSTEntry *)calloc((size_t)ck->n + 1, sizeof(SamxSTEntry));
  char(*names)[256] = calloc((size_t)ck->n + 1, 256);
  int ns = 0, found = 0;
  for (int i = 0; i < ck->n; i++) {
    const char *key = ck->entries[i].name;
    if (strncmp(key, prefix, pl)) continue;
    found++;
    char lb[128];
    if (lora_name(key + pl, lb, sizeof lb)) continue;
    if (!sam_key(key + pl, names[ns], sizeof names[ns])) continue;
    sam_entries[ns] = ck->entries[i];
    sam_entries[ns].name = names[ns];
    ns++;
  }
  int rc = 0;
  SamModel sam;
  if (!found) rc = samx_fail("%s: no snapshot '%.*s' (see samx segment --help: --snapshot)", path, pl ? (int)pl - 1 : 0, prefix);
  if (rc == 0 && sam_load_entries(&sam, path, sam_entries, ns, dev, sam_trainable(train)) != 0) rc = -1;
  free(sam_entries);
  free(names);
  if (rc) return rc;
  sam_method_init(mm, &sam, SAM_METHOD_P2SAM, 16, train, 0, 0.0f);
  for (int i = 0; i < ck->n && rc == 0; i++) {
    const char *key = ck->entries[i].name;
    if (strncmp(key, prefix, pl)) continue;
    char name[256];
    if (lora_name(key + pl, name, sizeof name) ||
        ((starts_with(key + pl, "prior_dense.") || starts_with(key + pl, "fcomb.")) &&
         snprintf(name, sizeof name, "p2sam.%s", key + pl) > 0))
      rc = load_param(mm, path, &ck->entries[i], name);
  }
  return rc;
}

// Stage 1: LoRA, prompt encoder and decoder over the resized base SAM.
static int load_stage1(SamMethodModel *mm, SamxTorchCkpt *ck, const char *path, const char *base, int img_size,
                       SamxDevice dev, int train) {
  if (!base) return samx_fail("%s: a stage-1 P2SAM file holds no image encoder: name the base SAM with --base", path);
  SamModel b, sam;
  if (sam_load(&b, base, dev, 0, NULL) != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", samx_last_error());
    return samx_fail("--base (the SAM under the stage-1 file %s): %s", path, msg);
  }
  int rc = p2sam_sam_from_base(&sam, &b, img_size ? img_size : 128, sam_trainable(train), 1);
  sam_free(&b);
  if (rc) return rc;
  sam_method_init(mm, &sam, SAM_METHOD_P2SAM, 16, train, 0, 0.0f);
  int n_lora = 0;
  for (int i = 0; i < ck->n && rc == 0; i++) {
    const char *key = ck->entries[i].name;
    char name[256];
    if (starts_with(key, "w_a_") || starts_with(key, "w_b_")) {
      snprintf(name, sizeof name, "p2sam.%s", key);
      n_lora++;
    } else if (starts_with(key, "prompt_encoder.") || starts_with(key, "mask_decoder.")) {
      snprintf(name, sizeof name, "%s", key);
    } else {
      rc = samx_fail("%s: unexpected entry %s in a stage-1 P2SAM file", path, key);
      break;
    }
    if (rc == 0) rc = load_param(mm, path, &ck->entries[i], name);
  }
  if (rc == 0 && n_lora != 4 * mm->sam.cfg.enc_depth)
    rc = samx_fail("%s: %d LoRA tensors, the base's %d blocks need %d", path, n_lora, mm->sam.cfg.enc_depth,
                   4 * mm->sam.cfg.enc_depth);
  return rc;
}

// A safetensors file holding one snapshot's state dict under the authors' keys (and optionally
// "weights_eight" [8, 1]), as tests/models/make_p2sam_refs.py writes it: a SamxTorchCkpt view of it.
static int open_safetensors_dict(SamxSafetensors *st, SamxTorchCkpt *view, const char *path) {
  memset(view, 0, sizeof *view);
  if (samx_st_open(st, path) != 0) return -1;
  view->entries = st->entries;
  view->n = st->n;
  return 0;
}

static int is_zip(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned char h[2] = {0};
  int ok = f && fread(h, 1, 2, f) == 2 && h[0] == 'P' && h[1] == 'K';
  if (f) fclose(f);
  return ok;
}

// Assembling weights from an entry of 8 values (row 0 = 1 - the sum of the others: not stored).
static int load_weights_eight(SamMethodModel *mm, const char *path, const SamxSTEntry *e) {
  if (e->numel != P2SAM_MASKS || e->dtype != SAMX_F32)
    return samx_fail("%s: %s: expected %d F32 values (the [8, 1] assembling weights)", path, e->name[0] ? e->name : "tensor",
                     P2SAM_MASKS);
  SamxSTEntry tail = *e;
  tail.data = (const float *)e->data + 1;
  tail.numel = P2SAM_MASKS - 1, tail.ndim = 2, tail.shape[0] = P2SAM_MASKS - 1, tail.shape[1] = 1;
  tail.nbytes = sizeof(float) * (P2SAM_MASKS - 1);
  return load_param(mm, path, &tail, "p2sam.mask_weights.weights");
}

int p2sam_load_authors(SamMethodModel *mm, const char *ckpt, const char *base, const char *mask_weights,
                       const char *snapshot, int img_size, SamxDevice device, int train, int *stage1) {
  memset(mm, 0, sizeof *mm);
  SamxTorchCkpt ck;
  SamxSafetensors st;
  int zip = is_zip(ckpt), rc;
  if ((zip ? samx_torch_load(&ck, ckpt) : open_safetensors_dict(&st, &ck, ckpt)) != 0) return -1;
  int is_final = ck.n > 0 && (strchr(ck.entries[0].name, '/') != NULL || !zip);
  if (stage1) *stage1 = !is_final;
  const SamxSTEntry *w8 = NULL;
  for (int i = 0; i < ck.n && !zip; i++)
    if (!strcmp(ck.entries[i].name, "weights_eight")) w8 = &ck.entries[i];
  if (ck.n == 0) rc = samx_fail("%s: holds no tensors", ckpt);
  else if (is_final) rc = load_final(mm, &ck, ckpt, snapshot, device, train);
  else rc = load_stage1(mm, &ck, ckpt, base, img_size, device, train);
  if (rc == 0 && w8 && !mask_weights) rc = load_weights_eight(mm, ckpt, w8);
  if (zip) samx_torch_free(&ck);
  else samx_st_close(&st);
  if (rc == 0 && mask_weights) rc = load_mask_weights(mm, mask_weights);
  if (rc && mm->sam.params.list) sam_method_free(mm);
  return rc;
}

// ---- snapshots of the prompt-generation network ----

static int is_pgn(const char *name) {
  return !strncmp(name, "p2sam.prior_dense.", 18) || !strncmp(name, "p2sam.fcomb.", 12);
}

// Values of snapshot k from entries named prefix + (parameter name without "p2sam.").
static int fill_snapshot(P2samSnapshots *s, int k, const SamxSTEntry *entries, int n, const char *prefix, int strip,
                         const char *path) {
  size_t total = 0;
  for (int i = 0; i < s->n_params; i++) total += (size_t)s->dst[i]->numel;
  s->values[k] = (float *)malloc(sizeof(float) * total);
  float *v = s->values[k];
  for (int i = 0; i < s->n_params; i++) {
    char key[300];
    snprintf(key, sizeof key, "%s%s", prefix, s->dst[i]->name + (strip ? 6 : 0));
    const SamxSTEntry *e = NULL;
    for (int j = 0; j < n && !e; j++)
      if (!strcmp(entries[j].name, key)) e = &entries[j];
    if (!e || e->numel != s->dst[i]->numel) return samx_fail("%s: snapshot %s lacks %s (or its size differs)", path, s->names[k], key);
    float *f = samx_st_to_f32(e);
    memcpy(v, f, sizeof(float) * (size_t)e->numel);
    free(f);
    v += e->numel;
  }
  return 0;
}

int p2sam_snapshots_load(P2samSnapshots *s, SamMethodModel *mm, const char *ckpt, const char *const *names, int n) {
  memset(s, 0, sizeof *s);
  if (n < 1 || n > 16) return samx_fail("%d snapshots asked (1 to 16)", n);
  s->dst = (SamxTensor **)calloc((size_t)mm->sam.params.n, sizeof(SamxTensor *));
  for (int i = 0; i < mm->sam.params.n; i++)
    if (is_pgn(mm->sam.params.list[i]->name)) s->dst[s->n_params++] = mm->sam.params.list[i];
  s->values = (float **)calloc((size_t)n, sizeof(float *));
  s->n = n;
  int rc = 0;
  if (is_zip(ckpt)) {
    SamxTorchCkpt ck;
    if (samx_torch_load(&ck, ckpt) != 0) return -1;
    for (int k = 0; k < n && rc == 0; k++) {
      snprintf(s->names[k], sizeof s->names[k], "%s", names[k]);
      char prefix[80];
      snprintf(prefix, sizeof prefix, "%s/", names[k]);
      rc = fill_snapshot(s, k, ck.entries, ck.n, prefix, 1, ckpt);
    }
    samx_torch_free(&ck);
  } else {
    const char *slash = strrchr(ckpt, '/');
    for (int k = 0; k < n && rc == 0; k++) {
      snprintf(s->names[k], sizeof s->names[k], "%s", names[k]);
      char path[1200];
      snprintf(path, sizeof path, "%.*ssnapshot_%s.safetensors", slash ? (int)(slash - ckpt + 1) : 0, ckpt, names[k]);
      SamxSafetensors st;
      if (samx_st_open(&st, path) != 0) {
        rc = samx_fail("snapshot %s of %s: %s", names[k], ckpt, samx_last_error());
        break;
      }
      rc = fill_snapshot(s, k, st.entries, st.n, "", 0, path);
      samx_st_close(&st);
    }
  }
  if (rc) p2sam_snapshots_free(s);
  return rc;
}

void p2sam_snapshot_apply(const P2samSnapshots *s, int k) {
  const float *v = s->values[k];
  for (int i = 0; i < s->n_params; i++) {
    samx_tensor_write_f32(s->dst[i], v);
    v += s->dst[i]->numel;
  }
}

void p2sam_snapshots_free(P2samSnapshots *s) {
  for (int k = 0; k < s->n && s->values; k++) free(s->values[k]);
  free(s->values);
  free(s->dst);
  memset(s, 0, sizeof *s);
}

int64_t p2sam_samx_config_key(const char *path, const char *key) {
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) {
    samx_clear_error();
    return 0;
  }
  const char *meta = samx_st_meta(&st, "meta");
  json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
  int64_t v = (int64_t)json_integer_value(json_object_get(json_object_get(json_object_get(j, "config"), "p2sam"), key));
  json_decref(j);
  samx_st_close(&st);
  return v;
}
