/* pipelines/mosaic/config.h: the settings of `samc mosaic` by name, one table for the three ways
 * they arrive: command-line flags ("--tile-size"), sam-mosaic's YAML keys ("tile.size",
 * read with libyaml) and sam-mosaic's flat API names ("tile_size", used by the JSON
 * options of `samc serve` mosaic jobs). Nothing prints; errors fill `why`.
 */
#ifndef SAMC_MOSAIC_CONFIG_H
#define SAMC_MOSAIC_CONFIG_H
#include <stddef.h>

#include "pipelines/mosaic/options.h"

typedef enum { MOSAIC_NAME_FLAG, MOSAIC_NAME_YAML, MOSAIC_NAME_FLAT } mosaic_name_style;

/* Sets the setting called `name` from its text ("0.9", "true", "best_match", "null" for
 * no max_passes). Returns 1 if no setting has that name, 0 when set, -1 on a bad value
 * (why: "'abc' is not an integer in [16, 65536]"). */
int mosaic_config_set(mosaic_options *o, mosaic_name_style style, const char *name, const char *value, char *why,
                      size_t why_size);
/* Whether a setting has that name (nothing is set). */
int mosaic_config_has(mosaic_name_style style, const char *name);
/* The value-less flags: --no-black-mask, --no-adaptive-threshold, --sort-by-area,
 * --no-shapefile, --geopackage, --no-labels, --no-stats. Returns 1 if unknown, else 0. */
int mosaic_config_switch(mosaic_options *o, const char *flag);
/* Reads a sam-mosaic YAML file (sections tile, threshold, segmentation, merge, output,
 * and sam_checkpoint, copied to checkpoint, "" if absent) into o. Unknown keys are
 * errors naming file:line and key. Returns 0 or -1. */
int mosaic_config_load_yaml(const char *path, mosaic_options *o, char *checkpoint, size_t checkpoint_size,
                            char *why, size_t why_size);
/* The effective settings under the YAML names as a JSON object text (malloc'ed; NULL
 * when out of memory), with sam_checkpoint and config_file when given. */
char *mosaic_config_json(const mosaic_options *o, const char *checkpoint, const char *config_file);
/* The inverse of mosaic_config_json(o, NULL, NULL): o (defaults first) gets every
 * setting of the JSON object text, bands and scale. Unknown keys are errors. 0 or -1. */
int mosaic_config_from_json(mosaic_options *o, const char *json, char *why, size_t why_size);
/* Help text lines "  tile_size, padding, ..." of the flat names, for error messages. */
const char *mosaic_config_flat_names(void);

#endif
