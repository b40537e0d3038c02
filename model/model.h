/* model/model.h: what is behind the public handles of model/samc.h (internal: for
 * model/samc.c and for tests that look inside). A samc_model is one family's model;
 * today every model is SAM2.1. */
#ifndef SAMC_MODEL_H
#define SAMC_MODEL_H
#include "model/sam2/sam2.h"
#include "model/samc.h"

struct samc_model {
    sam2_model *sam2;
};

struct samc_image {
    sam2_image *sam2;
};

#endif
