// Launch detection (engine/dist.h): which launcher started this process, and where rank 0 is.
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "error.h"

typedef struct {
  SamxGetenvFn fn;
  void *user;
} Env;

static const char *env_get(const Env *e, const char *name) {
  const char *v = e->fn ? e->fn(name, e->user) : getenv(name);
  return v && v[0] ? v : NULL;
}

// A non-negative integer from variable `name`; -1 when absent, -2 (error set) when malformed.
static int env_int(const Env *e, const char *name) {
  const char *v = env_get(e, name);
  if (!v) return -1;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || x < 0 || x > 1 << 24) {
    samx_fail("launch: %s = '%s' is not a non-negative integer", name, v);
    return -2;
  }
  return (int)x;
}

const char *samx_launch_kind_name(SamxLaunchKind k) {
  static const char *names[] = {"single process", "explicit flags", "torchrun", "Open MPI", "PMI", "Slurm"};
  return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

// First host of a Slurm node list: "gpu[07-09,12],login1" -> "gpu07"; "a,b" -> "a".
static void first_slurm_host(const char *list, char *out, size_t n) {
  size_t len = 0;
  const char *p = list;
  while (*p && *p != ',' && *p != '[' && len + 1 < n) out[len++] = *p++;
  if (*p == '[') {
    p++;
    while (*p && isdigit((unsigned char)*p) && len + 1 < n) out[len++] = *p++;  // first number, padding kept
    while (*p && *p != ']') p++;
    if (*p == ']') p++;
    while (*p && *p != ',' && len + 1 < n) out[len++] = *p++;  // a suffix after the brackets
  }
  out[len] = 0;
}

// "HOST:PORT" into master/port; anything else is a rendezvous file.
static int parse_rendezvous(const char *spec, SamxLaunch *l) {
  const char *colon = strrchr(spec, ':');
  if (colon && !strchr(spec, '/') && colon != spec) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
      return samx_fail("launch: --rendezvous %s: port '%s' is not in 1..65535", spec, colon + 1);
    size_t hl = (size_t)(colon - spec);
    if (hl >= sizeof l->master) return samx_fail("launch: --rendezvous %s: host name too long", spec);
    memcpy(l->master, spec, hl);
    l->master[hl] = 0;
    l->port = (int)port;
    return 0;
  }
  if (strlen(spec) >= sizeof l->rendezvous_file) return samx_fail("launch: --rendezvous %s: path too long", spec);
  snprintf(l->rendezvous_file, sizeof l->rendezvous_file, "%s", spec);
  return 0;
}

#define TAKE(var, name)                    \
  do {                                     \
    if (((var) = env_int(e, name)) == -2) return -1; \
  } while (0)

static int detect_torchrun(const Env *e, SamxLaunch *l) {
  TAKE(l->rank, "RANK");
  TAKE(l->world, "WORLD_SIZE");
  TAKE(l->local_rank, "LOCAL_RANK");
  if (l->rank < 0 || l->world < 0)
    return samx_fail("launch: TORCHELASTIC_RUN_ID is set but RANK or WORLD_SIZE is not (torchrun --no-python sets both)");
  const char *addr = env_get(e, "MASTER_ADDR");
  int port;
  TAKE(port, "MASTER_PORT");
  if (addr) snprintf(l->master, sizeof l->master, "%s", addr);
  if (port > 0) l->port = port + 1;  // torchrun's agent holds MASTER_PORT itself
  snprintf(l->job_id, sizeof l->job_id, "%s", env_get(e, "TORCHELASTIC_RUN_ID"));
  snprintf(l->source, sizeof l->source, "torchrun (TORCHELASTIC_RUN_ID, RANK, WORLD_SIZE, LOCAL_RANK)");
  l->kind = SAMX_LAUNCH_TORCHRUN;
  return 0;
}

static int detect_mpi(const Env *e, SamxLaunch *l) {
  if (env_get(e, "OMPI_COMM_WORLD_RANK")) {
    TAKE(l->rank, "OMPI_COMM_WORLD_RANK");
    TAKE(l->world, "OMPI_COMM_WORLD_SIZE");
    TAKE(l->local_rank, "OMPI_COMM_WORLD_LOCAL_RANK");
    snprintf(l->source, sizeof l->source, "Open MPI (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK)");
    l->kind = SAMX_LAUNCH_OMPI;
  } else if (env_get(e, "PMI_RANK")) {
    TAKE(l->rank, "PMI_RANK");
    TAKE(l->world, "PMI_SIZE");
    TAKE(l->local_rank, "MPI_LOCALRANKID");
    if (l->local_rank < 0) TAKE(l->local_rank, "PMI_LOCAL_RANK");
    snprintf(l->source, sizeof l->source, "PMI (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID)");
    l->kind = SAMX_LAUNCH_PMI;
  } else {
    TAKE(l->rank, "PMIX_RANK");
    TAKE(l->world, "SLURM_NTASKS");  // PMIx names no size variable; under srun Slurm does
    TAKE(l->local_rank, "SLURM_LOCALID");
    snprintf(l->source, sizeof l->source, "PMIx (PMIX_RANK; size %s)", l->world >= 0 ? "SLURM_NTASKS" : "from MPI");
    l->kind = SAMX_LAUNCH_PMI;
  }
  const char *job = env_get(e, "SLURM_JOB_ID");
  if (!job) job = env_get(e, "OMPI_MCA_ess_base_jobid");
  if (job) snprintf(l->job_id, sizeof l->job_id, "%s", job);
  return 0;
}

static int detect_slurm(const Env *e, SamxLaunch *l) {
  TAKE(l->rank, "SLURM_PROCID");
  TAKE(l->world, "SLURM_STEP_NUM_TASKS");  // this srun step's tasks (SLURM_NTASKS: the allocation's)
  if (l->world < 0) TAKE(l->world, "SLURM_NTASKS");
  TAKE(l->local_rank, "SLURM_LOCALID");
  if (l->world < 0) return samx_fail("launch: SLURM_PROCID is set but SLURM_NTASKS is not (start with srun)");
  const char *nodes = env_get(e, "SLURM_STEP_NODELIST");
  if (!nodes) nodes = env_get(e, "SLURM_JOB_NODELIST");
  const char *addr = env_get(e, "MASTER_ADDR");
  if (addr)
    snprintf(l->master, sizeof l->master, "%s", addr);
  else if (nodes)
    first_slurm_host(nodes, l->master, sizeof l->master);
  int job;
  TAKE(job, "SLURM_JOB_ID");
  int port;
  TAKE(port, "MASTER_PORT");
  l->port = port > 0 ? port : job >= 0 ? 20000 + job % 20000 : 29500;
  const char *step = env_get(e, "SLURM_STEP_ID");
  if (job >= 0) snprintf(l->job_id, sizeof l->job_id, "%d.%s", job, step ? step : "0");
  snprintf(l->source, sizeof l->source, "Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, %s)",
           addr ? "MASTER_ADDR" : "first host of the node list");
  l->kind = SAMX_LAUNCH_SLURM;
  return 0;
}

static int detect_explicit(const SamxLaunchArgs *a, const Env *e, SamxLaunch *l) {
  l->rank = a->rank;
  l->world = a->world;
  l->local_rank = a->local_rank >= 0 ? a->local_rank : a->rank;  // by hand: one machine unless told
  if (a->rendezvous && parse_rendezvous(a->rendezvous, l) != 0) return -1;
  snprintf(l->source, sizeof l->source, "explicit flags (--rank, --world-size%s%s)",
           a->local_rank >= 0 ? ", --local-rank" : "", a->rendezvous ? ", --rendezvous" : "");
  l->kind = SAMX_LAUNCH_EXPLICIT;
  return 0;
}

int samx_launch_detect(const SamxLaunchArgs *args, SamxGetenvFn getenv_fn, void *user, SamxLaunch *out) {
  Env env = {getenv_fn, user}, *e = &env;
  SamxLaunch l;
  memset(&l, 0, sizeof l);
  l.rank = 0, l.world = 1, l.local_rank = 0;
  SamxLaunchArgs none = SAMX_LAUNCH_ARGS_NONE;
  if (!args) args = &none;
  if ((args->rank >= 0) != (args->world >= 0))
    return samx_fail("launch: --rank and --world-size go together (got only %s)", args->rank >= 0 ? "--rank" : "--world-size");
  int rc = 0;
  if (args->rank >= 0)
    rc = detect_explicit(args, e, &l);
  else if (env_get(e, "TORCHELASTIC_RUN_ID"))
    rc = detect_torchrun(e, &l);
  else if (env_get(e, "OMPI_COMM_WORLD_RANK") || env_get(e, "PMI_RANK") || env_get(e, "PMIX_RANK"))
    rc = detect_mpi(e, &l);
  else if (env_get(e, "SLURM_PROCID") && (env_get(e, "SLURM_STEP_ID") || env_get(e, "SLURM_STEPID")))
    rc = detect_slurm(e, &l);
  else if (env_get(e, "SLURM_PROCID"))  // the batch script itself, not a task of an srun step
    snprintf(l.source, sizeof l.source, "Slurm batch shell without srun: one process");
  else
    snprintf(l.source, sizeof l.source, "no launcher variables");
  if (rc != 0) return -1;
  if (args->rendezvous && l.kind != SAMX_LAUNCH_EXPLICIT && parse_rendezvous(args->rendezvous, &l) != 0) return -1;
  if (l.world == 0) return samx_fail("launch: a world size of 0 (%s)", l.source);
  if (l.world > 0 && (l.rank < 0 || l.rank >= l.world))
    return samx_fail("launch: rank %d is outside [0, %d) (%s)", l.rank, l.world, l.source);
  if (l.local_rank < 0) l.local_rank = 0;
  const char *job = env_get(e, "SAMX_JOB_ID");
  if (job) snprintf(l.job_id, sizeof l.job_id, "%s", job);
  // The GPU is the local rank, unless the launcher already narrowed the visible devices to one.
  const char *cvd = env_get(e, "CUDA_VISIBLE_DEVICES");
  l.gpu = cvd && !strchr(cvd, ',') ? 0 : l.local_rank;
  if (gethostname(l.host, sizeof l.host) != 0) snprintf(l.host, sizeof l.host, "?");
  *out = l;
  return 0;
}

void samx_launch_describe(const SamxLaunch *l, char *buf, size_t n) {
  char world[16], where[600] = "", job[160] = "";
  if (l->world > 0)
    snprintf(world, sizeof world, "%d", l->world);
  else
    snprintf(world, sizeof world, "?");
  if (l->rendezvous_file[0])
    snprintf(where, sizeof where, " rendezvous file %s", l->rendezvous_file);
  else if (l->master[0])
    snprintf(where, sizeof where, " master %s:%d", l->master, l->port);
  if (l->job_id[0]) snprintf(job, sizeof job, " job %s", l->job_id);
  snprintf(buf, n, "rank %d/%s local %d gpu %d host %s via %s: %s%s%s", l->rank, world, l->local_rank, l->gpu, l->host,
           samx_launch_kind_name(l->kind), l->source, where, job);
}

const char samx_launch_help[] =
    "several processes (contracts §8): start with mpirun/mpiexec, srun, torchrun --no-python, or by hand:\n"
    "  --rank R --world-size W   this process is rank R of W\n"
    "  --local-rank L            its rank on this machine, which picks the GPU (default: R)\n"
    "  --rendezvous HOST:PORT|FILE  where GPU ranks exchange the NCCL id (rank 0 listens on PORT, or\n"
    "                            writes FILE on a shared file system; set SAMX_JOB_ID on every rank)\n"
    "  CPU ranks communicate with MPI and must be started by mpirun (or srun with an MPI plug-in).\n"
    "  `samx info --ranks` prints what each rank detected; SAMX_DIST_TIMEOUT (seconds, default 300)\n"
    "  bounds the rendezvous and any one collective.\n";

int samx_launch_take_arg(int argc, char **argv, int *i, SamxLaunchArgs *a) {
  const char *flag = argv[*i];
  int *target = !strcmp(flag, "--rank")         ? &a->rank
                : !strcmp(flag, "--world-size") ? &a->world
                : !strcmp(flag, "--local-rank") ? &a->local_rank
                                                : NULL;
  if (!target && strcmp(flag, "--rendezvous")) return 0;
  if (*i + 1 >= argc) return samx_fail("%s needs a value", flag);
  const char *v = argv[++*i];
  if (!target) {
    a->rendezvous = v;
    return 1;
  }
  char *end;
  long x = strtol(v, &end, 10);
  if (*end || !*v || x < 0 || x > 1 << 24 || (target == &a->world && x < 1))
    return samx_fail("%s %s: expected a %s integer", flag, v, target == &a->world ? "positive" : "non-negative");
  *target = (int)x;
  return 1;
}
