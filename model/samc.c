/* model/samc.c: the public API (model/samc.h) over the model families: a weight file is
 * opened once, its family and config are found from the tensor names and shapes, and
 * every call goes to that family's code. Today: SAM2.1 (model/sam2/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config/sam2_config.h"
#include "model/runtime/runtime.h"
#include "model/sam2/sam2.h"
#include "model/model.h"
#include "model/samc.h"

/* The SAM2.1 config the file's tensors form (image-path tensors required), or NULL with
 * the closest config and the first problem in err. */
static const sam2_config *detect_sam2(const rt_weights *w, samc_error *err) {
    const char **names;
    const int64_t **shapes;
    int *ndims;
    char emsg[SPEC_ERRMSG];
    if (rt_weights_names(w, &names, &shapes, &ndims, err)) return NULL;
    const sam2_config *cfg = NULL;
    if (sam2_config_detect(names, shapes, ndims, w->n, SAM2_MATCH_IMAGE_ONLY, &cfg, emsg))
        samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 model: %s", w->path, emsg);
    free(names);
    free(shapes);
    free(ndims);
    return cfg;
}

samc_model *samc_model_load(const char *path, const samc_options *opt, samc_error *err) {
    double t0 = rt_now_ms();
    rt_weights w;
    if (opt && opt->log) {
        char line[600];
        snprintf(line, sizeof line, "load: opening %s", path ? path : "(null)");
        opt->log(opt->log_ctx, line);
    }
    if (rt_weights_open(&w, path, err)) return NULL;
    if (opt && opt->log) {
        char line[100];
        snprintf(line, sizeof line, "load: %d tensors read in %.1f ms", w.n, rt_now_ms() - t0);
        opt->log(opt->log_ctx, line);
    }
    samc_model *m = calloc(1, sizeof *m);
    const sam2_config *cfg = m ? detect_sam2(&w, err) : NULL;
    if (!m) samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
    if (cfg) m->sam2 = sam2_model_load(&w, cfg, opt, err);
    rt_weights_close(&w);
    if (!m || !m->sam2) {
        free(m);
        return NULL;
    }
    return m;
}

void samc_model_free(samc_model *m) {
    if (!m) return;
    sam2_model_free(m->sam2);
    free(m);
}

void samc_model_get_info(const samc_model *m, samc_model_info *info) {
    const sam2_model *s = m->sam2;
    memset(info, 0, sizeof *info);
    snprintf(info->config, sizeof info->config, "%s", s->cfg->name);
    info->image_size = s->S;
    info->embed_dim = s->cfg->embed_dim;
    info->d_model = s->C;
    info->n_params = s->weights.n_params;
    info->n_tensors = s->weights.n;
    info->backend = s->rt.backend->name;
    info->n_threads = rt_backend_threads(&s->rt);
    info->scratch_bytes = s->rt.arena.cap;
    info->weight_bytes = s->weights.file_bytes;
    info->precision = samc_precision_name(s->rt.opt.precision);
    int S = s->S, C = s->C;
    info->image_bytes = sizeof(float) * ((size_t)C * (S / 16) * (S / 16) + (size_t)(C / 8) * (S / 4) * (S / 4) +
                                         (size_t)(C / 4) * (S / 8) * (S / 8));
    if (s->rt.sizing_ops) {
        samc_ops_sizing t;
        samc_ops_sizing_totals(s->rt.sizing_ops, &t);
        info->planned = 1;
        info->backend_bytes = t.current;
        info->lowp_bytes = t.lowp;
    }
}

/* A plan-only model (samc_options.plan_only) has no memory behind its buffers. */
static int refuse_planned(const samc_model *m, const char *what, samc_error *err) {
    if (!m->sam2->rt.sizing_ops) return 0;
    return samc_error_set(err, SAMC_ERR_ARG, "%s: the model was loaded with plan_only (a memory plan): it cannot run",
                          what);
}

void samc_model_get_timings(const samc_model *m, samc_timings *t) { *t = m->sam2->timings; }

samc_image *samc_image_new(samc_model *m, samc_error *err) {
    if (!m) {
        samc_error_set(err, SAMC_ERR_ARG, "samc_image_new: NULL model");
        return NULL;
    }
    samc_image *img = calloc(1, sizeof *img);
    if (!img) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    img->sam2 = sam2_image_new(m->sam2, err);
    if (!img->sam2) {
        free(img);
        return NULL;
    }
    return img;
}

void samc_image_free(samc_image *img) {
    if (!img) return;
    sam2_image_free(img->sam2);
    free(img);
}

int samc_image_width(const samc_image *img) { return img->sam2->w; }
int samc_image_height(const samc_image *img) { return img->sam2->h; }

static int check_size(const char *what, int w, int h, samc_error *err) {
    if (w <= 0 || h <= 0 || w > SAM2_MAX_IMAGE_SIDE || h > SAM2_MAX_IMAGE_SIDE ||
        (int64_t)w * h > SAM2_MAX_IMAGE_PIXELS)
        return samc_error_set(err, SAMC_ERR_ARG, "%simage size %dx%d is outside 1..%d per side and %lld pixels", what,
                              w, h, SAM2_MAX_IMAGE_SIDE, (long long)SAM2_MAX_IMAGE_PIXELS);
    return 0;
}

int samc_image_encode(samc_model *m, samc_image *img, const uint8_t *rgb, int w, int h, samc_error *err) {
    if (!m || !img || !rgb) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode: NULL argument");
    if (refuse_planned(m, "samc_image_encode", err)) return -1;
    sam2_image *s = img->sam2;
    if (s->S != m->sam2->S || s->C != m->sam2->C)
        return samc_error_set(err, SAMC_ERR_ARG,
                              "samc_image_encode: image buffers were made for another model (%d/%d vs %d/%d)", s->S,
                              s->C, m->sam2->S, m->sam2->C);
    if (check_size("", w, h, err)) return -1;
    return sam2_image_encode_batch(m->sam2, &s, &rgb, &w, &h, 1, err);
}

int samc_image_encode_batch(samc_model *m, samc_image **imgs, const uint8_t *const *rgb, const int *w, const int *h,
                            int n, samc_error *err) {
    if (!m || !imgs || !rgb || !w || !h)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: NULL argument (%s)",
                              !m ? "m" : !imgs ? "imgs" : !rgb ? "rgb" : !w ? "w" : "h");
    if (n < 1) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: n = %d images (need at least 1)", n);
    if (refuse_planned(m, "samc_image_encode_batch", err)) return -1;
    sam2_image *chunk[SAMC_MAX_ENCODE_BATCH];
    for (int i = 0; i < n; i++) {
        char what[64];
        if (!imgs[i]) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] is NULL", i);
        if (!rgb[i]) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: rgb[%d] is NULL", i);
        const sam2_image *s = imgs[i]->sam2;
        if (s->S != m->sam2->S || s->C != m->sam2->C)
            return samc_error_set(err, SAMC_ERR_ARG,
                                  "samc_image_encode_batch: imgs[%d] was made for another model (%d/%d vs %d/%d)", i,
                                  s->S, s->C, m->sam2->S, m->sam2->C);
        snprintf(what, sizeof what, "samc_image_encode_batch: w[%d] x h[%d]: ", i, i);
        if (check_size(what, w[i], h[i], err)) return -1;
        for (int j = 0; j < i; j++)
            if (imgs[j] == imgs[i])
                return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] and imgs[%d] are the same image",
                                      j, i);
    }
    /* the family takes its own image structs, at most SAMC_MAX_ENCODE_BATCH at a time */
    for (int i0 = 0; i0 < n; i0 += SAMC_MAX_ENCODE_BATCH) {
        int k = n - i0 < SAMC_MAX_ENCODE_BATCH ? n - i0 : SAMC_MAX_ENCODE_BATCH;
        for (int i = 0; i < k; i++) chunk[i] = imgs[i0 + i]->sam2;
        if (sam2_image_encode_batch(m->sam2, chunk, rgb + i0, w + i0, h + i0, k, err)) {
            for (int i = i0 + k; i < n; i++) imgs[i]->sam2->w = 0;
            return -1;
        }
    }
    return 0;
}

int samc_predict(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err) {
    static const samc_predict_options dflt = { .multimask = 0, .want_masks = 1, .want_logits = 0 };
    if (!opt) opt = &dflt;
    if (!m || !img || !out || (!prompts && n_prompts)) return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: NULL argument");
    if (refuse_planned(m, "samc_predict", err)) return -1;
    if (img->sam2->w <= 0 || img->sam2->S != m->sam2->S)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: the image has not been encoded by this model");
    if (n_prompts <= 0) return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: no prompts");
    return sam2_predict(m->sam2, img->sam2, prompts, n_prompts, opt, out, err);
}

void samc_masks_free(samc_masks *out) {
    if (!out) return;
    free(out->low_res); free(out->iou); free(out->object_score); free(out->logits); free(out->masks);
    memset(out, 0, sizeof *out);
}

/* F.interpolate(low, (h, w), mode="bilinear", align_corners=False) of one [ls, ls] map
 * (the reference op; also what the predictor's postprocess_masks does). */
void samc_upsample_logits(const float *low, int ls, float *out, int w, int h) {
    const samc_ops *o = samc_ops_cpu_ref();
    o->upsample_bilinear(o, low, out, 1, ls, w, h);
}

int samc_cuda_device(char *buf, size_t n) { return samc_cuda_device_info(buf, n); }

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
