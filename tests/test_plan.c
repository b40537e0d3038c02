/* tests/test_plan.c: samc_options.plan_only, the memory plan of a backend computed
 * without it (kernels/ops_null.c's sizing backend): what `samc info --device cuda`
 * prints on a machine without a GPU. */
#include <unistd.h>

#include "convert/convert.h"
#include "model/samc.h"
#include "tests/test.h"

static char model_path[64];

static int load_plan_of(const char *path, samc_backend be, samc_precision p, samc_model_info *info, samc_error *err) {
    samc_options opt = { .backend = be, .precision = p, .plan_only = 1 };
    samc_model *m = samc_model_load(path, &opt, err);
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

static int load_plan(samc_backend be, samc_precision p, samc_model_info *info, samc_error *err) {
    return load_plan_of(model_path, be, p, info, err);
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

/* SAM3 plans too (what `samc info --device cuda sam3.safetensors` prints), and a 16-bit
 * file plans the same device memory as its fp32 original without being widened on the
 * host (a plan reads no weight). */
static void test_sam3_plan(void) {
    char f32_path[80], f16_path[80];
    samc_error err = { 0 };
    snprintf(f32_path, sizeof f32_path, "/tmp/samc_test_plan3_%d.safetensors", (int)getpid());
    snprintf(f16_path, sizeof f16_path, "/tmp/samc_test_plan3_%d_f16.safetensors", (int)getpid());
    CHECKF(samc_synth_write("sam3_micro", f32_path, &err) == 0, "%s", err.msg);
    CHECKF(samc_convert(f32_path, f16_path, "f16", 0, &err) == 0, "%s", err.msg);
    samc_model_info a, b, c;
    CHECKF(load_plan_of(f32_path, SAMC_BACKEND_CUDA, SAMC_PRECISION_FP32, &a, &err) == 0, "%s", err.msg);
    CHECKF(load_plan_of(f16_path, SAMC_BACKEND_CUDA, SAMC_PRECISION_FP32, &b, &err) == 0, "%s", err.msg);
    CHECKF(load_plan_of(f16_path, SAMC_BACKEND_CUDA, SAMC_PRECISION_BF16, &c, &err) == 0, "%s", err.msg);
    CHECK(a.planned && a.backend_bytes > 0 && a.image_bytes > 0);
    CHECKF(a.backend_bytes == b.backend_bytes, "fp32 file %zu B, f16 file %zu B", a.backend_bytes, b.backend_bytes);
    CHECK(c.lowp_bytes > 0 && c.backend_bytes == b.backend_bytes + c.lowp_bytes);
    printf("  sam3_micro on cuda: fp32 plan %.2f MiB (from the f16 file too), bf16 %.2f MiB\n",
           a.backend_bytes / 1048576.0, c.backend_bytes / 1048576.0);
    unlink(f32_path);
    unlink(f16_path);
}

static void test_setup(void) {
    samc_error err = { 0 };
    snprintf(model_path, sizeof model_path, "/tmp/samc_test_plan_%d.safetensors", (int)getpid());
    CHECKF(samc_synth_write("micro", model_path, &err) == 0, "%s", err.msg);
}
static void test_cleanup(void) { unlink(model_path); }

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_cuda_plan), TEST_CASE(test_cpu_plan), TEST_CASE(test_sam3_plan),
          TEST_CASE(test_cleanup))
