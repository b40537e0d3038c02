/* util/path_inside.h: the one check that a path given relative to a folder stays inside
 * that folder (samc serve's --data-dir: job images and output folders).
 *
 * A path is resolved with realpath(3), so "..", "." and "//" components and every
 * symlink on the way (inside the folder or the folder itself) are followed before the
 * result is compared with the folder's own real path, component by component: a sibling
 * "/data2" is not inside "/data". The folder itself is not "inside" it: a job may not
 * write into the folder's top level or read it as a file. Nothing is created or opened. */
#ifndef SAMC_PATH_INSIDE_H
#define SAMC_PATH_INSIDE_H
#include <stddef.h>

typedef enum {
    PATH_INSIDE = 0,     /* resolved, strictly inside the folder */
    PATH_MISSING,        /* a component does not exist, or is not a folder where one is needed */
    PATH_BAD,            /* empty, absolute, too long, a link that leads nowhere, or unreadable */
    PATH_OUTSIDE,        /* resolves to the folder itself or outside it */
} path_verdict;

enum {
    PATH_EXISTING = 0,   /* rel must exist (an input file) */
    PATH_MAY_BE_NEW = 1, /* the last component may be missing: its parent must exist (an output folder to create) */
};

/* Resolves rel (relative to root; trailing slashes allowed) and checks it lies inside
 * root. On PATH_INSIDE, out holds the absolute resolved path (for a missing last
 * component: the real parent plus that name). Otherwise why says why in one line naming
 * rel; out is then "". root may be given by any path, symlinks included. */
path_verdict path_resolve_inside(const char *root, const char *rel, int mode, char *out, size_t out_size, char *why,
                                 size_t why_size);

#endif
