/* convert/convert.c: samc_convert, an official SAM2.1 checkpoint (.pt, or safetensors) to
 * safetensors, optionally in f16/bf16 and without the memory-side (video) tensors.
 *
 * Steps: read the file (loader/pt.c or loader/safetensors.c); for an official file name,
 * check size and sha256 against convert/official_checkpoints.c; find the SAM2.1 config
 * whose state-dict specification (model/config/sam2_config.h) the tensors match exactly; convert
 * float tensors with round-to-nearest-even; write sorted by name, as the Python
 * safetensors library does, with provenance in __metadata__. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/official_checkpoints.h"
#include "loader/pt.h"
#include "loader/safetensors.h"
#include "convert/convert.h"
#include "loader/sha256.h"
#include "model/config/sam2_config.h"

/* float32 -> IEEE half, round to nearest even; overflow gives inf, NaN stays NaN. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x1ff);  /* quiet NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00;   /* >= 65520: rounds to inf (65504 is odd) */
    uint32_t e = ax >> 23;
    if (e < 113) {
        /* half subnormal: value / 2^-24 rounded; e = 0..112 (below 2^-14) */
        if (e < 102) return sign;   /* below 2^-25: rounds to +-0 */
        uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
        uint32_t q = m >> shift, r = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (r > half || (r == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t h = ((e - 112) << 10) | ((ax >> 13) & 0x3ff), r = ax & 0x1fff;
    if (r > 0x1000 || (r == 0x1000 && (h & 1))) h++;   /* a carry moves into the exponent */
    return sign | (uint16_t)h;
}

/* float32 -> bfloat16 (the upper 16 bits), round to nearest even; NaN stays NaN. */
static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

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

/* The input checkpoint as tensors, with the sha256 of its bytes for the provenance. */
typedef struct {
    int is_pt;
    pt_checkpoint ck;
    st_file sf;
    const st_tensor *t;
    int n;
    char sha256[65];
} conv_source;

static void source_close(conv_source *s) {
    if (s->is_pt) pt_free(&s->ck);
    else st_close(&s->sf);
}

/* Reads a .pt (with its storages' CRC-32, ~1 GB/s: conversion runs once per file, and a
 * damaged non-official .pt is refused instead of converted with bad weights) or a
 * safetensors file. An official file name must also have the official size and sha256. */
static int source_open(conv_source *s, const char *in_path, int64_t size, const official_checkpoint *official,
                       samc_error *err) {
    char msg[SAMC_ERRMSG];
    if (official && size != official->size)
        return samc_error_set(err, SAMC_ERR_FORMAT,
                              "%s: corrupted or incomplete download: %lld bytes, the official %s has %lld; "
                              "download it again (%s)", in_path, (long long)size, official->file,
                              (long long)official->size, official->url);
    if (!s->is_pt) {
        if (st_open(in_path, &s->sf, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        s->t = s->sf.tensors;
        s->n = s->sf.n_tensors;
        sha256_hex(s->sf.map, s->sf.map_size, s->sha256);
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
        samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 checkpoint: %s", in_path, msg);
        goto done;
    }
    if (official && strcmp((*cfg)->name, official->config) != 0) {
        samc_error_set(err, SAMC_ERR_MODEL, "%s: holds a SAM2.1 '%s' model, but the official %s is '%s'", in_path,
                       (*cfg)->name, official->file, official->config);
        goto done;
    }
    rc = 0;
done:
    free(ndims);
    free(shapes);
    free(names);
    return rc;
}

/* t's values in the target dtype (float tensors, round to nearest even), in a new
 * buffer *buf for the caller to free. */
static int convert_tensor(const st_tensor *t, st_dtype target, void **buf, samc_error *err) {
    char msg[SAMC_ERRMSG];
    size_t cnt = (size_t)t->numel;
    float *f32 = malloc((cnt ? cnt : 1) * sizeof *f32);
    void *dst = target == ST_F32 ? (void *)f32 : malloc((cnt ? cnt : 1) * 2);
    if (!f32 || !dst || st_read_f32(t, f32, msg) != 0) {
        if (!f32 || !dst) samc_error_set(err, SAMC_ERR_NOMEM, "samc_convert: out of memory converting '%s' (%zu values)",
                                         t->name, cnt);
        else samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        free(f32);
        if (dst != f32) free(dst);
        return -1;
    }
    if (target != ST_F32) {
        uint16_t *h = dst;
        for (size_t k = 0; k < cnt; k++) h[k] = target == ST_F16 ? f32_to_f16(f32[k]) : f32_to_bf16(f32[k]);
        free(f32);
    }
    *buf = dst;
    return 0;
}

/* The tensors to write (all, or the image path), converted where their dtype differs,
 * sorted by name as the Python safetensors library writes them, with provenance in
 * __metadata__. */
static int write_converted(const conv_source *s, const sam2_config *cfg, const char *in_path, const char *out_path,
                           st_dtype target, int image_only, samc_error *err) {
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
        if (convert_tensor(t, target, &bufs[n_bufs], err) != 0) goto done;
        o->data = bufs[n_bufs++];
        o->dtype = target;
        o->nbytes = (size_t)t->numel * st_dtype_size(target);
    }
    st_sort_by_name(out, n_out);
    char image_size[16], msg[SAMC_ERRMSG];
    snprintf(image_size, sizeof image_size, "%d", cfg->image_size);
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

int samc_convert(const char *in_path, const char *out_path, const char *dtype, int image_only, samc_error *err) {
    if (err) { err->status = SAMC_OK; err->msg[0] = 0; }
    if (!in_path || !out_path)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: input and output paths are required");
    if (!dtype) dtype = "f32";
    st_dtype target;
    if (!strcmp(dtype, "f32")) target = ST_F32;
    else if (!strcmp(dtype, "f16")) target = ST_F16;
    else if (!strcmp(dtype, "bf16")) target = ST_BF16;
    else return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: dtype '%s' is not one of f32, f16, bf16", dtype);
    struct stat sb, so;
    if (stat(in_path, &sb) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
    if (stat(out_path, &so) == 0 && so.st_dev == sb.st_dev && so.st_ino == sb.st_ino)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: output %s is the input file", out_path);
    /* A .pt is recognised by its zip signature or its extension (so that a damaged .pt is
     * reported by the .pt reader, not as bad safetensors). */
    conv_source src = { .is_pt = pt_is_zip_file(in_path) || ends_with(in_path, ".pt") || ends_with(in_path, ".pth") };
    const official_checkpoint *official = src.is_pt ? official_checkpoint_find(in_path) : NULL;
    if (source_open(&src, in_path, (int64_t)sb.st_size, official, err) != 0) return -1;
    const sam2_config *cfg = NULL;
    int rc = detect_config(&src, in_path, official, &cfg, err);
    if (rc == 0) rc = write_converted(&src, cfg, in_path, out_path, target, image_only, err);
    source_close(&src);
    return rc;
}
