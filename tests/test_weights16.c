/* tests/test_weights16.c: weights stored in 16 bits on the CPU (kernels/ops.h "16-bit
 * weight storage", model/runtime/weights.c).
 *
 * A model converted to f16 / bf16 runs on cpu_fast with its matrix weights left in 16 bits
 * (stand-ins, converted as the GEMMs pack them). Its outputs must equal, bit for bit, those
 * of the fp32 file that holds the same 16-bit-rounded values (the f16 file converted back
 * to f32), on SAM2.1 micro (encode + predict) and SAM3 micro (set_image + a text prompt),
 * and the resident memory of the 16-bit model's weights must be about half. */
#include <stdint.h>
#include <unistd.h>

#include "convert/convert.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "model/samc.h"
#include "tests/test.h"

static char dir[] = "/tmp/samc_test_w16_XXXXXX";

static const char *path_in(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static uint8_t *test_image(int w, int h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (size_t i = 0; rgb && i < (size_t)w * h * 3; i++) rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    return rgb;
}

/* Low-res logits and IoUs of one point prompt (multimask) on a 300x200 image. */
static int sam2_outputs(const char *model, samc_backend be, int want16, samc_masks *out, samc_error *err) {
    samc_options opt = { .backend = be, .n_threads = 2 };
    samc_model *m = samc_model_load(model, &opt, err);
    if (!m) return -1;
    /* the qkv weight of the first block is a 16-bit stand-in exactly when expected */
    int is16 = samc_w16_find(m->sam2->trunk.blocks[0].qkv.w, NULL) != NULL;
    CHECKF(is16 == want16, "%s on %s: first qkv weight %s", model, be == SAMC_BACKEND_CPU_REF ? "cpu_ref" : "cpu_fast",
           is16 ? "in 16 bits" : "in float32");
    samc_image *img = samc_image_new(m, err);
    uint8_t *rgb = test_image(300, 200);
    float pt[2] = { 120, 80 };
    int lab = 1;
    samc_prompt p = { .points = pt, .labels = &lab, .n_points = 1 };
    samc_predict_options po = { .multimask = 1 };
    int rc = img && rgb ? samc_image_encode(m, img, rgb, 300, 200, err) : -1;
    if (!rc) rc = samc_predict(m, img, &p, 1, &po, out, err);
    free(rgb);
    samc_image_free(img);
    samc_model_free(m);
    return rc;
}

static int same_floats(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

static void sam2_dtype(const char *dtype) {
    samc_error err = { 0 };
    char f16[32], back[32];
    snprintf(f16, sizeof f16, "micro_%s.safetensors", dtype);
    snprintf(back, sizeof back, "micro_%s_f32.safetensors", dtype);
    CHECKF(samc_synth_write("micro", path_in("micro.safetensors"), &err) == 0, "%s", err.msg);
    CHECKF(samc_convert(path_in("micro.safetensors"), path_in(f16), dtype, 1, &err) == 0, "%s", err.msg);
    CHECKF(samc_convert(path_in(f16), path_in(back), "f32", 1, &err) == 0, "%s", err.msg);
    samc_masks a = { 0 }, b = { 0 }, r = { 0 };
    CHECKF(sam2_outputs(path_in(f16), SAMC_BACKEND_CPU_FAST, 1, &a, &err) == 0, "%s", err.msg);
    CHECKF(sam2_outputs(path_in(back), SAMC_BACKEND_CPU_FAST, 0, &b, &err) == 0, "%s", err.msg);
    CHECKF(sam2_outputs(path_in(f16), SAMC_BACKEND_CPU_REF, 0, &r, &err) == 0, "%s", err.msg);
    size_t nl = (size_t)a.batch * a.n_masks * a.low_size * a.low_size;
    CHECK(a.low_res && b.low_res && a.batch == b.batch && a.n_masks == b.n_masks);
    if (a.low_res && b.low_res) {
        CHECKF(same_floats(a.low_res, b.low_res, nl), "SAM2.1 %s on cpu_fast: low-res logits differ from the f32 file",
               dtype);
        CHECK(same_floats(a.iou, b.iou, (size_t)a.batch * a.n_masks));
        /* the reference (float32 copies) agrees within rounding of the summation order */
        double worst = 0;
        for (size_t i = 0; r.low_res && i < nl; i++) worst = fmax(worst, fabs((double)a.low_res[i] - r.low_res[i]));
        CHECKF(worst < 1e-3, "cpu_fast vs cpu_ref on the %s file: %g", dtype, worst);
    }
    samc_masks_free(&a);
    samc_masks_free(&b);
    samc_masks_free(&r);
}

static void test_sam2_f16(void) { sam2_dtype("f16"); }
static void test_sam2_bf16(void) { sam2_dtype("bf16"); }

static int sam3_outputs(const char *model, samc_instances *out, samc_error *err) {
    samc_options opt = { .backend = SAMC_BACKEND_CPU_FAST, .n_threads = 2 };
    samc_model *m = samc_model_load(model, &opt, err);
    if (!m) return -1;
    samc_image *img = samc_image_new(m, err);
    uint8_t *rgb = test_image(320, 240);
    static const int32_t ids[SAMC_CONCEPT_CONTEXT] = { 49406, 4629, 49407 };   /* "truck" */
    float box[4] = { 76, 124, 124, 170 };
    samc_concept_prompt p = { .token_ids = ids, .boxes = box, .n_boxes = 1 };
    samc_find_options fo = { .threshold = -1.0f, .want_masks = 0 };
    int rc = img && rgb ? samc_image_encode(m, img, rgb, 320, 240, err) : -1;
    if (!rc) rc = samc_find(m, img, &p, &fo, out, err);
    free(rgb);
    samc_image_free(img);
    samc_model_free(m);
    return rc;
}

static void sam3_dtype(const char *dtype) {
    char golden[600], f16[48], back[48];
    snprintf(golden, sizeof golden, "%s/sam3/micro/weights/micro.safetensors", test_golden_dir());
    TEST_NEED_GOLDEN(access(golden, R_OK) == 0, golden);
    snprintf(f16, sizeof f16, "sam3_micro_%s.safetensors", dtype);
    snprintf(back, sizeof back, "sam3_micro_%s_f32.safetensors", dtype);
    samc_error err = { 0 };
    CHECKF(samc_convert(golden, path_in(f16), dtype, 1, &err) == 0, "%s", err.msg);
    CHECKF(samc_convert(path_in(f16), path_in(back), "f32", 1, &err) == 0, "%s", err.msg);
    samc_instances a = { 0 }, b = { 0 };
    CHECKF(sam3_outputs(path_in(f16), &a, &err) == 0, "%s", err.msg);
    CHECKF(sam3_outputs(path_in(back), &b, &err) == 0, "%s", err.msg);
    CHECK(a.n_queries > 0 && a.n_queries == b.n_queries);
    if (a.n_queries > 0 && a.n_queries == b.n_queries) {
        int q = a.n_queries;
        CHECKF(same_floats(a.pred_logits, b.pred_logits, (size_t)q), "SAM3 %s: pred_logits differ", dtype);
        CHECK(same_floats(a.pred_boxes, b.pred_boxes, (size_t)q * 4));
        CHECK(same_floats(a.pred_masks, b.pred_masks, (size_t)q * a.low_size * a.low_size));
        CHECK(a.presence_logit == b.presence_logit);
    }
    samc_instances_free(&a);
    samc_instances_free(&b);
}

static void test_sam3_f16(void) { sam3_dtype("f16"); }
static void test_sam3_bf16(void) { sam3_dtype("bf16"); }

/* The stand-in registry on its own: interior pointers, both types, release. */
static void test_registry(void) {
    float *base = samc_w16_reserve(8);
    CHECK(base != NULL);
    if (!base) return;
    static const uint16_t h[4] = { 0x3c00, 0x4000, 0xc000, 0x3800 }, bf[4] = { 0x3f80, 0x4000, 0xc000, 0x3f00 };
    CHECK(samc_w16_register(base, 4, h, SAMC_W16_F16) == 0 && samc_w16_register(base + 4, 4, bf, SAMC_W16_BF16) == 0);
    samc_w16_dtype t = 0;
    const uint16_t *p = samc_w16_find(base + 2, &t);
    CHECK(p == h + 2 && t == SAMC_W16_F16);
    p = samc_w16_find(base + 7, &t);
    CHECK(p == bf + 3 && t == SAMC_W16_BF16);
    float ordinary = 1.0f;
    CHECK(samc_w16_find(&ordinary, &t) == NULL);
    samc_w16_release(base, 8);
    CHECK(samc_w16_find(base + 2, &t) == NULL);
}

static void test_setup(void) { CHECK(mkdtemp(dir) != NULL); }
static void test_cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_registry), TEST_CASE(test_sam2_f16), TEST_CASE(test_sam2_bf16),
          TEST_CASE(test_sam3_f16), TEST_CASE(test_sam3_bf16), TEST_CASE(test_cleanup))
