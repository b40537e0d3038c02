/* convert/synth.c: samc-synth-v1 and the synthetic checkpoint writer. See synth.h. */
#include "convert/synth.h"

#include "convert/convert.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"
#include "model/config/sam2_config.h"
#include "model/config/sam3_config.h"

/* splitmix64 finaliser of h + (i+1)*golden, top 24 bits mapped exactly to [-1, 1). */
static double synth_u(uint64_t h, uint64_t i) {
    uint64_t z = h + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

void synth_fill(const char *name, int ndim, const int64_t *shape, float *out) {
    uint64_t h = spec_fnv1a64(name);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    if (ndim >= 2) {
        /* fan-in scaling; the formula divides by the square root (not a reciprocal
         * multiply) so the rounding matches the generator bit for bit. */
        double fan = sqrt((double)(numel / shape[0]));
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(synth_u(h, (uint64_t)i) / fan);
    } else if (ndim == 1 && ends_with(name, ".weight")) {
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(1.0 + 0.1 * synth_u(h, (uint64_t)i));
    } else {
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(0.02 * synth_u(h, (uint64_t)i));
    }
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const spec_entry *)a)->name, ((const spec_entry *)b)->name);
}

/* Writes the spec's tensors, filled by the formula, sorted by name as the Python
 * safetensors writer orders same-dtype tensors. */
static int write_spec(spec_entry *e, int n, const char *path, const st_meta *meta, int n_meta, samc_error *err) {
    char emsg[SAMC_ERRMSG];
    qsort(e, (size_t)n, sizeof *e, cmp_entry_name);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += e[i].numel;
    float *buf = malloc((size_t)total * sizeof *buf + 1);
    st_tensor *t = calloc(n > 0 ? (size_t)n : 1u, sizeof *t);
    if (!buf || !t) {
        free(buf);
        free(t);
        return samc_error_set(err, SAMC_ERR_NOMEM, "synth: %s: out of memory for %lld values", path, (long long)total);
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        synth_fill(e[i].name, e[i].ndim, e[i].shape, buf + off);
        t[i].name = e[i].name;
        t[i].dtype = ST_F32;
        t[i].ndim = e[i].ndim;
        memcpy(t[i].shape, e[i].shape, sizeof t[i].shape);
        t[i].numel = e[i].numel;
        t[i].data = buf + off;
        t[i].nbytes = (size_t)e[i].numel * sizeof(float);
        off += e[i].numel;
    }
    int rc = st_write(path, t, n, meta, n_meta, emsg);
    free(buf);
    free(t);
    return rc ? samc_error_set(err, SAMC_ERR_IO, "%s", emsg) : 0;
}

/* Drops the entries a weight file does not hold (SAM3's RoPE tables, computed at load). */
static int keep_stored(spec_entry *e, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (sam3_config_is_stored(e[i].name)) e[k++] = e[i];
    return k;
}

/* The F32 safetensors file has __metadata__ {"format": "pt", "formula": "samc-synth-v1",
 * "config": NAME, "image_size": "S"}. NAME is a SAM2.1 config or a SAM3 one. */
int samc_synth_write(const char *config_name, const char *path, samc_error *err) {
    const sam2_config *c2 = sam2_config_get(config_name);
    const sam3_config *c3 = sam3_config_get(config_name);
    if (!c2 && !c3)
        return samc_error_set(err, SAMC_ERR_ARG,
                              "synth: unknown config '%.100s' (micro, tiny, small, base_plus, large, sam3, sam3_micro)",
                              config_name ? config_name : "(null)");
    if (!path || !*path) return samc_error_set(err, SAMC_ERR_ARG, "synth: no output path");
    spec_entry *e;
    int n;
    char emsg[SPEC_ERRMSG];
    if (c2 ? sam2_config_spec(c2, &e, &n, emsg) : sam3_config_spec(c3, &e, &n, emsg))
        return samc_error_set(err, SAMC_ERR_NOMEM, "synth: %s", emsg);
    if (c3) n = keep_stored(e, n);
    char size_str[16];
    snprintf(size_str, sizeof size_str, "%d", c2 ? c2->image_size : c3->image_size);
    const st_meta meta[] = {
        {"format", "pt"}, {"formula", "samc-synth-v1"}, {"config", (char *)(c2 ? c2->name : c3->name)},
        {"image_size", size_str},
    };
    int rc = write_spec(e, n, path, meta, 4, err);
    spec_free(e);
    return rc;
}
