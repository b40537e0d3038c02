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

static int is_zip_file(const char *path) {
    unsigned char m[4] = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(m, "PK\003\004", 4) == 0;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

int samc_convert(const char *in_path, const char *out_path, const char *dtype, int image_only, samc_error *err) {
    if (err) { err->status = SAMC_OK; err->msg[0] = 0; }
    if (!in_path || !out_path) return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: input and output paths are required");
    if (!dtype) dtype = "f32";
    st_dtype target;
    if (!strcmp(dtype, "f32")) target = ST_F32;
    else if (!strcmp(dtype, "f16")) target = ST_F16;
    else if (!strcmp(dtype, "bf16")) target = ST_BF16;
    else return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: dtype '%s' is not one of f32, f16, bf16", dtype);
    struct stat sb;
    if (stat(in_path, &sb) != 0) return samc_error_set(err, SAMC_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
    struct stat so;
    if (stat(out_path, &so) == 0 && so.st_dev == sb.st_dev && so.st_ino == sb.st_ino)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_convert: output %s is the input file", out_path);

    /* Load. A .pt is recognised by its zip signature or its extension (so that a damaged
     * .pt is reported by the .pt reader, not as bad safetensors). */
    int is_pt = is_zip_file(in_path) || ends_with(in_path, ".pt") || ends_with(in_path, ".pth");
    const official_checkpoint *official = is_pt ? official_checkpoint_find(in_path) : NULL;
    char msg[SAMC_ERRMSG];
    pt_checkpoint ck = { 0 };
    st_file sf = { 0 };
    const st_tensor *src;
    int n;
    char source_sha[65];
    if (official && (int64_t)sb.st_size != official->size)
        return samc_error_set(err, SAMC_ERR_FORMAT,
                         "%s: corrupted or incomplete download: %lld bytes, the official %s has %lld; "
                         "download it again (%s)", in_path, (long long)sb.st_size, official->file,
                         (long long)official->size, official->url);
    if (is_pt) {
        /* Conversion runs once per file, so the storages' CRC-32 are checked too (~1 GB/s):
         * a damaged non-official .pt is refused instead of converted with bad weights. */
        if (pt_load_ex(in_path, PT_VERIFY_STORAGE_CRC, &ck, msg) != 0) {
            if (official) {
                char hex[65];
                if (file_sha256(in_path, hex) == 0 && strcmp(hex, official->sha256) != 0)
                    return samc_error_set(err, SAMC_ERR_FORMAT,
                                     "%s: corrupted or incomplete download: sha256 %s, the official %s has %s (%s)",
                                     in_path, hex, official->file, official->sha256, msg);
            }
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        }
        if (official && strcmp(ck.sha256, official->sha256) != 0) {
            samc_error_set(err, SAMC_ERR_FORMAT, "%s: corrupted or incomplete download: sha256 %s, the official %s has %s",
                      in_path, ck.sha256, official->file, official->sha256);
            pt_free(&ck);
            return -1;
        }
        src = ck.tensors;
        n = ck.n_tensors;
        memcpy(source_sha, ck.sha256, sizeof source_sha);
    } else {
        if (st_open(in_path, &sf, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        src = sf.tensors;
        n = sf.n_tensors;
        sha256_hex(sf.map, sf.map_size, source_sha);
    }

    int rc = -1;
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    const int64_t **shapes = malloc((size_t)(n > 0 ? n : 1) * sizeof *shapes);
    int *ndims = malloc((size_t)(n > 0 ? n : 1) * sizeof *ndims);
    st_tensor *out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    void **bufs = calloc((size_t)(n > 0 ? n : 1), sizeof *bufs);
    int n_out = 0, n_bufs = 0;
    if (!names || !shapes || !ndims || !out || !bufs) {
        samc_error_set(err, SAMC_ERR_NOMEM, "samc_convert: out of memory for %d tensors", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (src[i].dtype != ST_F32 && src[i].dtype != ST_F16 && src[i].dtype != ST_BF16) {
            samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; a SAM2.1 checkpoint holds only float tensors",
                      in_path, src[i].name, st_dtype_name(src[i].dtype));
            goto done;
        }
        names[i] = src[i].name;
        shapes[i] = src[i].shape;
        ndims[i] = src[i].ndim;
    }

    /* The official checkpoints are complete; a safetensors input may already be image-only. */
    const sam2_config *cfg = NULL;
    if (sam2_config_detect(names, shapes, ndims, n, SAM2_MATCH_FULL, &cfg, msg) != 0) {
        char msg2[SAMC_ERRMSG];
        if (is_pt || sam2_config_detect(names, shapes, ndims, n, SAM2_MATCH_IMAGE_ONLY, &cfg, msg2) != 0) {
            samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 checkpoint: %s", in_path, msg);
            goto done;
        }
    }
    if (official && strcmp(cfg->name, official->config) != 0) {
        samc_error_set(err, SAMC_ERR_MODEL, "%s: holds a SAM2.1 '%s' model, but the official %s is '%s'", in_path,
                  cfg->name, official->file, official->config);
        goto done;
    }

    for (int i = 0; i < n; i++) {
        const st_tensor *t = &src[i];
        if (image_only && !sam2_config_is_image_path(t->name)) continue;
        st_tensor *o = &out[n_out++];
        *o = *t;
        if (t->dtype == target) continue;   /* same bytes, no copy */
        size_t cnt = (size_t)t->numel;
        float *f32 = malloc((cnt ? cnt : 1) * sizeof *f32);
        void *dst = target == ST_F32 ? (void *)f32 : malloc((cnt ? cnt : 1) * 2);
        if (!f32 || !dst) {
            free(f32);
            if (dst != f32) free(dst);
            samc_error_set(err, SAMC_ERR_NOMEM, "samc_convert: out of memory converting '%s' (%zu values)", t->name, cnt);
            goto done;
        }
        if (st_read_f32(t, f32, msg) != 0) {
            free(f32);
            if (dst != f32) free(dst);
            samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
            goto done;
        }
        if (target != ST_F32) {
            uint16_t *h = dst;
            for (size_t k = 0; k < cnt; k++) h[k] = target == ST_F16 ? f32_to_f16(f32[k]) : f32_to_bf16(f32[k]);
            free(f32);
        }
        bufs[n_bufs++] = dst;
        o->data = dst;
        o->dtype = target;
        o->nbytes = cnt * st_dtype_size(target);
    }
    st_sort_by_name(out, n_out);

    char image_size[16];
    snprintf(image_size, sizeof image_size, "%d", cfg->image_size);
    st_meta meta[5] = {
        { "format", "pt" },
        { "source", (char *)base_name(in_path) },
        { "source_sha256", source_sha },
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
    free(ndims);
    free(shapes);
    free(names);
    if (is_pt) pt_free(&ck);
    else st_close(&sf);
    return rc;
}
