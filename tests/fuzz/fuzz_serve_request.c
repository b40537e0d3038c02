/* tests/fuzz/fuzz_serve_request.c: libFuzzer target for the request parsing of `samc
 * serve` (serve/serve_parse.c; build: make fuzz). The first byte picks the parser:
 *   0: a predict body, against an image whose size comes from the next four bytes
 *   1: a job body
 *   2: a route: "METHOD URL" up to the first space
 *   3: base64 decoding
 *   4: a find body (SAM3), against an image size from the next four bytes
 * and whatever a parser accepts is checked against the promises of serve_parse.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_parse.h"

static void check_predict(const serve_predict_req *r, int w, int h, int low) {
    if (r->n_points < 0 || r->n_points > SERVE_MAX_POINTS || r->n_boxes < 0 || r->n_boxes > SERVE_MAX_BOXES)
        __builtin_trap();
    if (r->n_points == 0 && r->n_boxes == 0 && !r->mask_input) __builtin_trap();
    for (int i = 0; i < r->n_points; i++) {
        float x = r->points[i][0], y = r->points[i][1];
        if (!(x >= 0 && y >= 0 && x <= (float)w && y <= (float)h)) __builtin_trap();
        if (r->labels[i] != 0 && r->labels[i] != 1) __builtin_trap();
    }
    for (int b = 0; b < r->n_boxes; b++) {
        const float *x = r->boxes[b];
        if (!(x[0] >= 0 && x[1] >= 0 && x[2] <= (float)w && x[3] <= (float)h && x[2] > x[0] && x[3] > x[1]))
            __builtin_trap();
    }
    if (r->mask_input)
        for (int i = 0; i < low * low; i++)
            if (!isfinite(r->mask_input[i])) __builtin_trap();
    if (r->format != SERVE_FMT_RLE && r->format != SERVE_FMT_PNG) __builtin_trap();
}

static void check_find(const serve_find_req *r, int w, int h) {
    if (r->n_boxes < 0 || r->n_boxes > SAMC_CONCEPT_MAX_GEOMETRY || (!r->text && r->n_boxes == 0)) __builtin_trap();
    if (r->text && (!r->text[0] || strlen(r->text) > SERVE_MAX_TEXT)) __builtin_trap();
    for (int b = 0; b < r->n_boxes; b++) {
        const float *x = r->boxes[b];
        if (!(x[0] >= 0 && x[1] >= 0 && x[2] <= (float)w && x[3] <= (float)h && x[2] > x[0] && x[3] > x[1]))
            __builtin_trap();
        if (r->labels[b] != 0 && r->labels[b] != 1) __builtin_trap();
    }
    if (!(r->threshold >= -1 && r->threshold <= 1) || r->max_detections < 0) __builtin_trap();
    if (r->format != SERVE_FMT_RLE && r->format != SERVE_FMT_PNG) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 5;
    data++;
    size--;
    char why[300];
    why[0] = '\0';
    if (mode == 4) {
        if (size < 4) return 0;
        int w = 1 + (data[0] | data[1] << 8) % 4096, h = 1 + (data[2] | data[3] << 8) % 4096;
        serve_find_req r;
        if (serve_parse_find((const char *)data + 4, size - 4, w, h, &r, why, sizeof why) == 0) check_find(&r, w, h);
        else if (!why[0] || r.text) __builtin_trap();
        serve_find_req_free(&r);
    } else if (mode == 0) {
        if (size < 4) return 0;
        int w = 1 + (data[0] | data[1] << 8) % 4096, h = 1 + (data[2] | data[3] << 8) % 4096, low = 4;
        serve_predict_req r;
        if (serve_parse_predict((const char *)data + 4, size - 4, w, h, low, &r, why, sizeof why) == 0)
            check_predict(&r, w, h, low);
        else if (!why[0] || r.mask_input)
            __builtin_trap();
        serve_predict_req_free(&r);
    } else if (mode == 1) {
        serve_job_req j;
        if (serve_parse_job((const char *)data, size, &j, why, sizeof why) == 0) {
            if (serve_check_rel_path(j.image, why, sizeof why) != 0) __builtin_trap();
            if (j.output[0] && serve_check_rel_path(j.output, why, sizeof why) != 0) __builtin_trap();
        } else if (!why[0]) {
            __builtin_trap();
        }
    } else if (mode == 2) {
        char buf[512];
        size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
        memcpy(buf, data, n);
        buf[n] = '\0';
        char *sp = strchr(buf, ' ');
        const char *method = "GET", *url = buf;
        if (sp) {
            *sp = '\0';
            method = buf;
            url = sp + 1;
        }
        serve_route r;
        serve_parse_route(method, url, &r);
        if (r.kind != ROUTE_NONE && !r.allow) __builtin_trap();
        if ((r.kind == ROUTE_PREDICT || r.kind == ROUTE_FIND || r.kind == ROUTE_JOB || r.kind == ROUTE_IMAGE) && !r.bad_id &&
            strlen(r.id) != SERVE_ID_LEN)
            __builtin_trap();
    } else {
        uint8_t *out = malloc(size + 1);
        if (!out) return 0;
        long n = serve_base64_decode((const char *)data, size, out, size + 1);
        if (n >= 0) {
            /* what decodes must encode back to something that decodes to the same bytes */
            char *enc = malloc(4 * ((size_t)n + 2) / 3 + 8);
            uint8_t *again = malloc((size_t)n + 1);
            if (enc && again) {
                serve_base64_encode(out, (size_t)n, enc);
                if (serve_base64_decode(enc, strlen(enc), again, (size_t)n + 1) != n || memcmp(out, again, (size_t)n))
                    __builtin_trap();
            }
            free(enc);
            free(again);
        }
        free(out);
    }
    return 0;
}
