// ops_loss: declared by its implementer (see engine/ops.h for the family list).
#ifndef SAMX_OPS_LOSS_H
#define SAMX_OPS_LOSS_H

#include "tape.h"

#endif
