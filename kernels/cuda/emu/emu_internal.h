// Shared between the emulator's runtime, scheduler and cuBLAS (not seen by kernel sources).
#ifndef SAMX_EMU_INTERNAL_H
#define SAMX_EMU_INTERNAL_H

#include <stddef.h>

#include <string>

#include "cuda_runtime.h"

namespace samx_emu {

// Runs every block of a launch; returns the fault found in a kernel ("" if none).
std::string run_grid(const LaunchSpec &spec);

// Whether [p, p + bytes) lies inside one live device allocation.
bool device_range_ok(const void *p, size_t bytes);

// SAMX_CUDA_EMU_DRY_RUN=1: launches and cuBLAS / cuBLASLt products are checked as usual and then
// return without computing; allocations and copies are real. For measuring the device memory a
// program allocates (cudaMemGetInfo, samx_cuda_emu_memory) at sizes the emulator could not compute in
// reasonable time; every result is garbage.
bool dry_run();

// Prints "samx: CUDA emulator: ..." to stderr.
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace samx_emu

#endif
