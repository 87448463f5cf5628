#include <math.h>

// glibc >= 2.35 ships vector erff/expf in libmvec (2-ulp), but math.h declares them only under
// -ffast-math. Declaring them here lets the `omp simd` loops below call the 8-wide versions
// without fast-math's other semantics (NaN and Inf still propagate): GELU over ViT-B's MLP
// activations was 4% of an encoder pass with scalar erff.
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#pragma omp declare simd notinbranch
extern float erff(float);
#pragma omp declare simd notinbranch
extern float expf(float);
#endif

#include "../activation.h"

// The activation kind is a loop invariant: one loop per kind so that each vectorises.
#define ACT_LOOP(KIND, BODY)                                                   \
  case KIND: {                                                                 \
    _Pragma("omp parallel for simd schedule(static) if (n > 32768)")           \
    for (int64_t i = 0; i < n; i++) BODY;                                      \
    break;                                                                     \
  }

void samx_cpu_act_fwd(int kind, const float *x, float *y, int64_t n) {
  switch (kind) {
    ACT_LOOP(SAMX_ACT_RELU, y[i] = samx_act_fwd(SAMX_ACT_RELU, x[i]))
    ACT_LOOP(SAMX_ACT_GELU, y[i] = samx_act_fwd(SAMX_ACT_GELU, x[i]))
    default: ACT_LOOP(SAMX_ACT_SIGMOID, y[i] = samx_act_fwd(SAMX_ACT_SIGMOID, x[i]))
  }
}

void samx_cpu_act_bwd(int kind, const float *x, const float *y, const float *gy, float *gx, int64_t n) {
  switch (kind) {
    ACT_LOOP(SAMX_ACT_RELU, gx[i] += samx_act_bwd(SAMX_ACT_RELU, x[i], y[i], gy[i]))
    ACT_LOOP(SAMX_ACT_GELU, gx[i] += samx_act_bwd(SAMX_ACT_GELU, x[i], y[i], gy[i]))
    default: ACT_LOOP(SAMX_ACT_SIGMOID, gx[i] += samx_act_bwd(SAMX_ACT_SIGMOID, x[i], y[i], gy[i]))
  }
}
