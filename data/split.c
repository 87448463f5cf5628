// Case-level splits: whole cases go to train, val or test, so no patient is seen in two splits.
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/rng.h"

const char *samx_split_name(int split) {
  static const char *names[] = {"train", "val", "test"};
  return split >= 0 && split < SAMX_SPLIT_COUNT ? names[split] : "?";
}

int samx_split_parse(const char *name) {
  if (!strcmp(name, "train")) return SAMX_SPLIT_TRAIN;
  if (!strcmp(name, "val") || !strcmp(name, "validation")) return SAMX_SPLIT_VAL;
  if (!strcmp(name, "test")) return SAMX_SPLIT_TEST;
  return -1;
}

typedef struct {
  const char *id;
  int64_t row;
} CaseRow;

static int cmp_case_row(const void *a, const void *b) {
  const CaseRow *x = (const CaseRow *)a, *y = (const CaseRow *)b;
  int c = strcmp(x->id, y->id);
  return c ? c : (x->row > y->row) - (x->row < y->row);
}

// How many of n_cases go to each split: proportional to ratios, at least one for every split with a
// nonzero ratio while cases last, the remainder to train (or, with no train ratio, to the largest).
static void split_counts(int64_t n_cases, const double ratios[3], int64_t counts[3]) {
  double sum = 0;
  for (int s = 0; s < 3; s++) sum += ratios[s] > 0 ? ratios[s] : 0;
  if (sum <= 0) {
    counts[0] = n_cases, counts[1] = counts[2] = 0;
    return;
  }
  int64_t left = n_cases;
  for (int s = 1; s < 3; s++) {
    double r = ratios[s] > 0 ? ratios[s] / sum : 0;
    counts[s] = (int64_t)(r * (double)n_cases + 0.5);
    if (r > 0 && counts[s] == 0) counts[s] = 1;
    if (counts[s] > left) counts[s] = left;
    left -= counts[s];
  }
  counts[0] = left;
  if (ratios[0] > 0 || left == 0) {
    // Keep one case for train when it asks for some and val/test took all.
    if (ratios[0] > 0 && counts[0] == 0)
      for (int s = 2; s >= 1 && counts[0] == 0; s--)
        if (counts[s] > 1) counts[s]--, counts[0]++;
    return;
  }
  int big = counts[1] >= counts[2] ? 1 : 2;
  counts[big] += left;
  counts[0] = 0;
}

void samx_split_by_case(const char *const *case_ids, int64_t n, const double ratios[3], uint64_t seed,
                        uint8_t *split_out) {
  if (n <= 0) return;
  // Sorting by id makes the assignment depend on the set of ids only, not on row order.
  CaseRow *rows = (CaseRow *)malloc((size_t)n * sizeof *rows);
  for (int64_t i = 0; i < n; i++) rows[i] = (CaseRow){case_ids[i] ? case_ids[i] : "", i};
  qsort(rows, (size_t)n, sizeof *rows, cmp_case_row);
  int64_t *case_of_row = (int64_t *)malloc((size_t)n * sizeof *case_of_row);
  int64_t n_cases = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i > 0 && strcmp(rows[i].id, rows[i - 1].id) != 0) n_cases++;
    case_of_row[rows[i].row] = n_cases;
  }
  n_cases++;
  // Fisher-Yates over the distinct cases.
  int64_t *order = (int64_t *)malloc((size_t)n_cases * sizeof *order);
  for (int64_t c = 0; c < n_cases; c++) order[c] = c;
  uint64_t state = seed;
  for (int64_t c = n_cases - 1; c > 0; c--) {
    int64_t j = (int64_t)(samx_splitmix64(&state) % (uint64_t)(c + 1));
    int64_t t = order[c];
    order[c] = order[j], order[j] = t;
  }
  int64_t counts[3];
  split_counts(n_cases, ratios, counts);
  uint8_t *split_of_case = (uint8_t *)malloc((size_t)n_cases);
  int64_t pos = 0;
  for (int s = 0; s < 3; s++)
    for (int64_t c = 0; c < counts[s]; c++) split_of_case[order[pos++]] = (uint8_t)s;
  for (int64_t i = 0; i < n; i++) split_out[i] = split_of_case[case_of_row[i]];
  free(split_of_case);
  free(order);
  free(case_of_row);
  free(rows);
}
