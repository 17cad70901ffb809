/*
 * check_qmgr_reconcile.c - unit tests for qmgr's start-up reconciliation
 * (qmgr_reconcile.c) against a real queue: records whose file is gone are
 * removed, and each recipient that was not final gets a "bounced" event
 * in the outbox, so a consumer that saw "accepted" hears how it ended.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_qmgr.h"
#include "outbox.h"

struct seen {
	size_t			 n;
	enum outbox_kind	 kind[4];
	char			 rcpt[4][64];
	char			 dsn[4][16];
};

static Suite	*reconcile_suite(void);
static int	 seen_cb(const struct outbox_event *, void *);

static int
seen_cb(const struct outbox_event *ev, void *arg)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, 4);
	s->kind[s->n] = ev->kind;
	snprintf(s->rcpt[s->n], sizeof(s->rcpt[0]), "%s",
	    ev->recipient != NULL ? ev->recipient : "");
	snprintf(s->dsn[s->n], sizeof(s->dsn[0]), "%s",
	    ev->dsn != NULL ? ev->dsn : "");
	s->n++;
	return 0;
}

START_TEST(test_lost_file)
{
	struct fix f;
	struct seen seen;
	struct qstore_txn *t;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct qmgr_job *jobs[4];
	char qid[QID_SIZE], keep[QID_SIZE], path[PATH_MAX];
	char *rcpts[] = { "a@x.test", "b@x.test" };

	fix_setup(&f);
	/* The null sender's: no report is owed, nothing is kept. */
	f.sender = "";
	fix_commit(&f, rcpts, 2, qid);
	fix_commit(&f, rcpts, 1, keep);
	ck_assert_int_eq(qstore_file_path(path, sizeof(path), f.dir, qid), 0);
	ck_assert_int_eq(unlink(path), 0);
	qmgr_reconcile();
	memset(&seen, 0, sizeof(seen));
	t = qstore_txn_begin(qmgr_queue, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), -1);
	ck_assert_int_eq(qstore_msg_get(t, keep, &m), 0);
	ck_assert_int_eq(outbox_iter(t, 0, 0, seen_cb, &seen, f.why), 0);
	qstore_txn_abort(t);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_int_eq(seen.kind[0], OUTBOX_BOUNCED);
	ck_assert_str_eq(seen.rcpt[0], "a@x.test");
	ck_assert_str_eq(seen.dsn[0], "5.3.0");
	ck_assert_int_eq(seen.kind[1], OUTBOX_BOUNCED);
	ck_assert_str_eq(seen.rcpt[1], "b@x.test");
	/* The lost message's records are gone; the other is still due. */
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), -1);
	ck_assert_int_eq(fix_rcpt(&f, keep, 0, &r), 0);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, 4), 1);
	ck_assert_str_eq(jobs[0]->qid, keep);
	qmgr_job_free(jobs[0]);
	fix_teardown(&f);
}
END_TEST

/*
 * A lost file's recipients fail like any others: their sender is owed a
 * report (bounce makes it without the original), so the records stay,
 * due for bounce, not for smtp; a second start keeps them so.
 */
START_TEST(test_lost_file_reported)
{
	struct fix f;
	struct qstore_msginfo m;
	struct qstore_txn *t;
	struct qstore_rcpt r;
	struct qmgr_job *jobs[4];
	char qid[QID_SIZE], path[PATH_MAX];
	char *rcpts[] = { "a@x.test", "b@x.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 2, qid);
	ck_assert_int_eq(qstore_file_path(path, sizeof(path), f.dir, qid), 0);
	ck_assert_int_eq(unlink(path), 0);
	qmgr_reconcile();
	qmgr_reconcile();
	t = qstore_txn_begin(qmgr_queue, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_uint_eq(m.left, 2);
	qstore_txn_abort(t);
	for (uint32_t i = 0; i < 2; i++) {
		ck_assert_int_eq(fix_rcpt(&f, qid, i, &r), 0);
		ck_assert_int_eq(r.state, QSTORE_FAILED);
		ck_assert_int_eq(r.report, QSTORE_REPORT_FAILED);
		ck_assert_str_eq(r.dsn, "5.3.0");
	}
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, 4), 0);
	ck_assert_uint_eq(qmgr_bounce_busy(), 1);
	fix_teardown(&f);
}
END_TEST

static Suite *
reconcile_suite(void)
{
	Suite *s = suite_create("qmgr_reconcile");
	TCase *tc = tcase_create("reconcile");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lost_file);
	tcase_add_test(tc, test_lost_file_reported);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(reconcile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
