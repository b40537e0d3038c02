/* tests/test.h: the whole test framework, a few macros.
 *
 * Each tests/test_*.c is one program. CHECK() records a failure with file:line and
 * goes on; TEST_MAIN() runs the listed test functions and prints one verdict line
 * "N passed, N failed" that tests/run_tests.sh adds up. A test that needs hardware the
 * machine lacks (a GPU, a CPU feature) calls TEST_SKIP("why"). Golden data is never
 * optional: TEST_NEED_GOLDEN fails the test when it is missing, so acceptance checks
 * cannot vanish by skipping. */
#ifndef SAMC_TEST_H
#define SAMC_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_in_current = 0;
static int test_skipped_current = 0;
static int test_skipped_no_gpu = 0;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); test_failures_in_current++; } } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); test_failures_in_current++; } } while (0)
#define TEST_SKIP(...) do { fprintf(stderr, "  SKIP: "); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
    test_skipped_current = 1; return; } while (0)
/* A skip because no usable GPU was found. On a machine that has one (/dev/nvidia0, or
 * SAMC_EXPECT_GPU=1) it counts as a failure: a CUDA test that cannot reach the device
 * there is broken, not excused. */
#define TEST_SKIP_GPU(...) do { test_skipped_no_gpu++; TEST_SKIP(__VA_ARGS__); } while (0)

/* Fails the current test (and returns from it) when the golden file or folder `path`
 * is missing. */
#define TEST_NEED_GOLDEN(ok, path) do { if (!(ok)) { \
    fprintf(stderr, "  FAIL %s:%d: golden data missing: %s (set SAMC_GOLDEN to the golden folder, or put " \
            "shared/golden beside the checkout as ../shared/golden)\n", __FILE__, __LINE__, (path)); \
    test_failures_in_current++; return; } } while (0)

/* Root of the golden data: $SAMC_GOLDEN or ../shared/golden beside the checkout. */
static inline const char *test_golden_dir(void) {
    const char *g = getenv("SAMC_GOLDEN");
    return g ? g : "../shared/golden";
}

typedef void (*test_fn)(void);
typedef struct { const char *name; test_fn fn; } test_case;
#define TEST_CASE(f) { #f, f }

static inline int test_gpu_expected(void) {
    const char *e = getenv("SAMC_EXPECT_GPU");
    if (e && *e) return strcmp(e, "0") != 0;
    FILE *f = fopen("/dev/nvidia0", "r");
    if (f) fclose(f);
    return f != NULL;
}

/* Filters: the command-line arguments, or else SAMC_TEST_FILTER (comma-separated): a test
 * runs when its name contains one of them. Asking for tests that then all skip fails.
 * A test named *_ondemand_* (hours of plain loops) runs only when a filter names it. */
static inline int test_selected(const char *name, int argc, char **argv) {
    if (strstr(name, "_ondemand_")) {
        const char *f = getenv("SAMC_TEST_FILTER");
        int named = f && strstr(f, "ondemand");
        for (int i = 1; i < argc; i++) named |= strstr(argv[i], "ondemand") != NULL;
        if (!named) return 0;
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (strstr(name, argv[i])) return 1;
        return 0;
    }
    const char *f = getenv("SAMC_TEST_FILTER");
    if (!f || !*f) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", f);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
        if (*tok && strstr(name, tok)) return 1;
    return 0;
}

static inline int test_run_all(const char *prog, const test_case *cases, int n, int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    int filtered = argc > 1 || (getenv("SAMC_TEST_FILTER") && *getenv("SAMC_TEST_FILTER"));
    for (int i = 0; i < n; i++) {
        if (!test_selected(cases[i].name, argc, argv)) continue;
        test_failures_in_current = 0; test_skipped_current = 0;
        cases[i].fn();
        if (test_failures_in_current) { failed++; printf("NOT OK %s.%s\n", prog, cases[i].name); }
        else if (test_skipped_current) { skipped++; printf("SKIP   %s.%s\n", prog, cases[i].name); }
        else { passed++; printf("OK     %s.%s\n", prog, cases[i].name); }
        fflush(stdout);
    }
    if (test_skipped_no_gpu && test_gpu_expected()) {
        printf("NOT OK %s: %d test(s) skipped for lack of a GPU on a machine that has one\n", prog,
               test_skipped_no_gpu);
        failed++;
    }
    if (filtered && passed + failed == 0) {
        printf("NOT OK %s: the selected tests all skipped or none matched the filter\n", prog);
        failed++;
    }
    printf("%s: %d passed, %d failed, %d skipped\n", prog, passed, failed, skipped);
    return failed ? 1 : 0;
}
#define TEST_MAIN(...) int main(int argc, char **argv) { static const test_case cases[] = { __VA_ARGS__ }; \
    return test_run_all(__FILE__, cases, (int)(sizeof cases / sizeof cases[0]), argc, argv); }
/* The whole file at path as a NUL-terminated string (malloc'd), or NULL. The cast keeps this
 * header valid C++ too: the CUDA simulator compiles the tests as C++. */
static inline char *test_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? (char *)malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

#endif
