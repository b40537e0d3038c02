/* model/sam2.c: loading a SAM2.1 model. Detects the config from the tensor names and
 * shapes (loader/synth.h holds the official configs), binds every weight by its
 * state-dict key with a shape check, chooses the backend, and plans the scratch arena by
 * running the forward passes in planning mode. Mirrors what build_sam2() +
 * SAM2ImagePredictor.__init__ set up for the image path. */
#include "model/sam2.h"
#include "loader/pt.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int sam2_fail(samc_error *err, samc_status st, const char *fmt, ...) {
    if (err) {
        err->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

double sam2_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Resident set size in MB from /proc/self/statm (0 where unavailable). */
static double rss_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0.0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * 4096.0 / 1048576.0;
}

void sam2_log(const samc_model *m, const char *fmt, ...) {
    if (!m->opt.log) return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < sizeof line - 40)
        snprintf(line + k, sizeof line - (size_t)k, " [rss %.0f MB]", rss_mb());
    m->opt.log(m->opt.log_ctx, line);
}

static void dump_va(const samc_model *m, const char *name, const float *data, int on_host, int ndim, va_list ap) {
    int64_t shape[8], n = 1;
    for (int i = 0; i < ndim && i < 8; i++) { shape[i] = va_arg(ap, int64_t); n *= shape[i]; }
    if (on_host || m->ops->host_memory) { m->opt.dump(m->opt.dump_ctx, name, data, ndim, shape); return; }
    float *h = malloc(sizeof(float) * (size_t)(n ? n : 1)); /* debug path only */
    if (!h) return;
    sam2_download(m->ops, h, data, sizeof(float) * (size_t)n);
    m->opt.dump(m->opt.dump_ctx, name, h, ndim, shape);
    free(h);
}

void sam2_dump(const samc_model *m, const char *name, const float *data, int ndim, ...) {
    if (!m->opt.dump) return;
    va_list ap;
    va_start(ap, ndim);
    dump_va(m, name, data, 0, ndim, ap);
    va_end(ap);
}

void sam2_dump_host(const samc_model *m, const char *name, const float *data, int ndim, ...) {
    if (!m->opt.dump) return;
    va_list ap;
    va_start(ap, ndim);
    dump_va(m, name, data, 1, ndim, ap);
    va_end(ap);
}

/* ---- backend memory ----------------------------------------------------------------- */

void *sam2_backend_alloc(const samc_ops *o, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    if (o->alloc) return o->alloc(o, bytes ? bytes : 64);
    return aligned_alloc(64, bytes ? bytes : 64);
}
void sam2_backend_free(const samc_ops *o, void *p) {
    if (!p) return;
    if (o->free) o->free(o, p);
    else free(p);
}
void sam2_upload(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    if (o->upload) o->upload(o, dst, src, bytes);
    else memcpy(dst, src, bytes);
}
void sam2_download(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    if (o->download) o->download(o, dst, src, bytes);
    else memcpy(dst, src, bytes);
}

/* ---- scratch arena ---------------------------------------------------------------- */

static char arena_dummy[64] __attribute__((aligned(64)));

float *arena_floats(sam2_arena *a, size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (a->planning) {
        a->used += bytes;
        if (a->used > a->peak) a->peak = a->used;
        return (float *)arena_dummy;
    }
    if (a->used + bytes > a->cap) return NULL;
    float *p = (float *)(a->base + a->used);
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}
size_t arena_mark(const sam2_arena *a) { return a->used; }
void arena_reset(sam2_arena *a, size_t mark) { a->used = mark; }

/* ---- weights ---------------------------------------------------------------------- */

typedef struct {
    const st_tensor *t;     /* all tensors of the file */
    int n;
    const float **f32;      /* float32 view of each tensor */
    const char *path;
} weight_table;

/* Looks up `key` and checks its shape; the shape is given as ndim dims (-1 = any). */
static const float *bind(const weight_table *wt, samc_error *err, int *ok, const char *key, int ndim, ...) {
    if (!*ok) return NULL;
    int64_t want[8];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) want[i] = va_arg(ap, int64_t);
    va_end(ap);
    for (int i = 0; i < wt->n; i++) {
        const st_tensor *t = &wt->t[i];
        if (strcmp(t->name, key) != 0) continue;
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = want[d] < 0 || want[d] == t->shape[d];
        if (!same) {
            char got[128] = "", exp[128] = "";
            for (int d = 0; d < t->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
            for (int d = 0; d < ndim; d++)
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", d ? "," : "", (long long)want[d]);
            *ok = 0;
            sam2_fail(err, SAMC_ERR_MODEL, "%s: tensor %s has shape [%s], expected [%s]", wt->path, key, got, exp);
            return NULL;
        }
        return wt->f32[i];
    }
    *ok = 0;
    sam2_fail(err, SAMC_ERR_MODEL, "%s: missing tensor %s", wt->path, key);
    return NULL;
}

#define I64(x) ((int64_t)(x))

static void bind_linear(const weight_table *wt, samc_error *err, int *ok, sam2_linear *l, const char *prefix,
                        int out, int in) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    l->w = bind(wt, err, ok, k, 2, I64(out), I64(in));
    snprintf(k, sizeof k, "%s.bias", prefix);
    l->b = bind(wt, err, ok, k, 1, I64(out));
}
static void bind_conv(const weight_table *wt, samc_error *err, int *ok, sam2_linear *l, const char *prefix,
                      int d0, int d1, int kh, int kw, int nbias) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    l->w = bind(wt, err, ok, k, 4, I64(d0), I64(d1), I64(kh), I64(kw));
    snprintf(k, sizeof k, "%s.bias", prefix);
    l->b = bind(wt, err, ok, k, 1, I64(nbias));
}
static void bind_norm(const weight_table *wt, samc_error *err, int *ok, sam2_norm *n, const char *prefix, int C) {
    char k[256];
    snprintf(k, sizeof k, "%s.weight", prefix);
    n->w = bind(wt, err, ok, k, 1, I64(C));
    snprintf(k, sizeof k, "%s.bias", prefix);
    n->b = bind(wt, err, ok, k, 1, I64(C));
}
static void bind_mlp(const weight_table *wt, samc_error *err, int *ok, sam2_mlp *m, const char *prefix,
                     int in, int hidden, int out, int n_layers) {
    char k[300];
    m->n_layers = n_layers;
    for (int i = 0; i < n_layers; i++) {
        int a = i == 0 ? in : hidden, b = i == n_layers - 1 ? out : hidden;
        snprintf(k, sizeof k, "%s.layers.%d", prefix, i);
        bind_linear(wt, err, ok, &m->layers[i], k, b, a);
    }
}
static void bind_attention(const weight_table *wt, samc_error *err, int *ok, sam2_attention *a, const char *prefix,
                           int C, int internal, int heads) {
    char k[256];
    a->internal_dim = internal;
    a->heads = heads;
    snprintf(k, sizeof k, "%s.q_proj", prefix); bind_linear(wt, err, ok, &a->q, k, internal, C);
    snprintf(k, sizeof k, "%s.k_proj", prefix); bind_linear(wt, err, ok, &a->k, k, internal, C);
    snprintf(k, sizeof k, "%s.v_proj", prefix); bind_linear(wt, err, ok, &a->v, k, internal, C);
    snprintf(k, sizeof k, "%s.out_proj", prefix); bind_linear(wt, err, ok, &a->out, k, C, internal);
}

/* Binds the image-path weights of config c. Returns 0 or -1 naming the first bad key. */
static int bind_model(samc_model *m, const weight_table *wt, samc_error *err) {
    const synth_config *c = m->cfg;
    int ok = 1, C = c->d_model;
    char k[256];
    sam2_image_encoder *e = &m->enc;

    /* Hiera: block b's dims follow hieradet.Hiera.__init__ (window size lags one block). */
    int C0 = c->embed_dim, w0 = c->window_spec[0];
    bind_conv(wt, err, &ok, &e->patch_embed, "image_encoder.trunk.patch_embed.proj", C0, 3,
              c->patch_kernel, c->patch_kernel, C0);
    e->pos_embed = bind(wt, err, &ok, "image_encoder.trunk.pos_embed", 4, I64(1), I64(C0), I64(c->bkg_h), I64(c->bkg_w));
    e->pos_embed_window = bind(wt, err, &ok, "image_encoder.trunk.pos_embed_window", 4, I64(1), I64(C0), I64(w0), I64(w0));
    e->n_blocks = synth_trunk_depth(c);
    if (e->n_blocks > SAM2_MAX_BLOCKS)
        return sam2_fail(err, SAMC_ERR_MODEL, "%s: %d trunk blocks, more than supported (%d)", wt->path,
                         e->n_blocks, SAM2_MAX_BLOCKS);
    int end = -1;
    for (int s = 0; s < 4; s++) { end += c->stages[s]; e->stage_end[s] = end; }
    int dim = C0, stage = 0;
    for (int b = 0; b < e->n_blocks; b++) {
        hiera_block *bl = &e->blocks[b];
        int window = c->window_spec[stage];              /* before a stage change: the lag */
        int first_of_stage = b > 0 && b - 1 == e->stage_end[stage];
        if (first_of_stage) stage++;
        bl->stage = stage;
        bl->dim = dim;
        bl->dim_out = synth_stage_dim(c, stage);
        bl->heads = synth_stage_heads(c, stage);
        bl->window = synth_block_is_global(c, b) ? 0 : window;
        bl->q_pool = first_of_stage && stage <= c->q_pool;
        char p[128];
        snprintf(p, sizeof p, "image_encoder.trunk.blocks.%d", b);
        snprintf(k, sizeof k, "%s.norm1", p); bind_norm(wt, err, &ok, &bl->norm1, k, bl->dim);
        snprintf(k, sizeof k, "%s.attn.qkv", p); bind_linear(wt, err, &ok, &bl->qkv, k, 3 * bl->dim_out, bl->dim);
        snprintf(k, sizeof k, "%s.attn.proj", p); bind_linear(wt, err, &ok, &bl->attn_proj, k, bl->dim_out, bl->dim_out);
        snprintf(k, sizeof k, "%s.norm2", p); bind_norm(wt, err, &ok, &bl->norm2, k, bl->dim_out);
        snprintf(k, sizeof k, "%s.mlp.layers.0", p);
        bind_linear(wt, err, &ok, &bl->mlp0, k, c->mlp_ratio * bl->dim_out, bl->dim_out);
        snprintf(k, sizeof k, "%s.mlp.layers.1", p);
        bind_linear(wt, err, &ok, &bl->mlp1, k, bl->dim_out, c->mlp_ratio * bl->dim_out);
        if (bl->dim != bl->dim_out) {
            snprintf(k, sizeof k, "%s.proj", p);
            bind_linear(wt, err, &ok, &bl->proj, k, bl->dim_out, bl->dim);
        }
        dim = bl->dim_out;
    }
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "image_encoder.neck.convs.%d.conv", i);
        bind_conv(wt, err, &ok, &e->neck_convs[i], k, C, c->backbone_channel_list[i], 1, 1, C);
    }

    /* PromptEncoder */
    sam2_prompt_encoder *pe = &m->pe;
    pe->pe_gaussian = bind(wt, err, &ok, "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", 2,
                           I64(2), I64(C / 2));
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "sam_prompt_encoder.point_embeddings.%d.weight", i);
        pe->point_embed[i] = bind(wt, err, &ok, k, 2, I64(1), I64(C));
    }
    pe->not_a_point_embed = bind(wt, err, &ok, "sam_prompt_encoder.not_a_point_embed.weight", 2, I64(1), I64(C));
    pe->no_mask_embed = bind(wt, err, &ok, "sam_prompt_encoder.no_mask_embed.weight", 2, I64(1), I64(C));
    int mc = c->mask_in_chans;
    bind_conv(wt, err, &ok, &pe->mask_ds_conv[0], "sam_prompt_encoder.mask_downscaling.0", mc / 4, 1, 2, 2, mc / 4);
    bind_norm(wt, err, &ok, &pe->mask_ds_norm[0], "sam_prompt_encoder.mask_downscaling.1", mc / 4);
    bind_conv(wt, err, &ok, &pe->mask_ds_conv[1], "sam_prompt_encoder.mask_downscaling.3", mc, mc / 4, 2, 2, mc);
    bind_norm(wt, err, &ok, &pe->mask_ds_norm[1], "sam_prompt_encoder.mask_downscaling.4", mc);
    bind_conv(wt, err, &ok, &pe->mask_ds_conv[2], "sam_prompt_encoder.mask_downscaling.6", C, mc, 1, 1, C);

    /* MaskDecoder */
    sam2_mask_decoder *d = &m->dec;
    int H = c->dec_heads, cross = C / c->dec_attn_downsample;
    for (int l = 0; l < c->dec_depth && l < 2; l++) {
        sam2_two_way_block *L = &d->layers[l];
        char p[128];
        snprintf(p, sizeof p, "sam_mask_decoder.transformer.layers.%d", l);
        snprintf(k, sizeof k, "%s.self_attn", p); bind_attention(wt, err, &ok, &L->self_attn, k, C, C, H);
        snprintf(k, sizeof k, "%s.cross_attn_token_to_image", p);
        bind_attention(wt, err, &ok, &L->cross_token_to_image, k, C, cross, H);
        snprintf(k, sizeof k, "%s.cross_attn_image_to_token", p);
        bind_attention(wt, err, &ok, &L->cross_image_to_token, k, C, cross, H);
        snprintf(k, sizeof k, "%s.norm1", p); bind_norm(wt, err, &ok, &L->norm1, k, C);
        snprintf(k, sizeof k, "%s.norm2", p); bind_norm(wt, err, &ok, &L->norm2, k, C);
        snprintf(k, sizeof k, "%s.norm3", p); bind_norm(wt, err, &ok, &L->norm3, k, C);
        snprintf(k, sizeof k, "%s.norm4", p); bind_norm(wt, err, &ok, &L->norm4, k, C);
        snprintf(k, sizeof k, "%s.mlp.layers.0", p); bind_linear(wt, err, &ok, &L->mlp0, k, c->dec_mlp_dim, C);
        snprintf(k, sizeof k, "%s.mlp.layers.1", p); bind_linear(wt, err, &ok, &L->mlp1, k, C, c->dec_mlp_dim);
    }
    bind_attention(wt, err, &ok, &d->final_attn, "sam_mask_decoder.transformer.final_attn_token_to_image", C, cross, H);
    bind_norm(wt, err, &ok, &d->norm_final, "sam_mask_decoder.transformer.norm_final_attn", C);
    d->iou_token = bind(wt, err, &ok, "sam_mask_decoder.iou_token.weight", 2, I64(1), I64(C));
    d->mask_tokens = bind(wt, err, &ok, "sam_mask_decoder.mask_tokens.weight", 2, I64(SAM2_NUM_MASK_TOKENS), I64(C));
    d->obj_score_token = bind(wt, err, &ok, "sam_mask_decoder.obj_score_token.weight", 2, I64(1), I64(C));
    bind_conv(wt, err, &ok, &d->upscale_conv1, "sam_mask_decoder.output_upscaling.0", C, C / 4, 2, 2, C / 4);
    bind_norm(wt, err, &ok, &d->upscale_norm, "sam_mask_decoder.output_upscaling.1", C / 4);
    bind_conv(wt, err, &ok, &d->upscale_conv2, "sam_mask_decoder.output_upscaling.3", C / 4, C / 8, 2, 2, C / 8);
    bind_conv(wt, err, &ok, &d->conv_s0, "sam_mask_decoder.conv_s0", C / 8, C, 1, 1, C / 8);
    bind_conv(wt, err, &ok, &d->conv_s1, "sam_mask_decoder.conv_s1", C / 4, C, 1, 1, C / 4);
    for (int i = 0; i < SAM2_NUM_MASK_TOKENS; i++) {
        snprintf(k, sizeof k, "sam_mask_decoder.output_hypernetworks_mlps.%d", i);
        bind_mlp(wt, err, &ok, &d->hyper[i], k, C, C, C / 8, 3);
    }
    bind_mlp(wt, err, &ok, &d->iou_head, "sam_mask_decoder.iou_prediction_head", C, c->iou_head_hidden,
             SAM2_NUM_MASK_TOKENS, c->iou_head_depth);
    bind_mlp(wt, err, &ok, &d->obj_score_head, "sam_mask_decoder.pred_obj_score_head", C, C, 1, 3);
    d->no_mem_embed = bind(wt, err, &ok, "no_mem_embed", 3, I64(1), I64(1), I64(C));
    return ok ? 0 : -1;
}

/* ---- loading ---------------------------------------------------------------------- */

/* Floats a tensor takes in the device weight block: its size rounded up to 16 (64
 * bytes), so every tensor, and its 16-bit copy at the same offset (32 bytes), starts
 * aligned as cuBLAS's fastest kernels want. The gaps are zeroed. */
static size_t weight_slot(int64_t numel) { return ((size_t)numel + 15) & ~(size_t)15; }
static const float weight_pad_zeros[16];

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static void default_log(void *ctx, const char *line) { (void)ctx; (void)line; }

/* Plans the arena: runs one encode of max_encode_batch images and one predict chunk in
 * planning mode (they only allocate), then allocates the peak once. */
static int plan_arena(samc_model *m, samc_error *err) {
    sam2_arena *a = &m->arena;
    *a = (sam2_arena){ .planning = 1 };
    if (sam2_predictor_plan(m, err)) return -1;
    size_t peak = a->peak;
    *a = (sam2_arena){ .cap = peak };
    a->base = sam2_backend_alloc(m->ops, peak);
    if (!a->base) return sam2_fail(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB of scratch memory", peak >> 20);
    return 0;
}

/* Per-model constants, computed on the host from the host-bound weights and moved to
 * the backend: the Hiera positional embedding, the prompt encoder's dense PE (and its
 * [HW, C] transpose for the decoder keys), and the host staging buffers. */
static int load_constants(samc_model *m, samc_error *err) {
    const samc_ops *o = m->ops;
    int C = m->C, g = m->S / 16, L = m->S / 4, B = m->max_batch, T = SAM2_MAX_TOKENS;
    int h0 = (m->S + 2 * m->cfg->patch_padding - m->cfg->patch_kernel) / m->cfg->patch_stride + 1;
    size_t n_pos = (size_t)h0 * h0 * m->cfg->embed_dim, n_pe = (size_t)C * g * g;
    float *pos = malloc(sizeof(float) * n_pos), *pe_t = malloc(sizeof(float) * n_pe);
    m->dense_pe_host = malloc(sizeof(float) * n_pe);
    m->pos_embed_hwc = sam2_backend_alloc(o, sizeof(float) * n_pos);
    m->dense_pe = sam2_backend_alloc(o, sizeof(float) * n_pe);
    m->dense_pe_hwc = sam2_backend_alloc(o, sizeof(float) * n_pe);
    m->h_input = malloc(sizeof(float) * 3 * (size_t)m->S * m->S);
    m->h_sparse = malloc(sizeof(float) * (size_t)B * T * C);
    m->h_coords = malloc(sizeof(float) * (size_t)B * T * 2);
    m->h_labels = malloc(sizeof(int) * (size_t)B * T);
    m->h_masks = malloc(sizeof(float) * (size_t)B * 4 * L * L);
    m->h_sel = malloc(sizeof(float) * (size_t)B * 3 * L * L);
    m->h_iou = malloc(sizeof(float) * (size_t)B * 4);
    m->h_obj = malloc(sizeof(float) * (size_t)B);
    int ok = pos && pe_t && m->dense_pe_host && m->pos_embed_hwc && m->dense_pe && m->dense_pe_hwc && m->h_input &&
             m->h_sparse && m->h_coords && m->h_labels && m->h_masks && m->h_sel && m->h_iou && m->h_obj;
    if (ok && sam2_hiera_pos_embed(m, pos)) ok = 0;
    if (ok) {
        sam2_prompt_encoder_dense_pe(m, m->dense_pe_host);
        for (int c = 0; c < C; c++)
            for (int p = 0; p < g * g; p++) pe_t[(size_t)p * C + c] = m->dense_pe_host[(size_t)c * g * g + p];
        sam2_upload(o, m->pos_embed_hwc, pos, sizeof(float) * n_pos);
        sam2_upload(o, m->dense_pe, m->dense_pe_host, sizeof(float) * n_pe);
        sam2_upload(o, m->dense_pe_hwc, pe_t, sizeof(float) * n_pe);
    }
    free(pos);
    free(pe_t);
    return ok ? 0 : sam2_fail(err, SAMC_ERR_NOMEM, "out of memory for the model constants");
}

samc_model *samc_model_load(const char *path, const samc_options *opt, samc_error *err) {
    double t0 = sam2_now_ms();
    samc_model *m = calloc(1, sizeof *m);
    pt_checkpoint pt = { 0 };
    char emsg[SAMC_ERRMSG];
    if (!m) { sam2_fail(err, SAMC_ERR_NOMEM, "out of memory"); return NULL; }
    if (opt) m->opt = *opt;
    if (!m->opt.log) m->opt.log = default_log;
    m->max_batch = m->opt.max_batch > 0 ? m->opt.max_batch : 8;
    if (m->max_batch > SAM2_MAX_BATCH_CHUNK) m->max_batch = SAM2_MAX_BATCH_CHUNK;
    m->max_encode_batch = m->opt.max_encode_batch > 0 ? m->opt.max_encode_batch : 1;
    if (m->max_encode_batch > SAMC_MAX_ENCODE_BATCH) m->max_encode_batch = SAMC_MAX_ENCODE_BATCH;
    if (!path || !*path) { sam2_fail(err, SAMC_ERR_ARG, "no model file given"); goto fail; }
    /* Reduced precision exists only on the CUDA backend: say so before reading weights. */
    samc_precision prec = m->opt.precision;
    if (prec != SAMC_PRECISION_FP32 && prec != SAMC_PRECISION_BF16 && prec != SAMC_PRECISION_FP16) {
        sam2_fail(err, SAMC_ERR_ARG, "unknown precision %d (fp32, bf16, fp16)", (int)prec);
        goto fail;
    }
    if (prec != SAMC_PRECISION_FP32 && m->opt.backend != SAMC_BACKEND_CUDA) {
        sam2_fail(err, SAMC_ERR_UNSUPPORTED, "--precision %s needs the CUDA backend; the CPU backends compute in fp32",
                  samc_precision_name(prec));
        goto fail;
    }
    sam2_log(m, "load: opening %s", path);

    /* Tensors come from a mmap'd safetensors file or an in-memory converted .pt. */
    const st_tensor *tensors;
    int n;
    int is_pt = ends_with(path, ".pt") || ends_with(path, ".pth");
    const char *image_size_meta = NULL;
    if (is_pt) {
        if (pt_load(path, &pt, emsg)) { sam2_fail(err, SAMC_ERR_FORMAT, "%s", emsg); goto fail; }
        tensors = pt.tensors;
        n = pt.n_tensors;
    } else {
        if (st_open(path, &m->file, emsg)) {
            sam2_fail(err, strstr(emsg, "No such file") || strstr(emsg, "cannot open") ? SAMC_ERR_IO : SAMC_ERR_FORMAT,
                      "%s", emsg);
            goto fail;
        }
        tensors = m->file.tensors;
        n = m->file.n_tensors;
        image_size_meta = st_meta_get(&m->file, "image_size");
    }
    sam2_log(m, "load: %d tensors read in %.1f ms", n, sam2_now_ms() - t0);

    /* Config detection from names and shapes (memory-side tensors optional). */
    {
        const char **names = malloc(sizeof(char *) * (size_t)(n ? n : 1));
        const int64_t **shapes = malloc(sizeof(int64_t *) * (size_t)(n ? n : 1));
        int *ndims = malloc(sizeof(int) * (size_t)(n ? n : 1));
        int rc = -1;
        if (names && shapes && ndims) {
            for (int i = 0; i < n; i++) { names[i] = tensors[i].name; shapes[i] = tensors[i].shape; ndims[i] = tensors[i].ndim; }
            rc = synth_detect_config(names, shapes, ndims, n, SYNTH_MATCH_IMAGE_ONLY, &m->cfg, emsg);
        } else snprintf(emsg, sizeof emsg, "out of memory");
        free(names); free(shapes); free(ndims);
        if (rc) { sam2_fail(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 model: %s", path, emsg); goto fail; }
    }
    m->S = m->cfg->image_size;
    if (image_size_meta) {
        char *endp;
        long s = strtol(image_size_meta, &endp, 10);
        if (*endp || s < 64 || s > 8192 || s % 64) {
            sam2_fail(err, SAMC_ERR_FORMAT, "%s: __metadata__ image_size \"%s\" is not a multiple of 64 in [64, 8192]",
                      path, image_size_meta);
            goto fail;
        }
        m->S = (int)s;
    }
    m->C = m->cfg->d_model;
    sam2_log(m, "load: config %s, image size %d", m->cfg->name, m->S);

    /* Backend first: a device backend takes the weights once they are bound. */
    samc_backend be = m->opt.backend;
    if (be == SAMC_BACKEND_CUDA) {
        m->cuda_ops = samc_ops_cuda_create(0, emsg);
        if (!m->cuda_ops) { sam2_fail(err, SAMC_ERR_UNSUPPORTED, "the CUDA backend cannot start: %s", emsg); goto fail; }
    }
    if (be == SAMC_BACKEND_AUTO || be == SAMC_BACKEND_CPU_FAST) {
        m->fast_ops = samc_ops_cpu_fast_create(m->opt.n_threads);
        if (!m->fast_ops && be == SAMC_BACKEND_CPU_FAST) {
            sam2_fail(err, SAMC_ERR_UNSUPPORTED, "the fast CPU backend cannot start on this machine");
            goto fail;
        }
        if (m->fast_ops) samc_ops_fill_from_ref(m->fast_ops);
    }
    m->ops = m->cuda_ops ? m->cuda_ops : m->fast_ops ? m->fast_ops : samc_ops_cpu_ref();
    const samc_ops *o = m->ops;

    /* A float32 host view of every tensor: the mapping itself when possible, else one
     * copy; bound by key, then (device backends) uploaded once and bound again. */
    {
        size_t extra = 0, image_path = 0;
        const float **f32 = calloc((size_t)(n ? n : 1), sizeof(float *));
        if (!f32) { sam2_fail(err, SAMC_ERR_NOMEM, "out of memory"); goto fail; }
        for (int i = 0; i < n; i++) {
            const st_tensor *t = &tensors[i];
            m->n_params += t->numel;
            if (!synth_is_image_path(t->name)) continue;
            image_path += weight_slot(t->numel);
            if (!(t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0)) extra += (size_t)t->numel;
        }
        m->n_tensors = n;
        float *buf = extra ? malloc(extra * sizeof(float)) : NULL;
        if (extra && !buf) { free(f32); sam2_fail(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB for weights", extra >> 18); goto fail; }
        m->owned_weights = buf;
        for (int i = 0; i < n; i++) {
            const st_tensor *t = &tensors[i];
            m->weight_bytes += t->nbytes;
            if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) { f32[i] = t->data; continue; }
            if (!synth_is_image_path(t->name)) continue;
            if (st_read_f32(t, buf, emsg)) { free(f32); sam2_fail(err, SAMC_ERR_UNSUPPORTED, "%s: %s", path, emsg); goto fail; }
            f32[i] = buf;
            buf += t->numel;
        }
        weight_table wt = { tensors, n, f32, path };
        int rc = bind_model(m, &wt, err);
        m->pe_host = m->pe;
        if (rc == 0 && !o->host_memory) {
            float *dev = sam2_backend_alloc(o, image_path * sizeof(float));
            m->dev_weights = dev;
            if (!dev) rc = sam2_fail(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB of %s memory for the weights",
                                     image_path >> 18, o->name);
            for (int i = 0; rc == 0 && i < n; i++) {
                if (!synth_is_image_path(tensors[i].name)) { f32[i] = NULL; continue; }
                size_t len = (size_t)tensors[i].numel, pad = weight_slot(tensors[i].numel) - len;
                sam2_upload(o, dev, f32[i], sizeof(float) * len);
                if (pad) sam2_upload(o, dev + len, weight_pad_zeros, sizeof(float) * pad);
                f32[i] = dev;
                dev += len + pad;
            }
            /* bf16 / fp16: the backend makes its 16-bit copy of the uploaded block once;
             * its GEMMs then read that copy for every weight inside the block. */
            if (rc == 0 && prec != SAMC_PRECISION_FP32) {
                if (!o->set_precision)
                    rc = sam2_fail(err, SAMC_ERR_UNSUPPORTED, "--precision %s: the %s backend computes in fp32 only",
                                   samc_precision_name(prec), o->name);
                else if (o->set_precision(o, (samc_ops_precision)prec, m->dev_weights, image_path, emsg))
                    rc = sam2_fail(err, strstr(emsg, "cannot allocate") ? SAMC_ERR_NOMEM : SAMC_ERR_UNSUPPORTED,
                                   "--precision %s: %s", samc_precision_name(prec), emsg);
            }
            /* host-side consumers (pos embed, dense PE) need the host weights: compute them first */
            if (rc == 0) rc = load_constants(m, err);
            if (rc == 0) rc = bind_model(m, &wt, err);
        } else if (rc == 0) {
            rc = load_constants(m, err);
        }
        free(f32);
        if (rc) goto fail;
    }
    /* The .pt tensors stay alive in pt (contiguous ones point into its mapping). */
    if (is_pt) {
        pt_checkpoint *keep = malloc(sizeof *keep);
        if (!keep) { sam2_fail(err, SAMC_ERR_NOMEM, "out of memory"); goto fail; }
        *keep = pt;
        memset(&pt, 0, sizeof pt);
        m->pt = keep;
    }

    if (plan_arena(m, err)) goto fail;
    sam2_log(m, "load: %s backend (%s), %lld parameters, scratch %.1f MB, done in %.1f ms", m->ops->name,
             samc_precision_name(prec), (long long)m->n_params, m->arena.cap / 1048576.0, sam2_now_ms() - t0);
    return m;
fail:
    pt_free(&pt);
    samc_model_free(m);
    return NULL;
}

void samc_model_free(samc_model *m) {
    if (!m) return;
    if (m->pt) { pt_free(m->pt); free(m->pt); }
    st_close(&m->file);
    free(m->owned_weights);
    free(m->dense_pe_host);
    free(m->h_input); free(m->h_sparse); free(m->h_coords); free(m->h_labels);
    free(m->h_masks); free(m->h_sel); free(m->h_iou); free(m->h_obj);
    if (m->ops) {
        sam2_backend_free(m->ops, m->pos_embed_hwc);
        sam2_backend_free(m->ops, m->dense_pe);
        sam2_backend_free(m->ops, m->dense_pe_hwc);
        sam2_backend_free(m->ops, m->dev_weights);
        sam2_backend_free(m->ops, m->dev_logits);
        sam2_backend_free(m->ops, m->arena.base);
    }
    if (m->fast_ops) samc_ops_cpu_fast_destroy(m->fast_ops);
    if (m->cuda_ops) samc_ops_cuda_destroy(m->cuda_ops);
    free(m);
}

void samc_model_get_info(const samc_model *m, samc_model_info *info) {
    memset(info, 0, sizeof *info);
    snprintf(info->config, sizeof info->config, "%s", m->cfg->name);
    info->image_size = m->S;
    info->embed_dim = m->cfg->embed_dim;
    info->d_model = m->C;
    info->n_params = m->n_params;
    info->n_tensors = m->n_tensors;
    info->backend = m->ops->name;
    info->n_threads = !m->fast_ops ? 1 : m->opt.n_threads > 0 ? m->opt.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    info->scratch_bytes = m->arena.cap;
    info->weight_bytes = m->weight_bytes;
    info->precision = samc_precision_name(m->opt.precision);
}

const char *samc_precision_name(samc_precision p) {
    switch (p) {
    case SAMC_PRECISION_FP32: return "fp32";
    case SAMC_PRECISION_BF16: return "bf16";
    case SAMC_PRECISION_FP16: return "fp16";
    default: return "?";
    }
}

int samc_cuda_device(char *buf, size_t n) { return samc_cuda_device_info(buf, n); }

void samc_model_get_timings(const samc_model *m, samc_timings *t) { *t = m->timings; }

samc_image *samc_image_new(samc_model *m, samc_error *err) {
    samc_image *img = calloc(1, sizeof *img);
    int C = m->C, S = m->S;
    if (!img) { sam2_fail(err, SAMC_ERR_NOMEM, "out of memory"); return NULL; }
    img->S = S;
    img->C = C;
    img->ops = m->ops;
    img->image_embed = sam2_backend_alloc(m->ops, sizeof(float) * (size_t)C * (S / 16) * (S / 16));
    img->feat_s0 = sam2_backend_alloc(m->ops, sizeof(float) * (size_t)(C / 8) * (S / 4) * (S / 4));
    img->feat_s1 = sam2_backend_alloc(m->ops, sizeof(float) * (size_t)(C / 4) * (S / 8) * (S / 8));
    if (!img->image_embed || !img->feat_s0 || !img->feat_s1) {
        samc_image_free(img);
        sam2_fail(err, SAMC_ERR_NOMEM, "out of memory for an encoded image");
        return NULL;
    }
    return img;
}

void samc_image_free(samc_image *img) {
    if (!img) return;
    sam2_backend_free(img->ops, img->image_embed);
    sam2_backend_free(img->ops, img->feat_s0);
    sam2_backend_free(img->ops, img->feat_s1);
    free(img);
}

int samc_image_width(const samc_image *img) { return img->w; }
int samc_image_height(const samc_image *img) { return img->h; }

const char *samc_status_name(samc_status s) {
    switch (s) {
    case SAMC_OK: return "ok";
    case SAMC_ERR_IO: return "i/o error";
    case SAMC_ERR_FORMAT: return "bad file format";
    case SAMC_ERR_MODEL: return "not a SAM2.1 model";
    case SAMC_ERR_ARG: return "bad argument";
    case SAMC_ERR_NOMEM: return "out of memory";
    case SAMC_ERR_UNSUPPORTED: return "unsupported";
    default: return "internal error";
    }
}

const char *samc_build_features(void) {
    static char buf[128];
#ifdef SAMC_HAVE_CUDA
    const char *cuda = "compiled";
#else
    const char *cuda = "not compiled";
#endif
    snprintf(buf, sizeof buf, "cpu_fast=%s cuda=%s", samc_ops_cpu_fast_isa(), cuda);
    return buf;
}

int samc_synth_write(const char *config, const char *path, samc_error *err) {
    char emsg[SAMC_ERRMSG];
    if (synth_write(config, path, emsg)) return sam2_fail(err, SAMC_ERR_IO, "%s", emsg);
    return 0;
}
