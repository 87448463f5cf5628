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

// Prints "samx: CUDA emulator: ..." to stderr.
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace samx_emu

#endif
