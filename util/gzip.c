/* util/gzip.c: see gzip.h. */
#include "util/gzip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int fail(int *kind, int k, char *err, size_t errlen, const char *path, const char *why) {
    *kind = k;
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
}

int util_read_gz(const char *path, size_t max_bytes, char **out, size_t *len, int *kind, char *err, size_t errlen) {
    char why[200];
    *out = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(why, sizeof why, "cannot open: %s", errno ? strerror(errno) : "out of memory");
        return fail(kind, 1, err, errlen, path, why);
    }
    size_t cap = 1u << 20, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    for (;;) {
        if (!buf) { rc = fail(kind, 3, err, errlen, path, "out of memory"); break; }
        if (n == cap) {
            char *nb = cap >= max_bytes ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                snprintf(why, sizeof why, "more than %zu MB decompressed: not the expected file", max_bytes >> 20);
                rc = fail(kind, cap >= max_bytes ? 2 : 3, err, errlen, path, why);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n));
        int zerr = Z_OK;
        const char *msg = got <= 0 ? gzerror(f, &zerr) : NULL;
        if (got < 0 || (got == 0 && zerr != Z_OK)) {
            /* a stream cut short ends "early" and says so only here */
            snprintf(why, sizeof why, "damaged or truncated gzip data (%s)",
                     zerr == Z_ERRNO ? strerror(errno) : zerr == Z_BUF_ERROR ? "the file ends early" : msg);
            rc = fail(kind, zerr == Z_ERRNO ? 1 : 2, err, errlen, path, why);
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
