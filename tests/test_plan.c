/* tests/test_plan.c: samc_options.plan_only, the memory plan of a backend computed
 * without it (kernels/ops_null.c's sizing backend): what `samc info --device cuda`
 * prints on a machine without a GPU. */
#include <unistd.h>

#include "convert/convert.h"
#include "model/samc.h"
#include "tests/test.h"

static char model_path[64];

static int load_plan(samc_backend be, samc_precision p, samc_model_info *info, samc_error *err) {
    samc_options opt = { .backend = be, .precision = p, .plan_only = 1 };
    samc_model *m = samc_model_load(model_path, &opt, err);
    if (!m) return -1;
    samc_model_get_info(m, info);
    /* a plan has no memory behind it: it cannot run */
    samc_image *img = samc_image_new(m, err);
    uint8_t rgb[3 * 4] = { 0 };
    int rc = img ? samc_image_encode(m, img, rgb, 2, 2, err) : 0;
    CHECKF(img && rc == -1 && strstr(err->msg, "plan_only"), "encode on a plan: rc %d, %s", rc, err->msg);
    samc_image_free(img);
    samc_model_free(m);
    return 0;
}

static void test_cuda_plan(void) {
    samc_error err = { 0 };
    samc_model_info f32, b16, f16;
    CHECKF(load_plan(SAMC_BACKEND_CUDA, SAMC_PRECISION_FP32, &f32, &err) == 0, "%s", err.msg);
    CHECKF(load_plan(SAMC_BACKEND_CUDA, SAMC_PRECISION_BF16, &b16, &err) == 0, "%s", err.msg);
    CHECKF(load_plan(SAMC_BACKEND_CUDA, SAMC_PRECISION_FP16, &f16, &err) == 0, "%s", err.msg);
    CHECK(f32.planned && b16.planned && !strcmp(f32.backend, "cuda (planned)"));
    /* weights (fp32 slots) + constants + scratch + the backend's own buffers */
    CHECKF(f32.backend_bytes > f32.scratch_bytes + 2 * (size_t)f32.n_params / 4,
           "plan %zu B vs scratch %zu B", f32.backend_bytes, f32.scratch_bytes);
    CHECK(f32.lowp_bytes == 0 && b16.lowp_bytes > 0 && b16.lowp_bytes == f16.lowp_bytes);
    CHECK(b16.backend_bytes == f32.backend_bytes + b16.lowp_bytes);
    CHECK(f32.image_bytes > 0);
    printf("  micro on cuda: fp32 plan %.2f MiB, bf16 %.2f MiB, %.3f MiB per image\n", f32.backend_bytes / 1048576.0,
           b16.backend_bytes / 1048576.0, f32.image_bytes / 1048576.0);
}

static void test_cpu_plan(void) {
    samc_error err = { 0 };
    samc_model_info info;
    CHECKF(load_plan(SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_FP32, &info, &err) == 0, "%s", err.msg);
    CHECK(info.planned && !strcmp(info.backend, "cpu (planned)") && info.lowp_bytes == 0);
    /* reduced precision stays CUDA-only, plan or not */
    samc_options opt = { .backend = SAMC_BACKEND_CPU_FAST, .precision = SAMC_PRECISION_BF16, .plan_only = 1 };
    samc_model *m = samc_model_load(model_path, &opt, &err);
    CHECKF(!m && err.status == SAMC_ERR_UNSUPPORTED, "%s", err.msg);
    samc_model_free(m);
}

static void test_setup(void) {
    samc_error err = { 0 };
    snprintf(model_path, sizeof model_path, "/tmp/samc_test_plan_%d.safetensors", (int)getpid());
    CHECKF(samc_synth_write("micro", model_path, &err) == 0, "%s", err.msg);
}
static void test_cleanup(void) { unlink(model_path); }

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_cuda_plan), TEST_CASE(test_cpu_plan), TEST_CASE(test_cleanup))
