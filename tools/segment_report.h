/* tools/segment_report.h: what `samc segment` parsed and measured, and its outputs
 * (mask PNGs, the low-res file, the text or JSON report). */
#ifndef SAMC_SEGMENT_REPORT_H
#define SAMC_SEGMENT_REPORT_H
#include "tools/cli_util.h"
#include "model/samc.h"

typedef struct {
    const char *image, *model, *mask_input, *out, *save_lowres;
    char default_out[512];      /* used when --out is not given */
    cli_point *points;          /* [n_points] */
    int n_points;
    float (*boxes)[4];          /* [n_boxes][4] x0, y0, x1, y1 */
    int n_boxes;
    int multimask;              /* -1 until the default is chosen */
    int threads, json, verbose;
    cli_compute compute;        /* --device, --precision, --backend */
    /* filled by the run */
    samc_model_info info;
    samc_timings timings;
    double total_ms;            /* model load + encode + predict, wall clock */
} segment_args;

/* Writes the mask PNGs and the optional low-res file, then prints the report (JSON with
 * --json). Returns the exit code; prints one error line on failure. */
int segment_write_outputs(const segment_args *s, const samc_masks *out);

#endif
