/* util/strict_number.h: the one strict parser of numbers given as text (command-line
 * flags, config-file values). The whole string must be one finite number: no leading or
 * trailing space or junk, no "inf" or "nan", no overflow or underflow (strtod's ERANGE),
 * and, where asked, a whole number inside a range. What a user typed as "0.5x" or "1e999"
 * is refused with a message that repeats it, instead of being read as 0.5 or infinity. */
#ifndef SAMC_STRICT_NUMBER_H
#define SAMC_STRICT_NUMBER_H
#include <stddef.h>

/* The whole string s as one finite double (decimal or C99 hex, optional sign). Returns 0
 * and sets *out, or -1 (s NULL, empty, space, junk, inf, nan, out of double's range). */
int strict_double(const char *s, double *out);

enum {
    STRICT_REAL = 0,        /* any number in [lo, hi] */
    STRICT_INTEGER = 1,     /* a whole number ("3", "3.0", "3e2"), printed as such */
    STRICT_HI_OPEN = 2,     /* hi itself is excluded: [lo, hi) */
};

/* strict_double, then the range [lo, hi] (or [lo, hi) with STRICT_HI_OPEN) and, with
 * STRICT_INTEGER, no fraction. Returns 0 and sets *out, or -1 with a one-line reason in
 * why (when why is not NULL): "'<s>' is not a number in [lo, hi]" or "'<s>' is not an
 * integer in [lo, hi]", prefixed by "<name>: " when name is not NULL. */
int strict_number(const char *name, const char *s, double lo, double hi, int flags, double *out, char *why,
                  size_t why_size);

#endif
