/* model/runtime/arena.c: the scratch arena and the planning pass (runtime.h). */
#include "model/runtime/runtime.h"

static char arena_dummy[64] __attribute__((aligned(64)));

float *rt_arena_floats(samc_runtime *rt, size_t n) {
    rt_arena *a = &rt->arena;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (a->planning) {
        a->used += bytes;
        if (a->used > a->peak) a->peak = a->used;
        return (float *)arena_dummy;
    }
    if (a->used + bytes > a->cap) return NULL;
    float *p = (float *)(a->base + a->used);
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

size_t rt_arena_mark(const samc_runtime *rt) { return rt->arena.used; }
void rt_arena_reset(samc_runtime *rt, size_t mark) { rt->arena.used = mark; }

void rt_plan_begin(samc_runtime *rt) {
    rt_free(rt->backend, rt->arena.base);
    rt->arena = (rt_arena){ .planning = 1 };
    rt->ops = samc_ops_null();
}

int rt_plan_end(samc_runtime *rt, samc_error *err) {
    size_t peak = rt->arena.peak;
    rt->ops = rt->backend;
    rt->arena = (rt_arena){ .cap = peak };
    rt->arena.base = rt_alloc(rt->backend, peak);
    if (!rt->arena.base)
        return samc_error_set(err, SAMC_ERR_NOMEM, "cannot allocate %zu MB of %s memory for scratch", peak >> 20,
                              rt->backend->name);
    return 0;
}
