// World-space resampling of NIfTI volumes and their 2-D slices (data/volume.h).
#include "data/volume.h"

#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"

int samx_nifti_dims(const char *path, int64_t dim[4]) {
  if (access(path, R_OK) != 0) return samx_fail("%s: cannot open", path);
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim) return samx_fail("%s: cannot read NIfTI header (truncated, corrupt or not a .nii/.nii.gz file)", path);
  int64_t d[4] = {nim->nx, nim->ny, nim->nz, nim->nt};
  for (int a = 0; a < 4; a++) dim[a] = d[a] > 0 ? d[a] : 1;
  nifti_image_free(nim);
  return 0;
}

int samx_nifti_affine(const char *path, SamxAffine *a) {
  if (access(path, R_OK) != 0) return samx_fail("%s: cannot open", path);
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim) return samx_fail("%s: cannot read NIfTI header (truncated, corrupt or not a .nii/.nii.gz file)", path);
  memset(a, 0, sizeof *a);
  const nifti_dmat44 *m = nim->sform_code > 0 ? &nim->sto_xyz : nim->qform_code > 0 ? &nim->qto_xyz : NULL;
  if (m) {
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 4; c++) a->m[r][c] = m->m[r][c];
  } else {
    // NIfTI "method 1" (no code set): voxel sizes only, as nibabel's get_best_affine.
    double d[3] = {nim->dx, nim->dy, nim->dz};
    for (int r = 0; r < 3; r++) a->m[r][r] = d[r] > 0 ? d[r] : 1.0;
  }
  nifti_image_free(nim);
  SamxAffine inv;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!isfinite(a->m[r][c])) return samx_fail("%s: affine (sform/qform) holds a non-finite value", path);
  if (samx_affine_invert(a, &inv) != 0) return samx_fail("%s: affine (sform/qform) is singular", path);
  return 0;
}

int samx_affine_invert(const SamxAffine *a, SamxAffine *inv) {
  const double(*m)[4] = a->m;
  double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
               m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  if (!(fabs(det) > 1e-12)) return -1;
  double r[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      // cofactor of (j, i) over det: the adjugate
      int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
      r[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
    }
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) inv->m[i][j] = r[i][j];
    inv->m[i][3] = -(r[i][0] * m[0][3] + r[i][1] * m[1][3] + r[i][2] * m[2][3]);
  }
  return 0;
}

double samx_affine_distance(const SamxAffine *a, const SamxAffine *b) {
  double d = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) d = fmax(d, fabs(a->m[r][c] - b->m[r][c]));
  return d;
}

static void apply(const SamxAffine *a, const double p[3], double out[3]) {
  for (int r = 0; r < 3; r++) out[r] = a->m[r][0] * p[0] + a->m[r][1] * p[1] + a->m[r][2] * p[2] + a->m[r][3];
}

void samx_world_grid(const int64_t dim[3], const SamxAffine *a, const double spacing[3], SamxGrid *g) {
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int corner = 0; corner < 8; corner++) {
    double v[3], w[3];
    for (int ax = 0; ax < 3; ax++) v[ax] = (corner >> ax & 1) ? (double)(dim[ax] - 1) : 0.0;
    apply(a, v, w);
    for (int ax = 0; ax < 3; ax++) lo[ax] = fmin(lo[ax], w[ax]), hi[ax] = fmax(hi[ax], w[ax]);
  }
  for (int ax = 0; ax < 3; ax++) {
    g->spacing[ax] = spacing[ax];
    g->origin[ax] = lo[ax];
    // +1e-6: an extent that is an exact multiple of the spacing keeps its last plane despite rounding
    g->dim[ax] = (int64_t)floor((hi[ax] - lo[ax]) / spacing[ax] + 1e-6) + 1;
  }
}

// Index and weight of the lower neighbour along one axis; -1 when c lies outside [0, n-1] by more than tol.
static int64_t locate(double c, int64_t n, double *frac) {
  const double tol = 1e-4;
  if (c < -tol || c > (double)(n - 1) + tol) return -1;
  c = c < 0 ? 0 : c > (double)(n - 1) ? (double)(n - 1) : c;
  int64_t i = (int64_t)floor(c);
  if (i > n - 2) i = n >= 2 ? n - 2 : 0;
  *frac = n >= 2 ? c - (double)i : 0.0;
  return i;
}

void samx_resample_world(const float *in, const int64_t dim[3], const SamxAffine *a, const SamxGrid *g, int nearest,
                         float fill, float *out) {
  SamxAffine inv;
  SAMX_ASSERT(samx_affine_invert(a, &inv) == 0, "resample: singular affine");
  int64_t nx = dim[0], ny = dim[1], sxy = dim[0] * dim[1];
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < g->dim[2]; k++)
    for (int64_t j = 0; j < g->dim[1]; j++)
      for (int64_t i = 0; i < g->dim[0]; i++) {
        double w[3] = {g->origin[0] + g->spacing[0] * (double)i, g->origin[1] + g->spacing[1] * (double)j,
                       g->origin[2] + g->spacing[2] * (double)k};
        double c[3], f[3];
        apply(&inv, w, c);
        int64_t at[3];
        int inside = 1;
        for (int ax = 0; ax < 3 && inside; ax++) inside = (at[ax] = locate(c[ax], dim[ax], &f[ax])) >= 0;
        float v = fill;
        if (inside && nearest) {
          int64_t q[3];
          for (int ax = 0; ax < 3; ax++) q[ax] = at[ax] + (f[ax] >= 0.5 && dim[ax] > 1);
          v = in[q[0] + nx * q[1] + sxy * q[2]];
        } else if (inside) {
          double s = 0;
          for (int corner = 0; corner < 8; corner++) {
            double wt = 1;
            int64_t q[3];
            for (int ax = 0; ax < 3; ax++) {
              int up = corner >> ax & 1;
              q[ax] = at[ax] + (up && dim[ax] > 1);
              wt *= up ? f[ax] : 1 - f[ax];
            }
            if (wt != 0) s += wt * (double)in[q[0] + nx * q[1] + sxy * q[2]];
          }
          v = (float)s;
        }
        out[i + g->dim[0] * (j + g->dim[1] * k)] = v;
      }
  (void)ny;
}

int samx_axis_parse(const char *name) {
  if (!strcmp(name, "sagittal")) return 0;
  if (!strcmp(name, "coronal")) return 1;
  if (!strcmp(name, "axial")) return 2;
  return -1;
}

const char *samx_axis_name(int axis) {
  static const char *const names[] = {"sagittal", "coronal", "axial"};
  return axis >= 0 && axis < 3 ? names[axis] : "?";
}

void samx_slice_shape(const SamxGrid *g, int axis, int64_t *rows, int64_t *cols, int *row_axis, int *col_axis) {
  // axial: rows y, cols x; coronal: rows z, cols x; sagittal: rows z, cols y (all running downwards in world)
  int ra = axis == 2 ? 1 : 2, ca = axis == 0 ? 1 : 0;
  *rows = g->dim[ra], *cols = g->dim[ca];
  if (row_axis) *row_axis = ra;
  if (col_axis) *col_axis = ca;
}

void samx_take_slice(const float *vol, const SamxGrid *g, int axis, int64_t at, int64_t h, int64_t w, float pad,
                     float *out) {
  int64_t rows, cols;
  int ra, ca;
  samx_slice_shape(g, axis, &rows, &cols, &ra, &ca);
  int64_t stride[3] = {1, g->dim[0], g->dim[0] * g->dim[1]};
  // centred: plane row r shows slice row r + r0 (r0 < 0 pads, > 0 crops)
  int64_t r0 = (rows - h) / 2, c0 = (cols - w) / 2;
  if (rows < h) r0 = -((h - rows) / 2);
  if (cols < w) c0 = -((w - cols) / 2);
  for (int64_t r = 0; r < h; r++)
    for (int64_t c = 0; c < w; c++) {
      int64_t sr = r + r0, sc = c + c0;
      float v = pad;
      if (sr >= 0 && sr < rows && sc >= 0 && sc < cols)
        v = vol[at * stride[axis] + (rows - 1 - sr) * stride[ra] + (cols - 1 - sc) * stride[ca]];
      out[r * w + c] = v;
    }
}
