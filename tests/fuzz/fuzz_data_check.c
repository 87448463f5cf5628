// `samx data check FILE.h5` and `samx data info FILE.h5` on arbitrary file bytes: the schema
// attribute routes the file to the samx-dataset reader (open + samx_dataset_scan of every sample) or
// the samx-predictions reader (open + every mask + the dataset check). libhdf5 parses the bytes first.
#include <stdint.h>
#include <stdio.h>

#include "common.h"

int samx_cmd_data(int argc, char **argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  fuzz_quiet();
  const char *path = fuzz_write_file(0, ".h5", data, n);
  if (fuzz_h5_upstream_fails(path, data, n)) return 0;
  char a0[] = "data", check[] = "check", info[] = "info", file[512];
  snprintf(file, sizeof file, "%s", path);
  char *argv_check[] = {a0, check, file, NULL}, *argv_info[] = {a0, info, file, NULL};
  if (samx_cmd_data(3, argv_check) == 0) samx_cmd_data(3, argv_info);
  fuzz_h5_expect_all_closed("samx data check/info");
  return 0;
}
