// Synthetic CT anatomy volumes (data/synthetic_anatomy.h).
#include "data/synthetic_anatomy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"

const char *const samx_anatomy_names[4] = {"background", "organ", "vessel", "bone"};

SamxAnatomyParams samx_anatomy_defaults(void) {
  SamxAnatomyParams p = {.cases = 24, .nx = 80, .ny = 80, .nz = 24, .voxel = {1, 1, 2.5}, .tilt_deg = 5, .seed = 0};
  return p;
}

typedef struct {
  uint64_t seed, c, n;
} Draw;

static double uni(Draw *d, double lo, double hi) { return lo + (hi - lo) * samx_unit(samx_hash4(d->seed, d->c, 1, d->n++)); }

static double gauss(Draw *d) {
  double u = fmax(uni(d, 0, 1), 1e-12), v = uni(d, 0, 1);
  return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

// An ellipse (centre, radii, angle) whose radius wobbles with the angle: r(θ)(1 + a2 cos 2θ' + a3 cos 3θ').
typedef struct {
  double cx, cy, rx, ry, ang, a2, a3, ph2, ph3;
} Blob;

static Blob blob(Draw *d, double cx, double cy, double rx, double ry, double jitter_mm, double scale) {
  Blob b;
  b.cx = cx + uni(d, -jitter_mm, jitter_mm), b.cy = cy + uni(d, -jitter_mm, jitter_mm);
  b.rx = rx * uni(d, 1 - scale, 1 + scale), b.ry = ry * uni(d, 1 - scale, 1 + scale);
  b.ang = uni(d, -0.5, 0.5), b.a2 = uni(d, 0, 0.12), b.a3 = uni(d, 0, 0.08);
  b.ph2 = uni(d, 0, 2 * M_PI), b.ph3 = uni(d, 0, 2 * M_PI);
  return b;
}

// < 1 inside: the normalised radius of (x, y) in mm.
static double blob_r(const Blob *b, double x, double y, double shrink) {
  double dx = x - b->cx, dy = y - b->cy, c = cos(b->ang), s = sin(b->ang);
  double u = (c * dx + s * dy) / b->rx, v = (-s * dx + c * dy) / b->ry;
  double t = atan2(v, u);
  double wob = 1 + b->a2 * cos(2 * t + b->ph2) + b->a3 * cos(3 * t + b->ph3);
  return sqrt(u * u + v * v) / (wob * shrink);
}

void samx_anatomy_case(const SamxAnatomyParams *p, int64_t c, SamxVolume *v, SamxVolume *lab, SamxAffine *a) {
  Draw d = {p->seed, (uint64_t)c, 0};
  int64_t nx = p->nx, ny = p->ny, nz = p->nz;
  size_t n = (size_t)(nx * ny * nz);
  memset(v, 0, sizeof *v), memset(lab, 0, sizeof *lab);
  for (int ax = 0; ax < 3; ax++) v->spacing[ax] = lab->spacing[ax] = p->voxel[ax];
  int64_t dim[4] = {nx, ny, nz, 1};
  memcpy(v->dim, dim, sizeof dim), memcpy(lab->dim, dim, sizeof dim);
  v->data = (float *)malloc(n * sizeof(float)), lab->data = (float *)malloc(n * sizeof(float));
  // Affine: voxel sizes, a small rotation about z, origin at the volume's centre.
  double th = uni(&d, -p->tilt_deg, p->tilt_deg) * M_PI / 180, ct = cos(th), st = sin(th);
  memset(a, 0, sizeof *a);
  a->m[0][0] = ct * p->voxel[0], a->m[0][1] = -st * p->voxel[1];
  a->m[1][0] = st * p->voxel[0], a->m[1][1] = ct * p->voxel[1];
  a->m[2][2] = p->voxel[2];
  double ex = (nx - 1) * p->voxel[0] / 2, ey = (ny - 1) * p->voxel[1] / 2;
  a->m[0][3] = -(ct * ex - st * ey), a->m[1][3] = -(st * ex + ct * ey), a->m[2][3] = -(nz - 1) * p->voxel[2] / 2;
  // Body and structures in the in-plane mm frame of the voxel grid (centred), so the tilt is real.
  double W = nx * p->voxel[0], H = ny * p->voxel[1], Z = nz * p->voxel[2];
  Blob body = blob(&d, 0, 0, 0.42 * W, 0.34 * H, 2, 0.08);
  Blob organ = blob(&d, 0.15 * W, 0.0 * H, 0.16 * W, 0.13 * H, 5, 0.25);  // patient's right (+x), like a liver
  Blob vessel = blob(&d, -0.03 * W, -0.08 * H, 0.06 * W, 0.06 * W, 4, 0.2);  // anterior to the spine
  Blob bone = blob(&d, -0.02 * W, -0.22 * H, 0.08 * W, 0.065 * H, 3, 0.15);  // posterior (-y)
  vessel.a2 *= 0.3, vessel.a3 *= 0.3;
  double organ_z0 = uni(&d, 0.05, 0.3) * Z, organ_z1 = uni(&d, 0.7, 0.95) * Z;  // the organ's cranio-caudal extent
  double organ_tilt = uni(&d, -0.25, 0.25), vessel_drift = uni(&d, -0.15, 0.15);
  double hu_fat = uni(&d, -120, -80), hu_muscle = uni(&d, 20, 50), hu_organ = uni(&d, 90, 150);
  double hu_vessel = uni(&d, 160, 230), hu_bone = uni(&d, 250, 450), hu_cortex = uni(&d, 700, 1100);
  double noise = uni(&d, 8, 20);
  for (int64_t k = 0; k < nz; k++) {
    double z = (k + 0.5) * p->voxel[2];
    // the organ narrows towards its ends; the vessel drifts sideways along z
    double zt = (z - organ_z0) / (organ_z1 - organ_z0);
    double organ_shrink = zt > 0 && zt < 1 ? sqrt(fmax(0, 1 - pow(2 * zt - 1, 4))) : 0;
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        double x = (i + 0.5) * p->voxel[0] - W / 2, y = (j + 0.5) * p->voxel[1] - H / 2;
        size_t at = (size_t)(i + nx * (j + ny * k));
        double hu = -1000, r;
        int l = 0;
        if ((r = blob_r(&body, x, y, 1)) < 1) hu = r > 0.85 ? hu_fat : hu_muscle;
        Blob ov = organ;
        ov.cx += organ_tilt * (z - Z / 2);
        if (organ_shrink > 0.05 && blob_r(&ov, x, y, organ_shrink) < 1) hu = hu_organ, l = 1;
        Blob vv = vessel;
        vv.cx += vessel_drift * (z - Z / 2);
        if (blob_r(&vv, x, y, 1) < 1) hu = hu_vessel, l = 2;
        if ((r = blob_r(&bone, x, y, 1)) < 1) hu = r > 0.8 ? hu_cortex : hu_bone, l = 3;
        v->data[at] = (float)(hu + noise * gauss(&(Draw){p->seed ^ 0x5eed, (uint64_t)c, 2 * at}));
        lab->data[at] = (float)l;
      }
  }
}
