// A world of one with a real communicator (SAMX_DIST_FORCE=1): in "cpu" mode Open MPI as a singleton
// (MPI_Init without mpirun), in "cuda" mode the real NCCL on one GPU (NCCL refuses two ranks on one
// device, so this is the check that the library initialises and reduces; skipped without a GPU).
// Every collective of engine/dist.h on one rank: sums are the input, the scatter and gather copies.
#include <stdlib.h>
#include <string.h>

#include "engine/dist.h"
#include "tests/harness.h"

int main(int argc, char **argv) {
  int cuda = argc > 1 && !strcmp(argv[1], "cuda");
  if (cuda && samx_cuda_device_count() == 0) {
    printf("skipped: no CUDA device\n");
    return SAMX_TEST_SKIP;
  }
  if (cuda && !samx_dist_have_nccl()) {
    printf("skipped: this CUDA build has no NCCL\n");
    return SAMX_TEST_SKIP;
  }
  if (!cuda && !samx_dist_have_mpi()) {
    printf("skipped: this build has no MPI\n");
    return SAMX_TEST_SKIP;
  }
  setenv("SAMX_DIST_FORCE", "1", 1);
  SamxLaunch l;
  CHECK(samx_launch_detect(NULL, NULL, NULL, &l) == 0 && l.world == 1, "single launch: %s", samx_last_error());
  SamxDevice dev = cuda ? (SamxDevice){SAMX_CUDA, 0} : samx_cpu();
  SamxDist d;
  if (samx_dist_init(&d, &l, dev) != 0) {
    printf("FAIL init: %s\n", samx_last_error());
    return 1;
  }
  CHECK(d.backend == (cuda ? SAMX_DIST_NCCL : SAMX_DIST_MPI), "backend %s", samx_dist_backend_name(d.backend));
  enum { N = 4097 };
  float host[N], back[N];
  for (int i = 0; i < N; i++) host[i] = 0.5f * (float)i - 7.0f;
  float *buf = (float *)samx_dev_malloc(d.device, sizeof host), *half = (float *)samx_dev_malloc(d.device, sizeof host);
  samx_memcpy(d.device, buf, samx_cpu(), host, sizeof host);
  CHECK(samx_dist_allreduce_sum(&d, buf, N, SAMX_DIST_F32) == 0, "all-reduce: %s", samx_last_error());
  samx_memcpy(samx_cpu(), back, d.device, buf, sizeof back);
  CHECK(!memcmp(back, host, sizeof host), "one rank's sum is its input");
  CHECK(samx_dist_reduce_scatter_sum(&d, buf, half, N, SAMX_DIST_F32) == 0, "reduce-scatter: %s", samx_last_error());
  samx_memcpy(samx_cpu(), back, d.device, half, sizeof back);
  CHECK(!memcmp(back, host, sizeof host), "one rank's scatter is its input");
  samx_dev_memset0(d.device, buf, sizeof host);
  CHECK(samx_dist_allgather(&d, half, buf, N, SAMX_DIST_F32) == 0, "all-gather: %s", samx_last_error());
  samx_memcpy(samx_cpu(), back, d.device, buf, sizeof back);
  CHECK(!memcmp(back, host, sizeof host), "one rank's gather is its input");
  double v[2] = {1.25, -3};
  CHECK(samx_dist_allreduce_host_f64(&d, v, 2) == 0 && v[0] == 1.25 && v[1] == -3, "host f64 sum %g %g", v[0], v[1]);
  char msg[16] = "hello";
  CHECK(samx_dist_broadcast(&d, msg, sizeof msg, 0) == 0 && !strcmp(msg, "hello"), "broadcast");
  CHECK(samx_dist_barrier(&d) == 0 && samx_dist_poll(&d) == 0, "barrier, poll: %s", samx_last_error());
  samx_dev_free(d.device, buf);
  samx_dev_free(d.device, half);
  samx_dist_finalize(&d);
  return samx_test_summary();
}
