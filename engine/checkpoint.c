#include "checkpoint.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

#define CK_FORMAT "samx-checkpoint"
#define CK_VERSION "1"
#define M_PREFIX "__optim__/m/"
#define V_PREFIX "__optim__/v/"
#define OPTIM_STEP "__optim__/step"
#define GLOBAL_STEP "__train__/global_step"
#define RNG "__train__/rng"

// ---- save ----

// One optimizer buffer of parameter i, copied to the host and added under prefix + name.
static void add_state(SamxSTWriter *w, const SamxOptim *o, const float *buf, int i, const char *prefix) {
  const SamxTensor *t = o->params->list[i];
  size_t bytes = (size_t)t->numel * sizeof(float);
  float *host = (float *)malloc(bytes + 4);
  samx_memcpy(samx_cpu(), host, o->params->device, buf + o->offset[i], bytes);
  char name[512];
  snprintf(name, sizeof name, "%s%s", prefix, t->name);
  samx_st_writer_add(w, name, SAMX_F32, t->ndim, t->shape, host);
  free(host);
}

static void add_i64(SamxSTWriter *w, const char *name, int64_t n, const int64_t *values) {
  samx_st_writer_add(w, name, SAMX_I64, 1, &n, values);
}

int samx_checkpoint_save(const char *path, const SamxCheckpoint *ck, const char *meta_json) {
  const SamxParams *p = ck->params;
  const SamxOptim *o = ck->optim;
  SAMX_ASSERT(p && p->allocated, "checkpoint save: parameters missing or not allocated");
  SAMX_ASSERT(!o || o->params == p, "checkpoint save: the optimizer belongs to another parameter store");
  if (meta_json) {
    json_error_t err;
    json_t *parsed = json_loads(meta_json, JSON_DECODE_ANY, &err);
    if (!parsed) return samx_fail("%s: checkpoint metadata is not valid JSON: %s", path, err.text);
    json_decref(parsed);
  }
  SamxSTWriter *w = samx_st_writer_new();
  for (int i = 0; i < p->n; i++)
    if (p->list[i]->requires_grad || !ck->trainable_only) samx_st_writer_add_tensor(w, p->list[i]->name, p->list[i]);
  if (o) {
    for (int i = 0; i < p->n; i++) {
      if (o->offset[i] < 0) continue;
      if (o->m) add_state(w, o, o->m, i, M_PREFIX);
      if (o->v) add_state(w, o, o->v, i, V_PREFIX);
    }
    add_i64(w, OPTIM_STEP, 1, &o->step);
  }
  add_i64(w, GLOBAL_STEP, 1, &ck->global_step);
  if (ck->ctx) {
    int64_t rng[2];
    memcpy(&rng[0], &ck->ctx->seed, 8);
    memcpy(&rng[1], &ck->ctx->rng_offset, 8);
    add_i64(w, RNG, 2, rng);
  }
  samx_st_writer_meta(w, "format", CK_FORMAT);
  samx_st_writer_meta(w, "version", CK_VERSION);
  samx_st_writer_meta(w, "optimizer", o ? samx_optim_kind_name(o->cfg.kind) : "none");
  samx_st_writer_meta(w, "params", ck->trainable_only ? "trainable" : "all");
  if (meta_json) samx_st_writer_meta(w, "meta", meta_json);
  int rc = samx_st_writer_save(w, path);
  samx_st_writer_free(w);
  return rc;
}

// ---- load ----

// The entry `name` must exist with dtype dt and shape (ndim, shape).
static int check_entry(const SamxSafetensors *st, const char *name, SamxDType dt, int ndim, const int64_t *shape) {
  const SamxSTEntry *e = samx_st_find(st, name);
  if (!e) return samx_fail("%s: tensor '%s' is missing from the checkpoint", st->path, name);
  if (e->dtype != dt)
    return samx_fail("%s: tensor '%s' is %s, expected %s", st->path, name, samx_dtype_name(e->dtype),
                     samx_dtype_name(dt));
  SamxShape want = {ndim, {0}}, got = {e->ndim, {0}};
  for (int i = 0; i < ndim; i++) want.d[i] = shape[i];
  for (int i = 0; i < e->ndim; i++) got.d[i] = e->shape[i];
  if (!samx_shape_eq(want, got)) {
    char a[96], b[96];
    return samx_fail("%s: tensor '%s' has shape %s, the model expects %s", st->path, name,
                     samx_shape_str(got, a, sizeof a), samx_shape_str(want, b, sizeof b));
  }
  return 0;
}

static int check_i64(const SamxSafetensors *st, const char *name, int64_t n) { return check_entry(st, name, SAMX_I64, 1, &n); }

static int64_t read_i64(const SamxSafetensors *st, const char *name, int index) {
  int64_t v;
  memcpy(&v, (const char *)samx_st_find(st, name)->data + 8 * index, 8);
  return v;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// The parameter that optimizer-state entry `name` (after its prefix) belongs to, if trainable.
static int trainable_index(const SamxParams *p, const char *param_name) {
  for (int i = 0; i < p->n; i++)
    if (p->list[i]->requires_grad && strcmp(p->list[i]->name, param_name) == 0) return i;
  return -1;
}

// Every tensor in the file must be something this load knows where to put (or deliberately skips).
static int check_known(const SamxSafetensors *st, const SamxCheckpoint *ck) {
  const SamxOptim *o = ck->optim;
  for (int k = 0; k < st->n; k++) {
    const char *name = st->entries[k].name;
    if (starts_with(name, "__optim__/")) {
      if (!o || strcmp(name, OPTIM_STEP) == 0) continue;
      int has_m = starts_with(name, M_PREFIX) && o->m, has_v = starts_with(name, V_PREFIX) && o->v;
      if (!has_m && !has_v)
        return samx_fail("%s: tensor '%s': the %s optimizer keeps no such state", st->path, name,
                         samx_optim_kind_name(o->cfg.kind));
      if (trainable_index(ck->params, name + strlen(has_m ? M_PREFIX : V_PREFIX)) < 0)
        return samx_fail("%s: tensor '%s': no trainable parameter of that name in the model", st->path, name);
    } else if (strcmp(name, GLOBAL_STEP) != 0 && strcmp(name, RNG) != 0 && !samx_params_find(ck->params, name)) {
      return samx_fail("%s: tensor '%s' is not a parameter of the model (HINT: wrong checkpoint for this model?)",
                       st->path, name);
    }
  }
  return 0;
}

static int check_header(const SamxSafetensors *st, const SamxCheckpoint *ck, int *all_params) {
  const char *format = samx_st_meta(st, "format"), *version = samx_st_meta(st, "version");
  const char *optimizer = samx_st_meta(st, "optimizer"), *params = samx_st_meta(st, "params");
  if (!format || strcmp(format, CK_FORMAT) != 0)
    return samx_fail("%s: not a samx checkpoint (__metadata__ \"format\" is %s%s%s, expected \"%s\")", st->path,
                     format ? "\"" : "", format ? format : "missing", format ? "\"" : "", CK_FORMAT);
  if (!version || strcmp(version, CK_VERSION) != 0)
    return samx_fail("%s: checkpoint version %s, this samx reads version %s", st->path, version ? version : "missing",
                     CK_VERSION);
  if (!params || (strcmp(params, "all") != 0 && strcmp(params, "trainable") != 0))
    return samx_fail("%s: __metadata__ \"params\" is %s, expected all or trainable", st->path,
                     params ? params : "missing");
  *all_params = strcmp(params, "all") == 0;
  if (ck->optim) {
    const char *want = samx_optim_kind_name(ck->optim->cfg.kind);
    if (!optimizer || strcmp(optimizer, "none") == 0)
      return samx_fail("%s: the checkpoint holds no optimizer state, the run needs %s state", st->path, want);
    if (strcmp(optimizer, want) != 0)
      return samx_fail("%s: the checkpoint holds %s optimizer state, the run uses %s", st->path, optimizer, want);
  }
  return 0;
}

static int check_state(const SamxSafetensors *st, const SamxOptim *o) {
  const SamxParams *p = o->params;
  char name[512];
  for (int i = 0; i < p->n; i++) {
    if (o->offset[i] < 0) continue;
    const SamxTensor *t = p->list[i];
    snprintf(name, sizeof name, M_PREFIX "%s", t->name);
    if (o->m && check_entry(st, name, SAMX_F32, t->ndim, t->shape) != 0) return -1;
    snprintf(name, sizeof name, V_PREFIX "%s", t->name);
    if (o->v && check_entry(st, name, SAMX_F32, t->ndim, t->shape) != 0) return -1;
  }
  return check_i64(st, OPTIM_STEP, 1);
}

// Everything the load will touch, checked before anything is written.
static int validate(const SamxSafetensors *st, const SamxCheckpoint *ck) {
  int all_params = 1;
  if (check_header(st, ck, &all_params) != 0) return -1;
  const SamxParams *p = ck->params;
  for (int i = 0; i < p->n; i++) {
    const SamxTensor *t = p->list[i];
    if (!all_params && !t->requires_grad && !samx_st_find(st, t->name)) continue;  // comes from the base weights
    if (check_entry(st, t->name, SAMX_F32, t->ndim, t->shape) != 0) return -1;
  }
  if (ck->optim && check_state(st, ck->optim) != 0) return -1;
  if (check_i64(st, GLOBAL_STEP, 1) != 0) return -1;
  if (ck->ctx && check_i64(st, RNG, 2) != 0) return -1;
  return check_known(st, ck);
}

static void load_state(const SamxSafetensors *st, SamxOptim *o, float *buf, int i, const char *prefix) {
  const SamxTensor *t = o->params->list[i];
  char name[512];
  snprintf(name, sizeof name, "%s%s", prefix, t->name);
  const SamxSTEntry *e = samx_st_find(st, name);
  samx_memcpy(o->params->device, buf + o->offset[i], samx_cpu(), e->data, e->nbytes);
}

int samx_checkpoint_load(const char *path, SamxCheckpoint *ck, char **meta_json) {
  SAMX_ASSERT(ck->params && ck->params->allocated, "checkpoint load: parameters missing or not allocated");
  SAMX_ASSERT(!ck->optim || ck->optim->params == ck->params,
              "checkpoint load: the optimizer belongs to another parameter store");
  if (meta_json) *meta_json = NULL;
  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) return -1;
  if (validate(&st, ck) != 0) {
    samx_st_close(&st);
    return -1;
  }
  SamxParams *p = ck->params;
  for (int i = 0; i < p->n; i++) {
    const SamxSTEntry *e = samx_st_find(&st, p->list[i]->name);
    if (e) samx_st_load_into(&st, e, p->list[i]);  // validated: cannot fail
  }
  SamxOptim *o = ck->optim;
  if (o) {
    for (int i = 0; i < p->n; i++) {
      if (o->offset[i] < 0) continue;
      if (o->m) load_state(&st, o, o->m, i, M_PREFIX);
      if (o->v) load_state(&st, o, o->v, i, V_PREFIX);
    }
    o->step = read_i64(&st, OPTIM_STEP, 0);
  }
  ck->global_step = read_i64(&st, GLOBAL_STEP, 0);
  if (ck->ctx) {
    int64_t seed = read_i64(&st, RNG, 0), offset = read_i64(&st, RNG, 1);
    memcpy(&ck->ctx->seed, &seed, 8);
    memcpy(&ck->ctx->rng_offset, &offset, 8);
  }
  const char *meta = samx_st_meta(&st, "meta");
  if (meta_json && meta) *meta_json = strdup(meta);
  samx_st_close(&st);
  return 0;
}
