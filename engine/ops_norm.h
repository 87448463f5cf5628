// ops_norm: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_NORM_H
#define SAMX_OPS_NORM_H

#include "tape.h"

#endif
