// ops_attention: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_ATTENTION_H
#define SAMX_OPS_ATTENTION_H

#include "tape.h"

#endif
