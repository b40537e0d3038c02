/* serve/serve_metrics.c: the counters of `samc serve`'s HTTP traffic and the texts of
 * GET /metrics and GET /healthz (see serve_metrics.h). */
#include "serve/serve_metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

static const char *const route_names[] = { "none", "page", "healthz", "metrics", "images", "predict",
                                           "image", "jobs", "job", "find" };
#define N_ROUTES 10
static const int codes[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503, 504 };
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))
static const double buckets_s[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define N_BUCKETS ((int)(sizeof buckets_s / sizeof buckets_s[0]))

struct serve_metrics {
    pthread_mutex_t mu;
    int64_t requests[N_ROUTES][N_CODES + 1];        /* last column: other codes */
    int64_t hist[N_ROUTES][N_BUCKETS + 1];
    double latency_sum[N_ROUTES];
    int64_t latency_count[N_ROUTES];
    int64_t bytes_in, bytes_out;
    int connections;
    double started_ms;
};

serve_metrics *serve_metrics_new(double started_ms) {
    serve_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->started_ms = started_ms;
    return m;
}

void serve_metrics_free(serve_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *serve_route_name(serve_route_kind route) {
    return (unsigned)route < N_ROUTES ? route_names[route] : "none";
}

void serve_metrics_request(serve_metrics *m, serve_route_kind r, int status, double t0_ms, size_t out_bytes) {
    double s = (monotonic_ms() - t0_ms) / 1e3;
    int c = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == status) c = i;
    pthread_mutex_lock(&m->mu);
    m->requests[r][c]++;
    int b = N_BUCKETS;
    for (int i = 0; i < N_BUCKETS; i++)
        if (s <= buckets_s[i]) { b = i; break; }
    m->hist[r][b]++;
    m->latency_sum[r] += s;
    m->latency_count[r]++;
    m->bytes_out += (int64_t)out_bytes;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_bytes_in(serve_metrics *m, size_t n) {
    pthread_mutex_lock(&m->mu);
    m->bytes_in += (int64_t)n;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_connections(serve_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    m->connections += delta;
    pthread_mutex_unlock(&m->mu);
}

/* Resident memory from /proc/self/status (kB), or -1. */
static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

typedef struct {
    char *s;
    size_t n, cap;
} text_buf;

static void tprintf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text_buf *b, const char *fmt, ...) {
    if (!b->s && b->cap) return;   /* an earlier allocation failed */
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap <= b->n + (size_t)n) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            free(b->s);
            b->s = NULL;
            b->cap = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

/* Prometheus text exposition format 0.0.4. */
char *serve_metrics_text(serve_metrics *m, serve_server *srv) {
    serve_stats st;
    serve_get_stats(srv, &st);
    text_buf b = { 0 };
    tprintf(&b, "# HELP samc_requests_total HTTP requests answered, by route and status code.\n"
                "# TYPE samc_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (int r = 0; r < N_ROUTES; r++)
        for (int c = 0; c <= N_CODES; c++)
            if (m->requests[r][c])
                tprintf(&b, "samc_requests_total{route=\"%s\",code=\"%s%.0d\"} %lld\n", route_names[r],
                        c == N_CODES ? "other" : "", c == N_CODES ? 0 : codes[c], (long long)m->requests[r][c]);
    tprintf(&b, "# HELP samc_request_duration_seconds Time from the request's arrival to its answer.\n"
                "# TYPE samc_request_duration_seconds histogram\n");
    for (int r = 0; r < N_ROUTES; r++) {
        if (!m->latency_count[r]) continue;
        int64_t cum = 0;
        for (int i = 0; i < N_BUCKETS; i++) {
            cum += m->hist[r][i];
            tprintf(&b, "samc_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lld\n", route_names[r],
                    buckets_s[i], (long long)cum);
        }
        tprintf(&b, "samc_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lld\n", route_names[r],
                (long long)m->latency_count[r]);
        tprintf(&b, "samc_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[r], m->latency_sum[r]);
        tprintf(&b, "samc_request_duration_seconds_count{route=\"%s\"} %lld\n", route_names[r],
                (long long)m->latency_count[r]);
    }
    int64_t bytes_in = m->bytes_in, bytes_out = m->bytes_out;
    int conns = m->connections;
    pthread_mutex_unlock(&m->mu);
    tprintf(&b, "# HELP samc_request_bytes_total Request body bytes received.\n# TYPE samc_request_bytes_total counter\n"
                "samc_request_bytes_total %lld\n", (long long)bytes_in);
    tprintf(&b, "# HELP samc_response_bytes_total Response body bytes sent.\n# TYPE samc_response_bytes_total counter\n"
                "samc_response_bytes_total %lld\n", (long long)bytes_out);
    tprintf(&b, "# HELP samc_connections Open HTTP connections.\n# TYPE samc_connections gauge\nsamc_connections %d\n", conns);
    tprintf(&b, "# HELP samc_queue_depth Tasks waiting for a worker.\n# TYPE samc_queue_depth gauge\nsamc_queue_depth %d\n"
                "# HELP samc_queue_capacity Queue bound (--queue).\n# TYPE samc_queue_capacity gauge\nsamc_queue_capacity %d\n",
            st.queue_depth, st.queue_cap);
    tprintf(&b, "# HELP samc_workers Inference workers.\n# TYPE samc_workers gauge\nsamc_workers %d\n"
                "# HELP samc_workers_busy Workers running a task.\n# TYPE samc_workers_busy gauge\nsamc_workers_busy %d\n",
            st.workers, st.workers_busy);
    tprintf(&b, "# HELP samc_cache_slots Encoded images the cache holds (--cache-mb).\n# TYPE samc_cache_slots gauge\n"
                "samc_cache_slots %d\n# HELP samc_cache_images Cached encoded images.\n# TYPE samc_cache_images gauge\n"
                "samc_cache_images %d\n# HELP samc_cache_image_bytes Bytes of one encoded image.\n"
                "# TYPE samc_cache_image_bytes gauge\nsamc_cache_image_bytes %zu\n",
            st.cache_slots, st.cache_used, st.cache_bytes_per_image);
    tprintf(&b, "# HELP samc_jobs Job records by state.\n# TYPE samc_jobs gauge\n");
    for (int i = 0; i < JOB_N_STATES; i++) tprintf(&b, "samc_jobs{state=\"%s\"} %d\n", serve_job_state_names[i], st.jobs[i]);
    tprintf(&b, "# HELP samc_tasks_timed_out_total Requests answered 504 and jobs stopped at their deadline.\n"
                "# TYPE samc_tasks_timed_out_total counter\nsamc_tasks_timed_out_total %lld\n"
                "# HELP samc_tasks_rejected_total Tasks refused with 429 (queue full).\n"
                "# TYPE samc_tasks_rejected_total counter\nsamc_tasks_rejected_total %lld\n"
                "# HELP samc_tasks_discarded_total Results that came after their request timed out.\n"
                "# TYPE samc_tasks_discarded_total counter\nsamc_tasks_discarded_total %lld\n",
            (long long)st.tasks_timed_out, (long long)st.tasks_rejected, (long long)st.tasks_discarded_late);
    tprintf(&b, "# HELP samc_resident_memory_bytes Resident set size of the process.\n"
                "# TYPE samc_resident_memory_bytes gauge\nsamc_resident_memory_bytes %lld\n",
            (long long)rss_kb() * 1024);
    tprintf(&b, "# HELP samc_uptime_seconds Seconds since start.\n# TYPE samc_uptime_seconds gauge\nsamc_uptime_seconds %.3f\n",
            (monotonic_ms() - m->started_ms) / 1e3);
    return b.s;
}

char *serve_healthz_json(serve_server *srv) {
    serve_stats st;
    serve_get_stats(srv, &st);
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"status\":\"ok\",\"version\":\"%s\",\"model\":\"%s\",\"family\":\"%s\",\"image_size\":%d,\"workers\":%d,"
             "\"queue_depth\":%d,\"queue_capacity\":%d,\"cache_images\":%d,\"cache_slots\":%d}",
             SAMC_VERSION, st.config, st.family == SAMC_FAMILY_SAM3 ? "sam3" : "sam2.1", st.image_size, st.workers, st.queue_depth, st.queue_cap, st.cache_used,
             st.cache_slots);
    return strdup(buf);
}
