/* serve/serve_http.c: the HTTP/1.1 side of `samc serve` (libmicrohttpd): start and stop,
 * reading requests (route, bearer token, body within --max-body-mb), handing them to the
 * work side (serve_work.h) and sending the answers. docs/api.md describes the endpoints.
 *
 * libmicrohttpd runs one thread per connection (bounded by max_connections) behind its
 * own listening thread, so accepting never waits for inference: a connection thread
 * parses the request, hands a task to the bounded queue and waits for the answer at most
 * timeout_s seconds. */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve/serve_metrics.h"
#include "serve/serve_parse.h"
#include "serve/serve_work.h"
#include "util/clock.h"

struct serve_service {
    serve_server *srv;
    const serve_config *cfg;    /* the server's copy */
    serve_metrics *metrics;
    struct MHD_Daemon *daemon;
    int port, ipv6;
};

/* One request, from its headers to its answer. */
typedef struct {
    char *body;
    size_t len, cap;
    int too_big, rejected;
    double t0;
    serve_route route;
} conn_state;

void serve_config_default(serve_config *c) {
    *c = (serve_config){ .host = "127.0.0.1", .port = 8080, .workers = 1, .queue_cap = 16, .max_jobs = 256,
                         .max_connections = 64, .timeout_s = 60, .job_timeout_s = 3600, .cache_mb = 256,
                         .max_body = (size_t)32 << 20, .max_pixels = (int64_t)1 << 26, .max_side = 16384 };
}

/* ---- responses ----------------------------------------------------------------------- */

static enum MHD_Result send_text(serve_service *h, struct MHD_Connection *c, conn_state *cs, int status,
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
    serve_metrics_request(h->metrics, cs->route.kind, status, cs->t0, n);
    if (h->cfg->log) {
        char line[128];
        snprintf(line, sizeof line, "serve: %s -> %d (%.1f ms)", serve_route_name(cs->route.kind), status,
                 monotonic_ms() - cs->t0);
        h->cfg->log(h->cfg->log_ctx, line);
    }
    return ok;
}

static enum MHD_Result send_json(serve_service *h, struct MHD_Connection *c, conn_state *cs, int status, char *json) {
    if (!json && status != 204) json = serve_error_json("out of memory");
    return send_text(h, c, cs, status, json, "application/json");
}

static enum MHD_Result send_error(serve_service *h, struct MHD_Connection *c, conn_state *cs, int status,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(serve_service *h, struct MHD_Connection *c, conn_state *cs, int status,
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

static enum MHD_Result dispatch(serve_service *h, struct MHD_Connection *c, conn_state *cs, const char *method) {
    const serve_route *r = &cs->route;
    int status = 500;
    char *resp = NULL;
    double deadline = cs->t0 + h->cfg->timeout_s * 1e3;
    switch (r->kind) {
    case ROUTE_PAGE: {
        char *page = strdup(serve_page_html);
        return send_text(h, c, cs, page ? 200 : 500, page, "text/html; charset=utf-8");
    }
    case ROUTE_HEALTHZ:
        return send_json(h, c, cs, 200, serve_healthz_json(h->srv));
    case ROUTE_METRICS: {
        char *m = serve_metrics_text(h->metrics, h->srv);
        return send_text(h, c, cs, m ? 200 : 500, m, "text/plain; version=0.0.4; charset=utf-8");
    }
    case ROUTE_IMAGES: {
        if (cs->len == 0) return send_error(h, c, cs, 400, "empty body: send the PNG or JPEG file as the body");
        serve_task *t = serve_encode_task((uint8_t *)cs->body, cs->len, deadline);   /* the body is handed over */
        cs->body = NULL;
        cs->len = cs->cap = 0;
        if (!t) return send_error(h, c, cs, 500, "out of memory");
        serve_submit_wait(h->srv, t, &status, &resp);
        return send_json(h, c, cs, status, resp);
    }
    case ROUTE_PREDICT:
    case ROUTE_FIND: {
        serve_task *t = serve_predict_task(h->srv, r->id, r->kind == ROUTE_FIND, cs->body, cs->len, deadline, &status,
                                           &resp);
        if (t) serve_submit_wait(h->srv, t, &status, &resp);
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

/* ---- reading requests ------------------------------------------------------------------ */

/* The first call of a request (headers only): refuses early what needs no body to
 * refuse (unknown path, method, token, malformed id, declared body too large). */
static enum MHD_Result on_headers(serve_service *h, struct MHD_Connection *c, const char *url, const char *method,
                                  void **con_cls) {
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs) return MHD_NO;
    *con_cls = cs;
    cs->t0 = monotonic_ms();
    serve_parse_route(method, url, &cs->route);
    const serve_route *r = &cs->route;
    cs->rejected = 1;
    if (r->kind == ROUTE_NONE) return send_error(h, c, cs, 404, "no such endpoint '%.200s' (see docs/api.md)", url);
    if (!r->method_ok)
        return send_error(h, c, cs, 405, "%s is not allowed on this path (allowed: %s)", method, r->allow);
    if (h->cfg->token && r->kind != ROUTE_PAGE && r->kind != ROUTE_HEALTHZ &&
        !token_ok(h->cfg->token, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
        return send_error(h, c, cs, 401, "missing or wrong bearer token (Authorization: Bearer ...)");
    if (r->bad_id)
        return send_error(h, c, cs, 404, "malformed id in '%.200s': ids are %d lower-case hex digits", url,
                          SERVE_ID_LEN);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || n > h->cfg->max_body)
            return send_error(h, c, cs, 413, "body of %s bytes is larger than the limit of %zu (--max-body-mb)", cl,
                              h->cfg->max_body);
    }
    cs->rejected = 0;
    return MHD_YES;
}

/* A piece of the body: kept while the whole stays within max_body, else dropped and the
 * request answered 413 at its end. */
static enum MHD_Result take_upload(serve_service *h, conn_state *cs, const char *upload, size_t n) {
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
    serve_metrics_bytes_in(h->metrics, n);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    serve_service *h = cls;
    conn_state *cs = *con_cls;
    if (!cs) return on_headers(h, c, url, method, con_cls);
    if (cs->rejected) {
        *upload_size = 0;   /* answered already: drop the rest */
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return take_upload(h, cs, upload, n);
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
    serve_service *h = cls;
    serve_metrics_connections(h->metrics, n == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* ---- start and stop -------------------------------------------------------------------- */

/* The listening address of host ("localhost" is 127.0.0.1): 0, or -1 when host is not an
 * IPv4 or IPv6 address. */
static int host_address(const char *host, int port, struct sockaddr_in *a4, struct sockaddr_in6 *a6, int *ipv6) {
    memset(a4, 0, sizeof *a4);
    memset(a6, 0, sizeof *a6);
    if (!host) return -1;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    *ipv6 = 0;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return -1;
}

int serve_check_host(const char *host, char *why, size_t why_size) {
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    int v6;
    if (host_address(host, 0, &a4, &a6, &v6) == 0) return 0;
    snprintf(why, why_size, "'%s' is not an IPv4 or IPv6 address (or localhost)", host ? host : "");
    return -1;
}

serve_service *serve_start(const serve_config *cfg_in, samc_error *err) {
    serve_config cfg = *cfg_in;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    int v6 = 0;
    if (host_address(cfg.host, cfg.port, &a4, &a6, &v6) != 0) {
        samc_error_set(err, SAMC_ERR_ARG, "--host: '%s' is not an IPv4 or IPv6 address (or localhost)",
                       cfg.host ? cfg.host : "");
        return NULL;
    }
    if (cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = cores > cfg.workers ? (int)(cores / cfg.workers) : 1;
    }
    serve_service *h = calloc(1, sizeof *h);
    if (!h || !(h->metrics = serve_metrics_new(monotonic_ms()))) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!(h->srv = serve_server_new(&cfg, err))) goto fail;
    h->cfg = serve_get_config(h->srv);
    h->ipv6 = v6;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(flags, (uint16_t)cfg.port, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_END);
    if (!h->daemon) {
        samc_error_set(err, SAMC_ERR_IO, "cannot listen on %s port %d: %s", cfg.host, cfg.port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg.port;
    return h;
fail:
    serve_stop(h);
    return NULL;
}

void serve_stop(serve_service *h) {
    if (!h) return;
    if (h->daemon) MHD_stop_daemon(h->daemon);     /* waits for the connection threads */
    serve_server_free(h->srv);
    serve_metrics_free(h->metrics);
    free(h);
}

void serve_get_info(const serve_service *h, serve_info *info) {
    serve_stats st;
    serve_get_stats(h->srv, &st);
    *info = (serve_info){ .port = h->port, .ipv6 = h->ipv6, .config = st.config, .family = st.family,
                          .image_size = st.image_size,
                          .cache_slots = st.cache_slots, .cache_bytes_per_image = st.cache_bytes_per_image,
                          .workers = st.workers, .threads = st.threads, .queue_cap = st.queue_cap };
}
