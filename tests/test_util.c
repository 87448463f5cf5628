#include "test_util.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int samx_test_device_arg(int argc, char **argv, SamxDevice *dev) {
  *dev = samx_cpu();
  if (argc < 2 || strcmp(argv[1], "cuda") != 0) return 0;
  if (samx_cuda_device_count() == 0) {
    printf("skipped: no CUDA device\n");
    return SAMX_TEST_SKIP;
  }
  *dev = (SamxDevice){SAMX_CUDA, 0};
  return 0;
}

const SamxSTEntry *samx_test_st_get(const SamxSafetensors *st, const char *fmt, const char *a, const char *b) {
  char key[256];
  snprintf(key, sizeof key, fmt, a, b);
  return samx_st_find(st, key);
}

double samx_test_max_abs_diff(SamxTensor *t, const SamxSTEntry *want) {
  if (!want || want->numel != t->numel) return INFINITY;
  float *got = (float *)malloc(samx_nbytes(t)), *w = samx_st_to_f32(want);
  samx_tensor_read_f32(t, got);
  double m = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    double d = fabs((double)got[i] - w[i]);
    if (!(d <= m)) m = d == d ? d : INFINITY;
  }
  free(got);
  free(w);
  return m;
}

const char *samx_test_path(const char *dir, const char *rel) {
  static char buf[8][1024];
  static int slot;
  slot = (slot + 1) % 8;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, rel);
  return buf[slot];
}

void samx_test_make_parent(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
}

int samx_test_mkdtemp(char *dir, size_t n, const char *name) {
  if (snprintf(dir, n, "/tmp/%s_XXXXXX", name) >= (int)n) return -1;
  return mkdtemp(dir) ? 0 : -1;
}

void samx_test_remove_dir(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
}

int samx_test_exit_status(int system_rc) { return WIFEXITED(system_rc) ? WEXITSTATUS(system_rc) : -1; }

static const char *reference_python(void) {
  const char *venv = getenv("SAMX_VENV_PYTHON"), *node = getenv("SAMX_PYTHON");
  if (venv && *venv) {
    if (access(venv, X_OK) == 0) return venv;
    printf("FAIL SAMX_VENV_PYTHON=%s is not an executable\n", venv);
    return NULL;
  }
  if (access(".venv/bin/python", X_OK) == 0) return ".venv/bin/python";
  if (node && *node && access(node, X_OK) == 0) return node;
  printf("FAIL no reference python: run scripts/setup-venv.sh (or set SAMX_VENV_PYTHON to a python with PyTorch, "
         "transformers and segment_anything)\n");
  return NULL;
}

int samx_test_reference_script(const char *script, char *dir, size_t n, const char *name) {
  const char *python = reference_python();
  dir[0] = 0;
  if (!python) return -1;
  if (samx_test_mkdtemp(dir, n, name)) {
    printf("FAIL cannot create a temporary folder for %s\n", script);
    dir[0] = 0;
    return -1;
  }
  char cmd[1536];
  snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", python, script, dir);
  int rc = samx_test_exit_status(system(cmd));
  CHECK(rc == 0, "%s exited with status %d", cmd, rc);
  if (rc == 0) return 0;
  samx_test_remove_dir(dir);
  dir[0] = 0;
  return -1;
}

const char *samx_test_samx_bin(const char *argv0) {
  static char bin[4096];
  const char *env = getenv("SAMX_BIN");
  if (env && *env) {
    snprintf(bin, sizeof bin, "%s", env);
    return bin;
  }
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    snprintf(exe, sizeof exe, "%s", argv0);
  else
    exe[n] = 0;
  snprintf(bin, sizeof bin, "%s/samx", dirname(exe));
  if (access(bin, X_OK) != 0) snprintf(bin, sizeof bin, "build/samx");
  return bin;
}

int samx_test_run_samx(const char *dir, int in_dir, char *err, size_t err_size, const char *fmt, ...) {
  char args[8192], cmd[16384], err_path[1024];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  err[0] = 0;
  if (len < 0 || len >= (int)sizeof args) return -1;
  snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
  const char *bin = samx_test_samx_bin("");
  len = in_dir ? snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > stdout.txt 2> '%s'", dir, bin, args, err_path)
               : snprintf(cmd, sizeof cmd, "'%s' %s > '%s/stdout.txt' 2> '%s'", bin, args, dir, err_path);
  if (len >= (int)sizeof cmd) return -1;
  int st = system(cmd);
  FILE *f = fopen(err_path, "rb");
  if (f) {
    size_t got = fread(err, 1, err_size - 1, f);
    err[got] = 0;
    fclose(f);
  }
  return samx_test_exit_status(st);
}

float samx_test_get_elem(SamxTensor *t, int i) {
  float *v = (float *)malloc(samx_nbytes(t)), x;
  samx_tensor_read_f32(t, v);
  x = v[i];
  free(v);
  return x;
}

void samx_test_set_elem(SamxTensor *t, int i, float x) {
  float *v = (float *)malloc(samx_nbytes(t));
  samx_tensor_read_f32(t, v);
  v[i] = x;
  samx_tensor_write_f32(t, v);
  free(v);
}

int samx_test_run_child(void (*fn)(void *), void *arg, char *msg, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t got;
  while (len < cap - 1 && (got = read(fds[0], msg + len, cap - 1 - len)) > 0) len += (size_t)got;
  msg[len] = 0;
  close(fds[0]);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return status;
}
