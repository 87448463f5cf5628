// The CUDA host emulator's own tests (emulated build only): correct kernels give the right answer
// under every schedule, and kernels written to be wrong are caught, each with the error the
// emulator promises (docs/engine.md, "The CUDA host emulator").
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_test.h"

// ---- correct kernels ----

#define N_TREE 256
// Block-wide tree sum in static shared memory.
__global__ void tree_sum_kernel(const float *x, float *out) {
  __shared__ float part[N_TREE];
  part[threadIdx.x] = x[blockIdx.x * N_TREE + threadIdx.x];
  __syncthreads();
  for (int off = N_TREE / 2; off > 0; off /= 2) {
    if (threadIdx.x < off) part[threadIdx.x] += part[threadIdx.x + off];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

// Warp sums with each shuffle flavour; threads past n exit first (they do not count at the barrier).
__global__ void warp_kernel(const float *x, float *xor_sum, float *down_sum, float *bcast, float *seg16,
                            unsigned *ballot, int *any_all, int n) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float v = x[threadIdx.x];
  float a = v, b = v, s = v;
  for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
  for (int o = 16; o > 0; o >>= 1) b += __shfl_down_sync(0xffffffffu, b, o);
  for (int o = 8; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o, 16);
  float c = __shfl_sync(0xffffffffu, v, 5);
  unsigned bal = __ballot_sync(0xffffffffu, v > 0.5f);
  int any = __any_sync(0xffffffffu, v > 0.99f), all = __all_sync(0xffffffffu, v >= 0.0f);
  xor_sum[threadIdx.x] = a;
  if (lane == 0) down_sum[warp] = b;
  bcast[threadIdx.x] = c;
  seg16[threadIdx.x] = s;
  if (lane == 0) ballot[warp] = bal, any_all[2 * warp] = any, any_all[2 * warp + 1] = all;
  if ((int)threadIdx.x >= n) return;
  __syncthreads();  // only the first n threads are left; they pass
  __syncwarp(n - 32 * warp >= 32 ? 0xffffffffu : (1u << (n - 32 * warp)) - 1);  // the live lanes of the warp
}

// Every thread takes a ticket; the old values returned must be a permutation of 0..n-1.
__global__ void atomic_kernel(unsigned *counter, unsigned *tickets, unsigned long long *minv, float *fsum) {
  unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  tickets[t] = atomicAdd(counter, 1u);
  atomicMin(minv, (unsigned long long)(1000 + (t * 7919u) % 4096));
  atomicAdd(fsum, 1.0f);
}

// Dynamic shared memory and a 2D block: transpose a 16 x 8 tile.
__global__ void transpose_kernel(const float *x, float *y) {
  SAMX_EXTERN_SHARED(float, tile);
  tile[threadIdx.y * 16 + threadIdx.x] = x[threadIdx.y * 16 + threadIdx.x];
  __syncthreads();
  int t = threadIdx.y * 16 + threadIdx.x, r = t / 8, c = t % 8;  // y is 16 x 8
  y[t] = tile[c * 16 + r];
}

__global__ void big_smem_kernel(float *out) {
  SAMX_EXTERN_SHARED(float, buf);
  const int n = 64 * 1024 / 4;
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = (float)i;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = buf[n - 1];
}

static void test_correct_kernels(const char *schedule) {
  CHECK(samx_cuda_emu_set_schedule(schedule) == 0, "schedule %s", schedule);
  const int blocks = 3;
  float hx[blocks * N_TREE], hsum[blocks];
  for (int i = 0; i < blocks * N_TREE; i++) hx[i] = (float)(i % 17) * 0.25f;
  float *x = dev_alloc<float>(blocks * N_TREE), *out = dev_alloc<float>(blocks);
  cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(tree_sum_kernel, blocks, N_TREE, 0)(x, out)) == cudaSuccess, "tree_sum launch");
  to_host(hsum, out, blocks);
  for (int b = 0; b < blocks; b++) {
    float want = 0;
    for (int i = 0; i < N_TREE; i++) want += hx[b * N_TREE + i];
    CHECK(fabsf(hsum[b] - want) < 1e-3f, "[%s] tree sum block %d: %g, want %g", schedule, b, hsum[b], want);
  }

  // Warp intrinsics over 64 threads (2 warps), 40 of which go on to the barrier.
  const int nt = 64;
  float hv[nt];
  for (int i = 0; i < nt; i++) hv[i] = (float)((i * 37) % 64) / 64.0f;
  float *v = dev_alloc<float>(nt), *xs = dev_alloc<float>(nt), *ds = dev_alloc<float>(2), *bc = dev_alloc<float>(nt),
        *sg = dev_alloc<float>(nt);
  unsigned *bal = dev_alloc<unsigned>(2);
  int *aa = dev_alloc<int>(4);
  cudaMemcpy(v, hv, sizeof hv, cudaMemcpyHostToDevice);
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(warp_kernel, 1, nt, 0)(v, xs, ds, bc, sg, bal, aa, 40)) == cudaSuccess, "[%s] %s",
        schedule, samx_cuda_emu_last_fault());
  float hxs[nt], hds[2], hbc[nt], hsg[nt];
  unsigned hbal[2];
  int haa[4];
  to_host(hxs, xs, nt), to_host(hds, ds, 2), to_host(hbc, bc, nt), to_host(hsg, sg, nt), to_host(hbal, bal, 2);
  to_host(haa, aa, 4);
  for (int w = 0; w < 2; w++) {
    float want = 0, seg[2] = {0, 0};
    unsigned want_bal = 0;
    int any = 0;
    for (int l = 0; l < 32; l++) {
      float e = hv[32 * w + l];
      want += e, seg[l / 16] += e;
      if (e > 0.5f) want_bal |= 1u << l;
      any |= e > 0.99f;
    }
    CHECK(fabsf(hds[w] - want) < 1e-4f, "[%s] shfl_down sum warp %d: %g want %g", schedule, w, hds[w], want);
    CHECK(hbal[w] == want_bal, "[%s] ballot warp %d: %08x want %08x", schedule, w, hbal[w], want_bal);
    CHECK(haa[2 * w] == any && haa[2 * w + 1] == 1, "[%s] any/all warp %d", schedule, w);
    for (int l = 0; l < 32; l++) {
      int t = 32 * w + l;
      CHECK(fabsf(hxs[t] - want) < 1e-4f, "[%s] shfl_xor sum thread %d: %g want %g", schedule, t, hxs[t], want);
      CHECK(hbc[t] == hv[32 * w + 5], "[%s] shfl broadcast thread %d", schedule, t);
      CHECK(fabsf(hsg[t] - seg[l / 16]) < 1e-4f, "[%s] width-16 xor sum thread %d: %g want %g", schedule, t, hsg[t],
            seg[l / 16]);
    }
  }

  // Atomics return the old value.
  const int ab = 4, at = 128;
  unsigned *counter = dev_alloc<unsigned>(1), *tickets = dev_alloc<unsigned>(ab * at);
  unsigned long long *minv = dev_alloc<unsigned long long>(1);
  float *fsum = dev_alloc<float>(1);
  cudaMemset(counter, 0, 4), cudaMemset(fsum, 0, 4), cudaMemset(minv, 0xff, 8);
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(atomic_kernel, ab, at, 0)(counter, tickets, minv, fsum)) == cudaSuccess, "atomics");
  unsigned ht[ab * at], hc;
  unsigned long long hm;
  float hf;
  to_host(ht, tickets, ab * at), to_host(&hc, counter, 1), to_host(&hm, minv, 1), to_host(&hf, fsum, 1);
  static unsigned char seen[ab * at];
  memset(seen, 0, sizeof seen);
  int dup = 0;
  for (int i = 0; i < ab * at; i++) dup += ht[i] >= (unsigned)(ab * at) || seen[ht[i]]++;
  unsigned long long want_min = ~0ull;
  for (unsigned t = 0; t < (unsigned)(ab * at); t++)
    want_min = want_min < 1000 + (t * 7919u) % 4096 ? want_min : 1000 + (t * 7919u) % 4096;
  CHECK(dup == 0 && hc == (unsigned)(ab * at), "[%s] atomicAdd tickets: %d duplicates, counter %u", schedule, dup, hc);
  CHECK(hm == want_min && hf == (float)(ab * at), "[%s] atomicMin %llu want %llu, float atomicAdd %g", schedule, hm,
        want_min, hf);

  // Dynamic shared memory with a 2D block.
  float ht2[128], hy[128];
  for (int i = 0; i < 128; i++) ht2[i] = (float)i;
  float *tx = dev_alloc<float>(128), *ty = dev_alloc<float>(128);
  cudaMemcpy(tx, ht2, sizeof ht2, cudaMemcpyHostToDevice);
  CHECK(LAUNCH_ERR(SAMX_LAUNCH(transpose_kernel, 1, dim3(16, 8), 128 * sizeof(float))(tx, ty)) == cudaSuccess,
        "transpose");
  to_host(hy, ty, 128);
  int bad = 0;
  for (int t = 0; t < 128; t++) bad += hy[t] != ht2[(t % 8) * 16 + t / 8];
  CHECK(bad == 0, "[%s] 2D transpose through dynamic shared memory: %d wrong", schedule, bad);

  for (void *p : {(void *)x, (void *)out, (void *)v, (void *)xs, (void *)ds, (void *)bc, (void *)sg, (void *)bal,
                  (void *)aa, (void *)counter, (void *)tickets, (void *)minv, (void *)fsum, (void *)tx, (void *)ty})
    cudaFree(p);
}

// ---- kernels written to be wrong ----

// Missing __syncthreads between writing and reading a neighbour's entry.
__global__ void rotate_kernel(const float *x, float *y, int with_barrier) {
  __shared__ float sh[64];
  sh[threadIdx.x] = x[threadIdx.x];
  if (with_barrier) __syncthreads();
  y[threadIdx.x] = sh[(threadIdx.x + 1) % 64];
}

// Reads one past a shared tile (the last thread).
__global__ void past_tile_kernel(const float *x, float *y) {
  __shared__ float tile[64];
  tile[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  y[threadIdx.x] = tile[threadIdx.x] + tile[threadIdx.x + 1];  // the bug: no bound on threadIdx.x + 1
}

__global__ void past_dynamic_kernel(const float *x, float *y) {
  SAMX_EXTERN_SHARED(float, tile);
  tile[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  y[threadIdx.x] = tile[threadIdx.x + 1];
}

// Lanes 16..31 exit, lanes 0..15 shuffle with a full mask.
__global__ void exited_lane_shfl_kernel(float *y) {
  if (threadIdx.x >= 16) return;
  y[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

__global__ void divergent_barrier_kernel(float *y) {
  if (threadIdx.x < 32) {
    __syncthreads();
    y[threadIdx.x] = 1;
  } else {
    __syncthreads();
    y[threadIdx.x] = 2;
  }
}

// Lane 0 shuffles with lane 1, which waits at the block barrier: the block can never finish.
__global__ void deadlock_kernel(float *y) {
  float v = 0;
  if (threadIdx.x == 0) v = __shfl_sync(0x3u, 1.0f, 1);
  else __syncthreads();
  y[threadIdx.x] = v;
}

__global__ void noop_kernel(float *y) { y[threadIdx.x] = 0; }

// Runs fn in a child process; returns whether it was caught: the child exits with 3 when its own
// check finds the fault, or dies with a sanitizer report naming this file.
static bool caught_in_child(void (*fn)(void), const char *what) {
  char path[] = "/tmp/samx_emu_child_XXXXXX";
  int fd = mkstemp(path);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 2);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[65536] = {0};
  lseek(fd, 0, SEEK_SET);
  ssize_t got = read(fd, buf, sizeof buf - 1);
  (void)got;
  close(fd);
  unlink(path);
  // A sanitizer report at the kernel's line: ASan's, or UBSan's bounds check on a static array.
  bool asan = (strstr(buf, "AddressSanitizer") || strstr(buf, "runtime error: index")) && strstr(buf, "test_cuda_emu.cu:");
  bool own = WIFEXITED(status) && WEXITSTATUS(status) == 3;
  printf("%s %s: %s\n", asan || own ? "caught" : "MISSED", what,
         asan ? "sanitizer report at the kernel line" : (own ? "NaN read in the result" : "-"));
  if (!asan && !own) printf("child exit status %d, stderr:\n%s\n", status, buf);
  return asan || own;
}

static void child_past_tile(void) {
  float hx[64], hy[64];
  for (int i = 0; i < 64; i++) hx[i] = 1.0f;
  float *x = dev_alloc<float>(64), *y = dev_alloc<float>(64);
  cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
  SAMX_LAUNCH(past_tile_kernel, 1, 64, 0)(x, y);
  to_host(hy, y, 64);
  _exit(isnan(hy[63]) ? 3 : 0);
}

static void child_past_dynamic(void) {
  float hx[64], hy[64];
  for (int i = 0; i < 64; i++) hx[i] = 1.0f;
  float *x = dev_alloc<float>(64), *y = dev_alloc<float>(64);
  cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
  SAMX_LAUNCH(past_dynamic_kernel, 1, 64, 64 * sizeof(float))(x, y);
  to_host(hy, y, 64);
  _exit(isnan(hy[63]) ? 3 : 0);
}

static void test_wrong_kernels(void) {
  samx_cuda_emu_set_schedule("forward");
  float hx[64], hy[64];
  for (int i = 0; i < 64; i++) hx[i] = (float)i;
  float *x = dev_alloc<float>(64), *y = dev_alloc<float>(64);
  cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);

  // Missing barrier: with it the rotation is right under every schedule; without it, the forward
  // schedule reads what no thread wrote yet (NaN).
  int wrong_without = 0;
  for (const char *s : kSchedules) {
    samx_cuda_emu_set_schedule(s);
    for (int with = 0; with < 2; with++) {
      SAMX_LAUNCH(rotate_kernel, 1, 64, 0)(x, y, with);
      CHECK(cudaGetLastError() == cudaSuccess, "rotate launch");
      to_host(hy, y, 64);
      int bad = 0;
      for (int t = 0; t < 64; t++) bad += hy[t] != hx[(t + 1) % 64];
      if (with) CHECK(bad == 0, "[%s] rotate with __syncthreads: %d wrong", s, bad);
      else wrong_without += bad > 0;
    }
  }
  CHECK(wrong_without > 0, "a missing __syncthreads changed no result under any schedule");
  printf("%s missing __syncthreads: wrong result under %d of 4 schedules\n", wrong_without ? "caught" : "MISSED",
         wrong_without);
  samx_cuda_emu_set_schedule("forward");

  CHECK(caught_in_child(child_past_tile, "read one past a static shared tile"), "static tile overrun not caught");
  CHECK(caught_in_child(child_past_dynamic, "read one past dynamic shared memory"), "dynamic overrun not caught");

  for (const char *s : kSchedules) {
    samx_cuda_emu_set_schedule(s);
    cudaError_t e = LAUNCH_ERR(SAMX_LAUNCH(exited_lane_shfl_kernel, 1, 32, 0)(y));
    CHECK(e == cudaErrorLaunchFailure && fault_names("exited", "exited_lane_shfl_kernel"),
          "[%s] shuffle naming exited lanes: error %d, fault '%s'", s, e, samx_cuda_emu_last_fault());
    e = LAUNCH_ERR(SAMX_LAUNCH(divergent_barrier_kernel, 1, 64, 0)(y));
    CHECK(e == cudaErrorLaunchFailure && fault_names("divergent __syncthreads", "test_cuda_emu.cu:"),
          "[%s] divergent barrier: error %d, fault '%s'", s, e, samx_cuda_emu_last_fault());
    e = LAUNCH_ERR(SAMX_LAUNCH(deadlock_kernel, 1, 64, 0)(y));
    CHECK(e == cudaErrorLaunchFailure && fault_names("can never finish", "__shfl_sync"),
          "[%s] deadlock: error %d, fault '%s'", s, e, samx_cuda_emu_last_fault());
  }
  printf("caught divergent barrier: %s\n", samx_cuda_emu_last_fault()[0] ? "yes" : "no");
  // The divergent barrier's message names both call sites.
  samx_cuda_emu_set_schedule("forward");
  (void)LAUNCH_ERR(SAMX_LAUNCH(divergent_barrier_kernel, 1, 64, 0)(y));
  const char *f = samx_cuda_emu_last_fault();
  int sites = 0;
  for (const char *p = f; (p = strstr(p, "test_cuda_emu.cu:")); p++) sites++;
  CHECK(sites >= 3, "divergent barrier message names launch and both barriers: '%s'", f);
  printf("divergent barrier message:\n%s\n", f);

  // Launch limits: nothing runs, the error comes from cudaGetLastError.
  cudaError_t e = LAUNCH_ERR(SAMX_LAUNCH(noop_kernel, 1, 2048, 0)(y));
  CHECK(e == cudaErrorInvalidConfiguration, "2048 threads per block: %d", e);
  e = LAUNCH_ERR(SAMX_LAUNCH(noop_kernel, 1, dim3(8, 8, 128), 0)(y));
  CHECK(e == cudaErrorInvalidConfiguration, "blockDim.z 128: %d", e);
  e = LAUNCH_ERR(SAMX_LAUNCH(noop_kernel, dim3(1, 70000), 1, 0)(y));
  CHECK(e == cudaErrorInvalidConfiguration, "gridDim.y 70000: %d", e);
  e = LAUNCH_ERR(SAMX_LAUNCH(noop_kernel, 0, 32, 0)(y));
  CHECK(e == cudaErrorInvalidConfiguration, "empty grid: %d", e);
  CHECK(cudaGetLastError() == cudaSuccess, "launch errors are cleared by cudaGetLastError");
  float *big = dev_alloc<float>(1);
  e = LAUNCH_ERR(SAMX_LAUNCH(big_smem_kernel, 1, 256, 64 * 1024)(big));
  CHECK(e == cudaErrorInvalidValue, "64 KiB of dynamic shared memory without the attribute: %d", e);
  CHECK(cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess,
        "raise the limit");
  e = LAUNCH_ERR(SAMX_LAUNCH(big_smem_kernel, 1, 256, 64 * 1024)(big));
  float hb = 0;
  to_host(&hb, big, 1);
  CHECK(e == cudaSuccess && hb == (float)(16 * 1024 - 1), "64 KiB after cudaFuncSetAttribute: %d, %g", e, hb);
  CHECK(cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024) ==
            cudaErrorInvalidValue, "above the sm_90 opt-in limit");
  cudaFree(big), cudaFree(x), cudaFree(y);
}

// ---- runtime and cuBLAS ----

static void test_runtime_and_cublas(void) {
  int n = 0;
  cudaDeviceProp p;
  CHECK(cudaGetDeviceCount(&n) == cudaSuccess && n >= 1, "device count");
  CHECK(cudaGetDeviceProperties(&p, 0) == cudaSuccess && p.major == 9 && p.minor == 0 && strstr(p.name, "emulator"),
        "an sm_90 device whose name says emulator: %s", p.name);
  float *d = dev_alloc<float>(4), h[4];
  to_host(h, d, 4);
  CHECK(isnan(h[0]) && isnan(h[3]), "fresh device memory reads as NaN");
  float host[4] = {1, 2, 3, 4};
  CHECK(cudaMemcpy(host, d, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "copy with the direction reversed");
  CHECK(cudaMemcpy(d, host, 32, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "copy past an allocation");
  cudaGetLastError();

  // C = A B in column-major: A 2x3 (lda 2), B 3x2 (ldb 3).
  cublasHandle_t hnd;
  CHECK(cublasCreate(&hnd) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  float ha[6] = {1, 2, 3, 4, 5, 6}, hb[6] = {1, 0, 2, 1, 3, 0}, hc[4];
  float *a = dev_alloc<float>(6), *b = dev_alloc<float>(6), *c = dev_alloc<float>(4);
  cudaMemcpy(a, ha, sizeof ha, cudaMemcpyHostToDevice), cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice);
  const float one = 1, zero = 0;
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2) == CUBLAS_STATUS_SUCCESS,
        "sgemm");
  to_host(hc, c, 4);
  // Column 0 of C = 1*A[:,0] + 0*A[:,1] + 2*A[:,2] = (1 + 10, 2 + 12); column 1 = A[:,0] + 3*A[:,1] = (10, 14).
  CHECK(hc[0] == 11 && hc[1] == 14 && hc[2] == 10 && hc[3] == 14, "column-major product %g %g %g %g", hc[0], hc[1],
        hc[2], hc[3]);
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 1, b, 3, &zero, c, 2) ==
            CUBLAS_STATUS_INVALID_VALUE, "lda < m");
  CHECK(cublasSgemm(hnd, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2) ==
            CUBLAS_STATUS_INVALID_VALUE, "lda < k with A transposed");
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 2, &zero, c, 2) ==
            CUBLAS_STATUS_INVALID_VALUE, "ldb < k");
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 1) ==
            CUBLAS_STATUS_INVALID_VALUE, "ldc < m");
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 3, &one, a, 2, b, 3, &zero, c, 2) ==
            CUBLAS_STATUS_INVALID_VALUE, "m < 0");
  CHECK(cublasSgemmStridedBatched(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, 6, b, 3, 6, &zero, c, 2, 4,
                                  -1) == CUBLAS_STATUS_INVALID_VALUE, "batchCount < 0");
  CHECK(cublasSgemm(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, ha, 2, b, 3, &zero, c, 2) ==
            CUBLAS_STATUS_EXECUTION_FAILED, "a host pointer as A");
  CHECK(cublasSgemmStridedBatched(hnd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, 6, b, 3, 6, &zero, c, 2, 4,
                                  2) == CUBLAS_STATUS_EXECUTION_FAILED, "a batch past the allocations");
  cublasDestroy(hnd);
  cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(d);
}

int main(void) {
  for (const char *s : kSchedules) test_correct_kernels(s);
  printf("%s correct kernels under forward, reverse, random:1, random:7\n", g_failures ? "FAIL" : "PASS");
  test_wrong_kernels();
  test_runtime_and_cublas();
  printf("%s: %d failure(s)\n", g_failures ? "FAIL" : "PASS", g_failures);
  return g_failures ? 1 : 0;
}
