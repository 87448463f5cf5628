// ops_elementwise: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_ELEMENTWISE_H
#define SAMX_OPS_ELEMENTWISE_H

#include "tape.h"

#endif
