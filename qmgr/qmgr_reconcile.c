/*
 * qmgr_reconcile.c - start-up reconciliation of the queue files with the
 * LMDB records (qmgr(8), START-UP).
 *
 * A file without records was never acknowledged and goes after a grace
 * period; when records' file is gone, each recipient not yet final fails
 * with a "bounced" event in the same transaction (the outbox had its
 * "accepted": a consumer must hear how it ended) and is owed its report
 * like any failure (bounce makes it without the original); the records
 * go when no report is owed, else once the reports are made. Stale tmp/ files
 * are cleaned up; files in the wrong msg/ directory are moved. Runs once,
 * before qmgr serves anything; a failure is fatal (master restarts qmgr).
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acct.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "qmgr.h"
#include "xalloc.h"

struct qmgr_orphan {
	char		(*qids)[QID_SIZE];
	size_t		 n;
};

/* The recipients of a message whose file is lost, read, then failed. */
struct qmgr_lost {
	struct qstore_txn	*txn;
	struct qstore_msginfo	 m;
	int64_t			 now;
	struct qstore_rcpt	*r;
	size_t			 n;
};

static int qmgr_file_cb(const char *, void *);
static int qmgr_msg_cb(const struct qstore_msginfo *, void *);
static int qmgr_lost_rcpt_cb(const struct qstore_rcpt *, void *);
static int qmgr_lost_fail(struct qmgr_lost *);

static int
qmgr_file_cb(const char *qid, void *arg)
{
	struct qmgr_orphan *o = arg;

	o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
	snprintf(o->qids[o->n++], QID_SIZE, "%s", qid);
	return 0;
}

static int
qmgr_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct qmgr_orphan *o = arg;
	char path[PATH_MAX];

	if (qstore_file_path(path, sizeof(path), qmgr_cfg->queue_directory,
	    m->qid) == 0 && access(path, F_OK) == -1 && errno == ENOENT) {
		o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
		snprintf(o->qids[o->n++], QID_SIZE, "%s", m->qid);
	}
	return 0;
}

static int
qmgr_lost_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct qmgr_lost *lost = arg;

	lost->r = xreallocarray(lost->r, lost->n + 1, sizeof(*lost->r));
	lost->r[lost->n++] = *r;
	return 0;
}

/*
 * Fails the lost message's recipients not yet final, each with its event,
 * and keeps the records while a report is owed. -1: the transaction is
 * bad.
 */
static int
qmgr_lost_fail(struct qmgr_lost *lost)
{
	struct outbox_event ev;
	struct qstore_rcpt *r;
	uint32_t owed = 0;
	int64_t old;

	for (size_t i = 0; i < lost->n; i++) {
		r = &lost->r[i];
		if (r->state == QSTORE_DELIVERED || r->state == QSTORE_FAILED) {
			owed += r->report != QSTORE_REPORT_NONE;
			continue;
		}
		old = r->next_attempt;
		r->state = QSTORE_FAILED;
		snprintf(r->dsn, sizeof(r->dsn), "5.3.0");
		snprintf(r->reply, sizeof(r->reply), "queue file missing");
		r->relay[0] = '\0';
		r->last_attempt = lost->now;
		r->next_attempt = lost->now;
		r->report = qmgr_result_report_owed(&lost->m, r, 0, lost->now);
		owed += r->report != QSTORE_REPORT_NONE;
		if (qstore_rcpt_put(lost->txn, r, old) == -1)
			return -1;
		memset(&ev, 0, sizeof(ev));
		ev.kind = OUTBOX_BOUNCED;
		ev.time_ms = outbox_now_ms();
		snprintf(ev.qid, sizeof(ev.qid), "%s", lost->m.qid);
		ev.sender = lost->m.sender;
		ev.recipient = r->address;
		ev.relay = "none";
		ev.dsn = r->dsn;
		ev.reply = r->reply;
		ev.attempts = r->attempts;
		ev.delay = lost->now - lost->m.arrival;
		if (outbox_put(lost->txn, &ev, NULL) == -1)
			return -1;
		acct_event(&ev);
		metrics_credential(lost->m.auth_user, METRICS_O_BOUNCED, 1);
	}
	if (owed == 0)
		return qstore_msg_delete(lost->txn, lost->m.qid);
	lost->m.left = owed;
	return qstore_msg_put(lost->txn, &lost->m);
}

void
qmgr_reconcile(void)
{
	struct qmgr_orphan files = { NULL, 0 }, lost = { NULL, 0 };
	struct qstore_txn *txn;
	struct qstore_msginfo m;
	struct vbuf *why = vbuf_create(0);
	char path[PATH_MAX];
	struct stat st;
	time_t now = time(NULL);
	size_t i;

	if ((i = (size_t)qstore_tmp_clean(qmgr_cfg->queue_directory,
	    QMGR_ORPHAN_GRACE)) > 0)
		log_info("removed %zu stale file(s) from tmp/", i);
	if ((i = (size_t)qstore_file_rehash(qmgr_cfg->queue_directory)) > 0)
		log_info("moved %zu queue file(s) to their msg/ directory", i);
	(void)qstore_file_iter(qmgr_cfg->queue_directory, qmgr_file_cb,
	    &files);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		log_fatal("reconcile: %s", why->data);
	for (i = 0; i < files.n; i++) {
		if (qstore_msg_get(txn, files.qids[i], &m) == 0 ||
		    qstore_errno() != QSTORE_ERR_NOTFOUND)
			continue;
		if (qstore_file_path(path, sizeof(path),
		    qmgr_cfg->queue_directory, files.qids[i]) == 0 &&
		    stat(path, &st) == 0 && now - st.st_mtime >
		    QMGR_ORPHAN_GRACE) {
			log_info("%s: removed: queue file without records "
			    "(never acknowledged)", files.qids[i]);
			(void)qstore_file_remove(qmgr_cfg->queue_directory,
			    files.qids[i]);
		}
	}
	(void)qstore_msg_iter(txn, qmgr_msg_cb, &lost);
	/* Their events are written to the log only if this commits. */
	acct_hold();
	for (i = 0; i < lost.n; i++) {
		struct qmgr_lost l = { .txn = txn, .now = now };

		if (qstore_msg_get(txn, lost.qids[i], &l.m) == -1) {
			(void)qstore_msg_delete(txn, lost.qids[i]);
			continue;
		}
		(void)qstore_rcpt_iter(txn, lost.qids[i], qmgr_lost_rcpt_cb,
		    &l);
		log_warn("%s: queue file missing; recipients failed",
		    lost.qids[i]);
		if (qmgr_lost_fail(&l) == -1)
			log_fatal("reconcile: %s: %s", lost.qids[i],
			    qstore_errno() == QSTORE_ERR_FULL ?
			    "queue database full" : "queue database error");
		free(l.r);
	}
	if (qstore_txn_commit(txn, why) == -1) {
		acct_release(0);
		log_fatal("reconcile: %s", why->data);
	}
	acct_release(1);
	free(files.qids);
	free(lost.qids);
	vbuf_free(why);
}
