// reshape, permute, concat, slice, window partition/unpartition: naive double references, finite
// differences, PyTorch (SAM's window functions verbatim), CUDA vs CPU; plain checks that reshape is a
// view sharing its base's version, and that the shape ops invert each other exactly; concat_into
// against concat.
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"

// A shape as a brace initializer (SHAPE is a compound literal, not a constant inside another one).
#define DIMS(...) {SAMX_NARGS(__VA_ARGS__), {__VA_ARGS__}}

// Advances an n-dim odometer c over dims d; returns 0 after the last position.
static int next_index(int64_t *c, const int64_t *d, int n) {
  for (int k = n - 1; k >= 0; k--) {
    if (++c[k] < d[k]) return 1;
    c[k] = 0;
  }
  return 0;
}

static int64_t row_major(const int64_t *c, const int64_t *d, int n) {
  int64_t off = 0;
  for (int k = 0; k < n; k++) off = off * d[k] + c[k];
  return off;
}

// ---- reshape ----

typedef struct {
  SamxShape to;
  int n;
} ReshapeArgs;

static SamxTensor *run_reshape(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_reshape(c, in[0], ((const ReshapeArgs *)a)->to);
}
static void ref_identity(const double *const *in, double *out, const void *a) {
  for (int i = 0; i < ((const ReshapeArgs *)a)->n; i++) out[i] = in[0][i];
}

// ---- permute ----

typedef struct {
  SamxShape x;
  int perm[5];
} PermuteArgs;

static SamxTensor *run_permute(SamxCtx *c, SamxTensor **in, const void *a) {
  return samx_permute(c, in[0], ((const PermuteArgs *)a)->perm);
}

// Scatters each input element to its permuted coordinate.
static void ref_permute(const double *const *in, double *out, const void *args) {
  const PermuteArgs *a = (const PermuteArgs *)args;
  int n = a->x.ndim;
  int64_t c[5] = {0}, oc[5], od[5];
  for (int k = 0; k < n; k++) od[k] = a->x.d[a->perm[k]];
  int64_t src = 0;
  do {
    for (int k = 0; k < n; k++) oc[k] = c[a->perm[k]];
    out[row_major(oc, od, n)] = in[0][src++];
  } while (next_index(c, a->x.d, n));
}

#define PERMUTE_CASE(name_, SX, torch_, ...)                                                        \
  {.name = name_, .n_in = 1, .in = {{SX, 1}}, .run = run_permute, .ref = ref_permute,             \
   .args = &(PermuteArgs){SX, {__VA_ARGS__}}, .torch = torch_}

// ---- concat ----

typedef struct {
  int n, dim;
  SamxShape x[3];
} ConcatArgs;

static SamxTensor *run_concat(SamxCtx *c, SamxTensor **in, const void *args) {
  const ConcatArgs *a = (const ConcatArgs *)args;
  return samx_concat(c, in, a->n, a->dim);
}

// Walks the output in order and picks, per coordinate along dim, the input that covers it.
static void ref_concat(const double *const *in, double *out, const void *args) {
  const ConcatArgs *a = (const ConcatArgs *)args;
  int nd = a->x[0].ndim, k = a->dim < 0 ? a->dim + nd : a->dim;
  int64_t od[5], c[5] = {0}, ic[5];
  for (int i = 0; i < nd; i++) od[i] = a->x[0].d[i];
  od[k] = 0;
  for (int j = 0; j < a->n; j++) od[k] += a->x[j].d[k];
  int64_t o = 0;
  do {
    int j = 0;
    int64_t pos = c[k];
    while (pos >= a->x[j].d[k]) pos -= a->x[j++].d[k];
    memcpy(ic, c, sizeof ic);
    ic[k] = pos;
    out[o++] = in[j][row_major(ic, a->x[j].d, nd)];
  } while (next_index(c, od, nd));
}

// ---- slice ----

typedef struct {
  SamxShape x;
  int dim;
  int64_t start, end;
} SliceArgs;

static SamxTensor *run_slice(SamxCtx *c, SamxTensor **in, const void *args) {
  const SliceArgs *a = (const SliceArgs *)args;
  return samx_slice(c, in[0], a->dim, a->start, a->end);
}

// Keeps, in order, the input elements whose coordinate along dim lies in [start, end).
static void ref_slice(const double *const *in, double *out, const void *args) {
  const SliceArgs *a = (const SliceArgs *)args;
  int nd = a->x.ndim, k = a->dim < 0 ? a->dim + nd : a->dim;
  int64_t c[5] = {0}, src = 0, o = 0;
  do {
    if (c[k] >= a->start && c[k] < a->end) out[o] = in[0][src], o++;
    src++;
  } while (next_index(c, a->x.d, nd));
}

#define SLICE_CASE(name_, SX, dim_, start_, end_, torch_)                                          \
  {.name = name_, .n_in = 1, .in = {{SX, 1}}, .run = run_slice, .ref = ref_slice,                \
   .args = &(SliceArgs){SX, dim_, start_, end_}, .torch = torch_}

// ---- window partition / unpartition ----

typedef struct {
  int64_t B, H, W, C;
  int ws;
} WindowArgs;

static SamxTensor *run_partition(SamxCtx *c, SamxTensor **in, const void *args) {
  return samx_window_partition(c, in[0], ((const WindowArgs *)args)->ws);
}
static SamxTensor *run_unpartition(SamxCtx *c, SamxTensor **in, const void *args) {
  const WindowArgs *a = (const WindowArgs *)args;
  return samx_window_unpartition(c, in[0], a->ws, a->H, a->W);
}

// As SAM: zero-pad the image to [B, Hp, Wp, C], then read windows in (b, wh, ww, y, x, c) order.
// Returns the padded image (malloc'd) and its sizes; window element n is padded[index[n]].
static int64_t *window_order(const WindowArgs *a, int64_t *n_out) {
  int64_t ws = a->ws, Hp = (a->H + ws - 1) / ws * ws, Wp = (a->W + ws - 1) / ws * ws;
  int64_t n = a->B * Hp * Wp * a->C, k = 0;
  int64_t *idx = malloc((size_t)n * sizeof(int64_t));
  for (int64_t b = 0; b < a->B; b++)
    for (int64_t wh = 0; wh < Hp / ws; wh++)
      for (int64_t ww = 0; ww < Wp / ws; ww++)
        for (int64_t y = 0; y < ws; y++)
          for (int64_t x = 0; x < ws; x++)
            for (int64_t c = 0; c < a->C; c++) {
              int64_t py = wh * ws + y, px = ww * ws + x;
              // -1: padding
              idx[k++] = py < a->H && px < a->W ? ((b * a->H + py) * a->W + px) * a->C + c : -1;
            }
  *n_out = n;
  return idx;
}

static void ref_partition(const double *const *in, double *out, const void *args) {
  int64_t n;
  int64_t *idx = window_order((const WindowArgs *)args, &n);
  for (int64_t k = 0; k < n; k++) out[k] = idx[k] >= 0 ? in[0][idx[k]] : 0.0;
  free(idx);
}

static void ref_unpartition(const double *const *in, double *out, const void *args) {
  int64_t n;
  int64_t *idx = window_order((const WindowArgs *)args, &n);
  for (int64_t k = 0; k < n; k++)
    if (idx[k] >= 0) out[idx[k]] = in[0][k];
  free(idx);
}

static const OpCase cases[] = {
    {.name = "reshape", .n_in = 1, .in = {{DIMS(2, 3, 4), 1}}, .run = run_reshape, .ref = ref_identity,
     .args = &(ReshapeArgs){DIMS(4, -1), 24}, .torch = 1},
    {.name = "reshape_5d", .n_in = 1, .in = {{DIMS(6, 4), 1}}, .run = run_reshape, .ref = ref_identity,
     .args = &(ReshapeArgs){DIMS(1, 2, -1, 2, 3), 24}},
    PERMUTE_CASE("permute_2d", DIMS(3, 5), 0, 1, 0),
    PERMUTE_CASE("permute_3d", DIMS(2, 3, 4), 1, 2, 0, 1),
    PERMUTE_CASE("permute_4d", DIMS(2, 3, 4, 5), 1, 0, 2, 1, 3),
    PERMUTE_CASE("permute_5d", DIMS(2, 3, 2, 3, 2), 1, 4, 2, 0, 3, 1),
    {.name = "concat_dim1", .n_in = 3, .in = {{DIMS(2, 3, 4), 1}, {DIMS(2, 1, 4), 1}, {DIMS(2, 2, 4), 1}},
     .run = run_concat, .ref = ref_concat,
     .args = &(ConcatArgs){3, 1, {DIMS(2, 3, 4), DIMS(2, 1, 4), DIMS(2, 2, 4)}}, .torch = 1},
    {.name = "concat_dim0", .n_in = 2, .in = {{DIMS(1, 3), 1}, {DIMS(2, 3), 1}}, .run = run_concat,
     .ref = ref_concat, .args = &(ConcatArgs){2, 0, {DIMS(1, 3), DIMS(2, 3)}}, .torch = 1},
    {.name = "concat_last", .n_in = 2, .in = {{DIMS(2, 3, 2), 1}, {DIMS(2, 3, 3), 1}}, .run = run_concat,
     .ref = ref_concat, .args = &(ConcatArgs){2, -1, {DIMS(2, 3, 2), DIMS(2, 3, 3)}}, .torch = 1},
    // The frozen input must get no gradient.
    {.name = "concat_frozen", .n_in = 2, .in = {{DIMS(2, 2), 0}, {DIMS(2, 3), 1}}, .run = run_concat,
     .ref = ref_concat, .args = &(ConcatArgs){2, 1, {DIMS(2, 2), DIMS(2, 3)}}},
    SLICE_CASE("slice_mid", DIMS(3, 5, 4), 1, 1, 4, 1),
    SLICE_CASE("slice_first", DIMS(4, 3), 0, 2, 4, 1),
    SLICE_CASE("slice_last", DIMS(2, 3, 6), -1, 0, 2, 1),
    // 10 x 10 needs padding to 12 x 12 (3 x 3 windows of 4); 6 x 9 pads unevenly to 8 x 12 (2 x 3).
    {.name = "window_partition_pad", .n_in = 1, .in = {{DIMS(2, 10, 10, 3), 1}}, .run = run_partition,
     .ref = ref_partition, .args = &(WindowArgs){2, 10, 10, 3, 4}, .torch = 1},
    {.name = "window_partition_exact", .n_in = 1, .in = {{DIMS(1, 8, 8, 2), 1}}, .run = run_partition,
     .ref = ref_partition, .args = &(WindowArgs){1, 8, 8, 2, 4}, .torch = 1},
    {.name = "window_partition_rect", .n_in = 1, .in = {{DIMS(1, 6, 9, 2), 1}}, .run = run_partition,
     .ref = ref_partition, .args = &(WindowArgs){1, 6, 9, 2, 4}, .torch = 1},
    {.name = "window_unpartition_pad", .n_in = 1, .in = {{DIMS(18, 4, 4, 3), 1}}, .run = run_unpartition,
     .ref = ref_unpartition, .args = &(WindowArgs){2, 10, 10, 3, 4}, .torch = 1},
    {.name = "window_unpartition_rect", .n_in = 1, .in = {{DIMS(6, 4, 4, 2), 1}}, .run = run_unpartition,
     .ref = ref_unpartition, .args = &(WindowArgs){1, 6, 9, 2, 4}, .torch = 1},
};

// ---- plain checks ----

static void fill(float *x, int n, float start) {
  for (int i = 0; i < n; i++) x[i] = start + (float)i * 0.5f;
}

// A reshape is a view: same data, base set, -1 inferred, version shared with the base (an
// in-place write through the view trips the saved-version check of an op that saved the base).
static void test_reshape_view(SamxDevice dev) {
  float x[12], one[12];
  fill(x, 12, -3);
  for (int i = 0; i < 12; i++) one[i] = 1;
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *t = samx_from_host(&ctx, SHAPE(3, 4), x);
  t->requires_grad = 1;
  SamxTensor *y = samx_softmax(&ctx, t);
  SamxTensor *v = samx_reshape(&ctx, y, SHAPE(-1, 2, 3));
  CHECK(v->data == y->data && v->base == y, "reshape did not make a view");
  CHECK(v->ndim == 3 && v->shape[0] == 2 && v->shape[1] == 2 && v->shape[2] == 3, "reshape inferred [%lld, %lld, %lld]",
        (long long)v->shape[0], (long long)v->shape[1], (long long)v->shape[2]);
  uint32_t before = samx_version(y);
  samx_add_(&ctx, v, samx_from_host(&ctx, SHAPE(2, 2, 3), one));
  CHECK(samx_version(y) != before, "an in-place write through the view left the base's version unchanged");
  samx_clear_error();
  int rc = samx_backward(&ctx, v, NULL);
  CHECK(rc == -1 && strstr(samx_last_error(), "softmax"), "backward after writing through a view: rc %d, '%s'", rc,
        samx_last_error());
  samx_ctx_free(&ctx);
}

// unpartition(partition(x)) == x and slice(concat(a, b)) == b, bit for bit.
static void test_round_trips(SamxDevice dev) {
  enum { N = 2 * 10 * 7 * 3 };
  float x[N], back[N], a[6], b[9], got[9];
  fill(x, N, -50);
  fill(a, 6, 100);
  fill(b, 9, -7);
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *t = samx_from_host(&ctx, SHAPE(2, 10, 7, 3), x);
  SamxTensor *w = samx_window_partition(&ctx, t, 4);
  CHECK(w->ndim == 4 && w->shape[0] == 2 * 3 * 2 && w->shape[1] == 4 && w->shape[3] == 3, "partition shape");
  samx_tensor_read_f32(samx_window_unpartition(&ctx, w, 4, 10, 7), back);
  CHECK(memcmp(back, x, sizeof x) == 0, "window unpartition(partition(x)) != x");

  SamxTensor *parts[2] = {samx_from_host(&ctx, SHAPE(3, 2), a), samx_from_host(&ctx, SHAPE(3, 3), b)};
  SamxTensor *cat = samx_concat(&ctx, parts, 2, 1);
  samx_tensor_read_f32(samx_slice(&ctx, cat, 1, 2, 5), got);
  CHECK(memcmp(got, b, sizeof b) == 0, "slice(concat(a, b)) != b");
  samx_ctx_free(&ctx);
}

// BF16 activations (inference in bf16 precision) move through the same maps as their bits: each op on
// a BF16 tensor equals, bit for bit, the F32 op on the same values rounded to bf16 (the F32 path is
// checked against the references above), padding included.
static void check_bf16_move(SamxCtx *ctx, const char *op, SamxTensor *yb, SamxTensor *yf) {
  int64_t n = yf->numel;
  float *a = (float *)malloc((size_t)n * sizeof *a), *b = (float *)malloc((size_t)n * sizeof *b);
  CHECK(yb->dtype == SAMX_BF16 && samx_shape_eq(samx_shape_of(yb), samx_shape_of(yf)), "%s: BF16 in, %s out", op,
        samx_dtype_name(yb->dtype));
  samx_tensor_read_f32(samx_cast(ctx, yb, SAMX_F32), a);
  samx_tensor_read_f32(yf, b);
  CHECK(memcmp(a, b, (size_t)n * sizeof *a) == 0, "%s: BF16 moves differ from the F32 op on the same values", op);
  free(a);
  free(b);
}

static void test_bf16_moves(SamxDevice dev) {
  enum { N = 2 * 10 * 7 * 3 };
  float x[N];
  fill(x, N, -50);
  for (int i = 0; i < N; i++) x[i] *= 1.0f + 1.0f / 3.0f;  // values bf16 must round
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  SamxTensor *xb = samx_cast(&ctx, samx_from_host(&ctx, SHAPE(2, 10, 7, 3), x), SAMX_BF16);
  SamxTensor *xf = samx_cast(&ctx, xb, SAMX_F32);
  const int perm[4] = {3, 0, 2, 1};
  check_bf16_move(&ctx, "permute", samx_permute(&ctx, xb, perm), samx_permute(&ctx, xf, perm));
  check_bf16_move(&ctx, "slice", samx_slice(&ctx, xb, 2, 1, 5), samx_slice(&ctx, xf, 2, 1, 5));
  SamxTensor *wb = samx_window_partition(&ctx, xb, 4), *wf = samx_window_partition(&ctx, xf, 4);
  check_bf16_move(&ctx, "window_partition (padded)", wb, wf);
  check_bf16_move(&ctx, "window_unpartition", samx_window_unpartition(&ctx, wb, 4, 10, 7),
                  samx_window_unpartition(&ctx, wf, 4, 10, 7));
  // concat along a middle dim, one input repeated (the decoder's per-prompt copies of one stream)
  SamxTensor *pb[3] = {xb, samx_slice(&ctx, xb, 1, 2, 5), xb}, *pf[3] = {xf, samx_slice(&ctx, xf, 1, 2, 5), xf};
  check_bf16_move(&ctx, "concat", samx_concat(&ctx, pb, 3, 1), samx_concat(&ctx, pf, 3, 1));
  samx_ctx_free(&ctx);
}

// samx_concat_into writes samx_concat's values, bit for bit, into the y it is given (F32 and BF16; one
// input repeated, as the decoder's per-prompt copies of one image stream), leaving y where it was and
// bumping its version.
static void test_concat_into(SamxDevice dev) {
  enum { N = 2 * 10 * 7 * 3 };
  float x[N];
  fill(x, N, -50);
  for (int i = 0; i < N; i++) x[i] *= 1.0f + 1.0f / 3.0f;
  SamxCtx ctx;
  samx_test_ctx(&ctx, dev);
  samx_ctx_set_recording(&ctx, 0);
  for (int dt = 0; dt < 2; dt++)
    for (int dim = 0; dim < 2; dim++) {  // dim 0: contiguous blocks (plain copies); dim 1: strided
      SamxDType type = dt ? SAMX_BF16 : SAMX_F32;
      SamxTensor *y = samx_new(&ctx, type, dim ? SHAPE(2, 23, 7, 3) : SHAPE(5, 10, 7, 3));
      void *at = y->data;
      uint32_t version = samx_version(y);
      SamxTensor *a = samx_cast(&ctx, samx_from_host(&ctx, SHAPE(2, 10, 7, 3), x), type);
      SamxTensor *parts[3] = {a, dim ? samx_slice(&ctx, a, 1, 2, 5) : samx_slice(&ctx, a, 0, 1, 2), a};
      samx_concat_into(&ctx, y, parts, 3, dim);
      SamxTensor *want = samx_concat(&ctx, parts, 3, dim);
      float *g = samx_test_host_f32(y), *w = samx_test_host_f32(want);
      CHECK(memcmp(g, w, sizeof(float) * (size_t)want->numel) == 0, "concat_into %s, dim %d: values differ from concat's",
            samx_dtype_name(type), dim);
      CHECK(y->data == at && samx_version(y) != version, "concat_into %s: y moved or kept its version",
            samx_dtype_name(type));
      free(g);
      free(w);
    }
  samx_ctx_free(&ctx);
}

// 1 when samx_concat_into dies (in a child process): case 0 a y of the wrong shape, 1 of the wrong dtype,
// 2 an input that needs a gradient while recording; -1 for case 3, a valid call, that returns.
static int concat_into_dies(SamxDevice dev, int which) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    SamxCtx ctx;
    samx_test_ctx(&ctx, dev);
    samx_ctx_set_recording(&ctx, which == 2);
    SamxTensor *x = samx_zeros(&ctx, SAMX_F32, SHAPE(2, 3));
    x->requires_grad = which == 2;
    SamxTensor *y = samx_new(&ctx, which == 1 ? SAMX_BF16 : SAMX_F32, SHAPE(which == 0 ? 5 : 4, 3));
    SamxTensor *parts[2] = {x, x};
    samx_concat_into(&ctx, y, parts, 2, 0);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? -1 : 1;
}

static void test_concat_into_refuses(SamxDevice dev) {
  static const char *what[] = {"a y of the wrong shape", "a y of the wrong dtype",
                               "an input that needs a gradient while recording"};
  for (int i = 0; i < 3; i++) CHECK(concat_into_dies(dev, i) == 1, "concat_into accepted %s", what[i]);
  CHECK(concat_into_dies(dev, 3) == -1, "concat_into died on a valid call");
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  test_reshape_view(dev);
  test_round_trips(dev);
  test_bf16_moves(dev);
  test_concat_into(dev);
  test_concat_into_refuses(dev);
  int plain = samx_test_summary();
  int ops = samx_test_ops_main(argc, argv, cases, sizeof cases / sizeof *cases);
  return plain || ops;
}
