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
"concepts (SAM3 weights: every instance of a class instead of everything):\n"
"  --text PHRASE            a class to find in every tile (\"roof\"); repeat it for\n"
"                           several classes. Each tile is encoded once and searched for\n"
"                           each text (samc find); a pixel goes to the instance of highest\n"
"                           score covering it; instances cut by tile borders are joined\n"
"                           within their class. The polygons get the fields label_id,\n"
"                           class, score, area, perimeter; stats.json a \"classes\" table.\n"
"                           The pass and point settings above do not apply.\n"
"  --threshold T            keep instances with score > T, in [-1, 1] (default 0.5)\n"
"  --vocab FILE             the CLIP vocabulary when the weights carry none (SAMC_VOCAB)\n"
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
"                           else the CPU with a notice); cuda:0,cuda:1,... spreads the\n"
"                           tiles over those GPUs, one model copy on each\n"
"  --workers N              CPU: N model copies segment tiles side by side, each with\n"
"                           threads/N threads (default 1); same output as one\n"
"  --precision P            fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+);\n"
"                           bf16 also on a CPU with Intel AMX (Xeon 4th gen or later)\n"
"  --backend B              auto (default), ref, fast, cuda\n"
"  --progress MODE          auto (default: a live line on a terminal, a line per few\n"
"                           tiles otherwise), json (one JSON object per line on\n"
"                           stdout), none\n"
"  -q, --quiet              no progress, only errors and the final line\n"
"  --json                   final summary as one JSON object on stdout\n"
"  --verbose                trace model stages on stderr\n"
"several machines (docs/mosaic-cluster.md: Slurm, Kubernetes, Dask recipes):\n"
"  --shard K/N              segment only shard K of N (K = 0..N-1: contiguous bands of\n"
"                           tile rows) into OUTDIR/shards/K/; a shard already complete\n"
"                           there is left as it is (exit 0), so retries are safe\n"
"  samc mosaic merge OUTDIR joins shards 0..N-1 into the outputs above, the same as one\n"
"                           run with those options (they come from the shards)\n"
"IN may be any GDAL path: /vsicurl/https://..., /vsis3/bucket/key.tif, /vsigs/...,\n"
"/vsiaz/... (credentials from GDAL's usual environment variables).\n"
"\n"
"examples:\n"
"  samc mosaic ortho.tif out/ --model sam2.1_hiera_large.safetensors\n"
"  samc mosaic ortho.tif out/ --config sam_mosaic.yaml --geopackage --progress json\n"
"  # urban scenes: dense grid, quicker test run\n"
"  samc mosaic city.tif out/ --model tiny.safetensors --point-strategy dense_grid \\\n"
"      --erosion 5 --max-passes 3\n"
"  # SAM3: every roof and tree, classes in the GeoPackage\n"
"  samc mosaic ortho.tif out/ --model sam3.safetensors --text roof --text tree --geopackage\n"
"  # four machines, then the merge\n"
"  samc mosaic big.tif out/ --model large.safetensors --shard 2/4\n"
"  samc mosaic merge out/\n");
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

#define MAX_DEVICES 64

typedef struct {
    const char *in, *out_dir, *model, *config;
    mosaic_options opt;
    char checkpoint[1024];        /* sam_checkpoint of --config */
    int threads, json, quiet, verbose;
    progress_mode progress;
    cli_compute compute;          /* --device, --precision, --backend */
    mosaic_shard shard;           /* --shard K/N */
    int has_shard;
    int workers;                  /* --workers N (CPU) */
    int devices[MAX_DEVICES];     /* --device cuda:I,cuda:J,... */
    int n_devices;
    const char *vocab;            /* --vocab (SAM3 texts) */
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

/* The value of the current flag without taking it. */
static const char *peek_value(const cli_args *a) {
    return a->inline_value ? a->inline_value : a->i + 1 < a->argc ? a->argv[a->i + 1] : NULL;
}

/* --device cuda:I,cuda:J,...: one worker per listed GPU. */
static int parse_device_list(cli_args *a, mosaic_args *m) {
    const char *v = cli_value(a);
    if (!v) return -1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    m->n_devices = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long d;
        if (strncmp(t, "cuda:", 5) != 0 || cli_parse_long(t + 5, 0, 1023, &d) != 0 || m->n_devices == MAX_DEVICES) {
            cli_error("--device", "'%s' is not a list of CUDA devices like cuda:0,cuda:1 (at most %d)", v, MAX_DEVICES);
            return -1;
        }
        m->devices[m->n_devices++] = (int)d;
    }
    if (m->n_devices == 0) {
        cli_error("--device", "'%s' names no device", v);
        return -1;
    }
    m->compute.device = CLI_DEVICE_CUDA;
    m->compute.device_from = CLI_FROM_FLAG;
    return 1;
}

/* --shard K/N, --workers N and --device with a device list: 1 done, 0 none of these, -1
 * bad value (printed). */
static int parse_spread_flag(cli_args *a, const char *arg, mosaic_args *m) {
    if (!strcmp(arg, "--shard")) {
        const char *v = cli_value(a);
        char why[200];
        if (!v) return -1;
        if (mosaic_shard_parse(v, &m->shard, why, sizeof why) != 0) {
            cli_error("--shard", "%s", why);
            return -1;
        }
        m->has_shard = 1;
        return 1;
    }
    if (!strcmp(arg, "--workers")) {
        long n;
        if (cli_value_long(a, 1, 256, &n) != 0) return -1;
        m->workers = (int)n;
        return 1;
    }
    const char *pv = !strcmp(arg, "--device") ? peek_value(a) : NULL;
    if (pv && strchr(pv, ':')) return parse_device_list(a, m);
    return 0;
}

/* --text, --threshold, --vocab (SAM3 concept mode): 1 done, 0 none of these, -1 bad value. */
static int parse_concept_flag(cli_args *a, const char *arg, mosaic_args *m) {
    char why[300];
    const char *v;
    if (!strcmp(arg, "--text")) {
        if (!(v = cli_value(a))) return -1;
        if (mosaic_options_add_class(&m->opt, v, why, sizeof why) != 0) {
            cli_error("--text", "%s", why);
            return -1;
        }
        return 1;
    }
    if (!strcmp(arg, "--threshold")) return cli_value_double(a, -1.0, 1.0, 0, &m->opt.score_threshold) ? -1 : 1;
    if (!strcmp(arg, "--vocab")) return (m->vocab = cli_value(a)) ? 1 : -1;
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
    if (m->n_devices > 0 && m->workers > 0) {
        cli_error("--workers", "is for CPU workers; with --device cuda:I,cuda:J,... each GPU is a worker");
        return -1;
    }
    if (m->workers > 0 && m->compute.device == CLI_DEVICE_CUDA) {
        cli_error("--workers", "is for CPU workers; for GPUs list them: --device cuda:0,cuda:1");
        return -1;
    }
    /* GDAL paths to remote or virtual files (/vsicurl/, /vsis3/, ...) are GDAL's to open */
    if (!strncmp(m->in, "/vsi", 4) || strstr(m->in, "://")) return 0;
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
        if ((rc = parse_input_flag(&a, arg, m)) != 0 || (rc = parse_spread_flag(&a, arg, m)) != 0 ||
            (rc = parse_run_flag(&a, arg, m)) != 0 || (rc = parse_concept_flag(&a, arg, m)) != 0) {
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

/* ---- models: one, or one per worker ----------------------------------------------------- */

typedef struct {
    const char *path;
    samc_options base;
    const int *devices;          /* NULL: CPU workers */
} worker_models;

/* mosaic_workers.load: in the worker's own thread, so a GPU model binds its device there. */
static samc_model *load_worker_model(void *ctx, int worker, samc_error *err) {
    const worker_models *wm = ctx;
    samc_options o = wm->base;
    if (wm->devices) o.device = wm->devices[worker];
    samc_model *m = samc_model_load(wm->path, &o, err);
    if (!m && wm->devices) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        samc_error_set(err, err->status, "model %s on cuda:%d: %s", wm->path, o.device, msg);
    }
    return m;
}

static void unload_worker_model(void *ctx, int worker, samc_model *m) {
    (void)ctx;
    (void)worker;
    samc_model_free(m);
}

/* What the shards record of the model and the merge compares: the file's name and size
 * (paths differ between machines) and the precision (it changes the masks). */
static char *model_identity(const char *path, const samc_options *mo) {
    struct stat st;
    const char *base = strrchr(path, '/');
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", base ? base + 1 : path);
    cJSON_AddNumberToObject(j, "bytes", stat(path, &st) == 0 ? (double)st.st_size : -1.0);
    cJSON_AddStringToObject(j, "precision", samc_precision_name(mo->precision));
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The model's family against the mode (SAM3 finds --text classes, SAM2.1 segments
 * everything), and the texts through its tokenizer, before any tile. */
static int check_model(const mosaic_args *m, samc_model *model) {
    samc_model_info info;
    samc_model_get_info(model, &info);
    if (m->opt.n_classes > 0 && info.family != SAMC_FAMILY_SAM3) {
        cli_error("--text", "classes need SAM3 weights; %s is a SAM2.1 model (config %s): without --text it "
                  "segments everything", m->model, info.config);
        return -1;
    }
    if (m->opt.n_classes == 0 && info.family == SAMC_FAMILY_SAM3) {
        cli_error("--model", "%s is a SAM3 model (config %s): give the classes to find with --text PHRASE (e.g. "
                  "--text roof); segmenting everything needs SAM2.1 weights", m->model, info.config);
        return -1;
    }
    const char *texts[MOSAIC_MAX_CLASSES];
    for (int i = 0; i < m->opt.n_classes; i++) texts[i] = mosaic_class_name(&m->opt, i);
    return cli_check_texts(m->model, model, texts, m->opt.n_classes, NULL);
}

/* ---- the summary line ------------------------------------------------------------------ */

static void print_summary(const mosaic_args *m, const mosaic_result *res) {
    if (m->json || m->progress == PROGRESS_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "phase", "summary");
        if (m->has_shard) {
            cJSON_AddNumberToObject(j, "shard", m->shard.index);
            cJSON_AddNumberToObject(j, "shards", m->shard.count);
            cJSON_AddBoolToObject(j, "already_complete", res->already_complete);
            cJSON_AddStringToObject(j, "shard_dir", res->shard_dir);
        } else {
            cJSON_AddNumberToObject(j, "segments", (double)res->segments);
        }
        cJSON_AddNumberToObject(j, "segments_before_merge", (double)res->segments_before_merge);
        cJSON_AddNumberToObject(j, "coverage", res->coverage);
        cJSON_AddNumberToObject(j, "tiles", res->tiles);
        cJSON_AddNumberToObject(j, "tiles_skipped", res->tiles_skipped);
        cJSON_AddNumberToObject(j, "seconds", res->total_s);
        if (res->shards) cJSON_AddNumberToObject(j, "shards", res->shards);
        cJSON *files = cJSON_AddObjectToObject(j, "files");
        if (res->labels_path[0]) cJSON_AddStringToObject(files, "labels", res->labels_path);
        if (res->shp_path[0]) cJSON_AddStringToObject(files, "shapefile", res->shp_path);
        if (res->gpkg_path[0]) cJSON_AddStringToObject(files, "geopackage", res->gpkg_path);
        if (res->stats_path[0]) cJSON_AddStringToObject(files, "stats", res->stats_path);
        char *t = cJSON_PrintUnformatted(j);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(j);
    } else if (m->has_shard && res->already_complete) {
        printf("samc: mosaic: shard %d/%d is already complete in %s: nothing to do\n", m->shard.index, m->shard.count,
               res->shard_dir);
    } else if (m->has_shard) {
        printf("samc: mosaic: shard %d/%d: %lld segments before the merge, coverage %.1f%%, %d tiles (%d skipped), "
               "%.1f s -> %s\n", m->shard.index, m->shard.count, (long long)res->segments_before_merge, res->coverage,
               res->tiles, res->tiles_skipped, res->total_s, res->shard_dir);
    } else {
        printf("samc: mosaic: %s%lld segments (%lld before the border merge), coverage %.1f%%, %d tiles "
               "(%d skipped), %.1f s -> %s\n", res->shards ? "merged shards: " : "", (long long)res->segments,
               (long long)res->segments_before_merge, res->coverage, res->tiles, res->tiles_skipped, res->total_s,
               m->out_dir);
    }
}

/* SIGINT / SIGTERM set a flag the run polls: it stops cleanly and leaves no output. */
static void catch_signals(struct sigaction *old_int, struct sigaction *old_term) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
    g_interrupted = 0;
}

static int run_failed(const mosaic_args *m, const samc_error *err) {
    if (g_interrupted) {
        fprintf(stderr, "\nsamc: mosaic: interrupted: no output was written to %s\n", m->out_dir);
        return 130;
    }
    mosaic_error(err);
    return CLI_FAIL;
}

/* `samc mosaic merge OUTDIR`: the settings come from the shards' manifests. */
static int cmd_mosaic_merge(int argc, char **argv) {
    mosaic_args m;
    memset(&m, 0, sizeof m);
    cli_args a;
    cli_args_init(&a, argc, argv, "mosaic merge");
    const char *arg;
    int rc;
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_mosaic_help(stdout);
            return CLI_OK;
        }
        if (!strcmp(arg, "--progress") || !strcmp(arg, "--json") || !strcmp(arg, "--quiet") || !strcmp(arg, "-q") ||
            !strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            if ((rc = parse_run_flag(&a, arg, &m)) < 0) return CLI_USAGE;
        } else if (cli_is_flag(arg)) {
            cli_unknown_flag(&a);
            return CLI_USAGE;
        } else if (!m.out_dir) {
            m.out_dir = arg;
        } else {
            cli_extra_arg(&a);
            return CLI_USAGE;
        }
    }
    if (!m.out_dir) {
        cli_error("mosaic merge", "missing OUTDIR (the folder the shards wrote into; see samc mosaic --help)");
        return CLI_USAGE;
    }
    if (m.quiet && m.progress == PROGRESS_AUTO) m.progress = PROGRESS_NONE;
    struct sigaction old_int, old_term;
    catch_signals(&old_int, &old_term);
    progress_state ps = { .mode = m.progress, .tty = isatty(2) };
    mosaic_callbacks cb = { .progress = show_progress, .progress_ctx = &ps, .cancelled = interrupted };
    mosaic_result res;
    samc_error err = { 0 };
    rc = mosaic_merge(m.out_dir, &cb, &res, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc != 0) return run_failed(&m, &err);
    print_summary(&m, &res);
    return CLI_OK;
}

int cmd_mosaic(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "merge")) return cmd_mosaic_merge(argc - 1, argv + 1);
    mosaic_args m;
    memset(&m, 0, sizeof m);
    int pr = parse_args(argc, argv, &m);
    if (pr > 0) return CLI_OK;
    if (pr < 0) return CLI_USAGE;

    samc_error err = { 0 };
    samc_options mo = { .n_threads = m.threads, .max_batch = m.opt.mp.points_per_batch };
    if (cli_compute_resolve(&m.compute, &mo) != 0) return CLI_USAGE;
    if (m.verbose) mo.log = cli_log_stderr;
    mo.vocab_path = m.vocab ? m.vocab : getenv("SAMC_VOCAB");
    if (mo.vocab_path && !*mo.vocab_path) mo.vocab_path = NULL;
    int n_workers = m.n_devices > 0 ? m.n_devices : m.workers > 1 ? m.workers : 1;
    if (n_workers > 1 && m.n_devices == 0) {
        int t = (m.threads > 0 ? m.threads : online_cores()) / n_workers;
        mo.n_threads = t > 0 ? t : 1;
    }
    worker_models wm = { .path = m.model, .base = mo, .devices = m.n_devices ? m.devices : NULL };
    mosaic_workers workers = { .n_workers = n_workers, .load = load_worker_model, .unload = unload_worker_model,
                               .ctx = &wm };
    samc_model *model = NULL;
    if (n_workers == 1) {
        if (m.n_devices) mo.device = m.devices[0];
        if (m.progress == PROGRESS_AUTO && isatty(2)) fprintf(stderr, "samc: mosaic: loading %s ...\n", m.model);
        if (!(model = samc_model_load(m.model, &mo, &err))) {
            cli_lib_error("model", &err);
            return CLI_FAIL;
        }
        if (check_model(&m, model) != 0) {
            samc_model_free(model);
            return CLI_USAGE;
        }
    }
    char *cfg = mosaic_config_json(&m.opt, m.model, m.config);
    char *mid = model_identity(m.model, &mo);
    m.opt.config_json = cfg;
    m.opt.model_json = mid;

    struct sigaction old_int, old_term;
    catch_signals(&old_int, &old_term);
    progress_state ps = { .mode = m.progress, .tty = isatty(2) };
    mosaic_callbacks cb = { .progress = show_progress, .progress_ctx = &ps, .cancelled = interrupted };
    mosaic_result res;
    int rc = mosaic_run_ex(model, n_workers > 1 ? &workers : NULL, m.has_shard ? &m.shard : NULL, m.in, m.out_dir,
                           &m.opt, &cb, &res, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(cfg);
    free(mid);
    samc_model_free(model);
    if (rc != 0) return run_failed(&m, &err);
    print_summary(&m, &res);
    return CLI_OK;
}
#endif
