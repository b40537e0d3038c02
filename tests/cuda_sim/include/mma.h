/* tests/cuda_sim/include/mma.h: nvcuda::wmma under the simulator: fragments, fill,
 * load / store and mma_sync for bf16 and fp16 inputs (m16n16k16, m32n8k16, m8n32k16) and
 * tf32 (m16n16k8), with fp32 (or fp16) accumulators. Written from the CUDA C++ Programming
 * Guide's description of the API, not from NVIDIA's header.
 *
 * As on the GPU, a fragment is spread over the 32 lanes of a warp: each lane's x[] holds
 * num_elements = rows*cols/32 of the tile's elements, in an order the guide leaves
 * unspecified. Here lane l's element e is tile element e*32 + ((l + 7e) mod 32) (row-major
 * over the tile), a deliberately scrambled order: code that assumes a layout of x[] other
 * than "elementwise ops on all of them" gets wrong results. load_matrix_sync,
 * store_matrix_sync and mma_sync are warp collectives (every lane must call them, with the
 * same pointer and ldm); the pointer must be 32-byte aligned and ldm a multiple of 16 bytes,
 * as the guide requires; a violation fails the launch naming the call. mma_sync sums the
 * exact products in double and rounds once to the accumulator type (the tensor cores'
 * fp32 accumulation order is not reproduced); tf32 inputs are cut to 10 mantissa bits as
 * the hardware reads them. */
#ifndef CUDASIM_MMA_H
#define CUDASIM_MMA_H
#include "cudasim.h"
#include "cudasim_lowp.h"
#include <stdio.h>
#include <type_traits>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision { struct tf32 {}; }

template <class Use, int M, int N, int K> struct frag_shape;
template <int M, int N, int K> struct frag_shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct frag_shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct frag_shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

template <class T> struct frag_elem { typedef T type; };
template <> struct frag_elem<precision::tf32> { typedef float type; };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert((M == 16 && N == 16 && K == 16) || (M == 32 && N == 8 && K == 16) || (M == 8 && N == 32 && K == 16) ||
                  (M == 16 && N == 16 && K == 8), "wmma shape not supported (m16n16k16, m32n8k16, m8n32k16, m16n16k8)");
    static constexpr int rows = frag_shape<Use, M, N, K>::rows, cols = frag_shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols / 32;
    typedef typename frag_elem<T>::type element_type;
    element_type x[num_elements];
};

/* ---- the simulator's side ---------------------------------------------------------- */
namespace detail {
/* Tile element (row-major index) held by lane l as its element e. */
static inline int tile_index(int lane, int e) { return e * 32 + ((lane + 7 * e) & 31); }

static inline float to_f(float v) { return v; }
static inline float to_f(__half v) { return __half2float(v); }
static inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
static inline void from_f(float *d, float v) { *d = v; }
static inline void from_f(__half *d, float v) { *d = __float2half_rn(v); }
static inline void from_f(__nv_bfloat16 *d, float v) { *d = __float2bfloat16_rn(v); }
static inline float tf32_cut(float v) { return cudasim::f32_from(cudasim::f32_bits(v) & ~0x1fffu); }

struct mem_part { void *frag; const void *ptr; unsigned ldm; int col_major; };

/* The preconditions of load / store: the same pointer and ldm in every lane, 32-byte
 * alignment, ldm a multiple of 16 bytes. */
static inline void check_mem(void *const all[32], const char *fn, size_t esize) {
    const mem_part *p0 = (const mem_part *)all[0];
    char msg[200];
    for (int l = 1; l < 32; l++) {
        const mem_part *p = (const mem_part *)all[l];
        if (p->ptr != p0->ptr || p->ldm != p0->ldm) {
            snprintf(msg, sizeof msg, "wmma::%s: lane %d passes pointer %p ldm %u, lane 0 %p ldm %u", fn, l, p->ptr,
                     p->ldm, p0->ptr, p0->ldm);
            cudasim::kernel_fail(cudaErrorLaunchFailure, msg);
        }
    }
    if (((uintptr_t)p0->ptr & 31) || (p0->ldm * esize) % 16) {
        snprintf(msg, sizeof msg, "wmma::%s: pointer %p must be 32-byte aligned and ldm %u a multiple of %zu elements",
                 fn, p0->ptr, p0->ldm, 16 / esize);
        cudasim::kernel_fail(cudaErrorMisalignedAddress, msg);
    }
}

template <class Frag, class MemT> void load_done(void *const all[32], unsigned mask, void *ctx) {
    (void)mask, (void)ctx;
    check_mem(all, "load_matrix_sync", sizeof(MemT));
    for (int l = 0; l < 32; l++) {
        const mem_part *p = (const mem_part *)all[l];
        Frag *f = (Frag *)p->frag;
        const MemT *m = (const MemT *)p->ptr;
        for (int e = 0; e < Frag::num_elements; e++) {
            int t = tile_index(l, e), r = t / Frag::cols, c = t % Frag::cols;
            f->x[e] = m[p->col_major ? (size_t)c * p->ldm + r : (size_t)r * p->ldm + c];
        }
    }
}

template <class Frag, class MemT> void store_done(void *const all[32], unsigned mask, void *ctx) {
    (void)mask, (void)ctx;
    check_mem(all, "store_matrix_sync", sizeof(MemT));
    for (int l = 0; l < 32; l++) {
        const mem_part *p = (const mem_part *)all[l];
        const Frag *f = (const Frag *)p->frag;
        MemT *m = (MemT *)p->ptr;
        for (int e = 0; e < Frag::num_elements; e++) {
            int t = tile_index(l, e), r = t / Frag::cols, c = t % Frag::cols;
            m[p->col_major ? (size_t)c * p->ldm + r : (size_t)r * p->ldm + c] = f->x[e];
        }
    }
}

struct mma_part { void *d; const void *a, *b, *c; };

/* Gathers the warp's fragments into whole tiles, D = A·B + C, scatters D. */
template <class FD, class FA, class FB, class FC, bool TF32> void mma_done(void *const all[32], unsigned mask, void *ctx) {
    (void)mask, (void)ctx;
    constexpr int M = FA::rows, K = FA::cols, N = FB::cols;
    float A[M * K], B[K * N], C[M * N];
    for (int l = 0; l < 32; l++) {
        const mma_part *p = (const mma_part *)all[l];
        for (int e = 0; e < FA::num_elements; e++) A[tile_index(l, e)] = to_f(((const FA *)p->a)->x[e]);
        for (int e = 0; e < FB::num_elements; e++) B[tile_index(l, e)] = to_f(((const FB *)p->b)->x[e]);
        for (int e = 0; e < FC::num_elements; e++) C[tile_index(l, e)] = to_f(((const FC *)p->c)->x[e]);
    }
    for (int l = 0; l < 32; l++) {
        FD *d = (FD *)((const mma_part *)all[l])->d;
        for (int e = 0; e < FD::num_elements; e++) {
            int t = tile_index(l, e), r = t / N, c = t % N;
            double acc = C[t];
            for (int k = 0; k < K; k++) {
                float a = A[r * K + k], b = B[k * N + c];
                acc += TF32 ? (double)tf32_cut(a) * tf32_cut(b) : (double)a * b;
            }
            from_f(&d->x[e], (float)acc);
        }
    }
}
} // namespace detail

/* ---- the API ----------------------------------------------------------------------- */

template <class Use, int M, int N, int K, class T, class L, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v) {
    for (int e = 0; e < f.num_elements; e++) detail::from_f(&f.x[e], detail::to_f(v));
}

template <class Use, int M, int N, int K, class T, class L, class MemT>
inline void load_matrix_sync_at(cudasim::site s, fragment<Use, M, N, K, T, L> &f, const MemT *p, unsigned ldm,
                                int col_major) {
    typedef fragment<Use, M, N, K, T, L> F;
    detail::mem_part me = { &f, p, ldm, col_major };
    cudasim::warp_collective(s, 0xffffffffu, cudasim::COLL_WMMA_LOAD, &me, detail::load_done<F, MemT>, NULL);
}

template <class MemT, class FragT, int M, int N, int K>
inline void store_matrix_sync_at(cudasim::site s, MemT *p, const fragment<accumulator, M, N, K, FragT, void> &f,
                                 unsigned ldm, layout_t layout) {
    typedef fragment<accumulator, M, N, K, FragT, void> F;
    detail::mem_part me = { (void *)&f, p, ldm, layout == mem_col_major };
    cudasim::warp_collective(s, 0xffffffffu, cudasim::COLL_WMMA_STORE, &me, detail::store_done<F, MemT>, NULL);
}

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC, class TD>
inline void mma_sync_at(cudasim::site s, fragment<accumulator, M, N, K, TD> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                        const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c) {
    typedef fragment<accumulator, M, N, K, TD> FD;
    typedef fragment<matrix_a, M, N, K, TA, LA> FA;
    typedef fragment<matrix_b, M, N, K, TB, LB> FB;
    typedef fragment<accumulator, M, N, K, TC> FC;
    constexpr bool tf32 = std::is_same<TA, precision::tf32>::value;
    detail::mma_part me = { &d, &a, &b, &c };
    cudasim::warp_collective(s, 0xffffffffu, cudasim::COLL_WMMA_MMA, &me, detail::mma_done<FD, FA, FB, FC, tf32>, NULL);
}

/* The layout of a / b fragments comes from their type, that of an accumulator from the call. */
template <class Use, int M, int N, int K, class T, class L> constexpr int layout_of(const fragment<Use, M, N, K, T, L> &) {
    return std::is_same<L, col_major>::value;
}
} // namespace wmma
} // namespace nvcuda

/* The calls carry their source line, for the divergence checks of warp collectives. */
#define load_matrix_sync(f, p, ldm, ...) \
    load_matrix_sync_at(CUDASIM_SITE, f, p, ldm, cudasim_wmma_layout(nvcuda::wmma::layout_of(f) __VA_OPT__(, ) __VA_ARGS__))
#define store_matrix_sync(p, f, ldm, layout) store_matrix_sync_at(CUDASIM_SITE, p, f, ldm, layout)
#define mma_sync(d, a, b, c) mma_sync_at(CUDASIM_SITE, d, a, b, c)
static inline int cudasim_wmma_layout(int from_type) { return from_type; }
static inline int cudasim_wmma_layout(int from_type, nvcuda::wmma::layout_t l) {
    (void)from_type;
    return l == nvcuda::wmma::mem_col_major;
}

/* tf32 conversion: round to nearest, ties away from zero, to 10 mantissa bits. */
static inline float __float_to_tf32(float v) {
    uint32_t u = cudasim::f32_bits(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    return cudasim::f32_from((u + 0x1000u) & ~0x1fffu);
}
#endif
