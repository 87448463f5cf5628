// samx engine: everything a model, a tool or a test needs.
#ifndef SAMX_H
#define SAMX_H

#include "arena.h"
#include "checkpoint.h"
#include "device.h"
#include "dtype.h"
#include "error.h"
#include "fileio.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "pickle.h"
#include "precision.h"
#include "profile.h"
#include "safetensors.h"
#include "torch_ckpt.h"
#include "tape.h"
#include "tensor.h"
#include "version.h"

#endif
