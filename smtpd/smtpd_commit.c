/*
 * smtpd_commit.c - the group commit of new messages, on a thread of its
 * own, and what follows it: 250 replies, log lines, the trigger to qmgr.
 *
 * Messages whose DATA ended while no commit was under way are committed
 * together (qstore_commit: every file fsync'd, every msg/<h>/ touched
 * fsync'd, then one LMDB transaction) before any of them gets its 250.
 * The commit waits on the disk for milliseconds (the syncs, and LMDB's
 * writer lock, which the other smtpd processes and qmgr share). Run in
 * the event loop, that wait stopped every other session of the process:
 * with 20 clients sending many messages per connection, the commit took
 * 80% of smtpd's time and bounded the rate (bench/README.md, 2026-12-07).
 * So one thread per smtpd runs qstore_commit() while the loop goes on
 * serving the other sessions; the messages that end meanwhile form the
 * next batch, which starts when this one is done. The crash-safety order
 * is qstore_commit()'s, unchanged, and no reply is sent before it
 * returned.
 *
 * This is the second thread STYLE.md's "no threads in daemons" allows
 * (smtpd_kdf.c has the first, and why a process would not do): a commit
 * process would have to be handed each message's file and records over a
 * socket, and smtpd's sessions would wait for it all the same.
 *
 * What the worker touches, and nothing else:
 * - smtpd_commit_job, only under smtpd_commit_lock;
 * - the batch's qstore_new objects and the "accepted" events they point
 *   to (fields of their sessions, which the loop leaves alone while the
 *   session is in SMTPD_COMMIT_WAIT and commit_inflight: a session closed
 *   meanwhile is freed only after the commit, see smtpd_commit_cancel);
 * - the queue's LMDB environment through qstore_commit (qstore_threads()
 *   makes a remap of the map wait for the other thread's transaction;
 *   qstore_errno is per thread);
 * - the write end of smtpd_commit_pipe, to say it is done;
 * - log_fatal(), only when that write fails (the process ends).
 * It must not touch sessions otherwise, the event loop, or logging. All
 * signals are blocked in it. See smtpd(8), "Durability and group commit".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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

/* The batch handed to the worker, and its result. */
struct smtpd_commit_job {
	struct qstore_new	**batch;
	size_t			  n;
	int			  posted;	/* the worker's to run */
	int			  rc;		/* qstore_commit's */
	enum qstore_err		  err;		/* its qstore_errno() */
	struct vbuf		 *why;
};

static pthread_mutex_t smtpd_commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smtpd_commit_cond = PTHREAD_COND_INITIALIZER;
static struct smtpd_commit_job smtpd_commit_job;
static int smtpd_commit_pipe[2] = { -1, -1 };	/* a byte: job done */

/* The loop thread's alone: */
static struct smtpd_session *smtpd_commit_head, **smtpd_commit_tail =
    &smtpd_commit_head;				/* the next batch */
static struct smtpd_session *smtpd_commit_running; /* the worker's batch */
static int smtpd_qmgr_fd = -1;

static void *smtpd_commit_main(void *);
static void smtpd_commit_done(int, int, void *);
static void smtpd_commit_answer(struct smtpd_session *, int,
    enum qstore_err);
static void smtpd_trigger_qmgr(void);
static void smtpd_log_accepted(struct smtpd_session *);
static void smtpd_event_accepted(struct smtpd_session *);

void
smtpd_commit_init(void)
{
	smtpd_commit_job.why = vbuf_create(0);
	qstore_threads(smtpd_queue);
	smtpd_worker_start("commit", smtpd_commit_pipe, smtpd_commit_main,
	    smtpd_commit_done);
}

/* The worker: one batch at a time, a byte through the pipe when done. */
static void *
smtpd_commit_main(void *arg)
{
	struct smtpd_commit_job *job = &smtpd_commit_job;
	struct qstore_new **batch;
	enum qstore_err err;
	size_t n;
	ssize_t w;
	int rc;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&smtpd_commit_lock);
		while (!job->posted)
			pthread_cond_wait(&smtpd_commit_cond,
			    &smtpd_commit_lock);
		batch = job->batch;
		n = job->n;
		pthread_mutex_unlock(&smtpd_commit_lock);

		rc = qstore_commit(smtpd_queue, batch, n, job->why);
		err = rc == -1 ? qstore_errno() : QSTORE_ERR_OK;

		pthread_mutex_lock(&smtpd_commit_lock);
		job->rc = rc;
		job->err = err;
		job->posted = 0;
		pthread_mutex_unlock(&smtpd_commit_lock);
		do
			w = write(smtpd_commit_pipe[1], "c", 1);
		while (w == -1 && errno == EINTR);
		if (w != 1)
			log_fatal("commit: write: %s", strerror(errno));
	}
	return NULL;
}

void
smtpd_commit_enqueue(struct smtpd_session *s)
{
	s->commit_next = NULL;
	*smtpd_commit_tail = s;
	smtpd_commit_tail = &s->commit_next;
}

/*
 * A session closing while its message waits: dropped from the next
 * batch (0). In the batch under way (-1), its message, its event and so
 * the session itself stay until the commit is done; then the session
 * is closed (smtpd_commit_done). The message may be queued then without
 * its 250 having reached the client, as when the connection drops
 * during any commit.
 */
int
smtpd_commit_cancel(struct smtpd_session *s)
{
	struct smtpd_session **pp;

	if (s->commit_inflight) {
		s->commit_closed = 1;
		return -1;
	}
	for (pp = &smtpd_commit_head; *pp != NULL; pp = &(*pp)->commit_next) {
		if (*pp == s) {
			*pp = s->commit_next;
			if (smtpd_commit_tail == &s->commit_next)
				smtpd_commit_tail = pp;
			return 0;
		}
	}
	return 0;
}

/* Hands the waiting messages to the worker, unless it is busy. */
void
smtpd_commit_start(void)
{
	struct smtpd_commit_job *job = &smtpd_commit_job;
	struct qstore_new **batch;
	struct smtpd_session *s;
	size_t n = 0, i;

	if (smtpd_commit_running != NULL || smtpd_commit_head == NULL)
		return;
	for (s = smtpd_commit_head; s != NULL; s = s->commit_next)
		n++;
	batch = xcalloc(n, sizeof(*batch));
	for (i = 0, s = smtpd_commit_head; s != NULL; s = s->commit_next) {
		smtpd_event_accepted(s);
		s->commit_inflight = 1;
		batch[i++] = s->qn;
	}
	smtpd_commit_running = smtpd_commit_head;
	smtpd_commit_head = NULL;
	smtpd_commit_tail = &smtpd_commit_head;

	pthread_mutex_lock(&smtpd_commit_lock);
	job->batch = batch;
	job->n = n;
	job->posted = 1;
	pthread_cond_signal(&smtpd_commit_cond);
	pthread_mutex_unlock(&smtpd_commit_lock);
}

/* The worker's batch is done: replies, logs, and the sessions go on. */
static void
smtpd_commit_done(int fd, int events, void *arg)
{
	struct smtpd_commit_job *job = &smtpd_commit_job;
	struct smtpd_session *s, *next;
	enum qstore_err err;
	uint64_t dropped;
	char buf[16];
	ssize_t r;
	int rc, posted;

	(void)events;
	(void)arg;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		;
	if (r == -1 && errno != EAGAIN && errno != EINTR)
		log_fatal("commit: read: %s", strerror(errno));
	pthread_mutex_lock(&smtpd_commit_lock);
	posted = job->posted;
	rc = job->rc;
	err = job->err;
	pthread_mutex_unlock(&smtpd_commit_lock);
	if (posted || smtpd_commit_running == NULL)
		return;
	if (rc == -1)
		log_warn("queue commit of %zu message(s): %s", job->n,
		    job->why->data);
	free(job->batch);
	job->batch = NULL;
	for (s = smtpd_commit_running; s != NULL; s = s->commit_next)
		smtpd_commit_answer(s, rc, err);
	s = smtpd_commit_running;
	smtpd_commit_running = NULL;
	/* Replies and pipelined input, now that the batch is settled. */
	for (; s != NULL; s = next) {
		next = s->commit_next;
		s->commit_inflight = 0;
		if (s->commit_closed)
			smtpd_session_close(s);
		else
			smtpd_session_kick(s);
	}
	if (rc == 0) {
		if ((dropped = outbox_dropped_to_report(smtpd_queue,
		    ev_now_ms())) > 0)
			log_warn(OUTBOX_DROPPED_FMT, dropped);
		smtpd_trigger_qmgr();
	}
	/* What ended while this batch was on disk. */
	smtpd_commit_start();
}

/* One message's outcome: its reply, its log lines, its file. */
static void
smtpd_commit_answer(struct smtpd_session *s, int rc, enum qstore_err err)
{
	if (rc == 0 && qstore_new_status(s->qn) == QSTORE_ERR_LIMIT) {
		log_info("%s: reject: unknown[%s]: sasl_username=%s "
		    "over its message rate", qstore_new_id(s->qn),
		    s->addr, s->auth_user);
		smtpd_reply(s, SMTPD_R_RATE);
		qstore_new_abort(s->qn);
	} else if (rc == 0 && qstore_new_status(s->qn) != QSTORE_ERR_OK) {
		log_warn("%s: queue file gone before its commit; "
		    "not queued", qstore_new_id(s->qn));
		smtpd_reply(s, SMTPD_R_STORE_ERR);
		qstore_new_abort(s->qn);
	} else if (rc == 0) {
		smtpd_log_accepted(s);
		smtpd_reply(s, SMTPD_R_QUEUED, qstore_new_id(s->qn));
		qstore_new_free(s->qn);
	} else {
		smtpd_reply(s, err == QSTORE_ERR_FULL ?
		    SMTPD_R_STORE_FULL : SMTPD_R_STORE_ERR);
		qstore_new_abort(s->qn);
	}
	s->qn = NULL;
	smtpd_proto_reset(s);
	smtpd_set_state(s, SMTPD_CMD);
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
