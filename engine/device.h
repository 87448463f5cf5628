// Devices and the backend interface: CPU always, CUDA when the build has it and a GPU is present.
#ifndef SAMX_DEVICE_H
#define SAMX_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAMX_CPU = 0, SAMX_CUDA = 1 } SamxDeviceType;

typedef struct {
  SamxDeviceType type;
  int index;  // CUDA ordinal; 0 for the CPU
} SamxDevice;

static inline SamxDevice samx_cpu(void) { SamxDevice d = {SAMX_CPU, 0}; return d; }
static inline int samx_device_eq(SamxDevice a, SamxDevice b) { return a.type == b.type && a.index == b.index; }

// Parses "auto", "cpu", "cuda" or "cuda:N". "auto" resolves to cuda:0 when a GPU is usable, else cpu.
// A CUDA device that does not exist (or a build without CUDA) is an error. Returns 0 or -1 (samx_last_error).
int samx_device_parse(const char *spec, SamxDevice *out);
// "cpu" or "cuda:N" (static buffer per call site is not needed: writes into buf).
const char *samx_device_str(SamxDevice d, char *buf, size_t n);

// Number of usable CUDA devices: 0 in a build without CUDA or on a machine without a GPU (never an error).
int samx_cuda_device_count(void);
int samx_built_with_cuda(void);
// One line describing the device (GPU name, memory; CPU model, threads).
void samx_device_describe(SamxDevice d, char *buf, size_t n);
// Compute capability as major * 10 + minor (90 for sm_90); 0 for the CPU.
int samx_device_compute_capability(SamxDevice d);
// Makes d the current device (cudaSetDevice); no-op for the CPU.
void samx_device_activate(SamxDevice d);

// Raw memory on a device; abort on failure with the size asked for (a bug or an undersized machine).
void *samx_dev_malloc(SamxDevice d, size_t bytes);
void samx_dev_free(SamxDevice d, void *p);
void samx_dev_memset0(SamxDevice d, void *p, size_t bytes);
// Copies between any two devices (CPU<->CUDA, CUDA<->CUDA, CPU<->CPU).
void samx_memcpy(SamxDevice dst_dev, void *dst, SamxDevice src_dev, const void *src, size_t bytes);
// Waits for all queued work on the device.
void samx_device_sync(SamxDevice d);
// A GPU's memory in use (by every process and the CUDA context, as cudaMemGetInfo reports it) and its
// total, in bytes; both 0 for the CPU.
void samx_device_memory(SamxDevice d, size_t *used, size_t *total);

#ifdef __cplusplus
}
#endif
#endif
