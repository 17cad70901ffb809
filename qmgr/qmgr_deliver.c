/*
 * qmgr_deliver.c - qmgr's side of the delivery protocol: connections to
 * smtp processes on private/smtp, requests out, results in.
 *
 * Each connection carries one job at a time and is kept for the next one.
 * Results collected during a loop pass are applied in one write
 * transaction (qmgr_results_apply), with their accounting events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "acct.h"
#include "attr.h"
#include "attrconn.h"
#include "daemon.h"
#include "event.h"
#include "json.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "qmgr.h"
#include "parse.h"
#include "qid.h"
#include "xalloc.h"

struct qmgr_conn {
	struct qmgr_conn	*next;
	struct attrconn		*ac;
	struct qmgr_job		*job;		/* NULL: idle */
	unsigned		 served;	/* replies received */
};

/* One reply's recipient group, as attr_scan fills it. */
struct qmgr_reply {
	struct qmgr_job		*job;
	const char		*relay;
	uint64_t		 index;
	const char		*status;
	const char		*dsn;
	const char		*text;
};

static struct qmgr_conn *qmgr_conns;
static size_t qmgr_nconns, qmgr_nbusy;
static struct qmgr_job *qmgr_pending, **qmgr_pending_tail = &qmgr_pending;
static struct qmgr_result *qmgr_results;
static size_t qmgr_nresults, qmgr_results_alloc;
static size_t qmgr_nheld;			/* not recorded, map full */
static int64_t qmgr_results_due_ms = -1;	/* when to apply them, ms */
static size_t qmgr_results_compacted;	/* recorded without the reply */
static struct vbuf *qmgr_req;			/* the request being sent */

static struct qmgr_conn *qmgr_conn_get(void);
static void qmgr_conn_close(struct qmgr_conn *);
static void qmgr_conn_record(struct attrconn *, const struct attr_list *,
    void *);
static void qmgr_conn_error(struct attrconn *, enum attrconn_err,
    const char *, void *);
static void qmgr_conn_fail(struct qmgr_conn *, const char *);
static void qmgr_conn_reply(struct qmgr_conn *, const struct attr_list *);
static int qmgr_reply_rcpt(void *, struct vbuf *);
static void qmgr_dispatch(struct qmgr_conn *, struct qmgr_job *);
static void qmgr_job_finish(struct qmgr_job *);
static void qmgr_results_drop_applied(void);
static int qmgr_results_grow(void);
static void qmgr_results_warn_compact(void);
static int64_t qmgr_request_deadline_ms(void);

size_t
qmgr_deliver_free_slots(void)
{
	size_t pending = 0, busy = qmgr_nbusy;

	for (struct qmgr_job *j = qmgr_pending; j != NULL; j = j->next)
		pending++;
	busy += pending;
	return busy >= qmgr_cfg->smtp_processes ? 0 :
	    qmgr_cfg->smtp_processes - busy;
}

size_t
qmgr_deliver_busy(void)
{
	return qmgr_nbusy + (qmgr_pending != NULL);
}

static int64_t
qmgr_request_deadline_ms(void)
{
	/* Generous: smtp enforces its own per-command deadlines. */
	return (qmgr_cfg->smtp_connect_timeout + 6 *
	    qmgr_cfg->smtp_command_timeout + 60) * 1000;
}

/* An idle connection, or a new one; NULL when smtp is unreachable. */
static struct qmgr_conn *
qmgr_conn_get(void)
{
	struct qmgr_conn *c;
	struct vbuf *why;
	int fd;

	for (c = qmgr_conns; c != NULL; c = c->next)
		if (c->job == NULL)
			return c;
	why = vbuf_create(0);
	fd = mail_connect(qmgr_cfg->queue_directory, MAIL_SOCK_SMTP, why);
	if (fd == -1) {
		log_warn("%s", why->data);
		vbuf_free(why);
		return NULL;
	}
	vbuf_free(why);
	c = xcalloc(1, sizeof(*c));
	c->ac = attrconn_create(fd, ATTR_COUNT_MAX * 1024, qmgr_conn_record,
	    qmgr_conn_error, c);
	c->next = qmgr_conns;
	qmgr_conns = c;
	qmgr_nconns++;
	return c;
}

static void
qmgr_conn_close(struct qmgr_conn *c)
{
	struct qmgr_conn **pp;

	for (pp = &qmgr_conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	attrconn_free(c->ac);
	if (c->job != NULL)
		qmgr_nbusy--;
	free(c);
	qmgr_nconns--;
}

void
qmgr_deliver_start(struct qmgr_job *job)
{
	struct qmgr_conn *c;

	if (qmgr_nbusy >= qmgr_cfg->smtp_processes ||
	    (c = qmgr_conn_get()) == NULL) {
		job->next = NULL;
		*qmgr_pending_tail = job;
		qmgr_pending_tail = &job->next;
		return;
	}
	qmgr_dispatch(c, job);
}

static void
qmgr_dispatch(struct qmgr_conn *c, struct qmgr_job *job)
{
	struct timeval tv;
	int64_t in_qmgr_ms;

	gettimeofday(&tv, NULL);
	in_qmgr_ms = ((int64_t)tv.tv_sec - job->arrival) * 1000 +
	    ((int64_t)tv.tv_usec - job->arrival_us) / 1000;
	if (in_qmgr_ms < 0)
		in_qmgr_ms = 0;
	if (qmgr_req == NULL)
		qmgr_req = vbuf_create(0);
	vbuf_reset(qmgr_req);
	attr_put_str(qmgr_req, MAIL_ATTR_REQUEST, MAIL_REQ_DELIVER);
	attr_put_str(qmgr_req, MAIL_ATTR_QUEUE_ID, job->qid);
	attr_put_str(qmgr_req, MAIL_ATTR_DOMAIN, job->domain);
	attr_put_str(qmgr_req, MAIL_ATTR_SENDER, job->sender);
	attr_put_int(qmgr_req, MAIL_ATTR_ARRIVAL, job->arrival);
	attr_put_int(qmgr_req, MAIL_ATTR_ARRIVAL_US, job->arrival_us);
	attr_put_int(qmgr_req, MAIL_ATTR_QMGR_TIME, in_qmgr_ms);
	for (size_t i = 0; i < job->nrcpts; i++) {
		attr_put_num(qmgr_req, MAIL_ATTR_RCPT_INDEX,
		    job->rcpts[i].index);
		attr_put_str(qmgr_req, MAIL_ATTR_RCPT, job->rcpts[i].address);
	}
	attr_end(qmgr_req);
	c->job = job;
	qmgr_nbusy++;
	job->dispatched = ev_now_ms();
	attrconn_deadline(c->ac, qmgr_request_deadline_ms());
	/* Requests are small; a full socket buffer is finished by events. */
	if (attrconn_send(c->ac, qmgr_req) == -1)
		qmgr_conn_fail(c, "lost connection with the delivery agent");
}

/* The delivery agent failed us: every recipient of the job is deferred. */
static void
qmgr_conn_fail(struct qmgr_conn *c, const char *why)
{
	struct qmgr_job *job = c->job;

	/*
	 * A kept connection can be closed by its smtp process (a use limit,
	 * a reload) just as a job is sent on it. With nothing read back, the
	 * job goes again, once, on a new connection instead of waiting out a
	 * backoff.
	 */
	if (job != NULL && c->served > 0 && attrconn_pending(c->ac) == 0 &&
	    !job->resent) {
		log_info("%s: delivery agent closed a kept connection; sending "
		    "the request again", job->qid);
		job->resent = 1;
		c->job = NULL;
		qmgr_nbusy--;
		job->next = qmgr_pending;
		qmgr_pending = job;
		if (qmgr_pending_tail == &qmgr_pending)
			qmgr_pending_tail = &job->next;
		qmgr_conn_close(c);
		return;
	}
	if (job != NULL) {
		log_warn("%s: %s", job->qid, why);
		for (size_t i = 0; i < job->nrcpts; i++)
			qmgr_results_add(job, &job->rcpts[i], QSTORE_DEFERRED,
			    "4.3.0", why, "none");
		qmgr_job_finish(job);
	}
	qmgr_conn_close(c);
}

static void
qmgr_conn_error(struct attrconn *ac, enum attrconn_err err, const char *why,
    void *arg)
{
	struct qmgr_conn *c = arg;

	(void)ac;
	(void)why;
	if (c->job == NULL) {
		qmgr_conn_close(c);
		return;
	}
	switch (err) {
	case ATTRCONN_PROTO:
		qmgr_conn_fail(c, "protocol error from the delivery agent");
		break;
	case ATTRCONN_TOOBIG:
		qmgr_conn_fail(c, "oversized reply from the delivery agent");
		break;
	case ATTRCONN_TIMEOUT:
		qmgr_conn_fail(c, "delivery agent timed out");
		break;
	default:
		qmgr_conn_fail(c, "lost connection with the delivery agent");
		break;
	}
}

static void
qmgr_conn_record(struct attrconn *ac, const struct attr_list *l, void *arg)
{
	struct qmgr_conn *c = arg;

	(void)ac;
	if (c->job == NULL)
		qmgr_conn_close(c);	/* nothing was asked */
	else
		qmgr_conn_reply(c, l);
}

/* One recipient's group of a reply (attr_scan's callback). */
static int
qmgr_reply_rcpt(void *arg, struct vbuf *why)
{
	struct qmgr_reply *r = arg;
	struct qmgr_job *job = r->job;
	struct qmgr_rcpt *cur = NULL;
	int st;

	(void)why;
	for (size_t k = 0; k < job->nrcpts; k++)
		if (job->rcpts[k].index == r->index && !job->rcpts[k].done)
			cur = &job->rcpts[k];
	if (cur == NULL) {
		log_warn("%s: result for a recipient not in the request "
		    "ignored", job->qid);
		return 0;
	}
	if (r->status == NULL)
		return 0;	/* deferred below, as left out */
	st = strcmp(r->status, MAIL_STATUS_SENT) == 0 ? QSTORE_DELIVERED :
	    strcmp(r->status, MAIL_STATUS_BOUNCED) == 0 ? QSTORE_FAILED :
	    QSTORE_DEFERRED;
	qmgr_results_add(job, cur, st, r->dsn != NULL ? r->dsn : "4.0.0",
	    r->text != NULL ? r->text : "", r->relay);
	return 0;
}

/*
 * Applies one reply. Only recipients of the job are accepted, each once;
 * any the reply leaves out are deferred.
 */
static void
qmgr_conn_reply(struct qmgr_conn *c, const struct attr_list *l)
{
	struct qmgr_job *job = c->job;
	struct qmgr_reply r = { job, "none", 0, NULL, NULL, NULL };
	const char *reason = NULL, *dkim = NULL;
	uint64_t status = MAIL_STAT_FAIL;
	struct vbuf why;
	size_t k;
	const struct attr_spec head[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_STR(MAIL_ATTR_RELAY, 0, 0, QMGR_RELAY_MAX, &r.relay),
		ATTR_STR(MAIL_ATTR_DKIM, 0, 0, QMGR_DKIM_MAX, &dkim),
		ATTR_TABLE_END
	};
	const struct attr_spec rcpt[] = {
		ATTR_UINT(MAIL_ATTR_RCPT_INDEX, 0, 0, UINT32_MAX, &r.index),
		ATTR_STR(MAIL_ATTR_RCPT_STATUS, 0, 0, QMGR_STATUS_MAX,
		    &r.status),
		ATTR_STR(MAIL_ATTR_RCPT_DSN, 0, 0, QSTORE_DSN_MAX, &r.dsn),
		ATTR_STR(MAIL_ATTR_RCPT_REPLY, 0, 0, ATTR_VALUE_MAX, &r.text),
		ATTR_TABLE_END
	};
	const struct attr_spec body[] = {
		ATTR_GROUP(MAIL_ATTR_RCPT_INDEX, 0, rcpt, qmgr_reply_rcpt, &r),
		ATTR_TABLE_END
	};

	vbuf_init(&why, 0);
	/* The head first: a refused request has no results to apply. */
	if (attr_scan(l, head, &why) == -1) {
		log_warn("%s: bad reply from the delivery agent: %s",
		    job->qid, log_safe(why.data));
		qmgr_conn_fail(c, "protocol error from the delivery agent");
		goto out;
	}
	if (status != MAIL_STAT_OK) {
		log_warn("%s: delivery agent refused the request: %s",
		    job->qid, reason ? log_safe(reason) : "no reason");
		qmgr_conn_fail(c, "delivery agent error");
		goto out;
	}
	if (dkim != NULL) {
		free(job->dkim);
		job->dkim = xstrndup(dkim, QMGR_DKIM_KEEP);
	}
	if (attr_scan(l, body, &why) == -1) {
		/* Results already taken stand; the rest are deferred. */
		log_warn("%s: bad reply from the delivery agent: %s",
		    job->qid, log_safe(why.data));
	}
	for (k = 0; k < job->nrcpts; k++)
		if (!job->rcpts[k].done)
			qmgr_results_add(job, &job->rcpts[k], QSTORE_DEFERRED,
			    "4.3.0", "no result from the delivery agent",
			    r.relay);
	qmgr_job_finish(job);
	c->job = NULL;
	c->served++;
	qmgr_nbusy--;
	attrconn_deadline(c->ac, -1);
	/* The connection is free: the next pending job may go. */
	if (qmgr_pending != NULL) {
		struct qmgr_job *next = qmgr_pending;

		qmgr_pending = next->next;
		if (qmgr_pending == NULL)
			qmgr_pending_tail = &qmgr_pending;
		qmgr_dispatch(c, next);
	}
out:
	vbuf_release(&why);
}

/*
 * The job's results are queued. The message stays in the in-flight set
 * until they are applied, so no scan can pick its recipients again in
 * between; its memory goes then too.
 */
static void
qmgr_job_finish(struct qmgr_job *job)
{
	(void)job;
	if (qmgr_results_due_ms < 0)
		qmgr_results_due_ms = ev_now_ms() + QMGR_RESULTS_DELAY_MS;
}

void
qmgr_deliver_check_deadlines(void)
{
	struct qmgr_conn *c;

	/*
	 * Reply deadlines are attrconn timers. Pending jobs wait for a
	 * connection: try to open one.
	 */
	while (qmgr_pending != NULL && qmgr_nbusy < qmgr_cfg->smtp_processes) {
		struct qmgr_job *job = qmgr_pending;

		if ((c = qmgr_conn_get()) == NULL)
			break;
		qmgr_pending = job->next;
		if (qmgr_pending == NULL)
			qmgr_pending_tail = &qmgr_pending;
		qmgr_dispatch(c, job);
	}
}

void
qmgr_results_add(struct qmgr_job *job, struct qmgr_rcpt *r, int status,
    const char *dsn, const char *reply, const char *relay)
{
	struct qmgr_result *res;

	if (qmgr_nresults == qmgr_results_alloc) {
		qmgr_results_alloc = qmgr_results_alloc ? qmgr_results_alloc *
		    2 : 64;
		qmgr_results = xreallocarray(qmgr_results, qmgr_results_alloc,
		    sizeof(*qmgr_results));
	}
	res = &qmgr_results[qmgr_nresults++];
	res->job = job;
	res->rcpt = r;
	res->status = status;
	snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
	res->reply = xstrdup(reply);
	res->relay = xstrdup(relay);
	res->applied = 0;
	r->done = 1;
	if (qmgr_nresults - qmgr_nheld >= QMGR_TXN_UPDATES)
		qmgr_results_due_ms = ev_now_ms();
}

static int64_t
qmgr_backoff(uint32_t attempts)
{
	int64_t b = qmgr_cfg->queue_min_backoff;

	/* min * 2^(attempts-1), capped at max. */
	for (uint32_t i = 1; i < attempts && b < qmgr_cfg->queue_max_backoff;
	    i++)
		b *= 2;
	return b > qmgr_cfg->queue_max_backoff ? qmgr_cfg->queue_max_backoff :
	    b;
}

static void
qmgr_account(const char *event, const struct qmgr_result *res,
    const struct qstore_rcpt *r, int64_t now)
{
	struct json j;

	if (!acct_enabled())
		return;
	acct_begin(&j, event, res->job->qid);
	json_kv_str(&j, "sender", res->job->sender);
	json_kv_str(&j, "recipient", r->address);
	json_kv_str(&j, "relay", res->relay);
	json_kv_str(&j, "dsn", r->dsn);
	json_kv_str(&j, "reply", r->reply);
	json_kv_int(&j, "attempts", r->attempts);
	json_kv_int(&j, "delay", now - res->job->arrival);
	if (strcmp(event, "deferred") == 0)
		json_kv_int(&j, "next_attempt", r->next_attempt);
	/* "d=DOMAIN s=SELECTOR", or "unsigned" (no key for the domain). */
	if (res->job->dkim != NULL)
		json_kv_str(&j, "dkim", res->job->dkim);
	acct_emit(&j);
}

/* Why the last per-record queue operation failed, for a log line. */
static const char *
qmgr_qstore_error(void)
{
	return qstore_errno() == QSTORE_ERR_FULL ? "queue database full "
	    "(queue.map_size)" : "queue database error";
}

/*
 * Applies the results [from, to) not yet applied in one write transaction
 * and marks them applied. Returns -1, with the reason in why, if it did
 * not commit: those recipients stay as they were.
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
	struct qstore_rcpt r;
	char (*removed)[QID_SIZE] = NULL;
	size_t nremoved = 0, i;
	int64_t old;
	int rc = -1, put;

	size_t ncompact = 0;

	vbuf_reset(why);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		return -1;
	if (qstore_txn_used_pct(txn, QMGR_REPLY_KEEP_PCT) >=
	    QMGR_REPLY_KEEP_PCT)
		compact = 1;
	/* Events are written only if the changes they describe commit. */
	acct_hold();
	for (i = from; i < to; i++) {
		struct qmgr_result *res = &qmgr_results[i];
		const char *event;

		if (res->applied)
			continue;
		/* No record: delivered and removed already. */
		if (qstore_rcpt_get(txn, res->job->qid, res->rcpt->index,
		    &r) == -1)
			continue;
		if (r.state == QSTORE_DELIVERED || r.state == QSTORE_FAILED)
			continue;
		if (res->status == QSTORE_DEFERRED && now - res->job->arrival >=
		    qmgr_cfg->queue_max_lifetime) {
			/* Too old to keep trying: a final failure. */
			res->status = QSTORE_FAILED;
			log_info("%s: to=<%s>, status=expired (%s)",
			    res->job->qid, log_safe(r.address),
			    log_safe(res->reply));
		}
		/* A delivered recipient's record is its accounting event. */
		put = res->status == QSTORE_DELIVERED ?
		    qstore_rcpt_remove(txn, &r) : 0;
		old = r.next_attempt;
		r.attempts++;
		snprintf(r.dsn, sizeof(r.dsn), "%s", res->dsn);
		snprintf(r.reply, sizeof(r.reply), "%s", compact ? "" :
		    res->reply);
		r.state = res->status;
		if (r.state == QSTORE_DEFERRED)
			r.next_attempt = now + qmgr_backoff(r.attempts);
		if (put == 0 && r.state != QSTORE_DELIVERED) {
			put = qstore_rcpt_put(txn, &r, old);
			ncompact += compact;
		}
		if (put == -1) {
			/* LMDB has marked the transaction bad: give it up. */
			vbuf_setf(why, "%s: recipient update: %s",
			    res->job->qid, qmgr_qstore_error());
			goto fail;
		}
		event = r.state == QSTORE_DELIVERED ? "delivered" :
		    r.state == QSTORE_FAILED ? "bounced" : "deferred";
		snprintf(r.reply, sizeof(r.reply), "%s", res->reply);
		qmgr_account(event, res, &r, now);
		if (r.state == QSTORE_DEFERRED)
			continue;
		if (qstore_msg_get(txn, res->job->qid, &m) == -1)
			continue;
		if (m.left > 0)
			m.left--;
		if (m.left == 0) {
			if (qstore_msg_delete(txn, res->job->qid) == -1) {
				vbuf_setf(why, "%s: delete: %s",
				    res->job->qid, qmgr_qstore_error());
				goto fail;
			}
			removed = xreallocarray(removed, nremoved + 1,
			    QID_SIZE);
			snprintf(removed[nremoved++], QID_SIZE, "%s",
			    res->job->qid);
		} else if (qstore_msg_put(txn, &m) == -1) {
			vbuf_setf(why, "%s: message update: %s",
			    res->job->qid, qmgr_qstore_error());
			goto fail;
		}
	}
	if (qstore_txn_commit(txn, why) == -1) {
		acct_release(0);
		goto out;
	}
	acct_release(1);
	for (i = from; i < to; i++)
		qmgr_results[i].applied = 1;
	qmgr_results_compacted += ncompact;
	/* The file goes only once its records are gone. */
	for (i = 0; i < nremoved; i++) {
		(void)qstore_file_retire(qmgr_queue, removed[i]);
		log_info("%s: removed", removed[i]);
	}
	rc = 0;
	goto out;
fail:
	qstore_txn_abort(txn);
	acct_release(0);
out:
	free(removed);
	return rc;
}

/*
 * Milliseconds until the gathered results are due to be applied: at once
 * when enough have gathered, else QMGR_RESULTS_DELAY_MS after the oldest.
 * -1 when there are none.
 */
int64_t
qmgr_results_due_in(void)
{
	int64_t left;

	if (qmgr_nresults == 0)
		return -1;
	left = qmgr_results_due_ms - ev_now_ms();
	return left < 0 ? 0 : left;
}

/*
 * Applies the gathered results, in transactions of at most
 * QMGR_TXN_UPDATES recipients. Gathering them for a few milliseconds
 * turns many small commits (each two fsyncs holding LMDB's single writer
 * lock, which smtpd needs too) into few.
 *
 * A chunk that does not commit (the map is full) goes one result at a
 * time without the remote reply; what still does not fit is held,
 * its message in flight so that nothing delivers it again, and tried
 * again QMGR_RESULTS_RETRY_MS later. Deleting delivered recipients frees
 * the space that the held ones wait for.
 */
void
qmgr_results_apply(void)
{
	struct vbuf *why = vbuf_create(0);
	int64_t now = time(NULL);
	size_t i, k, nheld = 0;

	if (qmgr_nresults == 0) {
		vbuf_free(why);
		return;
	}
	qmgr_results_compacted = 0;
	for (i = 0; i < qmgr_nresults; i += QMGR_TXN_UPDATES) {
		size_t end = i + QMGR_TXN_UPDATES < qmgr_nresults ?
		    i + QMGR_TXN_UPDATES : qmgr_nresults;

		if (qmgr_results_commit(i, end, now, 0, why) == 0)
			continue;
		if (qstore_errno() == QSTORE_ERR_FULL && qmgr_results_grow() ==
		    0 && qmgr_results_commit(i, end, now, 0, why) == 0)
			continue;
		for (k = i; k < end; k++)
			if (!qmgr_results[k].applied &&
			    qmgr_results_commit(k, k + 1, now, 1, why) == -1)
				nheld++;
	}
	qmgr_results_warn_compact();
	if (nheld > 0 && daemon_stopping()) {
		log_warn("%zu result(s) not recorded at stop: %s; those "
		    "recipients will be tried again", nheld, why->data);
		for (i = 0; i < qmgr_nresults; i++)
			qmgr_results[i].applied = 1;
		nheld = 0;
	} else if (nheld > 0)
		log_warn("%zu result(s) not recorded: %s; trying again in "
		    "%d ms", nheld, why->data, QMGR_RESULTS_RETRY_MS);
	vbuf_free(why);
	qmgr_results_drop_applied();
	qmgr_nheld = nheld;
	qmgr_results_due_ms = nheld > 0 ? ev_now_ms() + QMGR_RESULTS_RETRY_MS :
	    -1;
	qmgr_want_scan();
}

/*
 * The map is full even though smtpd stopped accepting at half of it:
 * results of accepted mail must still be written, so the map grows (up to
 * twice queue.map_size) rather than leaving them unrecorded.
 */
static int
qmgr_results_grow(void)
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

/*
 * Frees the applied results, and each job after its last result; the
 * held ones move to the front.
 */
static void
qmgr_results_drop_applied(void)
{
	size_t i, k, n = 0;

	for (i = 0; i < qmgr_nresults; i++) {
		struct qmgr_job *job = qmgr_results[i].job;

		if (!qmgr_results[i].applied)
			continue;
		free(qmgr_results[i].reply);
		free(qmgr_results[i].relay);
		for (k = 0; k < qmgr_nresults; k++)
			if (k != i && qmgr_results[k].job == job &&
			    (k > i || !qmgr_results[k].applied))
				break;
		if (k == qmgr_nresults) {
			qmgr_sched_release(job);
			qmgr_job_free(job);
		}
	}
	for (i = 0; i < qmgr_nresults; i++)
		if (!qmgr_results[i].applied)
			qmgr_results[n++] = qmgr_results[i];
	qmgr_nresults = n;
}
