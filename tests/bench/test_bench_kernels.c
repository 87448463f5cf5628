// `samx bench kernels --quick` through the command line: the JSON output holds every case with a
// positive, finite time and the bytes each moves, counted in the dtypes the run uses. In bf16 (CUDA)
// the GEMM, attention and LayerNorm cases must run samx's bf16 kernels on bf16 tensors as the encoder
// does (the profile names linear_bf16_gemm, attention_bf16_fwd and layernorm_bf16) and must not time
// operand casts: the GEMM's weight is cast once, into its kept bf16 operand, by the warm-up (before,
// every repetition cast both f32 operands and wrote an f32 output, while PyTorch's side ran on bf16
// tensors). argv[1] "cuda" runs bf16 and fp32 on cuda:0; the CPU entry runs fp32.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"

#define REPS 2

static char dir[256], err_text[8192];

// The quick cases (bench/bench_kernels.c make_cases) and the values each moves: elems in the run's
// activation dtype, f32 values whatever the precision.
typedef struct {
  const char *name;
  double elems, f32;
} Expect;

static const Expect expected[] = {
    {"gemm", 256.0 * 128 + 384 * 128 + 256 * 384, 0},
    {"attention window", 4.0 * 4 * 2 * 49 * 32, 2.0 * 4 * 2 * 49 * 7},
    {"attention global", 4.0 * 1 * 2 * 256 * 32, 2.0 * 1 * 2 * 256 * 16},
    {"layernorm", 2.0 * 256 * 128, 0},
    {"conv2d 3x3", 0, 32.0 * 16 * 16 + 32 * 16 * 16 + 32 * 32 * 9},
    {"conv2d 3x3, im2col", 0, 32.0 * 16 * 16 + 32 * 16 * 16 + 32 * 32 * 9},
    {"conv-transpose 2x2", 0, 32.0 * 16 * 16 + 16 * 32 * 32 + 32 * 16 * 4},
};
#define N_EXPECTED (int)(sizeof expected / sizeof expected[0])

// Calls of a profile site in the stderr table ("| site | calls | ..."); 0 when absent.
static long site_calls(const char *err, const char *site) {
  char key[96];
  snprintf(key, sizeof key, "| %s | ", site);
  const char *p = strstr(err, key);
  return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

static void check_run(const char *device, const char *precision) {
  int rc = samx_test_run_samx(dir, 0, err_text, sizeof err_text, "bench kernels --quick --device %s --precision %s "
                              "-r %d -o json", device, precision, REPS);
  CHECK(rc == 0, "samx bench kernels on %s in %s: exit %d, stderr: %s", device, precision, rc, err_text);
  if (rc) return;
  json_error_t e;
  json_t *root = json_load_file(samx_test_path(dir, "stdout.txt"), 0, &e);
  CHECK(root != NULL, "output is not JSON (%s, line %d)", e.text, e.line);
  if (!root) return;
  json_t *rows = json_object_get(root, "results");
  CHECK(json_is_array(rows) && (int)json_array_size(rows) == N_EXPECTED, "%s %s: %d result rows, expected %d", device,
        precision, json_is_array(rows) ? (int)json_array_size(rows) : -1, N_EXPECTED);
  int bf16 = !strcmp(precision, "bf16");
  for (int i = 0; rows && i < N_EXPECTED && i < (int)json_array_size(rows); i++) {
    json_t *row = json_array_get(rows, (size_t)i);
    const char *name = json_string_value(json_object_get(row, "name"));
    double ms = json_number_value(json_object_get(row, "ms")), bytes = json_number_value(json_object_get(row, "bytes"));
    double want = expected[i].elems * (bf16 ? 2 : 4) + 4 * expected[i].f32;
    CHECK(name && !strcmp(name, expected[i].name), "row %d is %s, expected %s", i, name ? name : "(none)",
          expected[i].name);
    CHECK(isfinite(ms) && ms > 0, "%s %s %s: %g ms", device, precision, expected[i].name, ms);
    CHECK(bytes == want, "%s %s %s: %.0f bytes counted, expected %.0f", device, precision, expected[i].name, bytes,
          want);
  }
  json_decref(root);
  // The kernels that ran (SAMX_PROFILE's table on stderr).
  long gemm_bf16 = site_calls(err_text, "linear_bf16_gemm"), casts = site_calls(err_text, "cast_operand");
  if (bf16) {
    CHECK(gemm_bf16 == REPS + 1 && site_calls(err_text, "attention_bf16_fwd") == 2 * (REPS + 1) &&
              site_calls(err_text, "layernorm_bf16") == REPS + 1,
          "bf16: the bf16 GEMM, attention and LayerNorm must run once per repetition and warm-up:\n%s", err_text);
    CHECK(casts == 1, "bf16: %ld operand casts, expected 1 (the GEMM weight's kept operand, filled once):\n%s", casts,
          err_text);
  } else {
    CHECK(gemm_bf16 == 0 && casts == 0, "%s: bf16 GEMMs %ld, operand casts %ld, expected none", precision, gemm_bf16,
          casts);
  }
  printf("%s %s: %d kernels timed, bytes as counted for %s; bf16 GEMMs %ld, operand casts %ld\n", device, precision,
         N_EXPECTED, precision, gemm_bf16, casts);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_bench_kernels")) {
    printf("FAIL cannot create a temporary directory\n");
    return 1;
  }
  setenv("SAMX_PROFILE", "1", 1);  // the samx child prints its kernel table to stderr
  if (dev.type == SAMX_CUDA) {
    check_run("cuda:0", "bf16");
    check_run("cuda:0", "fp32");
  } else {
    check_run("cpu", "fp32");
  }
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
