/* model/runtime/error.c: filling a samc_error, the one error helper of the library. */
#include <stdarg.h>
#include <stdio.h>

#include "model/samc.h"

int samc_error_set(samc_error *err, samc_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return -1;
}

const char *samc_status_name(samc_status s) {
    switch (s) {
    case SAMC_OK: return "ok";
    case SAMC_ERR_IO: return "i/o error";
    case SAMC_ERR_FORMAT: return "bad file format";
    case SAMC_ERR_MODEL: return "not a supported model";
    case SAMC_ERR_ARG: return "bad argument";
    case SAMC_ERR_NOMEM: return "out of memory";
    case SAMC_ERR_UNSUPPORTED: return "unsupported";
    default: return "internal error";
    }
}
