/*
 * check_metahdr.c - unit tests for lib/metahdr: tags and metadata from an
 * application's headers.
 *
 * Covered: each family (X-Petrel-Tag/-Metadata-*, X-Mailgun-Tag/-Variables,
 * X-PM-Tag/-Metadata-*, X-SMTPAPI category and unique_args) gives the
 * expected compact JSON; names are case-insensitive; folded values are
 * unfolded; tags are unique in first-seen order and empty ones skipped;
 * removal keeps every other byte (CRLF, folding) exactly; a block with no
 * such header is untouched; each bound (tags, tag length, keys, key
 * length, JSON size) and malformed or mistyped JSON is an error; keys with
 * odd characters are escaped in the JSON, control characters refused.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metahdr.h"
#include "vbuf.h"

static int	 scan(const char *, struct vbuf *, struct vbuf *,
		    struct vbuf *, char *, size_t);
static Suite	*metahdr_suite(void);

/*
 * Scans block; meta/tags get the JSON, kept the remaining headers; err
 * the error. Returns metahdr_scan's or metahdr_result's answer.
 */
static int
scan(const char *block, struct vbuf *kept, struct vbuf *meta,
    struct vbuf *tags, char *err, size_t errsize)
{
	struct metahdr m;
	int n;

	metahdr_init(&m);
	n = metahdr_scan(&m, block, strlen(block), kept);
	if (n > 0 && metahdr_result(&m, meta, tags) == -1)
		n = -1;
	snprintf(err, errsize, "%s", m.err);
	metahdr_free(&m);
	return n;
}

#define SETUP \
	struct vbuf *kept = vbuf_create(0), *meta = vbuf_create(0), \
	    *tags = vbuf_create(0); \
	char err[METAHDR_ERR_MAX]; \
	int n __attribute__((unused))
#define TEARDOWN \
	vbuf_free(kept); vbuf_free(meta); vbuf_free(tags)

START_TEST(test_families)
{
	SETUP;

	n = scan("From: a@example.org\r\n"
	    "X-Petrel-Tag: welcome, signup\r\n"
	    "x-petrel-metadata-user_id: 42\r\n"
	    "X-Mailgun-Tag: newsletter\r\n"
	    "X-Mailgun-Variables: {\"order\": 7, \"plan\": \"pro\"}\r\n"
	    "X-PM-Tag: receipts\r\n"
	    "X-PM-Metadata-Customer: acme\r\n"
	    "X-SMTPAPI: {\"category\": [\"cat1\", \"cat2\"], "
	    "\"unique_args\": {\"campaign\": \"c9\"}, \"to\": [\"x@y\"]}\r\n"
	    "Subject: hi\r\n", kept, meta, tags, err, sizeof(err));
	ck_assert_msg(n == 7, "n %d err %s", n, err);
	ck_assert_str_eq(tags->data, "[\"welcome\",\"signup\",\"newsletter\","
	    "\"receipts\",\"cat1\",\"cat2\"]");
	ck_assert_str_eq(meta->data, "{\"user_id\":\"42\",\"order\":7,"
	    "\"plan\":\"pro\",\"Customer\":\"acme\",\"campaign\":\"c9\"}");
	ck_assert_str_eq(kept->data, "From: a@example.org\r\nSubject: hi\r\n");
	TEARDOWN;
}
END_TEST

START_TEST(test_smtpapi_string_category)
{
	SETUP;

	n = scan("X-SMTPAPI: {\"category\": \"one\"}\r\n", kept, meta, tags,
	    err, sizeof(err));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(tags->data, "[\"one\"]");
	ck_assert_uint_eq(meta->len, 0);
	ck_assert_uint_eq(kept->len, 0);
	n = scan("X-SMTPAPI: {\"category\": 5}\r\n", kept, meta, tags,
	    err, sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-SMTPAPI: {\"category\": [\"a\", 1]}\r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-SMTPAPI: {\"unique_args\": [1]}\r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	ck_assert_ptr_nonnull(strstr(err, "unique_args"));
	TEARDOWN;
}
END_TEST

START_TEST(test_folding)
{
	SETUP;
	const char *block = "Received: from x\r\n\tby y\r\n"
	    "X-Petrel-Tag: a,\r\n  b\r\n"
	    "X-Mailgun-Variables: {\"k\":\r\n \"v w\"}\r\n"
	    "Subject: folded\r\n two\r\n";

	n = scan(block, kept, meta, tags, err, sizeof(err));
	ck_assert_msg(n == 2, "n %d err %s", n, err);
	ck_assert_str_eq(tags->data, "[\"a\",\"b\"]");
	ck_assert_str_eq(meta->data, "{\"k\":\"v w\"}");
	ck_assert_str_eq(kept->data, "Received: from x\r\n\tby y\r\n"
	    "Subject: folded\r\n two\r\n");
	/* Folded metadata value: the white space after the break stays. */
	n = scan("X-Petrel-Metadata-note: one\r\n\ttwo  \r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(meta->data, "{\"note\":\"one\\ttwo\"}");
	TEARDOWN;
}
END_TEST

START_TEST(test_unique_tags)
{
	SETUP;

	n = scan("X-Mailgun-Tag: b\r\nX-Petrel-Tag: a, b, , a\r\n"
	    "X-PM-Tag: b\r\nX-Mailgun-Tag:  c \r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, 4);
	ck_assert_str_eq(tags->data, "[\"b\",\"a\",\"c\"]");
	/* The same key twice: the last value wins, counted once. */
	n = scan("X-Petrel-Metadata-k: 1\r\nX-PM-Metadata-k: 2\r\n", kept,
	    meta, tags, err, sizeof(err));
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(meta->data, "{\"k\":\"2\"}");
	TEARDOWN;
}
END_TEST

START_TEST(test_none_untouched)
{
	SETUP;
	const char *block = "From: a@b\r\nX-Mailer: x\r\nX-Petrel-Tagged: 1\r\n"
	    "X-Petrel-Metadata: no key\r\n";

	/* X- headers of other names are not the families', and stay. */
	n = scan("From: a@b\r\nSubject: s\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(kept->len, 0);	/* caller keeps its own */
	n = scan(block, kept, meta, tags, err, sizeof(err));
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(kept->len, 0);
	vbuf_adds(meta, block);
	vbuf_adds(meta, "X-PM-Tag: t\r\n");
	n = scan(meta->data, kept, meta, tags, err, sizeof(err));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(kept->data, block);
	ck_assert_int_eq(metahdr_is_family("x-pm-tag", 8), 1);
	ck_assert_int_eq(metahdr_is_family("X-PM-Tags", 9), 0);
	ck_assert_int_eq(metahdr_is_family("X-PM-Metadata-", 14), 1);
	TEARDOWN;
}
END_TEST

START_TEST(test_bounds)
{
	SETUP;
	struct vbuf *b = vbuf_create(0);
	char big[METAHDR_JSON_MAX + 10];
	int i;

	/* METAHDR_TAGS_MAX tags pass, one more fails. */
	vbuf_adds(b, "X-Petrel-Tag: t0");
	for (i = 1; i < METAHDR_TAGS_MAX; i++)
		vbuf_addf(b, ",t%d", i);
	vbuf_adds(b, "\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    1);
	vbuf_adds(b, "X-Mailgun-Tag: one-more\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "tags"));
	/* Tag length. */
	vbuf_reset(b);
	vbuf_adds(b, "X-PM-Tag: ");
	for (i = 0; i < METAHDR_TAG_LEN; i++)
		vbuf_addc(b, 'x');
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    1);
	vbuf_addc(b, 'x');
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    -1);
	/* Key count, across families. */
	vbuf_reset(b);
	for (i = 0; i < METAHDR_KEYS_MAX - 1; i++)
		vbuf_addf(b, "X-Petrel-Metadata-k%d: v\r\n", i);
	vbuf_adds(b, "X-Mailgun-Variables: {\"last\": 1}\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    METAHDR_KEYS_MAX);
	vbuf_adds(b, "X-PM-Metadata-extra: v\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "metadata keys"));
	/* Key length. */
	vbuf_reset(b);
	vbuf_adds(b, "X-Petrel-Metadata-");
	for (i = 0; i < METAHDR_KEY_LEN; i++)
		vbuf_addc(b, 'k');
	vbuf_adds(b, ": v\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    1);
	vbuf_reset(b);
	vbuf_adds(b, "X-Mailgun-Variables: {\"");
	for (i = 0; i <= METAHDR_KEY_LEN; i++)
		vbuf_addc(b, 'k');
	vbuf_adds(b, "\": 1}\r\n");
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    -1);
	/* Total JSON size. */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vbuf_reset(b);
	vbuf_addf(b, "X-Petrel-Metadata-big: %s\r\n", big);
	ck_assert_int_eq(scan(b->data, kept, meta, tags, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "bytes of JSON"));
	vbuf_free(b);
	TEARDOWN;
}
END_TEST

START_TEST(test_malformed)
{
	SETUP;

	n = scan("X-Mailgun-Variables: {\"a\": \r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	ck_assert_ptr_nonnull(strstr(err, "malformed JSON"));
	n = scan("X-Mailgun-Variables: [1, 2]\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	ck_assert_ptr_nonnull(strstr(err, "not a JSON object"));
	n = scan("X-Mailgun-Variables: {\"a\":1,\"a\":2}\r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-SMTPAPI: \"str\"\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-SMTPAPI: {} trailing\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	/* Invalid UTF-8 in a value. */
	n = scan("X-PM-Metadata-k: \xff\xfe\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-PM-Tag: \xc3\r\n", kept, meta, tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	{
		static const char nul[] = "X-PM-Metadata-k: a\0b\r\n";
		struct metahdr m;

		metahdr_init(&m);
		ck_assert_int_eq(metahdr_scan(&m, nul, sizeof(nul) - 1, NULL),
		    -1);
		ck_assert_ptr_nonnull(strstr(m.err, "NUL"));
		metahdr_free(&m);
	}
	TEARDOWN;
}
END_TEST

START_TEST(test_odd_keys)
{
	SETUP;

	/* A field name may hold any printable but ':'; JSON escapes it. */
	n = scan("X-Petrel-Metadata-a\"b\\c{}: v\r\n", kept, meta, tags,
	    err, sizeof(err));
	ck_assert_msg(n == 1, "err %s", err);
	ck_assert_str_eq(meta->data, "{\"a\\\"b\\\\c{}\":\"v\"}");
	n = scan("X-Petrel-Metadata-: v\r\n", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-Mailgun-Variables: {\"a\\u0001\": 1}\r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	n = scan("X-Mailgun-Variables: {\"a\\u0000b\": 1}\r\n", kept, meta,
	    tags, err, sizeof(err));
	ck_assert_int_eq(n, -1);
	/* A header without a line end at the end of the block. */
	n = scan("Subject: s\r\nX-PM-Tag: last", kept, meta, tags, err,
	    sizeof(err));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(tags->data, "[\"last\"]");
	ck_assert_str_eq(kept->data, "Subject: s\r\n");
	TEARDOWN;
}
END_TEST

/* X-Petrel-Deliver-After: RFC 5322 dates, and what is not one. */
START_TEST(test_deliver_after)
{
	static const struct {
		const char	*text;
		int64_t		 t;		/* -1: not a date */
	} cases[] = {
		{ "Sat, 05 Dec 2026 15:00:00 +0000", 1796482800 },
		{ "5 Dec 2026 15:00:00 +0000", 1796482800 },
		{ "Sat, 5 Dec 2026 16:30:00 +0130", 1796482800 },
		{ "Sat, 5 Dec 2026 10:00:00 -0500", 1796482800 },
		{ "Sat, 5 Dec 2026 15:00 GMT", 1796482800 },
		{ "  Sat, 5 Dec 2026 15:00:00 +0000 (UTC) ", 1796482800 },
		{ "2026-12-05T15:00:00Z", -1 },
		{ "Sat, 5 Dec 2026 15:00:00", -1 },
		{ "Sat, 5 Dec 2026 15:00:00 +00", -1 },
		{ "Sat, 5 Dec 2026 15:00:00 +0000 junk", -1 },
		{ "Sat, 32 Dec 2026 15:00:00 +0000", -1 },
		{ "tomorrow", -1 },
		{ "", -1 },
	};
	struct metahdr m;
	struct vbuf *kept = vbuf_create(0);
	const char *blk = "Subject: x\r\nX-Petrel-Deliver-After: Sat, 5 Dec "
	    "2026 15:00:00 +0000\r\nTo: a@b\r\n";
	char longdate[METAHDR_DATE_MAX + 10];
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = 0;
		ck_assert_msg(metahdr_date(cases[i].text, strlen(cases[i].text),
		    &t) == (cases[i].t == -1 ? -1 : 0), "%s", cases[i].text);
		if (cases[i].t != -1)
			ck_assert_msg(t == cases[i].t, "%s: %lld",
			    cases[i].text, (long long)t);
	}
	memset(longdate, ' ', sizeof(longdate));
	ck_assert_int_eq(metahdr_date(longdate, sizeof(longdate), &t), -1);

	/* A family header: read, and left out of the kept block. */
	metahdr_init(&m);
	ck_assert_int_eq(metahdr_scan(&m, blk, strlen(blk), kept), 1);
	ck_assert_int_eq(m.has_after, 1);
	ck_assert(m.after == 1796482800);
	ck_assert_str_eq(m.after_raw, "Sat, 5 Dec 2026 15:00:00 +0000");
	ck_assert_str_eq(m.after_header, "X-Petrel-Deliver-After");
	ck_assert_uint_eq(kept->len, strlen("Subject: x\r\nTo: a@b\r\n"));
	ck_assert(memcmp(kept->data, "Subject: x\r\nTo: a@b\r\n",
	    kept->len) == 0);
	metahdr_free(&m);
	vbuf_free(kept);
}
END_TEST

/*
 * Mailgun's X-Mailgun-Deliver-By means the same, is left out too, and is
 * named as given in the log lines; of the two, the last one wins.
 */
START_TEST(test_mailgun_deliver_by)
{
	const char *blk = "Subject: x\r\nx-mailgun-deliver-by: Sat, 5 Dec "
	    "2026 10:00:00 -0500\r\nTo: a@b\r\n";
	const char *both = "X-Petrel-Deliver-After: Sat, 5 Dec 2026 15:00:00 "
	    "+0000\r\nX-Mailgun-Deliver-By: Sun, 6 Dec 2026 15:00:00 "
	    "+0000\r\n";
	struct metahdr m;
	struct vbuf *kept = vbuf_create(0);

	metahdr_init(&m);
	ck_assert_int_eq(metahdr_scan(&m, blk, strlen(blk), kept), 1);
	ck_assert_int_eq(m.has_after, 1);
	ck_assert(m.after == 1796482800);
	ck_assert_str_eq(m.after_header, "X-Mailgun-Deliver-By");
	ck_assert_uint_eq(kept->len, strlen("Subject: x\r\nTo: a@b\r\n"));
	ck_assert(memcmp(kept->data, "Subject: x\r\nTo: a@b\r\n",
	    kept->len) == 0);
	metahdr_free(&m);

	vbuf_reset(kept);
	metahdr_init(&m);
	ck_assert_int_eq(metahdr_scan(&m, both, strlen(both), kept), 2);
	ck_assert(m.after == 1796482800 + 86400);
	ck_assert_str_eq(m.after_header, "X-Mailgun-Deliver-By");
	ck_assert_uint_eq(kept->len, 0);
	metahdr_free(&m);
	vbuf_free(kept);
}
END_TEST

/*
 * X-Petrel-Priority: bulk lowers the message, any case, and is left out;
 * any other value (a message cannot raise itself) is left out and ignored.
 */
START_TEST(test_priority)
{
	static const struct {
		const char	*blk;
		int		 bulk;
	} cases[] = {
		{ "Subject: x\r\nX-Petrel-Priority: bulk\r\nTo: a@b\r\n", 1 },
		{ "Subject: x\r\nx-petrel-priority:  BULK \r\nTo: a@b\r\n", 1 },
		{ "Subject: x\r\nX-Petrel-Priority: transactional\r\n"
		    "To: a@b\r\n", 0 },
		{ "Subject: x\r\nX-Petrel-Priority: bulkier\r\nTo: a@b\r\n",
		    0 },
	};
	struct metahdr m;
	struct vbuf *kept;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kept = vbuf_create(0);
		metahdr_init(&m);
		ck_assert_int_eq(metahdr_scan(&m, cases[i].blk,
		    strlen(cases[i].blk), kept), 1);
		ck_assert_msg(m.bulk == cases[i].bulk, "%s", cases[i].blk);
		ck_assert_uint_eq(kept->len,
		    strlen("Subject: x\r\nTo: a@b\r\n"));
		ck_assert(memcmp(kept->data, "Subject: x\r\nTo: a@b\r\n",
		    kept->len) == 0);
		metahdr_free(&m);
		vbuf_free(kept);
	}
}
END_TEST

static Suite *
metahdr_suite(void)
{
	Suite *s = suite_create("metahdr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_families);
	tcase_add_test(tc, test_smtpapi_string_category);
	tcase_add_test(tc, test_folding);
	tcase_add_test(tc, test_unique_tags);
	tcase_add_test(tc, test_none_untouched);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_odd_keys);
	tcase_add_test(tc, test_deliver_after);
	tcase_add_test(tc, test_mailgun_deliver_by);
	tcase_add_test(tc, test_priority);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metahdr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
