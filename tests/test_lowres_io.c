/* tests/test_lowres_io.c: the low-res file of `samc segment --save-lowres / --mask-input`
 * (model/lowres_io.c): round trip, choice of the best mask, and clear refusals. */
#include <unistd.h>

#include "tests/test.h"
#include "model/samc.h"
#include "loader/safetensors.h"

enum { B = 2, M = 3, LS = 8 };
static float low_res[B * M * LS * LS], iou[B * M], obj[B];

static samc_masks make_masks(void) {
    for (int i = 0; i < B * M * LS * LS; i++) low_res[i] = (float)i * 0.25f - 100.0f;
    /* Batch item 0 is best at mask 1 (tie with mask 2: the first wins); item 1 at mask 0,
     * with the largest value of all, so picking from the wrong item is caught. */
    const float v[B * M] = { 0.5f, 0.9f, 0.9f, 0.99f, 0.1f, 0.2f };
    memcpy(iou, v, sizeof iou);
    obj[0] = 3.5f;
    obj[1] = -1.0f;
    samc_masks m = { .batch = B, .n_masks = M, .low_size = LS, .width = 40, .height = 30,
                     .low_res = low_res, .iou = iou, .object_score = obj };
    return m;
}

static void test_round_trip(void) {
    char path[] = "/tmp/samc_test_lowres_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_masks m = make_masks();
    samc_error err = { 0 };
    CHECKF(samc_masks_save_lowres(&m, path, &err) == 0, "%s", err.msg);

    st_file f;
    char msg[SAMC_ERRMSG];
    CHECKF(st_open(path, &f, msg) == 0, "%s", msg);
    const st_tensor *lr = st_find(&f, "low_res_masks");
    const st_tensor *io = st_find(&f, "iou_predictions");
    const st_tensor *ob = st_find(&f, "object_score_logits");
    CHECK(lr && lr->dtype == ST_F32 && lr->ndim == 4 && lr->shape[0] == B && lr->shape[1] == M &&
          lr->shape[2] == LS && lr->shape[3] == LS);
    CHECK(io && io->ndim == 2 && io->shape[0] == B && io->shape[1] == M);
    CHECK(ob && ob->ndim == 2 && ob->shape[0] == B && ob->shape[1] == 1);
    if (lr && io && ob) {
        CHECK(memcmp(lr->data, low_res, sizeof low_res) == 0);
        CHECK(memcmp(io->data, iou, sizeof iou) == 0);
        CHECK(memcmp(ob->data, obj, sizeof obj) == 0);
    }
    st_close(&f);

    float mask[LS * LS];
    CHECKF(samc_load_mask_input(path, LS, mask, &err) == 0, "%s", err.msg);
    CHECK(memcmp(mask, low_res + 1 * LS * LS, sizeof mask) == 0);   /* item 0, mask 1 */

    CHECK(samc_load_mask_input(path, LS * 2, mask, &err) != 0);
    CHECKF(strstr(err.msg, "low_res_masks") && strstr(err.msg, "16"), "%s", err.msg);
    unlink(path);
}

static void test_refusals(void) {
    samc_error err = { 0 };
    float mask[LS * LS];
    CHECK(samc_load_mask_input("/nonexistent/samc_lowres.safetensors", LS, mask, &err) != 0);
    CHECK(err.msg[0] != '\0');

    samc_masks empty = { 0 };
    CHECK(samc_masks_save_lowres(&empty, "/tmp/samc_never_written.safetensors", &err) != 0);
    CHECK(access("/tmp/samc_never_written.safetensors", F_OK) != 0);

    /* A valid safetensors file without low_res_masks. */
    char path[] = "/tmp/samc_test_lowres_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    float x[4] = { 1, 2, 3, 4 };
    st_tensor t = { .name = "other", .dtype = ST_F32, .ndim = 1, .shape = { 4 }, .numel = 4,
                    .data = x, .nbytes = sizeof x };
    char msg[SAMC_ERRMSG];
    CHECKF(st_write(path, &t, 1, NULL, 0, msg) == 0, "%s", msg);
    CHECK(samc_load_mask_input(path, LS, mask, &err) != 0);
    CHECKF(strstr(err.msg, "low_res_masks") != NULL, "%s", err.msg);
    unlink(path);
}

TEST_MAIN(TEST_CASE(test_round_trip), TEST_CASE(test_refusals))
