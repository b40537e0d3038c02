/* model/lowres_io.c: low-res predictor outputs to and from safetensors files.
 *
 * SAM2ImagePredictor.predict() returns low_res_masks that a later call may take back as
 * mask_input (the notebooks pass logits[argmax(scores)]). The CLI stores them with
 * --save-lowres and reads them with --mask-input; these two functions are that file
 * format, so tools never need the loader headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"
#include "model/samc.h"

static st_tensor f32_tensor(const char *name, const float *data, int ndim, const int64_t *shape) {
    st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.dtype = ST_F32;
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        t.numel *= shape[i];
    }
    t.data = data;
    t.nbytes = (size_t)t.numel * sizeof(float);
    return t;
}

int samc_masks_save_lowres(const samc_masks *m, const char *path, samc_error *err) {
    char msg[SAMC_ERRMSG];
    if (!m || !m->low_res || !m->iou || !m->object_score || m->batch <= 0 || m->n_masks <= 0 ||
        m->low_size <= 0) {
        snprintf(msg, sizeof msg, "%s: no prediction to save (batch %d, masks %d)", path,
                 m ? m->batch : 0, m ? m->n_masks : 0);
        return samc_error_set(err, SAMC_ERR_ARG, "%s", msg);
    }
    const int64_t lr_shape[4] = { m->batch, m->n_masks, m->low_size, m->low_size };
    const int64_t iou_shape[2] = { m->batch, m->n_masks };
    const int64_t obj_shape[2] = { m->batch, 1 };
    /* Sorted by name, as the Python safetensors library writes them. */
    st_tensor t[3] = {
        f32_tensor("iou_predictions", m->iou, 2, iou_shape),
        f32_tensor("low_res_masks", m->low_res, 4, lr_shape),
        f32_tensor("object_score_logits", m->object_score, 2, obj_shape),
    };
    char w[24], h[24];
    snprintf(w, sizeof w, "%d", m->width);
    snprintf(h, sizeof h, "%d", m->height);
    st_meta meta[3] = {
        { (char *)"format", (char *)"samc-lowres" },
        { (char *)"image_width", w },
        { (char *)"image_height", h },
    };
    if (st_write(path, t, 3, meta, 3, msg) != 0) return samc_error_set(err, SAMC_ERR_IO, "%s", msg);
    return 0;
}

/* Index of the best mask of batch item 0: argmax of iou_predictions[0, :], first on ties. */
static int best_mask_index(const st_file *f, const char *path, int n_masks, int *best, char *msg) {
    const st_tensor *iou = st_find(f, "iou_predictions");
    *best = 0;
    if (!iou) {
        if (n_masks == 1) return 0;
        snprintf(msg, SAMC_ERRMSG, "%s: %d masks but no iou_predictions to choose one", path, n_masks);
        return -1;
    }
    if (iou->numel < n_masks) {
        snprintf(msg, SAMC_ERRMSG, "%s: iou_predictions has %lld values, need at least %d",
                 path, (long long)iou->numel, n_masks);
        return -1;
    }
    float *v = malloc((size_t)iou->numel * sizeof *v);
    if (!v) {
        snprintf(msg, SAMC_ERRMSG, "%s: out of memory", path);
        return -1;
    }
    if (st_read_f32(iou, v, msg) != 0) {
        free(v);
        return -1;
    }
    for (int j = 1; j < n_masks; j++)
        if (v[j] > v[*best]) *best = j;
    free(v);
    return 0;
}

int samc_load_mask_input(const char *path, int low_size, float *out, samc_error *err) {
    char msg[SAMC_ERRMSG];
    st_file f;
    if (st_open(path, &f, msg) != 0) return samc_error_set(err, SAMC_ERR_FORMAT, "%s", msg);
    int rc = -1;
    samc_status status = SAMC_ERR_FORMAT;
    const st_tensor *lr = st_find(&f, "low_res_masks");
    if (!lr) {
        snprintf(msg, sizeof msg, "%s: no tensor 'low_res_masks' (expected a file written by "
                 "--save-lowres)", path);
        goto done;
    }
    int nd = lr->ndim;
    if (nd < 2 || nd > 4 || lr->shape[nd - 1] != low_size || lr->shape[nd - 2] != low_size) {
        char got[128] = "";
        for (int i = 0; i < nd && strlen(got) < 100; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                     (long long)lr->shape[i]);
        snprintf(msg, sizeof msg, "%s: low_res_masks has shape [%s], expected [B,M,%d,%d] for "
                 "this model", path, got, low_size, low_size);
        status = SAMC_ERR_ARG;
        goto done;
    }
    int n_masks = nd >= 3 ? (int)lr->shape[nd - 3] : 1;
    if (n_masks <= 0 || (nd == 4 && lr->shape[0] <= 0)) {
        snprintf(msg, sizeof msg, "%s: low_res_masks is empty", path);
        goto done;
    }
    int best = 0;
    if (best_mask_index(&f, path, n_masks, &best, msg) != 0) goto done;
    /* A view of the chosen [low_size, low_size] slice of batch item 0. */
    st_tensor slice = *lr;
    size_t plane = (size_t)low_size * (size_t)low_size;
    slice.ndim = 2;
    slice.numel = (int64_t)plane;
    slice.nbytes = plane * st_dtype_size(lr->dtype);
    slice.data = (const char *)lr->data + (size_t)best * slice.nbytes;
    if (st_read_f32(&slice, out, msg) != 0) goto done;
    rc = 0;
done:
    st_close(&f);
    return rc == 0 ? 0 : samc_error_set(err, status, "%s", msg);
}
