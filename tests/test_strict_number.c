/* tests/test_strict_number.c: util/strict_number.c, the one parser of numbers given as
 * text: garbage, trailing characters, empty, inf / nan, overflow and the range edges. */
#include <float.h>

#include "tests/test.h"
#include "util/strict_number.h"

static void test_double_accepts(void) {
    double v = 0;
    CHECK(strict_double("1.5", &v) == 0 && v == 1.5);
    CHECK(strict_double("-2", &v) == 0 && v == -2.0);
    CHECK(strict_double("+3", &v) == 0 && v == 3.0);
    CHECK(strict_double("1e3", &v) == 0 && v == 1000.0);
    CHECK(strict_double(".25", &v) == 0 && v == 0.25);
    CHECK(strict_double("0x10", &v) == 0 && v == 16.0);
    CHECK(strict_double("1.7976931348623157e308", &v) == 0 && v == DBL_MAX);
}

static void test_double_refuses(void) {
    double v = 42;
    const char *bad[] = { NULL, "", " ", "x", "1.5x", "1.5 ", " 1.5", "\t1", "\n1", "1,5", "--1", "1e", "e3",
                          "inf", "-inf", "INF", "infinity", "nan", "NaN", "nan(1)", "1e999", "-1e999", "1e-400",
                          "0x", "1..2", "٣" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(strict_double(bad[i], &v) != 0, "'%s' was accepted", bad[i] ? bad[i] : "(null)");
        CHECKF(v == 42, "'%s' changed the output to %g", bad[i] ? bad[i] : "(null)", v);
    }
}

static void test_range_edges(void) {
    double v = 0;
    char why[128];
    CHECK(strict_number(NULL, "0", 0, 1, STRICT_REAL, &v, why, sizeof why) == 0 && v == 0);
    CHECK(strict_number(NULL, "1", 0, 1, STRICT_REAL, &v, why, sizeof why) == 0 && v == 1);
    CHECK(strict_number(NULL, "-0.000001", 0, 1, STRICT_REAL, &v, why, sizeof why) != 0);
    CHECK(strict_number(NULL, "1.000001", 0, 1, STRICT_REAL, &v, why, sizeof why) != 0);
    /* an open upper bound excludes hi itself but nothing below it */
    CHECK(strict_number(NULL, "1", 0, 1, STRICT_HI_OPEN, &v, why, sizeof why) != 0);
    CHECK(strict_number(NULL, "0.999999", 0, 1, STRICT_HI_OPEN, &v, why, sizeof why) == 0 && v == 0.999999);
    CHECK(strict_number(NULL, "0", 0, 1, STRICT_HI_OPEN, &v, why, sizeof why) == 0);
    /* integers: whole values only, in any notation strtod reads */
    CHECK(strict_number(NULL, "3", 1, 10, STRICT_INTEGER, &v, why, sizeof why) == 0 && v == 3);
    CHECK(strict_number(NULL, "3.0", 1, 10, STRICT_INTEGER, &v, why, sizeof why) == 0 && v == 3);
    CHECK(strict_number(NULL, "1e1", 1, 10, STRICT_INTEGER, &v, why, sizeof why) == 0 && v == 10);
    CHECK(strict_number(NULL, "3.5", 1, 10, STRICT_INTEGER, &v, why, sizeof why) != 0);
    CHECK(strict_number(NULL, "11", 1, 10, STRICT_INTEGER, &v, why, sizeof why) != 0);
    CHECK(strict_number(NULL, "0", 1, 10, STRICT_INTEGER, &v, why, sizeof why) != 0);
    CHECK(strict_number(NULL, "1e400", 1, 10, STRICT_INTEGER, &v, why, sizeof why) != 0);
    /* a failure leaves the output alone */
    v = 7;
    CHECK(strict_number(NULL, "nan", -1e308, 1e308, STRICT_REAL, &v, why, sizeof why) != 0 && v == 7);
    CHECK(strict_number(NULL, "inf", -INFINITY, INFINITY, STRICT_REAL, &v, why, sizeof why) != 0 && v == 7);
}

static void test_messages(void) {
    double v;
    char why[128];
    CHECK(strict_number("--pred-iou-thresh", "0.5x", 0, 1, STRICT_REAL, &v, why, sizeof why) != 0);
    CHECKF(!strcmp(why, "--pred-iou-thresh: '0.5x' is not a number in [0, 1]"), "got \"%s\"", why);
    CHECK(strict_number(NULL, "1", 0, 1, STRICT_HI_OPEN, &v, why, sizeof why) != 0);
    CHECKF(!strcmp(why, "'1' is not a number in [0, 1)"), "got \"%s\"", why);
    CHECK(strict_number("tile_size", "2.5", 1, 2147483648.0, STRICT_INTEGER, &v, why, sizeof why) != 0);
    CHECKF(!strcmp(why, "tile_size: '2.5' is not an integer in [1, 2147483648]"), "got \"%s\"", why);
    CHECK(strict_number("x", NULL, 0, 1, STRICT_REAL, &v, why, sizeof why) != 0);
    CHECKF(!strcmp(why, "x: '' is not a number in [0, 1]"), "got \"%s\"", why);
    /* no room, or no buffer at all, is not an error of its own */
    char tiny[8];
    CHECK(strict_number("--long-flag-name", "abc", 0, 1, STRICT_REAL, &v, tiny, sizeof tiny) != 0);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    CHECK(strict_number("--flag", "abc", 0, 1, STRICT_REAL, &v, NULL, 0) != 0);
}

TEST_MAIN(TEST_CASE(test_double_accepts), TEST_CASE(test_double_refuses), TEST_CASE(test_range_edges),
          TEST_CASE(test_messages))
