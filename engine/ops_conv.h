// ops_conv: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_CONV_H
#define SAMX_OPS_CONV_H

#include "tape.h"

#endif
