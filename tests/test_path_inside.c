/* tests/test_path_inside.c: util/path_inside.c, the check that keeps samc serve's jobs
 * inside --data-dir. Builds a small tree in a temporary folder:
 *
 *   T/data/            the folder (root)            T/data2/f.png   a sibling sharing the prefix
 *     file.png  sub/f.png                           T/outside/secret.png
 *     escape.png -> T/outside/secret.png            T/rootlink -> data
 *     outlink -> T/outside   uplink -> ..
 *     inlink -> sub          dangle -> T/outside/nothing
 *
 * and checks every way out it knows of is refused, and the ways that stay inside are
 * resolved to the right real path. */
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tests/test.h"
#include "util/path_inside.h"

static char T[PATH_MAX];        /* real path of the temporary folder */
static char DATA[PATH_MAX + 8];

static void mk_file(const char *fmt, ...) {
    char p[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    FILE *f = fopen(p, "w");
    if (f) { fputs("x", f); fclose(f); }
}

static void cleanup(void) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", T);
}

static int setup(void) {
    if (T[0]) return 0;
    char tmpl[] = "/tmp/samc_path_inside.XXXXXX";
    if (!mkdtemp(tmpl) || !realpath(tmpl, T)) return -1;
    atexit(cleanup);
    char p[PATH_MAX + 64], q[PATH_MAX + 64];
    const char *dirs[] = { "data", "data/sub", "data2", "outside" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", T, dirs[i]);
        if (mkdir(p, 0755) != 0) return -1;
    }
    snprintf(DATA, sizeof DATA, "%s/data", T);
    mk_file("%s/data/file.png", T);
    mk_file("%s/data/sub/f.png", T);
    mk_file("%s/data2/f.png", T);
    mk_file("%s/outside/secret.png", T);
    const char *links[][2] = { { "%s/outside/secret.png", "data/escape.png" }, { "%s/outside", "data/outlink" },
                               { "..", "data/uplink" }, { "sub", "data/inlink" },
                               { "%s/outside/nothing", "data/dangle" }, { "data", "rootlink" } };
    for (int i = 0; i < 6; i++) {
        snprintf(q, sizeof q, links[i][0], T);
        snprintf(p, sizeof p, "%s/%s", T, links[i][1]);
        if (symlink(q, p) != 0) return -1;
    }
    return 0;
}

/* rel resolved against root in mode: the verdict, and on PATH_INSIDE the path expected
 * (relative to T). */
static void expect(const char *root, const char *rel, int mode, path_verdict want, const char *want_path) {
    char out[PATH_MAX], why[512] = "", full[PATH_MAX + 64] = "";
    path_verdict v = path_resolve_inside(root, rel, mode, out, sizeof out, why, sizeof why);
    CHECKF(v == want, "'%s' (%s): verdict %d, expected %d (%s)", rel ? rel : "(null)",
           mode == PATH_MAY_BE_NEW ? "new" : "existing", v, want, why);
    if (want_path) snprintf(full, sizeof full, "%s/%s", T, want_path);
    if (v == PATH_INSIDE && want == PATH_INSIDE) CHECKF(!strcmp(out, full), "'%s': got %s, expected %s", rel, out, full);
    if (v != PATH_INSIDE) {
        CHECKF(out[0] == '\0', "'%s': refused but out is '%s'", rel, out);
        CHECKF(why[0] != '\0', "'%s': refused without a reason", rel);
    }
}

static void test_inside(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    expect(DATA, "file.png", PATH_EXISTING, PATH_INSIDE, "data/file.png");
    expect(DATA, "sub/f.png", PATH_EXISTING, PATH_INSIDE, "data/sub/f.png");
    expect(DATA, "sub//f.png", PATH_EXISTING, PATH_INSIDE, "data/sub/f.png");
    expect(DATA, "./sub/./f.png", PATH_EXISTING, PATH_INSIDE, "data/sub/f.png");
    expect(DATA, "sub/../file.png", PATH_EXISTING, PATH_INSIDE, "data/file.png");   /* ".." that stays inside */
    expect(DATA, "inlink/f.png", PATH_EXISTING, PATH_INSIDE, "data/sub/f.png");     /* a link within the folder */
    expect(DATA, "sub/", PATH_EXISTING, PATH_INSIDE, "data/sub");
    expect(DATA, "sub//", PATH_MAY_BE_NEW, PATH_INSIDE, "data/sub");
}

static void test_dotdot(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    expect(DATA, "..", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "../outside/secret.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "sub/../../outside/secret.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "../outside/new", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
    expect(DATA, "..", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
    expect(DATA, "sub/..", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);   /* the folder itself */
    expect(DATA, "new/..", PATH_MAY_BE_NEW, PATH_BAD, NULL);       /* a missing name then ".." */
    /* a sibling whose name starts with the folder's: a prefix test would let it through */
    expect(DATA, "../data2/f.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "../data2/new", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
}

static void test_symlinks_out(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    expect(DATA, "escape.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "outlink/secret.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "outlink", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
    expect(DATA, "outlink/", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
    expect(DATA, "outlink/x", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);      /* new name under a link out */
    expect(DATA, "uplink/outside/secret.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(DATA, "uplink/data/file.png", PATH_EXISTING, PATH_INSIDE, "data/file.png");  /* out and back in */
    /* a dangling link: creating through it would land wherever it points */
    expect(DATA, "dangle", PATH_MAY_BE_NEW, PATH_BAD, NULL);
    expect(DATA, "dangle", PATH_EXISTING, PATH_MISSING, NULL);
}

static void test_absolute_and_empty(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    char abs_inside[PATH_MAX + 64];
    snprintf(abs_inside, sizeof abs_inside, "%s/file.png", DATA);
    expect(DATA, "/etc/passwd", PATH_EXISTING, PATH_BAD, NULL);
    expect(DATA, abs_inside, PATH_EXISTING, PATH_BAD, NULL);     /* even one that names a file inside */
    expect(DATA, "/", PATH_MAY_BE_NEW, PATH_BAD, NULL);
    expect(DATA, "//etc", PATH_MAY_BE_NEW, PATH_BAD, NULL);
    expect(DATA, "", PATH_EXISTING, PATH_BAD, NULL);
    expect(DATA, "", PATH_MAY_BE_NEW, PATH_BAD, NULL);
    expect(DATA, NULL, PATH_EXISTING, PATH_BAD, NULL);
    expect(DATA, ".", PATH_EXISTING, PATH_OUTSIDE, NULL);        /* the folder itself is not inside */
    expect(DATA, "./", PATH_MAY_BE_NEW, PATH_OUTSIDE, NULL);
}

static void test_new_output(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    expect(DATA, "out", PATH_MAY_BE_NEW, PATH_INSIDE, "data/out");
    expect(DATA, "out/", PATH_MAY_BE_NEW, PATH_INSIDE, "data/out");
    expect(DATA, "sub//out//", PATH_MAY_BE_NEW, PATH_INSIDE, "data/sub/out");
    expect(DATA, "inlink/out", PATH_MAY_BE_NEW, PATH_INSIDE, "data/sub/out");
    expect(DATA, "out", PATH_EXISTING, PATH_MISSING, NULL);          /* must exist when asked to */
    expect(DATA, "missing/out", PATH_MAY_BE_NEW, PATH_MISSING, NULL); /* only the last part may be new */
    expect(DATA, "file.png/out", PATH_MAY_BE_NEW, PATH_MISSING, NULL);
    expect(DATA, "file.png/", PATH_EXISTING, PATH_MISSING, NULL);
}

static void test_root_through_symlink(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    char root[PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/rootlink", T);
    expect(root, "file.png", PATH_EXISTING, PATH_INSIDE, "data/file.png");
    expect(root, "out", PATH_MAY_BE_NEW, PATH_INSIDE, "data/out");
    expect(root, "escape.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(root, "../outside/secret.png", PATH_EXISTING, PATH_OUTSIDE, NULL);
    expect(root, "../rootlink/file.png", PATH_EXISTING, PATH_INSIDE, "data/file.png");
    snprintf(root, sizeof root, "%s/rootlink/", T);     /* a trailing slash on the folder */
    expect(root, "sub/f.png", PATH_EXISTING, PATH_INSIDE, "data/sub/f.png");
    snprintf(root, sizeof root, "%s/no_such_folder", T);
    expect(root, "file.png", PATH_EXISTING, PATH_MISSING, NULL);
}

static void test_root_is_slash(void) {
    char out[PATH_MAX], why[256];
    /* every absolute path is below "/", but "/" itself is not inside it */
    CHECK(path_resolve_inside("/", "tmp", PATH_EXISTING, out, sizeof out, why, sizeof why) == PATH_INSIDE);
    CHECK(path_resolve_inside("/", "..", PATH_EXISTING, out, sizeof out, why, sizeof why) == PATH_OUTSIDE);
    CHECK(path_resolve_inside("/", "samc_no_such_dir_", PATH_MAY_BE_NEW, out, sizeof out, why, sizeof why) ==
          PATH_INSIDE && !strcmp(out, "/samc_no_such_dir_"));
}

static void test_small_buffers(void) {
    if (setup() != 0) TEST_SKIP("cannot build the tree in /tmp");
    char out[8], why[16];
    /* a result that does not fit is refused, never cut short into another path */
    CHECK(path_resolve_inside(DATA, "file.png", PATH_EXISTING, out, sizeof out, why, sizeof why) == PATH_BAD);
    CHECK(out[0] == '\0');
    char big[PATH_MAX];
    CHECK(path_resolve_inside(DATA, "file.png", PATH_EXISTING, big, sizeof big, NULL, 0) == PATH_INSIDE);
}

TEST_MAIN(TEST_CASE(test_inside), TEST_CASE(test_dotdot), TEST_CASE(test_symlinks_out),
          TEST_CASE(test_absolute_and_empty), TEST_CASE(test_new_output), TEST_CASE(test_root_through_symlink),
          TEST_CASE(test_root_is_slash), TEST_CASE(test_small_buffers))
