// Collectives over the ranks of a job (engine/dist.h): a world of one, MPI for CPU ranks, NCCL for
// GPU ranks (engine/dist_nccl.c).
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_backend.h"
#include "error.h"

#ifdef SAMX_WITH_MPI
#include <mpi.h>
#endif


static size_t type_size(SamxDistType t) { return t == SAMX_DIST_F64 ? 8 : 4; }

int samx_dist_have_mpi(void) {
#ifdef SAMX_WITH_MPI
  return 1;
#else
  return 0;
#endif
}

const char *samx_dist_backend_name(SamxDistBackend b) {
  return b == SAMX_DIST_MPI ? "mpi" : b == SAMX_DIST_NCCL ? "nccl" : "single";
}

// ---- MPI ----
#ifdef SAMX_WITH_MPI
static int mpi_started_here = 0;

// MPI_Init once (also when NCCL only borrows MPI to send its id); checks MPI's world against the launch.
static int mpi_start(SamxDist *d) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return samx_fail("MPI_Init failed on %s", d->launch.host);
    mpi_started_here = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (d->launch.world < 0) d->launch.world = d->world = size;  // PMIx without a size variable
  if (size != d->world || rank != d->rank)
    return samx_fail("MPI sees rank %d of %d, the launch said rank %d of %d (%s) (HINT: start CPU ranks with mpirun -np "
                     "W, or srun --mpi=pmix; an Open MPI without the launcher's PMI runs each process alone)",
                     rank, size, d->rank, d->world, d->launch.source);
  return 0;
}

static MPI_Datatype mpi_type(SamxDistType t) { return t == SAMX_DIST_F64 ? MPI_DOUBLE : MPI_FLOAT; }

static int mpi_check(int rc, const char *what, int rank) {
  if (rc == MPI_SUCCESS) return 0;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return samx_fail("%s failed on rank %d: %s", what, rank, msg);
}

// MPI counts are ints: long buffers go in chunks (same chunks on every rank).
#define MPI_CHUNK (INT_MAX / 2)
#endif

// A CUDA buffer under the MPI back end goes through host memory.
static void *host_view(SamxDist *d, const void *buf, size_t bytes, int copy_in) {
  if (d->device.type == SAMX_CPU) return (void *)buf;
  void *h = malloc(bytes ? bytes : 1);
  if (copy_in) samx_memcpy(samx_cpu(), h, d->device, buf, bytes);
  return h;
}

static void host_done(SamxDist *d, void *h, void *buf, size_t bytes, int copy_out) {
  if (d->device.type == SAMX_CPU) return;
  if (copy_out) samx_memcpy(d->device, buf, samx_cpu(), h, bytes);
  free(h);
}

// ---- init ----
int samx_dist_init(SamxDist *d, const SamxLaunch *launch, SamxDevice device) {
  memset(d, 0, sizeof *d);
  d->launch = *launch;
  d->rank = launch->rank, d->world = launch->world, d->local_rank = launch->local_rank;
  d->device = device;
  const char *t = getenv("SAMX_DIST_TIMEOUT");
  d->timeout_s = t && atof(t) > 0 ? atof(t) : 300;
  if (device.type == SAMX_CUDA) {
    d->device.index = launch->gpu;
    if (launch->gpu >= samx_cuda_device_count())
      return samx_fail("rank %d on %s: GPU %d (its local rank) does not exist: %d visible (HINT: start at most one rank "
                       "per GPU on each node; CUDA_VISIBLE_DEVICES narrows what a rank sees)",
                       d->rank, launch->host, launch->gpu, samx_cuda_device_count());
    samx_device_activate(d->device);  // cudaSetDevice before any communicator exists
  }
  // A world of one needs no communicator; SAMX_DIST_FORCE=1 builds one anyway (tests of the real
  // NCCL on one GPU: NCCL refuses two ranks on the same device).
  const char *force = getenv("SAMX_DIST_FORCE");
  if (d->world == 1 && !(force && force[0] == '1')) return 0;
  int mpi_launch = launch->kind == SAMX_LAUNCH_OMPI || launch->kind == SAMX_LAUNCH_PMI;
  if (device.type == SAMX_CUDA && samx_dist_have_nccl()) {
    d->backend = SAMX_DIST_NCCL;
#ifdef SAMX_WITH_MPI
    if (mpi_launch && mpi_start(d) != 0) return -1;
#endif
    return samx_dist_nccl_init(d, mpi_launch && samx_dist_have_mpi());
  }
#ifdef SAMX_WITH_MPI
  if (!mpi_launch && launch->kind != SAMX_LAUNCH_SLURM && d->world > 1)
    return samx_fail("rank %d of %d was started by %s: %s ranks communicate with MPI, so start them with mpirun -np %d "
                     "(or srun --mpi=pmix)%s",
                     d->rank, d->world, samx_launch_kind_name(launch->kind), device.type == SAMX_CPU ? "CPU" : "these",
                     d->world, device.type == SAMX_CUDA ? "; this build has no NCCL for GPU ranks" : "");
  d->backend = SAMX_DIST_MPI;
  return mpi_start(d);
#else
  (void)mpi_launch;
  return samx_fail("rank %d of %d: this build has no MPI (HINT: install libopenmpi-dev, scripts/install-deps.sh, and "
                   "rebuild)%s",
                   d->rank, d->world, device.type == SAMX_CUDA ? " and no NCCL" : "");
#endif
}

void samx_dist_finalize(SamxDist *d) {
  free(d->pending);
  d->pending = NULL, d->n_pending = d->cap_pending = 0;
  if (d->backend == SAMX_DIST_NCCL) samx_dist_nccl_finalize(d);
#ifdef SAMX_WITH_MPI
  int fin = 0;
  MPI_Finalized(&fin);
  if (mpi_started_here && !fin) MPI_Finalize();
  mpi_started_here = 0;
#endif
  d->backend = SAMX_DIST_SINGLE;
}

// ---- collectives ----
int samx_dist_allreduce_sum(SamxDist *d, void *buf, int64_t n, SamxDistType type) {
  if (d->backend == SAMX_DIST_SINGLE || n == 0) return 0;
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_allreduce(d, buf, n, type);
#ifdef SAMX_WITH_MPI
  size_t es = type_size(type), bytes = (size_t)n * es;
  char *h = (char *)host_view(d, buf, bytes, 1);
  int rc = 0;
  for (int64_t off = 0; off < n && rc == 0; off += MPI_CHUNK) {
    int cnt = (int)(n - off < MPI_CHUNK ? n - off : MPI_CHUNK);
    rc = mpi_check(MPI_Allreduce(MPI_IN_PLACE, h + (size_t)off * es, cnt, mpi_type(type), MPI_SUM, MPI_COMM_WORLD),
                   "MPI_Allreduce", d->rank);
  }
  host_done(d, h, buf, bytes, 1);
  return rc;
#else
  return samx_fail("all-reduce: no communication back end");
#endif
}

int samx_dist_allreduce_start(SamxDist *d, void *buf, int64_t n, SamxDistType type) {
  if (d->backend == SAMX_DIST_SINGLE || n == 0) return 0;
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_allreduce_start(d, buf, n, type);
#ifdef SAMX_WITH_MPI
  if (d->device.type != SAMX_CPU || n > MPI_CHUNK) return samx_dist_allreduce_sum(d, buf, n, type);
  if (d->n_pending == d->cap_pending) {
    d->cap_pending = d->cap_pending ? 2 * d->cap_pending : 64;
    d->pending = realloc(d->pending, sizeof(MPI_Request) * (size_t)d->cap_pending);
  }
  MPI_Request *req = (MPI_Request *)d->pending + d->n_pending++;
  return mpi_check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(type), MPI_SUM, MPI_COMM_WORLD, req),
                   "MPI_Iallreduce", d->rank);
#else
  return samx_fail("all-reduce: no communication back end");
#endif
}

int samx_dist_wait(SamxDist *d) {
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_wait(d);
#ifdef SAMX_WITH_MPI
  int n = d->n_pending;
  d->n_pending = 0;
  if (n == 0) return 0;
  return mpi_check(MPI_Waitall(n, (MPI_Request *)d->pending, MPI_STATUSES_IGNORE), "MPI_Waitall", d->rank);
#else
  return 0;
#endif
}

int samx_dist_reduce_scatter_sum(SamxDist *d, const void *send, void *recv, int64_t recv_n, SamxDistType type) {
  size_t es = type_size(type);
  if (d->backend == SAMX_DIST_SINGLE) {
    if (recv != send) samx_memcpy(d->device, recv, d->device, send, (size_t)recv_n * es);
    return 0;
  }
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_reduce_scatter(d, send, recv, recv_n, type);
#ifdef SAMX_WITH_MPI
  if (recv_n > MPI_CHUNK) return samx_fail("reduce-scatter: %lld values per rank exceed MPI's int count", (long long)recv_n);
  char *hs = (char *)host_view(d, send, (size_t)recv_n * es * (size_t)d->world, 1);
  char *hr = (char *)host_view(d, recv, (size_t)recv_n * es, 0);
  int rc = mpi_check(MPI_Reduce_scatter_block(hs, hr, (int)recv_n, mpi_type(type), MPI_SUM, MPI_COMM_WORLD),
                     "MPI_Reduce_scatter_block", d->rank);
  host_done(d, hr, recv, (size_t)recv_n * es, 1);
  host_done(d, hs, (void *)send, 0, 0);
  return rc;
#else
  return samx_fail("reduce-scatter: no communication back end");
#endif
}

int samx_dist_allgather(SamxDist *d, const void *send, void *recv, int64_t send_n, SamxDistType type) {
  size_t es = type_size(type);
  if (d->backend == SAMX_DIST_SINGLE) {
    if (recv != send) samx_memcpy(d->device, recv, d->device, send, (size_t)send_n * es);
    return 0;
  }
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_allgather(d, send, recv, send_n, type);
#ifdef SAMX_WITH_MPI
  if (send_n > MPI_CHUNK) return samx_fail("all-gather: %lld values per rank exceed MPI's int count", (long long)send_n);
  size_t all = (size_t)send_n * es * (size_t)d->world, mine = (size_t)d->rank * (size_t)send_n * es;
  int in_place = (const char *)send == (const char *)recv + mine;
  char *hr = (char *)host_view(d, recv, all, 0);
  if (d->device.type != SAMX_CPU) samx_memcpy(samx_cpu(), hr + mine, d->device, send, (size_t)send_n * es);
  int rc = mpi_check(MPI_Allgather(in_place || d->device.type != SAMX_CPU ? MPI_IN_PLACE : send, (int)send_n,
                                   mpi_type(type), hr, (int)send_n, mpi_type(type), MPI_COMM_WORLD),
                     "MPI_Allgather", d->rank);
  host_done(d, hr, recv, all, 1);
  return rc;
#else
  return samx_fail("all-gather: no communication back end");
#endif
}

int samx_dist_broadcast(SamxDist *d, void *buf, size_t bytes, int root) {
  if (d->backend == SAMX_DIST_SINGLE || bytes == 0) return 0;
  if (d->backend == SAMX_DIST_NCCL) return samx_dist_nccl_broadcast(d, buf, bytes, root);
#ifdef SAMX_WITH_MPI
  int rc = 0;
  for (size_t off = 0; off < bytes && rc == 0; off += MPI_CHUNK) {
    int cnt = (int)(bytes - off < MPI_CHUNK ? bytes - off : MPI_CHUNK);
    rc = mpi_check(MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast", d->rank);
  }
  return rc;
#else
  return samx_fail("broadcast: no communication back end");
#endif
}

int samx_dist_allreduce_host_f64(SamxDist *d, double *buf, int64_t n) {
  if (d->backend == SAMX_DIST_SINGLE || n == 0) return 0;
  if (d->device.type == SAMX_CPU || d->backend != SAMX_DIST_NCCL) {
    SamxDevice keep = d->device;  // MPI works on the host buffer directly
    d->device = samx_cpu();
    int rc = samx_dist_allreduce_sum(d, buf, n, SAMX_DIST_F64);
    d->device = keep;
    return rc;
  }
  size_t bytes = (size_t)n * sizeof(double);
  void *dbuf = samx_dev_malloc(d->device, bytes);
  samx_memcpy(d->device, dbuf, samx_cpu(), buf, bytes);
  int rc = samx_dist_nccl_allreduce(d, dbuf, n, SAMX_DIST_F64);
  if (rc == 0) samx_memcpy(samx_cpu(), buf, d->device, dbuf, bytes);
  samx_dev_free(d->device, dbuf);
  return rc;
}

int samx_dist_barrier(SamxDist *d) {
  if (d->backend == SAMX_DIST_SINGLE) return 0;
  if (d->backend == SAMX_DIST_NCCL) {
    float one = 1;  // a tiny all-reduce orders every rank
    void *b = samx_dev_malloc(d->device, sizeof one);
    samx_memcpy(d->device, b, samx_cpu(), &one, sizeof one);
    int rc = samx_dist_nccl_allreduce(d, b, 1, SAMX_DIST_F32);
    samx_dev_free(d->device, b);
    return rc;
  }
#ifdef SAMX_WITH_MPI
  return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", d->rank);
#else
  return samx_fail("barrier: no communication back end");
#endif
}

int samx_dist_poll(SamxDist *d) { return d->backend == SAMX_DIST_NCCL ? samx_dist_nccl_poll(d) : 0; }

void samx_dist_abort(SamxDist *d, int code) {
  fflush(stdout);
  fflush(stderr);
  if (d && d->backend == SAMX_DIST_NCCL) samx_dist_nccl_abort(d);
#ifdef SAMX_WITH_MPI
  int inited = 0, fin = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&fin);
  if (d && d->world > 1 && inited && !fin) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  _exit(code);
}
