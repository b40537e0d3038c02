/* kernels/cuda_stub.h: what kernels/cuda_stub.c offers besides the entry points declared
 * in kernels/ops.h. */
#ifndef SAMC_CUDA_STUB_H
#define SAMC_CUDA_STUB_H

/* The address of `name` in the loaded CUDA backend library or the libraries it depends on
 * (the CUDA runtime it runs on: the real one, or the simulator's), loading the library
 * first if needed; NULL when there is none. Lets a test time ops with that runtime's
 * cudaEvent* functions without linking a CUDA runtime itself (tests/test_backend_ops.c). */
void *samc_cuda_symbol(const char *name);

#endif
