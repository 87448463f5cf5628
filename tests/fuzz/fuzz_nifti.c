// NIfTI volumes through the packers (`samx pack qubiq` / `samx pack brats`): the input's first byte
// picks the packer and its options, the rest is one .nii file used as the image and as the
// segmentation of a one-case folder, so nifticlib's reader, the slicing, the intensity mapping, the
// mask conversion and the resize all see the fuzzed header and data.
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "data/packers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  fuzz_quiet();
  uint8_t mode = data[0];
  static char dir[512], cdir[600], img[700], seg[700];
  snprintf(dir, sizeof dir, "%s/samx-fuzz-%d-nifti", fuzz_tmp_dir(), (int)getpid());
  mkdir(dir, 0700);
  SamxMedicalOptions o = samx_medical_defaults();
  o.binarize = 1;
  o.store_u8 = (mode >> 3) & 1;
  o.size = (mode >> 4) & 1 ? 16 : 0;
  o.intensity.mode = (SamxIntensityMode)((mode >> 5) % 3);
  if (o.intensity.mode != SAMX_INTENSITY_PERCENTILE) o.intensity.a = -100, o.intensity.b = 400;
  const char *out = fuzz_out_path(0, ".h5");
  int rc;
  if (mode & 1) {  // BraTS layout: <case>_seg.nii beside <case>_t1.nii
    o.axis = (mode >> 1) % 3;
    o.keep_empty = (mode >> 6) & 1;
    snprintf(img, sizeof img, "%s/c1_t1.nii", dir);
    snprintf(seg, sizeof seg, "%s/c1_seg.nii", dir);
    fuzz_write_at(img, data + 1, n - 1);
    fuzz_write_at(seg, data + 1, n - 1);
    rc = samx_pack_brats(dir, out, &o);
  } else {  // QUBIQ layout: case01/image.nii + task01_seg01.nii
    snprintf(cdir, sizeof cdir, "%s/case01", dir);
    mkdir(cdir, 0700);
    snprintf(img, sizeof img, "%s/image.nii", cdir);
    snprintf(seg, sizeof seg, "%s/task01_seg01.nii", cdir);
    fuzz_write_at(img, data + 1, n - 1);
    fuzz_write_at(seg, data + 1, n - 1);
    rc = samx_pack_qubiq(dir, out, &o);
  }
  unlink(img), unlink(seg);
  if (rc == 0) unlink(out);
  return 0;
}
