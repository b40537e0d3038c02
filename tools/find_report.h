/* tools/find_report.h: what `samc find` parsed and found, and its outputs (mask PNGs,
 * instances.json, the overlay, the raw model outputs, the text or JSON report). */
#ifndef SAMC_FIND_REPORT_H
#define SAMC_FIND_REPORT_H
#include "tools/cli_util.h"
#include "util/image_io.h"
#include "model/samc.h"

typedef struct {
    const char *image, *model, *out, *vocab, *save_raw;
    const char **texts;         /* [n_texts] --text values */
    int n_texts;
    float (*boxes)[4];          /* [n_boxes] x0, y0, x1, y1 */
    int *box_labels;            /* [n_boxes] 1 positive, 0 negative exemplar */
    int n_boxes;
    cli_point *points;          /* [n_points] */
    int n_points;
    double threshold;
    long max_detections;
    int threads, json, verbose;
    cli_compute compute;        /* --device, --precision, --backend */
    char default_out[512];
    const char *dir;            /* the output folder, NULL when nothing is written */
    /* filled by the run */
    int n_sets;                 /* one result set per --text (one without text) */
    samc_instances *sets;       /* [n_sets] */
    samc_model_info info;
    double load_ms, encode_ms, find_ms, total_ms;
} find_args;

/* Writes --save-raw, the files in f->dir (when set) and the report (JSON with --json).
 * Returns the exit code; prints one error line on failure. */
int find_write_outputs(const find_args *f, const image_rgb *img);

#endif
