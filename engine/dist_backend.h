// The NCCL back end's entry points, called by engine/dist.c and defined in engine/dist_nccl.c (which
// the emulated CUDA build compiles as C++, hence the C linkage). Internal to engine/dist*.
#ifndef SAMX_DIST_BACKEND_H
#define SAMX_DIST_BACKEND_H

#include "dist.h"

#ifdef __cplusplus
extern "C" {
#endif

int samx_dist_nccl_init(SamxDist *d, int mpi_bootstrap);
void samx_dist_nccl_finalize(SamxDist *d);
int samx_dist_nccl_allreduce(SamxDist *d, void *buf, int64_t n, SamxDistType type);
int samx_dist_nccl_allreduce_start(SamxDist *d, void *buf, int64_t n, SamxDistType type);
int samx_dist_nccl_wait(SamxDist *d);
int samx_dist_nccl_reduce_scatter(SamxDist *d, const void *send, void *recv, int64_t recv_n, SamxDistType type);
int samx_dist_nccl_allgather(SamxDist *d, const void *send, void *recv, int64_t send_n, SamxDistType type);
int samx_dist_nccl_broadcast(SamxDist *d, void *buf, size_t bytes, int root);
int samx_dist_nccl_poll(SamxDist *d);
void samx_dist_nccl_abort(SamxDist *d);

#ifdef __cplusplus
}
#endif
#endif
