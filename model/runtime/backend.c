/* model/runtime/backend.c: choosing the backend, its memory, and waiting for it
 * (runtime.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/runtime/runtime.h"

/* The precision names of the API ("fp32", ...): the backend is what computes in them. */
const char *samc_precision_name(samc_precision p) {
    switch (p) {
    case SAMC_PRECISION_FP32: return "fp32";
    case SAMC_PRECISION_BF16: return "bf16";
    case SAMC_PRECISION_FP16: return "fp16";
    default: return "?";
    }
}

int rt_backend_open(samc_runtime *rt, const samc_options *opt, samc_error *err) {
    char emsg[512];
    memset(rt, 0, sizeof *rt);
    if (opt) rt->opt = *opt;
    samc_precision prec = rt->opt.precision;
    if (prec != SAMC_PRECISION_FP32 && prec != SAMC_PRECISION_BF16 && prec != SAMC_PRECISION_FP16)
        return samc_error_set(err, SAMC_ERR_ARG, "unknown precision %d (fp32, bf16, fp16)", (int)prec);
    /* Reduced precision: bf16 / fp16 on CUDA, bf16 on the fast CPU backend of a CPU with
     * AMX. Said before the weights are read. */
    if (prec != SAMC_PRECISION_FP32 && rt->opt.backend != SAMC_BACKEND_CUDA) {
        if (prec == SAMC_PRECISION_FP16)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                                  "--precision fp16 needs the CUDA backend; on the CPU use bf16 (Intel AMX) or fp32");
        if (rt->opt.backend == SAMC_BACKEND_CPU_REF)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                                  "--precision bf16: the reference backend computes in fp32 (bf16 runs on the fast "
                                  "CPU backend and on CUDA)");
        if (!rt->opt.plan_only && !samc_ops_cpu_fast_bf16(emsg, sizeof emsg))
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "--precision bf16: %s", emsg);
    }
    samc_backend be = rt->opt.backend;
    if (rt->opt.plan_only) {
        int cuda = be == SAMC_BACKEND_CUDA;
        rt->sizing_ops = samc_ops_sizing_create(cuda ? "cuda (planned)" : "cpu (planned)",
                                                cuda ? SAMC_CUDA_FIXED_BYTES : 0);
        if (!rt->sizing_ops) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        rt->sizing_ops->attention_windows = cuda; /* plan the buffers the CUDA backend's path takes */
        rt->backend = rt->ops = rt->sizing_ops;
        return 0;
    }
    if (be == SAMC_BACKEND_CUDA) {
        rt->cuda_ops = samc_ops_cuda_create(rt->opt.device, emsg);
        if (!rt->cuda_ops) return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "the CUDA backend cannot start: %s", emsg);
    }
    if (be == SAMC_BACKEND_AUTO || be == SAMC_BACKEND_CPU_FAST) {
        rt->fast_ops = samc_ops_cpu_fast_create(rt->opt.n_threads);
        if (!rt->fast_ops && be == SAMC_BACKEND_CPU_FAST)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "the fast CPU backend cannot start on this machine");
        if (rt->fast_ops) samc_ops_fill_from_ref(rt->fast_ops);
    }
    rt->backend = rt->cuda_ops ? rt->cuda_ops : rt->fast_ops ? rt->fast_ops : samc_ops_cpu_ref();
    rt->ops = rt->backend;
    return 0;
}

void rt_backend_close(samc_runtime *rt) {
    if (rt->backend) rt_free(rt->backend, rt->arena.base);
    rt->arena = (rt_arena){ 0 };
    if (rt->fast_ops) samc_ops_cpu_fast_destroy(rt->fast_ops);
    if (rt->cuda_ops) samc_ops_cuda_destroy(rt->cuda_ops);
    samc_ops_sizing_destroy(rt->sizing_ops);
    rt->fast_ops = rt->cuda_ops = rt->sizing_ops = NULL;
    rt->backend = rt->ops = NULL;
}

int rt_backend_threads(const samc_runtime *rt) {
    if (!rt->fast_ops || rt->backend != rt->fast_ops) return 1;
    return rt->opt.n_threads > 0 ? rt->opt.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
}

void *rt_alloc(const samc_ops *o, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    if (o->alloc) return o->alloc(o, bytes ? bytes : 64);
    return aligned_alloc(64, bytes ? bytes : 64);
}

void rt_free(const samc_ops *o, void *p) {
    if (!p) return;
    if (o->free) o->free(o, p);
    else free(p);
}

void rt_upload(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    if (o->upload) o->upload(o, dst, src, bytes);
    else memcpy(dst, src, bytes);
}

void rt_download(const samc_ops *o, void *dst, const void *src, size_t bytes) {
    if (o->download) o->download(o, dst, src, bytes);
    else memcpy(dst, src, bytes);
}

int rt_sync(const samc_runtime *rt, const char *what, samc_error *err) {
    char emsg[512];
    const samc_ops *o = rt->ops;
    if (o->sync && o->sync(o, emsg)) return samc_error_set(err, SAMC_ERR_INTERNAL, "%s on %s: %s", what, o->name, emsg);
    return 0;
}
