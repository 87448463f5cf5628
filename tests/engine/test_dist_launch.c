// Launch detection from synthetic torchrun / Slurm / Open MPI / PMI environments, the explicit
// flags, and the rendezvous: two processes over TCP on 127.0.0.1 (and a stranger of another job
// refused), and by file (a stale file of another job ignored).
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/dist.h"
#include "tests/harness.h"

// A synthetic environment: NULL-terminated "NAME=value" strings.
static const char *fake_getenv(const char *name, void *user) {
  size_t n = strlen(name);
  for (const char **e = (const char **)user; *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static int detect(const char **env, const SamxLaunchArgs *a, SamxLaunch *l) { return samx_launch_detect(a, fake_getenv, env, l); }

static void test_single(void) {
  const char *env[] = {"HOME=/root", NULL};
  SamxLaunch l;
  CHECK(detect(env, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_SINGLE && l.rank == 0 && l.world == 1 && l.gpu == 0,
        "no launcher: kind %d rank %d world %d", l.kind, l.rank, l.world);
}

static void test_torchrun(void) {
  const char *env[] = {"TORCHELASTIC_RUN_ID=abc", "RANK=5", "WORLD_SIZE=16", "LOCAL_RANK=1", "MASTER_ADDR=node01",
                       "MASTER_PORT=29500",
                       // Slurm variables too (torchrun inside an sbatch job): torchrun's win
                       "SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_LOCALID=0", NULL};
  SamxLaunch l;
  CHECK(detect(env, NULL, &l) == 0, "torchrun: %s", samx_last_error());
  CHECK(l.kind == SAMX_LAUNCH_TORCHRUN && l.rank == 5 && l.world == 16 && l.local_rank == 1, "torchrun ranks %d %d %d",
        l.rank, l.world, l.local_rank);
  CHECK(l.gpu == 1, "torchrun: GPU is the local rank (1), got %d", l.gpu);
  CHECK(!strcmp(l.master, "node01") && l.port == 29501, "torchrun: rendezvous %s:%d, expected node01:29501 (MASTER_PORT "
        "is the agent's)", l.master, l.port);
  CHECK(!strcmp(l.job_id, "abc"), "torchrun job id '%s'", l.job_id);
  const char *bad[] = {"TORCHELASTIC_RUN_ID=abc", "RANK=x", "WORLD_SIZE=2", NULL};
  CHECK(detect(bad, NULL, &l) != 0 && strstr(samx_last_error(), "RANK"), "bad RANK: %s", samx_last_error());
  const char *outside[] = {"TORCHELASTIC_RUN_ID=abc", "RANK=2", "WORLD_SIZE=2", NULL};
  CHECK(detect(outside, NULL, &l) != 0 && strstr(samx_last_error(), "outside"), "rank outside: %s", samx_last_error());
}

static void test_mpi(void) {
  const char *ompi[] = {"OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=8", "OMPI_COMM_WORLD_LOCAL_RANK=3",
                        "SLURM_PROCID=7", "SLURM_NTASKS=9", NULL};
  SamxLaunch l;
  CHECK(detect(ompi, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_OMPI && l.rank == 3 && l.world == 8 && l.gpu == 3,
        "Open MPI: kind %d rank %d world %d gpu %d", l.kind, l.rank, l.world, l.gpu);
  const char *pmi[] = {"PMI_RANK=1", "PMI_SIZE=2", "MPI_LOCALRANKID=0", NULL};
  CHECK(detect(pmi, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_PMI && l.rank == 1 && l.world == 2 && l.local_rank == 0,
        "PMI: %d %d %d", l.rank, l.world, l.local_rank);
  const char *pmix[] = {"PMIX_RANK=6", "SLURM_NTASKS=8", "SLURM_LOCALID=2", NULL};
  CHECK(detect(pmix, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_PMI && l.rank == 6 && l.world == 8 && l.gpu == 2,
        "PMIx under srun: %d %d gpu %d", l.rank, l.world, l.gpu);
}

static void test_slurm(void) {
  const char *env[] = {"SLURM_PROCID=5", "SLURM_NTASKS=8", "SLURM_LOCALID=1", "SLURM_JOB_ID=123456", "SLURM_STEP_ID=0",
                       "SLURM_STEP_NODELIST=gpu[007-009,012],login1", "SLURM_JOB_NODELIST=other[1-2]", NULL};
  SamxLaunch l;
  CHECK(detect(env, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_SLURM && l.rank == 5 && l.world == 8, "Slurm: %s",
        samx_last_error());
  CHECK(l.gpu == 1 && l.local_rank == 1, "Slurm: GPU = SLURM_LOCALID 1, never the global rank 5; got %d", l.gpu);
  CHECK(!strcmp(l.master, "gpu007"), "Slurm: first host of the step's node list is gpu007, got '%s'", l.master);
  CHECK(l.port == 20000 + 123456 % 20000 && !strcmp(l.job_id, "123456.0"), "Slurm: port %d job '%s'", l.port, l.job_id);
  const char *plain[] = {"SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_STEP_ID=1", "SLURM_JOB_NODELIST=a,b",
                         "CUDA_VISIBLE_DEVICES=3", NULL};
  CHECK(detect(plain, NULL, &l) == 0 && !strcmp(l.master, "a") && l.gpu == 0, "Slurm plain list: '%s' gpu %d", l.master,
        l.gpu);
  const char *single[] = {"SLURM_PROCID=1", "SLURM_NTASKS=2", "SLURM_LOCALID=1", "SLURM_STEPID=0",
                          "SLURM_JOB_NODELIST=n[3-4]", "CUDA_VISIBLE_DEVICES=5", NULL};
  CHECK(detect(single, NULL, &l) == 0 && l.gpu == 0 && !strcmp(l.master, "n3"),
        "one visible GPU: device 0 whatever the local rank; got %d (%s)", l.gpu, l.master);
  const char *two[] = {"SLURM_PROCID=1", "SLURM_NTASKS=8", "SLURM_STEP_NUM_TASKS=2", "SLURM_STEP_ID=3",
                       "SLURM_LOCALID=1", "CUDA_VISIBLE_DEVICES=4,5", NULL};
  CHECK(detect(two, NULL, &l) == 0 && l.gpu == 1 && l.world == 2,
        "two visible GPUs: local rank 1, got %d; the step's 2 tasks, not the allocation's 8: %d", l.gpu, l.world);
  // The batch script itself (no srun step) is one process, whatever the allocation's task count.
  const char *batch[] = {"SLURM_PROCID=0", "SLURM_NTASKS=8", "SLURM_LOCALID=0", "SLURM_JOB_ID=5", NULL};
  CHECK(detect(batch, NULL, &l) == 0 && l.kind == SAMX_LAUNCH_SINGLE && l.world == 1 && strstr(l.source, "batch shell"),
        "sbatch shell without srun: kind %d world %d (%s)", l.kind, l.world, l.source);
}

static void test_explicit(void) {
  const char *env[] = {"TORCHELASTIC_RUN_ID=abc", "RANK=0", "WORLD_SIZE=4", "SAMX_JOB_ID=j7", NULL};
  SamxLaunchArgs a = SAMX_LAUNCH_ARGS_NONE;
  char *argv[] = {"samx", "--rank", "1", "--world-size", "2", "--rendezvous", "127.0.0.1:4567", "--local-rank", "0", NULL};
  int argc = 9, taken = 0;
  for (int i = 1; i < argc; i++) taken += samx_launch_take_arg(argc, argv, &i, &a) == 1;
  CHECK(taken == 4, "4 flags taken, got %d", taken);
  SamxLaunch l;
  CHECK(detect(env, &a, &l) == 0 && l.kind == SAMX_LAUNCH_EXPLICIT && l.rank == 1 && l.world == 2 && l.local_rank == 0,
        "explicit beats torchrun: kind %d rank %d world %d", l.kind, l.rank, l.world);
  CHECK(!strcmp(l.master, "127.0.0.1") && l.port == 4567 && !strcmp(l.job_id, "j7"), "explicit rendezvous %s:%d job %s",
        l.master, l.port, l.job_id);
  SamxLaunchArgs f = SAMX_LAUNCH_ARGS_NONE;
  f.rank = 0, f.world = 2, f.rendezvous = "/shared/job.id";
  CHECK(detect(env, &f, &l) == 0 && !strcmp(l.rendezvous_file, "/shared/job.id") && !l.port, "file rendezvous '%s'",
        l.rendezvous_file);
  SamxLaunchArgs half = SAMX_LAUNCH_ARGS_NONE;
  half.rank = 1;
  CHECK(detect(env, &half, &l) != 0 && strstr(samx_last_error(), "--world-size"), "--rank alone: %s", samx_last_error());
  char *bad[] = {"samx", "--world-size", "0", NULL};
  int i = 1;
  SamxLaunchArgs b = SAMX_LAUNCH_ARGS_NONE;
  CHECK(samx_launch_take_arg(3, bad, &i, &b) == -1 && strstr(samx_last_error(), "positive"), "--world-size 0: %s",
        samx_last_error());
  char buf[512];
  samx_launch_describe(&l, buf, sizeof buf);
  CHECK(strstr(buf, "rank 0/2") && strstr(buf, "explicit") && strstr(buf, "job.id"), "describe: %s", buf);
}

// ---- rendezvous ----
static int free_port(void) { return 20000 + (int)(getpid() % 20000); }

static void test_tcp(void) {
  int port = free_port();
  unsigned char blob[128], got[128];
  for (int i = 0; i < 128; i++) blob[i] = (unsigned char)(i * 7 + 3);
  // A stranger of another job and rank 1 (a child) start before rank 0 listens and retry; the
  // stranger must be refused without disturbing the job.
  pid_t child = fork();
  if (child == 0) {
    usleep(1200000);  // after the stranger
    memset(got, 0, sizeof got);
    int rc = samx_rendezvous_tcp("127.0.0.1", port, "job-A", 1, 2, got, sizeof got, 20);
    _exit(rc == 0 && !memcmp(got, blob, sizeof blob) ? 0 : 1);
  }
  pid_t stranger = fork();
  if (stranger == 0) {
    unsigned char x[128];
    int rc = samx_rendezvous_tcp("127.0.0.1", port, "job-B", 1, 2, x, sizeof x, 5);
    if (rc == 0 || !strstr(samx_last_error(), "another job")) printf("stranger: %s\n", samx_last_error());
    fflush(stdout);
    _exit(rc != 0 && strstr(samx_last_error(), "another job") ? 0 : 1);
  }
  usleep(300000);
  int rc = samx_rendezvous_tcp("127.0.0.1", port, "job-A", 0, 2, blob, sizeof blob, 20);
  CHECK(rc == 0, "rank 0: %s", samx_last_error());
  int st1 = -1, st2 = -1;
  waitpid(child, &st1, 0);
  waitpid(stranger, &st2, 0);
  CHECK(WIFEXITED(st1) && WEXITSTATUS(st1) == 0, "rank 1 got the blob of rank 0 (status %d)", st1);
  CHECK(WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "a rank of another job is refused with a message (status %d)", st2);
  // Nobody comes: rank 0 gives up after its timeout, naming the missing rank.
  rc = samx_rendezvous_tcp("127.0.0.1", port + 1, "job-C", 0, 3, blob, sizeof blob, 0.5);
  CHECK(rc != 0 && strstr(samx_last_error(), "never came: 1 2"), "timeout: %s", samx_last_error());
  rc = samx_rendezvous_tcp("127.0.0.1", port + 2, "job-C", 1, 2, got, sizeof got, 0.5);
  CHECK(rc != 0 && strstr(samx_last_error(), "could not reach"), "no rank 0: %s", samx_last_error());
}

static void test_file(void) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/samx_rdv_%d", (int)getpid());
  unsigned char blob[64], got[64];
  for (int i = 0; i < 64; i++) blob[i] = (unsigned char)(255 - i);
  // A stale file of an earlier job is there first: rank 1 must wait for this job's.
  unsigned char stale[64] = {0};
  CHECK(samx_rendezvous_file(path, "old-job", 0, 2, stale, sizeof stale, 5) == 0, "stale write: %s", samx_last_error());
  pid_t child = fork();
  if (child == 0) {
    int rc = samx_rendezvous_file(path, "new-job", 1, 2, got, sizeof got, 20);
    _exit(rc == 0 && !memcmp(got, blob, sizeof blob) ? 0 : 1);
  }
  usleep(400000);
  CHECK(samx_rendezvous_file(path, "new-job", 0, 2, blob, sizeof blob, 5) == 0, "write: %s", samx_last_error());
  int st = -1;
  waitpid(child, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank 1 read this job's id, not the stale one (status %d)", st);
  CHECK(samx_rendezvous_file(path, "", 1, 2, got, sizeof got, 1) != 0 && strstr(samx_last_error(), "SAMX_JOB_ID"),
        "no job id: %s", samx_last_error());
  unlink(path);
}

int main(void) {
  test_single();
  test_torchrun();
  test_mpi();
  test_slurm();
  test_explicit();
  test_tcp();
  test_file();
  return samx_test_summary();
}
