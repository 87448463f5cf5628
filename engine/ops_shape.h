// ops_shape: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_SHAPE_H
#define SAMX_OPS_SHAPE_H

#include "tape.h"

#endif
