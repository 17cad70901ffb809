/*
 * check_qmgr_dest.c - unit tests for qmgr's dead-site detection and
 * concurrency window (qmgr_dest.c, qmgr_dest_outcome), against a real
 * queue: a site failure halves what a destination may have at smtp, a
 * session set up widens it again, three failures in a row suspend the
 * destination (its pending and new jobs deferred without smtp), a bounce
 * counts for nothing, and after the suspension one job probes the site.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_qmgr.h"
#include "event.h"

#define JOBS_MAX	16

static Suite	*dest_suite(void);
static size_t	 queue_messages(struct fix *, size_t);
static struct qmgr_job *take(void);
static void	 attempt(struct qmgr_job *, int site_fail, int status);
static size_t	 drain_done(const char *reply_prefix);

/* n messages for one recipient at x.test, their jobs queued. */
static size_t
queue_messages(struct fix *f, size_t n)
{
	char *rcpts[] = { "user@x.test" };
	char qid[QID_SIZE];

	for (size_t i = 0; i < n; i++)
		fix_commit(f, rcpts, 1, qid);
	qmgr_sched_scan(JOBS_MAX);
	return qmgr_job_npending();
}

static struct qmgr_job *
take(void)
{
	return qmgr_dest_take(fix_held_none);
}

/* The job comes back from smtp with status for its recipient. */
static void
attempt(struct qmgr_job *job, int site_fail, int status)
{
	job->site_fail = site_fail;
	qmgr_job_result(&job->rcpts[0], status, status == QSTORE_DEFERRED ?
	    "4.3.2" : status == QSTORE_FAILED ? "5.1.2" : "2.0.0",
	    status == QSTORE_DEFERRED ? "421 4.3.2 busy" : "done");
	qmgr_dest_outcome(job);
	qmgr_dest_release(job);
	qmgr_job_done(job);
}

/*
 * How many done jobs were deferred with a reply starting with prefix;
 * then their results are applied (a deferral waits out its backoff, so
 * the next scan finds only new messages).
 */
static size_t
drain_done(const char *reply_prefix)
{
	const struct qmgr_job *job;
	size_t n = 0;

	for (job = qmgr_job_done_first(); job != NULL; job = job->next)
		if (job->rcpts[0].done &&
		    job->rcpts[0].status == QSTORE_DEFERRED &&
		    strncmp(job->rcpts[0].reply, reply_prefix,
		    strlen(reply_prefix)) == 0)
			n++;
	(void)qmgr_results_apply();
	return n;
}

START_TEST(test_window_halves_and_grows)
{
	struct fix f;
	struct qmgr_job *jobs[4];

	fix_setup(&f);
	ck_assert_uint_eq(queue_messages(&f, 8), 8);
	for (size_t i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	/* One of four at smtp fails: two at a time from now on. */
	attempt(jobs[0], 1, QSTORE_DEFERRED);
	ck_assert_ptr_null(take());		/* three still out */
	attempt(jobs[1], 0, QSTORE_DELIVERED);	/* window 3, two out */
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_ptr_null(take());		/* three out */
	attempt(jobs[2], 0, QSTORE_DELIVERED);	/* window 4, two out */
	ck_assert_ptr_nonnull(jobs[1] = take());
	ck_assert_ptr_nonnull(jobs[2] = take());
	ck_assert_ptr_null(take());		/* four out */
	for (size_t i = 0; i < 4; i++)
		attempt(jobs[i], 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	/* The last of the eight. */
	ck_assert_ptr_nonnull(jobs[0] = take());
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	ck_assert_ptr_null(take());
	(void)drain_done("");
	fix_teardown(&f);
}
END_TEST

START_TEST(test_three_in_a_row_suspend)
{
	struct fix f;
	struct qmgr_job *job;

	fix_setup(&f);
	ck_assert_uint_eq(queue_messages(&f, 6), 6);
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(job = take());
		attempt(job, 1, QSTORE_DEFERRED);
	}
	ck_assert_uint_eq(qmgr_job_npending(), 4);
	ck_assert_ptr_nonnull(job = take());
	f.cfg.queue_min_backoff = 1;		/* suspended for 1 s */
	attempt(job, 1, QSTORE_DEFERRED);
	f.cfg.queue_min_backoff = 300;		/* deferrals wait */
	/* The third: the three pending jobs are deferred, none taken. */
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_ptr_null(take());
	/* The three taken were deferred by smtp, the rest here. */
	ck_assert_uint_eq(drain_done("delivery temporarily suspended: "
	    "421 4.3.2 busy"), 3);
	/* A message that comes meanwhile is deferred as it is queued. */
	ck_assert_uint_eq(queue_messages(&f, 1), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 1);
	/* After the suspension one job at a time probes the site. */
	usleep(1100 * 1000);
	ck_assert_uint_eq(queue_messages(&f, 2), 2);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_ptr_null(take());
	/* It fails: suspended again at once, the other deferred. */
	f.cfg.queue_min_backoff = 1;
	attempt(job, 1, QSTORE_DEFERRED);
	f.cfg.queue_min_backoff = 300;
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 1);
	usleep(1100 * 1000);
	ck_assert_uint_eq(queue_messages(&f, 2), 2);
	ck_assert_ptr_nonnull(job = take());
	/* It answers: alive, and the next goes while this one is out. */
	attempt(job, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(job = take());
	attempt(job, 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_bounces_do_not_count)
{
	struct fix f;
	struct qmgr_job *job;

	fix_setup(&f);
	ck_assert_uint_eq(queue_messages(&f, 5), 5);
	/* No session, but a final answer (no such domain): not the site. */
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_nonnull(job = take());
		attempt(job, 1, QSTORE_FAILED);
	}
	ck_assert_uint_eq(qmgr_job_npending(), 1);
	ck_assert_ptr_nonnull(job = take());
	attempt(job, 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	fix_teardown(&f);
}
END_TEST

static Suite *
dest_suite(void)
{
	Suite *s;
	TCase *tc;

	/* The shared fixture's helpers this suite does without. */
	(void)fix_pending;
	(void)fix_rcpt;
	s = suite_create("qmgr_dest");
	tc = tcase_create("deadsite");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_window_halves_and_grows);
	tcase_add_test(tc, test_three_in_a_row_suspend);
	tcase_add_test(tc, test_bounces_do_not_count);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(dest_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
