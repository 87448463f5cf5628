// The built-in anatomy data of the few-shot method (samx pack synthetic --kind anatomy): CT-like
// volumes of an abdomen cross-section with three structures, "organ" (a liver-like blob, class 1),
// "vessel" (an aorta-like tube, class 2) and "bone" (a vertebral body with a denser rim, class 3).
// Every case draws its own body size, structure shapes (radii, rotation, a wobble of the outline),
// positions (several mm), extents along z and intensities (contrast phase: organ and vessel HU vary),
// with Gaussian noise of a case-drawn level, on an anisotropic voxel grid (1 x 1 x 2.5 mm by default)
// with a small random tilt of the affine. No fixed template matches two cases, so an atlas (the mean of
// a few labelled slices placed where they were) cannot solve it. Cases go through the volume path of
// `samx pack volumes` (resampling, CT window, slicing), so what the method sees is what real CT gives.
#ifndef SAMX_DATA_SYNTHETIC_ANATOMY_H
#define SAMX_DATA_SYNTHETIC_ANATOMY_H

#include <stdint.h>

#include "data/image_io.h"
#include "data/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t cases;      // volumes (24)
  int64_t nx, ny, nz;  // voxels (80 x 80 x 24)
  double voxel[3];     // mm (1, 1, 2.5)
  double tilt_deg;     // largest rotation of the affine about z (5 degrees)
  uint64_t seed;
} SamxAnatomyParams;

SamxAnatomyParams samx_anatomy_defaults(void);
// Case c: v (HU, float) and its label map lab (0..3), with their shared affine. Deterministic in (p, c).
void samx_anatomy_case(const SamxAnatomyParams *p, int64_t c, SamxVolume *v, SamxVolume *lab, SamxAffine *a);
extern const char *const samx_anatomy_names[4];  // background, organ, vessel, bone

#ifdef __cplusplus
}
#endif
#endif
