/* convert/synth.h: samc-synth-v1, the deterministic synthetic weights of the golden
 * data (shared/golden/README.md section 1), and the writer of synthetic checkpoints.
 *
 * Every tensor of a config's state-dict specification (model/config/) gets values from
 * its name alone: FNV-1a 64 of the name seeds a splitmix64 stream mapped to [-1, 1);
 * tensors of 2+ dims are scaled by 1/sqrt(fan_in), 1-D ".weight" tensors are 1 + 0.1u,
 * everything else 0.02u. */
#ifndef SAMC_CONVERT_SYNTH_H
#define SAMC_CONVERT_SYNTH_H
#include <stdint.h>


/* Fills out[numel] with the synthetic values of tensor `name` of the given shape. */
void synth_fill(const char *name, int ndim, const int64_t *shape, float *out);

#endif
