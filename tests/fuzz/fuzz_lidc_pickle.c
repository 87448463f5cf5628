// `samx pack lidc-pickle data_lidc.pickle out.h5`: the restricted unpickler reads the whole file
// (numpy arrays through numpy's reconstruct, dicts, lists), the records are checked and written.
#include <stdint.h>
#include <unistd.h>

#include "common.h"
#include "data/packers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  fuzz_quiet();
  const char *in = fuzz_write_file(0, ".pickle", data, n), *out = fuzz_out_path(0, ".h5");
  SamxMedicalOptions o = samx_medical_defaults();
  if (samx_pack_lidc_pickle(in, out, &o) == 0) unlink(out);
  return 0;
}
