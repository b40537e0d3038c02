/* tests/cuda_sim/runtime.cpp: the CUDA runtime API of the simulated device: its
 * properties, memory, errors, streams, events, stream capture and graphs, and the checks
 * of a launch's configuration.
 *
 * Everything runs synchronously on the calling host thread, in stream order: an operation
 * on a stream has finished when its call returns (unless the stream is being captured, in
 * which case it is recorded and runs when the graph is launched). Device memory is host
 * memory laid out so that mistakes show: every cudaMalloc block ends at a PROT_NONE page
 * (the 0..255 bytes between its size and the 256-byte-rounded end hold a canary checked
 * after each launch), it starts filled with a NaN pattern instead of zeros, and a freed
 * block is unmapped. Copies and memsets check that their device side is inside one live
 * block. Errors follow CUDA's two kinds: a bad call returns an error that the next
 * cudaGetLastError also returns and clears; a fault while running (an illegal address, a
 * trap) is sticky and every later call returns it. The messages behind the codes say what
 * went wrong, where (cudaGetErrorString returns them). */
#include "tests/cuda_sim/sim.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <map>
#include <set>
#include <vector>

struct CUstream_st {
    unsigned flags;
    bool capturing, invalidated;
    cudaStreamCaptureMode mode;
    cudaGraph_t graph;
};
struct CUevent_st { unsigned flags; bool recorded; double t_ms; };
struct CUgraph_st { std::vector<std::function<void()>> nodes; };
struct CUgraphExec_st { std::vector<std::function<void()>> nodes; };

namespace cudasim {

/* ---- settings ---------------------------------------------------------------------------- */

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    return *end ? dflt : x;
}

const settings &config(void) {
    static settings s;
    static std::once_flag once;
    std::call_once(once, [] {
        s.devices = (int)env_long("SAMC_CUDA_SIM_DEVICES", 1);
        s.cc = (int)env_long("SAMC_CUDA_SIM_SM", 90);
        s.sms = (int)env_long("SAMC_CUDA_SIM_SMS", 4);
        /* the opt-in shared memory per block of H100 / A100 / T4 */
        long optin = s.cc >= 90 ? 227 * 1024 : s.cc >= 80 ? 163 * 1024 : s.cc >= 75 ? 64 * 1024 : 48 * 1024;
        s.smem_optin = (size_t)env_long("SAMC_CUDA_SIM_SMEM_OPTIN", optin);
        s.mem_cap = (size_t)env_long("SAMC_CUDA_SIM_MEM_MB", 8192) << 20;
        s.seed = (uint64_t)env_long("SAMC_CUDA_SIM_SEED", 1);
        s.lt_no_algo = (int)env_long("SAMC_CUDA_SIM_LT_NO_ALGO", 0);
    });
    return s;
}

std::recursive_mutex &lock(void) {
    static std::recursive_mutex m;
    return m;
}
#define LOCK std::lock_guard<std::recursive_mutex> lock_guard_(lock())

/* ---- errors ---------------------------------------------------------------------------------- */

static cudaError_t g_last = cudaSuccess, g_sticky = cudaSuccess;
static char g_last_msg[640], g_sticky_msg[640];

static const char *plain_error_string(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "unknown error";
    }
}

static const char *plain_error_name(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    default: return "cudaErrorUnknown";
    }
}

static void vformat(char *buf, size_t n, cudaError_t e, const char *fmt, va_list ap) {
    int k = snprintf(buf, n, "%s (simulator: ", plain_error_string(e));
    if (k < 0 || (size_t)k >= n) return;
    vsnprintf(buf + k, n - (size_t)k, fmt, ap);
    size_t len = strlen(buf);
    if (len + 2 <= n) memcpy(buf + len, ")", 2);
}

cudaError_t set_error(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vformat(g_last_msg, sizeof g_last_msg, e, fmt, ap);
    va_end(ap);
    g_last = e;
    return e;
}

void set_sticky(cudaError_t e, const char *fmt, ...) {
    if (g_sticky != cudaSuccess) return; /* the first fault is the one to report */
    va_list ap;
    va_start(ap, fmt);
    vformat(g_sticky_msg, sizeof g_sticky_msg, e, fmt, ap);
    va_end(ap);
    g_sticky = e;
}

cudaError_t sticky(void) { return g_sticky; }

/* ---- device memory ------------------------------------------------------------------------- */

struct dev_block { char *base, *map; size_t bytes, need, map_len; };
static std::map<uintptr_t, dev_block> g_blocks; /* by base address */
static std::vector<dev_block> g_freed;          /* the last few freed, for messages */
static size_t g_used;

#define CANARY 0xcd

static const dev_block *block_at(const void *p) {
    auto it = g_blocks.upper_bound((uintptr_t)p);
    if (it == g_blocks.begin()) return NULL;
    --it;
    const dev_block &b = it->second;
    return (const char *)p >= b.map && (const char *)p < b.map + b.map_len ? &b : NULL;
}

int device_range(const void *p, size_t bytes, char *why, size_t why_len) {
    const dev_block *b = block_at(p);
    const char *c = (const char *)p;
    if (b && c >= b->base && (size_t)(c - b->base) <= b->bytes && bytes <= b->bytes - (size_t)(c - b->base))
        return 0;
    if (!why) return -1;
    if (b && c >= b->base)
        snprintf(why, why_len, "%zu bytes at offset %zu of a %zu-byte cudaMalloc block run past its end", bytes,
                 (size_t)(c - b->base), b->bytes);
    else
        describe_device_address(p, why, why_len);
    return -1;
}

void describe_device_address(const void *a, char *buf, size_t n) {
    const char *c = (const char *)a;
    const dev_block *b = block_at(a);
    if (b && c >= b->base + b->bytes) {
        snprintf(buf, n, "%zu bytes past the end of a %zu-byte cudaMalloc block at %p", (size_t)(c - b->base - b->bytes),
                 b->bytes, (void *)b->base);
        return;
    }
    if (b) {
        snprintf(buf, n, "offset %zu of a %zu-byte cudaMalloc block at %p", (size_t)(c - b->base), b->bytes,
                 (void *)b->base);
        return;
    }
    for (const dev_block &f : g_freed)
        if (c >= f.base && c < f.base + f.need) {
            snprintf(buf, n, "inside a %zu-byte block at %p that was freed with cudaFree", f.bytes, (void *)f.base);
            return;
        }
    snprintf(buf, n, "not device memory (a host pointer, or no allocation at all)");
}

int check_canaries(const char *kernel) {
    for (auto &kv : g_blocks) {
        const dev_block &b = kv.second;
        size_t last = 0;
        for (size_t i = b.bytes; i < b.need; i++)
            if ((unsigned char)b.base[i] != CANARY) last = i + 1;
        if (last) {
            set_sticky(cudaErrorIllegalAddress, "%s wrote up to %zu bytes past the end of a %zu-byte cudaMalloc block "
                       "at %p", kernel, last - b.bytes, b.bytes, (void *)b.base);
            memset(b.base + b.bytes, CANARY, b.need - b.bytes);
            return -1;
        }
    }
    return 0;
}

static void fill_nan(char *p, size_t bytes) {
    uint32_t w = 0x7fbadbadu;
    size_t i = 0;
    for (; i + 4 <= bytes; i += 4) memcpy(p + i, &w, 4);
    memset(p + i, 0xad, bytes - i);
}

static cudaError_t dev_malloc(void **p, size_t bytes) {
    if (!p) return set_error(cudaErrorInvalidValue, "cudaMalloc: NULL result pointer");
    *p = NULL;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), need = ((bytes ? bytes : 1) + 255) / 256 * 256;
    if (bytes > config().mem_cap || need > config().mem_cap - g_used)
        return set_error(cudaErrorMemoryAllocation, "cudaMalloc of %zu bytes: %zu of %zu bytes in use", bytes, g_used,
                         config().mem_cap);
    size_t span = (need + pg - 1) / pg * pg;
    char *m = (char *)mmap(NULL, span + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return set_error(cudaErrorMemoryAllocation, "cudaMalloc of %zu bytes: host mmap failed", bytes);
    mprotect(m + span, pg, PROT_NONE);
    dev_block b = { m + span - need, m, bytes, need, span + pg };
    fill_nan(b.base, bytes);
    memset(b.base + bytes, CANARY, need - bytes);
    g_blocks[(uintptr_t)b.base] = b;
    g_used += need;
    *p = b.base;
    return cudaSuccess;
}

static cudaError_t dev_free(void *p) {
    if (!p) return cudaSuccess;
    auto it = g_blocks.find((uintptr_t)p);
    if (it == g_blocks.end()) {
        char why[200];
        describe_device_address(p, why, sizeof why);
        return set_error(cudaErrorInvalidValue, "cudaFree(%p): not the start of a live block: %s", p, why);
    }
    dev_block b = it->second;
    g_blocks.erase(it);
    g_used -= b.need;
    munmap(b.map, b.map_len);
    if (g_freed.size() >= 256) g_freed.erase(g_freed.begin());
    g_freed.push_back(b);
    return cudaSuccess;
}

/* ---- streams and capture --------------------------------------------------------------------------- */

static std::set<cudaStream_t> g_streams;

static bool is_default(cudaStream_t s) { return !s || s == cudaStreamLegacy || s == cudaStreamPerThread; }
int stream_valid(cudaStream_t s) { return is_default(s) || g_streams.count(s); }

static void invalidate_global_captures(void) {
    for (cudaStream_t s : g_streams)
        if (s->capturing && s->mode == cudaStreamCaptureModeGlobal) s->invalidated = true;
}

static bool global_capture_active(void) {
    for (cudaStream_t s : g_streams)
        if (s->capturing && s->mode == cudaStreamCaptureModeGlobal) return true;
    return false;
}

cudaError_t sync_allowed(cudaStream_t s, const char *what) {
    if (!stream_valid(s)) return set_error(cudaErrorInvalidResourceHandle, "%s: unknown stream %p", what, (void *)s);
    if (!is_default(s) && s->capturing) {
        s->invalidated = true;
        return set_error(cudaErrorStreamCaptureUnsupported, "%s on a stream that is being captured", what);
    }
    if (is_default(s) && global_capture_active()) {
        invalidate_global_captures();
        return set_error(cudaErrorStreamCaptureImplicit, "%s on the legacy stream while a stream is captured", what);
    }
    return cudaSuccess;
}

cudaError_t submit(cudaStream_t s, std::function<void()> op, const char *what) {
    if (!stream_valid(s)) return set_error(cudaErrorInvalidResourceHandle, "%s: unknown stream %p", what, (void *)s);
    if (!is_default(s) && s->capturing) {
        if (s->invalidated) return cudaErrorStreamCaptureInvalidated;
        s->graph->nodes.push_back(std::move(op));
        return cudaSuccess;
    }
    if (is_default(s) && global_capture_active()) {
        invalidate_global_captures();
        return set_error(cudaErrorStreamCaptureImplicit, "%s on the legacy stream while a stream is captured", what);
    }
    if (g_sticky != cudaSuccess) return g_sticky;
    op();
    return cudaSuccess;
}

/* ---- launches: the checks CUDA makes when the launch is issued ---------------------------------- */

static cudaError_t check_launch(const char *file, int line, const launch_cfg &c, const char *name, const void *key) {
    const dim3 &g = c.grid, &b = c.block;
    if (!g.x || !g.y || !g.z || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
        return set_error(cudaErrorInvalidConfiguration, "%s launched at %s:%d with grid (%u,%u,%u)", name, file, line,
                         g.x, g.y, g.z);
    unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
    if (!nt || b.x > 1024 || b.y > 1024 || b.z > 64 || nt > 1024)
        return set_error(cudaErrorInvalidConfiguration, "%s launched at %s:%d with block (%u,%u,%u)", name, file, line,
                         b.x, b.y, b.z);
    size_t lim = func_dyn_limit(key), stat = func_static_smem(key), optin = config().smem_optin;
    if (c.smem > lim || c.smem + stat > optin)
        return set_error(cudaErrorInvalidValue, "%s launched at %s:%d with %zu bytes of dynamic shared memory: the "
                         "kernel allows %zu (+%zu static; cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises "
                         "it up to %zu)", name, file, line, c.smem, lim, stat, optin);
    if (!stream_valid(c.stream))
        return set_error(cudaErrorInvalidResourceHandle, "%s launched at %s:%d on unknown stream %p", name, file, line,
                         (void *)c.stream);
    return cudaSuccess;
}

void launch_submit(const char *file, int line, const launch_cfg &c, const char *name, const void *key,
                   std::shared_ptr<void> ctx, body_fn body) {
    LOCK;
    if (g_sticky != cudaSuccess || check_launch(file, line, c, name, key) != cudaSuccess) return;
    submit(c.stream, [=] { run_launch(file, line, c, name, key, ctx, body); }, name);
}
} // namespace cudasim

using namespace cudasim;

/* ---- the API: errors and device ------------------------------------------------------------------ */

const char *cudaGetErrorString(cudaError_t e) {
    LOCK;
    if (e != cudaSuccess && e == g_sticky) return g_sticky_msg;
    if (e != cudaSuccess && e == g_last && g_last_msg[0]) return g_last_msg;
    return plain_error_string(e);
}
const char *cudaGetErrorName(cudaError_t e) { return plain_error_name(e); }

cudaError_t cudaGetLastError(void) {
    LOCK;
    if (g_sticky != cudaSuccess) return g_sticky;
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) {
    LOCK;
    return g_sticky != cudaSuccess ? g_sticky : g_last;
}

cudaError_t cudaGetDeviceCount(int *count) {
    LOCK;
    if (!count) return set_error(cudaErrorInvalidValue, "cudaGetDeviceCount(NULL)");
    *count = config().devices;
    return *count > 0 ? cudaSuccess : set_error(cudaErrorNoDevice, "SAMC_CUDA_SIM_DEVICES=0");
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    LOCK;
    if (!p) return set_error(cudaErrorInvalidValue, "cudaGetDeviceProperties(NULL)");
    if (device < 0 || device >= config().devices)
        return set_error(cudaErrorInvalidDevice, "device %d of %d", device, config().devices);
    const settings &s = config();
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "samc CUDA simulator (sm_%d)", s.cc);
    p->totalGlobalMem = s.mem_cap;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = s.smem_optin;
    p->sharedMemPerMultiprocessor = s.smem_optin + (1 << 10);
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->major = s.cc / 10;
    p->minor = s.cc % 10;
    p->multiProcessorCount = s.sms;
    p->maxThreadsPerMultiProcessor = 2048;
    p->concurrentKernels = 1;
    return g_sticky;
}

cudaError_t cudaSetDevice(int device) {
    LOCK;
    if (device < 0 || device >= config().devices)
        return set_error(cudaErrorInvalidDevice, "cudaSetDevice(%d) of %d devices", device, config().devices);
    return g_sticky;
}
cudaError_t cudaGetDevice(int *device) {
    if (device) *device = 0;
    return device ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaDriverGetVersion(int *v) {
    if (v) *v = 13000;
    return v ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    if (v) *v = CUDART_VERSION;
    return v ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaDeviceSynchronize(void) {
    LOCK;
    if (global_capture_active()) {
        invalidate_global_captures();
        return set_error(cudaErrorStreamCaptureUnsupported, "cudaDeviceSynchronize while a stream is captured");
    }
    return g_sticky;
}
cudaError_t cudaDeviceReset(void) {
    LOCK;
    while (!g_blocks.empty()) dev_free(g_blocks.begin()->second.base);
    for (cudaStream_t s : g_streams) {
        delete s->graph;
        delete s;
    }
    g_streams.clear();
    func_reset_attributes();
    g_sticky = g_last = cudaSuccess;
    g_sticky_msg[0] = g_last_msg[0] = '\0';
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    LOCK;
    if (free_bytes) *free_bytes = config().mem_cap - g_used;
    if (total_bytes) *total_bytes = config().mem_cap;
    return g_sticky;
}

/* ---- memory -------------------------------------------------------------------------------------------- */

/* Allocation while a stream is captured is one of CUDA's "potentially unsafe" calls: it
 * fails and invalidates the capture. */
static cudaError_t alloc_allowed(const char *what) {
    bool any = false;
    for (cudaStream_t s : g_streams)
        if (s->capturing) {
            s->invalidated = true;
            any = true;
        }
    return any ? set_error(cudaErrorStreamCaptureUnsupported, "%s while a stream is captured", what) : cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    LOCK;
    if (g_sticky != cudaSuccess) return g_sticky;
    cudaError_t e = alloc_allowed("cudaMalloc");
    return e != cudaSuccess ? e : dev_malloc(p, bytes);
}

cudaError_t cudaFree(void *p) {
    LOCK;
    if (g_sticky != cudaSuccess) return g_sticky;
    cudaError_t e = alloc_allowed("cudaFree");
    return e != cudaSuccess ? e : dev_free(p);
}

static std::set<void *> g_pinned;

cudaError_t cudaMallocHost(void **p, size_t bytes) {
    LOCK;
    if (!p) return set_error(cudaErrorInvalidValue, "cudaMallocHost: NULL result pointer");
    *p = NULL;
    if (g_sticky != cudaSuccess) return g_sticky;
    cudaError_t e = alloc_allowed("cudaMallocHost");
    if (e != cudaSuccess) return e;
    *p = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096);
    if (!*p) return set_error(cudaErrorMemoryAllocation, "cudaMallocHost of %zu bytes", bytes);
    g_pinned.insert(*p);
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
    LOCK;
    if (!p) return cudaSuccess;
    cudaError_t e = alloc_allowed("cudaFreeHost");
    if (e != cudaSuccess) return e;
    if (!g_pinned.erase(p)) return set_error(cudaErrorInvalidValue, "cudaFreeHost(%p): not from cudaMallocHost", p);
    free(p);
    return g_sticky;
}

/* Checks a copy's pointers against its kind: the device side inside one live block, the
 * host side not device memory (swapped arguments). cudaMemcpyDefault infers the kind. */
static cudaError_t check_copy(const char *fn, void *dst, const void *src, size_t bytes, cudaMemcpyKind *kind) {
    char why[256];
    if (*kind == cudaMemcpyDefault)
        *kind = (cudaMemcpyKind)((block_at(src) ? 2 : 0) + (block_at(dst) ? 1 : 0));
    bool dst_dev = *kind == cudaMemcpyHostToDevice || *kind == cudaMemcpyDeviceToDevice;
    bool src_dev = *kind == cudaMemcpyDeviceToHost || *kind == cudaMemcpyDeviceToDevice;
    if ((unsigned)*kind > cudaMemcpyDefault) return set_error(cudaErrorInvalidMemcpyDirection, "%s: kind %d", fn, *kind);
    if (dst_dev ? device_range(dst, bytes, why, sizeof why) != 0 : block_at(dst) != NULL) {
        if (!dst_dev) snprintf(why, sizeof why, "it is device memory");
        return set_error(cudaErrorInvalidValue, "%s: destination %p of %zu bytes: %s", fn, dst, bytes, why);
    }
    if (src_dev ? device_range(src, bytes, why, sizeof why) != 0 : block_at(src) != NULL) {
        if (!src_dev) snprintf(why, sizeof why, "it is device memory");
        return set_error(cudaErrorInvalidValue, "%s: source %p of %zu bytes: %s", fn, src, bytes, why);
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    LOCK;
    if (g_sticky != cudaSuccess) return g_sticky;
    if (!bytes) return cudaSuccess;
    cudaError_t e = check_copy("cudaMemcpyAsync", dst, src, bytes, &kind);
    if (e != cudaSuccess) return e;
    return submit(s, [=] { memmove(dst, src, bytes); }, "cudaMemcpyAsync");
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    LOCK;
    cudaError_t e = sync_allowed(NULL, "cudaMemcpy");
    return e != cudaSuccess ? e : cudaMemcpyAsync(dst, src, bytes, kind, NULL);
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s) {
    LOCK;
    if (g_sticky != cudaSuccess) return g_sticky;
    char why[256];
    if (!bytes) return cudaSuccess;
    if (device_range(dst, bytes, why, sizeof why) != 0)
        return set_error(cudaErrorInvalidValue, "cudaMemsetAsync(%p, %zu bytes): %s", dst, bytes, why);
    return submit(s, [=] { memset(dst, value, bytes); }, "cudaMemsetAsync");
}

cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
    LOCK;
    cudaError_t e = sync_allowed(NULL, "cudaMemset");
    return e != cudaSuccess ? e : cudaMemsetAsync(dst, value, bytes, NULL);
}

/* ---- streams ----------------------------------------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    LOCK;
    if (!s) return set_error(cudaErrorInvalidValue, "cudaStreamCreate(NULL)");
    *s = new CUstream_st{ flags, false, false, cudaStreamCaptureModeGlobal, NULL };
    g_streams.insert(*s);
    return g_sticky;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    LOCK;
    if (is_default(s) || !g_streams.erase(s))
        return set_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy(%p): not a created stream", (void *)s);
    delete s->graph;
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    LOCK;
    cudaError_t e = sync_allowed(s, "cudaStreamSynchronize");
    return e != cudaSuccess ? e : g_sticky;
}
cudaError_t cudaStreamQuery(cudaStream_t s) { return cudaStreamSynchronize(s); }

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    LOCK;
    if (!stream_valid(s) || !e) return set_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent");
    return g_sticky; /* one host thread runs everything in order: the wait is already met */
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    LOCK;
    if (is_default(s)) return set_error(cudaErrorStreamCaptureUnsupported, "the legacy stream cannot be captured");
    if (!g_streams.count(s)) return set_error(cudaErrorInvalidResourceHandle, "cudaStreamBeginCapture(%p)", (void *)s);
    if (s->capturing) return set_error(cudaErrorInvalidValue, "cudaStreamBeginCapture: the stream is already capturing");
    s->capturing = true;
    s->invalidated = false;
    s->mode = mode;
    s->graph = new CUgraph_st;
    return g_sticky;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    LOCK;
    if (!graph) return set_error(cudaErrorInvalidValue, "cudaStreamEndCapture(NULL graph)");
    *graph = NULL;
    if (is_default(s) || !g_streams.count(s) || !s->capturing)
        return set_error(cudaErrorInvalidValue, "cudaStreamEndCapture on a stream that is not capturing");
    s->capturing = false;
    if (s->invalidated) {
        delete s->graph;
        s->graph = NULL;
        return set_error(cudaErrorStreamCaptureInvalidated, "the capture was invalidated by an earlier call");
    }
    *graph = s->graph;
    s->graph = NULL;
    return g_sticky;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    LOCK;
    if (!status || !stream_valid(s)) return set_error(cudaErrorInvalidValue, "cudaStreamIsCapturing");
    *status = is_default(s) || !s->capturing ? cudaStreamCaptureStatusNone
              : s->invalidated                ? cudaStreamCaptureStatusInvalidated
                                              : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

/* ---- events: host time when the event is reached in stream order ---------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    LOCK;
    if (!e) return set_error(cudaErrorInvalidValue, "cudaEventCreate(NULL)");
    *e = new CUevent_st{ flags, false, 0.0 };
    return g_sticky;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecordWithFlags(cudaEvent_t e, cudaStream_t s, unsigned flags) {
    LOCK;
    if (!e) return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord(NULL)");
    if (flags & ~(unsigned)cudaEventRecordExternal)
        return set_error(cudaErrorInvalidValue, "cudaEventRecordWithFlags: flags %#x", flags);
    if (!stream_valid(s)) return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown stream");
    if (!is_default(s) && s->capturing && !(flags & cudaEventRecordExternal))
        return s->invalidated ? cudaErrorStreamCaptureInvalidated : g_sticky; /* orders the capture only */
    return submit(s, [e] { e->recorded = true; e->t_ms = now_ms(); }, "cudaEventRecord");
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { return cudaEventRecordWithFlags(e, s, 0); }

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    LOCK;
    return e ? g_sticky : set_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize(NULL)");
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    LOCK;
    if (!ms || !a || !b) return set_error(cudaErrorInvalidValue, "cudaEventElapsedTime: NULL argument");
    if ((a->flags | b->flags) & cudaEventDisableTiming)
        return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event has timing disabled");
    if (!a->recorded || !b->recorded)
        return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never recorded");
    *ms = (float)(b->t_ms - a->t_ms);
    return g_sticky;
}

/* ---- graphs: the captured operations, replayed in order -------------------------------------------- */

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    LOCK;
    if (!exec || !graph) return set_error(cudaErrorInvalidValue, "cudaGraphInstantiate: NULL argument");
    *exec = new CUgraphExec_st{ graph->nodes };
    return g_sticky;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    LOCK;
    if (!exec) return set_error(cudaErrorInvalidValue, "cudaGraphLaunch(NULL)");
    for (const std::function<void()> &op : exec->nodes) {
        cudaError_t e = submit(s, op, "cudaGraphLaunch");
        if (e != cudaSuccess) return e;
    }
    return g_sticky;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count) {
    LOCK;
    if (!graph || !count) return set_error(cudaErrorInvalidValue, "cudaGraphGetNodes: NULL argument");
    if (nodes)
        for (size_t i = 0; i < *count && i < graph->nodes.size(); i++) nodes[i] = (cudaGraphNode_t)(uintptr_t)(i + 1);
    *count = graph->nodes.size();
    return cudaSuccess;
}

/* ---- kernel attributes ------------------------------------------------------------------------------------ */

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *func) {
    LOCK;
    if (!a || !func) return set_error(cudaErrorInvalidDeviceFunction, "cudaFuncGetAttributes: NULL argument");
    memset(a, 0, sizeof *a);
    a->sharedSizeBytes = func_static_smem(func);
    a->maxThreadsPerBlock = 1024;
    a->numRegs = 32;
    a->ptxVersion = a->binaryVersion = config().cc;
    a->maxDynamicSharedSizeBytes = (int)func_dyn_limit(func);
    return g_sticky;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    LOCK;
    if (!func) return set_error(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute(NULL)");
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return g_sticky;
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute %d", (int)attr);
    size_t optin = config().smem_optin, stat = func_static_smem(func);
    if (value < 0 || (size_t)value + stat > optin)
        return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute(MaxDynamicSharedMemorySize, %d): the device "
                         "allows %zu per block, %zu of them static", value, optin, stat);
    func_set_dyn_limit(func, (size_t)value);
    return g_sticky;
}
