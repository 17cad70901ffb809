/*
 * check_xtext.c - unit tests for lib/xtext (RFC 3461 section 4): what is
 * well-formed and what is not (lower-case or short hex, '=', controls,
 * space, 8-bit octets, the length limit counted encoded), decoding
 * (refusals, a NUL octet), encoding of every octet value and round trips.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vbuf.h"
#include "xtext.h"

static Suite	*xtext_suite(void);

START_TEST(test_valid)
{
	ck_assert_int_eq(xtext_valid("", 10), 1);
	ck_assert_int_eq(xtext_valid("bob@example.com", 100), 1);
	ck_assert_int_eq(xtext_valid("bob+2B1@example.com", 100), 1);
	ck_assert_int_eq(xtext_valid("+3D+2B+20", 100), 1);
	ck_assert_int_eq(xtext_valid("!~\"#$%&'()*,-./:;<>?@[\\]^_`{|}", 100),
	    1);
	/* Upper-case hex only, exactly two digits. */
	ck_assert_int_eq(xtext_valid("a+2b", 100), 0);
	ck_assert_int_eq(xtext_valid("a+2", 100), 0);
	ck_assert_int_eq(xtext_valid("a+", 100), 0);
	ck_assert_int_eq(xtext_valid("+G0", 100), 0);
	ck_assert_int_eq(xtext_valid("a=b", 100), 0);
	ck_assert_int_eq(xtext_valid("a b", 100), 0);
	ck_assert_int_eq(xtext_valid("a\tb", 100), 0);
	ck_assert_int_eq(xtext_valid("a\r\nb", 100), 0);
	ck_assert_int_eq(xtext_valid("a\x7f", 100), 0);
	ck_assert_int_eq(xtext_valid("a\xc3\xa9", 100), 0);
	/* The limit counts encoded bytes, a "+XX" included whole. */
	ck_assert_int_eq(xtext_valid("abcd", 4), 1);
	ck_assert_int_eq(xtext_valid("abcde", 4), 0);
	ck_assert_int_eq(xtext_valid("a+2B", 4), 1);
	ck_assert_int_eq(xtext_valid("ab+2B", 4), 0);
	ck_assert_int_eq(xtext_valid("abc+2B", 5), 0);
	ck_assert_int_eq(xtext_valid("a", 0), 0);
}
END_TEST

START_TEST(test_decode)
{
	char *d;

	d = xtext_decode("bob+2Bx@example.com");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d, "bob+x@example.com");
	free(d);
	d = xtext_decode("+3D+20+7E");
	ck_assert_str_eq(d, "= ~");
	free(d);
	d = xtext_decode("");
	ck_assert_str_eq(d, "");
	free(d);
	ck_assert_ptr_null(xtext_decode("a+2b"));
	ck_assert_ptr_null(xtext_decode("a=b"));
	ck_assert_ptr_null(xtext_decode("a+0"));
	ck_assert_ptr_null(xtext_decode("a b"));
	/* A NUL octet cannot be returned in a C string. */
	ck_assert_ptr_null(xtext_decode("a+00b"));
	d = xtext_decode("a+0D+0Ab");
	ck_assert_str_eq(d, "a\r\nb");
	free(d);
}
END_TEST

START_TEST(test_encode)
{
	struct vbuf v;

	vbuf_init(&v, 0);
	xtext_encode(&v, "bob+x=y z@example.com");
	ck_assert_str_eq(v.data, "bob+2Bx+3Dy+20z@example.com");
	vbuf_reset(&v);
	xtext_encode(&v, "");
	ck_assert_str_eq(v.data, "");
	vbuf_reset(&v);
	xtext_encode(&v, "\x01\x7f\xff!~");
	ck_assert_str_eq(v.data, "+01+7F+FF!~");
	vbuf_release(&v);
}
END_TEST

/* Every octet 1..255 encodes to valid xtext and decodes back. */
START_TEST(test_roundtrip)
{
	char in[256], *d;
	struct vbuf v;
	int c;

	for (c = 1; c < 256; c++)
		in[c - 1] = (char)c;
	in[255] = '\0';
	vbuf_init(&v, 0);
	xtext_encode(&v, in);
	ck_assert_int_eq(xtext_valid(v.data, v.len), 1);
	ck_assert_int_eq(xtext_valid(v.data, v.len - 1), 0);
	d = xtext_decode(v.data);
	ck_assert_ptr_nonnull(d);
	ck_assert(memcmp(d, in, 256) == 0);
	free(d);
	/* Plain characters stay as they are. */
	vbuf_reset(&v);
	xtext_encode(&v, "rfc822-style.addr@example.org");
	ck_assert_str_eq(v.data, "rfc822-style.addr@example.org");
	vbuf_release(&v);
}
END_TEST

static Suite *
xtext_suite(void)
{
	Suite *s = suite_create("xtext");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(xtext_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
