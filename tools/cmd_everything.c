/* tools/cmd_everything.c: `samc everything`: automatic mask generation for one image.
 *
 * What SAM2AutomaticMaskGenerator(model, ...).generate(image) does with
 * output_mode="uncompressed_rle" (pipelines/amg/amg.h does the work): the records go to
 * DIR/masks.json with the official keys, and DIR/overlay.png shows them over the image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include "pipelines/amg/amg.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/overlay.h"
#include "tools/report.h"
#include "util/image_io.h"
#include "model/samc.h"

void cmd_everything_help(FILE *f) {
    fprintf(f,
"usage: samc everything IMAGE --model FILE [options]\n"
"\n"
"Finds every object in IMAGE without prompts, as SAM2's automatic mask generator does:\n"
"the model is prompted with a grid of single points, each giving three candidate masks;\n"
"candidates are filtered by predicted quality and stability, duplicates are removed by\n"
"box non-maximum suppression (NMS), and the survivors are written as run-length encoded\n"
"masks. Defaults are the official SAM2AutomaticMaskGenerator ones.\n"
"\n"
"sampling:\n"
"  --points-per-side N        grid of N x N points over the image (default 32); the\n"
"                             decoder runs N*N times, so time grows with N^2\n"
"  --points-per-batch N       points per decoder call (default 64); speed only\n"
"filters:\n"
"  --pred-iou-thresh T        keep masks whose predicted IoU is > T, in [0, 1]\n"
"                             (default 0.8; 0 disables)\n"
"  --stability-thresh T       keep masks whose stability score is >= T, in [0, 1]\n"
"                             (default 0.95; 0 disables). The score is the IoU of the\n"
"                             mask thresholded at +offset and at -offset (logits).\n"
"  --stability-offset D       that logit offset, >= 0 (default 1.0)\n"
"  --box-nms-thresh T         drop a mask whose box overlaps a better one with IoU > T,\n"
"                             in [0, 1] (default 0.7; lower removes more)\n"
"crops (more, smaller objects; each crop is encoded again):\n"
"  --crop-n-layers N          extra layers of crops, layer i having 2^i x 2^i crops,\n"
"                             in [0, 4] (default 0: the whole image only)\n"
"  --crop-nms-thresh T        NMS IoU across crops, in [0, 1] (default 0.7); smaller\n"
"                             crops win\n"
"  --crop-overlap-ratio R     overlap of neighbouring crops as a fraction of the short\n"
"                             side, in [0, 1) (default 512/1500 = 0.3413)\n"
"  --crop-n-points-downscale-factor F\n"
"                             layer i uses points-per-side / F^i points per side\n"
"                             (default 1)\n"
"clean-up:\n"
"  --min-mask-region-area A   before thresholding, fill holes and remove islands of at\n"
"                             most A pixels in each mask's low-res (S/4 x S/4) logits,\n"
"                             as the official generator does (default 0: off)\n"
"  --remove-small-regions A   after generation, fill holes and remove islands smaller\n"
"                             than A pixels at full resolution and redo NMS (SAM1's\n"
"                             postprocess_small_regions; default 0: off)\n"
"output:\n"
"  --out DIR                  output folder, created if missing (default: <image name\n"
"                             without extension>_masks): DIR/masks.json, a JSON array of\n"
"                             records {segmentation: {size: [h, w], counts: [...]},\n"
"                             area, bbox [x, y, w, h], predicted_iou, point_coords\n"
"                             [[x, y]], stability_score, crop_box [x, y, w, h]}; counts\n"
"                             are column-major run lengths starting with a run of 0s.\n"
"                             DIR/overlay.png: the masks in colour over the image.\n"
"  --json                     print counts at each step, files and timings as JSON\n"
"options:\n"
"  --model FILE               weights: .safetensors (F32/F16/BF16) or an official .pt\n"
"  --threads N                CPU threads (default: one per core)\n"
"  --device D                 cpu (default), cuda, or auto: CUDA when a GPU is usable,\n"
"                             else the CPU with a notice on stderr (or SAMC_DEVICE)\n"
"  --precision P              fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+):\n"
"                             matrix products in 16 bits, fp32 accumulation (or\n"
"                             SAMC_PRECISION); bf16 also on a CPU with Intel AMX\n"
"                             (Xeon 4th generation or later)\n"
"  --backend B                auto (default), ref, fast, cuda (or SAMC_BACKEND)\n"
"  --verbose                  trace each model stage on stderr (also SAMC_DEBUG=1)\n"
"Progress (batches done / total) is shown on stderr when it is a terminal.\n"
"\n"
"examples:\n"
"  samc everything truck.jpg --model sam2.1_hiera_large.safetensors --out truck_masks\n"
"  # faster and coarser: 16 x 16 points, laxer filters\n"
"  samc everything truck.jpg --model tiny.safetensors --points-per-side 16 \\\n"
"      --pred-iou-thresh 0.7 --stability-thresh 0.9 --json\n"
"  # small objects too: one layer of 2 x 2 crops\n"
"  samc everything truck.jpg --model tiny.safetensors --crop-n-layers 1\n");
}

typedef struct {
    const char *image, *model, *out;
    char default_out[512];
    amg_options amg;
    long remove_small;          /* --remove-small-regions, 0 off */
    int threads, json, verbose, progress;
    cli_compute compute;        /* --device, --precision, --backend */
    /* filled by the run */
    samc_model_info info;
    double load_ms, generate_ms, small_ms, write_ms, total_ms;
    int64_t after_small;
    char json_path[4200], overlay_path[4200];
} everything_args;

static int value_int(cli_args *a, long lo, long hi, int *out) {
    long n;
    if (cli_value_long(a, lo, hi, &n) != 0) return -1;
    *out = (int)n;
    return 0;
}

static int parse_args(int argc, char **argv, everything_args *e) {
    cli_args a;
    cli_args_init(&a, argc, argv, "everything");
    amg_options_default(&e->amg);
    if (cli_compute_init(&e->compute) != 0) return -1;
    e->verbose = cli_debug_env();
    amg_options *o = &e->amg;
    const char *arg;
    while ((arg = cli_next(&a)) != NULL) {
        int rc = 0;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_everything_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--model")) {
            if (!(e->model = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--out") || !strcmp(arg, "-o")) {
            if (!(e->out = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--points-per-side")) {
            rc = value_int(&a, 1, 1024, &o->points_per_side);
        } else if (!strcmp(arg, "--points-per-batch")) {
            rc = value_int(&a, 1, 4096, &o->points_per_batch);
        } else if (!strcmp(arg, "--pred-iou-thresh")) {
            rc = cli_value_double(&a, 0.0, 1.0, 0, &o->pred_iou_thresh);
        } else if (!strcmp(arg, "--stability-thresh")) {
            rc = cli_value_double(&a, 0.0, 1.0, 0, &o->stability_score_thresh);
        } else if (!strcmp(arg, "--stability-offset")) {
            rc = cli_value_double(&a, 0.0, 1e6, 0, &o->stability_score_offset);
        } else if (!strcmp(arg, "--box-nms-thresh")) {
            rc = cli_value_double(&a, 0.0, 1.0, 0, &o->box_nms_thresh);
        } else if (!strcmp(arg, "--crop-n-layers")) {
            rc = value_int(&a, 0, 4, &o->crop_n_layers);
        } else if (!strcmp(arg, "--crop-nms-thresh")) {
            rc = cli_value_double(&a, 0.0, 1.0, 0, &o->crop_nms_thresh);
        } else if (!strcmp(arg, "--crop-overlap-ratio")) {
            rc = cli_value_double(&a, 0.0, 1.0, 1, &o->crop_overlap_ratio);
        } else if (!strcmp(arg, "--crop-n-points-downscale-factor")) {
            rc = value_int(&a, 1, 1024, &o->crop_n_points_downscale_factor);
        } else if (!strcmp(arg, "--min-mask-region-area")) {
            rc = value_int(&a, 0, 1L << 30, &o->min_mask_region_area);
        } else if (!strcmp(arg, "--remove-small-regions")) {
            rc = cli_value_long(&a, 0, 1L << 30, &e->remove_small);
        } else if (!strcmp(arg, "--threads")) {
            rc = value_int(&a, 1, 4096, &e->threads);
        } else if ((rc = cli_compute_flag(&a, arg, &e->compute)) != 0) {
            if (rc < 0) return -1;
            rc = 0;
        } else if (!strcmp(arg, "--json") || !strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            if (cli_no_value(&a) != 0) return -1;
            if (!strcmp(arg, "--json")) e->json = 1;
            else e->verbose = 1;
        } else if (!cli_is_flag(arg) && !e->image) {
            e->image = arg;
        } else {
            return cli_refuse(&a, arg);
        }
        if (rc != 0) return -1;
    }
    if (!e->image) return cli_missing(&a, "IMAGE");
    if (!e->model) return cli_missing(&a, "--model FILE");
    /* build_all_layer_point_grids: layer i has int(points / factor^i) points per side */
    long per_side = o->points_per_side;
    for (int i = 0; i < o->crop_n_layers && per_side > 0; i++) per_side /= o->crop_n_points_downscale_factor;
    if (per_side < 1) {
        cli_error("--crop-n-points-downscale-factor", "%d^%d is more than --points-per-side %d: crop layer %d "
                  "would have no points", o->crop_n_points_downscale_factor, o->crop_n_layers,
                  o->points_per_side, o->crop_n_layers);
        return -1;
    }
    return 0;
}

static void show_progress(void *ctx, int done, int total) {
    (void)ctx;
    fprintf(stderr, "\rsamc: everything: batch %d/%d", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

static int run_generator(everything_args *e, const image_rgb *img, amg_result *r) {
    samc_error err = { 0 };
    samc_options opt = { .n_threads = e->threads };
    if (cli_compute_resolve(&e->compute, &opt) != 0) return CLI_USAGE;
    /* on the GPU a decoder batch is a whole points_per_batch (the masks are filtered there) */
    if (opt.backend == SAMC_BACKEND_CUDA) opt.max_batch = e->amg.points_per_batch;
    if (e->verbose) opt.log = cli_log_stderr;
    double t0 = cli_now_ms();
    samc_model *m = samc_model_load(e->model, &opt, &err);
    if (!m) {
        cli_lib_error("model", &err);
        return CLI_FAIL;
    }
    samc_model_get_info(m, &e->info);
    if (cli_check_family("everything", e->model, &e->info, SAMC_FAMILY_SAM2) != 0) {
        samc_model_free(m);
        return CLI_FAIL;
    }
    e->load_ms = cli_now_ms() - t0;
    if (e->progress) {
        e->amg.progress = show_progress;
        e->amg.progress_ctx = e;
    }
    t0 = cli_now_ms();
    int rc = amg_generate_samc(m, img->rgb, img->w, img->h, &e->amg, r, &err);
    e->generate_ms = cli_now_ms() - t0;
    samc_model_free(m);
    if (rc != 0) {
        if (e->progress) fputc('\n', stderr);   /* end the progress line first */
        cli_lib_error("everything", &err);
        return CLI_FAIL;
    }
    e->after_small = r->n_masks;
    if (e->remove_small > 0) {
        t0 = cli_now_ms();
        double thresh = fmax(e->amg.box_nms_thresh, e->amg.crop_nms_thresh);   /* as SAM1's generate() */
        if (amg_postprocess_small_regions(r, (int)e->remove_small, thresh, &err) < 0) {
            cli_lib_error("--remove-small-regions", &err);
            return CLI_FAIL;
        }
        e->small_ms = cli_now_ms() - t0;
        e->after_small = r->n_masks;
    }
    return CLI_OK;
}

/* ---- outputs ---------------------------------------------------------------------- */

static int write_records(FILE *f, void *ctx) { return amg_write_json(f, ctx); }

static int by_area_desc(const void *pa, const void *pb, void *ctx) {
    const amg_result *r = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    if (r->masks[a].area != r->masks[b].area) return r->masks[a].area > r->masks[b].area ? -1 : 1;
    return (a > b) - (a < b);
}

/* Every mask blended over the image in its colour, largest first so small ones stay
 * visible on top. */
static int write_overlay(const everything_args *e, const image_rgb *img, const amg_result *r) {
    size_t n = (size_t)img->w * img->h;
    uint8_t *out = malloc(n * 3);
    int *order = malloc(sizeof *order * (size_t)(r->n_masks ? r->n_masks : 1));
    if (!out || !order) {
        free(out); free(order);
        cli_error("--out", "out of memory for a %dx%d overlay", img->w, img->h);
        return -1;
    }
    memcpy(out, img->rgb, n * 3);
    for (int k = 0; k < r->n_masks; k++) order[k] = k;
    qsort_r(order, (size_t)r->n_masks, sizeof *order, by_area_desc, (void *)r);
    for (int o = 0; o < r->n_masks; o++) {
        uint8_t c[3];
        overlay_colour(order[o], c);
        overlay_paint_rle(out, img->w, img->h, r->masks[order[o]].counts, r->masks[order[o]].n_counts, c);
    }
    free(order);
    int rc = overlay_write_png("--out", e->overlay_path, out, img->w, img->h);
    free(out);
    return rc;
}

static void print_text(const everything_args *e, const amg_result *r) {
    const amg_stats *s = &r->stats;
    const amg_options *o = &e->amg;
    char threads[32] = "";
    if (e->info.n_threads > 0) snprintf(threads, sizeof threads, ", %d threads", e->info.n_threads);
    printf("%s: %dx%d, model %s (%s %s%s)\n", e->image, r->width, r->height, e->info.config,
           e->info.backend ? e->info.backend : "?", e->info.precision ? e->info.precision : "?", threads);
    printf("  %d points (%dx%d grid) in %d batches, %d crop%s\n", s->n_points, o->points_per_side,
           o->points_per_side, s->n_batches, s->n_crops, s->n_crops > 1 ? "s" : "");
    printf("  %lld candidates -> %lld IoU > %g -> %lld stability >= %g -> %lld off crop edges -> %lld after NMS",
           (long long)s->candidates, (long long)s->passed_iou, o->pred_iou_thresh, (long long)s->passed_stability,
           o->stability_score_thresh, (long long)s->passed_crop_edge, (long long)s->after_box_nms);
    if (s->n_crops > 1) printf(" -> %lld after crop NMS", (long long)s->after_crop_nms);
    if (e->remove_small > 0) printf(" -> %lld after small-region removal", (long long)e->after_small);
    printf("\n  %d mask%s -> %s, %s\n", r->n_masks, r->n_masks == 1 ? "" : "s", e->json_path, e->overlay_path);
    printf("load %.1f ms, encode %.1f ms, decode %.1f ms, masks %.1f ms, total %.1f ms\n", e->load_ms,
           s->encode_ms, s->decode_ms, s->masks_ms, e->total_ms);
}

static int print_json(const everything_args *e, const amg_result *r) {
    const amg_stats *s = &r->stats;
    const amg_options *o = &e->amg;
    cJSON *root = cJSON_CreateObject();
    cJSON *im = cJSON_AddObjectToObject(root, "image");
    cJSON_AddStringToObject(im, "file", e->image);
    cJSON_AddNumberToObject(im, "width", r->width);
    cJSON_AddNumberToObject(im, "height", r->height);
    cJSON_AddStringToObject(root, "model", e->model);
    report_model_json(root, &e->info);
    cJSON *p = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(p, "points_per_side", o->points_per_side);
    cJSON_AddNumberToObject(p, "points_per_batch", o->points_per_batch);
    cJSON_AddNumberToObject(p, "pred_iou_thresh", o->pred_iou_thresh);
    cJSON_AddNumberToObject(p, "stability_score_thresh", o->stability_score_thresh);
    cJSON_AddNumberToObject(p, "stability_score_offset", o->stability_score_offset);
    cJSON_AddNumberToObject(p, "box_nms_thresh", o->box_nms_thresh);
    cJSON_AddNumberToObject(p, "crop_n_layers", o->crop_n_layers);
    cJSON_AddNumberToObject(p, "crop_nms_thresh", o->crop_nms_thresh);
    cJSON_AddNumberToObject(p, "crop_overlap_ratio", o->crop_overlap_ratio);
    cJSON_AddNumberToObject(p, "crop_n_points_downscale_factor", o->crop_n_points_downscale_factor);
    cJSON_AddNumberToObject(p, "min_mask_region_area", o->min_mask_region_area);
    cJSON_AddNumberToObject(p, "remove_small_regions", (double)e->remove_small);
    cJSON *c = cJSON_AddObjectToObject(root, "counts");
    cJSON_AddNumberToObject(c, "crops", s->n_crops);
    cJSON_AddNumberToObject(c, "points", s->n_points);
    cJSON_AddNumberToObject(c, "batches", s->n_batches);
    cJSON_AddNumberToObject(c, "candidates", (double)s->candidates);
    cJSON_AddNumberToObject(c, "passed_iou", (double)s->passed_iou);
    cJSON_AddNumberToObject(c, "passed_stability", (double)s->passed_stability);
    cJSON_AddNumberToObject(c, "passed_crop_edge", (double)s->passed_crop_edge);
    cJSON_AddNumberToObject(c, "after_nms", (double)s->after_box_nms);
    cJSON_AddNumberToObject(c, "after_crop_nms", (double)s->after_crop_nms);
    cJSON_AddNumberToObject(c, "after_small_regions", (double)e->after_small);
    cJSON_AddNumberToObject(c, "masks", r->n_masks);
    cJSON *f = cJSON_AddObjectToObject(root, "files");
    cJSON_AddStringToObject(f, "masks", e->json_path);
    cJSON_AddStringToObject(f, "overlay", e->overlay_path);
    cJSON *t = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(t, "load_ms", e->load_ms);
    cJSON_AddNumberToObject(t, "encode_ms", s->encode_ms);
    cJSON_AddNumberToObject(t, "decode_ms", s->decode_ms);
    cJSON_AddNumberToObject(t, "masks_ms", s->masks_ms);
    cJSON_AddNumberToObject(t, "nms_ms", s->nms_ms);
    cJSON_AddNumberToObject(t, "generate_ms", e->generate_ms);
    cJSON_AddNumberToObject(t, "small_regions_ms", e->small_ms);
    cJSON_AddNumberToObject(t, "write_ms", e->write_ms);
    cJSON_AddNumberToObject(t, "total_ms", e->total_ms);
    return report_print_json(root);
}

int cmd_everything(int argc, char **argv) {
    everything_args e;
    memset(&e, 0, sizeof e);
    int rc = parse_args(argc, argv, &e);
    if (rc != 0) return rc > 0 ? CLI_OK : CLI_USAGE;
    double t0 = cli_now_ms();
    image_rgb img = { 0 };
    amg_result r = { 0 };
    char why[512];
    rc = CLI_FAIL;
    if (image_load_rgb(e.image, &img, why, sizeof why) != 0) {
        cli_error(e.image, "%s", why);
        goto done;
    }
    if (!e.out) cli_default_name(e.image, "_masks", e.default_out, sizeof e.default_out);
    const char *dir = e.out ? e.out : e.default_out;
    if (cli_prepare_out_dir("--out", dir) != 0) goto done;
    snprintf(e.json_path, sizeof e.json_path, "%s/masks.json", dir);
    snprintf(e.overlay_path, sizeof e.overlay_path, "%s/overlay.png", dir);
    e.progress = isatty(STDERR_FILENO) && !e.verbose;
    if (run_generator(&e, &img, &r) != CLI_OK) goto done;
    double tw = cli_now_ms();
    if (cli_write_atomic("--out", e.json_path, write_records, &r) != 0 || write_overlay(&e, &img, &r) != 0) goto done;
    e.write_ms = cli_now_ms() - tw;
    e.total_ms = cli_now_ms() - t0;
    if (e.json) {
        rc = print_json(&e, &r);
    } else {
        print_text(&e, &r);
        rc = CLI_OK;
    }
done:
    amg_result_free(&r);
    image_free(&img);
    return rc;
}
