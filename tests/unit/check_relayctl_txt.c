/*
 * check_relayctl_txt.c - unit tests for relayctl_txt.c, the TXT answers
 * "relayctl domain check" reads: records of a DNS answer (strings joined,
 * other types skipped, unprintable bytes as '?', a string claiming more
 * than its rdata cut), malformed answers refused, the raw join for SPF,
 * tag=value lookup and the choice of the DMARC record.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vbuf.h"

#include "relayctl.h"

static unsigned char msg[2048];

/* A response to a TXT query for example.com, with these answer records. */
static size_t
answer(const int *types, const char *const *rdata, const size_t *rdlen,
    int n)
{
	static const unsigned char head[] = {
		0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 16, 0, 1,
	};
	size_t len = sizeof(head);
	int i;

	memcpy(msg, head, len);
	msg[7] = (unsigned char)n;
	for (i = 0; i < n; i++) {
		unsigned char rr[] = { 0xc0, 0x0c, 0, (unsigned char)types[i],
		    0, 1, 0, 0, 1, 44, (unsigned char)(rdlen[i] >> 8),
		    (unsigned char)rdlen[i] };

		memcpy(msg + len, rr, sizeof(rr));
		len += sizeof(rr);
		memcpy(msg + len, rdata[i], rdlen[i]);
		len += rdlen[i];
	}
	return len;
}

START_TEST(test_parse)
{
	const int types[] = { 16, 1, 16, 16 };
	const char *const rd[] = { "\x05v=DKI\x0fM1; k=rsa; p=AB", "\x7f\0\0\1",
	    "\x03" "a\x01" "b", "\x10short" };
	const size_t rl[] = { 22, 4, 4, 6 };
	struct relayctl_txt t;
	size_t len = answer(types, rd, rl, 4);

	ck_assert_int_eq(relayctl_txt_parse(msg, len, &t), 1);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_str_eq(t.rec[0].data, "v=DKIM1; k=rsa; p=AB");
	ck_assert_str_eq(t.rec[1].data, "a?b");
	ck_assert_str_eq(t.rec[2].data, "short");	/* cut to the rdata */
	relayctl_txt_free(&t);
	ck_assert_uint_eq(t.n, 0);

	/* Only other types: none. Truncated: malformed. */
	len = answer(types + 1, rd + 1, rl + 1, 1);
	ck_assert_int_eq(relayctl_txt_parse(msg, len, &t), 0);
	len = answer(types, rd, rl, 1);
	ck_assert_int_eq(relayctl_txt_parse(msg, len - 10, &t), -1);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_int_eq(relayctl_txt_parse(msg, 5, &t), -1);
}
END_TEST

START_TEST(test_parse_bounded)
{
	static char big[20 * 256];
	int types[20];
	const char *rd[20];
	size_t rl[20], len;
	struct relayctl_txt t;
	int i;

	for (i = 0; i < 20; i++) {
		types[i] = 16;
		rd[i] = "\x01x";
		rl[i] = 2;
	}
	len = answer(types, rd, rl, 20);
	ck_assert_int_eq(relayctl_txt_parse(msg, len, &t), 1);
	ck_assert_uint_eq(t.n, RELAYCTL_TXT_MAX);
	relayctl_txt_free(&t);

	/* 1275 bytes of strings into one record: all kept (under 4096). */
	for (i = 0; i < 5; i++) {
		big[i * 256] = (char)255;
		memset(big + i * 256 + 1, 'k', 255);
	}
	rd[0] = big;
	rl[0] = 5 * 256;
	len = answer(types, rd, rl, 1);
	ck_assert_int_eq(relayctl_txt_parse(msg, len, &t), 1);
	ck_assert_uint_eq(t.rec[0].len, 5 * 255);
	relayctl_txt_free(&t);
}
END_TEST

START_TEST(test_join)
{
	char out[16];

	ck_assert_uint_eq(relayctl_txt_join((const unsigned char *)
	    "\x03" "abc\x02" "de", 7, out), 5);
	ck_assert_str_eq(out, "abcde");
	/* A length past the end is cut. */
	ck_assert_uint_eq(relayctl_txt_join((const unsigned char *)
	    "\x09" "ab", 3, out), 2);
	ck_assert_str_eq(out, "ab");
	ck_assert_uint_eq(relayctl_txt_join((const unsigned char *)"", 0,
	    out), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_tag)
{
	struct vbuf v;

	vbuf_init(&v, 0);
	ck_assert_int_eq(relayctl_txt_tag("v=DKIM1; k=rsa;  P = AB CD ;",
	    "p", &v), 1);
	ck_assert_str_eq(v.data, "AB CD");
	ck_assert_int_eq(relayctl_txt_tag("v=DKIM1; pp=x; k", "p", &v), 0);
	ck_assert_int_eq(relayctl_txt_tag("p=", "p", &v), 1);
	ck_assert_str_eq(v.data, "");
	ck_assert_int_eq(relayctl_txt_tag(";;;", "p", &v), 0);
	ck_assert_int_eq(relayctl_txt_tag("", "p", &v), 0);
	relayctl_txt_nospace(" A B\tC ", &v);
	ck_assert_str_eq(v.data, "ABC");
	vbuf_release(&v);
}
END_TEST

START_TEST(test_dmarc)
{
	struct relayctl_txt t;
	size_t n;
	const char *r;
	int i;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < 3; i++)
		vbuf_init(&t.rec[i], 0);
	t.n = 3;
	(void)vbuf_adds(&t.rec[0], "v=spf1 -all");
	(void)vbuf_adds(&t.rec[1], "  v=DMARC1; p=none");
	(void)vbuf_adds(&t.rec[2], "v=DMARC10; p=reject");
	r = relayctl_txt_dmarc(&t, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(r, "v=DMARC1; p=none");
	vbuf_reset(&t.rec[2]);
	(void)vbuf_adds(&t.rec[2], "V=dmarc1");
	(void)relayctl_txt_dmarc(&t, &n);
	ck_assert_uint_eq(n, 2);	/* two: receivers ignore both */
	t.n = 1;
	ck_assert_ptr_null(relayctl_txt_dmarc(&t, &n));
	ck_assert_uint_eq(n, 0);
	t.n = 3;
	relayctl_txt_free(&t);
}
END_TEST

static Suite *
relayctl_txt_suite(void)
{
	Suite *s = suite_create("relayctl_txt");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_parse_bounded);
	tcase_add_test(tc, test_join);
	tcase_add_test(tc, test_tag);
	tcase_add_test(tc, test_dmarc);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(relayctl_txt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
