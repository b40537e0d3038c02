/* serve/serve_task.c: the answers of `samc serve`'s tasks and the ids it hands out:
 * {"error": ...} bodies, a task's failure, cJSON to text, random ids. Used by every other
 * file of the work side; uses none of them. */
#include "serve/serve_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static char *vjson_error(const char *fmt, va_list ap) {
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    return serve_json_take(o);
}

char *serve_error_json(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *t = vjson_error(fmt, ap);
    va_end(ap);
    return t;
}

void serve_task_fail(serve_task *t, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(t->response);
    t->response = vjson_error(fmt, ap);
    va_end(ap);
    t->status = status;
}

char *serve_json_take(cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* 16 hex digits from the kernel's random source: ids are not guessable, so one client
 * cannot reach another's images by counting. */
void serve_new_id(char out[SERVE_ID_LEN + 1]) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)out;
    }
    snprintf(out, SERVE_ID_LEN + 1, "%016llx", (unsigned long long)v);
}
