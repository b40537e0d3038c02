/* convert/hf_sam3_export.c: a samc SAM3 file to the transformers layout. See
 * hf_sam3_export.h; each step undoes one in sam3_convert.c's gather_hf. */
#include "convert/hf_sam3_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/hf_sam3_config.h"
#include "convert/hf_sam3_map.h"
#include "loader/safetensors.h"
#include "model/config/sam3_config.h"

typedef struct {
    st_tensor *t;
    int n;
    char (*names)[HF_SAM3_NAME_MAX];
    void **bufs;
    int n_bufs;
} hf_out;

/* Appends the HF tensors of official tensor t (0, 1 or 3 of them). */
static int export_one(hf_out *o, const st_tensor *t, const char *path, samc_error *err) {
    char hf[3][HF_SAM3_NAME_MAX];
    hf_sam3_kind kind;
    hf_sam3_absent why;
    int n = hf_sam3_from_official(t->name, hf, &kind, &why);
    if (n < 0) return samc_error_set(err, SAMC_ERR_MODEL, "%s: '%s' is not a SAM3 image-model tensor", path, t->name);
    size_t es = st_dtype_size(t->dtype);
    for (int k = 0; k < n; k++) {
        st_tensor *h = &o->t[o->n];
        *h = *t;
        memcpy(o->names[o->n], hf[k], HF_SAM3_NAME_MAX);
        h->name = o->names[o->n++];
        if (kind == HF_SAM3_QKV) {   /* rows k/3 .. (k+1)/3 */
            h->shape[0] = t->shape[0] / 3;
            h->numel /= 3;
            h->nbytes /= 3;
            h->data = (const uint8_t *)t->data + (size_t)k * h->nbytes;
        } else if (kind == HF_SAM3_POS_CLS) {   /* without the cls row */
            size_t row = (size_t)t->shape[2] * es;
            h->shape[1] = t->shape[1] - 1;
            h->numel -= t->shape[2];
            h->nbytes -= row;
            h->data = (const uint8_t *)t->data + row;
        } else if (kind == HF_SAM3_TRANSPOSE) {
            size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1];
            uint8_t *d = malloc(t->nbytes ? t->nbytes : 1);
            if (!d) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
            o->bufs[o->n_bufs++] = d;
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++)
                    memcpy(d + (c * rows + r) * es, (const uint8_t *)t->data + (r * cols + c) * es, es);
            h->shape[0] = t->shape[1];
            h->shape[1] = t->shape[0];
            h->data = d;
        }
    }
    return 0;
}

static int detect(const st_file *f, const sam3_config **cfg, samc_error *err) {
    int n = f->n_tensors, k = 0;
    const char **names = malloc((size_t)(n + 1) * sizeof *names);
    const int64_t **shapes = malloc((size_t)(n + 1) * sizeof *shapes);
    int *ndims = malloc((size_t)(n + 1) * sizeof *ndims);
    int rc = 0;
    char msg[SPEC_ERRMSG];
    if (!names || !shapes || !ndims) rc = samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", f->path);
    for (int i = 0; !rc && i < n; i++) {
        const st_tensor *t = &f->tensors[i];
        if (!strncmp(t->name, "tracker.", 8) || !strncmp(t->name, "detector.", 9)) continue;   /* video side */
        names[k] = t->name;
        shapes[k] = t->shape;
        ndims[k++] = t->ndim;
    }
    if (!rc && sam3_config_detect(names, shapes, ndims, k, cfg, msg) != 0)
        rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: not a samc SAM3 file: %s", f->path, msg);
    free(names);
    free(shapes);
    free(ndims);
    return rc;
}

int hf_sam3_export(const char *samc_path, const char *out_dir, samc_error *err) {
    st_file f;
    char msg[SAMC_ERRMSG], path[4096];
    if (st_open(samc_path, &f, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
    const sam3_config *cfg = NULL;
    int rc = detect(&f, &cfg, err);
    hf_out o = { 0 };
    size_t cap = 3 * (size_t)f.n_tensors + 1;
    if (!rc) {
        o.t = calloc(cap, sizeof *o.t);
        o.names = calloc(cap, sizeof *o.names);
        o.bufs = calloc(cap, sizeof *o.bufs);
        if (!o.t || !o.names || !o.bufs) rc = samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", samc_path);
    }
    for (int i = 0; !rc && i < f.n_tensors; i++) {
        const char *name = f.tensors[i].name;
        if (strncmp(name, "tracker.", 8) != 0 && strncmp(name, "detector.", 9) != 0)
            rc = export_one(&o, &f.tensors[i], samc_path, err);
    }
    if (!rc) {
        st_sort_by_name(o.t, o.n);
        st_meta meta[1] = { { "format", "pt" } };
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        if (st_write(path, o.t, o.n, meta, 1, msg) != 0) rc = samc_error_set(err, SAMC_ERR_IO, "%s", msg);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/config.json", out_dir);
        rc = hf_sam3_config_write(path, cfg, err);
    }
    for (int i = 0; i < o.n_bufs; i++) free(o.bufs[i]);
    free(o.bufs);
    free(o.names);
    free(o.t);
    st_close(&f);
    return rc;
}
