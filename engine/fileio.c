#define _GNU_SOURCE
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

void samx_tmp_path(const char *path, char *buf, size_t n) { snprintf(buf, n, "%s.tmp.%d", path, (int)getpid()); }

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int samx_commit_tmp(const char *tmp, const char *path) {
  if (fsync_path(tmp, O_RDONLY) != 0) return samx_fail("%s: fsync failed: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return samx_fail("%s: rename from %s failed: %s", path, tmp, strerror(e));
  }
  char *copy = strdup(path);
  fsync_path(dirname(copy), O_RDONLY | O_DIRECTORY);  // best effort: some filesystems refuse
  free(copy);
  return 0;
}

int samx_write_file_atomic(const char *path, const void *data, size_t n) {
  char tmp[4096];
  samx_tmp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) return samx_fail("%s: cannot create: %s", tmp, strerror(errno));
  size_t w = fwrite(data, 1, n, f);
  int closed = fclose(f);
  if (w != n || closed != 0) {
    unlink(tmp);
    return samx_fail("%s: write failed (disk full?)", path);
  }
  return samx_commit_tmp(tmp, path);
}

char *samx_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    samx_fail("%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = (char *)malloc((size_t)len + 1);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    free(buf);
    samx_fail("%s: read failed", path);
    return NULL;
  }
  fclose(f);
  buf[len] = 0;
  if (size) *size = (size_t)len;
  return buf;
}
