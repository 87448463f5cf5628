// Kernel-time profile: with SAMX_PROFILE=1 in the environment (or samx_profile_enable), every kernel
// launch made through SAMX_ON_DEVICE is timed (CUDA synchronised before and after) and summed under
// the name of the engine function that made it (linear's `gemm`, `binary`, `attention_forward`, ...,
// and their `*_backward`). The table goes to stderr at exit, sorted by time. Host code between
// kernels (model glue, data loading, the optimizer's bookkeeping) is not counted, so the total says
// how much of a run's wall time the kernels take.
#ifndef SAMX_PROFILE_H
#define SAMX_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

extern int samx_profile_on;  // read by SAMX_ON_DEVICE; set by samx_profile_enable or SAMX_PROFILE

void samx_profile_enable(int on);
// Starts timing a launch on device d (returns the start time), and adds the elapsed time to site.
double samx_profile_begin(SamxDevice d);
void samx_profile_end(const char *site, SamxDevice d, double t0);
// Calls and seconds summed for a site so far (0 and 0 when it never ran).
void samx_profile_get(const char *site, int64_t *calls, double *seconds);
void samx_profile_reset(void);
// Markdown table: site, calls, total ms, ms per call, share of the profiled time.
void samx_profile_report(FILE *f);

#ifdef __cplusplus
}
#endif
#endif
