// MCL (multiple-choice learning) on SAM's three multimask outputs: no parameters of its own, three
// hypotheses, the winner-takes-all soft-Dice loss against the drawn annotator. Its table is
// samx_method_mcl (models/method.h).
#ifndef SAMX_MCL_H
#define SAMX_MCL_H
#include "models/method.h"
#endif
