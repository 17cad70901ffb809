/*
 * check_qmgr_dest.h - what the destination suites share (check_qmgr_dest.c,
 * check_qmgr_destev.c), on top of the queue fixture (check_qmgr.h): a
 * shaping file written and loaded, messages queued for one domain, a
 * job coming back from smtp as qmgr_deliver.c would bring it, and a
 * source address pool of two.
 */
#ifndef PETREL_CHECK_QMGR_DEST_H
#define PETREL_CHECK_QMGR_DEST_H

#include <stdio.h>

#include <check.h>

#include "check_qmgr.h"
#include "cidr.h"
#include "qmgr.h"

/* Jobs one scan queues at most (the suites' messages all fit). */
#define FIX_SCAN_SLOTS	16

/*
 * text as f's shaping file, loaded (qmgr_dest_init). The path stays
 * valid for the test: f->cfg keeps it.
 */
static void
fix_shaping(struct fix *f, const char *text)
{
	static char path[300];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/shaping.yaml", f->dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	f->cfg.shaping_file = path;
	qmgr_dest_init(&f->cfg);
}

/* n messages for one recipient at domain, their jobs queued; all pending. */
static size_t
fix_queue_to(struct fix *f, const char *domain, size_t n)
{
	char addr[128], *rcpts[] = { addr };
	char qid[QID_SIZE];

	snprintf(addr, sizeof(addr), "user@%s", domain);
	for (size_t i = 0; i < n; i++)
		fix_commit(f, rcpts, 1, qid);
	qmgr_sched_scan(FIX_SCAN_SLOTS);
	return qmgr_job_npending();
}

/* The same for x.test, the destination most tests look at. */
static size_t
fix_queue(struct fix *f, size_t n)
{
	return fix_queue_to(f, "x.test", n);
}

/*
 * The job (one recipient) comes back from smtp with status, dsn and
 * reply, site_fail saying whether a session was set up: its destination
 * learns of it, gets its connection back, and the job waits on the done
 * list for qmgr_results_apply.
 */
static void
fix_attempt(struct qmgr_job *job, int site_fail, int status, const char *dsn,
    const char *reply)
{
	job->site_fail = site_fail;
	qmgr_job_result(&job->rcpts[0], status, dsn, reply);
	qmgr_dest_outcome(job);
	qmgr_dest_release(job);
	qmgr_job_done(job);
}

/*
 * Sleeps until what a suspension (or a dead site) of 1 s deferred is due
 * again: the index keeps whole seconds, and such a recipient is due at the
 * first one after the end, up to 2 s after the suspension began.
 */
static void
wait_deferred_due(void)
{
	usleep(2000 * 1000);
}

/* f with a pool "bulk" of two addresses, its messages bound to it. */
static void
fix_two_sources(struct fix *f, struct cfg_pool *pool, struct cidr *addrs)
{
	ck_assert_int_eq(cidr_parse("192.0.2.10", &addrs[0]), 0);
	ck_assert_int_eq(cidr_parse("192.0.2.11", &addrs[1]), 0);
	pool->name = (char *)"bulk";
	pool->addrs = addrs;
	pool->naddrs = 2;
	f->cfg.smtp_pools = pool;
	f->cfg.nsmtp_pools = 1;
	f->pool = "bulk";
}

#endif
