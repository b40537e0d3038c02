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
 * heads, or a device without the shared memory for a DC, take a slow generic kernel.
 * Both are templates over the 16-bit format T (cuda_common.cuh): q, k, v and out are each
 * fp32 or T as lowp.cu says, and everything is computed in fp32 as in fp32 mode (the
 * tensor-core kernel of the reduced modes is attention_tc.cu). */
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

/* Stages rows [row0, row0 + n) of a K or V view (row t at samc_att_split(t, tw, st, sty):
 * the window geometry of kernels/ops.h), columns [0, DP), into dst [BK][KS]:
 * zeros past the head dim and past the last row, so padded dims add nothing to the
 * scores and padded keys (probability 0) never bring NaN/Inf garbage into P·V. */
template <int DP, int KS, class T>
__device__ __forceinline__ void att_load_tile(float *dst, cuda_src<T> src, int row0, int tw, ptrdiff_t st,
                                              ptrdiff_t sty, int n, int D) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < ATT_BK; r += ATT_WARPS) {
        /* row0 + r past the view (r >= n) is never read: any offset will do */
        const cuda_src<T> s = src.at(samc_att_split(row0 + r, tw, st, sty));
#pragma unroll
        for (int d0 = 0; d0 < DP; d0 += 32) {
            int d = d0 + lane;
            dst[r * KS + d] = (r < n && d < D) ? s[d] : 0.0f;
        }
    }
}

/* Element d of the q row at s (samc_att_q_tok): with q_pool the max of its 2x2 cell
 * (Hiera's q_pool fused: the max of four values is one of them, so exact in any type). */
template <class T>
__device__ __forceinline__ float att_qd(const samc_attention_args &a, const cuda_src<T> &s, int d) {
    if (!a.q_pool) return s[d];
    return fmaxf(fmaxf(s[d], s[d + a.q_st]), fmaxf(s[d + a.q_sty], s[d + a.q_sty + a.q_st]));
}

/* The four tensors of samc_attention_args, resolved (lowp.cu), and the split of the keys:
 * block z of the grid's z dimension takes keys [z * kv_chunk, (z + 1) * kv_chunk); with
 * more than one split, each writes its unnormalised o and its m, l per query to part
 * (part[((z * BH + bh) * n_q + i) * (D + 2) + d], m and l after the D values), and
 * att_combine_kernel merges them. One split: kv_chunk >= n_kv, part NULL. */
template <class T> struct att_views {
    cuda_src<T> q, k, v;
    cuda_dst<T> out;
    int kv_chunk;
    float *part;
};

template <int DC, class T>
__global__ void __launch_bounds__(ATT_WARPS * 32) attention_tiled_kernel(const samc_attention_args a,
                                                                         const att_views<T> p) {
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
        const cuda_src<T> qb = p.q.at(samc_att_split(bi, a.win_nx, a.q_sb, a.q_sby) + h * a.q_sh);
        const cuda_src<T> kb = p.k.at(samc_att_split(bi, a.win_nx, a.k_sb, a.k_sby) + h * a.k_sh);
        const cuda_src<T> vb = p.v.at(samc_att_split(bi, a.win_nx, a.v_sb, a.v_sby) + h * a.v_sh);
        const cuda_dst<T> ob = p.out.at(samc_att_split(bi, a.win_nx, a.o_sb, a.o_sby) + h * a.o_sh);

        __syncthreads(); /* the previous (batch, head) is done with qs */
        for (int r = warp; r < ATT_BQ; r += ATT_WARPS) {
            const int i = q0 + r;
            const cuda_src<T> s = qb.at(samc_att_q_tok(&a, i));
#pragma unroll
            for (int d0 = 0; d0 < DP; d0 += 32) {
                int d = d0 + lane;
                qs[r * DP + d] = (i < a.n_q && d < D) ? att_qd(a, s, d) : 0.0f;
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

        const int kend = min(a.n_kv, (int)blockIdx.z * p.kv_chunk + p.kv_chunk);
        for (int k0 = blockIdx.z * p.kv_chunk; k0 < kend; k0 += ATT_BK) {
            const int nk = min(ATT_BK, kend - k0);
            __syncthreads(); /* qs written; the previous tile's V readers are done */
            att_load_tile<DP, KS>(kv, kb, k0, a.kv_tw, a.k_st, a.k_sty, nk, D);
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
            att_load_tile<DP, KS>(kv, vb, k0, a.kv_tw, a.v_st, a.v_sty, nk, D);
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
            if (p.part) { /* one split of several: the partial sums */
                float *pr = p.part + (((size_t)blockIdx.z * BH + bh) * a.n_q + i) * (D + 2);
#pragma unroll
                for (int c = 0; c < DC; c++)
                    if (lane + 32 * c < D) pr[lane + 32 * c] = o[qi][c];
                if (lane == 0) pr[D] = m[qi], pr[D + 1] = l[qi];
                continue;
            }
            const cuda_dst<T> dst = ob.at(samc_att_split(i, a.q_tw, a.o_st, a.o_sty));
#pragma unroll
            for (int c = 0; c < DC; c++) {
                const int d = lane + 32 * c;
                if (d < D) dst.put(d, l[qi] > 0.0f ? o[qi][c] / l[qi] : 0.0f);
            }
        }
    }
}

/* Any head_dim: one block per (batch, head, query), threads over d, one key at a time
 * (a block reduction per key), the running output kept in acc: the out row itself when
 * it is fp32, else a row of the fp32 scratch per block.
 * Slow; for head dims past 256 (none in SAM2.1) or a device short of shared memory. */
#define ATT_WIDE_THREADS 256
template <class T>
__global__ void __launch_bounds__(ATT_WIDE_THREADS)
attention_wide_kernel(const samc_attention_args a, const att_views<T> pv, float *acc_base) {
    __shared__ float red[ATT_WIDE_THREADS / 32];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int D = a.head_dim;
    const long long rows = (long long)a.batch * a.heads * a.n_q;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const int i = (int)(row % a.n_q), bh = (int)(row / a.n_q);
        const int bi = bh / a.heads, h = bh % a.heads;
        const cuda_src<T> q = pv.q.at(samc_att_split(bi, a.win_nx, a.q_sb, a.q_sby) + h * a.q_sh +
                                      samc_att_q_tok(&a, i));
        const cuda_src<T> kb = pv.k.at(samc_att_split(bi, a.win_nx, a.k_sb, a.k_sby) + h * a.k_sh);
        const cuda_src<T> vb = pv.v.at(samc_att_split(bi, a.win_nx, a.v_sb, a.v_sby) + h * a.v_sh);
        const cuda_dst<T> out = pv.out.at(samc_att_split(bi, a.win_nx, a.o_sb, a.o_sby) + h * a.o_sh +
                                          samc_att_split(i, a.q_tw, a.o_st, a.o_sty));
        /* an fp32 out row is its own accumulator; a 16-bit one gets a scratch row */
        float *acc = out.f32 ? (float *)out.p : acc_base + (size_t)blockIdx.x * D;
        for (int d = tid; d < D; d += ATT_WIDE_THREADS) acc[d] = 0.0f;
        float m = -INFINITY, l = 0.0f;
        for (int j = 0; j < a.n_kv; j++) {
            const cuda_src<T> k = kb.at(samc_att_split(j, a.kv_tw, a.k_st, a.k_sty));
            const cuda_src<T> v = vb.at(samc_att_split(j, a.kv_tw, a.v_st, a.v_sty));
            float part = 0.0f;
            for (int d = tid; d < D; d += ATT_WIDE_THREADS) part = fmaf(att_qd(a, q, d), k[d], part);
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
            for (int d = tid; d < D; d += ATT_WIDE_THREADS) acc[d] = acc[d] * corr + p * v[d];
        }
        for (int d = tid; d < D; d += ATT_WIDE_THREADS) out.put(d, l > 0.0f ? acc[d] / l : 0.0f);
    }
}

/* The tiled instances of one element type, by DC. */
template <class T> struct att_tiled_table {
    typedef void (*fn)(const samc_attention_args, const att_views<T>);
    static constexpr fn k[ATT_MAX_DC + 1] = {
        NULL,
        attention_tiled_kernel<1, T>, attention_tiled_kernel<2, T>, attention_tiled_kernel<3, T>,
        attention_tiled_kernel<4, T>, attention_tiled_kernel<5, T>, attention_tiled_kernel<6, T>,
        attention_tiled_kernel<7, T>, attention_tiled_kernel<8, T>,
    };
};

/* Which DC the tiled kernel may run on this device (set by attention_cuda_prepare). One
 * process-wide table: the attribute is per function and device, and every backend on a
 * device sets the same values (the three element types need the same shared memory). */
static int att_dc_ok[ATT_MAX_DC + 1];

/* At create: checks the kernels exist for this GPU (a build for other architectures
 * fails here, not at the first forward) and raises the dynamic shared memory limit of
 * the instances that need more than the default 48 KB. */
template <class T> static int att_prepare_type(samc_cuda_ctx *c) {
    cudaFuncAttributes fa;
    if (CUDA_CHECK(c, cudaFuncGetAttributes(&fa, attention_wide_kernel<T>))) return -1;
    for (int dc = 1; dc <= ATT_MAX_DC; dc++) {
        size_t need = att_smem_bytes(dc);
        att_dc_ok[dc] = 0;
        if (CUDA_CHECK(c, cudaFuncGetAttributes(&fa, att_tiled_table<T>::k[dc]))) return -1;
        if (need + fa.sharedSizeBytes > c->smem_optin) continue; /* wide kernel instead */
        if (need > 48 * 1024 && CUDA_CHECK(c, cudaFuncSetAttribute(att_tiled_table<T>::k[dc],
                                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                                   (int)need)))
            return -1;
        att_dc_ok[dc] = 1;
    }
    return 0;
}

/* Split-KV partials: 1 Mi floats (4 MiB), allocated at create so that no forward
 * allocates. The decoder's token -> image attention for one prompt (8 heads x 10 queries,
 * head dim 16) needs 1440 floats per split. */
#define ATT_WS_FLOATS ((size_t)1 << 20)

int attention_cuda_prepare(samc_cuda_ctx *c) {
    if (att_prepare_type<__half>(c) || att_prepare_type<__nv_bfloat16>(c) || att_prepare_type<float>(c) ||
        attention_tc_prepare(c) || CUDA_CHECK(c, cudaMalloc((void **)&c->att_ws, ATT_WS_FLOATS * sizeof(float))))
        return -1;
    c->att_ws_floats = ATT_WS_FLOATS;
    return 0;
}

void attention_cuda_release(samc_cuda_ctx *c) {
    if (c->att_ws) cudaFree(c->att_ws);
    c->att_ws = NULL;
    c->att_ws_floats = 0;
}

/* out[b, h, i, :] from the splits' partial (o, m, l): o = sum_z o_z e^(m_z - m) / sum_z
 * l_z e^(m_z - m), m the largest m_z. A thread per output element; the few splits'
 * (m, l) are re-read per element from L1 / L2. */
template <class T>
__global__ void att_combine_kernel(const samc_attention_args a, cuda_dst<T> out, const float *part, int splits) {
    const int D = a.head_dim, BH = a.batch * a.heads;
    const size_t n = (size_t)BH * a.n_q * D, zs = (size_t)BH * a.n_q * (D + 2);
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        const size_t r = idx / D;
        const int d = (int)(idx % D), bh = (int)(r / a.n_q), i = (int)(r % a.n_q);
        const float *p0 = part + r * (D + 2);
        float mx = -INFINITY, l = 0.0f, o = 0.0f;
        for (int z = 0; z < splits; z++) mx = fmaxf(mx, p0[z * zs + D]);
        for (int z = 0; z < splits; z++) {
            const float w = mx == -INFINITY ? 0.0f : expf(p0[z * zs + D] - mx);
            l += p0[z * zs + D + 1] * w;
            o += p0[z * zs + d] * w;
        }
        const int bi = bh / a.heads, h = bh % a.heads;
        out.at(samc_att_split(bi, a.win_nx, a.o_sb, a.o_sby) + h * a.o_sh + samc_att_split(i, a.q_tw, a.o_st, a.o_sty))
            .put(d, l > 0.0f ? o / l : 0.0f);
    }
}

/* How many key splits the tiled kernel gets: enough blocks to fill the device twice when
 * there are few (batch, head, query tile)s, at least one key tile each, within the
 * workspace. 1: no split. */
static int att_splits(const samc_cuda_ctx *c, const samc_attention_args *a, long long blocks) {
    if (c->sw.splitkv_off || !c->att_ws || a->n_kv <= ATT_BK) return 1;
    long long want = 2LL * c->sm_count;
    if (blocks >= want) return 1;
    long long s = (want + blocks - 1) / blocks, tiles = (a->n_kv + ATT_BK - 1) / ATT_BK;
    size_t per = (size_t)a->batch * a->heads * a->n_q * (a->head_dim + 2);
    if (s > tiles) s = tiles;
    if ((size_t)s > c->att_ws_floats / per) s = (long long)(c->att_ws_floats / per);
    return s > 1 ? (int)s : 1;
}

/* The FMA kernels (fp32 activations; a variant in the reduced modes), pointers resolved. */
template <class T> static void attention_fma(samc_cuda_ctx *c, const samc_attention_args *a, att_views<T> p) {
    const int dc = (a->head_dim + 31) / 32;
    const long long bh = (long long)a->batch * a->heads;
    if (dc <= ATT_MAX_DC && att_dc_ok[dc]) {
        const unsigned qt = (unsigned)((a->n_q + ATT_BQ - 1) / ATT_BQ);
        int splits = att_splits(c, a, (long long)qt * (bh < 65535 ? bh : 65535));
        p.kv_chunk = a->n_kv > 0 ? a->n_kv : 1;
        if (splits > 1) {
            int chunk = (a->n_kv + splits - 1) / splits;
            p.kv_chunk = (chunk + ATT_BK - 1) / ATT_BK * ATT_BK;
            splits = (a->n_kv + p.kv_chunk - 1) / p.kv_chunk;
            p.part = c->att_ws;
        }
        dim3 grid(qt, (unsigned)(bh < 65535 ? bh : 65535), (unsigned)splits);
        att_tiled_table<T>::k[dc]<<<grid, ATT_WARPS * 32, att_smem_bytes(dc), c->stream>>>(*a, p);
        if (splits > 1) {
            size_t n = (size_t)bh * a->n_q * a->head_dim;
            att_combine_kernel<T><<<cuda_blocks_for(c, n, 256), 256, 0, c->stream>>>(*a, p.out, c->att_ws, splits);
        }
        return;
    }
    long long rows = bh * a->n_q;
    unsigned blocks = (unsigned)(rows < 0x7fffffffLL ? rows : 0x7fffffffLL);
    float *acc = NULL;
    if (!p.out.f32) { /* fp32 accumulators in the scratch, one row per block */
        size_t fit = c->scratch_bytes / sizeof(float) / (size_t)a->head_dim;
        if (!fit) {
            cuda_fail(c, __FILE__, __LINE__, "attention", "head_dim too large for the 16-bit scratch");
            return;
        }
        if (blocks > fit) blocks = (unsigned)fit;
        acc = (float *)c->scratch;
    }
    attention_wide_kernel<T><<<blocks, ATT_WIDE_THREADS, 0, c->stream>>>(*a, p, acc);
}

void attention_cuda(const samc_ops *o, const samc_attention_args *a) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (a->batch <= 0 || a->heads <= 0 || a->n_q <= 0 || a->head_dim <= 0) return;
    const long long bh = (long long)a->batch * a->heads;
    if (bh > 0x7fffffffLL || (long long)a->n_q * bh > 0x7fffffffffffLL) {
        cuda_fail(c, __FILE__, __LINE__, "attention", "batch * heads too large");
        return;
    }
    const int nx = a->win_nx, qtw = a->q_tw, kvtw = a->kv_tw, qp = a->q_pool ? 2 : 1;
    if (a->q_pool && qtw <= 0) {
        cuda_fail(c, __FILE__, __LINE__, "attention", "q_pool without q_tw");
        return;
    }
    /* pooled q: the cells' top-left elements, plus the last cell's other row and column */
    size_t qspan = cuda_span_win(a->batch, nx, a->q_sb, a->q_sby, a->heads, a->q_sh, a->n_q, qtw, qp * a->q_st,
                                 qp * a->q_sty, a->head_dim) + (a->q_pool ? (size_t)(a->q_st + a->q_sty) : 0);
    cuda_arg q = cuda_rd(c, a->q, qspan, "attention");
    cuda_arg k = { NULL, 1 }, v = { NULL, 1 }; /* no keys: never read */
    if (a->n_kv > 0) {
        k = cuda_rd(c, a->k, cuda_span_win(a->batch, nx, a->k_sb, a->k_sby, a->heads, a->k_sh, a->n_kv, kvtw,
                                           a->k_st, a->k_sty, a->head_dim), "attention");
        v = cuda_rd(c, a->v, cuda_span_win(a->batch, nx, a->v_sb, a->v_sby, a->heads, a->v_sh, a->n_kv, kvtw,
                                           a->v_st, a->v_sty, a->head_dim), "attention");
    }
    if (!q.p || (a->n_kv > 0 && (!k.p || !v.p))) return;
    cuda_arg out = cuda_wr(c, a->out, cuda_span_win(a->batch, nx, a->o_sb, a->o_sby, a->heads, a->o_sh, a->n_q, qtw,
                                                    a->o_st, a->o_sty, a->head_dim), "attention");
    if (!out.p) return;
    /* 16-bit q, k, v: the tensor cores (attention_tc.cu) unless SAMC_CUDA_VARIANT_ATTN=fma */
    int tc = c->tracking && c->sw.attn == 0 && !q.f32 && !k.f32 && !v.f32 &&
             attention_tc_launch(c, a, q.p, k.p, v.p, out, c->sw.attn_bq128);
    if (!tc)
        cuda_by_type(c, [&](auto t) {
            using T = decltype(t);
            attention_fma<T>(c, a, att_views<T>{ src_of<T>(q), src_of<T>(k), src_of<T>(v), dst_of<T>(out), 0, NULL });
        });
    CUDA_OP_DONE(c, "attention");
}
