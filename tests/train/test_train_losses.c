// The training losses (train/losses.h) against three oracles:
//  - a naive double-precision reference written here, with the matching found by brute force over
//    all assignments (independent of eval/hungarian.c);
//  - central finite differences of that reference for the gradients;
//  - PyTorch autograd with scipy's linear_sum_assignment (tests/train/ref_train_losses.py, run with
//    $SAMX_PYTHON, Debian's python3 with torch 1.13 and scipy).
// Plus sam-ft's loss with loss.multimask_weight (token 0's Dice + BCE plus the weighted minimum Dice
// over the 3 multimask outputs) against the same double reference. Plus the output selection of SeqSAM's randomised strided pooling (K outputs, one per chunk, also
// when K does not divide M). argv[1] "cuda": the engine on cuda:0 against the CPU backend.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/rng.h"
#include "models/samft/samft.h"
#include "train/config.h"
#include "train/losses.h"

#define MAXN 4096

typedef struct {
  const char *name;
  int kind;  // 0: set loss, 1: wta loss
  int B, M, K, h, w;
  int identity, select;  // set loss
  int per_row;           // wta loss
} Case;

static const Case CASES[] = {
    {"set_strided", 0, 2, 5, 3, 6, 5, 0, SAMX_SELECT_STRIDED, 0},  // K does not divide M
    {"set_identity", 0, 1, 3, 3, 4, 4, 1, SAMX_SELECT_FIRST, 0},
    {"set_fewer_outputs", 0, 2, 2, 3, 5, 4, 0, SAMX_SELECT_STRIDED, 0},  // M < K: rectangular, 2 pairs
    {"set_random", 0, 2, 6, 2, 4, 5, 0, SAMX_SELECT_RANDOM, 0},
    {"wta_mask", 1, 3, 3, 0, 5, 4, 0, 0, 0},
    {"wta_rows", 1, 2, 3, 0, 4, 6, 0, 0, 1},
};
#define N_CASES (int)(sizeof CASES / sizeof *CASES)

// Inputs of one case, fixed by its index.
typedef struct {
  float x[MAXN];       // logits: set [M, B, h*w]; wta [B, J, h*w]
  float labels[MAXN];  // set [B, K, h*w]; wta target [B, h*w]
  uint8_t valid[64], selected[256];
  int nx, nl;
} Inputs;

static void make_inputs(const Case *c, int ci, Inputs *in) {
  uint64_t st = 1000 + (uint64_t)ci;
  int npx = c->h * c->w;
  in->nx = c->M * c->B * npx;
  samx_test_fill_uniform(in->x, in->nx, -2.5f, 2.5f, &st);
  int nl = c->kind == 0 ? c->B * c->K * npx : c->B * npx;
  in->nl = nl;
  for (int i = 0; i < nl; i++) in->labels[i] = (samx_splitmix64(&st) % 3) == 0 ? 1.0f : 0.0f;
  memset(in->valid, 1, sizeof in->valid);
  if (c->kind == 0) {
    if (c->K >= 3) memset(in->labels + 2 * npx, 0, sizeof(float) * (size_t)npx);  // image 0, label 2: empty
    if (c->B >= 2 && c->K >= 2) in->valid[1 * c->K + 1] = 0;                       // image 1, label 1: absent
    for (int b = 0; b < c->B; b++) samx_seqsam_select(c->M, c->K, c->select, 77 + (uint64_t)b, in->selected + b * c->M);
  }
}

// ---- the double-precision reference ----
static double dice_ref(const double *x, const float *g, int n, double eps) {
  double inter = 0, den = 0;
  for (int i = 0; i < n; i++) {
    double p = 1.0 / (1.0 + exp(-x[i]));
    inter += p * g[i];
    den += p * p + (double)g[i] * g[i];
  }
  return 1.0 - (2.0 * inter + eps) / (den + eps);
}

// Minimum total cost over injective maps of the smaller side into the larger (brute force).
static double best_assign(const double *cost, int nr, int nc, int r, int *used, int *assign, int *best_assign_out,
                          double acc, double best) {
  int rows_small = nr <= nc;
  int n_small = rows_small ? nr : nc, n_big = rows_small ? nc : nr;
  if (r == n_small) {
    if (acc < best) memcpy(best_assign_out, assign, sizeof(int) * (size_t)n_small);
    return acc < best ? acc : best;
  }
  for (int j = 0; j < n_big; j++) {
    if (used[j]) continue;
    used[j] = 1;
    assign[r] = j;
    double c = rows_small ? cost[r * nc + j] : cost[j * nc + r];
    best = best_assign(cost, nr, nc, r + 1, used, assign, best_assign_out, acc + c, best);
    used[j] = 0;
  }
  return best;
}

static double set_ref(const Case *c, const Inputs *in, const double *x) {
  int npx = c->h * c->w, M = c->M, B = c->B, K = c->K;
  double loss = 0, eps = 1e-5;
  for (int b = 0; b < B; b++) {
    int rows[16], cols[16], nr = 0, nc = 0;
    for (int i = 0; i < M; i++)
      if (in->selected[b * M + i]) rows[nr++] = i;
    for (int k = 0; k < K; k++)
      if (in->valid[b * K + k]) cols[nc++] = k;
    double cost[256];
    for (int r = 0; r < nr; r++)
      for (int q = 0; q < nc; q++)
        cost[r * nc + q] = dice_ref(x + ((size_t)rows[r] * B + b) * npx, in->labels + ((size_t)b * K + cols[q]) * npx, npx, eps);
    int pair_r[16], pair_c[16], np = 0;
    if (c->identity) {
      for (int r = 0; r < nr && r < nc; r++) pair_r[np] = r, pair_c[np++] = r;
    } else {
      int used[16] = {0}, assign[16], best[16];
      best_assign(cost, nr, nc, 0, used, assign, best, 0, INFINITY);
      int small = nr <= nc ? nr : nc;
      for (int s = 0; s < small; s++) {
        pair_r[np] = nr <= nc ? s : best[s];
        pair_c[np++] = nr <= nc ? best[s] : s;
      }
    }
    for (int p = 0; p < np; p++) {
      const float *g = in->labels + ((size_t)b * K + cols[pair_c[p]]) * npx;
      double sum = 0;
      for (int i = 0; i < npx; i++) sum += g[i];
      if (sum > 0) loss += cost[pair_r[p] * nc + pair_c[p]];
    }
  }
  return loss / K;
}

static double wta_ref(const Case *c, const Inputs *in, const double *x) {
  int B = c->B, J = c->M, h = c->h, w = c->w, npx = h * w;
  double loss = 0;
  for (int b = 0; b < B; b++) {
    double best = INFINITY;
    for (int j = 0; j < J; j++) {
      const double *xj = x + ((size_t)b * J + j) * npx;
      const float *g = in->labels + (size_t)b * npx;
      double d = 0;
      if (c->per_row) {
        for (int r = 0; r < h; r++) d += dice_ref(xj + r * w, g + r * w, w, 1e-5) / h;
      } else {
        d = dice_ref(xj, g, npx, 1e-5);
      }
      if (d < best) best = d;
    }
    loss += best / B;
  }
  return loss;
}

static double ref_loss(const Case *c, const Inputs *in, const double *x) {
  return c->kind == 0 ? set_ref(c, in, x) : wta_ref(c, in, x);
}

// ---- the engine ----
static float run_engine(const Case *c, const Inputs *in, SamxDevice dev, float *grad) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  int npx = c->h * c->w;
  float loss_v;
  if (c->kind == 0) {
    SamxTensor *outs[16];
    for (int i = 0; i < c->M; i++) {
      outs[i] = samx_from_host(&ctx, SHAPE(c->B, 1, c->h, c->w), in->x + (size_t)i * c->B * npx);
      outs[i]->requires_grad = 1;
    }
    SamxTensor *loss = samx_set_dice_loss(&ctx, outs, c->M, in->labels, in->valid, c->B, c->K, in->selected,
                                          c->identity, 1e-5f, NULL);
    samx_tensor_read_f32(loss, &loss_v);
    CHECK(samx_backward(&ctx, loss, NULL) == 0, "%s: backward: %s", c->name, samx_last_error());
    for (int i = 0; i < c->M; i++) {
      if (outs[i]->grad)
        samx_tensor_read_f32(outs[i]->grad, grad + (size_t)i * c->B * npx);
      else
        memset(grad + (size_t)i * c->B * npx, 0, sizeof(float) * (size_t)(c->B * npx));
    }
  } else {
    SamxTensor *x = samx_from_host(&ctx, SHAPE(c->B, c->M, c->h, c->w), in->x);
    x->requires_grad = 1;
    SamxTensor *loss = samx_wta_dice_loss(&ctx, x, in->labels, c->per_row, 1e-5f, NULL);
    samx_tensor_read_f32(loss, &loss_v);
    CHECK(samx_backward(&ctx, loss, NULL) == 0, "%s: backward: %s", c->name, samx_last_error());
    samx_tensor_read_f32(x->grad, grad);
  }
  samx_ctx_free(&ctx);
  return loss_v;
}

// ---- PyTorch ----
static int torch_refs(const Inputs *ins, SamxSafetensors *out, char *dir) {
  SamxSTWriter *w = samx_st_writer_new();
  char name[128];
  for (int ci = 0; ci < N_CASES; ci++) {
    const Case *c = &CASES[ci];
    const Inputs *in = &ins[ci];
    int64_t npx = c->h * c->w;
    int32_t kind = c->kind, identity = c->identity, per_row = c->per_row;
    float eps = 1e-5f;
#define ADD(suffix, dt, nd, shp, data)                         \
  do {                                                         \
    snprintf(name, sizeof name, "%s.%s", c->name, suffix);     \
    samx_st_writer_add(w, name, dt, nd, (int64_t[])shp, data); \
  } while (0)
#define S(...) {__VA_ARGS__}
    ADD("kind", SAMX_I32, 1, S(1), &kind);
    ADD("eps", SAMX_F32, 1, S(1), &eps);
    if (c->kind == 0) {
      ADD("outs", SAMX_F32, 5, S(c->M, c->B, 1, c->h, c->w), in->x);
      ADD("labels", SAMX_F32, 3, S(c->B, c->K, npx), in->labels);
      ADD("valid", SAMX_U8, 1, S(c->B * c->K), in->valid);
      ADD("selected", SAMX_U8, 1, S(c->B * c->M), in->selected);
      ADD("identity", SAMX_I32, 1, S(1), &identity);
    } else {
      ADD("logits", SAMX_F32, 4, S(c->B, c->M, c->h, c->w), in->x);
      ADD("target", SAMX_F32, 2, S(c->B, npx), in->labels);
      ADD("per_row", SAMX_I32, 1, S(1), &per_row);
    }
  }
  char in_path[512], out_path[512], cmd[2048];
  snprintf(in_path, sizeof in_path, "%s/in.safetensors", dir);
  snprintf(out_path, sizeof out_path, "%s/out.safetensors", dir);
  int rc = samx_st_writer_save(w, in_path);
  samx_st_writer_free(w);
  if (rc) return -1;
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  snprintf(cmd, sizeof cmd, "'%s' tests/train/ref_train_losses.py %s %s", py, in_path, out_path);
  if (system(cmd) != 0) return -1;
  return samx_st_open(out, out_path);
}

static double max_diff(const float *a, const double *b, int n, double *scale) {
  double m = 0, s = 0;
  for (int i = 0; i < n; i++) {
    m = fmax(m, fabs((double)a[i] - b[i]));
    s = fmax(s, fabs(b[i]));
  }
  *scale = s;
  return m;
}

static void check_case(int ci, const Inputs *in, const SamxSafetensors *torch) {
  const Case *c = &CASES[ci];
  static float grad[MAXN];
  static double x[MAXN], fd[MAXN];
  float loss = run_engine(c, in, samx_cpu(), grad);
  for (int i = 0; i < in->nx; i++) x[i] = in->x[i];
  double want = ref_loss(c, in, x);
  CHECK(fabs(loss - want) <= 1e-5 * (1 + fabs(want)), "%s: loss %.8g, reference %.8g", c->name, loss, want);
  if (c->kind == 0 && !c->identity) {
    // The inputs must tell matchings apart: the identity matching gives another loss.
    Case other = *c;
    other.identity = 1;
    double ident = ref_loss(&other, in, x);
    CHECK(fabs(ident - want) > 1e-3, "%s: identity matching gives the same loss %.6g: inputs do not test the matching",
          c->name, ident);
  }
  for (int i = 0; i < in->nx; i++) {
    double h = 1e-4, keep = x[i];
    x[i] = keep + h;
    double up = ref_loss(c, in, x);
    x[i] = keep - h;
    double down = ref_loss(c, in, x);
    x[i] = keep;
    fd[i] = (up - down) / (2 * h);
  }
  double scale, err = max_diff(grad, fd, in->nx, &scale);
  CHECK(err <= 1e-3 * fmax(scale, 1e-2), "%s: gradient off finite differences by %.3g (max |fd| %.3g)", c->name, err, scale);
  printf("%s: loss %.6f (ref %.6f), grad err vs FD %.2g of %.2g", c->name, loss, want, err, scale);
  if (torch) {
    char key[128];
    snprintf(key, sizeof key, "%s.loss", c->name);
    const SamxSTEntry *tl = samx_st_find(torch, key);
    snprintf(key, sizeof key, "%s.grad", c->name);
    const SamxSTEntry *tg = samx_st_find(torch, key);
    CHECK(tl && tg && tg->numel == in->nx, "%s: torch reference missing", c->name);
    if (tl && tg && tg->numel == in->nx) {
      float tloss = ((const float *)tl->data)[0];
      static double tgd[MAXN];
      for (int i = 0; i < in->nx; i++) tgd[i] = ((const float *)tg->data)[i];
      double terr = max_diff(grad, tgd, in->nx, &scale);
      CHECK(fabs(loss - tloss) <= 1e-5 * (1 + fabs(tloss)), "%s: loss %.8g, torch %.8g", c->name, loss, tloss);
      CHECK(terr <= 1e-4 * fmax(scale, 1e-2), "%s: gradient off torch by %.3g (max %.3g)", c->name, terr, scale);
      printf(", torch loss %.6f grad err %.2g", tloss, terr);
    }
  }
  printf("\n");
}

static void check_cuda(int ci, const Inputs *in) {
  const Case *c = &CASES[ci];
  static float gc[MAXN], gg[MAXN];
  float lc = run_engine(c, in, samx_cpu(), gc), lg = run_engine(c, in, (SamxDevice){SAMX_CUDA, 0}, gg);
  double m = samx_test_max_rel(gg, gc, in->nx);
  CHECK(fabs(lc - lg) <= 1e-5 * (1 + fabs(lc)) && m <= 1e-4, "%s cuda: loss %.8g vs cpu %.8g, grad rel err %.3g", c->name,
        lg, lc, m);
  printf("%s cuda: loss %.6f (cpu %.6f), grad rel err %.2g\n", c->name, lg, lc, m);
}

// Strided pooling picks exactly K outputs, one from each near-equal consecutive chunk; random picks
// K distinct ones; every output of a chunk is picked by some seed.
static void check_selection(void) {
  uint8_t sel[64];
  for (int M = 1; M <= 12; M++)
    for (int K = 1; K <= 5; K++)
      for (int mode = 0; mode < 3; mode++) {
        int seen[64] = {0};
        for (uint64_t seed = 0; seed < 200; seed++) {
          samx_seqsam_select(M, K, mode, seed, sel);
          int n = 0;
          for (int i = 0; i < M; i++) n += sel[i], seen[i] += sel[i];
          int want = M < K ? M : K;
          CHECK(n == want, "select M=%d K=%d mode %d: %d outputs, expected %d", M, K, mode, n, want);
          if (mode == SAMX_SELECT_STRIDED && M > K)
            for (int j = 0; j < K; j++) {
              int lo = j * M / K, hi = (j + 1) * M / K, in_chunk = 0;
              for (int i = lo; i < hi; i++) in_chunk += sel[i];
              CHECK(in_chunk == 1, "strided M=%d K=%d: chunk [%d, %d) holds %d picks", M, K, lo, hi, in_chunk);
            }
          if (mode == SAMX_SELECT_FIRST || M <= K)
            for (int i = 0; i < M; i++) CHECK(sel[i] == (i < K), "first M=%d K=%d: output %d", M, K, i);
        }
        if (mode != SAMX_SELECT_FIRST && M > K)
          for (int i = 0; i < M; i++) CHECK(seen[i] > 0, "mode %d M=%d K=%d: output %d never drawn", mode, M, K, i);
      }
  printf("selection: strided / random / first checked for M 1..12, K 1..5\n");
}

// sam-ft with multimask_weight: outs[0] single-mask, outs[1..3] the multimask outputs, [B, 1, h, w].
static void check_samft_multimask(void) {
  enum { B = 2, J = 4, H = 5, W = 4, NPX = H * W };
  float x[J][B * NPX], target[B * NPX];
  uint64_t st = 4242;
  for (int j = 0; j < J; j++) samx_test_fill_uniform(x[j], B * NPX, -2.5f, 2.5f, &st);
  for (int i = 0; i < B * NPX; i++) target[i] = (samx_splitmix64(&st) % 3) == 0 ? 1.0f : 0.0f;
  const float mw = 0.7f, bce_w = 1.0f;
  // reference: mean_b Dice(out0) + bce_w * mean BCE(out0) + mw * mean_b min_{j>=1} Dice(out_j)
  double xd[NPX], single = 0, bce = 0, multi = 0;
  int winner[B];
  for (int b = 0; b < B; b++) {
    const float *g = target + b * NPX;
    for (int i = 0; i < NPX; i++) {
      xd[i] = x[0][b * NPX + i];
      bce += (fmax(xd[i], 0) - xd[i] * g[i] + log1p(exp(-fabs(xd[i])))) / (B * NPX);
    }
    single += dice_ref(xd, g, NPX, 1e-5) / B;
    double best = INFINITY;
    for (int j = 1; j < J; j++) {
      for (int i = 0; i < NPX; i++) xd[i] = x[j][b * NPX + i];
      double d = dice_ref(xd, g, NPX, 1e-5);
      if (d < best) best = d, winner[b] = j;
    }
    multi += best / B;
  }
  SamxCtx ctx;
  samx_test_ctx(&ctx, (SamxDevice){.type = SAMX_CPU});
  SamxTensor *outs[J];
  SamxMethodOpts o = sam_method_opts_defaults();
  o.dice_eps = 1e-5f, o.bce_weight = bce_w, o.multimask_weight = mw;
  SamxMethodBatch mb = {.P = B, .target = target};
  for (int m = 1; m <= J; m += J - 1) {  // m = 1: the single-mask loss alone (inference, or weight 0)
    samx_ctx_reset(&ctx);
    for (int j = 0; j < J; j++) {
      outs[j] = samx_from_host(&ctx, SHAPE(B, 1, H, W), x[j]);
      outs[j]->requires_grad = 1;
    }
    SamxTensor *loss = samx_method_samft.loss(&ctx, NULL, outs, m, &mb, 1, &o, 0);
    float v;
    samx_tensor_read_f32(loss, &v);
    double want = single + bce_w * bce + (m == J ? mw * multi : 0);
    CHECK(fabs(v - want) < 1e-5 * (1 + fabs(want)), "samft multimask m=%d: loss %.7f, reference %.7f", m, v, want);
    CHECK(samx_backward(&ctx, loss, NULL) == 0, "samft multimask: backward: %s", samx_last_error());
    // Only the winning multimask output of each sample gets a gradient (SAM's minimum over masks).
    for (int j = 1; j < J; j++)
      for (int b = 0; b < B; b++) {
        float gsum = 0, gb[B * NPX];
        if (outs[j]->grad) samx_tensor_read_f32(outs[j]->grad, gb);
        for (int i = 0; outs[j]->grad && i < NPX; i++) gsum += fabsf(gb[b * NPX + i]);
        int should = m == J && j == winner[b];
        CHECK(should ? gsum > 0 : gsum == 0, "samft multimask m=%d: output %d sample %d gradient %g", m, j, b, gsum);
      }
  }
  samx_ctx_free(&ctx);
  printf("sam-ft multimask loss: checked against the double reference (winners %d %d)\n", winner[0], winner[1]);
}

int main(int argc, char **argv) {
  static Inputs ins[N_CASES];
  for (int ci = 0; ci < N_CASES; ci++) make_inputs(&CASES[ci], ci, &ins[ci]);
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type == SAMX_CUDA) {
    for (int ci = 0; ci < N_CASES; ci++) check_cuda(ci, &ins[ci]);
    return samx_test_summary();
  }
  check_selection();
  check_samft_multimask();
  char dir[] = "/tmp/samx_train_losses_XXXXXX";
  SamxSafetensors torch;
  int have_torch = mkdtemp(dir) && torch_refs(ins, &torch, dir) == 0;
  CHECK(have_torch, "PyTorch reference failed to run (tests/train/ref_train_losses.py)");
  for (int ci = 0; ci < N_CASES; ci++) check_case(ci, &ins[ci], have_torch ? &torch : NULL);
  if (have_torch) samx_st_close(&torch);
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
