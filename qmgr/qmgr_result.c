/*
 * qmgr_result.c - applies smtp's results to the queue: the recipient's
 * new state, the backoff of a deferral, expiry, the message's removal
 * once every recipient is final, and the accounting events.
 *
 * Results wait on qmgr_job.c's done list and are applied in write
 * transactions of at most QMGR_TXN_UPDATES recipients, gathered for
 * QMGR_RESULTS_DELAY_MS first so that many small commits (each two fsyncs
 * holding LMDB's single writer lock, which smtpd needs too) become few. A
 * job is freed, and its recipients leave the in-flight set, only once all
 * its results are committed. See qmgr(8), RESULTS.
 *
 * A recipient's first deferral that the bounce rules call greylisting
 * (lib/bclass, bclass_greylisting) is retried after queue.greylist_retry,
 * the greylist window, rather than queue.min_backoff: a greylisting
 * server accepts the retry once its window has passed, and waiting for
 * the general backoff (often longer) only delays the mail. Later
 * deferrals of the same recipient are not greylisting any more (the
 * window has passed) and take the normal schedule. See qmgr(8), RESULTS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acct.h"
#include "bclass.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "qmgr.h"
#include "xalloc.h"

/* What qmgr_result_event is asked to do with the accounting events. */
enum qmgr_result_ev {
	QMGR_EV_BEGIN,		/* a results transaction starts */
	QMGR_EV_PUT,		/* one recipient's result, inside it */
	QMGR_EV_COMMIT,		/* it committed: the events stand */
	QMGR_EV_ABORT,		/* it did not: they are dropped */
};

static struct qmgr_rcpt **qmgr_refs;		/* results not yet applied */
static size_t qmgr_nrefs, qmgr_refs_alloc;
static int64_t qmgr_held_until = -1;		/* ms: retry held results */
static size_t qmgr_results_compacted;	/* recorded without the reply */
static struct bclass_rules *qmgr_grey_rules;	/* NULL: nothing greylists */

static int qmgr_result_event(enum qmgr_result_ev, struct qstore_txn *,
    const struct qmgr_rcpt *, const struct qstore_rcpt *, enum outbox_kind,
    int64_t, struct vbuf *);
static enum metrics_outcome qmgr_result_outcome(enum outbox_kind);
static const char *qmgr_qstore_error(void);
static int qmgr_results_commit(size_t, size_t, int64_t, int, struct vbuf *);
static size_t qmgr_results_collect(void);
static void qmgr_results_drop_applied(void);
static void qmgr_results_warn_compact(void);

int64_t
qmgr_result_backoff(uint32_t attempts)
{
	return qmgr_result_backoff_from(0, attempts);
}

int64_t
qmgr_result_backoff_from(int64_t first, uint32_t attempts)
{
	int64_t b = first > 0 ? first : qmgr_cfg->queue_min_backoff;
	int64_t max = qmgr_cfg->queue_max_backoff > b ?
	    qmgr_cfg->queue_max_backoff : b;

	/* first * 2^(attempts-1), capped at max. */
	for (uint32_t i = 1; i < attempts && b < max; i++)
		b *= 2;
	return b > max ? max : b;
}

/*
 * Loads the bounce rules (bounce.classes) that tell greylisting. The
 * same files smtp classifies with, which has already refused to start
 * on a bad one; should they fail here all the same, deferrals simply
 * take the normal backoff.
 */
void
qmgr_result_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	bclass_free(qmgr_grey_rules);
	qmgr_grey_rules = NULL;
	if (cfg->queue_greylist_retry > 0 &&
	    (qmgr_grey_rules = bclass_load(cfg, why)) == NULL)
		log_warn("bounce classification: %s; greylisting is not told "
		    "apart (queue.greylist_retry unused)", why->data);
	vbuf_free(why);
}

int64_t
qmgr_result_retry_in(uint32_t attempts, const char *dsn, const char *reply,
    int64_t first, int *greylisted)
{
	*greylisted = attempts == 1 && qmgr_cfg->queue_greylist_retry > 0 &&
	    bclass_greylisting(qmgr_grey_rules, dsn, reply);
	return *greylisted ? qmgr_cfg->queue_greylist_retry :
	    qmgr_result_backoff_from(first, attempts);
}

int
qmgr_result_settle(struct qstore_txn *txn, struct qstore_msginfo *m,
    char (**removed)[QID_SIZE], size_t *nremoved, struct vbuf *why)
{
	if (m->left > 0)
		m->left--;
	if (m->left > 0) {
		if (qstore_msg_put(txn, m) == -1) {
			vbuf_setf(why, "%s: message update: %s", m->qid,
			    qmgr_qstore_error());
			return -1;
		}
		return 0;
	}
	/* Every recipient is final and reported: the message goes. */
	if (qstore_msg_delete(txn, m->qid) == -1) {
		vbuf_setf(why, "%s: delete: %s", m->qid, qmgr_qstore_error());
		return -1;
	}
	*removed = xreallocarray(*removed, *nremoved + 1, QID_SIZE);
	snprintf((*removed)[(*nremoved)++], QID_SIZE, "%s", m->qid);
	return 0;
}

void
qmgr_result_retire(char (*removed)[QID_SIZE], size_t nremoved)
{
	/* The file goes only once its records are gone. */
	for (size_t i = 0; i < nremoved; i++) {
		(void)qstore_file_retire(qmgr_queue, removed[i]);
		log_info("%s: removed", removed[i]);
		qmgr_active_forget(removed[i]);
	}
}

/*
 * The report a recipient's new state owes its sender: none to the null sender (no bounce of a bounce), none
 * when the credential turned reports off or NOTIFY=NEVER; a failure is
 * reported unless NOTIFY left FAILURE out; a delivery only on
 * NOTIFY=SUCCESS and only when the next hop did not take the request
 * over (RFC 3461 6.2: a DSN-aware next hop reports it itself); a delay
 * once, after bounce.delay_warning, unless NOTIFY left DELAY out.
 */
enum qstore_report
qmgr_result_report_owed(const struct qstore_msginfo *m,
    const struct qstore_rcpt *r, int dsn_passed, int64_t now)
{
	if (m->sender[0] == '\0' || m->dsn_off ||
	    (r->notify & QSTORE_NOTIFY_NEVER) != 0)
		return QSTORE_REPORT_NONE;
	switch (r->state) {
	case QSTORE_FAILED:
		return r->notify == 0 || (r->notify & QSTORE_NOTIFY_FAILURE) ?
		    QSTORE_REPORT_FAILED : QSTORE_REPORT_NONE;
	case QSTORE_DELIVERED:
		return (r->notify & QSTORE_NOTIFY_SUCCESS) && !dsn_passed ?
		    QSTORE_REPORT_RELAYED : QSTORE_REPORT_NONE;
	case QSTORE_DEFERRED:
		if (qmgr_cfg->bounce_delay_warning == 0 || r->warned ||
		    now - m->arrival < qmgr_cfg->bounce_delay_warning)
			return QSTORE_REPORT_NONE;
		return r->notify == 0 || (r->notify & QSTORE_NOTIFY_DELAY) ?
		    QSTORE_REPORT_DELAYED : QSTORE_REPORT_NONE;
	default:
		return QSTORE_REPORT_NONE;
	}
}

/*
 * The events of the results, all in one place: BEGIN when a results
 * transaction starts; PUT for each recipient's result inside it, which
 * puts the event into the outbox in that transaction (lib/outbox) and
 * holds its accounting log line; COMMIT or ABORT when the transaction
 * ends, which writes the held lines or drops them, so that the log says
 * what the outbox says. Only PUT can fail (-1, why set): the transaction
 * is then bad.
 */
static int
qmgr_result_event(enum qmgr_result_ev op, struct qstore_txn *txn,
    const struct qmgr_rcpt *rc, const struct qstore_rcpt *r,
    enum outbox_kind kind, int64_t now, struct vbuf *why)
{
	const struct qmgr_job *job;
	struct outbox_event ev;
	uint64_t dropped;

	switch (op) {
	case QMGR_EV_BEGIN:
		acct_hold();
		return 0;
	case QMGR_EV_COMMIT:
		acct_release(1);
		if ((dropped = outbox_dropped_to_report(qmgr_queue,
		    ev_now_ms())) > 0)
			log_warn(OUTBOX_DROPPED_FMT, dropped);
		return 0;
	case QMGR_EV_ABORT:
		acct_release(0);
		return 0;
	case QMGR_EV_PUT:
		break;
	}
	job = rc->job;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.time_ms = outbox_now_ms();
	snprintf(ev.qid, sizeof(ev.qid), "%s", job->qid);
	ev.sender = job->sender;
	ev.recipient = r->address;
	ev.relay = job->relay != NULL ? job->relay : "none";
	ev.dsn = r->dsn;
	ev.reply = r->reply;
	ev.attempts = r->attempts;
	ev.delay = now - job->arrival;
	if (kind == OUTBOX_DEFERRED)
		ev.next_attempt = r->next_attempt;
	/* "d=DOMAIN s=SELECTOR", or "unsigned" (no key for the domain). */
	ev.dkim = job->dkim;
	ev.class = rc->class[0] != '\0' ? rc->class : NULL;
	if (outbox_put(txn, &ev, why) == -1)
		return -1;
	acct_event(&ev);
	return 0;
}

/* The outcome an event's kind counts as, by credential (metricsd(8)). */
static enum metrics_outcome
qmgr_result_outcome(enum outbox_kind kind)
{
	switch (kind) {
	case OUTBOX_DELIVERED:
		return METRICS_O_DELIVERED;
	case OUTBOX_DEFERRED:
		return METRICS_O_DEFERRED;
	case OUTBOX_EXPIRED:
		return METRICS_O_EXPIRED;
	case OUTBOX_SUPPRESSED:
		return METRICS_O_SUPPRESSED;
	default:
		return METRICS_O_BOUNCED;
	}
}

/* Why the last per-record queue operation failed, for a log line. */
static const char *
qmgr_qstore_error(void)
{
	return qstore_errno() == QSTORE_ERR_FULL ? "queue database full "
	    "(queue.map_size)" : "queue database error";
}

/*
 * Rounding from the current second rather than the current instant would
 * make a recipient due up to a second early: deferred again, while its
 * destination is still suspended.
 */
int64_t
qmgr_epoch_after_ms(int64_t ms)
{
	return (outbox_now_ms() + ms + 999) / 1000;
}

/*
 * Applies the results refs[from, to) not yet applied in one write
 * transaction and marks them applied. Returns -1, with the reason in why,
 * if it did not commit: those recipients stay as they were.
 *
 * A deferral's remote reply makes a recipient record up to three times
 * the size smtpd accounted for when it kept its headroom. Past
 * QMGR_REPLY_KEEP_PCT of the map, or when "compact" is set, the reply
 * is left out (it is in the log and the accounting event), so that the
 * records stay as small as smtpd saw them.
 */
static int
qmgr_results_commit(size_t from, size_t to, int64_t now, int compact,
    struct vbuf *why)
{
	struct qstore_txn *txn;
	struct qstore_msginfo m;
	struct qstore_rcpt r, stored;
	char (*removed)[QID_SIZE] = NULL;
	size_t nremoved = 0, ncompact = 0, i;
	int64_t old, retry, susp;
	int rc = -1, put, grey;

	vbuf_reset(why);
	/* Outside the queue's writer lock; repeating it adds nothing new. */
	qmgr_suppress_results(qmgr_refs + from, to - from);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		return -1;
	if (qstore_txn_used_pct(txn, QMGR_REPLY_KEEP_PCT) >=
	    QMGR_REPLY_KEEP_PCT)
		compact = 1;
	(void)qmgr_result_event(QMGR_EV_BEGIN, txn, NULL, NULL, 0, now, why);
	/* Destinations' changes of state ride along (qmgr_destev.c). */
	if (qmgr_destev_put(txn, why) == -1) {
		vbuf_setf(why, "destination event: %s", qmgr_qstore_error());
		goto fail;
	}
	/* So do warmup counts, with the results they were counted for. */
	if (qmgr_source_put(txn, why) == -1) {
		vbuf_addf(why, ": %s", qmgr_qstore_error());
		goto fail;
	}
	for (i = from; i < to; i++) {
		struct qmgr_rcpt *res = qmgr_refs[i];
		const struct qmgr_job *job = res->job;
		const char *qid = job->qid;
		enum outbox_kind kind;
		int have_m;

		if (res->applied)
			continue;
		/* No record: delivered and removed already. */
		if (qstore_rcpt_get(txn, qid, res->index, &r) == -1)
			continue;
		if (r.state == QSTORE_DELIVERED || r.state == QSTORE_FAILED)
			continue;
		have_m = qstore_msg_get(txn, qid, &m) == 0;
		/*
		 * Put on hold while this attempt was at smtp: a held message
		 * does not expire (qmgr(8), HOLD); its age is looked at again
		 * at the first deferral after it is released.
		 */
		if (res->status == QSTORE_DEFERRED && !(have_m && m.held != 0) &&
		    now - job->arrival >= qmgr_cfg->queue_max_lifetime) {
			/* Too old to keep trying: a final failure. */
			/* Kept with the result: a retried commit sees FAILED. */
			res->status = QSTORE_FAILED;
			res->expired = 1;
			snprintf(res->class, sizeof(res->class), "%s",
			    QMGR_CLASS_EXPIRED);
			log_info("%s: to=<%s>, relay=none, delay=%" PRId64
			    ", dsn=%s, status=expired (%s), class=%s, "
			    "bounce=hard", qid, log_safe(r.address),
			    now - job->arrival, res->dsn, log_safe(res->reply),
			    res->class);
		}
		stored = r;
		old = r.next_attempt;
		r.attempts++;
		r.state = res->status;
		r.last_attempt = now;
		snprintf(r.dsn, sizeof(r.dsn), "%s", res->dsn);
		snprintf(r.class, sizeof(r.class), "%s", res->class);
		snprintf(r.relay, sizeof(r.relay), "%s", job->relay != NULL &&
		    strcmp(job->relay, "none") != 0 ? job->relay : "");
		/* A failure's reply is what its report quotes: always kept. */
		snprintf(r.reply, sizeof(r.reply), "%s", compact &&
		    r.state == QSTORE_DEFERRED ? "" : res->reply);
		r.report = have_m ? qmgr_result_report_owed(&m, &r,
		    res->dsn_passed, now) : QSTORE_REPORT_NONE;
		if (r.state == QSTORE_DEFERRED) {
			retry = qmgr_result_retry_in(r.attempts, res->dsn,
			    res->reply, qmgr_dest_retry_interval(job->nexthop),
			    &grey);
			r.next_attempt = now + retry;
			/* smtp logged the deferral; this says why so soon. */
			if (grey)
				log_info("%s: to=<%s>, greylisted, next attempt "
				    "in %" PRId64 "s (queue.greylist_retry)",
				    qid, log_safe(r.address), retry);
			/*
			 * Its destination is suspended: tried when that ends
			 * (the first attempt after it probes the site), not
			 * on the backoff, which would send it round to be
			 * deferred again meanwhile or keep it past the end.
			 */
			if ((susp = qmgr_dest_suspended_ms(job->dest_key)) > 0)
				r.next_attempt = qmgr_epoch_after_ms(susp);
		}
		/* Flushed while in flight: the flush could not reach it. */
		if (r.state == QSTORE_DEFERRED && qmgr_flushed_ms >= 0 &&
		    job->dispatched <= qmgr_flushed_ms)
			r.next_attempt = now;
		/* An owed report is due at once (the retry waits for it). */
		if (r.report != QSTORE_REPORT_NONE)
			r.next_attempt = now;
		/* Held meanwhile: what is still scheduled waits for release. */
		if (have_m && m.held != 0 && (r.state == QSTORE_DEFERRED ||
		    r.report != QSTORE_REPORT_NONE))
			r.next_attempt = QSTORE_HELD_NEXT;
		/* A delivered recipient's record is its accounting event. */
		if (r.state == QSTORE_DELIVERED && r.report == QSTORE_REPORT_NONE)
			put = qstore_rcpt_remove(txn, &stored);
		else {
			put = qstore_rcpt_put(txn, &r, old);
			ncompact += compact && r.state == QSTORE_DEFERRED;
		}
		if (put == -1) {
			/* LMDB has marked the transaction bad: give it up. */
			vbuf_setf(why, "%s: recipient update: %s", qid,
			    qmgr_qstore_error());
			goto fail;
		}
		/* The event has the reply even when the record does not. */
		snprintf(r.reply, sizeof(r.reply), "%s", res->reply);
		kind = r.state == QSTORE_DELIVERED ? OUTBOX_DELIVERED :
		    r.state == QSTORE_DEFERRED ? OUTBOX_DEFERRED :
		    res->suppressed ? OUTBOX_SUPPRESSED :
		    res->expired ? OUTBOX_EXPIRED : OUTBOX_BOUNCED;
		if (qmgr_result_event(QMGR_EV_PUT, txn, res, &r, kind, now,
		    why) == -1) {
			vbuf_setf(why, "%s: event: %s", qid,
			    qmgr_qstore_error());
			goto fail;
		}
		/* By credential: held with the events until the commit. */
		metrics_credential(have_m ? m.auth_user : NULL,
		    qmgr_result_outcome(kind), 1);
		/* Not final yet, or final with a report still to make. */
		if (r.state == QSTORE_DEFERRED || r.report != QSTORE_REPORT_NONE ||
		    !have_m)
			continue;
		if (qmgr_result_settle(txn, &m, &removed, &nremoved, why) == -1)
			goto fail;
	}
	if (qstore_txn_commit(txn, why) == -1) {
		(void)qmgr_result_event(QMGR_EV_ABORT, NULL, NULL, NULL, 0, now,
		    why);
		qmgr_destev_done(0);
		qmgr_source_done(0);
		goto out;
	}
	(void)qmgr_result_event(QMGR_EV_COMMIT, NULL, NULL, NULL, 0, now, why);
	qmgr_destev_done(1);
	qmgr_source_done(1);
	for (i = from; i < to; i++)
		qmgr_refs[i]->applied = 1;
	qmgr_results_compacted += ncompact;
	qmgr_result_retire(removed, nremoved);
	rc = 0;
	goto out;
fail:
	qstore_txn_abort(txn);
	(void)qmgr_result_event(QMGR_EV_ABORT, NULL, NULL, NULL, 0, now, why);
	qmgr_destev_done(0);
	qmgr_source_done(0);
out:
	free(removed);
	return rc;
}

/*
 * Milliseconds until the gathered results are due to be applied: at once
 * when enough have gathered, else QMGR_RESULTS_DELAY_MS after the first
 * of them (held ones: QMGR_RESULTS_RETRY_MS after the last try). -1 when
 * there are none.
 */
int64_t
qmgr_results_due_in(void)
{
	int64_t since, due = -1, now;

	if (qmgr_job_done_first() == NULL)
		return -1;
	if (qmgr_job_done_new(&since) >= QMGR_TXN_UPDATES)
		return 0;
	if (since >= 0)
		due = since + QMGR_RESULTS_DELAY_MS;
	if (qmgr_held_until >= 0 && (due < 0 || qmgr_held_until < due))
		due = qmgr_held_until;
	if (due < 0)
		return 0;	/* not reached: every done job is new or held */
	now = ev_now_ms();
	return due <= now ? 0 : due - now;
}

/* Lists the recorded results not yet applied, in the order they came. */
static size_t
qmgr_results_collect(void)
{
	struct qmgr_job *job;
	size_t i;

	qmgr_nrefs = 0;
	for (job = qmgr_job_done_first(); job != NULL; job = job->next)
		for (i = 0; i < job->nrcpts; i++) {
			if (job->rcpts[i].applied)
				continue;
			if (qmgr_nrefs == qmgr_refs_alloc) {
				qmgr_refs_alloc = qmgr_refs_alloc == 0 ? 256 :
				    qmgr_refs_alloc * 2;
				qmgr_refs = xreallocarray(qmgr_refs,
				    qmgr_refs_alloc, sizeof(*qmgr_refs));
			}
			qmgr_refs[qmgr_nrefs++] = &job->rcpts[i];
		}
	return qmgr_nrefs;
}

/*
 * Applies the gathered results, in transactions of at most
 * QMGR_TXN_UPDATES recipients.
 *
 * A chunk that does not commit (the map is full) goes one result at a
 * time without the remote reply; what still does not fit is held, its
 * recipients in flight so that nothing delivers them again, and tried
 * again QMGR_RESULTS_RETRY_MS later. Deleting delivered recipients frees
 * the space that the held ones wait for.
 */
size_t
qmgr_results_apply(void)
{
	struct vbuf *why;
	int64_t now = time(NULL);
	size_t i, k, n, nheld = 0;

	qmgr_job_done_clear();
	if ((n = qmgr_results_collect()) == 0) {
		qmgr_held_until = -1;
		return 0;
	}
	why = vbuf_create(0);
	qmgr_results_compacted = 0;
	for (i = 0; i < n; i += QMGR_TXN_UPDATES) {
		size_t end = i + QMGR_TXN_UPDATES < n ? i + QMGR_TXN_UPDATES :
		    n;

		if (qmgr_results_commit(i, end, now, 0, why) == 0)
			continue;
		if (qstore_errno() == QSTORE_ERR_FULL && qmgr_result_grow() ==
		    0 && qmgr_results_commit(i, end, now, 0, why) == 0)
			continue;
		for (k = i; k < end; k++)
			if (!qmgr_refs[k]->applied &&
			    qmgr_results_commit(k, k + 1, now, 1, why) == -1)
				nheld++;
	}
	qmgr_results_warn_compact();
	if (nheld > 0 && daemon_stopping()) {
		log_warn("%zu result(s) not recorded at stop: %s; those "
		    "recipients will be tried again", nheld, why->data);
		for (i = 0; i < n; i++)
			qmgr_refs[i]->applied = 1;
		nheld = 0;
	} else if (nheld > 0)
		log_warn("%zu result(s) not recorded: %s; trying again in "
		    "%d ms", nheld, why->data, QMGR_RESULTS_RETRY_MS);
	vbuf_free(why);
	qmgr_results_drop_applied();
	qmgr_held_until = nheld > 0 ? ev_now_ms() + QMGR_RESULTS_RETRY_MS :
	    -1;
	return n;
}

/*
 * The map is full even though smtpd stopped accepting at half of it:
 * results of accepted mail must still be written, so the map grows (up to
 * twice queue.map_size) rather than leaving them unrecorded.
 */
int
qmgr_result_grow(void)
{
	struct vbuf *why = vbuf_create(0);
	uint64_t size;
	int rc;

	if ((rc = qstore_grow(qmgr_queue, &size, why)) == 0)
		log_warn("queue database full: map grown to %" PRIu64 " MiB, "
		    "beyond queue.map_size (%" PRIu64 " MiB), to record "
		    "delivery results; raise queue.map_size", size >> 20,
		    qmgr_cfg->queue_map_size >> 20);
	else
		log_warn("queue database full: %s", why->data);
	vbuf_free(why);
	return rc;
}

/* A full map is worth one line a minute, not one per transaction. */
static void
qmgr_results_warn_compact(void)
{
	static int64_t last_ms = -QMGR_WARN_INTERVAL_MS;
	static size_t total;
	int64_t now = ev_now_ms();

	total += qmgr_results_compacted;
	if (total == 0 || now - last_ms < QMGR_WARN_INTERVAL_MS)
		return;
	log_warn("queue database over %d%% full: %zu result(s) recorded "
	    "without the remote reply (queue.map_size)", QMGR_REPLY_KEEP_PCT,
	    total);
	total = 0;
	last_ms = now;
}

/* Frees each done job whose results are all applied; held ones stay. */
static void
qmgr_results_drop_applied(void)
{
	struct qmgr_job *job, *prev = NULL, *next;
	size_t i;

	for (job = qmgr_job_done_first(); job != NULL; job = next) {
		next = job->next;
		for (i = 0; i < job->nrcpts; i++)
			if (!job->rcpts[i].applied)
				break;
		if (i < job->nrcpts) {
			prev = job;
			continue;
		}
		qmgr_job_done_remove(prev, job);
		qmgr_job_free(job);
	}
}
