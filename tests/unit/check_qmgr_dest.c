/*
 * check_qmgr_dest.c - unit tests for qmgr's dead-site detection and
 * concurrency window (qmgr_dest.c, qmgr_dest_outcome), against a real
 * queue: a site failure halves what a destination may have at smtp, a
 * session set up widens it again, three failures in a row suspend the
 * destination (its pending and new jobs deferred without smtp), a bounce
 * counts for nothing, after the suspension (or a flush) one job probes
 * the site.
 * And on_reply rules: a backoff after `after` matching deferrals (limits
 * lowered, back by themselves), a suspension (pending and new jobs
 * deferred quoting the reply), a backoff that does not cut a suspension
 * short, and a reply no rule matches.
 * And the lanes: a destination's transactional job goes before its bulk
 * ones, bulk never takes its transactional_reserve connections (nor the
 * processes' reserve, bulk_ok), transactional may.
 * And providers: once smtp has named a destination's MX hosts, their
 * provider's limits apply to it and provider_max_connections caps the
 * jobs at smtp of all its destinations together; MX hosts of which one
 * does not match make no member.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_qmgr_dest.h"
#include "event.h"

/* The fixture's next-hop key of a domain (its smtp.port is no default). */
#define KEY(domain)	domain ":25"

static Suite	*dest_suite(void);
static struct qmgr_job *take(void);
static void	 attempt(struct qmgr_job *, int site_fail, int status);
static size_t	 drain_done(const char *reply_prefix);
static void	 attempt_reply(struct qmgr_job *, const char *reply);
static const char *state(void);
static const struct qmgr_dest *dest(void);
static int	 dest_cb(const struct qmgr_dest *, void *);
static void	 lanes_are(size_t, unsigned, size_t, unsigned, unsigned);
static const struct qmgr_dest_src *src_of(const struct qmgr_job *);

static struct qmgr_job *
take(void)
{
	return qmgr_dest_take(fix_held_none, 1);
}

/* The job comes back from smtp with status for its recipient. */
static void
attempt(struct qmgr_job *job, int site_fail, int status)
{
	fix_attempt(job, site_fail, status, status == QSTORE_DEFERRED ?
	    "4.3.2" : status == QSTORE_FAILED ? "5.1.2" : "2.0.0",
	    status == QSTORE_DEFERRED ? "421 4.3.2 busy" : "done");
}

/* The job comes back deferred by the server with reply. */
static void
attempt_reply(struct qmgr_job *job, const char *reply)
{
	fix_attempt(job, 0, QSTORE_DEFERRED, "4.7.0", reply);
}

static int
dest_cb(const struct qmgr_dest *d, void *arg)
{
	*(const struct qmgr_dest **)arg = d;
	return 1;
}

/* The first destination (the one, x.test), or NULL when forgotten. */
static const struct qmgr_dest *
dest(void)
{
	const struct qmgr_dest *d = NULL;

	(void)qmgr_dest_walk(dest_cb, &d);
	return d;
}

/* The state of the one destination, x.test; "none" when forgotten. */
static const char *
state(void)
{
	const struct qmgr_dest *d = dest();

	return d != NULL ? qmgr_dest_state(d, fix_held_none) : "none";
}

/*
 * What relayctl shaping show says of the one destination's lanes: its
 * jobs waiting and at smtp in each, and its reserve now.
 */
static void
lanes_are(size_t t_pending, unsigned t_inflight, size_t b_pending,
    unsigned b_inflight, unsigned reserve)
{
	const struct qmgr_dest *d = dest();

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->npending - d->nbulk, t_pending);
	ck_assert_uint_eq(d->inflight - d->binflight, t_inflight);
	ck_assert_uint_eq(d->nbulk, b_pending);
	ck_assert_uint_eq(d->binflight, b_inflight);
	ck_assert_uint_eq(qmgr_dest_reserve(d), reserve);
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

START_TEST(test_lanes)
{
	struct fix f;
	struct qmgr_job *jobs[8], *job;
	size_t i;

	fix_setup(&f);
	/* 5 connections: the default reserve is one. */
	fix_shaping(&f, "destinations:\n  x.test: { max_connections: 5 }\n");
	f.bulk = 1;
	ck_assert_uint_eq(fix_queue(&f, 6), 6);
	ck_assert_uint_eq(qmgr_job_nbulk(), 6);
	/* Not while the processes' reserve is taken. */
	ck_assert_ptr_null(qmgr_dest_take(fix_held_none, 0));
	for (i = 0; i < 4; i++) {
		ck_assert_ptr_nonnull(jobs[i] = take());
		ck_assert_int_eq(jobs[i]->bulk, 1);
	}
	/* The fifth connection is the transactional lane's. */
	ck_assert_ptr_null(take());
	ck_assert_str_eq(state(), "at-limit");
	lanes_are(0, 0, 2, 4, 1);
	f.bulk = 0;
	ck_assert_uint_eq(fix_queue(&f, 2), 4);
	lanes_are(2, 0, 2, 4, 1);
	ck_assert_ptr_nonnull(jobs[4] = take());
	ck_assert_int_eq(jobs[4]->bulk, 0);
	ck_assert_ptr_null(take());		/* 5 of 5 */
	lanes_are(1, 1, 2, 4, 1);
	/* One bulk back: 4 at smtp, bulk still may not take a fifth. */
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	lanes_are(1, 1, 2, 3, 1);
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_int_eq(jobs[0]->bulk, 0);
	attempt(jobs[1], 0, QSTORE_DELIVERED);
	ck_assert_ptr_null(take());
	lanes_are(0, 2, 2, 2, 1);
	/* The transactional ones back: bulk goes on. */
	attempt(jobs[4], 0, QSTORE_DELIVERED);
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_int_eq(job->bulk, 1);
	ck_assert_ptr_nonnull(jobs[1] = take());
	ck_assert_ptr_null(take());
	ck_assert_uint_eq(qmgr_job_nbulk(), 0);
	lanes_are(0, 0, 0, 4, 1);
	/* A transactional job queued behind bulk ones goes first. */
	f.bulk = 1;
	ck_assert_uint_eq(fix_queue(&f, 2), 2);
	f.bulk = 0;
	ck_assert_uint_eq(fix_queue(&f, 1), 3);
	attempt(job, 0, QSTORE_DELIVERED);
	attempt(jobs[1], 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_int_eq(job->bulk, 0);
	attempt(job, 0, QSTORE_DELIVERED);
	for (i = 2; i < 4; i++)
		attempt(jobs[i], 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/*
 * max_connections counts per source address: with a pool of two, each
 * address has its own connection, and a job leaves from the address
 * with room.
 */
START_TEST(test_connections_per_source)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct qmgr_job *a, *b, *c;

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "destinations:\n  x.test: { max_connections: 1 }\n");
	ck_assert_uint_eq(fix_queue(&f, 3), 3);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_ptr_null(take());		/* one each, both busy */
	ck_assert_uint_eq(dest()->nsrcs, 2);
	ck_assert_uint_ne(a->src, b->src);
	ck_assert_str_eq(a->dest->srcs[a->src].addr, a->src == 0 ?
	    "192.0.2.10" : "192.0.2.11");
	ck_assert_uint_eq(a->dest->srcs[a->src].inflight, 1);
	ck_assert_str_eq(state(), "at-limit");
	/* b's address is free again: the next job leaves from it. */
	attempt(b, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(c = take());
	ck_assert_uint_eq(c->src, b->src);
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(c, 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/* max_message_rate too: one token an hour for each address. */
START_TEST(test_rate_per_source)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct qmgr_job *a, *b;

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "destinations:\n  x.test: { max_message_rate: 1/h }"
	    "\n");
	ck_assert_uint_eq(fix_queue(&f, 3), 3);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_uint_ne(a->src, b->src);
	ck_assert_ptr_null(take());		/* each used its token */
	ck_assert_str_eq(state(), "pacing");
	ck_assert_int_gt(qmgr_dest_next_ms(), 3500 * 1000);
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(b, 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/* The source address of job, as qmgr chose it. */
static const struct qmgr_dest_src *
src_of(const struct qmgr_job *job)
{
	return &job->dest->srcs[job->src];
}

/*
 * The scheduler's estimate of the jobs that could go counts a backoff's
 * max_connections, not the configured one: the slots it leaves to other
 * destinations depend on it.
 */
START_TEST(test_ready_in_backoff)
{
	struct fix f;
	struct qmgr_job *job;

	fix_setup(&f);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    max_connections: 4\n"
	    "    on_reply:\n"
	    "      - { pattern: 'slow down', action: backoff, for: 1h,\n"
	    "          max_connections: 1 }\n");
	ck_assert_uint_eq(fix_queue(&f, 6), 6);
	ck_assert_ptr_nonnull(job = take());
	/* Known after its first attempt: four could go. */
	attempt_reply(job, "250 ok");
	ck_assert_uint_eq(qmgr_dest_ready(fix_held_none, 1), 4);
	ck_assert_ptr_nonnull(job = take());
	attempt_reply(job, "421 4.7.0 slow down");
	ck_assert_str_eq(state(), "backoff");
	ck_assert_uint_eq(qmgr_dest_ready(fix_held_none, 1), 1);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_uint_eq(qmgr_dest_ready(fix_held_none, 1), 0);
	attempt(job, 0, QSTORE_DELIVERED);
	fix_teardown(&f);
}
END_TEST

/*
 * on_reply rules act at the source address the reply came to: a
 * suspension of one address of a pool of two leaves its pending jobs to
 * the other; the second address suspended too suspends the destination
 * (its jobs deferred quoting the reply); a backoff lowers one address's
 * limits only. Each comes back by itself.
 */
START_TEST(test_on_reply_per_source)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct shaping_limits lim;
	const struct qmgr_dest_src *sa, *sb;
	struct qmgr_job *a, *b, *c;
	int64_t now;

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    max_connections: 1\n"
	    "    on_reply:\n"
	    "      - { pattern: 'unusual rate', action: backoff, for: 1s,\n"
	    "          max_message_rate: 1/hour }\n"
	    "      - { pattern: 'go away', action: suspend, for: 1s }\n");
	ck_assert_uint_eq(fix_queue(&f, 5), 5);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	sa = src_of(a);
	sb = src_of(b);
	ck_assert_ptr_ne(sa, sb);
	/* a's address is suspended; b's goes on, and so does its mail. */
	attempt_reply(a, "421 4.7.0 go away");
	now = ev_now_ms();
	ck_assert_int_eq(qmgr_dest_src_adapt(sa, now), SHAPING_SUSPEND);
	ck_assert_int_eq(qmgr_dest_src_adapt(sb, now), 0);
	ck_assert_str_eq(state(), "backoff");
	ck_assert_int_eq(qmgr_dest_suspended_ms(dest()->key), 0);
	ck_assert_uint_eq(qmgr_job_npending(), 3);
	ck_assert_ptr_null(take());		/* b's address is busy */
	attempt(b, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(c = take());
	ck_assert_ptr_eq(src_of(c), sb);
	/* Both suspended: the destination is; its jobs are deferred. */
	attempt_reply(c, "421 4.7.0 go away");
	ck_assert_str_eq(state(), "suspended");
	ck_assert_int_gt(qmgr_dest_suspended_ms(dest()->key), 0);
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended: "
	    "421 4.7.0 go away"), 2);
	wait_deferred_due();
	/* Over by themselves: each address has its job again. */
	ck_assert_uint_eq(fix_queue(&f, 1), 5);
	ck_assert_str_eq(state(), "normal");
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_ptr_ne(src_of(a), src_of(b));
	/* A backoff at a's address: its rate only. */
	sa = src_of(a);
	sb = src_of(b);
	attempt_reply(a, "421 4.7.28 unusual rate");
	qmgr_dest_src_limits(dest(), sa, &lim);
	ck_assert_uint_eq(lim.rate_count, 1);
	ck_assert_uint_eq(lim.rate_interval, 3600);
	qmgr_dest_src_limits(dest(), sb, &lim);
	ck_assert_uint_eq(lim.rate_count, 0);
	attempt(b, 0, QSTORE_DELIVERED);
	/* b's address takes the next two; a's waits for its token. */
	ck_assert_ptr_nonnull(c = take());
	ck_assert_ptr_eq(src_of(c), sb);
	attempt(c, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(c = take());
	ck_assert_ptr_eq(src_of(c), sb);
	attempt(c, 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/*
 * A provider's rule acts at the address its reply came to, for every
 * destination of the provider in the pool: the others' mail from the
 * pool's other address goes on.
 */
START_TEST(test_provider_rule_per_source)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct qmgr_job *a, *b;
	char refused[QMGR_SRC_ADDR_MAX];

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: [.prov.test]\n"
	    "    on_reply:\n"
	    "      - { pattern: 'slow down', action: suspend, for: 1s }\n");
	qmgr_dest_learn_mx(KEY("a.test"), "mx.prov.test");
	qmgr_dest_learn_mx(KEY("b.test"), "mx.prov.test");
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 1), 1);
	ck_assert_ptr_nonnull(a = take());
	/* Copied: a.test may be forgotten once its job is done. */
	snprintf(refused, sizeof(refused), "%s", src_of(a)->addr);
	attempt_reply(a, "421 4.7.0 slow down");
	/* b.test, new since: its jobs leave from the other address only. */
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 3), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(b = take());
		ck_assert_str_ne(src_of(b)->addr, refused);
		ck_assert_int_eq(qmgr_dest_src_adapt(
		    &b->dest->srcs[b->src == 0 ? 1 : 0], ev_now_ms()),
		    SHAPING_SUSPEND);
		attempt(b, 0, QSTORE_DELIVERED);
	}
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	fix_teardown(&f);
}
END_TEST

/*
 * One address suspended by an on_reply rule, the other set aside for its
 * reputation: the jobs go from the set-aside one, for smtp to defer them
 * saying why, as when every address is set aside (not held in memory
 * until one of the two ends), with both in the request's avoid.
 */
START_TEST(test_suspended_and_set_aside)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	struct qmgr_job *a, *b;
	struct vbuf *list = vbuf_create(0);
	char other[QMGR_SRC_ADDR_MAX];

	fix_setup(&f);
	f.cfg.smtp_reputation_set_aside = 3600;
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    on_reply:\n"
	    "      - { pattern: 'go away', action: suspend, for: 1h }\n");
	ck_assert_uint_eq(fix_queue(&f, 4), 4);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_ptr_ne(src_of(a), src_of(b));
	snprintf(other, sizeof(other), "%s", src_of(b)->addr);
	attempt_reply(a, "421 4.7.0 go away");
	qmgr_source_reply(b, other, other,
	    "554 5.7.1 blocked using zen.spamhaus.org", 0);
	attempt_reply(b, "554 5.7.1 blocked using zen.spamhaus.org");
	ck_assert_str_eq(state(), "backoff");
	ck_assert_uint_eq(qmgr_job_npending(), 2);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_str_eq(src_of(a)->addr, other);
	/*
	 * The request's avoid names both: smtp, not finding the chosen
	 * address usable, must not leave from the suspended one instead.
	 */
	qmgr_source_avoid(a, list);
	ck_assert_str_eq(list->data, other);
	qmgr_dest_avoid_suspended(a, list);
	ck_assert_int_eq(qmgr_source_listed(list->data, "192.0.2.10"), 1);
	ck_assert_int_eq(qmgr_source_listed(list->data, "192.0.2.11"), 1);
	attempt(a, 0, QSTORE_DEFERRED);
	ck_assert_ptr_nonnull(a = take());
	attempt(a, 0, QSTORE_DEFERRED);
	(void)qmgr_results_apply();
	vbuf_free(list);
	fix_teardown(&f);
}
END_TEST

/* transactional_reserve: 0 lets bulk take every connection. */
START_TEST(test_lanes_no_reserve)
{
	struct fix f;
	struct qmgr_job *jobs[4];
	size_t i;

	fix_setup(&f);
	fix_shaping(&f, "destinations:\n  x.test: { max_connections: 3,"
	    " transactional_reserve: 0 }\n");
	ck_assert_uint_eq(qmgr_dest_processes_reserve(), 4);	/* 20% of 16 */
	f.bulk = 1;
	ck_assert_uint_eq(fix_queue(&f, 4), 4);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	ck_assert_ptr_null(take());
	lanes_are(0, 0, 1, 3, 0);
	for (i = 0; i < 3; i++)
		attempt(jobs[i], 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

START_TEST(test_window_halves_and_grows)
{
	struct fix f;
	struct qmgr_job *jobs[4];

	fix_setup(&f);
	ck_assert_uint_eq(fix_queue(&f, 8), 8);
	for (size_t i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	/* No max_connections: nothing is reserved. */
	ck_assert_uint_eq(qmgr_dest_reserve(dest()), 0);
	/* One of four at smtp fails: two at a time from now on. */
	attempt(jobs[0], 1, QSTORE_DEFERRED);
	ck_assert_ptr_null(take());		/* three still out */
	/* The reserve is of the window then (20% of 2, at least 1). */
	ck_assert_uint_eq(qmgr_dest_reserve(dest()), 1);
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
	ck_assert_uint_eq(fix_queue(&f, 6), 6);
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
	ck_assert_uint_eq(fix_queue(&f, 1), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 1);
	/*
	 * After the suspension one job at a time probes the site. What
	 * was deferred while it was suspended is due when it ends (not
	 * after queue.min_backoff): the 7 deferred, and 2 new.
	 */
	wait_deferred_due();
	ck_assert_uint_eq(fix_queue(&f, 2), 9);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_ptr_null(take());
	/* It fails: suspended again at once, the others deferred. */
	f.cfg.queue_min_backoff = 1;
	attempt(job, 1, QSTORE_DEFERRED);
	f.cfg.queue_min_backoff = 300;
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 8);
	wait_deferred_due();
	ck_assert_uint_eq(fix_queue(&f, 2), 11);
	ck_assert_ptr_nonnull(job = take());
	/* It answers: alive, and the next goes while this one is out. */
	attempt(job, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(job = take());
	attempt(job, 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	fix_teardown(&f);
}
END_TEST

/* relayq -f lifts a dead-site suspension; one failure brings it back. */
START_TEST(test_flush_lifts_dead)
{
	struct fix f;
	struct qmgr_job *job;

	fix_setup(&f);
	ck_assert_uint_eq(fix_queue(&f, 5), 5);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(job = take());
		attempt(job, 1, QSTORE_DEFERRED);
	}
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 2);
	qmgr_dest_flush_dead();
	ck_assert_uint_eq(fix_queue(&f, 2), 2);
	ck_assert_ptr_nonnull(job = take());
	ck_assert_ptr_null(take());		/* one job probes */
	attempt(job, 1, QSTORE_DEFERRED);
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 1);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_bounces_do_not_count)
{
	struct fix f;
	struct qmgr_job *job;

	fix_setup(&f);
	ck_assert_uint_eq(fix_queue(&f, 5), 5);
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

START_TEST(test_on_reply)
{
	struct fix f;
	struct qmgr_job *jobs[4], *job;

	fix_setup(&f);
	fix_shaping(&f, "destinations:\n"
	    "  x.test:\n"
	    "    max_connections: 4\n"
	    "    on_reply:\n"
	    "      - { pattern: 'unusual rate', action: backoff, for: 1s,\n"
	    "          max_connections: 1, max_message_rate: 1/hour,\n"
	    "          after: 2 }\n"
	    "      - { pattern: 'go away', action: suspend, for: 1s }\n");

	ck_assert_uint_eq(fix_queue(&f, 8), 8);
	for (size_t i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	/* A reply no rule matches; then the first match only counts. */
	attempt_reply(jobs[0], "421 4.3.2 busy");
	attempt_reply(jobs[1], "421 4.7.28 an unusual rate of mail");
	ck_assert_str_eq(state(), "normal");
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_ptr_nonnull(jobs[1] = take());
	/* The second: one connection, a rate of one an hour. */
	attempt_reply(jobs[2], "421 4.7.28 an UNUSUAL RATE of mail");
	ck_assert_str_eq(state(), "backoff");
	attempt_reply(jobs[0], "250 whatever");
	attempt_reply(jobs[1], "250 whatever");
	ck_assert_ptr_null(take());	/* none out, but no token */
	ck_assert_uint_eq(qmgr_job_npending(), 3);
	/* The next wake-up is the backoff's end, not the rate's hour. */
	ck_assert_int_gt(qmgr_dest_next_ms(), 0);
	ck_assert_int_le(qmgr_dest_next_ms(), 1000);
	usleep(1100 * 1000);
	/* Over by itself: four at a time again. */
	ck_assert_int_eq(qmgr_dest_next_ms(), -1);
	ck_assert_str_eq(state(), "normal");
	for (size_t i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	ck_assert_uint_eq(drain_done("421 4.7.28"), 2);

	/* A suspension: the pending jobs are deferred quoting the reply. */
	ck_assert_uint_eq(fix_queue(&f, 2), 2);
	attempt_reply(jobs[0], "421 4.7.0 go away");
	ck_assert_str_eq(state(), "suspended");
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended: "
	    "421 4.7.0 go away"), 2);
	/* A backoff match meanwhile does not shorten it. */
	attempt_reply(jobs[1], "421 unusual rate");
	attempt_reply(jobs[2], "421 unusual rate");
	ck_assert_str_eq(state(), "suspended");
	ck_assert_uint_eq(fix_queue(&f, 1), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 1);
	wait_deferred_due();
	/* The 6 deferred while it was suspended are due at its end. */
	ck_assert_uint_eq(fix_queue(&f, 2), 8);
	ck_assert_str_eq(state(), "normal");
	ck_assert_ptr_nonnull(job = take());
	ck_assert_ptr_nonnull(jobs[0] = take());
	attempt_reply(job, "250 ok");
	attempt_reply(jobs[0], "250 ok");
	ck_assert_uint_eq(drain_done("delivery temporarily suspended"), 0);
	fix_teardown(&f);
}
END_TEST

/*
 * provider_max_connections counts per source address too: a cap of one
 * lets each address of a pool of two have one connection to the
 * provider's members.
 */
START_TEST(test_provider_per_source)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	const struct shaping_provider *p;
	struct qmgr_job *a, *b;

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: [.prov.test]\n"
	    "    provider_max_connections: 1\n");
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 3), 3);
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 3), 6);
	/* One job each until their MX hosts are known. */
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	qmgr_dest_learn_mx(a->nexthop, "mx.prov.test");
	qmgr_dest_learn_mx(b->nexthop, "mx.prov.test");
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(b, 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(p = qmgr_provider_of(KEY("a.test")));
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_ptr_null(take());
	ck_assert_uint_eq(qmgr_provider_inflight(p, "192.0.2.10"), 1);
	ck_assert_uint_eq(qmgr_provider_inflight(p, "192.0.2.11"), 1);
	ck_assert_uint_eq(qmgr_provider_inflight(p, NULL), 2);
	attempt(a, 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(qmgr_provider_inflight(p, NULL), 1);
	ck_assert_ptr_nonnull(a = take());
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(b, 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

/*
 * provider_max_message_rate counts the messages to all the provider's
 * members together, from each source address: one an hour lets each
 * address of a pool of two send one, to either domain, and no more.
 */
START_TEST(test_provider_rate)
{
	struct fix f;
	struct cidr addrs[2];
	struct cfg_pool pool;
	const struct shaping_provider *p;
	struct qmgr_job *a, *b;

	fix_setup(&f);
	fix_two_sources(&f, &pool, addrs);
	fix_shaping(&f, "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: [.prov.test]\n"
	    "    provider_max_message_rate: 1/hour\n");
	qmgr_dest_learn_mx(KEY("a.test"), "mx.prov.test");
	qmgr_dest_learn_mx(KEY("b.test"), "mx.prov.test");
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 2), 2);
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 2), 4);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_ptr_null(take());
	ck_assert_uint_ne(a->src, b->src);
	/* Each destination on its own has tokens; the provider has none. */
	ck_assert_str_eq(qmgr_dest_state(a->dest, fix_held_none), "pacing");
	ck_assert_int_gt(qmgr_dest_next_ms(), 3500 * 1000);
	ck_assert_uint_eq(qmgr_dest_ready(fix_held_none, 1), 0);
	ck_assert_ptr_nonnull(p = qmgr_provider_of(KEY("a.test")));
	ck_assert_int_gt(qmgr_provider_rate_wait(p, "192.0.2.10",
	    ev_now_ms()), 0);
	/* A job put back gives its token back. */
	qmgr_dest_untake(a);
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_null(take());
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(b, 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
	fix_teardown(&f);
}
END_TEST

START_TEST(test_provider)
{
	struct fix f;
	struct qmgr_job *a, *b, *jobs[4];

	fix_setup(&f);
	fix_shaping(&f, "default:\n"
	    "  max_connections: 10\n"
	    "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: [.prov.test]\n"
	    "    provider_max_connections: 2\n"
	    "    max_connections: 3\n");
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 4), 4);
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 4), 8);
	/* Not known yet whose they are: one job at a time each. */
	ck_assert_ptr_nonnull(a = take());
	ck_assert_ptr_nonnull(b = take());
	ck_assert_str_ne(a->nexthop, b->nexthop);
	ck_assert_ptr_null(take());
	ck_assert_str_eq(state(), "at-limit");
	/* smtp names their MX hosts with the results. */
	qmgr_dest_learn_mx(a->nexthop, "mx1.prov.test mx2.PROV.test.");
	qmgr_dest_learn_mx(b->nexthop, "mx.prov.test");
	ck_assert_ptr_nonnull(qmgr_provider_of(KEY("a.test")));
	ck_assert_str_eq(qmgr_provider_of(KEY("b.test"))->e.name, "prov");
	attempt(a, 0, QSTORE_DELIVERED);
	attempt(b, 0, QSTORE_DELIVERED);
	/* Two at smtp for both destinations together, not 3 each. */
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_ptr_nonnull(jobs[1] = take());
	ck_assert_ptr_null(take());
	ck_assert_uint_eq(qmgr_provider_inflight(qmgr_provider_of(
	    KEY("a.test")), NULL), 2);
	ck_assert_str_eq(state(), "at-limit");
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_ptr_null(take());
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	attempt(jobs[1], 0, QSTORE_DELIVERED);
	ck_assert_uint_eq(qmgr_provider_inflight(qmgr_provider_of(
	    KEY("a.test")), NULL), 0);

	/* One MX elsewhere: not the provider's, and so free of its cap. */
	qmgr_dest_learn_mx(KEY("b.test"), "mx.prov.test mx.backup.test");
	ck_assert_ptr_null(qmgr_provider_of(KEY("b.test")));
	ck_assert_int_eq(qmgr_provider_known(KEY("b.test")), 1);
	ck_assert_int_eq(qmgr_provider_known(KEY("d.test")), 0);
	ck_assert_ptr_nonnull(qmgr_provider_of(KEY("a.test")));
	qmgr_dest_learn_mx(KEY("c.test"), "mxprov.test");
	ck_assert_ptr_null(qmgr_provider_of(KEY("c.test")));
	fix_teardown(&f);
}
END_TEST

START_TEST(test_provider_limits_and_rules)
{
	struct fix f;
	struct qmgr_job *jobs[4];

	fix_setup(&f);
	fix_shaping(&f, "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: .prov.test\n"
	    "    max_connections: 1\n"
	    "    retry_interval: 7m\n"
	    "    on_reply:\n"
	    "      - { pattern: 'slow down', action: suspend, for: 1s }\n"
	    "destinations:\n"
	    "  b.test:\n"
	    "    max_connections: 2\n");
	ck_assert_int_eq(qmgr_dest_retry_interval(KEY("a.test")), 0);
	qmgr_dest_learn_mx(KEY("a.test"), "mx.prov.test");
	qmgr_dest_learn_mx(KEY("b.test"), "mx.prov.test");
	ck_assert_int_eq(qmgr_dest_retry_interval(KEY("a.test")), 420);
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 3), 3);
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 3), 6);
	/* a.test: the provider's one; b.test: its own entry's two. */
	for (size_t i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(jobs[i] = take());
	ck_assert_ptr_null(take());
	ck_assert_int_eq((strcmp(jobs[0]->nexthop, KEY("a.test")) == 0) +
	    (strcmp(jobs[1]->nexthop, KEY("a.test")) == 0) +
	    (strcmp(jobs[2]->nexthop, KEY("a.test")) == 0), 1);
	/*
	 * The provider's rule applies under a destination entry too, and to
	 * the whole provider in the pool: b.test's pending job is deferred,
	 * and a.test's two as well.
	 */
	for (size_t i = 0; i < 3; i++)
		if (strcmp(jobs[i]->nexthop, KEY("b.test")) == 0) {
			attempt_reply(jobs[i], "421 4.7.0 slow down");
			jobs[i] = NULL;
			break;
		}
	ck_assert_uint_eq(drain_done("delivery temporarily suspended: "
	    "421 4.7.0 slow down"), 3);
	ck_assert_uint_eq(qmgr_job_npending(), 0);
	for (size_t i = 0; i < 3; i++)
		if (jobs[i] != NULL)
			attempt(jobs[i], 0, QSTORE_DELIVERED);
	/* A domain that joins the provider meanwhile is suspended too. */
	qmgr_dest_learn_mx(KEY("c.test"), "mx.prov.test");
	ck_assert_uint_eq(fix_queue_to(&f, "c.test", 1), 0);
	ck_assert_uint_eq(drain_done("delivery temporarily suspended: "
	    "421 4.7.0 slow down"), 1);
	/* Another pool's addresses were not refused: its mail goes. */
	f.pool = "bulk";
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 1), 1);
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_str_eq(jobs[0]->pool, "bulk");
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	f.pool = NULL;
	/* Over by itself, for all of them: the 5 deferred are due again. */
	wait_deferred_due();
	ck_assert_uint_eq(fix_queue_to(&f, "c.test", 1), 6);
	ck_assert_ptr_nonnull(jobs[0] = take());
	attempt(jobs[0], 0, QSTORE_DELIVERED);
	fix_teardown(&f);
}
END_TEST

/*
 * A provider's share: bulk mail to its destinations together leaves the
 * transactional_reserve of provider_max_connections free.
 */
START_TEST(test_lanes_provider)
{
	struct fix f;
	struct qmgr_job *jobs[4];
	size_t i;

	fix_setup(&f);
	fix_shaping(&f, "providers:\n"
	    "  prov:\n"
	    "    mx_suffixes: [.prov.test]\n"
	    "    provider_max_connections: 3\n"
	    "    max_connections: 10\n");
	qmgr_dest_learn_mx(KEY("a.test"), "mx.prov.test");
	qmgr_dest_learn_mx(KEY("b.test"), "mx.prov.test");
	f.bulk = 1;
	ck_assert_uint_eq(fix_queue_to(&f, "a.test", 3), 3);
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 3), 6);
	/* 3 for the provider, its reserve (20%, at least 1) kept. */
	ck_assert_ptr_nonnull(jobs[0] = take());
	ck_assert_ptr_nonnull(jobs[1] = take());
	ck_assert_ptr_null(take());
	f.bulk = 0;
	ck_assert_uint_eq(fix_queue_to(&f, "b.test", 1), 5);
	ck_assert_ptr_nonnull(jobs[2] = take());
	ck_assert_int_eq(jobs[2]->bulk, 0);
	ck_assert_ptr_null(take());
	for (i = 0; i < 3; i++)
		attempt(jobs[i], 0, QSTORE_DELIVERED);
	(void)qmgr_results_apply();
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
	tcase_add_test(tc, test_flush_lifts_dead);
	tcase_add_test(tc, test_bounces_do_not_count);
	tcase_add_test(tc, test_on_reply);
	tcase_add_test(tc, test_on_reply_per_source);
	tcase_add_test(tc, test_ready_in_backoff);
	tcase_add_test(tc, test_suspended_and_set_aside);
	tcase_add_test(tc, test_provider_rule_per_source);
	tcase_add_test(tc, test_lanes);
	tcase_add_test(tc, test_lanes_no_reserve);
	tcase_add_test(tc, test_connections_per_source);
	tcase_add_test(tc, test_rate_per_source);
	tcase_add_test(tc, test_lanes_provider);
	tcase_add_test(tc, test_provider);
	tcase_add_test(tc, test_provider_per_source);
	tcase_add_test(tc, test_provider_rate);
	tcase_add_test(tc, test_provider_limits_and_rules);
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
