// Packers: other dataset layouts into samx dataset files (docs/contracts.md §3).
#ifndef SAMX_DATA_PACKERS_H
#define SAMX_DATA_PACKERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t size;          // resize every image to size x size (bilinear; masks nearest); 0: keep, all must agree
  const char *modality;  // NULL: "unknown"
  double ratios[3];      // train/val/test, split by case (one image = one case)
  uint64_t seed;
} SamxFolderOptions;

// A folder of 2-D images with masks (see `samx pack --help`). Returns 0 or -1 (samx_last_error).
int samx_pack_folder(const char *dir, const char *out, const SamxFolderOptions *o);
// PHiSeg's data_lidc.hdf5: groups train/val/test with images [N,128,128] float, labels [N,128,128,4] uint8.
int samx_pack_phiseg(const char *in, const char *out);
// LIDC crops: {train,val,test}/images/<patient>/z-<pos>_c<k>.png and {train,val,test}/gt/<patient>/z-<pos>_c<k>_l{0..3}.png.
int samx_pack_lidc_crops(const char *dir, const char *out);

#ifdef __cplusplus
}
#endif
#endif
