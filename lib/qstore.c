/*
 * qstore.c - the queue store: message files and their LMDB index.
 *
 * See qstore.h for the layout and who writes what. Crash-safety order for a
 * batch of new messages: each file renamed into msg/, every file fsync'd,
 * every msg/<h>/ touched fsync'd, then one LMDB transaction. A file without
 * records was never acknowledged (qmgr removes it after a grace period);
 * records always have their file.
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
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "attr.h"
#include "log.h"
#include "parse.h"
#include "qstore.h"
#include "xalloc.h"

#define QSTORE_NHASH		16
#define QSTORE_WBUF		65536
#define QSTORE_HEADER_MAX	(1024 * 1024)	/* envelope header bytes */
#define QSTORE_RKEY_LEN		(QID_LEN + 4)
#define QSTORE_SKEY_LEN		(8 + QID_LEN + 4)
/*
 * New messages are refused while less than this share of the LMDB map is
 * free, so that qmgr can still record deliveries and free space when the
 * queue is full (as Postfix keeps queue_minfree). Deferring every queued
 * recipient adds its reply text to its record, and copy-on-write needs
 * free pages besides, so half the map is kept for qmgr.
 */
#define QSTORE_HEADROOM_PCT	50
/*
 * qmgr may grow the map beyond queue.map_size, up to this many times it,
 * QSTORE_GROW_MIN or a quarter of it at a time, to record the results of
 * mail already accepted (qstore_grow); admission looks at queue.map_size.
 */
#define QSTORE_GROW_LIMIT	2
#define QSTORE_GROW_MIN		(1024 * 1024)
#define QSTORE_HASH_DIGIT	7	/* in the id: the seconds' last */
/*
 * The pool of retired message files in free/ (qstore_file_retire): at most
 * this many, each at most this large, so that it holds at most 64 MiB;
 * smtpd reads at most POOL_BATCH names at a time, and after finding none
 * creates POOL_SKIP files before it reads the directory again.
 */
#define QSTORE_POOL_MAX		1024
#define QSTORE_POOL_FILE_MAX	(64 * 1024)
#define QSTORE_POOL_BATCH	256
#define QSTORE_POOL_SKIP	8	/* new files before looking again */

struct qstore {
	char		*dir;
	MDB_env		*env;
	uint64_t	 map_size;	/* queue.map_size, for admission */
	MDB_dbi		 db_msg;
	MDB_dbi		 db_rcpt;
	MDB_dbi		 db_sched;
	MDB_dbi		 db_counters;
	int		 hash_fd[QSTORE_NHASH];	/* msg/<h>/, for fsync */
	char		(*pool)[QID_SIZE];	/* names in free/ to try */
	size_t		 npool, ipool;
	unsigned	 pool_skip;	/* free/ was empty: new files first */
	unsigned	 pool_seed;	/* rand_r() state */
	size_t		 pool_count;	/* qmgr: >= the files in free/ */
	time_t		 pool_counted;
};

struct qstore_new {
	struct qstore	*qs;
	char		 qid[QID_SIZE];
	int		 fd;
	int		 renamed;
	int		 reused;	/* a file from free/: truncate */
	off_t		 fsize;		/* bytes written to the file */
	char		 tmp_path[PATH_MAX];
	char		 msg_path[PATH_MAX];
	struct vbuf	*wbuf;
	uint64_t	 size;
	struct qstore_msginfo info;
	char		**rcpts;
	size_t		 nrcpts;
	struct {
		char	 key[QSTORE_COUNTER_KEY_MAX + 1];
		int64_t	 window;
		uint64_t limit;
	}		 charges[QSTORE_CHARGES_MAX];
	size_t		 ncharges;
	enum qstore_err	 status;
};

struct qstore_txn {
	struct qstore	*qs;
	MDB_txn		*txn;
};

struct qstore_file {
	int			 fd;
	off_t			 body_offset;
	off_t			 body_size;
	struct qstore_envelope	 env;
	char			*header;	/* env strings point in here */
};

static enum qstore_err qstore_last_err;

static int qstore_fail(enum qstore_err, struct vbuf *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static int qstore_mdb_fail(int, struct vbuf *, const char *);
static int qstore_begin(struct qstore *, unsigned, MDB_txn **);
static int qstore_path(char *, size_t, const char *, const char *,
    const char *);
static int qstore_hash(const char *);
static void qstore_rkey(unsigned char *, const char *, uint32_t);
static void qstore_skey(unsigned char *, int64_t, const char *, uint32_t);
static int qstore_write_all(struct qstore_new *, const char *, size_t,
    struct vbuf *);
static int qstore_wflush(struct qstore_new *, struct vbuf *);
static int qstore_header_ok(const char *);
static void qstore_copy(char *, size_t, const char *);
static int qstore_rcpt_decode(const MDB_val *, const MDB_val *,
    struct qstore_rcpt *);
static int qstore_msg_decode(const MDB_val *, const MDB_val *,
    struct qstore_msginfo *);
static void qstore_rcpt_encode(struct vbuf *, const struct qstore_rcpt *);
static void qstore_msg_encode(struct vbuf *, const struct qstore_msginfo *);
static int qstore_counter_read_txn(struct qstore *, MDB_txn *, const char *,
    int64_t *, uint64_t *);
static int qstore_counter_get_txn(struct qstore *, MDB_txn *, const char *,
    int64_t, uint64_t *);
static int qstore_counter_add_txn(struct qstore *, MDB_txn *, const char *,
    int64_t, uint64_t, uint64_t *);

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

static int
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

static int
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

static int
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
 * The directory under msg/: the last hex digit of the id's seconds, so
 * that the messages of one group commit mostly share one directory and
 * one directory fsync (the ids' random digit would spread them over
 * all 16), while a long queue still spreads over 16.
 */
static int
qstore_hash(const char *qid)
{
	char c = qid[QSTORE_HASH_DIGIT];

	return c >= 'A' ? c - 'A' + 10 : c - '0';
}

int
qstore_file_path(char *buf, size_t size, const char *qdir, const char *qid)
{
	int n;

	if (!qid_ok(qid))
		return -1;
	n = snprintf(buf, size, "%s/msg/%X/%s", qdir, (unsigned)qstore_hash(qid),
	    qid);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void
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
	if ((rc = mdb_env_set_mapsize(qs->env, cfg->queue_map_size)) != 0 ||
	    (rc = mdb_env_open(qs->env, path, MDB_NOTLS, 0600)) != 0) {
		qstore_mdb_fail(rc, why, path);
		goto fail;
	}
	if ((rc = mdb_txn_begin(qs->env, NULL, 0, &txn)) != 0) {
		qstore_mdb_fail(rc, why, "mdb_txn_begin");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "msg", MDB_CREATE, &qs->db_msg)) != 0 ||
	    (rc = mdb_dbi_open(txn, "rcpt", MDB_CREATE, &qs->db_rcpt)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sched", MDB_CREATE, &qs->db_sched)) !=
	    0 || (rc = mdb_dbi_open(txn, "counters", MDB_CREATE,
	    &qs->db_counters)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
		if (rc != 0)
			mdb_txn_abort(txn);
		qstore_mdb_fail(rc, why, "open databases");
		goto fail;
	}
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
	free(qs->pool);
	free(qs->dir);
	free(qs);
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

/* Envelope values are single lines: no CR, LF or NUL. */
static int
qstore_header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* Reads up to QSTORE_POOL_BATCH names from free/, in random order. */
static void
qstore_pool_fill(struct qstore *qs)
{
	char path[PATH_MAX], tmp[QID_SIZE];
	struct dirent *de;
	DIR *d;
	size_t i, j;

	qs->npool = qs->ipool = 0;
	if (qstore_path(path, sizeof(path), qs->dir, "free", NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	if (qs->pool == NULL)
		qs->pool = xcalloc(QSTORE_POOL_BATCH, QID_SIZE);
	while (qs->npool < QSTORE_POOL_BATCH && (de = readdir(d)) != NULL)
		if (qid_ok(de->d_name))
			memcpy(qs->pool[qs->npool++], de->d_name, QID_SIZE);
	closedir(d);
	/* Several smtpd processes read the same list: each its own order. */
	for (i = qs->npool; i > 1; i--) {
		j = (size_t)rand_r(&qs->pool_seed) % i;
		memcpy(tmp, qs->pool[i - 1], QID_SIZE);
		memcpy(qs->pool[i - 1], qs->pool[j], QID_SIZE);
		memcpy(qs->pool[j], tmp, QID_SIZE);
	}
}

/*
 * Moves a retired file from free/ to tmp_path and opens it for writing;
 * -1 when there is none. Writing over a file's blocks spares the file
 * system an inode and its blocks per message, and their freeing (with
 * a discard on many mounts) at delivery. A file that a delivery agent
 * still reads (a lock of qstore_file_open) is not reused but unlinked.
 */
static int
qstore_pool_take(struct qstore *qs, const char *tmp_path)
{
	char from[PATH_MAX];
	int fd, filled = 0;

	for (;;) {
		if (qs->ipool == qs->npool) {
			if (filled)
				return -1;
			if (qs->pool_skip > 0) {
				qs->pool_skip--;
				return -1;
			}
			qstore_pool_fill(qs);
			filled = 1;
			if (qs->npool == 0) {
				qs->pool_skip = QSTORE_POOL_SKIP;
				return -1;
			}
		}
		if (qstore_path(from, sizeof(from), qs->dir, "free",
		    qs->pool[qs->ipool++]) == -1)
			continue;
		/* ENOENT: another smtpd took it first. */
		if (renameat2(AT_FDCWD, from, AT_FDCWD, tmp_path,
		    RENAME_NOREPLACE) == -1)
			continue;
		if ((fd = open(tmp_path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) ==
		    -1) {
			(void)unlink(tmp_path);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			(void)unlink(tmp_path);
			close(fd);
			continue;
		}
		(void)flock(fd, LOCK_UN);
		return fd;
	}
}

struct qstore_new *
qstore_new_begin(struct qstore *qs, struct qstore_envelope *env,
    struct vbuf *why)
{
	struct qstore_new *qn;
	size_t i;
	int tries;

	if (env->nrcpts == 0) {
		qstore_fail(QSTORE_ERR_IO, why, "no recipients");
		return NULL;
	}
	if (!qstore_header_ok(env->sender) ||
	    strlen(env->sender) > QSTORE_ADDR_MAX ||
	    !qstore_header_ok(env->client_addr) ||
	    !qstore_header_ok(env->client_name) ||
	    !qstore_header_ok(env->auth_user)) {
		qstore_fail(QSTORE_ERR_IO, why, "bad envelope field");
		return NULL;
	}
	for (i = 0; i < env->nrcpts; i++) {
		if (!qstore_header_ok(env->rcpts[i]) ||
		    strlen(env->rcpts[i]) > QSTORE_ADDR_MAX) {
			qstore_fail(QSTORE_ERR_IO, why, "bad recipient");
			return NULL;
		}
	}
	qn = xcalloc(1, sizeof(*qn));
	qn->qs = qs;
	qn->fd = -1;
	for (tries = 0; tries < 10; tries++) {
		qid_new(qn->qid, &env->arrival, &env->arrival_us);
		if (qstore_path(qn->tmp_path, sizeof(qn->tmp_path), qs->dir,
		    "tmp", qn->qid) == -1) {
			qstore_fail(QSTORE_ERR_IO, why, "queue path too long");
			goto fail;
		}
		if ((qn->fd = qstore_pool_take(qs, qn->tmp_path)) != -1) {
			qn->reused = 1;
			break;
		}
		qn->fd = open(qn->tmp_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (qn->fd != -1 || errno != EEXIST)
			break;
	}
	if (qn->fd == -1) {
		qstore_fail(errno == ENOSPC ? QSTORE_ERR_FULL : QSTORE_ERR_IO,
		    why, "create %s: %s", qn->tmp_path, strerror(errno));
		goto fail;
	}
	snprintf(qn->msg_path, sizeof(qn->msg_path), "%s/msg/%X/%s", qs->dir,
	    (unsigned)qstore_hash(qn->qid), qn->qid);

	/* The record fields, kept for qstore_commit. */
	qstore_copy(qn->info.qid, sizeof(qn->info.qid), qn->qid);
	qstore_copy(qn->info.sender, sizeof(qn->info.sender), env->sender);
	qstore_copy(qn->info.client_addr, sizeof(qn->info.client_addr),
	    env->client_addr);
	qstore_copy(qn->info.auth_user, sizeof(qn->info.auth_user),
	    env->auth_user);
	qn->info.arrival = env->arrival;
	qn->info.arrival_us = env->arrival_us;
	qn->info.nrcpts = qn->info.left = (uint32_t)env->nrcpts;
	qn->rcpts = xcalloc(env->nrcpts, sizeof(char *));
	for (i = 0; i < env->nrcpts; i++)
		qn->rcpts[i] = xstrdup(env->rcpts[i]);
	qn->nrcpts = env->nrcpts;

	qn->wbuf = vbuf_create(0);
	vbuf_addf(qn->wbuf, "V=1\nT=%" PRId64 ".%06" PRId32 "\nS=%s\n",
	    env->arrival, env->arrival_us, env->sender);
	for (i = 0; i < env->nrcpts; i++)
		vbuf_addf(qn->wbuf, "R=%s\n", env->rcpts[i]);
	vbuf_addf(qn->wbuf, "C=%s\nH=%s\nA=%s\n\n", env->client_addr,
	    env->client_name, env->auth_user);
	return qn;
fail:
	qstore_new_abort(qn);
	return NULL;
}

const char *
qstore_new_id(const struct qstore_new *qn)
{
	return qn->qid;
}

uint64_t
qstore_new_size(const struct qstore_new *qn)
{
	return qn->size;
}

static int
qstore_write_all(struct qstore_new *qn, const char *p, size_t len,
    struct vbuf *why)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(qn->fd, p + off, len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return qstore_fail(errno == ENOSPC || errno == EDQUOT ?
			    QSTORE_ERR_FULL : QSTORE_ERR_IO, why, "write %s: %s",
			    qn->tmp_path, strerror(errno));
		}
		off += (size_t)n;
		qn->fsize += n;
	}
	return 0;
}

static int
qstore_wflush(struct qstore_new *qn, struct vbuf *why)
{
	if (qstore_write_all(qn, qn->wbuf->data, qn->wbuf->len, why) == -1)
		return -1;
	vbuf_reset(qn->wbuf);
	return 0;
}

int
qstore_new_write(struct qstore_new *qn, const void *p, size_t len,
    struct vbuf *why)
{
	qn->size += len;
	if (qn->wbuf->len + len > QSTORE_WBUF && qstore_wflush(qn, why) == -1)
		return -1;
	/* Large pieces go straight to the file, from the caller's memory. */
	if (len >= QSTORE_WBUF)
		return qstore_write_all(qn, p, len, why);
	(void)vbuf_add(qn->wbuf, p, len);
	return 0;
}

int
qstore_new_finish(struct qstore_new *qn, struct vbuf *why)
{
	if (qstore_wflush(qn, why) == -1)
		return -1;
	/* A reused file may be longer: nothing of its old message stays. */
	if (qn->reused && ftruncate(qn->fd, qn->fsize) == -1)
		return qstore_fail(QSTORE_ERR_IO, why, "truncate %s: %s",
		    qn->tmp_path, strerror(errno));
	/*
	 * Start the data on its way to disk now; qstore_commit() waits for
	 * it with fsync. Renaming before that fsync is safe: a file in msg/
	 * without records was never acknowledged, and no record is written
	 * before every file of the batch is durable.
	 */
	(void)sync_file_range(qn->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	/* Never replace a committed file (an id reused after a clock step). */
	if (renameat2(AT_FDCWD, qn->tmp_path, AT_FDCWD, qn->msg_path,
	    RENAME_NOREPLACE) == -1)
		return qstore_fail(QSTORE_ERR_IO, why, "rename %s to %s: %s",
		    qn->tmp_path, qn->msg_path, strerror(errno));
	qn->renamed = 1;
	qn->info.size = qn->size;
	return 0;
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
	attr_end(out);
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
	struct vbuf *val;
	MDB_txn *txn;
	MDB_val k, v;
	size_t i, j;
	int rc;

	/*
	 * 1. Every file's bytes, then every directory touched. Done for the
	 * whole batch at once, the file system can commit them together
	 * (on ext4 the first fsync commits the journal for all of them).
	 */
	for (i = 0; i < n; i++) {
		struct qstore_new *qn = msgs[i];

		ASSERT(qn->renamed);
		if (qn->fd == -1)
			continue;
		if (fsync(qn->fd) == -1)
			return qstore_fail(errno == ENOSPC ? QSTORE_ERR_FULL :
			    QSTORE_ERR_IO, why, "fsync %s: %s", qn->msg_path,
			    strerror(errno));
		if (close(qn->fd) == -1) {
			qn->fd = -1;
			return qstore_fail(QSTORE_ERR_IO, why, "close %s: %s",
			    qn->msg_path, strerror(errno));
		}
		qn->fd = -1;
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
	if (qstore_used_pct(qs, txn, 100 - QSTORE_HEADROOM_PCT) >=
	    100 - QSTORE_HEADROOM_PCT) {
		mdb_txn_abort(txn);
		return qstore_fail(QSTORE_ERR_FULL, why, "queue database %s/db "
		    "has less than %d%% free (queue.map_size)", qs->dir,
		    QSTORE_HEADROOM_PCT);
	}
	val = vbuf_create(0);
	for (i = 0; i < n; i++) {
		struct qstore_new *qn = msgs[i];
		struct qstore_rcpt r;

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
			r.next_attempt = qn->info.arrival;
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
	}
	vbuf_free(val);
	if ((rc = mdb_txn_commit(txn)) != 0)
		return qstore_mdb_fail(rc, why, "commit");
	return 0;
fail:
	vbuf_free(val);
	mdb_txn_abort(txn);
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

enum qstore_err
qstore_new_status(const struct qstore_new *qn)
{
	return qn->status;
}

/* Counter records: attributes window= and count=. */
static int
qstore_counter_read_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t *window, uint64_t *count)
{
	struct attr_list l;
	MDB_val k, v;
	size_t used;
	int rc;

	*window = 0;
	*count = 0;
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	if ((rc = mdb_get(txn, qs->db_counters, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return -1;
	attr_list_init(&l);
	if (attr_decode(&l, v.mv_data, v.mv_size, &used, NULL) != 1 ||
	    attr_get_int(&l, "window", window, NULL) == -1 ||
	    attr_get_num(&l, "count", count, NULL) == -1) {
		*window = 0;
		*count = 0;	/* a damaged counter counts as empty */
	}
	attr_list_release(&l);
	return 0;
}

static int
qstore_counter_get_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t window, uint64_t *count)
{
	int64_t w;

	if (qstore_counter_read_txn(qs, txn, key, &w, count) == -1)
		return -1;
	if (w != window)
		*count = 0;
	return 0;
}

/* Returns an LMDB error code (0 on success). */
static int
qstore_counter_add_txn(struct qstore *qs, MDB_txn *txn, const char *key,
    int64_t window, uint64_t n, uint64_t *total)
{
	struct vbuf *val;
	uint64_t count;
	MDB_val k, v;
	int rc;

	if (qstore_counter_get_txn(qs, txn, key, window, &count) == -1)
		return MDB_PANIC;
	count = count > UINT64_MAX - n ? UINT64_MAX : count + n;
	val = vbuf_create(0);
	attr_put_int(val, "window", window);
	attr_put_num(val, "count", count);
	attr_end(val);
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	v.mv_data = val->data;
	v.mv_size = val->len;
	rc = mdb_put(txn, qs->db_counters, &k, &v, 0);
	vbuf_free(val);
	if (rc == 0 && total != NULL)
		*total = count;
	return rc;
}

int
qstore_counter_get(struct qstore_txn *t, const char *key, int64_t window,
    uint64_t *count)
{
	int64_t w;

	if (qstore_counter_read(t, key, &w, count) == -1)
		return -1;
	if (w != window)
		*count = 0;
	return 0;
}

int
qstore_counter_read(struct qstore_txn *t, const char *key, int64_t *window,
    uint64_t *count)
{
	if (strlen(key) > QSTORE_COUNTER_KEY_MAX)
		return qstore_fail(QSTORE_ERR_IO, NULL, "key too long");
	if (qstore_counter_read_txn(t->qs, t->txn, key, window, count) == -1)
		return qstore_fail(QSTORE_ERR_IO, NULL, "counter read");
	return 0;
}

int
qstore_counter_add(struct qstore_txn *t, const char *key, int64_t window,
    uint64_t n, uint64_t *count)
{
	int rc;

	if (strlen(key) > QSTORE_COUNTER_KEY_MAX || strlen(key) == 0)
		return qstore_fail(QSTORE_ERR_IO, NULL, "bad key");
	if ((rc = qstore_counter_add_txn(t->qs, t->txn, key, window, n,
	    count)) != 0)
		return qstore_mdb_fail(rc, NULL, "counter");
	return 0;
}

int
qstore_counter_prune(struct qstore_txn *t, int64_t before)
{
	struct attr_list l;
	MDB_cursor *c;
	MDB_val k, v;
	int64_t window;
	size_t used;
	int rc, n = 0;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_counters, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	attr_list_init(&l);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (attr_decode(&l, v.mv_data, v.mv_size, &used, NULL) == 1 &&
		    attr_get_int(&l, "window", &window, NULL) == 0 &&
		    window >= before)
			continue;
		if (mdb_cursor_del(c, 0) == 0)
			n++;
	}
	attr_list_release(&l);
	mdb_cursor_close(c);
	return n;
}

void
qstore_new_abort(struct qstore_new *qn)
{
	if (qn == NULL)
		return;
	if (qn->fd != -1)
		close(qn->fd);
	if (qn->renamed)
		(void)unlink(qn->msg_path);
	else if (qn->tmp_path[0] != '\0')
		(void)unlink(qn->tmp_path);
	qstore_new_free(qn);
}

void
qstore_new_free(struct qstore_new *qn)
{
	if (qn == NULL)
		return;
	if (qn->fd != -1)
		close(qn->fd);
	for (size_t i = 0; i < qn->nrcpts; i++)
		free(qn->rcpts[i]);
	free(qn->rcpts);
	vbuf_free(qn->wbuf);
	free(qn);
}

/*
 * mdb_txn_begin, adopting a map that another process (qmgr, see
 * qstore_grow) has made larger.
 */
static int
qstore_begin(struct qstore *qs, unsigned flags, MDB_txn **txn)
{
	int rc;

	rc = mdb_txn_begin(qs->env, NULL, flags, txn);
	if (rc == MDB_MAP_RESIZED &&
	    (rc = mdb_env_set_mapsize(qs->env, 0)) == 0)
		rc = mdb_txn_begin(qs->env, NULL, flags, txn);
	return rc;
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
	if ((rc = mdb_env_set_mapsize(qs->env, (size_t)size)) != 0)
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
	int rc = mdb_txn_commit(t->txn);

	free(t);
	if (rc != 0)
		return qstore_mdb_fail(rc, why, "commit");
	return 0;
}

void
qstore_txn_abort(struct qstore_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

static int
qstore_msg_decode(const MDB_val *k, const MDB_val *v, struct qstore_msginfo *m)
{
	struct attr_list l;
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
	if (r->state == QSTORE_PENDING || r->state == QSTORE_DEFERRED) {
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

	if (r->state == QSTORE_PENDING || r->state == QSTORE_DEFERRED) {
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
		    (r.state == QSTORE_PENDING || r.state == QSTORE_DEFERRED)) {
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

int
qstore_sched_iter(struct qstore_txn *t, qstore_sched_cb *cb, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_sched, &c)) != 0)
		return qstore_mdb_fail(rc, NULL, "cursor");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;
		char qid[QID_SIZE];
		uint64_t when = 0;
		uint32_t index;

		if (k.mv_size != QSTORE_SKEY_LEN)
			continue;
		for (int i = 0; i < 8; i++)
			when = when << 8 | p[i];
		memcpy(qid, p + 8, QID_LEN);
		qid[QID_LEN] = '\0';
		p += 8 + QID_LEN;
		index = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		if (cb(qid, index, (int64_t)when, arg) != 0)
			break;
	}
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

struct qstore_file *
qstore_file_open(const char *qdir, const char *qid, struct vbuf *why)
{
	struct qstore_file *qf;
	struct stat st;
	char path[PATH_MAX], *p, *end, *line, *nl;
	size_t len = 0, alloc = 8192;
	ssize_t n;

	if (qstore_file_path(path, sizeof(path), qdir, qid) == -1) {
		qstore_fail(QSTORE_ERR_IO, why, "bad queue id");
		return NULL;
	}
	qf = xcalloc(1, sizeof(*qf));
	if ((qf->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		qstore_fail(errno == ENOENT ? QSTORE_ERR_NOTFOUND :
		    QSTORE_ERR_IO, why, "open %s: %s", path, strerror(errno));
		free(qf);
		return NULL;
	}
	/* Held while open: the file is not reused under a reader. */
	(void)flock(qf->fd, LOCK_SH | LOCK_NB);
	/* Read until the blank line that ends the envelope. */
	qf->header = xmalloc(alloc + 1);
	for (;;) {
		qf->header[len] = '\0';
		if ((end = memmem(qf->header, len, "\n\n", 2)) != NULL)
			break;
		if (len == alloc) {
			if (alloc >= QSTORE_HEADER_MAX)
				goto corrupt;
			alloc *= 2;
			qf->header = xreallocarray(qf->header, alloc + 1, 1);
		}
		n = pread(qf->fd, qf->header + len, alloc - len, (off_t)len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto corrupt;
		len += (size_t)n;
	}
	/* The envelope is text; the body after it is opaque bytes. */
	if (memchr(qf->header, '\0', (size_t)(end - qf->header)) != NULL)
		goto corrupt;
	end[1] = '\0';
	qf->body_offset = (off_t)(end - qf->header) + 2;
	if (fstat(qf->fd, &st) == -1 || st.st_size < qf->body_offset)
		goto corrupt;
	qf->body_size = st.st_size - qf->body_offset;
	qf->env.sender = qf->env.client_addr = qf->env.client_name =
	    qf->env.auth_user = NULL;
	for (p = qf->header; *p != '\0'; p = nl + 1) {
		line = p;
		if ((nl = strchr(p, '\n')) == NULL)
			goto corrupt;
		*nl = '\0';
		if (line[0] == '\0' || line[1] != '=')
			goto corrupt;
		switch (line[0]) {
		case 'V':
			if (strcmp(line + 2, "1") != 0)
				goto corrupt;
			break;
		case 'T': {
			char *dot = strchr(line + 2, '.');
			int64_t us;

			if (dot == NULL)
				goto corrupt;
			*dot = '\0';
			if (parse_i64(line + 2, 0, INT64_MAX,
			    &qf->env.arrival) == -1 ||
			    parse_i64(dot + 1, 0, 999999, &us) == -1)
				goto corrupt;
			qf->env.arrival_us = (int32_t)us;
			break;
		}
		case 'S':
			qf->env.sender = line + 2;
			break;
		case 'R':
			qf->env.rcpts = xreallocarray(qf->env.rcpts,
			    qf->env.nrcpts + 1, sizeof(char *));
			qf->env.rcpts[qf->env.nrcpts++] = line + 2;
			break;
		case 'C':
			qf->env.client_addr = line + 2;
			break;
		case 'H':
			qf->env.client_name = line + 2;
			break;
		case 'A':
			qf->env.auth_user = line + 2;
			break;
		default:
			break;	/* later versions may add fields */
		}
	}
	if (qf->env.sender == NULL || qf->env.nrcpts == 0)
		goto corrupt;
	if (qf->env.client_addr == NULL)
		qf->env.client_addr = "";
	if (qf->env.client_name == NULL)
		qf->env.client_name = "";
	if (qf->env.auth_user == NULL)
		qf->env.auth_user = "";
	return qf;
corrupt:
	qstore_fail(QSTORE_ERR_CORRUPT, why, "%s: malformed queue file", path);
	qstore_file_close(qf);
	return NULL;
}

const struct qstore_envelope *
qstore_file_envelope(const struct qstore_file *qf)
{
	return &qf->env;
}

int
qstore_file_fd(const struct qstore_file *qf)
{
	return qf->fd;
}

off_t
qstore_file_body_offset(const struct qstore_file *qf)
{
	return qf->body_offset;
}

off_t
qstore_file_body_size(const struct qstore_file *qf)
{
	return qf->body_size;
}

void
qstore_file_close(struct qstore_file *qf)
{
	if (qf == NULL)
		return;
	if (qf->fd != -1)
		close(qf->fd);
	free(qf->env.rcpts);
	free(qf->header);
	free(qf);
}

int
qstore_file_remove(const char *qdir, const char *qid)
{
	char path[PATH_MAX];

	if (qstore_file_path(path, sizeof(path), qdir, qid) == -1)
		return qstore_fail(QSTORE_ERR_IO, NULL, "bad queue id");
	if (unlink(path) == -1 && errno != ENOENT)
		return qstore_fail(QSTORE_ERR_IO, NULL, "unlink");
	return 0;
}

/*
 * Whether free/ has room, for qmgr. Its count goes up with each file qmgr
 * moves there, but smtpd processes take files without telling: when the
 * count says full, the directory is counted again (at most once a
 * second).
 */
static int
qstore_pool_has_room(struct qstore *qs)
{
	char path[PATH_MAX];
	struct dirent *de;
	time_t now = time(NULL);
	size_t n = 0;
	DIR *d;

	if (qs->pool_count < QSTORE_POOL_MAX)
		return 1;
	if (now == qs->pool_counted)
		return 0;
	qs->pool_counted = now;
	if (qstore_path(path, sizeof(path), qs->dir, "free", NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (qid_ok(de->d_name))
			n++;
	closedir(d);
	qs->pool_count = n;
	return n < QSTORE_POOL_MAX;
}

int
qstore_file_retire(struct qstore *qs, const char *qid)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;

	if (qstore_file_path(from, sizeof(from), qs->dir, qid) == -1)
		return qstore_fail(QSTORE_ERR_IO, NULL, "bad queue id");
	if (lstat(from, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size <= QSTORE_POOL_FILE_MAX &&
	    qstore_pool_has_room(qs) &&
	    qstore_path(to, sizeof(to), qs->dir, "free", qid) == 0 &&
	    renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) {
		qs->pool_count++;
		return 0;
	}
	return qstore_file_remove(qs->dir, qid);
}

int
qstore_file_quarantine(const char *qdir, const char *qid)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (qstore_file_path(from, sizeof(from), qdir, qid) == -1)
		return qstore_fail(QSTORE_ERR_IO, NULL, "bad queue id");
	snprintf(to, sizeof(to), "%s/corrupt/%s", qdir, qid);
	if (rename(from, to) == -1 && errno != ENOENT)
		return qstore_fail(QSTORE_ERR_IO, NULL, "rename");
	return 0;
}

int
qstore_file_iter(const char *qdir, int (*cb)(const char *, void *), void *arg)
{
	char path[PATH_MAX], sub[8];
	struct dirent *de;
	DIR *d;

	for (int i = 0; i < QSTORE_NHASH; i++) {
		snprintf(sub, sizeof(sub), "%X", (unsigned)i);
		if (qstore_path(path, sizeof(path), qdir, "msg", sub) == -1)
			return -1;
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (!qid_ok(de->d_name))
				continue;
			if (cb(de->d_name, arg) != 0) {
				closedir(d);
				return 0;
			}
		}
		closedir(d);
	}
	return 0;
}

int
qstore_file_rehash(const char *qdir)
{
	char path[PATH_MAX], from[PATH_MAX], to[PATH_MAX], sub[8];
	struct dirent *de;
	DIR *d;
	int n = 0, fd;

	for (int i = 0; i < QSTORE_NHASH; i++) {
		snprintf(sub, sizeof(sub), "%X", (unsigned)i);
		if (qstore_path(path, sizeof(path), qdir, "msg", sub) == -1 ||
		    (d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (!qid_ok(de->d_name) ||
			    qstore_hash(de->d_name) == i ||
			    qstore_path(from, sizeof(from), path, de->d_name,
			    NULL) == -1 ||
			    qstore_file_path(to, sizeof(to), qdir,
			    de->d_name) == -1)
				continue;
			if (renameat2(AT_FDCWD, from, AT_FDCWD, to,
			    RENAME_NOREPLACE) == 0)
				n++;
		}
		closedir(d);
	}
	if (n == 0)
		return 0;
	/* Durable before records are checked against the new places. */
	for (int i = 0; i < QSTORE_NHASH; i++) {
		snprintf(sub, sizeof(sub), "%X", (unsigned)i);
		if (qstore_path(path, sizeof(path), qdir, "msg", sub) == 0 &&
		    (fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
		    -1) {
			(void)fsync(fd);
			close(fd);
		}
	}
	return n;
}

int
qstore_tmp_clean(const char *qdir, int64_t max_age)
{
	char path[PATH_MAX], file[PATH_MAX];
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);
	DIR *d;
	int n = 0;

	if (qstore_path(path, sizeof(path), qdir, "tmp", NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!qid_ok(de->d_name))
			continue;
		if (qstore_path(file, sizeof(file), path, de->d_name, NULL) ==
		    -1)
			continue;
		/*
		 * ctime, not mtime: a file taken from free/ keeps its old
		 * mtime until written, but the rename into tmp/ set ctime.
		 */
		if (stat(file, &st) == 0 && now - st.st_ctime > max_age &&
		    unlink(file) == 0)
			n++;
	}
	closedir(d);
	return n;
}
