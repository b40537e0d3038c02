/* tests/test_sam3_api.c: the public SAM3 API around the model (model/samc.h): family
 * detection and model info, the find options (threshold, max_detections, masks),
 * reused result buffers, determinism across thread counts, the clear errors (SAM2.1 calls
 * on a SAM3 model and back, bad prompts, an image not yet encoded, truncated and
 * incomplete weight files). The numbers themselves are checked against the official code
 * by tests/test_sam3_golden.c. Missing golden data is a failure. */
#include <stb_image.h>
#include <unistd.h>

#include "convert/convert.h"
#include "loader/safetensors.h"
#include "model/samc.h"
#include "tests/test.h"

/* "truck" as the official tokenizer gives it */
static const int32_t truck_ids[SAMC_CONCEPT_CONTEXT] = { 49406, 4629, 49407 };

static char micro_path[600];
static samc_model *model;
static samc_image *image;
static unsigned char *rgb;
static int W, H;

static int setup(void) {
    if (model) return 0;
    snprintf(micro_path, sizeof micro_path, "%s/sam3/micro/weights/micro.safetensors", test_golden_dir());
    samc_options opt = { .backend = SAMC_BACKEND_CPU_FAST, .n_threads = 2 };
    samc_error err = { 0 };
    model = samc_model_load(micro_path, &opt, &err);
    CHECKF(model != NULL, "%s", err.msg);
    char path[700];
    snprintf(path, sizeof path, "%s/images/truck_320x240.png", test_golden_dir());
    int ch;
    rgb = stbi_load(path, &W, &H, &ch, 3);
    CHECKF(rgb != NULL, "cannot read %s", path);
    if (!model || !rgb) return -1;
    image = samc_image_new(model, &err);
    CHECKF(image && samc_image_encode(model, image, rgb, W, H, &err) == 0, "%s", err.msg);
    return image ? 0 : -1;
}

static void test_info(void) {
    if (setup()) return;
    samc_model_info info;
    samc_model_get_info(model, &info);
    CHECK(info.family == SAMC_FAMILY_SAM3 && !strcmp(info.config, "sam3_micro"));
    CHECK(info.image_size == 252 && info.embed_dim == 64 && info.d_model == 32);
    CHECK(info.n_tensors == 316 && info.n_params == 3813258 && info.scratch_bytes > 0);
    CHECK(!strcmp(info.backend, "cpu_fast") && !strcmp(info.precision, "fp32"));
    CHECK(samc_image_width(image) == W && samc_image_height(image) == H);
    samc_timings t;
    samc_model_get_timings(model, &t);
    CHECK(t.encode_total_ms > 0 && t.stage_ms[0] > 0 && t.neck_ms > 0);
    /* the CPU backends: host clock, the encoder's span from the host marks, no device memory */
    CHECK(t.device_timed == 0 && t.preprocess_device_ms == 0 && t.upload_ms >= 0);
    CHECKF(t.encoder_device_ms >= t.stage_ms[0] && t.encoder_device_ms <= t.encode_total_ms,
           "encoder %.3f ms, ViT blocks %.3f, encode %.3f", t.encoder_device_ms, t.stage_ms[0], t.encode_total_ms);
    CHECK(info.device_total_bytes == 0 && info.device_used_after_encode == 0);
    samc_concept_prompt p = { .token_ids = truck_ids };
    samc_instances out = { 0 };
    samc_error err = { 0 };
    CHECK(samc_find(model, image, &p, NULL, &out, &err) == 0);
    samc_model_get_timings(model, &t);
    CHECK(t.device_timed == 0 && t.find_device_ms == -1.0 && t.fusion_ms > 0 && t.predict_total_ms > 0);
    samc_instances_free(&out);
}

static void test_options(void) {
    if (setup()) return;
    samc_concept_prompt p = { .token_ids = truck_ids };
    samc_instances all = { 0 }, top = { 0 };
    samc_error err = { 0 };
    /* threshold -1 keeps every query, in query order */
    samc_find_options o = { .threshold = -1.0f, .want_masks = 1 };
    CHECKF(samc_find(model, image, &p, &o, &all, &err) == 0, "%s", err.msg);
    CHECK(all.n == all.n_queries && all.n_queries == 20 && all.low_size == 72);
    for (int i = 0; i < all.n; i++) {
        CHECK(all.query[i] == i && all.score[i] == all.probs[i]);
        int64_t area = 0;
        for (size_t k = 0; k < (size_t)W * H; k++) area += all.masks[(size_t)i * W * H + k];
        CHECK(area == all.area[i]);
    }
    /* max_detections: the 3 highest scores, still in query order */
    o.max_detections = 3;
    o.want_masks = 0;
    CHECKF(samc_find(model, image, &p, &o, &top, &err) == 0, "%s", err.msg);
    CHECK(top.n == 3 && top.query[0] < top.query[1] && top.query[1] < top.query[2]);
    for (int i = 0; i < 3; i++) CHECK(top.area[i] == 0);
    float third = fminf(top.score[0], fminf(top.score[1], top.score[2]));
    int above = 0;
    for (int q = 0; q < all.n; q++) above += all.probs[q] > third;
    CHECK(above == 2);
    /* the default threshold 0.5 (NULL options): the synthetic scores are ~0.3, so nothing */
    CHECKF(samc_find(model, image, &p, NULL, &top, &err) == 0, "%s", err.msg);
    CHECK(top.n == 0 && top.n_queries == 20);
    samc_instances_free(&all);
    samc_instances_free(&top);
}

/* The same call twice gives the same bits into the same buffers (nothing reallocated),
 * and cpu_fast with 1 thread gives the bits of 2 threads. */
static void test_reuse_determinism(void) {
    if (setup()) return;
    samc_concept_prompt p = { .token_ids = truck_ids };
    samc_find_options o = { .threshold = 0.25f, .want_masks = 1 };
    samc_instances a = { 0 }, b = { 0 };
    samc_error err = { 0 };
    CHECK(samc_find(model, image, &p, &o, &a, &err) == 0);
    float *logits0 = malloc(sizeof(float) * 20), *masks_ptr = a.pred_masks;
    memcpy(logits0, a.pred_logits, sizeof(float) * 20);
    uint8_t *m0 = a.masks;
    CHECK(samc_find(model, image, &p, &o, &a, &err) == 0);
    CHECK(a.masks == m0 && a.pred_masks == masks_ptr && memcmp(logits0, a.pred_logits, sizeof(float) * 20) == 0);
    samc_options one = { .backend = SAMC_BACKEND_CPU_FAST, .n_threads = 1 };
    samc_model *m1 = samc_model_load(micro_path, &one, &err);
    samc_image *i1 = m1 ? samc_image_new(m1, &err) : NULL;
    CHECKF(i1 && samc_image_encode(m1, i1, rgb, W, H, &err) == 0 && samc_find(m1, i1, &p, &o, &b, &err) == 0, "%s",
           err.msg);
    if (i1) {
        CHECK(b.n == a.n && memcmp(b.pred_masks, a.pred_masks, sizeof(float) * 20 * 72 * 72) == 0);
        CHECK(memcmp(b.masks, a.masks, (size_t)a.n * W * H) == 0);
    }
    samc_image_free(i1);
    samc_model_free(m1);
    free(logits0);
    samc_instances_free(&a);
    samc_instances_free(&b);
}

/* A prompt with cached ids (the model keeps the last 8 texts' features) reuses them (a
 * box added to a text; texts taking turns): the bits a fresh model gives for that
 * prompt, the text encoder skipped (timings.text_reused); a text not among the last 8 is
 * encoded again. */
static void test_text_cache(void) {
    if (setup()) return;
    static const int32_t other_ids[SAMC_CONCEPT_CONTEXT] = { 49406, 3306, 49407 };
    const float box[4] = { 76, 124, 124, 170 };
    samc_concept_prompt text = { .token_ids = truck_ids }, other = { .token_ids = other_ids };
    samc_concept_prompt text_box = { .token_ids = truck_ids, .boxes = box, .n_boxes = 1 };
    samc_find_options o = { .threshold = 0.25f, .want_masks = 1 };
    samc_instances a = { 0 }, b = { 0 };
    samc_error err = { 0 };
    samc_options opt = { .backend = SAMC_BACKEND_CPU_FAST, .n_threads = 2 };
    samc_model *fresh = samc_model_load(micro_path, &opt, &err);
    samc_image *fi = fresh ? samc_image_new(fresh, &err) : NULL;
    CHECKF(fi && samc_image_encode(fresh, fi, rgb, W, H, &err) == 0 && samc_find(fresh, fi, &text_box, &o, &b, &err) == 0,
           "%s", err.msg);
    for (int round = 0; round < 2 && fi; round++) {
        /* round 0: the text, then text + box; round 1: another text first, then text + box */
        CHECKF(samc_find(model, image, round ? &other : &text, &o, &a, &err) == 0, "%s", err.msg);
        if (round) {
            samc_timings t;
            samc_model_get_timings(model, &t);
            CHECKF(t.text_reused == 0, "another text took the cached features");
        }
        CHECKF(samc_find(model, image, &text_box, &o, &a, &err) == 0, "%s", err.msg);
        samc_timings t;
        samc_model_get_timings(model, &t);
        CHECKF(t.text_reused == 1, "the text encoder ran again for the same ids (round %d)", round);
        CHECK(a.n == b.n && a.n_queries == b.n_queries);
        CHECK(memcmp(a.pred_logits, b.pred_logits, sizeof(float) * (size_t)b.n_queries) == 0);
        CHECK(memcmp(a.pred_boxes, b.pred_boxes, sizeof(float) * 4 * (size_t)b.n_queries) == 0);
        CHECK(memcmp(a.pred_masks, b.pred_masks, sizeof(float) * (size_t)b.n_queries * 72 * 72) == 0);
        CHECK(memcmp(a.masks, b.masks, (size_t)b.n * W * H) == 0);
    }
    /* 8 other texts push "truck" out: encoded again */
    for (int i = 0; i < 8 && fi; i++) {
        int32_t ids[SAMC_CONCEPT_CONTEXT] = { 49406, 4000 + i, 49407 };
        CHECKF(samc_find(model, image, &(samc_concept_prompt){ .token_ids = ids }, &o, &a, &err) == 0, "%s", err.msg);
    }
    samc_timings t;
    CHECKF(samc_find(model, image, &text, &o, &a, &err) == 0, "%s", err.msg);
    samc_model_get_timings(model, &t);
    CHECKF(t.text_reused == 0, "a text pushed out of the cache was reused");
    samc_image_free(fi);
    samc_model_free(fresh);
    samc_instances_free(&a);
    samc_instances_free(&b);
}

static void expect_find_error(const samc_concept_prompt *p, samc_status st, const char *needle) {
    samc_instances out = { 0 };
    samc_error err = { 0 };
    CHECK(samc_find(model, image, p, NULL, &out, &err) == -1);
    CHECKF(err.status == st && strstr(err.msg, needle), "status %d, message: %s (expected '%s')", err.status, err.msg,
           needle);
    samc_instances_free(&out);
}

static void test_bad_prompts(void) {
    if (setup()) return;
    float outside[4] = { 10, 10, 400, 100 }, inverted[4] = { 50, 50, 40, 60 }, box[4] = { 10, 10, 50, 50 };
    float far_point[2] = { 321, 5 };
    int bad_label = 2;
    int32_t bad_ids[SAMC_CONCEPT_CONTEXT] = { 49406, 49408, 49407 };
    expect_find_error(&(samc_concept_prompt){ .boxes = outside, .n_boxes = 1 }, SAMC_ERR_ARG, "outside the 320x240");
    expect_find_error(&(samc_concept_prompt){ .boxes = inverted, .n_boxes = 1 }, SAMC_ERR_ARG, "inverted");
    expect_find_error(&(samc_concept_prompt){ .boxes = box, .box_labels = &bad_label, .n_boxes = 1 }, SAMC_ERR_ARG,
                      "label 2");
    expect_find_error(&(samc_concept_prompt){ .points = far_point, .n_points = 1 }, SAMC_ERR_ARG, "point 0");
    expect_find_error(&(samc_concept_prompt){ .boxes = box, .n_boxes = 33 }, SAMC_ERR_ARG, "at most 32");
    expect_find_error(&(samc_concept_prompt){ 0 }, SAMC_ERR_ARG, "empty prompt");
    expect_find_error(&(samc_concept_prompt){ .token_ids = bad_ids }, SAMC_ERR_ARG, "token_ids[1]");
    expect_find_error(&(samc_concept_prompt){ .text = "truck" }, SAMC_ERR_UNSUPPORTED, "needs a vocabulary");
    /* a visual-only prompt is fine: the dummy text "visual" */
    samc_instances out = { 0 };
    samc_error err = { 0 };
    CHECKF(samc_find(model, image, &(samc_concept_prompt){ .boxes = box, .n_boxes = 1 }, NULL, &out, &err) == 0, "%s",
           err.msg);
    samc_instances_free(&out);
}

/* Images smaller, thinner and larger than the input side (upsampled, stretched, shrunk):
 * encoded and searched; boxes and masks come back at the image's own size. */
static void test_odd_images(void) {
    if (setup()) return;
    static const int sizes[][2] = { { 1, 1 }, { 17, 300 }, { 700, 9 }, { 252, 252 }, { 600, 501 } };
    samc_instances out = { 0 };
    samc_error err = { 0 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        uint8_t *px = malloc((size_t)w * h * 3);
        for (size_t i = 0; i < (size_t)w * h * 3; i++) px[i] = (uint8_t)(i * 2654435761u >> 24);
        samc_image *img = samc_image_new(model, &err);
        CHECKF(img && samc_image_encode(model, img, px, w, h, &err) == 0, "%dx%d: %s", w, h, err.msg);
        samc_find_options o = { .threshold = -1.0f, .max_detections = 2, .want_masks = 1 };
        CHECKF(img && samc_find(model, img, &(samc_concept_prompt){ .token_ids = truck_ids }, &o, &out, &err) == 0,
               "%dx%d: %s", w, h, err.msg);
        CHECK(out.n == 2 && out.width == w && out.height == h);
        for (int i = 0; i < out.n * 4; i++) CHECK(isfinite(out.box[i]));
        samc_image_free(img);
        free(px);
    }
    samc_instances_free(&out);
}

/* A text prompt through the tokenizer (vocabulary from samc_options.vocab_path) is the
 * same as its ids; "a red car" as the golden f_two_texts recorded it. */
static void test_text_prompt(void) {
    if (setup()) return;
    char vocab[700];
    snprintf(vocab, sizeof vocab, "%s/sam3/assets/bpe_simple_vocab_16e6.txt.gz", test_golden_dir());
    samc_options opt = { .backend = SAMC_BACKEND_CPU_FAST, .n_threads = 2, .vocab_path = vocab };
    samc_error err = { 0 };
    samc_model *m = samc_model_load(micro_path, &opt, &err);
    CHECKF(m != NULL, "%s", err.msg);
    samc_image *img = m ? samc_image_new(m, &err) : NULL;
    CHECKF(img && samc_image_encode(m, img, rgb, W, H, &err) == 0, "%s", err.msg);
    samc_instances a = { 0 }, b = { 0 };
    samc_find_options o = { .threshold = -1.0f };
    static const int32_t red_car[SAMC_CONCEPT_CONTEXT] = { 49406, 320, 736, 1615, 49407 };
    const char *texts[] = { "truck", "A  Red car" };
    const int32_t *ids[] = { truck_ids, red_car };
    for (int i = 0; img && i < 2; i++) {
        CHECKF(samc_find(m, img, &(samc_concept_prompt){ .text = texts[i] }, &o, &a, &err) == 0, "%s", err.msg);
        CHECKF(samc_find(m, img, &(samc_concept_prompt){ .token_ids = ids[i] }, &o, &b, &err) == 0, "%s", err.msg);
        CHECK(a.n == b.n && memcmp(a.pred_logits, b.pred_logits, sizeof(float) * 20) == 0);
        CHECK(memcmp(a.pred_masks, b.pred_masks, sizeof(float) * 20 * 72 * 72) == 0);
    }
    /* samc_text_tokenize: what samc_find will see, and what a caller should refuse */
    samc_text_tokens tok;
    CHECKF(m && samc_text_tokenize(m, "A  Red car", &tok, &err) == 0, "%s", err.msg);
    CHECK(memcmp(tok.ids, red_car, sizeof red_car) == 0 && tok.n_tokens == 5 && tok.n_words == 3);
    CHECK(!tok.truncated && !tok.invalid_utf8 && !tok.input_cut);
    static const struct { const char *text; int n_tokens, n_words, truncated, invalid_utf8; } cases[] = {
        { "", 2, 0, 0, 0 }, { " \t\xc2\xa0\n", 2, 0, 0, 0 }, { "?!...", 4, 0, 0, 0 }, { "!", 3, 0, 0, 0 },
        { "ro\xffof", 5, 2, 0, 1 }, { "caf\xc3\xa9's 2", 5, 3, 0, 0 },
        { "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e", 33, 31, 1, 0 },
    };
    for (size_t i = 0; m && i < sizeof cases / sizeof cases[0]; i++) {
        CHECKF(samc_text_tokenize(m, cases[i].text, &tok, &err) == 0, "%s", err.msg);
        CHECKF(tok.n_tokens == cases[i].n_tokens && tok.n_words == cases[i].n_words &&
               tok.truncated == cases[i].truncated && tok.invalid_utf8 == cases[i].invalid_utf8,
               "'%s': %d tokens, %d words, truncated %d, invalid %d", cases[i].text, tok.n_tokens, tok.n_words,
               tok.truncated, tok.invalid_utf8);
    }
    CHECK(m && tok.ids[SAMC_CONCEPT_CONTEXT - 1] == 49407);
    samc_instances_free(&a);
    samc_instances_free(&b);
    samc_image_free(img);
    samc_model_free(m);
    /* a vocabulary that is not there: the load says so */
    opt.vocab_path = "/nonexistent/vocab.txt.gz";
    CHECK(samc_model_load(micro_path, &opt, &err) == NULL);
    CHECKF(strstr(err.msg, "/nonexistent/vocab.txt.gz"), "%s", err.msg);
}

static void test_family_errors(void) {
    if (setup()) return;
    samc_error err = { 0 };
    samc_masks masks = { 0 };
    float pt[2] = { 10, 10 };
    int lab = 1;
    samc_prompt sp = { .points = pt, .labels = &lab, .n_points = 1 };
    CHECK(samc_predict(model, image, &sp, 1, NULL, &masks, &err) == -1);
    CHECKF(err.status == SAMC_ERR_UNSUPPORTED && strstr(err.msg, "SAM3") && strstr(err.msg, "samc_find"), "%s", err.msg);
    /* a SAM2.1 model: samc_find is unsupported, and images do not cross families */
    char path[] = "/tmp/samc_sam3_api_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(samc_synth_write("micro", path, &err) == 0);
    samc_model *m2 = samc_model_load(path, NULL, &err);
    unlink(path);
    CHECKF(m2 != NULL, "%s", err.msg);
    if (!m2) return;
    samc_instances out = { 0 };
    CHECK(samc_find(m2, image, &(samc_concept_prompt){ .token_ids = truck_ids }, NULL, &out, &err) == -1);
    CHECKF(err.status == SAMC_ERR_UNSUPPORTED && strstr(err.msg, "SAM2.1"), "%s", err.msg);
    samc_text_tokens tok;
    CHECK(samc_text_tokenize(m2, "truck", &tok, &err) == -1 && err.status == SAMC_ERR_ARG && strstr(err.msg, "SAM2.1"));
    CHECK(samc_text_tokenize(model, "truck", &tok, &err) == -1 && err.status == SAMC_ERR_UNSUPPORTED);
    CHECK(samc_image_encode(m2, image, rgb, W, H, &err) == -1 && strstr(err.msg, "another model"));
    samc_model_free(m2);
    /* not yet encoded */
    samc_image *fresh = samc_image_new(model, &err);
    CHECK(samc_find(model, fresh, &(samc_concept_prompt){ .token_ids = truck_ids }, NULL, &out, &err) == -1);
    CHECKF(strstr(err.msg, "not been encoded"), "%s", err.msg);
    samc_image_free(fresh);
}

/* A copy of micro.safetensors without one tensor, with one wrong shape, and cut short. */
static void test_bad_files(void) {
    char err[SAMC_ERRMSG];
    snprintf(micro_path, sizeof micro_path, "%s/sam3/micro/weights/micro.safetensors", test_golden_dir());
    st_file f;
    int rc = st_open(micro_path, &f, err);
    CHECKF(rc == 0, "golden weights: %s", err);
    if (rc) return;
    char dir[] = "/tmp/samc_sam3_bad_XXXXXX", path[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    st_tensor *t = malloc(sizeof *t * (size_t)f.n_tensors);
    memcpy(t, f.tensors, sizeof *t * (size_t)f.n_tensors);
    int drop = 0;
    while (strcmp(t[drop].name, "transformer.decoder.presence_token.weight")) drop++;
    t[drop] = t[f.n_tensors - 1];
    samc_error se = { 0 };
    CHECK(st_write(path, t, f.n_tensors - 1, NULL, 0, err) == 0);
    CHECK(samc_model_load(path, NULL, &se) == NULL);
    CHECKF(se.status == SAMC_ERR_MODEL && strstr(se.msg, "not a SAM3 image model") &&
               strstr(se.msg, "missing key 'transformer.decoder.presence_token.weight'"),
           "%s", se.msg);
    memcpy(t, f.tensors, sizeof *t * (size_t)f.n_tensors);
    t[drop].shape[1] = 16;
    t[drop].numel = 16;
    t[drop].nbytes = 64;
    CHECK(st_write(path, t, f.n_tensors, NULL, 0, err) == 0);
    CHECK(samc_model_load(path, NULL, &se) == NULL);
    CHECKF(strstr(se.msg, "presence_token.weight' has shape [1, 16], expected [1, 32]"), "%s", se.msg);
    /* truncated: the file format's error */
    FILE *in = fopen(micro_path, "rb"), *out = fopen(path, "wb");
    char buf[65536];
    size_t total = 0, n;
    while (in && out && total < 4000000 && (n = fread(buf, 1, sizeof buf, in)) > 0) total += fwrite(buf, 1, n, out);
    if (in) fclose(in);
    if (out) fclose(out);
    CHECK(samc_model_load(path, NULL, &se) == NULL);
    CHECKF(se.status == SAMC_ERR_FORMAT && strstr(se.msg, "w.safetensors"), "%d %s", se.status, se.msg);
    /* the video side that `samc convert` keeps by default (tracker.*, unused detector.*)
     * is no obstacle to loading the image model */
    st_tensor *tv = malloc(sizeof *tv * (size_t)(f.n_tensors + 2));
    memcpy(tv, f.tensors, sizeof *tv * (size_t)f.n_tensors);
    static const float extra[4] = { 1, 2, 3, 4 };
    tv[f.n_tensors] = (st_tensor){ .name = "tracker.maskmem_tpos_enc", .dtype = ST_F32, .ndim = 1, .shape = { 4 },
                                   .numel = 4, .data = extra, .nbytes = sizeof extra };
    tv[f.n_tensors + 1] = tv[f.n_tensors];
    tv[f.n_tensors + 1].name = "detector.backbone.vision_backbone.sam2_convs.0.weight";
    CHECK(st_write(path, tv, f.n_tensors + 2, NULL, 0, err) == 0);
    samc_model *mv = samc_model_load(path, NULL, &se);
    CHECKF(mv != NULL, "with tracker.* / detector.* tensors: %s", se.msg);
    samc_model_free(mv);
    free(tv);
    unlink(path);
    rmdir(dir);
    free(t);
    st_close(&f);
}

static void test_cleanup(void) {
    samc_image_free(image);
    samc_model_free(model);
    stbi_image_free(rgb);
    model = NULL;
}

TEST_MAIN(TEST_CASE(test_info), TEST_CASE(test_options), TEST_CASE(test_reuse_determinism), TEST_CASE(test_text_cache),
          TEST_CASE(test_bad_prompts),
          TEST_CASE(test_text_prompt), TEST_CASE(test_odd_images), TEST_CASE(test_family_errors), TEST_CASE(test_bad_files), TEST_CASE(test_cleanup))
