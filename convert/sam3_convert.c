/* convert/sam3_convert.c: SAM3 checkpoints (official, samc or transformers layout) to
 * one samc safetensors file. See sam3_convert.h.
 *
 * Steps: sort the source tensors into image-model tensors under their Sam3Image names
 * (renamed, and for the transformers layout re-assembled: convert/hf_sam3_map.h) and
 * video-side tensors; find the config whose state-dict specification
 * (model/config/sam3_config.h) the image tensors match exactly, naming the closest one
 * and the first bad key otherwise; check a transformers config.json against it; convert
 * the floats (round to nearest even); write them sorted by name, as the Python
 * safetensors library does, with the vocabulary and provenance in __metadata__. */
#include "convert/sam3_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/dtype.h"
#include "convert/hf_sam3_config.h"
#include "convert/hf_sam3_map.h"
#include "convert/sam3_vocab.h"
#include "model/config/sam3_config.h"

/* The tensors to write, built from the source: names and data either borrowed from the
 * source or owned (in `owned`). video[i] marks the video-side ones. Entries named in
 * `extra` take part in config detection only (the RoPE tables of a .pt). */
typedef struct {
    st_tensor *t;
    char *video;
    int n, cap;
    void **owned;
    int n_owned, cap_owned;
    st_tensor *extra;
    int n_extra;
} out_set;

static void *own(out_set *o, void *p) {
    if (!p) return NULL;
    if (o->n_owned == o->cap_owned) {
        int cap = o->cap_owned ? 2 * o->cap_owned : 256;
        void **np = realloc(o->owned, (size_t)cap * sizeof *np);
        if (!np) { free(p); return NULL; }
        o->owned = np;
        o->cap_owned = cap;
    }
    return o->owned[o->n_owned++] = p;
}

/* Appends a tensor like `like` (dtype, shape, data) under `name` (copied). */
static st_tensor *add(out_set *o, const char *name, const st_tensor *like, int video) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 512;
        st_tensor *nt = realloc(o->t, (size_t)cap * sizeof *nt);
        char *nv = nt ? realloc(o->video, (size_t)cap) : NULL;
        if (nt) o->t = nt;
        if (!nv) return NULL;
        o->video = nv;
        o->cap = cap;
    }
    char *nm = own(o, strdup(name));
    if (!nm) return NULL;
    st_tensor *t = &o->t[o->n];
    *t = *like;
    t->name = nm;
    o->video[o->n++] = (char)video;
    return t;
}

static void out_set_free(out_set *o) {
    for (int i = 0; i < o->n_owned; i++) free(o->owned[i]);
    free(o->owned);
    free(o->t);
    free(o->video);
    free(o->extra);
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16; }

/* 1 when `name` is a Sam3Image tensor name (with any layer index), by the name table. */
static int is_sam3_name(const char *name, hf_sam3_absent *why) {
    char hf[3][HF_SAM3_NAME_MAX];
    hf_sam3_kind kind;
    return hf_sam3_from_official(name, hf, &kind, why) >= 0;
}

/* Gathers a .pt's complex tensors: the RoPE tables go to detection only. `strip` is the
 * prefix of image-model names ("detector." or ""). */
static int gather_skipped(const sam3_source *src, const char *strip, out_set *o, samc_convert_report *rep,
                          samc_error *err) {
    o->extra = calloc((size_t)src->n_skipped + 1, sizeof *o->extra);
    if (!o->extra) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", src->path);
    for (int i = 0; i < src->n_skipped; i++) {
        const pt_skipped_tensor *s = &src->skipped[i];
        hf_sam3_absent why = 0;
        const char *name = starts_with(s->name, strip) ? s->name + strlen(strip) : NULL;
        if (name && is_sam3_name(name, &why) && why == HF_SAM3_ABSENT_COMPUTED) {
            st_tensor *e = &o->extra[o->n_extra++];
            e->name = (char *)name;
            e->ndim = s->ndim;
            memcpy(e->shape, s->shape, sizeof e->shape);
        } else if (starts_with(s->name, "tracker.") || (*strip && name && !is_sam3_name(name, &why))) {
            rep->n_video_dropped++;   /* a complex video-side tensor: nothing samc can keep */
        } else {
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; in a SAM3 checkpoint only the "
                                  "ViT's RoPE tables (attn.freqs_cis) are complex", src->path, s->name, s->torch_dtype);
        }
    }
    return 0;
}

/* The official sam3.pt layout and the samc layout: renaming only. */
static int gather_named(const sam3_source *src, sam3_layout layout, out_set *o, samc_convert_report *rep,
                        samc_error *err) {
    const char *strip = layout == SAM3_LAYOUT_OFFICIAL ? "detector." : "";
    if (gather_skipped(src, strip, o, rep, err)) return -1;
    for (int i = 0; i < src->n; i++) {
        const st_tensor *t = &src->tensors[i];
        const char *name = t->name;
        hf_sam3_absent why;
        int video = starts_with(name, "tracker.") || starts_with(name, "detector.");
        if (layout == SAM3_LAYOUT_OFFICIAL && starts_with(name, "detector.")) {
            video = !is_sam3_name(name + 9, &why);
            if (!video) name += 9;
            else if (!rep->first_unused[0]) snprintf(rep->first_unused, sizeof rep->first_unused, "%s", name);
        }
        if (!video && !is_float(t->dtype))
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; a SAM3 checkpoint holds "
                                  "only float tensors", src->path, t->name, st_dtype_name(t->dtype));
        if (!add(o, name, t, video)) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", src->path);
    }
    return 0;
}

/* ---- transformers layout --------------------------------------------------------- */

typedef struct {
    char official[HF_SAM3_NAME_MAX];
    hf_sam3_kind kind;
    int part;
    const st_tensor *t;
} hf_piece;

static int piece_cmp(const void *a, const void *b) {
    const hf_piece *x = a, *y = b;
    int c = strcmp(x->official, y->official);
    return c ? c : x->part - y->part;
}

/* official [1, 1 + P, C]: a zero cls row, then HF's [1, P, C]. */
static int pos_with_cls(out_set *o, const hf_piece *p, const char *path, samc_error *err) {
    const st_tensor *t = p->t;
    if (t->ndim != 3 || t->shape[0] != 1)
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: tensor '%s' has %d dims, expected [1, P, C]", path, t->name,
                              t->ndim);
    size_t row = (size_t)t->shape[2] * st_dtype_size(t->dtype);
    uint8_t *d = own(o, calloc(1, t->nbytes + row));
    st_tensor *n = d ? add(o, p->official, t, 0) : NULL;
    if (!n) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    memcpy(d + row, t->data, t->nbytes);
    n->shape[1] = t->shape[1] + 1;
    n->numel += t->shape[2];
    n->nbytes += row;
    n->data = d;
    return 0;
}

/* official [A, B] = HF [B, A] transposed. */
static int transposed(out_set *o, const hf_piece *p, const char *path, samc_error *err) {
    const st_tensor *t = p->t;
    if (t->ndim != 2)
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: tensor '%s' has %d dims, expected 2", path, t->name, t->ndim);
    size_t es = st_dtype_size(t->dtype), rows = (size_t)t->shape[0], cols = (size_t)t->shape[1];
    uint8_t *d = own(o, malloc(t->nbytes ? t->nbytes : 1));
    st_tensor *n = d ? add(o, p->official, t, 0) : NULL;
    if (!n) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    const uint8_t *s = t->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) memcpy(d + (c * rows + r) * es, s + (r * cols + c) * es, es);
    n->shape[0] = t->shape[1];
    n->shape[1] = t->shape[0];
    n->data = d;
    return 0;
}

/* official [3d, ...] = HF q_proj, k_proj, v_proj [d, ...] stacked; p[0..2] sorted by part. */
static int stacked_qkv(out_set *o, const hf_piece *p, int n_parts, const char *path, samc_error *err) {
    static const char *const part_name[3] = { "q_proj", "k_proj", "v_proj" };
    for (int k = 0; k < 3; k++)
        if (k >= n_parts || p[k].part != k)
            return samc_error_set(err, SAMC_ERR_MODEL, "%s: the %s tensor of '%s' (%s in the official layout) is %s",
                                  path, part_name[k], p[0].t->name, p[0].official, k < n_parts ? "given twice" : "missing");
    const st_tensor *q = p[0].t;
    for (int k = 1; k < 3; k++) {
        const st_tensor *t = p[k].t;
        int same = t->dtype == q->dtype && t->ndim == q->ndim;
        for (int d = 0; same && d < q->ndim; d++) same = t->shape[d] == q->shape[d];
        if (!same)
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s: tensors '%s' and '%s' differ in dtype or shape", path,
                                  q->name, t->name);
    }
    uint8_t *d = own(o, malloc(3 * q->nbytes + 1));
    st_tensor *n = d ? add(o, p[0].official, q, 0) : NULL;
    if (!n) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    for (int k = 0; k < 3; k++) memcpy(d + (size_t)k * q->nbytes, p[k].t->data, q->nbytes);
    n->shape[0] = 3 * q->shape[0];
    n->numel *= 3;
    n->nbytes *= 3;
    n->data = d;
    return 0;
}

/* Maps every HF name; tracker tensors are dropped, unknown names kept as they are so
 * that config detection names them. */
static int map_hf_names(const sam3_source *src, hf_piece *pieces, int *n_pieces, samc_convert_report *rep) {
    *n_pieces = 0;
    for (int i = 0; i < src->n; i++) {
        const char *name = src->tensors[i].name;
        if (starts_with(name, "detector_model.")) name += 15;
        if (starts_with(name, "tracker_model.") || starts_with(name, "tracker_neck.")) {
            rep->n_video_dropped++;
            continue;
        }
        hf_piece *p = &pieces[(*n_pieces)++];
        p->t = &src->tensors[i];
        if (hf_sam3_to_official(name, p->official, sizeof p->official, &p->kind, &p->part) != 0) {
            snprintf(p->official, sizeof p->official, "%s", src->tensors[i].name);
            p->kind = HF_SAM3_RENAME;
            p->part = 0;
        }
    }
    qsort(pieces, (size_t)*n_pieces, sizeof *pieces, piece_cmp);
    return 0;
}

/* The geometry encoder's point projections, absent from the transformers layout, as
 * zeros of the width of label_embed [2, d] (when that is there: otherwise config
 * detection reports it missing first). */
static int zero_points(out_set *o, samc_convert_report *rep, const char *path, samc_error *err) {
    const st_tensor *label = NULL;
    for (int i = 0; i < o->n && !label; i++)
        if (!strcmp(o->t[i].name, "geometry_encoder.label_embed.weight") && o->t[i].ndim == 2) label = &o->t[i];
    if (!label) return 0;
    int64_t d = label->shape[1];
    static const char *const proj[3] = { "points_direct_project", "points_pool_project", "points_pos_enc_project" };
    for (int k = 0; k < 3; k++)
        for (int b = 0; b < 2; b++) {
            char name[96];
            snprintf(name, sizeof name, "geometry_encoder.%s.%s", proj[k], b ? "bias" : "weight");
            st_tensor z = { .dtype = ST_F32, .ndim = b ? 1 : 2, .shape = { d, k == 0 ? 2 : d } };
            z.numel = b ? d : d * z.shape[1];
            z.nbytes = (size_t)z.numel * 4;
            z.data = own(o, calloc(1, z.nbytes));
            if (!z.data || !add(o, name, &z, 0)) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
        }
    rep->points_zeroed = 1;
    return 0;
}

static int gather_hf(const sam3_source *src, out_set *o, samc_convert_report *rep, samc_error *err) {
    hf_piece *pieces = malloc((size_t)(src->n + 1) * sizeof *pieces);
    o->extra = calloc(1, sizeof *o->extra);
    int n = 0, rc = 0;
    if (!pieces || !o->extra) {
        free(pieces);
        return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", src->path);
    }
    map_hf_names(src, pieces, &n, rep);
    for (int i = 0; i < n && !rc; i++) {
        const hf_piece *p = &pieces[i];
        int run = 1;
        while (i + run < n && !strcmp(pieces[i + run].official, p->official)) run++;
        if (!is_float(p->t->dtype))
            rc = samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; a SAM3 checkpoint holds "
                                "only float tensors", src->path, p->t->name, st_dtype_name(p->t->dtype));
        else if (p->kind == HF_SAM3_QKV) rc = stacked_qkv(o, p, run, src->path, err);
        else if (run > 1)
            rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: tensors '%s' and '%s' are the same tensor '%s'", src->path,
                                p->t->name, pieces[i + 1].t->name, p->official);
        else if (p->kind == HF_SAM3_POS_CLS) rc = pos_with_cls(o, p, src->path, err);
        else if (p->kind == HF_SAM3_TRANSPOSE) rc = transposed(o, p, src->path, err);
        else if (!add(o, p->official, p->t, 0)) rc = samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", src->path);
        i += run - 1;
    }
    free(pieces);
    return rc ? rc : zero_points(o, rep, src->path, err);
}

/* ---- layout, detection, output -------------------------------------------------- */

sam3_layout sam3_layout_of(const st_tensor *t, int n, const pt_skipped_tensor *skipped, int n_skipped) {
    int samc = 0;
    for (int i = 0; i < n + n_skipped; i++) {
        const char *name = i < n ? t[i].name : skipped[i - n].name;
        if (starts_with(name, "detector.")) return SAM3_LAYOUT_OFFICIAL;
        if (starts_with(name, "detector_model.") || starts_with(name, "detr_decoder.") ||
            starts_with(name, "text_encoder.text_model."))
            return SAM3_LAYOUT_TRANSFORMERS;
        samc |= starts_with(name, "backbone.vision_backbone.trunk.") || starts_with(name, "backbone.language_backbone.");
    }
    return samc ? SAM3_LAYOUT_SAMC : SAM3_LAYOUT_NONE;
}

/* The config of the image-model tensors (and the RoPE tables of a .pt). */
static int detect_config(const sam3_source *src, sam3_layout layout, const out_set *o, const sam3_config **cfg,
                         samc_error *err) {
    int n = o->n + o->n_extra, k = 0;
    const char **names = malloc((size_t)(n + 1) * sizeof *names);
    const int64_t **shapes = malloc((size_t)(n + 1) * sizeof *shapes);
    int *ndims = malloc((size_t)(n + 1) * sizeof *ndims);
    int rc = 0;
    if (!names || !shapes || !ndims) {
        rc = samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", src->path);
    } else if (o->n_extra == 0 && o->n > 0 && !memchr(o->video, 0, (size_t)o->n)) {
        rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: holds no tensor of the SAM3 image model ('%s' is none)", src->path,
                            o->t[0].name);
    } else {
        for (int i = 0; i < n; i++) {
            const st_tensor *t = i < o->n ? &o->t[i] : &o->extra[i - o->n];
            if (i < o->n && o->video[i]) continue;
            names[k] = t->name;
            shapes[k] = t->shape;
            ndims[k++] = t->ndim;
        }
        char msg[SPEC_ERRMSG];
        static const char *const what[] = { "", " (names after removing 'detector.')", "",
                                             " (names after mapping transformers' to the official ones)" };
        if (sam3_config_detect(names, shapes, ndims, k, cfg, msg) != 0)
            rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: not a complete SAM3 image model%s: %s", src->path,
                                what[layout], msg);
    }
    free(names);
    free(shapes);
    free(ndims);
    return rc;
}

/* Keeps what is written (the video side only without image_only), in `target` dtype. */
static int finish_tensors(out_set *o, st_dtype target, int image_only, samc_convert_report *rep, samc_error *err) {
    int k = 0;
    for (int i = 0; i < o->n; i++) {
        if (o->video[i]) {
            if (image_only) {
                rep->n_video_dropped++;
                continue;
            }
            rep->n_video_kept++;
        }
        st_tensor *t = &o->t[k++];
        *t = o->t[i];
        if (t->dtype == target || !is_float(t->dtype)) continue;
        void *dst;
        char msg[SAMC_ERRMSG] = "out of memory";
        if (convert_tensor_values(t, target, &dst, &t->nbytes, msg) || !own(o, dst))
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        t->data = dst;
        t->dtype = target;
    }
    o->n = k;
    st_sort_by_name(o->t, o->n);
    rep->n_written = k;
    return 0;
}

static int write_output(const sam3_source *src, const char *out_path, const sam3_config *cfg, out_set *o,
                        const char *merges, const samc_convert_report *rep, samc_error *err) {
    char image_size[16], video[32];
    snprintf(image_size, sizeof image_size, "%d", cfg->image_size);
    snprintf(video, sizeof video, "%d", rep->n_video_kept);
    const char *base = strrchr(src->path, '/');
    st_meta meta[8] = {
        { "format", (char *)src->format },
        { "source", (char *)(base && base[1] ? base + 1 : src->path) },
        { "source_sha256", (char *)src->source_sha256 },
        { "config", (char *)cfg->name },
        { "image_size", image_size },
    };
    int n_meta = 5;
    if (merges) meta[n_meta++] = (st_meta){ SAM3_VOCAB_META_KEY, (char *)merges };
    if (rep->points_zeroed)
        meta[n_meta++] = (st_meta){ SAM3_META_POINTS, "unsupported: converted from the transformers layout, which "
                                    "has no point projections; geometry_encoder.points_* are zeros" };
    if (rep->n_video_kept) meta[n_meta++] = (st_meta){ SAM3_META_VIDEO, video };
    char msg[SAMC_ERRMSG];
    if (st_write(out_path, o->t, o->n, meta, n_meta, msg) != 0) return samc_error_set(err, SAMC_ERR_IO, "%s", msg);
    return 0;
}

int sam3_convert_source(const sam3_source *src, const char *out_path, st_dtype target, int image_only,
                        const char *vocab, samc_convert_report *rep, samc_error *err) {
    sam3_layout layout = src->hf_config ? SAM3_LAYOUT_TRANSFORMERS
                                        : sam3_layout_of(src->tensors, src->n, src->skipped, src->n_skipped);
    snprintf(rep->family, sizeof rep->family, "SAM3");
    snprintf(rep->layout, sizeof rep->layout, "%s", src->format);
    if (layout == SAM3_LAYOUT_TRANSFORMERS && !src->hf_config)
        return samc_error_set(err, SAMC_ERR_ARG, "%s: holds the transformers Sam3Model layout; convert its folder "
                              "(model.safetensors with config.json beside it)", src->path);
    if (layout == SAM3_LAYOUT_NONE) return samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM3 checkpoint", src->path);
    char *merges = NULL;
    size_t merges_len = 0;
    if (vocab && sam3_vocab_read(vocab, &merges, &merges_len, err)) return -1;
    out_set o = { 0 };
    const sam3_config *cfg = NULL;
    int rc = layout == SAM3_LAYOUT_TRANSFORMERS ? gather_hf(src, &o, rep, err) : gather_named(src, layout, &o, rep, err);
    if (!rc) rc = detect_config(src, layout, &o, &cfg, err);
    if (!rc && layout == SAM3_LAYOUT_TRANSFORMERS) rc = hf_sam3_config_check(src->hf_config, cfg, err);
    if (!rc) {
        snprintf(rep->config, sizeof rep->config, "%s", cfg->name);
        rc = finish_tensors(&o, target, image_only, rep, err);
    }
    if (!rc) rc = write_output(src, out_path, cfg, &o, merges, rep, err);
    if (!rc) rep->vocab_embedded = merges != NULL;
    free(merges);
    out_set_free(&o);
    return rc;
}

int sam3_inspect(const sam3_source *src, sam3_inspection *out, samc_error *err) {
    memset(out, 0, sizeof *out);
    out->layout = sam3_layout_of(src->tensors, src->n, src->skipped, src->n_skipped);
    if (out->layout == SAM3_LAYOUT_NONE) return samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM3 checkpoint", src->path);
    samc_convert_report rep;
    memset(&rep, 0, sizeof rep);
    out_set o = { 0 };
    int rc = out->layout == SAM3_LAYOUT_TRANSFORMERS ? gather_hf(src, &o, &rep, err)
                                                     : gather_named(src, out->layout, &o, &rep, err);
    const sam3_config *cfg = NULL;
    samc_error why = { 0 };
    if (!rc && detect_config(src, out->layout, &o, &cfg, &why) != 0)
        snprintf(out->detail, sizeof out->detail, "%s", why.msg);
    out->config = cfg ? cfg->name : NULL;
    out->n_video = rep.n_video_dropped;
    for (int i = 0; !rc && i < o.n; i++) {
        if (o.video[i]) {
            out->n_video++;
            continue;
        }
        out->n_image++;
        out->n_params += o.t[i].numel;
    }
    out_set_free(&o);
    return rc;
}
