// fuzz_h5_checker: reads 512-byte NUL-padded paths on stdin, opens each with libhdf5 alone and reads
// every attribute and dataset (fuzz_h5_preflight), answers 'k' on stdout. The HDF5 fuzz targets
// run it to tell libhdf5's own crashes and hangs from samx's (tests/fuzz/README.md).
#include <hdf5.h>
#include <unistd.h>

#include "common.h"

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char path[512];
  while (read(STDIN_FILENO, path, sizeof path) == (ssize_t)sizeof path) {
    path[sizeof path - 1] = 0;
    fuzz_h5_preflight(path);
    if (write(STDOUT_FILENO, "k", 1) != 1) break;
  }
  return 0;
}
