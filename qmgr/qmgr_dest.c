/*
 * qmgr_dest.c - destinations: the pending jobs per next hop, and the
 * limits that pace each one (shaping.file, lib/shaping).
 *
 * Modelled on Postfix's qmgr_queue.c: a destination is a next-hop key
 * (the recipient domain, or the transport entry's next hop) with its own
 * FIFO of jobs waiting for a connection, the jobs it has at smtp, a
 * connection limit (max_connections) and token buckets for its message
 * rate and its rate of new connections. The dispatcher (qmgr_dest_take) goes round the destinations that
 * have a job and room, one job each turn, so a destination at its limit,
 * or one with a long backlog, holds only its own mail; smtp.processes
 * stays the cap over all of them (qmgr_deliver.c).
 *
 * A destination lives while it has jobs, pending or at smtp, and, when
 * rate-limited, until its buckets are full again (forgetting it earlier
 * would reset a bucket and let a burst through).
 *
 * A destination whose attempts set up no session (refused, timed out, a
 * 421 greeting) is served by a narrower window, halved at each such
 * failure and widened by one at each success, as Postfix's destination
 * concurrency window; QMGR_DEST_DEAD_AFTER of them in a row make it dead
 * for its retry_interval (else queue.min_backoff): its pending jobs and
 * those that come meanwhile are deferred at once with "delivery
 * temporarily suspended" and its last failure, instead of each taking an
 * smtp process through a connection timeout. After that one job at a
 * time probes it; the first session set up brings it back.
 *
 * A new connection, which takes a token of max_connection_rate, is one
 * made when smtp holds no idle session to the destination that it may
 * reuse (qmgr_deliver_held's reusable: under max_messages_per_connection
 * as far as qmgr counts). A session smtp had to open again on its own (the
 * server closed the cached one; smtp's own SMTP_CACHE_USES_MAX) is not
 * seen here: see shaping.yaml(5), BUGS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_DEST_BUCKETS	1024

static struct qmgr_dest *qmgr_dest_hash[QMGR_DEST_BUCKETS];
static struct qmgr_dest *qmgr_dest_all;		/* round-robin ring order */
static struct qmgr_dest *qmgr_dest_cursor;	/* served last */
static size_t qmgr_dest_count;
static size_t qmgr_npending;
static struct shaping *qmgr_shaping;

static unsigned qmgr_dest_hashkey(const char *);
static struct qmgr_dest *qmgr_dest_get(const char *, int);
static void qmgr_dest_limits(struct qmgr_dest *, int64_t);
static void qmgr_dest_gc(struct qmgr_dest *, int64_t);
static int qmgr_dest_dead(const struct qmgr_dest *, int64_t);
static void qmgr_dest_defer_job(const struct qmgr_dest *,
    struct qmgr_job *);
static void qmgr_dest_suspend(struct qmgr_dest *, int64_t);

static unsigned
qmgr_dest_hashkey(const char *key)
{
	unsigned h = 5381;

	for (; *key != '\0'; key++)
		h = h * 33 + (unsigned char)*key;
	return h % QMGR_DEST_BUCKETS;
}

void
qmgr_dest_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	/* master checked the file; a change since is reported here. */
	if ((qmgr_shaping = shaping_load(cfg->shaping_file, why)) == NULL) {
		log_warn("%s; delivery is not shaped", why->data);
		qmgr_shaping = shaping_load(NULL, NULL);
	} else if (cfg->shaping_file != NULL)
		log_info("shaping: %s: %zu destination entr%s",
		    cfg->shaping_file, qmgr_shaping->nentries,
		    qmgr_shaping->nentries == 1 ? "y" : "ies");
	vbuf_free(why);
}

static void
qmgr_dest_limits(struct qmgr_dest *d, int64_t now)
{
	const char *entry = "default";

	/* Before qmgr_dest_init (unit tests): no limits. */
	if (qmgr_shaping != NULL)
		shaping_lookup(qmgr_shaping, d->key, &d->lim, &entry);
	snprintf(d->entry, sizeof(d->entry), "%s", entry);
	shaping_bucket_init(&d->bucket, d->lim.rate_count,
	    d->lim.rate_interval, now);
	shaping_bucket_init(&d->conn_bucket, d->lim.conn_rate_count,
	    d->lim.conn_rate_interval, now);
}

/* ms until both of d's buckets are full: 0 when neither holds it back. */
static int64_t
qmgr_dest_wait(const struct qmgr_dest *d, int64_t now)
{
	int64_t w = shaping_bucket_wait(&d->bucket, now);
	int64_t cw = shaping_bucket_wait(&d->conn_bucket, now);

	return w > cw ? w : cw;
}

/* The destination for key; created when create is set. */
static struct qmgr_dest *
qmgr_dest_get(const char *key, int create)
{
	unsigned h = qmgr_dest_hashkey(key);
	struct qmgr_dest *d, **pp;

	for (d = qmgr_dest_hash[h]; d != NULL; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	if (!create)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->tail = &d->head;
	qmgr_dest_limits(d, ev_now_ms());
	d->hnext = qmgr_dest_hash[h];
	qmgr_dest_hash[h] = d;
	/* At the end of the ring: destinations are served as they came. */
	for (pp = &qmgr_dest_all; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = d;
	qmgr_dest_count++;
	return d;
}

/* Forgets d when nothing is left to remember about it. */
static void
qmgr_dest_gc(struct qmgr_dest *d, int64_t now)
{
	struct qmgr_dest **pp;

	if (d->head != NULL || d->inflight > 0 || qmgr_dest_wait(d, now) > 0)
		return;
	/* A failing site's streak and window outlive its jobs. */
	if (d->fail_streak > 0 && now - d->last_fail < QMGR_DEST_FAIL_MEMORY_MS)
		return;
	for (pp = &qmgr_dest_hash[qmgr_dest_hashkey(d->key)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	for (pp = &qmgr_dest_all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (qmgr_dest_cursor == d)
		qmgr_dest_cursor = NULL;
	qmgr_dest_count--;
	free(d);
}

void
qmgr_job_queue(struct qmgr_job *job)
{
	struct qmgr_dest *d = qmgr_dest_get(job->nexthop, 1);

	if (qmgr_dest_dead(d, ev_now_ms())) {
		qmgr_dest_defer_job(d, job);
		return;
	}
	job->next = NULL;
	*d->tail = job;
	d->tail = &job->next;
	d->npending++;
	qmgr_npending++;
}

/* Sent again after a lost connection: it goes before the others. */
void
qmgr_job_requeue(struct qmgr_job *job)
{
	struct qmgr_dest *d = qmgr_dest_get(job->nexthop, 1);

	job->next = d->head;
	d->head = job;
	if (d->tail == &d->head)
		d->tail = &job->next;
	d->npending++;
	qmgr_npending++;
}

size_t
qmgr_job_npending(void)
{
	return qmgr_npending;
}

size_t
qmgr_job_cancel_pending(const char *qid)
{
	struct qmgr_dest *d, *dnext;
	struct qmgr_job **pp, *job;
	size_t n = 0;

	for (d = qmgr_dest_all; d != NULL; d = dnext) {
		dnext = d->next;
		d->tail = &d->head;
		for (pp = &d->head; (job = *pp) != NULL; ) {
			if (strcmp(job->qid, qid) != 0) {
				d->tail = &job->next;
				pp = &job->next;
				continue;
			}
			*pp = job->next;
			d->npending--;
			qmgr_npending--;
			qmgr_job_free(job);
			n++;
		}
		qmgr_dest_gc(d, ev_now_ms());
	}
	return n;
}

/*
 * Whether d may start one more job now: a session smtp already holds to
 * it (held) is reused without a new connection; else it needs a
 * connection under max_connections. And a token of its rate.
 */
static int
qmgr_dest_room(const struct qmgr_dest *d, unsigned held)
{
	if (d->head == NULL)
		return 0;
	if (held == 0 && d->lim.max_connections != 0 &&
	    d->inflight >= d->lim.max_connections)
		return 0;
	/* Narrowed by site failures; a held session is a working one. */
	if (held == 0 && d->window != 0 && d->inflight >= d->window)
		return 0;
	return 1;
}

static int
qmgr_dest_dead(const struct qmgr_dest *d, int64_t now)
{
	return d->dead_until != 0 && now < d->dead_until;
}

/*
 * Defers every recipient of job, which never reaches smtp, with d's last
 * failure; logged as smtp logs a deferral, so log tools and relayctl log
 * see one line per recipient and attempt as usual.
 */
static void
qmgr_dest_defer_job(const struct qmgr_dest *d, struct qmgr_job *job)
{
	char why[QMGR_DEST_REASON_MAX + 64];
	int64_t delay = (int64_t)time(NULL) - job->arrival;

	(void)snprintf(why, sizeof(why), "delivery temporarily suspended: %s",
	    d->reason);
	for (size_t i = 0; i < job->nrcpts; i++) {
		if (job->rcpts[i].done)
			continue;
		qmgr_job_result(&job->rcpts[i], QSTORE_DEFERRED, "4.4.1", why);
		log_info("%s: to=<%s>, relay=none, delay=%" PRId64
		    ", delays=%" PRId64 "/0/0/0, dsn=4.4.1, status=deferred (%s)",
		    job->qid, log_safe(job->rcpts[i].address),
		    delay < 0 ? 0 : delay, delay < 0 ? 0 : delay,
		    log_safe(why));
	}
	qmgr_job_set_relay(job, "none");
	qmgr_job_done(job);
}

/* d is dead until its retry interval has passed: its jobs are deferred. */
static void
qmgr_dest_suspend(struct qmgr_dest *d, int64_t now)
{
	struct qmgr_job *job;
	int64_t secs = d->lim.retry_interval > 0 ? d->lim.retry_interval :
	    qmgr_cfg->queue_min_backoff;

	if (secs < 1)
		secs = 1;
	d->dead_until = now + secs * 1000;
	log_info("%s: delivery temporarily suspended for %" PRId64 "s after "
	    "%u attempts in a row that set up no session: %s", d->key, secs,
	    d->fail_streak, log_safe(d->reason));
	while ((job = d->head) != NULL) {
		d->head = job->next;
		d->npending--;
		qmgr_npending--;
		qmgr_dest_defer_job(d, job);
	}
	d->tail = &d->head;
}

void
qmgr_dest_outcome(const struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;
	const char *why = NULL;
	int64_t now = ev_now_ms();
	int deferred = 0;
	unsigned half;

	if (d == NULL)
		return;
	if (!job->site_fail) {
		/* The server answered: the site is up. */
		d->fail_streak = 0;
		d->dead_until = 0;
		if (d->window != 0 && ++d->window >= qmgr_cfg->smtp_processes)
			d->window = 0;
		return;
	}
	for (size_t i = 0; i < job->nrcpts && !deferred; i++) {
		const struct qmgr_rcpt *r = &job->rcpts[i];

		if (!r->done || r->status == QSTORE_DEFERRED) {
			deferred = 1;
			why = r->done ? r->reply : NULL;
		}
	}
	if (!deferred)
		return;
	if (d->fail_streak > 0 && now - d->last_fail >= QMGR_DEST_FAIL_MEMORY_MS)
		d->fail_streak = 0;
	d->fail_streak++;
	d->last_fail = now;
	(void)snprintf(d->reason, sizeof(d->reason), "%s",
	    why != NULL && *why != '\0' ? why : "no session could be set up");
	/* This job is still counted in inflight. */
	half = d->inflight / 2;
	d->window = half > 0 ? half : 1;
	if (d->fail_streak >= QMGR_DEST_DEAD_AFTER && !qmgr_dest_dead(d, now))
		qmgr_dest_suspend(d, now);
}

/*
 * Takes a token of d's message rate and, for a new connection, one of its
 * connection rate: both or neither.
 */
static int
qmgr_dest_take_tokens(struct qmgr_dest *d, int new_conn, int64_t now)
{
	if (!shaping_bucket_take(&d->bucket, now))
		return 0;
	if (new_conn && !shaping_bucket_take(&d->conn_bucket, now)) {
		shaping_bucket_refund(&d->bucket);
		return 0;
	}
	return 1;
}

struct qmgr_job *
qmgr_dest_take(unsigned (*held)(const char *key, unsigned *reusable))
{
	struct qmgr_dest *d, *start;
	struct qmgr_job *job;
	int64_t now = ev_now_ms();
	unsigned nheld, reusable;

	if (qmgr_dest_all == NULL)
		return NULL;
	/* Round the ring once, starting after the destination served last. */
	start = qmgr_dest_cursor != NULL && qmgr_dest_cursor->next != NULL ?
	    qmgr_dest_cursor->next : qmgr_dest_all;
	d = start;
	do {
		nheld = held(d->key, &reusable);
		if (qmgr_dest_room(d, nheld) &&
		    qmgr_dest_take_tokens(d, reusable == 0, now)) {
			job = d->head;
			if ((d->head = job->next) == NULL)
				d->tail = &d->head;
			job->next = NULL;
			d->npending--;
			qmgr_npending--;
			d->inflight++;
			d->sent++;
			job->dest = d;
			job->new_conn = reusable == 0;
			qmgr_dest_cursor = d;
			return job;
		}
		d = d->next != NULL ? d->next : qmgr_dest_all;
	} while (d != start);
	return NULL;
}

void
qmgr_dest_untake(struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;

	job->dest = NULL;
	d->inflight--;
	d->sent--;
	shaping_bucket_refund(&d->bucket);
	if (job->new_conn)
		shaping_bucket_refund(&d->conn_bucket);
	qmgr_job_requeue(job);
}

void
qmgr_dest_release(struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;

	if (d == NULL)
		return;
	job->dest = NULL;
	d->inflight--;
	qmgr_dest_gc(d, ev_now_ms());
}

size_t
qmgr_dest_ready(unsigned (*held)(const char *key, unsigned *reusable))
{
	struct qmgr_dest *d;
	size_t n = 0, room;
	int64_t now = ev_now_ms();
	unsigned nheld, reusable;

	for (d = qmgr_dest_all; d != NULL; d = d->next) {
		nheld = held(d->key, &reusable);
		if (!qmgr_dest_room(d, nheld) ||
		    shaping_bucket_wait(&d->bucket, now) > 0 ||
		    (reusable == 0 &&
		    shaping_bucket_wait(&d->conn_bucket, now) > 0))
			continue;
		room = d->lim.max_connections == 0 ? d->npending :
		    d->lim.max_connections > d->inflight ?
		    d->lim.max_connections - d->inflight : 1;
		n += room < d->npending ? room : d->npending;
	}
	return n;
}

int64_t
qmgr_dest_next_ms(void)
{
	struct qmgr_dest *d, *dnext;
	int64_t now = ev_now_ms(), best = -1, w, cw;

	for (d = qmgr_dest_all; d != NULL; d = dnext) {
		dnext = d->next;
		if (d->head == NULL) {
			qmgr_dest_gc(d, now);
			continue;
		}
		/*
		 * Either bucket may be what holds it back (which one depends
		 * on whether a session is held by then): the earlier wait.
		 */
		w = shaping_bucket_wait(&d->bucket, now);
		cw = shaping_bucket_wait(&d->conn_bucket, now);
		if (w == 0 || (cw > 0 && cw < w))
			w = cw;
		if (w > 0 && (best < 0 || w < best))
			best = w;
	}
	return best;
}

const char *
qmgr_dest_state(const struct qmgr_dest *d, unsigned held, unsigned reusable)
{
	if (qmgr_dest_dead(d, ev_now_ms()))
		return "dead";
	if (d->head == NULL)
		return "normal";
	if (held == 0 && ((d->lim.max_connections != 0 &&
	    d->inflight >= d->lim.max_connections) ||
	    (d->window != 0 && d->inflight >= d->window)))
		return "at-limit";
	if (shaping_bucket_wait(&d->bucket, ev_now_ms()) > 0 ||
	    (reusable == 0 &&
	    shaping_bucket_wait(&d->conn_bucket, ev_now_ms()) > 0))
		return "pacing";
	return "normal";
}

int
qmgr_dest_walk(int (*fn)(const struct qmgr_dest *, void *), void *arg)
{
	const struct qmgr_dest *d;

	for (d = qmgr_dest_all; d != NULL; d = d->next)
		if (fn(d, arg) != 0)
			return -1;
	return 0;
}

const struct shaping *
qmgr_dest_shaping(void)
{
	return qmgr_shaping;
}

int64_t
qmgr_dest_retry_interval(const char *key)
{
	struct shaping_limits lim;
	const char *entry;

	if (qmgr_shaping == NULL)
		return 0;
	shaping_lookup(qmgr_shaping, key, &lim, &entry);
	return lim.retry_interval;
}
