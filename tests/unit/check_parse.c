/*
 * check_parse.c - unit tests for lib/parse: integers with ranges and
 * trailing characters, durations and sizes with their overflow limits.
 */
#include <stdint.h>
#include <stdlib.h>

#include <check.h>

#include "parse.h"

static Suite	*parse_suite(void);
static void	 u64_bad(const char *, uint64_t, uint64_t);
static void	 i64_bad(const char *, int64_t, int64_t);
static int64_t	 dur_ok(const char *);
static uint64_t	 size_ok(const char *);

/* Checks that s is rejected and the output is left alone. */
static void
u64_bad(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 777;

	ck_assert_msg(parse_u64(s, min, max, &v) == -1,
	    "parse_u64 accepted \"%s\"", s ? s : "(null)");
	ck_assert_uint_eq(v, 777);
}

static void
i64_bad(const char *s, int64_t min, int64_t max)
{
	int64_t v = 777;

	ck_assert_msg(parse_i64(s, min, max, &v) == -1,
	    "parse_i64 accepted \"%s\"", s ? s : "(null)");
	ck_assert_int_eq(v, 777);
}

static int64_t
dur_ok(const char *s)
{
	int64_t v = -1;

	ck_assert_msg(parse_duration(s, &v) == 0,
	    "parse_duration rejected \"%s\"", s);
	return v;
}

static uint64_t
size_ok(const char *s)
{
	uint64_t v = 0;

	ck_assert_msg(parse_size(s, &v) == 0, "parse_size rejected \"%s\"", s);
	return v;
}

START_TEST(test_u64_ok)
{
	uint64_t v;

	ck_assert_int_eq(parse_u64("0", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(parse_u64("42", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(parse_u64("007", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(parse_u64("18446744073709551615", 0, UINT64_MAX,
	    &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	/* Inclusive range bounds. */
	ck_assert_int_eq(parse_u64("10", 10, 20, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(parse_u64("20", 10, 20, &v), 0);
	ck_assert_uint_eq(v, 20);
}
END_TEST

START_TEST(test_u64_bad)
{
	u64_bad(NULL, 0, UINT64_MAX);
	u64_bad("", 0, UINT64_MAX);
	u64_bad(" 1", 0, UINT64_MAX);
	u64_bad("1 ", 0, UINT64_MAX);
	u64_bad("+1", 0, UINT64_MAX);
	u64_bad("-1", 0, UINT64_MAX);	/* strtoull would wrap this */
	u64_bad("-0", 0, UINT64_MAX);
	u64_bad("1x", 0, UINT64_MAX);
	u64_bad("0x10", 0, UINT64_MAX);
	u64_bad("1.0", 0, UINT64_MAX);
	u64_bad("1\n", 0, UINT64_MAX);
	u64_bad("abc", 0, UINT64_MAX);
	/* Overflow. */
	u64_bad("18446744073709551616", 0, UINT64_MAX);
	u64_bad("99999999999999999999999999", 0, UINT64_MAX);
	/* Range. */
	u64_bad("9", 10, 20);
	u64_bad("21", 10, 20);
	u64_bad("0", 1, UINT64_MAX);
	u64_bad("65536", 0, 65535);
}
END_TEST

START_TEST(test_i64_ok)
{
	int64_t v;

	ck_assert_int_eq(parse_i64("0", INT64_MIN, INT64_MAX, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(parse_i64("-0", INT64_MIN, INT64_MAX, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(parse_i64("-17", INT64_MIN, INT64_MAX, &v), 0);
	ck_assert_int_eq(v, -17);
	ck_assert_int_eq(parse_i64("9223372036854775807", INT64_MIN,
	    INT64_MAX, &v), 0);
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert_int_eq(parse_i64("-9223372036854775808", INT64_MIN,
	    INT64_MAX, &v), 0);
	ck_assert_int_eq(v, INT64_MIN);
	ck_assert_int_eq(parse_i64("-5", -5, 5, &v), 0);
	ck_assert_int_eq(v, -5);
	ck_assert_int_eq(parse_i64("5", -5, 5, &v), 0);
	ck_assert_int_eq(v, 5);
}
END_TEST

START_TEST(test_i64_bad)
{
	i64_bad(NULL, INT64_MIN, INT64_MAX);
	i64_bad("", INT64_MIN, INT64_MAX);
	i64_bad("-", INT64_MIN, INT64_MAX);
	i64_bad("--1", INT64_MIN, INT64_MAX);
	i64_bad("- 1", INT64_MIN, INT64_MAX);
	i64_bad("+1", INT64_MIN, INT64_MAX);
	i64_bad(" -1", INT64_MIN, INT64_MAX);
	i64_bad("-1 ", INT64_MIN, INT64_MAX);
	i64_bad("12a", INT64_MIN, INT64_MAX);
	i64_bad("9223372036854775808", INT64_MIN, INT64_MAX);
	i64_bad("-9223372036854775809", INT64_MIN, INT64_MAX);
	i64_bad("-99999999999999999999999", INT64_MIN, INT64_MAX);
	i64_bad("-6", -5, 5);
	i64_bad("6", -5, 5);
	i64_bad("-1", 0, INT64_MAX);
}
END_TEST

START_TEST(test_duration_ok)
{
	ck_assert_int_eq(dur_ok("0"), 0);
	ck_assert_int_eq(dur_ok("90"), 90);
	ck_assert_int_eq(dur_ok("90s"), 90);
	ck_assert_int_eq(dur_ok("5m"), 300);
	ck_assert_int_eq(dur_ok("1h"), 3600);
	ck_assert_int_eq(dur_ok("5d"), 5 * 86400);
	ck_assert_int_eq(dur_ok("2w"), 2 * 604800);
	ck_assert_int_eq(dur_ok("0m"), 0);
	/* The largest values that fit. */
	ck_assert_int_eq(dur_ok("9223372036854775807"), INT64_MAX);
	ck_assert_int_eq(dur_ok("15250284452471w"),
	    (int64_t)15250284452471 * 604800);
}
END_TEST

START_TEST(test_duration_bad)
{
	static const char *bad[] = {
		"", "s", "m", "5x", "5ms", "5 m", " 5m", "5m ", "-5s", "+5s",
		"1.5h", "5mm", "h1", "5\n",
		/* Overflow of int64_t seconds, and of the multiplication. */
		"9223372036854775808", "15250284452472w",
		"99999999999999999999", "18446744073709551615s",
		"18446744073709551615d",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = 777;

		ck_assert_msg(parse_duration(bad[i], &v) == -1,
		    "parse_duration accepted \"%s\"", bad[i]);
		ck_assert_int_eq(v, 777);
	}
	ck_assert_int_eq(parse_duration(NULL, &(int64_t){ 0 }), -1);
}
END_TEST

/* Written in the largest exact unit, and read back the same. */
START_TEST(test_duration_format)
{
	static const struct { int64_t s; const char *text; } cases[] = {
		{ 0, "0s" }, { 45, "45s" }, { 60, "1m" }, { 90, "90s" },
		{ 1800, "30m" }, { 3600, "1h" }, { 5400, "90m" },
		{ 3601, "3601s" }, { 86400, "1d" }, { 604800, "7d" },
		{ 90000, "25h" }, { -5, "0s" },
	};
	char buf[32];
	int64_t back;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_duration_format(cases[i].s, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].text);
		ck_assert_int_eq(parse_duration(buf, &back), 0);
		ck_assert_int_eq(back, cases[i].s < 0 ? 0 : cases[i].s);
	}
	/* Truncated as snprintf truncates. */
	parse_duration_format(1800, buf, 3);
	ck_assert_str_eq(buf, "30");
}
END_TEST

START_TEST(test_size_ok)
{
	ck_assert_uint_eq(size_ok("0"), 0);
	ck_assert_uint_eq(size_ok("10485760"), 10485760);
	ck_assert_uint_eq(size_ok("512k"), 512 * 1024);
	ck_assert_uint_eq(size_ok("10m"), 10 * 1024 * 1024);
	ck_assert_uint_eq(size_ok("1g"), 1024ULL * 1024 * 1024);
	ck_assert_uint_eq(size_ok("18446744073709551615"), UINT64_MAX);
	/* The largest multiples that fit in 64 bits. */
	ck_assert_uint_eq(size_ok("17179869183g"),
	    17179869183ULL * 1024 * 1024 * 1024);
	ck_assert_uint_eq(size_ok("18014398509481983k"),
	    18014398509481983ULL * 1024);
}
END_TEST

START_TEST(test_size_bad)
{
	static const char *bad[] = {
		"", "k", "1t", "1kb", "1 k", " 1k", "1k ", "-1k", "+1k",
		"1.5m", "0x10", "1s",
		/* Overflow: 2^64 in each unit, and past strtoull. */
		"17179869184g", "18014398509481984k", "17592186044416m",
		"18446744073709551616", "99999999999999999999g",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 777;

		ck_assert_msg(parse_size(bad[i], &v) == -1,
		    "parse_size accepted \"%s\"", bad[i]);
		ck_assert_uint_eq(v, 777);
	}
	ck_assert_int_eq(parse_size(NULL, &(uint64_t){ 0 }), -1);
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("parse");
	tc = tcase_create("numbers");
	tcase_add_test(tc, test_u64_ok);
	tcase_add_test(tc, test_u64_bad);
	tcase_add_test(tc, test_i64_ok);
	tcase_add_test(tc, test_i64_bad);
	suite_add_tcase(s, tc);
	tc = tcase_create("units");
	tcase_add_test(tc, test_duration_ok);
	tcase_add_test(tc, test_duration_bad);
	tcase_add_test(tc, test_duration_format);
	tcase_add_test(tc, test_size_ok);
	tcase_add_test(tc, test_size_bad);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(parse_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
