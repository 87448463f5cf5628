// CT/MR volumes in world space: the NIfTI affine, resampling onto a world-aligned grid of fixed
// spacing, and 2-D slices along an anatomical axis (samx pack volumes, samx pack synthetic --kind anatomy).
//
// World space is NIfTI's RAS+ (x grows towards the patient's Right, y Anterior, z Superior), in mm. A resampled volume is stored x fastest like a NIfTI file, on the grid
// origin + spacing * (i, j, k), which covers the bounding box of the source's voxel centres.
#ifndef SAMX_DATA_VOLUME_H
#define SAMX_DATA_VOLUME_H

#include <stdint.h>

#include "data/image_io.h"

#ifdef __cplusplus
extern "C" {
#endif

// Voxel (i, j, k) to world (x, y, z): world = A[:, :3] (i, j, k) + A[:, 3].
typedef struct SamxAffine {
  double m[3][4];
} SamxAffine;

// The file's affine as nibabel's `img.affine`: the sform when sform_code > 0, else the qform when
// qform_code > 0, else diag(pixdim). Returns 0 or -1 (naming the file).
int samx_nifti_affine(const char *path, SamxAffine *a);
// The header's dimensions (nx, ny, nz, nt) without reading the voxels. Returns 0 or -1.
int samx_nifti_dims(const char *path, int64_t dim[4]);
// 0 when the affine is invertible (the inverse in *inv), -1 otherwise.
int samx_affine_invert(const SamxAffine *a, SamxAffine *inv);
// Largest absolute difference of the 12 entries.
double samx_affine_distance(const SamxAffine *a, const SamxAffine *b);

typedef struct {
  int64_t dim[3];
  double spacing[3], origin[3];  // world mm
} SamxGrid;

// The world-aligned grid at `spacing` covering the voxel centres of a dim[0..2] volume under a.
void samx_world_grid(const int64_t dim[3], const SamxAffine *a, const double spacing[3], SamxGrid *g);
// out[g] = the source sampled at every grid point: trilinear (nearest: the voxel whose centre is
// nearest, i.e. floor(c + 0.5) per axis), `fill` where the point lies outside the source's voxel
// centres by more than 1e-4 voxel. out holds g->dim[0]*dim[1]*dim[2] values, x fastest.
void samx_resample_world(const float *in, const int64_t dim[3], const SamxAffine *a, const SamxGrid *g, int nearest,
                         float fill, float *out);

// Slice axes: 0 sagittal (fixed x), 1 coronal (fixed y), 2 axial (fixed z). "sagittal" ... -> 0..2, else -1.
int samx_axis_parse(const char *name);
const char *samx_axis_name(int axis);
// Rows and columns of a slice of the grid along axis, displayed as radiology viewers do: axial rows run
// anterior to posterior and columns from the patient's right to left; coronal rows superior to
// inferior, columns right to left; sagittal rows superior to inferior, columns anterior to posterior.
void samx_slice_shape(const SamxGrid *g, int axis, int64_t *rows, int64_t *cols, int *row_axis, int *col_axis);
// Slice `at` of a grid volume into an h x w plane centred on it (cropped or padded with `pad`).
void samx_take_slice(const float *vol, const SamxGrid *g, int axis, int64_t at, int64_t h, int64_t w, float pad,
                     float *out);

#ifdef __cplusplus
}
#endif
#endif
