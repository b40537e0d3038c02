/* convert/hf_sam3_config.h: checks the config.json of a transformers SAM3 checkpoint
 * against the samc config its tensors matched.
 *
 * The tensors fix the widths and depths; the config.json also says what they cannot
 * (attention heads, window size, global blocks, image size, activations, LayerNorm
 * epsilons), and samc runs the model with its own config, so all of it must agree. The file is what
 * Sam3Model.from_pretrained reads: model_type "sam3" (Sam3Config), or "sam3_video"
 * (Sam3VideoConfig) whose detector_config is that. A number it leaves out takes
 * transformers' default, which is the official model's (samc's "sam3" config). */
#ifndef SAMC_HF_SAM3_CONFIG_H
#define SAMC_HF_SAM3_CONFIG_H
#include "model/config/sam3_config.h"
#include "model/samc.h"

/* 0 when config.json at `path` describes config c; -1 with err naming the file and the
 * first key that disagrees (or why the file cannot be read). */
int hf_sam3_config_check(const char *path, const sam3_config *c, samc_error *err);

/* Writes a config.json for config c that hf_sam3_config_check accepts and that
 * transformers' Sam3Config reads as the same model (model_type "sam3", everything
 * checked above, the sub-configs' model types, the text MLP width). For tests and hand
 * checks. */
int hf_sam3_config_write(const char *path, const sam3_config *c, samc_error *err);

#endif
