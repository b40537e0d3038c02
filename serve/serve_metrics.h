/* serve/serve_metrics.h: what `samc serve` counts about its HTTP traffic (requests by
 * route and status, latency histograms, bytes, open connections) and the two texts built
 * from it and from the work side's numbers: GET /metrics (Prometheus text format 0.0.4)
 * and GET /healthz (JSON). */
#ifndef SAMC_SERVE_METRICS_H
#define SAMC_SERVE_METRICS_H
#include <stddef.h>

#include "serve/serve_parse.h"
#include "serve/serve_work.h"

typedef struct serve_metrics serve_metrics;

/* started_ms: the service's start (util/clock.h), for the uptime. NULL when out of memory. */
serve_metrics *serve_metrics_new(double started_ms);
void serve_metrics_free(serve_metrics *m);

/* One answered request: its route, status, arrival time (util/clock.h) and body size. */
void serve_metrics_request(serve_metrics *m, serve_route_kind route, int status, double t0_ms, size_t out_bytes);
void serve_metrics_bytes_in(serve_metrics *m, size_t n);
void serve_metrics_connections(serve_metrics *m, int delta);

/* "page", "predict", ...: the route label of the metrics and the request trace. */
const char *serve_route_name(serve_route_kind route);

/* Malloc'ed texts (NULL when out of memory). */
char *serve_metrics_text(serve_metrics *m, serve_server *srv);
char *serve_healthz_json(serve_server *srv);

#endif
