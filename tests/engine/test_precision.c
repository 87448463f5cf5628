// The precision setting (engine/precision.h): parsing of --precision / run.precision, auto per device,
// refusals on the CPU (fp32 only) with the setting named, and the default new contexts get.
// On a build with a CUDA device (the emulator's is sm_90) the GPU cases run too.
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test_util.h"
#include "train/config.h"

static int resolves(const char *spec, SamxDevice d, SamxPrecision want) {
  SamxPrecision p = (SamxPrecision)-1;
  return samx_precision_resolve(spec, d, "--precision", &p) == 0 && p == want;
}

static int refused(const char *spec, SamxDevice d, const char *what, const char *needle) {
  SamxPrecision p;
  samx_clear_error();
  return samx_precision_resolve(spec, d, what, &p) == -1 && strstr(samx_last_error(), needle) &&
         strstr(samx_last_error(), what);
}

int main(void) {
  SamxDevice cpu = samx_cpu();
  CHECK(!strcmp(samx_precision_name(SAMX_PRECISION_FP32), "fp32") &&
            !strcmp(samx_precision_name(SAMX_PRECISION_TF32), "tf32") &&
            !strcmp(samx_precision_name(SAMX_PRECISION_BF16), "bf16"),
        "names");
  CHECK(resolves("auto", cpu, SAMX_PRECISION_FP32) && resolves(NULL, cpu, SAMX_PRECISION_FP32) &&
            resolves("", cpu, SAMX_PRECISION_FP32) && resolves("fp32", cpu, SAMX_PRECISION_FP32),
        "auto and fp32 on the CPU are fp32");
  CHECK(refused("bf16", cpu, "--precision", "CPU backend computes in fp32 only"), "bf16 on the CPU: %s",
        samx_last_error());
  CHECK(refused("tf32", cpu, "run.precision", "CPU backend computes in fp32 only"), "tf32 on the CPU: %s",
        samx_last_error());
  CHECK(refused("fp16", cpu, "--precision", "expected auto, fp32, tf32 or bf16"), "unknown name: %s",
        samx_last_error());
  CHECK(refused("BF16", cpu, "--precision", "expected auto"), "names are lower case: %s", samx_last_error());

  // New contexts: CPU ones are fp32 whatever the default says.
  samx_precision_set_default(SAMX_PRECISION_BF16);
  SamxCtx ctx;
  samx_ctx_init(&ctx, cpu, 1 << 20, 16);
  CHECK(ctx.precision == SAMX_PRECISION_FP32, "a CPU context is fp32, got %s", samx_precision_name(ctx.precision));
  samx_ctx_free(&ctx);
  samx_precision_set_default(SAMX_PRECISION_FP32);

  // run.precision in a training config: parsed, written back, resolved through the same rules.
  SamxTrainConfig c;
  samx_train_config_defaults(&c);
  CHECK(!strcmp(samx_train_config_choice("run", "precision", c.precision), "auto"), "run.precision defaults to auto");
  CHECK(samx_train_config_set(&c, "run.precision=bf16") == 0, "run.precision=bf16: %s", samx_last_error());
  samx_clear_error();
  CHECK(samx_train_config_precision(&c, NULL, cpu) == -1 && strstr(samx_last_error(), "run.precision bf16"),
        "run.precision bf16 on the CPU is refused naming the key: %s", samx_last_error());
  CHECK(samx_train_config_precision(&c, "fp32", cpu) == 0 && samx_precision_default() == SAMX_PRECISION_FP32,
        "--precision fp32 overrides run.precision");
  CHECK(samx_train_config_set(&c, "run.precision=fp8") != 0, "run.precision=fp8 is rejected");
  char *ini = samx_train_config_ini(&c);
  CHECK(strstr(ini, "precision = bf16") != NULL, "the resolved config writes run.precision");
  free(ini);

  // The command line: one clear line for a refused precision, before any work.
  char dir[256], err[512];
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_precision") == 0) {
    int rc = samx_test_run_samx(dir, 0, err, sizeof err, "bench kernels --device cpu --precision bf16 --quick");
    CHECK(rc != 0 && strstr(err, "--precision bf16: the CPU backend computes in fp32 only"),
          "samx bench --device cpu --precision bf16: exit %d, %s", rc, err);
    rc = samx_test_run_samx(dir, 0, err, sizeof err,
                            "embed --checkpoint none.pth --data none.h5 --out e.h5 --device cpu --precision half");
    CHECK(rc != 0 && strstr(err, "--precision half: expected auto, fp32, tf32 or bf16"),
          "samx embed --precision half: exit %d, %s", rc, err);
    rc = samx_test_run_samx(dir, 0, err, sizeof err, "train --help-config");
    CHECK(rc == 0, "samx train --help-config");
    samx_test_remove_dir(dir);
  }

  if (samx_cuda_device_count() > 0) {
    SamxDevice gpu = {SAMX_CUDA, 0};
    int cc = samx_device_compute_capability(gpu);
    CHECK(cc >= 30, "compute capability %d", cc);
    if (cc >= 80) {
      CHECK(resolves("auto", gpu, SAMX_PRECISION_BF16), "auto is bf16 on sm_%d", cc);
      CHECK(resolves("tf32", gpu, SAMX_PRECISION_TF32) && resolves("bf16", gpu, SAMX_PRECISION_BF16) &&
                resolves("fp32", gpu, SAMX_PRECISION_FP32),
            "explicit precisions on sm_%d", cc);
    } else {
      CHECK(resolves("auto", gpu, SAMX_PRECISION_FP32), "auto is fp32 below sm_80");
      CHECK(refused("bf16", gpu, "--precision", "compute capability"), "bf16 below sm_80: %s", samx_last_error());
    }
    CHECK(samx_precision_setup("auto", gpu) == 0, "setup auto on %d", cc);
    samx_ctx_init(&ctx, gpu, 1 << 20, 16);
    CHECK(ctx.precision == (cc >= 80 ? SAMX_PRECISION_BF16 : SAMX_PRECISION_FP32),
          "a CUDA context takes the default, got %s", samx_precision_name(ctx.precision));
    samx_ctx_free(&ctx);
    samx_precision_set_default(SAMX_PRECISION_FP32);
    samx_ctx_init(&ctx, gpu, 1 << 20, 16);
    CHECK(ctx.precision == SAMX_PRECISION_FP32, "library default on CUDA is fp32 (bit-exact)");
    samx_ctx_free(&ctx);
  }
  return samx_test_summary();
}
