/* bench/gpu_check/gpu_bench.c: the measurements of `make gpu-check` that `samc bench`
 * does not make, on the public API (model/samc.h, pipelines/amg, the mosaic's multipass).
 * One mode per run, one JSON object on stdout; errors are one line on stderr, exit 1
 * (2 for bad usage). The decoder per prompt and the device memory of one image come from
 * `samc bench --decoder-batch N,... --json` (device_*_mb, model_device_mb).
 *
 *   gpu_bench amg --model F --image IMG [--crop 1024] [--points-per-side 32]
 *       amg_generate_samc (the official generator's defaults) on the centre crop.
 *   gpu_bench tiles --model F --image IMG [--crop 1024] [--tiles 4] [--max-passes 2]
 *       [--points-per-side 32]: the mosaic's inner loop without GDAL: tiles cut from the
 *       image (shifted by 1/8 of the free margin each), each through encode + multipass
 *       (mosaic_multipass_run with the samc mask source, sam-mosaic's defaults otherwise).
 *   gpu_bench soak --model F --image IMG [--encodes 1000] [--seconds 60]
 *       consecutive encodes of one image, device memory and RSS before and after; stops
 *       early at --seconds and says how many it did.
 *
 * Common: --device cuda|cpu (default cuda), --precision fp32|bf16|fp16, --iters N
 * (default 10), --warmup N (default 2), --threads N (CPU). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/samc.h"
#include "pipelines/amg/amg.h"
#include "pipelines/mosaic/multipass.h"
#include "util/image_io.h"

#ifdef SAMC_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

typedef struct {
    const char *mode, *model, *image;
    samc_backend backend;
    samc_precision precision;
    int threads, iters, warmup, crop, points_per_side, tiles, max_passes, encodes;
    double seconds;
} args;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int fail(const char *what, const char *msg) {
    fprintf(stderr, "gpu_bench: %s: %s\n", what, msg);
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median (sorts v). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Resident memory now (/proc/self/statm), or -1. */
static double rss_mb(void) {
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    if (f) fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1048576.0);
}

/* ---- arguments ---------------------------------------------------------------------- */

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out) {
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi) {
        fprintf(stderr, "gpu_bench: %s: '%s' is not an integer in %d..%d\n", flag, s ? s : "", lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_choice(const char *flag, const char *v, args *a) {
    if (!strcmp(flag, "--device")) {
        if (v && !strcmp(v, "cuda")) a->backend = SAMC_BACKEND_CUDA;
        else if (v && !strcmp(v, "cpu")) a->backend = SAMC_BACKEND_AUTO;
        else return fail("--device", "want cuda or cpu"), -1;
        return 0;
    }
    if (v && !strcmp(v, "fp32")) a->precision = SAMC_PRECISION_FP32;
    else if (v && !strcmp(v, "bf16")) a->precision = SAMC_PRECISION_BF16;
    else if (v && !strcmp(v, "fp16")) a->precision = SAMC_PRECISION_FP16;
    else return fail("--precision", "want fp32, bf16 or fp16"), -1;
    return 0;
}

static int parse_flag(const char *flag, const char *v, args *a) {
    static const struct { const char *name; size_t off; int lo, hi; } ints[] = {
        { "--threads", offsetof(args, threads), 1, 4096 }, { "--iters", offsetof(args, iters), 1, 100000 },
        { "--warmup", offsetof(args, warmup), 0, 1000 },
        { "--crop", offsetof(args, crop), 16, 16384 }, { "--points-per-side", offsetof(args, points_per_side), 1, 256 },
        { "--tiles", offsetof(args, tiles), 1, 1000 }, { "--max-passes", offsetof(args, max_passes), 0, 100 },
        { "--encodes", offsetof(args, encodes), 1, 1000000 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(flag, ints[i].name)) return parse_int(flag, v, ints[i].lo, ints[i].hi, (int *)((char *)a + ints[i].off));
    if (!strcmp(flag, "--model")) a->model = v;
    else if (!strcmp(flag, "--image")) a->image = v;
    else if (!strcmp(flag, "--device") || !strcmp(flag, "--precision")) return parse_choice(flag, v, a);
    else if (!strcmp(flag, "--seconds")) {
        char *end;
        a->seconds = v ? strtod(v, &end) : 0;
        if (!v || *end || !(a->seconds > 0)) return fail("--seconds", "want a positive number"), -1;
    } else {
        fprintf(stderr, "gpu_bench: unknown flag %s (see the header of bench/gpu_check/gpu_bench.c)\n", flag);
        return -1;
    }
    return v ? 0 : -1;
}

static int parse_args(int argc, char **argv, args *a) {
    *a = (args){ .backend = SAMC_BACKEND_CUDA, .iters = 10, .warmup = 2, .crop = 1024, .points_per_side = 32,
                 .tiles = 4, .max_passes = 2, .encodes = 1000, .seconds = 60 };
    if (argc < 2) return fail("usage", "gpu_bench amg|tiles|soak --model F --image IMG [...]"), -1;
    a->mode = argv[1];
    for (int i = 2; i < argc; i += 2)
        if (parse_flag(argv[i], i + 1 < argc ? argv[i + 1] : NULL, a)) return -1;
    if (!a->model || !a->image) return fail("usage", "--model FILE and --image IMG are required"), -1;
    return 0;
}

/* ---- model, image, device memory ---------------------------------------------------- */

static samc_model *load(const args *a, int max_batch) {
    samc_options o = { .backend = a->backend, .precision = a->precision, .n_threads = a->threads,
                       .max_batch = max_batch };
    samc_error err = { 0 };
    samc_model *m = samc_model_load(a->model, &o, &err);
    if (!m) fail(a->model, err.msg);
    return m;
}

/* The centre crop x crop of img (the whole image when it is smaller). */
static int center_crop(const image_rgb *img, int crop, image_rgb *out) {
    int w = img->w < crop ? img->w : crop, h = img->h < crop ? img->h : crop;
    int x0 = (img->w - w) / 2, y0 = (img->h - h) / 2;
    out->w = w;
    out->h = h;
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) return -1;
    for (int y = 0; y < h; y++) memcpy(out->rgb + (size_t)y * w * 3, img->rgb + ((size_t)(y0 + y) * img->w + x0) * 3, (size_t)w * 3);
    return 0;
}

/* Used device memory in MiB (whole device), or -1 without CUDA. */
static double device_used_mb(const args *a, double *total_mb) {
    *total_mb = -1;
#ifdef SAMC_HAVE_CUDA
    size_t free_b, total_b;
    if (a->backend == SAMC_BACKEND_CUDA && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        *total_mb = total_b / 1048576.0;
        return (double)(total_b - free_b) / 1048576.0;
    }
#else
    (void)a;
#endif
    return -1;
}

static void json_mb(const char *key, double v) {
    if (v < 0) printf(", \"%s\": null", key);
    else printf(", \"%s\": %.1f", key, v);
}

static void print_head(const char *what, samc_model *m) {
    samc_model_info info;
    samc_model_get_info(m, &info);
    printf("{\"what\": \"%s\", \"config\": \"%s\", \"backend\": \"%s\", \"precision\": \"%s\"", what, info.config,
           info.backend ? info.backend : "?", info.precision ? info.precision : "?");
}

/* ---- modes -------------------------------------------------------------------------- */

/* amg_generate_samc (the official generator's defaults) on the centre crop. */
static int mode_amg(const args *a, const image_rgb *im) {
    image_rgb c = { 0 };
    if (center_crop(im, a->crop, &c)) return fail("amg", "out of memory");
    amg_options o;
    amg_options_default(&o);
    o.points_per_side = a->points_per_side;
    samc_model *m = load(a, o.points_per_batch);
    double *t = malloc(sizeof(double) * a->iters);
    amg_result r = { 0 };
    samc_error err = { 0 };
    int rc = m && t ? 0 : 1;
    for (int i = 0; !rc && i < a->warmup + a->iters; i++) {
        amg_result_free(&r);
        memset(&r, 0, sizeof r);
        double t0 = now_ms();
        if (amg_generate_samc(m, c.rgb, c.w, c.h, &o, &r, &err)) rc = fail("amg", err.msg);
        else if (i >= a->warmup) t[i - a->warmup] = now_ms() - t0;
    }
    if (!rc) {
        const amg_stats *s = &r.stats;
        print_head("amg", m);
        printf(", \"width\": %d, \"height\": %d, \"points_per_side\": %d, \"iters\": %d, \"ms\": %.3f, \"masks\": %d, "
               "\"last\": {\"encode_ms\": %.3f, \"decode_ms\": %.3f, \"masks_ms\": %.3f, \"nms_ms\": %.3f, "
               "\"total_ms\": %.3f}}\n", c.w, c.h, o.points_per_side, a->iters, median(t, a->iters), r.n_masks,
               s->encode_ms, s->decode_ms, s->masks_ms, s->nms_ms, s->total_ms);
    }
    amg_result_free(&r);
    free(t);
    free(c.rgb);
    samc_model_free(m);
    return rc;
}

/* Tile k: a crop x crop window shifted by k/8 of the free margin (wrapping). */
static void cut_tile(const image_rgb *im, int k, image_rgb *tile) {
    int fx = im->w - tile->w, fy = im->h - tile->h;
    int x0 = fx ? (k * (fx / 8 + 1)) % (fx + 1) : 0, y0 = fy ? (k * (fy / 8 + 1)) % (fy + 1) : 0;
    for (int y = 0; y < tile->h; y++)
        memcpy(tile->rgb + (size_t)y * tile->w * 3, im->rgb + ((size_t)(y0 + y) * im->w + x0) * 3, (size_t)tile->w * 3);
}

typedef struct { double ms, encode_ms, decode_ms, masks_ms, accept_ms; int passes, labels; } tile_sum;

static int run_tiles(const args *a, samc_model *m, const image_rgb *im, image_rgb *tile, tile_sum *s) {
    mosaic_multipass_options o;
    mosaic_multipass_options_default(&o);
    o.points_per_side = a->points_per_side;
    o.max_passes = a->max_passes;
    samc_error err = { 0 };
    mosaic_mask_source src;
    if (mosaic_samc_source_new(m, &o, &src, &err)) return fail("tiles", err.msg);
    mosaic_multipass *mp = mosaic_multipass_new(tile->w, tile->h, &o, &err);
    uint32_t *labels = malloc(sizeof(uint32_t) * tile->w * tile->h);
    int rc = mp && labels ? 0 : fail("tiles", mp ? "out of memory" : err.msg);
    for (int k = 0; !rc && k < a->tiles; k++) {
        mosaic_tile_stats st = { 0 };
        cut_tile(im, k, tile);
        double t0 = now_ms();
        if (mosaic_multipass_run(mp, &src, tile->rgb, NULL, tile->w, tile->h, labels, &st, NULL, NULL, &err))
            rc = fail("multipass", err.msg);
        s->ms += now_ms() - t0;
        for (int p = 0; p < st.n_passes; p++) {
            s->encode_ms += st.pass[p].encode_ms;
            s->decode_ms += st.pass[p].decode_ms;
            s->masks_ms += st.pass[p].masks_ms;
            s->accept_ms += st.pass[p].accept_ms;
        }
        s->passes += st.n_passes;
        s->labels += st.n_labels;
        mosaic_tile_stats_free(&st);
    }
    free(labels);
    mosaic_multipass_free(mp);
    mosaic_samc_source_free(&src);
    return rc;
}

static int mode_tiles(const args *a, const image_rgb *im) {
    image_rgb tile = { .w = im->w < a->crop ? im->w : a->crop, .h = im->h < a->crop ? im->h : a->crop };
    tile.rgb = malloc((size_t)tile.w * tile.h * 3);
    samc_model *m = tile.rgb ? load(a, 64) : NULL;
    tile_sum s = { 0 };
    int rc = m ? run_tiles(a, m, im, &tile, &s) : 1;
    if (!rc) {
        int n = a->tiles;
        print_head("tiles", m);
        printf(", \"tiles\": %d, \"width\": %d, \"height\": %d, \"points_per_side\": %d, \"max_passes\": %d, "
               "\"passes\": %d, \"labels\": %d, \"ms_per_tile\": %.3f, \"per_tile\": {\"encode_ms\": %.3f, "
               "\"decode_ms\": %.3f, \"masks_ms\": %.3f, \"accept_ms\": %.3f}}\n", n, tile.w, tile.h,
               a->points_per_side, a->max_passes, s.passes, s.labels, s.ms / n, s.encode_ms / n, s.decode_ms / n,
               s.masks_ms / n, s.accept_ms / n);
    }
    free(tile.rgb);
    samc_model_free(m);
    return rc;
}

static int mode_soak(const args *a, const image_rgb *im) {
    samc_model *m = load(a, 0);
    samc_error err = { 0 };
    samc_image *img = m ? samc_image_new(m, &err) : NULL;
    double *t = malloc(sizeof(double) * a->encodes), total;
    int rc = img && t ? 0 : 1, done = 0;
    if (!rc && samc_image_encode(m, img, im->rgb, im->w, im->h, &err)) rc = fail("encode", err.msg);
    double dev0 = device_used_mb(a, &total), rss0 = rss_mb(), start = now_ms();
    for (; !rc && done < a->encodes && now_ms() - start < a->seconds * 1e3; done++) {
        double t0 = now_ms();
        if (samc_image_encode(m, img, im->rgb, im->w, im->h, &err)) rc = fail("encode", err.msg);
        t[done] = now_ms() - t0;
    }
    if (!rc) {
        int k = done < 10 ? done : 10;
        double first = 0, last = 0, wall = now_ms() - start;
        for (int i = 0; i < k; i++) first += t[i] / k, last += t[done - k + i] / k;
        print_head("soak", m);
        printf(", \"encodes_asked\": %d, \"encodes_done\": %d, \"seconds\": %.2f", a->encodes, done, wall / 1e3);
        json_mb("device_used_before_mb", dev0);
        json_mb("device_used_after_mb", device_used_mb(a, &total));
        printf(", \"rss_before_mb\": %.1f, \"rss_after_mb\": %.1f, \"ms_first10\": %.3f, \"ms_last10\": %.3f, "
               "\"ms_median\": %.3f}\n", rss0, rss_mb(), first, last, done ? median(t, done) : 0.0);
    } else if (m && !img) {
        fail("image", err.msg);
    }
    free(t);
    samc_image_free(img);
    samc_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    args a;
    if (parse_args(argc, argv, &a)) return 2;
    static const struct { const char *name; int (*fn)(const args *, const image_rgb *); } modes[] = {
        { "amg", mode_amg }, { "tiles", mode_tiles }, { "soak", mode_soak },
    };
    int (*fn)(const args *, const image_rgb *) = NULL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(a.mode, modes[i].name)) fn = modes[i].fn;
    if (!fn) return fail(a.mode, "unknown mode (amg, tiles, soak)"), 2;
    image_rgb im = { 0 };
    char why[512];
    if (image_load_rgb(a.image, &im, why, sizeof why)) return fail(a.image, why);
    int rc = fn(&a, &im);
    image_free(&im);
    fflush(stdout);
    return rc;
}
