/* tests/test_golden.c: the engine against the official PyTorch SAM2.1 (shared/golden).
 *
 * For micro every recorded intermediate tensor is compared (the model's dump hook hands
 * each named tensor to compare_dump), for tiny the same where the golden stores it (full
 * or a 4096-value sample), plus the final binary masks against the golden PNGs. Both CPU
 * backends run every case. A line per group says OK / NOT OK with the worst tensor;
 * SAMC_TEST_VERBOSE=1 prints every tensor. Tolerances are the manifests'
 * suggested_tol_abs (20x the fp32-vs-fp64 noise floor).
 *
 * Reduced precision (issue 4): bf16 and fp16 on the CUDA backend must keep every golden
 * mask at IoU >= 0.99 against the fp32 golden masks (skips without a device). The same
 * bound is checked on the CPU with the CUDA plan emulated: cpu_fast with every
 * activation rounded to bf16 / fp16 where the CUDA backend stores it (tests/test_lowp.h),
 * and the GEMM operands rounded as the tensor cores read them, accumulated in fp32. */
#include "tests/test.h"
#include "convert/convert.h"
#include "model/samc.h"
#include "model/model.h"
#include "loader/safetensors.h"
#include "tests/golden.h"
#include "tests/test_lowp.h"
#include <cjson/cJSON.h>
#include <stb_image.h>
#include <stdint.h>
#include <unistd.h>

/* ---- comparing dumps ---------------------------------------------------------------- */

typedef golden_compare compare_ctx;

static void dump_hook(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    golden_compare_tensor(ctx, name, data, n);
    /* g_point_multimask_logits records what predict() returned as out.masks_logits */
    if (!strcmp(name, "post.masks_logits")) golden_compare_tensor(ctx, "out.masks_logits", data, n);
}

static int is_input(const char *name) { return !strcmp(name, "inputs.mask_input"); } /* an input, not an output */

static void check_all_seen(compare_ctx *c) { golden_check_all_seen(c, is_input); }

static void report(compare_ctx *c) { golden_report(c, NULL); }

/* ---- running a config ---------------------------------------------------------------- */

static void check_masks_png(compare_ctx *c, const samc_masks *out, cJSON *manifest) {
    cJSON *list = cJSON_GetObjectItem(manifest, "masks_png");
    double tol = golden_tol(c->group, "post.masks_logits");
    size_t full = (size_t)out->width * out->height;
    for (cJSON *e = list ? list->child : NULL; e; e = e->next) {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(e, "file"));
        float idx[2];
        int ni = golden_floats(cJSON_GetObjectItem(e, "index"), idx, 2);
        int b = ni == 2 ? (int)idx[0] : 0, j = ni == 2 ? (int)idx[1] : (int)idx[0];
        char path[800];
        snprintf(path, sizeof path, "%s/%s/%s", golden_root, c->group, file);
        int w, h, ch;
        unsigned char *png = stbi_load(path, &w, &h, &ch, 1);
        CHECKF(png != NULL, "cannot read %s", path);
        if (!png) continue;
        CHECK(w == out->width && h == out->height);
        const uint8_t *mk = out->masks + ((size_t)b * out->n_masks + j) * full;
        const float *lg = out->logits + ((size_t)b * out->n_masks + j) * full;
        size_t flips = 0, hard = 0;
        for (size_t i = 0; i < full && w == out->width && h == out->height; i++)
            if ((png[i] > 127) != (mk[i] != 0)) {
                flips++;
                if (fabsf(lg[i]) > tol) hard++;
            }
        int ok = hard == 0 && flips <= 1 + full / 100000;
        if (!ok || golden_verbose())
            fprintf(stderr, "  %s %s/%s: %zu of %zu pixels differ (%zu with |logit| > %.2g)\n", ok ? "OK    " : "NOT OK",
                    c->group, file, flips, full, hard, tol);
        CHECKF(ok, "mask %s/%s", c->group, file);
        stbi_image_free(png);
    }
}

/* Runs the predict call golden group `group` records (its predict_args), with masks and
 * logits. Returns samc_predict's status. */
static int predict_case(samc_model *m, const samc_image *img, const char *group, samc_masks *out) {
    golden_group *g = golden_group_get(group);
    cJSON *args = cJSON_GetObjectItem(g->manifest, "predict_args");
    float pts[64], box[64], lab_f[32];
    int n_pts = golden_floats(cJSON_GetObjectItem(args, "point_coords"), pts, 64) / 2;
    int n_lab = golden_floats(cJSON_GetObjectItem(args, "point_labels"), lab_f, 32);
    int n_box = golden_floats(cJSON_GetObjectItem(args, "box"), box, 64) / 4;
    int labels[32];
    for (int i = 0; i < n_lab; i++) labels[i] = (int)lab_f[i];
    CHECK(n_lab == n_pts);
    float *mask = NULL;
    golden_tensor gm = { 0 };
    if (cJSON_IsString(cJSON_GetObjectItem(args, "mask_input"))) {
        CHECK(golden_load(group, "inputs.mask_input", &gm, 0) == 0);
        mask = gm.vals;
    }
    samc_prompt pr[16];
    int n_pr = n_box > 1 ? n_box : 1;
    for (int b = 0; b < n_pr; b++)
        pr[b] = (samc_prompt){ .points = n_pts ? pts : NULL, .labels = n_pts ? labels : NULL, .n_points = n_pts,
                               .box = n_box ? box + 4 * b : NULL, .mask_input = mask };
    samc_predict_options opt = { .multimask = cJSON_IsTrue(cJSON_GetObjectItem(args, "multimask_output")),
                                 .want_masks = 1, .want_logits = 1 };
    samc_error err = { 0 };
    int rc = samc_predict(m, img, pr, n_pr, &opt, out, &err);
    CHECKF(rc == 0, "%s: %s", group, err.msg);
    golden_free(&gm);
    return rc;
}

static void run_case(samc_model *m, const samc_image *img, const char *group, compare_ctx *c) {
    golden_group *g = golden_group_get(group);
    CHECKF(g && g->ok, "golden group %s missing", group);
    if (!g || !g->ok) return;
    samc_masks out = { 0 };
    c->group = group;
    int rc = predict_case(m, img, group, &out);
    if (rc == 0) {
        check_all_seen(c);
        check_masks_png(c, &out, g->manifest);
    }
    report(c);
    samc_masks_free(&out);
}

static const char *cases[] = { "a_point_multimask", "b_pos_neg_single", "c_box_single", "d_box_point_single",
                               "e_mask_point_single", "f_three_boxes_batch", "g_point_multimask_logits" };

/* SAMC_GOLDEN_CONFIGS="micro" (as `make debug` in CI sets it) limits the configs run. */
static int config_selected(const char *config) {
    const char *sel = getenv("SAMC_GOLDEN_CONFIGS");
    return !sel || !*sel || strstr(sel, config) != NULL;
}

static void run_config(const char *config, const char *image, samc_backend backend) {
    if (!config_selected(config)) TEST_SKIP("%s not in SAMC_GOLDEN_CONFIGS", config);
    snprintf(golden_root, sizeof golden_root, "%s/%s", test_golden_dir(), config);
    char path[700];
    snprintf(path, sizeof path, "%s/index.json", golden_root);
    TEST_NEED_GOLDEN(access(path, R_OK) == 0, path);
    char wpath[] = "/tmp/samc_golden_XXXXXX";
    int fd = mkstemp(wpath);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_error err = { 0 };
    CHECKF(samc_synth_write(config, wpath, &err) == 0, "%s", err.msg);
    static compare_ctx c;
    memset(&c, 0, sizeof c);
    c.group = "set_image";
    samc_options opt = { .backend = backend, .dump = dump_hook, .dump_ctx = &c };
    samc_model *m = samc_model_load(wpath, &opt, &err);
    unlink(wpath);
    if (!m && backend == SAMC_BACKEND_CUDA && err.status == SAMC_ERR_UNSUPPORTED) TEST_SKIP_GPU("%s", err.msg);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    snprintf(path, sizeof path, "%s/images/%s", test_golden_dir(), image);
    int w, h, ch;
    unsigned char *rgb = stbi_load(path, &w, &h, &ch, 3);
    CHECKF(rgb != NULL, "cannot read %s", path);
    samc_image *img = samc_image_new(m, &err);
    if (rgb && img) {
        int rc = samc_image_encode(m, img, rgb, w, h, &err);
        CHECKF(rc == 0, "%s", err.msg);
        check_all_seen(&c);
        report(&c);
        for (size_t i = 0; rc == 0 && i < sizeof cases / sizeof cases[0]; i++) {
            memset(&c, 0, sizeof c);
            run_case(m, img, cases[i], &c);
        }
    }
    stbi_image_free(rgb);
    samc_image_free(img);
    samc_model_free(m);
    golden_groups_close();
}

/* ---- reduced precision ----------------------------------------------------------- */

/* The CUDA plan on the CPU (kernels/cuda/NOTES.md, "16-bit activations"): while the
 * model asks for 16-bit activations (activation_precision: its image encoder), each op
 * of the base table runs as it is and its output is rounded to bf16 / fp16
 * (tests/test_lowp.h); GEMMs multiply 16-bit operands (the weights' 16-bit copy) with
 * fp32 accumulation, round the product, then add the fp32 bias and round again
 * (cublasGemmEx + the epilogue pass). Uploads are rounded too (the image); weights read
 * element-wise (norms, biases, convolution weights, tokens) stay fp32, and so does
 * everything while the model asks for fp32 activations (its decoder). SAMC_EMU_EXACT=
 * op,op leaves those ops' outputs unrounded (to see where the precision goes). */
static const samc_ops *emu_base;
static int emu_prec, emu_reduced;
static samc_ops emu;

static void emu_activation_precision(const samc_ops *o, int reduced) {
    (void)o;
    emu_reduced = reduced > 0;
}

static int emu_rounds(const char *op) {
    if (!emu_reduced) return 0;
    const char *x = getenv("SAMC_EMU_EXACT");
    if (!x) return 1;
    size_t n = strlen(op);
    for (const char *p = strstr(x, op); p; p = strstr(p + 1, op))
        if ((p == x || p[-1] == ',') && (p[n] == ',' || !p[n])) return 0;
    return 1;
}
static void emu_round_in_place(const char *op, float *x, size_t n) {
    if (emu_rounds(op)) test_round_lowp_buf(x, x, n, emu_prec);
}
static float *emu_round(const float *src, size_t n) {
    float *d = malloc((n ? n : 1) * sizeof(float));
    if (!d) { fprintf(stderr, "out of memory\n"); exit(2); }
    test_round_lowp_buf(d, src, n, emu_prec);
    return d;
}

static void emu_linear(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                       int K) {
    (void)o;
    if (!emu_reduced) {
        emu_base->linear(emu_base, x, w, b, y, M, N, K);
        return;
    }
    float *xr = emu_round(x, (size_t)M * K), *wr = emu_round(w, (size_t)N * K);
    emu_base->linear(emu_base, xr, wr, NULL, y, M, N, K);
    emu_round_in_place("linear", y, (size_t)M * N);
    if (b) {
        emu_base->add(emu_base, y, y, b, (size_t)M * N, (size_t)N);
        emu_round_in_place("linear", y, (size_t)M * N);
    }
    free(xr);
    free(wr);
}

static void emu_matmul(const samc_ops *o, const float *a, const float *b, const float *bias, float *c, int M, int N,
                       int K) {
    (void)o;
    if (!emu_reduced) {
        emu_base->matmul(emu_base, a, b, bias, c, M, N, K);
        return;
    }
    float *ar = emu_round(a, (size_t)M * K), *br = emu_round(b, (size_t)K * N);
    emu_base->matmul(emu_base, ar, br, NULL, c, M, N, K);
    emu_round_in_place("matmul", c, (size_t)M * N);
    if (bias) {
        emu_base->add_channel(emu_base, c, c, bias, M, N);
        emu_round_in_place("matmul", c, (size_t)M * N);
    }
    free(ar);
    free(br);
}

static void emu_attention(const samc_ops *o, const samc_attention_args *a) {
    (void)o;
    emu_base->attention(emu_base, a);
    if (!emu_rounds("attention")) return;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->heads; h++)
            for (int i = 0; i < a->n_q; i++) {
                float *r = a->out + b * a->o_sb + h * a->o_sh + i * a->o_st;
                test_round_lowp_buf(r, r, (size_t)a->head_dim, emu_prec);
            }
}

/* The ops whose output is a dense buffer: run, then round it. */
#define EMU_NORM(op, n)                                                                                          \
    static void emu_##op(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int r, int d, \
                         float eps) {                                                                            \
        (void)o;                                                                                                 \
        emu_base->op(emu_base, x, w, b, y, r, d, eps);                                                          \
        emu_round_in_place(#op, y, (size_t)(n));                                                                 \
    }
EMU_NORM(layer_norm, (size_t)r * d)
EMU_NORM(layer_norm2d, (size_t)r * d)
#define EMU_UNARY(op)                                                                                            \
    static void emu_##op(const samc_ops *o, float *x, size_t n) {                                                \
        (void)o;                                                                                                 \
        emu_base->op(emu_base, x, n);                                                                            \
        emu_round_in_place(#op, x, n);                                                                           \
    }
EMU_UNARY(gelu)
EMU_UNARY(relu)
EMU_UNARY(sigmoid)

static void emu_conv2d(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin, int H,
                       int W, int Cout, int kh, int kw, int stride, int pad) {
    (void)o;
    emu_base->conv2d(emu_base, x, w, b, y, Cin, H, W, Cout, kh, kw, stride, pad);
    int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    emu_round_in_place("conv2d", y, (size_t)Cout * Ho * Wo);
}
static void emu_conv_transpose2x2(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                                  int Cin, int H, int W, int Cout) {
    (void)o;
    emu_base->conv_transpose2x2(emu_base, x, w, b, y, Cin, H, W, Cout);
    emu_round_in_place("conv_transpose2x2", y, (size_t)Cout * 4 * H * W);
}
static void emu_copy(const samc_ops *o, float *dst, const float *src, size_t n) {
    (void)o;
    emu_base->copy(emu_base, dst, src, n);
    emu_round_in_place("copy", dst, n);
}
static void emu_add(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    (void)o;
    emu_base->add(emu_base, dst, a, b, n, nb);
    emu_round_in_place("add", dst, n);
}
static void emu_add_channel(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    (void)o;
    emu_base->add_channel(emu_base, dst, a, v, C, HW);
    emu_round_in_place("add_channel", dst, (size_t)C * HW);
}
static void emu_window_unpartition_add(const samc_ops *o, const float *win, const float *shortcut, float *out, int H,
                                       int W, int C, int wh, int ww, int nwx) {
    (void)o;
    emu_base->window_unpartition_add(emu_base, win, shortcut, out, H, W, C, wh, ww, nwx);
    emu_round_in_place("window_unpartition_add", out, (size_t)H * W * C);
}
static void emu_upsample_nearest2x_add(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    (void)o;
    emu_base->upsample_nearest2x_add(emu_base, dst, src, C, h, w);
    emu_round_in_place("upsample_nearest2x_add", dst, (size_t)C * 4 * h * w);
}
static void emu_upsample_bilinear(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    (void)o;
    emu_base->upsample_bilinear(emu_base, low, out, n, ls, w, h);
    emu_round_in_place("upsample_bilinear", out, (size_t)n * w * h);
}
static void emu_upload(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    (void)o;
    memcpy(dst, src, bytes);
    emu_round_in_place("upload", dst, bytes / sizeof(float));
}

/* Puts the emulating table in place of rt's ops. */
static void emu_install(sam2_model *m, int prec) {
    samc_runtime *rt = &m->rt;
    emu_base = rt->ops;
    emu_prec = prec;
    emu = *rt->ops;
    emu.linear = emu_linear;
    emu.linear_act = samc_linear_act_unfused;
    emu.matmul = emu_matmul;
    emu.attention = emu_attention;
    emu.layer_norm = emu_layer_norm;
    emu.layer_norm2d = emu_layer_norm2d;
    emu.gelu = emu_gelu;
    emu.relu = emu_relu;
    emu.sigmoid = emu_sigmoid;
    emu.conv2d = emu_conv2d;
    emu.conv_transpose2x2 = emu_conv_transpose2x2;
    emu.copy = emu_copy;
    emu.add = emu_add;
    emu.add_channel = emu_add_channel;
    emu.window_unpartition_add = emu_window_unpartition_add;
    emu.upsample_nearest2x_add = emu_upsample_nearest2x_add;
    emu.upsample_bilinear = emu_upsample_bilinear;
    emu.activation_precision = emu_activation_precision;
    emu.upload = emu_upload;
    emu_reduced = 1;
    rt->ops = &emu;
}

/* IoU of every golden mask of `group` with ours; the smallest, or -1 when none was read. */
static double masks_min_iou(const char *group, const samc_masks *out) {
    golden_group *g = golden_group_get(group);
    cJSON *list = cJSON_GetObjectItem(g->manifest, "masks_png");
    size_t full = (size_t)out->width * out->height;
    double worst = -1.0;
    for (cJSON *e = list ? list->child : NULL; e; e = e->next) {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(e, "file"));
        float idx[2];
        int ni = golden_floats(cJSON_GetObjectItem(e, "index"), idx, 2);
        int b = ni == 2 ? (int)idx[0] : 0, j = ni == 2 ? (int)idx[1] : (int)idx[0];
        char path[800];
        snprintf(path, sizeof path, "%s/%s/%s", golden_root, group, file);
        int w, h, ch;
        unsigned char *png = stbi_load(path, &w, &h, &ch, 1);
        CHECKF(png != NULL, "cannot read %s", path);
        if (!png) continue;
        CHECKF(w == out->width && h == out->height, "%s: %dx%d, ours %dx%d", path, w, h, out->width, out->height);
        if (w == out->width && h == out->height) {
            const uint8_t *mk = out->masks + ((size_t)b * out->n_masks + j) * full;
            size_t inter = 0, uni = 0;
            for (size_t i = 0; i < full; i++) {
                int gp = png[i] > 127, op = mk[i] != 0;
                inter += gp && op;
                uni += gp || op;
            }
            double iou = uni ? (double)inter / (double)uni : 1.0; /* both empty: the same mask */
            if (golden_verbose()) fprintf(stderr, "    %s/%s: IoU %.5f (%zu of %zu)\n", group, file, iou, inter, uni);
            if (worst < 0 || iou < worst) worst = iou;
        }
        stbi_image_free(png);
    }
    return worst;
}

/* The bound of the issue; SAMC_GOLDEN_LOWP_MIN_IOU lowers it for a variant known to
 * miss it (make sim-test runs SAMC_CUDA_VARIANT_DECODER=lowp so, to see it run clean). */
static double lowp_min_iou(void) {
    const char *e = getenv("SAMC_GOLDEN_LOWP_MIN_IOU");
    return e && *e ? atof(e) : 0.99;
}
#define LOWP_MIN_IOU lowp_min_iou()

/* Every case of `config` in precision prec: on the CUDA backend, on cpu_fast's AMX (bf16,
 * CPU_FAST with emulate 0), or emulated on cpu_fast (CUDA's 16-bit storage, CPU_FAST with
 * emulate 1). One line per case with the smallest mask IoU. */
static void run_config_lowp_on(const char *config, const char *image, samc_backend backend, samc_precision prec,
                               int emulate) {
    if (!config_selected(config)) TEST_SKIP("%s not in SAMC_GOLDEN_CONFIGS", config);
    snprintf(golden_root, sizeof golden_root, "%s/%s", test_golden_dir(), config);
    char path[700];
    snprintf(path, sizeof path, "%s/index.json", golden_root);
    TEST_NEED_GOLDEN(access(path, R_OK) == 0, path);
    char why[512];
    if (backend != SAMC_BACKEND_CUDA && !emulate && !samc_cpu_bf16(why, sizeof why)) TEST_SKIP("%s", why);
    char wpath[] = "/tmp/samc_golden_XXXXXX";
    int fd = mkstemp(wpath);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_error err = { 0 };
    CHECKF(samc_synth_write(config, wpath, &err) == 0, "%s", err.msg);
    samc_options opt = { .backend = backend, .precision = emulate ? SAMC_PRECISION_FP32 : prec };
    samc_model *m = samc_model_load(wpath, &opt, &err);
    unlink(wpath);
    /* no device, or one without this precision (bf16 before sm_80) */
    if (!m && !emulate && err.status == SAMC_ERR_UNSUPPORTED) TEST_SKIP_GPU("%s", err.msg);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    samc_model_info info;
    samc_model_get_info(m, &info);
    CHECKF(!strcmp(info.precision, emulate ? "fp32" : samc_precision_name(prec)), "model reports precision %s",
           info.precision);
    samc_runtime *rt = &m->sam2->rt;
    const samc_ops *saved = rt->ops;
    if (emulate) emu_install(m->sam2, (int)prec);
    snprintf(path, sizeof path, "%s/images/%s", test_golden_dir(), image);
    int w, h, ch;
    unsigned char *rgb = stbi_load(path, &w, &h, &ch, 3);
    CHECKF(rgb != NULL, "cannot read %s", path);
    samc_image *img = samc_image_new(m, &err);
    if (rgb && img) {
        int rc = samc_image_encode(m, img, rgb, w, h, &err);
        CHECKF(rc == 0, "%s", err.msg);
        for (size_t i = 0; rc == 0 && i < sizeof cases / sizeof cases[0]; i++) {
            golden_group *g = golden_group_get(cases[i]);
            CHECKF(g && g->ok, "golden group %s missing", cases[i]);
            if (!g || !g->ok) continue;
            samc_masks out = { 0 };
            if (predict_case(m, img, cases[i], &out) == 0) {
                double iou = masks_min_iou(cases[i], &out);
                int ok = iou >= LOWP_MIN_IOU;
                printf("  %-6s %s%s %s/%s: smallest mask IoU vs fp32 golden %.4f (need %.2f)\n", ok ? "OK" : "NOT OK",
                       samc_precision_name(prec), emulate ? " (emulated on cpu_fast)" :
                       backend == SAMC_BACKEND_CUDA ? " (cuda)" : " (cpu_fast, AMX)", config, cases[i],
                       iou, LOWP_MIN_IOU);
                CHECKF(ok, "%s %s/%s: mask IoU %.4f < %.2f", samc_precision_name(prec), config, cases[i], iou,
                       LOWP_MIN_IOU);
            }
            samc_masks_free(&out);
        }
    }
    stbi_image_free(rgb);
    samc_image_free(img);
    rt->ops = saved;
    samc_model_free(m);
    golden_groups_close();
}

static void run_config_lowp(const char *config, const char *image, samc_backend backend, samc_precision prec) {
    run_config_lowp_on(config, image, backend, prec, backend != SAMC_BACKEND_CUDA);
}

static void test_micro_reference(void) { run_config("micro", "truck_320x240.png", SAMC_BACKEND_CPU_REF); }
static void test_micro_fast(void) { run_config("micro", "truck_320x240.png", SAMC_BACKEND_CPU_FAST); }
static void test_tiny_reference(void) { run_config("tiny", "truck_1800x1200.png", SAMC_BACKEND_CPU_REF); }
/* fp32 CUDA (TF32 off) against the same goldens; skips where there is no device. */
static void test_micro_cuda(void) { run_config("micro", "truck_320x240.png", SAMC_BACKEND_CUDA); }
static void test_tiny_cuda(void) { run_config("tiny", "truck_1800x1200.png", SAMC_BACKEND_CUDA); }
static void test_tiny_fast(void) { run_config("tiny", "truck_1800x1200.png", SAMC_BACKEND_CPU_FAST); }

/* bf16 / fp16 on the CUDA backend (skip without a device, or bf16 before sm_80). */
static void test_micro_cuda_bf16(void) { run_config_lowp("micro", "truck_320x240.png", SAMC_BACKEND_CUDA, SAMC_PRECISION_BF16); }
static void test_micro_cuda_fp16(void) { run_config_lowp("micro", "truck_320x240.png", SAMC_BACKEND_CUDA, SAMC_PRECISION_FP16); }
static void test_tiny_cuda_bf16(void) { run_config_lowp("tiny", "truck_1800x1200.png", SAMC_BACKEND_CUDA, SAMC_PRECISION_BF16); }
static void test_tiny_cuda_fp16(void) { run_config_lowp("tiny", "truck_1800x1200.png", SAMC_BACKEND_CUDA, SAMC_PRECISION_FP16); }
/* The same plan emulated on the CPU: runs everywhere. */
static void test_micro_bf16_emulated(void) { run_config_lowp("micro", "truck_320x240.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_BF16); }
static void test_micro_fp16_emulated(void) { run_config_lowp("micro", "truck_320x240.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_FP16); }
/* bf16 on the CPU itself (cpu_fast on AMX: GEMM and attention operands in bf16, fp32
 * activations); skips on a CPU without AMX. */
static void test_micro_cpu_bf16(void) { run_config_lowp_on("micro", "truck_320x240.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_BF16, 0); }
static void test_tiny_cpu_bf16(void) { run_config_lowp_on("tiny", "truck_1800x1200.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_BF16, 0); }
static void test_tiny_bf16_emulated(void) { run_config_lowp("tiny", "truck_1800x1200.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_BF16); }
static void test_tiny_fp16_emulated(void) { run_config_lowp("tiny", "truck_1800x1200.png", SAMC_BACKEND_CPU_FAST, SAMC_PRECISION_FP16); }

/* MaskDecoder._dynamic_multimask_via_stability on crafted logits (all three branches). */
static void test_unit_dynamic_multimask(void) {
    snprintf(golden_root, sizeof golden_root, "%s/micro", test_golden_dir());
    golden_tensor lg, iou, stab;
    TEST_NEED_GOLDEN(golden_load("unit_dynamic_multimask", "in.all_mask_logits", &lg, 0) == 0, "unit_dynamic_multimask");
    CHECK(golden_load("unit_dynamic_multimask", "in.all_iou", &iou, 0) == 0);
    CHECK(golden_load("unit_dynamic_multimask", "expected.stability_token0", &stab, 0) == 0);
    golden_group *g = golden_group_get("unit_dynamic_multimask");
    float chosen[8];
    int nc = golden_floats(cJSON_GetObjectItem(g->manifest, "chosen_token"), chosen, 8);
    int n = (int)(lg.numel / 12);
    CHECK(nc == 3 && lg.numel == 3 * 4 * n);
    for (int b = 0; b < 3 && iou.vals && stab.vals; b++) {
        float s;
        int t = sam2_dynamic_multimask_choice(lg.vals + (size_t)b * 4 * n, iou.vals + b * 4, n, &s);
        CHECKF(t == (int)chosen[b], "item %d: chose token %d, golden %d", b, t, (int)chosen[b]);
        CHECKF(fabsf(s - stab.vals[b]) <= 1e-6f, "item %d: stability %.9g, golden %.9g", b, s, stab.vals[b]);
    }
    golden_free(&lg); golden_free(&iou); golden_free(&stab);
    golden_groups_close();
}

TEST_MAIN(TEST_CASE(test_unit_dynamic_multimask), TEST_CASE(test_micro_reference), TEST_CASE(test_micro_fast),
          TEST_CASE(test_tiny_fast), TEST_CASE(test_tiny_reference), TEST_CASE(test_micro_cuda),
          TEST_CASE(test_tiny_cuda), TEST_CASE(test_micro_bf16_emulated), TEST_CASE(test_micro_fp16_emulated),
          TEST_CASE(test_tiny_bf16_emulated), TEST_CASE(test_tiny_fp16_emulated), TEST_CASE(test_micro_cpu_bf16),
          TEST_CASE(test_tiny_cpu_bf16), TEST_CASE(test_micro_cuda_bf16),
          TEST_CASE(test_micro_cuda_fp16), TEST_CASE(test_tiny_cuda_bf16), TEST_CASE(test_tiny_cuda_fp16))
