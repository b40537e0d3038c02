/* convert/hf_sam3_export.h: a samc SAM3 file in the HuggingFace transformers layout, by the
 * inverse of the name table (convert/hf_sam3_map.h). The tests build a transformers
 * checkpoint of the micro golden model with it, convert it back with samc_convert_ex and
 * compare; weights/README.md tells how it was checked once against transformers' own
 * conversion script. */
#ifndef SAMC_HF_SAM3_EXPORT_H
#define SAMC_HF_SAM3_EXPORT_H
#include "model/samc.h"

/* Reads samc_path (safetensors with Sam3Image names, e.g. micro.safetensors or a
 * `samc convert` output) and writes out_dir/model.safetensors (Sam3Model names, the
 * dtypes as stored, the point projections and video-side tensors left out) and
 * out_dir/config.json (hf_sam3_config_write). out_dir must exist. */
int hf_sam3_export(const char *samc_path, const char *out_dir, samc_error *err);

#endif
