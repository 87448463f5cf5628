// torch.save checkpoints read natively: values against PyTorch's own contiguous copies, nesting,
// and hostile archives that must fail cleanly without executing anything.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"

static char dir[256];

static void path_of(char *buf, size_t n, const char *file) { snprintf(buf, n, "%s/%s", dir, file); }

static void check_matches_expected(const char *file) {
  char p[512], e[512];
  path_of(p, sizeof p, file);
  path_of(e, sizeof e, "expected.safetensors");
  SamxTorchCkpt ck;
  SamxSafetensors want;
  int rc = samx_torch_load(&ck, p);
  CHECK(rc == 0, "%s: %s", file, samx_last_error());
  if (rc) return;
  CHECK(samx_st_open(&want, e) == 0, "expected values: %s", samx_last_error());
  CHECK(ck.n == want.n, "%s: %d tensors, expected %d", file, ck.n, want.n);
  for (int i = 0; i < want.n; i++) {
    const SamxSTEntry *w = &want.entries[i], *g = samx_torch_find(&ck, w->name);
    CHECK(g != NULL, "%s: tensor %s missing", file, w->name);
    if (!g) continue;
    int same = g->dtype == w->dtype && g->ndim == w->ndim && g->nbytes == w->nbytes &&
               !memcmp(g->shape, w->shape, sizeof(int64_t) * (size_t)w->ndim) && !memcmp(g->data, w->data, w->nbytes);
    CHECK(same, "%s: tensor %s differs from PyTorch's contiguous copy", file, w->name);
  }
  samx_st_close(&want);
  samx_torch_free(&ck);
}

static void check_rejected(const char *file, const char *needle) {
  char p[512];
  path_of(p, sizeof p, file);
  SamxTorchCkpt ck;
  samx_clear_error();
  int rc = samx_torch_load(&ck, p);
  CHECK(rc == -1, "%s was accepted", file);
  CHECK(strstr(samx_last_error(), needle) != NULL, "%s: error '%s' does not mention '%s'", file, samx_last_error(),
        needle);
  CHECK(strstr(samx_last_error(), file) != NULL, "%s: error does not name the file: %s", file, samx_last_error());
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/samx_test_torch_ckpt.%d", (int)getpid());
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s tests/engine/make_torch_ckpts.py %s > /dev/null", py, dir);
  if (system(cmd) != 0) {
    printf("FAIL: could not generate checkpoints with PyTorch (%s)\n", cmd);
    return 1;
  }
  check_matches_expected("plain.pth");
  check_matches_expected("nested_model.pth");
  check_matches_expected("nested_state_dict.pth");
  check_rejected("evil_global.pth", "system");
  char pwned[512];
  path_of(pwned, sizeof pwned, "PWNED");
  CHECK(access(pwned, F_OK) != 0, "the hostile pickle executed code");
  check_rejected("truncated.pth", "zip");
  check_rejected("short_storage.pth", "storage");
  check_rejected("offset_oob.pth", "out of range");
  check_rejected("not_a_dict.pth", "not a state dict");
  check_rejected("non_tensor.pth", "'step' is a int, not a tensor");
  check_rejected("does_not_exist.pth", "does_not_exist");
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
