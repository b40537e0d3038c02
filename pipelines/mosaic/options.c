/* pipelines/mosaic/options.c: the settings of a mosaic run (options.h). */
#include "pipelines/mosaic/options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mosaic_options_default(mosaic_options *o) {
    memset(o, 0, sizeof *o);
    o->tile_size = 1000;
    o->padding = 50;
    mosaic_multipass_options_default(&o->mp);
    o->merge = MOSAIC_MERGE_BEST_MATCH;
    o->min_contact = 5;
    o->merge_enclosed_max_area = 500;
    o->save_labels = 1;
    o->save_shapefile = 1;
    o->save_geopackage = 0;
    o->save_stats = 1;
    o->simplify_tolerance = 1.0;
    o->score_threshold = 0.5;
}

int mosaic_options_add_class(mosaic_options *o, const char *text, char *why, size_t ws) {
    size_t used = 0, n = text ? strlen(text) : 0;
    for (int i = 0; i < o->n_classes; i++) {
        const char *c = o->classes + used;
        if (!strcmp(c, text ? text : "")) {
            if (why && ws) snprintf(why, ws, "'%.80s' is given twice", text);
            return -1;
        }
        used += strlen(c) + 1;
    }
    if (n == 0 || o->n_classes >= MOSAIC_MAX_CLASSES || used + n + 1 > sizeof o->classes) {
        if (why && ws)
            snprintf(why, ws, n == 0 ? "empty class text" : "more than %d classes or %d bytes of class texts",
                     MOSAIC_MAX_CLASSES, (int)sizeof o->classes);
        return -1;
    }
    memcpy(o->classes + used, text, n + 1);
    o->n_classes++;
    return 0;
}

const char *mosaic_class_name(const mosaic_options *o, int i) {
    if (i < 0 || i >= o->n_classes) return NULL;
    const char *c = o->classes;
    while (i-- > 0) c += strlen(c) + 1;
    return c;
}

int mosaic_options_check(const mosaic_options *o, samc_error *err) {
    if (o->tile_size < 16 || o->tile_size > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --tile-size %d is not in [16, 65536]", o->tile_size);
    if (o->padding < 0 || o->padding > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --padding %d is not in [0, 65536]", o->padding);
    if (o->min_contact < 1)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --min-contact %d must be >= 1", o->min_contact);
    if (o->merge_enclosed_max_area < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --merge-enclosed-max-area %d must be >= 0",
                     o->merge_enclosed_max_area);
    if (!(o->simplify_tolerance >= 0) || !isfinite(o->simplify_tolerance))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --simplify-tolerance %g must be a number >= 0",
                     o->simplify_tolerance);
    if (o->has_scale && !(o->scale[1] > o->scale[0]))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --scale %g,%g: max must be greater than min", o->scale[0],
                     o->scale[1]);
    for (int i = 0; o->has_bands && i < 3; i++)
        if (o->bands[i] < 1) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --bands: band %d is not >= 1", o->bands[i]);
    if (!(o->score_threshold >= -1 && o->score_threshold <= 1))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --threshold %g is not in [-1, 1]", o->score_threshold);
    if (!o->save_labels && !o->save_shapefile && !o->save_geopackage && !o->save_stats)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: every output is switched off: nothing to write");
    return mosaic_multipass_options_check(&o->mp, err);
}

int mosaic_shard_parse(const char *s, mosaic_shard *out, char *why, size_t ws) {
    char *end = NULL;
    errno = 0;
    long k = s && *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : -1;
    long n = -1;
    if (k >= 0 && !errno && end && *end == '/' && end[1] >= '0' && end[1] <= '9') {
        const char *q = end + 1;
        n = strtol(q, &end, 10);
        if (errno || *end) n = -1;
    }
    if (k < 0 || n < 1 || n > 100000 || k >= n) {
        if (why && ws) snprintf(why, ws, "'%s' is not K/N with 0 <= K < N <= 100000 (e.g. 0/4)", s ? s : "");
        return -1;
    }
    out->index = (int)k;
    out->count = (int)n;
    return 0;
}
