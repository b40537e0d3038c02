/* kernels/cuda/maskpost.cu: automatic-mask post-processing on the device (mask_stats and
 * mask_runs of kernels/ops.h; the twins, which define the results bit for bit, are in
 * kernels/cpu_ref_pipeline.c). The low-res logits never leave the device: the host gets
 * one small record per candidate mask and the toggles of the kept ones.
 *
 *   select   one block per candidate: its token (M = 1: SAM2's dynamic choice, a block
 *            reduction over token 0), its IoU and the IoU filter
 *   regions  (max_region > 0) one block per candidate at a time, n_cc_slots at once:
 *            8-connected regions of the low-res mask by union-find (roots link to the
 *            smaller index with atomicCAS), sizes by atomicAdd, then the holes and
 *            sprinkles of <= max_region pixels rewritten into `filled`
 *   stats    (row strip, candidate) blocks: each pixel of the crop-size map upsampled on
 *            the fly (bilinear.cuh), counts above the stability cuts and the threshold, box
 *   decide   one thread per candidate: stability, stability filter, crop-edge filter
 *   count    one warp per (column, kept candidate): set pixels as ballot bits, toggles
 *            where a bit differs from the one above
 *   runs     (mask_runs) an exclusive scan of the toggle counts of [k0, k1), then the
 *            count pass again writing each toggle at its place
 * Sums are integer counts and the upsampling is round-to-nearest arithmetic, so nothing
 * depends on the order in which threads or blocks run. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/bilinear.cuh"

#define MP_THREADS 256
#define MP_ROWS 8        /* crop rows per stats block */
#define MP_WARPS 8       /* columns per count / runs block */
#define CC_THREADS 1024

/* ---- helpers ------------------------------------------------------------------------------ */

__device__ __forceinline__ long long block_sum_ll(long long v, long long *smem) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    long long t = 0;
    for (int i = 0; i < nw; i++) t += smem[i];
    return t;
}

/* The map candidate k is measured on (ops.h: candidate_map of the twin). */
__device__ __forceinline__ const float *candidate_map(const samc_mask_post_args &a, int k, int token) {
    size_t n = (size_t)a.L * a.L;
    if (a.max_region > 0) return a.filled + (size_t)k * n;
    return a.low + ((size_t)(k / (a.multimask ? 3 : 1)) * 4 + (size_t)token) * n;
}

/* ---- select ------------------------------------------------------------------------------- */

__global__ void mask_select_kernel(samc_mask_post_args a) {
    __shared__ long long red[32];
    int M = a.multimask ? 3 : 1, k = blockIdx.x, b = k / M;
    size_t n = (size_t)a.L * a.L;
    const float *item = a.low + (size_t)b * 4 * n, *iou = a.iou + (size_t)b * 4;
    int token = k % M + 1;
    if (M == 1) { /* samc_ref_multimask_choice */
        long long inter = 0, uni = 0;
        for (size_t p = threadIdx.x; p < n; p += blockDim.x) {
            inter += item[p] > 0.05f;
            uni += item[p] > -0.05f;
        }
        inter = block_sum_ll(inter, red);
        uni = block_sum_ll(uni, red);
        float stability = uni > 0 ? __fdiv_rn((float)inter, (float)uni) : 1.0f;
        token = 0;
        if (!(stability >= 0.98f)) {
            token = 1;
            for (int t = 2; t < 4; t++)
                if (iou[t] > iou[token]) token = t;
        }
    }
    if (threadIdx.x) return;
    samc_mask_stat st = {};
    st.token = token;
    st.iou = iou[token];
    st.passed = !a.filter_iou || st.iou > a.iou_thresh;
    if (st.passed) {
        st.box[0] = a.cw;
        st.box[1] = a.ch;
        st.box[2] = st.box[3] = -1;
    }
    a.stat[k] = st;
}

/* ---- regions ------------------------------------------------------------------------------ */

/* Reads go around L1: other threads' atomicCAS change parents while a find walks them. */
__device__ __forceinline__ int uf_find(int32_t *par, int p) {
    volatile int32_t *vp = par;
    int q;
    while ((q = vp[p]) != p) p = q;
    return p;
}

__device__ __forceinline__ void uf_unite(int32_t *par, int a, int b) {
    for (;;) {
        a = uf_find(par, a);
        b = uf_find(par, b);
        if (a == b) return;
        if (a < b) { int t = a; a = b; b = t; }
        if (atomicCAS(&par[a], a, b) == a) return; /* else a stopped being a root: again */
    }
}

/* Pixel v in the set of pass fg: background (<= thr) for holes, foreground (> thr) for
 * sprinkles; a NaN is in neither, as in pipelines/amg/amg.c. */
__device__ __forceinline__ bool in_set(float v, float thr, int fg) { return fg ? v > thr : v <= thr; }

/* One pass of postprocess_masks (fg 0: holes, 1: sprinkles) of src into dst. */
__device__ void fill_pass(const float *src, float *dst, int L, float thr, int fg, int max_region, int32_t *par,
                          int32_t *size) {
    int n = L * L;
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        par[p] = in_set(src[p], thr, fg) ? p : -1;
        size[p] = 0;
    }
    __syncthreads();
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        if (!in_set(src[p], thr, fg)) continue;
        int x = p % L, y = p / L;
        if (x > 0 && in_set(src[p - 1], thr, fg)) uf_unite(par, p, p - 1);
        if (y == 0) continue;
        for (int dx = -1; dx <= 1; dx++) {
            int nx = x + dx, q = p - L + dx;
            if (nx >= 0 && nx < L && in_set(src[q], thr, fg)) uf_unite(par, p, q);
        }
    }
    __syncthreads();
    for (int p = threadIdx.x; p < n; p += blockDim.x)
        if (par[p] >= 0) atomicAdd(&size[uf_find(par, p)], 1);
    __syncthreads();
    float v = fg ? (float)((double)thr - 10.0) : (float)((double)thr + 10.0);
    for (int p = threadIdx.x; p < n; p += blockDim.x)
        if (par[p] >= 0 && size[uf_find(par, p)] <= max_region) dst[p] = v;
    __syncthreads();
}

__global__ void mask_regions_kernel(samc_mask_post_args a, int n_cand) {
    size_t n = (size_t)a.L * a.L;
    int32_t *par = a.cc + (size_t)blockIdx.x * 2 * n, *size = par + n;
    for (int k = blockIdx.x; k < n_cand; k += gridDim.x) {
        samc_mask_stat st = a.stat[k];
        if (!st.passed) continue;
        const float *src = a.low + ((size_t)(k / (a.multimask ? 3 : 1)) * 4 + (size_t)st.token) * n;
        float *dst = a.filled + (size_t)k * n;
        for (size_t p = threadIdx.x; p < n; p += blockDim.x) dst[p] = src[p];
        __syncthreads();
        fill_pass(src, dst, a.L, a.mask_threshold, 0, a.max_region, par, size);
        fill_pass(src, dst, a.L, a.mask_threshold, 1, a.max_region, par, size);
    }
}

/* ---- stats and decide --------------------------------------------------------------------- */

__global__ void mask_upsampled_stats_kernel(samc_mask_post_args a) {
    __shared__ long long red[32];
    __shared__ int box[4];
    int k = blockIdx.y;
    samc_mask_stat *st = &a.stat[k];
    if (!st->passed) return; /* the whole block leaves together */
    const float *map = candidate_map(a, k, st->token);
    float sx = __fdiv_rn((float)a.L, (float)a.cw), sy = __fdiv_rn((float)a.L, (float)a.ch);
    int y0 = blockIdx.x * MP_ROWS, y1 = min(y0 + MP_ROWS, a.ch);
    long long hi = 0, lo = 0, area = 0;
    int bx0 = a.cw, by0 = a.ch, bx1 = -1, by1 = -1;
    for (int y = y0; y < y1; y++) {
        bilinear_axis ay = bilinear_axis_at(sy, y, a.L);
        for (int x = threadIdx.x; x < a.cw; x += blockDim.x) {
            float v = bilinear_sample(map, a.L, bilinear_axis_at(sx, x, a.L), ay);
            hi += v > a.stab_hi;
            lo += v > a.stab_lo;
            if (!(v > a.mask_threshold)) continue;
            area++;
            bx0 = min(bx0, x); bx1 = max(bx1, x);
            by0 = min(by0, y); by1 = max(by1, y);
        }
    }
    /* thread 0 seeds the shared box; the barriers inside block_sum_ll order it before the
     * other threads' atomics */
    if (threadIdx.x == 0) { box[0] = bx0; box[1] = by0; box[2] = bx1; box[3] = by1; }
    hi = block_sum_ll(hi, red);
    lo = block_sum_ll(lo, red);
    area = block_sum_ll(area, red);
    atomicMin(&box[0], bx0); atomicMin(&box[1], by0); atomicMax(&box[2], bx1); atomicMax(&box[3], by1);
    __syncthreads();
    if (threadIdx.x) return;
    atomicAdd((unsigned long long *)&st->above_hi, (unsigned long long)hi);
    atomicAdd((unsigned long long *)&st->above_lo, (unsigned long long)lo);
    atomicAdd((unsigned long long *)&st->area, (unsigned long long)area);
    atomicMin(&st->box[0], box[0]); atomicMin(&st->box[1], box[1]);
    atomicMax(&st->box[2], box[2]); atomicMax(&st->box[3], box[3]);
}

__global__ void mask_decide_kernel(samc_mask_post_args a, int n_cand) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n_cand) return;
    samc_mask_stat st = a.stat[k];
    if (!st.passed) return;
    st.stability = st.above_lo ? __fdiv_rn((float)st.above_hi, (float)st.above_lo) : __int_as_float(0x7fc00000);
    if (!st.area) st.box[0] = st.box[1] = st.box[2] = st.box[3] = 0;
    if (!a.filter_stability || st.stability >= a.stab_thresh) {
        st.passed = 2;
        const int crop[4] = { a.crop_x0, a.crop_y0, a.crop_x0 + a.cw, a.crop_y0 + a.ch };
        const int image[4] = { 0, 0, a.img_w, a.img_h };
        int near = 0;
        for (int j = 0; j < 4; j++) {
            int v = st.box[j] + crop[j % 2];
            near |= abs(v - crop[j]) <= a.edge_atol && abs(v - image[j]) > a.edge_atol;
        }
        if (!near) st.passed = 3;
    }
    a.stat[k] = st;
}

/* ---- toggles ------------------------------------------------------------------------------ */

/* The toggles of column x of candidate k, as the warp walks down it 32 rows at a time
 * (one row past the end, so a run reaching the bottom closes at ch): counted, or written
 * from runs[at] on when runs is not NULL. Returns the count (every lane). */
__device__ long long column_toggles(const samc_mask_post_args &a, const float *map, int x, uint32_t *runs,
                                    long long at) {
    int lane = threadIdx.x % 32;
    float sx = __fdiv_rn((float)a.L, (float)a.cw), sy = __fdiv_rn((float)a.L, (float)a.ch);
    bilinear_axis ax = bilinear_axis_at(sx, x, a.L);
    unsigned prev = 0; /* the bit of the row above the chunk */
    long long count = 0;
    for (int y0 = 0; y0 <= a.ch; y0 += 32) {
        int y = y0 + lane;
        int on = y < a.ch && bilinear_sample(map, a.L, ax, bilinear_axis_at(sy, y, a.L)) > a.mask_threshold;
        unsigned bits = __ballot_sync(0xffffffffu, on);
        unsigned tog = bits ^ ((bits << 1) | prev);
        if (y0 + 32 > a.ch + 1) tog &= 0xffffffffu >> (32 - (a.ch + 1 - y0)); /* rows past ch toggle nothing */
        if (runs && (tog >> lane & 1u))
            runs[at + count + __popc(tog & ((1u << lane) - 1u))] = (uint32_t)((long long)x * a.ch + y);
        count += __popc(tog);
        prev = bits >> 31;
    }
    return count;
}

__global__ void mask_count_kernel(samc_mask_post_args a) {
    int k = blockIdx.y, x = blockIdx.x * MP_WARPS + threadIdx.x / 32;
    samc_mask_stat *st = &a.stat[k];
    if (st->passed != 3 || x >= a.cw) return; /* whole warps leave together */
    long long c = column_toggles(a, candidate_map(a, k, st->token), x, NULL, 0);
    if (threadIdx.x % 32) return;
    a.col_runs[(size_t)k * a.cw + x] = c;
    atomicAdd((unsigned long long *)&st->n_runs, (unsigned long long)c);
}

/* Exclusive prefix sums of v[0, n) in place, one block: each thread a contiguous share. */
__global__ void scan_kernel(int64_t *v, long long n) {
    __shared__ long long part[CC_THREADS];
    long long per = (n + blockDim.x - 1) / blockDim.x, b = threadIdx.x * per, e = min(b + per, n), s = 0;
    for (long long i = b; i < e; i++) s += v[i];
    part[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        long long acc = 0;
        for (unsigned i = 0; i < blockDim.x; i++) {
            long long t = part[i];
            part[i] = acc;
            acc += t;
        }
    }
    __syncthreads();
    long long acc = part[threadIdx.x];
    for (long long i = b; i < e; i++) {
        long long t = v[i];
        v[i] = acc;
        acc += t;
    }
}

__global__ void mask_runs_kernel(samc_mask_post_args a, int k0, uint32_t *runs) {
    int k = k0 + blockIdx.y, x = blockIdx.x * MP_WARPS + threadIdx.x / 32;
    const samc_mask_stat *st = &a.stat[k];
    if (st->passed != 3 || x >= a.cw) return;
    column_toggles(a, candidate_map(a, k, st->token), x, runs, a.col_runs[(size_t)k * a.cw + x]);
}

/* ---- the ops ------------------------------------------------------------------------------ */

/* The kernels read the decoder's logits and IoU as fp32 and write the filled masks as
 * fp32: in bf16 / fp16 the precision map must agree (the decoder's outputs are fp32
 * unless SAMC_CUDA_VARIANT_DECODER=lowp, which this refuses by name). 0 or -1. */
static int maskpost_types(samc_cuda_ctx *c, const samc_mask_post_args *a, int n_cand, const char *op) {
    size_t n = (size_t)a->L * a->L;
    if (!cuda_rd_f32(c, a->low, (size_t)a->B * 4 * n, op) || !cuda_rd_f32(c, a->iou, (size_t)a->B * 4, op)) return -1;
    if (a->max_region > 0 && a->filled && !cuda_wr_f32(c, a->filled, (size_t)n_cand * n, op).p) return -1;
    return 0;
}

void mask_stats_cuda(const samc_ops *o, const samc_mask_post_args *a) {
    samc_cuda_ctx *c = cuda_ctx(o);
    int n_cand = a->B * (a->multimask ? 3 : 1);
    if (n_cand <= 0 || a->cw <= 0 || a->ch <= 0) return;
    if (maskpost_types(c, a, n_cand, "mask_stats")) return;
    if (CUDA_CHECK(c, cudaMemsetAsync(a->col_runs, 0, sizeof(int64_t) * ((size_t)n_cand * a->cw + 1), c->stream)))
        return;
    mask_select_kernel<<<n_cand, MP_THREADS, 0, c->stream>>>(*a);
    if (CUDA_OP_DONE(c, "mask_stats (select)")) return;
    if (a->max_region > 0) {
        int slots = a->n_cc_slots < n_cand ? a->n_cc_slots : n_cand;
        mask_regions_kernel<<<slots > 0 ? slots : 1, CC_THREADS, 0, c->stream>>>(*a, n_cand);
        if (CUDA_OP_DONE(c, "mask_stats (regions)")) return;
    }
    dim3 g_rows((unsigned)((a->ch + MP_ROWS - 1) / MP_ROWS), (unsigned)n_cand);
    mask_upsampled_stats_kernel<<<g_rows, MP_THREADS, 0, c->stream>>>(*a);
    if (CUDA_OP_DONE(c, "mask_stats (upsampled)")) return;
    mask_decide_kernel<<<(n_cand + MP_THREADS - 1) / MP_THREADS, MP_THREADS, 0, c->stream>>>(*a, n_cand);
    if (CUDA_OP_DONE(c, "mask_stats (decide)")) return;
    dim3 g_cols((unsigned)((a->cw + MP_WARPS - 1) / MP_WARPS), (unsigned)n_cand);
    mask_count_kernel<<<g_cols, 32 * MP_WARPS, 0, c->stream>>>(*a);
    CUDA_OP_DONE(c, "mask_stats (count)");
}

void mask_runs_cuda(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (k1 <= k0 || a->cw <= 0) return;
    if (!cuda_rd_f32(c, a->low, (size_t)a->B * 4 * a->L * a->L, "mask_runs")) return;
    scan_kernel<<<1, CC_THREADS, 0, c->stream>>>(a->col_runs + (size_t)k0 * a->cw, (long long)(k1 - k0) * a->cw);
    if (CUDA_OP_DONE(c, "mask_runs (scan)")) return;
    dim3 g_cols((unsigned)((a->cw + MP_WARPS - 1) / MP_WARPS), (unsigned)(k1 - k0));
    mask_runs_kernel<<<g_cols, 32 * MP_WARPS, 0, c->stream>>>(*a, k0, runs);
    CUDA_OP_DONE(c, "mask_runs (write)");
}
