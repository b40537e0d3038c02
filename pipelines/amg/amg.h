/* pipelines/amg/amg.h: automatic mask generation, what SAM2AutomaticMaskGenerator.generate()
 * (sam2/automatic_mask_generator.py, sam2/utils/amg.py) does, on the public samc.h API.
 *
 *   amg_options o;
 *   amg_options_default(&o);                  // the official defaults
 *   amg_result r = {0};
 *   amg_generate_samc(model, rgb, w, h, &o, &r, &err);
 *   ... r.masks[k].counts (uncompressed RLE), .box, .predicted_iou, ...
 *   amg_result_free(&r);
 *
 * Steps, per crop box (the whole image, plus 4^i crops in layer i when crop_n_layers > 0):
 * encode the crop; prompt a grid of single foreground points, points_per_batch per
 * decoder call; keep masks with predicted IoU > pred_iou_thresh, then stability >=
 * stability_score_thresh (on the crop-resolution logits); drop masks touching a crop edge
 * that is not an image edge; box NMS; then NMS across crops preferring smaller crops.
 *
 * Memory: one mask's logits at the crop's resolution exist at a time (upsampled from the
 * decoder's low-res output into one reusable buffer); kept masks are held only as RLE.
 * Peak memory is the image, a few crop-sized buffers, the model's own, and the RLEs.
 *
 * Nothing here prints or exits: functions return 0, or -1 with err filled.
 */
#ifndef SAMC_AMG_H
#define SAMC_AMG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "model/samc.h"

/* Called after each decoder batch: batches done so far out of the total over all crops. */
typedef void (*amg_progress_fn)(void *ctx, int batches_done, int batches_total);

/* The arguments of SAM2AutomaticMaskGenerator.__init__ (thresholds are doubles like the
 * Python floats; comparisons against float32 scores happen in float32 as in PyTorch). */
typedef struct {
    int points_per_side;                 /* 32: grid of n x n points in the full image */
    int points_per_batch;                /* 64: points per decoder call */
    double pred_iou_thresh;              /* 0.8: keep predicted IoU > this (0: no filter) */
    double stability_score_thresh;       /* 0.95: keep stability >= this (0: no filter) */
    double stability_score_offset;       /* 1.0: logit offset of the stability score */
    double mask_threshold;               /* 0.0: binarize logits > this */
    double box_nms_thresh;               /* 0.7: NMS IoU within a crop */
    int crop_n_layers;                   /* 0: extra crop layers (layer i: 2^i x 2^i crops) */
    double crop_nms_thresh;              /* 0.7: NMS IoU across crops */
    double crop_overlap_ratio;           /* 512/1500: crop overlap, fraction of the short side */
    int crop_n_points_downscale_factor;  /* 1: layer i uses points_per_side / factor^i */
    int min_mask_region_area;            /* 0: fill holes / drop islands of <= this many
                                            low-res pixels before upsampling (see below) */
    int multimask_output;                /* 1: three masks per point; 0: one (dynamic) */
    amg_progress_fn progress;
    void *progress_ctx;
    /* Optional: asked before each crop's encode and after each decoder batch; a non-zero
     * answer stops the run, which then fails (err: "cancelled") having freed everything.
     * For servers that cancel or time out jobs; NULL never stops. */
    int (*cancelled)(void *ctx);
    void *cancel_ctx;
    /* Optional: point_grid[point_grid_n][2], (x, y) in [0, 1], prompted in every crop layer
     * instead of the points_per_side grid (which is then ignored), what
     * SAM2AutomaticMaskGenerator(points_per_side=None, point_grids=[g] * (crop_n_layers + 1))
     * does: the points are g * (crop_w, crop_h) in float64, then float32. Not copied: it must
     * outlive the generator call. NULL / 0: the points_per_side grid. */
    const double *point_grid;
    int point_grid_n;
    /* Where _process_batch's filtering runs: 0 (default) on the source's device when it has
     * one (a samc model on --device cuda: samc_predict_records, only small records come
     * back), else on the host; 1 through the source's predict_filtered whenever it has one
     * (on the CPU the ops' reference twins: a check of the device path); -1 always on the
     * host. The results are the same. */
    int backend_post;
} amg_options;

/* One generated mask, as a record of generate() with output_mode="uncompressed_rle". */
typedef struct {
    uint32_t *counts;        /* run lengths over the image in column-major order, starting
                                with a run of zeros (0 if the first pixel is set) */
    int64_t n_counts;
    int64_t area;            /* pixels set */
    int box[4];              /* x0, y0, x1, y1 with inclusive x1, y1; 0,0,0,0 if empty.
                                The record's bbox is XYWH (x0, y0, x1 - x0, y1 - y0). */
    float predicted_iou;
    float stability_score;
    float point[2];          /* the grid point (x, y) in image pixels */
    int crop_box[4];         /* x0, y0, x1, y1 (x1, y1 exclusive) of the crop it came from */
} amg_mask;

/* How many masks survived each step, and where the time went. */
typedef struct {
    int n_crops, n_points, n_batches;
    int64_t candidates;        /* points x masks per point */
    int64_t passed_iou;        /* predicted IoU > pred_iou_thresh */
    int64_t passed_stability;  /* ... and stability >= stability_score_thresh */
    int64_t passed_crop_edge;  /* ... and not touching an inner crop edge */
    int64_t after_box_nms;     /* summed over crops */
    int64_t after_crop_nms;    /* equals after_box_nms with a single crop */
    double encode_ms, decode_ms, masks_ms, nms_ms, total_ms;
} amg_stats;

typedef struct {
    int width, height;
    amg_mask *masks;         /* [n_masks], in the official output order */
    int n_masks;
    amg_stats stats;
} amg_result;

/* The mask decoder seen by the generator, so tests can put an analytic one in its place.
 * masks per point is 3 with multimask_output, else 1. */
typedef struct {
    void *ctx;
    /* Prepares the crop x0, y0, x1, y1 (x1, y1 exclusive) of the image, e.g. encodes it. */
    int (*set_crop)(void *ctx, const int crop_box[4], samc_error *err);
    /* Decodes n single-point prompts, points[n][2] in crop pixels; writes iou[n][masks]. */
    int (*predict)(void *ctx, const float *points, int n, float *iou, samc_error *err);
    /* Writes the logits of mask `token` of point `point` of the last predict at the crop's
     * resolution: out[crop_h][crop_w]. */
    int (*mask_logits)(void *ctx, int point, int token, float *out, samc_error *err);
    /* Optional (NULL: predict + mask_logits on the host): decodes n single-point prompts
     * and filters their masks where the decoder ran, as samc_predict_records does with f;
     * *out stays valid until the next call. */
    int (*predict_filtered)(void *ctx, const float *points, int n, const samc_mask_filter *f,
                            const samc_mask_records **out, samc_error *err);
    int filtered_on_device;  /* 1: predict_filtered runs on a device (amg_options.backend_post 0
                                uses it) */
} amg_source;

void amg_options_default(amg_options *o);
/* Checks every option; the message names the offending option and its allowed range. */
int amg_options_check(const amg_options *o, samc_error *err);

/* Runs the generator on a w x h image through `src`. out must be zeroed or freed. */
int amg_generate(const amg_source *src, int w, int h, const amg_options *opt, amg_result *out,
                 samc_error *err);

/* The generator on a samc model: rgb is interleaved 8-bit RGB [h][w][3]. As in the
 * official generator, min_mask_region_area > 0 is handed to the predictor as
 * max_hole_area = max_sprinkle_area (SAM2Transforms.postprocess_masks): on each mask's
 * low-res logits, 8-connected background regions of <= that many pixels become
 * foreground (mask_threshold + 10) and foreground regions of <= that many pixels become
 * background (mask_threshold - 10), both found on the unmodified logits, before the
 * upsampling. Areas are in low-res pixels (S/4 x S/4). */
int amg_generate_samc(samc_model *m, const uint8_t *rgb, int w, int h, const amg_options *opt,
                      amg_result *out, samc_error *err);

void amg_result_free(amg_result *r);

/* The samc model as an amg_source, what amg_generate_samc runs on (for callers that wrap
 * it, e.g. to record every candidate). rgb must outlive the source. */
int amg_samc_source_new(samc_model *m, const uint8_t *rgb, int w, int h, const amg_options *opt,
                        amg_source *src, samc_error *err);
void amg_samc_source_free(amg_source *src);

/* SAM2AutomaticMaskGenerator.postprocess_small_regions (the SAM1 step, which SAM2's
 * generate() no longer calls): on each full-resolution mask, fill background regions and
 * remove foreground islands of fewer than min_area pixels (remove_small_regions, modes
 * "holes" then "islands", 8-connected), then NMS with score 1 for unchanged masks and 0
 * for changed ones. Kept changed masks get their new RLE and box; the order becomes the
 * NMS order (unchanged masks first). Returns the number of masks kept, or -1. */
int amg_postprocess_small_regions(amg_result *r, int min_area, double nms_thresh, samc_error *err);

/* ---- building blocks (sam2/utils/amg.py), exposed for tests ----------------------- */

/* build_point_grid: n x n points in [0,1]^2, x fastest: out[n*n][2]. */
void amg_point_grid(int n, double *out);
/* generate_crop_boxes: the crop boxes x0, y0, x1, y1 (x1, y1 exclusive) and their layer.
 * Returns how many there are (1 + sum 4^i); writes at most cap of them. */
int amg_crop_boxes(int w, int h, int n_layers, double overlap_ratio, int (*boxes)[4], int *layers,
                   int cap);
/* batched_mask_to_box on a 0/1 mask [h][w]: inclusive XYXY box, 0,0,0,0 when empty.
 * Returns the mask's area. */
int64_t amg_mask_box(const uint8_t *mask, int w, int h, int box[4]);
/* mask_to_rle_pytorch of a 0/1 mask [ch][cw] placed at (x0, y0) in a zero w x h image
 * (uncrop_masks then RLE). *counts is malloc'ed. */
int amg_rle_encode(const uint8_t *mask, int cw, int ch, int x0, int y0, int w, int h,
                   uint32_t **counts, int64_t *n_counts, samc_error *err);
/* rle_to_mask: writes mask[h][w] (0/1); fails if the counts do not add up to w * h. */
int amg_rle_decode(const uint32_t *counts, int64_t n_counts, int w, int h, uint8_t *mask,
                   samc_error *err);
/* The same without clearing: sets the mask's pixels to 1 and leaves the others as they
 * are (for callers that keep the buffer zero), and writes the inclusive bounding box
 * x0, y0, x1, y1 of the set pixels to box (x1 < x0 when none; box may be NULL). */
int amg_rle_paint(const uint32_t *counts, int64_t n_counts, int w, int h, uint8_t *mask, int box[4],
                  samc_error *err);
/* torchvision.ops.nms on XYXY boxes in float32 (area (x1-x0)*(y1-y0), suppress IoU >
 * thresh), visiting boxes by score descending with ties in index order. keep[n] gets the
 * kept indices in that order; returns how many, or -1 (out of memory). */
int amg_nms(const int (*boxes)[4], const float *scores, int n, double iou_thresh, int *keep,
            samc_error *err);
/* calculate_stability_score of one mask's logits[n]: count(l > thr + offset) /
 * count(l > thr - offset) in float32 (cuts rounded to float32); NaN if nothing is above
 * the lower cut. */
float amg_stability_score(const float *logits, size_t n, double mask_threshold, double offset);
/* The min_mask_region_area step of amg_generate_samc on one map of logits[h][w], in
 * place: SAM2Transforms.postprocess_masks with max_hole_area = max_sprinkle_area =
 * max_area (regions of <= max_area pixels, 8-connected, found before either change). */
int amg_fill_small_regions(float *logits, int w, int h, double mask_threshold, int max_area,
                           samc_error *err);
/* remove_small_regions: mode 1 "holes" fills background regions smaller than area_thresh,
 * mode 0 "islands" removes smaller foreground regions (keeping the largest if all are).
 * 8-connected. Sets *changed; mask[h][w] is 0/1 and edited in place. */
int amg_remove_small_regions(uint8_t *mask, int w, int h, double area_thresh, int holes,
                             int *changed, samc_error *err);

/* An uncompressed RLE as the JSON text {"size":[h,w],"counts":[...]} (malloc'ed; NULL
 * when out of memory): what masks.json, `samc find` and the service write. */
char *amg_rle_json(const uint32_t *counts, int64_t n_counts, int w, int h);

/* Instance k of a SAM3 search as the record `samc find` and the service write:
 * {"text": text (null for an exemplar-only prompt), "text_index", "query", "score",
 * "box": [x0, y0, x1, y1] (image pixels, not clamped), "area", and with with_rle the
 * mask as "segmentation" (amg_rle_json; needs in->masks)}. NULL when out of memory. */
cJSON *amg_instance_json(const samc_instances *in, int k, const char *text, int text_index, int with_rle);

/* Writes r's records as one JSON array (the masks.json of `samc everything`) and a
 * newline to f. Returns 0, or -1 when f reports a write error. */
int amg_write_json(FILE *f, const amg_result *r);

#endif
