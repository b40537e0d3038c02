/* convert/weights_info.c: list a weight file's tensors and metadata as stored (`samc info`).
 *
 * samc_model_load() converts dtypes and drops what the image path does not use, so the
 * model cannot say what the file held; this reads the file itself through the loader.
 * samc_sam3_file_info_get describes a SAM3 file the same way (convert/sam3_convert.c
 * sorts its tensors). */
#include <stdio.h>
#include <string.h>

#include "loader/pt.h"
#include "loader/safetensors.h"
#include "convert/convert.h"
#include "convert/sam3_convert.h"
#include "convert/sam3_vocab.h"
#include "model/config/sam3_config.h"

static void report(const st_tensor *t, samc_tensor_fn on_tensor, void *ctx) {
    samc_tensor_desc d = { t->name, st_dtype_name(t->dtype), t->ndim, t->shape, t->numel };
    on_tensor(ctx, &d);
}

int samc_weights_describe(const char *path, samc_tensor_fn on_tensor, samc_meta_fn on_meta,
                          void *ctx, samc_error *err) {
    char msg[SAMC_ERRMSG];
    if (pt_is_zip_file(path)) {
        pt_checkpoint c;
        if (pt_load(path, &c, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
        for (int i = 0; on_tensor && i < c.n_tensors; i++) report(&c.tensors[i], on_tensor, ctx);
        for (int i = 0; on_tensor && i < c.n_skipped; i++) {   /* complex: listed, not loaded */
            const pt_skipped_tensor *s = &c.skipped[i];
            int64_t numel = 1;
            for (int d = 0; d < s->ndim; d++) numel *= s->shape[d];
            samc_tensor_desc d = { s->name, s->torch_dtype, s->ndim, s->shape, numel };
            on_tensor(ctx, &d);
        }
        if (on_meta) {
            on_meta(ctx, "format", "pt");
            on_meta(ctx, "dict_key", c.dict_key);
            on_meta(ctx, "sha256", c.sha256);
        }
        pt_free(&c);
        return 0;
    }
    st_file f;
    if (st_open(path, &f, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
    for (int i = 0; on_tensor && i < f.n_tensors; i++) report(&f.tensors[i], on_tensor, ctx);
    for (int i = 0; on_meta && i < f.n_meta; i++) on_meta(ctx, f.meta[i].key, f.meta[i].value);
    st_close(&f);
    return 0;
}

/* The metadata entries a SAM3 description needs. */
static void sam3_meta(const st_file *f, samc_sam3_file_info *info) {
    const char *merges = st_meta_get(f, SAM3_VOCAB_META_KEY);
    if (merges) info->vocab = sam3_vocab_check(merges, strlen(merges), info->vocab_sha256) ? 1 : -1;
    const char *points = st_meta_get(f, SAM3_META_POINTS);
    if (points && !strncmp(points, "unsupported", 11)) info->points = 0;
}

int samc_sam3_file_info_get(const char *path, samc_sam3_file_info *info, samc_error *err) {
    memset(info, 0, sizeof *info);
    char msg[SAMC_ERRMSG];
    pt_checkpoint c = { 0 };
    st_file f = { 0 };
    int pt = pt_is_zip_file(path);
    if (pt ? pt_load_ex(path, PT_SKIP_SHA256, &c, msg) : st_open(path, &f, msg))
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
    sam3_source src = { path, pt ? "pt" : "safetensors", pt ? c.tensors : f.tensors, pt ? c.n_tensors : f.n_tensors,
                        c.skipped, c.n_skipped, "", NULL };
    int rc = 0;
    if (sam3_layout_of(src.tensors, src.n, src.skipped, src.n_skipped) != SAM3_LAYOUT_NONE) {
        sam3_inspection in;
        rc = sam3_inspect(&src, &in, err);
        static const char *const layouts[] = { "", "official", "samc", "transformers" };
        info->is_sam3 = 1;
        snprintf(info->layout, sizeof info->layout, "%s", layouts[in.layout]);
        snprintf(info->config, sizeof info->config, "%s", in.config ? in.config : "");
        snprintf(info->detail, sizeof info->detail, "%s", in.detail);
        info->image_size = in.config ? sam3_config_get(in.config)->image_size : 0;
        info->n_image = in.n_image;
        info->n_video = in.n_video;
        info->n_params = in.n_params;
        info->points = in.layout != SAM3_LAYOUT_TRANSFORMERS;
        if (!pt) sam3_meta(&f, info);
    }
    if (pt) pt_free(&c);
    else st_close(&f);
    return rc;
}
