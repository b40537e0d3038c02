/* kernels/cuda/elementwise.cu: gelu, relu, sigmoid, copy, add (broadcast), add_channel,
 * transpose. Memory-bound; grid-stride loops, coalesced, the same float expressions as
 * kernels/cpu_ref.c (nvcc does not contract these into FMAs: no product feeds an add).
 * Each kernel is a template over T, the backend's 16-bit format, and reads and writes
 * each tensor as fp32 or T as lowp.cu says (cuda_common.cuh): with every tensor fp32 it
 * is the fp32 kernel; with 16-bit tensors the same loop moves half the bytes. */
#include "kernels/cuda/cuda_common.cuh"

#define EW_THREADS 256

enum { UN_GELU, UN_RELU, UN_SIGMOID };

/* nn.GELU() (approximate='none'): 0.5 x (1 + erf(x / sqrt 2)); ReLU with the reference's
 * test, so NaN maps to 0 as there; the logistic sigmoid. In place. */
template <int OP, class T> __global__ void unary_kernel(cuda_dst<T> x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x.get(i);
        if (OP == UN_GELU) v = cuda_act(v, SAMC_ACT_GELU);
        else if (OP == UN_RELU) v = cuda_act(v, SAMC_ACT_RELU);
        else v = 1.0f / (1.0f + expf(-v));
        x.put(i, v);
    }
}

template <int OP> static void unary_launch(samc_cuda_ctx *c, float *x, size_t n, const char *op) {
    if (!n) return;
    cuda_arg in = cuda_rd(c, x, n, op), out = cuda_wr_like(c, x, n, in, op);
    if (!in.p || !out.p) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        unary_kernel<OP, T><<<cuda_blocks_for(c, n, EW_THREADS), EW_THREADS, 0, c->stream>>>(dst_of<T>(out), n);
    });
}

void gelu_launch(samc_cuda_ctx *c, float *x, size_t n) { unary_launch<UN_GELU>(c, x, n, "gelu"); }
void relu_launch(samc_cuda_ctx *c, float *x, size_t n) { unary_launch<UN_RELU>(c, x, n, "relu"); }

void gelu_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    gelu_launch(c, x, n);
    CUDA_OP_DONE(c, "gelu");
}

void relu_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    relu_launch(c, x, n);
    CUDA_OP_DONE(c, "relu");
}

void sigmoid_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    unary_launch<UN_SIGMOID>(c, x, n, "sigmoid");
    CUDA_OP_DONE(c, "sigmoid");
}

/* dst[i] = src[i] between types (a weight, or an fp32 activation, into a 16-bit one). */
template <class T> __global__ void copy_convert_kernel(cuda_dst<T> dst, cuda_src<T> src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst.put(i, src[i]);
}

void copy_cuda(const samc_ops *o, float *dst, const float *src, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    cuda_arg s = cuda_rd(c, src, n, "copy");
    cuda_arg d = s.p ? cuda_wr(c, dst, n, "copy") : cuda_arg{ NULL, 1 };
    if (!s.p || !d.p) return;
    if (s.f32 == d.f32) {
        if (CUDA_CHECK(c, cudaMemcpyAsync(d.p, s.p, n * (s.f32 ? 4 : 2), cudaMemcpyDeviceToDevice, c->stream))) return;
    } else {
        cuda_by_type(c, [&](auto t) {
            using T = decltype(t);
            copy_convert_kernel<T><<<cuda_blocks_for(c, n, EW_THREADS), EW_THREADS, 0, c->stream>>>(dst_of<T>(d),
                                                                                                   src_of<T>(s), n);
        });
    }
    CUDA_OP_DONE(c, "copy");
}

/* dst[i] = (a ? a[i] : 0) + b[i % nb]. The index type is 32-bit whenever n allows: a
 * 64-bit remainder per element costs more than the memory traffic. (a == NULL serves
 * the empty-product fill of gemm.cu; 0 + b is b, as the reference's 0 + b.) */
template <class T, class I> __global__ void add_kernel(cuda_dst<T> dst, cuda_src<T> a, cuda_src<T> b, I n, I nb) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        float bv = b[nb == n ? i : i % nb];
        dst.put(i, (a.p ? a[i] : 0.0f) + bv);
    }
}

/* The output of an op that may run in place on `a`: a's type when it does. */
static cuda_arg out_maybe_in_place(samc_cuda_ctx *c, float *dst, const float *a, cuda_arg as, size_t n,
                                   const char *op) {
    return dst == a ? cuda_wr_like(c, dst, n, as, op) : cuda_wr(c, dst, n, op);
}

void add_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    if (!n || !nb) return;
    cuda_arg as = cuda_rd(c, a, n, "add"), bs = cuda_rd(c, b, nb, "add");
    if ((a && !as.p) || !bs.p) return;
    /* in place on a, or on b (only whole: nb == n), the output keeps that type */
    cuda_arg d = dst == b && dst != a ? cuda_wr_like(c, dst, n, bs, "add") : out_maybe_in_place(c, dst, a, as, n, "add");
    if (!d.p) return;
    unsigned blocks = cuda_blocks_for(c, n, EW_THREADS);
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        /* i + gridDim*blockDim must not wrap in the 32-bit form */
        if (n <= (size_t)UINT32_MAX / 2)
            add_kernel<T, uint32_t><<<blocks, EW_THREADS, 0, c->stream>>>(dst_of<T>(d), src_of<T>(as), src_of<T>(bs),
                                                                          (uint32_t)n, (uint32_t)nb);
        else
            add_kernel<T, size_t><<<blocks, EW_THREADS, 0, c->stream>>>(dst_of<T>(d), src_of<T>(as), src_of<T>(bs), n,
                                                                        nb);
    });
}

void add_cuda(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    add_launch(c, dst, a, b, n, nb);
    CUDA_OP_DONE(c, "add");
}

/* dst[ch, p] = (a ? a[ch, p] : 0) + v[ch]: blockIdx.y walks channels, x the pixels. */
template <class T> __global__ void add_channel_kernel(cuda_dst<T> dst, cuda_src<T> a, cuda_src<T> v, int C, int HW) {
    for (int ch = blockIdx.y; ch < C; ch += gridDim.y) {
        float vc = v[ch];
        size_t base = (size_t)ch * HW;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < HW; p += gridDim.x * blockDim.x)
            dst.put(base + p, (a.p ? a[base + p] : 0.0f) + vc);
    }
}

void add_channel_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *v, int C, int HW) {
    if (C <= 0 || HW <= 0) return;
    size_t n = (size_t)C * HW;
    cuda_arg as = cuda_rd(c, a, n, "add_channel"), vs = cuda_rd(c, v, (size_t)C, "add_channel");
    if ((a && !as.p) || !vs.p) return;
    cuda_arg d = out_maybe_in_place(c, dst, a, as, n, "add_channel");
    if (!d.p) return;
    unsigned gx = (unsigned)((HW + EW_THREADS - 1) / EW_THREADS);
    if (gx > 1024) gx = 1024;
    dim3 grid(gx, (unsigned)(C < 65535 ? C : 65535));
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        add_channel_kernel<T><<<grid, EW_THREADS, 0, c->stream>>>(dst_of<T>(d), src_of<T>(as), src_of<T>(vs), C, HW);
    });
}

void add_channel_cuda(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || HW <= 0) return;
    add_channel_launch(c, dst, a, v, C, HW);
    CUDA_OP_DONE(c, "add_channel");
}

/* [batch, R, C] -> [batch, C, R] through a 32x33 shared tile (the odd pitch keeps the
 * column reads off a single bank), so both the reads and the writes are coalesced. */
#define TR_TILE 32
#define TR_ROWS 8
template <class T> __global__ void transpose_kernel(cuda_src<T> src, cuda_dst<T> dst, int batch, int R, int C) {
    __shared__ float tile[TR_TILE][TR_TILE + 1];
    for (int bb = blockIdx.z; bb < batch; bb += gridDim.z) {
        const cuda_src<T> s = src.at((ptrdiff_t)bb * R * C);
        const cuda_dst<T> d = dst.at((ptrdiff_t)bb * R * C);
        for (int r0 = blockIdx.y * TR_TILE; r0 < R; r0 += gridDim.y * TR_TILE)
            for (int c0 = blockIdx.x * TR_TILE; c0 < C; c0 += gridDim.x * TR_TILE) {
                for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
                    int r = r0 + j, cc = c0 + threadIdx.x;
                    if (r < R && cc < C) tile[j][threadIdx.x] = s[(size_t)r * C + cc];
                }
                __syncthreads();
                for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
                    int cc = c0 + j, r = r0 + threadIdx.x;
                    if (cc < C && r < R) d.put((size_t)cc * R + r, tile[threadIdx.x][j]);
                }
                __syncthreads();
            }
    }
}

void transpose_cuda(const samc_ops *o, const float *src, float *dst, int batch, int R, int C) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (batch <= 0 || R <= 0 || C <= 0) return;
    size_t n = (size_t)batch * R * C;
    cuda_arg s = cuda_rd(c, src, n, "transpose");
    cuda_arg d = s.p ? cuda_wr(c, dst, n, "transpose") : cuda_arg{ NULL, 1 };
    if (!s.p || !d.p) return;
    unsigned gx = (unsigned)((C + TR_TILE - 1) / TR_TILE), gy = (unsigned)((R + TR_TILE - 1) / TR_TILE);
    dim3 grid(gx < 65535 ? gx : 65535, gy < 65535 ? gy : 65535, (unsigned)(batch < 65535 ? batch : 65535));
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        transpose_kernel<T><<<grid, dim3(TR_TILE, TR_ROWS), 0, c->stream>>>(src_of<T>(s), dst_of<T>(d), batch, R, C);
    });
    CUDA_OP_DONE(c, "transpose");
}
