// engine/dist.h over MPI with two CPU ranks (run as `mpirun -np 2`): the launch read from Open MPI's
// variables, then every collective against values computed by hand from each rank's known input.
#include <string.h>

#include "engine/dist.h"
#include "tests/harness.h"

int main(void) {
  SamxLaunch l;
  CHECK(samx_launch_detect(NULL, NULL, NULL, &l) == 0, "detect: %s", samx_last_error());
  CHECK(l.kind == SAMX_LAUNCH_OMPI && l.world == 2, "started by mpirun -np 2: kind %d world %d", l.kind, l.world);
  SamxDist d;
  if (samx_dist_init(&d, &l, samx_cpu()) != 0) {
    printf("FAIL init: %s\n", samx_last_error());
    return 1;
  }
  CHECK(d.backend == SAMX_DIST_MPI && d.world == 2, "backend %s", samx_dist_backend_name(d.backend));
  int r = d.rank, W = d.world;
  // all-reduce, f32: rank r holds x_i = (r + 1) * i + 0.25; the sum is exact in f32.
  enum { N = 1000 };
  float f[N];
  for (int i = 0; i < N; i++) f[i] = (float)((r + 1) * i) + 0.25f;
  CHECK(samx_dist_allreduce_sum(&d, f, N, SAMX_DIST_F32) == 0, "allreduce: %s", samx_last_error());
  int bad = 0;
  for (int i = 0; i < N; i++) bad += f[i] != (float)(3 * i) + 0.5f;
  CHECK(bad == 0, "f32 all-reduce: %d wrong", bad);
  double g[3] = {r + 0.5, -r, 1e300 * (r == 0)};
  CHECK(samx_dist_allreduce_host_f64(&d, g, 3) == 0 && g[0] == 2.0 && g[1] == -1 && g[2] == 1e300, "f64: %g %g %g", g[0],
        g[1], g[2]);
  // reduce-scatter: send [W * 4]: rank r's element j is 10 r + j; rank q receives sum over r of send[4q + k].
  float send[8], recv[4];
  for (int j = 0; j < 8; j++) send[j] = (float)(10 * r + j);
  CHECK(samx_dist_reduce_scatter_sum(&d, send, recv, 4, SAMX_DIST_F32) == 0, "reduce-scatter: %s", samx_last_error());
  bad = 0;
  for (int k = 0; k < 4; k++) bad += recv[k] != (float)(10 + 2 * (4 * r + k));
  CHECK(bad == 0, "reduce-scatter on rank %d: %g %g %g %g", r, recv[0], recv[1], recv[2], recv[3]);
  // all-gather, in place and not.
  float all[6] = {0};
  for (int k = 0; k < 3; k++) all[3 * r + k] = (float)(100 * r + k);
  CHECK(samx_dist_allgather(&d, all + 3 * r, all, 3, SAMX_DIST_F32) == 0, "all-gather: %s", samx_last_error());
  CHECK(all[0] == 0 && all[2] == 2 && all[3] == 100 && all[5] == 102, "all-gather in place: %g %g %g", all[0], all[3], all[5]);
  double mine[2] = {r * 2.0, r * 2.0 + 1}, both[4];
  CHECK(samx_dist_allgather(&d, mine, both, 2, SAMX_DIST_F64) == 0 && both[0] == 0 && both[1] == 1 && both[2] == 2 &&
            both[3] == 3,
        "all-gather f64: %g %g %g %g", both[0], both[1], both[2], both[3]);
  char msg[32] = "";
  if (r == 1) snprintf(msg, sizeof msg, "from rank one");
  CHECK(samx_dist_broadcast(&d, msg, sizeof msg, 1) == 0 && !strcmp(msg, "from rank one"), "broadcast: '%s'", msg);
  CHECK(samx_dist_barrier(&d) == 0 && samx_dist_poll(&d) == 0, "barrier: %s", samx_last_error());
  (void)W;
  int rc = samx_test_summary();
  samx_dist_finalize(&d);
  return rc;
}
