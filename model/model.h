/* model/model.h: what is behind the public handles of model/samc.h (internal: for
 * model/samc.c and for tests that look inside). A samc_model is one family's model:
 * SAM2.1 (model/sam2/) or SAM3 (model/sam3/); exactly one of the pointers is set. */
#ifndef SAMC_MODEL_H
#define SAMC_MODEL_H
#include "model/sam2/sam2.h"
#include "model/sam3/sam3.h"
#include "model/samc.h"

struct samc_model {
    samc_family family;
    sam2_model *sam2;
    sam3_model *sam3;
};

struct samc_image {
    sam2_image *sam2;
    sam3_image *sam3;
};

#endif
