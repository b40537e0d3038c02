/* serve/cmd_serve.c: `samc serve`: an HTTP/1.1 service (libmicrohttpd) for uploads,
 * prompted predictions and automatic-mask jobs, plus the click-to-segment page at `/`.
 *
 * libmicrohttpd runs one thread per connection (bounded by --max-connections) behind its
 * own listening thread, so accepting never waits for inference: a connection thread
 * parses the request, hands a task to the bounded queue of serve/serve_work.c and waits
 * for the answer at most --timeout seconds. docs/api.md describes the endpoints. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "serve/serve.h"

void cmd_serve_help(FILE *f) {
    fprintf(f,
"usage: samc serve --model FILE [options]\n"
"\n"
"Serves SAM2.1 over HTTP/1.1: upload an image once (it is encoded and cached), then ask\n"
"for masks from clicks and boxes as often as you like; run automatic mask generation on\n"
"files of a data folder as background jobs. A click-to-segment page is served at /.\n"
"Endpoints and curl examples: docs/api.md.\n"
"\n"
"network:\n"
"  --host ADDR          address to listen on (default 127.0.0.1: this machine only;\n"
"                       0.0.0.0 or :: for every interface)\n"
"  --port N             TCP port (default 8080; 0 picks a free one, printed at start)\n"
"  --token T            require 'Authorization: Bearer T' on /v1/* and /metrics (the\n"
"                       page and /healthz stay open); also SAMC_SERVE_TOKEN\n"
"  --max-connections N  connections served at once (default 64)\n"
"work:\n"
"  --model FILE         weights (.safetensors or official .pt)\n"
"  --workers N          inference threads, one model each (default 1)\n"
"  --threads N          CPU threads per model (default: cores / workers)\n"
"  --queue N            tasks waiting for a worker before 429 (default 16)\n"
"  --timeout S          seconds a request may take before it is answered 504 (default 60)\n"
"  --job-timeout S      seconds a job may take before it is stopped (default 3600)\n"
"  --cache-mb N         memory for cached image embeddings, allocated at start; least\n"
"                       recently used images are dropped first (default 256)\n"
"  --max-jobs N         job records kept; the oldest finished ones are reused (default 256)\n"
"  --data-dir DIR       folder that jobs may read images from and write results to;\n"
"                       without it jobs are refused\n"
"limits:\n"
"  --max-body-mb N      largest request body (default 32)\n"
"  --max-pixels N       largest image in pixels (default 67108864 = 8192 x 8192)\n"
"  --device D           cpu (default), cuda, or auto: CUDA when a GPU is usable, else\n"
"                       the CPU with a notice on stderr (or SAMC_DEVICE)\n"
"  --precision P        fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_75+): the\n"
"                       matrix products in 16 bits with fp32 accumulation (or\n"
"                       SAMC_PRECISION)\n"
"  --backend B          auto (default), ref, fast, cuda (or SAMC_BACKEND)\n"
"  --verbose            trace model stages and requests on stderr\n"
"\n"
"Stops cleanly on SIGINT / SIGTERM.\n"
"\n"
"examples:\n"
"  samc serve --model sam2.1_hiera_tiny.safetensors            # then open http://127.0.0.1:8080/\n"
"  samc serve --model tiny.safetensors --port 9000 --workers 2 --data-dir /srv/images\n");
}

/* ---- metrics ----------------------------------------------------------------------- */

static const char *const route_names[] = { "none", "page", "healthz", "metrics", "images", "predict",
                                           "image", "jobs", "job" };
#define N_ROUTES 9
static const int codes[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503, 504 };
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))
static const double buckets_s[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define N_BUCKETS ((int)(sizeof buckets_s / sizeof buckets_s[0]))

typedef struct {
    serve_server *srv;
    const serve_config *cfg;
    pthread_mutex_t mu;
    int64_t requests[N_ROUTES][N_CODES + 1];        /* last column: other codes */
    int64_t hist[N_ROUTES][N_BUCKETS + 1];
    double latency_sum[N_ROUTES];
    int64_t latency_count[N_ROUTES];
    int64_t bytes_in, bytes_out;
    int connections;
    double started_ms;
} http_state;

typedef struct {
    char *body;
    size_t len, cap;
    int too_big, rejected;
    double t0;
    serve_route route;
} conn_state;

static void record(http_state *h, serve_route_kind r, int status, double t0, size_t out_bytes) {
    double s = (cli_now_ms() - t0) / 1e3;
    int c = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == status) c = i;
    pthread_mutex_lock(&h->mu);
    h->requests[r][c]++;
    int b = N_BUCKETS;
    for (int i = 0; i < N_BUCKETS; i++)
        if (s <= buckets_s[i]) { b = i; break; }
    h->hist[r][b]++;
    h->latency_sum[r] += s;
    h->latency_count[r]++;
    h->bytes_out += (int64_t)out_bytes;
    pthread_mutex_unlock(&h->mu);
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
static char *metrics_text(http_state *h) {
    serve_stats st;
    serve_get_stats(h->srv, &st);
    text_buf b = { 0 };
    tprintf(&b, "# HELP samc_requests_total HTTP requests answered, by route and status code.\n"
                "# TYPE samc_requests_total counter\n");
    pthread_mutex_lock(&h->mu);
    for (int r = 0; r < N_ROUTES; r++)
        for (int c = 0; c <= N_CODES; c++)
            if (h->requests[r][c])
                tprintf(&b, "samc_requests_total{route=\"%s\",code=\"%s%.0d\"} %lld\n", route_names[r],
                        c == N_CODES ? "other" : "", c == N_CODES ? 0 : codes[c], (long long)h->requests[r][c]);
    tprintf(&b, "# HELP samc_request_duration_seconds Time from the request's arrival to its answer.\n"
                "# TYPE samc_request_duration_seconds histogram\n");
    for (int r = 0; r < N_ROUTES; r++) {
        if (!h->latency_count[r]) continue;
        int64_t cum = 0;
        for (int i = 0; i < N_BUCKETS; i++) {
            cum += h->hist[r][i];
            tprintf(&b, "samc_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lld\n", route_names[r],
                    buckets_s[i], (long long)cum);
        }
        tprintf(&b, "samc_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lld\n", route_names[r],
                (long long)h->latency_count[r]);
        tprintf(&b, "samc_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[r], h->latency_sum[r]);
        tprintf(&b, "samc_request_duration_seconds_count{route=\"%s\"} %lld\n", route_names[r],
                (long long)h->latency_count[r]);
    }
    int64_t bytes_in = h->bytes_in, bytes_out = h->bytes_out;
    int conns = h->connections;
    pthread_mutex_unlock(&h->mu);
    static const char *const job_names[JOB_N_STATES] = { "queued", "running", "done", "failed", "cancelled", "timed_out" };
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
    for (int i = 0; i < JOB_N_STATES; i++) tprintf(&b, "samc_jobs{state=\"%s\"} %d\n", job_names[i], st.jobs[i]);
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
            (cli_now_ms() - h->started_ms) / 1e3);
    return b.s;
}

/* ---- responses ----------------------------------------------------------------------- */

static enum MHD_Result send_text(http_state *h, struct MHD_Connection *c, conn_state *cs, int status,
                                 char *text, const char *type) {
    size_t n = text ? strlen(text) : 0;
    struct MHD_Response *r = text ? MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE)
                                  : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (n) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 429) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405 && cs->route.allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, cs->route.allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    record(h, cs->route.kind, status, cs->t0, n);
    if (h->cfg->verbose) fprintf(stderr, "samc: serve: %s -> %d (%.1f ms)\n", route_names[cs->route.kind], status,
                                 cli_now_ms() - cs->t0);
    return ok;
}

static enum MHD_Result send_json(http_state *h, struct MHD_Connection *c, conn_state *cs, int status, char *json) {
    if (!json && status != 204) json = serve_error_json("out of memory");
    return send_text(h, c, cs, status, json, "application/json");
}

static enum MHD_Result send_error(http_state *h, struct MHD_Connection *c, conn_state *cs, int status,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(http_state *h, struct MHD_Connection *c, conn_state *cs, int status,
                                  const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(h, c, cs, status, serve_error_json("%s", msg));
}

/* Constant time in the token's length, so the answer time does not reveal a prefix. */
static int token_ok(const char *want, const char *header) {
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) return 0;
    const char *got = header + 7;
    size_t n = strlen(want), m = strlen(got);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? got[i] : 0);
    return diff == 0;
}

static char *healthz_json(http_state *h) {
    serve_stats st;
    serve_get_stats(h->srv, &st);
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"status\":\"ok\",\"version\":\"%s\",\"model\":\"%s\",\"image_size\":%d,\"workers\":%d,"
             "\"queue_depth\":%d,\"queue_capacity\":%d,\"cache_images\":%d,\"cache_slots\":%d}",
             SAMC_VERSION, st.config, st.image_size, st.workers, st.queue_depth, st.queue_cap, st.cache_used,
             st.cache_slots);
    return strdup(buf);
}

static enum MHD_Result dispatch(http_state *h, struct MHD_Connection *c, conn_state *cs, const char *method) {
    const serve_route *r = &cs->route;
    int status = 500;
    char *resp = NULL;
    switch (r->kind) {
    case ROUTE_PAGE: {
        char *page = strdup(serve_page_html);
        return send_text(h, c, cs, page ? 200 : 500, page, "text/html; charset=utf-8");
    }
    case ROUTE_HEALTHZ:
        return send_json(h, c, cs, 200, healthz_json(h));
    case ROUTE_METRICS: {
        char *m = metrics_text(h);
        return send_text(h, c, cs, m ? 200 : 500, m, "text/plain; version=0.0.4; charset=utf-8");
    }
    case ROUTE_IMAGES: {
        if (cs->len == 0) return send_error(h, c, cs, 400, "empty body: send the PNG or JPEG file as the body");
        serve_task *t = calloc(1, sizeof *t);
        if (!t) return send_error(h, c, cs, 500, "out of memory");
        t->kind = TASK_ENCODE;
        t->body = (uint8_t *)cs->body;      /* handed over */
        t->body_len = cs->len;
        cs->body = NULL;
        cs->len = cs->cap = 0;
        t->deadline_ms = cs->t0 + h->cfg->timeout_s * 1e3;
        serve_submit_wait(h->srv, t, &status, &resp);
        return send_json(h, c, cs, status, resp);
    }
    case ROUTE_PREDICT: {
        serve_task *t = serve_predict_task(h->srv, r->id, cs->body, cs->len, &status, &resp);
        if (t) {
            t->deadline_ms = cs->t0 + h->cfg->timeout_s * 1e3;
            serve_submit_wait(h->srv, t, &status, &resp);
        }
        return send_json(h, c, cs, status, resp);
    }
    case ROUTE_IMAGE:
        status = serve_image_delete(h->srv, r->id, &resp);
        return send_json(h, c, cs, status, resp);
    case ROUTE_JOBS:
        status = serve_job_submit(h->srv, cs->body, cs->len, &resp);
        return send_json(h, c, cs, status, resp);
    case ROUTE_JOB:
        status = !strcmp(method, "DELETE") ? serve_job_cancel(h->srv, r->id, &resp) : serve_job_get(h->srv, r->id, &resp);
        return send_json(h, c, cs, status, resp);
    default:
        return send_error(h, c, cs, 404, "no such endpoint (see docs/api.md)");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    http_state *h = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        /* first call: headers only. Refuse early what needs no body to refuse. */
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->t0 = cli_now_ms();
        serve_parse_route(method, url, &cs->route);
        const serve_route *r = &cs->route;
        if (r->kind == ROUTE_NONE) {
            cs->rejected = 1;
            return send_error(h, c, cs, 404, "no such endpoint '%.200s' (see docs/api.md)", url);
        }
        if (!r->method_ok) {
            cs->rejected = 1;
            return send_error(h, c, cs, 405, "%s is not allowed on this path (allowed: %s)", method, r->allow);
        }
        if (h->cfg->token && r->kind != ROUTE_PAGE && r->kind != ROUTE_HEALTHZ &&
            !token_ok(h->cfg->token, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))) {
            cs->rejected = 1;
            return send_error(h, c, cs, 401, "missing or wrong bearer token (Authorization: Bearer ...)");
        }
        if (r->bad_id) {
            cs->rejected = 1;
            return send_error(h, c, cs, 404, "malformed id in '%.200s': ids are %d lower-case hex digits", url,
                              SERVE_ID_LEN);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > h->cfg->max_body) {
                cs->rejected = 1;
                return send_error(h, c, cs, 413, "body of %s bytes is larger than the limit of %zu (--max-body-mb)", cl,
                                  h->cfg->max_body);
            }
        }
        return MHD_YES;
    }
    if (cs->rejected) {
        *upload_size = 0;   /* answered already: drop the rest */
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->too_big || cs->len + n > h->cfg->max_body) {
            cs->too_big = 1;
            free(cs->body);
            cs->body = NULL;
            cs->len = cs->cap = 0;
            return MHD_YES;
        }
        if (cs->len + n + 1 > cs->cap) {
            size_t cap = cs->cap ? cs->cap : 4096;
            while (cap < cs->len + n + 1) cap *= 2;
            if (cap > h->cfg->max_body + 1) cap = h->cfg->max_body + 1;
            char *p = realloc(cs->body, cap);
            if (!p) return MHD_NO;
            cs->body = p;
            cs->cap = cap;
        }
        memcpy(cs->body + cs->len, upload, n);
        cs->len += n;
        cs->body[cs->len] = '\0';
        pthread_mutex_lock(&h->mu);
        h->bytes_in += (int64_t)n;
        pthread_mutex_unlock(&h->mu);
        return MHD_YES;
    }
    if (cs->too_big)
        return send_error(h, c, cs, 413, "body larger than the limit of %zu bytes (--max-body-mb)", h->cfg->max_body);
    return dispatch(h, c, cs, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    conn_state *cs = *con_cls;
    if (!cs) return;
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx, enum MHD_ConnectionNotificationCode n) {
    http_state *h = cls;
    pthread_mutex_lock(&h->mu);
    h->connections += n == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    pthread_mutex_unlock(&h->mu);
}

/* ---- command line -------------------------------------------------------------------- */

static int parse_double_flag(cli_args *a, double lo, double hi, double *out) {
    char flag[64];
    snprintf(flag, sizeof flag, "%s", a->flag);
    const char *v = cli_value(a);
    if (!v) return -1;
    float f;
    if (cli_parse_float(v, &f) != 0 || f < lo || f > hi) {
        cli_error(flag, "'%s' is not a number in [%g, %g]", v, lo, hi);
        return -1;
    }
    *out = f;
    return 0;
}

static int parse_args(int argc, char **argv, serve_config *c, long *max_conn) {
    cli_args a;
    cli_args_init(&a, argc, argv, "serve");
    cli_compute compute;
    if (cli_compute_init(&compute) != 0) return -1;
    c->verbose = cli_debug_env();
    const char *arg;
    long n;
    while ((arg = cli_next(&a)) != NULL) {
        int rc = 0;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_serve_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--model")) {
            if (!(c->model = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--host")) {
            if (!(c->host = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--port")) {
            rc = cli_value_long(&a, 0, 65535, &n);
            c->port = (int)n;
        } else if (!strcmp(arg, "--token")) {
            if (!(c->token = cli_value(&a))) return -1;
            if (!*c->token) { cli_error("--token", "empty token"); return -1; }
        } else if (!strcmp(arg, "--data-dir")) {
            if (!(c->data_dir = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--workers")) {
            rc = cli_value_long(&a, 1, 256, &n);
            c->workers = (int)n;
        } else if (!strcmp(arg, "--threads")) {
            rc = cli_value_long(&a, 1, 4096, &n);
            c->threads = (int)n;
        } else if (!strcmp(arg, "--queue")) {
            rc = cli_value_long(&a, 1, 100000, &n);
            c->queue_cap = (int)n;
        } else if (!strcmp(arg, "--max-jobs")) {
            rc = cli_value_long(&a, 1, 100000, &n);
            c->max_jobs = (int)n;
        } else if (!strcmp(arg, "--max-connections")) {
            rc = cli_value_long(&a, 1, 10000, max_conn);
        } else if (!strcmp(arg, "--cache-mb")) {
            rc = cli_value_long(&a, 1, 1L << 20, &c->cache_mb);
        } else if (!strcmp(arg, "--max-body-mb")) {
            rc = cli_value_long(&a, 1, 4096, &n);
            c->max_body = (size_t)n << 20;
        } else if (!strcmp(arg, "--max-pixels")) {
            rc = cli_value_long(&a, 1, 1L << 31, &n);
            c->max_pixels = n;
        } else if (!strcmp(arg, "--timeout")) {
            rc = parse_double_flag(&a, 0.001, 1e6, &c->timeout_s);
        } else if (!strcmp(arg, "--job-timeout")) {
            rc = parse_double_flag(&a, 0.001, 1e7, &c->job_timeout_s);
        } else if ((rc = cli_compute_flag(&a, arg, &compute)) != 0) {
            if (rc < 0) return -1;
            rc = 0;
        } else if (!strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            if (cli_no_value(&a) != 0) return -1;
            c->verbose = 1;
        } else if (cli_is_flag(arg)) {
            cli_unknown_flag(&a);
            return -1;
        } else {
            cli_extra_arg(&a);
            return -1;
        }
        if (rc != 0) return -1;
    }
    if (!c->model) {
        cli_error("serve", "missing --model FILE (see samc serve --help)");
        return -1;
    }
    samc_options opt = { 0 };
    if (cli_compute_resolve(&compute, &opt) != 0) return -1;
    c->backend = opt.backend;
    c->precision = opt.precision;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_config cfg = { .host = "127.0.0.1", .port = 8080, .workers = 1, .queue_cap = 16, .max_jobs = 256,
                         .timeout_s = 60, .job_timeout_s = 3600, .cache_mb = 256, .max_body = (size_t)32 << 20,
                         .max_pixels = (int64_t)1 << 26, .max_side = 16384 };
    long max_conn = 64;
    const char *env_token = getenv("SAMC_SERVE_TOKEN");
    if (env_token && *env_token) cfg.token = env_token;
    int rc = parse_args(argc, argv, &cfg, &max_conn);
    if (rc != 0) return rc > 0 ? CLI_OK : CLI_USAGE;
    if (cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = cores > cfg.workers ? (int)(cores / cfg.workers) : 1;
    }
    struct sockaddr_in6 a6 = { 0 };
    struct sockaddr_in a4 = { 0 };
    const char *host = !strcmp(cfg.host, "localhost") ? "127.0.0.1" : cfg.host;
    int v6 = 0;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg.port);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg.port);
        v6 = 1;
    } else {
        cli_error("--host", "'%s' is not an IPv4 or IPv6 address (or localhost)", cfg.host);
        return CLI_USAGE;
    }
    /* Connection threads come and go; few malloc arenas keep their freed memory reusable
     * instead of spreading it over one arena per thread ever seen. */
    mallopt(M_ARENA_MAX, 2 + cfg.workers);
    /* SIGINT / SIGTERM are taken by sigwait below, in no other thread. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    samc_error err = { 0 };
    double t0 = cli_now_ms();
    serve_server *srv = serve_server_new(&cfg, &err);
    if (!srv) {
        cli_lib_error("serve", &err);
        return CLI_FAIL;
    }
    static http_state h;
    memset(&h, 0, sizeof h);
    h.srv = srv;
    h.cfg = serve_get_config(srv);
    h.started_ms = t0;
    pthread_mutex_init(&h.mu, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)cfg.port, NULL, NULL, on_request, &h,
        MHD_OPTION_SOCK_ADDR, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, &h,
        MHD_OPTION_END);
    if (!d) {
        cli_error("serve", "cannot listen on %s port %d: %s", cfg.host, cfg.port, strerror(errno));
        serve_server_free(srv);
        pthread_mutex_destroy(&h.mu);
        return CLI_FAIL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : cfg.port;
    serve_stats st;
    serve_get_stats(srv, &st);
    printf("samc serve: listening on http://%s%s%s:%d/ (model %s, %d worker%s, %d cached images of %.1f MiB, "
           "queue %d, timeout %g s%s)\n", v6 ? "[" : "", cfg.host, v6 ? "]" : "", port, st.config, cfg.workers,
           cfg.workers == 1 ? "" : "s", st.cache_slots, st.cache_bytes_per_image / 1048576.0, cfg.queue_cap,
           cfg.timeout_s, cfg.token ? ", token required" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    printf("samc serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    MHD_stop_daemon(d);          /* waits for the connection threads */
    serve_server_free(srv);
    pthread_mutex_destroy(&h.mu);
    return CLI_OK;
}
