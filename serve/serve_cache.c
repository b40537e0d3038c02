/* serve/serve_cache.c: the cache of encoded images of `samc serve`: its slots (planned at
 * start from --cache-mb), uploads decoded within the server's limits and encoded into a
 * free or least recently used slot, lookups by id for predicts (which pin their slot),
 * and deletion. */
#include "serve/serve_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

#include "util/image_io.h"

int serve_cache_init(serve_server *s, samc_error *err) {
    /* An encoded image is the embedding [C][S/16]^2 plus the high-res features
     * [C/8][S/4]^2 and [C/4][S/8]^2 in float32 (model/sam2.c samc_image_new). */
    size_t S = (size_t)s->info.image_size, C = (size_t)s->info.d_model;
    s->image_bytes = sizeof(float) * (C * (S / 16) * (S / 16) + C / 8 * (S / 4) * (S / 4) + C / 4 * (S / 8) * (S / 8));
    size_t n = (size_t)s->cfg.cache_mb * 1024 * 1024 / s->image_bytes;
    s->n_slots = n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    if (!s->slots) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d cache slots", s->n_slots);
    for (int i = 0; i < s->n_slots; i++)
        if (!(s->slots[i].img = samc_image_new(s->workers[0].model, err))) return -1;
    return 0;
}

void serve_cache_free(serve_server *s) {
    for (int i = 0; s->slots && i < s->n_slots; i++) samc_image_free(s->slots[i].img);
    free(s->slots);
    s->slots = NULL;
}

/* Called with mu held. */
static serve_slot *slot_find(serve_server *s, const char *id) {
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_READY && !strcmp(s->slots[i].id, id)) return &s->slots[i];
    return NULL;
}

/* A slot to encode into: a free one, else the least recently used one nobody is
 * reading; NULL when every slot is in use. Marked WRITING (not findable). mu held. */
static serve_slot *slot_take(serve_server *s) {
    serve_slot *slot = NULL;
    for (int i = 0; i < s->n_slots && !slot; i++)
        if (s->slots[i].state == SLOT_FREE) slot = &s->slots[i];
    for (int i = 0; i < s->n_slots && !slot; i++) {
        serve_slot *c = &s->slots[i];
        if (c->state == SLOT_READY && c->pins == 0) {
            serve_slot *lru = c;
            for (int j = i + 1; j < s->n_slots; j++)
                if (s->slots[j].state == SLOT_READY && s->slots[j].pins == 0 && s->slots[j].last_used < lru->last_used)
                    lru = &s->slots[j];
            slot = lru;
        }
    }
    if (slot) {
        slot->state = SLOT_WRITING;
        slot->id[0] = '\0';
    }
    return slot;
}

/* Decodes an uploaded image within the server's limits; the header is checked before
 * anything is allocated. Answers 4xx in t on failure. */
static uint8_t *decode_upload(serve_server *s, serve_task *t, int *w, int *h) {
    const serve_config *c = &s->cfg;
    int64_t pw = 0, ph = 0;
    if (t->body_len > INT_MAX) {
        serve_task_fail(t, 413, "image of %zu bytes is too large", t->body_len);
        return NULL;
    }
    if (image_png_size(t->body, t->body_len, &pw, &ph) &&
        (pw <= 0 || ph <= 0 || pw > c->max_side || ph > c->max_side || pw * ph > c->max_pixels)) {
        serve_task_fail(t, 413, "PNG header claims %lldx%lld pixels; the limits are %d per side and %lld pixels",
                        (long long)pw, (long long)ph, c->max_side, (long long)c->max_pixels);
        return NULL;
    }
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(t->body, (int)t->body_len, &iw, &ih, &comp)) {
        serve_task_fail(t, 415, "not a PNG or JPEG image (%zu bytes; stb_image: %s)", t->body_len,
                        stbi_failure_reason());
        return NULL;
    }
    if (iw <= 0 || ih <= 0 || iw > c->max_side || ih > c->max_side || (int64_t)iw * ih > c->max_pixels) {
        serve_task_fail(t, 413, "image header claims %dx%d pixels; the limits are %d per side and %lld pixels", iw,
                        ih, c->max_side, (long long)c->max_pixels);
        return NULL;
    }
    int dw = 0, dh = 0, dc = 0;
    uint8_t *rgb = stbi_load_from_memory(t->body, (int)t->body_len, &dw, &dh, &dc, 3);
    if (!rgb) {
        serve_task_fail(t, 400, "cannot decode the %dx%d image (truncated or corrupt; stb_image: %s)", iw, ih,
                        stbi_failure_reason());
        return NULL;
    }
    if (dw != iw || dh != ih) {
        stbi_image_free(rgb);
        serve_task_fail(t, 400, "decoded size %dx%d differs from the header's %dx%d", dw, dh, iw, ih);
        return NULL;
    }
    *w = dw;
    *h = dh;
    return rgb;
}

serve_task *serve_encode_task(uint8_t *body, size_t len, double deadline_ms) {
    serve_task *t = calloc(1, sizeof *t);
    if (!t) {
        free(body);
        return NULL;
    }
    t->kind = TASK_ENCODE;
    t->body = body;
    t->body_len = len;
    t->deadline_ms = deadline_ms;
    return t;
}

void serve_run_encode(serve_worker *wk, serve_task *t) {
    serve_server *s = wk->srv;
    int w = 0, h = 0;
    uint8_t *rgb = decode_upload(s, t, &w, &h);
    free(t->body);          /* the file is not needed once decoded */
    t->body = NULL;
    if (!rgb) return;
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = slot_take(s);
    pthread_mutex_unlock(&s->mu);
    if (!slot) {
        stbi_image_free(rgb);
        serve_task_fail(t, 503, "image cache full: all %d cached images are in use (raise --cache-mb)", s->n_slots);
        return;
    }
    samc_error err = { 0 };
    int rc = samc_image_encode(wk->model, slot->img, rgb, w, h, &err);
    stbi_image_free(rgb);
    pthread_mutex_lock(&s->mu);
    if (rc != 0 || t->abandoned) {
        /* an abandoned upload was already answered 504: nobody will ever use this id */
        slot->state = SLOT_FREE;
        if (t->abandoned) s->discarded++;
    } else {
        serve_new_id(slot->id);
        slot->w = w;
        slot->h = h;
        slot->last_used = ++s->tick;
        slot->state = SLOT_READY;
    }
    char id[SERVE_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", slot->id);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        serve_task_fail(t, err.status == SAMC_ERR_ARG ? 400 : 500, "encode: %s", err.msg);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", h);
    t->response = serve_json_take(o);
    t->status = t->response ? 201 : 500;
}

serve_task *serve_predict_task(serve_server *s, const char *id, int find, const char *body, size_t len,
                               double deadline_ms, int *status, char **response) {
    if (find != (s->info.family == SAMC_FAMILY_SAM3)) {
        *status = 400;
        *response = serve_error_json(find ? "the loaded model (%s) is SAM2.1: find needs SAM3 weights; use predict "
                                            "for points and boxes"
                                          : "the loaded model (%s) is SAM3: use POST /v1/images/{id}/find with a "
                                            "\"text\" and / or exemplar \"boxes\"; predict needs SAM2.1 weights",
                                     s->info.config);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = slot_find(s, id);
    int w = 0, h = 0;
    if (slot) {
        slot->pins++;              /* kept from eviction until the task is freed */
        slot->last_used = ++s->tick;
        w = slot->w;
        h = slot->h;
    }
    pthread_mutex_unlock(&s->mu);
    if (!slot) {
        *status = 404;
        *response = serve_error_json("no image with id '%s' (never uploaded, deleted or evicted from the cache)", id);
        return NULL;
    }
    serve_task *t = calloc(1, sizeof *t);
    char why[300];
    int bad = !t || (find ? serve_parse_find(body, len, w, h, &t->find, why, sizeof why)
                          : serve_parse_predict(body, len, w, h, s->info.image_size / 4, &t->req, why, sizeof why));
    if (bad) {
        *status = t ? 400 : 500;
        *response = t ? serve_error_json("%s", why) : serve_error_json("out of memory");
        pthread_mutex_lock(&s->mu);
        slot->pins--;
        pthread_mutex_unlock(&s->mu);
        if (t) serve_predict_req_free(&t->req);
        if (t) serve_find_req_free(&t->find);
        free(t);
        return NULL;
    }
    t->kind = find ? TASK_FIND : TASK_PREDICT;
    t->slot = slot;
    t->deadline_ms = deadline_ms;
    return t;
}

int serve_image_delete(serve_server *s, const char *id, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = slot_find(s, id);
    int status = 204;
    if (!slot) status = 404;
    else if (slot->pins) status = 409;
    else {
        slot->state = SLOT_FREE;
        slot->id[0] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
    *response = status == 404 ? serve_error_json("no image with id '%s'", id)
              : status == 409 ? serve_error_json("image '%s' is in use by a running predict", id) : NULL;
    return status;
}
