/* tests/test_device_pipeline.c: the device side of the image pipeline, on the micro
 * synthetic model.
 *
 * - preprocess twin (CPU): the preprocess op's reference (kernels/cpu_ref_pipeline.c) with
 *   the model's resize taps gives model/sam2/transforms.c's input bit for bit, for images
 *   that shrink, grow, keep one side or both.
 * - preprocess on the device (CUDA): the "input" tensor of an encode on cuda (uint8
 *   upload, preprocess op) equals the CPU's (host path) bit for bit.
 * - graphs (CUDA): with the GRAPHS switch on, the first encode / predict of a shape
 *   captures a graph and later ones replay it; every output (features, low-res logits, IoU,
 *   object scores, full-size masks, and mask records) is bit-identical to the GRAPHS=off
 *   run and to the first call; graphs were captured only with the switch on. The same
 *   in bf16 (16-bit encoder, fp32 decoder: the precision map survives replays).
 * - timings: stage times are device times on CUDA (also when replayed), host times on the
 *   CPU, never missing (-1).
 * - memory (CUDA): device memory in use after 12 encodes and predicts is what it was after
 *   the first (everything planned at load), and the model reports it.
 * - SAM3's graphs (CUDA): the text encoder's blocks and each decoder layer captured once,
 *   replayed for other texts, bit-identical to GRAPHS=off (fp32, fp16).
 * The CUDA cases skip without a device (or SAMC_CUDA_LIB naming the simulator). */
#include "tests/test.h"
#include "tests/synth_tmp.h"
#include "kernels/cpu_ref_pipeline.h"
#include "model/model.h"
#include "model/samc.h"
#include <stdint.h>
#include <unistd.h>

static char model_path[64];

static int micro_path(void) {
    return model_path[0] ? 0 : test_synth_tmp("micro", "device_pipeline", model_path, sizeof model_path);
}

static uint8_t *make_image(int w, int h, uint32_t seed) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (size_t i = 0; p && i < (size_t)w * h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)((i / 3 % (size_t)w) * 255 / (size_t)w + (seed >> 27));
    }
    return p;
}

typedef struct { int w, h; } size2;
static const size2 sizes[] = { { 320, 240 }, { 100, 50 }, { 256, 256 }, { 256, 100 }, { 77, 256 }, { 1000, 3 } };
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

/* ---- preprocess --------------------------------------------------------------------------- */

static void test_preprocess_twin(void) {
    samc_error err = { 0 };
    CHECK(micro_path() == 0);
    samc_model *m = samc_model_load(model_path, &(samc_options){ .backend = SAMC_BACKEND_CPU_REF }, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    sam2_model *s = m->sam2;
    int S = s->S;
    const samc_ops *ref = samc_ops_cpu_ref();
    float *out = malloc(sizeof(float) * 3 * (size_t)S * S);
    for (int i = 0; i < N_SIZES; i++) {
        int w = sizes[i].w, h = sizes[i].h, T = sam2_transforms_taps_count(s, w, h);
        uint8_t *rgb = make_image(w, h, 7u + (uint32_t)i);
        int32_t *ti = malloc(sizeof(int32_t) * 4 * (size_t)S);
        float *tw = malloc(sizeof(float) * 2 * (size_t)S * T);
        sam2_transforms_taps(s, w, h, T, ti, tw);
        samc_resize_taps t = { ti, ti + S, ti + 2 * S, ti + 3 * S, tw, tw + (size_t)S * T, T, { 0 }, { 0 } };
        sam2_transforms_norm(t.mean, t.std);
        ref->preprocess(ref, rgb, w, h, &t, out, S);
        sam2_transforms_preprocess(s, rgb, w, h);
        size_t bad = 0, n = 3 * (size_t)S * S;
        for (size_t k = 0; k < n; k++) bad += memcmp(&out[k], &s->h_input[k], sizeof(float)) != 0;
        CHECKF(bad == 0, "%dx%d (%d taps): %zu of %zu values differ from the host path", w, h, T, bad, n);
        free(rgb); free(ti); free(tw);
    }
    free(out);
    samc_model_free(m);
}

typedef struct {
    float *input;
    size_t n;
} input_capture;

static void capture_input(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape) {
    input_capture *c = ctx;
    if (strcmp(name, "input")) return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    c->input = realloc(c->input, sizeof(float) * n);
    memcpy(c->input, data, sizeof(float) * n);
    c->n = n;
}

static void test_preprocess_device(void) {
    samc_error err = { 0 };
    CHECK(micro_path() == 0);
    input_capture cpu = { 0 }, gpu = { 0 };
    samc_model *mc = samc_model_load(model_path, &(samc_options){ .backend = SAMC_BACKEND_CPU_REF,
                                                                   .dump = capture_input, .dump_ctx = &cpu }, &err);
    CHECKF(mc != NULL, "%s", err.msg);
    samc_model *mg = samc_model_load(model_path, &(samc_options){ .backend = SAMC_BACKEND_CUDA,
                                                                   .dump = capture_input, .dump_ctx = &gpu }, &err);
    if (!mg) {
        samc_model_free(mc); /* before the skip, which returns */
        TEST_SKIP_GPU("no CUDA backend: %s", err.msg);
    }
    samc_image *ic = samc_image_new(mc, &err), *ig = samc_image_new(mg, &err);
    for (int i = 0; mc && ic && ig && i < N_SIZES; i++) {
        int w = sizes[i].w, h = sizes[i].h;
        uint8_t *rgb = make_image(w, h, 7u + (uint32_t)i);
        CHECKF(samc_image_encode(mc, ic, rgb, w, h, &err) == 0, "%s", err.msg);
        CHECKF(samc_image_encode(mg, ig, rgb, w, h, &err) == 0, "%s", err.msg);
        size_t bad = 0;
        for (size_t k = 0; k < cpu.n && cpu.n == gpu.n; k++) bad += memcmp(&cpu.input[k], &gpu.input[k], 4) != 0;
        CHECKF(cpu.n && cpu.n == gpu.n && bad == 0, "%dx%d: %zu of %zu input values differ (device vs host)", w, h,
               bad, cpu.n);
        free(rgb);
    }
    samc_image_free(ic);
    samc_image_free(ig);
    samc_model_free(mc);
    samc_model_free(mg);
    free(cpu.input);
    free(gpu.input);
}

/* ---- graphs, timings, memory ---------------------------------------------------------------- */

/* Everything one round of calls returns, as host copies. */
typedef struct {
    float *feat;          /* the three feature maps */
    size_t n_feat;
    samc_masks out[3];    /* 1 point x 3 masks with masks + logits; 3 prompts; a box + mask input */
    samc_mask_records rec;
    samc_timings t;
} round_out;

static void round_free(round_out *r) {
    free(r->feat);
    for (int i = 0; i < 3; i++) samc_masks_free(&r->out[i]);
    samc_mask_records_free(&r->rec);
    memset(r, 0, sizeof *r);
}

static int round_run(samc_model *m, samc_image *img, const uint8_t *rgb, int w, int h, round_out *r,
                     samc_error *err) {
    static const float pts[6] = { 40, 30, 200, 100, 120, 200 }, box[4] = { 20, 20, 150, 120 };
    static const int lab[3] = { 1, 1, 0 };
    if (samc_image_encode(m, img, rgb, w, h, err)) return -1;
    samc_model_get_timings(m, &r->t);
    const sam2_image *s = img->sam2;
    const samc_ops *o = m->sam2->rt.backend;
    size_t ne = (size_t)s->C * (s->S / 16) * (s->S / 16), n0 = (size_t)(s->C / 8) * (s->S / 4) * (s->S / 4);
    size_t n1 = (size_t)(s->C / 4) * (s->S / 8) * (s->S / 8);
    r->n_feat = ne + n0 + n1;
    if (!r->feat) r->feat = malloc(sizeof(float) * r->n_feat);
    if (o->download) {
        o->download(o, r->feat, s->image_embed, sizeof(float) * ne);
        o->download(o, r->feat + ne, s->feat_s0, sizeof(float) * n0);
        o->download(o, r->feat + ne + n0, s->feat_s1, sizeof(float) * n1);
    }
    samc_prompt one = { .points = pts, .labels = lab, .n_points = 1 };
    samc_prompt three[3] = { { .points = pts, .labels = lab, .n_points = 1 },
                             { .points = pts + 2, .labels = lab, .n_points = 1 },
                             { .points = pts + 4, .labels = lab, .n_points = 1 } };
    const samc_predict_options multi = { .multimask = 1, .want_masks = 1, .want_logits = 1 }, single = { 0 };
    if (samc_predict(m, img, &one, 1, &multi, &r->out[0], err) || samc_predict(m, img, three, 3, &single, &r->out[1], err))
        return -1;
    samc_prompt boxed = { .points = pts + 2, .labels = lab + 2, .n_points = 1, .box = box,
                          .mask_input = r->out[0].low_res };
    if (samc_predict(m, img, &boxed, 1, &single, &r->out[2], err)) return -1;
    const samc_mask_filter f = { .crop = { 0, 0, w, h }, .image_w = w, .image_h = h, .multimask = 1,
                                 .pred_iou_thresh = 0.1, .stability_score_thresh = 0.2, .stability_score_offset = 1.0,
                                 .max_region = 10 };
    return samc_predict_records(m, img, three, 3, &f, &r->rec, err);
}

static int same_floats(const float *a, const float *b, size_t n) { return !n || !memcmp(a, b, sizeof(float) * n); }

/* a and b hold the same bits everywhere. */
static void check_same_round(const char *what, const round_out *a, const round_out *b) {
    CHECKF(a->n_feat == b->n_feat && same_floats(a->feat, b->feat, a->n_feat), "%s: features differ", what);
    for (int i = 0; i < 3; i++) {
        const samc_masks *x = &a->out[i], *y = &b->out[i];
        size_t nl = (size_t)x->batch * x->n_masks * x->low_size * x->low_size;
        size_t nf = (size_t)x->batch * x->n_masks * x->width * x->height;
        int same = x->batch == y->batch && x->n_masks == y->n_masks && same_floats(x->low_res, y->low_res, nl) &&
                   same_floats(x->iou, y->iou, (size_t)x->batch * x->n_masks) &&
                   same_floats(x->object_score, y->object_score, (size_t)x->batch) &&
                   (!x->logits || same_floats(x->logits, y->logits, nf)) && (!x->masks || !memcmp(x->masks, y->masks, nf));
        CHECKF(same, "%s: predict %d differs", what, i);
    }
    const samc_mask_records *p = &a->rec, *q = &b->rec;
    CHECKF(p->n_records == q->n_records && p->n_toggles == q->n_toggles && p->candidates == q->candidates &&
           !memcmp(p->records, q->records, sizeof *p->records * (size_t)p->n_records) &&
           !memcmp(p->toggles, q->toggles, sizeof *p->toggles * (size_t)p->n_toggles),
           "%s: mask records differ (%d / %d records)", what, p->n_records, q->n_records);
}

static void check_timings(const char *what, const samc_timings *t, int device) {
    double v[] = { t->patch_embed_ms, t->stage_ms[0], t->stage_ms[1], t->stage_ms[2], t->stage_ms[3], t->neck_ms,
                   t->encoder_device_ms, t->upload_ms, t->preprocess_device_ms };
    int ok = t->device_timed == device;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ok &= v[i] >= 0.0;
    CHECKF(ok, "%s: device_timed %d, patch %g, stages %g %g %g %g, neck %g, encoder %g, upload %g, preprocess %g",
           what, t->device_timed, t->patch_embed_ms, t->stage_ms[0], t->stage_ms[1], t->stage_ms[2], t->stage_ms[3],
           t->neck_ms, t->encoder_device_ms, t->upload_ms, t->preprocess_device_ms);
}

static void skip_no_gpu(const char *why) { TEST_SKIP_GPU("no CUDA backend: %s", why); }

/* Two rounds on a fresh CUDA model with GRAPHS=graphs: into r[0] (captures) and r[1]. */
static int cuda_rounds_in(const char *graphs, samc_precision prec, const uint8_t *rgb, int w, int h, round_out r[2],
                          samc_model_info *info) {
    samc_error err = { 0 };
    setenv("SAMC_CUDA_VARIANT_GRAPHS", graphs, 1);
    samc_model *m = samc_model_load(
        model_path, &(samc_options){ .backend = SAMC_BACKEND_CUDA, .max_batch = 4, .precision = prec }, &err);
    unsetenv("SAMC_CUDA_VARIANT_GRAPHS");
    if (!m) {
        skip_no_gpu(err.msg);
        return -1;
    }
    samc_image *img = samc_image_new(m, &err);
    for (int i = 0; img && i < 2; i++) CHECKF(round_run(m, img, rgb, w, h, &r[i], &err) == 0, "%s", err.msg);
    samc_model_get_info(m, info);
    samc_image_free(img);
    samc_model_free(m);
    return 0;
}

/* Rounds with GRAPHS on and off on fresh models in precision prec, on one image: the
 * replayed round equals the captured one and both equal the ops one by one, bit for bit;
 * graphs were captured only with the switch on. Then `more` (timings) when given. */
static void graphs_same(samc_precision prec, const char *tag, unsigned seed,
                        void (*more)(const round_out on[2], const round_out off[2], const samc_model_info *ion)) {
    CHECK(micro_path() == 0);
    const int w = 230, h = 210;
    uint8_t *rgb = make_image(w, h, seed);
    round_out on[2] = { 0 }, off[2] = { 0 };
    samc_model_info ion, ioff;
    char what[3][80];
    snprintf(what[0], sizeof what[0], "%sreplayed vs captured (GRAPHS=on)", tag);
    snprintf(what[1], sizeof what[1], "%sgraphs vs ops one by one", tag);
    snprintf(what[2], sizeof what[2], "%sgraphs replayed vs ops one by one", tag);
    if (cuda_rounds_in("on", prec, rgb, w, h, on, &ion) == 0 && cuda_rounds_in("off", prec, rgb, w, h, off, &ioff) == 0) {
        CHECKF(ion.graphs >= 4 && ioff.graphs == 0, "%sgraphs captured: %d with GRAPHS=on, %d off", tag, ion.graphs,
               ioff.graphs);
        check_same_round(what[0], &on[0], &on[1]);
        check_same_round(what[1], &on[0], &off[0]);
        check_same_round(what[2], &on[1], &off[1]);
        CHECKF(on[0].rec.candidates > 0, "%sno mask candidates (%lld)", tag, (long long)on[0].rec.candidates);
        if (more) more(on, off, &ion);
    }
    for (int i = 0; i < 2; i++) {
        round_free(&on[i]);
        round_free(&off[i]);
    }
    free(rgb);
}

/* bf16: the encoder's activations are 16-bit, the decoder's fp32, in the same arena. A
 * replayed graph changes no host state, so the backend's precision map must come back as
 * the capture left it (else the features written by a replayed encoder are read as the
 * fp32 the decoder left there); the preprocessed input is fp32 however it was made, and
 * the mask post-processing reads fp32 logits. Replayed = captured = ops one by one, bit
 * for bit, as in fp32. */
static void test_graphs_bf16(void) { graphs_same(SAMC_PRECISION_BF16, "bf16: ", 98u, NULL); }

static void graph_timings(const round_out on[2], const round_out off[2], const samc_model_info *ion) {
    check_timings("GRAPHS=on, capture", &on[0].t, 1);
    check_timings("GRAPHS=on, replay", &on[1].t, 1);
    check_timings("GRAPHS=off", &off[1].t, 1);
    printf("  %d graphs; encoder %.2f ms device (patch embed %.2f, stages %.2f %.2f %.2f %.2f, neck %.2f), "
           "upload %.3f ms, preprocess %.3f ms device + %.3f ms host\n", ion->graphs, on[1].t.encoder_device_ms,
           on[1].t.patch_embed_ms, on[1].t.stage_ms[0], on[1].t.stage_ms[1], on[1].t.stage_ms[2], on[1].t.stage_ms[3],
           on[1].t.neck_ms, on[1].t.upload_ms, on[1].t.preprocess_device_ms, on[1].t.preprocess_ms);
}

static void test_graphs(void) { graphs_same(SAMC_PRECISION_FP32, "", 99u, graph_timings); }

static void test_cpu_timings(void) {
    samc_error err = { 0 };
    CHECK(micro_path() == 0);
    samc_model *m = samc_model_load(model_path, &(samc_options){ .backend = SAMC_BACKEND_AUTO }, &err);
    CHECKF(m != NULL, "%s", err.msg);
    samc_image *img = m ? samc_image_new(m, &err) : NULL;
    uint8_t *rgb = make_image(230, 210, 3u);
    round_out r = { 0 };
    if (img) {
        CHECKF(round_run(m, img, rgb, 230, 210, &r, &err) == 0, "%s", err.msg);
        check_timings("cpu", &r.t, 0);
        samc_model_info info;
        samc_model_get_info(m, &info);
        CHECK(info.graphs == 0 && info.device_used_after_load == 0 && info.device_used_after_predict == 0);
    }
    round_free(&r);
    free(rgb);
    samc_image_free(img);
    samc_model_free(m);
}

static void test_memory_flat(void) {
    samc_error err = { 0 };
    CHECK(micro_path() == 0);
    samc_model *m = samc_model_load(model_path, &(samc_options){ .backend = SAMC_BACKEND_CUDA, .max_batch = 4 }, &err);
    if (!m) {
        TEST_SKIP_GPU("no CUDA backend: %s", err.msg);
        return;
    }
    samc_image *img = samc_image_new(m, &err);
    uint8_t *rgb = make_image(240, 220, 5u);
    round_out r = { 0 };
    size_t first = 0;
    for (int i = 0; img && i < 12; i++) {
        CHECKF(round_run(m, img, rgb, 240, 220, &r, &err) == 0, "%s", err.msg);
        size_t now = 0;
        m->sam2->rt.backend->mem_info(m->sam2->rt.backend, &now, NULL, NULL);
        if (i == 0) first = now;
        CHECKF(now == first, "round %d: %zu bytes of device memory in use, %zu after the first", i, now, first);
    }
    samc_model_info info;
    samc_model_get_info(m, &info);
    CHECKF(info.device_total_bytes > 0 && info.device_used_after_load > 0 && info.device_used_after_encode >=
           info.device_used_after_load, "reported: total %zu, after load %zu, after encode %zu",
           info.device_total_bytes, info.device_used_after_load, info.device_used_after_encode);
    CHECKF(info.device_used_after_predict >= info.device_used_after_encode && info.device_used_after_predict <= first,
           "reported after the first predict %zu: not between after encode %zu and after a round %zu",
           info.device_used_after_predict, info.device_used_after_encode, first);
    round_free(&r);
    free(rgb);
    samc_image_free(img);
    samc_model_free(m);
}

/* ---- SAM3: the text encoder's graph ------------------------------------------------------- */

static char sam3_path[64];
static const int32_t sam3_ids[3][SAMC_CONCEPT_CONTEXT] = {
    { 49406, 4629, 49407 }, { 49406, 320, 1929, 2000, 49407 }, { 49406, 4629, 49407 } };

/* Three finds (two texts, then the first again) on one image of a fresh SAM3 micro model
 * on CUDA with GRAPHS=graphs; n_graphs: the graphs captured, the decoder's layers. -1: no
 * CUDA backend (skipped). */
static int sam3_finds(const char *graphs, samc_precision prec, const uint8_t *rgb, int w, int h, samc_instances out[3],
                      int n_graphs[2]) {
    samc_error err = { 0 };
    setenv("SAMC_CUDA_VARIANT_GRAPHS", graphs, 1);
    samc_model *m = samc_model_load(sam3_path, &(samc_options){ .backend = SAMC_BACKEND_CUDA, .precision = prec }, &err);
    unsetenv("SAMC_CUDA_VARIANT_GRAPHS");
    if (!m) {
        skip_no_gpu(err.msg);
        return -1;
    }
    samc_image *img = samc_image_new(m, &err);
    CHECKF(img && samc_image_encode(m, img, rgb, w, h, &err) == 0, "%s", err.msg);
    samc_find_options o = { .threshold = 0.0f, .want_masks = 0 };
    for (int i = 0; img && i < 3; i++)
        CHECKF(samc_find(m, img, &(samc_concept_prompt){ .token_ids = sam3_ids[i] }, &o, &out[i], &err) == 0, "%s",
               err.msg);
    samc_model_info info;
    samc_model_get_info(m, &info);
    n_graphs[0] = info.graphs;
    n_graphs[1] = m->sam3->dec.layers;
    samc_image_free(img);
    samc_model_free(m);
    return 0;
}

static int same_instances(const samc_instances *a, const samc_instances *b) {
    size_t Q = (size_t)a->n_queries, nl = Q * a->low_size * a->low_size;
    return a->n_queries == b->n_queries && a->low_size == b->low_size && a->n == b->n &&
           !memcmp(&a->presence_logit, &b->presence_logit, sizeof(float)) &&
           same_floats(a->pred_logits, b->pred_logits, Q) && same_floats(a->pred_boxes, b->pred_boxes, 4 * Q) &&
           same_floats(a->pred_masks, b->pred_masks, nl);
}

/* SAM3 (CUDA): the text encoder's blocks are one graph (model/sam3/text_encoder_ve.c), each
 * decoder layer's device side one more (decoder.c), captured by the first find and
 * replayed by the next ones (another text, then the first again): every raw output of
 * every find equals the GRAPHS=off run bit for bit, the third equals the first, and
 * exactly 1 + layers graphs were captured (none with GRAPHS=off); in fp32 and fp16. */
static void sam3_text_graph(samc_precision prec, const char *tag) {
    if (!sam3_path[0]) CHECK(test_synth_tmp("sam3_micro", "device_pipeline_sam3", sam3_path, sizeof sam3_path) == 0);
    const int w = 200, h = 150;
    uint8_t *rgb = make_image(w, h, 31u);
    samc_instances on[3] = { 0 }, off[3] = { 0 };
    int g_on[2] = { -1, -1 }, g_off[2] = { -1, -1 };
    if (sam3_finds("on", prec, rgb, w, h, on, g_on) == 0 && sam3_finds("off", prec, rgb, w, h, off, g_off) == 0) {
        CHECKF(g_on[0] == 1 + g_on[1] && g_off[0] == 0, "%sgraphs captured: %d with GRAPHS=on (want 1 + %d decoder "
               "layers), %d off (want 0)", tag, g_on[0], g_on[1], g_off[0]);
        for (int i = 0; i < 3; i++)
            CHECKF(same_instances(&on[i], &off[i]), "%sfind %d: the graph's outputs differ from the ops one by one", tag,
                   i);
        CHECKF(same_instances(&on[0], &on[2]), "%sthe replayed first text differs from its capture", tag);
        CHECKF(!same_instances(&on[0], &on[1]), "%stwo texts, the same outputs: the replay ignored the text", tag);
    }
    for (int i = 0; i < 3; i++) {
        samc_instances_free(&on[i]);
        samc_instances_free(&off[i]);
    }
    free(rgb);
}

static void test_sam3_text_graph(void) { sam3_text_graph(SAMC_PRECISION_FP32, ""); }
static void test_sam3_text_graph_fp16(void) { sam3_text_graph(SAMC_PRECISION_FP16, "fp16: "); }

static void test_cleanup(void) {
    if (model_path[0]) unlink(model_path);
    if (sam3_path[0]) unlink(sam3_path);
}

TEST_MAIN(TEST_CASE(test_preprocess_twin), TEST_CASE(test_cpu_timings), TEST_CASE(test_preprocess_device),
          TEST_CASE(test_graphs), TEST_CASE(test_graphs_bf16), TEST_CASE(test_memory_flat),
          TEST_CASE(test_sam3_text_graph), TEST_CASE(test_sam3_text_graph_fp16), TEST_CASE(test_cleanup))
