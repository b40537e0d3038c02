/* serve/serve_parse.h: the request parsing of `samc serve`, kept free of sockets, threads
 * and models so that tests/fuzz/fuzz_serve_request.c can drive it directly.
 *
 * Everything here validates the whole input and either fills the output and returns 0,
 * or writes a one-line reason for the client into `why` and returns -1. Nothing prints,
 * exits or keeps state. */
#ifndef SAMC_SERVE_PARSE_H
#define SAMC_SERVE_PARSE_H
#include <stddef.h>
#include <stdint.h>

#include "pipelines/amg/amg.h"
#include "pipelines/mosaic/mosaic.h"

#define SERVE_MAX_POINTS 64
#define SERVE_MAX_BOXES 64
#define SERVE_ID_LEN 16            /* image and job ids: 16 lower-case hex digits */

enum { SERVE_FMT_RLE = 0, SERVE_FMT_PNG = 1 };

/* A predict body: {"points": [[x, y], ...], "labels": [1, 0, ...], "boxes": [[x0, y0, x1,
 * y1], ...], "mask_input": "<base64 float32 LE [S/4][S/4]>", "multimask": bool,
 * "format": "rle"|"png", "return_low_res": bool}. Points are shared by every box; each
 * box is one prompt of the batch (as `samc segment`). */
typedef struct {
    float points[SERVE_MAX_POINTS][2];
    int labels[SERVE_MAX_POINTS];
    int n_points;
    float boxes[SERVE_MAX_BOXES][4];
    int n_boxes;
    int multimask;           /* resolved: given, else 1 for a lone point without box/mask */
    int format;              /* SERVE_FMT_* */
    int return_low_res;      /* answer the best mask's low-res logits for mask_input */
    float *mask_input;       /* malloc'ed [low_size][low_size] or NULL */
} serve_predict_req;

/* Parses and checks a predict body against an image of w x h pixels (prompts must lie
 * inside it) and a model whose low-res masks are low_size x low_size. req is overwritten;
 * free it with serve_predict_req_free whatever the result. */
int serve_parse_predict(const char *body, size_t len, int w, int h, int low_size,
                        serve_predict_req *req, char *why, size_t why_size);
void serve_predict_req_free(serve_predict_req *req);

/* A find body (SAM3): {"text": "roof", "boxes": [[x0, y0, x1, y1], ...], "labels": [1, 0,
 * ...], "threshold": 0.5, "max_detections": 0, "format": "rle"|"png"}: a text and / or
 * exemplar boxes (labels one per box, 1 positive, 0 negative; default all 1), as
 * `samc find`. The text is checked here only for presence and length; its tokens are
 * checked by the worker, which has the tokenizer. */
#define SERVE_MAX_TEXT 8192
typedef struct {
    char *text;              /* malloc'ed, or NULL for an exemplar-only prompt */
    float boxes[SAMC_CONCEPT_MAX_GEOMETRY][4];
    int labels[SAMC_CONCEPT_MAX_GEOMETRY];
    int n_boxes;
    double threshold;        /* keep scores > threshold (default 0.5; compared as a float) */
    int max_detections;      /* 0: all */
    int format;              /* SERVE_FMT_* */
} serve_find_req;

int serve_parse_find(const char *body, size_t len, int w, int h, serve_find_req *req, char *why, size_t why_size);
void serve_find_req_free(serve_find_req *req);

/* A job body: {"type": "everything" | "mosaic", "image": "rel/path.png", "output":
 * "rel/dir", "timeout_s": n, "options": {...}, and for a mosaic on a SAM3 model "text":
 * "roof" or ["roof", "tree"] with "threshold": 0.5 (mosaic_options.classes)}: for everything the option names of
 * amg_options ("points_per_side": 32, ...), for mosaic sam-mosaic's names ("tile_size":
 * 1000, "iou_start": 0.93, ...; see docs/api.md). Paths are checked for shape only here
 * (relative, no "..", no empty or odd components); the server resolves them against
 * --data-dir. */
typedef enum { SERVE_JOB_EVERYTHING = 0, SERVE_JOB_MOSAIC } serve_job_type;

typedef struct {
    serve_job_type type;
    char image[1024];
    char output[1024];       /* "" when not given: the server picks one */
    double timeout_s;        /* 0 when not given */
    amg_options amg;         /* everything */
    mosaic_options mosaic;   /* mosaic (only in builds with GDAL) */
} serve_job_req;

int serve_parse_job(const char *body, size_t len, serve_job_req *req, char *why, size_t why_size);

/* A relative path of plain components: not absolute, no "." or ".." component, no empty
 * component, no control characters or backslashes, at most 1000 bytes. */
int serve_check_rel_path(const char *path, char *why, size_t why_size);

/* Routes of the API. */
typedef enum {
    ROUTE_NONE = 0,          /* no such path: 404 */
    ROUTE_PAGE,              /* GET / */
    ROUTE_HEALTHZ,           /* GET /healthz */
    ROUTE_METRICS,           /* GET /metrics */
    ROUTE_IMAGES,            /* POST /v1/images */
    ROUTE_PREDICT,           /* POST /v1/images/{id}/predict */
    ROUTE_IMAGE,             /* DELETE /v1/images/{id} */
    ROUTE_JOBS,              /* POST /v1/jobs */
    ROUTE_JOB,               /* GET or DELETE /v1/jobs/{id} */
    ROUTE_FIND,              /* POST /v1/images/{id}/find */
} serve_route_kind;

typedef struct {
    serve_route_kind kind;
    int method_ok;           /* 0: the path exists but not for this method (405) */
    const char *allow;       /* the methods the path takes, for the Allow header */
    char id[SERVE_ID_LEN + 1];
    int bad_id;              /* the path has an id slot but the id is malformed (404) */
} serve_route;

void serve_parse_route(const char *method, const char *url, serve_route *r);

/* Standard base64 (RFC 4648, with padding). encode: out needs 4 * ceil(n / 3) + 1 bytes.
 * decode: whitespace is not allowed; returns the decoded length or -1. */
void serve_base64_encode(const uint8_t *in, size_t n, char *out);
long serve_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
