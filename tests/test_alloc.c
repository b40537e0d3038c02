/* tests/test_alloc.c: nothing is allocated per image or per call inside a forward.
 *
 * The C library's allocation entry points are replaced by counting wrappers (calling
 * glibc's __libc_* implementations; under AddressSanitizer, the sanitizer's allocation
 * hook), so every malloc of the process is seen, the thread pool's and the backends'
 * included. After the first encode of a model, 49 more encodes
 * of images of other sizes (from 1x1 to 4000x3000) and a loop of predictions must not
 * allocate at all: the arena, the resize buffers and the host staging buffers were
 * planned at load, and samc_masks grows only to the largest request it has seen. */
#include <stdint.h>
#include <unistd.h>

#include "convert/convert.h"
#include "model/samc.h"
#include "tests/test.h"

static volatile int counting;
static volatile long n_allocs;

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer the allocator cannot be replaced (ASan owns malloc and checks its
 * own thread state first), so the count comes from the sanitizer's allocation hook, which
 * sees every malloc / calloc / realloc / aligned allocation of the process. */
/* Declared here: GCC's headers lack sanitizer/allocator_interface.h; libasan exports it. */
int __sanitizer_install_malloc_and_free_hooks(void (*on_alloc)(const volatile void *, size_t),
                                              void (*on_free)(const volatile void *));

static void count_alloc(const volatile void *p, size_t n) {
    (void)p, (void)n;
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
}
static void ignore_free(const volatile void *p) { (void)p; }
__attribute__((constructor)) static void install_hooks(void) {
    __sanitizer_install_malloc_and_free_hooks(count_alloc, ignore_free);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    *out = __libc_memalign(al, n);
    return *out ? 0 : 12;
}
#endif

static char model_path[64];

/* A deterministic image of w x h RGB pixels. */
static uint8_t *image(int w, int h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (size_t i = 0; rgb && i < (size_t)w * h * 3; i++) rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    return rgb;
}

static void encode_many(samc_backend backend) {
    static const int sizes[][2] = { { 320, 240 }, { 1, 1 }, { 4000, 3000 }, { 256, 256 }, { 999, 17 },
                                    { 17, 999 }, { 640, 480 }, { 255, 257 } };
    samc_error err = { 0 };
    samc_options opt = { .backend = backend, .n_threads = 2 };
    samc_model *m = samc_model_load(model_path, &opt, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    samc_image *img = samc_image_new(m, &err);
    uint8_t *rgb[8];
    for (int i = 0; i < 8; i++) rgb[i] = image(sizes[i][0], sizes[i][1]);
    CHECK(img != NULL);
    int rc = img ? samc_image_encode(m, img, rgb[0], sizes[0][0], sizes[0][1], &err) : -1;
    CHECKF(rc == 0, "%s", err.msg);
    float pt[2] = { 100, 100 };
    int lab = 1;
    samc_prompt p = { .points = pt, .labels = &lab, .n_points = 1 };
    samc_predict_options po = { .multimask = 1, .want_masks = 1 };
    samc_masks out = { 0 };
    CHECK(rc == 0 && samc_predict(m, img, &p, 1, &po, &out, &err) == 0);
    n_allocs = 0;
    counting = 1;
    for (int i = 1; rc == 0 && i < 50; i++) {
        int k = i % 8;
        rc = samc_image_encode(m, img, rgb[k], sizes[k][0], sizes[k][1], &err);
        if (rc == 0 && k == 0) rc = samc_predict(m, img, &p, 1, &po, &out, &err);
    }
    counting = 0;
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(n_allocs == 0, "%ld allocations in 49 encodes (and predictions) after the first", n_allocs);
    printf("  %s: %ld allocations in 49 encodes of 8 image sizes and 6 predictions after the first\n",
           backend == SAMC_BACKEND_CPU_REF ? "cpu_ref" : "cpu_fast", n_allocs);
    samc_masks_free(&out);
    for (int i = 0; i < 8; i++) free(rgb[i]);
    samc_image_free(img);
    samc_model_free(m);
}

static void test_no_alloc_fast(void) { encode_many(SAMC_BACKEND_CPU_FAST); }
static void test_no_alloc_reference(void) { encode_many(SAMC_BACKEND_CPU_REF); }

/* The wrappers themselves count: a sanity check that the test can fail. */
static void test_counter_sees_malloc(void) {
    n_allocs = 0;
    counting = 1;
    void *volatile p = malloc(16);
    counting = 0;
    free(p);
    CHECK(n_allocs == 1);
}

static void setup(void) {
    samc_error err = { 0 };
    snprintf(model_path, sizeof model_path, "/tmp/samc_test_alloc_%d.safetensors", (int)getpid());
    if (samc_synth_write("micro", model_path, &err)) fprintf(stderr, "synth: %s\n", err.msg);
}

static void test_setup(void) { setup(); }
static void test_cleanup(void) { unlink(model_path); }

TEST_MAIN(TEST_CASE(test_counter_sees_malloc), TEST_CASE(test_setup), TEST_CASE(test_no_alloc_fast),
          TEST_CASE(test_no_alloc_reference), TEST_CASE(test_cleanup))
