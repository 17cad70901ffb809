/*
 * smtpd.c - the submission server: ESMTP with STARTTLS and AUTH, writes
 * accepted messages into the queue and tells qmgr. See smtpd(8).
 *
 * Group commit: messages whose DATA ended in the same event-loop pass are
 * made durable together (one directory fsync per hash directory, one LMDB
 * transaction) before any of them gets its 250.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acct.h"
#include "attr.h"
#include "event.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "smtpd.h"
#include "xalloc.h"

const struct cfg *smtpd_cfg;
struct qstore *smtpd_queue;
SSL_CTX *smtpd_ssl_ctx;

static struct smtpd_session *smtpd_commit_head, **smtpd_commit_tail =
    &smtpd_commit_head;
static int smtpd_qmgr_fd = -1;
static int64_t smtpd_last_sweep;
static int smtpd_shutdown_done;

static void smtpd_init(const struct cfg *);
static void smtpd_service(const struct daemon_listener *);
static int64_t smtpd_loop(void);
static int smtpd_busy(void);
static void smtpd_commit_run(void);
static void smtpd_trigger_qmgr(void);
static void smtpd_log_accepted(struct smtpd_session *);
static void smtpd_event_accepted(struct smtpd_session *);

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "smtpd",
		.init = smtpd_init,		/* queue, TLS, credentials */
		.service = smtpd_service,	/* accept client sessions */
		.loop = smtpd_loop,		/* group commit, timeouts */
		.busy = smtpd_busy,		/* sessions still open */
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}

static void
smtpd_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	smtpd_cfg = cfg;
	if ((smtpd_queue = qstore_open(cfg, why)) == NULL)
		log_fatal("queue %s: %s", cfg->queue_directory, why->data);
	vbuf_free(why);
	smtpd_ssl_ctx = smtpd_tls_init(cfg);
	smtpd_auth_init(cfg);
	smtpd_kdf_init();
	smtpd_limit_init(cfg);
	smtpd_policy_init(cfg);
	smtpd_suppress_init(cfg);
	if (acct_open(cfg->log_accounting) == -1)
		log_warn("accounting log %s: %m", cfg->log_accounting);
	/* Last: what is open now is what every session shares. */
	smtpd_session_limits_init(cfg);
}

static void
smtpd_service(const struct daemon_listener *l)
{
	smtpd_session_accept(l);
}

void
smtpd_commit_enqueue(struct smtpd_session *s)
{
	s->commit_next = NULL;
	*smtpd_commit_tail = s;
	smtpd_commit_tail = &s->commit_next;
}

/* A session closed while its message waits: drop it from the batch. */
void
smtpd_commit_cancel(struct smtpd_session *s)
{
	struct smtpd_session **pp;

	for (pp = &smtpd_commit_head; *pp != NULL; pp = &(*pp)->commit_next) {
		if (*pp == s) {
			*pp = s->commit_next;
			if (smtpd_commit_tail == &s->commit_next)
				smtpd_commit_tail = pp;
			return;
		}
	}
}

static int64_t
smtpd_loop(void)
{
	int64_t now;

	if (smtpd_commit_head != NULL)
		smtpd_commit_run();
	now = ev_now_ms();
	if (now - smtpd_last_sweep >= 1000) {
		smtpd_sessions_sweep(now);
		smtpd_last_sweep = now;
	}
	if (daemon_stopping() && !smtpd_shutdown_done) {
		smtpd_sessions_shutdown();
		smtpd_shutdown_done = 1;
	}
	/*
	 * The commit's replies kick their sessions, and a session whose
	 * next message was already read (a client that reuses its
	 * connection and answers the 354 at once) finishes it there: it is
	 * on the commit list again, with nothing left to wake the event
	 * loop. Look at the descriptors without waiting, then commit it;
	 * waiting for the timer held that message's 250 for a second.
	 */
	if (smtpd_commit_head != NULL)
		return 0;
	return smtpd_session_count() > 0 ? 1000 : -1;
}

static int
smtpd_busy(void)
{
	return smtpd_session_count() > 0;
}

/* Commits every message that finished DATA in this pass, then replies. */
static void
smtpd_commit_run(void)
{
	struct smtpd_session *s, *next;
	struct qstore_new **batch;
	struct vbuf *why = vbuf_create(0);
	size_t n = 0, i;
	uint64_t dropped;
	int rc;

	for (s = smtpd_commit_head; s != NULL; s = s->commit_next)
		n++;
	batch = xcalloc(n, sizeof(*batch));
	for (i = 0, s = smtpd_commit_head; s != NULL; s = s->commit_next) {
		smtpd_event_accepted(s);
		batch[i++] = s->qn;
	}
	rc = qstore_commit(smtpd_queue, batch, n, why);
	if (rc == -1)
		log_warn("queue commit of %zu message(s): %s", n, why->data);
	for (s = smtpd_commit_head; s != NULL; s = next) {
		next = s->commit_next;
		if (rc == 0 && qstore_new_status(s->qn) == QSTORE_ERR_LIMIT) {
			log_info("%s: reject: unknown[%s]: sasl_username=%s "
			    "over its message rate", qstore_new_id(s->qn),
			    s->addr, s->auth_user);
			smtpd_reply(s, SMTPD_R_RATE);
			qstore_new_abort(s->qn);
		} else if (rc == 0 && qstore_new_status(s->qn) !=
		    QSTORE_ERR_OK) {
			log_warn("%s: queue file gone before its commit; "
			    "not queued", qstore_new_id(s->qn));
			smtpd_reply(s, SMTPD_R_STORE_ERR);
			qstore_new_abort(s->qn);
		} else if (rc == 0) {
			smtpd_log_accepted(s);
			smtpd_reply(s, SMTPD_R_QUEUED, qstore_new_id(s->qn));
			qstore_new_free(s->qn);
		} else {
			smtpd_reply(s, qstore_errno() == QSTORE_ERR_FULL ?
			    SMTPD_R_STORE_FULL : SMTPD_R_STORE_ERR);
			qstore_new_abort(s->qn);
		}
		s->qn = NULL;
		smtpd_proto_reset(s);
		smtpd_set_state(s, SMTPD_CMD);
	}
	s = smtpd_commit_head;
	smtpd_commit_head = NULL;
	smtpd_commit_tail = &smtpd_commit_head;
	/* Replies and pipelined input, now that the batch is settled. */
	for (; s != NULL; s = next) {
		next = s->commit_next;
		smtpd_session_kick(s);
	}
	free(batch);
	vbuf_free(why);
	if (rc == 0) {
		if ((dropped = outbox_dropped_to_report(smtpd_queue,
		    ev_now_ms())) > 0)
			log_warn(OUTBOX_DROPPED_FMT, dropped);
		smtpd_trigger_qmgr();
	}
}

/*
 * The message's "accepted" event: put into the outbox by qstore_commit in
 * the transaction that inserts the message, and written to the accounting
 * log once that has committed (smtpd_log_accepted).
 */
static void
smtpd_event_accepted(struct smtpd_session *s)
{
	struct outbox_event *ev = &s->accepted;

	memset(ev, 0, sizeof(*ev));
	ev->kind = OUTBOX_ACCEPTED;
	ev->time_ms = outbox_now_ms();
	snprintf(ev->qid, sizeof(ev->qid), "%s", qstore_new_id(s->qn));
	ev->sender = s->sender;
	ev->recipients = (const char *const *)s->rcpts;
	ev->nrecipients = s->nrcpts;
	ev->size = qstore_new_size(s->qn);
	ev->client = s->addr;
	ev->helo = s->helo;
	ev->sasl_username = s->auth_user[0] != '\0' ? s->auth_user : NULL;
	ev->tls = s->tls_on ? s->tls_version : NULL;
	ev->listener = s->listener;
	ev->message_id = s->message_id[0] != '\0' ? s->message_id : NULL;
	ev->metadata = s->meta_json->len > 0 ? s->meta_json->data : NULL;
	ev->tags = s->tags_json->len > 0 ? s->tags_json->data : NULL;
	qstore_new_event(s->qn, ev);
}

static void
smtpd_log_accepted(struct smtpd_session *s)
{
	const char *qid = qstore_new_id(s->qn);

	if (s->auth_user[0] != '\0')
		log_info("%s: client=unknown[%s], sasl_method=%s, "
		    "sasl_username=%s", qid, s->addr, s->auth_mech != NULL ?
		    s->auth_mech : "PLAIN", s->auth_user);
	else
		log_info("%s: client=unknown[%s]", qid, s->addr);
	/*
	 * The from=/size=/nrcpt= line is qmgr's, as in Postfix, where the
	 * log tools look for it; message-id= is what Postfix's cleanup
	 * logs: the client's Message-ID, or the one smtpd added.
	 */
	if (s->message_id[0] != '\0')
		log_info("%s: message-id=%s", qid, log_safe(s->message_id));
	acct_event(&s->accepted);
}

/*
 * One trigger record to qmgr on a kept-open, non-blocking connection. A
 * trigger that cannot be sent is dropped: qmgr also scans on a timer.
 */
static void
smtpd_trigger_qmgr(void)
{
	struct vbuf *req;
	ssize_t n;

	if (smtpd_qmgr_fd == -1 && (smtpd_qmgr_fd = mail_connect(
	    smtpd_cfg->queue_directory, MAIL_SOCK_QMGR, NULL)) == -1)
		return;
	req = vbuf_create(0);
	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_TRIGGER);
	attr_end(req);
	n = write(smtpd_qmgr_fd, req->data, req->len);
	if (n != (ssize_t)req->len && !(n == -1 && errno == EAGAIN)) {
		close(smtpd_qmgr_fd);
		smtpd_qmgr_fd = -1;
	}
	vbuf_free(req);
}
