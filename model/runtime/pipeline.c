/* model/runtime/pipeline.c: the device pipeline of runtime.h: staging memory and
 * asynchronous copies, time marks, graphs and device memory, each falling back to the
 * plain host way on backends without them (the CPU backends, the null backend). */
#include <stdlib.h>
#include <string.h>

#include "model/runtime/runtime.h"

/* ---- staging and copies ------------------------------------------------------------------ */

void *rt_host_alloc(const samc_ops *o, size_t bytes) {
    if (o->host_alloc) return o->host_alloc(o, bytes ? bytes : 1);
    return malloc(bytes ? bytes : 1);
}

void rt_host_free(const samc_ops *o, void *p) {
    if (!p) return;
    if (o->host_free) o->host_free(o, p);
    else free(p);
}

void rt_upload_async(const samc_ops *o, void *dst, const void *host_src, size_t bytes) {
    if (o->upload_async) o->upload_async(o, dst, host_src, bytes);
    else rt_upload(o, dst, host_src, bytes);
}

void rt_download_async(const samc_ops *o, void *host_dst, const void *src, size_t bytes) {
    if (o->download_async) o->download_async(o, host_dst, src, bytes);
    else rt_download(o, host_dst, src, bytes);
}

/* ---- time marks -------------------------------------------------------------------------- */

void rt_mark(samc_runtime *rt, int id) {
    if (rt->arena.planning || id < 0 || id >= RT_MARK_COUNT) return;
    const samc_ops *o = rt->ops;
    if (o->mark) {
        o->mark(o, id);
    } else {
        rt->mark_host[id] = rt_now_ms();
    }
    rt->mark_set[id] = 1;
}

double rt_mark_ms(const samc_runtime *rt, int from, int to) {
    if (from < 0 || to < 0 || from >= RT_MARK_COUNT || to >= RT_MARK_COUNT || !rt->mark_set[from] || !rt->mark_set[to])
        return -1.0;
    const samc_ops *o = rt->backend;
    if (o->elapsed_ms) return o->elapsed_ms(o, from, to);
    return rt->mark_host[to] - rt->mark_host[from];
}

/* ---- graphs ------------------------------------------------------------------------------ */

/* The slot holding key at the arena's current position, or -1. */
static int find_graph(const samc_runtime *rt, uint64_t key) {
    for (int i = 0; i < SAMC_OPS_GRAPHS; i++)
        if (rt->graphs[i].valid && rt->graphs[i].key == key && rt->graphs[i].arena_mark == rt->arena.used) return i;
    return -1;
}

/* A free slot, else the least recently used one. */
static int victim_graph(const samc_runtime *rt) {
    int best = 0;
    for (int i = 0; i < SAMC_OPS_GRAPHS; i++) {
        if (!rt->graphs[i].valid) return i;
        if (rt->graphs[i].last_use < rt->graphs[best].last_use) best = i;
    }
    return best;
}

/* Captures enqueue into a slot; 1 when the backend has graphs switched off. */
static int capture(samc_runtime *rt, int slot, uint64_t key, int (*enqueue)(void *, samc_error *), void *ctx,
                   samc_error *err) {
    const samc_ops *o = rt->ops;
    char emsg[512] = "";
    if (rt->graphs[slot].valid) o->graph_drop(o, slot);
    rt->graphs[slot].valid = 0;
    int rc = o->graph_begin(o, slot, emsg);
    if (rc == 1) {
        rt->graphs_off = 1;
        rt_log(rt, "graphs: switched off by the %s backend: ops run one by one", o->name);
        return 1;
    }
    if (rc) return samc_error_set(err, SAMC_ERR_INTERNAL, "graph capture on %s: %s", o->name, emsg);
    int run = enqueue(ctx, err);
    if (o->graph_end(o, slot, emsg)) {
        if (run) return -1; /* the enqueue's own error says more */
        return samc_error_set(err, SAMC_ERR_INTERNAL, "graph capture on %s: %s", o->name, emsg);
    }
    if (run) return -1;
    rt->graphs[slot] = (rt_graph_slot){ .key = key, .arena_mark = rt->arena.used, .valid = 1 };
    rt->graph_captures++;
    rt_log(rt, "graphs: captured graph %d (key %016llx) into slot %d", rt->graph_captures, (unsigned long long)key,
           slot);
    return 0;
}

int rt_graph_run(samc_runtime *rt, uint64_t key, int (*enqueue)(void *ctx, samc_error *err), void *ctx,
                 samc_error *err) {
    const samc_ops *o = rt->ops;
    if (rt->arena.planning || rt_dumping(rt) || !o->graph_begin || rt->graphs_off) return enqueue(ctx, err);
    int slot = find_graph(rt, key);
    if (slot < 0) {
        slot = victim_graph(rt);
        int rc = capture(rt, slot, key, enqueue, ctx, err);
        if (rc == 1) return enqueue(ctx, err);
        if (rc) return -1;
    }
    rt->graphs[slot].last_use = ++rt->graph_tick;
    o->graph_launch(o, slot);
    rt->graph_launches++;
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------ */

int rt_mem_info(const samc_runtime *rt, size_t *used_now, size_t *used_at_start, size_t *total) {
    const samc_ops *o = rt->backend;
    if (!o || !o->mem_info) return -1;
    return o->mem_info(o, used_now, used_at_start, total);
}
