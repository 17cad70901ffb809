/*
 * check_qid.c - unit tests for lib/qid: queue id format and uniqueness.
 *
 * An id is 16 upper-case hex digits (arrival second, microsecond, the
 * process's digit, random) and becomes a file name, so qid_ok() must
 * refuse anything else: lower case, wrong length, path characters. Ids
 * made in one tight loop must all differ (the queue relies on them as
 * names).
 */
#include <sys/time.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qid.h"

#define NUNIQUE		200000

static int	 id_cmp(const void *, const void *);
static Suite	*qid_suite(void);

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QID_SIZE);
}

START_TEST(test_format)
{
	struct timeval before, after;
	char id[QID_SIZE], hex[16];
	int64_t sec;
	int32_t usec;
	size_t i;

	memset(id, 'x', sizeof(id));
	gettimeofday(&before, NULL);
	qid_new(id, &sec, &usec);
	gettimeofday(&after, NULL);
	ck_assert_uint_eq(strlen(id), QID_LEN);
	for (i = 0; i < QID_LEN; i++)
		ck_assert_msg((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'A' && id[i] <= 'F'), "bad char in %s", id);
	ck_assert(qid_ok(id));

	/* The arrival handed back is the one encoded in the id. */
	ck_assert_int_ge(sec, before.tv_sec);
	ck_assert_int_le(sec, after.tv_sec);
	ck_assert_int_ge(usec, 0);
	ck_assert_int_le(usec, 999999);
	snprintf(hex, sizeof(hex), "%08llX", (unsigned long long)sec &
	    0xffffffffULL);
	ck_assert(memcmp(id, hex, 8) == 0);
	snprintf(hex, sizeof(hex), "%05lX", (unsigned long)usec);
	ck_assert(memcmp(id + 8, hex, 5) == 0);
	/* Then the process's digit: the queue store's directory uses it. */
	snprintf(hex, sizeof(hex), "%X", (unsigned)getpid() & 0xfU);
	ck_assert_int_eq(id[13], hex[0]);
}
END_TEST

START_TEST(test_unique)
{
	char (*ids)[QID_SIZE];
	int64_t sec;
	int32_t usec;
	size_t i, dups = 0;

	/*
	 * Many ids per microsecond in a tight loop: the random part alone
	 * (12 bits) collides by the birthday bound, so this needs the
	 * generator to guarantee distinct ids within a process.
	 */
	ids = calloc(NUNIQUE, sizeof(*ids));
	ck_assert_ptr_nonnull(ids);
	for (i = 0; i < NUNIQUE; i++)	/* no ck_assert here: too slow */
		qid_new(ids[i], &sec, &usec);
	for (i = 0; i < NUNIQUE; i++)
		if (!qid_ok(ids[i]))
			ck_abort_msg("bad id %s", ids[i]);
	qsort(ids, NUNIQUE, sizeof(*ids), id_cmp);
	for (i = 1; i < NUNIQUE; i++)
		if (memcmp(ids[i - 1], ids[i], QID_SIZE) == 0)
			dups++;
	ck_assert_msg(dups == 0, "%zu duplicate ids in %d", dups, NUNIQUE);
	free(ids);
}
END_TEST

START_TEST(test_sortable)
{
	char a[QID_SIZE], b[QID_SIZE];
	int64_t sa, sb;
	int32_t ua, ub;

	/* Ids from different microseconds sort by arrival. */
	qid_new(a, &sa, &ua);
	do {
		qid_new(b, &sb, &ub);
	} while (sb == sa && ub == ua);
	ck_assert_int_lt(strcmp(a, b), 0);
}
END_TEST

START_TEST(test_ok)
{
	static const char *bad[] = {
		"",
		"0123456789ABCDE",		/* 15 */
		"0123456789ABCDEF0",		/* 17 */
		"0123456789abcdef",		/* lower case */
		"0123456789ABCDEf",
		"0123456789ABCDEG",
		"../etc/passwd",
		"../0123456789ABC",
		"0123456789ABC/DE",
		"0123456789ABCD..",
		"0123456789ABCDE ",
		" 0123456789ABCDE",
		"0123456789ABCDE\n",
		"0123456789ABCDEF\n",
		"0123456789ABCDEF/",
		"/0123456789ABCDE",
		"0x23456789ABCDEF",
		"-123456789ABCDEF",
	};
	char nul[QID_SIZE + 1];
	size_t i;

	ck_assert(qid_ok("0123456789ABCDEF"));
	ck_assert(qid_ok("FFFFFFFFFFFFFFFF"));
	ck_assert(qid_ok("0000000000000000"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!qid_ok(bad[i]), "accepted \"%s\"", bad[i]);
	ck_assert(!qid_ok(NULL));

	/* A NUL inside the 16 characters ends the string early. */
	memcpy(nul, "01234567\0" "9ABCDEF", 17);
	nul[17] = '\0';
	ck_assert(!qid_ok(nul));
}
END_TEST

static Suite *
qid_suite(void)
{
	Suite *s = suite_create("qid");
	TCase *tc = tcase_create("qid");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_unique);
	tcase_add_test(tc, test_sortable);
	tcase_add_test(tc, test_ok);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(qid_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
