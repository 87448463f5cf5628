// Shared by C and CUDA: the per-element arithmetic of every kernel is written once as a
// SAMX_HD inline function, called by the CPU loop and by the CUDA kernel alike, so the CPU tests
// exercise the GPU's math.
#ifndef SAMX_KERNELS_COMMON_H
#define SAMX_KERNELS_COMMON_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define SAMX_HD __host__ __device__ __forceinline__
#else
#define SAMX_HD static inline
#endif

#ifdef __cplusplus
#define SAMX_EXTERN_C extern "C"
#else
#define SAMX_EXTERN_C
#endif

#endif
