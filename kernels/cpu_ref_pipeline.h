/* kernels/cpu_ref_pipeline.h: the reference twins of the image-pipeline ops of
 * kernels/ops.h (preprocess, mask_stats, mask_runs), for cpu_ref's table; and the one
 * bilinear sample that upsample_bilinear and the mask statistics share. */
#ifndef SAMC_CPU_REF_PIPELINE_H
#define SAMC_CPU_REF_PIPELINE_H
#include "kernels/ops.h"

/* PyTorch upsample_bilinear2d (align_corners=False) at output pixel (x, y) of a map
 * in[ls, ls] scaled by sx = ls / w, sy = ls / h: source coordinate scale*(dst+0.5)-0.5
 * clamped at 0, the upper neighbour clamped at the last row / column. */
static inline float ref_bilinear_px(const float *in, int ls, float sx, float sy, int x, int y) {
    float ry = sy * ((float)y + 0.5f) - 0.5f;
    if (ry < 0.0f) ry = 0.0f;
    int y0 = (int)ry, y1 = y0 + (y0 < ls - 1);
    float ly1 = ry - (float)y0, ly0 = 1.0f - ly1;
    float rx = sx * ((float)x + 0.5f) - 0.5f;
    if (rx < 0.0f) rx = 0.0f;
    int x0 = (int)rx, x1 = x0 + (x0 < ls - 1);
    float lx1 = rx - (float)x0, lx0 = 1.0f - lx1;
    return ly0 * (lx0 * in[(size_t)y0 * ls + x0] + lx1 * in[(size_t)y0 * ls + x1]) +
           ly1 * (lx0 * in[(size_t)y1 * ls + x0] + lx1 * in[(size_t)y1 * ls + x1]);
}

void preprocess_ref(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out,
                    int S);
void mask_stats_ref(const samc_ops *o, const samc_mask_post_args *a);
void mask_runs_ref(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs);

#endif
