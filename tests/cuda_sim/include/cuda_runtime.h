/* tests/cuda_sim/include/cuda_runtime.h: what a .cu file gets from <cuda_runtime.h> under
 * the simulator: the runtime API and the device language (cudasim.h). */
#ifndef CUDASIM_CUDA_RUNTIME_H
#define CUDASIM_CUDA_RUNTIME_H
#include "cuda_runtime_api.h"
#include "cudasim.h"
#endif
