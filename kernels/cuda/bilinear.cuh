/* kernels/cuda/bilinear.cuh: one sample of PyTorch's upsample_bilinear2d
 * (align_corners=False), as kernels/cpu_ref.c computes it, for upsample_bilinear
 * (layout.cu) and the mask statistics (maskpost.cu): source coordinate scale*(dst+0.5)-0.5
 * clamped at 0, upper neighbour clamped at the last row / column. Every step is a
 * round-to-nearest intrinsic so that nvcc cannot fuse a multiply and an add: the source
 * coordinate then rounds exactly as on the CPU, and its integer part (the neighbour
 * chosen) can never differ. */
#ifndef SAMC_CUDA_BILINEAR_CUH
#define SAMC_CUDA_BILINEAR_CUH

typedef struct {
    int i0, i1;     /* the two source indices */
    float l0, l1;   /* their weights */
} bilinear_axis;

/* Output index dst along an axis of ls source samples scaled by `scale` (= ls / out). */
__device__ __forceinline__ bilinear_axis bilinear_axis_at(float scale, int dst, int ls) {
    float r = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)dst, 0.5f)), 0.5f);
    if (r < 0.0f) r = 0.0f;
    bilinear_axis a;
    a.i0 = (int)r;
    a.i1 = a.i0 + (a.i0 < ls - 1);
    a.l1 = __fsub_rn(r, (float)a.i0);
    a.l0 = __fsub_rn(1.0f, a.l1);
    return a;
}

/* in[ls, ls] at (ax, ay). S is a float pointer or, for 16-bit activations, a cuda_src
 * (cuda_common.cuh) that reads either type: indexing is all this needs of it. */
template <class S> __device__ __forceinline__ float bilinear_sample(S in, int ls, bilinear_axis ax, bilinear_axis ay) {
    size_t r0 = (size_t)ay.i0 * ls, r1 = (size_t)ay.i1 * ls;
    float top = __fadd_rn(__fmul_rn(ax.l0, in[r0 + ax.i0]), __fmul_rn(ax.l1, in[r0 + ax.i1]));
    float bot = __fadd_rn(__fmul_rn(ax.l0, in[r1 + ax.i0]), __fmul_rn(ax.l1, in[r1 + ax.i1]));
    return __fadd_rn(__fmul_rn(ay.l0, top), __fmul_rn(ay.l1, bot));
}

#endif
