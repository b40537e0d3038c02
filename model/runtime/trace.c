/* model/runtime/trace.c: trace lines and debug dumps (runtime.h). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/runtime/runtime.h"
#include "util/clock.h"

/* The runtime's clock is util's monotonic one (model code reads it through rt_now_ms so
 * that a backend clock can stand in later). */
double rt_now_ms(void) { return monotonic_ms(); }

/* Resident set size in MB from /proc/self/statm (0 where unavailable). */
static double rss_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0.0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * 4096.0 / 1048576.0;
}

void rt_log(const samc_runtime *rt, const char *fmt, ...) {
    if (!rt->opt.log || rt->arena.planning) return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < sizeof line - 40)
        snprintf(line + k, sizeof line - (size_t)k, " [rss %.0f MB]", rss_mb());
    rt->opt.log(rt->opt.log_ctx, line);
}

int rt_dumping(const samc_runtime *rt) { return rt->opt.dump && !rt->arena.planning; }

static void dump_va(const samc_runtime *rt, const char *name, const float *data, int on_host, int ndim, va_list ap) {
    int64_t shape[8], n = 1;
    for (int i = 0; i < ndim && i < 8; i++) {
        shape[i] = va_arg(ap, int64_t);
        n *= shape[i];
    }
    if (on_host || rt->ops->host_memory) {
        rt->opt.dump(rt->opt.dump_ctx, name, data, ndim, shape);
        return;
    }
    float *h = malloc(sizeof(float) * (size_t)(n ? n : 1)); /* debug path only */
    if (!h) return;
    rt_download(rt->ops, h, data, sizeof(float) * (size_t)n);
    rt->opt.dump(rt->opt.dump_ctx, name, h, ndim, shape);
    free(h);
}

void rt_dump(const samc_runtime *rt, const char *name, const float *data, int ndim, ...) {
    if (!rt_dumping(rt)) return;
    va_list ap;
    va_start(ap, ndim);
    dump_va(rt, name, data, 0, ndim, ap);
    va_end(ap);
}

void rt_dump_host(const samc_runtime *rt, const char *name, const float *data, int ndim, ...) {
    if (!rt_dumping(rt)) return;
    va_list ap;
    va_start(ap, ndim);
    dump_va(rt, name, data, 1, ndim, ap);
    va_end(ap);
}
