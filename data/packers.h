// Packers: other dataset layouts into samx dataset files (docs/contracts.md §3).
#ifndef SAMX_DATA_PACKERS_H
#define SAMX_DATA_PACKERS_H

#include <stdint.h>

#include "data/image_io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t size;          // resize every image to size x size (bilinear; masks nearest); 0: keep, all must agree
  const char *modality;  // NULL: "unknown"
  double ratios[3];      // train/val/test, split by case (one image = one case)
  uint64_t seed;
  int binarize;          // masks with values other than 0/1 or 0/255: threshold at 128 instead of failing
} SamxFolderOptions;

// A folder of 2-D images with masks (see `samx pack --help`). Returns 0 or -1 (samx_last_error).
int samx_pack_folder(const char *dir, const char *out, const SamxFolderOptions *o);
// PHiSeg's data_lidc.hdf5: groups train/val/test with images [N,128,128] float, labels [N,128,128,4] uint8.
int samx_pack_phiseg(const char *in, const char *out);
// LIDC crops: {train,val,test}/images/<patient>/z-<pos>_c<k>.png and {train,val,test}/gt/<patient>/z-<pos>_c<k>_l{0..3}.png.
int samx_pack_lidc_crops(const char *dir, const char *out);

// Options of the medical packers (qubiq, brats, lidc-pickle).
typedef struct {
  double ratios[3];  // train/val/test, split by case
  uint64_t seed;
  int binarize;               // masks with values other than 0/1: threshold at 0.5 instead of failing
  SamxIntensity intensity;    // qubiq, brats: how intensities map to [0, 1]
  int store_u8;               // qubiq, brats: store round(255 * v) as uint8 instead of float32 [0, 1]
  const char *modality;       // NULL: the packer's default ("MR" for brats, "unknown" for qubiq)
  int64_t size;               // brats: resize slices to size x size (0: keep); qubiq: 0 (keep) or resize
  // qubiq
  int task;      // taskNN_segMM files of this task (default 1)
  int channel;   // which channel of a multi-channel image (default 0)
  // brats
  const char *brats_modality;  // "t1" (default), "t1ce", "t2", "flair"
  int axis;                    // slice axis of the NIfTI volume: 0 (x), 1 (y), 2 (z, axial; default)
  int keep_empty;              // keep slices without tumour
} SamxMedicalOptions;
SamxMedicalOptions samx_medical_defaults(void);
// Shared by the medical packers: label values to a 0/1 mask. Values must be exactly 0 or 1 unless
// binarize (then v >= 0.5 is 1). Returns 0, or -1 with *bad the index of the first other value.
int samx_mask_from_values(const float *v, size_t n, int binarize, uint8_t *out, size_t *bad);
// The writer of a medical dataset of size x size (o->size, else h x w) slices with K masks: float32
// [0, 1] or uint8 images as o->store_u8 says, the intensity mapping and binarisation as attributes.
struct SamxDatasetWriter *samx_medical_create(const char *out, const SamxMedicalOptions *o, int64_t h, int64_t w,
                                              int64_t k, const char *source, const char *modality);
// Appends an h x w image already mapped to [0, 1] and its K h x w masks (0/1), resized to the
// writer's size (bilinear / nearest). spacing: row, column in mm before resizing.
int samx_medical_append(struct SamxDatasetWriter *wr, const SamxMedicalOptions *o, const float *image, int64_t h,
                        int64_t w, int64_t k, const uint8_t *masks, const uint8_t *valid, const char *case_id,
                        const double spacing[2]);

// QUBIQ: DIR/<...>/caseNN/image.nii.gz + taskTT_segMM.nii.gz (DIR the task folder or its Training
// folder); 2-D images; raters sorted by number; K the largest count, annotator_valid 0 where fewer.
int samx_pack_qubiq(const char *dir, const char *out, const SamxMedicalOptions *o);
// BraTS 2017-style: every <case>_seg.nii.gz under DIR with <case>_<modality>.nii.gz beside it; slices
// along o->axis; K = 3 nested regions: enhancing tumour (label 4), tumour core (1, 4), whole tumour (1, 2, 4).
int samx_pack_brats(const char *dir, const char *out, const SamxMedicalOptions *o);
// data_lidc.pickle: a dict of records {image [H,W] float in [0,1], masks: list of K [H,W] arrays,
// series_uid}; split by series uid.
int samx_pack_lidc_pickle(const char *in, const char *out, const SamxMedicalOptions *o);

// ---- CT/MR volumes (samx pack volumes; contracts §7) ----
typedef struct {
  int axis;               // slice axis: 0 sagittal, 1 coronal, 2 axial (data/volume.h)
  double spacing[3];      // resampled grid spacing along world x, y, z in mm
  SamxIntensity intensity;  // CT: SAMX_INTENSITY_CLIP with the HU window; MR: percentiles of nonzero voxels
  int n_ids;              // selected label ids (classes 1..n_ids in this order); 0: every value is its own class
  int ids[255];
  const char *names[255]; // their names (NULL: label_<id>)
  int64_t size;           // slices centred in size x size (cropped or padded); 0: the largest extent of all cases
  int keep_empty;         // keep slices without a selected label
  int masks_per_label;    // /masks holds K = n_ids masks (class k + 1 each) instead of K = 1 (their union)
  double ratios[3];       // train/val/test by case
  uint64_t seed;
  const char *modality;   // NULL: "CT"
} SamxVolumeOptions;
SamxVolumeOptions samx_volume_defaults(void);

struct SamxAffine;
struct SamxVolumePacker;
typedef struct SamxVolumePacker SamxVolumePacker;
// The shared volume path: create with the slice size, add cases (image and label map with their
// affines; the paths name them in errors), finish (splits by case, renames). Return NULL / -1 on failure.
SamxVolumePacker *samx_volume_packer_create(const char *out, const SamxVolumeOptions *o, int64_t h, int64_t w,
                                            const char *source);
int samx_volume_packer_add(SamxVolumePacker *p, const SamxVolume *img, const struct SamxAffine *ai, const char *img_path,
                           const SamxVolume *lab, const struct SamxAffine *al, const char *lab_path, const char *case_id);
int samx_volume_packer_finish(SamxVolumePacker *p, const char *what);  // frees p
void samx_volume_packer_abort(SamxVolumePacker *p);
// IMAGES/<case>[_0000].nii[.gz] with LABELS/<case>.nii[.gz] (the MSD / nnU-Net / AMOS layout).
int samx_pack_volumes(const char *images, const char *labels, const char *out, const SamxVolumeOptions *o);

#ifdef __cplusplus
}
#endif
#endif
