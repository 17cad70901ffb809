/*
 * check_cred_hash.c - unit tests for lib/cred_hash: scrypt hash strings
 * made and checked, parameters read from the string, and every malformed
 * or out-of-bounds string refused before the KDF runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred_hash.h"
#include "vbuf.h"

static Suite	*cred_hash_suite(void);

START_TEST(test_hash_roundtrip)
{
	struct vbuf h, h2;
	const char pw[] = "correct horse battery staple";

	vbuf_init(&h, 0);
	vbuf_init(&h2, 0);
	ck_assert_int_eq(cred_hash_new(pw, strlen(pw), &h, NULL), 0);
	ck_assert_msg(strncmp(h.data, "$scrypt$ln=15,r=8,p=1$", 22) == 0,
	    "hash %s", h.data);
	ck_assert_uint_le(h.len, CRED_HASH_MAX);
	ck_assert_int_eq(cred_hash_verify(h.data, pw, strlen(pw)), 1);
	ck_assert_int_eq(cred_hash_verify(h.data, pw, strlen(pw) - 1), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "Correct horse battery "
	    "staple", strlen(pw)), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "", 0), 0);
	/* Same secret, new salt: different string. */
	ck_assert_int_eq(cred_hash_new(pw, strlen(pw), &h2, NULL), 0);
	ck_assert_str_ne(h.data, h2.data);
	/* Binary secrets with NULs are hashed by length. */
	ck_assert_int_eq(cred_hash_new("a\0b", 3, &h, NULL), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "a\0b", 3), 1);
	ck_assert_int_eq(cred_hash_verify(h.data, "a\0c", 3), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "a", 1), 0);
	vbuf_release(&h);
	vbuf_release(&h2);
}
END_TEST

START_TEST(test_hash_params_from_string)
{
	/*
	 * Parameters are read from the string: a changed cost is a different
	 * key (mismatch), not a malformed string.
	 */
	struct vbuf h;
	char s[CRED_HASH_MAX + 1], *p;

	vbuf_init(&h, 0);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	/* Rewriting the parameters changes the key: mismatch, not error. */
	snprintf(s, sizeof(s), "%s", h.data);
	p = strstr(s, "ln=15");
	ck_assert_ptr_nonnull(p);
	p[4] = '4';
	ck_assert_int_eq(cred_hash_verify(s, "pw", 2), 0);
	vbuf_release(&h);
}
END_TEST

START_TEST(test_hash_malformed)
{
	static const char *bad[] = {
		"",
		"$",
		"plain",
		"$scrypt$",
		"$scrypt$ln=15,r=8,p=1",
		"$scrypt$ln=15,r=8,p=1$",
		"$scrypt$ln=15,r=8,p=1$$",
		"$pbkdf2$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		/* absurd or out-of-range parameters */
		"$scrypt$ln=40,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=99999999999999999999,r=8,p=1$"
		    "OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=1000000,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=4000000000$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=20,r=32,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=32,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=0,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=0,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=0$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=-1,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=+15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln= 15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$r=8,ln=15,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		/* bad base64: foreign character, padding, impossible length,
		 * nonzero trailing bits, salt and key too short */
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGD*8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ==$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwAAA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLR$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCc$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$dt2lkGgn",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA$extra",
	};
	char big[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cred_hash_verify(bad[i], "x", 1) == -1,
		    "accepted: %s", bad[i]);
	/* A key longer than any we make (75 bytes), and an over-long string. */
	snprintf(big, sizeof(big), "$scrypt$ln=15,r=8,p=1$"
	    "OeTOCcr8UxVVPGDv8smFLQ$%0100d", 0);
	ck_assert_int_eq(cred_hash_verify(big, "x", 1), -1);
	snprintf(big, sizeof(big), "$scrypt$ln=15,r=8,p=1$"
	    "OeTOCcr8UxVVPGDv8smFLQ$%0800d", 0);
	ck_assert_int_eq(cred_hash_verify(big, "x", 1), -1);
}
END_TEST

START_TEST(test_hash_dummy)
{
	/* Runs the KDF and matches nothing; it must not crash on any input. */
	cred_hash_dummy("x", 1);
	cred_hash_dummy(NULL, 0);
}
END_TEST

static Suite *
cred_hash_suite(void)
{
	Suite *s = suite_create("cred_hash");
	TCase *tc;

	tc = tcase_create("hash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hash_roundtrip);
	tcase_add_test(tc, test_hash_params_from_string);
	tcase_add_test(tc, test_hash_malformed);
	tcase_add_test(tc, test_hash_dummy);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cred_hash_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
