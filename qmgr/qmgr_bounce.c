/*
 * qmgr_bounce.c - qmgr's side of the report protocol: report jobs to
 * bounce on private/bounce, one at a time, and its answers applied.
 *
 * A recipient owed a report (failed, delayed or relayed: see
 * qmgr_result.c) keeps its schedule entry; the scheduler turns the due
 * ones into report jobs (qmgr_sched.c). Here each job becomes one request
 * with what the records say, bounce builds the DSN and commits it to the
 * queue, and only after its answer does qmgr clear what was owed, in one
 * write transaction: a failed or relayed recipient is then settled (the
 * message goes when it was the last), a warned one goes back to its
 * retries. A crash anywhere before that commit leaves the report owed and
 * due, so it is asked for again: at least once, perhaps twice, never
 * lost. A request that bounce fails (status 1, a timeout, a lost
 * connection) puts only its own recipients' reports off, by
 * QMGR_BOUNCE_JOB_RETRY seconds, so that one bad report cannot hold up
 * the others; when bounce cannot be reached at all, every report waits
 * QMGR_BOUNCE_RETRY_MS. A report made but not recorded (the queue map
 * full) is held, its recipients in flight, and recorded later, never
 * asked for again. The protocol is in bounce(8).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "attrconn.h"
#include "event.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "qmgr.h"
#include "xalloc.h"

static struct attrconn *qmgr_bounce_conn;
static struct qmgr_job *qmgr_bounce_current;	/* at bounce */
static struct qmgr_job *qmgr_bounce_head, **qmgr_bounce_tail =
    &qmgr_bounce_head;
static size_t qmgr_bounce_nqueued;
static int64_t qmgr_bounce_paused_until = -1;	/* ms, monotonic */
static int qmgr_bounce_answered;		/* since qmgr_bounce_made */
/* Reports made but not yet recorded: tried again, never asked again. */
static struct qmgr_job *qmgr_bounce_held;
static int64_t qmgr_bounce_held_until = -1;	/* ms, monotonic */

static const char *qmgr_bounce_kind(enum qstore_report);
static int qmgr_bounce_request(struct qmgr_job *, struct vbuf *);
static void qmgr_bounce_record(struct attrconn *, const struct attr_list *,
    void *);
static void qmgr_bounce_error(struct attrconn *, enum attrconn_err,
    const char *, void *);
static void qmgr_bounce_unreachable(void);
static void qmgr_bounce_job_failed(const char *, int);
static void qmgr_bounce_put_off(const struct qmgr_job *);
static int qmgr_bounce_apply(struct qmgr_job *);
static void qmgr_bounce_retry_held(void);
static void qmgr_bounce_drop_queued(void);

static const char *
qmgr_bounce_kind(enum qstore_report report)
{
	switch (report) {
	case QSTORE_REPORT_DELAYED:
		return MAIL_REPORT_DELAYED;
	case QSTORE_REPORT_RELAYED:
		return MAIL_REPORT_RELAYED;
	default:
		return MAIL_REPORT_FAILED;
	}
}

void
qmgr_bounce_queue(struct qmgr_job *job)
{
	job->next = NULL;
	*qmgr_bounce_tail = job;
	qmgr_bounce_tail = &job->next;
	qmgr_bounce_nqueued++;
}

int
qmgr_bounce_ready(void)
{
	return qmgr_bounce_paused_until < 0 ||
	    ev_now_ms() >= qmgr_bounce_paused_until;
}

size_t
qmgr_bounce_busy(void)
{
	return qmgr_bounce_nqueued + (qmgr_bounce_current != NULL);
}

int
qmgr_bounce_made(void)
{
	int answered = qmgr_bounce_answered;

	qmgr_bounce_answered = 0;
	return answered;
}

int
qmgr_bounce_in_flight(void)
{
	return qmgr_bounce_current != NULL;
}

/*
 * The request for a report job, from the recipients' records (read now:
 * they are what the report must say). Returns the recipients it names;
 * 0 when none is still owed this report.
 */
static int
qmgr_bounce_request(struct qmgr_job *job, struct vbuf *req)
{
	struct qstore_txn *txn;
	struct qstore_rcpt r;
	int n = 0;

	if ((txn = qstore_txn_begin(qmgr_queue, 0, NULL)) == NULL)
		return 0;
	vbuf_reset(req);
	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_BOUNCE);
	attr_put_str(req, MAIL_ATTR_QUEUE_ID, job->qid);
	attr_put_str(req, MAIL_ATTR_REPORT, qmgr_bounce_kind(job->report));
	for (size_t i = 0; i < job->nrcpts; i++) {
		if (qstore_rcpt_get(txn, job->qid, job->rcpts[i].index,
		    &r) == -1 || r.report != job->report)
			continue;
		attr_put_num(req, MAIL_ATTR_RCPT_INDEX, r.index);
		attr_put_str(req, MAIL_ATTR_RCPT, r.address);
		attr_put_str(req, MAIL_ATTR_RCPT_DSN, r.dsn);
		attr_put_str(req, MAIL_ATTR_RCPT_REPLY, r.reply);
		if (r.class[0] != '\0')
			attr_put_str(req, MAIL_ATTR_RCPT_CLASS, r.class);
		if (r.relay[0] != '\0')
			attr_put_str(req, MAIL_ATTR_RELAY, r.relay);
		attr_put_int(req, MAIL_ATTR_RCPT_TIME, r.last_attempt != 0 ?
		    r.last_attempt : (int64_t)time(NULL));
		if (job->report == QSTORE_REPORT_DELAYED)
			attr_put_int(req, MAIL_ATTR_RCPT_UNTIL, job->arrival +
			    qmgr_cfg->queue_max_lifetime);
		n++;
	}
	attr_end(req);
	qstore_txn_abort(txn);
	return n;
}

void
qmgr_bounce_run(void)
{
	static struct vbuf *req;
	struct qmgr_job *job;
	struct vbuf *why;
	int fd;

	qmgr_bounce_retry_held();
	while (qmgr_bounce_current == NULL && qmgr_bounce_head != NULL) {
		job = qmgr_bounce_head;
		if ((qmgr_bounce_head = job->next) == NULL)
			qmgr_bounce_tail = &qmgr_bounce_head;
		job->next = NULL;
		qmgr_bounce_nqueued--;
		if (req == NULL)
			req = vbuf_create(0);
		if (qmgr_bounce_request(job, req) == 0) {
			qmgr_job_free(job);	/* settled meanwhile */
			continue;
		}
		if (qmgr_bounce_conn == NULL) {
			why = vbuf_create(0);
			fd = mail_connect(qmgr_cfg->queue_directory,
			    MAIL_SOCK_BOUNCE, why);
			if (fd == -1) {
				log_warn("%s: reports wait: %s", job->qid,
				    why->data);
				vbuf_free(why);
				qmgr_job_free(job);
				qmgr_bounce_unreachable();
				return;
			}
			vbuf_free(why);
			qmgr_bounce_conn = attrconn_create(fd, ATTR_COUNT_MAX *
			    1024, qmgr_bounce_record, qmgr_bounce_error, NULL);
		}
		qmgr_bounce_current = job;
		attrconn_deadline(qmgr_bounce_conn, QMGR_BOUNCE_TIMEOUT_MS);
		if (attrconn_send(qmgr_bounce_conn, req) == -1)
			qmgr_bounce_job_failed("lost connection with bounce", 1);
	}
}

/* Queued jobs are dropped: their records stay owed and due. */
static void
qmgr_bounce_drop_queued(void)
{
	struct qmgr_job *job, *next;

	for (job = qmgr_bounce_head; job != NULL; job = next) {
		next = job->next;
		qmgr_job_free(job);
	}
	qmgr_bounce_head = NULL;
	qmgr_bounce_tail = &qmgr_bounce_head;
	qmgr_bounce_nqueued = 0;
}

/*
 * bounce cannot be reached: the queued jobs are let go (their reports
 * stay owed and due) and every report waits QMGR_BOUNCE_RETRY_MS instead
 * of being asked for at every pass.
 */
static void
qmgr_bounce_unreachable(void)
{
	qmgr_bounce_drop_queued();
	qmgr_bounce_paused_until = ev_now_ms() + QMGR_BOUNCE_RETRY_MS;
}

/*
 * The request at bounce failed (why, for the log; NULL when said
 * already): its recipients' reports are put off, the other jobs go on.
 * close: the connection is no longer usable.
 */
static void
qmgr_bounce_job_failed(const char *why, int close)
{
	struct qmgr_job *job = qmgr_bounce_current;

	if (why != NULL && job != NULL)
		log_warn("%s: report put off by %d s: %s", job->qid,
		    QMGR_BOUNCE_JOB_RETRY, why);
	if (close && qmgr_bounce_conn != NULL) {
		attrconn_free(qmgr_bounce_conn);
		qmgr_bounce_conn = NULL;
	} else if (qmgr_bounce_conn != NULL)
		attrconn_deadline(qmgr_bounce_conn, -1);
	qmgr_bounce_current = NULL;
	if (job != NULL) {
		qmgr_bounce_put_off(job);
		qmgr_job_free(job);
	}
}

/*
 * The job's owed reports fall due QMGR_BOUNCE_JOB_RETRY seconds from
 * now. If this does not commit either, they are due at once again and
 * the next request is the next try.
 */
static void
qmgr_bounce_put_off(const struct qmgr_job *job)
{
	struct qstore_txn *txn;
	struct qstore_rcpt r;
	int64_t old, when = (int64_t)time(NULL) + QMGR_BOUNCE_JOB_RETRY;

	if ((txn = qstore_txn_begin(qmgr_queue, 1, NULL)) == NULL)
		return;
	for (size_t i = 0; i < job->nrcpts; i++) {
		if (qstore_rcpt_get(txn, job->qid, job->rcpts[i].index,
		    &r) == -1 || r.report != job->report)
			continue;
		old = r.next_attempt;
		r.next_attempt = when;
		if (qstore_rcpt_put(txn, &r, old) == -1) {
			qstore_txn_abort(txn);
			return;
		}
	}
	(void)qstore_txn_commit(txn, NULL);
}

static void
qmgr_bounce_error(struct attrconn *ac, enum attrconn_err err,
    const char *why, void *arg)
{
	(void)ac;
	(void)arg;
	if (qmgr_bounce_current == NULL) {
		/* Idle: bounce closed a kept connection (a reload). */
		attrconn_free(qmgr_bounce_conn);
		qmgr_bounce_conn = NULL;
		return;
	}
	qmgr_bounce_job_failed(err == ATTRCONN_TIMEOUT ? "bounce timed out" :
	    why, 1);
}

static void
qmgr_bounce_record(struct attrconn *ac, const struct attr_list *l, void *arg)
{
	struct qmgr_job *job = qmgr_bounce_current;
	const char *reason = NULL, *dsn_id = NULL;
	uint64_t status = MAIL_STAT_FAIL;
	struct vbuf why;
	const struct attr_spec spec[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_STR(MAIL_ATTR_DSN_ID, 0, QID_LEN, QID_LEN, &dsn_id),
		ATTR_TABLE_END
	};

	(void)ac;
	(void)arg;
	if (job == NULL) {
		/* Nothing was asked: the connection is not to be trusted. */
		attrconn_free(qmgr_bounce_conn);
		qmgr_bounce_conn = NULL;
		return;
	}
	vbuf_init(&why, 0);
	if (attr_scan(l, spec, &why) == -1) {
		log_warn("%s: bad reply from bounce: %s", job->qid,
		    log_safe(why.data));
		qmgr_bounce_job_failed("protocol error from bounce", 1);
	} else if (status != MAIL_STAT_OK) {
		log_warn("%s: bounce could not make the report: %s", job->qid,
		    reason != NULL ? log_safe(reason) : "no reason");
		qmgr_bounce_job_failed(NULL, 0);
	} else {
		attrconn_deadline(qmgr_bounce_conn, -1);
		qmgr_bounce_current = NULL;
		if (dsn_id == NULL)
			log_info("%s: no %s report due", job->qid,
			    qmgr_bounce_kind(job->report));
		snprintf(job->report_id, sizeof(job->report_id), "%s",
		    dsn_id != NULL ? dsn_id : "");
		if (qmgr_bounce_apply(job) == 0)
			qmgr_job_free(job);
		else {
			/* Held in flight: never asked for again. */
			job->next = qmgr_bounce_held;
			qmgr_bounce_held = job;
			qmgr_bounce_held_until = ev_now_ms() +
			    QMGR_RESULTS_RETRY_MS;
		}
		qmgr_bounce_answered = 1;
	}
	vbuf_release(&why);
}

/* Reports made but not recorded: recorded now, if the queue lets us. */
static void
qmgr_bounce_retry_held(void)
{
	struct qmgr_job *job, **pp;

	if (qmgr_bounce_held == NULL || ev_now_ms() < qmgr_bounce_held_until)
		return;
	for (pp = &qmgr_bounce_held; (job = *pp) != NULL;) {
		if (qmgr_bounce_apply(job) == 0) {
			*pp = job->next;
			qmgr_job_free(job);
		} else
			pp = &job->next;
	}
	qmgr_bounce_held_until = ev_now_ms() + QMGR_RESULTS_RETRY_MS;
}

/*
 * bounce has committed the report job->report_id (or found none due):
 * what the job's recipients owed is cleared. Returns 0, or -1 when this
 * did not commit: the caller holds the job and tries again.
 */
static int
qmgr_bounce_apply(struct qmgr_job *job)
{
	char (*removed)[QID_SIZE] = NULL;
	struct qstore_msginfo m;
	struct qstore_txn *txn;
	struct qstore_rcpt r, stored;
	struct vbuf *why = vbuf_create(0);
	int64_t now = time(NULL), old, retry;
	size_t nremoved = 0, i;
	int have_m;

	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		goto fail;
	have_m = qstore_msg_get(txn, job->qid, &m) == 0;
	for (i = 0; i < job->nrcpts; i++) {
		if (qstore_rcpt_get(txn, job->qid, job->rcpts[i].index,
		    &r) == -1 || r.report != job->report)
			continue;
		stored = r;
		old = r.next_attempt;
		r.report = QSTORE_REPORT_NONE;
		if (r.state == QSTORE_DEFERRED) {
			/* Warned: back to the retry its deferral set. */
			r.warned = 1;
			retry = r.last_attempt + qmgr_result_backoff(r.attempts);
			r.next_attempt = retry > now ? retry : now;
			/* Put on hold while bounce worked: it waits. */
			if (have_m && m.held != 0)
				r.next_attempt = QSTORE_HELD_NEXT;
		}
		/* Removed as stored: its schedule entry goes with it. */
		if ((r.state == QSTORE_DELIVERED ? qstore_rcpt_remove(txn,
		    &stored) :
		    qstore_rcpt_put(txn, &r, old)) == -1) {
			vbuf_setf(why, "recipient update failed");
			goto abort;
		}
		if (r.state == QSTORE_DEFERRED || !have_m)
			continue;
		if (qmgr_result_settle(txn, &m, &removed, &nremoved, why) == -1)
			goto abort;
	}
	if (qstore_txn_commit(txn, why) == -1)
		goto fail;
	qmgr_result_retire(removed, nremoved);
	free(removed);
	vbuf_free(why);
	return 0;
abort:
	qstore_txn_abort(txn);
fail:
	log_warn("%s: report %s made but not recorded: %s; trying again",
	    job->qid, job->report_id, why->data);
	if (qstore_errno() == QSTORE_ERR_FULL)
		(void)qmgr_result_grow();
	free(removed);
	vbuf_free(why);
	return -1;
}
