// The kernel profile: off, nothing is counted; on, each launch is counted under its engine
// function with a time that fits inside the wall time around it; the report lists the sites.
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Three linear layers without bias (3 GEMMs) and two broadcast adds.
static void run_ops(SamxCtx *ctx) {
  SamxTensor *x = samx_zeros(ctx, SAMX_F32, SHAPE(64, 32)), *w = samx_zeros(ctx, SAMX_F32, SHAPE(32, 32));
  SamxTensor *b = samx_zeros(ctx, SAMX_F32, SHAPE(32));
  for (int i = 0; i < 3; i++) x = samx_linear(ctx, x, w, NULL);
  for (int i = 0; i < 2; i++) x = samx_add(ctx, x, b);
}

int main(void) {
  SamxCtx ctx;
  samx_test_ctx(&ctx, samx_cpu());
  samx_ctx_set_recording(&ctx, 0);
  samx_profile_enable(0);
  samx_profile_reset();
  run_ops(&ctx);
  int64_t calls;
  double sec;
  samx_profile_get("gemm", &calls, &sec);
  CHECK(calls == 0 && sec == 0.0, "profile off: gemm counted %lld calls", (long long)calls);

  samx_profile_enable(1);
  double t0 = wall();
  run_ops(&ctx);
  double elapsed = wall() - t0;
  samx_profile_enable(0);
  double gemm_s, binary_s;
  samx_profile_get("gemm", &calls, &gemm_s);
  CHECK(calls == 3, "gemm: %lld calls, expected 3 (one per linear layer)", (long long)calls);
  samx_profile_get("binary", &calls, &binary_s);
  CHECK(calls == 2, "binary: %lld calls, expected 2 (one per add)", (long long)calls);
  CHECK(gemm_s >= 0 && binary_s >= 0 && gemm_s + binary_s <= elapsed,
        "kernel times %.3g + %.3g s exceed the %.3g s around them", gemm_s, binary_s, elapsed);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  samx_profile_report(f);
  fclose(f);
  CHECK(text && strstr(text, "| gemm | 3 |") && strstr(text, "| binary | 2 |"),
        "report lacks the gemm and binary rows:\n%s", text ? text : "");
  free(text);
  samx_profile_reset();
  samx_profile_get("gemm", &calls, &sec);
  CHECK(calls == 0, "reset left %lld gemm calls", (long long)calls);
  samx_ctx_free(&ctx);
  return samx_test_summary();
}
