/* model/runtime/weights.c: weight files and binding weights by state-dict key
 * (runtime.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/runtime/runtime.h"

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int rt_weights_open(rt_weights *w, const char *path, samc_error *err) {
    char emsg[SAMC_ERRMSG];
    memset(w, 0, sizeof *w);
    if (!path || !*path) return samc_error_set(err, SAMC_ERR_ARG, "no model file given");
    snprintf(w->path, sizeof w->path, "%s", path);
    if (ends_with(path, ".pt") || ends_with(path, ".pth")) {
        w->pt = calloc(1, sizeof *w->pt);
        if (!w->pt) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        if (pt_load(path, w->pt, emsg)) {
            free(w->pt);
            w->pt = NULL;
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s", emsg);
        }
        w->tensors = w->pt->tensors;
        w->n = w->pt->n_tensors;
    } else {
        if (st_open(path, &w->file, emsg))
            return samc_error_set(err, strstr(emsg, "No such file") || strstr(emsg, "cannot open") ? SAMC_ERR_IO
                                                                                                     : SAMC_ERR_FORMAT,
                                  "%s", emsg);
        w->tensors = w->file.tensors;
        w->n = w->file.n_tensors;
    }
    for (int i = 0; i < w->n; i++) {
        w->n_params += w->tensors[i].numel;
        w->file_bytes += w->tensors[i].nbytes;
    }
    w->f32 = calloc((size_t)(w->n ? w->n : 1), sizeof *w->f32);
    w->w16 = calloc((size_t)(w->n ? w->n : 1), sizeof *w->w16);
    w->copies = calloc((size_t)(w->n ? w->n : 1), sizeof *w->copies);
    w->bound = calloc((size_t)(w->n ? w->n : 1), sizeof *w->bound);
    if (!w->f32 || !w->w16 || !w->copies || !w->bound) {
        rt_weights_close(w);
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
    }
    return 0;
}

void rt_weights_close(rt_weights *w) {
    if (w->pt) {
        pt_free(w->pt);
        free(w->pt);
    }
    st_close(&w->file);
    samc_w16_release(w->standin, w->standin_floats);
    samc_w16_release(w->dev16, w->dev16_floats);
    free(w->bound);
    for (int i = 0; w->copies && i < w->n; i++) free(w->copies[i]);
    free(w->copies);
    free(w->w16);
    free(w->f32);
    free(w->owned);
    if (w->device_ops) rt_free(w->device_ops, w->device);
    memset(w, 0, sizeof *w);
}

const char *rt_weights_meta(const rt_weights *w, const char *key) {
    return w->pt ? NULL : st_meta_get(&w->file, key);
}

int rt_weights_names(const rt_weights *w, const char ***names, const int64_t ***shapes, int **ndims,
                     samc_error *err) {
    size_t n = (size_t)(w->n ? w->n : 1);
    *names = malloc(sizeof **names * n);
    *shapes = malloc(sizeof **shapes * n);
    *ndims = malloc(sizeof **ndims * n);
    if (!*names || !*shapes || !*ndims) {
        free(*names); free(*shapes); free(*ndims);
        *names = NULL; *shapes = NULL; *ndims = NULL;
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < w->n; i++) {
        (*names)[i] = w->tensors[i].name;
        (*shapes)[i] = w->tensors[i].shape;
        (*ndims)[i] = w->tensors[i].ndim;
    }
    return 0;
}

static int is_direct(const st_tensor *t) { return t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0; }

/* A tensor kept in 16 bits behind a stand-in: F16 / BF16, 2-byte aligned, a matrix or
 * larger (norm weights and biases are read by other ops). */
static int keeps_16bit(const st_tensor *t) {
    return (t->dtype == ST_F16 || t->dtype == ST_BF16) && ((uintptr_t)t->data & 1) == 0 && t->ndim >= 2;
}

/* Stand-ins for every 16-bit matrix among the used tensors, in one reserved range. */
static int make_standins(rt_weights *w, int (*used)(const char *name), samc_error *err) {
    size_t total = 0;
    for (int i = 0; i < w->n; i++)
        if (used(w->tensors[i].name) && keeps_16bit(&w->tensors[i])) total += (size_t)w->tensors[i].numel;
    if (!total) return 0;
    w->standin = samc_w16_reserve(total);
    if (!w->standin) return samc_error_set(err, SAMC_ERR_NOMEM, "cannot reserve address space for 16-bit weights");
    w->standin_floats = total;
    float *next = w->standin;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->tensors[i];
        if (!used(t->name) || !keeps_16bit(t)) continue;
        samc_w16_dtype dt = t->dtype == ST_BF16 ? SAMC_W16_BF16 : SAMC_W16_F16;
        if (samc_w16_register(next, (size_t)t->numel, t->data, dt))
            return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory registering 16-bit weights");
        w->w16[i] = next;
        next += t->numel;
    }
    return 0;
}

int rt_weights_host_views(rt_weights *w, const samc_runtime *rt, int (*used)(const char *name), samc_error *err) {
    char emsg[SAMC_ERRMSG];
    int allow16 = rt->backend->host_memory && rt->backend->weights16;
    if (allow16 && make_standins(w, used, err)) return -1;
    size_t extra = 0;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->tensors[i];
        if (used(t->name) && !is_direct(t) && !w->w16[i]) extra += (size_t)t->numel;
    }
    /* A memory plan (plan_only) uploads nothing and runs nothing, so converted copies are
     * not made: every tensor that would need one reads one zero-filled buffer of the
     * largest such tensor (untouched pages of calloc cost no memory). A 16-bit file's plan
     * then takes a second and megabytes, not the whole model widened to fp32. */
    int plan = rt->opt.plan_only;
    size_t largest = 0;
    for (int i = 0; plan && i < w->n; i++)
        if (used(w->tensors[i].name) && !is_direct(&w->tensors[i]) && !w->w16[i] &&
            (size_t)w->tensors[i].numel > largest)
            largest = (size_t)w->tensors[i].numel;
    float *buf = NULL;
    if (extra) {
        buf = plan ? calloc(largest, sizeof(float)) : malloc(extra * sizeof(float));
        if (!buf) return samc_error_set(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB for weights", extra >> 18);
    }
    free(w->owned);
    w->owned = buf;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->tensors[i];
        w->f32[i] = NULL;
        if (!used(t->name) || w->w16[i]) continue;
        if (is_direct(t)) {
            w->f32[i] = t->data;
            continue;
        }
        if (plan) {
            w->f32[i] = buf;
            continue;
        }
        if (st_read_f32(t, buf, emsg)) return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: %s", w->path, emsg);
        w->f32[i] = buf;
        buf += t->numel;
    }
    return 0;
}

/* Floats a tensor takes in the device weight block: its size rounded up to 16 (64
 * bytes), so every tensor, and its 16-bit copy at the same offset (32 bytes), starts
 * aligned as cuBLAS's fastest kernels want. The gaps are zeroed. */
static size_t weight_slot(int64_t numel) { return ((size_t)numel + 15) & ~(size_t)15; }
static const float weight_pad_zeros[16];

/* bf16 / fp16: tensor i goes to the backend's 16-bit-only region (a weight that only
 * linear reads), else to the fp32 block. */
static int in_region16(const rt_weights *w, int i, int split) { return split && w->bound[i] == RT_BOUND_LINEAR; }

/* The 16-bit-only region: stand-ins reserved on the host (never mapped, so no read of one
 * goes unnoticed), the backend's 16-bit values behind them, the tensors uploaded there
 * (rounded on the device) and their views pointed at their stand-ins. */
static int upload_region16(rt_weights *w, const samc_ops *o, int (*used)(const char *name), size_t n16,
                           samc_error *err) {
    char emsg[512];
    w->dev16 = samc_w16_reserve(n16);
    if (!w->dev16)
        return samc_error_set(err, SAMC_ERR_NOMEM, "cannot reserve address space for %zu MB of 16-bit weights",
                              n16 >> 19);
    w->dev16_floats = n16;
    if (o->weights16_region(o, w->dev16, n16, emsg))
        return samc_error_set(err, strstr(emsg, "cannot allocate") ? SAMC_ERR_NOMEM : SAMC_ERR_UNSUPPORTED,
                              "16-bit weights on %s: %s", o->name, emsg);
    float *next = w->dev16;
    for (int i = 0; i < w->n; i++) {
        if (!used(w->tensors[i].name) || !in_region16(w, i, 1)) continue;
        size_t len = (size_t)w->tensors[i].numel, pad = weight_slot(w->tensors[i].numel) - len;
        o->weights16_upload(o, next, w->f32[i], len);
        if (pad) o->weights16_upload(o, next + len, weight_pad_zeros, pad);
        w->f32[i] = next;
        next += len + pad;
    }
    return 0;
}

int rt_weights_upload(rt_weights *w, const samc_runtime *rt, int (*used)(const char *name), samc_error *err) {
    const samc_ops *o = rt->backend;
    char emsg[512];
    samc_precision prec = rt->opt.precision;
    if (prec != SAMC_PRECISION_FP32 && !o->set_precision)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "--precision %s: the %s backend computes in fp32 only",
                              samc_precision_name(prec), o->name);
    /* The CPU (cpu_fast's bf16) reads the weights where they are and rounds them as it
     * packs them (kernels/cpu_fast_amx.c): set_precision gets no block, and its memory,
     * planned or not, is fp32's. */
    if (prec != SAMC_PRECISION_FP32 && rt->opt.backend != SAMC_BACKEND_CUDA) {
        if (o->host_memory && o->set_precision(o, (samc_ops_precision)prec, NULL, 0, emsg))
            return samc_error_set(err, strstr(emsg, "cannot allocate") ? SAMC_ERR_NOMEM : SAMC_ERR_UNSUPPORTED,
                                  "--precision %s: %s", samc_precision_name(prec), emsg);
        prec = SAMC_PRECISION_FP32;
    }
    if (o->host_memory) return 0;
    int split = prec != SAMC_PRECISION_FP32 && o->weights16_region && o->weights16_upload;
    size_t total = 0, n16 = 0;
    for (int i = 0; i < w->n; i++) {
        if (!used(w->tensors[i].name)) continue;
        if (in_region16(w, i, split)) n16 += weight_slot(w->tensors[i].numel);
        else total += weight_slot(w->tensors[i].numel);
    }
    float *dev = rt_alloc(o, total * sizeof(float));
    if (!dev)
        return samc_error_set(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB of %s memory for the weights", total >> 18,
                              o->name);
    w->device = dev;
    w->device_floats = total;
    w->device_ops = o;
    for (int i = 0; i < w->n; i++) {
        if (!used(w->tensors[i].name) || in_region16(w, i, split)) continue;
        size_t len = (size_t)w->tensors[i].numel, pad = weight_slot(w->tensors[i].numel) - len;
        rt_upload(o, dev, w->f32[i], sizeof(float) * len);
        if (pad) rt_upload(o, dev + len, weight_pad_zeros, sizeof(float) * pad);
        w->f32[i] = dev;
        dev += len + pad;
    }
    /* bf16 / fp16: the backend makes its 16-bit copy of the uploaded block once (its
     * GEMMs read that copy for the weights inside the block: 1x1 convolutions as matmul),
     * then takes the linear weights in 16 bits only. */
    if (prec == SAMC_PRECISION_FP32) return 0;
    if (o->set_precision(o, (samc_ops_precision)prec, w->device, total, emsg))
        return samc_error_set(err, strstr(emsg, "cannot allocate") ? SAMC_ERR_NOMEM : SAMC_ERR_UNSUPPORTED,
                              "--precision %s: %s", samc_precision_name(prec), emsg);
    if (!n16) return 0;
    /* the uploads report a failure at the next sync: here, naming the step */
    return upload_region16(w, o, used, n16, err) || rt_sync(rt, "uploading the 16-bit weights", err) ? -1 : 0;
}

/* ---- binding ------------------------------------------------------------------------ */

rt_binder rt_binder_start(rt_weights *w, samc_error *err) { return (rt_binder){ .w = w, .err = err, .ok = 1 }; }

static void fmt_dims(char *buf, size_t size, int ndim, const int64_t *d) {
    buf[0] = 0;
    for (int i = 0; i < ndim; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%lld", i ? "," : "", (long long)d[i]);
}

/* A float32 view of a 16-bit tensor bound with rt_bind: converted once, when bound. */
static const float *f32_copy(rt_binder *b, int i) {
    rt_weights *w = b->w;
    char emsg[SAMC_ERRMSG];
    if (w->f32[i]) return w->f32[i];
    const st_tensor *t = &w->tensors[i];
    w->copies[i] = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!w->copies[i] || st_read_f32(t, w->copies[i], emsg)) {
        b->ok = 0;
        samc_error_set(b->err, w->copies[i] ? SAMC_ERR_UNSUPPORTED : SAMC_ERR_NOMEM, "%s: %s", w->path,
                       w->copies[i] ? emsg : "out of memory");
        return NULL;
    }
    w->f32[i] = w->copies[i];
    return w->f32[i];
}

/* kind: RT_BOUND_* (recorded for rt_weights_upload); linear and conv weights may be
 * 16-bit stand-ins on the host (cpu_fast's weights16). */
static const float *bind_va(rt_binder *b, const char *key, int kind, int ndim, va_list ap) {
    if (!b->ok) return NULL;
    int64_t want[SAMC_MAX_DIMS];
    for (int i = 0; i < ndim && i < SAMC_MAX_DIMS; i++) want[i] = va_arg(ap, int64_t);
    rt_weights *w = b->w;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->tensors[i];
        if (strcmp(t->name, key) != 0) continue;
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = want[d] < 0 || want[d] == t->shape[d];
        if (!same) {
            char got[128], exp[128];
            fmt_dims(got, sizeof got, t->ndim, t->shape);
            fmt_dims(exp, sizeof exp, ndim, want);
            b->ok = 0;
            samc_error_set(b->err, SAMC_ERR_MODEL, "%s: tensor %s has shape [%s], expected [%s]", w->path, key, got,
                           exp);
            return NULL;
        }
        w->bound[i] |= (uint8_t)kind;
        if (w->w16[i]) return kind != RT_BOUND_PLAIN ? w->w16[i] : f32_copy(b, i);
        if (!w->f32[i]) {
            b->ok = 0;
            samc_error_set(b->err, SAMC_ERR_INTERNAL, "%s: tensor %s was not prepared for binding", w->path, key);
            return NULL;
        }
        return w->f32[i];
    }
    b->ok = 0;
    samc_error_set(b->err, SAMC_ERR_MODEL, "%s: missing tensor %s", w->path, key);
    return NULL;
}

const float *rt_bind(rt_binder *b, const char *key, int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    const float *p = bind_va(b, key, RT_BOUND_PLAIN, ndim, ap);
    va_end(ap);
    return p;
}

const float *rt_bind_matrix(rt_binder *b, const char *key, int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    const float *p = bind_va(b, key, RT_BOUND_LINEAR, ndim, ap);
    va_end(ap);
    return p;
}

#define I64(x) ((int64_t)(x))

void rt_bind_linear(rt_binder *b, rt_linear *l, const char *prefix, int out, int in, int bias) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    l->w = rt_bind_matrix(b, k, 2, I64(out), I64(in));
    l->b = NULL;
    if (!bias) return;
    snprintf(k, sizeof k, "%s.bias", prefix);
    l->b = rt_bind(b, k, 1, I64(out));
}

static const float *bind_kind(rt_binder *b, const char *key, int kind, int ndim, ...) {
    va_list ap;
    va_start(ap, ndim);
    const float *p = bind_va(b, key, kind, ndim, ap);
    va_end(ap);
    return p;
}

void rt_bind_conv(rt_binder *b, rt_linear *l, const char *prefix, int d0, int d1, int kh, int kw, int nbias) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    l->w = bind_kind(b, k, RT_BOUND_CONV, 4, I64(d0), I64(d1), I64(kh), I64(kw));
    l->b = NULL;
    if (nbias <= 0) return;
    snprintf(k, sizeof k, "%s.bias", prefix);
    l->b = rt_bind(b, k, 1, I64(nbias));
}

void rt_bind_norm(rt_binder *b, rt_norm *n, const char *prefix, int C) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    n->w = rt_bind(b, k, 1, I64(C));
    snprintf(k, sizeof k, "%s.bias", prefix);
    n->b = rt_bind(b, k, 1, I64(C));
}

void rt_bind_mlp(rt_binder *b, rt_mlp *m, const char *prefix, int in, int hidden, int out, int n_layers) {
    char k[300];
    m->n_layers = n_layers;
    if (n_layers > RT_MLP_MAX_LAYERS && b->ok) {
        b->ok = 0;
        samc_error_set(b->err, SAMC_ERR_INTERNAL, "%s: MLP of %d layers (at most %d)", prefix, n_layers,
                       RT_MLP_MAX_LAYERS);
        return;
    }
    for (int i = 0; i < n_layers; i++) {
        int a = i == 0 ? in : hidden, c = i == n_layers - 1 ? out : hidden;
        snprintf(k, sizeof k, "%s.layers.%d", prefix, i);
        rt_bind_linear(b, &m->layers[i], k, c, a, 1);
    }
}
