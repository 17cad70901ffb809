/*
 * qmgr_admin.c - queue administration for relayq: hold, release, delete
 * and requeue messages named by id (or ALL), recipient domain or sender.
 *
 * relayq only reads the queue; these requests come to qmgr over
 * private/qmgr because qmgr alone writes recipient state, and so knows
 * what is in flight. A hold is durable: the message record says "held"
 * and every recipient still scheduled moves to QSTORE_HELD_NEXT, where no
 * scan reaches it, in one transaction per batch; a result of an attempt
 * already at smtp when the hold came is applied and, if deferred, held
 * too (qmgr_result.c). Jobs still waiting for a connection are dropped.
 * A held message does not expire: age is measured from arrival, and
 * looked at again at the first deferral after release (Postfix's
 * postsuper -h). A delete puts one "deleted" event per recipient not
 * yet final into the outbox in the transaction that removes the records;
 * the file goes after the commit. See qmgr(8), HOLD, and relayq(1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acct.h"
#include "log.h"
#include "outbox.h"
#include "qmgr.h"
#include "xalloc.h"

/* Messages per write transaction. */
#define QMGR_ADMIN_TXN_MSGS	32
#define QMGR_ADMIN_DELETED_REPLY	"deleted by the administrator"

struct qmgr_admin_pick {
	const struct qstore_select *sel;
	struct qstore_txn	*txn;
	char			(*qids)[QID_SIZE];
	size_t			 n, alloc;
};

struct qmgr_admin_rcpts {
	struct qstore_rcpt	*r;
	size_t			 n;
};

static int qmgr_admin_pick_cb(const struct qstore_msginfo *, void *);
static int qmgr_admin_rcpt_cb(const struct qstore_rcpt *, void *);
static int qmgr_admin_one(struct qstore_txn *, enum qmgr_admin_op,
    const char *, int64_t, struct vbuf *);
static int qmgr_admin_batch(enum qmgr_admin_op, char (*)[QID_SIZE], size_t,
    size_t, int64_t, char (**)[QID_SIZE], size_t *, struct vbuf *);

static int
qmgr_admin_pick_cb(const struct qstore_msginfo *m, void *arg)
{
	struct qmgr_admin_pick *p = arg;

	if (!qstore_select_match(p->txn, m, p->sel))
		return 0;
	if (p->n == p->alloc) {
		p->alloc = p->alloc == 0 ? 64 : p->alloc * 2;
		p->qids = xreallocarray(p->qids, p->alloc, QID_SIZE);
	}
	snprintf(p->qids[p->n++], QID_SIZE, "%s", m->qid);
	return 0;
}

static int
qmgr_admin_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct qmgr_admin_rcpts *rs = arg;

	rs->r = xreallocarray(rs->r, rs->n + 1, sizeof(*rs->r));
	rs->r[rs->n++] = *r;
	return 0;
}

/*
 * One message, inside txn: 1 changed, 0 nothing to do (not found, or
 * already in the state asked for), -1 the transaction is bad (why set).
 */
static int
qmgr_admin_one(struct qstore_txn *txn, enum qmgr_admin_op op, const char *qid,
    int64_t now, struct vbuf *why)
{
	struct qmgr_admin_rcpts rs = { NULL, 0 };
	struct qstore_msginfo m;
	struct outbox_event ev;
	struct qstore_rcpt *r;
	int64_t old;
	size_t i;
	int changed = 0;

	if (qstore_msg_get(txn, qid, &m) == -1)
		return 0;
	if ((op == QMGR_ADMIN_HOLD && m.held != 0) ||
	    (op == QMGR_ADMIN_RELEASE && m.held == 0))
		return 0;
	/* Recipients waiting for a connection are not at smtp yet. */
	if (op == QMGR_ADMIN_HOLD || op == QMGR_ADMIN_DELETE)
		(void)qmgr_job_cancel_pending(qid);
	(void)qstore_rcpt_iter(txn, qid, qmgr_admin_rcpt_cb, &rs);
	if (op == QMGR_ADMIN_HOLD || op == QMGR_ADMIN_RELEASE) {
		m.held = op == QMGR_ADMIN_HOLD ? now : 0;
		if (qstore_msg_put(txn, &m) == -1)
			goto bad;
		changed = 1;
		log_info("%s: %s", qid, op == QMGR_ADMIN_HOLD ? "held" :
		    "released");
	}
	for (i = 0; i < rs.n; i++) {
		r = &rs.r[i];
		old = r->next_attempt;
		switch (op) {
		case QMGR_ADMIN_HOLD:
			/* In flight: its result is held (qmgr_result.c). */
			if (qmgr_job_in_flight(qid, r->index) ||
			    (r->state != QSTORE_PENDING &&
			    r->state != QSTORE_DEFERRED &&
			    r->report == QSTORE_REPORT_NONE))
				continue;
			r->next_attempt = QSTORE_HELD_NEXT;
			break;
		case QMGR_ADMIN_RELEASE:
			if (r->next_attempt < QSTORE_HELD_NEXT)
				continue;
			r->next_attempt = now;
			break;
		case QMGR_ADMIN_REQUEUE:
			/* A held message stays held: release it first. */
			if (m.held != 0 || qmgr_job_in_flight(qid, r->index) ||
			    r->state != QSTORE_DEFERRED ||
			    r->next_attempt <= now)
				continue;
			r->next_attempt = now;
			changed = 1;
			break;
		case QMGR_ADMIN_DELETE:
			if (r->state == QSTORE_DELIVERED ||
			    r->state == QSTORE_FAILED)
				continue;
			memset(&ev, 0, sizeof(ev));
			ev.kind = OUTBOX_DELETED;
			ev.time_ms = outbox_now_ms();
			snprintf(ev.qid, sizeof(ev.qid), "%s", qid);
			ev.sender = m.sender;
			ev.recipient = r->address;
			ev.relay = "none";
			ev.dsn = r->dsn[0] != '\0' ? r->dsn : NULL;
			ev.reply = QMGR_ADMIN_DELETED_REPLY;
			ev.attempts = r->attempts;
			ev.delay = now - m.arrival;
			if (outbox_put(txn, &ev, why) == -1)
				goto bad;
			acct_event(&ev);
			log_info("%s: to=<%s>, relay=none, delay=%" PRId64
			    ", status=deleted (%s)", qid, log_safe(r->address),
			    ev.delay, QMGR_ADMIN_DELETED_REPLY);
			continue;
		}
		if (qstore_rcpt_put(txn, r, old) == -1)
			goto bad;
	}
	if (op == QMGR_ADMIN_DELETE) {
		if (qstore_msg_delete(txn, qid) == -1)
			goto bad;
		changed = 1;
	}
	free(rs.r);
	return changed;
bad:
	free(rs.r);
	if (why->len == 0)
		vbuf_setf(why, "%s: %s", qid, qstore_errno() == QSTORE_ERR_FULL ?
		    "queue database full (queue.map_size)" :
		    "queue database error");
	return -1;
}

/*
 * qids[from, to) in one write transaction; returns how many changed, or
 * -1 (nothing committed). Deleted ids are added to *removed.
 */
static int
qmgr_admin_batch(enum qmgr_admin_op op, char (*qids)[QID_SIZE], size_t from,
    size_t to, int64_t now, char (**removed)[QID_SIZE], size_t *nremoved,
    struct vbuf *why)
{
	struct qstore_txn *txn;
	size_t i, first = *nremoved;
	int n = 0, rc;

	vbuf_reset(why);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		return -1;
	/* The events' log lines are written only if this commits. */
	acct_hold();
	for (i = from; i < to; i++) {
		if ((rc = qmgr_admin_one(txn, op, qids[i], now, why)) == -1) {
			qstore_txn_abort(txn);
			acct_release(0);
			*nremoved = first;
			return -1;
		}
		n += rc;
		if (rc == 1 && op == QMGR_ADMIN_DELETE) {
			*removed = xreallocarray(*removed, *nremoved + 1,
			    QID_SIZE);
			snprintf((*removed)[(*nremoved)++], QID_SIZE, "%s",
			    qids[i]);
		}
	}
	if (qstore_txn_commit(txn, why) == -1) {
		acct_release(0);
		*nremoved = first;
		return -1;
	}
	acct_release(1);
	return n;
}

const char *
qmgr_admin_name(enum qmgr_admin_op op)
{
	switch (op) {
	case QMGR_ADMIN_HOLD:
		return "hold";
	case QMGR_ADMIN_RELEASE:
		return "release";
	case QMGR_ADMIN_DELETE:
		return "delete";
	case QMGR_ADMIN_REQUEUE:
		return "requeue";
	}
	return "?";
}

int
qmgr_admin(enum qmgr_admin_op op, const struct qstore_select *sel,
    struct vbuf *why)
{
	struct qmgr_admin_pick p;
	struct qstore_txn *txn;
	struct qstore_msginfo m;
	char (*removed)[QID_SIZE] = NULL;
	size_t nremoved = 0, i, end;
	int64_t now = time(NULL);
	int n = 0, got, failed = 0;

	memset(&p, 0, sizeof(p));
	p.sel = sel;
	/* 1. Which messages: a read transaction, closed before any write. */
	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) == NULL)
		return -1;
	p.txn = txn;
	if (sel->qid != NULL) {
		if (qstore_msg_get(txn, sel->qid, &m) == 0)
			(void)qmgr_admin_pick_cb(&m, &p);
	} else
		(void)qstore_msg_iter(txn, qmgr_admin_pick_cb, &p);
	qstore_txn_abort(txn);
	/* 2. Small batches; one that does not commit goes one at a time. */
	for (i = 0; i < p.n; i = end) {
		end = i + QMGR_ADMIN_TXN_MSGS < p.n ? i + QMGR_ADMIN_TXN_MSGS :
		    p.n;
		if ((got = qmgr_admin_batch(op, p.qids, i, end, now, &removed,
		    &nremoved, why)) >= 0) {
			n += got;
			continue;
		}
		for (size_t k = i; k < end; k++) {
			if ((got = qmgr_admin_batch(op, p.qids, k, k + 1, now,
			    &removed, &nremoved, why)) >= 0)
				n += got;
			else
				failed++;
		}
	}
	/* 3. Files go once their records are gone (crash: an orphan file). */
	for (i = 0; i < nremoved; i++) {
		(void)qstore_file_remove(qmgr_cfg->queue_directory,
		    removed[i]);
		log_info("%s: removed", removed[i]);
		qmgr_active_forget(removed[i]);
	}
	free(removed);
	free(p.qids);
	if (failed > 0)
		log_warn("%s: %d message(s) could not be updated: %s",
		    qmgr_admin_name(op), failed, why->data);
	return failed > 0 && n == 0 ? -1 : n;
}
