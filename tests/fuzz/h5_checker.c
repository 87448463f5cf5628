// fuzz_h5_checker: reads 512-byte NUL-padded paths on stdin, opens each with libhdf5 alone and reads
// every attribute and dataset (fuzz_h5_preflight), answers 'k' on stdout. The HDF5 fuzz targets
// run it to tell libhdf5's own crashes and hangs from samx's (tests/fuzz/README.md).
#include <hdf5.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common.h"

int main(void) {
  // A target killed from outside (Ctrl-C, a CI timeout) must not leave its checker spinning in one of
  // libhdf5's endless loops: die with the parent, and never spend more than 10 s on one file (the
  // target stops waiting after 1 s anyway).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char path[512];
  while (read(STDIN_FILENO, path, sizeof path) == (ssize_t)sizeof path) {
    path[sizeof path - 1] = 0;
    alarm(10);
    fuzz_h5_preflight(path);
    alarm(0);
    if (write(STDOUT_FILENO, "k", 1) != 1) break;
  }
  return 0;
}
