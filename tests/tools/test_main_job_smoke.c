// scripts/main.sh end to end on a tiny budget (64 samples, a few steps per stage): every stage runs,
// the outputs the README promises exist and hold what they should (a table with the four methods
// and finite numbers, p-values against MCL, a PNG grid, one timing per stage, eval JSON files that
// scored every test row with a non-empty box annotator), and a second run into the same directory
// is refused without --force. The numbers themselves are not checked: a few steps train nothing.
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

static int run_main_job(const char *bin, const char *run_dir, const char *extra_args) {
  char cmd[4096];
  // Every --set is a key of configs/synthetic_*.ini; validation only at the end keeps it quick.
  snprintf(cmd, sizeof cmd,
           "SAMX_BIN='%s' SAMX_RUN_DIR='%s' SAMX_DEVICE=cpu SAMX_MAIN_N=64 "
           "SAMX_MAIN_PRETRAIN='train.steps=6 train.val_every=0 train.val_samples=4 optim.batch_size=2' "
           "SAMX_MAIN_MCL='train.steps=3 train.val_every=0 train.val_samples=4' "
           "SAMX_MAIN_SEQSAM='train.steps=2 train.val_every=0 train.val_samples=4' "
           "SAMX_MAIN_ANATOMY_N=6 SAMX_MAIN_ANATOMY_SAM='train.steps=4 train.val_every=0 train.val_samples=4 optim.batch_size=2' "
           "SAMX_MAIN_FEWSHOT='fewshot.iterations=2' "
           "bash scripts/main.sh --no-build %s > '%s/out.txt' 2>&1",
           bin, run_dir, extra_args, dir);
  return samx_test_exit_status(system(cmd));
}

// The table row starting with "| label |": four "mean ± std" cells, all finite.
static void check_table_row(const char *table, const char *label) {
  char head[128];
  snprintf(head, sizeof head, "| %s |", label);
  const char *row = strstr(table, head);
  CHECK(row != NULL, "table.md has no row '%s'", label);
  if (!row) return;
  row += strlen(head);
  int cells = 0;
  for (; cells < 4; cells++) {
    double mean, std;
    int used = 0;
    if (sscanf(row, " %lf ± %lf |%n", &mean, &std, &used) != 2 || used == 0) break;
    CHECK(isfinite(mean) && isfinite(std) && std >= 0, "table row '%s': cell %d is %g ± %g", label, cells, mean, std);
    row += used;
  }
  CHECK(cells == 4, "table row '%s': %d numeric cells, expected 4", label, cells);
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

  int rc = run_main_job(bin, run_dir, "");
  char *out = read_text(samx_test_path(dir, "out.txt"));
  CHECK(rc == 0, "scripts/main.sh exited with %d; its output:\n%s", rc, out);

  char *table = read_text(samx_test_path(run_dir, "table.md"));
  CHECK(strstr(table, "D_avg") && strstr(table, "GED") && strstr(table, "D_max") && strstr(table, "HM-IoU"),
        "table.md lacks a column:\n%s", table);
  check_table_row(table, "SAM-FT (the pretrained model, 1 mask)");
  check_table_row(table, "MCL");
  check_table_row(table, "SeqSAM, M = 3");
  check_table_row(table, "SeqSAM, M = 10");
  check_table_row(table, "P2SAM, 4 snapshots x 4 samples");

  char *compare = read_text(samx_test_path(run_dir, "compare.md"));
  int p_values = 0;
  for (const char *s = compare; (s = strstr(s, "(p ")) != NULL; s++) p_values++;
  CHECK(p_values == 3 * 4, "compare.md: %d p-values, expected 12 (SeqSAM x 2 and P2SAM against MCL x 4 metrics):\n%s",
        p_values, compare);

  unsigned char magic[4] = {0};
  FILE *png = fopen(samx_test_path(run_dir, "grid.png"), "rb");
  CHECK(png && fread(magic, 1, 4, png) == 4 && !memcmp(magic, "\x89PNG", 4), "grid.png is missing or not a PNG");
  if (png) fclose(png);

  // The second table (few-shot, anatomy): six columns, IoU and ASSD rows of the three structures.
  char *table2 = read_text(samx_test_path(run_dir, "table2.md"));
  int rows2 = 0;
  for (const char *q = table2; (q = strstr(q, "| IoU %")); q++) rows2++;
  CHECK(strstr(table2, "ours n=50") && strstr(table2, "atlas (5 shots)") && strstr(table2, "| vessel | ASSD mm") &&
            rows2 == 3,
        "table2.md is not the few-shot table:\n%s", table2);
  free(table2);

  char *timings = read_text(samx_test_path(run_dir, "timings.tsv"));
  const char *stages[] = {"data", "pretrain", "embed", "train: MCL", "train: SeqSAM M = 3", "train: SeqSAM M = 10",
                          "infer", "eval", "table", "figure", "anatomy SAM", "few-shot", "pipeline total"};
  for (size_t i = 0; i < sizeof stages / sizeof *stages; i++)
    CHECK(strstr(timings, stages[i]) != NULL, "timings.tsv has no stage '%s':\n%s", stages[i], timings);

  // Each method scored the same test rows: those whose box annotator (2) is non-empty.
  const char *evals[] = {"eval/sam-ft.json", "eval/mcl.json", "eval/seqsam-M3.json", "eval/seqsam-M10.json"};
  long n_first = -1;
  for (size_t i = 0; i < 4; i++) {
    char *js = read_text(samx_test_path(run_dir, evals[i]));
    long n = -1;
    const char *p = strstr(js, "\"n\":");
    if (p) n = strtol(p + 4, NULL, 10);
    CHECK(n > 0, "%s: no samples scored", evals[i]);
    if (i == 0) n_first = n;
    CHECK(n == n_first, "%s: %ld samples, %s had %ld", evals[i], n, evals[0], n_first);
    free(js);
  }

  int again = run_main_job(bin, run_dir, "");
  CHECK(again == 1, "a second run into a finished run directory exited with %d, expected 1 (refused)", again);

  free(out);
  free(table);
  free(compare);
  free(timings);
  int status = samx_test_summary();
  if (status == 0) samx_test_remove_dir(dir);
  return status;
}
