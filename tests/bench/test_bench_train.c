// `samx bench train` through the command line (tiny model, --quick): for seqsam and mcl the JSON
// output parses and holds one row with positive, finite timings; samples/s agrees with ms per step
// and the batch; the FLOP count is 3 x the forward work counted here from the architecture
// (sam_decoder_flops per decoder pass, SeqSAM's 2M - 1 cell convolutions and M - 1 mask-path
// passes written out independently); bad options exit 2 with a message. When the project's venv has
// segment_anything and scipy, --compare-torch must fill torch_ms (bench/torch_train.py runs).
// argv[1] "cuda" runs the same on cuda:0 (PyTorch on the GPU too).
// The samx binary: $SAMX_BIN, else "samx" next to this test executable, else build/samx.
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "models/sam/sam.h"

#define BATCH 2
#define MASKS 4
#define VENV_PYTHON ".venv/bin/python"  // relative to the repository root, the tests' working directory

static char dir[256], err_text[8192];
static const char *device = "cpu";

// The CUDA host emulator runs --device cuda on the CPU, far slower than a GPU: the time limits, which
// are there to keep --quick quick on real devices, do not apply to it.
static int on_emulator(void) {
#ifdef SAMX_CUDA_EMULATOR
  return !strcmp(device, "cuda:0");
#else
  return 0;
#endif
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Runs `samx bench train ARGS -o json`; returns the parsed output (NULL after a failed check).
static json_t *run_bench(const char *args, double *seconds) {
  double t0 = now_seconds();
  int rc = samx_test_run_samx(dir, 0, err_text, sizeof err_text, "bench train %s --device %s -o json", args, device);
  *seconds = now_seconds() - t0;
  CHECK(rc == 0, "samx bench train %s: exit %d, stderr: %s", args, rc, err_text);
  if (rc != 0) return NULL;
  json_error_t e;
  json_t *root = json_load_file(samx_test_path(dir, "stdout.txt"), 0, &e);
  CHECK(root != NULL, "samx bench train %s: output is not JSON (%s, line %d)", args, e.text, e.line);
  return root;
}

static double num(json_t *row, const char *key) {
  json_t *v = json_object_get(row, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static int positive(double v) { return isfinite(v) && v > 0; }

// Checks the one row of a --quick run of method; returns it (owned by root) or NULL.
static json_t *check_row(json_t *root, const char *method) {
  CHECK(!strcmp(json_string_value(json_object_get(root, "bench")) ?: "", "train"), "%s: bench is not \"train\"", method);
  json_t *rows = json_object_get(root, "results");
  CHECK(json_array_size(rows) == 1, "%s: %zu result rows, expected 1", method, json_array_size(rows));
  json_t *row = json_array_get(rows, 0);
  if (!row) return NULL;
  char want[64];
  snprintf(want, sizeof want, "train %s tiny", method);
  const char *name = json_string_value(json_object_get(row, "name"));
  CHECK(name && !strcmp(name, want), "%s: row name '%s', expected '%s'", method, name ? name : "(none)", want);
  double ms = num(row, "ms"), per_s = num(row, "items_per_s");
  CHECK(positive(ms) && (ms < 30000 || on_emulator()), "%s: ms %g", method, ms);
  CHECK(positive(per_s) && fabs(per_s - BATCH / (ms * 1e-3)) <= 1e-6 * per_s, "%s: %g samples/s for %g ms per step of %d",
        method, per_s, ms, BATCH);
  CHECK(!strcmp(json_string_value(json_object_get(row, "unit")) ?: "", "sample"), "%s: unit is not \"sample\"", method);
  CHECK(positive(num(row, "flops")), "%s: flops %g", method, num(row, "flops"));
  CHECK(positive(num(row, "bytes")), "%s: bytes %g", method, num(row, "bytes"));
  CHECK(positive(num(row, "peak_mem_mb")), "%s: peak_mem_mb %g", method, num(row, "peak_mem_mb"));
  CHECK(json_object_get(row, "torch_ms") == NULL, "%s: torch_ms without --compare-torch", method);
  return row;
}

// Forward work of one sample, counted from the tiny architecture's sizes.
static double expected_forward(const char *method) {
  SamConfig c;
  sam_config_preset("tiny", &c);
  double dec = sam_decoder_flops(&c, 2);  // a box: two sparse tokens
  if (strcmp(method, "seqsam")) return dec;
  double g = c.img_size / c.patch, C = c.prompt_dim, mic = c.mask_in_chans;
  double conv = 2 * (g * g) * C * (2 * C) * 3 * 3;
  double mask_path = 2 * ((2 * g) * (2 * g) * (mic / 4) * 2 * 2 + g * g * mic * (mic / 4) * 2 * 2 + g * g * C * mic);
  return MASKS * dec + (2 * MASKS - 1) * conv + (MASKS - 1) * mask_path;
}

static void check_method(const char *method) {
  char args[128];
  double seconds;
  snprintf(args, sizeof args, "--method %s --quick -r 1 --batch %d --masks %d", method, BATCH, MASKS);
  json_t *root = run_bench(args, &seconds);
  if (!root) return;
  CHECK(seconds < 30 || on_emulator(), "%s: the quick run took %.1f s", method, seconds);
  json_t *row = check_row(root, method);
  if (row) {
    double want = BATCH * 3 * expected_forward(method), got = num(row, "flops");
    CHECK(fabs(got - want) <= 1e-9 * want, "%s: flops %.6g, expected %.6g", method, got, want);
  }
  printf("%s: %.3f ms per step (%.1f s for the run)\n", method, row ? num(row, "ms") : NAN, seconds);
  json_decref(root);
}

static void check_bad_options(void) {
  int rc = samx_test_run_samx(dir, 0, err_text, sizeof err_text, "bench train --method bogus --quick");
  CHECK(rc == 2 && strstr(err_text, "bogus"), "--method bogus: exit %d, stderr: %s", rc, err_text);
  rc = samx_test_run_samx(dir, 0, err_text, sizeof err_text, "bench train --masks 0 --quick");
  CHECK(rc == 2 && strstr(err_text, "--masks"), "--masks 0: exit %d, stderr: %s", rc, err_text);
  rc = samx_test_run_samx(dir, 0, err_text, sizeof err_text, "bench train --model vit_q --quick");
  CHECK(rc == 2 && strstr(err_text, "vit_q"), "--model vit_q: exit %d, stderr: %s", rc, err_text);
}

// The PyTorch side, when the venv that bench_torch uses can run it.
static void check_torch(void) {
  if (on_emulator()) {
    printf("note: cuda:0 is the CUDA host emulator, and PyTorch has no GPU here: --compare-torch not checked\n");
    return;
  }
  if (access(VENV_PYTHON, X_OK) != 0 ||
      system(VENV_PYTHON " -c 'import segment_anything, scipy, torch' > /dev/null 2>&1") != 0) {
    printf("note: %s with segment_anything and scipy not found: --compare-torch not checked\n", VENV_PYTHON);
    return;
  }
  setenv("SAMX_PYTHON", VENV_PYTHON, 1);  // ctest's SAMX_PYTHON is Debian's python3, without segment_anything
  double seconds;
  json_t *root = run_bench("--method seqsam --quick -r 1 --batch 2 --masks 4 --compare-torch", &seconds);
  if (!root) return;
  json_t *row = json_array_get(json_object_get(root, "results"), 0);
  double torch_ms = row ? num(row, "torch_ms") : NAN;
  CHECK(positive(torch_ms), "--compare-torch: torch_ms %g, stderr: %s", torch_ms, err_text);
  printf("seqsam with PyTorch: samx %.3f ms, PyTorch %.3f ms per step (%.1f s for the run)\n", row ? num(row, "ms") : NAN,
         torch_ms, seconds);
  json_decref(root);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (dev.type != SAMX_CPU) device = "cuda:0";
  samx_test_samx_bin(argv[0]);
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_bench_train") != 0) {
    printf("FAIL mkdtemp\n");
    return 1;
  }
  check_method("seqsam");
  check_method("mcl");
  check_bad_options();
  check_torch();
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
