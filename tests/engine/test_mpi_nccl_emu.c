// The NCCL double of the emulated CUDA build (kernels/cuda/emu/nccl/) under `mpirun -np 2`: the id
// from rank 0 by MPI_Bcast, ncclCommInitRank, the collectives samx uses against hand-computed values,
// and NCCL's documented argument checks and result codes.
#include <mpi.h>
#include <string.h>

#include "nccl.h"
#include "tests/harness.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int r, W;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  ncclComm_t comm = NULL;
  // A zero id (never made by ncclGetUniqueId) and bad ranks are refused before any communication.
  CHECK(ncclCommInitRank(&comm, W, id, r) == ncclInvalidArgument, "zero id refused");
  if (r == 0) CHECK(ncclGetUniqueId(&id) == ncclSuccess, "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  CHECK(ncclCommInitRank(&comm, W, id, W) == ncclInvalidArgument, "rank == nranks refused");
  CHECK(ncclCommInitRank(&comm, 0, id, 0) == ncclInvalidArgument, "nranks 0 refused");
  CHECK(ncclCommInitRank(NULL, W, id, r) == ncclInvalidArgument, "NULL comm refused");
  CHECK(ncclCommInitRank(&comm, W, id, r) == ncclSuccess, "init: %s", ncclGetLastError(NULL));
  int count = -1, me = -1;
  CHECK(ncclCommCount(comm, &count) == ncclSuccess && count == W && ncclCommUserRank(comm, &me) == ncclSuccess && me == r,
        "count %d rank %d", count, me);
  cudaStream_t s = NULL;
  // AllReduce, out of place and in place; Sum, Max, Avg.
  float a[4], b[4];
  for (int i = 0; i < 4; i++) a[i] = (float)(r * 4 + i);
  CHECK(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, comm, s) == ncclSuccess && b[0] == 4 && b[3] == 10, "sum %g %g", b[0],
        b[3]);
  CHECK(ncclAllReduce(a, b, 4, ncclFloat32, ncclMax, comm, s) == ncclSuccess && b[0] == 4 && b[3] == 7, "max %g %g", b[0],
        b[3]);
  CHECK(ncclAllReduce(a, a, 4, ncclFloat32, ncclAvg, comm, s) == ncclSuccess && a[0] == 2 && a[3] == 5, "avg in place %g",
        a[0]);
  double dd = r + 1.0;
  CHECK(ncclAllReduce(&dd, &dd, 1, ncclFloat64, ncclSum, comm, s) == ncclSuccess && dd == 3.0, "f64 %g", dd);
  int64_t ii = 1LL << 40;
  CHECK(ncclAllReduce(&ii, &ii, 1, ncclInt64, ncclSum, comm, s) == ncclSuccess && ii == 1LL << 41, "i64");
  // ReduceScatter: recvbuff == sendbuff + rank * recvcount is NCCL's in-place form.
  float rs[4];
  for (int i = 0; i < 4; i++) rs[i] = (float)(i + 10 * r);
  CHECK(ncclReduceScatter(rs, rs + 2 * r, 2, ncclFloat32, ncclSum, comm, s) == ncclSuccess &&
            rs[2 * r] == (float)(2 * (2 * r) + 10) && rs[2 * r + 1] == (float)(2 * (2 * r + 1) + 10),
        "reduce-scatter in place on rank %d: %g %g", r, rs[2 * r], rs[2 * r + 1]);
  // AllGather in place, Broadcast from rank 1.
  float ag[4] = {0};
  ag[2 * r] = (float)r + 0.5f, ag[2 * r + 1] = -(float)r;
  CHECK(ncclAllGather(ag + 2 * r, ag, 2, ncclFloat32, comm, s) == ncclSuccess && ag[0] == 0.5f && ag[2] == 1.5f &&
            ag[3] == -1,
        "all-gather %g %g %g %g", ag[0], ag[1], ag[2], ag[3]);
  uint8_t bc[5] = {0};
  if (r == 1) memcpy(bc, "nccl", 5);
  CHECK(ncclBroadcast(bc, bc, 5, ncclUint8, 1, comm, s) == ncclSuccess && !strcmp((char *)bc, "nccl"), "broadcast");
  // Argument checks (no communication happens, so every rank may call them alone).
  CHECK(ncclAllReduce(a, b, 4, (ncclDataType_t)42, ncclSum, comm, s) == ncclInvalidArgument, "bad type");
  CHECK(ncclAllReduce(a, b, 4, ncclFloat32, (ncclRedOp_t)9, comm, s) == ncclInvalidArgument, "bad op");
  CHECK(ncclAllReduce(NULL, b, 4, ncclFloat32, ncclSum, comm, s) == ncclInvalidArgument, "NULL buffer");
  CHECK(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, NULL, s) == ncclInvalidArgument, "NULL comm");
  CHECK(ncclAllReduce(NULL, NULL, 0, ncclFloat32, ncclSum, comm, s) == ncclSuccess, "count 0 with NULL buffers is fine");
  CHECK(ncclBroadcast(bc, bc, 5, ncclUint8, W, comm, s) == ncclInvalidArgument, "bad root");
  CHECK(ncclAllReduce(a, b, 4, ncclFloat16, ncclSum, comm, s) == ncclInvalidArgument, "half types are not emulated");
  CHECK(ncclGroupEnd() == ncclInvalidUsage && ncclGroupStart() == ncclSuccess && ncclGroupEnd() == ncclSuccess, "groups");
  ncclResult_t async = ncclInternalError;
  CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess && async == ncclSuccess, "async error");
  CHECK(!strcmp(ncclGetErrorString(ncclInvalidArgument), "invalid argument (run with NCCL_DEBUG=WARN for details)"),
        "error string");
  CHECK(ncclCommDestroy(comm) == ncclSuccess && ncclCommDestroy(NULL) == ncclSuccess, "destroy");
  // A world of one (valid in NCCL: its own id, nranks 1, rank 0) on rank 0 alone, rank 1 taking no
  // part (a double that made this collective over MPI_COMM_WORLD would hang here): the collectives
  // return the rank's own values.
  if (r == 0) {
    ncclUniqueId solo;
    ncclComm_t one = NULL;
    CHECK(ncclGetUniqueId(&solo) == ncclSuccess && ncclCommInitRank(&one, 1, solo, 0) == ncclSuccess,
          "world of one on rank %d: %s", r, ncclGetLastError(NULL));
    for (int i = 0; i < 4; i++) a[i] = (float)(r * 4 + i) + 0.25f;
    CHECK(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, one, s) == ncclSuccess && !memcmp(a, b, sizeof a) &&
              ncclAllReduce(a, a, 4, ncclFloat32, ncclAvg, one, s) == ncclSuccess && a[3] == (float)(r * 4 + 3) + 0.25f,
          "world of one: all-reduce %g", b[3]);
    CHECK(ncclReduceScatter(a, b, 4, ncclFloat32, ncclSum, one, s) == ncclSuccess && !memcmp(a, b, sizeof a) &&
              ncclAllGather(a, b, 4, ncclFloat32, one, s) == ncclSuccess && ncclBroadcast(a, b, 4, ncclFloat32, 0, one, s) ==
              ncclSuccess && !memcmp(a, b, sizeof a),
          "world of one: reduce-scatter, all-gather, broadcast");
    CHECK(ncclBroadcast(a, b, 4, ncclFloat32, 1, one, s) == ncclInvalidArgument, "world of one: root 1 refused");
    CHECK(ncclCommDestroy(one) == ncclSuccess, "world of one: destroy");
  }
  int rc = samx_test_summary();
  MPI_Finalize();
  return rc;
}
