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

// ---- libhdf5 isolation ----

#include <hdf5.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>

static void read_attr(hid_t a) {
  hid_t type = H5Aget_type(a), space = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n > 0 && n <= (1 << 16)) {
    if (H5Tget_class(type) == H5T_STRING) {  // as samx's h5io.c reads them
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_cset(mt, H5Tget_cset(type));
      if (H5Tis_variable_str(type) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char **tmp = (char **)calloc((size_t)n, sizeof *tmp);
        if (H5Aread(a, mt, tmp) >= 0)
          for (hssize_t i = 0; i < n; i++) H5free_memory(tmp[i]);
        free(tmp);
      } else {
        size_t size = H5Tget_size(type);
        H5Tset_size(mt, size ? size : 1);
        char *tmp = (char *)calloc((size_t)n, size + 1);
        H5Aread(a, mt, tmp);
        free(tmp);
      }
      H5Tclose(mt);
    } else if (H5Tget_class(type) != H5T_VLEN && H5Tget_class(type) != H5T_REFERENCE) {
      hid_t nt = H5Tget_native_type(type, H5T_DIR_ASCEND);
      size_t size = nt >= 0 ? H5Tget_size(nt) : 0;
      if (size && size <= 4096) {
        void *buf = calloc((size_t)n, size);
        H5Aread(a, nt, buf);
        free(buf);
      }
      if (nt >= 0) H5Tclose(nt);
    }
  }
  H5Sclose(space), H5Tclose(type);
}

static herr_t attr_cb(hid_t obj, const char *name, const H5A_info_t *info, void *user) {
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a >= 0) read_attr(a), H5Aclose(a);
  return 0;
}

void (*fuzz_h5_bulk_read_hook)(void);

static void read_dataset(hid_t d) {
  hid_t type = H5Dget_type(d), space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  H5T_class_t cls = H5Tget_class(type);
  hid_t nt = cls == H5T_STRING || cls == H5T_VLEN || cls == H5T_REFERENCE ? -1 : H5Tget_native_type(type, H5T_DIR_ASCEND);
  size_t size = nt >= 0 ? H5Tget_size(nt) : 0;
  if (n > 0 && size && (uint64_t)n * size <= ((uint64_t)1 << 26)) {
    if ((uint64_t)n * size > FUZZ_H5_BULK_BYTES && fuzz_h5_bulk_read_hook) fuzz_h5_bulk_read_hook();
    void *buf = malloc((size_t)n * size);
    H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    free(buf);
  }
  if (nt >= 0) H5Tclose(nt);
  H5Sclose(space), H5Tclose(type);
}

static herr_t visit_cb(hid_t root, const char *name, const H5O_info_t *info, void *user) {
  hid_t o = H5Oopen(root, name, H5P_DEFAULT);
  if (o < 0) return 0;
  H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, attr_cb, NULL);
  if (info->type == H5O_TYPE_DATASET) read_dataset(o);
  H5Oclose(o);
  return 0;
}

// FNV-1a of the input names it in $SAMX_FUZZ_UPSTREAM_DIR (scripts/fuzz.sh computes the same).
static uint64_t input_hash(const uint8_t *data, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

static int upstream_path(char *p, size_t size, const char *kind, uint64_t h) {
  const char *dir = getenv("SAMX_FUZZ_UPSTREAM_DIR");
  if (!dir) return 0;
  snprintf(p, size, "%s/%s-%016llx", dir, kind, (unsigned long long)h);
  return 1;
}

static void save_upstream(const uint8_t *data, size_t n, int hung) {
  char p[700];
  if (upstream_path(p, sizeof p, hung ? "hang" : "crash", input_hash(data, n)) && access(p, F_OK) != 0)
    fuzz_write_at(p, data, n);
}

// An input already set aside is libhdf5's whatever the checker says this time: its out-of-bounds reads
// crash or not with the heap's layout, which differs between the checker and the target.
static int known_upstream(const uint8_t *data, size_t n) {
  char p[700];
  uint64_t h = input_hash(data, n);
  return (upstream_path(p, sizeof p, "crash", h) && access(p, F_OK) == 0) ||
         (upstream_path(p, sizeof p, "hang", h) && access(p, F_OK) == 0);
}

// The checker (h5_checker.c): a supervisor started once that reads paths from a pipe and answers one
// byte per file; a worker it forks for each file reads it as above. libhdf5's crashes and hangs end
// the worker, not the supervisor, so the target does not restart anything after them.
static pid_t checker = -1;
static int to_checker = -1, from_checker = -1;

void fuzz_h5_preflight(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return;
  // by name first, in the order samx's readers open them (schema first): what libhdf5 caches from a
  // damaged global heap depends on which string it reads first; then every attribute, as an
  // iteration can reach what these names do not
  static const char *root_attrs[] = {"schema", "version", "method", "checkpoint", "dataset", "split", "dtype",
                                     "model_config", "input_size", "created_by", "source", "modality"};
  for (size_t i = 0; i < sizeof root_attrs / sizeof *root_attrs; i++) {
    hid_t a = H5Aexists(f, root_attrs[i]) > 0 ? H5Aopen(f, root_attrs[i], H5P_DEFAULT) : -1;
    if (a >= 0) read_attr(a), H5Aclose(a);
  }
  H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, attr_cb, NULL);
  H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_cb, NULL, H5O_INFO_BASIC);
  H5Fclose(f);
}

// The checker is its own program (fuzz_h5_checker beside the target): a forked copy of the target
// would carry libFuzzer's malloc limit and write libhdf5's failures as the target's findings.
static void start_checker(void) {
  int down[2], up[2];
  if (pipe(down) || pipe(up)) perror("pipe"), abort();
  signal(SIGPIPE, SIG_IGN);
  static char exe[4096];
  if (!exe[0]) {
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (k <= 0) perror("readlink"), abort();
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    strcpy(slash + 1, "fuzz_h5_checker");
  }
  // posix_spawn, not fork: glibc spawns with CLONE_VFORK, so the restart after each libhdf5 failure
  // does not copy the page tables of a target holding hundreds of MB under ASan.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, down[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, up[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  int ends[] = {down[0], down[1], up[0], up[1]};
  for (int i = 0; i < 4; i++) posix_spawn_file_actions_addclose(&fa, ends[i]);
  // An allocation beyond the targets' limit is a libhdf5 failure too, not an attempt to swap. Nobody
  // reads the checker's reports (stderr is /dev/null), so ASan must not start llvm-symbolizer for them.
  char *argv[] = {exe, NULL};
  char *env[] = {"ASAN_OPTIONS=detect_leaks=0:max_allocation_size_mb=2048:allocator_may_return_null=0:symbolize=0",
                 "UBSAN_OPTIONS=symbolize=0", "OMP_NUM_THREADS=1", NULL};
  if (posix_spawn(&checker, exe, &fa, NULL, argv, env) != 0) perror("posix_spawn"), abort();
  posix_spawn_file_actions_destroy(&fa);
  close(down[0]), close(up[1]);
  to_checker = down[1], from_checker = up[0];
}

static void stop_checker(void) {
  kill(checker, SIGKILL);
  waitpid(checker, NULL, 0);
  close(to_checker), close(from_checker);
  checker = -1;
}

void fuzz_h5_expect_all_closed(const char *what) {
  ssize_t open_ids = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_ids == 0) return;
  // The next input is written over the same path (same inode): an id still open would make libhdf5
  // share this file's cached metadata with the next file's bytes. That is a samx leak, not libhdf5's.
  fprintf(stderr, "fuzz: %s left %zd HDF5 object(s) open:", what, open_ids);
  hid_t ids[16];
  ssize_t k = H5Fget_obj_ids((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL, 16, ids);
  for (ssize_t i = 0; i < k; i++) {
    char name[256] = "?";
    H5Iget_name(ids[i], name, sizeof name);
    fprintf(stderr, " [type %d %s]", (int)H5Iget_type(ids[i]), name);
  }
  fprintf(stderr, "\n");
  abort();
}

// The checker's verdict on one file: 'k' (libhdf5 read it), 'c' (it crashed), 'h' (it hung). The
// checker enforces its own deadline; a minute without an answer means the checker itself is stuck.
static char checker_verdict(void) {
  struct pollfd pf = {.fd = from_checker, .events = POLLIN};
  char answer = 'h';
  if (poll(&pf, 1, 60000) == 1 && read(from_checker, &answer, 1) != 1) answer = 'c';
  return answer == 'k' || answer == 'h' ? answer : 'c';
}

void fuzz_h5_no_free_lists(void) {
  // libhdf5 recycles its blocks through free lists of its own (H5FL); with them, whether one of its
  // out-of-bounds reads stays inside a recycled block or runs past the end of a malloc'd one depends on
  // what earlier files left there, so the checker and the target disagree. Without them every block
  // comes from malloc, and ASan's interceptors see libhdf5's overflows the same way in both.
  H5set_free_list_limits(0, 0, 0, 0, 0, 0);
}

int fuzz_h5_upstream_fails(const char *path, const uint8_t *data, size_t n) {
  static int off = -1;
  if (off < 0) off = getenv("SAMX_FUZZ_NO_ISOLATION") != NULL, fuzz_h5_no_free_lists();
  if (off) {  // triage: libhdf5's own read of the file, then samx's, in-process, with their stacks
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fuzz_h5_preflight(path);
    return 0;
  }
  if (known_upstream(data, n)) return 1;
  if (checker < 0) start_checker();
  char block[512] = {0};
  snprintf(block, sizeof block, "%s", path);
  int sent = write(to_checker, block, sizeof block) == (ssize_t)sizeof block;
  char verdict = sent ? checker_verdict() : 'c';
  if (verdict == 'k') return 0;
  save_upstream(data, n, verdict == 'h');
  if (!sent || waitpid(checker, NULL, WNOHANG) != 0) stop_checker();  // the supervisor itself is gone
  return 1;
}
