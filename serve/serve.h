/* serve/serve.h: `samc serve` as a library: an HTTP/1.1 service (libmicrohttpd) for image
 * uploads, prompted predictions and automatic-mask / mosaic jobs, plus the
 * click-to-segment page at `/`. docs/api.md describes the endpoints.
 *
 * The CLI (tools/cmd_serve.c) fills a serve_config from its flags, calls serve_start,
 * waits for a signal and calls serve_stop. Nothing here prints or exits: failures come
 * back in a samc_error, and the trace of model stages and requests goes to cfg.log.
 *
 * Inside: serve_http.c (the daemon, routing, bodies, tokens), serve_metrics.c (/metrics,
 * /healthz), serve_server.c (start, stop, the work of each task kind), serve_queue.c
 * (queue, workers), serve_task.c (answers, ids), serve_cache.c (encoded images),
 * serve_predict.c (predict answers), serve_jobs.c (jobs), serve_parse.c (request bodies
 * and routes), serve_page.c (the page). */
#ifndef SAMC_SERVE_H
#define SAMC_SERVE_H
#include <stddef.h>
#include <stdint.h>

#include "model/samc.h"

typedef struct {
    const char *model;          /* weights file */
    const char *vocab;          /* SAM3: the CLIP vocabulary when the weights carry none, or NULL */
    const char *host;           /* IPv4 or IPv6 address, or "localhost" */
    const char *data_dir;       /* folder jobs read from and write to; NULL: jobs refused */
    const char *token;          /* bearer token for the /v1/ endpoints and /metrics; NULL: open */
    int port;                   /* 0: a free one (serve_port says which) */
    int workers;                /* inference threads, one model each */
    int threads;                /* CPU threads per model; 0: cores / workers */
    int queue_cap;              /* tasks waiting for a worker before 429 */
    int max_jobs;               /* job records kept */
    int max_connections;        /* connections served at once */
    double timeout_s;           /* a request's deadline */
    double job_timeout_s;       /* a job's deadline */
    long cache_mb;              /* memory for cached encoded images */
    size_t max_body;            /* bytes of a request body */
    int64_t max_pixels;         /* of an uploaded or job image */
    int max_side;
    samc_backend backend;
    samc_precision precision;
    /* model load and inference stages, and one line per answered request; NULL: none */
    samc_log_fn log;
    void *log_ctx;
} serve_config;

/* The defaults the CLI documents: 127.0.0.1:8080, 1 worker, queue 16, 256 jobs, 64
 * connections, timeouts 60 s / 3600 s, 256 MB of cache, 32 MiB bodies, 2^26 pixels. */
void serve_config_default(serve_config *c);

/* Whether host is an address the service can listen on: 0, or -1 with why. */
int serve_check_host(const char *host, char *why, size_t why_size);

typedef struct serve_service serve_service;

/* Loads one model per worker, plans the cache and job table, starts the workers and
 * listens. Returns NULL with err filled on failure (bad host: SAMC_ERR_ARG). */
serve_service *serve_start(const serve_config *cfg, samc_error *err);
/* Stops listening (waiting for open connections), then the workers after their current
 * task, and frees everything. */
void serve_stop(serve_service *svc);

/* What the start line tells. */
typedef struct {
    int port;                   /* the port listened on (the one picked for port 0) */
    int ipv6;                   /* host is an IPv6 address */
    const char *config;         /* model config name */
    samc_family family;
    int image_size;
    int cache_slots;            /* encoded images the cache holds */
    size_t cache_bytes_per_image;
    int workers, threads, queue_cap;
} serve_info;
void serve_get_info(const serve_service *svc, serve_info *info);

#endif
