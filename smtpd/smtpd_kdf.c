/*
 * smtpd_kdf.c - checks AUTH secrets on a worker thread.
 *
 * The scrypt KDF of lib/cred takes about a tenth of a second and 32 MiB.
 * Run in the event loop, every login that misses the verified-secret
 * cache (a first login, and every wrong secret) would stop all sessions
 * of the process for that long: a few clients sending wrong secrets
 * would stall everyone's mail. One thread per smtpd runs the KDF; the
 * loop hands it jobs and reads the finished ones back from a pipe. A
 * session that ends while its check runs is detached; the result is then
 * dropped. A check of the same secret of the same user as one already
 * under way (many sessions of one application logging in at once, the
 * first time in this process) is not run again: it follows that one and
 * gets its verdict, so a burst of N first logins costs one KDF, not N in
 * a row.
 *
 * This thread is one of the two sanctioned exceptions to STYLE.md's "no
 * threads in daemons" (smtpd_commit.c has the other). Why not a separate
 * auth service process: it would add a
 * request and reply on a socket to every check and one more resident
 * process with the credential database open, and isolate nothing, since
 * smtpd itself reads the stored hashes (cred_verify_start does the lookup
 * and the cache on the loop's thread) and only the pure computation is
 * moved here.
 *
 * What the worker touches, and nothing else:
 * - the queue smtpd_kdf_todo/smtpd_kdf_tail, only under smtpd_kdf_lock;
 * - req->job of the request it dequeued (a private copy of the secret and
 *   the stored hashes, and its result fields): cred_verify_work() runs
 *   scrypt through OpenSSL (thread-safe) and reads the constant dummy
 *   hash; the loop does not look at the job until the pointer comes back;
 * - the write end of smtpd_kdf_pipe, to hand the request back;
 * - log_fatal(), only when that write fails (the process ends).
 * It must not touch req->s, mech or user (the loop's: a cancel clears s
 * while the job runs), sessions, the credential database or its cache,
 * counters, the event loop, or logging otherwise. All signals are blocked
 * in it, so handlers run on the loop's thread.
 *
 * What would move it to a process: a worker that needs any of the above,
 * smtpd forking or exec'ing with the thread alive, more than one worker
 * per smtpd (then a service with its own row and process count in
 * master's table), or keeping the credential hashes out of smtpd
 * altogether. See smtpd(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cred.h"
#include "event.h"
#include "log.h"
#include "smtpd.h"
#include "xalloc.h"

struct smtpd_kdf_req {
	struct smtpd_kdf_req	*next;		/* the worker's queue */
	struct cred_verify_job	*job;
	struct smtpd_session	*s;		/* NULL: session gone */
	const char		*mech;		/* "PLAIN" or "LOGIN" */
	char			*user;		/* as the client sent it */
	/* The loop thread's alone: */
	struct smtpd_kdf_req	*run_next;	/* smtpd_kdf_running */
	struct smtpd_kdf_req	*followers;	/* same check, not run */
};

static pthread_mutex_t smtpd_kdf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smtpd_kdf_cond = PTHREAD_COND_INITIALIZER;
static struct smtpd_kdf_req *smtpd_kdf_todo, **smtpd_kdf_tail =
    &smtpd_kdf_todo;
static int smtpd_kdf_pipe[2] = { -1, -1 };	/* finished requests */
static struct smtpd_kdf_req *smtpd_kdf_running;	/* handed to the worker */

static void *smtpd_kdf_main(void *);
static void smtpd_kdf_done(int, int, void *);
static void smtpd_kdf_answer(struct smtpd_kdf_req *, int);

void
smtpd_kdf_init(void)
{
	smtpd_worker_start("kdf", smtpd_kdf_pipe, smtpd_kdf_main,
	    smtpd_kdf_done);
}

void
smtpd_worker_start(const char *what, int fds[2], void *(*run)(void *),
    ev_fd_cb *done)
{
	sigset_t all, old;
	pthread_t t;
	int rc;

	if (pipe2(fds, O_CLOEXEC) == -1)
		log_fatal("%s: pipe: %s", what, strerror(errno));
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1)
		log_fatal("%s: fcntl: %s", what, strerror(errno));
	/* Signals stay with the event loop's thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		log_fatal("%s: pthread_create: %s", what, strerror(rc));
	(void)pthread_detach(t);
	ev_fd_set(fds[0], EV_READ, done, NULL);
}

/* The worker: one job at a time, its pointer back through the pipe. */
static void *
smtpd_kdf_main(void *arg)
{
	struct smtpd_kdf_req *req;
	ssize_t n;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&smtpd_kdf_lock);
		while (smtpd_kdf_todo == NULL)
			pthread_cond_wait(&smtpd_kdf_cond, &smtpd_kdf_lock);
		req = smtpd_kdf_todo;
		if ((smtpd_kdf_todo = req->next) == NULL)
			smtpd_kdf_tail = &smtpd_kdf_todo;
		pthread_mutex_unlock(&smtpd_kdf_lock);

		cred_verify_work(req->job);
		/* A pointer is written whole (PIPE_BUF). */
		do
			n = write(smtpd_kdf_pipe[1], &req, sizeof(req));
		while (n == -1 && errno == EINTR);
		if (n != (ssize_t)sizeof(req))
			log_fatal("kdf: write: %s", strerror(errno));
	}
	return NULL;
}

void
smtpd_kdf_submit(struct smtpd_session *s, struct cred_verify_job *job,
    const char *mech, const char *user)
{
	struct smtpd_kdf_req *req = xcalloc(1, sizeof(*req)), *lead;

	req->job = job;
	req->s = s;
	req->mech = mech;
	req->user = xstrdup(user);
	s->auth_kdf = req;
	smtpd_set_state(s, SMTPD_AUTH_KDF);
	for (lead = smtpd_kdf_running; lead != NULL; lead = lead->run_next) {
		if (cred_verify_same(lead->job, job)) {
			req->run_next = lead->followers;
			lead->followers = req;
			return;
		}
	}
	req->run_next = smtpd_kdf_running;
	smtpd_kdf_running = req;
	pthread_mutex_lock(&smtpd_kdf_lock);
	*smtpd_kdf_tail = req;
	smtpd_kdf_tail = &req->next;
	pthread_cond_signal(&smtpd_kdf_cond);
	pthread_mutex_unlock(&smtpd_kdf_lock);
}

void
smtpd_kdf_cancel(struct smtpd_session *s)
{
	if (s->auth_kdf != NULL) {
		s->auth_kdf->s = NULL;
		s->auth_kdf = NULL;
	}
}

/* Finished checks: their sessions go on (or their results are dropped). */
static void
smtpd_kdf_done(int fd, int events, void *arg)
{
	struct smtpd_kdf_req *req, **pp, *f, *next;
	ssize_t n;
	int rc;

	(void)events;
	(void)arg;
	while ((n = read(fd, &req, sizeof(req))) == (ssize_t)sizeof(req)) {
		for (pp = &smtpd_kdf_running; *pp != req; pp = &(*pp)->run_next)
			ASSERT(*pp != NULL);
		*pp = req->run_next;
		rc = cred_verify_finish(smtpd_auth_db(), req->job);
		for (f = req->followers; f != NULL; f = next) {
			next = f->run_next;
			cred_verify_cancel(f->job);
			smtpd_kdf_answer(f, rc);
		}
		smtpd_kdf_answer(req, rc);
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_fatal("kdf: read: %s", strerror(errno));
}

/* The verdict to req's session, if it is still there; req is freed. */
static void
smtpd_kdf_answer(struct smtpd_kdf_req *req, int rc)
{
	struct smtpd_session *s;

	if ((s = req->s) != NULL) {
		s->auth_kdf = NULL;
		smtpd_set_state(s, SMTPD_CMD);
		smtpd_auth_verified(s, req->mech, req->user, rc);
		smtpd_session_kick(s);
	}
	free(req->user);
	free(req);
}
