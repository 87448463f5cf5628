// The built-in synthetic dataset: CT-like slices with one lesion each whose boundary is genuinely
// ambiguous (a soft edge), annotated by K raters with distinct styles, as in LIDC:
//   k % 4 == 0  tight: marks only the lesion's bright core
//   k % 4 == 1  generous: includes most of the soft edge
//   k % 4 == 2  irregular: a jittered, wobbly outline around the middle of the edge
//   k % 4 == 3  sometimes nothing: skips some lesions (small ones more often), else marks the middle
// (annotators k >= 4 repeat the styles with their own threshold and jitter). Cases are runs of
// slices_per_case consecutive slices through one lesion, so case-level splits are meaningful.
// Every sample is a pure function of (params, sample index): deterministic by seed.
#ifndef SAMX_DATA_SYNTHETIC_H
#define SAMX_DATA_SYNTHETIC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t n;                // samples
  int64_t size;             // H = W
  int64_t k;                // annotators
  int64_t slices_per_case;  // consecutive slices of one case
  uint64_t seed;
} SamxSyntheticParams;

SamxSyntheticParams samx_synthetic_defaults(void);  // 256 samples, 128x128, K = 4, 8 slices per case, seed 0
// Sample i: image [size*size] uint8 and masks [k*size*size] 0/1.
void samx_synthetic_sample(const SamxSyntheticParams *p, int64_t i, uint8_t *image, uint8_t *masks);
// Writes the dataset file (splits 70/15/15 by case, seeded by p->seed). Returns 0 or -1.
int samx_pack_synthetic(const char *out, const SamxSyntheticParams *p);

#ifdef __cplusplus
}
#endif
#endif
