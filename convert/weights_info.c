/* convert/weights_info.c: list a weight file's tensors and metadata as stored (`samc info`).
 *
 * samc_model_load() converts dtypes and drops what the image path does not use, so the
 * model cannot say what the file held; this reads the file itself through the loader. */
#include <stdio.h>
#include <string.h>

#include "loader/pt.h"
#include "loader/safetensors.h"
#include "convert/convert.h"

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
