/*
 * qmgr_sched.c - qmgr's scheduler: finds due recipients and turns them
 * into jobs, one per message and next hop (lib/nexthop's key, which
 * smtp is sent), queued for qmgr_deliver.c.
 *
 * The sched index is ordered by time, so a scan stops at the first entry
 * in the future. Recipients already in a job (qmgr_job.c's in-flight set)
 * are skipped; a message's other recipients are not, so a slow next hop
 * holds only its own recipients.
 *
 * The lanes (qmgr(8), Lanes): while bulk jobs wait in memory, a scan
 * first looks at the newest due entries, newest first, for transactional
 * messages only, then goes through the index from the oldest as before.
 * So a transactional message accepted behind a backlog of tens of
 * thousands of bulk ones is loaded at the next scan, not after the
 * backlog; and bulk jobs in memory stop at QMGR_BULK_PENDING_MAX, so
 * slots are left for it (the rest of a bulk backlog is loaded as that
 * drains, oldest first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "nexthop.h"
#include "qmgr.h"
#include "smtpcmd.h"
#include "xalloc.h"

#define QMGR_SCAN_MAX_QIDS	256	/* messages picked per scan */
#define QMGR_SCAN_MAX_VISIT	1024	/* messages looked at per scan */
#define QMGR_SCAN_BACK_VISIT	256	/* of them, newest first */

struct qmgr_scan {
	struct qstore_txn *txn;
	int64_t		 now;
	size_t		 want;		/* messages to pick */
	size_t		 picked;	/* that made delivery jobs */
	char		(*qids)[QID_SIZE];	/* looked at */
	size_t		 nqids;
	int64_t		 next_due;	/* epoch s; -1 none */
	int		 more;		/* stopped with due work left */
	size_t		 back_visits;	/* newest first, transactional */
};

/*
 * One message's due recipients, with their next hops; and those owed a
 * report, for bounce.
 */
struct qmgr_collect {
	int64_t			 now;
	const char		*qid;
	struct qstore_rcpt	*due;
	char			(*keys)[NEXTHOP_KEY_MAX + 1];
	size_t			 ndue, alloc;
	struct qstore_rcpt	*owed;
	size_t			 nowed, owed_alloc;
};

static int64_t qmgr_next_due_mono = -1;
static int qmgr_scan_wanted = 1;

static int qmgr_scan_cb(const char *, uint32_t, int64_t, void *);
static int qmgr_scan_back_cb(const char *, uint32_t, int64_t, void *);
static int qmgr_seen(const struct qmgr_scan *, const char *);
static int qmgr_collect_cb(const struct qstore_rcpt *, void *);
static size_t qmgr_build_jobs(struct qstore_txn *, const char *, int64_t);
static void qmgr_build_reports(const char *, const struct qstore_msginfo *,
    const struct qstore_rcpt *, size_t);
static void qmgr_build_suppressed(const char *, const struct qstore_msginfo *,
    const struct qmgr_collect *, char *);

void
qmgr_sched_want(void)
{
	qmgr_scan_wanted = 1;
}

int
qmgr_sched_wanted(void)
{
	return qmgr_scan_wanted;
}

int64_t
qmgr_sched_next_due(void)
{
	return qmgr_next_due_mono;
}

/*
 * Each message with a due entry not in flight is looked at once, and its
 * jobs made at once. Only a message that made delivery jobs takes one of
 * the slots: one whose due entries wait for bounce (reports, while it is
 * paused) must not keep newer mail from the delivery agents.
 */
static int
qmgr_scan_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct qmgr_scan *sc = arg;

	if (when > sc->now) {
		/* Held messages' entries (relayq -h) are never due. */
		if (when < QSTORE_HELD_NEXT)
			sc->next_due = when;
		return 1;		/* the rest is later still */
	}
	if (qmgr_job_in_flight(qid, index) || qmgr_seen(sc, qid))
		return 0;
	if (sc->picked == sc->want) {
		sc->more = 1;		/* due work is left for a freed slot */
		return 1;
	}
	/* Bounded work; what is left is found by the next scan. */
	if (sc->nqids == QMGR_SCAN_MAX_VISIT)
		return 1;
	snprintf(sc->qids[sc->nqids++], QID_SIZE, "%s", qid);
	if (qmgr_build_jobs(sc->txn, qid, sc->now) > 0)
		sc->picked++;
	return 0;
}

/* Whether qid was looked at in this scan. */
static int
qmgr_seen(const struct qmgr_scan *sc, const char *qid)
{
	if (sc->nqids > 0 && strcmp(sc->qids[sc->nqids - 1], qid) == 0)
		return 1;
	for (size_t i = 0; i < sc->nqids; i++)
		if (strcmp(sc->qids[i], qid) == 0)
			return 1;
	return 0;
}

/*
 * The newest due entries first: transactional messages only (bulk ones
 * wait for the oldest-first pass, in their order), at most
 * QMGR_SCAN_BACK_VISIT messages looked at.
 */
static int
qmgr_scan_back_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct qmgr_scan *sc = arg;
	struct qstore_msginfo m;

	(void)when;
	if (qmgr_job_in_flight(qid, index) || qmgr_seen(sc, qid))
		return 0;
	if (sc->picked == sc->want) {
		sc->more = 1;
		return 1;
	}
	if (sc->back_visits++ == QMGR_SCAN_BACK_VISIT ||
	    sc->nqids == QMGR_SCAN_MAX_VISIT)
		return 1;
	if (qstore_msg_get(sc->txn, qid, &m) == -1 || m.bulk)
		return 0;
	snprintf(sc->qids[sc->nqids++], QID_SIZE, "%s", qid);
	if (qmgr_build_jobs(sc->txn, qid, sc->now) > 0)
		sc->picked++;
	return 0;
}

/* Keeps a due recipient not already in flight, with its next hop. */
static int
qmgr_collect_cb(const struct qstore_rcpt *r, void *arg)
{
	struct qmgr_collect *c = arg;
	char dom[SMTP_DOMAIN_MAX + 1];

	if (r->next_attempt > c->now || qmgr_job_in_flight(c->qid, r->index))
		return 0;
	/*
	 * A report comes first, also for a deferred recipient's warning;
	 * but while bounce is paused a warning does not hold back the retry
	 * its deferral set (the result owes the warning again, if it still
	 * is one).
	 */
	if (r->report == QSTORE_REPORT_DELAYED && !qmgr_bounce_ready()) {
		if (r->last_attempt + qmgr_result_backoff(r->attempts) > c->now)
			return 0;
	} else if (r->report != QSTORE_REPORT_NONE) {
		if (!qmgr_bounce_ready())
			return 0;
		if (c->nowed == c->owed_alloc) {
			c->owed_alloc = c->owed_alloc == 0 ? 16 :
			    c->owed_alloc * 2;
			c->owed = xreallocarray(c->owed, c->owed_alloc,
			    sizeof(*c->owed));
		}
		c->owed[c->nowed++] = *r;
		return 0;
	}
	if (r->state != QSTORE_PENDING && r->state != QSTORE_DEFERRED)
		return 0;
	if (c->ndue == c->alloc) {
		c->alloc = c->alloc == 0 ? 16 : c->alloc * 2;
		c->due = xreallocarray(c->due, c->alloc, sizeof(*c->due));
		c->keys = xreallocarray(c->keys, c->alloc, sizeof(*c->keys));
	}
	c->due[c->ndue] = *r;
	/* The transport entry's next hop, else the domain's own. */
	smtpcmd_addr_domain(r->address, dom, sizeof(dom));
	(void)cfg_nexthop_key(qmgr_cfg, dom, c->keys[c->ndue],
	    sizeof(c->keys[c->ndue]));
	c->ndue++;
	return 0;
}

/*
 * Turns one message's due recipients into jobs, one per next hop, of at
 * most QMGR_JOB_RCPTS_MAX recipients each; returns how many delivery jobs
 * it queued (report and suppressed jobs need no delivery agent).
 */
static size_t
qmgr_build_jobs(struct qstore_txn *txn, const char *qid, int64_t now)
{
	struct qstore_msginfo m;
	struct qmgr_collect c;
	struct qmgr_job *job;
	char *used;
	size_t i, k, n, made = 0;

	if (qstore_msg_get(txn, qid, &m) == -1) {
		log_warn("%s: scheduled but no message record", qid);
		return 0;
	}
	/* Enough of the bulk lane in memory: it waits in the queue. */
	if (m.bulk && qmgr_job_nbulk() >= QMGR_BULK_PENDING_MAX)
		return 0;
	qmgr_active_take(&m);
	memset(&c, 0, sizeof(c));
	c.now = now;
	c.qid = qid;
	(void)qstore_rcpt_iter(txn, qid, qmgr_collect_cb, &c);
	qmgr_build_reports(qid, &m, c.owed, c.nowed);
	free(c.owed);
	if (c.ndue == 0) {
		free(c.due);
		free(c.keys);
		return 0;
	}
	used = xcalloc(c.ndue, 1);
	qmgr_build_suppressed(qid, &m, &c, used);
	for (i = 0; i < c.ndue; i++) {
		if (used[i])
			continue;
		for (n = 0, k = i; k < c.ndue && n < QMGR_JOB_RCPTS_MAX; k++)
			if (!used[k] && strcmp(c.keys[i], c.keys[k]) == 0)
				n++;
		job = qmgr_job_create(qid, c.keys[i], &m, n);
		for (k = i; k < c.ndue && job->nrcpts < n; k++) {
			if (used[k] || strcmp(c.keys[i], c.keys[k]) != 0)
				continue;
			used[k] = 1;
			qmgr_job_add_rcpt(job, c.due[k].index, c.due[k].address,
			    c.due[k].next_attempt);
		}
		qmgr_job_queue(job);
		made++;
	}
	free(used);
	free(c.due);
	free(c.keys);
	return made;
}

/*
 * Due recipients whose address is on the suppression list fail here,
 * without a connection: one job of them, its results given at once, on
 * the done list for qmgr_result.c (a "suppressed" event, a report like
 * any failure's). They are marked used, so no delivery job takes them.
 */
static void
qmgr_build_suppressed(const char *qid, const struct qstore_msginfo *m,
    const struct qmgr_collect *c, char *used)
{
	struct qmgr_job *job = NULL;
	char reply[QSTORE_REPLY_MAX + 1], class[QSTORE_CLASS_MAX + 1];
	struct qmgr_rcpt *rc;
	size_t i;

	for (i = 0; i < c->ndue; i++) {
		if (!qmgr_suppress_check(c->due[i].address, m->sender, reply,
		    sizeof(reply), class, sizeof(class)))
			continue;
		if (job == NULL) {
			job = qmgr_job_create(qid, "", m, c->ndue);
			qmgr_job_set_relay(job, "none");
		}
		used[i] = 1;
		qmgr_job_add_rcpt(job, c->due[i].index, c->due[i].address,
		    c->due[i].next_attempt);
		rc = &job->rcpts[job->nrcpts - 1];
		qmgr_job_result(rc, QSTORE_FAILED, QMGR_SUPPRESSED_DSN, reply);
		snprintf(rc->class, sizeof(rc->class), "%s", class);
		rc->suppressed = 1;
		log_info("%s: to=<%s>, relay=none, delay=%lld, dsn=%s, "
		    "status=bounced (%s), class=%s, bounce=hard", qid,
		    log_safe(c->due[i].address),
		    (long long)(c->now - m->arrival), QMGR_SUPPRESSED_DSN,
		    log_safe(reply), class);
	}
	if (job != NULL)
		qmgr_job_done(job);
}

/*
 * Report jobs for bounce: one per kind of report, of at most
 * QMGR_BOUNCE_RCPTS_MAX recipients, so that one message's failures in one
 * pass make one report. The recipients' records say the rest, and are
 * read again when bounce has answered.
 */
static void
qmgr_build_reports(const char *qid, const struct qstore_msginfo *m,
    const struct qstore_rcpt *owed, size_t nowed)
{
	static const enum qstore_report kinds[] = { QSTORE_REPORT_FAILED,
	    QSTORE_REPORT_DELAYED, QSTORE_REPORT_RELAYED };
	struct qmgr_job *job;
	size_t i, k, n;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (n = 0, i = 0; i < nowed; i++)
			n += owed[i].report == kinds[k];
		job = NULL;
		for (i = 0; i < nowed; i++) {
			if (owed[i].report != kinds[k])
				continue;
			if (job != NULL && job->nrcpts == QMGR_BOUNCE_RCPTS_MAX) {
				qmgr_bounce_queue(job);
				job = NULL;
			}
			if (job == NULL) {
				job = qmgr_job_create(qid, "", m,
				    n < QMGR_BOUNCE_RCPTS_MAX ? n :
				    QMGR_BOUNCE_RCPTS_MAX);
				job->report = kinds[k];
			}
			qmgr_job_add_rcpt(job, owed[i].index,
			    owed[i].address, owed[i].next_attempt);
			n--;
		}
		if (job != NULL)
			qmgr_bounce_queue(job);
	}
}

void
qmgr_sched_scan(size_t slots)
{
	struct qmgr_scan sc;
	struct qstore_txn *txn;
	struct vbuf *why = vbuf_create(0);

	qmgr_scan_wanted = 0;
	memset(&sc, 0, sizeof(sc));
	sc.now = time(NULL);
	sc.next_due = -1;
	sc.want = slots < QMGR_SCAN_MAX_QIDS ? slots : QMGR_SCAN_MAX_QIDS;
	sc.qids = xcalloc(QMGR_SCAN_MAX_VISIT, QID_SIZE);
	/* A read transaction, closed before any delivery starts. */
	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) == NULL) {
		log_warn("queue scan: %s", why->data);
		goto done;
	}
	sc.txn = txn;
	/* Only behind bulk work: otherwise the oldest go first, as ever. */
	if (qmgr_job_nbulk() > 0)
		(void)qstore_sched_iter_back(txn, sc.now, qmgr_scan_back_cb,
		    &sc);
	if (sc.picked < sc.want)
		(void)qstore_sched_iter(txn, qmgr_scan_cb, &sc);
	qstore_txn_abort(txn);
	qmgr_next_due_mono = sc.next_due < 0 ? -1 :
	    ev_now_ms() + (sc.next_due - sc.now) * 1000;
	/*
	 * The scan stopped at the slots it had, with due recipients left:
	 * look again as soon as a slot frees (the loop scans only while one
	 * is free). Waiting instead for the next trigger, or for the results
	 * commit QMGR_RESULTS_DELAY_MS later, left each delivery agent idle
	 * for milliseconds between jobs under a backlog.
	 */
	if (sc.more)
		qmgr_scan_wanted = 1;
done:
	free(sc.qids);
	vbuf_free(why);
}
