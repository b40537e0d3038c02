/* tools/cmd_bench.c: `samc bench`: encoder and decoder times, stage by stage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/report.h"
#include "util/image_io.h"
#include "model/samc.h"

void cmd_bench_help(FILE *f) {
    fprintf(f,
"usage: samc bench --model FILE [--image IMG] [--iters N] [--warmup N] [--threads N]\n"
"                  [--device D] [--precision P] [--backend B] [--encode-batch N[,N...]]\n"
"                  [--decoder-batch N[,N...]] [--json]\n"
"\n"
"Encodes one image N times and predicts one point prompt (the image centre, three\n"
"masks) N times after the warm-up runs, then prints the median and minimum time of each\n"
"stage (preprocess, patch embed, the four Hiera stages, FPN neck, prompt encoder, mask\n"
"decoder, post-processing) and the peak resident memory. With --encode-batch it also\n"
"encodes N copies of the image per call (samc_image_encode_batch, the encoder run on N\n"
"images at once) and prints the encoder time per image of each N beside that of\n"
"samc_image_encode (batch 1).\n"
"\n"
"  --model FILE   weights (.safetensors or .pt)\n"
"  --image IMG    image to encode (default: a synthetic 1024x1024 image made in memory)\n"
"  --iters N      timed runs (default 5)\n"
"  --warmup N     untimed runs first (default 1)\n"
"  --threads N    CPU threads (default: one per core)\n"
"  --device D     cpu (default), cuda, or auto: CUDA when a GPU is usable, else the CPU\n"
"                 with a notice on stderr (or SAMC_DEVICE)\n"
"  --precision P  fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+): matrix\n"
"                 products in 16 bits with fp32 accumulation (or SAMC_PRECISION);\n"
"                 bf16 also on a CPU with Intel AMX (Xeon 4th generation or later)\n"
"  --backend B    auto (default), ref, fast, cuda (or SAMC_BACKEND)\n"
"  --encode-batch N[,N...]  also time batched encodes of N images (1..%d each)\n"
"  --decoder-batch N[,N...] also time samc_predict of N single-point prompts (a grid over\n"
"                 the image, three masks each, low-res only; 1..16384, in decoder calls of up\n"
"                 to 256) and print the decoder time per prompt of each N\n"
"  --json         one JSON object: encoder_ms, decoder_ms (medians), stages, peak_rss_mb,\n"
"                 threads, backend, precision, config, device_timed, device memory\n"
"                 (device_*_mb), graphs; with --encode-batch also\n"
"                 encode_batch: [{batch, ms_per_image, min_ms_per_image}] per N (the\n"
"                 single-image reference is encoder_ms); with --decoder-batch\n"
"                 decoder_batch: [{prompts, ms, us_per_prompt, device_us_per_prompt}]\n"
"\n"
"On CUDA the stage times are device times between CUDA events recorded in stream order\n"
"(inside the encoder's graph too); encoder_device is patch embed to neck, apart from the\n"
"host's preprocess (staging the uint8 image) and the upload. On the CPU they are host\n"
"times of synchronous ops.\n"
"\n"
"examples:\n"
"  samc bench --model tiny.safetensors\n"
"  samc bench --model large.safetensors --image truck.jpg --iters 10 --threads 8 --json\n"
"  samc bench --model large.safetensors --device cuda --precision bf16\n"
"  samc bench --model large.safetensors --device cuda --encode-batch 2,4,8\n"
"  samc bench --model large.safetensors --device cuda --precision bf16 --decoder-batch 64,1024\n",
            SAMC_MAX_ENCODE_BATCH);
}

/* The timed quantities, each sampled once per iteration. */
enum { ST_PRE, ST_UPLOAD, ST_PRE_DEV, ST_PATCH, ST_S0, ST_S1, ST_S2, ST_S3, ST_NECK, ST_ENC_DEV, ST_ENC,
       ST_PROMPT, ST_DEC, ST_POST, ST_PRED, ST_ENC_WALL, ST_PRED_WALL, ST_COUNT };
static const char *stage_names[ST_COUNT] = {
    "preprocess", "upload", "preprocess_device", "patch_embed", "stage0", "stage1", "stage2", "stage3", "neck",
    "encoder_device", "encode_total", "prompt_encoder", "decoder", "postprocess", "predict_total",
    "encode_wall", "predict_wall",
};

#define MAX_DEC_BATCHES 16
#define MAX_DEC_PROMPTS 16384

typedef struct {
    const char *model, *image;
    long iters, warmup;
    int json;
    int n_batches;                        /* --encode-batch sizes */
    int batches[SAMC_MAX_ENCODE_BATCH];
    int n_dec;                            /* --decoder-batch sizes */
    int dec[MAX_DEC_BATCHES];
    samc_options opt;
} bench_args;

/* "2,4,8" into v[<= cap], each in 1..max; returns the count or -1. */
static int parse_list(const char *s, int *v, int cap, long max) {
    char item[32];
    int n = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        long x;
        if (len == 0 || len >= sizeof item || n == cap) return -1;
        memcpy(item, s, len);
        item[len] = 0;
        if (cli_parse_long(item, 1, max, &x) != 0) return -1;
        v[n++] = (int)x;
        s += len;
        if (*s == ',' && !*++s) return -1;
    }
    return n ? n : -1;
}

/* --encode-batch: the model is planned for the largest; --decoder-batch: decoder calls of
 * the largest up to 256 prompts. */
static int parse_batches(const char *s, bench_args *b, int decoder) {
    int n = decoder ? parse_list(s, b->dec, MAX_DEC_BATCHES, MAX_DEC_PROMPTS)
                    : parse_list(s, b->batches, SAMC_MAX_ENCODE_BATCH, SAMC_MAX_ENCODE_BATCH);
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (decoder && b->dec[i] > b->opt.max_batch) b->opt.max_batch = b->dec[i] < 256 ? b->dec[i] : 256;
        if (!decoder && b->batches[i] > b->opt.max_encode_batch) b->opt.max_encode_batch = b->batches[i];
    }
    if (decoder) b->n_dec = n;
    else b->n_batches = n;
    return 0;
}

static int parse_args(int argc, char **argv, bench_args *b) {
    cli_args a;
    cli_args_init(&a, argc, argv, "bench");
    b->iters = 5;
    b->warmup = 1;
    cli_compute compute;
    if (cli_compute_init(&compute) != 0) return -1;
    if (cli_debug_env()) b->opt.log = cli_log_stderr;
    const char *arg;
    long n;
    int rc;
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_bench_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--model")) {
            if (!(b->model = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--image")) {
            if (!(b->image = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--iters")) {
            if (cli_value_long(&a, 1, 100000, &b->iters) != 0) return -1;
        } else if (!strcmp(arg, "--warmup")) {
            if (cli_value_long(&a, 0, 100000, &b->warmup) != 0) return -1;
        } else if (!strcmp(arg, "--encode-batch") || !strcmp(arg, "--decoder-batch")) {
            const char *v = cli_value(&a);
            int dec = !strcmp(arg, "--decoder-batch");
            if (!v) return -1;
            if (parse_batches(v, b, dec) != 0) {
                cli_error(arg, "\"%s\" is not a list of %s counts in 1..%d (\"4\" or \"2,4,8\")", v,
                          dec ? "prompt" : "image", dec ? MAX_DEC_PROMPTS : SAMC_MAX_ENCODE_BATCH);
                return -1;
            }
        } else if (!strcmp(arg, "--threads")) {
            if (cli_value_long(&a, 1, 4096, &n) != 0) return -1;
            b->opt.n_threads = (int)n;
        } else if ((rc = cli_compute_flag(&a, arg, &compute)) != 0) {
            if (rc < 0) return -1;
        } else if (!strcmp(arg, "--json") || !strcmp(arg, "--verbose")) {
            if (cli_no_value(&a) != 0) return -1;
            if (!strcmp(arg, "--json")) b->json = 1;
            else b->opt.log = cli_log_stderr;
        } else {
            return cli_refuse(&a, arg);
        }
    }
    if (!b->model) return cli_missing(&a, "--model FILE");
    return cli_compute_resolve(&compute, &b->opt);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median (mean of the middle two for even n) and minimum; sorts v. */
static void median_min(double *v, int n, double *med, double *min) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *min = v[0];
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void record(double *row, const samc_timings *t, double enc_wall, double pred_wall) {
    const double v[ST_COUNT] = {
        t->preprocess_ms, t->upload_ms, t->preprocess_device_ms, t->patch_embed_ms, t->stage_ms[0], t->stage_ms[1],
        t->stage_ms[2], t->stage_ms[3], t->neck_ms, t->encoder_device_ms, t->encode_total_ms, t->prompt_ms,
        t->decoder_ms, t->postprocess_ms, t->predict_total_ms, enc_wall, pred_wall,
    };
    memcpy(row, v, sizeof v);
}

/* Batched encodes: median and minimum wall time per image of each --encode-batch size;
 * decoder batches: median wall and device (prompt encoder + decoder) time per call. */
typedef struct {
    double med[SAMC_MAX_ENCODE_BATCH], min[SAMC_MAX_ENCODE_BATCH];
    double dec_ms[MAX_DEC_BATCHES], dec_dev_ms[MAX_DEC_BATCHES];
} batch_times;

static double mib(size_t b) { return (double)b / (1 << 20); }

static void report_text(const bench_args *b, const samc_model_info *info, const image_rgb *img, const double *med,
                        const double *min, const batch_times *bt, double rss_mb) {
    char backend[128];
    report_backend_text(info, backend, sizeof backend);
    printf("samc bench: config %s, backend %s, image %s %dx%d, %ld iters (+%ld warm-up)\n", info->config, backend,
           b->image ? b->image : "synthetic", img->w, img->h, b->iters, b->warmup);
    printf("  %-18s %10s %10s   (%s)\n", "stage", "median ms", "min ms",
           info->device_total_bytes ? "device times from CUDA events; *_wall, *_total, preprocess: host" : "host clock");
    for (int s = 0; s < ST_COUNT; s++) printf("  %-18s %10.3f %10.3f\n", stage_names[s], med[s], min[s]);
    printf("encoder %.2f ms, decoder %.2f ms (median wall), peak RSS %.1f MiB\n", med[ST_ENC_WALL],
           med[ST_PRED_WALL], rss_mb);
    if (info->device_total_bytes)
        printf("device memory in use: %.1f MiB at the backend's start, %.1f after the load, %.1f after the first "
               "encode, %.1f after the first predict (the model with one image: %.1f MiB of %.1f); %d graphs\n",
               mib(info->device_used_at_start), mib(info->device_used_after_load), mib(info->device_used_after_encode),
               mib(info->device_used_after_predict), mib(info->device_used_after_predict - info->device_used_at_start),
               mib(info->device_total_bytes), info->graphs);
    if (b->n_batches) {
        printf("encoder per image (median wall / images, min): samc_image_encode %.1f ms (%.1f)", med[ST_ENC_WALL],
               min[ST_ENC_WALL]);
        for (int i = 0; i < b->n_batches; i++)
            printf(", batch %d %.1f ms (%.1f, %.2fx)", b->batches[i], bt->med[i], bt->min[i],
                   med[ST_ENC_WALL] / bt->med[i]);
        printf("; scratch %.1f MiB planned for batch %d\n", mib(info->scratch_bytes), b->opt.max_encode_batch);
    }
    for (int i = 0; i < b->n_dec; i++)
        printf("decoder batch %d: %.3f ms per call (median wall), %.2f us per prompt; device %.2f us per prompt\n",
               b->dec[i], bt->dec_ms[i], bt->dec_ms[i] * 1e3 / b->dec[i], bt->dec_dev_ms[i] * 1e3 / b->dec[i]);
}

static void json_batches(cJSON *root, const bench_args *b, const batch_times *bt) {
    cJSON *arr = b->n_batches ? cJSON_AddArrayToObject(root, "encode_batch") : NULL;
    for (int i = 0; arr && i < b->n_batches; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "batch", b->batches[i]);
        cJSON_AddNumberToObject(o, "ms_per_image", bt->med[i]);
        cJSON_AddNumberToObject(o, "min_ms_per_image", bt->min[i]);
        cJSON_AddItemToArray(arr, o);
    }
    arr = b->n_dec ? cJSON_AddArrayToObject(root, "decoder_batch") : NULL;
    for (int i = 0; arr && i < b->n_dec; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "prompts", b->dec[i]);
        cJSON_AddNumberToObject(o, "ms", bt->dec_ms[i]);
        cJSON_AddNumberToObject(o, "us_per_prompt", bt->dec_ms[i] * 1e3 / b->dec[i]);
        cJSON_AddNumberToObject(o, "device_us_per_prompt", bt->dec_dev_ms[i] * 1e3 / b->dec[i]);
        cJSON_AddItemToArray(arr, o);
    }
}

static int report(const bench_args *b, const samc_model_info *info, const samc_timings *last, const image_rgb *img,
                  double *samples, int iters, const batch_times *bt) {
    double med[ST_COUNT], min[ST_COUNT];
    double *col = malloc((size_t)iters * sizeof *col);
    if (!col) {
        cli_error("bench", "out of memory");
        return CLI_FAIL;
    }
    for (int s = 0; s < ST_COUNT; s++) {
        for (int i = 0; i < iters; i++) col[i] = samples[(size_t)i * ST_COUNT + s];
        median_min(col, iters, &med[s], &min[s]);
    }
    free(col);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;   /* ru_maxrss is in KiB on Linux */
    if (!b->json) {
        report_text(b, info, img, med, min, bt, rss_mb);
        return CLI_OK;
    }
    cJSON *root = cJSON_CreateObject();
    report_model_json(root, info);
    cJSON_AddStringToObject(root, "image", b->image ? b->image : "synthetic");
    cJSON_AddNumberToObject(root, "width", img->w);
    cJSON_AddNumberToObject(root, "height", img->h);
    cJSON_AddNumberToObject(root, "iters", (double)b->iters);
    cJSON_AddNumberToObject(root, "warmup", (double)b->warmup);
    cJSON_AddNumberToObject(root, "encoder_ms", med[ST_ENC_WALL]);
    cJSON_AddNumberToObject(root, "encoder_min_ms", min[ST_ENC_WALL]);
    cJSON_AddNumberToObject(root, "encoder_device_ms", med[ST_ENC_DEV]);
    cJSON_AddNumberToObject(root, "decoder_ms", med[ST_PRED_WALL]);
    cJSON_AddNumberToObject(root, "decoder_min_ms", min[ST_PRED_WALL]);
    cJSON_AddBoolToObject(root, "device_timed", last->device_timed);
    cJSON *stages = cJSON_AddObjectToObject(root, "stages");
    for (int s = 0; s < ST_COUNT; s++) {
        cJSON *o = cJSON_AddObjectToObject(stages, stage_names[s]);
        cJSON_AddNumberToObject(o, "median_ms", med[s]);
        cJSON_AddNumberToObject(o, "min_ms", min[s]);
    }
    cJSON_AddNumberToObject(root, "peak_rss_mb", rss_mb);
    cJSON_AddNumberToObject(root, "weight_mb", mib(info->weight_bytes));
    cJSON_AddNumberToObject(root, "scratch_mb", mib(info->scratch_bytes));
    if (info->device_total_bytes) {
        cJSON_AddNumberToObject(root, "device_total_mb", mib(info->device_total_bytes));
        cJSON_AddNumberToObject(root, "device_used_at_start_mb", mib(info->device_used_at_start));
        cJSON_AddNumberToObject(root, "device_used_after_load_mb", mib(info->device_used_after_load));
        cJSON_AddNumberToObject(root, "device_used_after_encode_mb", mib(info->device_used_after_encode));
        cJSON_AddNumberToObject(root, "device_used_after_predict_mb", mib(info->device_used_after_predict));
        cJSON_AddNumberToObject(root, "model_device_mb", mib(info->device_used_after_predict - info->device_used_at_start));
    }
    cJSON_AddNumberToObject(root, "graphs", info->graphs);
    json_batches(root, b, bt);
    return report_print_json(root);
}

/* n single-point prompts on a grid over w x h, row by row. */
static void grid_prompts(int n, int w, int h, float *pts, int *labels, samc_prompt *p) {
    int side = 1;
    while (side * side < n) side++;
    for (int i = 0; i < n; i++) {
        pts[2 * i] = (float)((i % side) + 0.5) * w / side;
        pts[2 * i + 1] = (float)((i / side) + 0.5) * h / side;
        labels[i] = 1;
        p[i] = (samc_prompt){ .points = pts + 2 * i, .labels = labels + i, .n_points = 1 };
    }
}

/* --decoder-batch: n prompts per samc_predict call, low-res masks only. */
static int time_decoder(samc_model *m, samc_image *enc, const bench_args *b, const image_rgb *img, int j,
                        batch_times *bt, double *per_call) {
    int n = b->dec[j], rc = CLI_FAIL;
    float *pts = malloc(sizeof(float) * 2 * (size_t)n);
    int *labels = malloc(sizeof(int) * (size_t)n);
    samc_prompt *p = malloc(sizeof *p * (size_t)n);
    double *dev = malloc(sizeof(double) * (size_t)b->iters);
    samc_masks out = { 0 };
    samc_error err = { 0 };
    const samc_predict_options po = { .multimask = 1 };
    if (!pts || !labels || !p || !dev) {
        cli_error("bench", "out of memory");
        goto done;
    }
    grid_prompts(n, img->w, img->h, pts, labels, p);
    for (long i = 0; i < b->warmup + b->iters; i++) {
        double t0 = cli_now_ms();
        if (samc_predict(m, enc, p, n, &po, &out, &err) != 0) {
            cli_lib_error("predict", &err);
            goto done;
        }
        samc_timings t;
        samc_model_get_timings(m, &t);
        if (i < b->warmup) continue;
        per_call[i - b->warmup] = cli_now_ms() - t0;
        dev[i - b->warmup] = t.prompt_ms + t.decoder_ms;
    }
    double unused;
    median_min(per_call, (int)b->iters, &bt->dec_ms[j], &unused);
    median_min(dev, (int)b->iters, &bt->dec_dev_ms[j], &unused);
    rc = CLI_OK;
done:
    samc_masks_free(&out);
    free(pts), free(labels), free(p), free(dev);
    return rc;
}

/* --encode-batch: n copies of the image per call, timed per image. */
static int time_encode_batches(samc_model *m, samc_image **many, const bench_args *b, const image_rgb *img,
                               batch_times *bt, double *per_image) {
    samc_error err = { 0 };
    const uint8_t *rgbs[SAMC_MAX_ENCODE_BATCH];
    int ws[SAMC_MAX_ENCODE_BATCH], hs[SAMC_MAX_ENCODE_BATCH];
    for (int k = 0; k < b->opt.max_encode_batch && b->n_batches; k++) {
        if (!(many[k] = samc_image_new(m, &err))) {
            cli_lib_error("encode", &err);
            return CLI_FAIL;
        }
        rgbs[k] = img->rgb;
        ws[k] = img->w;
        hs[k] = img->h;
    }
    for (int j = 0; j < b->n_batches; j++) {
        int n = b->batches[j];
        for (long i = 0; i < b->warmup + b->iters; i++) {
            double t0 = cli_now_ms();
            if (samc_image_encode_batch(m, many, rgbs, ws, hs, n, &err) != 0) {
                cli_lib_error("encode batch", &err);
                return CLI_FAIL;
            }
            if (i >= b->warmup) per_image[i - b->warmup] = (cli_now_ms() - t0) / n;
        }
        median_min(per_image, (int)b->iters, &bt->med[j], &bt->min[j]);
    }
    return CLI_OK;
}

static int run(const bench_args *b, const image_rgb *img) {
    samc_error err = { 0 };
    samc_model *m = samc_model_load(b->model, &b->opt, &err);
    if (!m) {
        cli_lib_error("model", &err);
        return CLI_FAIL;
    }
    samc_model_info mi;   /* it times a point prompt: SAM2.1's (SAM3's stages: make bench-sam3) */
    samc_model_get_info(m, &mi);
    if (cli_check_family("bench", b->model, &mi, SAMC_FAMILY_SAM2) != 0) {
        samc_model_free(m);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    samc_masks out = { 0 };
    samc_image *many[SAMC_MAX_ENCODE_BATCH] = { 0 };
    samc_image *enc = samc_image_new(m, &err);
    double *samples = calloc((size_t)b->iters * ST_COUNT, sizeof *samples);
    double *per_image = calloc((size_t)b->iters, sizeof *per_image);
    samc_timings t = { 0 };
    if (!enc || !samples || !per_image) {
        if (!enc) cli_lib_error("encode", &err);
        else cli_error("bench", "out of memory");
        goto done;
    }
    const float pt[2] = { 0.5f * img->w, 0.5f * img->h };
    const int label = 1;
    const samc_prompt prompt = { .points = pt, .labels = &label, .n_points = 1 };
    const samc_predict_options po = { .multimask = 1, .want_masks = 1 };
    for (long i = 0; i < b->warmup + b->iters; i++) {
        double t0 = cli_now_ms();
        if (samc_image_encode(m, enc, img->rgb, img->w, img->h, &err) != 0) {
            cli_lib_error("encode", &err);
            goto done;
        }
        double t1 = cli_now_ms();
        if (samc_predict(m, enc, &prompt, 1, &po, &out, &err) != 0) {
            cli_lib_error("predict", &err);
            goto done;
        }
        double t2 = cli_now_ms();
        samc_model_get_timings(m, &t);
        if (i >= b->warmup) record(samples + (size_t)(i - b->warmup) * ST_COUNT, &t, t1 - t0, t2 - t1);
    }
    batch_times bt = { 0 };
    if (time_encode_batches(m, many, b, img, &bt, per_image) != CLI_OK) goto done;
    for (int j = 0; j < b->n_dec; j++)
        if (time_decoder(m, enc, b, img, j, &bt, per_image) != CLI_OK) goto done;
    samc_model_info info;
    samc_model_get_info(m, &info);
    rc = report(b, &info, &t, img, samples, (int)b->iters, &bt);
done:
    for (int k = 0; k < SAMC_MAX_ENCODE_BATCH; k++) samc_image_free(many[k]);
    free(samples);
    free(per_image);
    samc_masks_free(&out);
    if (enc) samc_image_free(enc);
    samc_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_args b;
    memset(&b, 0, sizeof b);
    int rc = parse_args(argc, argv, &b);
    if (rc != 0) return rc > 0 ? CLI_OK : CLI_USAGE;
    image_rgb img = { 0 };
    char why[512];
    if (b.image) {
        if (image_load_rgb(b.image, &img, why, sizeof why) != 0) {
            cli_error(b.image, "%s", why);
            return CLI_FAIL;
        }
    } else {
        img.w = img.h = 1024;
        img.rgb = malloc((size_t)img.w * img.h * 3);
        if (!img.rgb) {
            cli_error("bench", "out of memory for the synthetic image");
            return CLI_FAIL;
        }
        image_synthetic(img.rgb, img.w, img.h);
    }
    rc = run(&b, &img);
    if (b.image) image_free(&img);
    else free(img.rgb);
    return rc;
}
