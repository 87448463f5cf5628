#include "../lora.h"

void samx_cpu_lora_merge(float *w, const float *a, const float *b, int r, int64_t rows, int64_t in, float sign) {
#pragma omp parallel for schedule(static) if (rows * in > 16384)
  for (int64_t row = 0; row < rows; row++)
    for (int64_t col = 0; col < in; col++) w[row * in + col] += sign * samx_lora_delta(a, b, r, in, row, col);
}
