// ops_random: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_RANDOM_H
#define SAMX_OPS_RANDOM_H

#include "tape.h"

#endif
