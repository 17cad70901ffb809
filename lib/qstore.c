/*
 * qstore.c - the queue store's LMDB index: environment, transactions,
 * records and the group commit.
 *
 * See qstore.h for the layout and who writes what; qfile.c holds the
 * message files and counter.c the counters. Crash-safety order for a
 * batch of new messages: each file written in msg/ (qfile.c), every file
 * fsync'd, every msg/<h>/ touched fsync'd, then one LMDB transaction
 * (qstore_commit). A file without records was never acknowledged (qmgr
 * removes it after a grace period); records always have their file.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "attr.h"
#include "log.h"
#include "outbox.h"
#include "parse.h"
#include "qstore.h"
#include "qstore_int.h"
#include "xalloc.h"

/* Per thread: smtpd commits on a thread of its own (qstore_threads). */
static _Thread_local enum qstore_err qstore_last_err;

static void qstore_rkey(unsigned char *, const char *, uint32_t);
static void qstore_skey(unsigned char *, int64_t, const char *, uint32_t);
static int qstore_rcpt_decode(const MDB_val *, const MDB_val *,
    struct qstore_rcpt *);
static int qstore_msg_decode(const MDB_val *, const MDB_val *,
    struct qstore_msginfo *);
static void qstore_rcpt_encode(struct vbuf *, const struct qstore_rcpt *);
static int qstore_rcpt_scheduled(const struct qstore_rcpt *);
static void qstore_msg_encode(struct vbuf *, const struct qstore_msginfo *);
static int qstore_sched_call(const MDB_val *, qstore_sched_cb *, void *);
static int qstore_hexval(char);
static int qstore_select_rcpt_cb(const struct qstore_rcpt *, void *);
static void qstore_end(struct qstore *);

enum qstore_err
qstore_errno(void)
{
	return qstore_last_err;
}

const char *
qstore_state_name(enum qstore_rcpt_state s)
{
	switch (s) {
	case QSTORE_PENDING:
		return "pending";
	case QSTORE_DEFERRED:
		return "deferred";
	case QSTORE_DELIVERED:
		return "delivered";
	case QSTORE_FAILED:
		return "failed";
	}
	return "unknown";
}

int
qstore_fail(enum qstore_err e, struct vbuf *why, const char *fmt, ...)
{
	va_list ap;

	qstore_last_err = e;
	if (why != NULL) {
		vbuf_reset(why);
		va_start(ap, fmt);
		(void)vbuf_vaddf(why, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
qstore_mdb_fail(int rc, struct vbuf *why, const char *what)
{
	enum qstore_err e = QSTORE_ERR_IO;

	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		e = QSTORE_ERR_FULL;
	else if (rc == MDB_NOTFOUND)
		e = QSTORE_ERR_NOTFOUND;
	else if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
		e = QSTORE_ERR_CORRUPT;
	return qstore_fail(e, why, "%s: %s", what, mdb_strerror(rc));
}

int
qstore_path(char *buf, size_t size, const char *a, const char *b,
    const char *c)
{
	int n;

	if (c != NULL)
		n = snprintf(buf, size, "%s/%s/%s", a, b, c);
	else
		n = snprintf(buf, size, "%s/%s", a, b);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/*
 * The directory under msg/: the last hex digit of the id's seconds plus
 * the digit of the process that made it (qid.h), modulo 16. The messages
 * of one group commit mostly share one directory and one directory fsync
 * (the ids' random digits would spread them over all 16); processes
 * writing at the same moment mostly use different directories, so that
 * their creates and links do not wait on one directory's lock; and a
 * long queue still spreads over 16.
 */
int
qstore_hash(const char *qid)
{
	return (qstore_hexval(qid[QSTORE_HASH_DIGIT]) +
	    qstore_hexval(qid[QSTORE_PROC_DIGIT])) % QSTORE_NHASH;
}

static int
qstore_hexval(char c)
{
	return c >= 'A' ? c - 'A' + 10 : c - '0';
}

void
qstore_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
qstore_create_dirs(const char *qdir, uid_t uid, gid_t gid, struct vbuf *why)
{
	static const char *subs[] = { "tmp", "msg", "corrupt", "private",
	    "db", "cred", "free" };
	char path[PATH_MAX], sub[8];
	size_t i;

	if (mkdir(qdir, 0755) == -1 && errno != EEXIST)
		return qstore_fail(QSTORE_ERR_IO, why, "mkdir %s: %s", qdir,
		    strerror(errno));
	if (chown(qdir, uid, gid) == -1)
		return qstore_fail(QSTORE_ERR_IO, why, "chown %s: %s", qdir,
		    strerror(errno));
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (qstore_path(path, sizeof(path), qdir, subs[i], NULL) == -1)
			return qstore_fail(QSTORE_ERR_IO, why, "%s: path too "
			    "long", qdir);
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return qstore_fail(QSTORE_ERR_IO, why, "mkdir %s: %s",
			    path, strerror(errno));
		if (chown(path, uid, gid) == -1 || chmod(path, 0700) == -1)
			return qstore_fail(QSTORE_ERR_IO, why, "chown %s: %s",
			    path, strerror(errno));
	}
	for (i = 0; i < QSTORE_NHASH; i++) {
		snprintf(sub, sizeof(sub), "%X", (unsigned)i);
		if (qstore_path(path, sizeof(path), qdir, "msg", sub) == -1)
			return qstore_fail(QSTORE_ERR_IO, why, "%s: path too "
			    "long", qdir);
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return qstore_fail(QSTORE_ERR_IO, why, "mkdir %s: %s",
			    path, strerror(errno));
		if (chown(path, uid, gid) == -1)
			return qstore_fail(QSTORE_ERR_IO, why, "chown %s: %s",
			    path, strerror(errno));
	}
	return 0;
}

struct qstore *
qstore_open(const struct cfg *cfg, struct vbuf *why)
{
	struct qstore *qs;
	MDB_txn *txn;
	char path[PATH_MAX], sub[8];
	int rc, i;

	qs = xcalloc(1, sizeof(*qs));
	qs->dir = xstrdup(cfg->queue_directory);
	for (i = 0; i < QSTORE_NHASH; i++)
		qs->hash_fd[i] = -1;
	qs->pool_seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	qs->pool_count = QSTORE_POOL_MAX;	/* count at the first retire */
	for (i = 0; i < QSTORE_NHASH; i++) {
		snprintf(sub, sizeof(sub), "%X", (unsigned)i);
		if (qstore_path(path, sizeof(path), qs->dir, "msg", sub) ==
		    -1 || (qs->hash_fd[i] = open(path, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			qstore_fail(QSTORE_ERR_IO, why, "open %s: %s", path,
			    strerror(errno));
			goto fail;
		}
	}
	if (qstore_path(path, sizeof(path), qs->dir, "db", NULL) == -1) {
		qstore_fail(QSTORE_ERR_IO, why, "queue path too long");
		goto fail;
	}
	if ((rc = mdb_env_create(&qs->env)) != 0) {
		qstore_mdb_fail(rc, why, "mdb_env_create");
		goto fail;
	}
	(void)mdb_env_set_maxdbs(qs->env, 8);
	(void)mdb_env_set_maxreaders(qs->env, 512);
	qs->map_size = cfg->queue_map_size;
	qs->admit_pct = 100 - QSTORE_HEADROOM_PCT;
	qs->outbox_max_events = cfg->outbox_max_events;
	qs->outbox_max_age = cfg->outbox_max_age;
	qs->outbox_max_share = cfg->outbox_max_share;
	if ((rc = mdb_env_set_mapsize(qs->env, cfg->queue_map_size)) != 0 ||
	    (rc = mdb_env_open(qs->env, path, MDB_NOTLS, 0600)) != 0) {
		qstore_mdb_fail(rc, why, path);
		goto fail;
	}
	/* qmgr may grow the map between the open and this (qstore_begin). */
	if ((rc = qstore_begin(qs, 0, &txn)) != 0) {
		qstore_mdb_fail(rc, why, "mdb_txn_begin");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "msg", MDB_CREATE, &qs->db_msg)) != 0 ||
	    (rc = mdb_dbi_open(txn, "rcpt", MDB_CREATE, &qs->db_rcpt)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sched", MDB_CREATE, &qs->db_sched)) !=
	    0 || (rc = mdb_dbi_open(txn, "counters", MDB_CREATE,
	    &qs->db_counters)) != 0 || (rc = mdb_dbi_open(txn, "events",
	    MDB_CREATE, &qs->db_events)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (rc != 0)
			mdb_txn_abort(txn);
		qstore_end(qs);
		qstore_mdb_fail(rc, why, "open databases");
		goto fail;
	}
	qstore_end(qs);
	return qs;
fail:
	qstore_close(qs);
	return NULL;
}

void
qstore_close(struct qstore *qs)
{
	if (qs == NULL)
		return;
	if (qs->env != NULL)
		mdb_env_close(qs->env);
	for (int i = 0; i < QSTORE_NHASH; i++)
		if (qs->hash_fd[i] != -1)
			close(qs->hash_fd[i]);
	if (qs->threads)
		(void)pthread_rwlock_destroy(&qs->map_lock);
	free(qs->pool);
	free(qs->dir);
	free(qs);
}

void
qstore_admit_reports(struct qstore *qs)
{
	qs->admit_pct = QSTORE_REPORT_ADMIT_PCT;
}

const char *
qstore_dir(const struct qstore *qs)
{
	return qs->dir;
}

int
qstore_reader_check(struct qstore *qs)
{
	int dead = 0;

	(void)mdb_reader_check(qs->env, &dead);
	return dead;
}

static void
qstore_rkey(unsigned char *k, const char *qid, uint32_t index)
{
	memcpy(k, qid, QID_LEN);
	k[QID_LEN] = (unsigned char)(index >> 24);
	k[QID_LEN + 1] = (unsigned char)(index >> 16);
	k[QID_LEN + 2] = (unsigned char)(index >> 8);
	k[QID_LEN + 3] = (unsigned char)index;
}

/* Big-endian time first, so a cursor walks the schedule in time order. */
static void
qstore_skey(unsigned char *k, int64_t when, const char *qid, uint32_t index)
{
	uint64_t t = when < 0 ? 0 : (uint64_t)when;

	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(t >> (56 - 8 * i));
	qstore_rkey(k + 8, qid, index);
}

static void
qstore_msg_encode(struct vbuf *out, const struct qstore_msginfo *m)
{
	attr_put_str(out, "sender", m->sender);
	attr_put_str(out, "client", m->client_addr);
	attr_put_str(out, "auth", m->auth_user);
	attr_put_num(out, "size", m->size);
	attr_put_int(out, "arrival", m->arrival);
	attr_put_int(out, "arrival_us", m->arrival_us);
	attr_put_num(out, "nrcpts", m->nrcpts);
	attr_put_num(out, "left", m->left);
	if (m->dsn_off)
		attr_put_num(out, "dsn_off", 1);
	/* Absent for the default pool, as in records of older versions. */
	if (m->pool[0] != '\0')
		attr_put_str(out, "pool", m->pool);
	/* Absent in the transactional lane: older records read as it. */
	if (m->bulk)
		attr_put_str(out, QSTORE_ATTR_LANE, QSTORE_LANE_BULK);
	/* Absent when not held: records of older versions read as not. */
	if (m->held != 0)
		attr_put_int(out, "held", m->held);
	attr_end(out);
}

/* Whether a recipient has a schedule entry (at its next_attempt). */
static int
qstore_rcpt_scheduled(const struct qstore_rcpt *r)
{
	return r->state == QSTORE_PENDING || r->state == QSTORE_DEFERRED ||
	    r->report != QSTORE_REPORT_NONE;
}

static void
qstore_rcpt_encode(struct vbuf *out, const struct qstore_rcpt *r)
{
	attr_put_str(out, "address", r->address);
	attr_put_num(out, "state", (uint64_t)r->state);
	attr_put_num(out, "attempts", r->attempts);
	attr_put_int(out, "next", r->next_attempt);
	attr_put_str(out, "dsn", r->dsn);
	attr_put_str(out, "reply", r->reply);
	/* The rest only when set: most records never need them. */
	if (r->notify != 0)
		attr_put_num(out, "notify", r->notify);
	if (r->class[0] != '\0')
		attr_put_str(out, "class", r->class);
	if (r->relay[0] != '\0')
		attr_put_str(out, "relay", r->relay);
	if (r->last_attempt != 0)
		attr_put_int(out, "last", r->last_attempt);
	if (r->report != QSTORE_REPORT_NONE)
		attr_put_num(out, "report", (uint64_t)r->report);
	if (r->warned)
		attr_put_num(out, "warned", 1);
	attr_end(out);
}

/*
 * Percentage of the map in use, counting pages on the free list as free
 * (mdb_stat -f). The free list is read only when the high-water mark is
 * at least "above": below that the answer is precise enough.
 */
static int
qstore_used_pct(struct qstore *qs, MDB_txn *txn, int above)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_cursor *c;
	MDB_val k, v;
	size_t total, used, freed = 0;

	if (mdb_env_info(qs->env, &info) != 0 || mdb_env_stat(qs->env, &st) !=
	    0 || st.ms_psize == 0 || qs->map_size < st.ms_psize)
		return 0;
	/* Of queue.map_size, not of a map that qmgr has grown. */
	total = qs->map_size / st.ms_psize;
	used = info.me_last_pgno + 1;
	if (used * 100 < total * (size_t)above)
		return (int)(used * 100 / total);
	if (mdb_cursor_open(txn, 0, &c) != 0)
		return (int)(used * 100 / total);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		if (v.mv_size >= sizeof(size_t))
			freed += *(const size_t *)v.mv_data;
	mdb_cursor_close(c);
	used = freed < used ? used - freed : 0;
	return (int)(used * 100 / total);
}

int
qstore_txn_used_pct(struct qstore_txn *t, int above)
{
	return qstore_used_pct(t->qs, t->txn, above);
}

int
qstore_commit(struct qstore *qs, struct qstore_new **msgs, size_t n,
    struct vbuf *why)
{
	unsigned char rkey[QSTORE_RKEY_LEN], skey[QSTORE_SKEY_LEN];
	int synced[QSTORE_NHASH] = { 0 };
	struct qstore_txn events_txn;
	struct stat st;
	struct vbuf *val;
	MDB_txn *txn;
	MDB_val k, v;
	size_t i, j;
	uint64_t dropped = 0;
	int rc;

	/*
	 * 1. Every file's bytes, then every directory touched. Done for the
	 * whole batch at once, the file system can commit them together
	 * (on ext4 the first fsync commits the journal for all of them).
	 */
	for (i = 0; i < n; i++) {
		struct qstore_new *qn = msgs[i];

		ASSERT(qn->finished && qn->fd != -1);
		/* Kept open: step 2 asks it whether it still has its name. */
		if (fsync(qn->fd) == -1)
			return qstore_fail(errno == ENOSPC ? QSTORE_ERR_FULL :
			    QSTORE_ERR_IO, why, "fsync %s: %s", qn->msg_path,
			    strerror(errno));
	}
	for (i = 0; i < n; i++) {
		int h = qstore_hash(msgs[i]->qid);

		if (synced[h])
			continue;
		if (fsync(qs->hash_fd[h]) == -1)
			return qstore_fail(QSTORE_ERR_IO, why, "fsync %s/msg/"
			    "%X: %s", qs->dir, (unsigned)h, strerror(errno));
		synced[h] = 1;
	}

	/* 2. One transaction for every message's records. */
	if ((rc = qstore_begin(qs, 0, &txn)) != 0)
		return qstore_mdb_fail(rc, why, "mdb_txn_begin");
	if (qstore_used_pct(qs, txn, qs->admit_pct) >= qs->admit_pct) {
		mdb_txn_abort(txn);
		qstore_end(qs);
		return qstore_fail(QSTORE_ERR_FULL, why, "queue database %s/db "
		    "has less than %d%% free (queue.map_size)", qs->dir,
		    100 - qs->admit_pct);
	}
	val = vbuf_create(0);
	for (i = 0; i < n; i++) {
		struct qstore_new *qn = msgs[i];
		struct qstore_rcpt r;

		/*
		 * Still named in msg/? qmgr's start-up reconciliation removes
		 * a file without records once it is an hour old, and a client
		 * can take that long over its data; it unlinks inside its own
		 * write transaction, so under this one the answer stands.
		 * Such a message gets no records: the client is told to try
		 * again (451), and nothing acknowledged is lost.
		 */
		if (fstat(qn->fd, &st) == -1 || st.st_nlink == 0) {
			qn->status = QSTORE_ERR_IO;
			continue;
		}
		/* Limits first: all of a message's charges fit, or none. */
		qn->status = QSTORE_ERR_OK;
		for (j = 0; j < qn->ncharges; j++) {
			uint64_t count;

			if (qstore_counter_get_txn(qs, txn, qn->charges[j].key,
			    qn->charges[j].window, &count) == -1) {
				rc = MDB_PANIC;
				goto fail;
			}
			if (count >= qn->charges[j].limit)
				qn->status = QSTORE_ERR_LIMIT;
		}
		if (qn->status != QSTORE_ERR_OK)
			continue;
		for (j = 0; j < qn->ncharges; j++) {
			if ((rc = qstore_counter_add_txn(qs, txn,
			    qn->charges[j].key, qn->charges[j].window, 1,
			    NULL)) != 0)
				goto fail;
		}
		vbuf_reset(val);
		qstore_msg_encode(val, &qn->info);
		k.mv_data = qn->qid;
		k.mv_size = QID_LEN;
		v.mv_data = val->data;
		v.mv_size = val->len;
		if ((rc = mdb_put(txn, qs->db_msg, &k, &v, MDB_NOOVERWRITE)) !=
		    0)
			goto fail;
		for (j = 0; j < qn->nrcpts; j++) {
			memset(&r, 0, sizeof(r));
			qstore_copy(r.address, sizeof(r.address),
			    qn->rcpts[j]);
			r.state = QSTORE_PENDING;
			r.next_attempt = qn->first_attempt > qn->info.arrival ?
			    qn->first_attempt : qn->info.arrival;
			r.notify = qn->notify != NULL ? qn->notify[j] : 0;
			vbuf_reset(val);
			qstore_rcpt_encode(val, &r);
			qstore_rkey(rkey, qn->qid, (uint32_t)j);
			k.mv_data = rkey;
			k.mv_size = sizeof(rkey);
			v.mv_data = val->data;
			v.mv_size = val->len;
			if ((rc = mdb_put(txn, qs->db_rcpt, &k, &v, 0)) != 0)
				goto fail;
			qstore_skey(skey, r.next_attempt, qn->qid, (uint32_t)j);
			k.mv_data = skey;
			k.mv_size = sizeof(skey);
			v.mv_data = NULL;
			v.mv_size = 0;
			if ((rc = mdb_put(txn, qs->db_sched, &k, &v, 0)) != 0)
				goto fail;
		}
		/* Its "accepted" event, true exactly when the records are. */
		if (qn->event != NULL) {
			events_txn.qs = qs;
			events_txn.txn = txn;
			events_txn.dropped = 0;
			if (outbox_put(&events_txn, qn->event, why) == -1) {
				vbuf_free(val);
				mdb_txn_abort(txn);
				qstore_end(qs);
				return -1;
			}
			dropped += events_txn.dropped;
		}
	}
	vbuf_free(val);
	rc = mdb_txn_commit(txn);
	qstore_end(qs);
	if (rc != 0)
		return qstore_mdb_fail(rc, why, "commit");
	qs->events_dropped += dropped;
	return 0;
fail:
	vbuf_free(val);
	mdb_txn_abort(txn);
	qstore_end(qs);
	return qstore_mdb_fail(rc, why, "insert");
}

int
qstore_new_charge(struct qstore_new *qn, const char *key, int64_t window,
    uint64_t limit)
{
	size_t n = strlen(key);

	if (qn->ncharges == QSTORE_CHARGES_MAX || n == 0 ||
	    n > QSTORE_COUNTER_KEY_MAX)
		return -1;
	memcpy(qn->charges[qn->ncharges].key, key, n + 1);
	qn->charges[qn->ncharges].window = window;
	qn->charges[qn->ncharges].limit = limit;
	qn->ncharges++;
	return 0;
}

void
qstore_new_event(struct qstore_new *qn, const struct outbox_event *ev)
{
	qn->event = ev;
}

void
qstore_new_first_attempt(struct qstore_new *qn, int64_t when)
{
	qn->first_attempt = when;
}

int
qstore_new_bulk(struct qstore_new *qn)
{
	static const char line[] = QSTORE_ENV_BULK;
	size_t n = sizeof(line) - 1, at = sizeof(QSTORE_ENV_VERSION) - 1;

	/* Only the envelope's first line is fixed: L= goes after it. */
	if (qn->fsize != 0 || qn->wbuf->len < at ||
	    memcmp(qn->wbuf->data, QSTORE_ENV_VERSION, at) != 0)
		return -1;
	if (!qn->info.bulk) {
		if (vbuf_add(qn->wbuf, line, n) == -1)
			return -1;
		memmove(qn->wbuf->data + at + n, qn->wbuf->data + at,
		    qn->wbuf->len - n - at);
		memcpy(qn->wbuf->data + at, line, n);
	}
	qn->info.bulk = 1;
	return 0;
}

enum qstore_err
qstore_new_status(const struct qstore_new *qn)
{
	return qn->status;
}

void
qstore_threads(struct qstore *qs)
{
	int rc;

	if (qs->threads)
		return;
	if ((rc = pthread_rwlock_init(&qs->map_lock, NULL)) != 0)
		log_panic("qstore: pthread_rwlock_init: %s", strerror(rc));
	qs->threads = 1;
}

/*
 * mdb_txn_begin, adopting a map that another process (qmgr, see
 * qstore_grow) has made larger. With qstore_threads(), the transaction
 * holds map_lock until qstore_end(), and the remap waits until no other
 * thread of this process is in a transaction (LMDB: mdb_env_set_mapsize
 * only while none is active). A thread holds one transaction at a time,
 * so it never waits for itself.
 */
int
qstore_begin(struct qstore *qs, unsigned flags, MDB_txn **txn)
{
	int rc;

	if (qs->threads)
		pthread_rwlock_rdlock(&qs->map_lock);
	rc = mdb_txn_begin(qs->env, NULL, flags, txn);
	if (rc == MDB_MAP_RESIZED) {
		if (qs->threads) {
			pthread_rwlock_unlock(&qs->map_lock);
			pthread_rwlock_wrlock(&qs->map_lock);
		}
		rc = mdb_env_set_mapsize(qs->env, 0);
		if (qs->threads) {
			pthread_rwlock_unlock(&qs->map_lock);
			pthread_rwlock_rdlock(&qs->map_lock);
		}
		if (rc == 0)
			rc = mdb_txn_begin(qs->env, NULL, flags, txn);
	}
	if (rc != 0)
		qstore_end(qs);
	return rc;
}

/* After the commit or abort of a transaction from qstore_begin. */
static void
qstore_end(struct qstore *qs)
{
	if (qs->threads)
		pthread_rwlock_unlock(&qs->map_lock);
}

int
qstore_grow(struct qstore *qs, uint64_t *new_size, struct vbuf *why)
{
	MDB_envinfo info;
	uint64_t limit = qs->map_size * QSTORE_GROW_LIMIT, step, size;
	int rc;

	if ((rc = mdb_env_info(qs->env, &info)) != 0)
		return qstore_mdb_fail(rc, why, "mdb_env_info");
	if (info.me_mapsize >= limit)
		return qstore_fail(QSTORE_ERR_FULL, why, "queue database %s/db "
		    "at %d times queue.map_size", qs->dir, QSTORE_GROW_LIMIT);
	step = qs->map_size / 4 < QSTORE_GROW_MIN ? QSTORE_GROW_MIN :
	    qs->map_size / 4;
	size = info.me_mapsize + step < limit ? info.me_mapsize + step :
	    limit;
	if (qs->threads)
		pthread_rwlock_wrlock(&qs->map_lock);
	rc = mdb_env_set_mapsize(qs->env, (size_t)size);
	if (qs->threads)
		pthread_rwlock_unlock(&qs->map_lock);
	if (rc != 0)
		return qstore_mdb_fail(rc, why, "mdb_env_set_mapsize");
	*new_size = size;
	return 0;
}

struct qstore_txn *
qstore_txn_begin(struct qstore *qs, int write, struct vbuf *why)
{
	struct qstore_txn *t;
	int rc;

	t = xcalloc(1, sizeof(*t));
	t->qs = qs;
	if ((rc = qstore_begin(qs, write ? 0 : MDB_RDONLY, &t->txn)) != 0) {
		free(t);
		qstore_mdb_fail(rc, why, "mdb_txn_begin");
		return NULL;
	}
	return t;
}

int
qstore_txn_commit(struct qstore_txn *t, struct vbuf *why)
{
	struct qstore *qs = t->qs;
	uint64_t dropped = t->dropped;
	int rc = mdb_txn_commit(t->txn);

	qstore_end(qs);
	free(t);
	if (rc != 0)
		return qstore_mdb_fail(rc, why, "commit");
	qs->events_dropped += dropped;
	return 0;
}

uint64_t
qstore_events_dropped(const struct qstore *qs)
{
	return qs->events_dropped;
}

void
qstore_txn_abort(struct qstore_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	qstore_end(t->qs);
	free(t);
}

static int
qstore_msg_decode(const MDB_val *k, const MDB_val *v, struct qstore_msginfo *m)
{
	struct attr_list l;
	const char *p;
	size_t used;
	uint64_t u;
	int64_t i;
	int ok = -1;

	if (k->mv_size != QID_LEN)
		return -1;
	memset(m, 0, sizeof(*m));
	memcpy(m->qid, k->mv_data, QID_LEN);
	m->qid[QID_LEN] = '\0';
	attr_list_init(&l);
	if (attr_decode(&l, v->mv_data, v->mv_size, &used, NULL) != 1)
		goto done;
	qstore_copy(m->sender, sizeof(m->sender), attr_get(&l, "sender") ?
	    attr_get(&l, "sender") : "");
	qstore_copy(m->client_addr, sizeof(m->client_addr),
	    attr_get(&l, "client") ? attr_get(&l, "client") : "");
	qstore_copy(m->auth_user, sizeof(m->auth_user), attr_get(&l, "auth") ?
	    attr_get(&l, "auth") : "");
	if (attr_get_num(&l, "size", &m->size, NULL) == -1 ||
	    attr_get_int(&l, "arrival", &m->arrival, NULL) == -1 ||
	    attr_get_int(&l, "arrival_us", &i, NULL) == -1 ||
	    attr_get_num(&l, "nrcpts", &u, NULL) == -1 || u > UINT32_MAX)
		goto done;
	m->arrival_us = (int32_t)i;
	m->nrcpts = (uint32_t)u;
	if (attr_get_num(&l, "left", &u, NULL) == -1 || u > UINT32_MAX)
		goto done;
	m->left = (uint32_t)u;
	m->dsn_off = attr_get(&l, "dsn_off") != NULL;
	qstore_copy(m->pool, sizeof(m->pool), attr_get(&l, "pool") ?
	    attr_get(&l, "pool") : "");
	if ((p = attr_get(&l, QSTORE_ATTR_LANE)) != NULL) {
		if (strcmp(p, QSTORE_LANE_BULK) != 0)
			goto done;
		m->bulk = 1;
	}
	if (attr_get(&l, "held") != NULL &&
	    (attr_get_int(&l, "held", &m->held, NULL) == -1 || m->held <= 0))
		goto done;
	ok = 0;
done:
	attr_list_release(&l);
	return ok;
}

static int
qstore_rcpt_decode(const MDB_val *k, const MDB_val *v, struct qstore_rcpt *r)
{
	const unsigned char *kp = k->mv_data;
	struct attr_list l;
	size_t used;
	uint64_t u;
	int ok = -1;

	if (k->mv_size != QSTORE_RKEY_LEN)
		return -1;
	memset(r, 0, sizeof(*r));
	memcpy(r->qid, kp, QID_LEN);
	r->qid[QID_LEN] = '\0';
	r->index = (uint32_t)kp[QID_LEN] << 24 | (uint32_t)kp[QID_LEN + 1] <<
	    16 | (uint32_t)kp[QID_LEN + 2] << 8 | kp[QID_LEN + 3];
	attr_list_init(&l);
	if (attr_decode(&l, v->mv_data, v->mv_size, &used, NULL) != 1)
		goto done;
	if (attr_get(&l, "address") == NULL ||
	    attr_get_num(&l, "state", &u, NULL) == -1 || u > QSTORE_FAILED)
		goto done;
	qstore_copy(r->address, sizeof(r->address), attr_get(&l, "address"));
	r->state = (enum qstore_rcpt_state)u;
	if (attr_get_num(&l, "attempts", &u, NULL) == -1 || u > UINT32_MAX ||
	    attr_get_int(&l, "next", &r->next_attempt, NULL) == -1)
		goto done;
	r->attempts = (uint32_t)u;
	qstore_copy(r->dsn, sizeof(r->dsn), attr_get(&l, "dsn") ?
	    attr_get(&l, "dsn") : "");
	qstore_copy(r->reply, sizeof(r->reply), attr_get(&l, "reply") ?
	    attr_get(&l, "reply") : "");
	if (attr_get(&l, "notify") != NULL) {
		if (attr_get_num(&l, "notify", &u, NULL) == -1 || u > 0xff)
			goto done;
		r->notify = (unsigned)u;
	}
	qstore_copy(r->class, sizeof(r->class), attr_get(&l, "class") ?
	    attr_get(&l, "class") : "");
	qstore_copy(r->relay, sizeof(r->relay), attr_get(&l, "relay") ?
	    attr_get(&l, "relay") : "");
	if (attr_get(&l, "last") != NULL &&
	    attr_get_int(&l, "last", &r->last_attempt, NULL) == -1)
		goto done;
	if (attr_get(&l, "report") != NULL) {
		if (attr_get_num(&l, "report", &u, NULL) == -1 ||
		    u > QSTORE_REPORT_RELAYED)
			goto done;
		r->report = (enum qstore_report)u;
	}
	r->warned = attr_get(&l, "warned") != NULL;
	ok = 0;
done:
	attr_list_release(&l);
	return ok;
}

int
qstore_msg_get(struct qstore_txn *t, const char *qid,
    struct qstore_msginfo *m)
{
	MDB_val k, v;
	int rc;

	k.mv_data = (void *)qid;
	k.mv_size = QID_LEN;
	if ((rc = mdb_get(t->txn, t->qs->db_msg, &k, &v)) != 0)
		return qstore_mdb_fail(rc, NULL, "get");
	if (qstore_msg_decode(&k, &v, m) == -1)
		return qstore_fail(QSTORE_ERR_CORRUPT, NULL, "corrupt");
	return 0;
}

int
qstore_msg_put(struct qstore_txn *t, const struct qstore_msginfo *m)
{
	struct vbuf *val = vbuf_create(0);
	MDB_val k, v;
	int rc;

	qstore_msg_encode(val, m);
	k.mv_data = (void *)m->qid;
	k.mv_size = QID_LEN;
	v.mv_data = val->data;
	v.mv_size = val->len;
	rc = mdb_put(t->txn, t->qs->db_msg, &k, &v, 0);
	vbuf_free(val);
	return rc == 0 ? 0 : qstore_mdb_fail(rc, NULL, "put");
}

int
qstore_rcpt_get(struct qstore_txn *t, const char *qid, uint32_t index,
    struct qstore_rcpt *r)
{
	unsigned char rkey[QSTORE_RKEY_LEN];
	MDB_val k, v;
	int rc;

	qstore_rkey(rkey, qid, index);
	k.mv_data = rkey;
	k.mv_size = sizeof(rkey);
	if ((rc = mdb_get(t->txn, t->qs->db_rcpt, &k, &v)) != 0)
		return qstore_mdb_fail(rc, NULL, "get");
	if (qstore_rcpt_decode(&k, &v, r) == -1)
		return qstore_fail(QSTORE_ERR_CORRUPT, NULL, "corrupt");
	return 0;
}

int
qstore_rcpt_put(struct qstore_txn *t, const struct qstore_rcpt *r,
    int64_t old_next_attempt)
{
	unsigned char rkey[QSTORE_RKEY_LEN], skey[QSTORE_SKEY_LEN];
	struct vbuf *val;
	MDB_val k, v;
	int rc;

	qstore_skey(skey, old_next_attempt, r->qid, r->index);
	k.mv_data = skey;
	k.mv_size = sizeof(skey);
	rc = mdb_del(t->txn, t->qs->db_sched, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, NULL, "del");

	val = vbuf_create(0);
	qstore_rcpt_encode(val, r);
	qstore_rkey(rkey, r->qid, r->index);
	k.mv_data = rkey;
	k.mv_size = sizeof(rkey);
	v.mv_data = val->data;
	v.mv_size = val->len;
	rc = mdb_put(t->txn, t->qs->db_rcpt, &k, &v, 0);
	vbuf_free(val);
	if (rc != 0)
		return qstore_mdb_fail(rc, NULL, "put");
	if (qstore_rcpt_scheduled(r)) {
		qstore_skey(skey, r->next_attempt, r->qid, r->index);
		k.mv_data = skey;
		k.mv_size = sizeof(skey);
		v.mv_data = NULL;
		v.mv_size = 0;
		if ((rc = mdb_put(t->txn, t->qs->db_sched, &k, &v, 0)) != 0)
			return qstore_mdb_fail(rc, NULL, "put");
	}
	return 0;
}

int
qstore_rcpt_remove(struct qstore_txn *t, const struct qstore_rcpt *r)
{
	unsigned char rkey[QSTORE_RKEY_LEN], skey[QSTORE_SKEY_LEN];
	MDB_val k;
	int rc;

	if (qstore_rcpt_scheduled(r)) {
		qstore_skey(skey, r->next_attempt, r->qid, r->index);
		k.mv_data = skey;
		k.mv_size = sizeof(skey);
		rc = mdb_del(t->txn, t->qs->db_sched, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return qstore_mdb_fail(rc, NULL, "del");
	}
	qstore_rkey(rkey, r->qid, r->index);
	k.mv_data = rkey;
	k.mv_size = sizeof(rkey);
	rc = mdb_del(t->txn, t->qs->db_rcpt, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, NULL, "del");
	return 0;
}

int
qstore_msg_delete(struct qstore_txn *t, const char *qid)
{
	unsigned char rkey[QSTORE_RKEY_LEN], skey[QSTORE_SKEY_LEN];
	struct qstore_rcpt r;
	MDB_cursor *c;
	MDB_val k, v, sk;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_rcpt, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	qstore_rkey(rkey, qid, 0);
	k.mv_data = rkey;
	k.mv_size = sizeof(rkey);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == QSTORE_RKEY_LEN &&
	    memcmp(k.mv_data, qid, QID_LEN) == 0) {
		if (qstore_rcpt_decode(&k, &v, &r) == 0 &&
		    qstore_rcpt_scheduled(&r)) {
			qstore_skey(skey, r.next_attempt, qid, r.index);
			sk.mv_data = skey;
			sk.mv_size = sizeof(skey);
			rc = mdb_del(t->txn, t->qs->db_sched, &sk, NULL);
			if (rc != 0 && rc != MDB_NOTFOUND)
				break;
		}
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		/* Re-seek rather than trust the cursor after a delete. */
		k.mv_data = rkey;
		k.mv_size = sizeof(rkey);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, NULL, "delete");
	k.mv_data = (void *)qid;
	k.mv_size = QID_LEN;
	rc = mdb_del(t->txn, t->qs->db_msg, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, NULL, "delete");
	return 0;
}

/* Decodes a sched key and calls cb: its return, or 0 for a foreign key. */
static int
qstore_sched_call(const MDB_val *k, qstore_sched_cb *cb, void *arg)
{
	const unsigned char *p = k->mv_data;
	char qid[QID_SIZE];
	uint64_t when = 0;
	uint32_t index;

	if (k->mv_size != QSTORE_SKEY_LEN)
		return 0;
	for (int i = 0; i < 8; i++)
		when = when << 8 | p[i];
	memcpy(qid, p + 8, QID_LEN);
	qid[QID_LEN] = '\0';
	p += 8 + QID_LEN;
	index = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return cb(qid, index, (int64_t)when, arg);
}

int
qstore_sched_iter(struct qstore_txn *t, qstore_sched_cb *cb, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_sched, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (qstore_sched_call(&k, cb, arg) != 0)
			break;
	mdb_cursor_close(c);
	return 0;
}

int
qstore_sched_iter_back(struct qstore_txn *t, int64_t until,
    qstore_sched_cb *cb, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	unsigned char key[8];
	uint64_t after;
	int rc;

	if (until < 0)
		return 0;
	if ((rc = mdb_cursor_open(t->txn, t->qs->db_sched, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	/* The first key after until (a prefix sorts first), then back. */
	after = (uint64_t)until + 1;
	for (int i = 7; i >= 0; i--) {
		key[i] = after & 0xff;
		after >>= 8;
	}
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_PREV))
		if (qstore_sched_call(&k, cb, arg) != 0)
			break;
	mdb_cursor_close(c);
	return 0;
}

int
qstore_msg_iter(struct qstore_txn *t, qstore_msg_cb *cb, void *arg)
{
	struct qstore_msginfo m;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_msg, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (qstore_msg_decode(&k, &v, &m) == -1)
			continue;
		if (cb(&m, arg) != 0)
			break;
	}
	mdb_cursor_close(c);
	return 0;
}

int
qstore_rcpt_iter(struct qstore_txn *t, const char *qid, qstore_rcpt_cb *cb,
    void *arg)
{
	unsigned char rkey[QSTORE_RKEY_LEN];
	struct qstore_rcpt r;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_rcpt, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	qstore_rkey(rkey, qid, 0);
	k.mv_data = rkey;
	k.mv_size = sizeof(rkey);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    k.mv_size == QSTORE_RKEY_LEN && memcmp(k.mv_data, qid, QID_LEN) ==
	    0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (qstore_rcpt_decode(&k, &v, &r) == -1)
			continue;
		if (cb(&r, arg) != 0)
			break;
	}
	mdb_cursor_close(c);
	return 0;
}

struct qstore_select_walk {
	const char	*domain;
	int		 found;
};

static int
qstore_select_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct qstore_select_walk *w = arg;
	const char *at;

	if (r->state == QSTORE_DELIVERED || r->state == QSTORE_FAILED)
		return 0;
	if ((at = strrchr(r->address, '@')) == NULL ||
	    strcasecmp(at + 1, w->domain) != 0)
		return 0;
	w->found = 1;
	return 1;		/* one is enough */
}

int
qstore_select_match(struct qstore_txn *t, const struct qstore_msginfo *m,
    const struct qstore_select *sel)
{
	struct qstore_select_walk w;

	if (sel->qid != NULL && strcmp(sel->qid, m->qid) != 0)
		return 0;
	if (sel->sender != NULL && strcasecmp(sel->sender, m->sender) != 0)
		return 0;
	if (sel->domain == NULL)
		return 1;
	w.domain = sel->domain;
	w.found = 0;
	(void)qstore_rcpt_iter(t, m->qid, qstore_select_rcpt_cb, &w);
	return w.found;
}
