#define _GNU_SOURCE
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static void samx_tmp_name(const char *path, char *buf, size_t n);

// Existing, and neither a regular file nor a directory (after following links): written in place.
static int is_special(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

// The file a rename must replace for path: path itself unless it is a symlink, else the end of the
// link chain (which need not exist yet). At most 40 links, like the kernel.
static void final_target(const char *path, char *out, size_t n) {
  char cur[PATH_MAX];
  snprintf(cur, sizeof cur, "%s", path);
  for (int hops = 0; hops < 40; hops++) {
    struct stat st;
    if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
    char link[PATH_MAX];
    ssize_t len = readlink(cur, link, sizeof link - 1);
    if (len < 0) break;
    link[len] = 0;
    if (link[0] == '/') {
      snprintf(cur, sizeof cur, "%s", link);
    } else {  // relative to the directory holding the link
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%s", cur);
      if (snprintf(cur, sizeof cur, "%s/%s", dirname(dir), link) >= (int)sizeof cur) break;
    }
  }
  snprintf(out, n, "%s", cur);
}

// Temporary files handed out and not yet committed: a fatal error (SAMX_ASSERT's abort) removes them,
// so that only SIGKILL or a power cut can leave one (and --resume or the next run cleans those).
#define MAX_LIVE_TMP 32
static char live_tmp[MAX_LIVE_TMP][PATH_MAX + 64];
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;

static void live_add(const char *tmp) {
  pthread_mutex_lock(&live_mu);
  for (int i = 0; i < MAX_LIVE_TMP; i++)
    if (!live_tmp[i][0]) {
      snprintf(live_tmp[i], sizeof live_tmp[i], "%s", tmp);
      break;
    }
  pthread_mutex_unlock(&live_mu);
}

static void live_remove(const char *tmp) {
  pthread_mutex_lock(&live_mu);
  for (int i = 0; i < MAX_LIVE_TMP; i++)
    if (!strcmp(live_tmp[i], tmp)) live_tmp[i][0] = 0;
  pthread_mutex_unlock(&live_mu);
}

void samx_remove_live_tmp(void) {
  for (int i = 0; i < MAX_LIVE_TMP; i++)  // no lock: called on the way to abort()
    if (live_tmp[i][0]) unlink(live_tmp[i]);
}

void samx_tmp_path(const char *path, char *buf, size_t n) {
  samx_tmp_name(path, buf, n);
  live_add(buf);
}

static void samx_tmp_name(const char *path, char *buf, size_t n) {
  if (is_special(path)) {
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", path);
    const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    // Numbered: two outputs of one process may both be /dev/null.
    static _Atomic int serial = 0;
    snprintf(buf, n, "%s/samx-%d-%d-%s.tmp", dir, (int)getpid(), serial++, basename(base));
    return;
  }
  char target[PATH_MAX];
  final_target(path, target, sizeof target);
  snprintf(buf, n, "%s.tmp.%d", target, (int)getpid());
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

// Copies tmp's bytes into the special file path (a FIFO blocks here until it has a reader).
static int stream_into(const char *tmp, const char *path) {
  int in = open(tmp, O_RDONLY);
  int out = in < 0 ? -1 : open(path, O_WRONLY);
  int rc = 0;
  if (in < 0 || out < 0) {
    rc = samx_fail("%s: cannot open for writing: %s", path, strerror(errno));
  } else {
    char buf[1 << 16];
    ssize_t r;
    while (rc == 0 && (r = read(in, buf, sizeof buf)) > 0)
      for (ssize_t done = 0; done < r && rc == 0;) {
        ssize_t w = write(out, buf + done, (size_t)(r - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = samx_fail("%s: write failed: %s", path, strerror(errno));
        else done += w;
      }
  }
  if (out >= 0 && close(out) != 0 && rc == 0) rc = samx_fail("%s: write failed: %s", path, strerror(errno));
  if (in >= 0) close(in);
  unlink(tmp);
  return rc;
}

int samx_commit_tmp(const char *tmp, const char *path) {
  live_remove(tmp);
  if (is_special(path)) return stream_into(tmp, path);
  char target[PATH_MAX];
  final_target(path, target, sizeof target);
  if (fsync_path(tmp, O_RDONLY) != 0) {
    int e = errno;
    unlink(tmp);
    return samx_fail("%s: fsync failed: %s", tmp, strerror(e));
  }
  if (rename(tmp, target) != 0) {
    int e = errno;
    unlink(tmp);
    return samx_fail("%s: rename from %s failed: %s", target, tmp, strerror(e));
  }
  fsync_path(dirname(target), O_RDONLY | O_DIRECTORY);  // best effort: some filesystems refuse
  return 0;
}

int samx_write_file_atomic(const char *path, const void *data, size_t n) {
  char tmp[PATH_MAX + 64];
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
  char *buf = len < 0 ? NULL : (char *)malloc((size_t)len + 1);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    free(buf);
    samx_fail("%s: read failed%s", path, len < 0 ? " (not a regular file)" : "");
    return NULL;
  }
  fclose(f);
  buf[len] = 0;
  if (size) *size = (size_t)len;
  return buf;
}

int samx_check_output_not_input(const char *what, const char *out, const char *const *inputs, int n) {
  struct stat so;
  if (!out || stat(out, &so) != 0 || !S_ISREG(so.st_mode)) return 0;  // new, or streamed into: no input lost
  for (int i = 0; i < n; i++) {
    struct stat si;
    if (!inputs[i] || stat(inputs[i], &si) != 0) continue;
    if (si.st_dev == so.st_dev && si.st_ino == so.st_ino)
      return samx_fail("%s %s is the input %s: writing it would replace that input; choose another output path",
                       what, out, inputs[i]);
  }
  return 0;
}

int samx_remove_stale_tmp(const char *path) {
  char target[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
  final_target(path, target, sizeof target);
  snprintf(dir, sizeof dir, "%s", target);
  snprintf(base, sizeof base, "%s", target);
  const char *d = dirname(dir), *b = basename(base);
  size_t blen = strlen(b);
  DIR *dh = opendir(d);
  if (!dh) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(dh))) {
    if (strncmp(e->d_name, b, blen) || strncmp(e->d_name + blen, ".tmp.", 5)) continue;
    char *end;
    long pid = strtol(e->d_name + blen + 5, &end, 10);
    if (*end || pid <= 0) continue;
    if (pid == getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;  // a live writer's
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s/%s", d, e->d_name);
    if (unlink(full) == 0) removed++;
  }
  closedir(dh);
  return removed;
}
