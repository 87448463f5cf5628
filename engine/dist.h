// Several processes (ranks) working on one job: how they were launched, and the collectives the
// trainer, `samx embed` and `samx infer` need. The rest of samx never calls MPI or NCCL directly.
//
// Launch detection (contracts §8), first match wins:
//   1. explicit --rank R --world-size W [--local-rank L] [--rendezvous HOST:PORT|FILE]
//   2. torchrun: TORCHELASTIC_RUN_ID with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//      (the torchrun agent holds MASTER_PORT: samx's TCP rendezvous listens on MASTER_PORT + 1)
//   3. Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), MPICH/Hydra or PMI (PMI_RANK, PMI_SIZE,
//      MPI_LOCALRANKID), PMIx (PMIX_RANK)
//   4. Slurm, in a task of an srun step (SLURM_STEP_ID set; the batch script itself is one process):
//      SLURM_PROCID, SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), SLURM_LOCALID; the master is the first
//      host of SLURM_STEP_NODELIST (else SLURM_JOB_NODELIST), the port 20000 + job id mod 20000
//   5. none of these: a world of one (nothing else changes).
// The GPU of a rank is its local rank, or device 0 when CUDA_VISIBLE_DEVICES names one device;
// never the global rank (which would fail on the second node).
//
// Back ends. CPU ranks communicate with MPI (Open MPI); GPU ranks with NCCL when the CUDA build has
// it, its unique id sent by MPI_Bcast when the job was started by mpirun/srun+PMI and MPI is built
// in, else by the TCP rendezvous (rank 0 listens; the others retry with back-off until an overall
// timeout; a job id guards against a stranger's job) or a rendezvous file (written to a temporary
// name and renamed, carrying the job id, so a stale file of an earlier job is never read).
//
// Every collective works on the buffer's device: a CUDA buffer with NCCL, a host buffer with MPI
// (a CUDA buffer under the MPI back end is staged through the host). Collectives return 0, or -1
// with samx_last_error naming the operation and the rank.
#ifndef SAMX_DIST_H
#define SAMX_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SAMX_LAUNCH_SINGLE = 0,  // no launcher: a world of one
  SAMX_LAUNCH_EXPLICIT,    // --rank/--world-size/...
  SAMX_LAUNCH_TORCHRUN,
  SAMX_LAUNCH_OMPI,        // Open MPI's mpirun
  SAMX_LAUNCH_PMI,         // MPICH/Hydra, Intel MPI, srun --mpi=pmi2|pmix
  SAMX_LAUNCH_SLURM,       // srun without an MPI plug-in
} SamxLaunchKind;

// Explicit settings from the command line; -1 / NULL where not given.
typedef struct {
  int rank, world, local_rank;
  const char *rendezvous;  // HOST:PORT or a file path
} SamxLaunchArgs;

#define SAMX_LAUNCH_ARGS_NONE ((SamxLaunchArgs){-1, -1, -1, NULL})

typedef struct {
  SamxLaunchKind kind;
  int rank, world, local_rank;
  int gpu;                 // CUDA device of this rank (see above)
  char master[256];        // rendezvous host ("" when none is known)
  int port;                // rendezvous port (0: none)
  char rendezvous_file[512];  // rendezvous by file ("" when by TCP or none)
  char job_id[128];        // torchrun's run id, Slurm's job.step, SAMX_JOB_ID, or "" when unknown
  char host[128];          // this machine's name
  char source[160];        // which variables decided (for `samx info --ranks`)
} SamxLaunch;

// Looks a variable up; the default reads the process environment. Tests pass synthetic ones.
typedef const char *(*SamxGetenvFn)(const char *name, void *user);

// Fills out from args (may be NULL) and the environment (getenv_fn NULL: the process's). Returns -1
// with samx_last_error for contradictory or malformed settings (rank outside the world, a world
// of 0, an unparsable number naming its variable).
int samx_launch_detect(const SamxLaunchArgs *args, SamxGetenvFn getenv_fn, void *user, SamxLaunch *out);
const char *samx_launch_kind_name(SamxLaunchKind k);
// One line: "rank 1/4 local 1 gpu 1 host node07 via torchrun (RANK, ...) master node01:29501 job 42".
void samx_launch_describe(const SamxLaunch *l, char *buf, size_t n);

// Parses one command-line flag of the launch family at argv[*i] (--rank, --world-size,
// --local-rank, --rendezvous); returns 1 when it took the flag (and its value, advancing *i), 0 when
// argv[*i] is not one of them, -1 with samx_last_error for a missing or bad value.
int samx_launch_take_arg(int argc, char **argv, int *i, SamxLaunchArgs *args);
// The help text of those flags, for each command's --help.
extern const char samx_launch_help[];

typedef enum { SAMX_DIST_SINGLE = 0, SAMX_DIST_MPI, SAMX_DIST_NCCL } SamxDistBackend;

typedef enum { SAMX_DIST_F32 = 0, SAMX_DIST_F64 = 1 } SamxDistType;

typedef struct SamxDistImpl SamxDistImpl;

typedef struct {
  SamxLaunch launch;
  int rank, world, local_rank;
  SamxDistBackend backend;
  SamxDevice device;  // where the collectives' buffers live
  double timeout_s;   // rendezvous and watchdog limit (SAMX_DIST_TIMEOUT, default 300 s)
  SamxDistImpl *impl;
  void *pending;      // MPI requests of started sums
  int n_pending, cap_pending;
} SamxDist;

// Which back ends this build has.
int samx_dist_have_mpi(void);
int samx_dist_have_nccl(void);

// Joins the job the launch describes, with buffers on `device` (for a CUDA device its index is
// replaced by launch->gpu, and cudaSetDevice happens before ncclCommInitRank). A world of one
// needs nothing. World > 1 on the CPU needs MPI and an MPI launch (mpirun, srun --mpi=...): a clear
// error otherwise. Returns 0 or -1 with samx_last_error.
int samx_dist_init(SamxDist *d, const SamxLaunch *launch, SamxDevice device);
void samx_dist_finalize(SamxDist *d);
const char *samx_dist_backend_name(SamxDistBackend b);

// In-place sum over ranks of n values of type on d->device. Deterministic
// for a fixed world size: the same ranks' values summed in the same order everywhere.
int samx_dist_allreduce_sum(SamxDist *d, void *buf, int64_t n, SamxDistType type);
// The same sum started without waiting (MPI_Iallreduce; NCCL on its stream): buf must not be touched
// until samx_dist_wait, which completes every started sum in start order. CUDA buffers under the
// MPI back end are summed at once (staged, blocking).
int samx_dist_allreduce_start(SamxDist *d, void *buf, int64_t n, SamxDistType type);
int samx_dist_wait(SamxDist *d);
// send holds world * recv_n values; rank r receives the sum over ranks of send[r*recv_n, (r+1)*recv_n).
int samx_dist_reduce_scatter_sum(SamxDist *d, const void *send, void *recv, int64_t recv_n, SamxDistType type);
// send holds send_n values; recv receives world * send_n, rank r's at r * send_n (in place allowed:
// send == recv + rank * send_n).
int samx_dist_allgather(SamxDist *d, const void *send, void *recv, int64_t send_n, SamxDistType type);
// bytes of the HOST buffer buf from root to everyone (metadata, ids, flags).
int samx_dist_broadcast(SamxDist *d, void *buf, size_t bytes, int root);
// In-place sum of n doubles in a HOST buffer (losses, flags, norms, checksums).
int samx_dist_allreduce_host_f64(SamxDist *d, double *buf, int64_t n);
int samx_dist_barrier(SamxDist *d);
// Ends every rank of the job (MPI_Abort / ncclCommAbort and exit) with status code.
void samx_dist_abort(SamxDist *d, int code) __attribute__((noreturn));
// 0 while the communicator is healthy; -1 with samx_last_error once NCCL reports an asynchronous
// error (a peer died). Always 0 for MPI (its failures surface as errors or the watchdog).
int samx_dist_poll(SamxDist *d);

// ---- the TCP and file rendezvous (exposed for tests; used for the NCCL unique id) ----
// Rank 0's `bytes` of blob reach every rank of the world. TCP: rank 0 listens on host:port (all
// interfaces), waits for world - 1 peers, checks each one's job id and rank, then answers all of
// them; the others connect with back-off (50 ms doubling to 2 s) until timeout_s. File: rank 0
// writes "samx-rendezvous v1\n<job>\n<hex>" to a temporary name and renames it; the others poll for a
// file of their job id. Returns 0 or -1 with samx_last_error (timeout naming the ranks that never
// came, job id mismatch, an unreachable host).
int samx_rendezvous_tcp(const char *host, int port, const char *job_id, int rank, int world, void *blob,
                        size_t bytes, double timeout_s);
int samx_rendezvous_file(const char *path, const char *job_id, int rank, int world, void *blob, size_t bytes,
                         double timeout_s);

#ifdef __cplusplus
}
#endif
#endif
