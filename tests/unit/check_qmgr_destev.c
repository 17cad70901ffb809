/*
 * check_qmgr_destev.c - unit tests for a destination's events
 * (qmgr_destev.c), against a real queue: each change of state (backoff,
 * its end, a suspension by an on_reply rule, its end, a dead site, a
 * probe's success, a flush) is one destination event in the outbox with
 * its previous state, reason, end and limits; the events ride in the
 * results transaction when one comes, else the loop pass writes them in
 * one of their own; more than QMGR_DESTEV_MAX waiting drops the oldest,
 * counted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "check_qmgr_dest.h"
#include "event.h"
#include "outbox.h"
#include "xalloc.h"

#define SEEN_MAX	(QMGR_DESTEV_MAX + 8)

/* The destination events in the outbox, oldest first. */
struct seen {
	size_t	 n;
	char	 dest[SEEN_MAX][64];
	char	 state[SEEN_MAX][16];
	char	 prev[SEEN_MAX][16];
	char	 reason[SEEN_MAX][128];
	char	 source[SEEN_MAX][64];		/* "": none */
	int64_t	 until[SEEN_MAX];
	uint32_t max_conn[SEEN_MAX], rate_count[SEEN_MAX];
	uint32_t rate_interval[SEEN_MAX];
	size_t	 others;		/* events of messages */
};

static Suite	*destev_suite(void);
static int	 seen_cb(const struct outbox_event *, void *);
static void	 seen_get(struct fix *, struct seen *);
static void	 attempt(struct qmgr_job *, int site_fail, int status,
		    const char *reply);

static int
seen_cb(const struct outbox_event *ev, void *arg)
{
	struct seen *s = arg;
	size_t i = s->n;

	if (ev->kind != OUTBOX_DESTINATION) {
		s->others++;
		return 0;
	}
	ck_assert_uint_lt(i, SEEN_MAX);
	ck_assert_str_eq(ev->qid, "");
	snprintf(s->dest[i], sizeof(s->dest[i]), "%s", ev->destination);
	snprintf(s->state[i], sizeof(s->state[i]), "%s", ev->state);
	snprintf(s->prev[i], sizeof(s->prev[i]), "%s",
	    ev->prev_state != NULL ? ev->prev_state : "");
	snprintf(s->reason[i], sizeof(s->reason[i]), "%s",
	    ev->reason != NULL ? ev->reason : "");
	snprintf(s->source[i], sizeof(s->source[i]), "%s",
	    ev->source != NULL ? ev->source : "");
	s->until[i] = ev->until;
	s->max_conn[i] = ev->max_connections;
	s->rate_count[i] = ev->rate_count;
	s->rate_interval[i] = ev->rate_interval;
	s->n++;
	return 0;
}

static void
seen_get(struct fix *f, struct seen *s)
{
	struct qstore_txn *t;

	memset(s, 0, sizeof(*s));
	ck_assert_ptr_nonnull(t = qstore_txn_begin(qmgr_queue, 0, f->why));
	ck_assert_int_eq(outbox_iter(t, 0, 0, seen_cb, s, f->why), 0);
	qstore_txn_abort(t);
}

/* The job comes back from smtp. */
static void
attempt(struct qmgr_job *job, int site_fail, int status, const char *reply)
{
	fix_attempt(job, site_fail, status, status == QSTORE_DEFERRED ?
	    "4.7.0" : "2.0.0", reply);
}

/* x.test's entry: 4 connections, a backoff rule and a suspension rule. */
#define SHAPING_X_TEST							\
	"destinations:\n"						\
	"  x.test:\n"							\
	"    max_connections: 4\n"					\
	"    on_reply:\n"						\
	"      - { pattern: '4\\.7\\.28', action: backoff, for: 1s,\n"	\
	"          max_connections: 1, max_message_rate: 10/minute }\n"	\
	"      - { pattern: 'go away', action: suspend, for: 1s }\n"

/*
 * A backoff and its end, a suspension and its end: four events, each
 * with the state before it; the backoff's with its reply, end and the
 * limits in force. The first rides in the results transaction (no
 * flush); the end of the backoff comes from the timer and is written by
 * the loop pass's flush.
 */
START_TEST(test_backoff_and_suspension)
{
	struct fix f;
	struct seen s;
	struct qmgr_job *job;
	int64_t t0;

	fix_setup(&f);
	fix_shaping(&f, SHAPING_X_TEST);
	fix_queue(&f, 3);
	ck_assert_ptr_nonnull(job = qmgr_dest_take(fix_held_none, 1));
	t0 = (int64_t)time(NULL);
	attempt(job, 0, QSTORE_DEFERRED, "421 4.7.28 unusual rate");
	ck_assert_uint_eq(qmgr_destev_waiting(), 1);
	/* Written with the deferral's result, in its transaction. */
	(void)qmgr_results_apply();
	ck_assert_uint_eq(qmgr_destev_waiting(), 0);
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.others, 1);		/* the deferral */
	ck_assert_str_eq(s.dest[0], "x.test:25");
	ck_assert_str_eq(s.state[0], "backoff");
	ck_assert_str_eq(s.source[0], "");	/* no pool */
	ck_assert_str_eq(s.prev[0], "normal");
	ck_assert_str_eq(s.reason[0], "421 4.7.28 unusual rate");
	ck_assert_int_ge(s.until[0], t0 + 1);
	ck_assert_int_le(s.until[0], t0 + 3);
	ck_assert_uint_eq(s.max_conn[0], 1);
	ck_assert_uint_eq(s.rate_count[0], 10);
	ck_assert_uint_eq(s.rate_interval[0], 60);
	/* The same again: no new event. */
	usleep(1100 * 1000);
	(void)qmgr_dest_next_ms();		/* the timer: it ends */
	ck_assert_uint_eq(qmgr_destev_waiting(), 1);
	qmgr_destev_flush();
	ck_assert_uint_eq(qmgr_destev_waiting(), 0);
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.state[1], "normal");
	ck_assert_str_eq(s.prev[1], "backoff");
	ck_assert_str_eq(s.reason[1], "backoff ended");
	ck_assert_int_eq(s.until[1], 0);
	ck_assert_uint_eq(s.max_conn[1], 4);
	/* A suspension, then its end. */
	ck_assert_ptr_nonnull(job = qmgr_dest_take(fix_held_none, 1));
	attempt(job, 0, QSTORE_DEFERRED, "421 4.7.0 go away");
	qmgr_destev_flush();
	usleep(1100 * 1000);
	(void)qmgr_dest_next_ms();
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_str_eq(s.state[2], "suspended");
	ck_assert_str_eq(s.prev[2], "normal");
	ck_assert_str_eq(s.reason[2], "421 4.7.0 go away");
	ck_assert_int_gt(s.until[2], 0);
	ck_assert_str_eq(s.state[3], "normal");
	ck_assert_str_eq(s.prev[3], "suspended");
	ck_assert_str_eq(s.reason[3], "suspension ended");
	/* Nothing else changed: flushing again writes nothing. */
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 4);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/*
 * A dead site: dead after three failures in a row; a probe that fails
 * makes it dead again (an event: a new retry time); the probe that sets
 * up a session makes it normal. A flush lifts it too.
 */
START_TEST(test_dead_site)
{
	struct fix f;
	struct seen s;
	struct qmgr_job *job;

	fix_setup(&f);
	fix_queue(&f, 3);
	f.cfg.queue_min_backoff = 1;		/* dead for 1 s */
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(job = qmgr_dest_take(fix_held_none, 1));
		attempt(job, 1, QSTORE_DEFERRED, "421 4.3.2 busy");
	}
	f.cfg.queue_min_backoff = 300;
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.state[0], "dead");
	ck_assert_str_eq(s.prev[0], "normal");
	ck_assert_str_eq(s.reason[0], "421 4.3.2 busy");
	ck_assert_int_gt(s.until[0], 0);
	(void)qmgr_results_apply();
	/* Its retry time over: still dead for its events, probing. */
	wait_deferred_due();
	fix_queue(&f, 2);
	(void)qmgr_dest_next_ms();
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	/* The probe fails: dead again, a new retry time. */
	ck_assert_ptr_nonnull(job = qmgr_dest_take(fix_held_none, 1));
	f.cfg.queue_min_backoff = 1;
	attempt(job, 1, QSTORE_DEFERRED, "421 4.3.2 still busy");
	f.cfg.queue_min_backoff = 300;
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.state[1], "dead");
	ck_assert_str_eq(s.prev[1], "dead");
	ck_assert_str_eq(s.reason[1], "421 4.3.2 still busy");
	(void)qmgr_results_apply();
	wait_deferred_due();
	fix_queue(&f, 2);
	/* The next probe sets up a session: normal. */
	ck_assert_ptr_nonnull(job = qmgr_dest_take(fix_held_none, 1));
	attempt(job, 0, QSTORE_DELIVERED, "250 ok");
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_str_eq(s.state[2], "normal");
	ck_assert_str_eq(s.prev[2], "dead");
	ck_assert_str_eq(s.reason[2], "a session was set up");
	ck_assert_int_eq(s.until[2], 0);
	/* Dead again, then lifted by a flush. */
	for (int i = 0; i < 3; i++) {
		job = qmgr_dest_take(fix_held_none, 1);
		if (job == NULL) {
			fix_queue(&f, 1);
			ck_assert_ptr_nonnull(job =
			    qmgr_dest_take(fix_held_none, 1));
		}
		attempt(job, 1, QSTORE_DEFERRED, "421 4.3.2 busy");
	}
	qmgr_dest_flush_dead();
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 5);
	ck_assert_str_eq(s.state[3], "dead");
	ck_assert_str_eq(s.state[4], "normal");
	ck_assert_str_eq(s.reason[4], "suspension lifted by a flush");
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/*
 * More changes than QMGR_DESTEV_MAX before a write: the oldest are
 * dropped and counted; the newest QMGR_DESTEV_MAX are written in order.
 */
START_TEST(test_full_drops_oldest)
{
	struct fix f;
	struct seen s;
	struct qmgr_dest *d;
	struct qmgr_dest_src *src;
	const size_t n = QMGR_DESTEV_MAX + 6;
	char want[64];

	fix_setup(&f);
	qmgr_destev_reset();
	d = xcalloc(n, sizeof(*d));
	src = xcalloc(n, sizeof(*src));
	for (size_t i = 0; i < n; i++) {
		snprintf(d[i].key, sizeof(d[i].key), "d%zu.test", i);
		snprintf(d[i].entry, sizeof(d[i].entry), "default");
		d[i].srcs = &src[i];
		d[i].nsrcs = 1;
		src[i].adapt = SHAPING_SUSPEND;
		src[i].adapt_until = ev_now_ms() + 60000;
		qmgr_destev_note(&d[i], NULL, "go away", 0);
		/* The same state again: nothing new. */
		qmgr_destev_note(&d[i], &src[i], "go away", 0);
	}
	ck_assert_uint_eq(qmgr_destev_waiting(), QMGR_DESTEV_MAX);
	ck_assert_uint_eq(qmgr_destev_dropped_total(), 6);
	qmgr_destev_flush();
	ck_assert_uint_eq(qmgr_destev_waiting(), 0);
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, QMGR_DESTEV_MAX);
	for (size_t i = 0; i < s.n; i++) {
		snprintf(want, sizeof(want), "d%zu.test", i + 6);
		ck_assert_str_eq(s.dest[i], want);
		ck_assert_str_eq(s.state[i], "suspended");
		ck_assert_str_eq(s.prev[i], "normal");
	}
	free(src);
	free(d);
	fix_teardown(&f);
}
END_TEST

/* A results transaction that does not commit leaves them waiting. */
START_TEST(test_abort_keeps_them)
{
	struct fix f;
	struct seen s;
	struct qmgr_dest d;
	struct qmgr_dest_src src;
	struct qstore_txn *t;

	fix_setup(&f);
	memset(&d, 0, sizeof(d));
	memset(&src, 0, sizeof(src));
	snprintf(d.key, sizeof(d.key), "x.test");
	d.srcs = &src;
	d.nsrcs = 1;
	d.dead_until = ev_now_ms() + 60000;
	qmgr_destev_note(&d, NULL, "421 busy", 0);
	ck_assert_ptr_nonnull(t = qstore_txn_begin(qmgr_queue, 1, f.why));
	ck_assert_int_eq(qmgr_destev_put(t, f.why), 0);
	qstore_txn_abort(t);
	qmgr_destev_done(0);
	ck_assert_uint_eq(qmgr_destev_waiting(), 1);
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 0);
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.state[0], "dead");
	fix_teardown(&f);
}
END_TEST

/*
 * While a destination is suspended, what is deferred (the job whose reply
 * suspended it, its pending jobs) is due when the suspension ends, not
 * after queue.min_backoff; a job sent again after a lost link to a
 * destination suspended meanwhile is deferred at once, not sent.
 */
START_TEST(test_deferred_until_the_end)
{
	struct fix f;
	struct qstore_rcpt r;
	struct qmgr_job *a, *b, *job;
	char *rcpts[] = { "user@x.test" };
	char qid[3][QID_SIZE];
	int64_t t0;
	size_t n = 0;

	fix_setup(&f);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    on_reply:\n"
	    "      - { pattern: 'go away', action: suspend, for: 20s }\n");
	for (size_t i = 0; i < 3; i++)
		fix_commit(&f, rcpts, 1, qid[i]);
	qmgr_sched_scan(FIX_SCAN_SLOTS);
	ck_assert_ptr_nonnull(a = qmgr_dest_take(fix_held_none, 1));
	ck_assert_ptr_nonnull(b = qmgr_dest_take(fix_held_none, 1));
	t0 = (int64_t)time(NULL);
	attempt(a, 0, QSTORE_DEFERRED, "421 4.7.0 go away");
	/* The third, pending, is deferred; b's link is lost: so is b. */
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	qmgr_dest_release(b);
	qmgr_job_requeue(b);
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_ptr_null(qmgr_dest_take(fix_held_none, 1));
	for (job = qmgr_job_done_first(); job != NULL; job = job->next)
		n++;
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(b->rcpts[0].reply,
	    "delivery temporarily suspended: 421 4.7.0 go away");
	(void)qmgr_results_apply();
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(fix_rcpt(&f, qid[i], 0, &r), 0);
		ck_assert_int_eq(r.state, QSTORE_DEFERRED);
		ck_assert_int_ge(r.next_attempt, t0 + 19);
		ck_assert_int_le(r.next_attempt, t0 + 22);
	}
	fix_teardown(&f);
}
END_TEST

/*
 * The index keeps whole seconds: a recipient deferred for a suspension is
 * due at the first second after its end, never in the second before it
 * (when the scan would take it only to defer it again); the event's until
 * is that second too. Started half way through a second, a 2 s suspension
 * ends half way through one too.
 */
START_TEST(test_deferred_not_before_the_end)
{
	struct fix f;
	struct seen s;
	struct qstore_rcpt r;
	struct qmgr_job *a;
	struct timespec ts;
	char *rcpts[] = { "user@x.test" };
	char qid[QID_SIZE];
	int64_t start_ms;

	fix_setup(&f);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    on_reply:\n"
	    "      - { pattern: 'go away', action: suspend, for: 2s }\n");
	fix_commit(&f, rcpts, 1, qid);
	qmgr_sched_scan(FIX_SCAN_SLOTS);
	ck_assert_ptr_nonnull(a = qmgr_dest_take(fix_held_none, 1));
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_nsec < 500000000)
		usleep((useconds_t)((500000000 - ts.tv_nsec) / 1000 + 1000));
	clock_gettime(CLOCK_REALTIME, &ts);
	start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	attempt(a, 0, QSTORE_DEFERRED, "421 4.7.0 go away");
	(void)qmgr_results_apply();
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_DEFERRED);
	ck_assert_msg(r.next_attempt * 1000 >= start_ms + 2000,
	    "due at %lld s, the suspension ends at %lld ms",
	    (long long)r.next_attempt, (long long)(start_ms + 2000));
	ck_assert_int_le(r.next_attempt * 1000, start_ms + 4000);
	/* The event's until, whole seconds too, is not before the end. */
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.state[0], "suspended");
	ck_assert_msg(s.until[0] * 1000 >= start_ms + 2000,
	    "until %lld s, the suspension ends at %lld ms",
	    (long long)s.until[0], (long long)(start_ms + 2000));
	ck_assert_int_le(s.until[0] * 1000, start_ms + 4000);
	fix_teardown(&f);
}
END_TEST

/*
 * With a pool, each event names the source address whose state it is: a
 * suspension at one address is one event; a dead site, one for each
 * address, with the state each had before. Without a pool, none.
 */
START_TEST(test_source_per_event)
{
	struct fix f;
	struct seen s;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct qmgr_job *a, *b;
	char refused[64];

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, SHAPING_X_TEST);
	fix_queue(&f, 5);
	ck_assert_ptr_nonnull(a = qmgr_dest_take(fix_held_none, 1));
	ck_assert_ptr_nonnull(b = qmgr_dest_take(fix_held_none, 1));
	snprintf(refused, sizeof(refused), "%s", a->dest->srcs[a->src].addr);
	attempt(a, 0, QSTORE_DEFERRED, "421 4.7.0 go away");
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.dest[0], "x.test:25/bulk");
	ck_assert_str_eq(s.source[0], refused);
	ck_assert_str_eq(s.state[0], "suspended");
	ck_assert_str_eq(s.prev[0], "normal");
	/* Three site failures from the other address: dead, at both. */
	f.cfg.queue_min_backoff = 60;
	attempt(b, 1, QSTORE_DEFERRED, "421 4.3.2 busy");
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(b = qmgr_dest_take(fix_held_none, 1));
		ck_assert_str_ne(b->dest->srcs[b->src].addr, refused);
		attempt(b, 1, QSTORE_DEFERRED, "421 4.3.2 busy");
	}
	qmgr_destev_flush();
	seen_get(&f, &s);
	ck_assert_uint_eq(s.n, 3);
	for (size_t i = 1; i < 3; i++) {
		ck_assert_str_eq(s.state[i], "dead");
		ck_assert_str_eq(s.prev[i], strcmp(s.source[i], refused) == 0 ?
		    "suspended" : "normal");
	}
	ck_assert_str_ne(s.source[1], s.source[2]);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

static Suite *
destev_suite(void)
{
	Suite *s;
	TCase *tc;

	/* The shared fixture's helper this suite does without. */
	(void)fix_pending;
	s = suite_create("qmgr_destev");
	tc = tcase_create("events");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_backoff_and_suspension);
	tcase_add_test(tc, test_dead_site);
	tcase_add_test(tc, test_full_drops_oldest);
	tcase_add_test(tc, test_abort_keeps_them);
	tcase_add_test(tc, test_deferred_until_the_end);
	tcase_add_test(tc, test_deferred_not_before_the_end);
	tcase_add_test(tc, test_source_per_event);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(destev_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
