// The NCCL back end of engine/dist.h, for GPU ranks. Built when the CUDA build finds NCCL (or the
// emulated CUDA build's NCCL over MPI, kernels/cuda/emu/nccl/). Every collective runs on its own
// stream, ordered after the work already queued on the compute (legacy default) stream by an event;
// the host then waits for it while polling ncclCommGetAsyncError, so a dead or hung peer ends in
// ncclCommAbort and an error naming the rank after SAMX_DIST_TIMEOUT seconds instead of a hang.
// Valid C and C++ (the emulated CUDA build compiles it as C++, its cuda_runtime.h being C++).
#include "dist.h"
#include "dist_backend.h"
#include "error.h"

#ifdef SAMX_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef SAMX_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only, also when compiled as C++
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

struct SamxDistImpl {
  ncclComm_t comm;
  cudaStream_t stream;
  cudaEvent_t ready, done;  // compute -> communication, communication -> compute and host
};

int samx_dist_have_nccl(void) { return 1; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nccl_fail(SamxDist *d, const char *what, ncclResult_t r) {
  return samx_fail("%s failed on rank %d (%s): %s%s", what, d->rank, d->launch.host, ncclGetErrorString(r),
                   r == ncclSystemError || r == ncclRemoteError ? " (HINT: NCCL_DEBUG=INFO shows which link failed)" : "");
}

static ncclDataType_t nccl_type(SamxDistType t) { return t == SAMX_DIST_F64 ? ncclFloat64 : ncclFloat32; }

// Rank 0's unique id to every rank: MPI_Bcast when MPI started the job, else TCP or a file.
static int share_id(SamxDist *d, ncclUniqueId *id, int mpi_bootstrap) {
  if (d->rank == 0) {
    ncclResult_t r = ncclGetUniqueId(id);
    if (r != ncclSuccess) return nccl_fail(d, "ncclGetUniqueId", r);
  }
  if (d->world == 1) return 0;  // a forced world of one (SAMX_DIST_FORCE): nobody to tell
#ifdef SAMX_WITH_MPI
  if (mpi_bootstrap) {
    int rc = MPI_Bcast(id, (int)sizeof *id, MPI_BYTE, 0, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : samx_fail("MPI_Bcast of the NCCL id failed on rank %d", d->rank);
  }
#else
  (void)mpi_bootstrap;
#endif
  const SamxLaunch *l = &d->launch;
  if (l->rendezvous_file[0])
    return samx_rendezvous_file(l->rendezvous_file, l->job_id, d->rank, d->world, id, sizeof *id, d->timeout_s);
  if (!l->port)
    return samx_fail("rank %d of %d: no way to exchange the NCCL id (%s) (HINT: start with mpirun, torchrun or srun, or "
                     "give --rendezvous HOST:PORT|FILE)",
                     d->rank, d->world, l->source);
  return samx_rendezvous_tcp(l->master, l->port, l->job_id, d->rank, d->world, id, sizeof *id, d->timeout_s);
}

int samx_dist_nccl_init(SamxDist *d, int mpi_bootstrap) {
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (share_id(d, &id, mpi_bootstrap) != 0) return -1;
  SamxDistImpl *im = (SamxDistImpl *)calloc(1, sizeof *im);
  d->impl = im;
  cudaSetDevice(d->device.index);  // again, in case anything changed it since samx_dist_init
  if (cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreateWithFlags(&im->ready, cudaEventDisableTiming) != cudaSuccess ||
      cudaEventCreateWithFlags(&im->done, cudaEventDisableTiming) != cudaSuccess)
    return samx_fail("rank %d: cannot create the communication stream on GPU %d", d->rank, d->device.index);
  ncclResult_t r = ncclCommInitRank(&im->comm, d->world, id, d->rank);
  if (r != ncclSuccess) return nccl_fail(d, "ncclCommInitRank", r);
  if (d->rank == 0 && d->launch.rendezvous_file[0]) unlink(d->launch.rendezvous_file);  // everyone has read it
  return 0;
}

void samx_dist_nccl_finalize(SamxDist *d) {
  SamxDistImpl *im = d->impl;
  if (!im) return;
  if (im->comm) ncclCommDestroy(im->comm);
  if (im->stream) cudaStreamDestroy(im->stream);
  if (im->ready) cudaEventDestroy(im->ready);
  if (im->done) cudaEventDestroy(im->done);
  free(im);
  d->impl = NULL;
}

void samx_dist_nccl_abort(SamxDist *d) {
  if (d->impl && d->impl->comm) ncclCommAbort(d->impl->comm);
  if (d->impl) d->impl->comm = NULL;
}

int samx_dist_nccl_poll(SamxDist *d) {
  ncclResult_t async = ncclSuccess;
  if (!d->impl || !d->impl->comm) return 0;
  ncclResult_t r = ncclCommGetAsyncError(d->impl->comm, &async);
  if (r != ncclSuccess) return nccl_fail(d, "ncclCommGetAsyncError", r);
  return async == ncclSuccess || async == ncclInProgress ? 0 : nccl_fail(d, "NCCL (asynchronous error)", async);
}

// Orders the communication stream after the compute stream's queued work.
static void after_compute(SamxDistImpl *im) {
  cudaEventRecord(im->ready, 0);
  cudaStreamWaitEvent(im->stream, im->ready, 0);
}

// Orders the compute stream after the collective (an event), then waits for it on the host while
// polling NCCL's asynchronous errors; aborts the communicator on timeout.
static int wait_done(SamxDist *d, const char *what) {
  SamxDistImpl *im = d->impl;
  cudaEventRecord(im->done, im->stream);
  cudaStreamWaitEvent(0, im->done, 0);
  double deadline = now_s() + d->timeout_s;
  for (;;) {
    cudaError_t q = cudaEventQuery(im->done);
    if (q == cudaSuccess) return 0;
    if (q != cudaErrorNotReady) return samx_fail("%s on rank %d: CUDA error %s", what, d->rank, cudaGetErrorString(q));
    if (samx_dist_nccl_poll(d) != 0) {
      ncclCommAbort(im->comm);
      im->comm = NULL;
      return -1;
    }
    if (now_s() > deadline) {
      ncclCommAbort(im->comm);
      im->comm = NULL;
      return samx_fail("%s on rank %d did not finish within %.0f s (SAMX_DIST_TIMEOUT): a peer died or hangs; "
                       "communicator aborted",
                       what, d->rank, d->timeout_s);
    }
    usleep(100);
  }
}

int samx_dist_nccl_allreduce(SamxDist *d, void *buf, int64_t n, SamxDistType type) {
  SamxDistImpl *im = d->impl;
  after_compute(im);
  ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, nccl_type(type), ncclSum, im->comm, im->stream);
  return r != ncclSuccess ? nccl_fail(d, "ncclAllReduce", r) : wait_done(d, "ncclAllReduce");
}

int samx_dist_nccl_allreduce_start(SamxDist *d, void *buf, int64_t n, SamxDistType type) {
  SamxDistImpl *im = d->impl;
  after_compute(im);  // the bucket's gradients, computed on the compute stream, are complete
  ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, nccl_type(type), ncclSum, im->comm, im->stream);
  return r != ncclSuccess ? nccl_fail(d, "ncclAllReduce", r) : 0;
}

int samx_dist_nccl_wait(SamxDist *d) { return wait_done(d, "ncclAllReduce (buckets)"); }

int samx_dist_nccl_reduce_scatter(SamxDist *d, const void *send, void *recv, int64_t recv_n, SamxDistType type) {
  SamxDistImpl *im = d->impl;
  after_compute(im);
  ncclResult_t r = ncclReduceScatter(send, recv, (size_t)recv_n, nccl_type(type), ncclSum, im->comm, im->stream);
  return r != ncclSuccess ? nccl_fail(d, "ncclReduceScatter", r) : wait_done(d, "ncclReduceScatter");
}

int samx_dist_nccl_allgather(SamxDist *d, const void *send, void *recv, int64_t send_n, SamxDistType type) {
  SamxDistImpl *im = d->impl;
  after_compute(im);
  ncclResult_t r = ncclAllGather(send, recv, (size_t)send_n, nccl_type(type), im->comm, im->stream);
  return r != ncclSuccess ? nccl_fail(d, "ncclAllGather", r) : wait_done(d, "ncclAllGather");
}

int samx_dist_nccl_broadcast(SamxDist *d, void *buf, size_t bytes, int root) {
  SamxDistImpl *im = d->impl;
  // The host buffer travels through a device copy: NCCL moves device memory only.
  void *dbuf = NULL;
  if (cudaMalloc(&dbuf, bytes) != cudaSuccess) return samx_fail("broadcast: cannot allocate %zu bytes on GPU", bytes);
  cudaMemcpy(dbuf, buf, bytes, cudaMemcpyHostToDevice);
  after_compute(im);
  ncclResult_t r = ncclBroadcast(dbuf, dbuf, bytes, ncclUint8, root, im->comm, im->stream);
  int rc = r != ncclSuccess ? nccl_fail(d, "ncclBroadcast", r) : wait_done(d, "ncclBroadcast");
  if (rc == 0) cudaMemcpy(buf, dbuf, bytes, cudaMemcpyDeviceToHost);
  cudaFree(dbuf);
  return rc;
}

#else  // no NCCL in this build

int samx_dist_have_nccl(void) { return 0; }
int samx_dist_nccl_init(SamxDist *d, int mpi_bootstrap) { return samx_fail("this build has no NCCL"); }
void samx_dist_nccl_finalize(SamxDist *d) {}
void samx_dist_nccl_abort(SamxDist *d) {}
int samx_dist_nccl_poll(SamxDist *d) { return 0; }
int samx_dist_nccl_allreduce(SamxDist *d, void *buf, int64_t n, SamxDistType type) { return samx_fail("no NCCL"); }
int samx_dist_nccl_reduce_scatter(SamxDist *d, const void *send, void *recv, int64_t recv_n, SamxDistType type) {
  return samx_fail("no NCCL");
}
int samx_dist_nccl_allgather(SamxDist *d, const void *send, void *recv, int64_t send_n, SamxDistType type) {
  return samx_fail("no NCCL");
}
int samx_dist_nccl_broadcast(SamxDist *d, void *buf, size_t bytes, int root) { return samx_fail("no NCCL"); }
int samx_dist_nccl_allreduce_start(SamxDist *d, void *buf, int64_t n, SamxDistType type) { return samx_fail("no NCCL"); }
int samx_dist_nccl_wait(SamxDist *d) { return 0; }

#endif
