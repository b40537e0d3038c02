/* pipelines/mosaic/labels.h: label-image operations of the mosaic pipeline, pure C on memory.
 *
 * Labels are uint32: 0 is background (not segmented, or nodata), 1.. are segments.
 * These functions are what the pipeline does between SAM and the output files:
 *   - mosaic_cleanup_fragments: after a tile is segmented, small pieces of a segment
 *     are merged into the segment that encloses them or removed;
 *   - mosaic_labels_compact: a tile's labels become consecutive global ids;
 *   - mosaic_merge_boundary + mosaic_uf: segments cut by a tile border are joined
 *     (sam-mosaic's merge at discontinuities: union-find, then one relabel by LUT).
 * Nothing prints or exits; failures return -1 with err filled.
 */
#ifndef SAMC_MOSAIC_LABELS_H
#define SAMC_MOSAIC_LABELS_H
#include <stdint.h>

#include "model/samc.h"

/* ---- union-find over label ids 0..n-1 --------------------------------------------- */
typedef struct {
    uint32_t *parent;
    uint32_t n, cap;
} mosaic_uf;

/* Makes ids 0..n-1 each its own set. */
int mosaic_uf_init(mosaic_uf *uf, uint32_t n, samc_error *err);
/* Adds ids up to n-1 (each its own set); keeps existing unions. Amortised growth. */
int mosaic_uf_grow(mosaic_uf *uf, uint32_t n, samc_error *err);
/* The root of a's set, with path compression. a < uf->n. */
uint32_t mosaic_uf_find(mosaic_uf *uf, uint32_t a);
/* Joins the sets of a and b; the smaller root becomes the root (so a merged segment keeps
 * its smallest id, independent of the order of unions). Returns 1 if they were apart. */
int mosaic_uf_union(mosaic_uf *uf, uint32_t a, uint32_t b);
void mosaic_uf_free(mosaic_uf *uf);

/* ---- merge at tile discontinuities ------------------------------------------------ */
typedef enum {
    MOSAIC_MERGE_BEST_MATCH = 0,  /* every segment on either side joins its partner of
                                     largest contact on the other side (handles N:1) */
    MOSAIC_MERGE_MUTUAL_BEST,     /* join (a, b) only if each is the other's best */
    MOSAIC_MERGE_MIN_CONTACT,     /* join every pair with >= min_contact pixels of contact */
    MOSAIC_MERGE_NONE
} mosaic_merge_strategy;

/* "best_match", "mutual_best", "min_contact", "none". Parse returns -1 on anything else. */
int mosaic_merge_strategy_parse(const char *s, mosaic_merge_strategy *out);
const char *mosaic_merge_strategy_name(mosaic_merge_strategy s);

typedef struct {
    int64_t pairs_found;     /* distinct (a, b) label pairs in contact, a != b, both > 0 */
    int64_t pairs_joined;    /* pairs the strategy chose */
} mosaic_merge_stats;

/* One stretch of a tile discontinuity: side1[i] and side2[i] are the labels of the two
 * pixels facing each other across it (e.g. the last column of the left tile and the first
 * column of the right tile), n pixels. Contact counts are per (side1 label, side2 label)
 * pair; best matches break ties towards the smaller partner label. The chosen pairs are
 * joined in uf (which must cover every label present); stats are added to. */
int mosaic_merge_boundary(const uint32_t *side1, const uint32_t *side2, int64_t n,
                          mosaic_merge_strategy strategy, int min_contact, mosaic_uf *uf,
                          mosaic_merge_stats *stats, samc_error *err);

/* ---- per-tile cleanup -------------------------------------------------------------- */
typedef struct {
    int64_t fragments;           /* 4-connected pieces of one label, over all labels */
    int64_t merged_enclosed;     /* pieces given to the one segment that encloses them */
    int64_t removed_small;       /* pieces set to background */
    int64_t pixels_removed;
} mosaic_cleanup_stats;

/* labels[h][w], in place. For every 4-connected piece of one label (a fragment):
 *   - if its area <= enclosed_max_area, it touches neither background nor the image
 *     border, and all its 4-neighbours outside it carry one single other label L:
 *     it becomes L (sam-mosaic's merge_enclosed_max_area, done per label: the tool
 *     computes components of the foreground union, so its enclosed test never fires);
 *   - else if its area < min_area and it does not touch the image border: it becomes 0
 *     (pieces on the border may continue in the neighbouring tile, so they are kept).
 * Decisions are made on the input labels (one pass), so the result does not depend on
 * the order of fragments. enclosed_max_area 0 or min_area 0 disable either rule.
 * Scratch memory is allocated here and freed (w * h * 4 bytes plus per-fragment info).
 * stats are added to (NULL: not wanted); w or h 0 is an empty image. */
int mosaic_cleanup_fragments(uint32_t *labels, int w, int h, int min_area, int enclosed_max_area,
                             mosaic_cleanup_stats *stats, samc_error *err);

/* Renumbers the non-zero labels of labels[n] to first_id, first_id + 1, ... in the order
 * of their first appearance (row-major); *n_ids gets how many distinct labels there were.
 * Fails, leaving labels as they were, if an id would pass UINT32_MAX - 1 or first_id is 0. */
int mosaic_labels_compact(uint32_t *labels, int64_t n, uint32_t first_id, uint32_t *n_ids,
                          samc_error *err);

#endif
