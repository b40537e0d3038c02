/* convert/convert.h: the weight-file API of samc, beside the inference API (model/samc.h):
 * converting official checkpoints, writing synthetic (golden) weights, and listing a
 * file's tensors. These read the model configs (model/config/) and the file formats
 * (loader/); the inference code never needs them.
 *
 * Every call returns 0 on success and -1 with err naming what failed. */
#ifndef SAMC_CONVERT_H
#define SAMC_CONVERT_H
#include <stdint.h>

#include "convert/convert_report.h"
#include "model/samc.h"

/* A checkpoint to one samc safetensors file. The family and layout are found from the
 * tensor names, the config from their shapes (the first bad key is named otherwise):
 *   SAM2.1  an official sam2.1_hiera_*.pt (or its safetensors): names kept;
 *   SAM3    the official sam3.pt ({"model": {"detector.*", "tracker.*"}}), a file with
 *           Sam3Image names (samc synth, micro.safetensors, an earlier conversion), or
 *           the HuggingFace transformers layout (a folder holding model.safetensors and
 *           config.json, or that model.safetensors with config.json beside it). The
 *           output has Sam3Image names (no "detector."), no RoPE tables (samc computes
 *           them) and, with a vocabulary, the tokenizer's merges in its metadata
 *           (convert/sam3_vocab.h), so that one file is the whole model.
 * Official file names are checked against their published size and sha256 (a corrupted
 * or incomplete download is named as such). */
typedef struct {
    const char *dtype;    /* "f32" (NULL too), "f16" or "bf16": round to nearest even */
    int image_only;       /* drop the video-side tensors: SAM2.1 memory; SAM3 tracker */
    const char *vocab;    /* SAM3: bpe_simple_vocab_16e6.txt.gz to embed (NULL: none);
                             refused for SAM2.1 ... */
    int vocab_if_sam3;    /* ... unless this is set (a default such as SAMC_VOCAB) */
} samc_convert_options;

/* What a conversion found and wrote: samc_convert_report (convert/convert_report.h). */

int samc_convert_ex(const char *in_path, const char *out_path, const samc_convert_options *opt,
                    samc_convert_report *report, samc_error *err);
/* samc_convert_ex with no vocabulary and no report. */
int samc_convert(const char *in_path, const char *out_path, const char *dtype, int image_only, samc_error *err);

/* Writes every tensor of a config (SAM2.1: micro, tiny, small, base_plus, large; SAM3:
 * sam3, sam3_micro, without the RoPE tables the model computes) with the samc-synth-v1
 * values as F32 safetensors (convert/synth.c). */
int samc_synth_write(const char *config, const char *path, samc_error *err);

/* A weight file's tensors and metadata as stored, before any conversion (`samc info`).
 * .pt checkpoints report the metadata keys format, dict_key and sha256. */
typedef struct {
    const char *name;
    const char *dtype;        /* "F32", "F16", "BF16", "I64", ...; "complex64" for the RoPE tables of a .pt */
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

/* What `samc info` says about a SAM3 weight file, read from the file itself (the names,
 * shapes and metadata; no model is built). */
typedef struct {
    int is_sam3;            /* 0: not a SAM3 file (the rest is empty) */
    char layout[16];        /* "official" (sam3.pt), "samc" (Sam3Image names), "transformers" */
    char config[32];        /* "sam3", "sam3_micro", or "" when no config matched: detail says why */
    char detail[512];
    int image_size;
    int n_image, n_video;   /* image-model tensors; video-side (tracker) tensors */
    int64_t n_params;       /* values in the image-model tensors */
    int vocab;              /* tokenizer.bpe_merges: 1 the official merges, -1 present but not
                               them, 0 absent (text prompts then need --vocab) */
    char vocab_sha256[65];
    int points;             /* 1 when point prompts can run; 0 when the file says
                               sam3.point_prompts = unsupported (from the transformers layout) */
} samc_sam3_file_info;

/* Fills *info for the file at path (.pt or safetensors). Returns 0 (is_sam3 = 0 for
 * other files), or -1 with err when the file cannot be read. */
int samc_sam3_file_info_get(const char *path, samc_sam3_file_info *info, samc_error *err);

#endif
