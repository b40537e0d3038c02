/* tools/cmd_serve.c: `samc serve`: the command line of the HTTP service in serve/ (its
 * --help, its flags into a serve_config), and the process around it: signals, the start
 * line, a clean stop on SIGINT / SIGTERM. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

void cmd_serve_help(FILE *f) {
    fprintf(f,
"usage: samc serve --model FILE [options]\n"
"\n"
"Serves SAM2.1 or SAM3 over HTTP/1.1: upload an image once (it is encoded and cached),\n"
"then ask for masks from clicks and boxes (SAM2.1: predict) or for every instance of a\n"
"concept (SAM3: find, a text and / or exemplar boxes) as often as you like; run\n"
"automatic mask generation (SAM2.1) or mosaics (SAM3: of \"text\" classes) on files of a\n"
"data folder as background jobs. A click-to-segment page (with a text box for SAM3) is\n"
"served at /.\n"
"Endpoints and curl examples: docs/api.md.\n"
"\n"
"network:\n"
"  --host ADDR          address to listen on (default 127.0.0.1: this machine only;\n"
"                       0.0.0.0 or :: for every interface)\n"
"  --port N             TCP port (default 8080; 0 picks a free one, printed at start)\n"
"  --token T            require 'Authorization: Bearer T' on /v1/* and /metrics (the\n"
"                       page and /healthz stay open); also SAMC_SERVE_TOKEN\n"
"  --max-connections N  connections served at once (default 64)\n"
"work:\n"
"  --model FILE         weights (.safetensors or official .pt): SAM2.1 or SAM3\n"
"  --vocab FILE         SAM3: the CLIP vocabulary bpe_simple_vocab_16e6.txt.gz when the\n"
"                       weights carry none (also SAMC_VOCAB); without either, find takes\n"
"                       exemplar boxes only\n"
"  --workers N          inference threads, one model each (default 1)\n"
"  --threads N          CPU threads per model (default: cores / workers)\n"
"  --queue N            tasks waiting for a worker before 429 (default 16)\n"
"  --timeout S          seconds a request may take before it is answered 504 (default 60)\n"
"  --job-timeout S      seconds a job may take before it is stopped (default 3600)\n"
"  --cache-mb N         memory for cached image embeddings, allocated at start; least\n"
"                       recently used images are dropped first (default 256)\n"
"  --max-jobs N         job records kept; the oldest finished ones are reused (default 256)\n"
"  --data-dir DIR       folder that jobs may read images from and write results to;\n"
"                       without it jobs are refused\n"
"limits:\n"
"  --max-body-mb N      largest request body (default 32)\n"
"  --max-pixels N       largest image in pixels (default 67108864 = 8192 x 8192)\n"
"  --device D           cpu (default), cuda, or auto: CUDA when a GPU is usable, else\n"
"                       the CPU with a notice on stderr (or SAMC_DEVICE)\n"
"  --precision P        fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+): the\n"
"                       matrix products in 16 bits with fp32 accumulation (or\n"
"                       SAMC_PRECISION); bf16 also on a CPU with Intel AMX (Xeon 4th\n"
"                       generation or later)\n"
"  --backend B          auto (default), ref, fast, cuda (or SAMC_BACKEND)\n"
"  --verbose            trace model stages and requests on stderr\n"
"\n"
"Stops cleanly on SIGINT / SIGTERM.\n"
"\n"
"examples:\n"
"  samc serve --model sam2.1_hiera_tiny.safetensors            # then open http://127.0.0.1:8080/\n"
"  samc serve --model tiny.safetensors --port 9000 --workers 2 --data-dir /srv/images\n"
"  samc serve --model sam3.safetensors --data-dir /srv/ortho     # find \"roof\" on the page\n");
}

/* The flags of serve_config. Returns 1 when a flag was one of them (0 not, -1 bad value,
 * error printed). */
static int config_flag(cli_args *a, const char *arg, serve_config *c) {
    long n;
    int rc = 0;
    if (!strcmp(arg, "--model")) {
        rc = (c->model = cli_value(a)) ? 0 : -1;
    } else if (!strcmp(arg, "--vocab")) {
        rc = (c->vocab = cli_value(a)) ? 0 : -1;
    } else if (!strcmp(arg, "--host")) {
        rc = (c->host = cli_value(a)) ? 0 : -1;
    } else if (!strcmp(arg, "--port")) {
        rc = cli_value_long(a, 0, 65535, &n);
        c->port = (int)n;
    } else if (!strcmp(arg, "--token")) {
        if (!(c->token = cli_value(a))) return -1;
        if (!*c->token) { cli_error("--token", "empty token"); return -1; }
    } else if (!strcmp(arg, "--data-dir")) {
        rc = (c->data_dir = cli_value(a)) ? 0 : -1;
    } else if (!strcmp(arg, "--workers")) {
        rc = cli_value_long(a, 1, 256, &n);
        c->workers = (int)n;
    } else if (!strcmp(arg, "--threads")) {
        rc = cli_value_long(a, 1, 4096, &n);
        c->threads = (int)n;
    } else if (!strcmp(arg, "--queue")) {
        rc = cli_value_long(a, 1, 100000, &n);
        c->queue_cap = (int)n;
    } else if (!strcmp(arg, "--max-jobs")) {
        rc = cli_value_long(a, 1, 100000, &n);
        c->max_jobs = (int)n;
    } else if (!strcmp(arg, "--max-connections")) {
        rc = cli_value_long(a, 1, 10000, &n);
        c->max_connections = (int)n;
    } else if (!strcmp(arg, "--cache-mb")) {
        rc = cli_value_long(a, 1, 1L << 20, &c->cache_mb);
    } else if (!strcmp(arg, "--max-body-mb")) {
        rc = cli_value_long(a, 1, 4096, &n);
        c->max_body = (size_t)n << 20;
    } else if (!strcmp(arg, "--max-pixels")) {
        rc = cli_value_long(a, 1, 1L << 31, &n);
        c->max_pixels = n;
    } else if (!strcmp(arg, "--timeout")) {
        rc = cli_value_double(a, 0.001, 1e6, 0, &c->timeout_s);
    } else if (!strcmp(arg, "--job-timeout")) {
        rc = cli_value_double(a, 0.001, 1e7, 0, &c->job_timeout_s);
    } else {
        return 0;
    }
    return rc == 0 ? 1 : -1;
}

static int parse_args(int argc, char **argv, serve_config *c) {
    cli_args a;
    cli_args_init(&a, argc, argv, "serve");
    cli_compute compute;
    if (cli_compute_init(&compute) != 0) return -1;
    if (cli_debug_env()) c->log = cli_log_stderr;
    const char *arg;
    while ((arg = cli_next(&a)) != NULL) {
        int rc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_serve_help(stdout);
            return 1;
        } else if ((rc = config_flag(&a, arg, c)) != 0 || (rc = cli_compute_flag(&a, arg, &compute)) != 0) {
            if (rc < 0) return -1;
        } else if (!strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            if (cli_no_value(&a) != 0) return -1;
            c->log = cli_log_stderr;
        } else {
            return cli_refuse(&a, arg);
        }
    }
    if (!c->model) return cli_missing(&a, "--model FILE");
    char why[300];
    if (serve_check_host(c->host, why, sizeof why) != 0) {
        cli_error("--host", "%s", why);
        return -1;
    }
    samc_options opt = { 0 };
    if (cli_compute_resolve(&compute, &opt) != 0) return -1;
    c->backend = opt.backend;
    c->precision = opt.precision;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_config cfg;
    serve_config_default(&cfg);
    const char *env_token = getenv("SAMC_SERVE_TOKEN");
    if (env_token && *env_token) cfg.token = env_token;
    const char *env_vocab = getenv("SAMC_VOCAB");
    if (env_vocab && *env_vocab) cfg.vocab = env_vocab;
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0) return rc > 0 ? CLI_OK : CLI_USAGE;
    /* Connection threads come and go; few malloc arenas keep their freed memory reusable
     * instead of spreading it over one arena per thread ever seen. */
    mallopt(M_ARENA_MAX, 2 + cfg.workers);
    /* SIGINT / SIGTERM are taken by sigwait below, in no other thread (the service's
     * threads inherit this mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    samc_error err = { 0 };
    serve_service *svc = serve_start(&cfg, &err);
    if (!svc) {
        cli_lib_error("serve", &err);
        return CLI_FAIL;
    }
    serve_info in;
    serve_get_info(svc, &in);
    printf("samc serve: listening on http://%s%s%s:%d/ (model %s%s, %d worker%s, %d cached images of %.1f MiB, "
           "queue %d, timeout %g s%s)\n", in.ipv6 ? "[" : "", cfg.host, in.ipv6 ? "]" : "", in.port, in.config,
           in.family == SAMC_FAMILY_SAM3 ? " (SAM3)" : "", in.workers, in.workers == 1 ? "" : "s", in.cache_slots, in.cache_bytes_per_image / 1048576.0, in.queue_cap,
           cfg.timeout_s, cfg.token ? ", token required" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    printf("samc serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    serve_stop(svc);
    return CLI_OK;
}
