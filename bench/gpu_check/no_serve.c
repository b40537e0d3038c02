/* bench/gpu_check/no_serve.c: `samc serve` in a build without the HTTP service
 * (make SERVE=0, used by the GPU package: the device machine has no libmicrohttpd). */
#include <stdio.h>

#include "tools/commands.h"

void cmd_serve_help(FILE *f) {
    fprintf(f, "samc serve is not in this build (made with SERVE=0, without libmicrohttpd)\n");
}

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "samc: error: serve: not in this build (made with SERVE=0, without libmicrohttpd)\n");
    return 1;
}
