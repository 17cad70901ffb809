/*
 * check_idna.c - unit tests for lib/idna: domains in one form (lower-case
 * A-labels) for comparing credentials' domains, the sending-domain
 * registry and DKIM's d= with SMTPUTF8 addresses.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "idna.h"

static Suite	*idna_suite(void);

START_TEST(test_ascii)
{
	char out[256];

	ck_assert_int_eq(idna_domain_ascii("Example.COM", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "example.com");
	/* An A-label stays what it is. */
	ck_assert_int_eq(idna_domain_ascii("XN--bcher-kva.example", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "xn--bcher-kva.example");
	ck_assert_int_eq(idna_domain_ascii("example.com", out, 5), -1);
}
END_TEST

START_TEST(test_ulabels)
{
	char out[256];

	ck_assert_int_eq(idna_domain_ascii("b\xc3\xbc" "cher.example", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "xn--bcher-kva.example");
	/* Upper case is mapped first (UTS 46): the same name. */
	ck_assert_int_eq(idna_domain_ascii("B\xc3\x9c" "CHER.example", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "xn--bcher-kva.example");
	/* Not UTF-8, or not a name: refused. */
	ck_assert_int_eq(idna_domain_ascii("b\xfc" "cher.example", out,
	    sizeof(out)), -1);
	ck_assert_int_eq(idna_domain_ascii("\xe2\x98\x83\xe2\x80\x8b.example",
	    out, sizeof(out)), -1);
}
END_TEST

static Suite *
idna_suite(void)
{
	Suite *s = suite_create("idna");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_ascii);
	tcase_add_test(tc, test_ulabels);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(idna_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
