// SAM fine-tuned single-mask from a box (SAM-FT / MedSAM's recipe): no parameters of its own, one
// hypothesis (the single-mask output), loss Dice + bce_weight x BCE against the drawn annotator.
// Its table is samx_method_samft (models/method.h).
#ifndef SAMX_SAMFT_H
#define SAMX_SAMFT_H
#include "models/method.h"
#endif
