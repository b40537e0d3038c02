/* kernels/ops.h: the small backend interface the model is written against.
 *
 * The forward passes (SAM2.1, SAM3) live once, in model/, and call the ops below through
 * a table. Each backend fills the table:
 *   cpu_ref   plain loops in PyTorch layouts: the porting reference (kernels/cpu_ref.c)
 *   cpu_fast  blocked SIMD GEMM / attention on an own pthread pool (kernels/cpu_fast*.c)
 *   cuda      kernels/cuda/ (device pointers; same signatures)
 * Every op of every backend is tested against cpu_ref (tests/test_backend_ops.c).
 *
 * Conventions: float32, row-major, shapes in comments as [dim0, dim1, ...]; "NCHW"
 * tensors are passed without the batch dim (one image) unless stated. No compute op
 * allocates memory and no compute op fails: shapes are checked by the model before the
 * call. All tensor pointers are in the backend's memory (host memory for the CPU
 * backends, device memory for CUDA): the model moves data only through upload/download.
 * Ops run in order on one stream; sync waits for them and reports the first error.
 */
#ifndef SAMC_OPS_H
#define SAMC_OPS_H
#include <stddef.h>
#include <stdint.h>

typedef struct samc_ops samc_ops;

/* Input precision of the GEMMs (see set_precision); the values match samc_precision. */
typedef enum { SAMC_OPS_FP32 = 0, SAMC_OPS_BF16 = 1, SAMC_OPS_FP16 = 2 } samc_ops_precision;

/* The activation of linear_act. */
typedef enum { SAMC_ACT_NONE = 0, SAMC_ACT_RELU = 1, SAMC_ACT_GELU = 2 } samc_act;

/* Multi-head attention over strided views, one call for all (batch, head) pairs:
 *   out[b,h,i,:] = sum_j softmax_j( scale * <q[b,h,i,:], k[b,h,j,:]> ) v[b,h,j,:]
 * Element (b,h,t,d) of X lives at X + b*X_sb + h*X_sh + t*X_st + d (d contiguous).
 * This covers Hiera's packed qkv [tokens, 3, heads, hd] and the decoder's [B, T, heads*hd]
 * without copies. The softmax is the plain max-subtracted one of PyTorch's math path. */
typedef struct {
    int batch, heads, n_q, n_kv, head_dim;
    float scale;
    const float *q; ptrdiff_t q_sb, q_sh, q_st;
    const float *k; ptrdiff_t k_sb, k_sh, k_st;
    const float *v; ptrdiff_t v_sb, v_sh, v_st;
    float *out;     ptrdiff_t o_sb, o_sh, o_st;
    /* Window geometry (attention only, not attention_biased; all 0: the plain views above),
     * so Hiera's windows are read from and written to the token map in place, without
     * window_partition / window_unpartition copies. win_nx > 0 splits the batch index as
     * b = by * win_nx + bx; q_tw > 0 splits the token index of q and out as
     * t = ty * q_tw + tx, kv_tw > 0 that of k and v; element (b,h,t,d) of X then lives at
     *   X + by*X_sby + bx*X_sb + h*X_sh + ty*X_sty + tx*X_st + d
     * (samc_att_split below). Windows of wh x ww tokens on a map [B, H, W, C] with
     * H % wh == W % ww == 0: win_nx = W / ww, q_tw = kv_tw = ww, X_sb = ww*C,
     * X_sby = wh*W*C, X_st = C, X_sty = W*C (image i's window rows follow image i-1's
     * since H = nwy*wh); with q pooled, q_tw = ww/2 and out's strides are those of the
     * pooled map [B, H/2, W/2, C] (model/sam2/hiera.c).
     * q_pool = 1 (with q_tw > 0; Hiera's q_pool, nn.MaxPool2d(2, 2) inside each window,
     * fused): q's strides describe the unpooled map and q token t = (ty, tx) is the max of
     * the four elements at rows 2ty, 2ty + 1 and columns 2tx, 2tx + 1 of its window:
     *   max over dy, dx in {0, 1} of q[... + (2ty+dy)*q_sty + (2tx+dx)*q_st + d]. */
    int win_nx, q_tw, kv_tw, q_pool;
    ptrdiff_t q_sby, q_sty, k_sby, k_sty, v_sby, v_sty, o_sby, o_sty;
} samc_attention_args;

/* Offset of index i split by n (see samc_attention_args' window geometry): n > 0 gives
 * (i / n) * s_outer + (i % n) * s_inner, n == 0 the plain i * s_inner. Host and device. */
#ifdef __CUDACC__
#define SAMC_OPS_HD __host__ __device__
#else
#define SAMC_OPS_HD
#endif
SAMC_OPS_HD static inline ptrdiff_t samc_att_split(int i, int n, ptrdiff_t s_inner, ptrdiff_t s_outer) {
    return n > 0 ? (ptrdiff_t)(i / n) * s_outer + (ptrdiff_t)(i % n) * s_inner : (ptrdiff_t)i * s_inner;
}
/* 1 when a uses the window geometry. */
static inline int samc_att_windowed(const samc_attention_args *a) {
    return a->win_nx || a->q_tw || a->kv_tw || a->q_pool;
}
/* Offset of q token t's first element (b, h excluded): with q_pool, the top-left of its
 * 2x2 cell. */
SAMC_OPS_HD static inline ptrdiff_t samc_att_q_tok(const samc_attention_args *a, int t) {
    return a->q_pool ? samc_att_split(t, a->q_tw, 2 * a->q_st, 2 * a->q_sty)
                     : samc_att_split(t, a->q_tw, a->q_st, a->q_sty);
}

/* An additive attention bias (attention_biased): element (b, h, i, j) of the bias is
 * bias[b*sb + h*sh + i*sq + j], keys contiguous; a stride of 0 broadcasts over that dim.
 * This covers nn.MultiheadAttention's float attn_mask [B*heads, Q, K] (SAM3's box
 * relative-position bias), a causal mask [Q, K], and a key padding mask turned into a
 * [B, K] row of 0 / -INFINITY (sh = sq = 0). */
typedef struct {
    const float *bias;
    ptrdiff_t sb, sh, sq;
} samc_attention_bias;
/* The antialiased resize of one image to S x S as filter taps, for the preprocess op:
 * output column x reads input columns [x0[x], x0[x] + nx[x]) with weights
 * wx[x * T + j], output row y input rows [y0[y], y0[y] + ny[y]) with wy[y * T + j]. An
 * axis that keeps its size has one tap of weight 1 per pixel (which reproduces the value
 * exactly). Pointers in the backend's memory. */
typedef struct {
    const int32_t *x0, *nx, *y0, *ny;   /* [S] each */
    const float *wx, *wy;               /* [S, T] each */
    int T;
    float mean[3], std[3];               /* normalisation per channel */
} samc_resize_taps;

/* Automatic-mask post-processing (mask_stats / mask_runs, pipelines/amg on a device):
 * for B decoder items with low-res logits low[B, 4, L, L] and predicted IoUs iou[B, 4],
 * candidate k = b * M + t is item b's mask t: tokens 1..3 with M = 3, or SAM2's dynamic
 * choice (token 0 when its low-res stability, cuts +-0.05, is >= 0.98, else the best IoU of
 * 1..3; the first on ties) with M = 1. Each candidate, in the order of
 * SAM2AutomaticMaskGenerator._process_batch, stopping at the first filter it fails:
 *   1. iou > iou_thresh (when filter_iou);
 *   2. with max_region > 0, SAM2Transforms.postprocess_masks on the low-res logits:
 *      8-connected regions of <= max_region pixels, found on the unmodified logits, become
 *      thr + 10 (background holes, logits <= thr) or thr - 10 (foreground sprinkles);
 *   3. the logits upsampled (upsample_bilinear's arithmetic) to cw x ch: stability =
 *      count(> stab_hi) / count(> stab_lo) in float32 (NaN when nothing is above stab_lo),
 *      kept when stability >= stab_thresh (when filter_stability);
 *   4. the mask (logits > mask_threshold): area and inclusive box (0,0,0,0 when empty);
 *      dropped when near an inner crop edge: a box side within edge_atol pixels of a side
 *      of the crop (crop_x0, crop_y0, + cw, + ch) that is not within edge_atol of the
 *      image's (img_w x img_h) side;
 *   5. kept: its runs, per crop column x in order, the rows [ya, yb) of each run of set
 *      pixels as the toggle pair (x * ch + ya, x * ch + yb) (column-major positions, yb may
 *      be ch); n_runs counts the toggles (2 per run). */
typedef struct {
    int32_t token;        /* the decoder token of the mask */
    int32_t passed;       /* how many of the filters 1, 3, 4 it passed (3: kept) */
    float iou;
    float stability;      /* these from here on are 0 unless it passed filter 1 */
    int32_t box[4];
    int64_t area;
    int64_t above_hi, above_lo;  /* the stability's counts */
    int64_t n_runs;       /* toggles (0 unless kept) */
} samc_mask_stat;

typedef struct {
    int B, L, multimask;              /* items, low-res side, 1: M = 3, 0: M = 1 */
    int cw, ch;                       /* the upsampled size */
    int crop_x0, crop_y0, img_w, img_h, edge_atol;
    int filter_iou, filter_stability, max_region;
    float iou_thresh, stab_thresh, stab_hi, stab_lo, mask_threshold;
    const float *low;                 /* [B, 4, L, L] */
    const float *iou;                 /* [B, 4] */
    samc_mask_stat *stat;             /* [B * M] out */
    float *filled;                    /* [B * M, L, L] scratch when max_region > 0 */
    int32_t *cc;                      /* [n_cc_slots, 2, L, L] scratch when max_region > 0 */
    int n_cc_slots;                   /* >= 1: candidates whose regions are found at once */
    int64_t *col_runs;                /* [B * M * cw + 1] scratch: toggles per candidate column */
} samc_mask_post_args;

/* Marks: slots of the time marks (mark / elapsed_ms). */
#define SAMC_OPS_MARKS 32
/* Graph slots (graph_begin ... graph_launch). */
#define SAMC_OPS_GRAPHS 64

struct samc_ops {
    const char *name;   /* "cpu_ref", "cpu_fast", "cuda" */
    void *ctx;          /* backend state (thread pool, handles); owned by the backend */
    int host_memory;    /* 1: backend pointers are ordinary host pointers (CPU backends) */

    /* ---- memory (NULL on the CPU backends means malloc/free/memcpy) ---- */
    /* 64-byte aligned block of the backend's memory, or NULL. */
    void *(*alloc)(const samc_ops *o, size_t bytes);
    void (*free)(const samc_ops *o, void *p);
    void (*upload)(const samc_ops *o, void *dst, const void *host_src, size_t bytes);
    void (*download)(const samc_ops *o, void *host_dst, const void *src, size_t bytes);
    /* Waits for all queued work; 0, or -1 with the first error in err (512 bytes). */
    int (*sync)(const samc_ops *o, char *err);

    /* nn.Linear: y[M,N] = x[M,K] · w[N,K]ᵀ + b[N] (b may be NULL). */
    void (*linear)(const samc_ops *o, const float *x, const float *w, const float *b,
                   float *y, int M, int N, int K);

    /* nn.Linear followed by its activation and a residual, in one op so that a backend can
     * fuse them (the CUDA backend in bf16 / fp16: one epilogue instead of three passes):
     *   y[m,n] = r[m,n] + act(x[m,:] · w[n,:] + b[n])      (r may be NULL: no residual)
     * with the arithmetic of linear, then relu / gelu in place, then add(y, r, y): the
     * same bits as those three ops. r must not alias y or x. */
    void (*linear_act)(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                       int K, samc_act act, const float *r);

    /* Plain product with a per-row bias, for 1x1 convolutions on NCHW maps:
     * c[M,N] = a[M,K] · b[K,N] + bias[M] (bias may be NULL). */
    void (*matmul)(const samc_ops *o, const float *a, const float *b, const float *bias,
                   float *c, int M, int N, int K);

    void (*attention)(const samc_ops *o, const samc_attention_args *a);
    /* 1: the model should read Hiera's windows in place (attention with the window
     * geometry of samc_attention_args) where the map is a multiple of the window, because
     * this backend's attention is as fast on them as on dense views (CUDA: the copies it
     * saves are passes over the whole map). 0: the model keeps window_partition /
     * window_unpartition (the CPU backends: their outputs stay as they were). Every
     * backend's attention computes the geometry correctly either way. */
    int attention_windows;

    /* nn.LayerNorm over the last dim: y[r,:] = (x[r,:]-mean)/sqrt(var+eps)*w + b,
     * biased variance. In place allowed (y == x). */
    void (*layer_norm)(const samc_ops *o, const float *x, const float *w, const float *b,
                       float *y, int rows, int dim, float eps);

    /* LayerNorm2d: normalise over channels of x[C, HW] for each pixel. In place allowed. */
    void (*layer_norm2d)(const samc_ops *o, const float *x, const float *w, const float *b,
                         float *y, int C, int HW, float eps);

    /* Exact GELU 0.5*x*(1+erf(x/sqrt(2))), in place on n values. */
    void (*gelu)(const samc_ops *o, float *x, size_t n);

    /* nn.Conv2d on one image: x[Cin,H,W], w[Cout,Cin,kh,kw], b[Cout] (may be NULL)
     * -> y[Cout,Ho,Wo], Ho = (H+2*pad-kh)/stride+1, zero padding, groups = 1. */
    void (*conv2d)(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                   int Cin, int H, int W, int Cout, int kh, int kw, int stride, int pad);

    /* nn.ConvTranspose2d with kernel 2, stride 2 (the decoder's upscaling):
     * x[Cin,H,W], w[Cin,Cout,2,2], b[Cout] -> y[Cout,2H,2W]. */
    void (*conv_transpose2x2)(const samc_ops *o, const float *x, const float *w, const float *b,
                              float *y, int Cin, int H, int W, int Cout);

    /* ---- data movement and elementwise ops (cheap, but on the device path they must run
     *      where the data is) ---- */
    /* dst[n] = src[n] (same memory space; regions do not overlap). */
    void (*copy)(const samc_ops *o, float *dst, const float *src, size_t n);
    /* dst[i] = a[i] + b[i % nb] for i < n (nb divides n: b repeated over leading dims).
     * dst may alias a, and b when nb == n (element by element). */
    void (*add)(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb);
    /* dst[c, p] = (a ? a[c, p] : 0) + v[c] for a [C, HW] map. dst may alias a. */
    void (*add_channel)(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW);
    /* In place on n values. */
    void (*relu)(const samc_ops *o, float *x, size_t n);
    void (*sigmoid)(const samc_ops *o, float *x, size_t n);
    /* dst[b, c, r] = src[b, r, c] for b < batch: [batch, R, C] -> [batch, C, R]. */
    void (*transpose)(const samc_ops *o, const float *src, float *dst, int batch, int R, int C);

    /* ---- Hiera layout ops (sam2/modeling/backbones/utils.py, hieradet.py) ---- */
    /* window_partition: x[H, W, C] -> win[nwy*nwx, wh*ww, C], zero rows where the padded
     * window runs past the map (nwy = ceil(H/wh), nwx = ceil(W/ww)). */
    void (*window_partition)(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww);
    /* window_unpartition + crop + residual: out[y, x, :] = shortcut[y, x, :] + win[w, t, :]
     * with w = (y/wh)*nwx + x/ww, t = (y%wh)*ww + x%ww, for y < H, x < W. */
    void (*window_unpartition_add)(const samc_ops *o, const float *win, const float *shortcut, float *out,
                                   int H, int W, int C, int wh, int ww, int nwx);
    /* nn.MaxPool2d(2, 2) over n images of [H, W] pixels with C channels; pixel (i, y, x)
     * of x starts at x + ((i*H + y)*W + x) * pixel_stride (so q inside packed qkv rows can
     * be pooled in place); y is dense [n, H/2, W/2, C]. */
    void (*maxpool2x2)(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                       ptrdiff_t pixel_stride);
    /* FPN top-down: dst[c, y, x] += src[c, y/2, x/2] for dst [C, 2h, 2w], src [C, h, w]. */
    void (*upsample_nearest2x_add)(const samc_ops *o, float *dst, const float *src, int C, int h, int w);
    /* F.interpolate(bilinear, align_corners=False) of n maps [ls, ls] -> [n, h, w]. */
    void (*upsample_bilinear)(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h);

    /* ---- reduced precision (optional: NULL means fp32 only; the CPU backends) ---- */
    /* Called once at load, after the weights are in the backend's memory as one block
     * weights[0 .. n_weights) and before any op reads them. With p != SAMC_OPS_FP32 the
     * backend makes a 16-bit copy of that block (same offsets), and from then on the ops
     * write 16-bit activations (see activation_precision), which the next ops read as
     * they are: no conversion passes, half the bytes. Everything computes in fp32 (GEMMs
     * and attention on 16-bit inputs with fp32 accumulation; norm and softmax statistics
     * in fp32). upload and download still take and give fp32 on the host. Pointers and
     * sizes stay in floats: the model's buffers do not change. Returns 0, or -1 with why
     * in err (512 bytes): a device without the precision, out of memory.
     * kernels/cuda/NOTES.md, "16-bit activations". */
    int (*set_precision)(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights,
                         char *err);
    /* Reduced precision only (optional: NULL where there is none): whether the ops that
     * follow write 16-bit activations (reduced = 1, the state set_precision leaves) or
     * fp32 ones (0; a backend switch may keep 16 bits there: CUDA's DECODER=lowp), or
     * exactly fp32 whatever the switches (-1: the model's input data, whose uploads are
     * pixels, taps and fp32 planes that must go up as they are). Uploads write the same
     * type as ops. Every op reads either. The SAM2.1 model keeps its image encoder in 16
     * bits and its prompt encoder and mask decoder, whose mask logits are small
     * differences of large terms, in fp32 (kernels/cuda/NOTES.md, "16-bit activations"). */
    void (*activation_precision)(const samc_ops *o, int reduced);
    /* Reduced precision only (optional: NULL where there is none): weights that only
     * linear reads (its weight operand w, at any offset) held in 16 bits with no fp32
     * copy, so that a model's device memory is about half its fp32 size (SAM3 on a 4 GB
     * card). Their addresses are stand-ins: standin[0 .. n) is a range reserved on the
     * host and never mapped (samc_w16_reserve), outside every block of the backend, so a
     * read of one by any op but linear fails naming the op (a kernel given one faults).
     * weights16_region, once after set_precision(bf16 | fp16): the backend allocates n
     * 16-bit values behind the range; 0, or -1 with why in err (512 bytes).
     * weights16_upload: n host fp32 values to stand-in dst inside the range, rounded to
     * the 16-bit type on the device (set_precision's rounding); waits until done, errors
     * at the next sync. A linear whose weight is a stand-in computes its product on the
     * 16-bit values also while the activations are fp32 (fp32 output, fp32 accumulation).
     * kernels/cuda/NOTES.md, "SAM3 on a 4 GB card". */
    int (*weights16_region)(const samc_ops *o, const float *standin, size_t n, char *err);
    void (*weights16_upload)(const samc_ops *o, const float *dst, const float *host_src, size_t n);

    /* ---- 16-bit weight storage (host backends; 0: fp32 weights only) ---- */
    /* 1: the weight operand of linear (w), matmul (a), conv2d (w) and conv_transpose2x2
     * (w) may be a stand-in registered with samc_w16_register; the backend reads the
     * 16-bit values behind it and converts them to fp32 as it packs them, so the products
     * are those of the fp32-converted weights, bit for bit (kernels/weights16.c). */
    int weights16;

    /* ---- SAM3 image model (sam3/model/ of facebookresearch/sam3) ---- */
    /* attention with an additive bias: out[b,h,i,:] = sum_j softmax_j(scale <q_i, k_j> +
     * bias[b,h,i,j]) v_j (PyTorch's float attn_mask / key_padding_mask semantics). -inf
     * masks a key; a row whose keys are all masked is not supported (the model never
     * makes one). */
    void (*attention_biased)(const samc_ops *o, const samc_attention_args *a, const samc_attention_bias *bias);
    /* 2-D axial rotary embedding in place (vitdet.apply_rotary_enc), on `rows` rows of x
     * (row r at x + r*ld) holding heads*hd values: each pair (x[h*hd+2i], x[h*hd+2i+1])
     * is multiplied as a complex number by (cos_t[t*hd/2 + i], sin_t[t*hd/2 + i]) with
     * t = r % period (windows of `period` tokens share one table [period, hd/2]). */
    void (*rope)(const samc_ops *o, float *x, int rows, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                 const float *sin_t, int period);
    /* nn.GroupNorm(groups, C, eps) of x[C, HW]: each group of C/groups channels is
     * normalised over its C/groups*HW values (biased variance), then y = x*w[c] + b[c].
     * In place allowed. */
    void (*group_norm)(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C, int HW,
                       int groups, float eps);
    /* torchvision.ops.roi_align(x, boxes, (P, P), spatial_scale=1, sampling_ratio=-1,
     * aligned=False) on one image x[C, H, W] for n boxes[n, 4] (x0, y0, x1, y1 in pixels
     * of x) -> y[n, C, P, P]. */
    void (*roi_align)(const samc_ops *o, const float *x, const float *boxes, float *y, int C, int H, int W, int n,
                      int P);
    /* F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
     * of x[C, H, W] at n points pts[n, 2] (gx, gy in [-1, 1]) -> y[n, C]. */
    void (*grid_sample)(const samc_ops *o, const float *x, const float *pts, float *y, int C, int H, int W, int n);
    /* The decoder's box relative-position bias (TransformerDecoder._get_rpb_matrix) for
     * heads nh: y[h, r0 + q, yy*W + xx] = by[q, yy, h] + bx[q, xx, h] for q < Q, and the
     * first r0 rows of each head 0 (the presence token's row): y [nh, r0 + Q, H*W]. */
    void (*box_rpb_bias)(const samc_ops *o, const float *by, const float *bx, float *y, int Q, int H, int W, int nh,
                         int r0);
    /* ---- the image pipeline: preprocessing and mask post-processing ---- */
    /* SAM2Transforms (sam2/utils/transforms.py) of one image rgb[h, w, 3] (uint8, backend
     * memory) -> out[3, S, S]:
     *   out[c, y, x] = (sum_j wy[y, j] * (sum_i wx[x, i] * (rgb[y0[y] + j, x0[x] + i, c] / 255))
     *                   - mean[c]) / std[c]
     * each sum from 0.0f in index order, products and sums rounded one by one (no fused
     * multiply-add): model/sam2/transforms.c's arithmetic, horizontal pass first. */
    void (*preprocess)(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out,
                       int S);
    /* Steps 1-4 of the post-processing above on every candidate and, for the kept ones,
     * their toggle counts: a->stat[k], a->col_runs. */
    void (*mask_stats)(const samc_ops *o, const samc_mask_post_args *a);
    /* Step 5 for candidates [k0, k1) (after mask_stats): their toggles, candidate by
     * candidate, into runs[0 .. sum of their n_runs). */
    void (*mask_runs)(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs);

    /* ---- device pipeline (optional: NULL on the CPU backends, whose ops are synchronous;
     *      model/runtime/ falls back to host memory and the host clock) ---- */
    /* Page-locked host memory for staging, so copies from / to it run asynchronously. */
    void *(*host_alloc)(const samc_ops *o, size_t bytes);
    void (*host_free)(const samc_ops *o, void *p);
    /* upload / download that return at once: host memory from host_alloc, which an upload
     * reads and a download writes at some point before the next sync. */
    void (*upload_async)(const samc_ops *o, void *dst, const void *host_src, size_t bytes);
    void (*download_async)(const samc_ops *o, void *host_dst, const void *src, size_t bytes);
    /* Time mark `slot` (< SAMC_OPS_MARKS) recorded in stream order (inside a graph too);
     * after a sync, elapsed_ms is the device time in ms between two recorded marks, or a
     * negative value when either was not recorded. */
    void (*mark)(const samc_ops *o, int slot);
    double (*elapsed_ms)(const samc_ops *o, int from, int to);
    /* Graphs (slot < SAMC_OPS_GRAPHS): between graph_begin and graph_end the ops are
     * recorded into graph `slot`, not run; graph_launch runs it (the same ops on the same
     * pointers, reading their inputs as they are at launch). graph_begin returns 1 when
     * graphs are switched off (the caller then runs the ops directly), 0, or -1 with why
     * in err (512 bytes); graph_end 0 or -1. graph_drop frees a slot. */
    int (*graph_begin)(const samc_ops *o, int slot, char *err);
    int (*graph_end)(const samc_ops *o, int slot, char *err);
    void (*graph_launch)(const samc_ops *o, int slot);
    void (*graph_drop)(const samc_ops *o, int slot);
    /* Device memory in use now (whole device: total - free), at the backend's start (the
     * context only, before its own buffers) and the total; 0 or -1. */
    int (*mem_info)(const samc_ops *o, size_t *used_now, size_t *used_at_start, size_t *total);
};

/* The reference LayerNorm over rows (the cpu_ref op's arithmetic), for fast backends
 * whose portable path is the reference itself. */
void samc_ref_layer_norm_rows(const float *x, const float *w, const float *b, float *y, int rows, int dim,
                              float eps);

/* The reference rotary embedding of one head of 2·half values (pairs re, im; the rope
 * op's arithmetic) and the reference GroupNorm in two steps (statistics of one group's n
 * values, summed in double; the affine normalisation of one channel), for fast backends
 * that thread them (cpu_fast's portable kernel table uses them as they are). */
void samc_ref_rope_head(float *p, const float *c, const float *s, int half);
/* Rows [r0, r1) of the rope op, each row's heads through `head` (samc_ref_rope_head or a
 * kernel with its bits): the op's row and table indexing in one place. */
typedef void (*samc_rope_head_fn)(float *p, const float *c, const float *s, int half);
void samc_ref_rope_rows(float *x, int r0, int r1, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                        const float *sin_t, int period, samc_rope_head_fn head);
void samc_ref_group_stats(const float *xg, size_t n, float eps, double *mean, double *inv);
void samc_ref_group_apply(const float *xc, float *yc, int HW, double mean, double inv, float w, float b);
/* MaskDecoder._dynamic_multimask_via_stability for one item (the reference for the
 * model's host code and the M = 1 choice of mask_stats): the stability of token 0's
 * logits all_masks[0, n] with cuts +-0.05 (1 when nothing is above the lower cut); token
 * 0 when it is >= 0.98, else the token of 1..3 with the highest all_iou (the first on
 * ties). */
int samc_ref_multimask_choice(const float *all_masks /* [4, n] */, const float *all_iou /* [4] */, int n,
                              float *stability_out);

/* linear_act as its unfused sequence on table o: o->linear, then o->relu / o->gelu in
 * place, then o->add(y, r, y). The reference's linear_act, and any backend's that has
 * nothing faster. */
void samc_linear_act_unfused(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M,
                             int N, int K, samc_act act, const float *r);

/* Fills every NULL entry of a host-memory backend's table with the reference op, so a
 * fast backend may implement a subset. */
void samc_ops_fill_from_ref(samc_ops *o);

/* 16-bit weight storage (see weights16 above). A stand-in is an address in a range
 * reserved with samc_w16_reserve (never readable: PROT_NONE); samc_w16_register ties
 * n floats of stand-in to n 16-bit values; samc_w16_find gives the 16-bit value behind
 * any address inside a registered range (and its type), or NULL for ordinary memory.
 * Thread-safe; several models may register at once. */
typedef enum { SAMC_W16_F16 = 1, SAMC_W16_BF16 = 2 } samc_w16_dtype;
float *samc_w16_reserve(size_t n_floats);
/* Unregisters every stand-in inside the range and unmaps it. */
void samc_w16_release(float *base, size_t n_floats);
int samc_w16_register(const float *standin, size_t n, const uint16_t *data, samc_w16_dtype dtype);
const uint16_t *samc_w16_find(const float *p, samc_w16_dtype *dtype);

/* The null backend: every op does nothing (sizing memory by running the model). */
const samc_ops *samc_ops_null(void);

/* The sizing backend: the null backend with an allocator that only counts (fake,
 * distinct addresses), for the memory plan of a backend that is not here. fixed_bytes:
 * the backend's own buffers (e.g. SAMC_CUDA_FIXED_BYTES). */
typedef struct {
    size_t fixed;     /* the backend's own buffers */
    size_t lowp;      /* 16-bit weight copy + conversion scratch (set_precision) + the
                         16-bit-only weights (weights16_region) */
    size_t weights16; /* of which the 16-bit-only weights */
    size_t current;   /* held now, all included */
    size_t peak;      /* the most ever held */
} samc_ops_sizing;
samc_ops *samc_ops_sizing_create(const char *name, size_t fixed_bytes);
void samc_ops_sizing_totals(const samc_ops *o, samc_ops_sizing *out);
void samc_ops_sizing_destroy(samc_ops *o);
/* What the CUDA backend allocates besides the model's blocks (kernels/cuda/): the cuBLAS
 * workspace (32 MiB on sm_90, 4 MiB before; the plan takes the larger) and, in bf16 /
 * fp16, the scratch of the upload / download conversions (also the split-KV attention's
 * partial results). The CUDA context itself (a few hundred MiB,
 * driver-dependent) is not counted. */
#define SAMC_CUDA_FIXED_BYTES ((size_t)32 << 20)
#define SAMC_CUDA_LOWP_SCRATCH_BYTES ((size_t)32 << 20)

/* Backends. cpu_fast returns NULL when the CPU lacks what it needs (the caller then
 * falls back to cpu_ref); n_threads <= 0 means one per online core. */
const samc_ops *samc_ops_cpu_ref(void);
samc_ops *samc_ops_cpu_fast_create(int n_threads);
void samc_ops_cpu_fast_destroy(samc_ops *o);
/* What the fast path runs with, for `samc version`: "avx2+fma", "scalar". */
const char *samc_ops_cpu_fast_isa(void);
/* 1 when cpu_fast can compute in bf16 here (--precision bf16 on the CPU: its GEMMs on
 * Intel AMX, kernels/cpu_fast_amx.c), else 0 with why in `why`. */
int samc_ops_cpu_fast_bf16(char *why, size_t n);

/* CUDA backend (kernels/cuda/): NULL with a message in err (512 bytes) when this build has
 * no CUDA, or there is no device or driver. */
samc_ops *samc_ops_cuda_create(int device, char *err);
void samc_ops_cuda_destroy(samc_ops *o);
/* For `samc version` and `--device auto`: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs,
 * 79.1 GiB), driver 12.8, runtime 13.0" and 0, or why there is none and -1
 * ("cudaGetDeviceCount: <reason>", "this build has no CUDA backend (...)").
 * Only this and samc_ops_cuda_create touch the CUDA runtime. */
int samc_cuda_device_info(char *buf, size_t n);

#endif
