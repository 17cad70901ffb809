/*
 * check_sendmail_msg.c - unit tests for sendmail(1)'s message handling
 * (sendmail/sendmail_msg.c) and its reply-to-exit-code map.
 *
 * Standard input made into CRLF lines and the old "lone dot ends it" rule
 * (-i turns it off); the size cap; -t's recipients from To:, Cc:, Bcc:
 * (groups, comments, quoted commas, folded fields) with Bcc: removed; the
 * From: and Date: added to a message without them; sysexits codes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail.h"
#include "vbuf.h"

static void	read_text(struct sendmail_msg *, const char *, uint64_t, int);
static Suite	*sendmail_msg_suite(void);

/* Feeds text to sendmail_msg_read through a pipe; expects rc. */
static void
read_text(struct sendmail_msg *m, const char *text, uint64_t max, int rc)
{
	struct vbuf *why = vbuf_create(0);
	int p[2], too_big = 0;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], text, strlen(text)),
	    (ssize_t)strlen(text));
	close(p[1]);
	ck_assert_int_eq(sendmail_msg_read(m, p[0], max, &too_big, why), rc);
	if (rc == -1) {
		ck_assert_int_eq(too_big, 1);
		ck_assert_ptr_nonnull(strstr(why->data, "message_size_limit"));
	}
	close(p[0]);
	vbuf_free(why);
}

START_TEST(test_read_lines_and_dot)
{
	struct sendmail_msg m;

	memset(&m, 0, sizeof(m));
	read_text(&m, "A: b\n\nline\r\n.\nafter\n", 1024, 0);
	ck_assert_str_eq(m.data->data, "A: b\r\n\r\nline\r\n");
	vbuf_free(m.data);

	memset(&m, 0, sizeof(m));
	m.ignore_dots = 1;
	read_text(&m, "A: b\n\nline\n.\nafter", 1024, 0);
	ck_assert_str_eq(m.data->data, "A: b\r\n\r\nline\r\n.\r\nafter\r\n");
	ck_assert_int_eq(m.eight_bit, 0);
	vbuf_free(m.data);

	memset(&m, 0, sizeof(m));
	m.ignore_dots = 1;
	read_text(&m, "Subject: caf\xc3\xa9\n\nx\n", 1024, 0);
	ck_assert_int_eq(m.eight_bit, 1);
	vbuf_free(m.data);

	memset(&m, 0, sizeof(m));
	read_text(&m, "0123456789abcdef", 8, -1);
	ck_assert_ptr_null(m.data);
}
END_TEST

START_TEST(test_extract_recipients)
{
	struct sendmail_rcpts r = { NULL, 0 };
	struct vbuf *why = vbuf_create(0);
	struct sendmail_msg m;

	memset(&m, 0, sizeof(m));
	m.extract = 1;
	m.ignore_dots = 1;
	read_text(&m, "To: \"Doe, John\" <john@example.org>,\n"
	    "  jane@example.org (Jane)\n"
	    "Cc: team: a@example.org, b@example.org;\n"
	    "Bcc: secret@example.org\n"
	    "From: Sender <s@example.com>\n"
	    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
	    "Subject: hi\n\nbody\n", 65536, 0);
	ck_assert_int_eq(sendmail_msg_headers(&m, &r, "me@host", why), 0);
	ck_assert_uint_eq(r.n, 5);
	ck_assert_str_eq(r.v[0], "john@example.org");
	ck_assert_str_eq(r.v[1], "jane@example.org");
	ck_assert_str_eq(r.v[2], "a@example.org");
	ck_assert_str_eq(r.v[3], "b@example.org");
	ck_assert_str_eq(r.v[4], "secret@example.org");
	ck_assert_str_eq(m.from_hdr, "s@example.com");
	/* Bcc: is gone, the rest kept in order; nothing added. */
	ck_assert_ptr_null(strstr(m.data->data, "secret"));
	ck_assert_ptr_null(strstr(m.data->data, "Bcc"));
	ck_assert_str_eq(m.data->data, "To: \"Doe, John\" <john@example.org>,"
	    "\r\n  jane@example.org (Jane)\r\n"
	    "Cc: team: a@example.org, b@example.org;\r\n"
	    "From: Sender <s@example.com>\r\n"
	    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "Subject: hi\r\n\r\nbody\r\n");
	sendmail_rcpts_free(&r);
	vbuf_free(m.data);

	/* Without -t the header names no recipient and Bcc: stays. */
	memset(&m, 0, sizeof(m));
	read_text(&m, "To: x@example.org\nBcc: y@example.org\n"
	    "From: f@example.com\nDate: x\n\nb\n", 65536, 0);
	ck_assert_int_eq(sendmail_msg_headers(&m, &r, "me@host", why), 0);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_ptr_nonnull(strstr(m.data->data, "Bcc: y@example.org"));
	ck_assert_str_eq(m.from_hdr, "f@example.com");
	vbuf_free(m.data);
	vbuf_free(why);
}
END_TEST

START_TEST(test_added_headers)
{
	struct sendmail_rcpts r = { NULL, 0 };
	struct vbuf *why = vbuf_create(0);
	struct sendmail_msg m;

	/* No header at all: From:, Date:, then an empty line, the body. */
	memset(&m, 0, sizeof(m));
	m.fullname = "Job Robot";
	read_text(&m, "just a body line\nsecond\n", 65536, 0);
	ck_assert_int_eq(sendmail_msg_headers(&m, &r, "robot@example.com",
	    why), 0);
	ck_assert_msg(strncmp(m.data->data, "From: Job Robot "
	    "<robot@example.com>\r\nDate: ", 42) == 0, "%s", m.data->data);
	ck_assert_ptr_nonnull(strstr(m.data->data,
	    "\r\n\r\njust a body line\r\nsecond\r\n"));
	ck_assert_str_eq(m.from_hdr, "");
	vbuf_free(m.data);

	/* A name with specials is quoted; non-ASCII is encoded (RFC 2047). */
	memset(&m, 0, sizeof(m));
	m.fullname = "Doe, J\xc3\xa9r\xc3\xb4me";
	read_text(&m, "Subject: s\n\nb\n", 65536, 0);
	ck_assert_int_eq(sendmail_msg_headers(&m, &r, "j@example.com", why),
	    0);
	ck_assert_ptr_nonnull(strstr(m.data->data, "From: \"Doe,\" =?"));
	ck_assert_ptr_null(strstr(m.data->data, "\xc3"));
	ck_assert_ptr_nonnull(strstr(m.data->data, "<j@example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(m.data->data, "Subject: s\r\n"));
	vbuf_free(m.data);
	vbuf_free(why);
}
END_TEST

START_TEST(test_rcpt_add)
{
	struct sendmail_rcpts r = { NULL, 0 };
	struct vbuf *why = vbuf_create(0);

	ck_assert_int_eq(sendmail_rcpt_add(&r, "a@example.org", why), 0);
	ck_assert_int_eq(sendmail_rcpt_add(&r, "", why), -1);
	ck_assert_int_eq(sendmail_rcpt_add(&r, "a\r\nRCPT TO:<b>", why), -1);
	ck_assert_int_eq(sendmail_rcpt_add(&r, "<a@example.org>", why), -1);
	ck_assert_uint_eq(r.n, 1);
	sendmail_rcpts_free(&r);
	vbuf_free(why);
}
END_TEST

START_TEST(test_reply_exit)
{
	ck_assert_int_eq(sendmail_reply_exit(451, "451 4.7.1 rate"),
	    EX_TEMPFAIL);
	ck_assert_int_eq(sendmail_reply_exit(554, "554 5.7.1 Local user x "
	    "is not allowed"), EX_NOPERM);
	ck_assert_int_eq(sendmail_reply_exit(550, "550 5.1.1 <x>: no"),
	    EX_NOUSER);
	ck_assert_int_eq(sendmail_reply_exit(552, "552 5.3.4 too big"),
	    EX_DATAERR);
	ck_assert_int_eq(sendmail_reply_exit(554, "554 5.3.5 Local "
	    "submission credential x does not exist"), EX_CONFIG);
	ck_assert_int_eq(sendmail_reply_exit(554, "554 no code"),
	    EX_UNAVAILABLE);
	ck_assert_int_eq(sendmail_reply_exit(250, "250 ok"), EX_PROTOCOL);
}
END_TEST

static Suite *
sendmail_msg_suite(void)
{
	Suite *s = suite_create("sendmail_msg");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_read_lines_and_dot);
	tcase_add_test(tc, test_extract_recipients);
	tcase_add_test(tc, test_added_headers);
	tcase_add_test(tc, test_rcpt_add);
	tcase_add_test(tc, test_reply_exit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sendmail_msg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
