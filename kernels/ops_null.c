/* kernels/ops_null.c: the null backend, whose ops do nothing.
 *
 * The model sizes its scratch memory by running its forward passes once at load with
 * this table in place of the real backend (model/runtime/runtime.h, "planning"): the
 * forward code takes its buffers and calls its ops as in a real run, nothing is
 * computed, and the peak of what was taken is the plan. Its pointers are never real
 * memory, so host_memory is 0 and upload/download do nothing as well. */
#include "kernels/ops.h"

static void *null_alloc(const samc_ops *o, size_t bytes) { (void)o; (void)bytes; return NULL; }
static void null_free(const samc_ops *o, void *p) { (void)o; (void)p; }
static void null_move(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    (void)o; (void)dst; (void)src; (void)bytes;
}
static int null_sync(const samc_ops *o, char *err) { (void)o; (void)err; return 0; }
static void null_linear(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                        int K) {
    (void)o; (void)x; (void)w; (void)b; (void)y; (void)M; (void)N; (void)K;
}
static void null_attention(const samc_ops *o, const samc_attention_args *a) { (void)o; (void)a; }
static void null_norm(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int r, int d,
                      float eps) {
    (void)o; (void)x; (void)w; (void)b; (void)y; (void)r; (void)d; (void)eps;
}
static void null_inplace(const samc_ops *o, float *x, size_t n) { (void)o; (void)x; (void)n; }
static void null_conv2d(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin, int H,
                        int W, int Cout, int kh, int kw, int stride, int pad) {
    (void)o; (void)x; (void)w; (void)b; (void)y; (void)Cin; (void)H; (void)W; (void)Cout; (void)kh; (void)kw;
    (void)stride; (void)pad;
}
static void null_conv_t(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin, int H,
                        int W, int Cout) {
    (void)o; (void)x; (void)w; (void)b; (void)y; (void)Cin; (void)H; (void)W; (void)Cout;
}
static void null_copy(const samc_ops *o, float *dst, const float *src, size_t n) {
    (void)o; (void)dst; (void)src; (void)n;
}
static void null_add(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    (void)o; (void)dst; (void)a; (void)b; (void)n; (void)nb;
}
static void null_add_channel(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    (void)o; (void)dst; (void)a; (void)v; (void)C; (void)HW;
}
static void null_transpose(const samc_ops *o, const float *src, float *dst, int batch, int R, int C) {
    (void)o; (void)src; (void)dst; (void)batch; (void)R; (void)C;
}
static void null_window_partition(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww) {
    (void)o; (void)x; (void)win; (void)H; (void)W; (void)C; (void)wh; (void)ww;
}
static void null_window_unpartition_add(const samc_ops *o, const float *win, const float *sc, float *out, int H, int W,
                                        int C, int wh, int ww, int nwx) {
    (void)o; (void)win; (void)sc; (void)out; (void)H; (void)W; (void)C; (void)wh; (void)ww; (void)nwx;
}
static void null_maxpool(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C, ptrdiff_t ps) {
    (void)o; (void)x; (void)y; (void)n; (void)H; (void)W; (void)C; (void)ps;
}
static void null_upsample_nearest(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    (void)o; (void)dst; (void)src; (void)C; (void)h; (void)w;
}
static void null_upsample_bilinear(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    (void)o; (void)low; (void)out; (void)n; (void)ls; (void)w; (void)h;
}
static void null_preprocess(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out,
                            int S) {
    (void)o; (void)rgb; (void)w; (void)h; (void)t; (void)out; (void)S;
}
static void null_mask_stats(const samc_ops *o, const samc_mask_post_args *a) { (void)o; (void)a; }
static void null_mask_runs(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs) {
    (void)o; (void)a; (void)k0; (void)k1; (void)runs;
}

static void null_attention_biased(const samc_ops *o, const samc_attention_args *a, const samc_attention_bias *b) {
    (void)o; (void)a; (void)b;
}
static void null_rope(const samc_ops *o, float *x, int rows, ptrdiff_t ld, int heads, int hd, const float *c,
                      const float *s, int period) {
    (void)o; (void)x; (void)rows; (void)ld; (void)heads; (void)hd; (void)c; (void)s; (void)period;
}
static void null_group_norm(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C, int HW,
                            int groups, float eps) {
    (void)o; (void)x; (void)w; (void)b; (void)y; (void)C; (void)HW; (void)groups; (void)eps;
}
static void null_roi_align(const samc_ops *o, const float *x, const float *boxes, float *y, int C, int H, int W, int n,
                           int P) {
    (void)o; (void)x; (void)boxes; (void)y; (void)C; (void)H; (void)W; (void)n; (void)P;
}
static void null_grid_sample(const samc_ops *o, const float *x, const float *pts, float *y, int C, int H, int W,
                             int n) {
    (void)o; (void)x; (void)pts; (void)y; (void)C; (void)H; (void)W; (void)n;
}
static void null_box_rpb_bias(const samc_ops *o, const float *by, const float *bx, float *y, int Q, int H, int W,
                              int nh, int r0) {
    (void)o; (void)by; (void)bx; (void)y; (void)Q; (void)H; (void)W; (void)nh; (void)r0;
}

static const samc_ops null_ops = {
    .name = "null",
    .host_memory = 0,
    .alloc = null_alloc,
    .free = null_free,
    .upload = null_move,
    .download = null_move,
    .sync = null_sync,
    .linear = null_linear,
    .linear_act = samc_linear_act_unfused, /* calls the null ops above */
    .matmul = null_linear,
    .attention = null_attention,
    .layer_norm = null_norm,
    .layer_norm2d = null_norm,
    .gelu = null_inplace,
    .conv2d = null_conv2d,
    .conv_transpose2x2 = null_conv_t,
    .copy = null_copy,
    .add = null_add,
    .add_channel = null_add_channel,
    .relu = null_inplace,
    .sigmoid = null_inplace,
    .transpose = null_transpose,
    .window_partition = null_window_partition,
    .window_unpartition_add = null_window_unpartition_add,
    .maxpool2x2 = null_maxpool,
    .upsample_nearest2x_add = null_upsample_nearest,
    .upsample_bilinear = null_upsample_bilinear,
    .attention_biased = null_attention_biased,
    .rope = null_rope,
    .group_norm = null_group_norm,
    .roi_align = null_roi_align,
    .grid_sample = null_grid_sample,
    .box_rpb_bias = null_box_rpb_bias,
    .preprocess = null_preprocess,
    .mask_stats = null_mask_stats,
    .mask_runs = null_mask_runs,
};

const samc_ops *samc_ops_null(void) { return &null_ops; }

/* ---- the sizing backend ------------------------------------------------------------------
 * The null backend plus an allocator that hands out distinct fake addresses and counts
 * the bytes: loading a model on it runs the whole load (weights "uploaded", constants,
 * arena) and tells what a device would hold, without one (`samc info --device cuda`
 * on a machine without a GPU). Its reduced-precision steps count the 16-bit weight copy,
 * the activation scratch and the 16-bit-only weights the CUDA backend allocates
 * (kernels/ops.h). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIZING_MAX_BLOCKS 256

typedef struct {
    uintptr_t next;                       /* next fake address (never dereferenced) */
    void *ptr[SIZING_MAX_BLOCKS];
    size_t size[SIZING_MAX_BLOCKS];
    int n;
    samc_ops_sizing totals;
} sizing_state;

static void *sizing_alloc(const samc_ops *o, size_t bytes) {
    sizing_state *s = o->ctx;
    if (s->n == SIZING_MAX_BLOCKS) return NULL;
    bytes = (bytes + 255) & ~(size_t)255;   /* cudaMalloc's granularity */
    void *p = (void *)s->next;
    s->next += bytes + 256;
    s->ptr[s->n] = p;
    s->size[s->n++] = bytes;
    s->totals.current += bytes;
    if (s->totals.current > s->totals.peak) s->totals.peak = s->totals.current;
    return p;
}

static void sizing_free(const samc_ops *o, void *p) {
    sizing_state *s = o->ctx;
    for (int i = 0; i < s->n; i++)
        if (s->ptr[i] == p) {
            s->totals.current -= s->size[i];
            s->ptr[i] = s->ptr[s->n - 1];
            s->size[i] = s->size[--s->n];
            return;
        }
}

static int sizing_set_precision(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights,
                                char *err) {
    (void)p; (void)weights; (void)err;
    sizing_state *s = o->ctx;
    size_t bytes = n_weights * 2 + SAMC_CUDA_LOWP_SCRATCH_BYTES;
    s->totals.lowp += bytes;
    s->totals.current += bytes;
    if (s->totals.current > s->totals.peak) s->totals.peak = s->totals.current;
    return 0;
}

/* The CUDA backend's weights16_region: one cudaMalloc of n 16-bit values. */
static int sizing_weights16_region(const samc_ops *o, const float *standin, size_t n, char *err) {
    (void)standin; (void)err;
    sizing_state *s = o->ctx;
    size_t bytes = (n * 2 + 255) & ~(size_t)255;   /* cudaMalloc's granularity */
    s->totals.weights16 += bytes;
    s->totals.lowp += bytes;
    s->totals.current += bytes;
    if (s->totals.current > s->totals.peak) s->totals.peak = s->totals.current;
    return 0;
}

static void sizing_weights16_upload(const samc_ops *o, const float *dst, const float *host_src, size_t n) {
    (void)o; (void)dst; (void)host_src; (void)n;
}

samc_ops *samc_ops_sizing_create(const char *name, size_t fixed_bytes) {
    samc_ops *o = malloc(sizeof *o);
    sizing_state *s = calloc(1, sizeof *s);
    if (!o || !s) {
        free(o);
        free(s);
        return NULL;
    }
    *o = null_ops;
    o->name = name;
    o->ctx = s;
    o->alloc = sizing_alloc;
    o->free = sizing_free;
    o->set_precision = sizing_set_precision;
    o->weights16_region = sizing_weights16_region;
    o->weights16_upload = sizing_weights16_upload;
    s->next = (uintptr_t)1 << 40;
    s->totals.fixed = fixed_bytes;
    s->totals.current = s->totals.peak = fixed_bytes;
    return o;
}

void samc_ops_sizing_totals(const samc_ops *o, samc_ops_sizing *out) { *out = ((const sizing_state *)o->ctx)->totals; }

void samc_ops_sizing_destroy(samc_ops *o) {
    if (!o) return;
    free(o->ctx);
    free(o);
}
