/* convert/convert.h: the weight-file API of samc, beside the inference API (model/samc.h):
 * converting official checkpoints, writing synthetic (golden) weights, and listing a
 * file's tensors. These read the model configs (model/config/) and the file formats
 * (loader/); the inference code never needs them.
 *
 * Every call returns 0 on success and -1 with err naming what failed. */
#ifndef SAMC_CONVERT_H
#define SAMC_CONVERT_H
#include <stdint.h>

#include "model/samc.h"

/* An official SAM2.1 checkpoint (.pt, or safetensors) to safetensors: dtype "f32", "f16"
 * or "bf16"; image_only drops the memory-side (video) tensors. Official file names are
 * checked against their published size and sha256 (a corrupted or incomplete download is
 * named as such). */
int samc_convert(const char *in_path, const char *out_path, const char *dtype, int image_only, samc_error *err);

/* Writes every tensor of a config (SAM2.1: micro, tiny, small, base_plus, large; SAM3:
 * sam3, sam3_micro, without the RoPE tables the model computes) with the samc-synth-v1
 * values as F32 safetensors (convert/synth.c). */
int samc_synth_write(const char *config, const char *path, samc_error *err);

/* A weight file's tensors and metadata as stored, before any conversion (`samc info`).
 * .pt checkpoints report the metadata keys format, dict_key and sha256. */
typedef struct {
    const char *name;
    const char *dtype;        /* "F32", "F16", "BF16", "I64", ... */
    int ndim;
    const int64_t *shape;
    int64_t numel;
} samc_tensor_desc;
typedef void (*samc_tensor_fn)(void *ctx, const samc_tensor_desc *t);
typedef void (*samc_meta_fn)(void *ctx, const char *key, const char *value);
/* Calls on_tensor for each tensor in file order and on_meta for each metadata entry
 * (either may be NULL). */
int samc_weights_describe(const char *path, samc_tensor_fn on_tensor, samc_meta_fn on_meta,
                          void *ctx, samc_error *err);

#endif
