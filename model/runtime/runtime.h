/* model/runtime/runtime.h: what every model family needs to run, and nothing of any
 * family: the backend (op table) and its memory, one scratch arena planned at load,
 * errors, traces and debug dumps, and weights bound by state-dict key.
 *
 *   samc_runtime rt;  rt_backend_open(&rt, &opt, &err);       the backend
 *   rt_weights w;     rt_weights_open(&w, path, &err);          the file (mmap / .pt)
 *   rt_binder b = rt_binder_start(&w, &err);                   weights by key, shape-checked
 *   rt_bind_linear(&b, &layer, "sam_mask_decoder.conv_s0", ...);
 *   rt_plan_begin(&rt); ...run the forward passes once...; rt_plan_end(&rt, &err);
 *
 * Planning: the arena is sized by running the model, not by formulas. Between
 * rt_plan_begin and rt_plan_end, rt->ops is the null backend (kernels/ops.h: every op
 * does nothing), RT_ALLOC only counts, and dumps and traces are off; so the forward code
 * has no planning branches: it takes its scratch and calls its ops, and the plan is
 * whatever the real run will take. rt_plan_end allocates the peak once.
 *
 * Uses kernels/ (ops), loader/ (file formats) and the types of model/samc.h. */
#ifndef SAMC_RUNTIME_H
#define SAMC_RUNTIME_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "loader/pt.h"
#include "loader/safetensors.h"
#include "model/samc.h"

/* ---- scratch arena ------------------------------------------------------------------ */

/* A bump allocator over one block of backend memory. In planning mode it only measures:
 * every allocation returns the same dummy pointer, which the null backend never touches. */
typedef struct {
    char *base;
    size_t cap, used, peak;
    int planning;
} rt_arena;

/* A graph slot of the backend (rt_graph_run): which enqueue it holds. */
typedef struct {
    uint64_t key;
    size_t arena_mark;          /* the arena's position when it was captured */
    uint64_t last_use;
    int valid;
} rt_graph_slot;

typedef struct samc_runtime {
    samc_options opt;
    const samc_ops *ops;        /* what the forward code calls: the backend, or the null
                                   backend while planning */
    const samc_ops *backend;    /* the backend itself */
    samc_ops *fast_ops;         /* owned when cpu_fast is used */
    samc_ops *cuda_ops;         /* owned when cuda is used */
    samc_ops *sizing_ops;       /* owned with opt.plan_only (kernels/ops_null.c) */
    rt_arena arena;
    /* time marks on the host clock, for backends without device marks (rt_mark) */
    double mark_host[SAMC_OPS_MARKS];
    uint8_t mark_set[SAMC_OPS_MARKS];
    /* graphs (rt_graph_run) */
    rt_graph_slot graphs[SAMC_OPS_GRAPHS];
    uint64_t graph_tick;
    int graphs_off;             /* the backend said graphs are switched off */
    int graph_captures, graph_launches;
} samc_runtime;

/* n floats of scratch (64-byte aligned), or NULL when the arena is exhausted. */
float *rt_arena_floats(samc_runtime *rt, size_t n);
size_t rt_arena_mark(const samc_runtime *rt);
void rt_arena_reset(samc_runtime *rt, size_t mark);
/* Inside a function returning int with `err` in scope: take n floats or fail. */
#define RT_ALLOC(rt, ptr, n)                                                                            \
    do {                                                                                                \
        (ptr) = rt_arena_floats((rt), (size_t)(n));                                                     \
        if (!(ptr)) return samc_error_set(err, SAMC_ERR_INTERNAL, "scratch arena exhausted at %s:%d", __FILE__, \
                                          __LINE__);                                                    \
    } while (0)

/* Planning (see the top of this file). */
void rt_plan_begin(samc_runtime *rt);
int rt_plan_end(samc_runtime *rt, samc_error *err);

/* ---- backend ------------------------------------------------------------------------ */

/* Chooses and starts the backend of opt->backend (auto: cpu_fast where the CPU has it,
 * else cpu_ref; cuda), after checking opt->precision (reduced precision is CUDA only). */
int rt_backend_open(samc_runtime *rt, const samc_options *opt, samc_error *err);
void rt_backend_close(samc_runtime *rt);
/* CPU threads the backend runs with (1 for cpu_ref and cuda). */
int rt_backend_threads(const samc_runtime *rt);

/* Backend memory (host malloc / memcpy for the CPU backends): 64-byte aligned blocks. */
void *rt_alloc(const samc_ops *o, size_t bytes);
void rt_free(const samc_ops *o, void *p);
void rt_upload(const samc_ops *o, void *dst, const void *host_src, size_t bytes);
void rt_download(const samc_ops *o, void *host_dst, const void *src, size_t bytes);
/* Waits for the backend's queued work: 0, or -1 with "<what> on <backend>: <error>". */
int rt_sync(const samc_runtime *rt, const char *what, samc_error *err);

/* ---- the device pipeline: staging, marks, graphs, memory (pipeline.c) ------------------ */

/* Staging host memory: page-locked on device backends (host_alloc), so that the async
 * copies below overlap; plain malloc elsewhere. NULL when out of memory. */
void *rt_host_alloc(const samc_ops *o, size_t bytes);
void rt_host_free(const samc_ops *o, void *p);
/* Copies that return at once on device backends (host memory from rt_host_alloc, valid
 * for reading after the next rt_sync; unchanged until then for an upload); plain
 * rt_upload / rt_download elsewhere. */
void rt_upload_async(const samc_ops *o, void *dst, const void *host_src, size_t bytes);
void rt_download_async(const samc_ops *o, void *host_dst, const void *src, size_t bytes);

/* Time marks: stage boundaries recorded in stream order on device backends (CUDA events,
 * inside graphs too), on the host clock elsewhere (the CPU backends' ops are synchronous).
 * rt_mark_ms, after the sync that ends the work: ms between two marks, or -1 when either
 * was not recorded. Nothing is recorded while planning. */
enum {
    RT_MARK_ENC_BEGIN, RT_MARK_ENC_UPLOADED, RT_MARK_ENC_INPUT, RT_MARK_ENC_PATCH, RT_MARK_ENC_STAGE0,
    RT_MARK_ENC_STAGE1, RT_MARK_ENC_STAGE2, RT_MARK_ENC_STAGE3, RT_MARK_ENC_NECK, RT_MARK_ENC_END,
    RT_MARK_DEC_BEGIN, RT_MARK_DEC_UPLOADED, RT_MARK_DEC_PROMPT, RT_MARK_DEC_DECODER, RT_MARK_DEC_END,
    RT_MARK_POST_BEGIN, RT_MARK_POST_END,
    /* SAM3 samc_find (the encode uses the RT_MARK_ENC_* ones: stage 0 = the ViT's blocks) */
    RT_MARK_S3_BEGIN, RT_MARK_S3_TEXT, RT_MARK_S3_PROMPT, RT_MARK_S3_FUSION, RT_MARK_S3_DECODER, RT_MARK_S3_SEG,
    RT_MARK_S3_END, RT_MARK_COUNT
};
_Static_assert(RT_MARK_COUNT <= SAMC_OPS_MARKS, "more time marks than the backends' slots");
void rt_mark(samc_runtime *rt, int id);
double rt_mark_ms(const samc_runtime *rt, int from, int to);

/* Runs enqueue(ctx), which only queues ops on rt->ops (no sync, no copy from or to the
 * host, no allocation but the arena's), as the backend's graph for `key`: captured the
 * first time key is seen at this arena position and launched, replayed afterwards (the
 * least recently used graph makes room when every slot is taken). Without graphs
 * (planning, dumps, CPU backends, the GRAPHS switch off) enqueue just runs. 0 or -1. */
int rt_graph_run(samc_runtime *rt, uint64_t key, int (*enqueue)(void *ctx, samc_error *err), void *ctx,
                 samc_error *err);

/* Device memory in use (whole device) now, when the backend started, and in all; 0, or
 * -1 where the backend cannot tell (the CPU backends). */
int rt_mem_info(const samc_runtime *rt, size_t *used_now, size_t *used_at_start, size_t *total);

/* ---- traces and dumps --------------------------------------------------------------- */

double rt_now_ms(void);
/* One trace line through opt.log, with the resident memory appended (off while planning). */
void rt_log(const samc_runtime *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when a dump hook is set and the model is not planning. */
int rt_dumping(const samc_runtime *rt);
/* Named intermediate tensor to opt.dump; shape as ndim int64_t arguments. rt_dump takes
 * backend memory (downloaded into a temporary host copy on device backends: debug path),
 * rt_dump_host host memory. */
void rt_dump(const samc_runtime *rt, const char *name, const float *data, int ndim, ...);
void rt_dump_host(const samc_runtime *rt, const char *name, const float *data, int ndim, ...);

/* ---- weights ------------------------------------------------------------------------ */

/* A weight file's tensors: a mmap'd safetensors file, or an official .pt checkpoint read
 * into memory. f32[i] is a float32 view of tensor i for the tensors a family uses (the
 * mapping itself when it is aligned F32, else one converted copy); after rt_weights_upload
 * the views point into one device block instead.
 *
 * 16-bit files on a backend with weights16 (cpu_fast): a matrix weight (bound with
 * rt_bind_linear / rt_bind_conv / rt_bind_matrix: an operand of linear, matmul, conv2d or
 * conv_transpose2x2 only) stays in 16 bits in the mapping and is bound to a stand-in
 * (w16[i], kernels/ops.h "16-bit weight storage"); only weights bound with rt_bind (read
 * by other ops or on the host) get a float32 copy, made when first bound. A model stored
 * in f16 / bf16 then takes half the memory of fp32, with the same results as the fp32
 * file holding the same (16-bit-rounded) values. */
typedef struct {
    char path[512];
    st_file file;
    pt_checkpoint *pt;
    const st_tensor *tensors;
    int n;
    const float **f32;
    const float **w16;          /* stand-ins of 16-bit matrix weights, or NULL per tensor */
    float *standin;             /* their reserved range (samc_w16_reserve) */
    size_t standin_floats;
    float **copies;             /* float32 copies of 16-bit tensors made when bound with rt_bind */
    float *owned;               /* converted host copies */
    float *device;              /* device copy of the used tensors (device backends) */
    size_t device_floats;
    uint8_t *bound;             /* per tensor: how the binding pass bound it (RT_BOUND_*) */
    float *dev16;               /* bf16 / fp16 on a device: stand-ins of the weights the */
    size_t dev16_floats;        /* backend keeps in 16 bits only (weights16_region) */
    const samc_ops *device_ops; /* whose memory `device` is */
    int64_t n_params;           /* every tensor of the file */
    size_t file_bytes;          /* their stored size */
} rt_weights;

/* How a tensor was bound (rt_weights.bound, flags): as the weight of a linear only
 * (rt_bind_linear, rt_bind_matrix: the attention in-projection), as a convolution weight
 * (rt_bind_conv: conv.cu reads it in fp32), or plainly (rt_bind: any op, or the host). */
enum { RT_BOUND_LINEAR = 1, RT_BOUND_CONV = 2, RT_BOUND_PLAIN = 4 };

int rt_weights_open(rt_weights *w, const char *path, samc_error *err);
void rt_weights_close(rt_weights *w);
/* __metadata__ value of a safetensors file, or NULL. */
const char *rt_weights_meta(const rt_weights *w, const char *key);
/* Names, shapes and ndims of all tensors (pointers into w), for config detection. */
int rt_weights_names(const rt_weights *w, const char ***names, const int64_t ***shapes, int **ndims,
                     samc_error *err);
/* Makes the host views of the tensors `used` accepts: float32, or 16-bit stand-ins where
 * rt's backend has weights16 (see above). */
int rt_weights_host_views(rt_weights *w, const samc_runtime *rt, int (*used)(const char *name), samc_error *err);
/* Device backends: copies the used tensors into one block of backend memory (each in a
 * 64-byte slot) and points the views there; with a reduced precision the backend then
 * makes its 16-bit copy of the block. In bf16 / fp16 on a backend with weights16_region,
 * the tensors the binding pass bound only as linear weights (RT_BOUND_LINEAR) go to the
 * backend's 16-bit-only region instead (views: stand-ins), so they take 2 bytes each,
 * not 4 + 2 (kernels/cuda/NOTES.md, "SAM3 on a 4 GB card"). A no-op on host-memory
 * backends. */
int rt_weights_upload(rt_weights *w, const samc_runtime *rt, int (*used)(const char *name), samc_error *err);

/* Module weights as PyTorch names them. */
typedef struct { const float *w, *b; } rt_linear;   /* nn.Linear / Conv2d: w[out, in, ...], b[out] or NULL */
typedef struct { const float *w, *b; } rt_norm;     /* LayerNorm / LayerNorm2d / GroupNorm: w[C], b[C] */
#define RT_MLP_MAX_LAYERS 4
typedef struct { rt_linear layers[RT_MLP_MAX_LAYERS]; int n_layers; } rt_mlp; /* MLP: ReLU between layers */

/* Binding by state-dict key with a shape check. The first failure sticks (later binds
 * return NULL and do nothing), so a module binds all its weights and checks once. */
typedef struct {
    rt_weights *w;
    samc_error *err;
    int ok;
} rt_binder;

rt_binder rt_binder_start(rt_weights *w, samc_error *err);
/* The float32 view of tensor `key` of exactly ndim dims (-1: any size), or NULL. */
const float *rt_bind(rt_binder *b, const char *key, int ndim, ...);
/* The same for a weight that is only ever the weight operand w of linear (at any offset
 * inside it): a 16-bit stand-in where there is one (host: cpu_fast's weights16; device:
 * rt_weights_upload's 16-bit-only region in bf16 / fp16). */
const float *rt_bind_matrix(rt_binder *b, const char *key, int ndim, ...);
/* <prefix>.weight [out, in] and, when bias, <prefix>.bias [out]. */
void rt_bind_linear(rt_binder *b, rt_linear *l, const char *prefix, int out, int in, int bias);
/* <prefix>.weight [d0, d1, kh, kw] and, when nbias > 0, <prefix>.bias [nbias]: Conv2d
 * (d0 = out, d1 = in) and ConvTranspose2d (d0 = in, d1 = out). */
void rt_bind_conv(rt_binder *b, rt_linear *l, const char *prefix, int d0, int d1, int kh, int kw, int nbias);
void rt_bind_norm(rt_binder *b, rt_norm *n, const char *prefix, int C);
/* <prefix>.layers.<i>: in -> hidden ... -> out. */
void rt_bind_mlp(rt_binder *b, rt_mlp *m, const char *prefix, int in, int hidden, int out, int n_layers);

#endif
