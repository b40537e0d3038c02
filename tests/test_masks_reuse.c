/* tests/test_masks_reuse.c: one samc_masks reused across batch shapes, as a server worker
 * does (samc.h: a samc_masks grows to the largest request and is reused). A 1 x 3 request
 * followed by a 3 x 1 request has fewer low-res values but more prompts; every output must
 * equal that of a fresh samc_masks (and, under `make debug`, stay inside its buffers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "model/samc.h"
#include "tests/test.h"

static void test_reuse_across_shapes(void) {
    char path[] = "/tmp/samc_test_masks_reuse_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_error err = { 0 };
    CHECKF(samc_synth_write("micro", path, &err) == 0, "%s", err.msg);
    samc_options opt = { .backend = SAMC_BACKEND_CPU_REF, .n_threads = 1 };
    samc_model *m = samc_model_load(path, &opt, &err);
    remove(path);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    int w = 48, h = 40;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 37 % 251);
    samc_image *img = samc_image_new(m, &err);
    CHECKF(img && samc_image_encode(m, img, rgb, w, h, &err) == 0, "%s", err.msg);
    const float pt[2] = { 20, 15 }, boxes[3][4] = { { 2, 3, 30, 30 }, { 10, 5, 40, 38 }, { 0, 0, 48, 40 } };
    const int lab[1] = { 1 };
    samc_prompt one = { .points = pt, .labels = lab, .n_points = 1 };
    samc_prompt three[3];
    for (int b = 0; b < 3; b++) three[b] = (samc_prompt){ .box = boxes[b] };
    samc_masks reused = { 0 }, fresh = { 0 };
    samc_predict_options multi = { .multimask = 1, .want_masks = 1 }, single = { .multimask = 0, .want_masks = 1 };
    CHECKF(samc_predict(m, img, &one, 1, &multi, &reused, &err) == 0, "%s", err.msg);
    CHECK(reused.batch == 1 && reused.n_masks == 3);
    CHECKF(samc_predict(m, img, three, 3, &single, &reused, &err) == 0, "%s", err.msg);
    CHECKF(samc_predict(m, img, three, 3, &single, &fresh, &err) == 0, "%s", err.msg);
    CHECK(reused.batch == 3 && reused.n_masks == 1 && fresh.batch == 3);
    if (reused.batch == 3 && fresh.batch == 3) {
        for (int b = 0; b < 3; b++) {
            CHECKF(reused.object_score[b] == fresh.object_score[b], "object score %d", b);
            CHECKF(reused.iou[b] == fresh.iou[b], "iou %d", b);
        }
        CHECK(memcmp(reused.masks, fresh.masks, (size_t)3 * w * h) == 0);
        CHECK(memcmp(reused.low_res, fresh.low_res, sizeof(float) * 3 * reused.low_size * reused.low_size) == 0);
    }
    samc_masks_free(&reused);
    samc_masks_free(&fresh);
    samc_image_free(img);
    samc_model_free(m);
    free(rgb);
}

TEST_MAIN(TEST_CASE(test_reuse_across_shapes))
