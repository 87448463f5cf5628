// Checkpoints: a save/load round trip is bit-exact (parameters, optimizer state, steps, RNG position,
// metadata); "train 5, save, train 5" and "train 5, load into a fresh model, train 5" give identical
// losses bit for bit (and differ when the optimizer state or the RNG position is not restored, so
// the comparison has teeth); bad checkpoints are refused with messages naming the tensor, before
// anything is written.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/checkpoint.h"
#include "../harness.h"

#define B 4
#define D_IN 6
#define D_H 8
#define D_OUT 3

typedef struct {
  SamxParams p;
  SamxTensor *frozen, *w1, *b1, *ln_w, *ln_b, *w2, *b2;
} Model;

// A small model with a frozen input projection, LayerNorm and a reparameterised Gaussian head (so the
// losses depend on the context's RNG position). extra: one more parameter; other_shape: fc2.bias of
// another size (for the refusal tests).
static void model_init(Model *m, SamxDevice dev, uint64_t seed, int extra, int other_shape) {
  samx_params_init(&m->p);
  m->frozen = samx_param(&m->p, "proj.weight", SHAPE(D_IN, D_IN), 0);
  m->w1 = samx_param(&m->p, "fc1.weight", SHAPE(D_H, D_IN), 1);
  m->b1 = samx_param(&m->p, "fc1.bias", SHAPE(D_H), 1);
  m->ln_w = samx_param(&m->p, "ln.weight", SHAPE(D_H), 1);
  m->ln_b = samx_param(&m->p, "ln.bias", SHAPE(D_H), 1);
  m->w2 = samx_param(&m->p, "fc2.weight", SHAPE(2 * D_OUT, D_H), 1);
  m->b2 = samx_param(&m->p, "fc2.bias", other_shape ? SHAPE(2 * D_OUT + 1) : SHAPE(2 * D_OUT), 1);
  if (extra) samx_param(&m->p, "extra", SHAPE(2), 1);
  samx_params_allocate(&m->p, dev);
  for (int i = 0; i < m->p.n; i++) samx_randn_fill(m->p.list[i], seed, (uint64_t)i << 20, 0.0f, 0.4f);
  samx_tensor_fill(m->ln_w, 1.0f);
}

static void batch(int64_t step, float *x, float *y) {
  uint64_t state = 1000 + (uint64_t)step;
  samx_test_fill_uniform(x, B * D_IN, -1, 1, &state);
  samx_test_fill_uniform(y, B * D_OUT, -1, 1, &state);
}

static SamxTensor *forward_loss(Model *m, SamxCtx *ctx, int64_t step) {
  float x[B * D_IN], y[B * D_OUT];
  batch(step, x, y);
  SamxTensor *h = samx_linear(ctx, samx_from_host(ctx, SHAPE(B, D_IN), x), m->frozen, NULL);
  h = samx_gelu(ctx, samx_linear(ctx, h, m->w1, m->b1));
  h = samx_layernorm(ctx, h, m->ln_w, m->ln_b, 1e-5f);
  SamxTensor *out = samx_linear(ctx, h, m->w2, m->b2);
  SamxTensor *mu = samx_slice(ctx, out, 1, 0, D_OUT);
  SamxTensor *log_sigma = samx_scale(ctx, samx_slice(ctx, out, 1, D_OUT, 2 * D_OUT), 0.5f);
  SamxTensor *z = samx_gaussian_sample(ctx, mu, log_sigma);
  return samx_mse_loss(ctx, z, samx_from_host(ctx, SHAPE(B, D_OUT), y), SAMX_REDUCE_MEAN);
}

static const SamxSchedule sched = {SAMX_SCHED_COSINE, 0.02f, 0.001f, 2, 10};

typedef struct {
  Model m;
  SamxOptim opt;
  SamxCtx ctx;
  int64_t global_step;
} Run;

static void run_init(Run *r, SamxDevice dev, uint64_t init_seed, uint64_t ctx_seed) {
  model_init(&r->m, dev, init_seed, 0, 0);
  samx_optim_init(&r->opt, &r->m.p, samx_adamw_config(0.01));
  samx_optim_add_group_if(&r->opt, samx_param_is_1d, NULL, 1.0, 0.0);
  samx_test_ctx(&r->ctx, dev);
  r->ctx.seed = ctx_seed;
  r->global_step = 0;
}

static void run_free(Run *r) {
  samx_ctx_free(&r->ctx);
  samx_optim_free(&r->opt);
  samx_params_free(&r->m.p);
}

static float train_step(Run *r) {
  samx_ctx_reset(&r->ctx);
  samx_params_zero_grad(&r->m.p);
  SamxTensor *loss = forward_loss(&r->m, &r->ctx, r->global_step);
  float value;
  samx_tensor_read(loss, &value);
  if (samx_backward(&r->ctx, loss, NULL) != 0) CHECK(0, "backward: %s", samx_last_error());
  samx_clip_grad_norm(&r->m.p, 1.0f);
  samx_optim_step(&r->opt, samx_lr_at(&sched, r->opt.step));
  r->global_step++;
  return value;
}

static SamxCheckpoint checkpoint_of(Run *r) {
  SamxCheckpoint ck = {&r->m.p, &r->opt, &r->ctx, r->global_step, 0};
  return ck;
}

// Bytes of everything a checkpoint holds, for bit-exact comparisons.
static int same_state(Run *a, Run *b, const char *label) {
  int same = a->opt.step == b->opt.step && a->global_step == b->global_step && a->ctx.seed == b->ctx.seed &&
             a->ctx.rng_offset == b->ctx.rng_offset;
  CHECK(same, "%s: steps or RNG differ (optim %lld/%lld, global %lld/%lld, seed %llu/%llu, offset %llu/%llu)", label,
        (long long)a->opt.step, (long long)b->opt.step, (long long)a->global_step, (long long)b->global_step,
        (unsigned long long)a->ctx.seed, (unsigned long long)b->ctx.seed, (unsigned long long)a->ctx.rng_offset,
        (unsigned long long)b->ctx.rng_offset);
  size_t n = (size_t)a->m.p.n_trainable;
  float *x = (float *)malloc(n * sizeof(float) + 4), *y = (float *)malloc(n * sizeof(float) + 4);
  for (int i = 0; i < a->m.p.n; i++) {
    SamxTensor *s = a->m.p.list[i], *t = b->m.p.list[i];
    samx_tensor_read(s, x);
    samx_tensor_read(t, y);
    int eq = memcmp(x, y, samx_nbytes(s)) == 0;
    CHECK(eq, "%s: parameter %s differs", label, s->name);
    same &= eq;
  }
  const float *bufs_a[2] = {a->opt.m, a->opt.v}, *bufs_b[2] = {b->opt.m, b->opt.v};
  for (int k = 0; k < 2; k++) {
    samx_memcpy(samx_cpu(), x, a->m.p.device, bufs_a[k], n * sizeof(float));
    samx_memcpy(samx_cpu(), y, b->m.p.device, bufs_b[k], n * sizeof(float));
    int eq = memcmp(x, y, n * sizeof(float)) == 0;
    CHECK(eq, "%s: optimizer buffer %s differs", label, k ? "exp_avg_sq" : "exp_avg");
    same &= eq;
  }
  free(x), free(y);
  return same;
}

static void check_resume(SamxDevice dev, const char *dir) {
  char path[600], dev_name[16];
  snprintf(path, sizeof path, "%s/resume.safetensors", dir);
  samx_device_str(dev, dev_name, sizeof dev_name);
  const char *meta = "{\"config\": {\"lr\": 0.02, \"name\": \"tiny\"}, \"epoch\": 1}";

  Run a;  // uninterrupted: 10 steps
  run_init(&a, dev, 7, 1234);
  float loss_a[10];
  for (int s = 0; s < 5; s++) loss_a[s] = train_step(&a);
  SamxCheckpoint ck = checkpoint_of(&a);
  ck.global_step = a.global_step;
  CHECK(samx_checkpoint_save(path, &ck, meta) == 0, "save: %s", samx_last_error());

  // Round trip: a fresh run with other initial values and another seed loads the file.
  Run b;
  run_init(&b, dev, 99, 555);
  SamxCheckpoint ckb = checkpoint_of(&b);
  char *meta_back = NULL;
  CHECK(samx_checkpoint_load(path, &ckb, &meta_back) == 0, "load: %s", samx_last_error());
  b.global_step = ckb.global_step;
  CHECK(meta_back && strcmp(meta_back, meta) == 0, "metadata round trip: %s", meta_back ? meta_back : "(none)");
  free(meta_back);
  int exact = same_state(&a, &b, "round trip");
  printf("%s %s: save/load round trip bit-exact\n", exact ? "PASS" : "FAIL", dev_name);

  for (int s = 5; s < 10; s++) loss_a[s] = train_step(&a);
  int identical = 1, varied = 0;
  for (int s = 5; s < 10; s++) {
    float l = train_step(&b);
    identical &= memcmp(&l, &loss_a[s], sizeof l) == 0;
    varied |= loss_a[s] != loss_a[5];
    printf("  %s step %d: loss %.9g uninterrupted, %.9g resumed\n", dev_name, s, loss_a[s], l);
  }
  CHECK(identical, "%s: resumed losses differ from the uninterrupted run", dev_name);
  CHECK(varied, "%s: losses did not change over steps 5..9 (the comparison would prove nothing)", dev_name);
  same_state(&a, &b, "after 5 more steps");
  printf("%s %s: train 5 + save + train 5 == train 5 + load + train 5\n", identical ? "PASS" : "FAIL", dev_name);

  // Negative controls: without the optimizer state, or without the RNG position, the losses differ.
  for (int variant = 0; variant < 2; variant++) {
    Run c;
    run_init(&c, dev, 99, 555);
    SamxCheckpoint ckc = checkpoint_of(&c);
    if (variant == 0) ckc.optim = NULL;
    if (variant == 1) ckc.ctx = NULL;
    CHECK(samx_checkpoint_load(path, &ckc, NULL) == 0, "partial load: %s", samx_last_error());
    c.global_step = ckc.global_step;
    if (variant == 0) c.opt.step = 5;  // same schedule position; fresh moments
    int differs = 0;
    for (int s = 5; s < 10; s++) {
      float l = train_step(&c);
      differs |= l != loss_a[s];
    }
    CHECK(differs, "%s: losses identical without the %s: the resume test cannot see it", dev_name,
          variant ? "RNG position" : "optimizer state");
    run_free(&c);
  }
  run_free(&a);
  run_free(&b);
  unlink(path);
}

// ---- refusals ----

static void expect_load_fails(const char *label, const char *path, SamxCheckpoint *ck, const char *needle1,
                              const char *needle2) {
  samx_clear_error();
  int rc = samx_checkpoint_load(path, ck, NULL);
  const char *msg = samx_last_error();
  int ok = rc == -1 && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
  CHECK(ok, "%s: rc %d, message \"%s\" (expected \"%s\"%s%s)", label, rc, msg, needle1, needle2 ? " and " : "",
        needle2 ? needle2 : "");
  if (ok) printf("PASS refused %s: %s\n", label, msg);
}

static void check_refusals(const char *dir) {
  char path[600], other[600];
  snprintf(path, sizeof path, "%s/ck.safetensors", dir);
  snprintf(other, sizeof other, "%s/plain.safetensors", dir);
  Run a;
  run_init(&a, samx_cpu(), 7, 1);
  train_step(&a);
  SamxCheckpoint ck = checkpoint_of(&a);
  CHECK(samx_checkpoint_save(path, &ck, "{\"ok\": true}") == 0, "save: %s", samx_last_error());
  CHECK(samx_checkpoint_save(other, &ck, "{not json") == -1 && strstr(samx_last_error(), "not valid JSON"),
        "invalid metadata JSON must be refused: %s", samx_last_error());
  CHECK(access(other, F_OK) != 0, "a refused save must not leave a file");

  Model m;
  model_init(&m, samx_cpu(), 3, 1, 0);  // one parameter more than the file has
  SamxCheckpoint c1 = {&m.p, NULL, NULL, 0, 0};
  expect_load_fails("missing parameter", path, &c1, "'extra'", "missing");
  samx_params_free(&m.p);

  model_init(&m, samx_cpu(), 3, 0, 1);
  SamxCheckpoint c2 = {&m.p, NULL, NULL, 0, 0};
  expect_load_fails("shape mismatch", path, &c2, "'fc2.bias'", "[6], the model expects [7]");
  samx_params_free(&m.p);

  // A model without fc2.bias: everything it has is valid, the unknown tensor comes last; nothing may
  // be written before the refusal.
  samx_params_init(&m.p);
  SamxTensor *w1 = samx_param(&m.p, "fc1.weight", SHAPE(D_H, D_IN), 1);
  samx_params_allocate(&m.p, samx_cpu());
  samx_tensor_fill(w1, 42.0f);
  SamxCheckpoint c3 = {&m.p, NULL, NULL, 0, 0};
  expect_load_fails("unknown tensor", path, &c3, "is not a parameter of the model", NULL);
  float w1_host[D_H * D_IN];
  samx_tensor_read(w1, w1_host);
  CHECK(w1_host[0] == 42.0f && w1_host[D_H * D_IN - 1] == 42.0f, "a refused load modified a parameter");
  samx_params_free(&m.p);

  Run s;
  model_init(&s.m, samx_cpu(), 3, 0, 0);
  samx_optim_init(&s.opt, &s.m.p, samx_sgd_config(0.9, 0, 0));
  SamxCheckpoint c4 = {&s.m.p, &s.opt, NULL, 0, 0};
  expect_load_fails("optimizer mismatch", path, &c4, "holds adamw optimizer state, the run uses sgd", NULL);
  samx_optim_free(&s.opt);
  samx_params_free(&s.m.p);

  // A weights-only checkpoint has no optimizer state to resume from.
  SamxCheckpoint weights = {&a.m.p, NULL, NULL, 3, 1};
  CHECK(samx_checkpoint_save(other, &weights, NULL) == 0, "save: %s", samx_last_error());
  SamxCheckpoint c5 = checkpoint_of(&a);
  expect_load_fails("no optimizer state", other, &c5, "no optimizer state", NULL);
  // ... but loads as weights, and trainable_only leaves the frozen parameter alone.
  samx_tensor_fill(a.m.frozen, 5.0f);
  SamxCheckpoint c6 = {&a.m.p, NULL, NULL, 0, 0};
  char *meta = (char *)"sentinel";
  CHECK(samx_checkpoint_load(other, &c6, &meta) == 0, "weights-only load: %s", samx_last_error());
  CHECK(c6.global_step == 3 && meta == NULL, "weights-only load: step %lld, metadata %s", (long long)c6.global_step,
        meta ? meta : "(none)");
  float *f = (float *)malloc(samx_nbytes(a.m.frozen));
  samx_tensor_read(a.m.frozen, f);
  int untouched = 1;
  for (int64_t i = 0; i < a.m.frozen->numel; i++) untouched &= f[i] == 5.0f;
  CHECK(untouched, "trainable-only checkpoint overwrote a frozen parameter");
  free(f);

  // Not a samx checkpoint, and a parameter stored in another dtype.
  SamxSTWriter *w = samx_st_writer_new();
  int64_t n = 2;
  float two[2] = {1, 2};
  samx_st_writer_add(w, "fc1.bias", SAMX_F32, 1, &n, two);
  CHECK(samx_st_writer_save(w, other) == 0, "save: %s", samx_last_error());
  samx_st_writer_free(w);
  expect_load_fails("plain safetensors", other, &c6, "not a samx checkpoint", NULL);
  w = samx_st_writer_new();
  samx_st_writer_meta(w, "format", "samx-checkpoint");
  samx_st_writer_meta(w, "version", "1");
  samx_st_writer_meta(w, "params", "trainable");
  for (int i = 0; i < a.m.p.n; i++) {
    SamxTensor *t = a.m.p.list[i];
    if (!t->requires_grad) continue;
    if (t == a.m.b1) {
      uint16_t half[D_H] = {0};
      samx_st_writer_add(w, t->name, SAMX_F16, t->ndim, t->shape, half);
    } else {
      samx_st_writer_add_tensor(w, t->name, t);
    }
  }
  int64_t one = 1, step = 0;
  samx_st_writer_add(w, "__train__/global_step", SAMX_I64, 1, &one, &step);
  CHECK(samx_st_writer_save(w, other) == 0, "save: %s", samx_last_error());
  samx_st_writer_free(w);
  expect_load_fails("wrong dtype", other, &c6, "'fc1.bias' is F16, expected F32", NULL);

  run_free(&a);
  unlink(path);
  unlink(other);
}

int main(void) {
  char dir[] = "/tmp/samx_ckpt_XXXXXX";
  if (!mkdtemp(dir)) {
    printf("FAIL cannot create a temporary directory\n");
    return 1;
  }
  check_resume(samx_cpu(), dir);
  if (samx_cuda_device_count() > 0)
    check_resume((SamxDevice){SAMX_CUDA, 0}, dir);
  else
    printf("SKIP cuda resume: no CUDA device\n");
  check_refusals(dir);
  rmdir(dir);
  return samx_test_summary();
}
