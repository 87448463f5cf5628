// Classes of a dataset's /labels map (contracts §7) as the few-shot method, its baselines and the
// per-label evaluation name them.
#ifndef SAMX_DATA_LABELS_H
#define SAMX_DATA_LABELS_H

#include <stdint.h>

#include "data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAMX_MAX_LABELS 64

// spec: comma list of class ids or names of /labels; "all": every named class 1..count-1; "" or
// NULL: /masks[:, 0] (id 0). ids receives up to SAMX_MAX_LABELS ids. Returns 0 or -1 (naming the file).
int samx_labels_parse(SamxDataset *ds, const char *spec, int *ids, int *n);
// The 0/1 mask of class id in row (id 0: /masks[:, 0]). Returns 0 or -1.
int samx_labels_read_mask(SamxDataset *ds, int64_t row, int id, uint8_t *mask);
// "organ" for a class of /labels, "mask" for id 0.
const char *samx_labels_name(const SamxDataset *ds, int id);

#ifdef __cplusplus
}
#endif
#endif
