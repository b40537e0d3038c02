/* model/sam3/load.c: building a SAM3 image model (what model_builder.py's
 * build_sam3_image_model + Sam3Processor set up for the image path): bind every weight
 * by its state-dict key with a shape check (each module's file binds its own), compute
 * the load-time constants (the ViT's RoPE tables from their formula, the tiled pos embed,
 * the 1x level's sine PE, the text causal mask, the initial reference boxes), move the
 * weights to the backend, and plan the scratch arena by running set_image and the
 * longest grounding once with the null backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam3/sam3.h"

static int bind_all(sam3_model *m, samc_error *err) {
    const sam3_config *c = m->cfg;
    rt_binder b = rt_binder_start(&m->weights, err);
    sam3_vit_bind(&b, c, &m->vit);
    sam3_neck_bind(&b, c, &m->neck);
    sam3_text_bind(&b, c, &m->text);
    sam3_geometry_bind(&b, c, &m->geo);
    sam3_fusion_encoder_bind(&b, c, m->enc);
    sam3_decoder_bind(&b, c, &m->dec);
    sam3_seg_head_bind(&b, c, &m->seg);
    sam3_scoring_bind(&b, c, &m->score);
    return b.ok ? 0 : -1;
}

static int alloc_host(sam3_model *m, samc_error *err) {
    size_t plane = (size_t)3 * m->S * m->S, L = (size_t)m->dec.layers;
    m->h_resized = malloc(plane);
    m->h_input = malloc(sizeof(float) * plane);
    m->h_dec = calloc(sam3_decoder_host_floats(m), sizeof(float));
    m->h_small = calloc((size_t)SAM3_MAX_PROMPT * (m->D + 16) * 2, sizeof(float));
    m->h_logits = calloc(L * m->Q, sizeof(float));
    m->h_refs = calloc(L * m->Q * 4, sizeof(float));
    m->h_ref_init = malloc(sizeof(float) * 4 * (size_t)m->Q);
    if (!m->h_resized || !m->h_input || !m->h_dec || !m->h_small || !m->h_logits || !m->h_refs || !m->h_ref_init)
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the host buffers");
    return sam3_transforms_plan(m, err);
}

/* Computes the constants on the host (from the host-bound weights) and puts them in
 * backend memory. */
static int load_constants(sam3_model *m, const float *pos_embed, const float *ref_points, samc_error *err) {
    const samc_ops *o = m->rt.backend;
    int hd = m->C / m->cfg->vit_heads, w2 = m->cfg->window * m->cfg->window, g2 = m->g * m->g, ctx = SAM3_CTX;
    size_t n_win = (size_t)w2 * hd / 2, n_glob = (size_t)g2 * hd / 2, n_pos = (size_t)g2 * m->C;
    size_t n_pe = (size_t)g2 * m->D, total = 2 * n_win + 2 * n_glob + n_pos + n_pe + (size_t)ctx * ctx + m->D;
    float *h = malloc(sizeof(float) * total);
    float *dev[7];
    size_t sizes[7] = { n_win, n_win, n_glob, n_glob, n_pos, n_pe, (size_t)ctx * ctx };
    int ok = h != NULL;
    for (int i = 0; i < 7; i++) ok &= (dev[i] = rt_alloc(o, sizeof(float) * sizes[i])) != NULL;
    m->rope_win_cos = dev[0]; m->rope_win_sin = dev[1]; m->rope_glob_cos = dev[2]; m->rope_glob_sin = dev[3];
    m->pos_tiled = dev[4]; m->pe_tok = dev[5]; m->causal = dev[6];
    ok &= (m->zeros = rt_alloc(o, sizeof(float) * m->D)) != NULL;
    ok &= (m->text_cache = rt_alloc(o, sizeof(float) * SAM3_TEXT_CACHE * (size_t)ctx * m->D)) != NULL;
    if (!ok) {
        free(h);
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the model constants");
    }
    float *p = h;
    /* RoPE: windowed blocks rotate by window positions (scale 1); global blocks by grid
     * positions scaled to the pretraining grid (use_interp_rope: window / grid). */
    sam3_vit_rope_table(hd, m->cfg->window, 1.0f, p, p + n_win);
    sam3_vit_rope_table(hd, m->g, (float)((double)m->cfg->window / m->g), p + 2 * n_win, p + 2 * n_win + n_glob);
    sam3_vit_pos_tiled(m, pos_embed, p + 2 * n_win + 2 * n_glob);
    sam3_position_embedding_sine(m->D, m->g, m->g, 1, p + 2 * n_win + 2 * n_glob + n_pos);
    float *causal = p + 2 * n_win + 2 * n_glob + n_pos + n_pe;
    for (int i = 0; i < ctx; i++)
        for (int j = 0; j < ctx; j++) causal[i * ctx + j] = j > i ? -INFINITY : 0.0f;
    float *zeros = causal + (size_t)ctx * ctx;
    memset(zeros, 0, sizeof(float) * m->D);
    for (int i = 0; i < 7; i++) {
        rt_upload(o, dev[i], p, sizeof(float) * sizes[i]);
        p += sizes[i];
    }
    rt_upload(o, m->zeros, zeros, sizeof(float) * m->D);
    for (int i = 0; i < 4 * m->Q; i++) m->h_ref_init[i] = 1.0f / (1.0f + expf(-ref_points[i]));
    free(h);
    return 0;
}

static int used(const char *name) { return sam3_config_is_stored(name); }

/* The tokenizer of the text prompts: the merges in the file's metadata (the key
 * tokenizer.bpe_merges), else the vocabulary file of samc_options.vocab_path, else none
 * (token ids only). */
static int load_tokenizer(sam3_model *m, samc_error *err) {
    const char *merges = rt_weights_meta(&m->weights, SAM3_MERGES_META_KEY);
    if (merges) m->tokenizer = sam3_tokenizer_load_merges(merges, strlen(merges), err);
    else if (m->rt.opt.vocab_path) m->tokenizer = sam3_tokenizer_load_gz(m->rt.opt.vocab_path, err);
    else return 0;
    return m->tokenizer ? 0 : -1;
}

int sam3_text_ids(sam3_model *m, const char *text, int32_t *ids, samc_error *err) {
    if (!m->tokenizer)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                              "samc_find: text \"%.60s\" needs a vocabulary: %s has no %s metadata and "
                              "samc_options.vocab_path is not set (or pass token_ids)",
                              text, m->weights.path, SAM3_MERGES_META_KEY);
    return sam3_tokenize(m->tokenizer, text, strlen(text), SAM3_CTX, ids, NULL, NULL, err);
}

/* Weights bound on the host (the constants read pos_embed and reference_points there),
 * then, for a device backend, uploaded once and bound again to their device copies. */
static int load_weights(sam3_model *m, samc_error *err) {
    if (rt_weights_host_views(&m->weights, &m->rt, used, err)) return -1;
    if (bind_all(m, err)) return -1;
    rt_binder b = rt_binder_start(&m->weights, err);
    const float *ref = rt_bind(&b, "transformer.decoder.reference_points.weight", 2, (int64_t)m->Q, (int64_t)4);
    if (!b.ok || load_constants(m, m->vit.pos_embed, ref, err)) return -1;
    /* a host backend only takes its precision here (cpu_fast's bf16), the weights stay */
    if (rt_weights_upload(&m->weights, &m->rt, used, err)) return -1;
    /* reduced precision (bf16 / fp16 on CUDA, bf16 on the CPU): SAM3 keeps fp32
     * activations but in its ViT, neck and fusion encoder (vitdet.c, necks.c, encoder.c
     * switch there); its own ops but rope and attention_biased (group_norm, roi_align,
     * ...) compute in fp32 only (kernels/cuda/NOTES.md, "The SAM3 ViT in 16 bits") */
    const samc_ops *o = m->rt.backend;
    if (o->activation_precision) o->activation_precision(o, 0);
    return o->host_memory ? 0 : bind_all(m, err);
}

/* The dimensions the forward code reads, from the config. */
static void set_dims(sam3_model *m, const sam3_config *cfg) {
    m->cfg = cfg;
    m->S = cfg->image_size;
    m->g = sam3_config_grid(cfg);
    m->C = cfg->vit_dim;
    m->D = cfg->d_model;
    m->Q = cfg->num_queries;
    m->dec.layers = cfg->dec_layers;
}

sam3_model *sam3_model_load(rt_weights *w, const sam3_config *cfg, const samc_options *opt, samc_error *err) {
    double t0 = rt_now_ms();
    sam3_model *m = calloc(1, sizeof *m);
    if (m) {
        m->weights = *w;  /* the model owns the file from here, whatever happens */
        memset(w, 0, sizeof *w);
    } else {
        rt_weights_close(w);
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for a %s model", cfg->name);
        return NULL;
    }
    set_dims(m, cfg);
    if (m->S > SAM3_MAX_S || m->Q > 256 || cfg->dec_layers > SAM3_MAX_LAYERS || cfg->enc_layers > SAM3_MAX_LAYERS) {
        samc_error_set(err, SAMC_ERR_UNSUPPORTED, "config %s is larger than this build supports", cfg->name);
        goto fail;
    }
    if (rt_backend_open(&m->rt, opt, err)) goto fail;
    rt_log(&m->rt, "load: SAM3 config %s, image size %d", cfg->name, m->S);
    if (alloc_host(m, err) || load_tokenizer(m, err) || load_weights(m, err)) goto fail;
    rt_plan_begin(&m->rt);
    int rc = sam3_processor_plan(m, err);
    if (rt_plan_end(&m->rt, err) || rc) goto fail;
    rt_mem_info(&m->rt, &m->mem_after_load, NULL, NULL);
    rt_log(&m->rt, "load: %s backend, %lld parameters, scratch %.1f MB, done in %.1f ms", m->rt.backend->name,
           (long long)m->weights.n_params, m->rt.arena.cap / 1048576.0, rt_now_ms() - t0);
    return m;
fail:
    sam3_model_free(m);
    return NULL;
}

void sam3_model_free(sam3_model *m) {
    if (!m) return;
    free(m->h_resized); free(m->h_input); free(m->h_dec); free(m->h_small);
    free(m->h_logits); free(m->h_refs); free(m->h_ref_init);
    sam3_transforms_free(m);
    sam3_tokenizer_free(m->tokenizer);
    if (m->rt.backend) {
        float *dev[] = { m->rope_win_cos, m->rope_win_sin, m->rope_glob_cos, m->rope_glob_sin, m->pos_tiled,
                         m->pe_tok, m->causal, m->zeros, m->text_cache, m->dev_full };
        for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) rt_free(m->rt.backend, dev[i]);
    }
    rt_weights_close(&m->weights);
    rt_backend_close(&m->rt);
    free(m);
}

sam3_image *sam3_image_new(sam3_model *m, samc_error *err) {
    sam3_image *img = calloc(1, sizeof *img);
    if (!img) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    img->S = m->S;
    img->D = m->D;
    img->g = m->g;
    img->ops = m->rt.backend;
    for (int i = 0; i < 3; i++) {
        int side = (4 >> i) * m->g;
        img->fpn[i] = rt_alloc(img->ops, sizeof(float) * (size_t)m->D * side * side);
        if (!img->fpn[i]) {
            sam3_image_free(img);
            samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for an encoded image");
            return NULL;
        }
    }
    return img;
}

void sam3_image_free(sam3_image *img) {
    if (!img) return;
    for (int i = 0; i < 3; i++) rt_free(img->ops, img->fpn[i]);
    free(img);
}
