// The CUDA runtime of the host emulator: one (or SAMX_CUDA_EMU_DEVICES) emulated sm_90 device(s),
// device memory on the host heap (NaN-filled, each allocation tracked so that copies, memsets and
// library calls outside an allocation are reported), launch checks as the real runtime makes them,
// streams and events that complete in order (everything is synchronous).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>

#include "emu_internal.h"

struct samx_emu_stream {
  int device;
};
struct samx_emu_event {
  std::chrono::steady_clock::time_point at;
  bool recorded;
};

namespace samx_emu {

namespace {

thread_local int t_device = 0;
thread_local cudaError_t t_last = cudaSuccess;
std::mutex g_mem_mutex;
std::map<uintptr_t, size_t> g_allocs;  // device allocations: start -> bytes
std::map<const void *, int> g_max_dyn_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel

const int kDefaultSmem = 48 * 1024, kOptinSmem = 232448;  // sm_90: 227 KiB per block when opted in

int device_count() {
  static int n = -1;
  if (n < 0) {
    const char *e = getenv("SAMX_CUDA_EMU_DEVICES");
    n = e && *e ? atoi(e) : 1;
    if (n < 0 || n > 64) {
      fprintf(stderr, "samx: SAMX_CUDA_EMU_DEVICES=%s: expected a device count in [0, 64]\n", e);
      exit(2);
    }
  }
  return n;
}

cudaError_t fail(cudaError_t e) {
  t_last = e;
  return e;
}

size_t host_memory() { return (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE); }

// Bytes held by cudaMalloc now and at most so far (the emulated device's memory use).
static size_t g_device_bytes, g_device_peak;

bool is_device(const void *p) { return device_range_ok(p, 1); }

// Checks a copy's pointers against its direction; names the offending side.
bool copy_ok(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what) {
  if (bytes == 0) return true;
  if (kind == cudaMemcpyDefault)
    return true;  // direction inferred from the pointers: either side may be host or device
  bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev && !device_range_ok(dst, bytes)) {
    report("%s of %zu bytes: the destination %p is not inside one device allocation", what, bytes, dst);
    return false;
  }
  if (src_dev && !device_range_ok(src, bytes)) {
    report("%s of %zu bytes: the source %p is not inside one device allocation", what, bytes, src);
    return false;
  }
  if (!dst_dev && is_device(dst)) {
    report("%s of %zu bytes: the destination %p is device memory but the copy kind says host", what, bytes, dst);
    return false;
  }
  if (!src_dev && is_device(src)) {
    report("%s of %zu bytes: the source %p is device memory but the copy kind says host", what, bytes, src);
    return false;
  }
  return true;
}

}  // namespace

void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "samx: CUDA emulator: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

bool device_range_ok(const void *p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  uintptr_t a = (uintptr_t)p;
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second && a + bytes >= a;
}

bool dry_run() {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("SAMX_CUDA_EMU_DRY_RUN");
    on = e && *e && strcmp(e, "0") != 0;
  }
  return on;
}

// The launch checks of the real runtime; a bad configuration runs nothing and sets the last error.
void launch(const LaunchSpec &s) {
  const dim3 b = s.block, g = s.grid;
  const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024) {
    report("launch of %s at %s:%d: block (%u,%u,%u) = %llu threads; at most 1024 per block (x, y <= 1024, z <= 64)",
           s.name, s.file, s.line, b.x, b.y, b.z, threads);
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    report("launch of %s at %s:%d: grid (%u,%u,%u) outside 1..2^31-1 x 1..65535 x 1..65535", s.name, s.file, s.line,
           g.x, g.y, g.z);
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  int max_dyn = kDefaultSmem;
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    auto it = g_max_dyn_smem.find(s.fn);
    if (it != g_max_dyn_smem.end()) max_dyn = it->second;
  }
  if (s.smem > (size_t)max_dyn) {
    report("launch of %s at %s:%d: %zu bytes of dynamic shared memory, the limit is %d%s", s.name, s.file, s.line,
           s.smem, max_dyn,
           max_dyn == kDefaultSmem ? " (raise it with cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))"
                                   : "");
    fail(cudaErrorInvalidValue);
    return;
  }
  if (dry_run()) return;
  std::string f = run_grid(s);
  if (!f.empty()) {
    report("%s", f.c_str());
    fail(cudaErrorLaunchFailure);
  }
}

}  // namespace samx_emu

using namespace samx_emu;

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
  *count = device_count();
  return *count ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "samx CUDA emulator (sm_90 on the CPU)");
  p->totalGlobalMem = host_memory();
  p->sharedMemPerBlock = kDefaultSmem;
  p->sharedMemPerBlockOptin = kOptinSmem;
  p->sharedMemPerMultiprocessor = 233472;
  p->totalConstMem = 65536;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  p->l2CacheSize = 50 << 20;
  p->concurrentKernels = 1, p->unifiedAddressing = 1;
  p->pciDeviceID = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 0x7fffffff; break;
    case cudaDevAttrMaxGridDimY: *value = 65535; break;
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = kDefaultSmem; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = kOptinSmem; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
  *device = t_device;
  return cudaSuccess;
}

// Work is done when it is issued; a fault found in a kernel is reported here too.
cudaError_t cudaDeviceSynchronize(void) { return t_last == cudaErrorLaunchFailure ? t_last : cudaSuccess; }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }

cudaError_t cudaGetLastError(void) {
  cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last; }

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

// ---- memory ----

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  void *p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation);
  // NaN: reading what no kernel or copy wrote shows up in the results (a dry run leaves the pages
  // untouched, so a large allocation costs no host memory until it is written)
  if (!dry_run()) memset(p, 0xff, bytes);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  g_allocs[(uintptr_t)p] = bytes;
  g_device_bytes += bytes;
  if (g_device_bytes > g_device_peak) g_device_peak = g_device_bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
  if (!ptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mem_mutex);
    auto it = g_allocs.find((uintptr_t)ptr);
    if (it == g_allocs.end()) {
      report("cudaFree(%p): not the start of a device allocation", ptr);
      return fail(cudaErrorInvalidDevicePointer);
    }
    g_device_bytes -= it->second;
    g_allocs.erase(it);
  }
  free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) {
  *ptr = malloc(bytes ? bytes : 1);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned flags) {
  (void)flags;
  return cudaMallocHost(ptr, bytes);
}
cudaError_t cudaFreeHost(void *ptr) {
  free(ptr);
  return cudaSuccess;
}

// As on a GPU, free memory is what the device's allocations leave of its total.
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  *total_bytes = host_memory();
  *free_bytes = *total_bytes > g_device_bytes ? *total_bytes - g_device_bytes : 0;
  return cudaSuccess;
}

void samx_cuda_emu_memory(size_t *in_use, size_t *peak) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  *in_use = g_device_bytes;
  *peak = g_device_peak;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  if ((unsigned)kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  if (!copy_ok(dst, src, bytes, kind, "cudaMemcpy")) return fail(cudaErrorInvalidValue);
  if (bytes) memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  (void)stream;
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
  if (bytes && !device_range_ok(ptr, bytes)) {
    report("cudaMemset of %zu bytes at %p: not inside one device allocation", bytes, ptr);
    return fail(cudaErrorInvalidValue);
  }
  if (bytes) memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
  (void)stream;
  return cudaMemset(ptr, value, bytes);
}

cudaError_t samx_emu_memcpy_symbol(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, int to_symbol) {
  // The symbol side is a __device__ variable; the other side must match the kind.
  if (to_symbol ? !(kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyDefault)
                : !(kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyDefault))
    return fail(cudaErrorInvalidMemcpyDirection);
  const void *other = to_symbol ? src : dst;
  bool other_dev = kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault && bytes && (other_dev ? !device_range_ok(other, bytes) : is_device(other))) {
    report("cudaMemcpy%sSymbol of %zu bytes: %p does not match the copy kind", to_symbol ? "To" : "From", bytes,
           other);
    return fail(cudaErrorInvalidValue);
  }
  memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t samx_emu_func_set_attribute(const void *fn, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > kOptinSmem)
    return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  g_max_dyn_smem[fn] = value;
  return cudaSuccess;
}

// ---- streams and events: work completes when issued, so everything is in order ----

cudaError_t cudaStreamCreate(cudaStream_t *stream) {
  *stream = new samx_emu_stream{t_device};
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags) {
  (void)flags;
  return cudaStreamCreate(stream);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  (void)stream;
  return cudaDeviceSynchronize();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
  (void)stream, (void)flags;
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventCreate(cudaEvent_t *event) {
  *event = new samx_emu_event{std::chrono::steady_clock::now(), false};
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags) {
  (void)flags;
  return cudaEventCreate(event);
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  (void)stream;
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end || !start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

}  // extern "C"
