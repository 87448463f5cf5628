// ops_linalg: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_LINALG_H
#define SAMX_OPS_LINALG_H

#include "tape.h"

#endif
