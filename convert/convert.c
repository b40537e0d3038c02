/* convert/convert.c: samc_convert_ex, a checkpoint to one samc safetensors file,
 * optionally in f16/bf16 and without the video-side tensors.
 *
 * Steps: read the file (loader/pt.c or loader/safetensors.c; a transformers folder's
 * model.safetensors); for an official SAM2.1 file name, check size and sha256 against
 * convert/official_checkpoints.c; tell SAM3 (convert/sam3_convert.c) from SAM2.1 by the
 * tensor names. SAM2.1: find the config whose state-dict specification
 * (model/config/sam2_config.h) the tensors match exactly; convert float tensors with
 * round-to-nearest-even (convert/dtype.c); write sorted by name, as the Python
 * safetensors library does, with provenance in __metadata__. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/dtype.h"
#include "convert/official_checkpoints.h"
#include "convert/sam3_convert.h"
#include "loader/pt.h"
#include "loader/safetensors.h"
#include "convert/convert.h"
#include "loader/sha256.h"
#include "model/config/sam2_config.h"

/* sha256 of a file by streaming it (used when the loader refused the file). */
static int file_sha256(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    sha256_ctx c;
    sha256_init(&c);
    static unsigned char buf[1 << 20];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return -1;
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_to_hex(d, hex);
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* The input checkpoint as tensors, with the sha256 of its bytes for the provenance. A
 * transformers checkpoint is read from its model.safetensors, with config.json beside. */
typedef struct {
    int is_pt;
    pt_checkpoint ck;
    st_file sf;
    const st_tensor *t;
    int n;
    char sha256[65];
    char hf_model[4096];   /* the folder's model.safetensors when a folder was given */
    char hf_config[4096];  /* config.json of a transformers checkpoint */
} conv_source;

static void source_close(conv_source *s) {
    if (s->is_pt) pt_free(&s->ck);
    else st_close(&s->sf);
}

/* A folder is a transformers checkpoint: its model.safetensors and config.json. */
static int source_paths(conv_source *s, const char **in_path, samc_error *err) {
    struct stat sb;
    if (stat(*in_path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
    snprintf(s->hf_model, sizeof s->hf_model, "%s/model.safetensors", *in_path);
    snprintf(s->hf_config, sizeof s->hf_config, "%s/config.json", *in_path);
    if (access(s->hf_model, R_OK) != 0) {
        snprintf(s->hf_model, sizeof s->hf_model, "%s/model.safetensors.index.json", *in_path);
        return samc_error_set(err, SAMC_ERR_IO, "%s: no model.safetensors in this folder%s", *in_path,
                              access(s->hf_model, R_OK) == 0 ? " (sharded checkpoints are not supported)" : "");
    }
    *in_path = s->hf_model;
    return 0;
}

/* An official file name (SAM2.1) whose size is not the published one: a SAM3 checkpoint
 * saved under that name is named as such, anything else is a damaged download. */
static int official_size_mismatch(const char *in_path, int64_t size, const official_checkpoint *official,
                                  samc_error *err) {
    pt_checkpoint ck;
    char msg[SAMC_ERRMSG];
    if (pt_load_ex(in_path, PT_SKIP_SHA256, &ck, msg) == 0) {
        int sam3 = sam3_layout_of(ck.tensors, ck.n_tensors, ck.skipped, ck.n_skipped) != SAM3_LAYOUT_NONE;
        pt_free(&ck);
        if (sam3)
            return samc_error_set(err, SAMC_ERR_MODEL, "%s: holds a SAM3 checkpoint, but %s is the official SAM2.1 '%s' "
                                  "file; rename it (sam3.pt) to convert it as SAM3", in_path, official->file,
                                  official->config);
    }
    return samc_error_set(err, SAMC_ERR_FORMAT,
                          "%s: corrupted or incomplete download: %lld bytes, the official %s has %lld; "
                          "download it again (%s)", in_path, (long long)size, official->file,
                          (long long)official->size, official->url);
}

/* Reads a .pt (with its storages' CRC-32, ~1 GB/s: conversion runs once per file, and a
 * damaged non-official .pt is refused instead of converted with bad weights) or a
 * safetensors file. An official file name must also have the official size and sha256. */
static int source_open(conv_source *s, const char *in_path, int64_t size, const official_checkpoint *official,
                       samc_error *err) {
    char msg[SAMC_ERRMSG];
    if (official && size != official->size) return official_size_mismatch(in_path, size, official, err);
    if (!s->is_pt) {
        if (st_open(in_path, &s->sf, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        s->t = s->sf.tensors;
        s->n = s->sf.n_tensors;
        sha256_hex(s->sf.map, s->sf.map_size, s->sha256);
        if (!s->hf_model[0] && sam3_layout_of(s->t, s->n, NULL, 0) == SAM3_LAYOUT_TRANSFORMERS) {
            /* a transformers model.safetensors given by itself: its config.json is beside it */
            const char *slash = strrchr(in_path, '/');
            snprintf(s->hf_config, sizeof s->hf_config, "%.*s/config.json", slash ? (int)(slash - in_path) : 1,
                     slash ? in_path : ".");
        }
        return 0;
    }
    if (pt_load_ex(in_path, PT_VERIFY_STORAGE_CRC, &s->ck, msg) != 0) {
        char hex[65];
        if (official && file_sha256(in_path, hex) == 0 && strcmp(hex, official->sha256) != 0)
            return samc_error_set(err, SAMC_ERR_FORMAT,
                                  "%s: corrupted or incomplete download: sha256 %s, the official %s has %s (%s)",
                                  in_path, hex, official->file, official->sha256, msg);
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
    }
    if (official && strcmp(s->ck.sha256, official->sha256) != 0) {
        samc_error_set(err, SAMC_ERR_FORMAT, "%s: corrupted or incomplete download: sha256 %s, the official %s has %s",
                       in_path, s->ck.sha256, official->file, official->sha256);
        pt_free(&s->ck);
        return -1;
    }
    s->t = s->ck.tensors;
    s->n = s->ck.n_tensors;
    memcpy(s->sha256, s->ck.sha256, sizeof s->sha256);
    return 0;
}

/* The SAM2.1 config whose state-dict specification the tensors match: all of it, or for
 * a safetensors input (which may already be image-only) its image path. Only float
 * tensors are allowed; an official file must hold its own config. */
static int detect_config(const conv_source *s, const char *in_path, const official_checkpoint *official,
                         const sam2_config **cfg, samc_error *err) {
    int n = s->n, rc = -1;
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    const int64_t **shapes = malloc((size_t)(n > 0 ? n : 1) * sizeof *shapes);
    int *ndims = malloc((size_t)(n > 0 ? n : 1) * sizeof *ndims);
    char msg[SAMC_ERRMSG], msg2[SAMC_ERRMSG];
    if (!names || !shapes || !ndims) {
        samc_error_set(err, SAMC_ERR_NOMEM, "samc_convert: out of memory for %d tensors", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const st_tensor *t = &s->t[i];
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
            samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; a SAM2.1 checkpoint holds only "
                           "float tensors", in_path, t->name, st_dtype_name(t->dtype));
            goto done;
        }
        names[i] = t->name;
        shapes[i] = t->shape;
        ndims[i] = t->ndim;
    }
    if (sam2_config_detect(names, shapes, ndims, n, SAM2_MATCH_FULL, cfg, msg) != 0 &&
        (s->is_pt || sam2_config_detect(names, shapes, ndims, n, SAM2_MATCH_IMAGE_ONLY, cfg, msg2) != 0)) {
        samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 checkpoint (nor SAM3: no SAM3 tensor names): %s",
                       in_path, msg);
        goto done;
    }
    if (official && strcmp((*cfg)->name, official->config) != 0) {
        samc_error_set(err, SAMC_ERR_MODEL, "%s: holds a SAM2.1 '%s' model, but the official %s is '%s'", in_path,
                       (*cfg)->name, official->file, official->config);
        goto done;
    }
    if (!strcmp(base_name(in_path), "sam3.pt")) {
        samc_error_set(err, SAMC_ERR_MODEL, "%s: holds a SAM2.1 '%s' model, not SAM3 (the official sam3.pt is the SAM3 "
                       "checkpoint): wrong file downloaded?", in_path, (*cfg)->name);
        goto done;
    }
    rc = 0;
done:
    free(ndims);
    free(shapes);
    free(names);
    return rc;
}

/* The tensors to write (all, or the image path), converted where their dtype differs,
 * sorted by name as the Python safetensors library writes them, with provenance in
 * __metadata__. */
static int write_converted(const conv_source *s, const sam2_config *cfg, const char *in_path, const char *out_path,
                           st_dtype target, int image_only, int *n_written, samc_error *err) {
    int n = s->n, n_out = 0, n_bufs = 0, rc = -1;
    st_tensor *out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    void **bufs = calloc((size_t)(n > 0 ? n : 1), sizeof *bufs);
    if (!out || !bufs) {
        samc_error_set(err, SAMC_ERR_NOMEM, "samc_convert: out of memory for %d tensors", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const st_tensor *t = &s->t[i];
        if (image_only && !sam2_config_is_image_path(t->name)) continue;
        st_tensor *o = &out[n_out++];
        *o = *t;
        if (t->dtype == target) continue;   /* same bytes, no copy */
        char msg[SAMC_ERRMSG];
        if (convert_tensor_values(t, target, &bufs[n_bufs], &o->nbytes, msg) != 0) {
            samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
            goto done;
        }
        o->data = bufs[n_bufs++];
        o->dtype = target;
    }
    st_sort_by_name(out, n_out);
    char image_size[16], msg[SAMC_ERRMSG];
    snprintf(image_size, sizeof image_size, "%d", cfg->image_size);
    *n_written = n_out;
    st_meta meta[5] = {
        { "format", "pt" },
        { "source", (char *)base_name(in_path) },
        { "source_sha256", (char *)s->sha256 },
        { "config", (char *)cfg->name },
        { "image_size", image_size },
    };
    if (st_write(out_path, out, n_out, meta, 5, msg) != 0) {
        samc_error_set(err, SAMC_ERR_IO, "%s", msg);
        goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    free(out);
    return rc;
}

/* SAM2.1: the names are kept; image_only drops the memory-side tensors. */
static int convert_sam2(conv_source *src, const char *in_path, const char *out_path, const official_checkpoint *official,
                        st_dtype target, const samc_convert_options *opt, samc_convert_report *rep, samc_error *err) {
    const sam2_config *cfg = NULL;
    snprintf(rep->family, sizeof rep->family, "SAM2.1");
    snprintf(rep->layout, sizeof rep->layout, "%s", src->is_pt ? "pt" : "safetensors");
    int rc = detect_config(src, in_path, official, &cfg, err);
    if (rc == 0 && opt->vocab && !opt->vocab_if_sam3)
        rc = samc_error_set(err, SAMC_ERR_ARG, "%s: holds a SAM2.1 '%s' model; a vocabulary (--vocab) belongs to "
                            "SAM3 models only (convert it without one)", in_path, cfg->name);
    if (rc == 0) rc = write_converted(src, cfg, in_path, out_path, target, opt->image_only, &rep->n_written, err);
    if (rc == 0) snprintf(rep->config, sizeof rep->config, "%s", cfg->name);
    return rc;
}

static int parse_dtype(const char *dtype, st_dtype *target, samc_error *err) {
    if (!dtype || !strcmp(dtype, "f32")) *target = ST_F32;
    else if (!strcmp(dtype, "f16")) *target = ST_F16;
    else if (!strcmp(dtype, "bf16")) *target = ST_BF16;
    else return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: dtype '%s' is not one of f32, f16, bf16", dtype);
    return 0;
}

int samc_convert_ex(const char *in_path, const char *out_path, const samc_convert_options *opt,
                    samc_convert_report *report, samc_error *err) {
    if (err) { err->status = SAMC_OK; err->msg[0] = 0; }
    samc_convert_report rep_local;
    samc_convert_report *rep = report ? report : &rep_local;
    memset(rep, 0, sizeof *rep);
    static const samc_convert_options defaults = { 0 };
    if (!opt) opt = &defaults;
    st_dtype target = ST_F32;
    if (!in_path || !out_path)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: input and output paths are required");
    if (parse_dtype(opt->dtype, &target, err)) return -1;
    const char *given = in_path;
    conv_source src = { 0 };
    if (source_paths(&src, &in_path, err)) return -1;
    struct stat sb, so;
    if (stat(in_path, &sb) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
    if (stat(out_path, &so) == 0 && so.st_dev == sb.st_dev && so.st_ino == sb.st_ino)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: output %s is the input file", out_path);
    /* A .pt is recognised by its zip signature or its extension (so that a damaged .pt is
     * reported by the .pt reader, not as bad safetensors). */
    src.is_pt = !src.hf_model[0] && (pt_is_zip_file(in_path) || ends_with(in_path, ".pt") || ends_with(in_path, ".pth"));
    const official_checkpoint *official = src.is_pt ? official_checkpoint_find(in_path) : NULL;
    if (source_open(&src, in_path, (int64_t)sb.st_size, official, err) != 0) return -1;
    int rc;
    if (src.hf_config[0] || sam3_layout_of(src.t, src.n, src.ck.skipped, src.ck.n_skipped) != SAM3_LAYOUT_NONE) {
        sam3_source s = { src.hf_model[0] ? given : in_path,
                          src.hf_config[0] ? "transformers" : src.is_pt ? "pt" : "safetensors",
                          src.t, src.n, src.ck.skipped, src.ck.n_skipped, src.sha256,
                          src.hf_config[0] ? src.hf_config : NULL };
        rc = sam3_convert_source(&s, out_path, target, opt->image_only, opt->vocab, rep, err);
    } else {
        rc = convert_sam2(&src, in_path, out_path, official, target, opt, rep, err);
    }
    source_close(&src);
    return rc;
}

int samc_convert(const char *in_path, const char *out_path, const char *dtype, int image_only, samc_error *err) {
    samc_convert_options opt = { .dtype = dtype, .image_only = image_only };
    return samc_convert_ex(in_path, out_path, &opt, NULL, err);
}
