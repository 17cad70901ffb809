/*
 * check_utf8.c - unit tests for lib/utf8: 8-bit detection and UTF-8
 * well-formedness (RFC 3629), which decide whether an address or header
 * needs SMTPUTF8 and whether it may have it.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static Suite	*utf8_suite(void);

START_TEST(test_has_8bit)
{
	ck_assert_int_eq(utf8_has_8bit("user@example.com"), 0);
	ck_assert_int_eq(utf8_has_8bit(""), 0);
	ck_assert_int_eq(utf8_has_8bit("jos\xc3\xa9@example.com"), 1);
	ck_assert_int_eq(utf8_has_8bit("\xff"), 1);
}
END_TEST

START_TEST(test_valid)
{
	static const char *good[] = { "", "ascii", "caf\xc3\xa9",
	    "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf" };
	static const char *bad[] = {
		"\xc0\xaf",		/* overlong "/" */
		"\xe0\x80\xaf",		/* overlong, 3 bytes */
		"\xed\xa0\x80",		/* a surrogate */
		"\xf4\x90\x80\x80",	/* past U+10FFFF */
		"\xc3",			/* cut short */
		"\xe2\x82",		/* cut short */
		"\x80",			/* a lone continuation */
		"\xff",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(utf8_valid(good[i], strlen(good[i])),
		    "refused good %zu", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!utf8_valid(bad[i], strlen(bad[i])),
		    "accepted bad %zu", i);
}
END_TEST

static Suite *
utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_has_8bit);
	tcase_add_test(tc, test_valid);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
