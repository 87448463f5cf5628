// Minimum-cost assignment (Hungarian algorithm, shortest augmenting paths with potentials), O(n^2 m)
// for an n x m cost matrix with n <= m (a taller matrix is solved transposed). Rectangular: every
// row of the smaller side gets a distinct column of the larger one. Used by HM-IoU and by SeqSAM's
// set loss (which matches hypotheses to annotators every step, hence the caller-provided workspace).
#ifndef SAMX_EVAL_HUNGARIAN_H
#define SAMX_EVAL_HUNGARIAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bytes of workspace samx_hungarian needs for a rows x cols problem.
size_t samx_hungarian_workspace_size(int64_t rows, int64_t cols);

// cost: rows x cols, row-major, finite. Writes row_to_col[r] = matched column, or -1 for rows left
// unmatched (only when rows > cols). work: samx_hungarian_workspace_size bytes, 8-byte aligned, or
// NULL to allocate internally. Returns the total cost of the matching.
double samx_hungarian(const double *cost, int64_t rows, int64_t cols, int64_t *row_to_col, void *work);

#ifdef __cplusplus
}
#endif
#endif
