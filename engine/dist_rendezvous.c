// Rendezvous of the ranks of a job without MPI (engine/dist.h): rank 0 hands a small blob (NCCL's
// unique id) to every other rank, over TCP or through a file on a shared file system.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "error.h"
#include "fileio.h"

#define MAGIC "SAMXRDV1"
#define JOB_BYTES 128

typedef struct {
  char magic[8];
  char job[JOB_BYTES];
  int32_t rank;
} Hello;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

// Moves exactly n bytes (write when out, else read) before the deadline; -1 on timeout, EOF or error.
static int io_all(int fd, void *buf, size_t n, int out, double deadline) {
  char *p = (char *)buf;
  while (n > 0) {
    double left = deadline - now_s();
    if (left <= 0) return -1;
    struct pollfd pf = {fd, (short)(out ? POLLOUT : POLLIN), 0};
    int r = poll(&pf, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t m = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
    if (m < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (m <= 0) return -1;
    p += m, n -= (size_t)m;
  }
  return 0;
}

static void job_field(const char *job_id, char out[JOB_BYTES]) {
  memset(out, 0, JOB_BYTES);
  snprintf(out, JOB_BYTES, "%s", job_id ? job_id : "");
}

// Rank 0: listen, collect world - 1 valid hellos, then answer each with status 0 and the blob.
static int serve(int port, const char *job_id, int world, const void *blob, size_t bytes, double timeout_s) {
  int ls = socket(AF_INET6, SOCK_STREAM, 0), v6 = 1;
  if (ls < 0) ls = socket(AF_INET, SOCK_STREAM, 0), v6 = 0;
  if (ls < 0) return samx_fail("rendezvous: socket: %s", strerror(errno));
  int one = 1, zero = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
    struct sockaddr_in6 a = {0};
    a.sin6_family = AF_INET6, a.sin6_port = htons((uint16_t)port), a.sin6_addr = in6addr_any;
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET, a.sin_port = htons((uint16_t)port), a.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  }
  if (rc != 0 || listen(ls, world) != 0) {
    int err = errno;
    close(ls);
    return samx_fail("rendezvous: rank 0 cannot listen on port %d: %s (HINT: another job holds the port; pick "
                     "another with --rendezvous HOST:PORT or MASTER_PORT)",
                     port, strerror(err));
  }
  int *peer = (int *)malloc(sizeof(int) * (size_t)world);
  for (int r = 0; r < world; r++) peer[r] = -1;
  char job[JOB_BYTES];
  job_field(job_id, job);
  double deadline = now_s() + timeout_s;
  int joined = 1;
  rc = 0;
  while (joined < world) {
    double left = deadline - now_s();
    struct pollfd pf = {ls, POLLIN, 0};
    if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) <= 0) {
      if (errno == EINTR && left > 0) continue;
      char missing[256] = "";
      size_t len = 0;
      for (int r = 1; r < world && len < sizeof missing - 16; r++)
        if (peer[r] < 0) len += (size_t)snprintf(missing + len, sizeof missing - len, " %d", r);
      rc = samx_fail("rendezvous: rank 0 waited %.0f s on port %d; ranks that never came:%s", timeout_s, port, missing);
      break;
    }
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) continue;
    Hello h;
    int32_t status = 0;
    if (io_all(fd, &h, sizeof h, 0, now_s() + 5) != 0 || memcmp(h.magic, MAGIC, 8) != 0) {
      close(fd);  // not a samx rank (a port scanner, a stray connection)
      continue;
    }
    if (memcmp(h.job, job, JOB_BYTES) != 0)
      status = 1;
    else if (h.rank < 1 || h.rank >= world || peer[h.rank] >= 0)
      status = 2;
    if (status) {
      io_all(fd, &status, sizeof status, 1, now_s() + 5);
      close(fd);
      h.job[JOB_BYTES - 1] = 0;
      fprintf(stderr, "samx: rendezvous: refused a peer claiming rank %d of job '%s' (this is job '%s', %d ranks)\n",
              (int)h.rank, h.job, job_id ? job_id : "", world);
      continue;
    }
    peer[h.rank] = fd;
    joined++;
  }
  for (int r = 1; r < world; r++) {
    if (peer[r] < 0) continue;
    int32_t status = rc == 0 ? 0 : 3;
    if (io_all(peer[r], &status, sizeof status, 1, now_s() + 10) != 0 ||
        (rc == 0 && io_all(peer[r], (void *)blob, bytes, 1, now_s() + 10) != 0))
      if (rc == 0) rc = samx_fail("rendezvous: rank %d went away before it received the id", r);
    close(peer[r]);
  }
  free(peer);
  close(ls);
  return rc;
}

static int connect_once(const char *host, int port, char *why, size_t n) {
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  int g = getaddrinfo(host, ps, &hints, &res);
  if (g != 0) {
    snprintf(why, n, "cannot resolve %s: %s", host, gai_strerror(g));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      snprintf(why, n, "%s", strerror(errno));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

static int join(const char *host, int port, const char *job_id, int rank, void *blob, size_t bytes, double timeout_s) {
  double deadline = now_s() + timeout_s, wait = 0.05;
  char why[256] = "";
  int fd = -1;
  while ((fd = connect_once(host, port, why, sizeof why)) < 0) {
    if (now_s() + wait > deadline)
      return samx_fail("rendezvous: rank %d could not reach rank 0 at %s:%d within %.0f s: %s", rank, host, port,
                       timeout_s, why);
    sleep_s(wait);
    wait = wait * 2 > 2 ? 2 : wait * 2;
  }
  Hello h;
  memcpy(h.magic, MAGIC, 8);
  job_field(job_id, h.job);
  h.rank = rank;
  int32_t status = -1;
  int rc = io_all(fd, &h, sizeof h, 1, deadline) == 0 && io_all(fd, &status, sizeof status, 0, deadline) == 0 ? 0 : -1;
  if (rc == 0 && status == 0) rc = io_all(fd, blob, bytes, 0, deadline);
  close(fd);
  if (rc != 0) return samx_fail("rendezvous: rank %d lost rank 0 at %s:%d (timeout or closed)", rank, host, port);
  if (status == 1)
    return samx_fail("rendezvous: rank 0 at %s:%d belongs to another job (this is job '%s'; HINT: a stale job holds "
                     "the port, or the ranks disagree on SAMX_JOB_ID)",
                     host, port, job_id ? job_id : "");
  if (status == 2) return samx_fail("rendezvous: rank 0 at %s:%d refused rank %d (outside the world, or twice)", host, port, rank);
  if (status != 0) return samx_fail("rendezvous: rank 0 at %s:%d gave up waiting for the other ranks", host, port);
  return 0;
}

int samx_rendezvous_tcp(const char *host, int port, const char *job_id, int rank, int world, void *blob, size_t bytes,
                        double timeout_s) {
  if (world == 1) return 0;
  if (port < 1 || port > 65535) return samx_fail("rendezvous: no port (HINT: --rendezvous HOST:PORT or MASTER_PORT)");
  if (rank == 0) return serve(port, job_id, world, blob, bytes, timeout_s);
  if (!host || !host[0]) return samx_fail("rendezvous: rank %d does not know rank 0's host (HINT: MASTER_ADDR or --rendezvous HOST:PORT)", rank);
  return join(host, port, job_id, rank, blob, bytes, timeout_s);
}

// ---- by file ----
#define FILE_HEADER "samx-rendezvous v1\n"

int samx_rendezvous_file(const char *path, const char *job_id, int rank, int world, void *blob, size_t bytes,
                         double timeout_s) {
  if (world == 1) return 0;
  if (!job_id || !job_id[0])
    return samx_fail("rendezvous file %s needs a job id to tell this job's file from a stale one (HINT: set "
                     "SAMX_JOB_ID to the same value on every rank)",
                     path);
  size_t cap = strlen(FILE_HEADER) + strlen(job_id) + 2 * bytes + 4;
  char *text = (char *)malloc(cap + 1);
  if (rank == 0) {
    size_t len = (size_t)snprintf(text, cap + 1, FILE_HEADER "%s\n", job_id);
    for (size_t i = 0; i < bytes; i++) len += (size_t)snprintf(text + len, cap + 1 - len, "%02x", ((unsigned char *)blob)[i]);
    text[len++] = '\n';
    int rc = samx_write_file_atomic(path, text, len);  // temporary name, fsync, rename
    free(text);
    return rc;
  }
  double deadline = now_s() + timeout_s;
  int warned = 0;
  for (;;) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t len = fread(text, 1, cap, f);
      fclose(f);
      text[len] = 0;
      size_t hl = strlen(FILE_HEADER), jl = strlen(job_id), expect = hl + jl + 1 + 2 * bytes + 1;
      if (len == expect && !strncmp(text, FILE_HEADER, hl) && !strncmp(text + hl, job_id, jl) && text[hl + jl] == '\n') {
        const char *hex = text + hl + jl + 1;
        for (size_t i = 0; i < bytes; i++) {
          unsigned v;
          sscanf(hex + 2 * i, "%2x", &v);
          ((unsigned char *)blob)[i] = (unsigned char)v;
        }
        free(text);
        return 0;
      }
      if (!warned && len > hl && !strncmp(text, FILE_HEADER, hl)) {
        fprintf(stderr, "samx: rendezvous: %s is from another job; waiting for rank 0 of job '%s' to replace it\n", path, job_id);
        warned = 1;
      }
    }
    if (now_s() > deadline) {
      free(text);
      return samx_fail("rendezvous: rank %d waited %.0f s for %s of job '%s' from rank 0", rank, timeout_s, path, job_id);
    }
    sleep_s(0.1);
  }
}
