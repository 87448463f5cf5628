// scripts/main.sh end to end on a tiny budget (64 samples, a few steps per stage, 2 seeds): every
// stage runs, the outputs the README promises exist and hold what they should (a table with the four
// methods, finite means and spreads over seeds, p-values against MCL, a PNG grid, timings per stage
// and seed, eval JSON files that scored every test row with a non-empty box annotator, pooled JSON
// files whose per-sample values are the means over the seeds' files, results.md with the commit and
// the machine), a second run into the same directory is refused without --force, and a run with one
// stage at a time gives the numbers of a run with three at once, bit for bit. The numbers themselves
// are not checked: a few steps train nothing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"

static char dir[512];

// The whole file, NUL-terminated (empty string when unreadable); caller frees.
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return calloc(1, 1);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

// ENV: extra environment assignments (e.g. SAMX_MAIN_JOBS=1); EXTRA_ARGS: main.sh's arguments.
static int run_main_job(const char *bin, const char *run_dir, const char *env, const char *extra_args) {
  char cmd[4096];
  // Every --set is a key of configs/synthetic_*.ini; validation only at the end keeps it quick.
  snprintf(cmd, sizeof cmd,
           "%s SAMX_BIN='%s' SAMX_RUN_DIR='%s' SAMX_DEVICE=cpu SAMX_MAIN_N=64 "
           "SAMX_MAIN_PRETRAIN='train.steps=6 train.val_every=0 train.val_samples=4 optim.batch_size=2' "
           "SAMX_MAIN_MCL='train.steps=3 train.val_every=0 train.val_samples=4' "
           "SAMX_MAIN_SEQSAM='train.steps=2 train.val_every=0 train.val_samples=4' "
           "SAMX_MAIN_ANATOMY_N=6 SAMX_MAIN_ANATOMY_SAM='train.steps=4 train.val_every=0 train.val_samples=4 optim.batch_size=2' "
           "SAMX_MAIN_FEWSHOT='fewshot.iterations=2' SAMX_MAIN_P2SAM='train.steps=50 train.val_every=0 train.val_samples=4' "
           "bash scripts/main.sh --no-build --seeds 2 %s > '%s/out.txt' 2>&1",
           env, bin, run_dir, extra_args, dir);
  return samx_test_exit_status(system(cmd));
}

// The table row starting with "| label |": four "mean ± spread" cells (a bare mean where the row is
// one run), all finite, then the number of runs.
static void check_table_row(const char *table, const char *label, int runs) {
  char head[128];
  snprintf(head, sizeof head, "| %s |", label);
  const char *row = strstr(table, head);
  CHECK(row != NULL, "table.md has no row '%s'", label);
  if (!row) return;
  row += strlen(head);
  int cells = 0;
  for (; cells < 4; cells++) {
    double mean, std = 0;
    int used = 0;
    if (runs > 1 ? sscanf(row, " %lf ± %lf |%n", &mean, &std, &used) != 2 || used == 0
                 : sscanf(row, " %lf |%n", &mean, &used) != 1 || used == 0)
      break;
    CHECK(isfinite(mean) && isfinite(std) && std >= 0, "table row '%s': cell %d is %g ± %g", label, cells, mean, std);
    row += used;
  }
  CHECK(cells == 4, "table row '%s': %d numeric cells, expected 4", label, cells);
  int n = 0;
  CHECK(cells == 4 && sscanf(row, " %d |", &n) == 1 && n == runs, "table row '%s': %d runs, expected %d", label, n, runs);
}

int main(int argc, char **argv) {
  (void)argc;
  const char *bin = samx_test_samx_bin(argv[0]);
  if (access(bin, X_OK) != 0) {
    printf("FAIL: no samx binary at %s (set SAMX_BIN)\n", bin);
    return 1;
  }
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_main_job") != 0) {
    printf("FAIL: cannot create a temporary directory\n");
    return 1;
  }
  const char *run = samx_test_path(dir, "run");
  char run_dir[512];
  snprintf(run_dir, sizeof run_dir, "%s", run);

  // Three stages at once even on a small machine: the order the stages run in varies from run to run.
  int rc = run_main_job(bin, run_dir, "SAMX_MAIN_JOBS=3", "");
  char *out = read_text(samx_test_path(dir, "out.txt"));
  CHECK(rc == 0, "scripts/main.sh exited with %d; its output:\n%s", rc, out);

  char *table = read_text(samx_test_path(run_dir, "table.md"));
  CHECK(strstr(table, "D_avg") && strstr(table, "GED") && strstr(table, "D_max") && strstr(table, "HM-IoU"),
        "table.md lacks a column:\n%s", table);
  check_table_row(table, "SAM-FT (the pretrained model, 1 mask)", 1);
  check_table_row(table, "MCL", 2);
  check_table_row(table, "SeqSAM, M = 3", 2);
  check_table_row(table, "SeqSAM, M = 10", 2);
  check_table_row(table, "P²SAM, 4 snapshots × 4 samples", 2);

  char *compare = read_text(samx_test_path(run_dir, "compare.md"));
  int p_values = 0;
  for (const char *s = compare; (s = strstr(s, "(p ")) != NULL; s++) p_values++;
  CHECK(p_values == 3 * 4, "compare.md: %d p-values, expected 12 (SeqSAM x 2 and P2SAM against MCL x 4 metrics):\n%s",
        p_values, compare);

  unsigned char magic[4] = {0};
  FILE *png = fopen(samx_test_path(run_dir, "grid.png"), "rb");
  CHECK(png && fread(magic, 1, 4, png) == 4 && !memcmp(magic, "\x89PNG", 4), "grid.png is missing or not a PNG");
  if (png) fclose(png);
  // Every run's curves (one `samx figure curves` call for all of them).
  const char *curve_runs[] = {"pretrain", "seed1/mcl", "seed2/seqsam_m10", "seed2/p2sam/stage2"};
  for (size_t i = 0; i < sizeof curve_runs / sizeof *curve_runs; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "%s/curves.png", curve_runs[i]);
    FILE *f = fopen(samx_test_path(run_dir, rel), "rb");
    CHECK(f != NULL, "%s is missing", rel);
    if (f) fclose(f);
  }

  // The second table (few-shot, anatomy): six columns, IoU and ASSD rows of the three structures, the
  // seeded columns over both seeds (each seed's evals in its own folder), the claims counted per seed.
  char *table2 = read_text(samx_test_path(run_dir, "table2.md"));
  int rows2 = 0;
  for (const char *q = table2; (q = strstr(q, "| IoU %")); q++) rows2++;
  CHECK(strstr(table2, "ours n=50") && strstr(table2, "atlas (5 shots)") && strstr(table2, "| vessel | ASSD mm") &&
            rows2 == 3 && strstr(table2, "mean over 2 seed(s)") && strstr(table2, "seeds where it holds: organ ") &&
            strstr(table2, "/2"),
        "table2.md is not the few-shot table over 2 seeds:\n%s", table2);
  free(table2);
  const char *seeded[] = {"anatomy/seed1/eval/fewshot-50.json", "anatomy/seed2/eval/fewshot-5.json",
                          "anatomy/seed2/eval/atlas-5.json", "anatomy/eval/sam-box.json"};
  for (size_t i = 0; i < sizeof seeded / sizeof *seeded; i++) {
    FILE *f = fopen(samx_test_path(run_dir, seeded[i]), "rb");
    CHECK(f != NULL, "%s is missing", seeded[i]);
    if (f) fclose(f);
  }

  char *timings = read_text(samx_test_path(run_dir, "timings.tsv"));
  const char *stages[] = {"data", "pretrain", "embed", "train: MCL, seed 1 of 2", "train: MCL, seed 2 of 2",
                          "train: SeqSAM, M = 3, seed 2", "train: SeqSAM, M = 10, seed 2", "infer", "eval",
                          "train: P²SAM, 4 snapshots × 4 samples, seed 2", "table", "figure",
                          "anatomy SAM", "few-shot: 5, 20 and 50 shots (decoder only, on the cached embeddings), seed 2 of 2",
                          "pipeline total"};
  for (size_t i = 0; i < sizeof stages / sizeof *stages; i++)
    CHECK(strstr(timings, stages[i]) != NULL, "timings.tsv has no stage '%s':\n%s", stages[i], timings);

  // Each method scored the same test rows: those whose box annotator (2) is non-empty.
  const char *evals[] = {"eval/sam-ft.json",        "eval/seed1/mcl.json",        "eval/seed2/seqsam_m3.json",
                         "eval/seed1/seqsam_m10.json", "eval/pooled/mcl.json", "eval/pooled/seqsam_m10.json"};
  long n_first = -1;
  for (size_t i = 0; i < sizeof evals / sizeof *evals; i++) {
    char *js = read_text(samx_test_path(run_dir, evals[i]));
    long n = -1;
    const char *p = strstr(js, "\"n\":");
    if (p) n = strtol(p + 4, NULL, 10);
    CHECK(n > 0, "%s: no samples scored", evals[i]);
    if (i == 0) n_first = n;
    CHECK(n == n_first, "%s: %ld samples, %s had %ld", evals[i], n, evals[0], n_first);
    free(js);
  }

  // The pooled file's per-sample values are the means of the two seeds' (an independent reader).
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import json,sys,math\n"
           "d=sys.argv[1]; p=json.load(open(d+'/eval/pooled/seqsam_m3.json'))\n"
           "a,b=[{r['index']:r for r in json.load(open(d+'/eval/seed%%d/seqsam_m3.json' %% s))['per_sample']} for s in (1,2)]\n"
           "assert p['pooled_seeds']==2 and len(p['per_sample'])==len(a)\n"
           "for r in p['per_sample']:\n"
           " for k in ('dice_avg','ged','dmax','hm_iou'):\n"
           "  assert abs(r[k]-(a[r['index']][k]+b[r['index']][k])/2)<1e-12,(k,r['index'])\n\" '%s'",
           run_dir);
  CHECK(samx_test_exit_status(system(cmd)) == 0, "eval/pooled/seqsam_m3.json is not the per-sample mean of the seeds");

  char *results = read_text(samx_test_path(run_dir, "results.md"));
  CHECK(strstr(results, "- commit: `") && strstr(results, "- machine: ") && strstr(results, "OMP_NUM_THREADS") &&
            strstr(results, "BLAS") && strstr(results, "| SeqSAM, M = 10 |") && strstr(results, "(p ") &&
            strstr(results, "| pipeline total |") && strstr(results, "annotator 2"),
        "results.md lacks the provenance, a table or the timings:\n%s", results);
  free(results);
  CHECK(access(samx_test_path(run_dir, "seed2/seqsam_m10/log.jsonl"), R_OK) == 0 &&
            access(samx_test_path(run_dir, "seed3"), F_OK) != 0,
        "--seeds 2 did not train exactly seeds 1 and 2");

  int again = run_main_job(bin, run_dir, "", "");
  CHECK(again == 1, "a second run into a finished run directory exited with %d, expected 1 (refused)", again);

  // One stage at a time gives the same numbers, bit for bit: every stage declares what it reads (a
  // missing dependency would let a stage read a half-written file when stages overlap), and each is
  // single-threaded. The tables byte for byte; every eval JSON's metrics and per-sample values.
  char serial_dir[512];
  snprintf(serial_dir, sizeof serial_dir, "%s", samx_test_path(dir, "serial"));
  rc = run_main_job(bin, serial_dir, "SAMX_MAIN_JOBS=1", "");
  CHECK(rc == 0, "scripts/main.sh with SAMX_MAIN_JOBS=1 exited with %d", rc);
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import json,sys,glob,os\n"
           "a,b=sys.argv[1],sys.argv[2]; n=0\n"
           "for f in ('table.md','table2.md','compare.md'):\n"
           " assert open(a+'/'+f,'rb').read()==open(b+'/'+f,'rb').read(),f\n"
           "for p in glob.glob(a+'/**/eval/**/*.json',recursive=True):\n"
           " q=b+p[len(a):]; x,y=json.load(open(p)),json.load(open(q)); n+=1\n"
           " for k in ('metrics','per_sample','labels'):\n"
           "  assert x.get(k)==y.get(k),(p,k)\n"
           "assert n>=20,n\n\" '%s' '%s'",
           run_dir, serial_dir);
  CHECK(samx_test_exit_status(system(cmd)) == 0,
        "the run with one stage at a time differs from the run with three (tables or eval JSON files)");

  free(out);
  free(table);
  free(compare);
  free(timings);
  int status = samx_test_summary();
  if (status == 0) samx_test_remove_dir(dir);
  return status;
}
