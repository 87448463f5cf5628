// Classes of /labels (data/labels.h).
#include "data/labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

int samx_labels_parse(SamxDataset *ds, const char *spec, int *ids, int *n) {
  *n = 0;
  if (!spec || !spec[0]) {
    ids[(*n)++] = 0;
    return 0;
  }
  if (!samx_dataset_has_labels(ds))
    return samx_fail("%s: labels '%s' asked for, but the file has no /labels class map", samx_dataset_path(ds), spec);
  int count = samx_dataset_label_count(ds);
  if (!strcmp(spec, "all")) {
    for (int c = 1; c < count && *n < SAMX_MAX_LABELS; c++) ids[(*n)++] = c;
    return *n ? 0 : samx_fail("%s: /labels names no class besides the background", samx_dataset_path(ds));
  }
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    int id = -1;
    for (int c = 1; c < count; c++)
      if (!strcmp(samx_dataset_label_name(ds, c), tok)) id = c;
    char *end;
    long v = strtol(tok, &end, 10);
    if (id < 0 && !*end && end != tok && v >= 1 && v < count) id = (int)v;
    if (id < 0) return samx_fail("%s: label '%s' is neither a class id nor a name of /labels", samx_dataset_path(ds), tok);
    if (*n == SAMX_MAX_LABELS) return samx_fail("at most %d labels", SAMX_MAX_LABELS);
    ids[(*n)++] = id;
  }
  return 0;
}

int samx_labels_read_mask(SamxDataset *ds, int64_t row, int id, uint8_t *mask) {
  int64_t hw = samx_dataset_h(ds) * samx_dataset_w(ds);
  if (id == 0) {
    uint8_t *m = (uint8_t *)malloc((size_t)(hw * samx_dataset_k(ds)));
    int rc = samx_dataset_read_masks(ds, row, m);
    memcpy(mask, m, (size_t)hw);
    free(m);
    return rc;
  }
  if (samx_dataset_read_labels(ds, row, mask) != 0) return -1;
  for (int64_t j = 0; j < hw; j++) mask[j] = mask[j] == id;
  return 0;
}

const char *samx_labels_name(const SamxDataset *ds, int id) {
  const char *n = id ? samx_dataset_label_name(ds, id) : NULL;
  return n ? n : "mask";
}
