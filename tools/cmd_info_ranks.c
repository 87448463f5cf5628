// `samx info --ranks [--rank R --world-size W ...]`: what this process detected about its launch
// (engine/dist.h), one line per rank, so that a broken launch can be debugged before a long job. Under
// an MPI launch with MPI built in, the ranks also join the communicator (checking MPI's view against
// the launcher's), sum their ranks as a first collective and print in rank order.
#include <stdio.h>
#include <string.h>

#include "engine/dist.h"
#include "engine/error.h"

int samx_info_ranks(int argc, char **argv) {
  SamxLaunchArgs args = SAMX_LAUNCH_ARGS_NONE;
  for (int i = 1; i < argc; i++) {
    int took = samx_launch_take_arg(argc, argv, &i, &args);
    if (took < 0 || (!took && strcmp(argv[i], "--ranks"))) {
      fprintf(stderr, "samx info: %s\n", took < 0 ? samx_last_error() : "unexpected argument (see samx info --help)");
      return 2;
    }
  }
  SamxLaunch l;
  if (samx_launch_detect(&args, NULL, NULL, &l) != 0) {
    fprintf(stderr, "samx info: %s\n", samx_last_error());
    return 1;
  }
  char line[1024];
  samx_launch_describe(&l, line, sizeof line);
  int mpi_launch = l.kind == SAMX_LAUNCH_OMPI || l.kind == SAMX_LAUNCH_PMI;
  if (l.world == 1 || !mpi_launch || !samx_dist_have_mpi()) {
    printf("%s%s\n", line,
           l.world > 1 ? (samx_dist_have_nccl() ? "; GPU ranks: NCCL, id by TCP/file rendezvous; CPU ranks need mpirun"
                                                 : "; CPU ranks need mpirun (this build has no NCCL)")
                       : "");
    return 0;
  }
  SamxDist d;
  if (samx_dist_init(&d, &l, samx_cpu()) != 0) {
    fprintf(stderr, "samx info: rank %d: %s\n", l.rank, samx_last_error());
    return 1;
  }
  double sum = d.rank;
  int rc = samx_dist_allreduce_host_f64(&d, &sum, 1);
  int ok = rc == 0 && sum == (double)d.world * (d.world - 1) / 2;
  for (int r = 0; r < d.world; r++) {
    samx_dist_barrier(&d);
    if (r == d.rank) {
      printf("%s; MPI agrees (rank %d of %d), first all-reduce %s\n", line, d.rank, d.world, ok ? "ok" : "WRONG");
      fflush(stdout);
    }
  }
  samx_dist_finalize(&d);
  return ok ? 0 : 1;
}
