/* kernels/cuda/pipeline.cu: what the model's pipeline needs of the device besides the
 * ops (kernels/ops.h, "device pipeline"): page-locked staging memory and asynchronous
 * copies, time marks (CUDA events in stream order), graphs (stream capture into a slot,
 * instantiated once, launched many times) and the device memory in use.
 *
 * Graphs are captured in cudaStreamCaptureModeThreadLocal: another model's thread may
 * allocate or synchronize meanwhile, this thread may not (the model never does while
 * capturing: its scratch is planned at load and host copies stay outside the graphs).
 * A time mark recorded while capturing becomes an event-record node of the graph
 * (cudaEventRecordExternal), so the stage times inside a replayed graph are device times
 * too. */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <string.h>

/* ---- host memory and copies ------------------------------------------------------------ */

/* A failed cudaMallocHost leaves no error behind: the caller sees NULL and falls back. */
static void *host_alloc_cuda(const samc_ops *o, size_t bytes) {
    (void)o;
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void host_free_cuda(const samc_ops *o, void *p) {
    if (p) CUDA_CHECK(cuda_ctx(o), cudaFreeHost(p));
}

/* bf16 / fp16 convert on the way (lowp.cu), without waiting either: only stream order. */
static void upload_async_cuda(const samc_ops *o, void *dst, const void *host_src, size_t bytes) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!bytes || lowp_upload(c, dst, host_src, bytes, 1)) return;
    CUDA_CHECK(c, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream));
}

static void download_async_cuda(const samc_ops *o, void *host_dst, const void *src, size_t bytes) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!bytes || lowp_download(c, host_dst, src, bytes, 1)) return;
    CUDA_CHECK(c, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
}

/* ---- time marks ------------------------------------------------------------------------ */

static void mark_cuda(const samc_ops *o, int slot) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (slot < 0 || slot >= SAMC_OPS_MARKS) {
        cuda_fail(c, __FILE__, __LINE__, "mark", "slot out of range");
        return;
    }
    if (c->capturing)
        CUDA_CHECK(c, cudaEventRecordWithFlags(c->marks[slot], c->stream, cudaEventRecordExternal));
    else
        CUDA_CHECK(c, cudaEventRecord(c->marks[slot], c->stream));
}

/* Not an error of the backend when a mark was not recorded: the caller reports "no time". */
static double elapsed_ms_cuda(const samc_ops *o, int from, int to) {
    samc_cuda_ctx *c = cuda_ctx(o);
    float ms = 0.0f;
    if (from < 0 || to < 0 || from >= SAMC_OPS_MARKS || to >= SAMC_OPS_MARKS) return -1.0;
    if (cudaEventElapsedTime(&ms, c->marks[from], c->marks[to]) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1.0;
    }
    return (double)ms;
}

/* ---- graphs ---------------------------------------------------------------------------- */

static int graph_error(samc_cuda_ctx *c, char *err, const char *what) {
    if (err) snprintf(err, 512, "cuda: %s: %.480s", what, c->failed ? c->err : "?");
    return -1;
}

static int graph_begin_cuda(const samc_ops *o, int slot, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!c->use_graphs || c->sync_each_op) return 1; /* SAMC_CUDA_SYNC=1 synchronizes inside ops */
    if (slot < 0 || slot >= SAMC_OPS_GRAPHS || c->capturing) {
        cuda_fail(c, __FILE__, __LINE__, "graph_begin", c->capturing ? "already capturing" : "slot out of range");
        return graph_error(c, err, "graph");
    }
    if (c->failed) return graph_error(c, err, "graph");
    if (CUDA_CHECK(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal)))
        return graph_error(c, err, "graph capture");
    c->capturing = slot + 1;
    lowp_graph_begin(c, slot);
    return 0;
}

static void drop_exec(samc_cuda_ctx *c, int slot) {
    if (!c->graphs[slot]) return;
    CUDA_CHECK(c, cudaGraphExecDestroy(c->graphs[slot]));
    c->graphs[slot] = NULL;
}

static void graph_drop_cuda(const samc_ops *o, int slot) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (slot < 0 || slot >= SAMC_OPS_GRAPHS) return;
    drop_exec(c, slot);
    lowp_graph_drop(c, slot);
}

/* Ends the capture whatever happened in it; an op that failed while being recorded
 * fails the graph (its error stays the backend's). */
static int graph_end_cuda(const samc_ops *o, int slot, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    cudaGraph_t g = NULL;
    if (!c->capturing || c->capturing != slot + 1) {
        cuda_fail(c, __FILE__, __LINE__, "graph_end", "no capture into this slot");
        return graph_error(c, err, "graph");
    }
    c->capturing = 0;
    int bad = CUDA_CHECK(c, cudaStreamEndCapture(c->stream, &g)) || c->failed;
    drop_exec(c, slot); /* an earlier graph of the slot; the map log is this capture's */
    if (!bad) bad = CUDA_CHECK(c, cudaGraphInstantiateWithFlags(&c->graphs[slot], g, 0));
    if (g) CUDA_CHECK(c, cudaGraphDestroy(g));
    if (bad) {
        c->graphs[slot] = NULL;
        lowp_graph_drop(c, slot);
        return graph_error(c, err, "graph capture");
    }
    lowp_graph_end(c, slot);
    return 0;
}

static void graph_launch_cuda(const samc_ops *o, int slot) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (slot < 0 || slot >= SAMC_OPS_GRAPHS || !c->graphs[slot]) {
        cuda_fail(c, __FILE__, __LINE__, "graph_launch", "no graph in this slot");
        return;
    }
    if (lowp_graph_launch(c, slot)) return; /* the precision map as the captured run left it */
    CUDA_CHECK(c, cudaGraphLaunch(c->graphs[slot], c->stream));
}

/* ---- device memory --------------------------------------------------------------------- */

static int mem_info_cuda(const samc_ops *o, size_t *used_now, size_t *used_at_start, size_t *total) {
    samc_cuda_ctx *c = cuda_ctx(o);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    if (used_now) *used_now = total_b - free_b;
    if (used_at_start) *used_at_start = c->mem_at_start;
    if (total) *total = total_b;
    return 0;
}

/* ---- setup ------------------------------------------------------------------------------ */

/* Called by create before the backend's own buffers: the memory in use then is the
 * context's (and other processes'). */
int pipeline_cuda_prepare(samc_cuda_ctx *c) {
    size_t free_b = 0, total_b = 0;
    if (CUDA_CHECK(c, cudaMemGetInfo(&free_b, &total_b))) return -1;
    c->mem_at_start = total_b - free_b;
    c->mem_total = total_b;
    for (int i = 0; i < SAMC_OPS_MARKS; i++)
        if (CUDA_CHECK(c, cudaEventCreate(&c->marks[i]))) return -1;
    return 0;
}

void pipeline_cuda_release(samc_cuda_ctx *c) {
    for (int i = 0; i < SAMC_OPS_GRAPHS; i++)
        if (c->graphs[i]) cudaGraphExecDestroy(c->graphs[i]);
    for (int i = 0; i < SAMC_OPS_MARKS; i++)
        if (c->marks[i]) cudaEventDestroy(c->marks[i]);
}

void pipeline_cuda_fill(samc_ops *o) {
    o->host_alloc = host_alloc_cuda;
    o->host_free = host_free_cuda;
    o->upload_async = upload_async_cuda;
    o->download_async = download_async_cuda;
    o->mark = mark_cuda;
    o->elapsed_ms = elapsed_ms_cuda;
    o->graph_begin = graph_begin_cuda;
    o->graph_end = graph_end_cuda;
    o->graph_launch = graph_launch_cuda;
    o->graph_drop = graph_drop_cuda;
    o->mem_info = mem_info_cuda;
}
