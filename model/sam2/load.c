/* model/sam2/load.c: building a SAM2.1 image model (what build_sam2() +
 * SAM2ImagePredictor.__init__ set up for the image path): bind every weight by its
 * state-dict key with a shape check (each module's file binds its own), compute the
 * load-time constants, move the weights to the backend, and plan the scratch arena by
 * running the forward passes once with the null backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

static int bind_all(sam2_model *m, samc_error *err) {
    const sam2_config *c = m->cfg;
    rt_binder b = rt_binder_start(&m->weights, err);
    sam2_hiera_bind(&b, c, &m->trunk);
    sam2_fpn_neck_bind(&b, c, &m->neck);
    sam2_prompt_encoder_bind(&b, c, &m->pe);
    sam2_mask_decoder_bind(&b, c, &m->dec);
    m->no_mem_embed = rt_bind(&b, "no_mem_embed", 3, I64(1), I64(1), I64(c->d_model));
    return b.ok ? 0 : -1;
}

/* Host staging buffers for max_batch prompt items; those that cross to a device backend
 * are page-locked there (rt_host_alloc). */
static int alloc_staging(sam2_model *m, samc_error *err) {
    const samc_ops *o = m->rt.backend;
    int C = m->C, L = m->S / 4, B = m->max_batch, T = SAM2_MAX_TOKENS;
    m->h_input = rt_host_alloc(o, sizeof(float) * 3 * (size_t)m->S * m->S);
    m->h_sparse = rt_host_alloc(o, sizeof(float) * (size_t)B * T * C);
    m->h_maskin = rt_host_alloc(o, sizeof(float) * (size_t)B * L * L);
    m->h_masks = rt_host_alloc(o, sizeof(float) * (size_t)B * 4 * L * L);
    m->h_iou = rt_host_alloc(o, sizeof(float) * (size_t)B * 4);
    m->h_obj = rt_host_alloc(o, sizeof(float) * (size_t)B);
    m->h_coords = malloc(sizeof(float) * (size_t)B * T * 2);
    m->h_labels = malloc(sizeof(int) * (size_t)B * T);
    m->h_sel = calloc((size_t)B * 3 * L * L, sizeof(float));
    if (!m->h_input || !m->h_sparse || !m->h_maskin || !m->h_coords || !m->h_labels || !m->h_masks || !m->h_sel ||
        !m->h_iou || !m->h_obj)
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the host buffers");
    return sam2_transforms_plan(m, err);
}

/* The mask post-processing's staging (records.c); on device backends also the staging of
 * encode batches for device preprocessing (uint8 pixels and resize taps of up to
 * max_encode_batch images of S x S each, or one image of SAM2_STAGE_MIN_BYTES; larger
 * batches are preprocessed on the host) and the decoder's own image (graphs read fixed
 * addresses). */
#define SAM2_STAGE_MIN_BYTES ((size_t)64 << 20)
static int alloc_device_pipeline(sam2_model *m, samc_error *err) {
    const samc_ops *o = m->rt.backend;
    if (sam2_records_alloc(m, err)) return -1;
    if (o->host_memory) return 0;
    if (o->preprocess && o->upload_async) {
        size_t per_image = (size_t)3 * m->S * m->S + (size_t)m->S * (16 + 8 * 7) + 256;
        m->stage_cap = (size_t)m->max_encode_batch * per_image;
        if (m->stage_cap < SAM2_STAGE_MIN_BYTES) m->stage_cap = SAM2_STAGE_MIN_BYTES;
        m->h_stage = rt_host_alloc(o, m->stage_cap);
        m->d_stage = rt_alloc(o, m->stage_cap);
        if (!m->h_stage || !m->d_stage)
            return samc_error_set(err, SAMC_ERR_NOMEM, "out of %s memory for %zu MB of image staging", o->name,
                                  m->stage_cap >> 20);
    }
    return (m->cur = sam2_image_new(m, err)) ? 0 : -1;
}

/* Per-model constants, computed on the host from the host-bound weights and moved to
 * the backend: the Hiera positional embedding, the prompt encoder's dense PE (and its
 * [HW, C] transpose for the decoder keys). */
static int load_constants(sam2_model *m, samc_error *err) {
    const samc_ops *o = m->rt.backend;
    int C = m->C, g = m->S / 16;
    int h0 = (m->S + 2 * m->cfg->patch_padding - m->cfg->patch_kernel) / m->cfg->patch_stride + 1;
    size_t n_pos = (size_t)h0 * h0 * m->cfg->embed_dim, n_pe = (size_t)C * g * g;
    float *pos = malloc(sizeof(float) * n_pos), *pe_t = malloc(sizeof(float) * n_pe);
    m->dense_pe_host = malloc(sizeof(float) * n_pe);
    m->pos_embed_hwc = rt_alloc(o, sizeof(float) * n_pos);
    m->dense_pe = rt_alloc(o, sizeof(float) * n_pe);
    m->dense_pe_hwc = rt_alloc(o, sizeof(float) * n_pe);
    int ok = pos && pe_t && m->dense_pe_host && m->pos_embed_hwc && m->dense_pe && m->dense_pe_hwc;
    if (ok && sam2_hiera_pos_embed(m, pos)) ok = 0;
    if (ok) {
        sam2_prompt_encoder_dense_pe(m, m->dense_pe_host);
        for (int c = 0; c < C; c++)
            for (int p = 0; p < g * g; p++) pe_t[(size_t)p * C + c] = m->dense_pe_host[(size_t)c * g * g + p];
        rt_upload(o, m->pos_embed_hwc, pos, sizeof(float) * n_pos);
        rt_upload(o, m->dense_pe, m->dense_pe_host, sizeof(float) * n_pe);
        rt_upload(o, m->dense_pe_hwc, pe_t, sizeof(float) * n_pe);
    }
    free(pos);
    free(pe_t);
    return ok ? 0 : samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the model constants");
}

/* The input size: the config's, or a safetensors file's __metadata__ image_size. */
static int image_size(const sam2_model *m, int *S, samc_error *err) {
    const char *meta = rt_weights_meta(&m->weights, "image_size");
    *S = m->cfg->image_size;
    if (!meta) return 0;
    char *end;
    long s = strtol(meta, &end, 10);
    if (*end || s < 64 || s > 8192 || s % 64)
        return samc_error_set(err, SAMC_ERR_FORMAT,
                              "%s: __metadata__ image_size \"%s\" is not a multiple of 64 in [64, 8192]",
                              m->weights.path, meta);
    *S = (int)s;
    return 0;
}

/* Weights bound on the host (the constants read them there), then, for a device
 * backend, uploaded once and bound again to their device copies. */
static int load_weights(sam2_model *m, samc_error *err) {
    if (rt_weights_host_views(&m->weights, &m->rt, sam2_config_is_image_path, err)) return -1;
    if (bind_all(m, err)) return -1;
    m->pe_host = m->pe;
    if (load_constants(m, err)) return -1;
    /* a host backend only takes its precision here (cpu_fast's bf16), the weights stay */
    if (rt_weights_upload(&m->weights, &m->rt, sam2_config_is_image_path, err)) return -1;
    return m->rt.backend->host_memory ? 0 : bind_all(m, err);
}

sam2_model *sam2_model_load(rt_weights *w, const sam2_config *cfg, const samc_options *opt, samc_error *err) {
    double t0 = rt_now_ms();
    sam2_model *m = calloc(1, sizeof *m);
    if (!m) {
        rt_weights_close(w);
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->weights = *w;
    memset(w, 0, sizeof *w);
    m->cfg = cfg;
    m->C = cfg->d_model;
    if (rt_backend_open(&m->rt, opt, err) || image_size(m, &m->S, err)) goto fail;
    rt_log(&m->rt, "load: config %s, image size %d", cfg->name, m->S);
    m->max_batch = m->rt.opt.max_batch > 0 ? m->rt.opt.max_batch : 8;
    if (m->max_batch > SAM2_MAX_BATCH_CHUNK) m->max_batch = SAM2_MAX_BATCH_CHUNK;
    m->max_encode_batch = m->rt.opt.max_encode_batch > 0 ? m->rt.opt.max_encode_batch : 1;
    if (m->max_encode_batch > SAMC_MAX_ENCODE_BATCH) m->max_encode_batch = SAMC_MAX_ENCODE_BATCH;
    if (alloc_staging(m, err) || load_weights(m, err) || alloc_device_pipeline(m, err)) goto fail;
    rt_plan_begin(&m->rt);
    int rc = sam2_predictor_plan(m, err) || sam2_records_plan(m, err);
    if (rt_plan_end(&m->rt, err) || rc) goto fail;
    rt_mem_info(&m->rt, &m->mem_after_load, NULL, NULL);
    size_t at_start = 0;
    rt_mem_info(&m->rt, NULL, &at_start, NULL);
    rt_log(&m->rt, "load: %s backend (%s), %lld parameters, scratch %.1f MB, staging %.1f MB, device memory in use "
           "%.1f MB (%.1f MB at the backend's start), done in %.1f ms", m->rt.backend->name,
           samc_precision_name(m->rt.opt.precision), (long long)m->weights.n_params, m->rt.arena.cap / 1048576.0,
           m->stage_cap / 1048576.0, m->mem_after_load / 1048576.0, at_start / 1048576.0, rt_now_ms() - t0);
    return m;
fail:
    sam2_model_free(m);
    return NULL;
}

void sam2_model_free(sam2_model *m) {
    if (!m) return;
    free(m->dense_pe_host);
    free(m->h_coords); free(m->h_labels); free(m->h_sel);
    sam2_transforms_free(m);
    sam2_image_free(m->cur);
    const samc_ops *o = m->rt.backend;
    if (o) {
        void *host[] = { m->h_input, m->h_sparse, m->h_maskin, m->h_masks, m->h_iou, m->h_obj, m->h_stage,
                         m->h_stat, m->h_runs };
        for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) rt_host_free(o, host[i]);
        void *dev[] = { m->pos_embed_hwc, m->dense_pe, m->dense_pe_hwc, m->dev_logits, m->d_stage, m->d_runs };
        for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) rt_free(o, dev[i]);
    }
    rt_weights_close(&m->weights);
    rt_backend_close(&m->rt);
    free(m);
}

sam2_image *sam2_image_new(sam2_model *m, samc_error *err) {
    sam2_image *img = calloc(1, sizeof *img);
    int C = m->C, S = m->S;
    if (!img) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    img->S = S;
    img->C = C;
    img->ops = m->rt.backend;
    img->image_embed = rt_alloc(img->ops, sizeof(float) * (size_t)C * (S / 16) * (S / 16));
    img->feat_s0 = rt_alloc(img->ops, sizeof(float) * (size_t)(C / 8) * (S / 4) * (S / 4));
    img->feat_s1 = rt_alloc(img->ops, sizeof(float) * (size_t)(C / 4) * (S / 8) * (S / 8));
    if (!img->image_embed || !img->feat_s0 || !img->feat_s1) {
        sam2_image_free(img);
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for an encoded image");
        return NULL;
    }
    return img;
}

void sam2_image_free(sam2_image *img) {
    if (!img) return;
    rt_free(img->ops, img->image_embed);
    rt_free(img->ops, img->feat_s0);
    rt_free(img->ops, img->feat_s1);
    free(img);
}
