#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fuzz_tmp_dir(void) {
  const char *d = getenv("SAMX_FUZZ_TMP");
  if (d && *d) return d;
  return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

const char *fuzz_out_path(int slot, const char *suffix) {
  static char paths[8][512];
  char *p = paths[4 + (slot & 3)];
  snprintf(p, 512, "%s/samx-fuzz-%d-out%d%s", fuzz_tmp_dir(), (int)getpid(), slot, suffix);
  return p;
}

const char *fuzz_write_file(int slot, const char *suffix, const uint8_t *data, size_t n) {
  static char paths[4][512];
  char *p = paths[slot & 3];
  snprintf(p, 512, "%s/samx-fuzz-%d-in%d%s", fuzz_tmp_dir(), (int)getpid(), slot, suffix);
  fuzz_write_at(p, data, n);
  return p;
}

void fuzz_write_at(const char *p, const uint8_t *data, size_t n) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) perror(p), abort();
  for (size_t off = 0; off < n;) {
    ssize_t k = write(fd, data + off, n - off);
    if (k <= 0) perror(p), abort();
    off += (size_t)k;
  }
  close(fd);
}

int fuzz_skip(const char *id) {
  const char *list = getenv("SAMX_FUZZ_SKIP");
  if (!list) return 0;
  size_t n = strlen(id);
  for (const char *s = list; (s = strstr(s, id)) != NULL; s += n)
    if ((s == list || s[-1] == ',') && (s[n] == 0 || s[n] == ',')) return 1;
  return 0;
}

void fuzz_quiet(void) {
  static int done;
  if (done || getenv("SAMX_FUZZ_VERBOSE")) return;
  done = 1;
  int fd = open("/dev/null", O_WRONLY);
  if (fd < 0) return;
  fflush(stdout);
  dup2(fd, STDOUT_FILENO);
  close(fd);
}
