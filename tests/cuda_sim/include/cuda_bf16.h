/* tests/cuda_sim/include/cuda_bf16.h: __nv_bfloat16 under the simulator (cudasim_lowp.h). */
#include "cudasim_lowp.h"
