/* kernels/cuda_stub.c: the CUDA entry points of a build without nvcc, so that
 * `--backend cuda` fails with a clear message instead of a link error. */
#ifndef SAMC_HAVE_CUDA
#include "ops.h"
#include <stdio.h>

samc_ops *samc_ops_cuda_create(int device, char *err) {
    (void)device;
    snprintf(err, 512, "this build has no CUDA backend (nvcc was not found at build time)");
    return NULL;
}

void samc_ops_cuda_destroy(samc_ops *o) { (void)o; }

int samc_cuda_device_info(char *buf, size_t n) {
    if (buf && n) snprintf(buf, n, "this build has no CUDA backend (nvcc was not found at build time)");
    return -1;
}
#endif
