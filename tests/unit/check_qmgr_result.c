/*
 * check_qmgr_result.c - unit tests for qmgr's result application
 * (qmgr_result.c) against a real queue: a delivered recipient's record
 * goes, a deferred one gets attempts + 1 and its next attempt between the
 * minimum and maximum backoff, a 5xx fails it, a deferral past the
 * maximum lifetime expires it, the message and its file go once every
 * recipient is final (also when they went in different jobs), and a job
 * leaves the in-flight set once applied; each result's event is in the
 * outbox, of the right kind, once the results are applied; a first
 * deferral that the shipped rules call greylisting is retried after
 * queue.greylist_retry, a later one or another 4xx after the backoff.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_qmgr.h"
#include "event.h"
#include "outbox.h"

#define JOBS_MAX	16

static Suite	*result_suite(void);
static struct qmgr_job *one_job(void);
static int	 msg_exists(struct fix *, const char *);
static int	 file_exists(struct fix *, const char *);
static void	 make_due(struct fix *, const char *, uint32_t);
static int	 event_cb(const struct outbox_event *, void *);
static int	 sched_count_cb(const char *, uint32_t, int64_t, void *);
static size_t	 sched_count(struct fix *);

/* What event_cb saw: kind and recipient of each event. */
struct events_seen {
	size_t			 n;
	enum outbox_kind	 kind[8];
	char			 rcpt[8][64];
	char			 relay[8][64];
};

static void	 events_get(struct fix *, struct events_seen *);

/* The scan's only job. */
static int
sched_count_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	(void)qid;
	(void)index;
	(void)when;
	(*(size_t *)arg)++;
	return 0;
}

/* Entries in the schedule, of any message. */
static size_t
sched_count(struct fix *f)
{
	struct qstore_txn *t;
	size_t n = 0;

	t = qstore_txn_begin(qmgr_queue, 0, f->why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_sched_iter(t, sched_count_cb, &n), 0);
	qstore_txn_abort(t);
	return n;
}

static struct qmgr_job *
one_job(void)
{
	struct qmgr_job *jobs[JOBS_MAX];

	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 1);
	return jobs[0];
}

/* Makes a deferred recipient due now, as time passing would. */
static void
make_due(struct fix *f, const char *qid, uint32_t index)
{
	struct qstore_txn *t;
	struct qstore_rcpt r;
	int64_t old;

	t = qstore_txn_begin(qmgr_queue, 1, f->why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_rcpt_get(t, qid, index, &r), 0);
	old = r.next_attempt;
	r.next_attempt = time(NULL) - 1;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f->why), 0);
}

static int
msg_exists(struct fix *f, const char *qid)
{
	struct qstore_msginfo m;
	struct qstore_txn *t;
	int rc;

	t = qstore_txn_begin(qmgr_queue, 0, f->why);
	ck_assert_ptr_nonnull(t);
	rc = qstore_msg_get(t, qid, &m);
	qstore_txn_abort(t);
	return rc == 0;
}

static int
file_exists(struct fix *f, const char *qid)
{
	char path[PATH_MAX];

	ck_assert_int_eq(qstore_file_path(path, sizeof(path), f->dir, qid), 0);
	return access(path, F_OK) == 0;
}

START_TEST(test_backoff)
{
	struct fix f;

	fix_setup(&f);
	ck_assert_int_eq(qmgr_result_backoff(1), 300);
	ck_assert_int_eq(qmgr_result_backoff(2), 600);
	ck_assert_int_eq(qmgr_result_backoff(3), 1200);
	ck_assert_int_eq(qmgr_result_backoff(4), 2400);
	ck_assert_int_eq(qmgr_result_backoff(5), 3600);
	ck_assert_int_eq(qmgr_result_backoff(1000), 3600);
	/* A destination's retry_interval starts the doubling instead. */
	ck_assert_int_eq(qmgr_result_backoff_from(60, 1), 60);
	ck_assert_int_eq(qmgr_result_backoff_from(60, 2), 120);
	ck_assert_int_eq(qmgr_result_backoff_from(60, 7), 3600);
	/* One over queue.max_backoff is the cap itself. */
	ck_assert_int_eq(qmgr_result_backoff_from(7200, 1), 7200);
	ck_assert_int_eq(qmgr_result_backoff_from(7200, 5), 7200);
	ck_assert_int_eq(qmgr_result_backoff_from(0, 2), 600);
	fix_teardown(&f);
}
END_TEST

#define SHIPPED_RULES	"etc/bounce-classes.yaml"
#define POSTGREY	"450 4.2.0 <a@x.test>: Recipient address rejected: " \
			"Greylisted, see " \
			"http://postgrey.schweikert.ch/help/x.test.html"
#define NOT_GREY	"451 4.3.0 Temporary local problem, try again later"

/* qmgr reads the shipped rules, with a greylist window of 2 minutes. */
static void
grey_setup(struct fix *f, int64_t window)
{
	static char *path[] = { SHIPPED_RULES };
	static unsigned long line[] = { 1 };

	f->cfg.bounce_classes.path = path;
	f->cfg.bounce_classes.line = line;
	f->cfg.bounce_classes.n = 1;
	f->cfg.queue_greylist_retry = window;
	qmgr_result_init(&f->cfg);
}

/* The choice itself: greylisting once, then the normal schedule. */
START_TEST(test_greylist_choice)
{
	struct fix f;
	int grey = -1;

	fix_setup(&f);
	grey_setup(&f, 120);
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.2.0", POSTGREY, 0, &grey),
	    120);
	ck_assert_int_eq(grey, 1);
	/* milter-greylist, and Mimecast's greylisting reply. */
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.7.1", "451 4.7.1 "
	    "Greylisting in action, please come back in 00:05:00", 0, &grey),
	    120);
	ck_assert_int_eq(grey, 1);
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.0.0", "451 Internal "
	    "resource is temporarily unavailable - https://community."
	    "mimecast.com/docs/DOC-1369#451", 0, &grey), 120);
	ck_assert_int_eq(grey, 1);
	/* The second deferral: the window has passed, normal backoff. */
	ck_assert_int_eq(qmgr_result_retry_in(2, "4.2.0", POSTGREY, 0, &grey),
	    600);
	ck_assert_int_eq(grey, 0);
	/* Not greylisting: the backoff from the first deferral on. */
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.3.0", NOT_GREY, 0, &grey),
	    300);
	ck_assert_int_eq(grey, 0);
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.7.0", "421 4.7.0 "
	    "[TSS04] Messages from 192.0.2.1 temporarily deferred due to "
	    "unexpected volume or user complaints", 0, &grey), 300);
	ck_assert_int_eq(grey, 0);
	/* A window longer than the backoff is still the window. */
	grey_setup(&f, 900);
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.2.0", POSTGREY, 0, &grey),
	    900);
	/* 0: greylisting is a deferral like any other. */
	grey_setup(&f, 0);
	ck_assert_int_eq(qmgr_result_retry_in(1, "4.2.0", POSTGREY, 0, &grey),
	    300);
	ck_assert_int_eq(grey, 0);
	fix_teardown(&f);
}
END_TEST

/* Through the results: the record's next attempt, twice. */
START_TEST(test_greylist_applied)
{
	struct fix f;
	struct qmgr_job *job;
	struct qstore_rcpt r;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@x.test" };
	int64_t before = time(NULL), after;

	fix_setup(&f);
	grey_setup(&f, 120);
	fix_commit(&f, rcpts, 2, qid);
	job = one_job();
	qmgr_job_result(&job->rcpts[0], QSTORE_DEFERRED, "4.2.0", POSTGREY);
	qmgr_job_result(&job->rcpts[1], QSTORE_DEFERRED, "4.3.0", NOT_GREY);
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
	ck_assert_uint_eq(qmgr_results_apply(), 2);
	after = time(NULL);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_uint_eq(r.attempts, 1);
	ck_assert_int_ge(r.next_attempt, before + 120);
	ck_assert_int_le(r.next_attempt, after + 120);
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), 0);
	ck_assert_int_ge(r.next_attempt, before + f.cfg.queue_min_backoff);
	ck_assert_int_le(r.next_attempt, after + f.cfg.queue_min_backoff);

	/* Greylisted again at the retry: now the normal backoff (2nd). */
	make_due(&f, qid, 0);
	job = one_job();
	ck_assert_uint_eq(job->nrcpts, 1);
	before = time(NULL);
	qmgr_job_result(&job->rcpts[0], QSTORE_DEFERRED, "4.2.0", POSTGREY);
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	after = time(NULL);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_uint_eq(r.attempts, 2);
	ck_assert_int_ge(r.next_attempt, before + 600);
	ck_assert_int_le(r.next_attempt, after + 600);
	grey_setup(&f, 0);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_delivered_removes)
{
	struct fix f;
	struct qmgr_job *job;
	struct qstore_rcpt r;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@x.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 2, qid);
	job = one_job();
	ck_assert_int_eq(qmgr_results_due_in(), -1);
	qmgr_job_result(&job->rcpts[0], QSTORE_DELIVERED, "2.0.0", "250 ok");
	qmgr_job_result(&job->rcpts[1], QSTORE_DELIVERED, "2.0.0", "250 ok");
	qmgr_job_set_relay(job, "mx.x.test[192.0.2.1]:25");
	qmgr_job_done(job);
	ck_assert_int_ge(qmgr_results_due_in(), 0);
	ck_assert_int_le(qmgr_results_due_in(), QMGR_RESULTS_DELAY_MS);
	ck_assert_uint_eq(qmgr_results_apply(), 2);
	/* The records, the message and its file are gone; so is the job. */
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), -1);
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), -1);
	ck_assert(!msg_exists(&f, qid));
	ck_assert(!file_exists(&f, qid));
	ck_assert(!qmgr_job_in_flight(qid, 0));
	ck_assert_ptr_null(qmgr_job_done_first());
	ck_assert_int_eq(qmgr_results_due_in(), -1);
	fix_teardown(&f);
}
END_TEST

static int
event_cb(const struct outbox_event *ev, void *arg)
{
	struct events_seen *s = arg;

	ck_assert_uint_lt(s->n, 8);
	s->kind[s->n] = ev->kind;
	snprintf(s->rcpt[s->n], sizeof(s->rcpt[0]), "%s",
	    ev->recipient != NULL ? ev->recipient : "");
	snprintf(s->relay[s->n], sizeof(s->relay[0]), "%s",
	    ev->relay != NULL ? ev->relay : "");
	s->n++;
	return 0;
}

/* Every event in the outbox, oldest first. */
static void
events_get(struct fix *f, struct events_seen *seen)
{
	struct qstore_txn *t;

	memset(seen, 0, sizeof(*seen));
	t = qstore_txn_begin(qmgr_queue, 0, f->why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(outbox_iter(t, 0, 0, event_cb, seen, f->why), 0);
	qstore_txn_abort(t);
}

/*
 * The results' events are in the outbox after the results transaction,
 * in its order and of the right kinds; an expiry is its own kind.
 */
START_TEST(test_events)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	struct events_seen seen;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@x.test", "c@x.test", "d@y.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 4, qid);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 2);
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_DELIVERED, "2.0.0",
	    "250 ok");
	qmgr_job_result(&jobs[0]->rcpts[1], QSTORE_DEFERRED, "4.2.0",
	    "451 later");
	qmgr_job_result(&jobs[0]->rcpts[2], QSTORE_FAILED, "5.1.1",
	    "550 no such user");
	qmgr_job_set_relay(jobs[0], "mx.x.test[192.0.2.1]:25");
	qmgr_job_done(jobs[0]);
	jobs[1]->arrival -= f.cfg.queue_max_lifetime + 1;
	qmgr_job_result(&jobs[1]->rcpts[0], QSTORE_DEFERRED, "4.4.1",
	    "connect failed");
	qmgr_job_set_relay(jobs[1], "none");
	qmgr_job_done(jobs[1]);
	ck_assert_uint_eq(qmgr_results_apply(), 4);
	events_get(&f, &seen);
	/* fix_commit's message has no accepted event: only the results. */
	ck_assert_uint_eq(seen.n, 4);
	ck_assert_int_eq(seen.kind[0], OUTBOX_DELIVERED);
	ck_assert_str_eq(seen.rcpt[0], "a@x.test");
	ck_assert_str_eq(seen.relay[0], "mx.x.test[192.0.2.1]:25");
	ck_assert_int_eq(seen.kind[1], OUTBOX_DEFERRED);
	ck_assert_int_eq(seen.kind[2], OUTBOX_BOUNCED);
	ck_assert_int_eq(seen.kind[3], OUTBOX_EXPIRED);
	ck_assert_str_eq(seen.rcpt[3], "d@y.test");
	ck_assert_str_eq(seen.relay[3], "none");
	fix_teardown(&f);
}
END_TEST

/*
 * A result that expired and whose commit is tried again (the map was
 * full, say) arrives as FAILED: its event is still an expiry.
 */
START_TEST(test_expired_retried)
{
	struct fix f;
	struct events_seen seen;
	struct qmgr_job *job;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 1, qid);
	job = one_job();
	/* What the first, failed, try left: FAILED, marked expired. */
	qmgr_job_result(&job->rcpts[0], QSTORE_FAILED, "4.4.1",
	    "connect failed");
	job->rcpts[0].expired = 1;
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	events_get(&f, &seen);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_int_eq(seen.kind[0], OUTBOX_EXPIRED);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_deferred_and_failed)
{
	struct fix f;
	struct qmgr_job *job;
	struct qstore_rcpt r;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@x.test", "c@x.test" };
	int64_t before = time(NULL), after;

	fix_setup(&f);
	fix_commit(&f, rcpts, 3, qid);
	job = one_job();
	qmgr_job_result(&job->rcpts[0], QSTORE_DEFERRED, "4.2.0",
	    "451 try later");
	qmgr_job_result(&job->rcpts[1], QSTORE_FAILED, "5.1.1",
	    "550 no such user");
	qmgr_job_result(&job->rcpts[2], QSTORE_DELIVERED, "2.0.0", "250 ok");
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
	ck_assert_uint_eq(qmgr_results_apply(), 3);
	after = time(NULL);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_DEFERRED);
	ck_assert_uint_eq(r.attempts, 1);
	ck_assert_str_eq(r.dsn, "4.2.0");
	ck_assert_str_eq(r.reply, "451 try later");
	ck_assert_int_ge(r.next_attempt, before + f.cfg.queue_min_backoff);
	ck_assert_int_le(r.next_attempt, after + f.cfg.queue_min_backoff);
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_FAILED);
	ck_assert_str_eq(r.dsn, "5.1.1");
	ck_assert_int_eq(fix_rcpt(&f, qid, 2, &r), -1);
	/* One recipient is not final: the message stays. */
	ck_assert(msg_exists(&f, qid));
	ck_assert(file_exists(&f, qid));
	ck_assert(!qmgr_job_in_flight(qid, 0));

	/* Deferred again, later attempts: the backoff grows to the max. */
	for (int i = 0; i < 6; i++) {
		make_due(&f, qid, 0);
		job = one_job();
		ck_assert_uint_eq(job->nrcpts, 1);
		qmgr_job_result(&job->rcpts[0], QSTORE_DEFERRED, "4.4.1",
		    "connect failed");
		qmgr_job_set_relay(job, "none");
		qmgr_job_done(job);
		ck_assert_uint_eq(qmgr_results_apply(), 1);
		ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
		ck_assert_uint_eq(r.attempts, (uint32_t)i + 2);
		ck_assert_int_ge(r.next_attempt - time(NULL),
		    f.cfg.queue_min_backoff - 1);
		ck_assert_int_le(r.next_attempt - time(NULL),
		    f.cfg.queue_max_backoff);
	}
	ck_assert_int_ge(r.next_attempt - time(NULL),
	    f.cfg.queue_max_backoff - 1);

	/* The last recipient delivered: now the message goes. */
	make_due(&f, qid, 0);
	job = one_job();
	qmgr_job_result(&job->rcpts[0], QSTORE_DELIVERED, "2.0.0", "250 ok");
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	/* The failed one is owed its report: the message waits for it. */
	ck_assert(msg_exists(&f, qid));
	ck_assert(file_exists(&f, qid));
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), 0);
	ck_assert_int_eq(r.report, QSTORE_REPORT_FAILED);
	ck_assert_str_eq(r.reply, "550 no such user");
	fix_teardown(&f);
}
END_TEST

START_TEST(test_expiry)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	struct qstore_rcpt r;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@y.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 2, qid);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 2);
	/* Older than the maximum lifetime: a deferral is final. */
	jobs[0]->arrival -= f.cfg.queue_max_lifetime + 1;
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_DEFERRED, "4.4.1",
	    "connect failed");
	qmgr_job_set_relay(jobs[0], "none");
	qmgr_job_done(jobs[0]);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_FAILED);
	ck_assert_uint_eq(r.attempts, 1);
	ck_assert_str_eq(r.dsn, "4.4.1");
	/* The other recipient is not final: the message stays. */
	ck_assert(msg_exists(&f, qid));
	ck_assert(qmgr_job_in_flight(qid, 1));
	qmgr_job_free(jobs[1]);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_two_jobs_one_message)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test", "b@y.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 2, qid);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 2);
	/* One job's recipient is final; the other job is still out. */
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_DELIVERED, "2.0.0",
	    "250 ok");
	qmgr_job_set_relay(jobs[0], "none");
	qmgr_job_done(jobs[0]);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	ck_assert(msg_exists(&f, qid));
	ck_assert(file_exists(&f, qid));
	ck_assert(!qmgr_job_in_flight(qid, 0));
	ck_assert(qmgr_job_in_flight(qid, 1));
	/* The last one: only now do the records and the file go. */
	qmgr_job_result(&jobs[1]->rcpts[0], QSTORE_DELIVERED, "2.0.0",
	    "250 ok");
	qmgr_job_set_relay(jobs[1], "none");
	qmgr_job_done(jobs[1]);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	ck_assert(!msg_exists(&f, qid));
	ck_assert(!file_exists(&f, qid));
	/* Nothing of it is left in the schedule either. */
	ck_assert_uint_eq(sched_count(&f), 0);
	fix_teardown(&f);
}
END_TEST

/*
 * Who is owed a report: a failure (with no NOTIFY, the default), never
 * the null sender's failure (no bounce of a bounce); the owed recipient
 * keeps its record, reply and schedule entry, so the message stays and
 * the scheduler hands it to bounce, not to smtp.
 */
START_TEST(test_report_owed)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	struct qstore_rcpt r;
	char qid[QID_SIZE], qid0[QID_SIZE];
	char *rcpts[] = { "a@x.test" };

	fix_setup(&f);
	fix_commit(&f, rcpts, 1, qid);
	f.sender = "";
	fix_commit(&f, rcpts, 1, qid0);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 2);
	for (int i = 0; i < 2; i++) {
		qmgr_job_result(&jobs[i]->rcpts[0], QSTORE_FAILED, "5.1.1",
		    "550 5.1.1 no such user");
		snprintf(jobs[i]->rcpts[0].class,
		    sizeof(jobs[i]->rcpts[0].class), "bad-mailbox");
		qmgr_job_set_relay(jobs[i], "mx.x.test[192.0.2.1]:25");
		qmgr_job_done(jobs[i]);
	}
	ck_assert_uint_eq(qmgr_results_apply(), 2);
	/* The null sender's message is gone at once, unreported. */
	ck_assert(!msg_exists(&f, qid0));
	ck_assert(!file_exists(&f, qid0));
	/* The other waits for its report, with what it must say. */
	ck_assert(msg_exists(&f, qid));
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_FAILED);
	ck_assert_int_eq(r.report, QSTORE_REPORT_FAILED);
	ck_assert_str_eq(r.class, "bad-mailbox");
	ck_assert_str_eq(r.relay, "mx.x.test[192.0.2.1]:25");
	ck_assert_str_eq(r.reply, "550 5.1.1 no such user");
	ck_assert_int_ne(r.last_attempt, 0);
	/* Due now, for bounce: a report job, no delivery job. */
	ck_assert_uint_eq(qmgr_bounce_busy(), 0);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 0);
	ck_assert_uint_eq(qmgr_bounce_busy(), 1);
	ck_assert(qmgr_job_in_flight(qid, 0));
	fix_teardown(&f);
}
END_TEST

/*
 * NOTIFY decides: NEVER and a list without FAILURE owe nothing; SUCCESS
 * owes a "relayed" report only when the next hop did not take DSN over,
 * and keeps the delivered record until it is made.
 */
START_TEST(test_report_notify)
{
	static unsigned notify[] = { QSTORE_NOTIFY_NEVER,
	    QSTORE_NOTIFY_DELAY, QSTORE_NOTIFY_SUCCESS,
	    QSTORE_NOTIFY_SUCCESS | QSTORE_NOTIFY_FAILURE };
	static char *rcpts[] = { "a@x.test", "b@x.test", "c@x.test",
	    "d@x.test" };
	struct qstore_envelope env;
	struct qstore_new *qn;
	struct qstore_rcpt r;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE];
	struct fix f;

	fix_setup(&f);
	memset(&env, 0, sizeof(env));
	env.sender = "s@example.org";
	env.rcpts = rcpts;
	env.nrcpts = 4;
	env.notify = notify;
	env.client_addr = env.client_name = env.auth_user = "";
	qn = qstore_new_begin(qmgr_queue, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_int_eq(qstore_commit(qmgr_queue, &qn, 1, f.why), 0);
	qstore_new_free(qn);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 1);
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_FAILED, "5.1.1", "550 no");
	qmgr_job_result(&jobs[0]->rcpts[1], QSTORE_FAILED, "5.1.1", "550 no");
	qmgr_job_result(&jobs[0]->rcpts[2], QSTORE_DELIVERED, "2.0.0",
	    "250 ok");
	qmgr_job_result(&jobs[0]->rcpts[3], QSTORE_DELIVERED, "2.0.0",
	    "250 ok");
	jobs[0]->rcpts[3].dsn_passed = 1;
	qmgr_job_set_relay(jobs[0], "none");
	qmgr_job_done(jobs[0]);
	ck_assert_uint_eq(qmgr_results_apply(), 4);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.report, QSTORE_REPORT_NONE);
	ck_assert_int_eq(fix_rcpt(&f, qid, 1, &r), 0);
	ck_assert_int_eq(r.report, QSTORE_REPORT_NONE);
	ck_assert_int_eq(fix_rcpt(&f, qid, 2, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_DELIVERED);
	ck_assert_int_eq(r.report, QSTORE_REPORT_RELAYED);
	ck_assert_int_eq(fix_rcpt(&f, qid, 3, &r), -1);
	ck_assert(msg_exists(&f, qid));
	fix_teardown(&f);
}
END_TEST

/*
 * Messages waiting for a report while bounce cannot be reached take no
 * delivery slot: a newer message still gets its delivery job.
 */
START_TEST(test_reports_waiting_take_no_slot)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[3][QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	size_t n;

	fix_setup(&f);
	fix_commit(&f, rcpts, 1, qid[0]);
	fix_commit(&f, rcpts, 1, qid[1]);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 2);
	for (int i = 0; i < 2; i++) {
		qmgr_job_result(&jobs[i]->rcpts[0], QSTORE_FAILED, "5.1.1",
		    "550 5.1.1 no such user");
		qmgr_job_set_relay(jobs[i], "none");
		qmgr_job_done(jobs[i]);
	}
	ck_assert_uint_eq(qmgr_results_apply(), 2);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(qmgr_bounce_busy(), 2);
	/* No private/bounce here: bounce is unreachable, reports wait. */
	qmgr_bounce_run();
	ck_assert_uint_eq(qmgr_bounce_busy(), 0);
	ck_assert(!qmgr_bounce_ready());
	fix_commit(&f, rcpts, 1, qid[2]);
	/* One free slot: it goes to the new message, not the waiting ones. */
	qmgr_sched_scan(1);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(jobs[0]->qid, qid[2]);
	qmgr_job_free(jobs[0]);
	fix_teardown(&f);
}
END_TEST

/*
 * relayq -f while a job is in flight: the flush cannot change its
 * recipients, so one that defers afterwards is due at once, not after
 * its backoff.
 */
START_TEST(test_flush_reaches_in_flight)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	struct qstore_rcpt r;
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	int64_t before;

	fix_setup(&f);
	fix_commit(&f, rcpts, 1, qid);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, JOBS_MAX), 1);
	jobs[0]->dispatched = ev_now_ms();
	ck_assert_int_eq(qmgr_flush(f.why), 0);
	before = time(NULL);
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_DEFERRED, "4.4.1",
	    "connect failed");
	qmgr_job_set_relay(jobs[0], "none");
	qmgr_job_done(jobs[0]);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_DEFERRED);
	ck_assert_int_le(r.next_attempt, before + 1);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_gathering)
{
	struct fix f;
	struct qmgr_job *jobs[JOBS_MAX];
	char qid[QID_SIZE], **rcpts;
	size_t n, i, k;

	fix_setup(&f);
	/* 3 jobs, 210 results: past QMGR_TXN_UPDATES, due at once. */
	rcpts = calloc(210, sizeof(*rcpts));
	ck_assert_ptr_nonnull(rcpts);
	for (i = 0; i < 210; i++) {
		rcpts[i] = calloc(1, 32);
		ck_assert_ptr_nonnull(rcpts[i]);
		snprintf(rcpts[i], 32, "r%zu@x.test", i);
	}
	fix_commit(&f, rcpts, 210, qid);
	qmgr_sched_scan(16);
	n = fix_pending(jobs, JOBS_MAX);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		for (k = 0; k < jobs[i]->nrcpts; k++)
			qmgr_job_result(&jobs[i]->rcpts[k], QSTORE_DELIVERED,
			    "2.0.0", "250 ok");
		qmgr_job_set_relay(jobs[i], "none");
		qmgr_job_done(jobs[i]);
	}
	ck_assert_int_eq(qmgr_results_due_in(), 0);
	ck_assert_uint_eq(qmgr_results_apply(), 210);
	ck_assert(!msg_exists(&f, qid));
	ck_assert_ptr_null(qmgr_job_done_first());
	for (i = 0; i < 210; i++)
		free(rcpts[i]);
	free(rcpts);
	fix_teardown(&f);
}
END_TEST

static Suite *
result_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("qmgr_result");
	tc = tcase_create("apply");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_greylist_choice);
	tcase_add_test(tc, test_greylist_applied);
	tcase_add_test(tc, test_delivered_removes);
	tcase_add_test(tc, test_deferred_and_failed);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_two_jobs_one_message);
	tcase_add_test(tc, test_report_owed);
	tcase_add_test(tc, test_report_notify);
	tcase_add_test(tc, test_reports_waiting_take_no_slot);
	tcase_add_test(tc, test_flush_reaches_in_flight);
	tcase_add_test(tc, test_gathering);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_expired_retried);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(result_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
