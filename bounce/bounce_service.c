/*
 * bounce_service.c - report requests from qmgr on private/bounce.
 *
 * The bounce process accepts one connection at a time and serves it
 * synchronously: read a request (attr stream), make the report it asks for
 * (bounce_dsn.c), insert it into the queue with the null sender and reply
 * only once that commit is durable, then go on reading requests until qmgr
 * closes the connection. A peer's bad request gets status=1 and the
 * connection is closed; the process never exits because of it. The
 * original's file is read through lib/qstore by its validated id, never
 * by a path from the peer. The protocol is documented in bounce(8).
 */
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acct.h"
#include "attr.h"
#include "bounce.h"
#include "log.h"
#include "mailproto.h"
#include "outbox.h"
#include "qid.h"
#include "qstore.h"
#include "utf8.h"
#include "xalloc.h"

static int	serve(int);
static int	wait_request(int, const struct vbuf *);
static int	parse_rcpt(void *, struct vbuf *);
static int	text_ok(const char *, int);
static size_t	due_filter(const struct bounce_req *,
		    const struct qstore_envelope *, struct bounce_rcpt *,
		    struct vbuf *);
static int	commit_report(struct qstore *, const struct cfg *,
		    const struct bounce_req *, const char *, int64_t,
		    struct qstore_file *, const struct bounce_rcpt *, size_t,
		    char *, struct vbuf *);

/* Where attr_scan puts one recipient group of a request. */
struct bounce_req_scan {
	struct bounce_req	*req;
	size_t			 max;		/* room in req->rcpts */
	uint64_t		 index;
	const char		*addr;
	const char		*dsn;
	const char		*reply;
	const char		*class;
	const char		*relay;
	int64_t			 time;
	int64_t			 until;
};

/* Reports after which the process exits and master starts a new one. */
#define BOUNCE_MAX_USE	10000

static const struct cfg *bounce_cfg;
static struct qstore *bounce_queue;
static unsigned bounce_uses;

void
bounce_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	bounce_cfg = cfg;
	/* qmgr closing mid-reply must not kill us; write() reports it. */
	(void)signal(SIGPIPE, SIG_IGN);
	if ((bounce_queue = qstore_open(cfg, why)) == NULL)
		log_fatal("queue %s: %s", cfg->queue_directory, why->data);
	vbuf_free(why);
	/* Reports of accepted mail may use the room smtpd leaves. */
	qstore_admit_reports(bounce_queue);
	if (acct_open(cfg->log_accounting) == -1)
		log_warn("accounting log %s: %m", cfg->log_accounting);
}

int64_t
bounce_loop(void)
{
	return -1;
}

int
bounce_busy(void)
{
	/* Requests are served synchronously: nothing is in flight here. */
	return 0;
}

void
bounce_service(const struct daemon_listener *l)
{
	int fd;

	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		/*
		 * Another process took it or the client gave up; or out of
		 * descriptors, and the listener rests a while rather than
		 * spin (lib/daemon).
		 */
		(void)daemon_accept_failed(l, "");
		return;
	}
	(void)serve(fd);
	close(fd);
}

/*
 * Waits up to BOUNCE_REQ_IDLE_MS for the next request, in slices of at
 * most a second so that SIGTERM is noticed. Returns 0 when there is
 * input, -1 when the connection was idle too long or we are stopping.
 */
static int
wait_request(int fd, const struct vbuf *inbuf)
{
	struct pollfd pfd;
	int waited;

	if (inbuf->len > 0)
		return 0;
	for (waited = 0; waited < BOUNCE_REQ_IDLE_MS; waited += 1000) {
		if (daemon_stopping())
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 1000) > 0)
			return 0;
	}
	return -1;
}

/* Serves one qmgr connection until EOF, an error or shutdown. */
static int
serve(int fd)
{
	struct vbuf inbuf, out, why;
	struct attr_list l;
	struct bounce_req req;
	char dsn_id[QID_SIZE];
	size_t used;
	int rc = 0, bad, made;

	vbuf_init(&inbuf, BOUNCE_REQ_CAP);
	vbuf_init(&out, 0);
	vbuf_init(&why, 0);
	attr_list_init(&l);
	while (!daemon_stopping() && !daemon_draining()) {
		if (wait_request(fd, &inbuf) == -1)
			break;
		if (attr_read(fd, &inbuf, &l, &used, BOUNCE_IO_TIMEOUT_MS,
		    &why) == -1) {
			if (inbuf.len != 0 || strcmp(why.data,
			    "unexpected end of stream") != 0)
				log_warn("request from qmgr: %s",
				    log_safe(why.data));
			rc = -1;
			break;
		}
		memset(&req, 0, sizeof(req));
		vbuf_reset(&out);
		bad = bounce_parse(&l, &req, &why) == -1;
		if (bad) {
			log_warn("bad request from qmgr: %s",
			    log_safe(why.data));
			attr_put_num(&out, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
			attr_put_str(&out, MAIL_ATTR_REASON, why.data);
		} else if ((made = bounce_make(bounce_queue, bounce_cfg, &req,
		    dsn_id, &why)) == -1) {
			log_warn("%s: %s not made: %s; qmgr retries", req.qid,
			    bounce_dsn_logname(req.kind), why.data);
			attr_put_num(&out, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
			attr_put_str(&out, MAIL_ATTR_REASON, why.data);
		} else {
			attr_put_num(&out, MAIL_ATTR_STATUS, MAIL_STAT_OK);
			if (made == 1)
				attr_put_str(&out, MAIL_ATTR_DSN_ID, dsn_id);
			if (++bounce_uses >= BOUNCE_MAX_USE)
				daemon_retire();
		}
		attr_end(&out);
		free(req.rcpts);
		if (attr_write(fd, &out, BOUNCE_IO_TIMEOUT_MS, &why) == -1) {
			log_warn("reply to qmgr: %s", why.data);
			rc = -1;
			break;
		}
		vbuf_consume(&inbuf, used);
		if (bad) {
			rc = -1;
			break;
		}
	}
	attr_list_release(&l);
	vbuf_release(&inbuf);
	vbuf_release(&out);
	vbuf_release(&why);
	return rc;
}

/* Text from the peer: no CR, LF or NUL (it goes into header fields). */
static int
text_ok(const char *s, int empty_ok)
{
	if (s == NULL)
		return 1;
	if (s[0] == '\0')
		return empty_ok;
	return strpbrk(s, "\r\n") == NULL;
}

/* One rcpt_index group of a request (attr_scan's callback). */
static int
parse_rcpt(void *arg, struct vbuf *why)
{
	struct bounce_req_scan *sc = arg;
	struct bounce_rcpt *r;

	ASSERT(sc->req->nrcpts < sc->max);
	if (!text_ok(sc->addr, 0) || sc->dsn == NULL || sc->reply == NULL) {
		vbuf_setf(why, "recipient %" PRIu64 ": missing or bad "
		    "rcpt, rcpt_dsn or rcpt_reply", sc->index);
		return -1;
	}
	r = &sc->req->rcpts[sc->req->nrcpts++];
	r->index = (uint32_t)sc->index;
	r->addr = sc->addr;
	r->dsn = sc->dsn;
	r->reply = sc->reply;
	r->class = sc->class;
	r->relay = sc->relay;
	r->time = sc->time;
	r->until = sc->until;
	sc->addr = sc->dsn = sc->reply = sc->class = sc->relay = NULL;
	sc->time = sc->until = 0;
	return 0;
}

int
bounce_parse(const struct attr_list *l, struct bounce_req *req,
    struct vbuf *why)
{
	struct bounce_req_scan sc;
	const char *v = NULL, *qid = NULL, *kind = NULL;
	const struct attr_spec rcpt[] = {
		ATTR_UINT(MAIL_ATTR_RCPT_INDEX, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &sc.index),
		ATTR_STR(MAIL_ATTR_RCPT, ATTR_F_REQUIRED, 1, QSTORE_ADDR_MAX,
		    &sc.addr),
		ATTR_STR(MAIL_ATTR_RCPT_DSN, ATTR_F_REQUIRED, 0, QSTORE_DSN_MAX,
		    &sc.dsn),
		ATTR_STR(MAIL_ATTR_RCPT_REPLY, ATTR_F_REQUIRED, 0,
		    ATTR_VALUE_MAX, &sc.reply),
		ATTR_STR(MAIL_ATTR_RCPT_CLASS, 0, 0, QSTORE_CLASS_MAX,
		    &sc.class),
		ATTR_STR(MAIL_ATTR_RELAY, 0, 0, QSTORE_RELAY_MAX, &sc.relay),
		ATTR_INT(MAIL_ATTR_RCPT_TIME, 0, 0, INT64_MAX / 2, &sc.time),
		ATTR_INT(MAIL_ATTR_RCPT_UNTIL, 0, 0, INT64_MAX / 2,
		    &sc.until),
		ATTR_TABLE_END
	};
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_REQUEST, ATTR_F_REQUIRED, 1, ATTR_NAME_MAX,
		    &v),
		ATTR_STR(MAIL_ATTR_QUEUE_ID, ATTR_F_REQUIRED, 1, ATTR_NAME_MAX,
		    &qid),
		ATTR_STR(MAIL_ATTR_REPORT, ATTR_F_REQUIRED, 1, ATTR_NAME_MAX,
		    &kind),
		ATTR_GROUP(MAIL_ATTR_RCPT_INDEX, ATTR_F_REQUIRED, rcpt,
		    parse_rcpt, &sc),
		ATTR_TABLE_END
	};

	memset(&sc, 0, sizeof(sc));
	sc.req = req;
	sc.max = attr_count(l, MAIL_ATTR_RCPT_INDEX);
	if (sc.max > MAIL_BOUNCE_RCPTS_MAX) {
		vbuf_setf(why, "%zu recipients: at most %d per request",
		    sc.max, MAIL_BOUNCE_RCPTS_MAX);
		return -1;
	}
	req->rcpts = xcalloc(sc.max == 0 ? 1 : sc.max, sizeof(*req->rcpts));
	if (attr_scan(l, spec, why) == -1)
		return -1;
	if (strcmp(v, MAIL_REQ_BOUNCE) != 0) {
		vbuf_setf(why, "unknown request \"%s\"", log_safe(v));
		return -1;
	}
	if (!qid_ok(qid)) {
		vbuf_setf(why, "bad queue id \"%s\"", log_safe(qid));
		return -1;
	}
	memcpy(req->qid, qid, QID_SIZE);
	if ((req->kind = bounce_dsn_kind(kind)) == QSTORE_REPORT_NONE) {
		vbuf_setf(why, "unknown report \"%s\"", log_safe(kind));
		return -1;
	}
	return 0;
}

/*
 * The recipients a report is due for (RFC 3461 4.1): none with
 * NOTIFY=NEVER; with NOTIFY given, only those who asked for this kind
 * (FAILURE, DELAY, SUCCESS); without it, failures and delays (qmgr sends
 * delays only when bounce.delay_warning is on). qmgr decided already;
 * this is a second look. Without the original's envelope, all listed.
 */
static size_t
due_filter(const struct bounce_req *req, const struct qstore_envelope *env,
    struct bounce_rcpt *due, struct vbuf *skipped)
{
	unsigned n, want;
	size_t i, ndue = 0;

	want = req->kind == QSTORE_REPORT_FAILED ? QSTORE_NOTIFY_FAILURE :
	    req->kind == QSTORE_REPORT_DELAYED ? QSTORE_NOTIFY_DELAY :
	    QSTORE_NOTIFY_SUCCESS;
	for (i = 0; i < req->nrcpts; i++) {
		n = 0;
		if (env != NULL && env->notify != NULL &&
		    req->rcpts[i].index < env->nrcpts)
			n = env->notify[req->rcpts[i].index];
		if ((n & QSTORE_NOTIFY_NEVER) != 0 ||
		    (n != 0 && (n & want) == 0) ||
		    (n == 0 && req->kind == QSTORE_REPORT_RELAYED)) {
			vbuf_addf(skipped, "%s<%s>", skipped->len ? ", " : "",
			    log_safe(req->rcpts[i].addr));
			continue;
		}
		due[ndue++] = req->rcpts[i];
	}
	return ndue;
}

int
bounce_make(struct qstore *qs, const struct cfg *cfg,
    const struct bounce_req *req, char dsn_id[QID_SIZE], struct vbuf *why)
{
	const struct qstore_envelope *env = NULL;
	struct qstore_msginfo m;
	struct qstore_file *qf;
	struct qstore_txn *t;
	struct bounce_rcpt *due;
	struct vbuf skipped;
	const char *sender;
	int64_t arrival;
	size_t ndue;
	int rc, dsn_off;

	/* 1. The original: its file, else what the index knows of it. */
	qf = qstore_file_open(qstore_dir(qs), req->qid, why);
	if (qf != NULL) {
		env = qstore_file_envelope(qf);
		sender = env->sender;
		arrival = env->arrival;
		dsn_off = env->dsn_off;
	} else if (qstore_errno() == QSTORE_ERR_IO) {
		/*
		 * Not gone, not damaged: unreadable for now (out of
		 * descriptors, a disk error). qmgr asks again later rather
		 * than have a report without the original for good.
		 */
		return -1;
	} else {
		log_warn("%s: original not readable (%s); reporting without "
		    "it", req->qid, why->data);
		if ((t = qstore_txn_begin(qs, 0, why)) == NULL)
			return -1;
		rc = qstore_msg_get(t, req->qid, &m);
		qstore_txn_abort(t);
		if (rc == -1 && qstore_errno() != QSTORE_ERR_NOTFOUND) {
			vbuf_setf(why, "message record: %s",
			    qstore_errno() == QSTORE_ERR_FULL ? "storage full" :
			    "I/O error");
			return -1;
		}
		if (rc == -1) {
			/* Nobody to send it to: nothing can ever be done. */
			log_warn("%s: no queue file and no record: no sender "
			    "to report to", req->qid);
			vbuf_setf(why, "original unknown");
			return 0;
		}
		sender = m.sender;
		arrival = m.arrival;
		dsn_off = m.dsn_off;
	}

	/* 2. Is a report due at all? (qmgr looked too.) */
	vbuf_init(&skipped, 0);
	due = xcalloc(req->nrcpts == 0 ? 1 : req->nrcpts, sizeof(*due));
	rc = 0;
	if (sender[0] == '\0') {
		log_info("%s: no %s: the sender is <>", req->qid,
		    bounce_dsn_logname(req->kind));
		vbuf_setf(why, "null sender");
	} else if (dsn_off) {
		log_info("%s: no %s: reports are off for this sender", req->qid,
		    bounce_dsn_logname(req->kind));
		vbuf_setf(why, "reports off");
	} else if ((ndue = due_filter(req, env, due, &skipped)) == 0) {
		log_info("%s: no %s: NOTIFY of %s", req->qid,
		    bounce_dsn_logname(req->kind), skipped.data);
		vbuf_setf(why, "NOTIFY");
	} else {
		if (skipped.len > 0)
			log_info("%s: NOTIFY: no %s for %s", req->qid,
			    bounce_dsn_logname(req->kind), skipped.data);
		/* 3. Compose and commit it. */
		rc = commit_report(qs, cfg, req, sender, arrival, qf, due,
		    ndue, dsn_id, why);
	}
	free(due);
	vbuf_release(&skipped);
	qstore_file_close(qf);
	return rc;
}

/* Builds the report, writes it as a new message and commits it. */
static int
commit_report(struct qstore *qs, const struct cfg *cfg,
    const struct bounce_req *req, const char *sender, int64_t arrival,
    struct qstore_file *qf, const struct bounce_rcpt *due, size_t ndue,
    char *dsn_id, struct vbuf *why)
{
	struct qstore_envelope env;
	struct bounce_report r;
	struct outbox_event ev;
	struct qstore_new *qn;
	struct vbuf msg, msgid, boundary;
	char *rcpts[1];
	const char *id;
	uint64_t nonce = 0;
	int rc = -1;

	memset(&env, 0, sizeof(env));
	env.sender = "";
	rcpts[0] = (char *)sender;
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.client_addr = "";
	env.client_name = "";
	env.auth_user = "";
	/*
	 * A report to an internationalised address (smtpd took it only with
	 * SMTPUTF8; the original may be unreadable here) needs SMTPUTF8 on
	 * its way too (RFC 6533).
	 */
	env.smtputf8 = utf8_has_8bit(sender);
	if ((qn = qstore_new_begin(qs, &env, why)) == NULL)
		return -1;
	id = qstore_new_id(qn);

	vbuf_init(&msg, 0);
	vbuf_init(&msgid, 0);
	vbuf_init(&boundary, 0);
	vbuf_addf(&msgid, "%s@%s", id, cfg->myhostname);
	memset(&r, 0, sizeof(r));
	r.kind = req->kind;
	r.qid = req->qid;
	r.sender = sender;
	r.arrival = arrival;
	r.qf = qf;
	r.rcpts = due;
	r.nrcpts = ndue;
	r.myhostname = cfg->myhostname;
	r.size_limit = cfg->bounce_size_limit;
	r.now = (int64_t)time(NULL);
	r.msgid = msgid.data;
	/*
	 * The original, which the report quotes, comes from a client and
	 * could hold a line that forges the report's parts if it could
	 * guess the boundary: 64 random bits make sure it cannot. Within
	 * RFC 2046's 70 characters whatever the host name.
	 */
	if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		nonce ^= (uint64_t)r.now * 0x9e3779b97f4a7c15ULL ^
		    (uint64_t)getpid();
	vbuf_addf(&boundary, "%s.%016" PRIx64 "/petrel", id, nonce);
	r.boundary = boundary.data;
	if (bounce_dsn_compose(&r, &msg, why) == -1) {
		/* Every failure is reported: without the original then. */
		log_warn("%s: %s; reporting without the original", req->qid,
		    why->data);
		vbuf_reset(&msg);
		r.qf = NULL;
		if (bounce_dsn_compose(&r, &msg, why) == -1)
			goto fail;
	}
	if (qstore_new_write(qn, msg.data, msg.len, why) == -1 ||
	    qstore_new_finish(qn, why) == -1)
		goto fail;

	/* The report's "accepted" event, in the commit's transaction. */
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_ACCEPTED;
	ev.time_ms = outbox_now_ms();
	(void)snprintf(ev.qid, sizeof(ev.qid), "%s", id);
	ev.sender = "";
	ev.recipients = (const char *const *)rcpts;
	ev.nrecipients = 1;
	ev.size = qstore_new_size(qn);
	ev.client = "";
	qstore_new_event(qn, &ev);
	/* fsync of file and directory, then the records: durable. */
	if (qstore_commit(qs, &qn, 1, why) == -1)
		goto fail;
	if (qstore_new_status(qn) != QSTORE_ERR_OK) {
		vbuf_setf(why, "%s: queue file gone before its commit", id);
		goto fail;
	}
	memcpy(dsn_id, id, QID_SIZE);
	log_info("%s: %s: %s", req->qid, bounce_dsn_logname(req->kind), id);
	log_info("%s: message-id=<%s>", id, log_safe(msgid.data));
	/* qmgr logs the from=<> line when it takes the report, as Postfix. */
	acct_event(&ev);
	qstore_new_free(qn);
	rc = 1;
	goto out;
fail:
	if (qstore_errno() == QSTORE_ERR_FULL)
		vbuf_addf(why, " (storage full)");
	qstore_new_abort(qn);
out:
	vbuf_release(&msg);
	vbuf_release(&msgid);
	vbuf_release(&boundary);
	return rc;
}
