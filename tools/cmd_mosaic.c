/* tools/cmd_mosaic.c: `samc mosaic IN OUTDIR`: segment everything in a georeferenced
 * raster of any size (pipelines/mosaic/mosaic.h does the work), with the flags and YAML keys of
 * the sam-mosaic tool. Settings come from the defaults, then --config FILE, then the
 * flags (flags win wherever they stand on the line). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "model/samc.h"

#ifdef SAMC_HAVE_GDAL
#include <cjson/cJSON.h>
#include "pipelines/mosaic/config.h"
#include "pipelines/mosaic/mosaic.h"
#endif

void cmd_mosaic_help(FILE *f) {
    fprintf(f,
"usage: samc mosaic IN OUTDIR --model FILE [options]\n"
"\n"
"Segments everything in a large raster (GeoTIFF, BigTIFF, COG, or anything GDAL reads;\n"
"u8/u16/float, 1 to 4+ bands), as the sam-mosaic tool does, in bounded memory:\n"
"  1. the raster is cut into tiles of --tile-size pixels covering all of it (the last\n"
"     row and column may be narrower); each is read with --padding pixels of context;\n"
"  2. each tile is segmented in passes: pass 1 prompts a grid of points; later passes\n"
"     paint what is segmented black and prompt only where nothing is yet, lowering the\n"
"     IoU / stability thresholds when a pass gains little, until --target-coverage;\n"
"  3. each accepted mask piece gets a label; small pieces are merged into the segment\n"
"     enclosing them or removed;\n"
"  4. segments cut by tile borders are joined (--merge-strategy), and written as\n"
"     OUTDIR/labels.tif, OUTDIR/segments.shp (and .gpkg), OUTDIR/stats.json.\n"
"Outputs keep the input's CRS and geotransform. They appear under their final names\n"
"only when complete; Ctrl-C stops cleanly and leaves no partial output.\n"
"16-bit and float rasters are stretched to 8 bits by ONE rule for all tiles: the\n"
"global min..max of the used bands (nodata excluded), or --scale MIN,MAX.\n"
"\n"
"tiles:\n"
"  --tile-size N            useful tile side in pixels (default 1000)\n"
"  --padding N              context pixels on each side (default 50)\n"
"thresholds (lowered by --threshold-step each time a pass gains < 0.1%%):\n"
"  --iou-start T, --iou-end T                predicted IoU (default 0.93 -> 0.60)\n"
"  --stability-start T, --stability-end T    stability score (default 0.93 -> 0.60)\n"
"  --threshold-step D       (default 0.01)\n"
"  --no-adaptive-threshold  keep the start thresholds for every pass\n"
"segmentation:\n"
"  --points-per-side N      pass 1 grid of N x N points per tile (default 64)\n"
"  --points-per-batch N     points per decoder call (default 64; speed only)\n"
"  --target-coverage P      stop a tile at P%% of its pixels segmented (default 99)\n"
"  --max-passes N           at most N passes per tile (default: no limit)\n"
"  --no-black-mask          do not paint segmented areas black in later passes (the\n"
"                           tile is then encoded once and reused by every pass)\n"
"  --point-strategy S       points of later passes: kmeans (default: 64 k-means\n"
"                           centres of the unsegmented area) or dense_grid (the pass 1\n"
"                           grid, minus points on segmented pixels)\n"
"  --erosion N              erode the unsegmented area N times before placing points\n"
"                           (default 0)\n"
"  --crop-n-layers N        SAM crop layers per pass (default 0)\n"
"  --box-nms-thresh T       box NMS within a pass (default 0.7)\n"
"  --sort-by-area           accept small masks before large ones\n"
"merge and clean-up:\n"
"  --min-area N             smallest mask piece kept, in pixels (default 100)\n"
"  --merge-enclosed-max-area N  pieces up to N pixels enclosed by one segment join it\n"
"                           (default 500; 0 off)\n"
"  --merge-strategy S       across tile borders: best_match (default: each segment\n"
"                           joins its largest-contact partner), mutual_best, min_contact,\n"
"                           none\n"
"  --min-contact N          pixels of contact for min_contact (default 5)\n"
"input:\n"
"  --bands R,G,B            1-based bands to use as RGB (default: 1,2,3; one band is\n"
"                           used as gray)\n"
"  --scale MIN,MAX          8-bit stretch of non-8-bit rasters (default: global min/max)\n"
"output:\n"
"  --no-shapefile           no OUTDIR/segments.shp\n"
"  --geopackage             also OUTDIR/segments.gpkg\n"
"  --no-labels              no OUTDIR/labels.tif\n"
"  --no-stats               no OUTDIR/stats.json\n"
"  --simplify-tolerance D   polygon simplification in map units, topology kept\n"
"                           (default 1.0; 0 off)\n"
"  --config FILE            sam-mosaic YAML config (tile:, threshold:, segmentation:,\n"
"                           merge:, output:, sam_checkpoint); flags override it\n"
"run:\n"
"  --model FILE             weights (.safetensors or official .pt); also --checkpoint\n"
"  --threads N              CPU threads (default: one per core)\n"
"  --device D               cpu (default), cuda, or auto (CUDA when a GPU is usable,\n"
"                           else the CPU with a notice)\n"
"  --precision P            fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_75+)\n"
"  --backend B              auto (default), ref, fast, cuda\n"
"  --progress MODE          auto (default: a live line on a terminal, a line per few\n"
"                           tiles otherwise), json (one JSON object per line on\n"
"                           stdout), none\n"
"  -q, --quiet              no progress, only errors and the final line\n"
"  --json                   final summary as one JSON object on stdout\n"
"  --verbose                trace model stages on stderr\n"
"\n"
"examples:\n"
"  samc mosaic ortho.tif out/ --model sam2.1_hiera_large.safetensors\n"
"  samc mosaic ortho.tif out/ --config sam_mosaic.yaml --geopackage --progress json\n"
"  # urban scenes: dense grid, quicker test run\n"
"  samc mosaic city.tif out/ --model tiny.safetensors --point-strategy dense_grid \\\n"
"      --erosion 5 --max-passes 3\n");
}

#ifndef SAMC_HAVE_GDAL
int cmd_mosaic(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("mosaic", "this samc was built without GDAL; install libgdal-dev and rebuild (make)");
    return CLI_FAIL;
}
#else

/* ---- arguments -------------------------------------------------------------------- */

typedef enum { PROGRESS_AUTO, PROGRESS_JSON, PROGRESS_NONE } progress_mode;

typedef struct {
    const char *in, *out_dir, *model, *config;
    mosaic_options opt;
    char checkpoint[1024];        /* sam_checkpoint of --config */
    int threads, json, quiet, verbose;
    progress_mode progress;
    cli_compute compute;          /* --device, --precision, --backend */
} mosaic_args;

/* One error line for a library failure; mosaic/'s messages start with "mosaic: " already. */
static void mosaic_error(const samc_error *err) {
    cli_error("mosaic", "%s", strncmp(err->msg, "mosaic: ", 8) ? err->msg : err->msg + 8);
}

static int parse_list(cli_args *a, double *v, int n) {
    char flag[64];
    snprintf(flag, sizeof flag, "%s", a->flag);
    const char *s = cli_value(a);
    if (!s) return -1;
    float f[3];
    int got = 0;
    if (cli_parse_floats(s, f, n, &got) != 0 || got != n) {
        cli_error(flag, "'%s' is not %d comma-separated numbers", s, n);
        return -1;
    }
    for (int i = 0; i < n; i++) v[i] = f[i];
    return 0;
}

/* --config first, wherever it stands on the line, so that every flag overrides the file. */
static int load_config(int argc, char **argv, mosaic_args *m) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--config") || !strcmp(s, "-c")) {
            if (i + 1 >= argc) {
                cli_error(s, "missing value");
                return -1;
            }
            m->config = argv[i + 1];
        } else if (!strncmp(s, "--config=", 9)) {
            m->config = s + 9;
        }
    }
    if (!m->config) return 0;
    char why[1400];
    if (mosaic_config_load_yaml(m->config, &m->opt, m->checkpoint, sizeof m->checkpoint, why, sizeof why) != 0) {
        cli_error("--config", "%s", why);
        return -1;
    }
    if (m->checkpoint[0]) m->model = m->checkpoint;
    return 0;
}

/* --bands R,G,B and --scale MIN,MAX: 1 done, 0 neither, -1 bad value (printed). */
static int parse_input_flag(cli_args *a, const char *arg, mosaic_args *m) {
    if (!strcmp(arg, "--bands")) {
        double b[3];
        if (parse_list(a, b, 3) != 0) return -1;
        for (int i = 0; i < 3; i++) {
            if (b[i] < 1 || b[i] > 65535 || b[i] != floor(b[i])) {
                cli_error("--bands", "band %g is not a band number (1, 2, ...)", b[i]);
                return -1;
            }
            m->opt.bands[i] = (int)b[i];
        }
        m->opt.has_bands = 1;
        return 1;
    }
    if (!strcmp(arg, "--scale")) {
        if (parse_list(a, m->opt.scale, 2) != 0) return -1;
        if (!(m->opt.scale[1] > m->opt.scale[0])) {
            cli_error("--scale", "MAX %g must be greater than MIN %g", m->opt.scale[1], m->opt.scale[0]);
            return -1;
        }
        m->opt.has_scale = 1;
        return 1;
    }
    return 0;
}

/* The flags of the run itself (model, threads, device, progress, output style): 1 done,
 * 0 not one of them, -1 bad value (printed). */
static int parse_run_flag(cli_args *a, const char *arg, mosaic_args *m) {
    const char *v;
    int rc;
    if (!strcmp(arg, "--config") || !strcmp(arg, "-c")) return cli_value(a) ? 1 : -1;  /* read before */
    if (!strcmp(arg, "--model") || !strcmp(arg, "--checkpoint")) return (m->model = cli_value(a)) ? 1 : -1;
    if (!strcmp(arg, "--threads")) {
        long n;
        if (cli_value_long(a, 1, 4096, &n) != 0) return -1;
        m->threads = (int)n;
        return 1;
    }
    if ((rc = cli_compute_flag(a, arg, &m->compute)) != 0) return rc;
    if (!strcmp(arg, "--progress")) {
        if (!(v = cli_value(a))) return -1;
        if (!strcmp(v, "auto")) m->progress = PROGRESS_AUTO;
        else if (!strcmp(v, "json")) m->progress = PROGRESS_JSON;
        else if (!strcmp(v, "none")) m->progress = PROGRESS_NONE;
        else {
            cli_error("--progress", "'%s' is not one of auto, json, none", v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(arg, "--json") || !strcmp(arg, "--quiet") || !strcmp(arg, "-q") || !strcmp(arg, "--verbose") ||
        !strcmp(arg, "-v")) {
        if (cli_no_value(a) != 0) return -1;
        if (!strcmp(arg, "--json")) m->json = 1;
        else if (!strcmp(arg, "--verbose") || !strcmp(arg, "-v")) m->verbose = 1;
        else m->quiet = 1;
        return 1;
    }
    return 0;
}

/* What the flags cannot check one by one: positionals, the model, threshold order, the
 * options as a whole, the input. */
static int check_args(mosaic_args *m) {
    if (m->quiet && m->progress == PROGRESS_AUTO) m->progress = PROGRESS_NONE;
    if (!m->in || !m->out_dir) {
        cli_error("mosaic", "missing %s (see samc mosaic --help)", !m->in ? "IN and OUTDIR" : "OUTDIR");
        return -1;
    }
    if (!m->model) {
        cli_error("mosaic", "missing --model FILE (or sam_checkpoint in --config; see samc mosaic --help)");
        return -1;
    }
    const mosaic_multipass_options *p = &m->opt.mp;
    if (p->iou_end > p->iou_start) {
        cli_error("--iou-end", "%g is above --iou-start %g", p->iou_end, p->iou_start);
        return -1;
    }
    if (p->stability_end > p->stability_start) {
        cli_error("--stability-end", "%g is above --stability-start %g", p->stability_end, p->stability_start);
        return -1;
    }
    samc_error err = { 0 };
    if (mosaic_options_check(&m->opt, &err) != 0) {
        mosaic_error(&err);
        return -1;
    }
    struct stat st;
    if (stat(m->in, &st) != 0) {
        cli_error("IN", "cannot open '%s': %s", m->in, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        cli_error("IN", "'%s' is a folder, not a raster", m->in);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, mosaic_args *m) {
    mosaic_options_default(&m->opt);
    if (cli_compute_init(&m->compute) != 0) return -1;
    m->verbose = cli_debug_env();
    if (load_config(argc, argv, m) != 0) return -1;
    cli_args a;
    cli_args_init(&a, argc, argv, "mosaic");
    const char *arg;
    char why[1400];
    int rc;
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_mosaic_help(stdout);
            return 1;
        }
        if (!mosaic_config_switch(&m->opt, arg)) {
            if (cli_no_value(&a) != 0) return -1;
            continue;
        }
        if (mosaic_config_has(MOSAIC_NAME_FLAG, arg)) {
            /* a setting with a value: --tile-size 500 */
            char flag[64];
            snprintf(flag, sizeof flag, "%s", a.flag);
            const char *v = cli_value(&a);
            if (!v) return -1;
            if (mosaic_config_set(&m->opt, MOSAIC_NAME_FLAG, flag, v, why, sizeof why) != 0) {
                cli_error(flag, "%s", why);
                return -1;
            }
            continue;
        }
        if ((rc = parse_input_flag(&a, arg, m)) != 0 || (rc = parse_run_flag(&a, arg, m)) != 0) {
            if (rc < 0) return -1;
        } else if (cli_is_flag(arg)) {
            cli_unknown_flag(&a);
            return -1;
        } else if (!m->in) {
            m->in = arg;
        } else if (!m->out_dir) {
            m->out_dir = arg;
        } else {
            cli_extra_arg(&a);
            return -1;
        }
    }
    return check_args(m);
}

/* ---- progress and Ctrl-C ---------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static int interrupted(void *ctx) {
    (void)ctx;
    return g_interrupted != 0;
}

typedef struct {
    progress_mode mode;
    int tty, last_shown;
} progress_state;

static void fmt_duration(double s, char *buf, size_t n) {
    if (s < 0) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void show_progress(void *ctx, const mosaic_progress *p) {
    progress_state *ps = ctx;
    if (ps->mode == PROGRESS_NONE) return;
    if (ps->mode == PROGRESS_JSON) {
        printf("{\"phase\": \"%s\", \"tiles_done\": %d, \"tiles_total\": %d, \"tiles_skipped\": %d, "
               "\"coverage\": %.3f, \"segments\": %lld, \"elapsed_s\": %.2f, \"eta_s\": %.1f}\n",
               p->phase, p->tiles_done, p->tiles_total, p->tiles_skipped, p->coverage, (long long)p->segments,
               p->elapsed_s, p->eta_s);
        fflush(stdout);
        return;
    }
    char eta[32], el[32];
    fmt_duration(p->eta_s, eta, sizeof eta);
    fmt_duration(p->elapsed_s, el, sizeof el);
    if (strcmp(p->phase, "tiles") != 0) {
        if (ps->tty) fputc('\n', stderr);
        if (strcmp(p->phase, "done") != 0)
            fprintf(stderr, "samc: mosaic: %s: writing %s (%lld segments) ...\n", el,
                    !strcmp(p->phase, "labels") ? "labels.tif" : "polygons", (long long)p->segments);
        ps->tty = 0;  /* the live line is finished */
        return;
    }
    /* not a terminal: a line each 1% of the tiles (each tile below 100 tiles) */
    int step = p->tiles_total >= 100 ? p->tiles_total / 100 : 1;
    if (!ps->tty && p->tiles_done != p->tiles_total && p->tiles_done - ps->last_shown < step) return;
    ps->last_shown = p->tiles_done;
    fprintf(stderr, "%ssamc: mosaic: tile %d/%d (%d skipped) | coverage %.1f%% | %lld segments | %d passes | "
            "%s elapsed, ETA %s%s", ps->tty ? "\r" : "", p->tiles_done, p->tiles_total, p->tiles_skipped,
            p->coverage, (long long)p->segments, p->tile_passes, el, eta, ps->tty ? "\033[K" : "\n");
    fflush(stderr);
}

int cmd_mosaic(int argc, char **argv) {
    mosaic_args m;
    memset(&m, 0, sizeof m);
    int pr = parse_args(argc, argv, &m);
    if (pr > 0) return CLI_OK;
    if (pr < 0) return CLI_USAGE;

    samc_error err = { 0 };
    samc_options mo = { .n_threads = m.threads, .max_batch = m.opt.mp.points_per_batch };
    if (cli_compute_resolve(&m.compute, &mo) != 0) return CLI_USAGE;
    if (m.verbose) mo.log = cli_log_stderr;
    if (m.progress == PROGRESS_AUTO && isatty(2)) fprintf(stderr, "samc: mosaic: loading %s ...\n", m.model);
    samc_model *model = samc_model_load(m.model, &mo, &err);
    if (!model) {
        cli_lib_error("model", &err);
        return CLI_FAIL;
    }
    char *cfg = mosaic_config_json(&m.opt, m.model, m.config);
    m.opt.config_json = cfg;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_interrupted = 0;

    progress_state ps = { .mode = m.progress, .tty = isatty(2) };
    mosaic_callbacks cb = { .progress = show_progress, .progress_ctx = &ps, .cancelled = interrupted };
    mosaic_result res;
    int rc = mosaic_run(model, m.in, m.out_dir, &m.opt, &cb, &res, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(cfg);
    samc_model_free(model);
    if (rc != 0) {
        if (g_interrupted) {
            fprintf(stderr, "\nsamc: mosaic: interrupted: no output was written to %s\n", m.out_dir);
            return 130;
        }
        mosaic_error(&err);
        return CLI_FAIL;
    }
    if (m.json || m.progress == PROGRESS_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "phase", "summary");
        cJSON_AddNumberToObject(j, "segments", (double)res.segments);
        cJSON_AddNumberToObject(j, "segments_before_merge", (double)res.segments_before_merge);
        cJSON_AddNumberToObject(j, "coverage", res.coverage);
        cJSON_AddNumberToObject(j, "tiles", res.tiles);
        cJSON_AddNumberToObject(j, "tiles_skipped", res.tiles_skipped);
        cJSON_AddNumberToObject(j, "seconds", res.total_s);
        cJSON *files = cJSON_AddObjectToObject(j, "files");
        if (res.labels_path[0]) cJSON_AddStringToObject(files, "labels", res.labels_path);
        if (res.shp_path[0]) cJSON_AddStringToObject(files, "shapefile", res.shp_path);
        if (res.gpkg_path[0]) cJSON_AddStringToObject(files, "geopackage", res.gpkg_path);
        if (res.stats_path[0]) cJSON_AddStringToObject(files, "stats", res.stats_path);
        char *t = cJSON_PrintUnformatted(j);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(j);
    } else {
        printf("samc: mosaic: %lld segments (%lld before the border merge), coverage %.1f%%, %d tiles "
               "(%d skipped), %.1f s -> %s\n", (long long)res.segments, (long long)res.segments_before_merge,
               res.coverage, res.tiles, res.tiles_skipped, res.total_s, m.out_dir);
    }
    return CLI_OK;
}
#endif
