// Compute precision of the GEMMs on a device: fp32 (exact, the CPU's only mode), tf32 (fp32 tensors,
// inputs rounded to tf32 by cuBLAS's FAST_TF32 compute type) or bf16 (operands cast to bf16, cuBLASLt
// with fp32 accumulation). Parameters, their gradients and optimizer state stay fp32 in every mode.
#ifndef SAMX_PRECISION_H
#define SAMX_PRECISION_H

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAMX_PRECISION_FP32 = 0, SAMX_PRECISION_TF32, SAMX_PRECISION_BF16 } SamxPrecision;

// "fp32", "tf32", "bf16".
const char *samx_precision_name(SamxPrecision p);

// Parses spec ("auto", "fp32", "tf32" or "bf16"; NULL or "" mean auto) for device d. auto: bf16 on a
// CUDA device of compute capability >= 8.0, else fp32. tf32 and bf16 need such a device: on the CPU
// (which computes in fp32 only) or an older GPU they are refused. `what` names the setting in the
// error ("--precision", "run.precision"). Returns 0, or -1 with samx_last_error().
int samx_precision_resolve(const char *spec, SamxDevice d, const char *what, SamxPrecision *out);

// The precision samx_ctx_init gives new contexts on CUDA devices (CPU contexts are always fp32):
// fp32 until a command sets it from --precision / run.precision, so library callers and tests get
// bit-exact fp32 unless they ask otherwise.
void samx_precision_set_default(SamxPrecision p);
SamxPrecision samx_precision_default(void);
// The precision samx_ctx_init gives a new context on device d (sizes that depend on it use this).
SamxPrecision samx_precision_on(SamxDevice d);

// The command-line help line shared by every computing command.
#define SAMX_PRECISION_HELP                                                                              \
  "  --precision P       auto (default: bf16 on CUDA devices of compute capability >= 8.0, fp32 on the\n" \
  "                      CPU), fp32, tf32 or bf16 (GEMMs in bf16 with fp32 accumulation; CUDA only)\n"

// For commands: resolves spec for d and makes it the default of new contexts (0, or -1 with the error).
int samx_precision_setup(const char *spec, SamxDevice d);

#ifdef __cplusplus
}
#endif
#endif
