/* tests/cuda_sim/include/cuda_fp16.h: __half under the simulator (cudasim_lowp.h). */
#include "cudasim_lowp.h"
