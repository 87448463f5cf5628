#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "error.h"

#ifdef SAMX_WITH_CUDA
// Implemented in kernels/cuda/backend.cu.
int samx_cuda_count(void);
void samx_cuda_describe(int index, char *buf, size_t n);
void samx_cuda_set_device(int index);
void *samx_cuda_malloc(size_t bytes);
void samx_cuda_free(void *p);
void samx_cuda_memset0(void *p, size_t bytes);
void samx_cuda_memcpy(void *dst, int dst_on_gpu, const void *src, int src_on_gpu, size_t bytes);
void samx_cuda_sync(void);
int samx_cuda_compute_capability(int index);
void samx_cuda_memory(size_t *used, size_t *total);
#endif

int samx_built_with_cuda(void) {
#ifdef SAMX_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

int samx_cuda_device_count(void) {
#ifdef SAMX_WITH_CUDA
  static int cached = -1;
  if (cached < 0) cached = samx_cuda_count();
  return cached;
#else
  return 0;
#endif
}

int samx_device_parse(const char *spec, SamxDevice *out) {
  if (!spec || strcmp(spec, "auto") == 0) {
#ifdef SAMX_CUDA_EMULATOR
    // The emulated CUDA device (kernels/cuda/emu) is for testing the CUDA path, never faster than
    // the CPU backend: "auto" keeps to the CPU, --device cuda asks for the emulator.
    *out = samx_cpu();
#else
    *out = samx_cuda_device_count() > 0 ? (SamxDevice){SAMX_CUDA, 0} : samx_cpu();
#endif
    return 0;
  }
  if (strcmp(spec, "cpu") == 0) {
    *out = samx_cpu();
    return 0;
  }
  if (strncmp(spec, "cuda", 4) == 0) {
    int index = 0;
    if (spec[4] == ':') {
      char *end;
      long v = strtol(spec + 5, &end, 10);
      if (*end || end == spec + 5 || v < 0) return samx_fail("--device %s: expected cuda:N with N >= 0", spec);
      index = (int)v;
    } else if (spec[4]) {
      return samx_fail("--device %s: expected auto, cpu, cuda or cuda:N", spec);
    }
    if (!samx_built_with_cuda())
      return samx_fail("--device %s: this samx was built without CUDA (HINT: rebuild with nvcc on PATH)", spec);
    int n = samx_cuda_device_count();
    if (index >= n)
      return samx_fail("--device %s: %d CUDA device(s) visible (HINT: check nvidia-smi and CUDA_VISIBLE_DEVICES)",
                       spec, n);
    *out = (SamxDevice){SAMX_CUDA, index};
    return 0;
  }
  return samx_fail("--device %s: expected auto, cpu, cuda or cuda:N", spec);
}

const char *samx_device_str(SamxDevice d, char *buf, size_t n) {
  if (d.type == SAMX_CPU)
    snprintf(buf, n, "cpu");
  else
    snprintf(buf, n, "cuda:%d", d.index);
  return buf;
}

static void cpu_model(char *buf, size_t n) {
  snprintf(buf, n, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *colon = strchr(line, ':');
      if (colon) {
        colon += 2;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, n, "%s", colon);
      }
      break;
    }
  }
  fclose(f);
}

void samx_device_describe(SamxDevice d, char *buf, size_t n) {
  if (d.type == SAMX_CPU) {
    char model[256];
    cpu_model(model, sizeof model);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(buf, n, "%s, %d thread(s)", model, threads);
    return;
  }
#ifdef SAMX_WITH_CUDA
  samx_cuda_describe(d.index, buf, n);
#else
  snprintf(buf, n, "cuda unavailable");
#endif
}

int samx_device_compute_capability(SamxDevice d) {
#ifdef SAMX_WITH_CUDA
  if (d.type == SAMX_CUDA) return samx_cuda_compute_capability(d.index);
#endif
  (void)d;
  return 0;
}

void samx_device_activate(SamxDevice d) {
#ifdef SAMX_WITH_CUDA
  if (d.type == SAMX_CUDA) samx_cuda_set_device(d.index);
#else
  (void)d;
#endif
}

void *samx_dev_malloc(SamxDevice d, size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (d.type == SAMX_CPU) {
    void *p = NULL;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    if (posix_memalign(&p, 256, rounded) != 0 || !p)
      SAMX_DIE("out of host memory allocating %zu bytes", bytes);
    return p;
  }
#ifdef SAMX_WITH_CUDA
  samx_cuda_set_device(d.index);
  return samx_cuda_malloc(bytes);
#else
  SAMX_DIE("CUDA allocation in a build without CUDA");
#endif
}

void samx_dev_free(SamxDevice d, void *p) {
  if (!p) return;
  if (d.type == SAMX_CPU) {
    free(p);
    return;
  }
#ifdef SAMX_WITH_CUDA
  samx_cuda_free(p);
#endif
}

void samx_dev_memset0(SamxDevice d, void *p, size_t bytes) {
  if (!bytes) return;
  if (d.type == SAMX_CPU) {
    memset(p, 0, bytes);
    return;
  }
#ifdef SAMX_WITH_CUDA
  samx_cuda_memset0(p, bytes);
#endif
}

void samx_memcpy(SamxDevice dst_dev, void *dst, SamxDevice src_dev, const void *src, size_t bytes) {
  if (!bytes) return;
  if (dst_dev.type == SAMX_CPU && src_dev.type == SAMX_CPU) {
    memmove(dst, src, bytes);
    return;
  }
#ifdef SAMX_WITH_CUDA
  samx_cuda_memcpy(dst, dst_dev.type == SAMX_CUDA, src, src_dev.type == SAMX_CUDA, bytes);
#else
  SAMX_DIE("CUDA copy in a build without CUDA");
#endif
}

void samx_device_sync(SamxDevice d) {
#ifdef SAMX_WITH_CUDA
  if (d.type == SAMX_CUDA) samx_cuda_sync();
#else
  (void)d;
#endif
}

void samx_device_memory(SamxDevice d, size_t *used, size_t *total) {
  *used = *total = 0;
#ifdef SAMX_WITH_CUDA
  if (d.type == SAMX_CUDA) {
    samx_cuda_set_device(d.index);
    samx_cuda_memory(used, total);
  }
#endif
  (void)d;
}
