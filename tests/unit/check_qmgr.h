/*
 * check_qmgr.h - the fixture the qmgr suites share (check_qmgr_sched.c,
 * check_qmgr_result.c, check_qmgr_reconcile.c): a real queue (lib/qstore)
 * in a mkdtemp() dir, opened with a hand-made struct cfg and installed as
 * qmgr's qmgr_cfg and qmgr_queue, and messages committed the way smtpd
 * commits them.
 */
#ifndef PETREL_CHECK_QMGR_H
#define PETREL_CHECK_QMGR_H

#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "cfg.h"
#include "qmgr.h"
#include "qstore.h"
#include "vbuf.h"

#define FIX_MAP_SIZE	(16 * 1024 * 1024)

struct fix {
	char		 dir[256];
	struct cfg	 cfg;
	struct vbuf	*why;
	const char	*sender;	/* NULL: sender@example.org */
	int		 bulk;		/* commit in the bulk lane */
	const char	*pool;		/* the source pool; NULL: default */
};

static int
fix_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
fix_setup(struct fix *f)
{
	const char *base = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/check_qmgr.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	f->why = vbuf_create(0);
	ck_assert_msg(qstore_create_dirs(f->dir, getuid(), getgid(), f->why) ==
	    0, "create_dirs: %s", f->why->data);
	f->cfg.queue_directory = f->dir;
	f->cfg.queue_map_size = FIX_MAP_SIZE;
	f->cfg.queue_min_backoff = 300;
	f->cfg.queue_max_backoff = 3600;
	f->cfg.queue_max_lifetime = 5 * 86400;
	f->cfg.smtp_processes = 16;
	f->cfg.smtp_connect_timeout = 30;
	f->cfg.smtp_command_timeout = 300;
	f->cfg.outbox_max_events = 100000;
	f->cfg.outbox_max_age = 7 * 86400;
	f->cfg.outbox_max_share = 10;
	qmgr_cfg = &f->cfg;
	qmgr_queue = qstore_open(&f->cfg, f->why);
	ck_assert_msg(qmgr_queue != NULL, "qstore_open: %s", f->why->data);
}

static void
fix_teardown(struct fix *f)
{
	qstore_close(qmgr_queue);
	qmgr_queue = NULL;
	vbuf_free(f->why);
	(void)nftw(f->dir, fix_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Commits a message for the n recipients rcpts; its id goes to qid. */
static void
fix_commit(struct fix *f, char **rcpts, size_t n, char *qid)
{
	struct qstore_envelope env;
	struct qstore_new *qn;
	static const char body[] = "Subject: test\r\n\r\nbody\r\n";

	memset(&env, 0, sizeof(env));
	env.sender = (char *)(f->sender != NULL ? f->sender :
	    "sender@example.org");
	env.rcpts = rcpts;
	env.nrcpts = n;
	env.arrival = time(NULL);
	env.client_addr = "192.0.2.7";
	env.client_name = "client.example";
	env.auth_user = "";
	env.bulk = f->bulk;
	env.pool = (char *)f->pool;
	qn = qstore_new_begin(qmgr_queue, &env, f->why);
	ck_assert_msg(qn != NULL, "begin: %s", f->why->data);
	ck_assert_int_eq(qstore_new_write(qn, body, sizeof(body) - 1,
	    f->why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f->why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_msg(qstore_commit(qmgr_queue, &qn, 1, f->why) == 0,
	    "commit: %s", f->why->data);
	qstore_new_free(qn);
	/*
	 * The arrival (qid_new, gettimeofday) may be a second ahead of the
	 * scan's time(NULL), a coarser clock, just after a second begins:
	 * the message would not be due yet (seen under the sanitizers).
	 */
	while ((int64_t)time(NULL) < env.arrival)
		usleep(1000);
}

/* The recipient's record: 0, or -1 when there is none. */
static int
fix_rcpt(struct fix *f, const char *qid, uint32_t index,
    struct qstore_rcpt *r)
{
	struct qstore_txn *t;
	int rc;

	t = qstore_txn_begin(qmgr_queue, 0, f->why);
	ck_assert_ptr_nonnull(t);
	rc = qstore_rcpt_get(t, qid, index, r);
	qstore_txn_abort(t);
	return rc;
}

/* No smtp sessions held (qmgr_dest_take's question). */
static unsigned
fix_held_none(const char *key, const char *source, unsigned *reusable)
{
	(void)key;
	(void)source;
	*reusable = 0;
	return 0;
}

/*
 * Takes every pending job off its destination's queue, as the dispatcher
 * does (round-robin over destinations, FIFO within one), and gives the
 * destination back its connection at once; returns how many.
 */
static size_t
fix_pending(struct qmgr_job **jobs, size_t max)
{
	struct qmgr_job *job;
	size_t n = 0;

	while ((job = qmgr_dest_take(fix_held_none, 1)) != NULL) {
		qmgr_dest_release(job);
		ck_assert_uint_lt(n, max);
		jobs[n++] = job;
	}
	return n;
}

#endif
