/* kernels/cuda_stub.c: the CUDA entry points as the rest of samc sees them.
 *
 * The CUDA backend is a separate shared library that is loaded with dlopen on the first
 * call, i.e. only when a command asks for the GPU: a CPU run never maps cuBLAS / cuDNN
 * (whose start-up relocations alone cost ~215 MB of resident memory), and a binary copied
 * to a machine without the CUDA libraries still runs on the CPU and reports what is
 * missing.
 *
 * Where it is looked for, in order: $SAMC_CUDA_LIB (a file), the executable's folder,
 * its parent (build/tests/.. = build/), <executable folder>/build (./samc in the
 * checkout), then the dynamic loader's own search (LD_LIBRARY_PATH, ...). A build without
 * nvcc has no libsamc_cuda.so of its own and looks only at $SAMC_CUDA_LIB: that is how the
 * CUDA simulator (build/sim/libsamc_cuda_sim.so, tests/cuda_sim/) drives the CUDA code
 * path of an unchanged samc, its tests and its CLI on a machine without CUDA. */
#include "kernels/ops.h"
#include "kernels/cuda_stub.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CUDA_LIB_NAME "libsamc_cuda.so"
#define NO_CUDA_MSG "this build has no CUDA backend (nvcc was not found at build time)"

typedef samc_ops *(*create_fn)(int device, char *err);
typedef void (*destroy_fn)(samc_ops *o);
typedef int (*info_fn)(char *buf, size_t n);

static struct {
    pthread_once_t once;
    create_fn create;
    destroy_fn destroy;
    info_fn info;
    void *handle;
    char path[PATH_MAX];      /* the file loaded */
    char why[512];            /* why it could not be loaded ("" when loaded) */
} g_cuda = { .once = PTHREAD_ONCE_INIT };

static void *try_open(const char *path, char *tried, size_t tn) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) snprintf(g_cuda.path, sizeof g_cuda.path, "%s", path);
    if (!h) {
        size_t len = strlen(tried);
        const char *e = dlerror();
        snprintf(tried + len, tn - len, "%s%.900s (%.400s)", len ? "; " : "", path, e ? e : "not loadable");
    }
    return h;
}

#ifdef SAMC_HAVE_CUDA
/* The folders next to the executable (see the top of the file). */
static void *try_beside_exe(char *tried, size_t tn) {
    char path[PATH_MAX + 64], exe[PATH_MAX];
    void *h = NULL;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    static const char *const rel[] = { "/" CUDA_LIB_NAME, "/../" CUDA_LIB_NAME, "/build/" CUDA_LIB_NAME };
    for (size_t i = 0; i < sizeof rel / sizeof rel[0] && !h; i++) {
        snprintf(path, sizeof path, "%s%s", exe, rel[i]);
        if (access(path, F_OK) == 0) h = try_open(path, tried, tn);
    }
    return h;
}
#endif

static void load_cuda_lib(void) {
    char tried[2048] = "";
    void *h = NULL;
    const char *env = getenv("SAMC_CUDA_LIB");
    if (env && *env) h = try_open(env, tried, sizeof tried);
#ifdef SAMC_HAVE_CUDA
    if (!h) h = try_beside_exe(tried, sizeof tried);
    if (!h) h = try_open(CUDA_LIB_NAME, tried, sizeof tried);
#else
    if (!h && !tried[0]) {
        snprintf(g_cuda.why, sizeof g_cuda.why, NO_CUDA_MSG);
        return;
    }
#endif
    if (!h) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "the CUDA backend library could not be loaded: %.440s", tried);
        return;
    }
    g_cuda.create = (create_fn)dlsym(h, "samc_ops_cuda_create");
    g_cuda.destroy = (destroy_fn)dlsym(h, "samc_ops_cuda_destroy");
    g_cuda.info = (info_fn)dlsym(h, "samc_cuda_device_info");
    if (!g_cuda.create || !g_cuda.destroy || !g_cuda.info) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "%.400s lacks the samc CUDA entry points (a different samc version?)",
                 g_cuda.path);
        g_cuda.create = NULL;
        g_cuda.destroy = NULL;
        g_cuda.info = NULL;
        dlclose(h);
        return;
    }
    g_cuda.handle = h; /* a loaded library stays loaded for the life of the process */
}

static int cuda_lib_ready(void) {
    pthread_once(&g_cuda.once, load_cuda_lib);
    return g_cuda.create != NULL;
}

samc_ops *samc_ops_cuda_create(int device, char *err) {
    if (!cuda_lib_ready()) {
        snprintf(err, 512, "%s", g_cuda.why);
        return NULL;
    }
    return g_cuda.create(device, err);
}

void samc_ops_cuda_destroy(samc_ops *o) {
    if (o && cuda_lib_ready()) g_cuda.destroy(o);
}

int samc_cuda_device_info(char *buf, size_t n) {
    if (!cuda_lib_ready()) {
        if (buf && n) snprintf(buf, n, "%s", g_cuda.why);
        return -1;
    }
    return g_cuda.info(buf, n);
}

void *samc_cuda_symbol(const char *name) {
    if (!cuda_lib_ready() || !name) return NULL;
    return dlsym(g_cuda.handle, name);
}
