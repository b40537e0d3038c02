/* kernels/cuda/attention_tc.cu: softmax(scale · q kᵀ) v on the tensor cores, for 16-bit
 * q, k, v (the image encoder in bf16 / fp16: lowp.cu). Flash attention with WMMA
 * (nvcuda::wmma, m16n16k16, fp32 accumulators) and an fp32 online softmax.
 *
 * A block takes BQ = 16 * WARPS queries of one (batch, head); each warp owns 16 query
 * rows. The keys go by in tiles of 64, staged with their values in shared memory. Per
 * tile and warp: S = Q Kᵀ (16 x 64, fp32 accumulators, the head dim in steps of 16),
 * stored to shared memory; two lanes per row take the row's max and exp (fp32), write
 * the probabilities P as 16-bit values and sum them; then O += P V (16 x DP in fp32
 * accumulators, in registers for the whole key loop). The head dim is padded with zeros
 * to DP, a multiple of 16 (56 -> 64, 72 -> 80, 96), and padded keys have -inf scores.
 *
 * Lazy rescaling: WMMA does not say which accumulator element is which row, so O cannot
 * be rescaled in registers. A row keeps a reference max m and its P = exp(s - m); only
 * when a score exceeds m by more than ATC_SLACK (P could then pass e^8) does the warp
 * move m up and rescale its O through shared memory. After the first tile this is rare
 * (windows of 64-256 keys have 1-4 tiles; global attention's max settles early), and
 * exp(s - m) <= e^8 stays far inside fp16 and fp32.
 *
 * Cost per warp and key tile (hd 72, DP 80): 40 16x16x16 MMAs (327 kFLOP) against about
 * 32 KB of shared memory traffic (K and V fragments 20 KB, S, P 12 KB): the WMMA form is
 * shared-memory bound by about 2x on H100 (128 B/clock/SM against ~2000 dense FLOP/clock
 * for mma.sync), so expect 200-350 TFLOP/s, against 25-60 for the fp32 FMA kernel. Global
 * traffic is each K, V row once per block of 64 (or 128) queries. */
#include "kernels/cuda/cuda_common.cuh"
#include <mma.h>
#include <type_traits>

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700 /* CUDA 11.8 has no nvcuda::wmma below sm_70 */
using namespace nvcuda;
#endif

#define ATC_BK 64          /* keys per tile */
#define ATC_SLACK 8.0f     /* how far a score may pass the reference max before rescaling */
#define ATC_MAX_NF 8       /* DP = 16 * NF <= 128 */

/* Shared memory of one instance, in bytes; every region a multiple of 128 bytes so each
 * starts 128-byte aligned (WMMA wants 32). Strides are padded by 16 bytes (8 elements)
 * against bank conflicts, and stay multiples of 16 bytes as WMMA requires. */
struct atc_layout {
    int dp, bq, ldq, ldk, lds, ldp, ldo;
    size_t q, k, v, s, p, o, total;
};
__host__ __device__ inline size_t atc_round(size_t b) { return (b + 127) & ~(size_t)127; }
__host__ __device__ inline atc_layout atc_layout_of(int nf, int bq) {
    atc_layout L;
    L.dp = 16 * nf;
    L.bq = bq;
    L.ldq = L.ldk = L.dp + 8;
    L.lds = ATC_BK + 4;
    L.ldp = ATC_BK + 8;
    L.ldo = L.dp + 4;
    L.q = 0;
    L.k = L.q + atc_round((size_t)bq * L.ldq * 2);
    L.v = L.k + atc_round((size_t)ATC_BK * L.ldk * 2);
    L.s = L.v + atc_round((size_t)ATC_BK * L.ldk * 2);
    L.p = L.s + atc_round((size_t)bq * L.lds * 4);
    L.o = L.p + atc_round((size_t)bq * L.ldp * 2);
    L.total = L.o + atc_round((size_t)bq * L.ldo * 4);
    return L;
}

/* The four views, 16-bit (16-bit out, or fp32 when out.f32). */
template <class T> struct atc_views {
    const T *q, *k, *v;
    cuda_dst<T> out;
};

/* rows [row0, row0 + n) of a view (row t at samc_att_split(t, tw, st, sty): the window
 * geometry of kernels/ops.h) into dst [rows][ld], columns [0, dp): zeros past the head dim
 * and past the last row. 16-byte vectors when vec (every row start and the head dim a
 * multiple of 8 elements), else element by element. */
template <class T>
__device__ __forceinline__ void atc_load_rows(T *dst, int ld, int rows, const T *src, int row0, int tw, ptrdiff_t st,
                                              ptrdiff_t sty, int n, int D, int dp, int vec) {
    const int nt = blockDim.x;
    if (vec) {
        const int cpr = dp / 8; /* 8-element chunks per row */
        for (int i = threadIdx.x; i < rows * cpr; i += nt) {
            int r = i / cpr, c8 = (i % cpr) * 8;
            uint4 val = { 0, 0, 0, 0 };
            if (r < n && c8 < D) val = *(const uint4 *)(src + samc_att_split(row0 + r, tw, st, sty) + c8);
            *(uint4 *)(dst + (size_t)r * ld + c8) = val;
        }
    } else {
        for (int i = threadIdx.x; i < rows * dp; i += nt) {
            int r = i / dp, c = i % dp;
            dst[(size_t)r * ld + c] =
                (r < n && c < D) ? src[samc_att_split(row0 + r, tw, st, sty) + c] : lp_from<T>(0.0f);
        }
    }
}

/* The Q rows [row0, row0 + n) of a q_pool view (ops.h: each element the max of its 2x2
 * cell, q's strides those of the unpooled map) into dst [rows][ld], element by element:
 * the max of four 16-bit values is one of them, so widening and narrowing back is exact. */
template <class T>
__device__ __forceinline__ void atc_load_q_pooled(T *dst, int ld, int rows, const T *src, const samc_attention_args &a,
                                                  int row0, int n, int dp) {
    for (int i = threadIdx.x; i < rows * dp; i += blockDim.x) {
        int r = i / dp, c = i % dp;
        T v = lp_from<T>(0.0f);
        if (r < n && c < a.head_dim) {
            const T *s = src + samc_att_q_tok(&a, row0 + r) + c;
            v = lp_from<T>(fmaxf(fmaxf(lp_f(s[0]), lp_f(s[a.q_st])),
                                 fmaxf(lp_f(s[a.q_sty]), lp_f(s[a.q_sty + a.q_st]))));
        }
        dst[(size_t)r * ld + c] = v;
    }
}

/* Online softmax of one warp's 16 score rows for one key tile: two lanes per row, 32 keys
 * each. Writes P (16-bit) and returns, per lane, the factor its row's O must be scaled by
 * (1 when the reference max stays). *rescale: whether any row of the warp moved its max. */
template <class T>
__device__ __forceinline__ float atc_softmax(const float *srow, T *prow, int nk, float scale, float &m, float &l,
                                             int half, bool &rescale) {
    float tmax = -INFINITY;
    for (int j = 0; j < 32; j++) {
        int key = half * 32 + j;
        float s = key < nk ? srow[key] * scale : -INFINITY;
        tmax = fmaxf(tmax, s);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    /* lane 0 of each tile holds a real key, so tmax is finite */
    bool need = m == -INFINITY || tmax > m + ATC_SLACK;
    rescale = __any_sync(0xffffffffu, need);
    float corr = 1.0f;
    if (rescale) {
        float mn = fmaxf(m, tmax);
        corr = expf(m - mn); /* 0 on the first tile: O and l are 0 then */
        m = mn;
    }
    float sum = 0.0f;
    for (int j = 0; j < 32; j++) {
        int key = half * 32 + j;
        float p = key < nk ? expf(srow[key] * scale - m) : 0.0f;
        sum += p;
        prow[key] = lp_from<T>(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * corr + sum;
    return corr;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700 /* CUDA 11.8 has no nvcuda::wmma below sm_70 */
/* O (NF accumulator fragments) *= corr per row, through the warp's rows of os. */
template <int NF>
__device__ __forceinline__ void atc_rescale(wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&o)[NF],
                                            float *os, int ldo, float corr, int row, int half) {
#pragma unroll
    for (int f = 0; f < NF; f++) wmma::store_matrix_sync(os + f * 16, o[f], ldo, wmma::mem_row_major);
    __syncwarp();
    for (int d = half; d < 16 * NF; d += 2) os[row * ldo + d] *= corr;
    __syncwarp();
#pragma unroll
    for (int f = 0; f < NF; f++) wmma::load_matrix_sync(o[f], os + f * 16, ldo, wmma::mem_row_major);
}

/* One block: 16 * WARPS queries of (batch, head) pairs blockIdx.y, blockIdx.y + gridDim.y...;
 * n_kv >= 1 (the launcher sends n_kv == 0 to the FMA kernel). */
template <int NF, int WARPS, class T>
__device__ __forceinline__ void atc_body(const samc_attention_args &a, const atc_views<T> &p, int vec,
                                         unsigned char *atc_smem) {
    const atc_layout L = atc_layout_of(NF, 16 * WARPS);
    T *qs = (T *)(atc_smem + L.q), *ks = (T *)(atc_smem + L.k), *vs = (T *)(atc_smem + L.v);
    T *ps = (T *)(atc_smem + L.p);
    float *ss = (float *)(atc_smem + L.s), *os = (float *)(atc_smem + L.o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, row = lane >> 1, half = lane & 1;
    const int q0 = blockIdx.x * 16 * WARPS, D = a.head_dim, BH = a.batch * a.heads;
    float *sw = ss + warp * 16 * L.lds, *ow = os + warp * 16 * L.ldo;
    T *pw = ps + warp * 16 * L.ldp;

    for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
        const int bi = bh / a.heads, h = bh % a.heads;
        const T *kb = p.k + samc_att_split(bi, a.win_nx, a.k_sb, a.k_sby) + h * a.k_sh;
        const T *vb = p.v + samc_att_split(bi, a.win_nx, a.v_sb, a.v_sby) + h * a.v_sh;
        /* no barrier needed before: the last readers of qs passed the key loop's barriers */
        const T *qb = p.q + samc_att_split(bi, a.win_nx, a.q_sb, a.q_sby) + h * a.q_sh;
        if (a.q_pool) atc_load_q_pooled(qs, L.ldq, 16 * WARPS, qb, a, q0, a.n_q - q0, L.dp);
        else atc_load_rows(qs, L.ldq, 16 * WARPS, qb, q0, a.q_tw, a.q_st, a.q_sty, a.n_q - q0, D, L.dp, vec);
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[NF];
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> of[NF];
#pragma unroll
        for (int f = 0; f < NF; f++) {
            wmma::load_matrix_sync(qf[f], qs + warp * 16 * L.ldq + f * 16, L.ldq);
            wmma::fill_fragment(of[f], 0.0f);
        }
        float m = -INFINITY, l = 0.0f;
        for (int k0 = 0; k0 < a.n_kv; k0 += ATC_BK) {
            const int nk = min(ATC_BK, a.n_kv - k0);
            __syncthreads(); /* every warp is done with the previous tile's K and V */
            atc_load_rows(ks, L.ldk, ATC_BK, kb, k0, a.kv_tw, a.k_st, a.k_sty, nk, D, L.dp, vec);
            atc_load_rows(vs, L.ldk, ATC_BK, vb, k0, a.kv_tw, a.v_st, a.v_sty, nk, D, L.dp, vec);
            __syncthreads();
            /* S = Q Kᵀ: K rows as the columns of a col-major B */
            for (int j = 0; j < ATC_BK / 16; j++) {
                wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
                wmma::fill_fragment(sf, 0.0f);
#pragma unroll
                for (int f = 0; f < NF; f++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                    wmma::load_matrix_sync(kf, ks + j * 16 * L.ldk + f * 16, L.ldk);
                    wmma::mma_sync(sf, qf[f], kf, sf);
                }
                wmma::store_matrix_sync(sw + j * 16, sf, L.lds, wmma::mem_row_major);
            }
            __syncwarp();
            bool rescale;
            const float corr = atc_softmax(sw + row * L.lds, pw + row * L.ldp, nk, a.scale, m, l, half, rescale);
            __syncwarp();
            if (rescale && k0 > 0) atc_rescale<NF>(of, ow, L.ldo, corr, row, half); /* O = 0 on the first tile */
            /* O += P V */
            for (int kk = 0; kk < ATC_BK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
                wmma::load_matrix_sync(pf, pw + kk * 16, L.ldp);
#pragma unroll
                for (int f = 0; f < NF; f++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                    wmma::load_matrix_sync(vf, vs + kk * 16 * L.ldk + f * 16, L.ldk);
                    wmma::mma_sync(of[f], pf, vf, of[f]);
                }
            }
        }
        /* out = O / l, through the warp's rows of os */
#pragma unroll
        for (int f = 0; f < NF; f++) wmma::store_matrix_sync(ow + f * 16, of[f], L.ldo, wmma::mem_row_major);
        __syncwarp();
        const int qi = q0 + warp * 16 + row;
        if (qi < a.n_q) {
            const cuda_dst<T> o = p.out.at(samc_att_split(bi, a.win_nx, a.o_sb, a.o_sby) + h * a.o_sh +
                                           samc_att_split(qi, a.q_tw, a.o_st, a.o_sty));
            for (int d = half; d < D; d += 2) o.put(d, l > 0.0f ? ow[row * L.ldo + d] / l : 0.0f);
        }
        __syncwarp(); /* the warp's reads of ow are done before the next pair reuses it */
    }
}
#endif

/* The kernel: bf16 WMMA exists from sm_80, fp16 from sm_70; the code for older targets
 * (the sm_75 / sm_61 SASS of the build) is a trap the launcher never reaches (it checks
 * the device's capability). */
template <int NF, int WARPS, class T>
__global__ void __launch_bounds__(WARPS * 32)
attention_tc_kernel(const samc_attention_args a, const atc_views<T> p, int vec) {
    /* no static shared memory here, so the dynamic area starts the block's window, more
     * than 32-byte aligned; float4 declares the 16 bytes the language guarantees */
    extern __shared__ float4 atc_smem4[];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700
    __trap();
#else
    unsigned char *atc_smem = (unsigned char *)atc_smem4;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same<T, __nv_bfloat16>::value) __trap();
    else atc_body<NF, WARPS, T>(a, p, vec, atc_smem);
#else
    atc_body<NF, WARPS, T>(a, p, vec, atc_smem);
#endif
#endif
}

/* The instances of one element type: [NF - 1][WARPS == 8]. */
template <class T> struct atc_table {
    typedef void (*fn)(const samc_attention_args, const atc_views<T>, int);
    static constexpr fn k[ATC_MAX_NF][2] = {
        { attention_tc_kernel<1, 4, T>, attention_tc_kernel<1, 8, T> },
        { attention_tc_kernel<2, 4, T>, attention_tc_kernel<2, 8, T> },
        { attention_tc_kernel<3, 4, T>, attention_tc_kernel<3, 8, T> },
        { attention_tc_kernel<4, 4, T>, attention_tc_kernel<4, 8, T> },
        { attention_tc_kernel<5, 4, T>, attention_tc_kernel<5, 8, T> },
        { attention_tc_kernel<6, 4, T>, attention_tc_kernel<6, 8, T> },
        { attention_tc_kernel<7, 4, T>, attention_tc_kernel<7, 8, T> },
        { attention_tc_kernel<8, 4, T>, attention_tc_kernel<8, 8, T> },
    };
};

/* Raises the dynamic shared memory limit of the instances that need it; marks which fit. */
static int atc_ok[ATC_MAX_NF][2];
template <class T> static int atc_prepare_type(samc_cuda_ctx *c) {
    for (int nf = 1; nf <= ATC_MAX_NF; nf++)
        for (int w8 = 0; w8 < 2; w8++) {
            size_t need = atc_layout_of(nf, w8 ? 128 : 64).total;
            cudaFuncAttributes fa;
            atc_ok[nf - 1][w8] = 0;
            if (CUDA_CHECK(c, cudaFuncGetAttributes(&fa, atc_table<T>::k[nf - 1][w8]))) return -1;
            if (need + fa.sharedSizeBytes > c->smem_optin) continue;
            if (need > 48 * 1024 && CUDA_CHECK(c, cudaFuncSetAttribute(atc_table<T>::k[nf - 1][w8],
                                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                                       (int)need)))
                return -1;
            atc_ok[nf - 1][w8] = 1;
        }
    return 0;
}

/* bf16 WMMA needs sm_80, fp16 sm_70: older devices keep the FMA kernel. */
int attention_tc_prepare(samc_cuda_ctx *c) {
    if (c->cc < 70) return 0;
    if (atc_prepare_type<__half>(c)) return -1;
    return c->cc >= 80 ? atc_prepare_type<__nv_bfloat16>(c) : 0;
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <class T>
static void atc_launch_type(samc_cuda_ctx *c, const samc_attention_args *a, const void *q, const void *k,
                            const void *v, cuda_arg out, int nf, int warps8, dim3 grid, size_t smem, int vec) {
    atc_views<T> pv = { (const T *)q, (const T *)k, (const T *)v, dst_of<T>(out) };
    atc_table<T>::k[nf - 1][warps8]<<<grid, warps8 ? 256 : 128, smem, c->stream>>>(*a, pv, vec);
}

/* Launches the tensor-core kernel when it applies: 16-bit q, k, v of this backend's
 * format, head dim <= 128, at least one key, the instance prepared. 1 when launched. */
int attention_tc_launch(samc_cuda_ctx *c, const samc_attention_args *a, const void *q, const void *k,
                        const void *v, cuda_arg out, int warps8) {
    const int nf = (a->head_dim + 15) / 16;
    const int bf16 = c->lp_type == SAMC_OPS_BF16;
    if (a->n_kv <= 0 || nf > ATC_MAX_NF || !cuda_tc16(c) || !atc_ok[nf - 1][warps8]) return 0;
    const long long bh = (long long)a->batch * a->heads;
    const int bq = warps8 ? 128 : 64;
    /* 16-byte vectors: every row start (base + b, h, t strides, the window geometry's too)
     * a multiple of 8 elements */
    int vec = a->head_dim % 8 == 0 && aligned16(q) && aligned16(k) && aligned16(v);
    const ptrdiff_t st[15] = { a->q_sb, a->q_sh, a->q_st, a->k_sb, a->k_sh, a->k_st, a->v_sb, a->v_sh, a->v_st,
                               a->q_sby, a->q_sty, a->k_sby, a->k_sty, a->v_sby, a->v_sty };
    for (int i = 0; i < 15; i++) vec = vec && st[i] % 8 == 0;
    dim3 grid((unsigned)((a->n_q + bq - 1) / bq), (unsigned)(bh < 65535 ? bh : 65535));
    size_t smem = atc_layout_of(nf, bq).total;
    if (bf16) atc_launch_type<__nv_bfloat16>(c, a, q, k, v, out, nf, warps8, grid, smem, vec);
    else atc_launch_type<__half>(c, a, q, k, v, out, nf, warps8, grid, smem, vec);
    return 1;
}
