// The training losses moved to models/losses.h (each method's loss is part of its model code).
#include "models/losses.h"
