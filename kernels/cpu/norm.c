#include "../norm.h"

// Two layouts, two loop orders, the same per-element math (norm.h): LayerNorm rows are contiguous and
// each row's sums are vector reductions; LayerNorm2d rows are pixels whose C values lie H*W apart, so
// a tile of PIX_TILE pixels is processed together with every load running along the pixels (walking
// one pixel's channels touched a new cache line per element: the decoder's upscaling LayerNorm2d was
// 10% of a ViT-B decode).
#define PIX_TILE 256

// Tile t of the (image, pixel tile) pairs: its first element, its first row (pixel) and its pixels.
typedef struct {
  int64_t at, row, n;
} PixTile;

static int64_t n_tiles(int64_t R, int64_t inner) { return R / inner * ((inner + PIX_TILE - 1) / PIX_TILE); }

static PixTile pix_tile(int64_t t, int64_t C, int64_t inner) {
  const int64_t tiles = (inner + PIX_TILE - 1) / PIX_TILE, o = t / tiles, p0 = (t % tiles) * PIX_TILE;
  return (PixTile){o * C * inner + p0, o * inner + p0, inner - p0 < PIX_TILE ? inner - p0 : PIX_TILE};
}

static void row_fwd(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd, int64_t C,
                    float eps) {
  float s = 0.0f, v = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; c++) s += x[c];
  const float m = s / (float)C;
#pragma omp simd reduction(+ : v)
  for (int64_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
  const float rs = samx_norm_rstd(v / (float)C, eps);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) y[c] = samx_norm_fwd(x[c], m, rs, w[c], b[c]);
  *mean = m;
  *rstd = rs;
}

// Pixels [0, n) of one image's tile (x, y at the tile's first pixel; mean/rstd at its first row).
static void tile_fwd(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd, int64_t C,
                     int64_t inner, int64_t n, float eps) {
  float s[PIX_TILE] = {0}, v[PIX_TILE] = {0};
  for (int64_t c = 0; c < C; c++)
#pragma omp simd
    for (int64_t p = 0; p < n; p++) s[p] += x[c * inner + p];
  for (int64_t p = 0; p < n; p++) mean[p] = s[p] / (float)C;
  for (int64_t c = 0; c < C; c++)
#pragma omp simd
    for (int64_t p = 0; p < n; p++) {
      const float d = x[c * inner + p] - mean[p];
      v[p] += d * d;
    }
  for (int64_t p = 0; p < n; p++) rstd[p] = samx_norm_rstd(v[p] / (float)C, eps);
  for (int64_t c = 0; c < C; c++)
#pragma omp simd
    for (int64_t p = 0; p < n; p++) y[c * inner + p] = samx_norm_fwd(x[c * inner + p], mean[p], rstd[p], w[c], b[c]);
}

void samx_cpu_norm_fwd(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd, int64_t R,
                       int64_t C, int64_t inner, float eps) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t r = 0; r < R; r++) row_fwd(x + r * C, w, b, y + r * C, mean + r, rstd + r, C, eps);
    return;
  }
#pragma omp parallel for schedule(static) if (R * C > 32768)
  for (int64_t t = 0; t < n_tiles(R, inner); t++) {
    const PixTile p = pix_tile(t, C, inner);
    tile_fwd(x + p.at, w, b, y + p.at, mean + p.row, rstd + p.row, C, inner, p.n, eps);
  }
}

static void row_bwd_dx(const float *x, const float *w, const float *gy, float mean, float rstd, float *gx,
                       int64_t C) {
  float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
  for (int64_t c = 0; c < C; c++) {
    const float gw = gy[c] * w[c];
    a += gw;
    b += gw * (x[c] - mean) * rstd;
  }
#pragma omp simd
  for (int64_t c = 0; c < C; c++) gx[c] += samx_norm_dx(x[c], gy[c], w[c], mean, rstd, a / (float)C, b / (float)C);
}

static void tile_bwd_dx(const float *x, const float *w, const float *gy, const float *mean, const float *rstd,
                        float *gx, int64_t C, int64_t inner, int64_t n) {
  float a[PIX_TILE] = {0}, b[PIX_TILE] = {0};
  for (int64_t c = 0; c < C; c++)
#pragma omp simd
    for (int64_t p = 0; p < n; p++) {
      const float gw = gy[c * inner + p] * w[c];
      a[p] += gw;
      b[p] += gw * (x[c * inner + p] - mean[p]) * rstd[p];
    }
  for (int64_t p = 0; p < n; p++) a[p] /= (float)C, b[p] /= (float)C;
  for (int64_t c = 0; c < C; c++)
#pragma omp simd
    for (int64_t p = 0; p < n; p++) {
      const int64_t i = c * inner + p;
      gx[i] += samx_norm_dx(x[i], gy[i], w[c], mean[p], rstd[p], a[p], b[p]);
    }
}

void samx_cpu_norm_bwd_dx(const float *x, const float *w, const float *gy, const float *mean, const float *rstd,
                          float *gx, int64_t R, int64_t C, int64_t inner) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t r = 0; r < R; r++) row_bwd_dx(x + r * C, w, gy + r * C, mean[r], rstd[r], gx + r * C, C);
    return;
  }
#pragma omp parallel for schedule(static) if (R * C > 32768)
  for (int64_t t = 0; t < n_tiles(R, inner); t++) {
    const PixTile p = pix_tile(t, C, inner);
    tile_bwd_dx(x + p.at, w, gy + p.at, mean + p.row, rstd + p.row, gx + p.at, C, inner, p.n);
  }
}

void samx_cpu_norm_bwd_dwdb(const float *x, const float *gy, const float *mean, const float *rstd, float *gw,
                            float *gb, float *part, int64_t R, int64_t C, int64_t inner) {
  int64_t rows = samx_norm_chunk_rows(R), n_chunks = samx_norm_n_chunks(R);
  float *part_w = part, *part_b = part + n_chunks * C;
#pragma omp parallel for collapse(2) schedule(static) if (R * C > 32768)
  for (int64_t k = 0; k < n_chunks; k++)
    for (int64_t c = 0; c < C; c++) {
      int64_t r1 = (k + 1) * rows < R ? (k + 1) * rows : R;
      samx_norm_chunk_colsum(x, gy, mean, rstd, k * rows, r1, c, C, inner, &part_w[k * C + c], &part_b[k * C + c]);
    }
  for (int64_t c = 0; c < C; c++) {
    float sw = 0.0f, sb = 0.0f;
    for (int64_t k = 0; k < n_chunks; k++) sw += part_w[k * C + c], sb += part_b[k * C + c];
    if (gw) gw[c] += sw;
    if (gb) gb[c] += sb;
  }
}
