/*
 * check_smtpd_hdr.c - unit tests for smtpd_hdr.c, smtpd's reading of the
 * client's header block at DATA: the end of the block (empty line, or a
 * line that is not a field), field presence, the Message-ID: value
 * (unfolded, trimmed, refused when too long or with control characters),
 * From: fields unfolded one by one, and the RFC 5322 address walk
 * (display names, quoted strings with commas, comments, groups, cut at the
 * first refusal).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"

#define S(x)	x, sizeof(x) - 1

struct walk {
	char	got[8][SMTP_PATH_MAX + 1];
	char	dom[8][SMTP_DOMAIN_MAX + 1];
	int	n;
	int	stop;
};

static int
collect(void *arg, const char *addr, const char *dom)
{
	struct walk *w = arg;

	if (w->n < 8) {
		snprintf(w->got[w->n], sizeof(w->got[0]), "%s", addr);
		snprintf(w->dom[w->n], sizeof(w->dom[0]), "%s", dom);
	}
	return w->n++ == w->stop ? -1 : 0;
}

static int
walk(const char *v, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->stop = -1;
	return smtpd_hdr_addrs(v, strlen(v), collect, w);
}

START_TEST(test_block_end)
{
	size_t end = 0;
	int blank = -1;

	ck_assert_int_eq(smtpd_hdr_block_end(S("From: a@b\r\nSubj"), &end,
	    &blank), 0);
	ck_assert_int_eq(smtpd_hdr_block_end(S("From: a@b\r\n x\r\n\r\nbody"),
	    &end, &blank), 1);
	ck_assert_uint_eq(end, 15);
	ck_assert_int_eq(blank, 1);
	/* A line that is no field starts the body, with no empty line. */
	ck_assert_int_eq(smtpd_hdr_block_end(S("From: a@b\r\nhello there\r\n"),
	    &end, &blank), 1);
	ck_assert_uint_eq(end, 11);
	ck_assert_int_eq(blank, 0);
	/* A continuation as the first line is not one. */
	ck_assert_int_eq(smtpd_hdr_block_end(S(" x: y\r\n"), &end, &blank), 1);
	ck_assert_uint_eq(end, 0);
	ck_assert_int_eq(smtpd_hdr_block_end(S("\r\n"), &end, &blank), 1);
	ck_assert_uint_eq(end, 0);
	ck_assert_int_eq(blank, 1);
}
END_TEST

START_TEST(test_has)
{
	const char h[] = "Subject: x\r\nmessage-id: <a@b>\r\n";

	ck_assert(smtpd_hdr_has(S(h), "Message-ID"));
	ck_assert(!smtpd_hdr_has(S(h), "Date"));
	ck_assert(!smtpd_hdr_has(S("Dates: x\r\n"), "Date"));
	/* The name must be whole within the block given. */
	ck_assert(!smtpd_hdr_has("Date", 4, "Date"));
}
END_TEST

START_TEST(test_message_id)
{
	char id[SMTPD_MSGID_MAX + 1], big[400];
	int n;

	smtpd_hdr_message_id(S("Subject: x\r\nMessage-ID:\r\n  <a@b.example>"
	    " \r\nDate: y\r\n"), id);
	ck_assert_str_eq(id, "<a@b.example>");
	smtpd_hdr_message_id(S("Subject: x\r\n"), id);
	ck_assert_str_eq(id, "");
	smtpd_hdr_message_id(S("Message-ID: <a\x01@b>\r\n"), id);
	ck_assert_str_eq(id, "");
	n = snprintf(big, sizeof(big), "Message-ID: <%0300d@b>\r\n", 0);
	smtpd_hdr_message_id(big, (size_t)n, id);
	ck_assert_str_eq(id, "");
	/* Unterminated at the end of the input. */
	smtpd_hdr_message_id(S("Message-ID: <x@y>"), id);
	ck_assert_str_eq(id, "<x@y>");
}
END_TEST

START_TEST(test_from_next)
{
	const char h[] = "To: t@x\r\nFrom: A <a@x.example>,\r\n\tb@y.example\r\n"
	    "Subject: s\r\nfrom: c@z.example\r\n";
	char v[64], small[8];
	size_t off = 0;
	ssize_t n;

	n = smtpd_hdr_from_next(S(h), &off, v, sizeof(v));
	ck_assert_int_eq(n, (ssize_t)strlen(" A <a@x.example>,\tb@y.example"));
	ck_assert_str_eq(v, " A <a@x.example>,\tb@y.example");
	n = smtpd_hdr_from_next(S(h), &off, v, sizeof(v));
	ck_assert_str_eq(v, " c@z.example");
	ck_assert_int_eq(smtpd_hdr_from_next(S(h), &off, v, sizeof(v)), -1);
	/* Cut to the buffer, never past it. */
	off = 0;
	n = smtpd_hdr_from_next(S(h), &off, small, sizeof(small));
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(small, " A <a@x");
	/* "From:" alone on a line is no field with a value. */
	off = 0;
	ck_assert_int_eq(smtpd_hdr_from_next(S("From:"), &off, v, sizeof(v)),
	    -1);
}
END_TEST

START_TEST(test_addrs)
{
	struct walk w;

	ck_assert_int_eq(walk("\"Doe, John\" <john@Example.COM>, "
	    "jane@example.org (Jane, J)", &w), 2);
	ck_assert_str_eq(w.got[0], "john@Example.COM");
	ck_assert_str_eq(w.dom[0], "example.com");
	ck_assert_str_eq(w.got[1], "jane@example.org");
	ck_assert_str_eq(w.dom[1], "example.org");

	ck_assert_int_eq(walk("Alice Smith <alice@a.example>", &w), 1);
	ck_assert_str_eq(w.got[0], "alice@a.example");
	/* Nested comments are skipped whole. */
	ck_assert_int_eq(walk("(a (b) c) x@c.example", &w), 1);
	ck_assert_str_eq(w.got[0], "x@c.example");
	/* <> is an address, with no domain. */
	ck_assert_int_eq(walk("<>", &w), 1);
	ck_assert_str_eq(w.got[0], "");
	ck_assert_str_eq(w.dom[0], "");
	ck_assert_int_eq(walk("", &w), 0);
	ck_assert_int_eq(walk("  ,  ", &w), 0);

	/* The walk stops at the first address refused. */
	memset(&w, 0, sizeof(w));
	w.stop = 0;
	ck_assert_int_eq(smtpd_hdr_addrs(S("a@x, b@y"), collect, &w), -1);
	ck_assert_int_eq(w.n, 1);
}
END_TEST

START_TEST(test_addrs_bounded)
{
	char v[1200];
	struct walk w;

	memset(v, 'a', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	v[600] = '@';
	ck_assert_int_eq(walk(v, &w), 1);
	ck_assert_uint_eq(strlen(w.got[0]), SMTP_PATH_MAX);
	/* An unterminated quote or comment ends the value without reading on. */
	ck_assert_int_eq(smtpd_hdr_addrs("\"abc\\", 5, collect, &w), 0);
	ck_assert_int_eq(walk("(unclosed x@y", &w), 0);
}
END_TEST

static Suite *
smtpd_hdr_suite(void)
{
	Suite *s = suite_create("smtpd_hdr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_block_end);
	tcase_add_test(tc, test_has);
	tcase_add_test(tc, test_message_id);
	tcase_add_test(tc, test_from_next);
	tcase_add_test(tc, test_addrs);
	tcase_add_test(tc, test_addrs_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpd_hdr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
