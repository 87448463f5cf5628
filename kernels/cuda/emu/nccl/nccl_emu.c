// NCCL over MPI for the emulated CUDA build (see nccl.h). One communicator per unique id: the ranks
// that pass the same id to ncclCommInitRank form it (MPI_Comm_split of MPI_COMM_WORLD by the id; a world
// of one, as in NCCL, needs no peer and no MPI), and
// every argument NCCL checks is checked here with the result code NCCL documents. Reductions are
// MPI's, so they are deterministic for a fixed world size and identical on every rank, as NCCL's are.
#include "nccl.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ID_MAGIC "samx-emu-nccl-id"

struct ncclComm {
  MPI_Comm mpi;  // MPI_COMM_NULL for a world of one: NCCL needs no peer (nor MPI) there
  int rank, nranks;
  ncclResult_t async;  // set by ncclCommAbort; reported by ncclCommGetAsyncError
  int aborted;
};

static _Thread_local char last_error[512];
static _Thread_local int group_depth;

static ncclResult_t fail(ncclResult_t r, const char *fmt, const char *what) {
  snprintf(last_error, sizeof last_error, fmt, what);
  if (getenv("NCCL_DEBUG")) fprintf(stderr, "NCCL WARN %s\n", last_error);
  return r;
}

const char *ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char *ncclGetLastError(ncclComm_t comm) { return last_error; }

ncclResult_t ncclGetVersion(int *version) {
  if (!version) return fail(ncclInvalidArgument, "%s", "ncclGetVersion: version argument is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

static int mpi_ready(void) {
  int inited = 0, fin = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&fin);
  return inited && !fin;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  if (!id) return fail(ncclInvalidArgument, "%s", "ncclGetUniqueId: uniqueId argument is NULL");
  memset(id, 0, sizeof *id);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t nonce = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 32);
  memcpy(id->internal, ID_MAGIC, sizeof ID_MAGIC);
  memcpy(id->internal + 32, &nonce, sizeof nonce);
  return ncclSuccess;
}

static int id_color(const ncclUniqueId *id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the id: ranks of one id share a colour
  for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) h = (h ^ (unsigned char)id->internal[i]) * 1099511628211ull;
  return (int)(h & 0x3fffffff);
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
  if (!comm) return fail(ncclInvalidArgument, "%s", "ncclCommInitRank: comm argument is NULL");
  *comm = NULL;
  if (nranks < 1) return fail(ncclInvalidArgument, "%s", "ncclCommInitRank: invalid nranks (must be >= 1)");
  if (rank < 0 || rank >= nranks) return fail(ncclInvalidArgument, "%s", "ncclCommInitRank: rank is outside [0, nranks)");
  if (memcmp(commId.internal, ID_MAGIC, sizeof ID_MAGIC) != 0)
    return fail(ncclInvalidArgument, "%s", "ncclCommInitRank: the unique id was not made by ncclGetUniqueId");
  if (nranks == 1) {  // valid in NCCL without any bootstrap: collectives of one rank are copies
    struct ncclComm *x = (struct ncclComm *)calloc(1, sizeof *x);
    x->mpi = MPI_COMM_NULL, x->rank = 0, x->nranks = 1, x->async = ncclSuccess;
    *comm = x;
    return ncclSuccess;
  }
  if (!mpi_ready())
    return fail(ncclInvalidUsage, "%s", "ncclCommInitRank: the emulated NCCL runs over MPI and needs MPI_Init first");
  MPI_Comm c;
  if (MPI_Comm_split(MPI_COMM_WORLD, id_color(&commId), rank, &c) != MPI_SUCCESS)
    return fail(ncclSystemError, "%s", "ncclCommInitRank: MPI_Comm_split failed");
  int size, me;
  MPI_Comm_size(c, &size);
  MPI_Comm_rank(c, &me);
  // Every member must agree on nranks, hold a distinct rank and the same id (NCCL hangs or fails
  // in bootstrap otherwise; the double reports it).
  int mine[2] = {nranks, rank}, *all = (int *)malloc(sizeof(int) * 2 * (size_t)size);
  MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, c);
  ncclResult_t r = size == nranks ? ncclSuccess : ncclInvalidUsage;
  for (int i = 0; i < size && r == ncclSuccess; i++)
    if (all[2 * i] != nranks || all[2 * i + 1] != i) r = ncclInvalidUsage;
  free(all);
  if (r != ncclSuccess) {
    MPI_Comm_free(&c);
    return fail(r, "%s", "ncclCommInitRank: the ranks of this unique id disagree on nranks or hold duplicate ranks");
  }
  struct ncclComm *x = (struct ncclComm *)calloc(1, sizeof *x);
  x->mpi = c, x->rank = rank, x->nranks = nranks, x->async = ncclSuccess;
  *comm = x;
  return ncclSuccess;
}

static ncclResult_t check_comm(ncclComm_t comm, const char *fn) {
  if (!comm) return fail(ncclInvalidArgument, "%s: comm argument is NULL", fn);
  if (comm->aborted) return fail(ncclInvalidUsage, "%s: the communicator was aborted", fn);
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;  // NCCL: destroying NULL is a no-op
  if (!comm->aborted && comm->mpi != MPI_COMM_NULL) MPI_Comm_free(&comm->mpi);
  free(comm);
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  // Peers may be gone: no collective call, just drop the handle (MPI's communicator leaks by design).
  free(comm);
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
  if (!comm) return fail(ncclInvalidArgument, "%s", "ncclCommGetAsyncError: comm argument is NULL");
  if (!asyncError) return fail(ncclInvalidArgument, "%s", "ncclCommGetAsyncError: asyncError argument is NULL");
  *asyncError = comm->async;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
  if (check_comm(comm, "ncclCommCount") != ncclSuccess) return ncclInvalidArgument;
  if (!count) return fail(ncclInvalidArgument, "%s", "ncclCommCount: count argument is NULL");
  *count = comm->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
  if (check_comm(comm, "ncclCommUserRank") != ncclSuccess) return ncclInvalidArgument;
  if (!rank) return fail(ncclInvalidArgument, "%s", "ncclCommUserRank: rank argument is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
  group_depth++;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
  if (group_depth == 0) return fail(ncclInvalidUsage, "%s", "ncclGroupEnd: not in a group call");
  group_depth--;  // collectives inside a group ran when called: the emulated device is in-order
  return ncclSuccess;
}

// ---- collectives ----
static MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: return MPI_INT8_T;
    case ncclUint8: return MPI_UINT8_T;
    case ncclInt32: return MPI_INT32_T;
    case ncclUint32: return MPI_UINT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint64: return MPI_UINT64_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;  // half types: not reduced by this double
  }
}

static size_t type_size(ncclDataType_t t) {
  static const size_t s[ncclNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return (unsigned)t < ncclNumTypes ? s[t] : 0;
}

// NCCL's enqueue checks: the communicator, the type and op, buffers for a non-zero count.
static ncclResult_t check_args(const char *fn, ncclComm_t comm, ncclDataType_t t, int op, const void *send,
                               const void *recv, size_t count, int reduces) {
  ncclResult_t r = check_comm(comm, fn);
  if (r != ncclSuccess) return r;
  if ((unsigned)t >= ncclNumTypes) return fail(ncclInvalidArgument, "%s: invalid type", fn);
  if (reduces && (op < 0 || op >= ncclNumOps)) return fail(ncclInvalidArgument, "%s: invalid reduction operation", fn);
  if (count > 0 && (!send || !recv)) return fail(ncclInvalidArgument, "%s: buffer argument is NULL", fn);
  if (mpi_type(t) == MPI_DATATYPE_NULL)
    return fail(ncclInvalidArgument, "%s: half-precision types are not emulated (samx reduces f32/f64)", fn);
  if (count > (size_t)0x7fffffff) return fail(ncclInvalidArgument, "%s: count above 2^31-1 is not emulated", fn);
  return ncclSuccess;
}

static MPI_Op mpi_op(ncclRedOp_t op) {
  return op == ncclProd ? MPI_PROD : op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : MPI_SUM;
}

// ncclAvg = sum / nranks, in the element type.
static void divide(void *buf, size_t n, ncclDataType_t t, int nranks) {
  for (size_t i = 0; i < n; i++) switch (t) {
      case ncclFloat32: ((float *)buf)[i] /= (float)nranks; break;
      case ncclFloat64: ((double *)buf)[i] /= (double)nranks; break;
      case ncclInt8: ((int8_t *)buf)[i] /= nranks; break;
      case ncclUint8: ((uint8_t *)buf)[i] /= nranks; break;
      case ncclInt32: ((int32_t *)buf)[i] /= nranks; break;
      case ncclUint32: ((uint32_t *)buf)[i] /= (uint32_t)nranks; break;
      case ncclInt64: ((int64_t *)buf)[i] /= nranks; break;
      case ncclUint64: ((uint64_t *)buf)[i] /= (uint64_t)nranks; break;
      default: break;
    }
}

static ncclResult_t mpi_result(int rc, const char *fn) {
  return rc == MPI_SUCCESS ? ncclSuccess : fail(ncclRemoteError, "%s: the MPI transfer failed", fn);
}

// A world of one: sum, avg, prod, max and min of one value are that value.
static ncclResult_t copy_local(void *recv, const void *send, size_t bytes) {
  if (recv != send) memmove(recv, send, bytes);
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  ncclResult_t r = check_args("ncclAllReduce", comm, datatype, op, sendbuff, recvbuff, count, 1);
  if (r != ncclSuccess || count == 0) return r;
  if (comm->nranks == 1) return copy_local(recvbuff, sendbuff, count * type_size(datatype));
  r = mpi_result(MPI_Allreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, (int)count, mpi_type(datatype),
                               mpi_op(op), comm->mpi),
                 "ncclAllReduce");
  if (r == ncclSuccess && op == ncclAvg) divide(recvbuff, count, datatype, comm->nranks);
  return r;
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  ncclResult_t r = check_args("ncclReduceScatter", comm, datatype, op, sendbuff, recvbuff, recvcount, 1);
  if (r != ncclSuccess || recvcount == 0) return r;
  size_t es = type_size(datatype);
  if (comm->nranks == 1) return copy_local(recvbuff, sendbuff, recvcount * es);
  // In place when recvbuff == sendbuff + rank * recvcount (NCCL's definition): MPI needs a copy then.
  const char *src = (const char *)sendbuff;
  char *copy = NULL;
  if ((const char *)recvbuff == src + (size_t)comm->rank * recvcount * es) {
    copy = (char *)malloc((size_t)comm->nranks * recvcount * es);
    memcpy(copy, src, (size_t)comm->nranks * recvcount * es);
    src = copy;
  }
  r = mpi_result(MPI_Reduce_scatter_block(src, recvbuff, (int)recvcount, mpi_type(datatype), mpi_op(op), comm->mpi),
                 "ncclReduceScatter");
  free(copy);
  if (r == ncclSuccess && op == ncclAvg) divide(recvbuff, recvcount, datatype, comm->nranks);
  return r;
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  ncclResult_t r = check_args("ncclAllGather", comm, datatype, ncclSum, sendbuff, recvbuff, sendcount, 0);
  if (r != ncclSuccess || sendcount == 0) return r;
  size_t es = type_size(datatype);
  if (comm->nranks == 1) return copy_local(recvbuff, sendbuff, sendcount * es);
  int in_place = (const char *)sendbuff == (const char *)recvbuff + (size_t)comm->rank * sendcount * es;
  return mpi_result(MPI_Allgather(in_place ? MPI_IN_PLACE : sendbuff, (int)sendcount, mpi_type(datatype), recvbuff,
                                  (int)sendcount, mpi_type(datatype), comm->mpi),
                    "ncclAllGather");
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  ncclResult_t r = check_comm(comm, "ncclBroadcast");
  if (r != ncclSuccess) return r;
  if (root < 0 || root >= comm->nranks) return fail(ncclInvalidArgument, "%s: invalid root", "ncclBroadcast");
  r = check_args("ncclBroadcast", comm, datatype, ncclSum, comm->rank == root ? sendbuff : recvbuff, recvbuff, count, 0);
  if (r != ncclSuccess || count == 0) return r;
  size_t es = type_size(datatype);
  if (comm->rank == root && sendbuff != recvbuff) memcpy(recvbuff, sendbuff, count * es);
  if (comm->nranks == 1) return ncclSuccess;
  return mpi_result(MPI_Bcast(recvbuff, (int)count, mpi_type(datatype), root, comm->mpi), "ncclBroadcast");
}
