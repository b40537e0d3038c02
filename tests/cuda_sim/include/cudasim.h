/* tests/cuda_sim/include/cudasim.h: the device side of CUDA C++ as the simulator compiles
 * it: qualifiers, vector types, the built-in index variables, barriers and warp
 * operations, device math, and the launch that tests/cuda_sim/cu2cpp writes in place of
 * `kernel<<<grid, block, smem, stream>>>(args)`.
 *
 * Each simulated GPU thread is a fiber (tests/cuda_sim/runtime.cpp). A fiber runs until
 * it reaches a barrier or a warp operation and then yields; the scheduler picks the next
 * runnable thread at random, so code that reads what another warp writes without a
 * barrier sees stale or poisoned data. Barriers and warp operations carry their source
 * line, so divergent ones are reported. Everything here is host C++ compiled by g++ or
 * clang++; nothing is copied from NVIDIA's headers. */
#ifndef CUDASIM_H
#define CUDASIM_H
#include "cuda_runtime_api.h"
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <memory>
#include <tuple>
#include <utility>

#define CUDASIM_HIDDEN __attribute__((visibility("hidden")))

/* ---- qualifiers ------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__ static
/* cu2cpp rewrites every __shared__ declaration; one it missed fails to compile here. */
#define __shared__ cudasim_shared_declaration_not_rewritten_by_cu2cpp

/* ---- vector types --------------------------------------------------------------------- */
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
static inline float2 make_float2(float x, float y) { return float2{ x, y }; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{ x, y, z, w }; }
static inline int2 make_int2(int x, int y) { return int2{ x, y }; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{ x, y, z, w }; }

/* ---- built-in variables: the running fiber's, set by the scheduler at each switch --- */
extern CUDASIM_HIDDEN uint3 threadIdx, blockIdx;
extern CUDASIM_HIDDEN dim3 blockDim, gridDim;
static const int warpSize = 32;

namespace cudasim {
struct site { const char *file; int line; };

/* Barriers and warp collectives (runtime.cpp). */
CUDASIM_HIDDEN int syncthreads(site s, int kind, int pred);
CUDASIM_HIDDEN void syncwarp(site s, unsigned mask);
CUDASIM_HIDDEN uint64_t shfl(site s, unsigned mask, int mode, uint64_t bits, int arg, int width);
CUDASIM_HIDDEN unsigned vote(site s, unsigned mask, int mode, int pred);
CUDASIM_HIDDEN unsigned active_mask(void);
enum { BAR_PLAIN, BAR_COUNT, BAR_AND, BAR_OR };
enum { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR };
enum { VOTE_BALLOT, VOTE_ANY, VOTE_ALL };

template <class T> inline T shfl_t(site s, unsigned mask, int mode, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8, "__shfl_*_sync moves at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = shfl(s, mask, mode, bits, arg, width);
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Every lane of `mask` calls this at the same site with its own `mine`; the last to arrive
 * runs complete(all, mask, ctx) with all[l] the `mine` of lane l (NULL outside mask), then
 * every lane goes on. A lane outside mask, a lane of mask that exits or waits elsewhere,
 * different sites or kinds: the launch fails with the reason. Shuffles, votes and the
 * wmma operations (mma.h) are built on it. */
typedef void (*collective_fn)(void *const all[32], unsigned mask, void *ctx);
CUDASIM_HIDDEN void warp_collective(site s, unsigned mask, int kind, void *mine, collective_fn complete, void *ctx);
enum { COLL_WMMA_LOAD = 16, COLL_WMMA_STORE, COLL_WMMA_MMA };

/* A kernel stops the launch with an error (a failed wmma precondition, a trap). */
[[noreturn]] CUDASIM_HIDDEN void kernel_fail(cudaError_t code, const char *what);

/* Shared memory: cu2cpp turns `__shared__ T name[N];` into a function-local static
 * reference to one of these (its own pages, ending at a guard page, poisoned before every
 * block) and `extern __shared__ T name[];` into a pointer to the launch's dynamic
 * shared memory (ending at a guard page too). */
CUDASIM_HIDDEN void *shared_alloc(size_t bytes, size_t align, const char *file, int line, const char *name);
CUDASIM_HIDDEN void *dynamic_shared(void);
template <class T, size_t Align = alignof(T)> inline T &shared_var(const char *file, int line, const char *name) {
    return *(T *)shared_alloc(sizeof(T), Align > alignof(T) ? Align : alignof(T), file, line, name);
}

/* ---- launch ---------------------------------------------------------------------------- */
struct launch_cfg { dim3 grid, block; size_t smem; cudaStream_t stream; };
inline launch_cfg cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = nullptr) { return launch_cfg{ g, b, smem, s }; }
typedef void (*body_fn)(void *ctx);
/* Runs the launch in stream order (or records it while the stream is being captured):
 * body(ctx) once per simulated thread. Errors go where CUDA puts them: a bad
 * configuration to cudaGetLastError, a fault in the kernel to the sticky error. */
CUDASIM_HIDDEN void launch_submit(const char *file, int line, const launch_cfg &c, const char *name, const void *key,
                                  std::shared_ptr<void> ctx, body_fn body);

/* The arguments are copied once, at the launch, as CUDA copies them into the parameter
 * buffer; every thread then calls the kernel with its own copies. */
template <class F, class... A>
void launch(const char *file, int line, launch_cfg c, const char *name, const void *key, F f, A... args) {
    typedef std::pair<F, std::tuple<A...>> holder;
    std::shared_ptr<holder> h = std::make_shared<holder>(std::move(f), std::tuple<A...>(args...));
    launch_submit(file, line, c, name, key, h, [](void *p) {
        holder *hp = (holder *)p;
        std::apply(hp->first, hp->second);
    });
}

/* The kernel's address when the launched expression names one function (a plain kernel,
 * an explicit specialisation, a pointer); nullptr for a template deduced from the
 * arguments, which then gets only the default dynamic shared memory limit. */
template <class T, class F> const void *kernel_key_dep(T, F *f) { return (const void *)f; }
} // namespace cudasim

#define CUDASIM_SITE (cudasim::site{ __FILE__, __LINE__ })
#define CUDASIM_KEY(...)                                                                                         \
    ([&](auto cudasim_t_) -> const void * {                                                                      \
        if constexpr (requires { cudasim::kernel_key_dep(cudasim_t_, __VA_ARGS__); })                            \
            return cudasim::kernel_key_dep(cudasim_t_, __VA_ARGS__);                                             \
        else                                                                                                     \
            return nullptr;                                                                                      \
    }(0))

/* ---- synchronisation and warp functions ----------------------------------------------- */
#define __syncthreads() ((void)cudasim::syncthreads(CUDASIM_SITE, cudasim::BAR_PLAIN, 0))
#define __syncthreads_count(p) cudasim::syncthreads(CUDASIM_SITE, cudasim::BAR_COUNT, (p) != 0)
#define __syncthreads_and(p) cudasim::syncthreads(CUDASIM_SITE, cudasim::BAR_AND, (p) != 0)
#define __syncthreads_or(p) cudasim::syncthreads(CUDASIM_SITE, cudasim::BAR_OR, (p) != 0)
#define __syncwarp(...) cudasim::syncwarp(CUDASIM_SITE, cudasim_mask_or_full(__VA_ARGS__))
static inline unsigned cudasim_mask_or_full(unsigned m = 0xffffffffu) { return m; }
#define __shfl_sync(m, v, src, ...) cudasim::shfl_t(CUDASIM_SITE, m, cudasim::SHFL_IDX, v, src, cudasim_width(__VA_ARGS__))
#define __shfl_up_sync(m, v, d, ...) cudasim::shfl_t(CUDASIM_SITE, m, cudasim::SHFL_UP, v, d, cudasim_width(__VA_ARGS__))
#define __shfl_down_sync(m, v, d, ...) \
    cudasim::shfl_t(CUDASIM_SITE, m, cudasim::SHFL_DOWN, v, d, cudasim_width(__VA_ARGS__))
#define __shfl_xor_sync(m, v, x, ...) cudasim::shfl_t(CUDASIM_SITE, m, cudasim::SHFL_XOR, v, x, cudasim_width(__VA_ARGS__))
static inline int cudasim_width(int w = 32) { return w; }
#define __ballot_sync(m, p) cudasim::vote(CUDASIM_SITE, m, cudasim::VOTE_BALLOT, (p) != 0)
#define __any_sync(m, p) ((int)cudasim::vote(CUDASIM_SITE, m, cudasim::VOTE_ANY, (p) != 0))
#define __all_sync(m, p) ((int)cudasim::vote(CUDASIM_SITE, m, cudasim::VOTE_ALL, (p) != 0))
#define __activemask() cudasim::active_mask()
/* Fibers switch only at barriers and warp operations, so memory is coherent here. */
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}
#define __trap() cudasim::kernel_fail(cudaErrorLaunchFailure, "__trap() called")

/* ---- device math ------------------------------------------------------------------------ */
/* Host libm stands in for the device's: results may differ by the ulps the CUDA math
 * documentation allows (NOTES.md: what the simulator cannot see). The _rn intrinsics are
 * exactly rounded single operations on both; the simulator is built without FMA
 * contraction, so each stays one rounding. */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
/* glibc declares __expf / __logf itself: macros, not functions */
#define __expf(a) expf(a)
#define __logf(a) logf(a)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
static inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> inline T __ldg(const T *p) { return *p; }

/* CUDA's min / max: fminf / fmaxf for floats, the usual conversions otherwise. */
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
template <class A, class B> inline auto min(A a, B b) -> decltype(a + b) {
    typedef decltype(a + b) T;
    return (T)a < (T)b ? (T)a : (T)b;
}
template <class A, class B> inline auto max(A a, B b) -> decltype(a + b) {
    typedef decltype(a + b) T;
    return (T)a < (T)b ? (T)b : (T)a;
}

/* Atomics: fibers switch only at barriers and warp operations, and launches hold the
 * simulator's lock, so a plain read-modify-write is atomic here. */
template <class T> inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicSub(T *p, T v) { T o = *p; *p = o - v; return o; }
template <class T> inline T atomicExch(T *p, T v) { T o = *p; *p = v; return o; }
template <class T> inline T atomicMax(T *p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <class T> inline T atomicMin(T *p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <class T> inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }

#endif
