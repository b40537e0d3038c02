/* tests/synth_tmp.h: synthetic weights in a temporary file, for the tests that load a
 * model from a path (convert/convert.h's samc_synth_write). */
#ifndef SAMC_TESTS_SYNTH_TMP_H
#define SAMC_TESTS_SYNTH_TMP_H
#include "convert/convert.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes config's weights to a new file /tmp/samc_<tag>_XXXXXX and its path into
 * out[size]. 0, or -1 (the reason on stderr, no file left behind). The caller unlinks
 * it (once its models are loaded, if it likes: the mapping outlives the name). */
static inline int test_synth_tmp(const char *config, const char *tag, char *out, size_t size) {
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "/tmp/samc_%s_XXXXXX", tag);
    int fd = mkstemp(tmpl);
    if (fd < 0) return -1;
    close(fd);
    samc_error err = { 0 };
    if (samc_synth_write(config, tmpl, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        unlink(tmpl);
        return -1;
    }
    if ((size_t)snprintf(out, size, "%s", tmpl) >= size) {
        fprintf(stderr, "  %s: path longer than the caller's %zu bytes\n", tmpl, size);
        unlink(tmpl);
        return -1;
    }
    return 0;
}
#endif
