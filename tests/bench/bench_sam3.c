/* tests/bench/bench_sam3.c: time SAM3 set_image and text prompts per stage, with the
 * model's own trace lines (load, each ViT block, neck, text, geometry, fusion encoder,
 * decoder, segmentation head, post-processing, with resident memory), then the peak RSS
 * and the planned scratch arena. Synthetic weights (samc-synth-v1) are written to
 * /dev/shm unless a weight file is given.
 *
 *   make bench-sam3 CONFIG=sam3 BACKEND=fast THREADS=2 [WEIGHTS=file] [IMAGE=png] [ITERS=n]
 *                   [SAM3_BENCH_ARGS="--text2 wheel --box 428,698,698,956 ..."]
 *
 * Positional: CONFIG BACKEND THREADS WEIGHTS IMAGE ITERS (empty WEIGHTS / IMAGE: the
 * defaults; BACKEND fast, ref or cuda). Options, for bench/run_sam3_bench.sh's
 * side-by-side with PyTorch, which runs the same calls on Sam3Processor, and for the SAM3
 * stage of `make gpu-check` (bench/gpu_check/gpu_check.py):
 *   --device D       cpu_fast, cpu_ref or cuda (instead of BACKEND)
 *   --precision P    fp32 (default), bf16 or fp16 (CUDA only): the GEMMs' inputs
 * On CUDA the stage times are device times between CUDA events (samc_timings.device_timed),
 * set_image's encoder_device_ms apart from the host's preprocessing and the upload, each
 * find's find_device_ms; the JSON line adds the device memory in use after the first
 * encode and find minus at the backend's start (model_device_mb, as samc bench reports it). 
 *   --warmup N       untimed rounds first (default 0)
 *   --text S         first prompt (default "truck"; without a vocabulary only "truck",
 *                    as fixed token ids)
 *   --text2 S        a second text on the same encoded image (set_text_prompt again)
 *   --box X0,Y0,X1,Y1  then the last text plus this positive box (add_geometric_prompt:
 *                    the official processor keeps the text features, samc_find encodes
 *                    the text again: its text time is reported apart)
 *   --threshold T    keep scores > T (default 0.3)
 *   --vocab FILE     bpe_simple_vocab_16e6.txt.gz (default $SAMC_VOCAB) for --text
 *   --json FILE      append one JSON line with medians of every time, the RSS and what
 *                    each prompt found ("-": stdout)
 * A round is: encode, find(text), [find(text2)], [find(last text + box)].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stb_image.h>

#include "convert/convert.h"
#include "model/samc.h"

#define MAX_ITERS 64

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atof(line + 6) / 1024.0;
    if (f) fclose(f);
    return v;
}

static void log_line(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "  %s\n", line);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[MAX_ITERS];
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static double minimum(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* One find call's measurements over the timed rounds, and what its last round found. */
enum { F_WALL, F_TEXT, F_GEOMETRY, F_FUSION, F_DECODER, F_SEG, F_POST, F_DEVICE, F_N };
static const char *const find_keys[F_N] = { "ms", "text_ms", "geometry_ms", "fusion_ms", "decoder_ms",
                                            "seg_head_ms", "post_ms", "find_device_ms" };
typedef struct {
    const char *name;
    double v[F_N][MAX_ITERS];
    int kept, top_q[3];
    float presence, top_p[3];
} find_stats;

static int run_find(samc_model *m, samc_image *img, const samc_concept_prompt *p, const samc_find_options *fo,
                    samc_instances *out, find_stats *st, int slot, int it, const char *label) {
    samc_error err = { 0 };
    double c0 = cpu_s(), e0 = now_ms();
    if (samc_find(m, img, p, fo, out, &err)) { fprintf(stderr, "find (%s): %s\n", label, err.msg); return -1; }
    double e1 = now_ms(), c1 = cpu_s();
    samc_timings t;
    samc_model_get_timings(m, &t);
    printf("iter %d: find %s %.1f ms (cpu %.1f s): text %.1f, geometry %.1f, fusion encoder %.1f, decoder + scoring "
           "%.1f, seg head %.1f, post %.1f%s; %d instances kept\n",
           it, label, e1 - e0, c1 - c0, t.text_ms, t.geometry_ms, t.fusion_ms, t.decoder_ms, t.seg_head_ms,
           t.postprocess_ms, t.device_timed ? " (device times)" : "", out->n);
    if (slot >= 0) {
        double v[F_N] = { e1 - e0, t.text_ms, t.geometry_ms, t.fusion_ms, t.decoder_ms, t.seg_head_ms, t.postprocess_ms,
                          t.find_device_ms };
        for (int k = 0; k < F_N; k++) st->v[k][slot] = v[k];
    }
    st->kept = out->n;
    st->presence = out->presence_logit;
    for (int j = 0; j < 3; j++) {
        int best = -1;
        for (int q = 0; q < out->n_queries; q++) {
            int used = 0;
            for (int i = 0; i < j; i++) used |= st->top_q[i] == q;
            if (!used && (best < 0 || out->probs[q] > out->probs[best])) best = q;
        }
        st->top_q[j] = best;
        st->top_p[j] = best >= 0 ? out->probs[best] : 0;
    }
    return 0;
}

static void json_find(FILE *f, const find_stats *st, int n) {
    fprintf(f, ",\"%s\":{", st->name);
    for (int k = 0; k < F_N; k++)
        fprintf(f, "%s\"%s_median\":%.2f,\"%s_min\":%.2f", k ? "," : "", find_keys[k], median(st->v[k], n),
                find_keys[k], minimum(st->v[k], n));
    fprintf(f, ",\"kept\":%d,\"presence_logit\":%.6f,\"top\":[[%d,%.6f],[%d,%.6f],[%d,%.6f]]}", st->kept,
            st->presence, st->top_q[0], st->top_p[0], st->top_q[1], st->top_p[1], st->top_q[2], st->top_p[2]);
}

static samc_backend backend_of(const char *s) {
    if (!strcmp(s, "ref") || !strcmp(s, "cpu_ref")) return SAMC_BACKEND_CPU_REF;
    if (!strcmp(s, "cuda")) return SAMC_BACKEND_CUDA;
    return SAMC_BACKEND_CPU_FAST;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_sam3 [CONFIG [BACKEND [THREADS [WEIGHTS [IMAGE [ITERS]]]]]] [--warmup N] [--text S]\n"
                    "                  [--text2 S] [--box X0,Y0,X1,Y1] [--threshold T] [--vocab FILE] [--json FILE]\n"
                    "                  [--device cpu_fast|cpu_ref|cuda] [--precision fp32|bf16|fp16]\n");
}

int main(int argc, char **argv) {
    const char *pos[6] = { "sam3_micro", "fast", "2", "", "", "1" };
    const char *text = "truck", *text2 = NULL, *vocab = getenv("SAMC_VOCAB"), *json = NULL, *precision = "fp32";
    float box[4], threshold = 0.3f;
    int have_box = 0, warmup = 0, npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            if (npos >= 6) { usage(); return 2; }
            if (*a) pos[npos] = a;
            npos++;
            continue;
        }
        if (i + 1 >= argc) { usage(); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--device")) pos[1] = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--text")) text = v;
        else if (!strcmp(a, "--text2")) text2 = *v ? v : NULL;
        else if (!strcmp(a, "--box")) {
            if (!*v) continue;
            if (sscanf(v, "%f,%f,%f,%f", &box[0], &box[1], &box[2], &box[3]) != 4) { usage(); return 2; }
            have_box = 1;
        } else if (!strcmp(a, "--threshold")) threshold = strtof(v, NULL);
        else if (!strcmp(a, "--vocab")) vocab = *v ? v : NULL;
        else if (!strcmp(a, "--json")) json = v;
        else { usage(); return 2; }
    }
    const char *config = pos[0], *backend = pos[1];
    int threads = atoi(pos[2]), iters = atoi(pos[5]);
    const char *image = *pos[4] ? pos[4] : "../shared/golden/images/truck_1800x1200.png";
    if (iters < 1 || iters > MAX_ITERS || warmup < 0) { fprintf(stderr, "ITERS in 1..%d, --warmup >= 0\n", MAX_ITERS); return 2; }
    if (!vocab && (strcmp(text, "truck") || text2)) {
        fprintf(stderr, "prompts other than \"truck\" need --vocab bpe_simple_vocab_16e6.txt.gz (or SAMC_VOCAB)\n");
        return 2;
    }
    char weights[256];
    int synth = !*pos[3];
    double rss_start = rss_mb();
    samc_error err = { 0 };
    if (synth) {
        struct stat sb;
        snprintf(weights, sizeof weights, "%s/samc_bench_%s_%d.safetensors", stat("/dev/shm", &sb) ? "/tmp" : "/dev/shm",
                 config, (int)getpid());
        double t0 = now_ms();
        if (samc_synth_write(config, weights, &err)) { fprintf(stderr, "synth: %s\n", err.msg); return 1; }
        printf("synthetic weights: %.1f s\n", (now_ms() - t0) / 1e3);
    } else {
        snprintf(weights, sizeof weights, "%s", pos[3]);
    }
    samc_options opt = { .backend = backend_of(backend), .n_threads = threads, .log = log_line, .vocab_path = vocab };
    if (!strcmp(precision, "bf16")) opt.precision = SAMC_PRECISION_BF16;
    else if (!strcmp(precision, "fp16")) opt.precision = SAMC_PRECISION_FP16;
    else if (strcmp(precision, "fp32")) { fprintf(stderr, "--precision: fp32, bf16 or fp16\n"); return 2; }
    double t0 = now_ms();
    samc_model *m = samc_model_load(weights, &opt, &err);
    if (synth) unlink(weights);
    if (!m) { fprintf(stderr, "load: %s\n", err.msg); return 1; }
    double load_ms = now_ms() - t0, rss_loaded = rss_mb();
    printf("load: %.1f ms\n", load_ms);
    int w, h, ch;
    unsigned char *rgb = stbi_load(image, &w, &h, &ch, 3);
    if (!rgb) { fprintf(stderr, "cannot read %s\n", image); return 1; }
    samc_image *img = samc_image_new(m, &err);
    if (!img) { fprintf(stderr, "image: %s\n", err.msg); return 1; }
    static const int32_t truck[SAMC_CONCEPT_CONTEXT] = { 49406, 4629, 49407 };
    samc_concept_prompt p1 = { .text = text }, p2 = { .text = text2 };
    if (!vocab) p1 = (samc_concept_prompt){ .token_ids = truck };
    samc_concept_prompt pb = text2 ? p2 : p1;
    pb.boxes = box;
    pb.n_boxes = 1;
    samc_find_options fo = { .threshold = threshold, .want_masks = 1 };
    samc_instances out = { 0 };
    /* wall, preprocess, patch embed, ViT blocks, neck, cpu s, upload, encoder (device on CUDA) */
    enum { N_ENC = 8 };
    static double enc[N_ENC][MAX_ITERS];
    static const char *const enc_keys[N_ENC] = { "set_image_ms", "preprocess_ms", "patch_embed_ms", "vit_blocks_ms",
                                                 "neck_ms", "set_image_cpu_s", "upload_ms", "encoder_device_ms" };
    int device_timed = 0;
    static find_stats f_text = { .name = "text" }, f_text2 = { .name = "text2" }, f_box = { .name = "box" };
    for (int it = 0; it < warmup + iters; it++) {
        int slot = it - warmup;
        double c0 = cpu_s(), e0 = now_ms();
        if (samc_image_encode(m, img, rgb, w, h, &err)) { fprintf(stderr, "encode: %s\n", err.msg); return 1; }
        double c1 = cpu_s(), e1 = now_ms();
        samc_timings t;
        samc_model_get_timings(m, &t);
        printf("iter %d%s: set_image %.1f ms (cpu %.1f s): preprocess %.1f, upload %.1f, patch embed %.1f, ViT blocks "
               "%.1f, neck %.1f, encoder %.1f (%s)\n",
               it, slot < 0 ? " (warm-up)" : "", e1 - e0, c1 - c0, t.preprocess_ms, t.upload_ms, t.patch_embed_ms,
               t.stage_ms[0], t.neck_ms, t.encoder_device_ms, t.device_timed ? "device times" : "host clock");
        device_timed = t.device_timed;
        if (slot >= 0) {
            double v[N_ENC] = { e1 - e0, t.preprocess_ms, t.patch_embed_ms, t.stage_ms[0], t.neck_ms, c1 - c0,
                                t.upload_ms, t.encoder_device_ms };
            for (int k = 0; k < N_ENC; k++) enc[k][slot] = v[k];
        }
        if (run_find(m, img, &p1, &fo, &out, &f_text, slot, it, text)) return 1;
        if (text2 && run_find(m, img, &p2, &fo, &out, &f_text2, slot, it, text2)) return 1;
        if (have_box && run_find(m, img, &pb, &fo, &out, &f_box, slot, it, "text + box")) return 1;
    }
    samc_model_info info;
    samc_model_get_info(m, &info);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s on %s, %d threads: scratch arena %.1f MB, weights %.1f MB, peak RSS %.1f MB\n", info.config, info.backend,
           info.n_threads, info.scratch_bytes / 1048576.0, info.weight_bytes / 1048576.0, ru.ru_maxrss / 1024.0);
    if (json) {
        FILE *f = strcmp(json, "-") ? fopen(json, "a") : stdout;
        if (!f) { fprintf(stderr, "cannot write %s\n", json); return 1; }
        fprintf(f, "{\"run\":\"samc_sam3\",\"config\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"device_timed\":%d,"
                   "\"threads\":%d,\"iters\":%d,\"warmup\":%d",
                info.config, info.backend, info.precision, device_timed, info.n_threads, iters, warmup);
        for (int k = 0; k < N_ENC; k++)
            fprintf(f, ",\"%s_median\":%.2f,\"%s_min\":%.2f", enc_keys[k], median(enc[k], iters), enc_keys[k],
                    minimum(enc[k], iters));
        json_find(f, &f_text, iters);
        if (text2) json_find(f, &f_text2, iters);
        if (have_box) json_find(f, &f_box, iters);
        fprintf(f, ",\"prompts\":{\"text\":");
        json_str(f, text);
        fprintf(f, ",\"text2\":");
        if (text2) json_str(f, text2);
        else fprintf(f, "null");
        if (have_box) {
            fprintf(f, ",\"box_px\":[%g,%g,%g,%g],\"box_after\":", box[0], box[1], box[2], box[3]);
            json_str(f, text2 ? text2 : text);
        }
        fprintf(f, ",\"tokens\":\"%s\"},\"threshold\":%.9g,\"weights\":", vocab ? "text (samc tokenizer)" : "fixed ids",
                threshold);
        json_str(f, synth ? "(synthetic, temporary)" : weights);
        fprintf(f, ",\"n_params\":%lld,\"weight_mb\":%.1f,\"scratch_mb\":%.1f,\"load_ms\":%.1f,\"rss_at_start_mb\":%.1f,\"rss_after_load_mb\":%.1f,"
                   "\"peak_rss_mb\":%.1f,\"image\":",
                (long long)info.n_params, info.weight_bytes / 1048576.0, info.scratch_bytes / 1048576.0, load_ms,
                rss_start, rss_loaded, ru.ru_maxrss / 1024.0);
        const char *base = strrchr(image, '/');
        json_str(f, base ? base + 1 : image);
        fprintf(f, ",\"width\":%d,\"height\":%d,\"samc_version\":\"%s\"", w, h, SAMC_VERSION);
        if (info.device_total_bytes) {
            double mb = 1048576.0;
            fprintf(f, ",\"device_total_mb\":%.1f,\"device_used_at_start_mb\":%.1f,\"device_used_after_load_mb\":%.1f,"
                       "\"device_used_after_encode_mb\":%.1f,\"device_used_after_find_mb\":%.1f,\"model_device_mb\":%.1f",
                    info.device_total_bytes / mb, info.device_used_at_start / mb, info.device_used_after_load / mb,
                    info.device_used_after_encode / mb, info.device_used_after_predict / mb,
                    ((double)info.device_used_after_predict - (double)info.device_used_at_start) / mb);
        }
        fprintf(f, "}\n");
        if (f != stdout) fclose(f);
        else fflush(f);
    }
    samc_instances_free(&out);
    samc_image_free(img);
    samc_model_free(m);
    stbi_image_free(rgb);
    return 0;
}
