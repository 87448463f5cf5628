// Checks for CUDA and cuBLAS calls, and the shared handle/stream.
#ifndef SAMX_CUDA_COMMON_CUH
#define SAMX_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/error.h"
#include "../common.h"

// Kernels are launched as SAMX_LAUNCH(kernel, grid, block, smem_bytes)(args...) and declare dynamic
// shared memory as SAMX_EXTERN_SHARED(type, name): plain CUDA syntax, unless the CUDA headers in use
// defined them already.
#ifndef SAMX_LAUNCH
#define SAMX_LAUNCH(kernel, grid, block, smem) kernel<<<(grid), (block), (smem)>>>
#define SAMX_EXTERN_SHARED(type, name) extern __shared__ type name[]
#endif

// The block's dynamic shared memory from its first 32-byte boundary (WMMA pointers must be 32-byte
// aligned; launches ask for 32 bytes more than they use).
static __device__ __forceinline__ char *samx_smem_aligned32(void) {
  SAMX_EXTERN_SHARED(float, samx_smem_);
  return (char *)(((uintptr_t)samx_smem_ + 31) & ~(uintptr_t)31);
}

#define CUDA_CHECK(call)                                                                          \
  do {                                                                                            \
    cudaError_t err_ = (call);                                                                    \
    if (err_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "samx: CUDA error at %s:%d: %s (%s)\n", __FILE__, __LINE__,                 \
              cudaGetErrorString(err_), #call);                                                   \
      abort();                                                                                    \
    }                                                                                             \
  } while (0)

#define CUBLAS_CHECK(call)                                                                        \
  do {                                                                                            \
    cublasStatus_t st_ = (call);                                                                  \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      fprintf(stderr, "samx: cuBLAS error %d at %s:%d (%s)\n", (int)st_, __FILE__, __LINE__, #call); \
      abort();                                                                                    \
    }                                                                                             \
  } while (0)

// Whether SAMX_CUDA_SYNC_CHECK is set (to anything but "0"): then every launch is waited for, so a
// fault inside a kernel is reported at its own launch instead of at some later copy.
static inline int samx_cuda_sync_check(void) {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("SAMX_CUDA_SYNC_CHECK");
    on = e && *e && strcmp(e, "0") != 0;
  }
  return on;
}

// Checks the launch of the last kernel (and, with SAMX_CUDA_SYNC_CHECK set, its completion).
#define CUDA_LAUNCH_CHECK()                                           \
  do {                                                                \
    CUDA_CHECK(cudaGetLastError());                                   \
    if (samx_cuda_sync_check()) CUDA_CHECK(cudaDeviceSynchronize()); \
  } while (0)

// The cuBLAS handle of the current device, created on first use.
SAMX_EXTERN_C cublasHandle_t samx_cublas_handle(void);

#ifndef SAMX_LAUNCH
#define SAMX_LAUNCH(kernel, grid, block, smem) kernel<<<(grid), (block), (smem)>>>
#define SAMX_EXTERN_SHARED(type, name) extern __shared__ type name[]
#endif

// Opts a kernel in to `bytes` of dynamic shared memory above the default 48 KiB (checked against
// the device's opt-in limit; `what` names the kernel in the error).
template <typename Kernel>
static void samx_cuda_set_smem(Kernel kernel, size_t bytes, const char *what) {
  if (bytes <= 48 * 1024) return;
  int dev = 0, max_bytes = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&max_bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  SAMX_ASSERT(bytes <= (size_t)max_bytes, "%s: needs %zu bytes of shared memory, the device has %d", what, bytes,
              max_bytes);
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

static inline unsigned samx_grid_1d(size_t n, unsigned block) {
  size_t g = (n + block - 1) / block;
  return (unsigned)(g > 65535u * 32u ? 65535u * 32u : (g == 0 ? 1 : g));
}

#endif

#ifndef SAMX_LAUNCH
#define SAMX_LAUNCH(kernel, grid, block, smem) kernel<<<(grid), (block), (smem)>>>
#define SAMX_EXTERN_SHARED(type, name) extern __shared__ type name[]
#endif
