/* tests/test_encode_batch.c: samc_image_encode_batch (several images per encoder call).
 *
 * On the micro synthetic model, three images of different sizes are encoded as one
 * batch call and one by one; the encoded features (image embedding, both high-res
 * feature maps) and what samc_predict returns from them (low-res logits, IoU, object
 * score) must be bit-identical on the CPU backends: every op runs the same reduction
 * per output row whatever the number of rows. max_encode_batch 2 gives a chunk of two
 * images and a chunk of one; 4 gives one chunk of three. On CUDA (skipped without a
 * device) cuBLAS may pick another algorithm for a taller product, so there the results
 * must agree within a relative 1e-4. Argument errors must name the argument. */
#include "tests/test.h"
#include "model/model.h"
#include "tests/synth_tmp.h"
#include "model/samc.h"
#include <stdint.h>
#include <unistd.h>

#define N_IMAGES 3
static const int img_w[N_IMAGES] = { 200, 256, 97 }, img_h[N_IMAGES] = { 150, 256, 311 };

/* Image i: smooth colour ramps plus a few bits of pseudo-random noise, different per i. */
static uint8_t *make_image(int i) {
    int w = img_w[i], h = img_h[i];
    uint8_t *p = malloc((size_t)w * h * 3);
    uint32_t s = 12345u + 977u * (uint32_t)i;
    if (!p) return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1664525u + 1013904223u;
            uint8_t *px = p + ((size_t)y * w + x) * 3;
            px[0] = (uint8_t)((x * 255 / w + (s >> 28)) & 255);
            px[1] = (uint8_t)((y * 255 / h + 40 * i + ((s >> 20) & 15)) & 255);
            px[2] = (uint8_t)(((x + y) * 3 + 90 * i) & 255);
        }
    return p;
}

static char model_path[64];

/* The micro weights in a new temporary file (the caller removes it once its models are
 * loaded: the mapping outlives the name). */
static int micro_path(void) { return test_synth_tmp("micro", "encode_batch", model_path, sizeof model_path); }

static samc_model *load(samc_backend be, int max_encode_batch, samc_error *err) {
    samc_options opt = { .backend = be, .n_threads = 2, .max_encode_batch = max_encode_batch };
    return samc_model_load(model_path, &opt, err);
}

/* Features of an encoded image, downloaded into host memory. */
typedef struct { float *embed, *s0, *s1; size_t n_embed, n_s0, n_s1; } features;

static void features_get(const samc_model *m, const samc_image *img, features *f) {
    int C = m->sam2->C, S = m->sam2->S;
    f->n_embed = (size_t)C * (S / 16) * (S / 16);
    f->n_s0 = (size_t)(C / 8) * (S / 4) * (S / 4);
    f->n_s1 = (size_t)(C / 4) * (S / 8) * (S / 8);
    f->embed = malloc(sizeof(float) * f->n_embed);
    f->s0 = malloc(sizeof(float) * f->n_s0);
    f->s1 = malloc(sizeof(float) * f->n_s1);
    if (!f->embed || !f->s0 || !f->s1) return;
    const samc_ops *o = m->sam2->rt.backend;
    rt_download(o, f->embed, img->sam2->image_embed, sizeof(float) * f->n_embed);
    rt_download(o, f->s0, img->sam2->feat_s0, sizeof(float) * f->n_s0);
    rt_download(o, f->s1, img->sam2->feat_s1, sizeof(float) * f->n_s1);
}

static void features_free(features *f) { free(f->embed); free(f->s0); free(f->s1); }

/* Largest |a - b| relative to the largest |b| (0 when equal); bits: count of differing
 * values. */
static double rel_diff(const float *a, const float *b, size_t n, size_t *bits) {
    double md = 0.0, mb = 0.0;
    *bits = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
        *bits += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    }
    return mb > 0.0 ? md / mb : md;
}

/* exact: bitwise equality; otherwise within rel_tol of the largest magnitude. */
static void check_same(const char *what, int i, const float *a, const float *b, size_t n, int exact, double rel_tol) {
    size_t bits;
    double r = rel_diff(a, b, n, &bits);
    if (exact) CHECKF(bits == 0, "image %d %s: %zu of %zu values differ (largest relative %.3g)", i, what, bits, n, r);
    else CHECKF(r <= rel_tol, "image %d %s: largest relative difference %.3g > %.3g", i, what, r, rel_tol);
}

/* A point at the centre and a box around it, three masks each. */
static int predict(samc_model *m, const samc_image *img, int i, samc_masks *out, samc_error *err) {
    float pt[2] = { 0.5f * img_w[i], 0.5f * img_h[i] };
    float box[4] = { 0.2f * img_w[i], 0.25f * img_h[i], 0.8f * img_w[i], 0.7f * img_h[i] };
    int label = 1;
    samc_prompt p[2] = { { .points = pt, .labels = &label, .n_points = 1 }, { .box = box } };
    samc_predict_options po = { .multimask = 1 };
    return samc_predict(m, img, p, 2, &po, out, err);
}

/* Encodes the images one by one on a max_encode_batch 1 model and as one batch call on
 * a max_encode_batch `mb` model, and compares features and predictions. */
static void run_equality(samc_backend be, int mb, int exact) {
    if (micro_path()) { CHECKF(0, "cannot write the micro weights"); return; }
    samc_error err = { 0 };
    samc_model *m1 = load(be, 1, &err);
    if (!m1 && be == SAMC_BACKEND_CUDA && err.status == SAMC_ERR_UNSUPPORTED) {
        unlink(model_path);
        TEST_SKIP_GPU("%s", err.msg);
    }
    CHECKF(m1 != NULL, "%s", err.msg);
    samc_model *mb_model = m1 ? load(be, mb, &err) : NULL;
    unlink(model_path);
    CHECKF(!m1 || mb_model != NULL, "%s", err.msg);
    uint8_t *rgb[N_IMAGES] = { 0 };
    samc_image *one[N_IMAGES] = { 0 }, *bat[N_IMAGES] = { 0 };
    samc_masks o1 = { 0 }, ob = { 0 };
    if (!m1 || !mb_model) goto done;
    samc_model_info i1, ib;
    samc_model_get_info(m1, &i1);
    samc_model_get_info(mb_model, &ib);
    CHECKF(ib.scratch_bytes > i1.scratch_bytes, "scratch %zu bytes at batch %d, %zu at batch 1: planned for one image?",
           ib.scratch_bytes, mb, i1.scratch_bytes);
    for (int i = 0; i < N_IMAGES; i++) {
        rgb[i] = make_image(i);
        one[i] = samc_image_new(m1, &err);
        bat[i] = samc_image_new(mb_model, &err);
        CHECKF(rgb[i] && one[i] && bat[i], "setup: %s", err.msg);
        if (!rgb[i] || !one[i] || !bat[i]) goto done;
        CHECKF(samc_image_encode(m1, one[i], rgb[i], img_w[i], img_h[i], &err) == 0, "encode %d: %s", i, err.msg);
    }
    const uint8_t *const *crgb = (const uint8_t *const *)rgb;
    CHECKF(samc_image_encode_batch(mb_model, bat, crgb, img_w, img_h, N_IMAGES, &err) == 0, "batch: %s", err.msg);
    for (int i = 0; i < N_IMAGES; i++) {
        CHECKF(samc_image_width(bat[i]) == img_w[i] && samc_image_height(bat[i]) == img_h[i],
               "image %d: encoded size %dx%d, expected %dx%d", i, samc_image_width(bat[i]), samc_image_height(bat[i]),
               img_w[i], img_h[i]);
        features f1, fb;
        features_get(m1, one[i], &f1);
        features_get(mb_model, bat[i], &fb);
        if (f1.embed && f1.s0 && f1.s1 && fb.embed && fb.s0 && fb.s1) {
            check_same("image_embed", i, fb.embed, f1.embed, f1.n_embed, exact, 1e-4);
            check_same("high_res_feats0", i, fb.s0, f1.s0, f1.n_s0, exact, 1e-4);
            check_same("high_res_feats1", i, fb.s1, f1.s1, f1.n_s1, exact, 1e-4);
        } else CHECKF(0, "out of memory");
        features_free(&f1);
        features_free(&fb);
        CHECKF(predict(m1, one[i], i, &o1, &err) == 0, "predict %d: %s", i, err.msg);
        CHECKF(predict(mb_model, bat[i], i, &ob, &err) == 0, "predict %d (batch): %s", i, err.msg);
        size_t nl = (size_t)o1.batch * o1.n_masks * o1.low_size * o1.low_size;
        check_same("low_res", i, ob.low_res, o1.low_res, nl, exact, 1e-4);
        check_same("iou", i, ob.iou, o1.iou, (size_t)o1.batch * o1.n_masks, exact, 1e-4);
        check_same("object_score", i, ob.object_score, o1.object_score, (size_t)o1.batch, exact, 1e-4);
    }
    /* The images give different features (a batch that mixed them up would be seen). */
    features a, b;
    features_get(mb_model, bat[0], &a);
    features_get(mb_model, bat[2], &b);
    size_t bits = 0;
    if (a.embed && b.embed) rel_diff(a.embed, b.embed, a.n_embed, &bits);
    CHECKF(bits > a.n_embed / 2, "images 0 and 2 share %zu of %zu embedding values", a.n_embed - bits, a.n_embed);
    features_free(&a);
    features_free(&b);
    /* A single encode on the batch-planned model is the same as well. */
    CHECKF(samc_image_encode(mb_model, bat[1], rgb[1], img_w[1], img_h[1], &err) == 0, "%s", err.msg);
    {
        features f1, fb;
        features_get(m1, one[1], &f1);
        features_get(mb_model, bat[1], &fb);
        if (f1.embed && fb.embed) check_same("image_embed (single on batch model)", 1, fb.embed, f1.embed, f1.n_embed, exact, 1e-4);
        features_free(&f1);
        features_free(&fb);
    }
done:
    samc_masks_free(&o1);
    samc_masks_free(&ob);
    for (int i = 0; i < N_IMAGES; i++) {
        samc_image_free(one[i]);
        samc_image_free(bat[i]);
        free(rgb[i]);
    }
    samc_model_free(m1);
    samc_model_free(mb_model);
}

static void test_ref_chunks_2_1(void) { run_equality(SAMC_BACKEND_CPU_REF, 2, 1); }
static void test_fast_chunks_2_1(void) { run_equality(SAMC_BACKEND_CPU_FAST, 2, 1); }
static void test_fast_one_chunk_of_3(void) { run_equality(SAMC_BACKEND_CPU_FAST, 4, 1); }
static void test_cuda_chunks_2_1(void) { run_equality(SAMC_BACKEND_CUDA, 2, 0); }

/* Bad arguments fail with SAMC_ERR_ARG naming the argument, and encode nothing. */
static void expect_arg_error(int rc, const samc_error *err, const char *needle) {
    CHECKF(rc == -1 && err->status == SAMC_ERR_ARG && strstr(err->msg, needle) != NULL,
           "rc %d, status %d, message \"%s\" (expected SAMC_ERR_ARG naming \"%s\")", rc, (int)err->status, err->msg,
           needle);
}

static void test_errors(void) {
    if (micro_path()) { CHECKF(0, "cannot write the micro weights"); return; }
    samc_error err = { 0 };
    samc_model *m = load(SAMC_BACKEND_CPU_FAST, 2, &err);
    unlink(model_path);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    uint8_t *rgb[N_IMAGES] = { 0 };
    samc_image *imgs[N_IMAGES] = { 0 };
    int ok = 1;
    for (int i = 0; i < N_IMAGES; i++) {
        rgb[i] = make_image(i);
        imgs[i] = samc_image_new(m, &err);
        ok = ok && rgb[i] && imgs[i];
    }
    CHECKF(ok, "setup: %s", err.msg);
    if (ok) {
        const uint8_t *crgb[N_IMAGES] = { rgb[0], rgb[1], rgb[2] };
        int w[N_IMAGES] = { img_w[0], img_w[1], img_w[2] }, h[N_IMAGES] = { img_h[0], img_h[1], img_h[2] };
        expect_arg_error(samc_image_encode_batch(m, imgs, crgb, w, h, 0, &err), &err, "n = 0");
        expect_arg_error(samc_image_encode_batch(m, imgs, crgb, w, h, -2, &err), &err, "n = -2");
        expect_arg_error(samc_image_encode_batch(m, NULL, crgb, w, h, 3, &err), &err, "imgs");
        expect_arg_error(samc_image_encode_batch(m, imgs, NULL, w, h, 3, &err), &err, "rgb");
        expect_arg_error(samc_image_encode_batch(m, imgs, crgb, NULL, h, 3, &err), &err, "(w)");
        samc_image *with_null[N_IMAGES] = { imgs[0], NULL, imgs[2] };
        expect_arg_error(samc_image_encode_batch(m, with_null, crgb, w, h, 3, &err), &err, "imgs[1] is NULL");
        const uint8_t *rgb_null[N_IMAGES] = { rgb[0], rgb[1], NULL };
        expect_arg_error(samc_image_encode_batch(m, imgs, rgb_null, w, h, 3, &err), &err, "rgb[2] is NULL");
        w[1] = 0;
        expect_arg_error(samc_image_encode_batch(m, imgs, crgb, w, h, 3, &err), &err, "w[1] x h[1]: image size 0x256");
        w[1] = img_w[1];
        h[2] = -5;
        expect_arg_error(samc_image_encode_batch(m, imgs, crgb, w, h, 3, &err), &err, "w[2] x h[2]: image size 97x-5");
        h[2] = img_h[2];
        samc_image *twice[N_IMAGES] = { imgs[0], imgs[1], imgs[0] };
        expect_arg_error(samc_image_encode_batch(m, twice, crgb, w, h, 3, &err), &err, "imgs[0] and imgs[2]");
        /* nothing was encoded by the failed calls */
        for (int i = 0; i < N_IMAGES; i++) CHECKF(samc_image_width(imgs[i]) == 0, "image %d encoded by a failed call", i);
        /* and the arguments themselves were fine */
        CHECKF(samc_image_encode_batch(m, imgs, crgb, w, h, 3, &err) == 0, "%s", err.msg);
        for (int i = 0; i < N_IMAGES; i++) CHECKF(samc_image_width(imgs[i]) == img_w[i], "image %d not encoded", i);
    }
    for (int i = 0; i < N_IMAGES; i++) {
        samc_image_free(imgs[i]);
        free(rgb[i]);
    }
    samc_model_free(m);
}

TEST_MAIN(TEST_CASE(test_ref_chunks_2_1), TEST_CASE(test_fast_chunks_2_1), TEST_CASE(test_fast_one_chunk_of_3),
          TEST_CASE(test_cuda_chunks_2_1), TEST_CASE(test_errors))
