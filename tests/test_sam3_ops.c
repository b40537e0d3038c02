/* tests/test_sam3_ops.c: the reference versions of the ops SAM3 added to the table
 * (kernels/ops.h) against what they stand for: a bias of zeros is plain attention, a
 * -inf mask drops keys, a RoPE rotation keeps norms, GroupNorm matches a computation in
 * double, roi_align of a constant map is that constant and of a ramp the ramp at the bin
 * centre, grid_sample at pixel centres reads the pixel. Every other backend is compared
 * with this reference by the one op harness, tests/test_backend_ops.c. */
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/test_data.h"

static const samc_ops *ref;

static void setup(void) {
    if (!ref) ref = samc_ops_cpu_ref();
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    return worst;
}

/* Zero bias is plain attention (the reference's arithmetic exactly); a -inf key is the
 * same as leaving it out. */
static void test_attention_biased_reference(void) {
    setup();
    int H = 2, Q = 9, K = 23, hd = 8, D = H * hd;
    float *q = rand_buf((size_t)Q * D, 1.0f), *k = rand_buf((size_t)K * D, 1.0f), *v = rand_buf((size_t)K * D, 1.0f);
    float *o1 = zero_buf((size_t)Q * D), *o2 = zero_buf((size_t)Q * D), *zero = zero_buf((size_t)K);
    samc_attention_args a = {
        .batch = 1, .heads = H, .n_q = Q, .n_kv = K, .head_dim = hd, .scale = 0.35f,
        .q = q, .q_sb = 0, .q_sh = hd, .q_st = D, .k = k, .k_sb = 0, .k_sh = hd, .k_st = D,
        .v = v, .v_sb = 0, .v_sh = hd, .v_st = D, .out = o1, .o_sb = 0, .o_sh = hd, .o_st = D,
    };
    ref->attention(ref, &a);
    samc_attention_bias none = { zero, 0, 0, 0 };
    a.out = o2;
    ref->attention_biased(ref, &a, &none);
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)Q * D) == 0);
    /* keys 15.. masked vs. only 15 keys */
    for (int j = 15; j < K; j++) zero[j] = -INFINITY;
    ref->attention_biased(ref, &a, &none);
    a.n_kv = 15;
    a.out = o1;
    ref->attention(ref, &a);
    CHECK(max_abs_diff(o2, o1, (size_t)Q * D) <= 1e-6);
    free(q); free(k); free(v); free(o1); free(o2); free(zero);
}

/* ---- rope, group_norm -------------------------------------------------------------------- */

static void test_rope(void) {
    setup();
    /* the ViT layout: packed qkv rows [T, 3C], q at 0, k at C; windows of `period` rows */
    static const int shapes[][4] = { {324, 64, 2, 36}, {576 * 2, 1024, 16, 576}, {10, 12, 3, 4} }; /* rows, C, heads, period */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int rows = shapes[s][0], C = shapes[s][1], heads = shapes[s][2], period = shapes[s][3], hd = C / heads;
        size_t n = (size_t)rows * 3 * C;
        float *x = rand_buf(n, 1.0f), *ang = rand_buf((size_t)period * hd / 2, 3.0f);
        float *ct = malloc(sizeof(float) * (size_t)period * hd / 2), *st = malloc(sizeof(float) * (size_t)period * hd / 2);
        for (int i = 0; i < period * hd / 2; i++) { ct[i] = cosf(ang[i]); st[i] = sinf(ang[i]); }
        float *x0 = malloc(n * sizeof *x0);
        memcpy(x0, x, n * sizeof *x0);
        ref->rope(ref, x, rows, 3 * C, heads, hd, ct, st, period);
        /* a rotation: each pair keeps its length; v and the untouched thirds are unchanged */
        double worst = 0;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < C / 2; i++) {
                const float *a = x0 + (size_t)r * 3 * C + 2 * i, *b = x + (size_t)r * 3 * C + 2 * i;
                double n0 = hypot(a[0], a[1]), n1 = hypot(b[0], b[1]);
                if (fabs(n0 - n1) > worst) worst = fabs(n0 - n1);
            }
        CHECKF(worst < 1e-5, "rope changed a pair's length by %.3g", worst);
        CHECK(memcmp(x + C, x0 + C, sizeof(float) * 2 * C) == 0);
        free(x); free(x0); free(ang); free(ct); free(st);
    }
}

static void test_group_norm(void) {
    setup();
    static const int shapes[][3] = { {32, 72 * 72, 8}, {256, 144 * 144, 8}, {12, 7, 3} }; /* C, HW, groups */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int C = shapes[s][0], HW = shapes[s][1], G = shapes[s][2];
        size_t n = (size_t)C * HW;
        float *x = rand_buf(n, 3.0f), *w = rand_buf((size_t)C, 1.0f), *b = rand_buf((size_t)C, 1.0f);
        for (size_t i = 0; i < n; i++) x[i] += 5.0f; /* an offset: the variance must not cancel */
        float *y1 = malloc(n * sizeof *y1);
        ref->group_norm(ref, x, w, b, y1, C, HW, G, 1e-5f);
        /* against a double computation of group 0's first channel */
        int cg = C / G;
        double mean = 0, var = 0;
        for (size_t i = 0; i < (size_t)cg * HW; i++) mean += x[i];
        mean /= (double)cg * HW;
        for (size_t i = 0; i < (size_t)cg * HW; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= (double)cg * HW;
        double worst = 0;
        for (int p = 0; p < HW; p++) {
            double want = (x[p] - mean) / sqrt(var + 1e-5) * w[0] + b[0];
            if (fabs(want - y1[p]) > worst) worst = fabs(want - y1[p]);
        }
        CHECKF(worst < 2e-5, "group_norm vs double: %.3g", worst);
        ref->group_norm(ref, x, w, b, x, C, HW, G, 1e-5f); /* in place */
        CHECK(memcmp(x, y1, n * sizeof *x) == 0);
        free(x); free(w); free(b); free(y1);
    }
}

/* ---- roi_align, grid_sample, box_rpb_bias --------------------------------------------- */

static void test_roi_align(void) {
    setup();
    int C = 3, H = 18, W = 18, P = 7;
    float *x = malloc(sizeof(float) * C * H * W);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H * W; i++) x[c * H * W + i] = (float)(c + 1);
    float boxes[] = { 2.5f, 3.25f, 9.75f, 12.0f, 0.0f, 0.0f, 0.4f, 0.3f, 10.0f, 10.0f, 17.9f, 17.5f };
    float *y = malloc(sizeof(float) * 3 * C * P * P);
    ref->roi_align(ref, x, boxes, y, C, H, W, 3, P);
    double worst = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < P * P; i++) worst = fmax(worst, fabs(y[(r * C + c) * P * P + i] - (c + 1)));
    CHECKF(worst < 1e-6, "roi_align of a constant map: %.3g", worst);
    /* a linear ramp x: the average of bilinear samples is the ramp at the sample mean */
    for (int i = 0; i < H * W; i++) x[i] = (float)(i % W);
    ref->roi_align(ref, x, boxes, y, 1, H, W, 1, P);
    float bw = (9.75f - 2.5f) / 7.0f;
    for (int pw = 0; pw < P; pw++) {
        double want = 2.5 + (pw + 0.5) * bw;
        CHECKF(fabs(y[pw] - want) < 1e-5, "ramp bin %d: %g vs %g", pw, y[pw], want);
    }
    free(x); free(y);
}

static void test_grid_sample(void) {
    setup();
    int C = 2, H = 5, W = 7;
    float *x = rand_buf((size_t)C * H * W, 1.0f);
    /* pixel centres: ((2 * i + 1) / size) - 1 */
    float pts[] = { (2.0f * 3 + 1) / W - 1, (2.0f * 2 + 1) / H - 1, (2.0f * 0 + 1) / W - 1, (2.0f * 4 + 1) / H - 1,
                    -1.0f, -1.0f, 0.999f, 1.5f };
    float y[8];
    ref->grid_sample(ref, x, pts, y, C, H, W, 4);
    CHECK(fabsf(y[0] - x[2 * W + 3]) < 1e-6f && fabsf(y[1] - x[H * W + 2 * W + 3]) < 1e-6f);
    CHECK(fabsf(y[2] - x[4 * W + 0]) < 1e-6f);
    /* the corner (-1, -1) is a quarter of pixel (0, 0) (zeros padding outside) */
    CHECK(fabsf(y[4] - 0.25f * x[0]) < 1e-6f);
    CHECK(y[6] == 0.0f && y[7] == 0.0f); /* below the map: all four neighbours outside */
    free(x);
}

static void test_box_rpb_bias(void) {
    setup();
    int Q = 3, H = 4, W = 5, nh = 2, r0 = 1;
    float *by = rand_buf((size_t)Q * H * nh, 1.0f), *bx = rand_buf((size_t)Q * W * nh, 1.0f);
    size_t n = (size_t)nh * (r0 + Q) * H * W;
    float *y = rand_buf(n, 1.0f);
    ref->box_rpb_bias(ref, by, bx, y, Q, H, W, nh, r0);
    for (int h = 0; h < nh; h++) {
        for (int p = 0; p < H * W; p++) CHECK(y[(size_t)h * (r0 + Q) * H * W + p] == 0.0f);
        int q = 2, yy = 3, xx = 1;
        CHECK(y[((size_t)h * (r0 + Q) + r0 + q) * H * W + yy * W + xx] == by[(q * H + yy) * nh + h] + bx[(q * W + xx) * nh + h]);
    }
    free(by); free(bx); free(y);
}

static void test_null_table(void) {
    const samc_ops *z = samc_ops_null();
    CHECK(z->attention_biased && z->rope && z->group_norm && z->roi_align && z->grid_sample && z->box_rpb_bias);
    setup();
    CHECK(ref->attention_biased && ref->rope && ref->group_norm && ref->roi_align && ref->grid_sample &&
          ref->box_rpb_bias);
}

TEST_MAIN(TEST_CASE(test_null_table), TEST_CASE(test_attention_biased_reference), TEST_CASE(test_rope),
          TEST_CASE(test_group_norm), TEST_CASE(test_roi_align), TEST_CASE(test_grid_sample),
          TEST_CASE(test_box_rpb_bias))
