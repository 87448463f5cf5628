// fuzz_h5_checker: reads 512-byte NUL-padded paths on stdin and answers one byte per path on stdout:
// 'k' when libhdf5 alone opened the file and read every attribute and dataset (fuzz_h5_preflight),
// 'c' when that crashed, 'h' when it hung. The HDF5 fuzz targets run it to tell libhdf5's own crashes
// and hangs from samx's (tests/fuzz/README.md).
//
// This supervisor forks a fresh worker for every file from its initialised self (no exec, no dynamic
// linking, no sanitizer start-up: about 2 ms). A fresh worker makes the verdict a function of the
// file alone: libhdf5's out-of-bounds reads and endless loops on damaged files depend on what earlier
// files left in memory, and a long-lived reader passed files that then crashed or hung the target.
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int worker_answers = -1;  // the worker's end of its pipe: 'b' before a large read, 'k' at the end

static void say_bulk_read(void) {
  if (write(worker_answers, "b", 1) != 1) _exit(0);
}

static double cpu_seconds(pid_t pid) {
  clockid_t cid;
  struct timespec t;
  if (clock_getcpuclockid(pid, &cid) != 0 || clock_gettime(cid, &t) != 0) return -1;
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The deadline counts the worker's CPU time, not the wall clock, so a loaded machine does not turn
// slow reads into hangs: FUZZ_H5_META_CPU_S for the metadata (the fuzzed files are a few KB: a read
// takes about a millisecond, and libhdf5's endless loops on a damaged global heap or metadata cache
// spin there), FUZZ_H5_BULK_CPU_S once the worker says 'b' (a dataset above FUZZ_H5_BULK_BYTES, which
// a small file may declare legitimately through fill values or compression).
static char wait_for(pid_t worker, int answers) {
  double start = cpu_seconds(worker), budget = FUZZ_H5_META_CPU_S;
  for (;;) {
    struct pollfd pf = {.fd = answers, .events = POLLIN};
    int ready = poll(&pf, 1, 20);
    if (ready == 1) {
      char answer = 0;
      if (read(answers, &answer, 1) != 1) return 'c';  // it died without answering
      if (answer == 'k') return 'k';
      if (answer == 'b') budget = FUZZ_H5_BULK_CPU_S, start = cpu_seconds(worker);
      continue;
    }
    if (ready < 0) return 'c';
    double now = cpu_seconds(worker);
    if (start < 0 || now < 0) return 'c';
    if (now - start > budget) return 'h';
  }
}

static char check(const char *path) {
  int up[2];
  if (pipe(up)) _exit(1);
  pid_t worker = fork();
  if (worker < 0) _exit(1);
  if (worker == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(up[0]);
    worker_answers = up[1];
    fuzz_h5_bulk_read_hook = say_bulk_read;
    fuzz_h5_preflight(path);
    _exit(write(up[1], "k", 1) == 1 ? 0 : 1);
  }
  close(up[1]);
  char v = wait_for(worker, up[0]);
  kill(worker, SIGKILL);
  waitpid(worker, NULL, 0);
  close(up[0]);
  return v;
}

int main(void) {
  // A target killed from outside (Ctrl-C, a CI timeout) must not leave a worker spinning in one of
  // libhdf5's endless loops: the supervisor dies with the target, the worker with the supervisor.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  signal(SIGPIPE, SIG_IGN);
  H5open();  // once, here: every worker inherits the initialised library
  fuzz_h5_no_free_lists();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char path[512];
  while (read(STDIN_FILENO, path, sizeof path) == (ssize_t)sizeof path) {
    path[sizeof path - 1] = 0;
    char v = check(path);
    if (write(STDOUT_FILENO, &v, 1) != 1) break;
  }
  return 0;
}
