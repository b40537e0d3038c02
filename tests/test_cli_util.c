/* tests/test_cli_util.c: the CLI's number, point, box and flag parsers (tools/cli_util.c).
 * tools/ is not part of libsamc.a, so the source is included directly. */
#include "test.h"
#include "../tools/cli_util.c"

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

static void test_check_writable(void) {
    CHECK(cli_check_writable("test", "/nonexistent-samc-dir/sub/mask") != 0);
    CHECK(cli_check_writable("test", "/tmp/samc_mask") == 0);
    CHECK(cli_check_writable("test", "relative_mask") == 0);   /* tests run in the repo */
    CHECK(cli_check_writable("test", "") != 0);
}

TEST_MAIN(TEST_CASE(test_parse_long), TEST_CASE(test_parse_float), TEST_CASE(test_parse_floats),
          TEST_CASE(test_parse_point), TEST_CASE(test_parse_box), TEST_CASE(test_inside_image),
          TEST_CASE(test_parse_backend), TEST_CASE(test_args), TEST_CASE(test_check_writable))
