/*
 * qmgr_deliver.c - qmgr's side of the delivery protocol: connections to
 * smtp processes on private/smtp, requests out, results in.
 *
 * Each connection (a lib/attrconn) carries one job at a time and is kept
 * for the next one. A reply's results are recorded in the job, which then
 * goes to the done list for qmgr_result.c; a connection that fails defers
 * its job's recipients. The protocol is documented in smtp(8).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "attr.h"
#include "attrconn.h"
#include "event.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "qmgr.h"
#include "xalloc.h"

struct qmgr_conn {
	struct qmgr_conn	*next;
	struct attrconn		*ac;
	struct qmgr_job		*job;		/* NULL: idle */
	unsigned		 served;	/* replies received */
	/*
	 * The next hop of its last job, and when it came back: its smtp
	 * process keeps that session open for QMGR_SMTP_CACHE_MS, which
	 * counts against the destination's connections (qmgr_deliver_held).
	 */
	char			 last_key[QMGR_DEST_KEY_MAX + 1];
	char			 last_nexthop[NEXTHOP_KEY_MAX + 1]; /* its hop */
	char			 last_source[QMGR_SRC_ADDR_MAX];	/* and the */
						/* address it left from */
	int64_t			 idle_since;
	/*
	 * Jobs sent on that session so far, as far as qmgr knows, and the
	 * destination's max_messages_per_connection (0: no limit): once
	 * uses reaches it, smtp replaces the session with a new one.
	 */
	unsigned		 uses;
	unsigned		 max_uses;
};

/* One reply's recipient group, as attr_scan fills it. */
struct qmgr_reply {
	struct qmgr_job		*job;
	uint64_t		 index;
	const char		*status;
	const char		*dsn;
	const char		*text;
	const char		*class;
	uint64_t		 dsn_passed;
};

static struct qmgr_conn *qmgr_conns;
static size_t qmgr_nbusy;
static struct vbuf *qmgr_req;			/* the request being sent */
static struct vbuf *qmgr_avoid;			/* its source addresses to */
						/* avoid (qmgr_source.c) */

static struct qmgr_conn *qmgr_conn_get(const char *, const char *);
static int qmgr_conn_holds(const struct qmgr_conn *, int64_t);
static int qmgr_conn_holds_to(const struct qmgr_conn *, const char *,
    const char *, int64_t);
static int qmgr_conn_reusable(const struct qmgr_conn *, const char *,
    const char *, int64_t);
static void qmgr_conn_close(struct qmgr_conn *);
static void qmgr_conn_record(struct attrconn *, const struct attr_list *,
    void *);
static void qmgr_conn_error(struct attrconn *, enum attrconn_err,
    const char *, void *);
static void qmgr_conn_fail(struct qmgr_conn *, const char *, int);
static int qmgr_job_untouched(const struct qmgr_job *);
static int qmgr_job_sent_any(const struct qmgr_job *);
static void qmgr_conn_reply(struct qmgr_conn *, const struct attr_list *);
static void qmgr_conn_idle(struct qmgr_conn *);
static int qmgr_reply_rcpt(void *, struct vbuf *);
static void qmgr_dispatch(struct qmgr_conn *, struct qmgr_job *);
static void qmgr_deliver_finish(struct qmgr_job *, const char *, const char *);
static int64_t qmgr_request_deadline_ms(void);
static int qmgr_class_ok(const char *);
static int qmgr_deliver_bulk_ok(void);

/*
 * Whether a bulk job may take an smtp process: the default shaping
 * entry's transactional_reserve of smtp.processes stays free for the
 * transactional lane.
 */
static int
qmgr_deliver_bulk_ok(void)
{
	return qmgr_nbusy + qmgr_dest_processes_reserve() <
	    qmgr_cfg->smtp_processes;
}

size_t
qmgr_deliver_free_slots(void)
{
	size_t busy;

	if (qmgr_job_npending() >= QMGR_PENDING_MAX)
		return 0;
	busy = qmgr_nbusy + qmgr_dest_ready(qmgr_deliver_held,
	    qmgr_deliver_bulk_ok());

	return busy >= qmgr_cfg->smtp_processes ? 0 :
	    qmgr_cfg->smtp_processes - busy;
}

size_t
qmgr_deliver_busy(void)
{
	/*
	 * Pending jobs are memory only: stopping does not wait for those a
	 * destination's rate holds back (they are found again at start-up).
	 */
	return qmgr_nbusy + (qmgr_job_npending() > 0 && !daemon_stopping());
}

/* Whether idle c's smtp process still holds a session it could reuse. */
static int
qmgr_conn_holds(const struct qmgr_conn *c, int64_t now)
{
	return c->job == NULL && c->last_key[0] != '\0' &&
	    now - c->idle_since < QMGR_SMTP_CACHE_MS;
}

/*
 * Whether idle c's smtp process still holds a session to key from source
 * (NULL: from any address).
 */
static int
qmgr_conn_holds_to(const struct qmgr_conn *c, const char *key,
    const char *source, int64_t now)
{
	return qmgr_conn_holds(c, now) && strcmp(c->last_key, key) == 0 &&
	    (source == NULL || strcmp(c->last_source, source) == 0);
}

/*
 * Whether a job to key from source sent on c would reuse c's session as
 * it is.
 */
static int
qmgr_conn_reusable(const struct qmgr_conn *c, const char *key,
    const char *source, int64_t now)
{
	return qmgr_conn_holds_to(c, key, source, now) &&
	    (c->max_uses == 0 || c->uses < c->max_uses);
}

unsigned
qmgr_deliver_held_by(const struct shaping_provider *p, const char *source)
{
	const struct qmgr_conn *c;
	int64_t now = ev_now_ms();
	unsigned n = 0;

	for (c = qmgr_conns; c != NULL; c = c->next)
		if (qmgr_conn_holds(c, now) &&
		    (source == NULL || strcmp(c->last_source, source) == 0) &&
		    qmgr_provider_of(c->last_nexthop) == p)
			n++;
	return n;
}

unsigned
qmgr_deliver_held(const char *key, const char *source, unsigned *reusable)
{
	const struct qmgr_conn *c;
	int64_t now = ev_now_ms();
	unsigned n = 0, r = 0;

	for (c = qmgr_conns; c != NULL; c = c->next)
		if (qmgr_conn_holds_to(c, key, source, now)) {
			n++;
			r += qmgr_conn_reusable(c, key, source, now);
		}
	if (reusable != NULL)
		*reusable = r;
	return n;
}

static int64_t
qmgr_request_deadline_ms(void)
{
	/* Generous: smtp enforces its own per-command deadlines. */
	return (qmgr_cfg->smtp_connect_timeout + 6 *
	    qmgr_cfg->smtp_command_timeout + 60) * 1000;
}

/*
 * An idle connection for a job to key from source, or a new one; NULL
 * when smtp is unreachable. One whose smtp process holds a session to
 * key from source that it may reuse first (no new connection to the
 * destination), then one holding such a session that reached its use
 * limit (smtp replaces it: the address's count of connections stays),
 * then one that holds none, then any (its process gives up the session
 * it holds).
 */
static struct qmgr_conn *
qmgr_conn_get(const char *key, const char *source)
{
	struct qmgr_conn *c, *free_c = NULL, *used_up = NULL, *any = NULL;
	struct vbuf *why;
	int64_t now = ev_now_ms();
	int fd;

	for (c = qmgr_conns; c != NULL; c = c->next) {
		if (c->job != NULL)
			continue;
		if (!qmgr_conn_holds(c, now)) {
			if (free_c == NULL)
				free_c = c;
		} else if (qmgr_conn_holds_to(c, key, source, now)) {
			if (qmgr_conn_reusable(c, key, source, now))
				return c;
			if (used_up == NULL)
				used_up = c;
		} else if (any == NULL)
			any = c;
	}
	if (used_up != NULL)
		return used_up;
	if (free_c != NULL)
		return free_c;
	if (any != NULL)
		return any;
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
}

void
qmgr_deliver_run(void)
{
	struct qmgr_job *job;
	struct qmgr_conn *c;

	while (qmgr_job_npending() > 0 &&
	    qmgr_nbusy < qmgr_cfg->smtp_processes) {
		if ((job = qmgr_dest_take(qmgr_deliver_held,
		    qmgr_deliver_bulk_ok())) == NULL)
			break;		/* every destination at its limit */
		if ((c = qmgr_conn_get(job->dest_key,
		    job->dest->srcs[job->src].addr)) == NULL) {
			qmgr_dest_untake(job);
			break;		/* tried again at the next pass */
		}
		qmgr_dispatch(c, job);
	}
}

static void
qmgr_dispatch(struct qmgr_conn *c, struct qmgr_job *job)
{
	struct timeval tv;
	const char *source;
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
	attr_put_str(qmgr_req, MAIL_ATTR_NEXTHOP, job->nexthop);
	attr_put_str(qmgr_req, MAIL_ATTR_SENDER, job->sender);
	attr_put_int(qmgr_req, MAIL_ATTR_ARRIVAL, job->arrival);
	attr_put_int(qmgr_req, MAIL_ATTR_ARRIVAL_US, job->arrival_us);
	attr_put_int(qmgr_req, MAIL_ATTR_QMGR_TIME, in_qmgr_ms);
	/* The destination's shaping entry: smtp's own settings otherwise. */
	if (job->dest != NULL && job->dest->lim.tls != SHAPING_TLS_UNSET)
		attr_put_num(qmgr_req, MAIL_ATTR_TLS_LEVEL,
		    (uint64_t)job->dest->lim.tls);
	if (job->dest != NULL && job->dest->lim.max_messages_per_connection > 0)
		attr_put_num(qmgr_req, MAIL_ATTR_CONN_USES,
		    job->dest->lim.max_messages_per_connection);
	/* The credential's source address pool; absent: "default". */
	if (job->pool[0] != '\0')
		attr_put_str(qmgr_req, MAIL_ATTR_POOL, job->pool);
	/*
	 * The address it leaves from (its destination's limits count it
	 * there), and those set aside or at their warmup cap for it.
	 */
	if (job->dest != NULL && job->dest->srcs[job->src].addr[0] != '\0')
		attr_put_str(qmgr_req, MAIL_ATTR_SOURCE,
		    job->dest->srcs[job->src].addr);
	if (qmgr_avoid == NULL)
		qmgr_avoid = vbuf_create(MAIL_AVOID_MAX);
	qmgr_source_avoid(job, qmgr_avoid);
	qmgr_dest_avoid_suspended(job, qmgr_avoid);
	if (qmgr_avoid->len > 0)
		attr_put_str(qmgr_req, MAIL_ATTR_AVOID, qmgr_avoid->data);
	for (size_t i = 0; i < job->nrcpts; i++) {
		attr_put_num(qmgr_req, MAIL_ATTR_RCPT_INDEX,
		    job->rcpts[i].index);
		attr_put_str(qmgr_req, MAIL_ATTR_RCPT, job->rcpts[i].address);
	}
	attr_end(qmgr_req);
	source = job->dest != NULL ? job->dest->srcs[job->src].addr : "";
	if (qmgr_conn_reusable(c, job->dest_key, source, ev_now_ms()))
		c->uses++;
	else
		c->uses = 1;
	c->max_uses = job->dest != NULL ?
	    job->dest->lim.max_messages_per_connection : 0;
	c->job = job;
	snprintf(c->last_key, sizeof(c->last_key), "%s", job->dest_key);
	snprintf(c->last_source, sizeof(c->last_source), "%s", source);
	snprintf(c->last_nexthop, sizeof(c->last_nexthop), "%s", job->nexthop);
	qmgr_nbusy++;
	job->dispatched = ev_now_ms();
	attrconn_deadline(c->ac, qmgr_request_deadline_ms());
	/* Requests are small; a full socket buffer is finished by events. */
	if (attrconn_send(c->ac, qmgr_req) == -1)
		qmgr_conn_fail(c, "lost connection with the delivery agent", 1);
}

/*
 * Every recipient of the job without a result is deferred with why; the
 * job goes to the done list.
 */
static void
qmgr_deliver_finish(struct qmgr_job *job, const char *why, const char *relay)
{
	qmgr_dest_release(job);
	for (size_t i = 0; i < job->nrcpts; i++)
		if (!job->rcpts[i].done)
			qmgr_job_result(&job->rcpts[i], QSTORE_DEFERRED,
			    "4.3.0", why);
	qmgr_job_set_relay(job, relay);
	qmgr_job_done(job);
}

/* The delivery agent failed us: every recipient of the job is deferred. */
static void
qmgr_conn_fail(struct qmgr_conn *c, const char *why, int lost)
{
	struct qmgr_job *job = c->job;

	/*
	 * The link went with nothing read back for the job: a kept
	 * connection closed by its smtp process (a use limit, a reload) just
	 * as the job was sent on it, or an smtp process that died (killed,
	 * crashed) in the middle of it. The job goes again, once, on a new
	 * connection instead of waiting out queue.min_backoff. Only once,
	 * so that a message that makes smtp crash is deferred rather than
	 * sent round forever; and only while no recipient has a result,
	 * since a result applied twice would be wrong. The next hop may
	 * have taken the message before smtp died: it is then delivered
	 * twice, which at-least-once delivery allows (Postfix defers such a
	 * job instead, and waits out its backoff).
	 */
	if (job != NULL && (c->served > 0 || lost) &&
	    attrconn_pending(c->ac) == 0 && !job->resent &&
	    qmgr_job_untouched(job)) {
		log_info("%s: %s; sending the request again", job->qid, why);
		job->resent = 1;
		c->job = NULL;
		qmgr_nbusy--;
		qmgr_dest_release(job);
		qmgr_job_requeue(job);
		qmgr_conn_close(c);
		return;
	}
	if (job != NULL) {
		log_warn("%s: %s", job->qid, why);
		qmgr_deliver_finish(job, why, "none");
	}
	qmgr_conn_close(c);
}

/* Whether no recipient of the job has a result yet. */
static int
qmgr_job_untouched(const struct qmgr_job *job)
{
	for (size_t i = 0; i < job->nrcpts; i++)
		if (job->rcpts[i].done)
			return 0;
	return 1;
}

/* Whether the reply delivered a recipient of the job (a message sent). */
static int
qmgr_job_sent_any(const struct qmgr_job *job)
{
	for (size_t i = 0; i < job->nrcpts; i++)
		if (job->rcpts[i].done &&
		    job->rcpts[i].status == QSTORE_DELIVERED)
			return 1;
	return 0;
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
		qmgr_conn_fail(c, "protocol error from the delivery agent", 0);
		break;
	case ATTRCONN_TOOBIG:
		qmgr_conn_fail(c, "oversized reply from the delivery agent", 0);
		break;
	case ATTRCONN_TIMEOUT:
		qmgr_conn_fail(c, "delivery agent timed out", 0);
		break;
	default:
		qmgr_conn_fail(c, "lost connection with the delivery agent", 1);
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

/*
 * A class name as lib/bclass writes them: it goes into records, events
 * and reports, so nothing else is taken from the delivery agent.
 */
static int
qmgr_class_ok(const char *class)
{
	if (*class == '\0')
		return 0;
	return strspn(class, "abcdefghijklmnopqrstuvwxyz-") == strlen(class);
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
		return 0;	/* deferred with the others left out */
	st = strcmp(r->status, MAIL_STATUS_SENT) == 0 ? QSTORE_DELIVERED :
	    strcmp(r->status, MAIL_STATUS_BOUNCED) == 0 ? QSTORE_FAILED :
	    QSTORE_DEFERRED;
	qmgr_job_result(cur, st, r->dsn != NULL ? r->dsn : "4.0.0",
	    r->text != NULL ? r->text : "");
	if (r->class != NULL && qmgr_class_ok(r->class))
		snprintf(cur->class, sizeof(cur->class), "%s", r->class);
	cur->dsn_passed = st == QSTORE_DELIVERED && r->dsn_passed != 0;
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
	struct qmgr_reply r = { job, 0, NULL, NULL, NULL, NULL, 0 };
	const char *reason = NULL, *dkim = NULL, *relay = "none", *mx = NULL;
	const char *source = NULL, *refused = NULL, *refusal = NULL;
	uint64_t status = MAIL_STAT_FAIL, site_fail = 0;
	struct vbuf why;
	const struct attr_spec head[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_STR(MAIL_ATTR_RELAY, 0, 0, QMGR_RELAY_MAX, &relay),
		ATTR_STR(MAIL_ATTR_DKIM, 0, 0, QMGR_DKIM_MAX, &dkim),
		ATTR_UINT(MAIL_ATTR_SITE_FAIL, 0, 0, 1, &site_fail),
		ATTR_STR(MAIL_ATTR_MX, 0, 1, QMGR_MX_LIST_MAX, &mx),
		ATTR_STR(MAIL_ATTR_SOURCE, 0, 1, 63, &source),
		ATTR_STR(MAIL_ATTR_SOURCE_REFUSED, 0, 1, 63, &refused),
		ATTR_STR(MAIL_ATTR_SOURCE_REFUSAL, 0, 0, ATTR_VALUE_MAX,
		    &refusal),
		ATTR_TABLE_END
	};
	const struct attr_spec rcpt[] = {
		ATTR_UINT(MAIL_ATTR_RCPT_INDEX, 0, 0, UINT32_MAX, &r.index),
		ATTR_STR(MAIL_ATTR_RCPT_STATUS, 0, 0, QMGR_STATUS_MAX,
		    &r.status),
		ATTR_STR(MAIL_ATTR_RCPT_DSN, 0, 0, QSTORE_DSN_MAX, &r.dsn),
		ATTR_STR(MAIL_ATTR_RCPT_REPLY, 0, 0, ATTR_VALUE_MAX, &r.text),
		ATTR_STR(MAIL_ATTR_RCPT_CLASS, 0, 0, QSTORE_CLASS_MAX,
		    &r.class),
		ATTR_UINT(MAIL_ATTR_RCPT_DSN_PASSED, 0, 0, 1, &r.dsn_passed),
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
		qmgr_conn_fail(c, "protocol error from the delivery agent", 0);
		goto out;
	}
	if (status != MAIL_STAT_OK) {
		log_warn("%s: delivery agent refused the request: %s",
		    job->qid, reason ? log_safe(reason) : "no reason");
		qmgr_conn_fail(c, "delivery agent error", 0);
		goto out;
	}
	job->site_fail = site_fail != 0;
	if (dkim != NULL) {
		free(job->dkim);
		job->dkim = xstrndup(dkim, QMGR_DKIM_KEEP);
	}
	/* On an error, results already taken stand; the rest are deferred. */
	if (attr_scan(l, body, &why) == -1)
		log_warn("%s: bad reply from the delivery agent: %s",
		    job->qid, log_safe(why.data));
	/* The provider first: its on_reply rules may match this reply. */
	if (mx != NULL)
		qmgr_dest_learn_mx(job->nexthop, mx);
	/* Then the source address's set-aside and warmup count. */
	qmgr_source_reply(job, source, refused, refusal,
	    qmgr_job_sent_any(job));
	/*
	 * The session smtp keeps left from there: the address asked for,
	 * unless none of the pool's was usable for the host's family.
	 */
	if (source != NULL)
		(void)snprintf(c->last_source, sizeof(c->last_source), "%s",
		    source);
	/* Before the release: the job still names its destination. */
	qmgr_dest_outcome(job);
	qmgr_deliver_finish(job, "no result from the delivery agent", relay);
	qmgr_conn_idle(c);
out:
	vbuf_release(&why);
}

/*
 * The connection's job is done. The next pending job goes on it from the
 * loop (qmgr_deliver_run), not from here: this runs inside the record
 * callback, and attrconn goes on decoding what else was read, so a
 * second, unasked-for reply in the same read would be taken as the next
 * job's. With no job outstanding, such a reply closes the connection.
 */
static void
qmgr_conn_idle(struct qmgr_conn *c)
{
	c->job = NULL;
	c->served++;
	c->idle_since = ev_now_ms();
	qmgr_nbusy--;
	attrconn_deadline(c->ac, -1);
}
