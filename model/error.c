/* model/error.c: filling a samc_error, shared by every library file. */
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
