/*
 * check_mimefold.c - unit tests for lib/mimefold: messages made to fit
 * the 998-octet line limit without losing content.
 *
 * Covered: a message without long lines comes back byte for byte; a long
 * body line in a message without MIME makes it text/plain quoted-
 * printable that decodes to the original; a long header folds at
 * whitespace and unfolds to the original; in a multipart only the part
 * with the long line is re-encoded, the rest and the delimiters stay;
 * the charset claimed; lines inside base64 and headers without whitespace
 * are split by force and counted; nesting past the bound is not walked.
 * Every output line is checked against the limit.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimefold.h"
#include "vbuf.h"

static struct vbuf	*fold(const char *, unsigned *);
static void		 assert_fits(const struct vbuf *);
static struct vbuf	*qp_decode(const char *, size_t);
static char		*repeat(const char *, size_t);
static Suite		*mimefold_suite(void);

static struct vbuf *
fold(const char *msg, unsigned *forced)
{
	struct vbuf *out = vbuf_create(0);

	mimefold(msg, strlen(msg), out, forced);
	assert_fits(out);
	return out;
}

static void
assert_fits(const struct vbuf *v)
{
	ck_assert_uint_le(mimefold_longest(v->data, v->len),
	    MIMEFOLD_LINE_MAX);
}

/* Decodes quoted-printable (soft breaks, =XX), as a reader would. */
static struct vbuf *
qp_decode(const char *p, size_t n)
{
	struct vbuf *out = vbuf_create(0);

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '=') {
			(void)vbuf_addc(out, p[i]);
			continue;
		}
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2;
			continue;
		}
		ck_assert_uint_lt(i + 2, n);
		{
			char hex[3] = { p[i + 1], p[i + 2], '\0' };

			(void)vbuf_addc(out, (int)strtol(hex, NULL, 16));
		}
		i += 2;
	}
	return out;
}

static char *
repeat(const char *unit, size_t times)
{
	size_t n = strlen(unit);
	char *s = malloc(n * times + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * n, unit, n);
	s[n * times] = '\0';
	return s;
}

START_TEST(test_untouched)
{
	const char *msg = "From: a@example.com\r\nSubject: hi\r\n\r\n"
	    "short line\r\n.\r\nno end";
	unsigned forced = 9;
	struct vbuf *out = fold(msg, &forced);

	ck_assert_uint_eq(out->len, strlen(msg));
	ck_assert_mem_eq(out->data, msg, out->len);
	ck_assert_uint_eq(forced, 0);
	vbuf_free(out);
}
END_TEST

START_TEST(test_plain_becomes_qp)
{
	char *text = repeat("caf\xc3\xa9 = cr\xc3\xa8me ", 500);
	char msg[16384], *body;
	struct vbuf *out, *dec;
	unsigned forced;

	snprintf(msg, sizeof(msg), "From: a@example.com\r\n"
	    "Subject: long\r\n\r\n%s\r\nsecond line \r\n", text);
	out = fold(msg, &forced);
	ck_assert_uint_eq(forced, 0);
	vbuf_addc(out, '\0');
	ck_assert_ptr_nonnull(strstr(out->data, "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
	body = strstr(out->data, "\r\n\r\n") + 4;
	dec = qp_decode(body, strlen(body));
	vbuf_addc(dec, '\0');
	ck_assert_str_eq(dec->data, strstr(msg, "\r\n\r\n") + 4);
	/* Quoted-printable lines stay within 76 characters. */
	ck_assert_uint_le(mimefold_longest(body, strlen(body)), 76);
	vbuf_free(dec);
	vbuf_free(out);
	free(text);
}
END_TEST

START_TEST(test_long_header_folds)
{
	char *list = repeat("<someone@example.org>, ", 200);
	char msg[16384], unfolded[16384];
	struct vbuf *out;
	unsigned forced;
	size_t n = 0;

	snprintf(msg, sizeof(msg), "To: %s\r\nSubject: x\r\n\r\nbody\r\n",
	    list);
	out = fold(msg, &forced);
	ck_assert_uint_eq(forced, 0);
	/* Unfolding (RFC 5322 2.2.3: drop CRLF before WSP) gives it back. */
	for (size_t i = 0; i < out->len; i++) {
		if (i + 2 < out->len && out->data[i] == '\r' &&
		    out->data[i + 1] == '\n' && (out->data[i + 2] == ' ' ||
		    out->data[i + 2] == '\t')) {
			i++;
			continue;
		}
		unfolded[n++] = out->data[i];
	}
	ck_assert_uint_eq(n, strlen(msg));
	ck_assert_mem_eq(unfolded, msg, n);
	vbuf_free(out);
	free(list);
}
END_TEST

START_TEST(test_multipart_one_part)
{
	char *html = repeat("<td>cell</td>", 400);
	char msg[16384], *p;
	struct vbuf *out;
	unsigned forced;
	const char *text_part = "--b1\r\nContent-Type: text/plain\r\n\r\n"
	    "plain part\r\n";

	snprintf(msg, sizeof(msg), "From: a@example.com\r\nMIME-Version: 1.0"
	    "\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
	    "preamble\r\n%s--b1\r\nContent-Type: text/html\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b1--\r\n"
	    "epilogue\r\n", text_part, html);
	out = fold(msg, &forced);
	ck_assert_uint_eq(forced, 0);
	vbuf_addc(out, '\0');
	/* Everything before the HTML part is as it was. */
	p = strstr(msg, "--b1\r\nContent-Type: text/html");
	ck_assert_mem_eq(out->data, msg, (size_t)(p - msg));
	ck_assert_ptr_nonnull(strstr(out->data, "--b1\r\nContent-Type: "
	    "text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "<td>cell</td>"));
	ck_assert_ptr_null(strstr(out->data, "8bit"));
	ck_assert_ptr_nonnull(strstr(out->data, "\r\n--b1--\r\nepilogue\r\n"));
	vbuf_free(out);
	free(html);
}
END_TEST

START_TEST(test_forced)
{
	char *token = repeat("x", 2500);
	char msg[16384];
	struct vbuf *out;
	unsigned forced;

	/* A header with nothing to fold at: split, the split counted. */
	snprintf(msg, sizeof(msg), "X-Token: %s\r\n\r\nbody\r\n", token);
	out = fold(msg, &forced);
	ck_assert_uint_eq(forced, 2);
	vbuf_free(out);
	/* A base64 part cannot be re-encoded; its long line is split. */
	snprintf(msg, sizeof(msg), "MIME-Version: 1.0\r\nContent-Type: "
	    "application/octet-stream\r\nContent-Transfer-Encoding: base64"
	    "\r\n\r\n%s\r\n", token);
	out = fold(msg, &forced);
	ck_assert_uint_eq(forced, 2);
	vbuf_free(out);
	free(token);
}
END_TEST

START_TEST(test_charset_and_depth)
{
	char *line = repeat("a", 1200);
	char msg[65536];
	struct vbuf *out;
	unsigned forced;
	size_t n;

	snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n%s\xff\r\n", line);
	out = fold(msg, &forced);
	vbuf_addc(out, '\0');
	ck_assert_ptr_nonnull(strstr(out->data, "charset=unknown-8bit"));
	vbuf_free(out);
	snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n%s\r\n", line);
	out = fold(msg, &forced);
	vbuf_addc(out, '\0');
	ck_assert_ptr_nonnull(strstr(out->data, "charset=us-ascii"));
	vbuf_free(out);
	/* 40 nested multiparts: walked to the bound, then split by force. */
	n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
		    "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
		    "--b%d\r\n", i, i);
	snprintf(msg + n, sizeof(msg) - n, "\r\n%s\r\n", line);
	out = fold(msg, &forced);
	ck_assert_uint_ge(forced, 1);
	vbuf_free(out);
	free(line);
}
END_TEST

static Suite *
mimefold_suite(void)
{
	Suite *s = suite_create("mimefold");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_untouched);
	tcase_add_test(tc, test_plain_becomes_qp);
	tcase_add_test(tc, test_long_header_folds);
	tcase_add_test(tc, test_multipart_one_part);
	tcase_add_test(tc, test_forced);
	tcase_add_test(tc, test_charset_and_depth);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mimefold_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
