// samx pack volumes against nibabel + numpy/scipy: tests/data/pack_volumes_check.py writes the NIfTI
// volumes, runs the samx binary and recomputes every slice (see its header).
#include <stdio.h>
#include <stdlib.h>

#include "tests/harness.h"
#include "tests/test_util.h"

int main(int argc, char **argv) {
  (void)argc;
  char dir[256];
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_pack_volumes") != 0) return 1;
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s -c 'import nibabel, scipy, h5py' 2>/dev/null", py);
  if (system(cmd) != 0) {
    printf("FAIL: %s lacks nibabel, scipy or h5py: install python3-nibabel python3-scipy python3-h5py "
           "(scripts/install-deps.sh)\n", py);
    return 1;
  }
  snprintf(cmd, sizeof cmd, "%s tests/data/pack_volumes_check.py %s %s", py, samx_test_samx_bin(argv[0]), dir);
  int st = samx_test_exit_status(system(cmd));
  CHECK(st == 0, "pack_volumes_check.py failed (exit %d; see the lines above)", st);
  samx_test_remove_dir(dir);
  return samx_test_summary();
}
