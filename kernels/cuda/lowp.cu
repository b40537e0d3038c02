/* kernels/cuda/lowp.cu: the reduced precisions (bf16 / fp16) as a storage format.
 *
 * kernels/ops.h stays float*-typed and the model does not change its buffers, so the
 * backend changes what a pointer means. Every block its alloc returns is recorded (a
 * table sorted by address), and once set_precision(bf16 | fp16) has been called, each
 * block also records which element ranges hold fp32 and which hold 16-bit values (the
 * ranges each op wrote, in stream order: the host issues every op, so its map is the
 * device's state at the op being issued). Element i of a block at base lives at
 * base + 4 i as fp32 and at base + 2 i as a 16-bit value: a 16-bit tensor takes the first
 * half of its fp32 footprint, reads and writes half the bytes, and a GEMM or attention
 * reads it with no conversion pass.
 *
 * Which type an op (and an upload) writes is the activation precision of the moment
 * (activation_precision: the model keeps its image encoder in 16 bits and the mask
 * decoder in fp32), except that an op writing in place keeps the type it read. So in
 * each phase every block holds one type, apart from what an earlier phase left (dead
 * scratch, or the encoder's features, which live in blocks of their own). Inputs may be
 * of either type, each operand uniformly. A write of one type destroys the bytes of
 * overlapping ranges of the other type (a 16-bit write of elements [s, e) covers the
 * fp32 elements [s/2, e/2)): those are marked, and reading them later is an error naming
 * the op, so a model that mixes precisions inside a buffer fails loudly (and the
 * simulator's tests show it). A write that would cover an input the same op reads (its
 * kernel would race with itself) is refused when the op asks for it.
 * Arithmetic everywhere is fp32: values are widened on load, rounded once on store; the
 * statistics of LayerNorm and softmax never leave fp32. Weights that only a linear reads
 * live in 16 bits only behind stand-ins (weights16_region: a never-mapped host range, so
 * any other read fails by name); the others stay fp32 in their block (norm parameters,
 * biases, convolution and token weights are read from there) next to a 16-bit copy made
 * once (the operand of 1x1 convolutions as matmul). */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the block table --------------------------------------------------------------- */

/* Index of the block containing address a, or -1. Binary search: the table is sorted by
 * base and blocks do not overlap. */
static int block_of(const samc_cuda_ctx *c, uintptr_t a) {
    int lo = 0, hi = c->n_blocks - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->blocks[mid].base <= a) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (found >= 0 && a - c->blocks[found].base < c->blocks[found].bytes) return found;
    return -1;
}

int cuda_blocks_add(samc_cuda_ctx *c, void *p, size_t bytes) {
    if (c->n_blocks == c->cap_blocks) {
        int cap = c->cap_blocks ? 2 * c->cap_blocks : 64;
        cuda_block *nb = (cuda_block *)realloc(c->blocks, sizeof *nb * (size_t)cap);
        if (!nb) return -1;
        c->blocks = nb;
        c->cap_blocks = cap;
    }
    uintptr_t a = (uintptr_t)p;
    int i = c->n_blocks;
    while (i > 0 && c->blocks[i - 1].base > a) {
        c->blocks[i] = c->blocks[i - 1];
        i--;
    }
    c->blocks[i] = cuda_block{ a, bytes, NULL, 0, 0 };
    c->n_blocks++;
    return 0;
}

void cuda_blocks_remove(samc_cuda_ctx *c, void *p) {
    int i = block_of(c, (uintptr_t)p);
    if (i < 0 || c->blocks[i].base != (uintptr_t)p) return;
    free(c->blocks[i].r);
    memmove(c->blocks + i, c->blocks + i + 1, sizeof *c->blocks * (size_t)(c->n_blocks - i - 1));
    c->n_blocks--;
}

int cuda_is_weight(const samc_cuda_ctx *c, const void *p) {
    uintptr_t base = (uintptr_t)c->w_base, q = (uintptr_t)p;
    return c->w_base && q >= base && q < base + c->w_n * sizeof(float);
}

int cuda_is_standin(const samc_cuda_ctx *c, const void *p) {
    uintptr_t base = (uintptr_t)c->s_base, q = (uintptr_t)p;
    return c->s_base && q >= base && q < base + c->s_n * sizeof(float);
}

/* The 16-bit values behind stand-ins [p, p + n), or NULL (error recorded naming op) when
 * the range runs past the region or starts off a float boundary. */
static const void *standin_values(samc_cuda_ctx *c, const float *p, size_t n, const char *op) {
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)c->s_base);
    if (off % sizeof(float) || n > c->s_n - off / sizeof(float)) {
        char detail[200];
        snprintf(detail, sizeof detail, "%zu elements at %p run past the 16-bit weights or start off a float "
                 "boundary", n, (const void *)p);
        cuda_fail(c, __FILE__, __LINE__, op, detail);
        return NULL;
    }
    return (const char *)c->s_lowp + off / 2;
}

/* ---- the ranges of a block --------------------------------------------------------- */

/* Records that elements [s, e) of b now hold type t (a write). Every range it touches is
 * cut: its elements in [s, e) are replaced; those of the other type whose bytes the new
 * values cover become CUDA_BAD (a 16-bit write of [s, e) fills bytes [2s, 2e), the fp32
 * elements [s/2, e/2); an fp32 write fills bytes [4s, 4e), the 16-bit elements [2s, 2e)).
 * The list is rebuilt in `tmp` (grow-only, the backend's), sorted and merged. -1 when
 * host memory runs out. */
static int ranges_set(samc_cuda_ctx *c, cuda_block *b, size_t s, size_t e, int t) {
    c->map_gen++;
    size_t need = (size_t)b->nr * 5 + 2;
    if (need > c->rtmp_cap) {
        cuda_range *n = (cuda_range *)realloc(c->rtmp, sizeof *n * need);
        if (!n) return -1;
        c->rtmp = n;
        c->rtmp_cap = need;
    }
    cuda_range *o = c->rtmp;
    int n = 0;
    for (int i = 0; i < b->nr; i++) {
        const cuda_range r = b->r[i];
        size_t bs = 0, be = 0; /* its elements destroyed outside [s, e) */
        if (r.type == CUDA_LP && t == CUDA_F32) bs = 2 * s > e ? 2 * s : e, be = 2 * e;
        if (r.type == CUDA_F32 && t == CUDA_LP) bs = s / 2, be = (e + 1) / 2 < s ? (e + 1) / 2 : s;
        size_t cut[6] = { r.s, r.e, s, e, bs, be };
        for (int x = 1; x < 6; x++) /* sort the cut points */
            for (int y = x; y > 0 && cut[y - 1] > cut[y]; y--) {
                size_t tt = cut[y]; cut[y] = cut[y - 1]; cut[y - 1] = tt;
            }
        for (int k = 0; k + 1 < 6; k++) {
            size_t ps = cut[k] > r.s ? cut[k] : r.s, pe = cut[k + 1] < r.e ? cut[k + 1] : r.e;
            if (ps >= pe || (ps >= s && pe <= e)) continue; /* empty, or replaced */
            o[n++] = cuda_range{ ps, pe, ps >= bs && pe <= be ? CUDA_BAD : r.type };
        }
    }
    if (t == CUDA_LP) { /* never-written elements read as fp32: those it covers are lost too */
        size_t gs = s / 2, ge = (e + 1) / 2 < s ? (e + 1) / 2 : s;
        for (int i = 0; i <= b->nr && gs < ge; i++) {
            size_t next = i < b->nr ? b->r[i].s : ge, hi = next < ge ? next : ge;
            if (gs < hi) o[n++] = cuda_range{ gs, hi, CUDA_BAD };
            if (i < b->nr && b->r[i].e > gs) gs = b->r[i].e;
        }
    }
    o[n++] = cuda_range{ s, e, t };
    for (int x = 1; x < n; x++) /* few ranges: insertion sort by start */
        for (int y = x; y > 0 && o[y - 1].s > o[y].s; y--) {
            cuda_range tt = o[y]; o[y] = o[y - 1]; o[y - 1] = tt;
        }
    int m = 0;
    for (int x = 0; x < n; x++) {
        if (m > 0 && o[m - 1].type == o[x].type && o[m - 1].e == o[x].s) o[m - 1].e = o[x].e;
        else o[m++] = o[x];
    }
    if (m > b->cap) {
        cuda_range *nr = (cuda_range *)realloc(b->r, sizeof *nr * (size_t)m * 2);
        if (!nr) return -1;
        b->r = nr;
        b->cap = m * 2;
    }
    memcpy(b->r, o, sizeof *o * (size_t)m);
    b->nr = m;
    return 0;
}

/* The type elements [s, e) of b hold: CUDA_F32, CUDA_LP, or -1 when they mix types or
 * include destroyed elements. Elements never written read as fp32 (uploads before
 * set_precision, fresh memory). */
static int ranges_get(const cuda_block *b, size_t s, size_t e) {
    int t = -2;
    for (int i = 0; i < b->nr; i++) {
        const cuda_range *r = &b->r[i];
        if (r->e <= s || r->s >= e) continue;
        if (r->type == CUDA_BAD || (t != -2 && t != r->type)) return -1;
        t = r->type;
    }
    return t == -2 ? CUDA_F32 : t;
}

/* ---- views ------------------------------------------------------------------------- */

static void view_fail(samc_cuda_ctx *c, const void *p, size_t n, const char *op, const char *why) {
    char detail[300];
    snprintf(detail, sizeof detail, "%zu elements at %p %s", n, p, why);
    cuda_fail(c, __FILE__, __LINE__, op, detail);
}

/* The block of activation range [p, p + n) and its first element, or -1 (error recorded). */
static int act_block(samc_cuda_ctx *c, const float *p, size_t n, const char *op, size_t *e0) {
    int i = block_of(c, (uintptr_t)p);
    if (i < 0) {
        view_fail(c, p, n, op, "are in no block of this CUDA backend");
        return -1;
    }
    uintptr_t off = (uintptr_t)p - c->blocks[i].base;
    if (off % sizeof(float) || n > (c->blocks[i].bytes - off) / sizeof(float)) {
        view_fail(c, p, n, op, "run past their block or start off a float boundary");
        return -1;
    }
    *e0 = off / sizeof(float);
    return i;
}

static cuda_arg arg_at(const samc_cuda_ctx *c, int bi, size_t e0, int t) {
    uintptr_t base = c->blocks[bi].base;
    return cuda_arg{ (void *)(base + (t == CUDA_LP ? 2 : 4) * e0), t != CUDA_LP };
}

/* While a graph is captured, each read and write of the map is also a step of its log
 * (replayed at each launch: lowp_graph_launch). -1 (error recorded) when host memory
 * runs out. */
static int log_step(samc_cuda_ctx *c, const void *p, size_t n, int type, int write, const char *op) {
    if (!c->capturing) return 0;
    cuda_map_log *L = &c->map_log[c->capturing - 1];
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 256;
        cuda_map_step *ns = (cuda_map_step *)realloc(L->s, sizeof *ns * (size_t)cap);
        if (!ns) return cuda_fail(c, __FILE__, __LINE__, op, "out of host memory for the graph's precision map");
        L->s = ns;
        L->cap = cap;
    }
    L->s[L->n++] = cuda_map_step{ p, n, type, write, op };
    return 0;
}

cuda_arg cuda_rd(samc_cuda_ctx *c, const float *p, size_t n, const char *op) {
    if (!c->tracking || !p || cuda_is_weight(c, p)) return cuda_arg{ (void *)p, 1 };
    if (cuda_is_standin(c, p)) {
        /* a weight the binding pass saw only as a linear's (rt_weights_upload) read by
         * another op: the model uses it outside a linear, which must show */
        view_fail(c, p, n, op, "are a weight kept in 16 bits only (bound as a linear weight): only linear reads it");
        return cuda_arg{ NULL, 1 };
    }
    size_t e0;
    int bi = act_block(c, p, n, op, &e0);
    if (bi < 0) return cuda_arg{ NULL, 1 };
    int t = ranges_get(&c->blocks[bi], e0, e0 + n);
    if (t < 0) {
        /* the message names the ranges the read overlaps (element ranges of the block,
         * type 0 fp32, 1 16-bit, 2 destroyed): where the model mixed precisions */
        const cuda_block *b = &c->blocks[bi];
        char why[200];
        int w = snprintf(why, sizeof why, "mix fp32 and 16-bit values, or were overwritten by values of the other "
                         "type (elements [%zu, %zu) of their block:", e0, e0 + n);
        for (int k = 0; k < b->nr && w > 0 && (size_t)w < sizeof why - 1; k++)
            if (b->r[k].e > e0 && b->r[k].s < e0 + n)
                w += snprintf(why + w, sizeof why - (size_t)w, " [%zu,%zu)%d", b->r[k].s, b->r[k].e, b->r[k].type);
        if (w > 0 && (size_t)w < sizeof why - 1) snprintf(why + w, sizeof why - (size_t)w, ")");
        view_fail(c, p, n, op, why);
        return cuda_arg{ NULL, 1 };
    }
    if (log_step(c, p, n, t, 0, op)) return cuda_arg{ NULL, 1 };
    /* what this op reads, for write_as's check */
    if (c->n_op_reads == CUDA_OP_READS) {
        memmove(c->op_reads, c->op_reads + 1, sizeof c->op_reads[0] * (CUDA_OP_READS - 1));
        c->n_op_reads--;
    }
    c->op_reads[c->n_op_reads].block = bi, c->op_reads[c->n_op_reads].s = e0;
    c->op_reads[c->n_op_reads].e = e0 + n, c->op_reads[c->n_op_reads].type = t;
    c->n_op_reads++;
    return arg_at(c, bi, e0, t);
}

const void *cuda_rd16(samc_cuda_ctx *c, const float *p, size_t n, const char *op) {
    if (!c->tracking || !p) return NULL;
    if (cuda_is_weight(c, p))
        return c->w_lowp ? (const char *)c->w_lowp + ((uintptr_t)p - (uintptr_t)c->w_base) / 2 : NULL;
    if (cuda_is_standin(c, p)) return standin_values(c, p, n, op);
    cuda_arg a = cuda_rd(c, p, n, op);
    return a.p && !a.f32 ? a.p : NULL;
}

static cuda_arg write_as(samc_cuda_ctx *c, float *p, size_t n, int t, const char *op) {
    if (!c->tracking || !p) return cuda_arg{ p, 1 };
    if (cuda_is_weight(c, p) || cuda_is_standin(c, p)) {
        view_fail(c, p, n, op, "are an output inside the weight block");
        return cuda_arg{ NULL, 1 };
    }
    size_t e0;
    int bi = act_block(c, p, n, op, &e0);
    if (bi < 0) return cuda_arg{ NULL, 1 };
    /* A write of one type covers the bytes of other elements of the other type (ranges_set;
     * its own elements too when it changes their type in place): if the same op reads
     * those in that type, its kernel overwrites its input while reading it, a race no later
     * check could see. Refused, naming the op. */
    size_t ds, de; /* the other type's elements whose bytes the write covers */
    if (t == CUDA_LP) ds = e0 / 2, de = (e0 + n + 1) / 2;
    else ds = 2 * e0, de = 2 * (e0 + n);
    for (int k = 0; k < c->n_op_reads && ds < de; k++) {
        const int other = t == CUDA_LP ? CUDA_F32 : CUDA_LP;
        if (c->op_reads[k].block != bi || c->op_reads[k].type != other || c->op_reads[k].e <= ds ||
            c->op_reads[k].s >= de)
            continue;
        char why[200];
        snprintf(why, sizeof why, "would overwrite, as %s values, the %s input elements [%zu, %zu) of their block "
                 "that the same op reads", t == CUDA_LP ? "16-bit" : "fp32", t == CUDA_LP ? "fp32" : "16-bit",
                 c->op_reads[k].s, c->op_reads[k].e);
        view_fail(c, p, n, op, why);
        return cuda_arg{ NULL, 1 };
    }
    if (ranges_set(c, &c->blocks[bi], e0, e0 + n, t)) {
        cuda_fail(c, __FILE__, __LINE__, op, "out of host memory for the precision map");
        return cuda_arg{ NULL, 1 };
    }
    if (log_step(c, p, n, t, 1, op)) return cuda_arg{ NULL, 1 };
    return arg_at(c, bi, e0, t);
}

cuda_arg cuda_wr(samc_cuda_ctx *c, float *p, size_t n, const char *op) {
    return write_as(c, p, n, c->phase, op);
}

cuda_arg cuda_wr_like(samc_cuda_ctx *c, float *p, size_t n, cuda_arg in, const char *op) {
    return write_as(c, p, n, in.f32 ? CUDA_F32 : CUDA_LP, op);
}

cuda_arg cuda_wr_f32(samc_cuda_ctx *c, float *p, size_t n, const char *op) {
    return write_as(c, p, n, CUDA_F32, op);
}

const float *cuda_rd_f32(samc_cuda_ctx *c, const float *p, size_t n, const char *op) {
    cuda_arg a = cuda_rd(c, p, n, op);
    if (!a.p || a.f32) return (const float *)a.p;
    view_fail(c, p, n, op, "hold 16-bit values; this op reads fp32 only (the mask decoder's outputs are fp32 "
              "unless SAMC_CUDA_VARIANT_DECODER=lowp)");
    return NULL;
}

/* ---- conversion kernels ------------------------------------------------------------ */

template <typename T> __global__ void narrow_kernel(T *dst, const float *src, size_t n) {
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) lp_put(dst + i, src[i]);
}

template <typename T> __global__ void widen_kernel(float *dst, const T *src, size_t n) {
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) dst[i] = lp_f(src[i]);
}

void cuda_narrow(samc_cuda_ctx *c, void *dst, const float *src, size_t n) {
    if (!n) return;
    unsigned blocks = cuda_blocks_for(c, n, 256);
    if (c->lp_type == SAMC_OPS_BF16) narrow_kernel<<<blocks, 256, 0, c->stream>>>((__nv_bfloat16 *)dst, src, n);
    else narrow_kernel<<<blocks, 256, 0, c->stream>>>((__half *)dst, src, n);
}

void cuda_widen(samc_cuda_ctx *c, float *dst, const void *src, size_t n) {
    if (!n) return;
    unsigned blocks = cuda_blocks_for(c, n, 256);
    if (c->lp_type == SAMC_OPS_BF16) widen_kernel<<<blocks, 256, 0, c->stream>>>(dst, (const __nv_bfloat16 *)src, n);
    else widen_kernel<<<blocks, 256, 0, c->stream>>>(dst, (const __half *)src, n);
}

/* ---- upload / download ------------------------------------------------------------- */

/* An upload writes the type of the phase, like an op (activation_precision; the model's
 * input data goes up in an exactly-fp32 phase, so pixels and taps are never converted):
 * the host's fp32 values as they are, or rounded to 16 bits through the scratch. A 16-bit write of elements [s, e)
 * covers the fp32 elements [s/2, e/2): the map marks them. A weight's 16-bit copy follows
 * its fp32 values. Every step is in stream order (the next chunk's copy into the scratch
 * waits for this chunk's narrowing), so only a plain upload from pageable memory waits at
 * the end; an asynchronous one never does, which a graph's capture needs (a
 * synchronisation there fails the capture). */
/* n host fp32 values as 16-bit values at dst (device), through the scratch a chunk at a
 * time; each chunk's copy into the scratch waits for the last one's narrowing in stream
 * order. Nothing waits for the stream. 0, or -1 (error recorded). */
static int stage_narrow(samc_cuda_ctx *c, void *dst, const float *host_src, size_t n) {
    size_t cap = c->scratch_bytes / sizeof(float);
    for (size_t s = 0; s < n; s += cap) {
        size_t m = n - s < cap ? n - s : cap;
        if (CUDA_CHECK(c, cudaMemcpyAsync(c->scratch, host_src + s, m * sizeof(float), cudaMemcpyHostToDevice,
                                          c->stream)))
            return -1;
        cuda_narrow(c, (char *)dst + 2 * s, (const float *)c->scratch, m);
    }
    return 0;
}

int lowp_upload(samc_cuda_ctx *c, void *dst, const void *host_src, size_t bytes, int async) {
    if (!c->tracking) return 0;
    size_t n = bytes / sizeof(float);
    if (cuda_is_weight(c, dst)) {
        if (CUDA_CHECK(c, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream))) return 1;
        size_t off = ((uintptr_t)dst - (uintptr_t)c->w_base) / sizeof(float);
        if (c->w_lowp) cuda_narrow(c, (char *)c->w_lowp + 2 * off, (const float *)dst, n);
        if (!CUDA_OP_DONE(c, "upload") && !async) CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
        return 1;
    }
    cuda_arg d = write_as(c, (float *)dst, n, c->phase, "upload");
    if (!d.p || d.f32) return !d.p; /* fp32: the plain copy */
    if (stage_narrow(c, d.p, (const float *)host_src, n)) return 1;
    if (!CUDA_OP_DONE(c, "upload") && !async) CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
    return 1;
}

/* 16-bit values are widened through the scratch, a chunk at a time; the next chunk's
 * widening waits for this chunk's copy in stream order. */
int lowp_download(samc_cuda_ctx *c, void *host_dst, const void *src, size_t bytes, int async) {
    if (!c->tracking) return 0;
    size_t n = bytes / sizeof(float);
    cuda_arg a = cuda_rd(c, (const float *)src, n, "download");
    c->n_op_reads = 0; /* a download is no op: its read never meets an op's write */
    if (!a.p) return 1;
    if (a.f32) return 0;
    size_t cap = c->scratch_bytes / sizeof(float);
    for (size_t s = 0; s < n; s += cap) {
        size_t m = n - s < cap ? n - s : cap;
        cuda_widen(c, (float *)c->scratch, (const char *)a.p + 2 * s, m);
        if (CUDA_CHECK(c, cudaMemcpyAsync((float *)host_dst + s, c->scratch, m * sizeof(float),
                                          cudaMemcpyDeviceToHost, c->stream)))
            return 1;
    }
    if (!CUDA_OP_DONE(c, "download") && !async) CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
    return 1;
}

/* ---- graphs ------------------------------------------------------------------------ */

/* A graph's kernels were captured with each tensor's type fixed (a 16-bit view or an fp32
 * one); launching it changes no host state, so the map would keep what other work left
 * there. Hence the log of the capture's reads and writes, replayed at each launch: the
 * writes put the map where the captured run left it, and a read whose range now holds
 * another type than when captured is an error (the graph would misread it). The
 * activation precision comes back as the capture left it too. */
void lowp_graph_begin(samc_cuda_ctx *c, int slot) {
    c->map_log[slot].n = 0;
    c->map_log[slot].gen = c->map_gen - 1;
    c->map_log[slot].phase = -1;
}

void lowp_graph_end(samc_cuda_ctx *c, int slot) {
    c->map_log[slot].gen = c->map_gen;
    c->map_log[slot].phase = c->tracking ? c->phase : -1;
}

void lowp_graph_drop(samc_cuda_ctx *c, int slot) {
    c->map_log[slot].n = 0;
    c->map_log[slot].gen = c->map_gen - 1;
    c->map_log[slot].phase = -1;
}

int lowp_graph_launch(samc_cuda_ctx *c, int slot) {
    cuda_map_log *L = &c->map_log[slot];
    /* nothing written since this graph's capture or last launch: the map is what the
     * graph leaves (the model launches right after capturing) */
    int stale = L->gen != c->map_gen;
    for (int i = 0; stale && c->tracking && i < L->n; i++) {
        const cuda_map_step *st = &L->s[i];
        size_t e0;
        int bi = act_block(c, (const float *)st->p, st->n, st->op, &e0);
        if (bi < 0) return -1;
        if (st->write) {
            if (ranges_set(c, &c->blocks[bi], e0, e0 + st->n, st->type))
                return cuda_fail(c, __FILE__, __LINE__, st->op, "out of host memory for the precision map");
            continue;
        }
        int t = ranges_get(&c->blocks[bi], e0, e0 + st->n);
        if (t != st->type) {
            char why[200];
            snprintf(why, sizeof why, "were read as %s when graph %d was captured, and hold %s now: the graph "
                     "would misread them", st->type == CUDA_LP ? "16-bit" : "fp32", slot,
                     t == CUDA_LP ? "16-bit values" : t == CUDA_F32 ? "fp32 values" : "mixed or destroyed values");
            view_fail(c, st->p, st->n, st->op, why);
            return -1;
        }
    }
    L->gen = c->map_gen;
    if (c->tracking && L->phase >= 0) {
        c->phase = L->phase;
    }
    return 0;
}

/* ---- set_precision / activation_precision ------------------------------------------ */

void activation_precision_cuda(const samc_ops *o, int reduced) {
    samc_cuda_ctx *c = cuda_ctx(o);
    /* SAMC_CUDA_VARIANT_DECODER=lowp keeps 16-bit activations where the model asks for fp32 */
    int lp = reduced > 0 || (reduced == 0 && c->sw.decoder_lowp);
    c->phase = lp && c->precision != SAMC_OPS_FP32 ? CUDA_LP : CUDA_F32;
}

/* The weight copy and the scratch freed; fp32 again. The precision map stays: values
 * written in 16 bits are still read as such. */
static void release_precision(samc_cuda_ctx *c) {
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->w_lowp) cudaFree(c->w_lowp);
    if (c->s_lowp) cudaFree(c->s_lowp);
    c->w_lowp = c->s_lowp = NULL;
    c->w_base = c->s_base = NULL;
    c->w_n = c->s_n = 0;
    c->precision = SAMC_OPS_FP32;
    c->phase = CUDA_F32;
}

void lowp_release(samc_cuda_ctx *c) {
    release_precision(c);
    if (c->scratch) cudaFree(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
    for (int i = 0; i < c->n_blocks; i++) free(c->blocks[i].r);
    free(c->blocks);
    free(c->rtmp);
    for (int i = 0; i < SAMC_OPS_GRAPHS; i++) {
        free(c->map_log[i].s);
        c->map_log[i] = cuda_map_log{ NULL, 0, 0, -1, 0 };
    }
    c->blocks = NULL;
    c->rtmp = NULL;
    c->n_blocks = c->cap_blocks = 0;
    c->rtmp_cap = 0;
}

int set_precision_cuda(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    char scratch[512];
    if (!err) err = scratch;
    err[0] = '\0';
    if (p != SAMC_OPS_FP32 && p != SAMC_OPS_BF16 && p != SAMC_OPS_FP16) {
        snprintf(err, 512, "unknown precision %d", (int)p);
        return -1;
    }
    /* bf16 needs Ampere (its conversions and tensor cores). fp16 runs from Pascal on
     * (sm_60): before Volta as storage only (cublasGemmEx on fp16 inputs with
     * CUBLAS_COMPUTE_32F runs without tensor cores, attention takes its fp32 FMA kernel,
     * attention_tc.cu's launcher checks sm_70), for a model that needs half the device
     * memory (the GTX 1050 Ti's 4 GB); unproven on such a card (kernels/cuda/NOTES.md,
     * "SAM3 on a 4 GB card"). Checked before anything changes. */
    const char *name = p == SAMC_OPS_BF16 ? "bf16" : "fp16";
    int need = p == SAMC_OPS_BF16 ? 80 : 60;
    if (p != SAMC_OPS_FP32 && c->cc < need) {
        snprintf(err, 512, "%s needs compute capability %d.%d or newer (sm_%d+); CUDA device %d is %.64s (sm_%d)",
                 name, need / 10, need % 10, need, c->device, c->device_name, c->cc);
        return -1;
    }
    /* one 16-bit format per backend: the map does not record which */
    if (p != SAMC_OPS_FP32 && c->tracking && c->lp_type != p) {
        snprintf(err, 512, "this CUDA backend already holds %s activations; %s needs a new backend",
                 c->lp_type == SAMC_OPS_BF16 ? "bf16" : "fp16", name);
        return -1;
    }
    release_precision(c);
    if (p == SAMC_OPS_FP32) return c->failed ? -1 : 0;
    size_t w_bytes = n_weights * 2, s_bytes = SAMC_CUDA_LOWP_SCRATCH_BYTES;
    cudaError_t e = n_weights ? cudaMalloc(&c->w_lowp, w_bytes) : cudaSuccess;
    if (e == cudaSuccess && !c->scratch) e = cudaMalloc(&c->scratch, s_bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(err, 512, "cannot allocate %zu MiB of device memory for the %s weight copy and %zu MiB of %s "
                 "scratch: %s", w_bytes >> 20, name, s_bytes >> 20, name, cudaGetErrorString(e));
        release_precision(c);
        return -1;
    }
    c->scratch_bytes = s_bytes;
    c->w_base = weights;
    c->w_n = n_weights;
    c->lp_type = p;
    c->tracking = 1;
    cuda_narrow(c, c->w_lowp, weights, n_weights);
    if (CUDA_OP_DONE(c, "set_precision") || CUDA_CHECK(c, cudaStreamSynchronize(c->stream))) {
        snprintf(err, 512, "converting the weights to %s: %.400s", name, c->err);
        release_precision(c);
        return -1;
    }
    c->precision = p;
    c->phase = CUDA_LP; /* until the model says otherwise */
    return 0;
}

/* ---- 16-bit-only weights (ops.h: weights16_region / weights16_upload) ---------------- */

int weights16_region_cuda(const samc_ops *o, const float *standin, size_t n, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    char scratch[512];
    if (!err) err = scratch;
    err[0] = '\0';
    if (!c->tracking || c->precision == SAMC_OPS_FP32) {
        snprintf(err, 512, "16-bit weights need set_precision(bf16 | fp16) first");
        return -1;
    }
    if (c->s_base) {
        snprintf(err, 512, "this CUDA backend already holds a region of 16-bit weights");
        return -1;
    }
    /* the stand-ins must not alias device memory the ops address (a block, the fp32
     * weights): samc_w16_reserve's host range cannot, under unified addressing */
    if (!standin || !n || block_of(c, (uintptr_t)standin) >= 0 || block_of(c, (uintptr_t)(standin + n - 1)) >= 0 ||
        cuda_is_weight(c, standin) || cuda_is_weight(c, standin + n - 1)) {
        snprintf(err, 512, "16-bit weights: %zu stand-ins at %p overlap this backend's memory", n, (const void *)standin);
        return -1;
    }
    cudaError_t e = cudaMalloc(&c->s_lowp, n * 2);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        c->s_lowp = NULL;
        snprintf(err, 512, "cannot allocate %zu MiB of device memory for the 16-bit weights: %s", (n * 2) >> 20,
                 cudaGetErrorString(e));
        return -1;
    }
    c->s_base = standin;
    c->s_n = n;
    return 0;
}

/* Through the conversion scratch (stage_narrow), rounded by the kernel set_precision's
 * copy uses; the wait at the end lets the caller reuse host_src. */
void weights16_upload_cuda(const samc_ops *o, const float *dst, const float *host_src, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n || c->failed) return;
    if (c->capturing) {
        cuda_fail(c, __FILE__, __LINE__, "weights16_upload", "waits for the stream while a graph is captured");
        return;
    }
    void *d = !cuda_is_standin(c, dst) ? NULL : (void *)standin_values(c, dst, n, "weights16_upload");
    if (!d) {
        if (!c->failed)
            cuda_fail(c, __FILE__, __LINE__, "weights16_upload", "the destination is not in the 16-bit weights");
        return;
    }
    if (stage_narrow(c, d, host_src, n)) return;
    if (!CUDA_OP_DONE(c, "weights16_upload")) CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}
