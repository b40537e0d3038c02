/* tests/test_cli_util.c: the CLI's number, point, box and flag parsers (tools/cli_util.c).
 * tools/ is not part of libsamc.a, so the source is included directly. */
#include "tests/test.h"
#include "tools/cli_util.c"

static void test_parse_long(void) {
    long v = 0;
    CHECK(cli_parse_long("4", 1, 10, &v) == 0 && v == 4);
    CHECK(cli_parse_long("-3", -5, 5, &v) == 0 && v == -3);
    CHECK(cli_parse_long("0", 1, 10, &v) != 0);            /* below min */
    CHECK(cli_parse_long("11", 1, 10, &v) != 0);           /* above max */
    CHECK(cli_parse_long("4x", 1, 10, &v) != 0);
    CHECK(cli_parse_long("4.0", 1, 10, &v) != 0);
    CHECK(cli_parse_long("", 1, 10, &v) != 0);
    CHECK(cli_parse_long(" 4", 1, 10, &v) != 0);
    CHECK(cli_parse_long("+4", 1, 10, &v) != 0);
    CHECK(cli_parse_long("99999999999999999999999", 1, 10, &v) != 0);   /* overflow */
    CHECK(cli_parse_long(NULL, 1, 10, &v) != 0);
}

static void test_parse_float(void) {
    float f = 0;
    CHECK(cli_parse_float("1.5", &f) == 0 && f == 1.5f);
    CHECK(cli_parse_float("-2", &f) == 0 && f == -2.0f);
    CHECK(cli_parse_float("1e3", &f) == 0 && f == 1000.0f);
    CHECK(cli_parse_float("88.75", &f) == 0 && f == 88.75f);
    CHECK(cli_parse_float("nan", &f) != 0);
    CHECK(cli_parse_float("inf", &f) != 0);
    CHECK(cli_parse_float("1e40", &f) != 0);
    CHECK(cli_parse_float("1.5x", &f) != 0);
    CHECK(cli_parse_float("x", &f) != 0);
    CHECK(cli_parse_float("", &f) != 0);
    CHECK(cli_parse_float(" 1", &f) != 0);
}

static void test_parse_floats(void) {
    float v[4];
    int got;
    CHECK(cli_parse_floats("1,2", v, 2, &got) == 0 && got == 2 && v[0] == 1 && v[1] == 2);
    CHECK(cli_parse_floats("1,2,3", v, 2, &got) != 0);     /* too many */
    CHECK(cli_parse_floats("1", v, 2, &got) != 0);         /* too few */
    CHECK(cli_parse_floats("1,,2", v, 3, &got) != 0);
    CHECK(cli_parse_floats("1,2,", v, 3, &got) != 0);
    CHECK(cli_parse_floats(",1,2", v, 3, &got) != 0);
    CHECK(cli_parse_floats("1, 2", v, 2, &got) != 0);
}

static void test_parse_point(void) {
    cli_point p;
    char why[256];
    CHECK(cli_parse_point("10,20", &p, why, sizeof why) == 0 && p.x == 10 && p.y == 20 && p.label == 1);
    CHECK(cli_parse_point("10.5,20.25,0", &p, why, sizeof why) == 0 && p.x == 10.5f && p.label == 0);
    CHECK(cli_parse_point("10,20,1", &p, why, sizeof why) == 0 && p.label == 1);
    CHECK(cli_parse_point("10,20,2", &p, why, sizeof why) != 0 && strstr(why, "label"));
    CHECK(cli_parse_point("10,20,0.5", &p, why, sizeof why) != 0 && strstr(why, "label"));
    CHECK(cli_parse_point("1,x", &p, why, sizeof why) != 0 && strstr(why, "1,x"));
    CHECK(cli_parse_point("1", &p, why, sizeof why) != 0);
    CHECK(cli_parse_point("1,2,1,4", &p, why, sizeof why) != 0);
    CHECK(cli_parse_point("", &p, why, sizeof why) != 0);
}

static void test_parse_box(void) {
    float b[4];
    char why[256];
    CHECK(cli_parse_box("1,2,3,4", b, why, sizeof why) == 0 && b[0] == 1 && b[3] == 4);
    CHECK(cli_parse_box("3,2,1,4", b, why, sizeof why) != 0 && strstr(why, "inverted"));
    CHECK(cli_parse_box("1,4,3,2", b, why, sizeof why) != 0 && strstr(why, "inverted"));
    CHECK(cli_parse_box("1,2,1,4", b, why, sizeof why) != 0);   /* zero width */
    CHECK(cli_parse_box("1,2,3", b, why, sizeof why) != 0);
    CHECK(cli_parse_box("1,2,3,y", b, why, sizeof why) != 0);
}

static void test_inside_image(void) {
    CHECK(cli_inside_image(0, 0, 320, 240));
    CHECK(cli_inside_image(320, 240, 320, 240));   /* edges included, as samc_predict allows */
    CHECK(!cli_inside_image(-0.5f, 10, 320, 240));
    CHECK(!cli_inside_image(320.5f, 10, 320, 240));
    CHECK(!cli_inside_image(10, 240.01f, 320, 240));
}

static void test_parse_backend(void) {
    samc_backend b = SAMC_BACKEND_CUDA;
    CHECK(cli_parse_backend("auto", &b) == 0 && b == SAMC_BACKEND_AUTO);
    CHECK(cli_parse_backend("ref", &b) == 0 && b == SAMC_BACKEND_CPU_REF);
    CHECK(cli_parse_backend("fast", &b) == 0 && b == SAMC_BACKEND_CPU_FAST);
    CHECK(cli_parse_backend("gpu", &b) != 0);
    CHECK(cli_parse_backend("", &b) != 0);
}

static void test_parse_device_precision(void) {
    cli_device d = CLI_DEVICE_UNSET;
    samc_precision p = SAMC_PRECISION_FP16;
    CHECK(cli_parse_device("auto", &d) == 0 && d == CLI_DEVICE_AUTO);
    CHECK(cli_parse_device("cpu", &d) == 0 && d == CLI_DEVICE_CPU);
    CHECK(cli_parse_device("cuda", &d) == 0 && d == CLI_DEVICE_CUDA);
    CHECK(cli_parse_device("gpu", &d) != 0 && cli_parse_device("CPU", &d) != 0 && cli_parse_device("", &d) != 0);
    CHECK(cli_parse_precision("fp32", &p) == 0 && p == SAMC_PRECISION_FP32);
    CHECK(cli_parse_precision("bf16", &p) == 0 && p == SAMC_PRECISION_BF16);
    CHECK(cli_parse_precision("fp16", &p) == 0 && p == SAMC_PRECISION_FP16);
    CHECK(cli_parse_precision("f16", &p) != 0 && cli_parse_precision("fp8", &p) != 0 && cli_parse_precision(NULL, &p) != 0);
}

/* Parses argv's flags into a cli_compute (environment variables as set) and resolves it. */
static int resolve_args(int argc, char **argv, samc_options *opt) {
    cli_args a;
    cli_compute c;
    cli_args_init(&a, argc, argv, "segment");
    if (cli_compute_init(&c) != 0) return -1;
    const char *arg;
    while ((arg = cli_next(&a)) != NULL)
        if (cli_compute_flag(&a, arg, &c) != 1) return -1;
    return cli_compute_resolve(&c, opt);
}
#define RESOLVE(opt, ...) resolve_args((int)(sizeof((char *[]){ "x", __VA_ARGS__ }) / sizeof(char *)), \
                                       (char *[]){ "x", __VA_ARGS__ }, (opt))

static void test_compute_resolve(void) {
    unsetenv("SAMC_BACKEND"); unsetenv("SAMC_DEVICE"); unsetenv("SAMC_PRECISION");
    samc_options o;
    /* nothing given: the CPU backends in fp32, as before --device existed */
    o = (samc_options){ .backend = SAMC_BACKEND_CUDA };
    CHECK(resolve_args(1, (char *[]){ "x", NULL }, &o) == 0 && o.backend == SAMC_BACKEND_AUTO &&
          o.precision == SAMC_PRECISION_FP32);
    CHECK(RESOLVE(&o, "--device", "cpu") == 0 && o.backend == SAMC_BACKEND_AUTO);
    CHECK(RESOLVE(&o, "--device=cpu", "--backend", "ref") == 0 && o.backend == SAMC_BACKEND_CPU_REF);
    CHECK(RESOLVE(&o, "--device", "cuda") == 0 && o.backend == SAMC_BACKEND_CUDA);
    CHECK(RESOLVE(&o, "--device", "cuda", "--backend", "cuda", "--precision", "bf16") == 0 &&
          o.backend == SAMC_BACKEND_CUDA && o.precision == SAMC_PRECISION_BF16);
    /* the precision goes to the library, which refuses it on the CPU */
    CHECK(RESOLVE(&o, "--device", "cpu", "--precision", "fp16") == 0 && o.precision == SAMC_PRECISION_FP16);
    /* contradictions between two flags */
    CHECK(RESOLVE(&o, "--device", "cpu", "--backend", "cuda") == -1);
    CHECK(RESOLVE(&o, "--device", "cuda", "--backend", "fast") == -1);
    CHECK(RESOLVE(&o, "--device", "gpu") == -1);
    CHECK(RESOLVE(&o, "--precision", "fp64") == -1);
    /* a flag beats the environment, also when they disagree */
    setenv("SAMC_BACKEND", "cuda", 1);
    CHECK(RESOLVE(&o, "--device", "cpu") == 0 && o.backend == SAMC_BACKEND_AUTO);
    unsetenv("SAMC_BACKEND");
    setenv("SAMC_DEVICE", "cuda", 1);
    CHECK(RESOLVE(&o, "--backend", "ref") == 0 && o.backend == SAMC_BACKEND_CPU_REF);
    setenv("SAMC_BACKEND", "ref", 1);
    CHECK(RESOLVE(&o, "--precision", "fp32") == -1);              /* two variables disagree */
    unsetenv("SAMC_BACKEND");
    setenv("SAMC_PRECISION", "bf16", 1);
    CHECK(RESOLVE(&o, "--precision", "fp32") == 0 && o.backend == SAMC_BACKEND_CUDA && o.precision == SAMC_PRECISION_FP32);
    CHECK(resolve_args(1, (char *[]){ "x", NULL }, &o) == 0 && o.precision == SAMC_PRECISION_BF16);
    setenv("SAMC_DEVICE", "tpu", 1);
    CHECK(resolve_args(1, (char *[]){ "x", NULL }, &o) == -1);
    unsetenv("SAMC_DEVICE"); unsetenv("SAMC_PRECISION");
    /* auto: CUDA where samc finds a device, else the --backend CPU choice in fp32, or in
     * bf16 where the fast CPU backend has it (AMX); fp16 never on the CPU */
    char why[512], no_amx[512];
    int have_cuda = samc_cuda_device(why, sizeof why) == 0, have_amx = samc_cpu_bf16(no_amx, sizeof no_amx);
    printf("  cuda device: %s\n", have_cuda ? why : "none");
    printf("  cpu bf16: %s\n", have_amx ? "yes (AMX)" : no_amx);
    printf("  (a 'no CUDA device' notice below is expected where there is none)\n");
    CHECK(RESOLVE(&o, "--device", "auto", "--backend", "fast", "--precision", "bf16") == 0);
    CHECK(have_cuda ? o.backend == SAMC_BACKEND_CUDA && o.precision == SAMC_PRECISION_BF16
                    : o.backend == SAMC_BACKEND_CPU_FAST &&
                          o.precision == (have_amx ? SAMC_PRECISION_BF16 : SAMC_PRECISION_FP32));
    CHECK(RESOLVE(&o, "--device", "auto", "--backend", "fast", "--precision", "fp16") == 0);
    CHECK(have_cuda ? o.precision == SAMC_PRECISION_FP16 : o.precision == SAMC_PRECISION_FP32);
    CHECK(RESOLVE(&o, "--device", "auto", "--backend", "ref", "--precision", "bf16") == 0);
    CHECK(have_cuda || o.precision == SAMC_PRECISION_FP32);
    CHECK(RESOLVE(&o, "--device", "auto", "--backend", "cuda") == 0 && o.backend == SAMC_BACKEND_CUDA);
}

static void test_args(void) {
    char *argv[] = { "segment", "img.png", "--threads=4", "--point", "-1,2", "--model", "--json",
                     NULL };
    cli_args a;
    cli_args_init(&a, 7, argv, "segment");
    const char *arg = cli_next(&a);
    CHECK(arg && !strcmp(arg, "img.png") && !cli_is_flag(arg));
    arg = cli_next(&a);
    CHECK(arg && !strcmp(arg, "--threads"));
    long n = 0;
    CHECK(cli_value_long(&a, 1, 64, &n) == 0 && n == 4);
    arg = cli_next(&a);
    CHECK(arg && !strcmp(arg, "--point"));
    const char *v = cli_value(&a);                      /* a negative number is a value */
    CHECK(v && !strcmp(v, "-1,2"));
    arg = cli_next(&a);
    CHECK(arg && !strcmp(arg, "--model"));
    CHECK(cli_value(&a) == NULL);                       /* "--json" is not taken as a value */
    arg = cli_next(&a);
    CHECK(arg && !strcmp(arg, "--json") && cli_no_value(&a) == 0);
    CHECK(cli_next(&a) == NULL);
    CHECK(cli_is_flag("-h") && cli_is_flag("--x") && !cli_is_flag("-") && !cli_is_flag("-5"));
}

static void test_value_double(void) {
    char *argv[] = { "everything", "--pred-iou-thresh", "0.5", "--crop-overlap-ratio=1", "--box-nms-thresh",
                     "0.5x", "--crop-overlap-ratio", "0.25", NULL };
    cli_args a;
    cli_args_init(&a, 8, argv, "everything");
    double d = -1;
    CHECK(cli_next(&a) && cli_value_double(&a, 0, 1, 0, &d) == 0 && d == 0.5);
    d = -1;
    CHECK(cli_next(&a) && cli_value_double(&a, 0, 1, 1, &d) != 0 && d == -1);   /* 1 is not in [0, 1) */
    CHECK(cli_next(&a) && cli_value_double(&a, 0, 1, 0, &d) != 0 && d == -1);   /* trailing junk */
    CHECK(cli_next(&a) && cli_value_double(&a, 0, 1, 1, &d) == 0 && d == 0.25);
    CHECK(cli_next(&a) == NULL);
}

static void test_check_writable(void) {
    CHECK(cli_check_writable("test", "/nonexistent-samc-dir/sub/mask") != 0);
    CHECK(cli_check_writable("test", "/tmp/samc_mask") == 0);
    CHECK(cli_check_writable("test", "relative_mask") == 0);   /* tests run in the repo */
    CHECK(cli_check_writable("test", "") != 0);
}

TEST_MAIN(TEST_CASE(test_parse_long), TEST_CASE(test_parse_float), TEST_CASE(test_parse_floats),
          TEST_CASE(test_parse_point), TEST_CASE(test_parse_box), TEST_CASE(test_inside_image),
          TEST_CASE(test_parse_backend), TEST_CASE(test_parse_device_precision), TEST_CASE(test_compute_resolve),
          TEST_CASE(test_args), TEST_CASE(test_value_double), TEST_CASE(test_check_writable))
