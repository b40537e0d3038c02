/* kernels/cpu_fast.c: the fast CPU backend: blocked GEMM, flash-style attention and
 * the elementwise/normalisation ops, threaded on an own pthread pool.
 *
 * This file holds the parts that do not depend on the instruction set: the instance
 * (pool + per-thread scratch, all allocated at create), the GEMM and attention drivers
 * (cache blocking, packing, task split), and the portable inner kernels. The AVX2+FMA
 * inner kernels are in cpu_fast_avx2.c, the AVX-512 ones in cpu_fast_avx512.c;
 * samc_ops_cpu_fast_create picks the best table __builtin_cpu_supports allows (avx512,
 * then avx2+fma), and otherwise runs the portable kernels (still blocked and threaded)
 * rather than returning NULL. SAMC_CPU_ISA=avx512|avx2|scalar picks a table by name.
 *
 * --precision bf16 (set_precision, on a CPU with AMX): in the model's 16-bit phases the
 * GEMMs (gemm_rect_amx, gemm_amx_shared) and attention (att_rows) take their operands
 * rounded to bf16 on AMX tiles (cpu_fast_amx.c), fp32 sums; activations stay fp32 in
 * memory; convolutions of 256+ taps do so in every phase. Deterministic too: the K
 * blocking depends on K only and each element of C is the same tile products whatever
 * the split (thread count, shared or per-task B).
 *
 * Determinism: every op gives bit-identical output for any thread count and from run
 * to run, for a given kernel table (see cpu_fast.h). Tasks write disjoint outputs and
 * no sum is ever split across tasks.
 *
 * No op allocates: all scratch is per thread, sized at create for fixed block sizes (the
 * bf16 scratch and the shared B buffer at set_precision), and the drivers block every
 * problem so that it fits. */
#include "kernels/cpu_fast_kernels.h"
#include "util/half.h"
#include "kernels/thread_pool.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GEMM cache blocking. A kc x 16 panel of packed B (16 KiB at kc = 256) stays in L1
 * while the micro-kernel sweeps the MC x kc block of A held in L2; the packed B block
 * (K x nc, up to GEMM_BP floats = 4 MiB) lives in L2/L3. */
#define GEMM_KC 256
#define GEMM_NC 1024
#define GEMM_MC 144
#define GEMM_BP (1 << 20)
/* The bf16 GEMM on AMX: K blocks of up to AMX_KC (a multiple of 32: one tile step),
 * AMX_MC rows of A converted at a time (a multiple of 32: two row tiles), their bf16 rows
 * AMX_LDA values apart (32 past the block, so that a tile's 16 rows do not all fall in
 * the same L1 sets). */
#define AMX_KC 5120
#define AMX_MC 128
#define AMX_LDA (AMX_KC + 32)
/* bf16 values of the shared B buffer (32 MiB): the ViT's largest weight (4736 x 1024)
 * three times over. */
#define AMX_SHARED_B ((size_t)16 << 20)

/* Below this many multiply-adds a GEMM runs on the calling thread only. */
#define GEMM_SMALL (1 << 18)

/* conv_transpose2x2 output tile (rows = Cout*4 channels-taps, a multiple of 4 so that
 * a tile holds whole channels; cols = input pixels). */
#define CT_M 256
#define CT_N 256
_Static_assert(CT_M % 4 == 0, "conv_transpose2x2 tiles must hold whole channels");

/* Attention blocking: keys/values are packed ATT_KVC at a time (fewer for very wide
 * heads, so that both packed chunks fit ATT_BUF floats), queries go ATT_QB rows at a
 * time through the score tile, and a task owns at most ATT_RMAX query rows (their
 * running max and sum live in scratch). */
#define ATT_KVC 256
#define ATT_QB 48
#define ATT_RMAX 8192
#define ATT_BUF 65536

/* Row stride of an A block copied for a table with copy_a: GEMM_KC plus one cache line
 * (rows 4 KB apart would all fall in one L1 set). */
#define GEMM_AP_LD (GEMM_KC + 16)

typedef struct {
    float *bp;  /* packed B block: GEMM_BP */
    float *ap;  /* A block copy when A is not contiguous in k (or the table asks): GEMM_MC * GEMM_AP_LD */
    float *ct;  /* conv_transpose2x2 tile: CT_M * CT_N */
    /* attention (carved out of bp: attention never runs a GEMM through bp) */
    float *kp, *vp, *s, *m, *l;
    /* bf16 on AMX (allocated by set_precision(bf16)): the A block in bf16, AMX_MC x
     * AMX_LDA; fp32 staging for a B panel or a converted A block, AMX_MC x AMX_KC.
     * The packed B block goes in bp (GEMM_BP floats hold 2·GEMM_BP bf16). */
    uint16_t *amx_a;
    float *amx_f;
} thread_scratch;

typedef struct {
    samc_ops ops;
    samc_thread_pool *pool;
    int n_threads;
    const samc_fast_kernels *k;
    thread_scratch *ts;
    /* --precision bf16: set_precision(bf16) made the AMX path ready; it runs while the
     * model's 16-bit phase is on (activation_precision 1) */
    int amx_ready, amx_on;
    /* bf16: B of a tall product packed once for all threads (gemm_amx_shared) */
    uint16_t *amx_b;
    size_t amx_b_cap;
} fast_state;

/* A convolution with at least this many taps (Cin·kh·kw) takes bf16 operands whenever
 * the instance is in bf16, in either phase, as the CUDA backend's long convolutions do
 * (kernels/cuda/conv.cu, CONV_GEMM_MIN_R): SAM3's pixel decoder (122 GFLOP per text),
 * which runs in the model's fp32 phase. */
#define CONV_BF16_MIN_TAPS 256

static fast_state *state_of(const samc_ops *o) { return (fast_state *)o->ctx; }

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- GEMM driver */

typedef enum { B_ROWS, B_COLS, B_IM2COL } b_kind;

/* C[M,N] = A[M,K] · B[K,N] (+ bias_n per column) (+ bias_m per row).
 * A(m,k) = a[m*a_rs + k*a_cs]. B(k,n) = b[k*ldb + n] (B_ROWS), b[n*ldb + k] (B_COLS),
 * or an on-the-fly im2col of the conv2d input b (B_IM2COL). */
typedef struct {
    int M, N, K;
    const float *a; ptrdiff_t a_rs, a_cs;
    const float *b; ptrdiff_t ldb;
    b_kind b_kind;
    const float *bias_n, *bias_m;
    float *c; ptrdiff_t ldc;
    /* im2col geometry for conv2d */
    int cin, h, w, kh, kw, stride, pad, wo;
    /* weights kept in 16 bits (ops.h, weights16): A, or B of B_COLS, read from these
     * instead (a / b are then stand-ins, never read) */
    const uint16_t *a16, *b16;
    samc_w16_dtype a16_t, b16_t;
    /* linear_act's epilogue: act in place, then + res (row stride ldc, NULL: none) */
    samc_act act;
    const float *res;
} gemm_desc;

static inline float w16_value(const uint16_t *p, samc_w16_dtype t) {
    return t == SAMC_W16_BF16 ? util_bf16_to_float(*p) : util_half_to_float(*p);
}

/* pack_cols of a 16-bit B: the same panels, the values converted on the way. */
static void pack_cols_w16(const uint16_t *b, samc_w16_dtype t, ptrdiff_t ldb, int kc, int nc, float *dst) {
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        int nr = imin(SAMC_GEMM_NR, nc - p);
        for (int j = 0; j < nr; j++) {
            const uint16_t *src = b + (ptrdiff_t)(p + j) * ldb;
            for (int k = 0; k < kc; k++) dst[(size_t)k * SAMC_GEMM_NR + j] = w16_value(src + k, t);
        }
        for (int j = nr; j < SAMC_GEMM_NR; j++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * SAMC_GEMM_NR + j] = 0.0f;
        dst += (size_t)kc * SAMC_GEMM_NR;
    }
}

/* Portable packers (see samc_fast_kernels.pack_rows / pack_cols). */
static void pack_rows_scalar(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst) {
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        int nr = imin(SAMC_GEMM_NR, nc - p);
        const float *src = b + p;
        for (int k = 0; k < kc; k++, dst += SAMC_GEMM_NR, src += ldb) {
            int j = 0;
            for (; j < nr; j++) dst[j] = src[j];
            for (; j < SAMC_GEMM_NR; j++) dst[j] = 0.0f;
        }
    }
}

static void transpose_scalar(const float *src, ptrdiff_t lds, int rows, int cols, float *dst, ptrdiff_t ldd) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

static void pack_cols_scalar(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst) {
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        int nr = imin(SAMC_GEMM_NR, nc - p);
        for (int j = 0; j < nr; j++) {
            const float *src = b + (ptrdiff_t)(p + j) * ldb;
            for (int k = 0; k < kc; k++) dst[(size_t)k * SAMC_GEMM_NR + j] = src[k];
        }
        for (int j = nr; j < SAMC_GEMM_NR; j++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * SAMC_GEMM_NR + j] = 0.0f;
        dst += (size_t)kc * SAMC_GEMM_NR;
    }
}

/* im2col on the fly for nn.Conv2d: k = (ci, ky, kx), n = (oy, ox). The tap offsets of
 * the K block are decoded once; a panel whose 16 windows lie inside the image (all
 * but the border ones) skips the bounds checks, and one whose windows are consecutive
 * in a row reads each tap as a strided run. */
static void pack_im2col(const gemm_desc *g, int k0, int kc, int n0, int nc, float *dst) {
    int khw = g->kh * g->kw, H = g->h, W = g->w, st = g->stride;
    int tky[GEMM_KC], tkx[GEMM_KC];
    ptrdiff_t toff[GEMM_KC];
    /* the taps of rows k0.. by counting (ci, ky, kx) on: divisions only for the first
     * (the table is made per panel, and for 16 columns a division per row cost more
     * than the copies) */
    int ci = k0 / khw, ky = k0 % khw / g->kw, kx = k0 % khw % g->kw;
    for (int k = 0; k < kc; k++) {
        tky[k] = ky;
        tkx[k] = kx;
        toff[k] = (ptrdiff_t)ci * H * W + (ptrdiff_t)ky * W + kx;
        if (++kx == g->kw) {
            kx = 0;
            if (++ky == g->kh) { ky = 0; ci++; }
        }
    }
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        int nr = imin(SAMC_GEMM_NR, nc - p);
        int iy0[SAMC_GEMM_NR], ix0[SAMC_GEMM_NR];
        ptrdiff_t base[SAMC_GEMM_NR];
        int inside = nr == SAMC_GEMM_NR, one_row = 1;
        for (int j = 0; j < nr; j++) {
            int n = n0 + p + j;
            iy0[j] = (n / g->wo) * st - g->pad;
            ix0[j] = (n % g->wo) * st - g->pad;
            base[j] = (ptrdiff_t)iy0[j] * W + ix0[j];
            inside &= iy0[j] >= 0 && iy0[j] + g->kh <= H && ix0[j] >= 0 && ix0[j] + g->kw <= W;
            one_row &= iy0[j] == iy0[0];
        }
        if (inside && one_row && st == 1) {
            for (int k = 0; k < kc; k++)
                memcpy(dst + (size_t)k * SAMC_GEMM_NR, g->b + toff[k] + base[0], SAMC_GEMM_NR * sizeof(float));
        } else if (inside && one_row) {
            for (int k = 0; k < kc; k++) {
                const float *src = g->b + toff[k] + base[0];
                float *d = dst + (size_t)k * SAMC_GEMM_NR;
                for (int j = 0; j < SAMC_GEMM_NR; j++) d[j] = src[j * st];
            }
        } else if (inside) {
            for (int k = 0; k < kc; k++) {
                const float *src = g->b + toff[k];
                float *d = dst + (size_t)k * SAMC_GEMM_NR;
                for (int j = 0; j < SAMC_GEMM_NR; j++) d[j] = src[base[j]];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = g->b + toff[k];
                float *d = dst + (size_t)k * SAMC_GEMM_NR;
                int j = 0;
                for (; j < nr; j++) {
                    int iy = iy0[j] + tky[k], ix = ix0[j] + tkx[k];
                    d[j] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? src[base[j]] : 0.0f;
                }
                for (; j < SAMC_GEMM_NR; j++) d[j] = 0.0f;
            }
        }
        dst += (size_t)kc * SAMC_GEMM_NR;
    }
}

/* B(k0..k0+kc, n0..n0+nc) as panels. */
static void pack_b(const samc_fast_kernels *kn, const gemm_desc *g, int k0, int kc, int n0, int nc, float *dst) {
    switch (g->b_kind) {
    case B_ROWS: kn->pack_rows(g->b + (ptrdiff_t)k0 * g->ldb + n0, g->ldb, kc, nc, dst); break;
    case B_COLS:
        if (g->b16) pack_cols_w16(g->b16 + (ptrdiff_t)n0 * g->ldb + k0, g->b16_t, g->ldb, kc, nc, dst);
        else kn->pack_cols(g->b + (ptrdiff_t)n0 * g->ldb + k0, g->ldb, kc, nc, dst);
        break;
    case B_IM2COL: pack_im2col(g, k0, kc, n0, nc, dst); break;
    }
}

/* The K blocking depends on K only, so every element of C is summed in the same order
 * whatever the task split. */
static int gemm_kc(int K) { return ceil_div(K, ceil_div(K, GEMM_KC)); }

/* Column chunk of B packed at a time: all of K x chunk fits the buffer, when that
 * leaves at least 64 columns. */
static int gemm_ncmax(int K) {
    return imax(64, imin(GEMM_NC, GEMM_BP / imax(K, 1) / SAMC_GEMM_NR * SAMC_GEMM_NR));
}

/* Rows [m0, m0+mc) x columns [pc, pc+kc) of A as fp32 rows: A itself when it is
 * contiguous in k, else converted (16-bit weights), transposed (column-major A) or
 * gathered into buf with row stride kc. */
static const float *a_block(const samc_fast_kernels *kn, const gemm_desc *g, int m0, int mc, int pc, int kc,
                            float *buf, ptrdiff_t *lda) {
    *lda = kc;
    if (g->a16) {
        for (int i = 0; i < mc; i++)
            for (int k = 0; k < kc; k++)
                buf[(size_t)i * kc + k] =
                    w16_value(g->a16 + (ptrdiff_t)(m0 + i) * g->a_rs + (ptrdiff_t)(pc + k) * g->a_cs, g->a16_t);
    } else if (g->a_cs == 1) {
        *lda = g->a_rs;
        return g->a + (ptrdiff_t)m0 * g->a_rs + pc;
    } else if (g->a_rs == 1) {
        kn->transpose(g->a + (ptrdiff_t)pc * g->a_cs + m0, g->a_cs, kc, mc, buf, kc);
    } else {
        for (int i = 0; i < mc; i++)
            for (int k = 0; k < kc; k++)
                buf[(size_t)i * kc + k] = g->a[(ptrdiff_t)(m0 + i) * g->a_rs + (ptrdiff_t)(pc + k) * g->a_cs];
    }
    return buf;
}

/* linear_act's epilogue on finished rows [m0, m0+mc) x columns [n0, n0+nc) of C (c at
 * their top-left, row stride ldc) while they are in cache: the activation, then + res,
 * the arithmetic of relu / gelu / add over the whole output (gelu: the bf16 phase's on
 * AMX, bf16 set), so the same bits. */
static void gemm_epilogue(const samc_fast_kernels *kn, const gemm_desc *g, int m0, int mc, int n0, int nc, float *c,
                          ptrdiff_t ldc, int bf16) {
    for (int i = 0; i < mc; i++) {
        float *row = c + (ptrdiff_t)i * ldc;
        if (g->act == SAMC_ACT_GELU) (bf16 ? samc_fast_amx_gelu : kn->gelu)(row, (size_t)nc);
        else if (g->act == SAMC_ACT_RELU) kn->relu(row, (size_t)nc);
        if (g->res) kn->add(row, row, g->res + (ptrdiff_t)(m0 + i) * g->ldc + n0, (size_t)nc);
    }
}

/* Computes rows [m0,m1) x cols [n0,n1) of C into c (pointing at that rectangle's
 * top-left element, row stride ldc), on one thread.
 *
 * B is packed for as many K blocks as fit the panel buffer (all of K for every SAM2.1
 * shape), then each MC-row block of C runs through all those K blocks while it is
 * still in cache, instead of sweeping the whole C once per K block. */
static void gemm_rect(const samc_fast_kernels *kn, const gemm_desc *g, int m0, int m1, int n0,
                      int n1, float *c, ptrdiff_t ldc, thread_scratch *ts) {
    int K = g->K;
    if (K == 0) {
        for (int m = m0; m < m1; m++)
            for (int n = n0; n < n1; n++)
                c[(ptrdiff_t)(m - m0) * ldc + (n - n0)] =
                    (g->bias_n ? g->bias_n[n] : 0.0f) + (g->bias_m ? g->bias_m[m] : 0.0f);
        return;
    }
    int kcb = gemm_kc(K), nkb = ceil_div(K, kcb);
    int ncmax = gemm_ncmax(K);
    int nw = n1 - n0;
    int ncb = round_up(ceil_div(nw, ceil_div(nw, ncmax)), SAMC_GEMM_NR);
    /* K blocks per pass: as many as fit beside ncb columns. */
    int kb_pass = imax(1, imin(nkb, GEMM_BP / (kcb * ncb)));
    for (int nc0 = n0; nc0 < n1; nc0 += ncb) {
        int nc = imin(ncb, n1 - nc0), ncp = round_up(nc, SAMC_GEMM_NR);
        for (int kb0 = 0; kb0 < nkb; kb0 += kb_pass) {
            int kb1 = imin(nkb, kb0 + kb_pass);
            for (int kb = kb0; kb < kb1; kb++) {
                int pc = kb * kcb;
                pack_b(kn, g, pc, imin(kcb, K - pc), nc0, nc, ts->bp + (size_t)(kb - kb0) * kcb * ncp);
            }
            for (int mc0 = m0; mc0 < m1; mc0 += GEMM_MC) {
                int mc = imin(GEMM_MC, m1 - mc0);
                for (int kb = kb0; kb < kb1; kb++) {
                    int pc = kb * kcb, kc = imin(kcb, K - pc), last = pc + kc >= K;
                    const float *bblk = ts->bp + (size_t)(kb - kb0) * kcb * ncp;
                    const float *ablk;
                    ptrdiff_t lda;
                    if (!g->a16 && g->a_cs == 1 && kn->copy_a && g->a_rs > kc) {
                        /* A tall tile reads more rows at once than L1 has ways when they
                         * are 4 KB apart (K = 1024): copied to rows one line past kc. */
                        for (int i = 0; i < mc; i++)
                            memcpy(ts->ap + (size_t)i * GEMM_AP_LD, g->a + (ptrdiff_t)(mc0 + i) * g->a_rs + pc,
                                   (size_t)kc * sizeof(float));
                        ablk = ts->ap;
                        lda = GEMM_AP_LD;
                    } else {
                        ablk = a_block(kn, g, mc0, mc, pc, kc, ts->ap, &lda);
                    }
                    /* The A block computed next (next K block of these rows, else the
                     * next rows) is prefetched a slice per B panel, so that it arrives
                     * from memory while this block computes. */
                    int np = ceil_div(nc, kn->nr), nm0 = mc0, nmc = mc, npc = pc + kc, nkc = kcb;
                    if (kb + 1 == kb1) { nm0 = mc0 + mc; nmc = imin(GEMM_MC, m1 - nm0); npc = kb0 * kcb; }
                    nkc = imin(nkc, K - npc);
                    for (int jp = 0; jp < nc; jp += kn->nr) {
                        int nr = imin(kn->nr, nc - jp);
                        const float *bpanel = bblk + (size_t)(jp / SAMC_GEMM_NR) * kc * SAMC_GEMM_NR;
                        if (g->a_cs == 1 && nmc > 0 && !g->a16) {
                            int p = jp / kn->nr, i0 = p * nmc / np, i1 = (p + 1) * nmc / np;
                            for (int i = i0; i < i1; i++) {
                                const char *row = (const char *)(g->a + (ptrdiff_t)(nm0 + i) * g->a_rs + npc);
                                for (int off = 0; off < nkc * (int)sizeof(float); off += 64)
                                    __builtin_prefetch(row + off, 0, 3);
                            }
                        }
                        const float *bn = (last && g->bias_n) ? g->bias_n + nc0 + jp : NULL;
                        for (int ir = 0; ir < mc; ir += kn->mr) {
                            int mr = imin(kn->mr, mc - ir);
                            const float *bm = (last && g->bias_m) ? g->bias_m + mc0 + ir : NULL;
                            kn->gemm_ukernel(kc, ablk + (ptrdiff_t)ir * lda, lda, bpanel, SAMC_GEMM_NR,
                                             c + (ptrdiff_t)(mc0 - m0 + ir) * ldc + (nc0 - n0 + jp), ldc,
                                             mr, nr, pc > 0, bn, bm);
                        }
                    }
                }
                if (kb1 == nkb && (g->act || g->res))
                    gemm_epilogue(kn, g, mc0, mc, nc0, nc, c + (ptrdiff_t)(mc0 - m0) * ldc + (nc0 - n0), ldc, 0);
            }
        }
    }
}

/* The K blocking of the AMX path (from K only): blocks of kcb values, kcp rounded to a
 * tile step, nkb of them. */
typedef struct { int kcb, kcp, nkb; } amx_kblocks;
static amx_kblocks amx_kblocking(int K) {
    amx_kblocks b;
    b.kcb = ceil_div(K, ceil_div(K, AMX_KC));
    b.kcp = round_up(b.kcb, 32);
    b.nkb = ceil_div(K, b.kcb);
    return b;
}

/* B's columns [n0, n0+nc) of K block kb as pair panels at dst (panel of column n0+p at
 * dst + p·kcp): packed as for the fp32 kernels, panel by panel, then rounded. */
static void amx_pack_b_block(const samc_fast_kernels *kn, const gemm_desc *g, amx_kblocks kb_, int kb, int n0, int nc,
                             uint16_t *dst, thread_scratch *ts) {
    int pc = kb * kb_.kcb, kc = imin(kb_.kcb, g->K - pc);
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        /* one panel's rows, GEMM_KC at a time (the packers' own limit) */
        for (int k = 0; k < kc; k += GEMM_KC)
            pack_b(kn, g, pc + k, imin(GEMM_KC, kc - k), n0 + p, imin(SAMC_GEMM_NR, nc - p),
                   ts->amx_f + (size_t)k * SAMC_GEMM_NR);
        samc_fast_amx_pack_b(ts->amx_f, kc, dst + (size_t)p * kb_.kcp);
    }
}

/* Rows [m0, m1) x columns [n0, n0+nc) of C (c at row m0, column n0, row stride ldc) for
 * K blocks [kb0, kb1) of packed B (block kb at bb + (kb - kb0)·bstride, columns from n0):
 * each A block rounded to bf16 rows once and swept by 32 x 32 tiles of C; the epilogue
 * when the last K block is among them. */
static void amx_rows(const samc_fast_kernels *kn, const gemm_desc *g, amx_kblocks kb_, int kb0, int kb1, int m0,
                     int m1, int n0, int nc, const uint16_t *bb, size_t bstride, float *c, ptrdiff_t ldc,
                     thread_scratch *ts) {
    int K = g->K, kcp = kb_.kcp;
    for (int mc0 = m0; mc0 < m1; mc0 += AMX_MC) {
        int mc = imin(AMX_MC, m1 - mc0);
        for (int kb = kb0; kb < kb1; kb++) {
            int pc = kb * kb_.kcb, kc = imin(kb_.kcb, K - pc), last = pc + kc >= K;
            ptrdiff_t lda;
            const float *ablk = a_block(kn, g, mc0, mc, pc, kc, ts->amx_f, &lda);
            samc_fast_amx_pack_a(ablk, lda, mc, kc, ts->amx_a, AMX_LDA);
            const uint16_t *bblk = bb + (size_t)(kb - kb0) * bstride;
            for (int jp = 0; jp < nc; jp += 32) {
                int nr = imin(32, nc - jp);
                const float *bn = (last && g->bias_n) ? g->bias_n + n0 + jp : NULL;
                for (int ir = 0; ir < mc; ir += 32) {
                    const float *bm = (last && g->bias_m) ? g->bias_m + mc0 + ir : NULL;
                    samc_fast_amx_tiles(kc, ts->amx_a + (size_t)ir * AMX_LDA, AMX_LDA, bblk + (size_t)jp * kcp,
                                        c + (ptrdiff_t)(mc0 - m0 + ir) * ldc + jp, ldc, imin(32, mc - ir), nr, pc > 0,
                                        bn, bm);
                }
            }
        }
        if (kb1 == kb_.nkb && (g->act || g->res))
            gemm_epilogue(kn, g, mc0, mc, n0, nc, c + (ptrdiff_t)(mc0 - m0) * ldc, ldc, 1);
    }
}

/* The same rectangle in bf16 on AMX (--precision bf16, the model's 16-bit phase), with
 * its own B packed in bp: the structure of gemm_rect, K blocks of up to AMX_KC and
 * 32-column tiles. */
static void gemm_rect_amx(const samc_fast_kernels *kn, const gemm_desc *g, int m0, int m1, int n0, int n1,
                          float *c, ptrdiff_t ldc, thread_scratch *ts) {
    amx_kblocks kb_ = amx_kblocking(g->K);
    const int cap = 2 * GEMM_BP; /* bf16 values in bp */
    int ncmax = imax(32, imin(GEMM_NC, cap / kb_.kcp / 32 * 32));
    int nw = n1 - n0;
    int ncb = round_up(ceil_div(nw, ceil_div(nw, ncmax)), 32);
    int kb_pass = imax(1, imin(kb_.nkb, cap / (kb_.kcp * ncb)));
    uint16_t *bb = (uint16_t *)ts->bp;
    samc_fast_amx_begin();
    for (int nc0 = n0; nc0 < n1; nc0 += ncb) {
        int nc = imin(ncb, n1 - nc0), ncp = round_up(nc, SAMC_GEMM_NR);
        for (int kb0 = 0; kb0 < kb_.nkb; kb0 += kb_pass) {
            int kb1 = imin(kb_.nkb, kb0 + kb_pass);
            for (int kb = kb0; kb < kb1; kb++)
                amx_pack_b_block(kn, g, kb_, kb, nc0, nc, bb + (size_t)(kb - kb0) * ncp * kb_.kcp, ts);
            amx_rows(kn, g, kb_, kb0, kb1, m0, m1, nc0, nc, bb, (size_t)ncp * kb_.kcp, c + (nc0 - n0), ldc, ts);
        }
    }
    samc_fast_amx_end();
}

/* Tall products in bf16 (the ViT's: 5184 token rows) pack all of B once into the shared
 * buffer set_precision made, the threads splitting its panels, then split only rows: each
 * A row is rounded once instead of once per column chunk and task (a memory-bound pass
 * over activations of up to 98 MB), each B value once instead of once per row task. */
typedef struct {
    fast_state *st;
    const gemm_desc *g;
    amx_kblocks kb;
    int ncp, panels_per_task, rows_per_task;
} amx_shared_job;

static void amx_shared_pack_task(void *ctx, int task, int thread) {
    const amx_shared_job *j = ctx;
    int n0 = task * j->panels_per_task * SAMC_GEMM_NR, n1 = imin(j->g->N, n0 + j->panels_per_task * SAMC_GEMM_NR);
    for (int kb = 0; kb < j->kb.nkb; kb++)
        amx_pack_b_block(j->st->k, j->g, j->kb, kb, n0, n1 - n0,
                         j->st->amx_b + ((size_t)kb * j->ncp + n0) * j->kb.kcp, &j->st->ts[thread]);
}

static void amx_shared_rows_task(void *ctx, int task, int thread) {
    const amx_shared_job *j = ctx;
    int m0 = task * j->rows_per_task, m1 = imin(j->g->M, m0 + j->rows_per_task);
    samc_fast_amx_begin();
    amx_rows(j->st->k, j->g, j->kb, 0, j->kb.nkb, m0, m1, 0, j->g->N, j->st->amx_b, (size_t)j->ncp * j->kb.kcp,
             j->g->c + (ptrdiff_t)m0 * j->g->ldc, j->g->ldc, &j->st->ts[thread]);
    samc_fast_amx_end();
}

/* 1 when it ran the product (B fits the shared buffer, enough rows to split). */
static int gemm_amx_shared(fast_state *st, const gemm_desc *g, int T) {
    amx_kblocks kb = amx_kblocking(g->K);
    int ncp = round_up(g->N, SAMC_GEMM_NR);
    if (T < 2 || g->M < T * 64 || (size_t)kb.nkb * ncp * kb.kcp > st->amx_b_cap) return 0;
    amx_shared_job j = { st, g, kb, ncp, 0, 0 };
    int panels = ncp / SAMC_GEMM_NR;
    j.panels_per_task = ceil_div(panels, imin(T, panels));
    samc_thread_pool_parallel_for(st->pool, ceil_div(panels, j.panels_per_task), amx_shared_pack_task, &j);
    j.rows_per_task = round_up(ceil_div(g->M, T), 32);
    samc_thread_pool_parallel_for(st->pool, ceil_div(g->M, j.rows_per_task), amx_shared_rows_task, &j);
    return 1;
}

/* gemm_rect, or gemm_rect_amx in the bf16 phase. */
static void gemm_rect_any(const fast_state *st, const gemm_desc *g, int m0, int m1, int n0, int n1, float *c,
                          ptrdiff_t ldc, thread_scratch *ts) {
    if (st->amx_on && g->K > 0) gemm_rect_amx(st->k, g, m0, m1, n0, n1, c, ldc, ts);
    else gemm_rect(st->k, g, m0, m1, n0, n1, c, ldc, ts);
}

typedef struct {
    fast_state *st;
    const gemm_desc *g;
    int tm, tn, tasks_n;
} gemm_job;

static void gemm_task(void *ctx, int task, int thread) {
    const gemm_job *j = ctx;
    int m0 = (task / j->tasks_n) * j->tm, n0 = (task % j->tasks_n) * j->tn;
    int m1 = imin(m0 + j->tm, j->g->M), n1 = imin(n0 + j->tn, j->g->N);
    gemm_rect_any(j->st, j->g, m0, m1, n0, n1, j->g->c + (ptrdiff_t)m0 * j->g->ldc + n0, j->g->ldc,
                  &j->st->ts[thread]);
}

/* A linear layer on few rows (SAM3's text encoder: 32 tokens against 1024 x 4096
 * weights) is bound by reading the weights, and the usual path reads them three times:
 * the transposing pack of B into a panel buffer larger than L2, then the panels. It is
 * computed transposed instead, Cᵀ = W · xᵀ: the weight rows are the A operand, read in
 * place (as rows of any A), the few input rows the packed B (x is small), a chunk of Cᵀ
 * goes to the thread's ct buffer and is transposed into y, then the epilogue. Each
 * element is the same k-ordered chain of FMAs (fma(w, x, acc) = fma(x, w, acc)) over
 * the same K blocks, with the bias added last: the bits of the usual path. */
#define SMALL_M_MAX 64
typedef struct {
    fast_state *st;
    const gemm_desc *g;   /* the product as asked: y[M, N] = x · Wᵀ */
    gemm_desc t;          /* the transposed one: Cᵀ[N, M] */
    int rows_per_task, chunk;
} small_m_job;

static void small_m_task(void *ctx, int task, int thread) {
    const small_m_job *j = ctx;
    const gemm_desc *g = j->g;
    thread_scratch *ts = &j->st->ts[thread];
    int n0 = task * j->rows_per_task, n1 = imin(g->N, n0 + j->rows_per_task);
    for (int c0 = n0; c0 < n1; c0 += j->chunk) {
        int nc = imin(j->chunk, n1 - c0);
        gemm_rect(j->st->k, &j->t, c0, c0 + nc, 0, g->M, ts->ct, g->M, ts);
        j->st->k->transpose(ts->ct, g->M, nc, g->M, g->c + c0, g->ldc);
        if (g->act || g->res) gemm_epilogue(j->st->k, g, 0, g->M, c0, nc, g->c + c0, g->ldc, 0);
    }
}

/* 1 when it ran the product (a linear layer: x rows contiguous, W[N, K] contiguous). */
static int gemm_small_m(fast_state *st, const gemm_desc *g) {
    if (st->amx_on || g->b_kind != B_COLS || g->a16 || g->a_cs != 1 || g->bias_m || g->M > SMALL_M_MAX ||
        g->N < 256 || g->K < 64)
        return 0;
    small_m_job j = { .st = st, .g = g };
    j.t = (gemm_desc){ .M = g->N, .N = g->M, .K = g->K, .a = g->b, .a_rs = g->ldb, .a_cs = 1,
                       .a16 = g->b16, .a16_t = g->b16_t, .b = g->a, .ldb = g->a_rs, .b_kind = B_COLS,
                       .bias_m = g->bias_n };
    /* chunks of whole GEMM_MC row blocks that fit ct */
    j.chunk = imax(GEMM_MC, CT_M * CT_N / round_up(g->M, SAMC_GEMM_NR) / GEMM_MC * GEMM_MC);
    int T = st->n_threads == 1 ? 1 : 4 * st->n_threads;
    j.rows_per_task = round_up(ceil_div(g->N, T), st->k->mr);
    samc_thread_pool_parallel_for(st->pool, ceil_div(g->N, j.rows_per_task), small_m_task, &j);
    return 1;
}

/* Splits C into a grid of tasks_m x tasks_n rectangles, about 4 per thread for balance.
 * Each task packs the B columns it needs and streams the A rows it needs once per
 * column chunk, so the grid is picked to minimise that traffic: in units of K
 * elements, 2·tasks_m·N for packing B (a transposing copy, often of weights that come
 * from memory: weighted double) plus tasks_n·M·(column chunks per task) for A. Tall
 * activations (65536 tokens) split rows; wide weights (768 -> 3072) split columns. */
static void gemm_run(fast_state *st, const gemm_desc *g) {
    int M = g->M, N = g->N;
    if (M <= 0 || N <= 0) return;
    double work = (double)M * N * (g->K > 0 ? g->K : 1);
    int T = st->n_threads == 1 || work < GEMM_SMALL ? 1 : 4 * st->n_threads;
    if (st->amx_on && g->K > 0 && gemm_amx_shared(st, g, T)) return;
    if (gemm_small_m(st, g)) return;
    int MR = st->k->mr, NR = st->k->nr;
    int max_m = ceil_div(M, MR), max_n = ceil_div(N, NR);
    int goal = (double)max_m * max_n < T ? max_m * max_n : T;
    int tasks_m = 1, tasks_n = 1;
    double best = -1.0;
    for (int cm = 1; cm <= imin(T, max_m); cm++) {
        int cn = imin(max_n, ceil_div(T, cm));
        if (cm * cn < goal) continue;
        int nt = round_up(ceil_div(N, cn), NR);
        double cost = 2.0 * cm * N + (double)M * cn * ceil_div(nt, gemm_ncmax(g->K));
        if (best < 0 || cost < best) { best = cost; tasks_m = cm; tasks_n = cn; }
    }
    int tm = round_up(ceil_div(M, tasks_m), MR);
    int tn = round_up(ceil_div(N, tasks_n), NR);
    gemm_job j = { st, g, tm, tn, ceil_div(N, tn) };
    samc_thread_pool_parallel_for(st->pool, ceil_div(M, tm) * j.tasks_n, gemm_task, &j);
}

static void linear_fast(const samc_ops *o, const float *x, const float *w, const float *b,
                        float *y, int M, int N, int K) {
    gemm_desc g = { .M = M, .N = N, .K = K, .a = x, .a_rs = K, .a_cs = 1,
                    .b = w, .ldb = K, .b_kind = B_COLS,
                    .bias_n = b, .c = y, .ldc = N };
    g.b16 = samc_w16_find(w, &g.b16_t);
    gemm_run(state_of(o), &g);
}

/* Fused: the epilogue runs on each block of C as its last K block is done, instead of
 * two more passes over all of y (a ViT MLP's 5184 x 4736 GELU input is 98 MB). */
static void linear_act_fast(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M,
                            int N, int K, samc_act act, const float *r) {
    gemm_desc g = { .M = M, .N = N, .K = K, .a = x, .a_rs = K, .a_cs = 1,
                    .b = w, .ldb = K, .b_kind = B_COLS,
                    .bias_n = b, .c = y, .ldc = N, .act = act, .res = r };
    g.b16 = samc_w16_find(w, &g.b16_t);
    if (K == 0) { /* no K blocks: the plain sequence */
        samc_linear_act_unfused(o, x, w, b, y, M, N, K, act, r);
        return;
    }
    gemm_run(state_of(o), &g);
}

static void matmul_fast(const samc_ops *o, const float *a, const float *b, const float *bias,
                        float *c, int M, int N, int K) {
    gemm_desc g = { .M = M, .N = N, .K = K, .a = a, .a_rs = K, .a_cs = 1,
                    .b = b, .ldb = N, .b_kind = B_ROWS,
                    .bias_m = bias, .c = c, .ldc = N };
    g.a16 = samc_w16_find(a, &g.a16_t);
    gemm_run(state_of(o), &g);
}

/* nn.Conv2d as y[Cout, Ho*Wo] = w[Cout, Cin*kh*kw] · im2col(x) + b, the im2col done
 * panel by panel inside the GEMM's B packing (no column buffer). A 1x1 stride-1
 * unpadded conv is a plain matmul. */
static void conv2d_fast(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                        int Cin, int H, int W, int Cout, int kh, int kw, int stride, int pad) {
    int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    int K = Cin * kh * kw;
    gemm_desc g = { .M = Cout, .N = Ho * Wo, .K = K, .a = w, .a_rs = K, .a_cs = 1,
                    .b = x, .bias_m = b, .c = y, .ldc = (ptrdiff_t)Ho * Wo,
                    .cin = Cin, .h = H, .w = W, .kh = kh, .kw = kw, .stride = stride,
                    .pad = pad, .wo = Wo };
    g.a16 = samc_w16_find(w, &g.a16_t);
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        g.ldb = (ptrdiff_t)H * W;
        g.b_kind = B_ROWS;
    } else {
        g.b_kind = B_IM2COL;
    }
    fast_state *st = state_of(o);
    int phase = st->amx_on;
    if (st->amx_ready && K >= CONV_BF16_MIN_TAPS) st->amx_on = 1;
    gemm_run(st, &g);
    st->amx_on = phase;
}

/* nn.ConvTranspose2d(k=2, s=2): T[(co,ky,kx), pixel] = Σ_ci w[ci,(co,ky,kx)] · x[ci,pixel]
 * tile by tile into per-thread scratch, then each tile is scattered into its 2x2
 * output patches with the bias. */
typedef struct {
    fast_state *st;
    gemm_desc g;
    const float *bias;
    float *y;
    int H, W, Cout, tiles_n;
} convt_job;

static void convt_task(void *ctx, int task, int thread) {
    const convt_job *j = ctx;
    thread_scratch *ts = &j->st->ts[thread];
    int m0 = (task / j->tiles_n) * CT_M, n0 = (task % j->tiles_n) * CT_N;
    int m1 = imin(m0 + CT_M, j->g.M), n1 = imin(n0 + CT_N, j->g.N);
    gemm_rect_any(j->st, &j->g, m0, m1, n0, n1, ts->ct, CT_N, ts);
    /* Rows m and m+1 of the tile are taps (ky, 0) and (ky, 1) of channel co: together
     * they fill output row 2*iy+ky of co, interleaved. Tiles start at multiples of 4. */
    int W = j->W, Wo = 2 * W;
    for (int m = m0; m < m1; m += 2) {
        int co = m / 4, ky = (m / 2) % 2;
        float bv = j->bias ? j->bias[co] : 0.0f;
        const float *t0 = ts->ct + (size_t)(m - m0) * CT_N, *t1 = t0 + CT_N;
        float *yc = j->y + (size_t)co * (2 * j->H) * Wo;
        for (int n = n0; n < n1;) {
            int iy = n / W, ix = n % W, len = imin(W - ix, n1 - n);
            float *dst = yc + (size_t)(2 * iy + ky) * Wo + 2 * ix;
            const float *s0 = t0 + (n - n0), *s1 = t1 + (n - n0);
            for (int i = 0; i < len; i++) {
                dst[2 * i] = s0[i] + bv;
                dst[2 * i + 1] = s1[i] + bv;
            }
            n += len;
        }
    }
}

static void conv_transpose2x2_fast(const samc_ops *o, const float *x, const float *w, const float *b,
                                   float *y, int Cin, int H, int W, int Cout) {
    fast_state *st = state_of(o);
    convt_job j = { .st = st, .bias = b, .y = y, .H = H, .W = W, .Cout = Cout };
    j.g = (gemm_desc){ .M = Cout * 4, .N = H * W, .K = Cin, .a = w, .a_rs = 1, .a_cs = (ptrdiff_t)Cout * 4,
                       .b = x, .ldb = (ptrdiff_t)H * W, .b_kind = B_ROWS };
    j.g.a16 = samc_w16_find(w, &j.g.a16_t);
    if (j.g.M <= 0 || j.g.N <= 0) return;
    j.tiles_n = ceil_div(j.g.N, CT_N);
    int n_tasks = ceil_div(j.g.M, CT_M) * j.tiles_n;
    if ((double)j.g.M * j.g.N * (Cin > 0 ? Cin : 1) < GEMM_SMALL) {
        for (int t = 0; t < n_tasks; t++) convt_task(&j, t, 0);
        return;
    }
    samc_thread_pool_parallel_for(st->pool, n_tasks, convt_task, &j);
}

/* ---------------------------------------------------------------- attention */

/* The blocked path. An item is one (batch, head) and a range of query rows; a task runs
 * `group` consecutive items. Keys and values are packed a chunk at a time (shared by
 * all the item's rows), and each row keeps a running max and sum (online softmax): for
 * every chunk, S = q·kᵀ·scale, m' = max(m, max S), out = out·exp(m-m') + exp(S-m')·v,
 * l = l·exp(m-m') + Σ exp(S-m'); at the end out /= l. With n_kv <= ATT_KVC (every
 * windowed attention of Hiera) there is one chunk: the max-subtracted softmax of the
 * reference, normalised after the product instead of before. */
typedef struct {
    fast_state *st;
    const samc_attention_args *a;
    int q_splits, rows, kvc, group;
    const samc_attention_bias *bias;   /* attention_biased, else NULL */
} att_job;

/* attention_biased: s[j] += brow[j] after the scaling; returns the new max. A row whose
 * keys in this chunk are all masked (-inf) gets zero weights here (exp would give NaN):
 * the online softmax then takes its max from the other chunks. */
static float add_bias_max(const samc_fast_kernels *kn, float *s, int n, const float *brow, int *all_masked) {
    float mx = kn->add_max(s, brow, n);
    *all_masked = mx == -INFINITY;
    if (*all_masked) memset(s, 0, (size_t)n * sizeof *s);
    return mx;
}

/* The bf16 phase on AMX: S = q·kᵀ and out += P·v as bf16 tile products (q, k, v and the
 * probabilities P rounded to bf16, fp32 sums; the softmax stays fp32), for heads up to
 * ATT_AMX_HD wide, the scratch laid out in amx_a: q rows, P rows, k's and v's pair
 * panels. */
#define ATT_AMX_HD 256
typedef struct {
    uint16_t *q, *p, *k, *v;
    int hdp, ldp;
    int q_rows;  /* > 0: all the item's query rows are in q, converted once (r0 at row 0) */
} att_amx_buf;

/* q rows (ATT_QB of them, or every row of the item when they fit the rest of amx_a), P
 * rows, k's and v's pair panels. */
static att_amx_buf att_amx_layout(thread_scratch *ts, int hd, int rows) {
    att_amx_buf b;
    b.hdp = round_up(hd, 32);
    b.ldp = ATT_KVC + 32;
    b.p = ts->amx_a;
    b.k = b.p + (size_t)ATT_QB * b.ldp;
    b.v = b.k + (size_t)ATT_KVC * b.hdp;
    b.q = b.v + (size_t)round_up(hd, SAMC_GEMM_NR) * b.ldp;
    size_t room = (size_t)AMX_MC * AMX_LDA - (size_t)(b.q - ts->amx_a);
    b.q_rows = (size_t)round_up(rows, 16) * b.hdp <= room ? rows : 0;
    return b;
}

/* S rows [i0, i0+qb) of one chunk of L keys: ts->s = q·kᵀ, on AMX. r0: the item's first
 * row (where bb->q starts when it holds them all). */
static void att_scores_amx(const samc_attention_args *a, const float *q, int r0, int i0, int qb, int L,
                           thread_scratch *ts, const att_amx_buf *bb) {
    int hd = a->head_dim;
    const uint16_t *qa = bb->q + (size_t)(i0 - r0) * bb->hdp;
    if (!bb->q_rows) {
        samc_fast_amx_pack_a(q + (ptrdiff_t)i0 * a->q_st, a->q_st, qb, hd, bb->q, bb->hdp);
        qa = bb->q;
    }
    for (int jp = 0; jp < L; jp += 32)
        for (int ir = 0; ir < qb; ir += 32)
            samc_fast_amx_tiles(hd, qa + (size_t)ir * bb->hdp, bb->hdp, bb->k + (size_t)jp * bb->hdp,
                                ts->s + (size_t)ir * ATT_KVC + jp, ATT_KVC, imin(32, qb - ir), imin(32, L - jp), 0,
                                NULL, NULL);
}

/* out rows [i0, i0+qb) (+)= P·v for one chunk of L keys, on AMX; P's bf16 rows are
 * already in bb->p (samc_fast_amx_exp_row), the rows past qb up to a tile are zeroed. */
static void att_values_amx(const samc_attention_args *a, float *out, int i0, int qb, int L, int accumulate,
                           const att_amx_buf *bb) {
    int hd = a->head_dim, lp = round_up(L, 32);
    for (int i = qb; i < round_up(qb, 16); i++) memset(bb->p + (size_t)i * bb->ldp, 0, (size_t)lp * sizeof(uint16_t));
    for (int dp = 0; dp < hd; dp += 32)
        for (int ir = 0; ir < qb; ir += 32)
            samc_fast_amx_tiles(L, bb->p + (size_t)ir * bb->ldp, bb->ldp, bb->v + (size_t)dp * lp,
                                out + (ptrdiff_t)(i0 + ir) * a->o_st + dp, a->o_st, imin(32, qb - ir),
                                imin(32, hd - dp), accumulate, NULL, NULL);
}

/* One row of S for one chunk of L keys: the softmax numerators, in place in s (fp32:
 * P·v reads them there) or, on AMX (prow set), straight into P's bf16 row, where the
 * scores' scaling is also folded into the exponent (2^(s·scale·log2 e - m·log2 e),
 * samc_fast_amx_exp_row) unless a bias comes between. The running max m only moves
 * when a chunk's max passes it by more than ATT_LAZY (the numerators stay below
 * e^ATT_LAZY, far inside fp32 and bf16), so the rescaling of out and l that the online
 * softmax needs after a new max (an exp and a pass over the row's outputs) happens a
 * few times a row instead of in most chunks. The same numbers for any task split: each
 * row's chunks are visited in order by one task. */
#define ATT_LAZY 8.0f
static void att_row(const samc_fast_kernels *kn, const samc_attention_args *a, const float *brow, float *s, int L,
                    int first, float *mi, float *li, uint16_t *prow, float *orow) {
    const float log2e = 1.44269504088896341f;
    int fold = prow && !brow && a->scale > 0.0f;
    float mx;
    if (fold) {
        mx = samc_fast_amx_max_row(s, L) * a->scale;
    } else {
        int masked = 0;
        mx = kn->scale_max(s, L, a->scale);
        if (brow) mx = add_bias_max(kn, s, L, brow, &masked);
        if (masked) {
            if (first) { *mi = -INFINITY; *li = 0.0f; }
            if (prow) memset(prow, 0, (size_t)round_up(L, 32) * sizeof(uint16_t));
            return;
        }
    }
    if (first) {
        *mi = mx;
        *li = 0.0f;
    } else if (mx > *mi + ATT_LAZY) {
        float corr = expf(*mi - mx);
        *li *= corr;
        *mi = mx;
        kn->scale(orow, a->head_dim, corr);
    }
    if (!prow) *li += kn->exp_sum(s, L, *mi);
    else *li += samc_fast_amx_exp_row(s, L, fold ? a->scale * log2e : log2e, *mi * log2e, prow);
}

static void att_rows(const samc_fast_kernels *kn, const samc_attention_args *a, int b, int h,
                     int r0, int r1, int kvc, thread_scratch *ts, const samc_attention_bias *bias, int amx) {
    int hd = a->head_dim, n_kv = a->n_kv;
    const float *q = a->q + b * a->q_sb + h * a->q_sh;
    const float *kb = a->k + b * a->k_sb + h * a->k_sh;
    const float *vb = a->v + b * a->v_sb + h * a->v_sh;
    float *out = a->out + b * a->o_sb + h * a->o_sh;
    if (n_kv <= 0) {
        for (int i = r0; i < r1; i++) memset(out + i * a->o_st, 0, (size_t)hd * sizeof(float));
        return;
    }
    att_amx_buf bb = { 0 };
    if (amx) {
        bb = att_amx_layout(ts, hd, r1 - r0);
        if (bb.q_rows) samc_fast_amx_pack_a(q + (ptrdiff_t)r0 * a->q_st, a->q_st, r1 - r0, hd, bb.q, bb.hdp);
        samc_fast_amx_begin();
    }
    for (int j0 = 0; j0 < n_kv; j0 += kvc) {
        int L = imin(kvc, n_kv - j0), first = j0 == 0;
        /* kᵀ as [L/16][hd][16] panels, v as [hd/16][L][16]. (Read in place, v's rows
         * 4.6 KB apart in Hiera's packed qkv map to a few L1 sets and thrash them.) */
        kn->pack_cols(kb + j0 * a->k_st, a->k_st, hd, L, ts->kp);
        kn->pack_rows(vb + j0 * a->v_st, a->v_st, L, hd, ts->vp);
        if (amx) { /* the panels again in bf16 pairs */
            for (int jp = 0; jp < L; jp += SAMC_GEMM_NR)
                samc_fast_amx_pack_b(ts->kp + (size_t)jp * hd, hd, bb.k + (size_t)jp * bb.hdp);
            for (int dp = 0; dp < hd; dp += SAMC_GEMM_NR)
                samc_fast_amx_pack_b(ts->vp + (size_t)dp * L, L, bb.v + (size_t)dp * round_up(L, 32));
        }
        for (int i0 = r0; i0 < r1; i0 += ATT_QB) {
            int qb = imin(ATT_QB, r1 - i0);
            if (amx) att_scores_amx(a, q, r0, i0, qb, L, ts, &bb);
            else for (int jp = 0; jp < L; jp += kn->nr) {
                int nr = imin(kn->nr, L - jp);
                const float *kp = ts->kp + (size_t)(jp / SAMC_GEMM_NR) * hd * SAMC_GEMM_NR;
                for (int ir = 0; ir < qb; ir += kn->mr)
                    kn->gemm_ukernel(hd, q + (i0 + ir) * a->q_st, a->q_st, kp, SAMC_GEMM_NR,
                                     ts->s + (size_t)ir * ATT_KVC + jp, ATT_KVC,
                                     imin(kn->mr, qb - ir), nr, 0, NULL, NULL);
            }
            for (int i = 0; i < qb; i++)
                att_row(kn, a, bias ? bias->bias + b * bias->sb + h * bias->sh + (i0 + i) * bias->sq + j0 : NULL,
                        ts->s + (size_t)i * ATT_KVC, L, first, ts->m + (i0 + i - r0), ts->l + (i0 + i - r0),
                        amx ? bb.p + (size_t)i * bb.ldp : NULL, out + (i0 + i) * a->o_st);
            if (amx) att_values_amx(a, out, i0, qb, L, !first, &bb);
            else for (int dp = 0; dp < hd; dp += kn->nr) {
                int nr = imin(kn->nr, hd - dp);
                const float *vp = ts->vp + (size_t)(dp / SAMC_GEMM_NR) * L * SAMC_GEMM_NR;
                for (int ir = 0; ir < qb; ir += kn->mr)
                    kn->gemm_ukernel(L, ts->s + (size_t)ir * ATT_KVC, ATT_KVC, vp, SAMC_GEMM_NR,
                                     out + (i0 + ir) * a->o_st + dp, a->o_st,
                                     imin(kn->mr, qb - ir), nr, !first, NULL, NULL);
            }
        }
    }
    if (amx) samc_fast_amx_end();
    for (int i = r0; i < r1; i++) kn->scale(out + i * a->o_st, hd, 1.0f / ts->l[i - r0]);
}

/* Heads too wide for the packed chunks (head_dim > ATT_BUF/16; nothing in SAM2.1):
 * per query row, one pass for the max and one for the weights, recomputing the dots. */
static void att_rows_wide(const samc_attention_args *a, int b, int h, int r0, int r1) {
    int hd = a->head_dim;
    for (int i = r0; i < r1; i++) {
        const float *q = a->q + b * a->q_sb + h * a->q_sh + i * a->q_st;
        float *out = a->out + b * a->o_sb + h * a->o_sh + i * a->o_st;
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < a->n_kv; j++) {
            const float *k = a->k + b * a->k_sb + h * a->k_sh + j * a->k_st;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += q[d] * k[d];
            if (dot * a->scale > mx) mx = dot * a->scale;
        }
        for (int d = 0; d < hd; d++) out[d] = 0.0f;
        for (int j = 0; j < a->n_kv; j++) {
            const float *k = a->k + b * a->k_sb + h * a->k_sh + j * a->k_st;
            const float *v = a->v + b * a->v_sb + h * a->v_sh + j * a->v_st;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += q[d] * k[d];
            float p = expf(dot * a->scale - mx);
            sum += p;
            for (int d = 0; d < hd; d++) out[d] += p * v[d];
        }
        float inv = a->n_kv > 0 ? 1.0f / sum : 0.0f;
        for (int d = 0; d < hd; d++) out[d] *= inv;
    }
}

/* Pulls one item's query rows and its head's keys and values towards L2 (hint T1),
 * issued one item ahead: Hiera's thousands of small windows otherwise wait on memory
 * at every window. Only where it pays: at least ~1000 flops per prefetched line (8x8
 * windows have 1365, 4x4 ones 341), and the item's data fits L2. */
static void att_prefetch(const samc_attention_args *a, int b, int h, int r0, int r1) {
    size_t row_bytes = (size_t)a->head_dim * sizeof(float);
    double rows = r1 - r0 + 2.0 * a->n_kv;
    if (rows * row_bytes > (256u << 10) || 64.0 * (r1 - r0) * a->n_kv < 1000.0 * rows) return;
    for (int i = r0; i < r1; i++) {
        const char *p = (const char *)(a->q + b * a->q_sb + h * a->q_sh + i * a->q_st);
        for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off, 0, 2);
    }
    for (int j = 0; j < a->n_kv; j++) {
        const char *pk = (const char *)(a->k + b * a->k_sb + h * a->k_sh + j * a->k_st);
        const char *pv = (const char *)(a->v + b * a->v_sb + h * a->v_sh + j * a->v_st);
        for (size_t off = 0; off < row_bytes; off += 64) {
            __builtin_prefetch(pk + off, 0, 2);
            __builtin_prefetch(pv + off, 0, 2);
        }
    }
}

/* A task runs `group` consecutive items; item = (batch, head, block of query rows). */
static void att_task(void *ctx, int task, int thread) {
    const att_job *j = ctx;
    const samc_attention_args *a = j->a;
    int n_items = a->batch * a->heads * j->q_splits;
    int i0 = task * j->group, i1 = imin(i0 + j->group, n_items);
    for (int it = i0; it < i1; it++) {
        int bh = it / j->q_splits, qs = it % j->q_splits;
        int b = bh / a->heads, h = bh % a->heads;
        int r0 = qs * j->rows, r1 = imin(r0 + j->rows, a->n_q);
        if (it + 1 < i1) {
            int nbh = (it + 1) / j->q_splits, nqs = (it + 1) % j->q_splits;
            att_prefetch(a, nbh / a->heads, nbh % a->heads, nqs * j->rows, imin((nqs + 1) * j->rows, a->n_q));
        }
        if (j->kvc > 0)
            att_rows(j->st->k, a, b, h, r0, r1, j->kvc, &j->st->ts[thread], j->bias,
                     j->st->amx_on && a->head_dim <= ATT_AMX_HD);
        else att_rows_wide(a, b, h, r0, r1);
    }
}

/* Few keys (the decoder's image->token attention: 4096 queries, 7..10 keys): the
 * kernel table's att_small_kv, all heads of a block of query rows in turn so that the
 * rows' cache lines (every head's slice of a token) are used while in L1. A task is a
 * range of rows of one batch entry. */
#define ATT_SMALL_ROWS 32
static int use_small_kv(const samc_fast_kernels *kn, const samc_attention_args *a) {
    return kn->att_small_kv && a->n_kv > 0 && a->n_kv <= 16 && a->head_dim <= 64;
}

static void att_small_task(void *ctx, int task, int thread) {
    const att_job *j = ctx;
    const samc_attention_args *a = j->a;
    int b = task / j->q_splits, r0 = (task % j->q_splits) * j->rows, r1 = imin(r0 + j->rows, a->n_q);
    for (int i0 = r0; i0 < r1; i0 += ATT_SMALL_ROWS) {
        int n = imin(ATT_SMALL_ROWS, r1 - i0);
        for (int h = 0; h < a->heads; h++)
            j->st->k->att_small_kv(a->q + b * a->q_sb + h * a->q_sh + i0 * a->q_st, a->q_st,
                                   a->k + b * a->k_sb + h * a->k_sh, a->k_st,
                                   a->v + b * a->v_sb + h * a->v_sh, a->v_st,
                                   a->out + b * a->o_sb + h * a->o_sh + i0 * a->o_st, a->o_st,
                                   n, a->n_kv, a->head_dim, a->scale);
    }
}

/* The blocked path for plain (bias NULL) and biased attention. */
static void attention_blocked(fast_state *st, const samc_attention_args *a, const samc_attention_bias *bias);

static void attention_fast(const samc_ops *o, const samc_attention_args *a) {
    fast_state *st = state_of(o);
    if (a->batch <= 0 || a->heads <= 0 || a->n_q <= 0 || a->head_dim <= 0) return;
    /* Windows read in place: the model asks only backends with attention_windows = 1
     * (not this one), so the reference is enough to keep the op correct here. */
    if (samc_att_windowed(a)) {
        samc_ops_cpu_ref()->attention(o, a);
        return;
    }
    if (use_small_kv(st->k, a)) {
        double work = (double)a->batch * a->heads * a->n_q * a->n_kv * a->head_dim;
        int T = st->n_threads == 1 || work < GEMM_SMALL ? 1 : 4 * st->n_threads;
        att_job j = { .st = st, .a = a, .q_splits = 1 };
        if (a->batch < T) j.q_splits = imin(ceil_div(T, a->batch), ceil_div(a->n_q, ATT_SMALL_ROWS));
        j.rows = round_up(ceil_div(a->n_q, j.q_splits), ATT_SMALL_ROWS);
        j.q_splits = ceil_div(a->n_q, j.rows);
        samc_thread_pool_parallel_for(st->pool, a->batch * j.q_splits, att_small_task, &j);
        return;
    }
    attention_blocked(st, a, NULL);
}

/* Biased attention (SAM3: masks and the decoder's box bias) always takes the blocked
 * path; heads too wide for it (none in SAM3) fall back to the reference. */
static void attention_biased_fast(const samc_ops *o, const samc_attention_args *a, const samc_attention_bias *bias) {
    fast_state *st = state_of(o);
    if (a->batch <= 0 || a->heads <= 0 || a->n_q <= 0 || a->head_dim <= 0) return;
    if (ATT_BUF / round_up(a->head_dim, SAMC_GEMM_NR) < SAMC_GEMM_NR || samc_att_windowed(a)) {
        samc_ops_cpu_ref()->attention_biased(o, a, bias);
        return;
    }
    attention_blocked(st, a, bias);
}

static void attention_blocked(fast_state *st, const samc_attention_args *a, const samc_attention_bias *bias) {
    int hdp = round_up(a->head_dim, SAMC_GEMM_NR);
    int kvc = imin(ATT_KVC, ATT_BUF / hdp / SAMC_GEMM_NR * SAMC_GEMM_NR);
    att_job j = { st, a, 1, a->n_q, kvc >= SAMC_GEMM_NR ? kvc : 0, 1, bias };
    int units = a->batch * a->heads;
    double work = (double)units * a->n_q * (a->n_kv > 0 ? a->n_kv : 1) * a->head_dim;
    int T = st->n_threads == 1 || work < GEMM_SMALL ? 1 : 4 * st->n_threads;
    if (units < T) j.q_splits = imin(ceil_div(T, units), ceil_div(a->n_q, ATT_QB));
    j.rows = round_up(ceil_div(a->n_q, j.q_splits), st->k->mr);
    if (j.rows > ATT_RMAX) j.rows = ATT_RMAX;
    j.q_splits = ceil_div(a->n_q, j.rows);
    int n_items = units * j.q_splits;
    j.group = ceil_div(n_items, T);
    samc_thread_pool_parallel_for(st->pool, ceil_div(n_items, j.group), att_task, &j);
}

/* ---------------------------------------------------------------- elementwise, norms */

typedef struct {
    fast_state *st;
    const float *x, *w, *b;
    float *y;
    int rows, dim, per_task;
    float eps;
    size_t n;
} rows_job;

static void layer_norm_task(void *ctx, int task, int thread) {
    const rows_job *j = ctx;
    int r0 = task * j->per_task, r1 = imin(r0 + j->per_task, j->rows);
    j->st->k->layer_norm_rows(j->x + (size_t)r0 * j->dim, j->w, j->b, j->y + (size_t)r0 * j->dim,
                              r1 - r0, j->dim, j->eps);
}

/* Tasks of about `grain` elements each, at most 8 per thread. */
static int split(fast_state *st, double elems, double grain) {
    if (st->n_threads == 1) return 1;
    double t = elems / grain;
    int cap = 8 * st->n_threads;
    return t < 1.0 ? 1 : t > cap ? cap : (int)t;
}

static void layer_norm_fast(const samc_ops *o, const float *x, const float *w, const float *b,
                            float *y, int rows, int dim, float eps) {
    fast_state *st = state_of(o);
    if (rows <= 0 || dim <= 0) return;
    int tasks = imin(split(st, (double)rows * dim, 32768.0), rows);
    rows_job j = { .st = st, .x = x, .w = w, .b = b, .y = y, .rows = rows, .dim = dim,
                   .per_task = ceil_div(rows, tasks), .eps = eps };
    samc_thread_pool_parallel_for(st->pool, ceil_div(rows, j.per_task), layer_norm_task, &j);
}

static void layer_norm2d_task(void *ctx, int task, int thread) {
    const rows_job *j = ctx;
    int p0 = task * j->per_task, p1 = imin(p0 + j->per_task, j->rows);
    j->st->k->layer_norm2d_span(j->x, j->w, j->b, j->y, j->dim, j->rows, p0, p1, j->eps);
}

static void layer_norm2d_fast(const samc_ops *o, const float *x, const float *w, const float *b,
                              float *y, int C, int HW, float eps) {
    fast_state *st = state_of(o);
    if (C <= 0 || HW <= 0) return;
    int tasks = imin(split(st, (double)C * HW, 32768.0), ceil_div(HW, 16));
    rows_job j = { .st = st, .x = x, .w = w, .b = b, .y = y, .rows = HW, .dim = C,
                   .per_task = round_up(ceil_div(HW, tasks), 16), .eps = eps };
    samc_thread_pool_parallel_for(st->pool, ceil_div(HW, j.per_task), layer_norm2d_task, &j);
}

static void gelu_task(void *ctx, int task, int thread) {
    const rows_job *j = ctx;
    size_t i0 = (size_t)task * (size_t)j->per_task;
    size_t i1 = i0 + (size_t)j->per_task < j->n ? i0 + (size_t)j->per_task : j->n;
    if (j->st->amx_on) samc_fast_amx_gelu(j->y + i0, i1 - i0);   /* the bf16 phase's, as linear_act's */
    else j->st->k->gelu(j->y + i0, i1 - i0);
}

static void gelu_fast(const samc_ops *o, float *x, size_t n) {
    fast_state *st = state_of(o);
    if (n == 0) return;
    int tasks = split(st, (double)n, 16384.0);
    size_t per = (n + (size_t)tasks - 1) / (size_t)tasks;
    per = (per + 15) / 16 * 16;
    if (per > (size_t)INT32_MAX) per = (size_t)INT32_MAX / 16 * 16;
    rows_job j = { .st = st, .y = x, .per_task = (int)per, .n = n };
    size_t n_tasks = (n + per - 1) / per;
    samc_thread_pool_parallel_for(st->pool, (int)n_tasks, gelu_task, &j);
}

/* ---------------------------------------------------------------- data movement */

/* The layout and elementwise ops are memory-bound: they are threaded over ranges of
 * rows and do per element exactly the arithmetic of the cpu_ref twin (so outputs are
 * bit-identical to cpu_ref). A range function gets [u0, u1) of `n` units. */
typedef void (*range_fn)(const void *args, size_t u0, size_t u1);
typedef struct { range_fn fn; const void *args; size_t n, per; } range_job;

static void range_task(void *ctx, int task, int thread) {
    const range_job *j = ctx;
    size_t u0 = (size_t)task * j->per, u1 = u0 + j->per < j->n ? u0 + j->per : j->n;
    j->fn(j->args, u0, u1);
}

/* n units of unit_elems floats each, in tasks of at least ~64K floats. */
static void par_range(fast_state *st, size_t n, size_t unit_elems, range_fn fn, const void *args) {
    if (n == 0) return;
    int tasks = split(st, (double)n * (double)(unit_elems ? unit_elems : 1), 65536.0);
    if ((size_t)tasks > n) tasks = (int)n;
    range_job j = { fn, args, n, (n + (size_t)tasks - 1) / (size_t)tasks };
    samc_thread_pool_parallel_for(st->pool, (int)((n + j.per - 1) / j.per), range_task, &j);
}

typedef struct {
    float *dst; const float *a, *b;
    size_t nb;
    int C, HW, H, W, wh, ww, nwx, nwy, h, w, ls, n, R;
    ptrdiff_t stride;
    const samc_fast_kernels *kn;
} mv_args;

static void copy_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    memcpy(m->dst + u0, m->a + u0, (u1 - u0) * sizeof(float));
}
static void copy_fast(const samc_ops *o, float *dst, const float *src, size_t n) {
    mv_args m = { .dst = dst, .a = src };
    par_range(state_of(o), n, 1, copy_range, &m);
}

/* b repeats every nb elements: one kernel call per stretch of a and b both contiguous */
static void add_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t i = u0; i < u1;) {
        size_t j = i % m->nb, len = m->nb - j < u1 - i ? m->nb - j : u1 - i;
        m->kn->add(m->dst + i, m->a + i, m->b + j, len);
        i += len;
    }
}
static void add_fast(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    mv_args m = { .dst = dst, .a = a, .b = b, .nb = nb, .kn = state_of(o)->k };
    par_range(state_of(o), n, 1, add_range, &m);
}

/* units: elements of [C, HW] */
static void add_channel_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t i = u0; i < u1;) {
        size_t c = i / (size_t)m->HW, end = (c + 1) * (size_t)m->HW < u1 ? (c + 1) * (size_t)m->HW : u1;
        float v = m->b[c];
        if (m->a)
            for (; i < end; i++) m->dst[i] = m->a[i] + v;
        else
            for (; i < end; i++) m->dst[i] = 0.0f + v;
    }
}
static void add_channel_fast(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    if (C <= 0 || HW <= 0) return;
    mv_args m = { .dst = dst, .a = a, .b = v, .HW = HW };
    par_range(state_of(o), (size_t)C * HW, 1, add_channel_range, &m);
}

static void relu_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    m->kn->relu(m->dst + u0, u1 - u0);
}
static void relu_fast(const samc_ops *o, float *x, size_t n) {
    mv_args m = { .dst = x, .kn = state_of(o)->k };
    par_range(state_of(o), n, 1, relu_range, &m);
}

static void sigmoid_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t i = u0; i < u1; i++) m->dst[i] = 1.0f / (1.0f + expf(-m->dst[i]));
}
static void sigmoid_fast(const samc_ops *o, float *x, size_t n) {
    mv_args m = { .dst = x };
    /* expf per element: a heavier unit than a copy */
    par_range(state_of(o), n, 8, sigmoid_range, &m);
}

/* units: (batch, block of 16 destination rows) */
static void transpose_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    size_t blocks = (size_t)ceil_div(m->C, 16);
    for (size_t u = u0; u < u1; u++) {
        size_t b = u / blocks;
        int c0 = (int)(u % blocks) * 16, nc = imin(16, m->C - c0);
        m->kn->transpose(m->a + b * m->R * m->C + c0, m->C, m->R, nc, m->dst + (b * m->C + c0) * m->R, m->R);
    }
}
static void transpose_fast(const samc_ops *o, const float *src, float *dst, int batch, int R, int C) {
    if (batch <= 0 || R <= 0 || C <= 0) return;
    fast_state *st = state_of(o);
    mv_args m = { .dst = dst, .a = src, .R = R, .C = C, .kn = st->k };
    par_range(st, (size_t)batch * ceil_div(C, 16), (size_t)16 * R, transpose_range, &m);
}

/* units: windows */
static void window_partition_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t wi = u0; wi < u1; wi++) {
        int wy = (int)wi / m->nwx, wx = (int)wi % m->nwx;
        for (int ty = 0; ty < m->wh; ty++)
            for (int tx = 0; tx < m->ww; tx++) {
                int y = wy * m->wh + ty, xx = wx * m->ww + tx;
                float *dst = m->dst + (wi * m->wh * m->ww + (size_t)ty * m->ww + tx) * m->C;
                if (y < m->H && xx < m->W) memcpy(dst, m->a + ((size_t)y * m->W + xx) * m->C, (size_t)m->C * sizeof(float));
                else memset(dst, 0, (size_t)m->C * sizeof(float));
            }
    }
}
static void window_partition_fast(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww) {
    if (H <= 0 || W <= 0 || C <= 0 || wh <= 0 || ww <= 0) return;
    mv_args m = { .dst = win, .a = x, .H = H, .W = W, .C = C, .wh = wh, .ww = ww,
                  .nwx = ceil_div(W, ww), .nwy = ceil_div(H, wh) };
    par_range(state_of(o), (size_t)m.nwy * m.nwx, (size_t)wh * ww * C, window_partition_range, &m);
}

/* units: output rows y */
static void window_unpartition_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t yy = u0; yy < u1; yy++) {
        int y = (int)yy;
        for (int x = 0; x < m->W; x++) {
            size_t w = (size_t)(y / m->wh) * m->nwx + x / m->ww, t = (size_t)(y % m->wh) * m->ww + x % m->ww;
            const float *src = m->a + (w * m->wh * m->ww + t) * m->C;
            const float *sc = m->b + ((size_t)y * m->W + x) * m->C;
            float *dst = m->dst + ((size_t)y * m->W + x) * m->C;
            for (int c = 0; c < m->C; c++) dst[c] = sc[c] + src[c];
        }
    }
}
static void window_unpartition_add_fast(const samc_ops *o, const float *win, const float *shortcut, float *out,
                                        int H, int W, int C, int wh, int ww, int nwx) {
    if (H <= 0 || W <= 0 || C <= 0) return;
    mv_args m = { .dst = out, .a = win, .b = shortcut, .H = H, .W = W, .C = C, .wh = wh, .ww = ww, .nwx = nwx };
    par_range(state_of(o), (size_t)H, (size_t)W * C, window_unpartition_range, &m);
}

/* units: (image, output row) */
static void maxpool_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    int Ho = m->H / 2, Wo = m->W / 2;
    for (size_t u = u0; u < u1; u++) {
        ptrdiff_t i = (ptrdiff_t)(u / Ho);
        int oy = (int)(u % Ho);
        for (int ox = 0; ox < Wo; ox++) {
            float *y = m->dst + (u * Wo + ox) * m->C;
            const float *r0 = m->a + ((i * m->H + 2 * oy) * m->W + 2 * ox) * m->stride;
            const float *r1 = r0 + (ptrdiff_t)m->W * m->stride;
            for (int c = 0; c < m->C; c++) {
                float v = -INFINITY, q;
                q = r0[c]; if (q > v) v = q;
                q = r0[m->stride + c]; if (q > v) v = q;
                q = r1[c]; if (q > v) v = q;
                q = r1[m->stride + c]; if (q > v) v = q;
                y[c] = v;
            }
        }
    }
}
static void maxpool2x2_fast(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                            ptrdiff_t pixel_stride) {
    if (n <= 0 || H < 2 || W < 2 || C <= 0) return;
    mv_args m = { .dst = y, .a = x, .n = n, .H = H, .W = W, .C = C, .stride = pixel_stride };
    par_range(state_of(o), (size_t)n * (H / 2), (size_t)2 * W * C, maxpool_range, &m);
}

/* units: (channel, output row) */
static void upsample_nearest_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    for (size_t u = u0; u < u1; u++) {
        size_t c = u / (2 * (size_t)m->h);
        int y = (int)(u % (2 * (size_t)m->h));
        float *d = m->dst + u * 2 * m->w;
        const float *s = m->a + (c * m->h + y / 2) * m->w;
        for (int x = 0; x < 2 * m->w; x++) d[x] += s[x / 2];
    }
}
static void upsample_nearest2x_add_fast(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    if (C <= 0 || h <= 0 || w <= 0) return;
    mv_args m = { .dst = dst, .a = src, .C = C, .h = h, .w = w };
    par_range(state_of(o), (size_t)C * 2 * h, (size_t)2 * w, upsample_nearest_range, &m);
}

/* units: (map, output row); the reference's formula, term for term: each output is
 * ly0·(lx0·a + lx1·b) + ly1·(lx0·c + lx1·d), so the two bracketed horizontal
 * interpolations of source rows y0 and y1 are computed once per source row and chunk of
 * columns and kept while the next output rows use them (an upscale to the image's size
 * maps 6 or more output rows to one pair), and the column terms are a table per chunk;
 * the same operations on the same values: the reference's bits. */
#define UPB_CHUNK 512
static void upsample_bilinear_range(const void *p, size_t u0, size_t u1) {
    const mv_args *m = p;
    int ls = m->ls, w = m->w, h = m->h;
    float sy = (float)ls / (float)h, sx = (float)ls / (float)w;
    int tx0[UPB_CHUNK], tx1[UPB_CHUNK];
    float tl0[UPB_CHUNK], tl1[UPB_CHUNK], hbuf[2][UPB_CHUNK];
    for (int xc = 0; xc < w; xc += UPB_CHUNK) {
        int nx = imin(UPB_CHUNK, w - xc);
        for (int j = 0; j < nx; j++) {
            float rx = sx * ((float)(xc + j) + 0.5f) - 0.5f;
            if (rx < 0.0f) rx = 0.0f;
            tx0[j] = (int)rx;
            tx1[j] = tx0[j] + (tx0[j] < ls - 1);
            tl1[j] = rx - (float)tx0[j];
            tl0[j] = 1.0f - tl1[j];
        }
        float *h0 = hbuf[0], *h1 = hbuf[1];
        int c0 = -1, c1 = -1;   /* source rows in h0, h1 (-1: none) */
        size_t cmap = (size_t)-1;
        for (size_t u = u0; u < u1; u++) {
            size_t i = u / (size_t)h;
            int y = (int)(u % (size_t)h);
            const float *in = m->a + i * ls * ls;
            float ry = sy * ((float)y + 0.5f) - 0.5f;
            if (ry < 0.0f) ry = 0.0f;
            int y0 = (int)ry, y1 = y0 + (y0 < ls - 1);
            float ly1 = ry - (float)y0, ly0 = 1.0f - ly1;
            if (i != cmap) { c0 = c1 = -1; cmap = i; }
            if (y0 != c0 && y0 == c1) {
                float *t = h0; h0 = h1; h1 = t;
                c1 = c0; c0 = y0;
            }
            if (y0 != c0) {
                const float *r = in + (size_t)y0 * ls;
                for (int j = 0; j < nx; j++) h0[j] = tl0[j] * r[tx0[j]] + tl1[j] * r[tx1[j]];
                c0 = y0;
            }
            if (y1 != c1) {
                const float *r = in + (size_t)y1 * ls;
                for (int j = 0; j < nx; j++) h1[j] = tl0[j] * r[tx0[j]] + tl1[j] * r[tx1[j]];
                c1 = y1;
            }
            float *res = m->dst + i * w * h + (size_t)y * w + xc;
            for (int j = 0; j < nx; j++) res[j] = ly0 * h0[j] + ly1 * h1[j];
        }
    }
}
static void upsample_bilinear_fast(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    if (n <= 0 || w <= 0 || h <= 0) return;
    mv_args m = { .dst = out, .a = low, .n = n, .ls = ls, .w = w, .h = h };
    par_range(state_of(o), (size_t)n * h, (size_t)4 * w, upsample_bilinear_range, &m);
}

/* ---------------------------------------------------------------- SAM3 */

/* The rotary embedding is the kernel table's per-head function (the reference's
 * operations: bit-identical to cpu_ref), threaded over rows; GroupNorm the table's group
 * statistics (double sums in vector lanes: within rounding of the reference's) and
 * per-channel affine (the reference's bits), threaded over groups and channels. */
typedef struct {
    float *x; const float *c, *s, *w, *b; const float *in;
    ptrdiff_t ld;
    int heads, hd, period, cg, HW;
    double *mean, *inv;
    float eps;
    const samc_fast_kernels *kn;
} sam3_args;

/* units: rows (the reference's row loop with the table's head kernel) */
static void rope_range(const void *p, size_t u0, size_t u1) {
    const sam3_args *m = p;
    samc_ref_rope_rows(m->x, (int)u0, (int)u1, m->ld, m->heads, m->hd, m->c, m->s, m->period, m->kn->rope_head);
}
static void rope_fast(const samc_ops *o, float *x, int rows, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                      const float *sin_t, int period) {
    if (rows <= 0 || heads <= 0 || hd < 2 || period <= 0) return;
    sam3_args m = { .x = x, .c = cos_t, .s = sin_t, .ld = ld, .heads = heads, .hd = hd, .period = period,
                    .kn = state_of(o)->k };
    par_range(state_of(o), (size_t)rows, (size_t)4 * heads * hd, rope_range, &m);
}

/* units: groups */
static void group_stats_range(const void *p, size_t u0, size_t u1) {
    const sam3_args *m = p;
    size_t n = (size_t)m->cg * m->HW;
    for (size_t g = u0; g < u1; g++) m->kn->group_stats(m->in + g * n, n, m->eps, &m->mean[g], &m->inv[g]);
}
/* units: channels */
static void group_apply_range(const void *p, size_t u0, size_t u1) {
    const sam3_args *m = p;
    for (size_t c = u0; c < u1; c++) {
        size_t g = c / (size_t)m->cg;
        m->kn->group_apply(m->in + c * m->HW, m->x + c * m->HW, m->HW, m->mean[g], m->inv[g], m->w[c], m->b[c]);
    }
}
#define GN_MAX_GROUPS 64
static void group_norm_fast(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C,
                            int HW, int groups, float eps) {
    if (groups > GN_MAX_GROUPS) {
        samc_ops_cpu_ref()->group_norm(o, x, w, b, y, C, HW, groups, eps);
        return;
    }
    if (C <= 0 || HW <= 0 || groups <= 0) return;
    double mean[GN_MAX_GROUPS], inv[GN_MAX_GROUPS];
    sam3_args m = { .x = y, .in = x, .w = w, .b = b, .cg = C / groups, .HW = HW, .mean = mean, .inv = inv,
                    .eps = eps, .kn = state_of(o)->k };
    par_range(state_of(o), (size_t)groups, (size_t)2 * m.cg * HW, group_stats_range, &m);
    par_range(state_of(o), (size_t)C, (size_t)HW, group_apply_range, &m);
}

/* The decoder's box relative-position bias (ops.h): units (head, row of r0 + Q), each
 * query's bx values for the head gathered once into a row (they are nh apart), then one
 * add per output, as the reference: the same bits, threaded (201 x 5184 x 8 values a
 * layer in SAM3). */
#define RPB_MAX_W 4096
typedef struct {
    const float *by, *bx;
    float *y;
    int Q, H, W, nh, r0;
} rpb_args;
static void box_rpb_range(const void *p, size_t u0, size_t u1) {
    const rpb_args *m = p;
    size_t HW = (size_t)m->H * m->W;
    float bxh[RPB_MAX_W];
    for (size_t u = u0; u < u1; u++) {
        int h = (int)(u / (size_t)(m->r0 + m->Q)), row = (int)(u % (size_t)(m->r0 + m->Q)), q = row - m->r0;
        float *yr = m->y + u * HW;
        if (q < 0) {
            memset(yr, 0, HW * sizeof(float));
            continue;
        }
        for (int xx = 0; xx < m->W; xx++) bxh[xx] = m->bx[((size_t)q * m->W + xx) * m->nh + h];
        for (int yy = 0; yy < m->H; yy++) {
            float v = m->by[((size_t)q * m->H + yy) * m->nh + h];
            float *d = yr + (size_t)yy * m->W;
            for (int xx = 0; xx < m->W; xx++) d[xx] = v + bxh[xx];
        }
    }
}
static void box_rpb_bias_fast(const samc_ops *o, const float *by, const float *bx, float *y, int Q, int H, int W,
                              int nh, int r0) {
    if (W > RPB_MAX_W) {
        samc_ops_cpu_ref()->box_rpb_bias(o, by, bx, y, Q, H, W, nh, r0);
        return;
    }
    if (nh <= 0 || r0 + Q <= 0 || H <= 0 || W <= 0) return;
    rpb_args m = { by, bx, y, Q, H, W, nh, r0 };
    par_range(state_of(o), (size_t)nh * (r0 + Q), (size_t)H * W, box_rpb_range, &m);
}

/* ---------------------------------------------------------------- portable kernels */

static void ukernel_scalar(int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb,
                           float *c, ptrdiff_t ldc, int mr, int nr, int accumulate,
                           const float *bias_n, const float *bias_m) {
    float acc[SAMC_GEMM_MR][SAMC_GEMM_NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < SAMC_GEMM_NR; j++) acc[i][j] = 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *b = bp + k * ldb;
        for (int i = 0; i < mr; i++) {
            float av = a[i * lda + k];
            for (int j = 0; j < SAMC_GEMM_NR; j++) acc[i][j] += av * b[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = acc[i][j];
            if (accumulate) v += c[i * ldc + j];
            if (bias_n) v += bias_n[j];
            if (bias_m) v += bias_m[i];
            c[i * ldc + j] = v;
        }
}

static float scale_max_scalar(float *s, int n, float scale) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        s[i] *= scale;
        if (s[i] > mx) mx = s[i];
    }
    return mx;
}

static float exp_sum_scalar(float *s, int n, float m) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        s[i] = expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

static void relu_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void add_scalar(float *dst, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

static float add_max_scalar(float *s, const float *b, int n) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        s[j] += b[j];
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

static void scale_scalar(float *x, int n, float f) {
    for (int i = 0; i < n; i++) x[i] *= f;
}

static void gelu_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}


/* Pixels 16 at a time so that each channel row is read in whole cache lines. */
static void layer_norm2d_span_scalar(const float *x, const float *w, const float *b, float *y,
                                     int C, int HW, int p0, int p1, float eps) {
    enum { P = 16 };
    for (int p = p0; p < p1; p += P) {
        int np = imin(P, p1 - p);
        float mean[P] = { 0 }, var[P] = { 0 }, inv[P];
        for (int c = 0; c < C; c++)
            for (int i = 0; i < np; i++) mean[i] += x[(size_t)c * HW + p + i];
        for (int i = 0; i < np; i++) mean[i] /= (float)C;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < np; i++) { float d = x[(size_t)c * HW + p + i] - mean[i]; var[i] += d * d; }
        for (int i = 0; i < np; i++) inv[i] = 1.0f / sqrtf(var[i] / (float)C + eps);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < np; i++)
                y[(size_t)c * HW + p + i] = (x[(size_t)c * HW + p + i] - mean[i]) * inv[i] * w[c] + b[c];
    }
}

static const samc_fast_kernels samc_fast_kernels_scalar = {
    .isa = "scalar",
    .mr = SAMC_GEMM_MR,
    .nr = SAMC_GEMM_NR,
    .gemm_ukernel = ukernel_scalar,
    .pack_rows = pack_rows_scalar,
    .pack_cols = pack_cols_scalar,
    .transpose = transpose_scalar,
    .scale_max = scale_max_scalar,
    .exp_sum = exp_sum_scalar,
    .scale = scale_scalar,
    .gelu = gelu_scalar,
    .layer_norm_rows = samc_ref_layer_norm_rows,
    .layer_norm2d_span = layer_norm2d_span_scalar,
    .relu = relu_scalar,
    .add = add_scalar,
    .add_max = add_max_scalar,
    .group_stats = samc_ref_group_stats,
    .group_apply = samc_ref_group_apply,
    .rope_head = samc_ref_rope_head,
};

/* ---------------------------------------------------------------- instance */

/* The tables this CPU can run. __builtin_cpu_supports reports AVX2 and AVX-512 only when
 * the OS also saves their registers (libgcc checks XCR0 through xgetbv). */
static int cpu_has_avx2(void) {
#ifdef SAMC_FAST_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int cpu_has_avx512(void) {
#ifdef SAMC_FAST_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* The named table when this CPU can run it, else NULL. */
static const samc_fast_kernels *table_named(const char *isa) {
    if (!isa) return NULL;
    if (strcmp(isa, "scalar") == 0) return &samc_fast_kernels_scalar;
#ifdef SAMC_FAST_HAVE_AVX2_BUILD
    if ((strcmp(isa, "avx2") == 0 || strcmp(isa, samc_fast_kernels_avx2.isa) == 0) && cpu_has_avx2())
        return &samc_fast_kernels_avx2;
    if (strcmp(isa, samc_fast_kernels_avx512.isa) == 0 && cpu_has_avx512()) return &samc_fast_kernels_avx512;
#endif
    return NULL;
}

/* The best table this CPU runs (avx512, avx2+fma, scalar), unless SAMC_CPU_ISA names
 * another one it can run (for benchmarks: SAMC_CPU_ISA=avx2 on an AVX-512 machine). */
static const samc_fast_kernels *pick_kernels(void) {
    const char *env = getenv("SAMC_CPU_ISA");
    if (env && *env) {
        const samc_fast_kernels *k = table_named(env);
        if (k) return k;
        static int warned;
        if (!warned) {
            warned = 1;
            fprintf(stderr, "samc: SAMC_CPU_ISA=%s ignored (not a kernel table this CPU runs: avx512, avx2, scalar)\n",
                    env);
        }
    }
    if (cpu_has_avx512()) return &samc_fast_kernels_avx512;
    if (cpu_has_avx2()) return &samc_fast_kernels_avx2;
    return &samc_fast_kernels_scalar;
}

const char *samc_ops_cpu_fast_isa(void) { return pick_kernels()->isa; }

int samc_ops_cpu_fast_bf16(char *why, size_t n) {
    char r[400];
    /* SAMC_CPU_ISA=avx2 / scalar stands for a CPU that has no more than that: no AMX */
    if (pick_kernels() != table_named("avx512")) {
        snprintf(why, n, "bf16 on the CPU needs Intel AMX: the kernels in use are %s (SAMC_CPU_ISA)",
                 pick_kernels()->isa);
        return 0;
    }
    if (samc_fast_amx_usable(r, sizeof r)) return 1;
    snprintf(why, n, "bf16 on the CPU needs Intel AMX: %s", r);
    return 0;
}

static void *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

void samc_ops_cpu_fast_destroy(samc_ops *o) {
    if (!o) return;
    fast_state *st = state_of(o);
    samc_thread_pool_destroy(st->pool);
    if (st->ts)
        for (int i = 0; i < st->n_threads; i++) {
            free(st->ts[i].bp);
            free(st->ts[i].ap);
            free(st->ts[i].ct);
            free(st->ts[i].amx_a);
            free(st->ts[i].amx_f);
        }
    free(st->ts);
    free(st->amx_b);
    free(st);
}

/* ---------------------------------------------------------------- --precision bf16 */

/* bf16 needs AMX (cpu_fast_amx.c); the weights stay where they are (the packers round
 * them, as they round the activations), so `weights` is not used and nothing is copied.
 * Activations stay fp32 in memory: only the GEMM operands are rounded. fp16 has no
 * matrix unit here (AMX-FP16 is Granite Rapids'), so it is refused. */
static int set_precision_fast(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights,
                              char *err) {
    fast_state *st = state_of(o);
    st->amx_ready = st->amx_on = 0;
    if (p == SAMC_OPS_FP32) return 0;
    if (p != SAMC_OPS_BF16) {
        snprintf(err, 512, "fp16 is a CUDA precision: on the CPU use bf16 (Intel AMX) or fp32");
        return -1;
    }
    if (!samc_ops_cpu_fast_bf16(err, 512)) return -1;
    for (int i = 0; i < st->n_threads; i++) {
        thread_scratch *ts = &st->ts[i];
        if (!ts->amx_a) ts->amx_a = aligned_alloc(64, (size_t)AMX_MC * AMX_LDA * sizeof(uint16_t));
        if (!ts->amx_f) ts->amx_f = alloc_floats((size_t)AMX_MC * AMX_KC);
        if (!ts->amx_a || !ts->amx_f) {
            snprintf(err, 512, "cannot allocate the bf16 scratch (%zu KB per thread)",
                     ((size_t)AMX_MC * AMX_LDA * 2 + (size_t)AMX_MC * AMX_KC * 4) >> 10);
            return -1;
        }
    }
    if (!st->amx_b) {
        st->amx_b_cap = AMX_SHARED_B;
        st->amx_b = aligned_alloc(64, st->amx_b_cap * sizeof(uint16_t));
        if (!st->amx_b) {
            snprintf(err, 512, "cannot allocate the bf16 scratch (%zu MB shared)", (st->amx_b_cap * 2) >> 20);
            return -1;
        }
    }
    st->amx_ready = st->amx_on = 1;
    return 0;
}

/* The model's phases: its 16-bit ones (1) run the GEMMs on AMX, the others (0, -1) in
 * fp32, bit for bit as without --precision. */
static void activation_precision_fast(const samc_ops *o, int reduced) {
    fast_state *st = state_of(o);
    st->amx_on = st->amx_ready && reduced == 1;
}

static samc_ops *create_with(int n_threads, const samc_fast_kernels *kn) {
    fast_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->k = kn;
    st->ops = (samc_ops){
        .name = "cpu_fast", .ctx = st,
        .linear = linear_fast, .linear_act = linear_act_fast, .matmul = matmul_fast, .attention = attention_fast,
        .layer_norm = layer_norm_fast, .layer_norm2d = layer_norm2d_fast, .gelu = gelu_fast,
        .conv2d = conv2d_fast, .conv_transpose2x2 = conv_transpose2x2_fast,
        .copy = copy_fast, .add = add_fast, .add_channel = add_channel_fast, .relu = relu_fast,
        .sigmoid = sigmoid_fast, .transpose = transpose_fast, .window_partition = window_partition_fast,
        .window_unpartition_add = window_unpartition_add_fast, .maxpool2x2 = maxpool2x2_fast,
        .upsample_nearest2x_add = upsample_nearest2x_add_fast, .upsample_bilinear = upsample_bilinear_fast,
        .attention_biased = attention_biased_fast, .rope = rope_fast, .group_norm = group_norm_fast,
        .box_rpb_bias = box_rpb_bias_fast,
        .weights16 = 1, .set_precision = set_precision_fast, .activation_precision = activation_precision_fast,
    };
    /* host memory; alloc/free/upload/download/sync stay NULL (malloc/free/memcpy) */
    samc_ops_fill_from_ref(&st->ops);
    st->pool = samc_thread_pool_create(n_threads);
    if (!st->pool) { free(st); return NULL; }
    st->n_threads = samc_thread_pool_size(st->pool);
    st->ts = calloc((size_t)st->n_threads, sizeof *st->ts);
    if (!st->ts) { samc_ops_cpu_fast_destroy(&st->ops); return NULL; }
    /* The attention pieces must fit in bp. */
    _Static_assert(2 * ATT_BUF + ATT_QB * ATT_KVC + 2 * ATT_RMAX <= GEMM_BP &&
                   GEMM_KC * GEMM_NC <= GEMM_BP,
                   "attention scratch does not fit the GEMM panel buffer");
    for (int i = 0; i < st->n_threads; i++) {
        thread_scratch *ts = &st->ts[i];
        ts->bp = alloc_floats((size_t)GEMM_BP);
        ts->ap = alloc_floats((size_t)GEMM_MC * GEMM_AP_LD);
        ts->ct = alloc_floats((size_t)CT_M * CT_N);
        if (!ts->bp || !ts->ap || !ts->ct) { samc_ops_cpu_fast_destroy(&st->ops); return NULL; }
        ts->kp = ts->bp;
        ts->vp = ts->kp + ATT_BUF;
        ts->s = ts->vp + ATT_BUF;
        ts->m = ts->s + ATT_QB * ATT_KVC;
        ts->l = ts->m + ATT_RMAX;
    }
    return &st->ops;
}

samc_ops *samc_ops_cpu_fast_create(int n_threads) { return create_with(n_threads, pick_kernels()); }

samc_ops *samc_ops_cpu_fast_create_isa(int n_threads, const char *isa) {
    const samc_fast_kernels *k = isa ? table_named(isa) : &samc_fast_kernels_scalar;
    return k ? create_with(n_threads, k) : NULL;
}
