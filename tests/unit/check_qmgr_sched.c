/*
 * check_qmgr_sched.c - unit tests for qmgr's scheduler (qmgr_sched.c) and
 * the in-flight set (qmgr_job.c), against a real queue: due recipients
 * grouped by next hop into jobs (transport entries shared), at most
 * QMGR_JOB_RCPTS_MAX per job, the slot limit (and a new scan wanted when
 * it left due work), recipients in flight never picked twice while the
 * message's others still go, and future entries left for later.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_qmgr.h"
#include "event.h"
#include "xalloc.h"

#define JOBS_MAX	16

static Suite	*sched_suite(void);
static void	 free_jobs(struct qmgr_job **, size_t);
static char	*job_rcpts(const struct qmgr_job *, char *, size_t);

static void
free_jobs(struct qmgr_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		qmgr_job_free(jobs[i]);
}

/* "i,j,k": the job's recipient indexes. */
static char *
job_rcpts(const struct qmgr_job *job, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < job->nrcpts; i++) {
		snprintf(buf + len, size - len, "%s%u", i > 0 ? "," : "",
		    (unsigned)job->rcpts[i].index);
		len = strlen(buf);
	}
	return buf;
}

START_TEST(test_group_by_nexthop)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE], buf[64];
	char *rcpts[] = { "a@x.test", "b@y.test", "c@X.test", "d@x.test" };
	struct qstore_rcpt r;
	size_t n;

	fix_setup(&f);
	fix_commit(&f, rcpts, 4, qid);
	qmgr_sched_scan(16);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(jobs[0]->qid, qid);
	ck_assert_str_eq(job_rcpts(jobs[0], buf, sizeof(buf)), "0,2,3");
	ck_assert_str_eq(jobs[0]->rcpts[1].address, "c@X.test");
	ck_assert_str_eq(jobs[0]->sender, "sender@example.org");
	ck_assert_str_eq(job_rcpts(jobs[1], buf, sizeof(buf)), "1");
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	/* Nothing is written when a job is made. */
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_PENDING);
	ck_assert_uint_eq(r.attempts, 0);
	free_jobs(jobs, n);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_transport_shares_job)
{
	struct fix f;
	struct cfg_transport tr[2] = {
		{ "x.test", "relay.test", 2525, 1, NULL, 0 },
		{ "y.test", "relay.test", 2525, 1, NULL, 0 },
	};
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE], buf[64];
	char *rcpts[] = { "a@x.test", "b@y.test", "c@z.test",
	    "d@sub.y.test" };
	size_t n;

	fix_setup(&f);
	f.cfg.transports = tr;
	f.cfg.ntransports = 2;
	fix_commit(&f, rcpts, 4, qid);
	qmgr_sched_scan(16);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(job_rcpts(jobs[0], buf, sizeof(buf)), "0,1,3");
	ck_assert_str_eq(job_rcpts(jobs[1], buf, sizeof(buf)), "2");
	free_jobs(jobs, n);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_job_rcpts_max)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE], **rcpts;
	size_t n, i, total = 0;

	fix_setup(&f);
	rcpts = xcalloc(250, sizeof(*rcpts));
	for (i = 0; i < 250; i++) {
		rcpts[i] = xcalloc(1, 32);
		snprintf(rcpts[i], 32, "r%zu@x.test", i);
	}
	fix_commit(&f, rcpts, 250, qid);
	qmgr_sched_scan(16);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(jobs[0]->nrcpts, QMGR_JOB_RCPTS_MAX);
	ck_assert_uint_eq(jobs[1]->nrcpts, QMGR_JOB_RCPTS_MAX);
	ck_assert_uint_eq(jobs[2]->nrcpts, 50);
	for (i = 0; i < n; i++)
		for (size_t k = 0; k < jobs[i]->nrcpts; k++, total++)
			ck_assert_uint_eq(jobs[i]->rcpts[k].index, total);
	ck_assert_uint_eq(total, 250);
	free_jobs(jobs, n);
	for (i = 0; i < 250; i++)
		free(rcpts[i]);
	free(rcpts);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_in_flight_not_twice)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX], *again[JOBS_MAX];
	char qid[QID_SIZE], buf[64];
	char *rcpts[] = { "a@slow.test", "b@fast.test", "c@slow.test" };
	size_t n, m;

	fix_setup(&f);
	fix_commit(&f, rcpts, 3, qid);
	qmgr_sched_scan(16);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 2);
	ck_assert(qmgr_job_in_flight(qid, 0));
	ck_assert(qmgr_job_in_flight(qid, 1));
	ck_assert(!qmgr_job_in_flight(qid, 3));
	ck_assert(!qmgr_job_in_flight("0123456789ABCDEF", 0));
	/* Everything is in flight: a scan makes nothing. */
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(again, JOBS_MAX), 0);
	/*
	 * The fast next hop's job ends; the slow one's is still out. The
	 * message's fast recipient goes again, the slow ones do not.
	 */
	ck_assert_str_eq(job_rcpts(jobs[1], buf, sizeof(buf)), "1");
	qmgr_job_free(jobs[1]);
	ck_assert(!qmgr_job_in_flight(qid, 1));
	qmgr_sched_scan(16);
	m = fix_pending(again, JOBS_MAX);
	ck_assert_uint_eq(m, 1);
	ck_assert_str_eq(job_rcpts(again[0], buf, sizeof(buf)), "1");
	free_jobs(again, m);
	qmgr_job_free(jobs[0]);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_slots_and_future)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	struct qstore_txn *t;
	struct qstore_rcpt r;
	char qid[3][QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	int64_t old, now = time(NULL);
	size_t n;

	fix_setup(&f);
	for (int i = 0; i < 3; i++)
		fix_commit(&f, rcpts, 1, qid[i]);
	/* The third message's recipient is due in 100 s. */
	t = qstore_txn_begin(qmgr_queue, 1, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_rcpt_get(t, qid[2], 0, &r), 0);
	old = r.next_attempt;
	r.state = QSTORE_DEFERRED;
	r.next_attempt = now + 100;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	/* One slot: one message, and a scan is wanted for the next. */
	qmgr_sched_scan(1);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(jobs[0]->qid, qid[0]);
	ck_assert(qmgr_sched_wanted());
	/* The rest: the second; the third is not due, but remembered. */
	qmgr_sched_scan(16);
	ck_assert(!qmgr_sched_wanted());
	ck_assert_uint_eq(fix_pending(jobs + 1, JOBS_MAX - 1), 1);
	ck_assert_str_eq(jobs[1]->qid, qid[1]);
	ck_assert_int_gt(qmgr_sched_next_due(), ev_now_ms() + 90000);
	ck_assert_int_le(qmgr_sched_next_due(), ev_now_ms() + 101000);
	free_jobs(jobs, 2);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_want)
{
	struct fix f;

	fix_setup(&f);
	qmgr_sched_scan(16);
	ck_assert(!qmgr_sched_wanted());
	qmgr_sched_want();
	ck_assert(qmgr_sched_wanted());
	qmgr_sched_scan(16);
	ck_assert(!qmgr_sched_wanted());
	ck_assert_int_eq(qmgr_sched_next_due(), -1);
	fix_teardown(&f);
}
END_TEST

/*
 * The lanes: behind bulk jobs waiting in memory, a scan takes the newest
 * transactional message before the older bulk ones still due.
 */
START_TEST(test_transactional_behind_bulk)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE], tqid[QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	size_t n, i;

	fix_setup(&f);
	f.bulk = 1;
	for (i = 0; i < 12; i++)
		fix_commit(&f, rcpts, 1, qid);
	qmgr_sched_scan(4);
	ck_assert_uint_eq(qmgr_job_npending(), 4);
	ck_assert_uint_eq(qmgr_job_nbulk(), 4);
	f.bulk = 0;
	fix_commit(&f, rcpts, 1, tqid);
	qmgr_sched_scan(1);
	ck_assert_uint_eq(qmgr_job_npending(), 5);
	ck_assert_uint_eq(qmgr_job_nbulk(), 4);
	/* Taken first, too, though queued last. */
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(jobs[0]->qid, tqid);
	ck_assert_int_eq(jobs[0]->bulk, 0);
	for (i = 1; i < n; i++)
		ck_assert_int_eq(jobs[i]->bulk, 1);
	free_jobs(jobs, n);
	fix_teardown(&f);
}
END_TEST

static Suite *
sched_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("qmgr_sched");
	tc = tcase_create("scan");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_group_by_nexthop);
	tcase_add_test(tc, test_transport_shares_job);
	tcase_add_test(tc, test_job_rcpts_max);
	tcase_add_test(tc, test_in_flight_not_twice);
	tcase_add_test(tc, test_slots_and_future);
	tcase_add_test(tc, test_want);
	tcase_add_test(tc, test_transactional_behind_bulk);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(sched_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
