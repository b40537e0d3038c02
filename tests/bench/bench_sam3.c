/* tests/bench/bench_sam3.c: time SAM3 set_image and one text prompt ("truck") per stage,
 * with the model's own trace lines (load, each ViT block, neck, text, geometry, fusion
 * encoder, decoder, segmentation head, post-processing, with resident memory), then the
 * peak RSS and the planned scratch arena. Synthetic weights (samc-synth-v1) are written
 * to /dev/shm unless a weight file is given.
 *
 *   make bench-sam3 CONFIG=sam3 BACKEND=fast THREADS=2 [WEIGHTS=file] [IMAGE=png] [ITERS=n]
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

static void log_line(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "  %s\n", line);
}

int main(int argc, char **argv) {
    const char *config = argc > 1 ? argv[1] : "sam3_micro", *backend = argc > 2 ? argv[2] : "fast";
    int threads = argc > 3 ? atoi(argv[3]) : 2, iters = argc > 6 ? atoi(argv[6]) : 1;
    const char *image = argc > 5 && *argv[5] ? argv[5] : "../shared/golden/images/truck_1800x1200.png";
    char weights[256];
    int synth = !(argc > 4 && *argv[4]);
    samc_error err = { 0 };
    if (synth) {
        struct stat sb;
        snprintf(weights, sizeof weights, "%s/samc_bench_%s_%d.safetensors", stat("/dev/shm", &sb) ? "/tmp" : "/dev/shm",
                 config, (int)getpid());
        double t0 = now_ms();
        if (samc_synth_write(config, weights, &err)) { fprintf(stderr, "synth: %s\n", err.msg); return 1; }
        printf("synthetic weights: %.1f s\n", (now_ms() - t0) / 1e3);
    } else {
        snprintf(weights, sizeof weights, "%s", argv[4]);
    }
    samc_options opt = { .backend = !strcmp(backend, "ref") ? SAMC_BACKEND_CPU_REF : SAMC_BACKEND_CPU_FAST,
                         .n_threads = threads, .log = log_line };
    double t0 = now_ms();
    samc_model *m = samc_model_load(weights, &opt, &err);
    if (synth) unlink(weights);
    if (!m) { fprintf(stderr, "load: %s\n", err.msg); return 1; }
    printf("load: %.1f ms\n", now_ms() - t0);
    int w, h, ch;
    unsigned char *rgb = stbi_load(image, &w, &h, &ch, 3);
    if (!rgb) { fprintf(stderr, "cannot read %s\n", image); return 1; }
    samc_image *img = samc_image_new(m, &err);
    static const int32_t truck[SAMC_CONCEPT_CONTEXT] = { 49406, 4629, 49407 };
    samc_concept_prompt p = { .token_ids = truck };
    samc_find_options fo = { .threshold = 0.3f, .want_masks = 1 };
    samc_instances out = { 0 };
    for (int it = 0; it < iters; it++) {
        double c0 = cpu_s(), e0 = now_ms();
        if (samc_image_encode(m, img, rgb, w, h, &err)) { fprintf(stderr, "encode: %s\n", err.msg); return 1; }
        double c1 = cpu_s(), e1 = now_ms();
        if (samc_find(m, img, &p, &fo, &out, &err)) { fprintf(stderr, "find: %s\n", err.msg); return 1; }
        double c2 = cpu_s(), e2 = now_ms();
        samc_timings t;
        samc_model_get_timings(m, &t);
        printf("iter %d: set_image %.1f ms (cpu %.1f s): preprocess %.1f, patch embed %.1f, ViT blocks %.1f, neck %.1f\n",
               it, e1 - e0, c1 - c0, t.preprocess_ms, t.patch_embed_ms, t.stage_ms[0], t.neck_ms);
        printf("iter %d: find %.1f ms (cpu %.1f s): text %.1f, geometry %.1f, fusion encoder %.1f, decoder + scoring "
               "%.1f, seg head %.1f, post %.1f; %d instances kept\n",
               it, e2 - e1, c2 - c1, t.text_ms, t.geometry_ms, t.fusion_ms, t.decoder_ms, t.seg_head_ms,
               t.postprocess_ms, out.n);
    }
    samc_model_info info;
    samc_model_get_info(m, &info);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s on %s, %d threads: scratch arena %.1f MB, weights %.1f MB, peak RSS %.1f MB\n", info.config, info.backend,
           info.n_threads, info.scratch_bytes / 1048576.0, info.weight_bytes / 1048576.0, ru.ru_maxrss / 1024.0);
    samc_instances_free(&out);
    samc_image_free(img);
    samc_model_free(m);
    stbi_image_free(rgb);
    return 0;
}
