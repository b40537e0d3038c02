/* util/strict_number.c: whole-string, finite, range-checked numbers (see the header). */
#include "util/strict_number.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int strict_double(const char *s, double *out) {
    /* strtod skips leading white space itself, so a value that only starts with a number
     * after spaces would pass the end check below */
    if (!s || !*s || isspace((unsigned char)s[0])) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int strict_number(const char *name, const char *s, double lo, double hi, int flags, double *out, char *why,
                  size_t why_size) {
    int integer = (flags & STRICT_INTEGER) != 0, hi_open = (flags & STRICT_HI_OPEN) != 0;
    double v;
    if (strict_double(s, &v) == 0 && v >= lo && (hi_open ? v < hi : v <= hi) && (!integer || v == floor(v))) {
        *out = v;
        return 0;
    }
    if (why && why_size) {
        /* %.0f keeps integer bounds such as 2^31 whole instead of %g's 2.14748e+09 */
        snprintf(why, why_size, integer ? "%s%s'%s' is not an integer in [%.0f, %.0f%c"
                                        : "%s%s'%s' is not a number in [%g, %g%c",
                 name ? name : "", name ? ": " : "", s ? s : "", lo, hi, hi_open ? ')' : ']');
    }
    return -1;
}
