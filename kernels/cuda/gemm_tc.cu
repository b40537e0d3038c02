/* kernels/cuda/gemm_tc.cu: the 16-bit linear as our own tensor-core GEMM with the whole
 * epilogue in its store (switch GEMM=tc / lt_tc, variants.txt):
 *
 *   y[m, n] = act(Σ_k x[m, k] · w[n, k] + bias[n]) + r[m, n]
 *
 * x [M, K] and w [N, K] 16-bit (bf16 / fp16, row-major: nn.Linear's weight as stored),
 * fp32 accumulation (WMMA m16n16k16), bias, activation (nn.GELU's erf form, or ReLU) and
 * residual in fp32 on the accumulator, one rounding on the store of y (fp32 or 16-bit, as
 * lowp.cu says; bias and residual likewise either). This is what cuBLAS cannot give:
 * cuBLASLt's GELU epilogue is the tanh approximation, so with cublasGemmEx / cuBLASLt the
 * MLP's first linear writes its output, then an own pass reads it, applies GELU and writes
 * it again (Hiera-L, stage 1: 75 MB x 3 per block instead of 75 MB once).
 *
 * Tiling: a block computes a BM x BN tile of y with WM x WN warps (each a 32 x (BN / WN)
 * piece: 2 x NJ accumulator fragments); K goes by in steps of 32, staged in shared memory
 * in two buffers: while the warps multiply out of one, the next step's tiles are already
 * in registers (loaded before the multiply) and go to the other buffer after it, so one
 * barrier per step suffices. x rows and w rows are both K-contiguous, so both tiles are
 * [rows][32] in shared memory: x as WMMA's row-major A, w as a column-major B. Rows past
 * M / N and columns past K are zeros. The epilogue goes fragment by fragment through a
 * 16 x 16 fp32 patch per warp (WMMA does not say which accumulator element is which).
 *
 * Two tile shapes: 128 x 128 (8 warps) and 64 x 64 (4 warps) for products whose big-tile
 * grid would not fill the device (the decoder's few tokens, SAM3's text). Whether this
 * beats cuBLAS + the own pass is the GPU check's question (its variants stage times
 * GEMM=gemmex|lt|tc|lt_tc on the GPU it runs on): WMMA is mma.sync, not Hopper's wgmma,
 * and the loads are not cp.async, so a large square product runs slower than cuBLAS's;
 * it wins where the traffic it saves is most of the time (small K: Hiera's stage 1 and 2
 * MLPs have K = 144 / 288 at Hiera-L, 96 / 192 at tiny). */
#include "kernels/cuda/cuda_common.cuh"
#include <mma.h>
#include <type_traits>

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700 /* CUDA 11.8 has no nvcuda::wmma below sm_70 */
using namespace nvcuda;
#endif

#define GTC_BK 32            /* K per step */
#define GTC_LD (GTC_BK + 8)  /* shared row stride (elements): 80 bytes, a multiple of 16 */
#define GTC_LDP 20           /* the epilogue patch's stride (floats) */

/* What the kernel reads and writes: y = act(x wᵀ + bias) + r. */
template <class T> struct gtc_args {
    const T *x, *w;   /* [M, K], [N, K], 16-bit */
    cuda_dst<T> y;    /* [M, N] */
    cuda_src<T> bias; /* [N] or p NULL */
    cuda_src<T> r;    /* [M, N] or p NULL */
    int M, N, K, act;
    int vec;  /* x, w: K a multiple of 8, both 16-byte aligned (16-byte loads) */
    int yvec; /* y: 16-bit, N a multiple of 8, 16-byte aligned (16-byte stores) */
};

/* rows [row0, row0 + ROWS) x columns [k0, k0 + 32) of a row-major [rows, K] matrix in
 * 8-element chunks, CHUNKS per thread (ROWS * 4 = CHUNKS * threads): 16-byte loads when
 * vec (K a multiple of 8, the base 16-byte aligned), else element by element; zeros
 * outside the matrix. */
template <class T, int CHUNKS> struct gtc_stage {
    uint4 v[CHUNKS];
    __device__ __forceinline__ void load(const T *src, int rows, int K, int row0, int k0, int vec) {
#pragma unroll
        for (int i = 0; i < CHUNKS; i++) {
            const int c = threadIdx.x + i * blockDim.x, r = row0 + (c >> 2), k = k0 + (c & 3) * 8;
            v[i] = uint4{ 0, 0, 0, 0 };
            if (r >= rows) continue;
            const T *p = src + (size_t)r * K + k;
            if (vec) {
                if (k < K) v[i] = *(const uint4 *)p;
            } else {
                alignas(16) T e[8];
                for (int j = 0; j < 8; j++) e[j] = k + j < K ? p[j] : lp_from<T>(0.0f);
                v[i] = *(const uint4 *)e;
            }
        }
    }
    __device__ __forceinline__ void store(T *dst) const {
#pragma unroll
        for (int i = 0; i < CHUNKS; i++) {
            const int c = threadIdx.x + i * blockDim.x;
            *(uint4 *)(dst + (c >> 2) * GTC_LD + (c & 3) * 8) = v[i];
        }
    }
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700
/* One block: the tile of y at (blockIdx.y * BM, blockIdx.x * BN). */
template <int BM, int BN, int WM, int WN, class T>
__device__ __forceinline__ void gtc_body(const gtc_args<T> &a, T *smem) {
    constexpr int THREADS = WM * WN * 32, NI = BM / WM / 16, NJ = BN / WN / 16;
    constexpr int CA = BM * 4 / THREADS, CB = BN * 4 / THREADS; /* 8-element chunks per thread */
    static_assert(CA * THREADS == BM * 4 && CB * THREADS == BN * 4, "tile and threads");
    T *as[2] = { smem, smem + BM * GTC_LD };
    T *bs[2] = { smem + 2 * BM * GTC_LD, smem + 2 * BM * GTC_LD + BN * GTC_LD };
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wm = warp / WN, wn = warp % WN;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, steps = (a.K + GTC_BK - 1) / GTC_BK;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NI][NJ];
#pragma unroll
    for (int i = 0; i < NI; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    gtc_stage<T, CA> sa;
    gtc_stage<T, CB> sb;
    sa.load(a.x, a.M, a.K, m0, 0, a.vec);
    sb.load(a.w, a.N, a.K, n0, 0, a.vec);
    sa.store(as[0]);
    sb.store(bs[0]);
    __syncthreads();
    for (int s = 0; s < steps; s++) {
        const int cur = s & 1;
        if (s + 1 < steps) { /* the next step's tiles into registers, in flight during the MMAs */
            sa.load(a.x, a.M, a.K, m0, (s + 1) * GTC_BK, a.vec);
            sb.load(a.w, a.N, a.K, n0, (s + 1) * GTC_BK, a.vec);
        }
#pragma unroll
        for (int kk = 0; kk < GTC_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[NI];
#pragma unroll
            for (int i = 0; i < NI; i++)
                wmma::load_matrix_sync(fa[i], as[cur] + (wm * NI * 16 + i * 16) * GTC_LD + kk, GTC_LD);
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                /* w's rows are y's columns: B[k][n] = w[n][k], a column-major B */
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
                wmma::load_matrix_sync(fb, bs[cur] + (wn * NJ * 16 + j * 16) * GTC_LD + kk, GTC_LD);
#pragma unroll
                for (int i = 0; i < NI; i++) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
            }
        }
        if (s + 1 < steps) { /* the other buffer's last readers passed the previous barrier */
            sa.store(as[cur ^ 1]);
            sb.store(bs[cur ^ 1]);
        }
        __syncthreads();
    }

    /* the epilogue, through the warp's 16 x 16 patch (the staging buffers are free: the
     * loop ended on a barrier); two lanes per row, 8 columns each */
    float *patch = (float *)smem + warp * 16 * GTC_LDP;
    const int pr = lane >> 1, pc = (lane & 1) * 8;
#pragma unroll
    for (int i = 0; i < NI; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            wmma::store_matrix_sync(patch, acc[i][j], GTC_LDP, wmma::mem_row_major);
            __syncwarp();
            const int m = m0 + wm * NI * 16 + i * 16 + pr, nb = n0 + wn * NJ * 16 + j * 16 + pc;
            if (m < a.M && nb < a.N) {
                const int ne = a.N - nb < 8 ? a.N - nb : 8;
                alignas(16) T out[8];
                for (int e = 0; e < ne; e++) {
                    const int n = nb + e;
                    const size_t o = (size_t)m * a.N + n;
                    float v = patch[pr * GTC_LDP + pc + e];
                    if (a.bias.p) v += a.bias[n];
                    v = cuda_act(v, a.act);
                    if (a.r.p) v = a.r[o] + v;
                    if (a.yvec) out[e] = lp_from<T>(v);
                    else a.y.put(o, v);
                }
                if (a.yvec) *(uint4 *)((T *)a.y.p + (size_t)m * a.N + nb) = *(const uint4 *)out;
            }
            __syncwarp(); /* the lanes' reads of the patch are done before the next store */
        }
}

/* Both staging buffers; the epilogue's patches (WM * WN * 16 * GTC_LDP floats) fit in
 * them. WMMA wants 32-byte aligned fragment pointers: every fragment starts a multiple of
 * 32 bytes into this array (16 rows of 80 bytes; k offsets 0 / 32 bytes). Declared here,
 * not in the kernel, so that the targets which only trap have no unused array. */
template <int BM, int BN, int WM, int WN, class T>
__device__ __forceinline__ void gtc_run(const gtc_args<T> &a) {
    __shared__ __align__(128) uint4 gtc_smem4[2 * (BM + BN) * GTC_LD * sizeof(T) / 16];
    static_assert(WM * WN * 16 * GTC_LDP * 4 <= 2 * (BM + BN) * GTC_LD * sizeof(T), "patches fit the buffers");
    gtc_body<BM, BN, WM, WN, T>(a, (T *)gtc_smem4);
}
#endif

/* The kernel: bf16 WMMA exists from sm_80, fp16 from sm_70; the code for older targets
 * is a trap the launcher never reaches (it checks the device's capability). */
template <int BM, int BN, int WM, int WN, class T>
__global__ void __launch_bounds__(WM * WN * 32) gemm_tc_kernel(const gtc_args<T> a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700
    __trap();
#else
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same<T, __nv_bfloat16>::value) __trap();
    else gtc_run<BM, BN, WM, WN, T>(a);
#else
    gtc_run<BM, BN, WM, WN, T>(a);
#endif
#endif
}

template <class T>
static void gtc_launch_type(samc_cuda_ctx *c, const gtc_args<T> &a, int big) {
    if (big) {
        dim3 grid((unsigned)((a.N + 127) / 128), (unsigned)((a.M + 127) / 128));
        gemm_tc_kernel<128, 128, 4, 2, T><<<grid, 256, 0, c->stream>>>(a);
    } else {
        dim3 grid((unsigned)((a.N + 63) / 64), (unsigned)((a.M + 63) / 64));
        gemm_tc_kernel<64, 64, 2, 2, T><<<grid, 128, 0, c->stream>>>(a);
    }
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

int gemm_tc_launch(samc_cuda_ctx *c, int M, int N, int K, const void *x, const void *w, cuda_arg y, cuda_arg bias,
                   cuda_arg r, int act) {
    const int bf16 = c->lp_type == SAMC_OPS_BF16;
    if (!c->tracking || !cuda_tc16(c) || M <= 0 || N <= 0 || K <= 0) return 0;
    /* grid rows past 65535 tiles: never at SAM sizes (8.4 M tokens); cuBLAS takes them */
    if ((M + 63) / 64 > 65535) return 0;
    const int vec = K % 8 == 0 && aligned16(x) && aligned16(w);
    const int yvec = !y.f32 && N % 8 == 0 && aligned16(y.p);
    /* the big tiles unless their grid leaves part of the device idle */
    const long long big_tiles = (long long)((M + 127) / 128) * ((N + 127) / 128);
    const int big = big_tiles >= c->sm_count;
    if (bf16) {
        gtc_args<__nv_bfloat16> a = { (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w, dst_of<__nv_bfloat16>(y),
                                      src_of<__nv_bfloat16>(bias), src_of<__nv_bfloat16>(r), M, N, K, act, vec, yvec };
        gtc_launch_type(c, a, big);
    } else {
        gtc_args<__half> a = { (const __half *)x, (const __half *)w, dst_of<__half>(y), src_of<__half>(bias),
                               src_of<__half>(r), M, N, K, act, vec, yvec };
        gtc_launch_type(c, a, big);
    }
    return 1;
}
