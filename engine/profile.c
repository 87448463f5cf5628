#include "profile.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SITES 256

typedef struct {
  const char *site;
  int64_t calls;
  double seconds;
} Site;

int samx_profile_on = 0;
static Site sites[MAX_SITES];
static int n_sites = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report_at_exit(void) {
  fflush(stdout);  // after what the program printed, also when stdout is a pipe
  samx_profile_report(stderr);
}

void samx_profile_enable(int on) { samx_profile_on = on; }

// SAMX_PROFILE=1 turns profiling on before main and prints the table at exit.
__attribute__((constructor)) static void profile_from_env(void) {
  const char *e = getenv("SAMX_PROFILE");
  if (e && *e && strcmp(e, "0") != 0) {
    samx_profile_on = 1;
    atexit(report_at_exit);
  }
}

double samx_profile_begin(SamxDevice d) {
  samx_device_sync(d);  // earlier asynchronous work is not this launch's
  return now();
}

void samx_profile_end(const char *site, SamxDevice d, double t0) {
  samx_device_sync(d);
  const double dt = now() - t0;
  pthread_mutex_lock(&lock);
  int i = 0;
  while (i < n_sites && strcmp(sites[i].site, site) != 0) i++;
  if (i == n_sites && n_sites < MAX_SITES) sites[n_sites++] = (Site){site, 0, 0.0};
  if (i < n_sites) {
    sites[i].calls++;
    sites[i].seconds += dt;
  }
  pthread_mutex_unlock(&lock);
}

void samx_profile_get(const char *site, int64_t *calls, double *seconds) {
  *calls = 0;
  *seconds = 0.0;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < n_sites; i++)
    if (strcmp(sites[i].site, site) == 0) *calls = sites[i].calls, *seconds = sites[i].seconds;
  pthread_mutex_unlock(&lock);
}

void samx_profile_reset(void) {
  pthread_mutex_lock(&lock);
  n_sites = 0;
  pthread_mutex_unlock(&lock);
}

static int by_time(const void *a, const void *b) {
  const double x = ((const Site *)a)->seconds, y = ((const Site *)b)->seconds;
  return x < y ? 1 : (x > y ? -1 : 0);
}

void samx_profile_report(FILE *f) {
  pthread_mutex_lock(&lock);
  Site sorted[MAX_SITES];
  const int n = n_sites;
  memcpy(sorted, sites, (size_t)n * sizeof *sorted);
  pthread_mutex_unlock(&lock);
  qsort(sorted, (size_t)n, sizeof *sorted, by_time);
  double total = 0.0;
  for (int i = 0; i < n; i++) total += sorted[i].seconds;
  fprintf(f, "\n## samx kernel profile (SAMX_PROFILE): %.1f ms in kernels\n\n", 1e3 * total);
  fprintf(f, "| site | calls | total ms | ms per call | share |\n|---|---:|---:|---:|---:|\n");
  for (int i = 0; i < n; i++)
    fprintf(f, "| %s | %lld | %.2f | %.4f | %.1f%% |\n", sorted[i].site, (long long)sorted[i].calls,
            1e3 * sorted[i].seconds, 1e3 * sorted[i].seconds / (double)sorted[i].calls,
            total > 0 ? 100.0 * sorted[i].seconds / total : 0.0);
}
