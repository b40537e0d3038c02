/* util/path_inside.c: a relative path resolved and checked to stay inside a folder (see
 * the header). Security code: samc serve has no other copy of this check. */
#include "util/path_inside.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static path_verdict verdict(path_verdict v, char *why, size_t ws, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static path_verdict verdict(path_verdict v, char *why, size_t ws, const char *fmt, ...) {
    if (why && ws) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, ws, fmt, ap);
        va_end(ap);
    }
    return v;
}

/* Whether the real path p is root_real or below it. A plain prefix test would take
 * "/data2/x" for inside "/data"; the character after the prefix must end a component. */
static int within(const char *root_real, const char *p, int allow_equal) {
    size_t n = strlen(root_real);
    if (n == 1) n = 0;                 /* root "/": every absolute path starts below it */
    if (strncmp(p, root_real, n) != 0) return 0;
    if (p[n] == '\0') return allow_equal;
    return p[n] == '/' && (p[n + 1] != '\0' || allow_equal);
}

static path_verdict errno_verdict(int e) { return e == ENOENT || e == ENOTDIR ? PATH_MISSING : PATH_BAD; }

/* The last component of joined does not exist: resolve its parent instead and append the
 * name, refusing a name that realpath could not follow (a dangling symlink would let a
 * later create land wherever it points). */
static path_verdict resolve_new(const char *root_real, char *joined, const char *rel, char *out, size_t os,
                                char *why, size_t ws) {
    size_t n = strlen(joined);
    while (n > 1 && joined[n - 1] == '/') joined[--n] = '\0';
    char *slash = strrchr(joined, '/');
    const char *name = slash + 1;      /* joined starts with root_real, so there is a '/' */
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return verdict(PATH_BAD, why, ws, "'%.200s': %s", rel, strerror(ENOENT));
    struct stat st;
    if (lstat(joined, &st) == 0)
        return verdict(PATH_BAD, why, ws, "'%.200s' is a link that leads nowhere", rel);
    *slash = '\0';
    char parent[PATH_MAX];
    if (!realpath(slash == joined ? "/" : joined, parent)) {
        int e = errno;
        return verdict(errno_verdict(e), why, ws, "parent folder of '%.200s': %s", rel, strerror(e));
    }
    if (!within(root_real, parent, 1)) return verdict(PATH_OUTSIDE, why, ws, "'%.200s' resolves outside '%s'", rel, root_real);
    if ((size_t)snprintf(out, os, "%s/%s", strcmp(parent, "/") ? parent : "", name) >= os)
        return verdict(PATH_BAD, why, ws, "'%.200s': path too long", rel);
    return PATH_INSIDE;
}

path_verdict path_resolve_inside(const char *root, const char *rel, int mode, char *out, size_t out_size, char *why,
                                 size_t why_size) {
    char root_real[PATH_MAX], joined[2 * PATH_MAX], real[PATH_MAX];
    if (out && out_size) out[0] = '\0';
    if (!out || out_size == 0 || !root) return verdict(PATH_BAD, why, why_size, "no folder or output buffer");
    if (!rel || !*rel) return verdict(PATH_BAD, why, why_size, "empty path");
    if (rel[0] == '/')
        return verdict(PATH_BAD, why, why_size, "'%.200s' is absolute: give a path relative to the folder", rel);
    if (!realpath(root, root_real)) {
        int e = errno;
        return verdict(errno_verdict(e), why, why_size, "folder '%.200s': %s", root, strerror(e));
    }
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", root_real, rel) >= sizeof joined)
        return verdict(PATH_BAD, why, why_size, "'%.200s': path too long", rel);
    path_verdict v = PATH_INSIDE;
    if (!realpath(joined, real)) {
        int e = errno;
        if (mode == PATH_MAY_BE_NEW && e == ENOENT) v = resolve_new(root_real, joined, rel, real, sizeof real, why, why_size);
        else v = verdict(errno_verdict(e), why, why_size, "'%.200s': %s", rel, strerror(e));
    } else if (!within(root_real, real, 0)) {
        v = verdict(PATH_OUTSIDE, why, why_size, "'%.200s' resolves outside '%s'", rel, root_real);
    }
    if (v != PATH_INSIDE) return v;
    if ((size_t)snprintf(out, out_size, "%s", real) >= out_size) {
        out[0] = '\0';
        return verdict(PATH_BAD, why, why_size, "'%.200s': resolved path too long", rel);
    }
    return PATH_INSIDE;
}
