// CUDA runtime glue: device discovery, memory, copies, the cuBLAS handle.
#include <string.h>

#include "cuda_common.cuh"

extern "C" int samx_cuda_count(void) {
  int n = 0;
  // No driver or no GPU is not an error: the CPU backend takes over.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" void samx_cuda_describe(int index, char *buf, size_t n) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, index) != cudaSuccess) {
    snprintf(buf, n, "cuda:%d (unavailable)", index);
    return;
  }
  snprintf(buf, n, "%s, sm_%d%d, %.1f GiB, %d SMs", p.name, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.multiProcessorCount);
}

extern "C" int samx_cuda_compute_capability(int index) {
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index));
  return major * 10 + minor;
}

extern "C" void samx_cuda_set_device(int index) { CUDA_CHECK(cudaSetDevice(index)); }

extern "C" void *samx_cuda_malloc(size_t bytes) {
  void *p = NULL;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    fprintf(stderr, "samx: cudaMalloc of %.1f MiB failed: %s (HINT: lower the batch size or arena sizes)\n",
            (double)bytes / 1048576.0, cudaGetErrorString(err));
    abort();
  }
  return p;
}

extern "C" void samx_cuda_free(void *p) { CUDA_CHECK(cudaFree(p)); }

extern "C" void samx_cuda_memset0(void *p, size_t bytes) { CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0)); }

extern "C" void samx_cuda_memcpy(void *dst, int dst_on_gpu, const void *src, int src_on_gpu, size_t bytes) {
  cudaMemcpyKind kind = dst_on_gpu ? (src_on_gpu ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                   : cudaMemcpyDeviceToHost;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

extern "C" void samx_cuda_sync(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

extern "C" void samx_cuda_memory(size_t *used, size_t *total) {
  size_t free_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, total));
  *used = *total - free_bytes;
}

extern "C" cublasHandle_t samx_cublas_handle(void) {
  static cublasHandle_t handles[64];
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (!handles[dev]) {
    CUBLAS_CHECK(cublasCreate(&handles[dev]));
    // Exact fp32 by default: parity with the CPU backend and PyTorch comes first; TF32/bf16 are opt-in.
    CUBLAS_CHECK(cublasSetMathMode(handles[dev], CUBLAS_DEFAULT_MATH));
  }
  return handles[dev];
}
