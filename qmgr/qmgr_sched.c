/*
 * qmgr_sched.c - qmgr's scheduler: finds due recipients, builds one job
 * per message and next hop, and keeps the in-flight set.
 *
 * The sched index is ordered by time, so a scan stops at the first entry
 * in the future. Messages with a job in flight are skipped, which keeps the
 * in-memory state to the in-flight set alone.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "parse.h"
#include "qmgr.h"
#include "smtpcmd.h"
#include "xalloc.h"

#define QMGR_INFLIGHT_BUCKETS	1024
#define QMGR_SCAN_MAX_QIDS	256	/* messages picked per scan */

struct qmgr_inflight {
	struct qmgr_inflight	*next;
	char			 qid[QID_SIZE];
	unsigned		 jobs;
};

struct qmgr_scan {
	int64_t		 now;
	size_t		 want;		/* messages to pick */
	char		(*qids)[QID_SIZE];
	size_t		 nqids;
	int64_t		 next_due;	/* epoch s; -1 none */
};

static struct qmgr_inflight *qmgr_inflight[QMGR_INFLIGHT_BUCKETS];
static int64_t qmgr_next_due_mono = -1;

static unsigned qmgr_hash(const char *);
static struct qmgr_inflight **qmgr_inflight_find(const char *);
static int qmgr_scan_cb(const char *, uint32_t, int64_t, void *);
static void qmgr_build_jobs(struct qstore_txn *, const char *, int64_t);
static void qmgr_nexthop_key(const char *, char *, size_t);

static unsigned
qmgr_hash(const char *qid)
{
	unsigned h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return h % QMGR_INFLIGHT_BUCKETS;
}

static struct qmgr_inflight **
qmgr_inflight_find(const char *qid)
{
	struct qmgr_inflight **pp;

	for (pp = &qmgr_inflight[qmgr_hash(qid)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (strcmp((*pp)->qid, qid) == 0)
			break;
	return pp;
}

int
qmgr_sched_in_flight(const char *qid)
{
	return *qmgr_inflight_find(qid) != NULL;
}

static void
qmgr_inflight_add(const char *qid)
{
	struct qmgr_inflight **pp = qmgr_inflight_find(qid), *f;

	if ((f = *pp) == NULL) {
		f = xcalloc(1, sizeof(*f));
		snprintf(f->qid, sizeof(f->qid), "%s", qid);
		*pp = f;
	}
	f->jobs++;
}

void
qmgr_sched_release(struct qmgr_job *job)
{
	struct qmgr_inflight **pp = qmgr_inflight_find(job->qid), *f;

	if ((f = *pp) == NULL)
		return;
	if (--f->jobs == 0) {
		*pp = f->next;
		free(f);
	}
}

void
qmgr_job_free(struct qmgr_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->nrcpts; i++)
		free(job->rcpts[i].address);
	free(job->rcpts);
	free(job->sender);
	free(job->dkim);
	free(job);
}

int64_t
qmgr_sched_next_due(void)
{
	return qmgr_next_due_mono;
}

static int
qmgr_scan_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct qmgr_scan *sc = arg;

	(void)index;
	if (when > sc->now) {
		sc->next_due = when;
		return 1;		/* the rest is later still */
	}
	if (qmgr_sched_in_flight(qid))
		return 0;
	if (sc->nqids > 0 && strcmp(sc->qids[sc->nqids - 1], qid) == 0)
		return 0;
	for (size_t i = 0; i < sc->nqids; i++)
		if (strcmp(sc->qids[i], qid) == 0)
			return 0;
	if (sc->nqids == sc->want)
		return 1;
	snprintf(sc->qids[sc->nqids++], QID_SIZE, "%s", qid);
	return 0;
}

/*
 * The next hop a recipient domain maps to: the transport entry when one
 * matches (so every domain sent to the same relay shares jobs), else the
 * domain itself.
 */
static void
qmgr_nexthop_key(const char *domain, char *key, size_t size)
{
	const struct cfg_transport *t = cfg_transport_lookup(qmgr_cfg, domain);

	if (t != NULL)
		snprintf(key, size, "%s[%s]:%u", t->no_mx ? "" : "mx:",
		    t->host, (unsigned)t->port);
	else
		snprintf(key, size, "%s", domain);
}

struct qmgr_collect {
	int64_t			 now;
	struct qstore_rcpt	*due;
	size_t			 ndue;
};

static int
qmgr_collect_cb(const struct qstore_rcpt *r, void *arg)
{
	struct qmgr_collect *c = arg;

	if ((r->state == QSTORE_PENDING || r->state == QSTORE_DEFERRED) &&
	    r->next_attempt <= c->now) {
		c->due = xreallocarray(c->due, c->ndue + 1, sizeof(*c->due));
		c->due[c->ndue++] = *r;
	}
	return 0;
}

/* Turns one message's due recipients into jobs, one per next hop. */
static void
qmgr_build_jobs(struct qstore_txn *txn, const char *qid, int64_t now)
{
	struct qstore_msginfo m;
	struct qmgr_collect c = { now, NULL, 0 };
	char *used, key[QMGR_NEXTHOP_MAX + 1], okey[QMGR_NEXTHOP_MAX + 1];
	char dom[SMTP_DOMAIN_MAX + 1];
	size_t i, k;

	if (qstore_msg_get(txn, qid, &m) == -1) {
		log_warn("%s: scheduled but no message record", qid);
		return;
	}
	(void)qstore_rcpt_iter(txn, qid, qmgr_collect_cb, &c);
	if (c.ndue == 0)
		return;
	used = xcalloc(c.ndue, 1);
	for (i = 0; i < c.ndue; i++) {
		struct qmgr_job *job;

		if (used[i])
			continue;
		smtpcmd_addr_domain(c.due[i].address, dom, sizeof(dom));
		qmgr_nexthop_key(dom, key, sizeof(key));
		job = xcalloc(1, sizeof(*job));
		snprintf(job->qid, sizeof(job->qid), "%s", qid);
		snprintf(job->domain, sizeof(job->domain), "%s", dom);
		job->sender = xstrdup(m.sender);
		job->arrival = m.arrival;
		job->arrival_us = m.arrival_us;
		for (k = i; k < c.ndue && job->nrcpts < QMGR_JOB_RCPTS_MAX;
		    k++) {
			if (used[k])
				continue;
			if (k != i) {
				smtpcmd_addr_domain(c.due[k].address, dom,
				    sizeof(dom));
				qmgr_nexthop_key(dom, okey, sizeof(okey));
				if (strcmp(key, okey) != 0)
					continue;
			}
			used[k] = 1;
			job->rcpts = xreallocarray(job->rcpts, job->nrcpts + 1,
			    sizeof(*job->rcpts));
			job->rcpts[job->nrcpts].index = c.due[k].index;
			job->rcpts[job->nrcpts].address =
			    xstrdup(c.due[k].address);
			job->rcpts[job->nrcpts].old_next =
			    c.due[k].next_attempt;
			job->rcpts[job->nrcpts].done = 0;
			job->nrcpts++;
		}
		qmgr_inflight_add(qid);
		qmgr_deliver_start(job);
	}
	free(used);
	free(c.due);
}

void
qmgr_sched_scan(void)
{
	struct qmgr_scan sc;
	struct qstore_txn *txn;
	struct vbuf *why = vbuf_create(0);
	size_t free_slots = qmgr_deliver_free_slots();

	memset(&sc, 0, sizeof(sc));
	sc.now = time(NULL);
	sc.next_due = -1;
	sc.want = free_slots < QMGR_SCAN_MAX_QIDS ? free_slots :
	    QMGR_SCAN_MAX_QIDS;
	sc.qids = xcalloc(sc.want + 1, QID_SIZE);
	/* A read transaction, closed before any delivery starts. */
	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) == NULL) {
		log_warn("queue scan: %s", why->data);
		goto done;
	}
	(void)qstore_sched_iter(txn, qmgr_scan_cb, &sc);
	for (size_t i = 0; i < sc.nqids; i++)
		qmgr_build_jobs(txn, sc.qids[i], sc.now);
	qstore_txn_abort(txn);
	qmgr_next_due_mono = sc.next_due < 0 ? -1 :
	    ev_now_ms() + (sc.next_due - sc.now) * 1000;
done:
	free(sc.qids);
	vbuf_free(why);
}

/* relayq -f: every deferred recipient becomes due now. */
struct qmgr_flush_ctx {
	int64_t		 now;
	char		(*keys)[QID_SIZE + 12];
	size_t		 n;
};

static int
qmgr_flush_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct qmgr_flush_ctx *f = arg;

	if (when <= f->now)
		return 0;
	f->keys = xreallocarray(f->keys, f->n + 1, sizeof(*f->keys));
	snprintf(f->keys[f->n++], QID_SIZE + 12, "%s:%" PRIu32, qid, index);
	return 0;
}

/* Makes recipients [from, to) of f due now in one transaction. */
static int
qmgr_flush_chunk(struct qmgr_flush_ctx *f, size_t from, size_t to,
    struct vbuf *why)
{
	struct qstore_txn *txn;
	struct qstore_rcpt r;
	uint64_t idx;
	int64_t old;
	size_t i;
	int n = 0;

	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		return -1;
	for (i = from; i < to; i++) {
		char qid[QID_SIZE], *colon = strchr(f->keys[i], ':');

		if (colon == NULL || (size_t)(colon - f->keys[i]) != QID_LEN ||
		    parse_u64(colon + 1, 0, UINT32_MAX, &idx) == -1)
			continue;
		memcpy(qid, f->keys[i], QID_LEN);
		qid[QID_LEN] = '\0';
		if (qstore_rcpt_get(txn, qid, (uint32_t)idx, &r) == -1)
			continue;
		old = r.next_attempt;
		r.next_attempt = f->now;
		if (qstore_rcpt_put(txn, &r, old) == -1) {
			/* LMDB has marked the transaction bad. */
			qstore_txn_abort(txn);
			vbuf_setf(why, "update failed");
			return -1;
		}
		n++;
	}
	if (qstore_txn_commit(txn, why) == -1)
		return -1;
	return n;
}

/*
 * relayq -f: every deferred recipient becomes due now. Small transactions,
 * each of which must fit in the free space a nearly full map still has
 * (smtpd leaves qmgr headroom, not a whole queue's); a chunk that does not
 * fit is retried a recipient at a time.
 */
int
qmgr_flush(struct vbuf *why)
{
	struct qmgr_flush_ctx f = { time(NULL), NULL, 0 };
	struct qstore_txn *txn;
	size_t i, end, k;
	int n = 0, got, failed = 0;

	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) == NULL)
		return -1;
	(void)qstore_sched_iter(txn, qmgr_flush_cb, &f);
	qstore_txn_abort(txn);
	for (i = 0; i < f.n; i = end) {
		end = i + QMGR_TXN_UPDATES < f.n ? i + QMGR_TXN_UPDATES : f.n;
		if ((got = qmgr_flush_chunk(&f, i, end, why)) >= 0) {
			n += got;
			continue;
		}
		for (k = i; k < end; k++) {
			if ((got = qmgr_flush_chunk(&f, k, k + 1, why)) >= 0)
				n += got;
			else
				failed++;
		}
	}
	free(f.keys);
	qmgr_want_scan();
	if (failed > 0)
		log_warn("flush: %d recipient(s) could not be updated: %s",
		    failed, why->data);
	return failed > 0 && n == 0 ? -1 : n;
}

/*
 * Start-up reconciliation: a file without records was never acknowledged
 * and goes after a grace period; records whose file is gone are failed and
 * removed; stale tmp/ files are cleaned up.
 */
struct qmgr_orphan {
	char		(*qids)[QID_SIZE];
	size_t		 n;
};

static int
qmgr_file_cb(const char *qid, void *arg)
{
	struct qmgr_orphan *o = arg;

	o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
	snprintf(o->qids[o->n++], QID_SIZE, "%s", qid);
	return 0;
}

static int
qmgr_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct qmgr_orphan *o = arg;
	char path[PATH_MAX];

	if (qstore_file_path(path, sizeof(path), qmgr_cfg->queue_directory,
	    m->qid) == 0 && access(path, F_OK) == -1 && errno == ENOENT) {
		o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
		snprintf(o->qids[o->n++], QID_SIZE, "%s", m->qid);
	}
	return 0;
}

void
qmgr_reconcile(void)
{
	struct qmgr_orphan files = { NULL, 0 }, lost = { NULL, 0 };
	struct qstore_txn *txn;
	struct qstore_msginfo m;
	struct vbuf *why = vbuf_create(0);
	char path[PATH_MAX];
	struct stat st;
	time_t now = time(NULL);
	size_t i;

	if ((i = (size_t)qstore_tmp_clean(qmgr_cfg->queue_directory,
	    QMGR_ORPHAN_GRACE)) > 0)
		log_info("removed %zu stale file(s) from tmp/", i);
	if ((i = (size_t)qstore_file_rehash(qmgr_cfg->queue_directory)) > 0)
		log_info("moved %zu queue file(s) to their msg/ directory", i);
	(void)qstore_file_iter(qmgr_cfg->queue_directory, qmgr_file_cb,
	    &files);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		log_fatal("reconcile: %s", why->data);
	for (i = 0; i < files.n; i++) {
		if (qstore_msg_get(txn, files.qids[i], &m) == 0 ||
		    qstore_errno() != QSTORE_ERR_NOTFOUND)
			continue;
		if (qstore_file_path(path, sizeof(path),
		    qmgr_cfg->queue_directory, files.qids[i]) == 0 &&
		    stat(path, &st) == 0 && now - st.st_mtime >
		    QMGR_ORPHAN_GRACE) {
			log_info("%s: removed: queue file without records "
			    "(never acknowledged)", files.qids[i]);
			(void)qstore_file_remove(qmgr_cfg->queue_directory,
			    files.qids[i]);
		}
	}
	(void)qstore_msg_iter(txn, qmgr_msg_cb, &lost);
	for (i = 0; i < lost.n; i++) {
		log_warn("%s: queue file missing; recipients dropped",
		    lost.qids[i]);
		(void)qstore_msg_delete(txn, lost.qids[i]);
	}
	if (qstore_txn_commit(txn, why) == -1)
		log_fatal("reconcile: %s", why->data);
	free(files.qids);
	free(lost.qids);
	vbuf_free(why);
}
