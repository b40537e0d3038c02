/* pipelines/amg/amg.c: automatic mask generation (see amg.h).
 *
 * Mirrors sam2/automatic_mask_generator.py (SAM2AutomaticMaskGenerator) and the helpers
 * of sam2/utils/amg.py; each function names the one it follows. Where PyTorch compares a
 * float32 tensor with a Python float, the float is rounded to float32 first, as the
 * tensor comparison does; torchvision's NMS compares its float32 IoU with a double. */
#include "pipelines/amg/amg.h"
#include "util/clock.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- options ---------------------------------------------------------------------- */

void amg_options_default(amg_options *o) {
    /* SAM2AutomaticMaskGenerator.__init__ defaults */
    memset(o, 0, sizeof *o);
    o->points_per_side = 32;
    o->points_per_batch = 64;
    o->pred_iou_thresh = 0.8;
    o->stability_score_thresh = 0.95;
    o->stability_score_offset = 1.0;
    o->mask_threshold = 0.0;
    o->box_nms_thresh = 0.7;
    o->crop_n_layers = 0;
    o->crop_nms_thresh = 0.7;
    o->crop_overlap_ratio = 512.0 / 1500.0;
    o->crop_n_points_downscale_factor = 1;
    o->min_mask_region_area = 0;
    o->multimask_output = 1;
}

/* build_all_layer_point_grids: int(n_per_side / scale**layer) points per side. */
static int layer_points_per_side(const amg_options *o, int layer) {
    long long d = 1;
    for (int i = 0; i < layer; i++) {
        d *= o->crop_n_points_downscale_factor;
        if (d > o->points_per_side) return 0;
    }
    return (int)(o->points_per_side / d);
}

static int in_unit(double v) { return v >= 0.0 && v <= 1.0; }

/* as many points as the largest points_per_side grid (1024^2) */
#define AMG_MAX_GRID_POINTS (1 << 20)

/* Points of a crop of `layer`: the given point_grid, or the layer's n x n grid. */
static int layer_points(const amg_options *o, int layer) {
    if (o->point_grid) return o->point_grid_n;
    int n = layer_points_per_side(o, layer);
    return n * n;
}

int amg_options_check(const amg_options *o, samc_error *err) {
    if (!o) return samc_error_set(err, SAMC_ERR_ARG, "amg: NULL options");
    if (o->point_grid) {
        if (o->point_grid_n < 1 || o->point_grid_n > AMG_MAX_GRID_POINTS)
            return samc_error_set(err, SAMC_ERR_ARG, "amg: point_grid_n %d is not in [1, %d]", o->point_grid_n,
                            AMG_MAX_GRID_POINTS);
        for (int k = 0; k < 2 * o->point_grid_n; k++)
            if (!in_unit(o->point_grid[k]))
                return samc_error_set(err, SAMC_ERR_ARG, "amg: point_grid[%d][%d] = %g is not in [0, 1]", k / 2, k % 2,
                                o->point_grid[k]);
    } else if (o->point_grid_n != 0) {
        return samc_error_set(err, SAMC_ERR_ARG, "amg: point_grid_n %d without a point_grid", o->point_grid_n);
    } else if (o->points_per_side < 1 || o->points_per_side > 1024) {
        return samc_error_set(err, SAMC_ERR_ARG, "amg: points_per_side %d is not in [1, 1024]", o->points_per_side);
    }
    if (o->points_per_batch < 1 || o->points_per_batch > 4096)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: points_per_batch %d is not in [1, 4096]", o->points_per_batch);
    if (!in_unit(o->pred_iou_thresh))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: pred_iou_thresh %g is not in [0, 1]", o->pred_iou_thresh);
    if (!in_unit(o->stability_score_thresh))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: stability_score_thresh %g is not in [0, 1]", o->stability_score_thresh);
    if (!(o->stability_score_offset >= 0.0 && o->stability_score_offset <= 1e6))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: stability_score_offset %g is not in [0, 1e6]", o->stability_score_offset);
    if (!(fabs(o->mask_threshold) <= 1e6))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: mask_threshold %g is not in [-1e6, 1e6]", o->mask_threshold);
    if (!in_unit(o->box_nms_thresh))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: box_nms_thresh %g is not in [0, 1]", o->box_nms_thresh);
    if (!in_unit(o->crop_nms_thresh))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: crop_nms_thresh %g is not in [0, 1]", o->crop_nms_thresh);
    if (o->crop_n_layers < 0 || o->crop_n_layers > 4)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: crop_n_layers %d is not in [0, 4]", o->crop_n_layers);
    if (!(o->crop_overlap_ratio >= 0.0 && o->crop_overlap_ratio < 1.0))
        return samc_error_set(err, SAMC_ERR_ARG, "amg: crop_overlap_ratio %g is not in [0, 1)", o->crop_overlap_ratio);
    if (o->crop_n_points_downscale_factor < 1 || o->crop_n_points_downscale_factor > 1024)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: crop_n_points_downscale_factor %d is not in [1, 1024]",
                        o->crop_n_points_downscale_factor);
    if (!o->point_grid && layer_points_per_side(o, o->crop_n_layers) < 1)
        return samc_error_set(err, SAMC_ERR_ARG,
                        "amg: crop layer %d would have no points: points_per_side %d / "
                        "crop_n_points_downscale_factor %d^%d < 1", o->crop_n_layers, o->points_per_side,
                        o->crop_n_points_downscale_factor, o->crop_n_layers);
    if (o->min_mask_region_area < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: min_mask_region_area %d is negative", o->min_mask_region_area);
    if (o->backend_post < -1 || o->backend_post > 1)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: backend_post %d is not -1, 0 or 1", o->backend_post);
    if (o->multimask_output != 0 && o->multimask_output != 1)
        return samc_error_set(err, SAMC_ERR_ARG, "amg: multimask_output %d is not 0 or 1", o->multimask_output);
    return 0;
}

/* ---- grids and crops -------------------------------------------------------------- */

void amg_point_grid(int n, double *out) {
    /* build_point_grid: np.linspace(offset, 1 - offset, n) with offset = 1 / (2n), computed
     * the way numpy does it (start + i * step, the last point set to stop exactly), so the
     * float32 point coordinates match the official ones bit for bit. */
    double start = 1.0 / (2.0 * n), stop = 1.0 - start;
    double step = n > 1 ? (stop - start) / (double)(n - 1) : 0.0;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)j * n + i;
            out[2 * k] = n > 1 && i == n - 1 ? stop : (double)i * step + start;
            out[2 * k + 1] = n > 1 && j == n - 1 ? stop : (double)j * step + start;
        }
    }
}

int amg_crop_boxes(int w, int h, int n_layers, double overlap_ratio, int (*boxes)[4], int *layers,
                   int cap) {
    /* generate_crop_boxes: the whole image, then in layer i (1-based) 2^i x 2^i crops of
     * ceil((overlap * (n - 1) + len) / n) pixels, overlapping by
     * int(overlap_ratio * short_side * 2 / n), x0 in the outer loop. */
    int count = 0, short_side = w < h ? w : h;
    if (count < cap) {
        boxes[count][0] = 0; boxes[count][1] = 0; boxes[count][2] = w; boxes[count][3] = h;
        layers[count] = 0;
    }
    count++;
    for (int layer = 0; layer < n_layers; layer++) {
        int n = 1 << (layer + 1);
        int overlap = (int)(overlap_ratio * short_side * (2.0 / n));
        long long cw = ((long long)overlap * (n - 1) + w + n - 1) / n;
        long long ch = ((long long)overlap * (n - 1) + h + n - 1) / n;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                long long x0 = (cw - overlap) * i, y0 = (ch - overlap) * j;
                if (count < cap) {
                    boxes[count][0] = (int)x0;
                    boxes[count][1] = (int)y0;
                    boxes[count][2] = (int)(x0 + cw < w ? x0 + cw : w);
                    boxes[count][3] = (int)(y0 + ch < h ? y0 + ch : h);
                    layers[count] = layer + 1;
                }
                count++;
            }
        }
    }
    return count;
}

/* ---- masks: boxes, RLE, connected components ------------------------------------- */

int64_t amg_mask_box(const uint8_t *mask, int w, int h, int box[4]) {
    /* batched_mask_to_box: inclusive min / max pixel indices, 0,0,0,0 when empty */
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    int64_t area = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = mask + (size_t)y * w;
        int first = -1, last = -1, n = 0;
        for (int x = 0; x < w; x++) {
            if (!row[x]) continue;
            if (first < 0) first = x;
            last = x;
            n++;
        }
        if (first < 0) continue;
        area += n;
        if (first < x0) x0 = first;
        if (last > x1) x1 = last;
        if (y < y0) y0 = y;
        y1 = y;
    }
    if (area == 0) x0 = y0 = x1 = y1 = 0;
    box[0] = x0; box[1] = y0; box[2] = x1; box[3] = y1;
    return area;
}

/* Run-length builder: runs alternate 0, 1, 0, ... starting with zeros. */
typedef struct {
    uint32_t *c;
    int64_t n, cap;
    int cur;           /* value of the open run */
    uint64_t run;      /* its length so far */
    int oom;
} rle_builder;

static void rle_emit(rle_builder *b, uint64_t len) {
    if (b->oom) return;
    if (b->n == b->cap) {
        int64_t cap = b->cap ? b->cap * 2 : 64;
        uint32_t *c = realloc(b->c, sizeof *c * (size_t)cap);
        if (!c) { b->oom = 1; return; }
        b->c = c;
        b->cap = cap;
    }
    b->c[b->n++] = (uint32_t)len;
}

static void rle_push(rle_builder *b, int v, uint64_t len) {
    if (!len) return;
    if (v != b->cur) {
        rle_emit(b, b->run);
        b->cur = v;
        b->run = 0;
    }
    b->run += len;
}

int amg_rle_encode(const uint8_t *mask, int cw, int ch, int x0, int y0, int w, int h,
                   uint32_t **counts, int64_t *n_counts, samc_error *err) {
    /* uncrop_masks (zero padding) + mask_to_rle_pytorch: Fortran order (column by column),
     * counts start with the zero run, which is 0 when the first pixel is set. */
    *counts = NULL;
    *n_counts = 0;
    if (x0 < 0 || y0 < 0 || cw < 0 || ch < 0 || x0 + cw > w || y0 + ch > h)
        return samc_error_set(err, SAMC_ERR_ARG, "amg_rle_encode: %dx%d mask at (%d, %d) is outside the %dx%d image",
                        cw, ch, x0, y0, w, h);
    rle_builder b = { 0 };
    for (int x = 0; x < w; x++) {
        if (x < x0 || x >= x0 + cw) {
            rle_push(&b, 0, (uint64_t)h);
            continue;
        }
        rle_push(&b, 0, (uint64_t)y0);
        const uint8_t *col = mask + (x - x0);
        int y = 0;
        while (y < ch) {
            int v = col[(size_t)y * cw] != 0, y_end = y + 1;
            while (y_end < ch && (col[(size_t)y_end * cw] != 0) == v) y_end++;
            rle_push(&b, v, (uint64_t)(y_end - y));
            y = y_end;
        }
        rle_push(&b, 0, (uint64_t)(h - y0 - ch));
    }
    rle_emit(&b, b.run);
    if (b.oom) {
        free(b.c);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for an RLE of a %dx%d mask", w, h);
    }
    *counts = b.c;
    *n_counts = b.n;
    return 0;
}

/* amg_rle_encode of a crop mask given as its runs: toggle pairs (x * ch + y_start,
 * x * ch + y_end) of crop column x, in order (samc_mask_records). */
static int rle_from_toggles(const uint32_t *tg, int64_t n, int cw, int ch, int x0, int y0, int w, int h,
                            uint32_t **counts, int64_t *n_counts, samc_error *err) {
    rle_builder b = { 0 };
    int64_t k = 0;
    for (int x = 0; x < w; x++) {
        if (x < x0 || x >= x0 + cw) {
            rle_push(&b, 0, (uint64_t)h);
            continue;
        }
        uint64_t col = (uint64_t)(x - x0) * (uint64_t)ch, y = 0;
        rle_push(&b, 0, (uint64_t)y0);
        for (; k + 1 < n && tg[k] / (uint64_t)ch == (uint64_t)(x - x0); k += 2) {
            uint64_t ya = tg[k] - col, yb = tg[k + 1] - col;
            rle_push(&b, 0, ya - y);
            rle_push(&b, 1, yb - ya);
            y = yb;
        }
        rle_push(&b, 0, (uint64_t)ch - y);
        rle_push(&b, 0, (uint64_t)(h - y0 - ch));
    }
    rle_emit(&b, b.run);
    if (b.oom || k != n) {
        free(b.c);
        return samc_error_set(err, b.oom ? SAMC_ERR_NOMEM : SAMC_ERR_INTERNAL,
                              "amg: %s for the RLE of a %dx%d mask", b.oom ? "out of memory" : "toggles out of order",
                              cw, ch);
    }
    *counts = b.c;
    *n_counts = b.n;
    return 0;
}

int amg_rle_paint(const uint32_t *counts, int64_t n_counts, int w, int h, uint8_t *mask, int box[4],
                  samc_error *err) {
    /* rle_to_mask without the clearing: runs fill the image column by column, alternating
     * 0 and 1; only the runs of ones are written, walking down each column, so the cost
     * follows the mask's area rather than the image's. */
    uint64_t total = (uint64_t)w * (uint64_t)h, idx = 0;
    int bx0 = w, by0 = h, bx1 = -1, by1 = -1;
    for (int64_t k = 0; k < n_counts; k++) {
        if (counts[k] > total - idx)
            return samc_error_set(err, SAMC_ERR_FORMAT, "amg_rle_decode: run %lld of %u pixels goes past the %dx%d image",
                                  (long long)k, counts[k], w, h);
        if ((k & 1) && counts[k] > 0) {
            uint64_t x = idx / (uint64_t)h, y = idx % (uint64_t)h, left = counts[k];
            uint64_t last = idx + counts[k] - 1, lx = last / (uint64_t)h, ly = last % (uint64_t)h;
            /* the run spans columns x..lx; whole columns in between cover every row */
            if ((int)x < bx0) bx0 = (int)x;
            if ((int)lx > bx1) bx1 = (int)lx;
            /* rows: y..ly within one column; a run that wraps into a next column covers
             * the rows from y down and from the top, i.e. all rows */
            int ry0 = lx > x ? 0 : (int)y, ry1 = lx > x ? h - 1 : (int)ly;
            if (ry0 < by0) by0 = ry0;
            if (ry1 > by1) by1 = ry1;
            while (left > 0) {
                uint64_t seg = (uint64_t)h - y < left ? (uint64_t)h - y : left;
                uint8_t *p = mask + y * (uint64_t)w + x;
                for (uint64_t i = 0; i < seg; i++, p += w) *p = 1;
                left -= seg;
                y = 0;
                x++;
            }
        }
        idx += counts[k];
    }
    if (idx != total)
        return samc_error_set(err, SAMC_ERR_FORMAT,
                              "amg_rle_decode: runs cover %llu of the %llu pixels of a %dx%d image",
                              (unsigned long long)idx, (unsigned long long)total, w, h);
    if (box) {
        box[0] = bx0; box[1] = by0; box[2] = bx1; box[3] = by1;
    }
    return 0;
}

int amg_rle_decode(const uint32_t *counts, int64_t n_counts, int w, int h, uint8_t *mask,
                   samc_error *err) {
    memset(mask, 0, (size_t)w * (size_t)h);
    return amg_rle_paint(counts, n_counts, w, h, mask, NULL, err);
}

/* Connected components scratch, sized for the largest image seen. */
typedef struct {
    int32_t *labels;   /* [n]: 0 off, 1..count on */
    int32_t *stack;    /* [n] */
    int32_t *sizes;    /* [n + 1]: sizes[l] pixels in component l */
    size_t cap;
} cc_work;

static void cc_free(cc_work *c) {
    free(c->labels); free(c->stack); free(c->sizes);
    memset(c, 0, sizeof *c);
}

static int cc_reserve(cc_work *c, size_t n, samc_error *err) {
    if (n <= c->cap) return 0;
    cc_free(c);
    c->labels = malloc(sizeof(int32_t) * n);
    c->stack = malloc(sizeof(int32_t) * n);
    c->sizes = malloc(sizeof(int32_t) * (n + 1));
    if (!c->labels || !c->stack || !c->sizes) {
        cc_free(c);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for connected components of %zu pixels", n);
    }
    c->cap = n;
    return 0;
}

/* 8-connected components of on[h][w] != 0 (cv2.connectedComponentsWithStats(.., 8) and
 * the CUDA get_connected_components of SAM2), numbered in raster order of each
 * component's first pixel, as OpenCV numbers them. Returns the number of components. */
static int32_t cc_label(const uint8_t *on, int w, int h, cc_work *c) {
    size_t n = (size_t)w * h;
    int32_t count = 0;
    memset(c->labels, 0, sizeof(int32_t) * n);
    for (size_t p = 0; p < n; p++) {
        if (!on[p] || c->labels[p]) continue;
        int32_t lab = ++count, size = 0;
        size_t top = 0;
        c->labels[p] = lab;
        c->stack[top++] = (int32_t)p;
        while (top) {
            int32_t q = c->stack[--top];
            int qx = q % w, qy = q / w;
            size++;
            for (int dy = -1; dy <= 1; dy++) {
                int ny = qy + dy;
                if (ny < 0 || ny >= h) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = qx + dx;
                    if (nx < 0 || nx >= w) continue;
                    size_t r = (size_t)ny * w + nx;
                    if (on[r] && !c->labels[r]) {
                        c->labels[r] = lab;
                        c->stack[top++] = (int32_t)r;
                    }
                }
            }
        }
        c->sizes[lab] = size;
    }
    return count;
}

/* remove_small_regions on a mask, with caller scratch. work[n] is a byte buffer. */
static int remove_small_regions_ws(uint8_t *mask, int w, int h, double area_thresh, int holes,
                                   uint8_t *work, cc_work *c, int *changed) {
    size_t n = (size_t)w * h;
    /* working_mask = holes ^ mask: background regions for "holes", foreground for "islands" */
    for (size_t i = 0; i < n; i++) work[i] = (uint8_t)((holes ? 1 : 0) ^ (mask[i] != 0));
    int32_t count = cc_label(work, w, h, c);
    int n_small = 0;
    for (int32_t l = 1; l <= count; l++) n_small += (double)c->sizes[l] < area_thresh;
    *changed = 0;
    if (n_small == 0) return 0;
    *changed = 1;
    /* keep[l]: whether label l ends up in the mask (label 0 = outside the working mask).
     * holes: keep 0 and the small regions; islands: keep the regions that are not small,
     * or only the largest (the first largest) when every region is small. */
    uint8_t *keep = (uint8_t *)c->stack;  /* count + 1 bytes fit: count < n */
    keep[0] = (uint8_t)(holes ? 1 : 0);
    int any = 0;
    for (int32_t l = 1; l <= count; l++) {
        int small = (double)c->sizes[l] < area_thresh;
        keep[l] = (uint8_t)(holes ? small : !small);
        any |= !holes && keep[l];
    }
    if (!holes && !any) {
        int32_t best = 1;
        for (int32_t l = 2; l <= count; l++)
            if (c->sizes[l] > c->sizes[best]) best = l;
        keep[best] = 1;
    }
    for (size_t i = 0; i < n; i++) mask[i] = keep[c->labels[i]];
    return 0;
}

int amg_remove_small_regions(uint8_t *mask, int w, int h, double area_thresh, int holes,
                             int *changed, samc_error *err) {
    size_t n = (size_t)w * h;
    cc_work c = { 0 };
    uint8_t *work = malloc(n ? n : 1);
    if (!work || cc_reserve(&c, n ? n : 1, err)) {
        free(work);
        cc_free(&c);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for a %dx%d mask", w, h);
    }
    remove_small_regions_ws(mask, w, h, area_thresh, holes, work, &c, changed);
    free(work);
    cc_free(&c);
    return 0;
}

/* ---- NMS -------------------------------------------------------------------------- */

typedef struct { float s; int i; } scored;

/* Score descending, ties by index: the order of a stable descending sort. NaN first, as
 * torch.sort puts NaN above every number. */
static int scored_desc(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    int an = isnan(a->s), bn = isnan(b->s);
    if (an != bn) return an ? -1 : 1;
    if (!an && a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int amg_nms(const int (*boxes)[4], const float *scores, int n, double iou_thresh, int *keep,
            samc_error *err) {
    /* torchvision.ops.nms (csrc/ops/cpu/nms_kernel.cpp), which batched_nms with a single
     * category reduces to: float32 boxes, area = (x1 - x0) * (y1 - y0) (the generator's
     * boxes have inclusive max indices, so a one-pixel box has area 0 and IoU 0/0 = NaN,
     * never suppressed), suppress while IoU > thresh. */
    if (n <= 0) return 0;
    scored *order = malloc(sizeof *order * (size_t)n);
    float *area = malloc(sizeof *area * (size_t)n);
    uint8_t *suppressed = calloc((size_t)n, 1);
    if (!order || !area || !suppressed) {
        free(order); free(area); free(suppressed);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for NMS of %d boxes", n);
    }
    for (int i = 0; i < n; i++) {
        order[i].s = scores[i];
        order[i].i = i;
        area[i] = ((float)boxes[i][2] - (float)boxes[i][0]) * ((float)boxes[i][3] - (float)boxes[i][1]);
    }
    qsort(order, (size_t)n, sizeof *order, scored_desc);
    int kept = 0;
    for (int a = 0; a < n; a++) {
        int i = order[a].i;
        if (suppressed[i]) continue;
        keep[kept++] = i;
        float ix0 = (float)boxes[i][0], iy0 = (float)boxes[i][1], ix1 = (float)boxes[i][2], iy1 = (float)boxes[i][3];
        for (int b = a + 1; b < n; b++) {
            int j = order[b].i;
            if (suppressed[j]) continue;
            float xx0 = fmaxf(ix0, (float)boxes[j][0]), yy0 = fmaxf(iy0, (float)boxes[j][1]);
            float xx1 = fminf(ix1, (float)boxes[j][2]), yy1 = fminf(iy1, (float)boxes[j][3]);
            float iw = fmaxf(0.0f, xx1 - xx0), ih = fmaxf(0.0f, yy1 - yy0);
            float inter = iw * ih;
            float denom = area[i] + area[j] - inter;
            /* 0/0 is NaN in the kernel; spelled out so no float division by zero runs */
            if (denom == 0.0f) continue;
            float ovr = inter / denom;
            if ((double)ovr > iou_thresh) suppressed[j] = 1;
        }
    }
    free(order); free(area); free(suppressed);
    return kept;
}

/* ---- the generator ---------------------------------------------------------------- */

void amg_result_free(amg_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_masks; i++) free(r->masks[i].counts);
    free(r->masks);
    memset(r, 0, sizeof *r);
}

typedef struct {
    amg_mask *v;
    int n, cap;
} mask_list;

static amg_mask *mask_list_add(mask_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        amg_mask *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    amg_mask *m = &l->v[l->n++];
    memset(m, 0, sizeof *m);
    return m;
}

/* MaskData.filter(keep) on list[from, n): the kept records in keep order, others freed. */
static int mask_list_keep(mask_list *l, int from, const int *keep, int n_keep, samc_error *err) {
    int n = l->n - from;
    if (n <= 0) return 0;
    amg_mask *tmp = malloc(sizeof *tmp * (size_t)n);
    uint8_t *used = calloc((size_t)n, 1);
    if (!tmp || !used) {
        free(tmp); free(used);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory filtering %d masks", n);
    }
    memcpy(tmp, l->v + from, sizeof *tmp * (size_t)n);
    for (int k = 0; k < n_keep; k++) {
        l->v[from + k] = tmp[keep[k]];
        used[keep[k]] = 1;
    }
    for (int k = 0; k < n; k++)
        if (!used[k]) free(tmp[k].counts);
    l->n = from + n_keep;
    free(tmp); free(used);
    return 0;
}

/* NMS over list[from, n) with the given scores, then keep the survivors in NMS order. */
static int mask_list_nms(mask_list *l, int from, const float *scores, double thresh, samc_error *err) {
    int n = l->n - from;
    if (n <= 0) return 0;
    int (*boxes)[4] = malloc(sizeof *boxes * (size_t)n);
    int *keep = malloc(sizeof *keep * (size_t)n);
    if (!boxes || !keep) {
        free(boxes); free(keep);
        return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for NMS of %d masks", n);
    }
    for (int i = 0; i < n; i++) memcpy(boxes[i], l->v[from + i].box, sizeof boxes[i]);
    int kept = amg_nms((const int (*)[4])boxes, scores, n, thresh, keep, err);
    int rc = kept < 0 ? -1 : mask_list_keep(l, from, keep, kept, err);
    free(boxes); free(keep);
    return rc;
}

/* is_box_near_crop_edge with atol 20: a box side within 20 pixels of a crop side that is
 * not also within 20 pixels of the image side. box is in crop coordinates. */
static int near_crop_edge(const int box[4], const int crop[4], int w, int h) {
    const int image[4] = { 0, 0, w, h };
    const int off[4] = { crop[0], crop[1], crop[0], crop[1] };
    for (int k = 0; k < 4; k++) {
        int v = box[k] + off[k];
        int near_crop = abs(v - crop[k]) <= 20, near_image = abs(v - image[k]) <= 20;
        if (near_crop && !near_image) return 1;
    }
    return 0;
}

typedef struct {
    float *logits;   /* [crop_h][crop_w] one mask's logits */
    uint8_t *bin;    /* [crop_h][crop_w] the mask */
    float *iou;      /* [points_per_batch][masks per point] */
    float *points;   /* [points in the largest grid][2] */
    double *grid;    /* same, normalised */
} amg_buffers;

/* For images of npix pixels (the first crop is the whole image, the largest); the mask
 * buffers only for the host's filtering. */
static int buffers_alloc(amg_buffers *b, size_t npix, int filtered, size_t n_iou, int max_points) {
    if (!filtered) {
        b->logits = malloc(sizeof(float) * npix);
        b->bin = malloc(npix);
    }
    b->iou = malloc(sizeof(float) * n_iou);
    b->points = malloc(sizeof(float) * 2 * (size_t)max_points);
    b->grid = malloc(sizeof(double) * 2 * (size_t)max_points);
    return (!filtered && (!b->logits || !b->bin)) || !b->iou || !b->points || !b->grid ? -1 : 0;
}

static void buffers_free(amg_buffers *b) {
    free(b->logits); free(b->bin); free(b->iou); free(b->points); free(b->grid);
}

float amg_stability_score(const float *logits, size_t n, double mask_threshold, double offset) {
    /* calculate_stability_score: one mask always contains the other, so the IoU is a ratio
     * of counts, divided in float32; 0/0 (nothing above the low cut) is NaN as in PyTorch */
    const float hi = (float)(mask_threshold + offset), lo = (float)(mask_threshold - offset);
    int64_t inter = 0, uni = 0;
    for (size_t p = 0; p < n; p++) {
        inter += logits[p] > hi;
        uni += logits[p] > lo;
    }
    return uni ? (float)inter / (float)uni : NAN;
}

/* _process_batch for masks [b0, b0 + nb) of the crop: filter, binarize, box, RLE. */
static int process_batch(const amg_source *src, const amg_options *o, const int crop[4], int w, int h,
                         const float *pts, int nb, int M, amg_buffers *buf, mask_list *list,
                         amg_stats *st, samc_error *err) {
    int cw = crop[2] - crop[0], ch = crop[3] - crop[1];
    size_t npix = (size_t)cw * ch;
    double t0 = monotonic_ms();
    if (src->predict(src->ctx, pts, nb, buf->iou, err)) return -1;
    double t1 = monotonic_ms();
    st->decode_ms += t1 - t0;
    const float iou_thr = (float)o->pred_iou_thresh, stab_thr = (float)o->stability_score_thresh;
    const float mthr = (float)o->mask_threshold;
    for (int i = 0; i < nb; i++) {
        for (int t = 0; t < M; t++) {
            float iou = buf->iou[i * M + t];
            st->candidates++;
            /* masks.flatten(0, 1): point-major, token-minor, as MaskData keeps them */
            if (o->pred_iou_thresh > 0.0 && !(iou > iou_thr)) continue;
            st->passed_iou++;
            if (src->mask_logits(src->ctx, i, t, buf->logits, err)) return -1;
            float stab = amg_stability_score(buf->logits, npix, o->mask_threshold, o->stability_score_offset);
            if (o->stability_score_thresh > 0.0 && !(stab >= stab_thr)) continue;
            st->passed_stability++;
            for (size_t p = 0; p < npix; p++) buf->bin[p] = buf->logits[p] > mthr;
            int box[4];
            int64_t area = amg_mask_box(buf->bin, cw, ch, box);
            if (near_crop_edge(box, crop, w, h)) continue;
            st->passed_crop_edge++;
            amg_mask *m = mask_list_add(list);
            if (!m) return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d masks", list->n);
            if (amg_rle_encode(buf->bin, cw, ch, crop[0], crop[1], w, h, &m->counts, &m->n_counts, err)) {
                list->n--;
                return -1;
            }
            m->area = area;
            memcpy(m->box, box, sizeof m->box);
            m->predicted_iou = iou;
            m->stability_score = stab;
            m->point[0] = pts[2 * i];
            m->point[1] = pts[2 * i + 1];
            memcpy(m->crop_box, crop, sizeof m->crop_box);
        }
    }
    st->masks_ms += monotonic_ms() - t1;
    return 0;
}

/* _process_batch through the source's predict_filtered: the kept masks come back as
 * records with their runs (amg_options.backend_post). */
static int process_batch_filtered(const amg_source *src, const amg_options *o, const int crop[4], int w, int h,
                                  const float *pts, int nb, int M, mask_list *list, amg_stats *st,
                                  samc_error *err) {
    const samc_mask_filter f = { .crop = { crop[0], crop[1], crop[2], crop[3] }, .image_w = w, .image_h = h,
                                 .multimask = M == 3, .pred_iou_thresh = o->pred_iou_thresh,
                                 .stability_score_thresh = o->stability_score_thresh,
                                 .stability_score_offset = o->stability_score_offset,
                                 .mask_threshold = o->mask_threshold, .max_region = o->min_mask_region_area };
    double t0 = monotonic_ms();
    const samc_mask_records *r;
    if (src->predict_filtered(src->ctx, pts, nb, &f, &r, err)) return -1;
    st->candidates += r->candidates;
    st->passed_iou += r->passed_iou;
    st->passed_stability += r->passed_stability;
    st->passed_crop_edge += r->passed_edge;
    for (int i = 0; i < r->n_records; i++) {
        const samc_mask_record *rec = &r->records[i];
        amg_mask *m = mask_list_add(list);
        if (!m) return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d masks", list->n);
        if (rle_from_toggles(r->toggles + rec->first_toggle, rec->n_toggles, crop[2] - crop[0], crop[3] - crop[1],
                             crop[0], crop[1], w, h, &m->counts, &m->n_counts, err)) {
            list->n--;
            return -1;
        }
        m->area = rec->area;
        memcpy(m->box, rec->box, sizeof m->box);
        m->predicted_iou = rec->iou;
        m->stability_score = rec->stability;
        m->point[0] = pts[2 * rec->prompt];
        m->point[1] = pts[2 * rec->prompt + 1];
        memcpy(m->crop_box, crop, sizeof m->crop_box);
    }
    st->decode_ms += r->decode_ms;
    st->masks_ms += monotonic_ms() - t0 - r->decode_ms;
    return 0;
}

static int use_filtered(const amg_source *src, const amg_options *o) {
    if (!src->predict_filtered || o->backend_post < 0) return 0;
    return o->backend_post > 0 || src->filtered_on_device;
}

int amg_generate(const amg_source *src, int w, int h, const amg_options *o, amg_result *out,
                 samc_error *err) {
    if (!src || !src->set_crop || !src->predict || !src->mask_logits || !out)
        return samc_error_set(err, SAMC_ERR_ARG, "amg_generate: NULL argument");
    memset(out, 0, sizeof *out);
    if (amg_options_check(o, err)) return -1;
    if (w <= 0 || h <= 0 || (int64_t)w * h > ((int64_t)1 << 30))
        return samc_error_set(err, SAMC_ERR_ARG, "amg_generate: image size %dx%d is empty or too large", w, h);
    double t_start = monotonic_ms();
    amg_stats *st = &out->stats;
    int M = o->multimask_output ? 3 : 1;
    int n_crops = amg_crop_boxes(w, h, o->crop_n_layers, o->crop_overlap_ratio, NULL, NULL, 0);
    int (*crops)[4] = malloc(sizeof *crops * (size_t)n_crops);
    int *layers = malloc(sizeof *layers * (size_t)n_crops);
    amg_buffers buf = { 0 };
    mask_list list = { 0 };
    float *scores = NULL;
    int rc = -1;
    if (!crops || !layers) {
        samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d crop boxes", n_crops);
        goto done;
    }
    amg_crop_boxes(w, h, o->crop_n_layers, o->crop_overlap_ratio, crops, layers, n_crops);
    int max_points = layer_points(o, 0), total_batches = 0;   /* layer 0 has the most */
    int filtered = use_filtered(src, o);
    for (int c = 0; c < n_crops; c++)
        total_batches += (layer_points(o, layers[c]) + o->points_per_batch - 1) / o->points_per_batch;
    st->n_crops = n_crops;
    if (buffers_alloc(&buf, (size_t)w * h, filtered, (size_t)o->points_per_batch * M, max_points)) {
        samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for the buffers of a %dx%d image", w, h);
        goto done;
    }
    int batches_done = 0;
    for (int c = 0; c < n_crops; c++) {
        /* _process_crop */
        const int *crop = crops[c];
        int cw = crop[2] - crop[0], ch = crop[3] - crop[1];
        double t0 = monotonic_ms();
        if (o->cancelled && o->cancelled(o->cancel_ctx)) {
            samc_error_set(err, SAMC_ERR_ARG, "amg: cancelled before crop %d of %d", c + 1, n_crops);
            goto done;
        }
        if (src->set_crop(src->ctx, crop, err)) goto done;
        st->encode_ms += monotonic_ms() - t0;
        /* point_grids[layer] * (crop_w, crop_h) in float64, then float32 like the
         * torch.as_tensor(points, dtype=torch.float32) of _process_batch */
        int np = layer_points(o, layers[c]);
        const double *grid = o->point_grid;
        if (!grid) {
            amg_point_grid(layer_points_per_side(o, layers[c]), buf.grid);
            grid = buf.grid;
        }
        for (int k = 0; k < np; k++) {
            buf.points[2 * k] = (float)(grid[2 * k] * cw);
            buf.points[2 * k + 1] = (float)(grid[2 * k + 1] * ch);
        }
        st->n_points += np;
        int from = list.n;
        for (int b0 = 0; b0 < np; b0 += o->points_per_batch) {
            int nb = np - b0 < o->points_per_batch ? np - b0 : o->points_per_batch;
            const float *bp = buf.points + 2 * (size_t)b0;
            if (filtered ? process_batch_filtered(src, o, crop, w, h, bp, nb, M, &list, st, err)
                         : process_batch(src, o, crop, w, h, bp, nb, M, &buf, &list, st, err))
                goto done;
            st->n_batches++;
            if (o->progress) o->progress(o->progress_ctx, ++batches_done, total_batches);
            if (o->cancelled && o->cancelled(o->cancel_ctx)) {
                samc_error_set(err, SAMC_ERR_ARG, "amg: cancelled after batch %d of %d", batches_done, total_batches);
                goto done;
            }
        }
        /* duplicates within the crop: batched_nms on the predicted IoUs */
        t0 = monotonic_ms();
        int nc = list.n - from;
        free(scores);
        scores = malloc(sizeof *scores * (size_t)(nc ? nc : 1));
        if (!scores) {
            samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d scores", nc);
            goto done;
        }
        for (int k = 0; k < nc; k++) scores[k] = list.v[from + k].predicted_iou;
        if (mask_list_nms(&list, from, scores, o->box_nms_thresh, err)) goto done;
        st->after_box_nms += list.n - from;
        /* back to image coordinates: uncrop_boxes_xyxy, uncrop_points (float32 + int) */
        for (int k = from; k < list.n; k++) {
            amg_mask *m = &list.v[k];
            m->box[0] += crop[0]; m->box[1] += crop[1]; m->box[2] += crop[0]; m->box[3] += crop[1];
            m->point[0] += (float)crop[0];
            m->point[1] += (float)crop[1];
        }
        st->nms_ms += monotonic_ms() - t0;
    }
    if (n_crops > 1) {
        /* duplicates across crops: prefer smaller crops, score 1 / box_area(crop_box) in
         * float32; equal crops tie and keep their concatenation order */
        double t0 = monotonic_ms();
        free(scores);
        scores = malloc(sizeof *scores * (size_t)(list.n ? list.n : 1));
        if (!scores) {
            samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d scores", list.n);
            goto done;
        }
        for (int k = 0; k < list.n; k++) {
            const int *cb = list.v[k].crop_box;
            scores[k] = 1.0f / (float)((int64_t)(cb[2] - cb[0]) * (cb[3] - cb[1]));
        }
        if (mask_list_nms(&list, 0, scores, o->crop_nms_thresh, err)) goto done;
        st->nms_ms += monotonic_ms() - t0;
    }
    st->after_crop_nms = list.n;
    out->width = w;
    out->height = h;
    out->masks = list.v;
    out->n_masks = list.n;
    list.v = NULL;
    list.n = 0;
    rc = 0;
done:
    for (int k = 0; k < list.n; k++) free(list.v[k].counts);
    free(list.v);
    free(scores);
    buffers_free(&buf);
    free(crops);
    free(layers);
    st->total_ms = monotonic_ms() - t_start;
    return rc;
}

/* ---- postprocess_small_regions ---------------------------------------------------- */

int amg_postprocess_small_regions(amg_result *r, int min_area, double nms_thresh, samc_error *err) {
    if (!r) return samc_error_set(err, SAMC_ERR_ARG, "amg_postprocess_small_regions: NULL result");
    int n = r->n_masks, w = r->width, h = r->height;
    if (n == 0) return 0;
    size_t npix = (size_t)w * h;
    uint8_t *mask = malloc(npix), *work = malloc(npix);
    int (*boxes)[4] = malloc(sizeof *boxes * (size_t)n);
    float *scores = malloc(sizeof *scores * (size_t)n);
    int *keep = malloc(sizeof *keep * (size_t)n);
    uint32_t **new_counts = calloc((size_t)n, sizeof *new_counts);
    int64_t *new_n = calloc((size_t)n, sizeof *new_n);
    cc_work c = { 0 };
    int rc = -1;
    if (!mask || !work || !boxes || !scores || !keep || !new_counts || !new_n) {
        samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory post-processing %d masks of %dx%d", n, w, h);
        goto done;
    }
    if (cc_reserve(&c, npix, err)) goto done;
    for (int k = 0; k < n; k++) {
        amg_mask *m = &r->masks[k];
        if (amg_rle_decode(m->counts, m->n_counts, w, h, mask, err)) goto done;
        int ch_holes = 0, ch_islands = 0;
        remove_small_regions_ws(mask, w, h, (double)min_area, 1, work, &c, &ch_holes);
        remove_small_regions_ws(mask, w, h, (double)min_area, 0, work, &c, &ch_islands);
        /* score 1 for unchanged masks, 0 for changed: NMS prefers masks that needed no fix */
        int changed = ch_holes || ch_islands;
        scores[k] = changed ? 0.0f : 1.0f;
        amg_mask_box(mask, w, h, boxes[k]);
        if (changed && amg_rle_encode(mask, w, h, 0, 0, w, h, &new_counts[k], &new_n[k], err)) goto done;
    }
    int kept = amg_nms((const int (*)[4])boxes, scores, n, nms_thresh, keep, err);
    if (kept < 0) goto done;
    for (int i = 0; i < kept; i++) {
        int k = keep[i];
        if (!new_counts[k]) continue;
        amg_mask *m = &r->masks[k];
        free(m->counts);
        m->counts = new_counts[k];
        m->n_counts = new_n[k];
        new_counts[k] = NULL;
        memcpy(m->box, boxes[k], sizeof m->box);
        int64_t area = 0;
        for (int64_t j = 1; j < m->n_counts; j += 2) area += m->counts[j];   /* area_from_rle */
        m->area = area;
    }
    mask_list list = { r->masks, n, n };
    if (mask_list_keep(&list, 0, keep, kept, err)) goto done;
    r->masks = list.v;
    r->n_masks = list.n;
    rc = kept;
done:
    if (new_counts)
        for (int k = 0; k < n; k++) free(new_counts[k]);
    free(new_counts); free(new_n);
    free(mask); free(work); free(boxes); free(scores); free(keep);
    cc_free(&c);
    return rc;
}

/* ---- the samc model as the source ------------------------------------------------- */

typedef struct {
    samc_model *m;
    samc_image *img;
    const uint8_t *rgb;
    int w, h;
    uint8_t *crop_rgb;          /* [crop_h][crop_w][3] for crops smaller than the image */
    int cw, ch, ls, M;
    samc_masks out;
    samc_mask_records rec;      /* predict_filtered's */
    samc_prompt *prompts;       /* [cap] one single-point prompt per grid point */
    float *pts;                 /* [cap][2] */
    int *labels;                /* [cap] all 1 */
    int cap;
    int min_region;             /* max_hole_area = max_sprinkle_area */
    float thr;                  /* mask_threshold */
    float *low;                 /* [ls][ls] a mask after hole / sprinkle removal */
    uint8_t *on, *fix;          /* [ls][ls] */
    cc_work cc;
} samc_source;

static int samc_set_crop(void *ctx, const int crop[4], samc_error *err) {
    samc_source *s = ctx;
    s->cw = crop[2] - crop[0];
    s->ch = crop[3] - crop[1];
    const uint8_t *rgb = s->rgb;
    if (s->cw != s->w || s->ch != s->h) {
        /* image[y0:y1, x0:x1, :] as a packed image */
        if (!s->crop_rgb) {
            s->crop_rgb = malloc((size_t)s->w * s->h * 3);
            if (!s->crop_rgb) return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for a %dx%d crop", s->cw, s->ch);
        }
        for (int y = 0; y < s->ch; y++)
            memcpy(s->crop_rgb + (size_t)y * s->cw * 3, s->rgb + ((size_t)(crop[1] + y) * s->w + crop[0]) * 3,
                   (size_t)s->cw * 3);
        rgb = s->crop_rgb;
    }
    return samc_image_encode(s->m, s->img, rgb, s->cw, s->ch, err);
}

/* One single-point prompt per point, label 1 (in_points[:, None, :] of _process_batch). */
static int make_prompts(samc_source *s, const float *points, int n, samc_error *err) {
    if (n > s->cap) {
        free(s->prompts); free(s->pts); free(s->labels);
        s->prompts = malloc(sizeof *s->prompts * (size_t)n);
        s->pts = malloc(sizeof *s->pts * 2 * (size_t)n);
        s->labels = malloc(sizeof *s->labels * (size_t)n);
        s->cap = s->prompts && s->pts && s->labels ? n : 0;
        if (!s->cap) return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %d prompts", n);
    }
    /* _process_batch: each point is one prompt with label 1, in_points[:, None, :] */
    for (int i = 0; i < n; i++) {
        s->pts[2 * i] = points[2 * i];
        s->pts[2 * i + 1] = points[2 * i + 1];
        s->labels[i] = 1;
        s->prompts[i] = (samc_prompt){ .points = s->pts + 2 * i, .labels = s->labels + i, .n_points = 1 };
    }
    return 0;
}

static int samc_predict_filtered(void *ctx, const float *points, int n, const samc_mask_filter *f,
                                 const samc_mask_records **out, samc_error *err) {
    samc_source *s = ctx;
    if (make_prompts(s, points, n, err) || samc_predict_records(s->m, s->img, s->prompts, n, f, &s->rec, err))
        return -1;
    *out = &s->rec;
    return 0;
}

static int samc_predict_points(void *ctx, const float *points, int n, float *iou, samc_error *err) {
    samc_source *s = ctx;
    if (make_prompts(s, points, n, err)) return -1;
    /* Only the low-res logits: each mask is upsampled later, one at a time. Unclamped,
     * because the predictor upsamples before its clamp to +-32. */
    samc_predict_options po = { .multimask = s->M == 3, .want_masks = 0, .want_logits = 0,
                                .low_res_unclamped = 1 };
    if (samc_predict(s->m, s->img, s->prompts, n, &po, &s->out, err)) return -1;
    if (s->out.n_masks != s->M || s->out.low_size != s->ls)
        return samc_error_set(err, SAMC_ERR_INTERNAL, "amg: predict gave %d masks of %d^2, expected %d of %d^2",
                        s->out.n_masks, s->out.low_size, s->M, s->ls);
    memcpy(iou, s->out.iou, sizeof *iou * (size_t)n * s->M);
    return 0;
}

/* SAM2Transforms.postprocess_masks with max_hole_area = max_sprinkle_area = max_area on
 * src[h][w] into dst: both region sets come from src as given, then holes are set to
 * thr + 10 and sprinkles to thr - 10 (component area <= max_area, 8-connected). */
static void fill_small_regions_ws(const float *src, float *dst, int w, int h, float thr, int max_area,
                                  uint8_t *on, uint8_t *fix, cc_work *c) {
    size_t n = (size_t)w * h;
    memset(fix, 0, n);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: background (<= thr) holes; pass 1: foreground (> thr) sprinkles */
        for (size_t i = 0; i < n; i++) on[i] = pass ? src[i] > thr : src[i] <= thr;
        cc_label(on, w, h, c);
        for (size_t i = 0; i < n; i++) {
            int32_t l = c->labels[i];
            if (l > 0 && c->sizes[l] <= max_area) fix[i] = (uint8_t)(pass + 1);
        }
    }
    const float up = (float)((double)thr + 10.0), down = (float)((double)thr - 10.0);
    for (size_t i = 0; i < n; i++) dst[i] = fix[i] == 1 ? up : fix[i] == 2 ? down : src[i];
}

int amg_fill_small_regions(float *logits, int w, int h, double mask_threshold, int max_area,
                           samc_error *err) {
    size_t n = (size_t)w * h;
    cc_work c = { 0 };
    uint8_t *on = malloc(n ? n : 1), *fix = malloc(n ? n : 1);
    int rc = -1;
    if (!on || !fix) samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for a %dx%d mask", w, h);
    else if (cc_reserve(&c, n ? n : 1, err) == 0) {
        fill_small_regions_ws(logits, logits, w, h, (float)mask_threshold, max_area, on, fix, &c);
        rc = 0;
    }
    free(on); free(fix);
    cc_free(&c);
    return rc;
}

static int samc_mask_logits(void *ctx, int point, int token, float *out, samc_error *err) {
    samc_source *s = ctx;
    size_t n = (size_t)s->ls * s->ls;
    const float *low = s->out.low_res + ((size_t)point * s->M + token) * n;
    if (s->min_region > 0) {
        fill_small_regions_ws(low, s->low, s->ls, s->ls, s->thr, s->min_region, s->on, s->fix, &s->cc);
        low = s->low;
    }
    samc_upsample_logits(low, s->ls, out, s->cw, s->ch);
    return 0;
}

int amg_samc_source_new(samc_model *m, const uint8_t *rgb, int w, int h, const amg_options *opt,
                        amg_source *src, samc_error *err) {
    if (!m || !rgb || !opt || !src) return samc_error_set(err, SAMC_ERR_ARG, "amg_samc_source_new: NULL argument");
    memset(src, 0, sizeof *src);
    samc_source *s = calloc(1, sizeof *s);
    if (!s) return samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory");
    samc_model_info info;
    samc_model_get_info(m, &info);
    *s = (samc_source){ .m = m, .rgb = rgb, .w = w, .h = h, .ls = info.image_size / 4,
                        .M = opt->multimask_output ? 3 : 1, .min_region = opt->min_mask_region_area,
                        .thr = (float)opt->mask_threshold };
    src->ctx = s;
    src->set_crop = samc_set_crop;
    src->predict = samc_predict_points;
    src->mask_logits = samc_mask_logits;
    src->predict_filtered = samc_predict_filtered;
    src->filtered_on_device = info.backend && !strcmp(info.backend, "cuda");
    if (!(s->img = samc_image_new(m, err))) goto fail;
    if (s->min_region > 0) {
        size_t n = (size_t)s->ls * s->ls;
        s->low = malloc(sizeof(float) * n);
        s->on = malloc(n);
        s->fix = malloc(n);
        if (!s->low || !s->on || !s->fix) {
            samc_error_set(err, SAMC_ERR_NOMEM, "amg: out of memory for %dx%d region scratch", s->ls, s->ls);
            goto fail;
        }
        if (cc_reserve(&s->cc, n, err)) goto fail;
    }
    return 0;
fail:
    amg_samc_source_free(src);
    return -1;
}

void amg_samc_source_free(amg_source *src) {
    if (!src || !src->ctx) return;
    samc_source *s = src->ctx;
    if (s->img) samc_image_free(s->img);
    samc_masks_free(&s->out);
    samc_mask_records_free(&s->rec);
    free(s->crop_rgb); free(s->prompts); free(s->pts); free(s->labels);
    free(s->low); free(s->on); free(s->fix);
    cc_free(&s->cc);
    free(s);
    memset(src, 0, sizeof *src);
}

int amg_generate_samc(samc_model *m, const uint8_t *rgb, int w, int h, const amg_options *opt,
                      amg_result *out, samc_error *err) {
    if (!out) return samc_error_set(err, SAMC_ERR_ARG, "amg_generate_samc: NULL result");
    memset(out, 0, sizeof *out);
    amg_source src;
    if (amg_samc_source_new(m, rgb, w, h, opt, &src, err)) return -1;
    int rc = amg_generate(&src, w, h, opt, out, err);
    amg_samc_source_free(&src);
    return rc;
}
