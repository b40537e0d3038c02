/* kernels/cuda/attention.cu: softmax(scale · q kᵀ) v over the strided views of
 * samc_attention_args (kernels/ops.h), fp32 throughout. This is what
 * F.scaled_dot_product_attention computes in sam2's Hiera MultiScaleAttention
 * (backbones/hieradet.py) and the decoder's Attention (modeling/sam/transformer.py).
 *
 * Flash-style (online softmax): a block takes 32 queries of one (batch, head), walks the
 * keys in tiles of 64 held in shared memory, and keeps per query the running max m, the
 * running sum l of exp(s - m) and the unnormalised output o, rescaled by exp(m_old - m)
 * whenever the max grows; out = o / l at the end. Nothing of size n_kv is stored, so
 * any n_kv works. The scores differ from the reference's two-pass softmax only by
 * rounding.
 *
 * Work split: 4 warps x 8 queries. Scores: lane j owns keys j and j+32 of the tile and
 * the 8 query rows come from shared memory as broadcast float4s. P·V: lane owns the
 * output dims lane + 32c (c < DC) and the probabilities come back from shared memory as
 * broadcast float4s. The head dim is padded with zeros to DP = 32*DC, DC = ceil(hd/32)
 * a template parameter (1..8: hd <= 256) so the accumulators stay in registers. Wider
 * heads, or a device without the shared memory for a DC, take a slow generic kernel. */
#include "kernels/cuda/cuda_common.cuh"

#define ATT_WARPS 4
#define ATT_QW 8                       /* queries per warp */
#define ATT_BQ (ATT_WARPS * ATT_QW)    /* queries per block */
#define ATT_BK 64                      /* keys per tile: two per lane */
#define ATT_MAX_DC 8                   /* head_dim <= 256 on the tiled path */

/* Shared memory of the tiled kernel, in floats: Q [BQ][DP], one K-or-V tile [BK][KS],
 * probabilities [warps][QW][BK]. KS = DP + 4 makes the row pitch an odd number of
 * float4s, so the lanes' float4 reads of 8 different K rows hit distinct banks. */
static size_t att_smem_bytes(int dc) {
    size_t dp = (size_t)32 * dc, ks = dp + 4;
    return sizeof(float) * ((size_t)ATT_BQ * dp + (size_t)ATT_BK * ks + (size_t)ATT_WARPS * ATT_QW * ATT_BK);
}

/* Stages rows [row0, row0 + n) of a K or V view, columns [0, DP), into dst [BK][KS]:
 * zeros past the head dim and past the last row, so padded dims add nothing to the
 * scores and padded keys (probability 0) never bring NaN/Inf garbage into P·V. */
template <int DP, int KS>
__device__ __forceinline__ void att_load_tile(float *dst, const float *src, ptrdiff_t st, int n, int D) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < ATT_BK; r += ATT_WARPS) {
        const float *s = src + (ptrdiff_t)r * st;
#pragma unroll
        for (int d0 = 0; d0 < DP; d0 += 32) {
            int d = d0 + lane;
            dst[r * KS + d] = (r < n && d < D) ? s[d] : 0.0f;
        }
    }
}

template <int DC>
__global__ void __launch_bounds__(ATT_WARPS * 32) attention_tiled_kernel(const samc_attention_args a) {
    constexpr int DP = 32 * DC, KS = DP + 4;
    extern __shared__ float4 att_smem4[];
    float *qs = (float *)att_smem4;        /* [BQ][DP] */
    float *kv = qs + ATT_BQ * DP;          /* [BK][KS] */
    float *ps = kv + ATT_BK * KS;          /* [WARPS][QW][BK] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int D = a.head_dim, D4 = (D + 3) & ~3;
    const int q0 = blockIdx.x * ATT_BQ;
    const int BH = a.batch * a.heads;
    float *pw = ps + warp * ATT_QW * ATT_BK;

    for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
        const int bi = bh / a.heads, h = bh % a.heads;
        const float *qb = a.q + bi * a.q_sb + h * a.q_sh;
        const float *kb = a.k + bi * a.k_sb + h * a.k_sh;
        const float *vb = a.v + bi * a.v_sb + h * a.v_sh;
        float *ob = a.out + bi * a.o_sb + h * a.o_sh;

        __syncthreads(); /* the previous (batch, head) is done with qs */
        for (int r = warp; r < ATT_BQ; r += ATT_WARPS) {
            const int i = q0 + r;
            const float *s = qb + (ptrdiff_t)i * a.q_st;
#pragma unroll
            for (int d0 = 0; d0 < DP; d0 += 32) {
                int d = d0 + lane;
                qs[r * DP + d] = (i < a.n_q && d < D) ? s[d] : 0.0f;
            }
        }

        float o[ATT_QW][DC], m[ATT_QW], l[ATT_QW];
#pragma unroll
        for (int qi = 0; qi < ATT_QW; qi++) {
            m[qi] = -INFINITY;
            l[qi] = 0.0f;
#pragma unroll
            for (int c = 0; c < DC; c++) o[qi][c] = 0.0f;
        }
        const float *qw = qs + warp * ATT_QW * DP;

        for (int k0 = 0; k0 < a.n_kv; k0 += ATT_BK) {
            const int nk = min(ATT_BK, a.n_kv - k0);
            __syncthreads(); /* qs written; the previous tile's V readers are done */
            att_load_tile<DP, KS>(kv, kb + (ptrdiff_t)k0 * a.k_st, a.k_st, nk, D);
            __syncthreads();

            /* s[qi][0..1] = <q_qi, k_lane>, <q_qi, k_lane+32>, summed along d in order */
            float s[ATT_QW][2];
#pragma unroll
            for (int qi = 0; qi < ATT_QW; qi++) s[qi][0] = s[qi][1] = 0.0f;
            const float *k0p = kv + lane * KS, *k1p = kv + (lane + 32) * KS;
            for (int d = 0; d < D4; d += 4) {
                const float4 ka = *(const float4 *)(k0p + d), kb4 = *(const float4 *)(k1p + d);
#pragma unroll
                for (int qi = 0; qi < ATT_QW; qi++) {
                    const float4 qv = *(const float4 *)(qw + qi * DP + d);
                    s[qi][0] = fmaf(qv.x, ka.x, s[qi][0]);
                    s[qi][0] = fmaf(qv.y, ka.y, s[qi][0]);
                    s[qi][0] = fmaf(qv.z, ka.z, s[qi][0]);
                    s[qi][0] = fmaf(qv.w, ka.w, s[qi][0]);
                    s[qi][1] = fmaf(qv.x, kb4.x, s[qi][1]);
                    s[qi][1] = fmaf(qv.y, kb4.y, s[qi][1]);
                    s[qi][1] = fmaf(qv.z, kb4.z, s[qi][1]);
                    s[qi][1] = fmaf(qv.w, kb4.w, s[qi][1]);
                }
            }

            /* online softmax; key lane < nk always holds for lane 0, so the tile max is
             * finite and exp(-inf - m) = 0 drops the padded keys */
#pragma unroll
            for (int qi = 0; qi < ATT_QW; qi++) {
                const float s0 = lane < nk ? s[qi][0] * a.scale : -INFINITY;
                const float s1 = lane + 32 < nk ? s[qi][1] * a.scale : -INFINITY;
                const float mn = fmaxf(m[qi], warp_max(fmaxf(s0, s1)));
                const float corr = expf(m[qi] - mn); /* 0 on the first tile: m = -inf */
                const float p0 = expf(s0 - mn), p1 = expf(s1 - mn);
                l[qi] = l[qi] * corr + warp_sum(p0 + p1);
                m[qi] = mn;
#pragma unroll
                for (int c = 0; c < DC; c++) o[qi][c] *= corr;
                pw[qi * ATT_BK + lane] = p0;
                pw[qi * ATT_BK + lane + 32] = p1;
            }
            __syncthreads(); /* every warp is done with K (and its own pw is visible) */
            att_load_tile<DP, KS>(kv, vb + (ptrdiff_t)k0 * a.v_st, a.v_st, nk, D);
            __syncthreads();

            /* o[qi][c] += sum_j p[qi][j] * v[j][lane + 32c]; padded keys have p = 0, v = 0 */
            const int nk4 = (nk + 3) & ~3;
            for (int j = 0; j < nk4; j += 4) {
                float v[4][DC];
#pragma unroll
                for (int t = 0; t < 4; t++)
#pragma unroll
                    for (int c = 0; c < DC; c++) v[t][c] = kv[(j + t) * KS + lane + 32 * c];
#pragma unroll
                for (int qi = 0; qi < ATT_QW; qi++) {
                    const float4 p = *(const float4 *)(pw + qi * ATT_BK + j);
#pragma unroll
                    for (int c = 0; c < DC; c++) {
                        o[qi][c] = fmaf(p.x, v[0][c], o[qi][c]);
                        o[qi][c] = fmaf(p.y, v[1][c], o[qi][c]);
                        o[qi][c] = fmaf(p.z, v[2][c], o[qi][c]);
                        o[qi][c] = fmaf(p.w, v[3][c], o[qi][c]);
                    }
                }
            }
        }

        /* n_kv == 0 leaves l = 0: the reference's output is then all zeros */
#pragma unroll
        for (int qi = 0; qi < ATT_QW; qi++) {
            const int i = q0 + warp * ATT_QW + qi;
            if (i >= a.n_q) break;
            float *dst = ob + (ptrdiff_t)i * a.o_st;
#pragma unroll
            for (int c = 0; c < DC; c++) {
                const int d = lane + 32 * c;
                if (d < D) dst[d] = l[qi] > 0.0f ? o[qi][c] / l[qi] : 0.0f;
            }
        }
    }
}

/* Any head_dim: one block per (batch, head, query), threads over d, one key at a time
 * (a block reduction per key), the running output kept in the out row itself. Slow;
 * for head dims past 256 (none in SAM2.1) or a device short of shared memory. */
#define ATT_WIDE_THREADS 256
__global__ void __launch_bounds__(ATT_WIDE_THREADS) attention_wide_kernel(const samc_attention_args a) {
    __shared__ float red[ATT_WIDE_THREADS / 32];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int D = a.head_dim;
    const long long rows = (long long)a.batch * a.heads * a.n_q;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const int i = (int)(row % a.n_q), bh = (int)(row / a.n_q);
        const int bi = bh / a.heads, h = bh % a.heads;
        const float *q = a.q + bi * a.q_sb + h * a.q_sh + (ptrdiff_t)i * a.q_st;
        const float *kb = a.k + bi * a.k_sb + h * a.k_sh;
        const float *vb = a.v + bi * a.v_sb + h * a.v_sh;
        float *out = a.out + bi * a.o_sb + h * a.o_sh + (ptrdiff_t)i * a.o_st;
        for (int d = tid; d < D; d += ATT_WIDE_THREADS) out[d] = 0.0f;
        float m = -INFINITY, l = 0.0f;
        for (int j = 0; j < a.n_kv; j++) {
            const float *k = kb + (ptrdiff_t)j * a.k_st, *v = vb + (ptrdiff_t)j * a.v_st;
            float part = 0.0f;
            for (int d = tid; d < D; d += ATT_WIDE_THREADS) part = fmaf(q[d], k[d], part);
            part = warp_sum(part);
            __syncthreads(); /* the previous key's readers of red are done */
            if (lane == 0) red[warp] = part;
            __syncthreads();
            float dot = 0.0f;
#pragma unroll
            for (int w = 0; w < ATT_WIDE_THREADS / 32; w++) dot += red[w];
            const float s = dot * a.scale, mn = fmaxf(m, s);
            const float corr = expf(m - mn), p = expf(s - mn);
            l = l * corr + p;
            m = mn;
            for (int d = tid; d < D; d += ATT_WIDE_THREADS) out[d] = out[d] * corr + p * v[d];
        }
        for (int d = tid; d < D; d += ATT_WIDE_THREADS) out[d] = l > 0.0f ? out[d] / l : 0.0f;
    }
}

typedef void (*att_kernel_fn)(const samc_attention_args);
static const att_kernel_fn att_tiled[ATT_MAX_DC + 1] = {
    NULL,
    attention_tiled_kernel<1>, attention_tiled_kernel<2>, attention_tiled_kernel<3>, attention_tiled_kernel<4>,
    attention_tiled_kernel<5>, attention_tiled_kernel<6>, attention_tiled_kernel<7>, attention_tiled_kernel<8>,
};

/* Which DC the tiled kernel may run on this device (set by attention_cuda_prepare). One
 * process-wide table: the attribute is per function and device, and every backend on a
 * device sets the same values. */
static int att_dc_ok[ATT_MAX_DC + 1];

/* At create: checks the kernels exist for this GPU (a build for other architectures
 * fails here, not at the first forward) and raises the dynamic shared memory limit of
 * the instances that need more than the default 48 KB. */
int attention_cuda_prepare(samc_cuda_ctx *c) {
    cudaFuncAttributes fa;
    if (CUDA_CHECK(c, cudaFuncGetAttributes(&fa, attention_wide_kernel))) return -1;
    for (int dc = 1; dc <= ATT_MAX_DC; dc++) {
        size_t need = att_smem_bytes(dc);
        att_dc_ok[dc] = 0;
        if (CUDA_CHECK(c, cudaFuncGetAttributes(&fa, att_tiled[dc]))) return -1;
        if (need + fa.sharedSizeBytes > c->smem_optin) continue; /* wide kernel instead */
        if (need > 48 * 1024 &&
            CUDA_CHECK(c, cudaFuncSetAttribute(att_tiled[dc], cudaFuncAttributeMaxDynamicSharedMemorySize, (int)need)))
            return -1;
        att_dc_ok[dc] = 1;
    }
    return 0;
}

void attention_cuda(const samc_ops *o, const samc_attention_args *a) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (a->batch <= 0 || a->heads <= 0 || a->n_q <= 0 || a->head_dim <= 0) return;
    const int dc = (a->head_dim + 31) / 32;
    const long long bh = (long long)a->batch * a->heads;
    if (bh > 0x7fffffffLL || (long long)a->n_q * bh > 0x7fffffffffffLL) {
        cuda_fail(c, __FILE__, __LINE__, "attention", "batch * heads too large");
        return;
    }
    if (dc <= ATT_MAX_DC && att_dc_ok[dc]) {
        dim3 grid((unsigned)((a->n_q + ATT_BQ - 1) / ATT_BQ), (unsigned)(bh < 65535 ? bh : 65535));
        att_tiled[dc]<<<grid, ATT_WARPS * 32, att_smem_bytes(dc), c->stream>>>(*a);
    } else {
        long long rows = bh * a->n_q;
        unsigned blocks = (unsigned)(rows < 0x7fffffffLL ? rows : 0x7fffffffLL);
        attention_wide_kernel<<<blocks, ATT_WIDE_THREADS, 0, c->stream>>>(*a);
    }
    CUDA_OP_DONE(c, "attention");
}
