// Eval library against independent oracles computed by tests/eval/ref_eval.py (scipy, numpy, and
// re-typed DeepMind / medpy algorithms): random small cases of every routine, written to a file,
// scored by Python through $SAMX_PYTHON, and compared value by value.
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/border.h"
#include "eval/components.h"
#include "eval/edt.h"
#include "eval/hungarian.h"
#include "eval/metrics.h"
#include "eval/stats.h"
#include "eval_test_util.h"
#include "tests/harness.h"

#define MAX_CASES 4096

typedef struct {
  char name[48];
  int n;
  double *got;
  double tol;
  int first_only;  // compare only got[0] (e.g. Hungarian with tied costs: the total, not the assignment)
} Case;

static Case cases[MAX_CASES];
static int n_cases;
static FILE *in_file;

// Starts a case: the line's kind and numbers follow through put_*.
static Case *begin_case(const char *kind, const char *name, int n_out, double tol) {
  SAMX_ASSERT(n_cases < MAX_CASES, "too many cases");
  Case *c = &cases[n_cases++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->n = n_out;
  c->got = (double *)calloc((size_t)n_out, sizeof(double));
  c->tol = tol;
  c->first_only = 0;
  fprintf(in_file, "%s", kind);
  return c;
}
static void put_num(double v) { fprintf(in_file, " %.17g", v); }
static void put_mask(const uint8_t *m, int64_t n) {
  for (int64_t i = 0; i < n; i++) fprintf(in_file, " %d", m[i] ? 1 : 0);
}
static void end_case(void) { fputc('\n', in_file); }

static void add_hungarian(uint64_t *s, int i) {
  int64_t r = test_rng_int(s, 1, 7), c = test_rng_int(s, 1, 7);
  int ties = i % 3 == 0;  // small integer costs: many optimal matchings, only the total is unique
  double cost[49];
  for (int64_t k = 0; k < r * c; k++) cost[k] = ties ? (double)test_rng_int(s, 0, 3) : test_rng_uniform(s) * 10 - 2;
  char name[48];
  snprintf(name, sizeof name, "hungarian %lldx%lld #%d", (long long)r, (long long)c, i);
  Case *cs = begin_case("hungarian", name, (int)(1 + r), 1e-12);
  put_num((double)r), put_num((double)c);
  for (int64_t k = 0; k < r * c; k++) put_num(cost[k]);
  end_case();
  int64_t assign[7];
  size_t ws = samx_hungarian_workspace_size(r, c);
  double *work = (double *)malloc(ws + 8);
  cs->got[0] = samx_hungarian(cost, r, c, assign, i % 2 ? work : NULL);
  for (int64_t k = 0; k < r; k++) cs->got[1 + k] = (double)assign[k];
  cs->first_only = ties;
  // A valid matching whatever the ties: distinct columns, min(r, c) rows matched.
  int used[7] = {0}, matched = 0, ok = 1;
  for (int64_t k = 0; k < r; k++)
    if (assign[k] >= 0) ok &= !used[assign[k]]++, matched++;
  CHECK(ok && matched == (r < c ? r : c), "%s: not a matching", name);
  free(work);
}

static void add_label(uint64_t *s, int i) {
  int64_t h = test_rng_int(s, 1, 16), w = test_rng_int(s, 1, 16);
  int conn = i % 2 ? 4 : 8;
  uint8_t m[256];
  test_random_mask(s, m, h, w, 0.1);
  for (int64_t k = 0; k < h * w; k++) m[k] |= test_rng_uniform(s) < 0.2;  // fragments
  char name[48];
  snprintf(name, sizeof name, "label %lldx%lld conn %d #%d", (long long)h, (long long)w, conn, i);
  Case *c = begin_case("label", name, (int)(1 + h * w), 0);
  put_num((double)h), put_num((double)w), put_num(conn), put_mask(m, h * w);
  end_case();
  int32_t lab[256];
  c->got[0] = samx_label_components(m, h, w, conn, lab);
  for (int64_t k = 0; k < h * w; k++) c->got[1 + k] = lab[k];
}

static void add_edt(uint64_t *s, int i) {
  int64_t h = test_rng_int(s, 1, 20), w = test_rng_int(s, 1, 20);
  double sr = i % 2 ? 1.0 : 0.3 + 2.0 * test_rng_uniform(s), sc = i % 2 ? 1.0 : 0.3 + 2.0 * test_rng_uniform(s);
  uint8_t m[400];
  for (int64_t k = 0; k < h * w; k++) m[k] = test_rng_uniform(s) < (i % 4 == 0 ? 0.02 : 0.15);
  if (i % 10 == 0) memset(m, 0, sizeof m);  // no seed: infinite everywhere
  char name[48];
  snprintf(name, sizeof name, "edt %lldx%lld sp %.2f,%.2f #%d", (long long)h, (long long)w, sr, sc, i);
  Case *c = begin_case("edt", name, (int)(h * w), 1e-12);
  put_num((double)h), put_num((double)w), put_num(sr), put_num(sc), put_mask(m, h * w);
  end_case();
  samx_edt(m, h, w, sr, sc, c->got);
}

static void add_border(uint64_t *s, int i) {
  int64_t h = test_rng_int(s, 1, 16), w = test_rng_int(s, 1, 16);
  int conn = i % 2 ? 4 : 8;
  uint8_t m[256], b[256];
  test_random_mask(s, m, h, w, 0.05);
  if (i % 7 == 0) memset(m, 1, sizeof m);  // full image: the image edge is background
  char name[48];
  snprintf(name, sizeof name, "border %lldx%lld conn %d #%d", (long long)h, (long long)w, conn, i);
  Case *c = begin_case("border", name, (int)(h * w), 0);
  put_num((double)h), put_num((double)w), put_num(conn), put_mask(m, h * w);
  end_case();
  samx_mask_border(m, h, w, conn, b);
  for (int64_t k = 0; k < h * w; k++) c->got[k] = b[k];
}

static void add_surface(uint64_t *s, int i) {
  int64_t h = test_rng_int(s, 2, 24), w = test_rng_int(s, 2, 24);
  double sp[2] = {1.0, 1.0};
  if (i % 2) sp[0] = 0.5 + 1.5 * test_rng_uniform(s), sp[1] = 0.5 + 1.5 * test_rng_uniform(s);
  double tol = (double)test_rng_int(s, 0, 4) + (i % 3 ? 0.0 : 0.5);
  uint8_t a[576], b[576];
  test_random_mask(s, a, h, w, 0.1);
  if (i % 5 == 0) memcpy(b, a, (size_t)(h * w)), b[test_rng_int(s, 0, h * w - 1)] ^= 1;  // nearly identical
  else test_random_mask(s, b, h, w, 0.1);
  char name[48];
  snprintf(name, sizeof name, "nsd %lldx%lld tol %.1f #%d", (long long)h, (long long)w, tol, i);
  Case *c = begin_case("nsd", name, 1, 1e-12);
  put_num((double)h), put_num((double)w), put_num(sp[0]), put_num(sp[1]), put_num(tol);
  put_mask(a, h * w), put_mask(b, h * w);
  end_case();
  c->got[0] = samx_nsd(a, b, h, w, sp, tol);
  snprintf(name, sizeof name, "assd/hd95 %lldx%lld #%d", (long long)h, (long long)w, i);
  c = begin_case("surf", name, 2, 1e-12);
  put_num((double)h), put_num((double)w), put_num(sp[0]), put_num(sp[1]);
  put_mask(a, h * w), put_mask(b, h * w);
  end_case();
  samx_assd_hd95(a, b, h, w, sp, &c->got[0], &c->got[1]);
}

static void add_set(uint64_t *s, int i) {
  int64_t n = test_rng_int(s, 1, 6), m = test_rng_int(s, 1, 4), h = test_rng_int(s, 2, 10), w = test_rng_int(s, 2, 10);
  int policy = i % 3, rep = (i / 3) % 2;
  int64_t npix = h * w;
  uint8_t hyp[6 * 100], ann[4 * 100], vote[100];
  double p_empty = i % 4 == 0 ? 0.6 : 0.15;  // many empty masks in a quarter of the cases
  for (int64_t k = 0; k < n; k++) test_random_mask(s, hyp + k * npix, h, w, p_empty);
  for (int64_t k = 0; k < m; k++) test_random_mask(s, ann + k * npix, h, w, p_empty);
  const uint8_t *hp[6], *ap[4];
  for (int64_t k = 0; k < n; k++) hp[k] = hyp + k * npix;
  for (int64_t k = 0; k < m; k++) ap[k] = ann + k * npix;
  char name[48];
  snprintf(name, sizeof name, "set N%lld M%lld %s rep%d #%d", (long long)n, (long long)m,
           samx_empty_policy_name((SamxEmptyPolicy)policy), rep, i);
  Case *c = begin_case("set", name, 6, 1e-12);
  put_num((double)n), put_num((double)m), put_num((double)h), put_num((double)w), put_num(policy), put_num(rep);
  put_mask(hyp, n * npix), put_mask(ann, m * npix);
  end_case();
  SamxEmptyPolicy p = (SamxEmptyPolicy)policy;
  c->got[0] = samx_ged(hp, n, ap, m, npix);
  c->got[1] = samx_diversity(hp, n, npix);
  c->got[2] = samx_dice_avg(hp, n, ap, m, npix, p, vote);
  c->got[3] = samx_dmax(hp, n, ap, m, npix, p);
  c->got[4] = samx_dmax_pairs(hp, n, ap, m, npix, p);
  c->got[5] = samx_hm_iou(hp, n, ap, m, npix, rep);
}

static void add_stats(uint64_t *s, int i) {
  // Wilcoxon: exact (n <= 50, no zeros), exact with ties, zeros (normal approximation), large n.
  int64_t n = i % 4 == 3 ? test_rng_int(s, 51, 90) : test_rng_int(s, 5, 40);
  int ties = i % 4 == 1, zeros = i % 4 == 2;
  double x[90], y[90];
  for (int64_t k = 0; k < n; k++) {
    x[k] = test_rng_uniform(s);
    y[k] = x[k] + (test_rng_uniform(s) - 0.4) * 0.2;
    if (ties || i % 8 == 7) y[k] = x[k] + (double)(test_rng_int(s, -3, 4)) * 0.125;  // repeated |d|
    if (zeros && test_rng_uniform(s) < 0.2) y[k] = x[k];
  }
  if (ties) {  // keep zeros out so the exact branch (with scipy's truncation of R+) runs
    for (int64_t k = 0; k < n; k++)
      if (y[k] == x[k]) y[k] = x[k] + 0.25;
  }
  char name[48];
  snprintf(name, sizeof name, "wilcoxon n%lld%s%s #%d", (long long)n, ties ? " ties" : "", zeros ? " zeros" : "", i);
  Case *c = begin_case("wilcoxon", name, 2, 1e-9);
  put_num((double)n);
  for (int64_t k = 0; k < n; k++) put_num(x[k]);
  for (int64_t k = 0; k < n; k++) put_num(y[k]);
  end_case();
  SamxWilcoxon w = samx_wilcoxon(x, y, n);
  c->got[0] = w.statistic, c->got[1] = w.pvalue;
  for (int k = 0; k < 2; k++) {
    const char *kind = k ? "spearman" : "pearson";
    snprintf(name, sizeof name, "%s n%lld #%d", kind, (long long)n, i);
    c = begin_case(kind, name, 1, 1e-12);
    put_num((double)n);
    for (int64_t j = 0; j < n; j++) put_num(x[j]);
    for (int64_t j = 0; j < n; j++) put_num(ties ? floor(y[j] * 4) : y[j]);  // tied ranks for Spearman
    end_case();
    double yy[90];
    for (int64_t j = 0; j < n; j++) yy[j] = ties ? floor(y[j] * 4) : y[j];
    c->got[0] = k ? samx_spearman(x, yy, n) : samx_pearson(x, yy, n);
  }
}

int main(void) {
  char dir_template[] = "/tmp/samx_eval_test_XXXXXX";
  char *dir = mkdtemp(dir_template);
  SAMX_ASSERT(dir, "mkdtemp failed");
  char in_path[512], out_path[512], cmd[PATH_MAX + 2048], src[512];
  snprintf(in_path, sizeof in_path, "%s/cases.txt", dir);
  snprintf(out_path, sizeof out_path, "%s/expected.txt", dir);
  in_file = fopen(in_path, "w");
  SAMX_ASSERT(in_file, "cannot write %s", in_path);

  uint64_t s = 20240611;
  for (int i = 0; i < 120; i++) add_hungarian(&s, i);
  for (int i = 0; i < 80; i++) add_label(&s, i);
  for (int i = 0; i < 80; i++) add_edt(&s, i);
  for (int i = 0; i < 60; i++) add_border(&s, i);
  for (int i = 0; i < 150; i++) add_surface(&s, i);
  for (int i = 0; i < 240; i++) add_set(&s, i);
  for (int i = 0; i < 80; i++) add_stats(&s, i);
  fclose(in_file);

  const char *py = getenv("SAMX_PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  snprintf(src, sizeof src, "%s", __FILE__);
  const char *src_dir = dirname(src);
  char script[PATH_MAX];
  snprintf(script, sizeof script, "%s/ref_eval.py", src_dir);
  // __FILE__ is relative when the compiler was given a relative path (ccache's base_dir does that):
  // then fall back to the path from the source root, ctest's working directory
  if (access(script, R_OK) != 0) snprintf(script, sizeof script, "tests/eval/ref_eval.py");
  snprintf(cmd, sizeof cmd, "%s %s %s %s", py, script, in_path, out_path);
  int rc = system(cmd);
  CHECK(rc == 0, "reference script failed (%d): %s", rc, cmd);
  FILE *out = fopen(out_path, "r");
  CHECK(out != NULL, "no reference output %s", out_path);
  int bad_cases = 0;
  for (int i = 0; out && i < n_cases; i++) {
    Case *c = &cases[i];
    int ok = 1;
    for (int k = 0; k < c->n; k++) {
      double want;
      if (fscanf(out, "%lf", &want) != 1) {
        ok = 0;
        printf("FAIL %s: reference output ended early\n", c->name);
        break;
      }
      if ((k == 0 || !c->first_only) && !test_close(c->got[k], want, c->tol)) {
        if (ok) printf("FAIL %s: value %d is %.17g, reference %.17g\n", c->name, k, c->got[k], want);
        ok = 0;
      }
    }
    CHECK(ok, "%s differs from the reference", c->name);
    bad_cases += !ok;
    free(c->got);
  }
  if (out) fclose(out);
  printf("%d cases against scipy/numpy references, %d differ\n", n_cases, bad_cases);
  if (!bad_cases && !getenv("SAMX_TEST_KEEP")) {
    unlink(in_path), unlink(out_path), rmdir(dir);
  } else {
    printf("inputs kept in %s\n", dir);
  }
  return samx_test_summary();
}
