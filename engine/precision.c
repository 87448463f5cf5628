#include "precision.h"

#include <string.h>

#include "error.h"

static SamxPrecision default_precision = SAMX_PRECISION_FP32;

const char *samx_precision_name(SamxPrecision p) {
  static const char *names[] = {"fp32", "tf32", "bf16"};
  return (unsigned)p < 3 ? names[p] : "?";
}

int samx_precision_resolve(const char *spec, SamxDevice d, const char *what, SamxPrecision *out) {
  int cc = samx_device_compute_capability(d);  // 0 on the CPU
  char dev[32];
  samx_device_str(d, dev, sizeof dev);
  if (!spec || !*spec || !strcmp(spec, "auto")) {
    *out = cc >= 80 ? SAMX_PRECISION_BF16 : SAMX_PRECISION_FP32;
    return 0;
  }
  if (!strcmp(spec, "fp32")) {
    *out = SAMX_PRECISION_FP32;
    return 0;
  }
  if (strcmp(spec, "tf32") && strcmp(spec, "bf16"))
    return samx_fail("%s %s: expected auto, fp32, tf32 or bf16", what, spec);
  if (d.type == SAMX_CPU)
    return samx_fail("%s %s: the CPU backend computes in fp32 only (HINT: --device cuda, or --precision fp32)",
                     what, spec);
  if (cc < 80)
    return samx_fail("%s %s: %s has compute capability %d.%d; %s tensor cores need 8.0 or newer (HINT: "
                     "--precision fp32)",
                     what, spec, dev, cc / 10, cc % 10, spec);
  *out = !strcmp(spec, "tf32") ? SAMX_PRECISION_TF32 : SAMX_PRECISION_BF16;
  return 0;
}

void samx_precision_set_default(SamxPrecision p) { default_precision = p; }

SamxPrecision samx_precision_default(void) { return default_precision; }

SamxPrecision samx_precision_on(SamxDevice d) {
  return d.type == SAMX_CUDA ? samx_precision_default() : SAMX_PRECISION_FP32;
}

int samx_precision_setup(const char *spec, SamxDevice d) {
  SamxPrecision p;
  if (samx_precision_resolve(spec, d, "--precision", &p) != 0) return -1;
  samx_precision_set_default(p);
  return 0;
}
