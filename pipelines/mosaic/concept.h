/* pipelines/mosaic/concept.h: SAM3 concept segmentation of one mosaic tile, what the
 * mosaic does instead of SAM2's multi-pass automatic masks when it is given class texts
 * (mosaic_options.classes): the tile is encoded once and searched for every text with
 * samc_find (the official Sam3Processor's instances: score = sigmoid(logit) x
 * sigmoid(presence) > score_threshold, masks = the low-res mask logits upsampled to the
 * tile, > 0). Instances overlap (the processor has no NMS): each pixel goes to the
 * covering instance of highest score (the earlier one on a tie), nodata pixels to none.
 *
 * Memory is planned once for the largest tile: an encoded image, one search's raw
 * outputs (masks are not kept per instance), one float plane of logits and one of the
 * best score so far; a run never allocates per tile. */
#ifndef SAMC_MOSAIC_CONCEPT_H
#define SAMC_MOSAIC_CONCEPT_H
#include <stdint.h>

#include "pipelines/mosaic/options.h"

/* Labels a tile can give: an instance per query of every class (Q <= 256). */
#define MOSAIC_CONCEPT_MAX_LABELS(n_classes) ((n_classes) * 256)

typedef struct mosaic_concept mosaic_concept;

/* For tiles up to max_w x max_h on model m (SAM3: else an error naming the family). */
mosaic_concept *mosaic_concept_new(samc_model *m, int max_w, int max_h, samc_error *err);
void mosaic_concept_free(mosaic_concept *cc);

/* Segments rgb[h][w][3] (valid[h][w]: 0 = nodata; NULL all valid) for every class of
 * opt: labels[h][w] gets 0 or 1..n; cls[k - 1] and score[k - 1] the class index (0-based,
 * as opt's classes) and score of label k (room for cap labels); st one "pass" with the
 * counts (points 0, masks_generated = instances kept, components_added = labels painted,
 * iou = stability = the score threshold) and times. cancelled (may be NULL) is asked
 * between classes. */
int mosaic_concept_run(mosaic_concept *cc, const mosaic_options *opt, const uint8_t *rgb, const uint8_t *valid, int w,
                       int h, uint32_t *labels, uint32_t *cls, float *score, int cap, mosaic_tile_stats *st,
                       int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err);

#endif
