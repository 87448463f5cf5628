// Helpers shared by the CUDA host emulator's own tests (tests/kernels/cuda/emu/test_*.cu).
#ifndef SAMX_EMU_TEST_H
#define SAMX_EMU_TEST_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;

#define CHECK(cond, ...)                            \
  do {                                              \
    if (!(cond)) {                                  \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
      printf(__VA_ARGS__);                          \
      printf("\n");                                 \
      g_failures++;                                 \
    }                                               \
  } while (0)

static const char *kSchedules[] = {"forward", "reverse", "random:1", "random:7"};

template <class T>
static T *dev_alloc(size_t n) {
  T *p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) abort();
  return p;
}

template <class T>
static void to_host(T *dst, const T *src, size_t n) {
  if (cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) abort();
}

// Runs a launch and returns its error (clearing it), so faults can be checked for.
#define LAUNCH_ERR(...) (__VA_ARGS__, cudaGetLastError())

// Whether the last fault's message names a (and b, unless NULL).
static inline bool fault_names(const char *a, const char *b) {
  const char *f = samx_cuda_emu_last_fault();
  return strstr(f, a) && (!b || strstr(f, b));
}

#endif
