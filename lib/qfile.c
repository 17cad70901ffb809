/*
 * qfile.c - the queue store's message files: new messages being written,
 * committed files, the free/ pool, retire, quarantine, rehash and tmp/
 * clean-up.
 *
 * Part of the qstore module (qstore.h, qstore_int.h). A new message is
 * written straight to msg/<h>/<qid> (a new file, or a retired one taken
 * from free/) and then handed to qstore_commit(), which makes it durable
 * and gives it records; a file in msg/ without records was never
 * acknowledged, whatever it holds. A committed file never changes; it is
 * read by smtp, and retired or removed by qmgr only after its records are
 * gone.
 *
 * No file moves between directories on this path: a rename from one
 * directory to another takes the file system's one rename mutex (Linux's
 * s_vfs_rename_mutex) and both directories' locks, and with several smtpd
 * processes those renames (tmp/ to msg/, free/ to tmp/) were where they
 * spent most of their time on 16 cores. A file changes directory by
 * link(2) then unlink(2), each of which locks one directory.
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
#include "cfg.h"
#include "log.h"
#include "parse.h"
#include "qstore.h"
#include "qstore_int.h"
#include "xalloc.h"

static int qstore_write_all(struct qstore_new *, const char *, size_t,
    struct vbuf *);
static int qstore_wflush(struct qstore_new *, struct vbuf *);
static int qstore_header_ok(const char *);

_Static_assert(QSTORE_SRCPOOL_MAX == CFG_POOL_NAME_MAX, "pool name size");

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

/* Envelope values are single lines: no CR, LF or NUL. */
static int
qstore_header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/*
 * Reads up to QSTORE_POOL_BATCH names from free/, in random order: those
 * of this process's ids, or all when it has none there.
 */
static void
qstore_pool_fill(struct qstore *qs)
{
	char path[PATH_MAX], tmp[QID_SIZE], own = qid_proc_digit();
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
	/*
	 * And each takes only the files whose name has its own process
	 * digit (qid.h), when there are any: qmgr retires a file under the
	 * id of the message it held, so these are the files it wrote, and
	 * two processes then seldom try the same name (which costs the
	 * loser an open, a link and an unlink for nothing: with two smtpd
	 * processes, 2.6 failed opens for every file taken). Another
	 * process's files are taken only when none of its own are left.
	 */
	for (i = j = 0; i < qs->npool; i++)
		if (qs->pool[i][QSTORE_PROC_DIGIT] == own)
			memcpy(qs->pool[j++], qs->pool[i], QID_SIZE);
	if (j > 0)
		qs->npool = j;
}

/*
 * Takes a retired file from free/ as path and opens it for writing; -1
 * when there is none. Writing over a file's blocks spares the file system
 * an inode and its blocks per message, and their freeing (with a discard
 * on many mounts) at delivery.
 *
 * The file is linked to path, then its free/ name unlinked: of several
 * smtpd processes that link the same file, the one whose unlink succeeds
 * owns it, the others drop their link. Its times are set first, so that
 * qmgr's start-up reconciliation, which removes a file without records
 * only when it is old, never takes it for an abandoned one. A file that a
 * delivery agent still reads (a lock of qstore_file_open) is not reused
 * but unlinked.
 */
static int
qstore_pool_take(struct qstore *qs, const char *path)
{
	char from[PATH_MAX];
	struct stat st;
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
		/*
		 * ENOENT: another smtpd took it first. Read and write: a
		 * message may be read back (qstore_new_rewrite).
		 */
		if ((fd = open(from, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if (futimens(fd, NULL) == -1) {
			close(fd);
			continue;
		}
		if (link(from, path) == -1) {
			close(fd);
			/* The id is taken: the caller draws another. */
			if (errno == EEXIST)
				return -1;
			continue;
		}
		if (unlink(from) == -1) {
			/* Another smtpd's unlink won: it is theirs. */
			(void)unlink(path);
			close(fd);
			continue;
		}
		/*
		 * Ours, and written over only if path is now its one name.
		 * Another name means another taker that linked it too (whose
		 * unlink will fail), a retire that crashed between its link
		 * and its unlink, or a free/ name back after a crash (an
		 * unlink there is not synced) while a committed message still
		 * has the file: in each case it is let go, not reused.
		 */
		if (fstat(fd, &st) == -1 || st.st_nlink != 1 ||
		    flock(fd, LOCK_EX | LOCK_NB) == -1) {
			(void)unlink(path);
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
		    strlen(env->rcpts[i]) > QSTORE_ADDR_MAX ||
		    (env->orcpts != NULL && env->orcpts[i] != NULL &&
		    (!qstore_header_ok(env->orcpts[i]) ||
		    strlen(env->orcpts[i]) > QSTORE_ORCPT_MAX))) {
			qstore_fail(QSTORE_ERR_IO, why, "bad recipient");
			return NULL;
		}
	}
	if (env->envid != NULL && (!qstore_header_ok(env->envid) ||
	    strlen(env->envid) > QSTORE_ENVID_MAX)) {
		qstore_fail(QSTORE_ERR_IO, why, "bad envelope id");
		return NULL;
	}
	if (env->pool != NULL && env->pool[0] != '\0' &&
	    !cfg_pool_name_ok(env->pool)) {
		qstore_fail(QSTORE_ERR_IO, why, "bad pool name");
		return NULL;
	}
	qn = xcalloc(1, sizeof(*qn));
	qn->qs = qs;
	qn->fd = -1;
	for (tries = 0; tries < 10; tries++) {
		qid_new(qn->qid, &env->arrival, &env->arrival_us);
		if (qstore_file_path(qn->msg_path, sizeof(qn->msg_path),
		    qs->dir, qn->qid) == -1) {
			qstore_fail(QSTORE_ERR_IO, why, "queue path too long");
			goto fail;
		}
		if ((qn->fd = qstore_pool_take(qs, qn->msg_path)) != -1) {
			qn->reused = 1;
			break;
		}
		/* Never over a committed file (an id reused after a clock
		 * step): O_EXCL here, link's EEXIST in qstore_pool_take. */
		qn->fd = open(qn->msg_path, O_RDWR | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (qn->fd != -1 || errno != EEXIST)
			break;
	}
	if (qn->fd == -1) {
		qstore_fail(errno == ENOSPC ? QSTORE_ERR_FULL : QSTORE_ERR_IO,
		    why, "create %s: %s", qn->msg_path, strerror(errno));
		goto fail;
	}
	qn->created = 1;

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
	qn->info.dsn_off = env->dsn_off;
	if (env->pool != NULL)
		qstore_copy(qn->info.pool, sizeof(qn->info.pool), env->pool);
	qn->info.bulk = env->bulk;
	qn->rcpts = xcalloc(env->nrcpts, sizeof(char *));
	for (i = 0; i < env->nrcpts; i++)
		qn->rcpts[i] = xstrdup(env->rcpts[i]);
	if (env->notify != NULL) {
		qn->notify = xcalloc(env->nrcpts, sizeof(unsigned));
		memcpy(qn->notify, env->notify, env->nrcpts * sizeof(unsigned));
	}
	qn->nrcpts = env->nrcpts;

	/*
	 * The RFC 3461 fields are written only when given, so a message
	 * without them has the header older versions wrote; N= and O=
	 * belong to the R= line before them. Readers skip unknown lines.
	 */
	qn->wbuf = vbuf_create(0);
	vbuf_addf(qn->wbuf, QSTORE_ENV_VERSION "T=%" PRId64 ".%06" PRId32
	    "\nS=%s\n", env->arrival, env->arrival_us, env->sender);
	for (i = 0; i < env->nrcpts; i++) {
		vbuf_addf(qn->wbuf, "R=%s\n", env->rcpts[i]);
		if (env->notify != NULL && env->notify[i] != 0)
			vbuf_addf(qn->wbuf, "N=%u\n", env->notify[i]);
		if (env->orcpts != NULL && env->orcpts[i] != NULL &&
		    env->orcpts[i][0] != '\0')
			vbuf_addf(qn->wbuf, "O=%s\n", env->orcpts[i]);
	}
	if (env->envid != NULL && env->envid[0] != '\0')
		vbuf_addf(qn->wbuf, "E=%s\n", env->envid);
	if (env->ret != QSTORE_RET_DEFAULT)
		vbuf_addf(qn->wbuf, "F=%s\n", env->ret == QSTORE_RET_FULL ?
		    "full" : "hdrs");
	if (env->dsn_off)
		vbuf_addf(qn->wbuf, "Q=1\n");
	if (env->smtputf8)
		vbuf_addf(qn->wbuf, "U=1\n");
	if (env->pool != NULL && env->pool[0] != '\0')
		vbuf_addf(qn->wbuf, "P=%s\n", env->pool);
	if (env->bulk)
		vbuf_adds(qn->wbuf, QSTORE_ENV_BULK);
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
			    qn->msg_path, strerror(errno));
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
qstore_new_rewrite(struct qstore_new *qn, qstore_transform *transform,
    void *arg, struct vbuf *why)
{
	struct vbuf *old = NULL, *repl = NULL;
	off_t start;
	size_t got = 0;
	ssize_t n;
	int rc = -1;

	if (qstore_wflush(qn, why) == -1)
		return -1;
	/* The data is the file's last size bytes, after the envelope. */
	start = qn->fsize - (off_t)qn->size;
	old = vbuf_create(0);
	repl = vbuf_create(0);
	if (vbuf_reserve(old, (size_t)qn->size + 1) == -1) {
		qstore_fail(QSTORE_ERR_IO, why, "rewrite %s: out of memory",
		    qn->msg_path);
		goto done;
	}
	while (got < qn->size) {
		n = pread(qn->fd, old->data + got, (size_t)qn->size - got,
		    start + (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			qstore_fail(QSTORE_ERR_IO, why, "read back %s: %s",
			    qn->msg_path, n == 0 ? "short file" :
			    strerror(errno));
			goto done;
		}
		got += (size_t)n;
	}
	old->len = got;
	transform(old->data, old->len, repl, arg);
	/*
	 * Nothing is acknowledged yet: a crash here leaves a file without
	 * records, which qmgr's reconcile removes, as any unfinished one.
	 */
	if (lseek(qn->fd, start, SEEK_SET) == -1 ||
	    ftruncate(qn->fd, start) == -1) {
		qstore_fail(QSTORE_ERR_IO, why, "rewrite %s: %s",
		    qn->msg_path, strerror(errno));
		goto done;
	}
	qn->fsize = start;
	qn->size = 0;
	if (qstore_new_write(qn, repl->data, repl->len, why) == -1 ||
	    qstore_wflush(qn, why) == -1)
		goto done;
	rc = 0;
done:
	vbuf_free(old);
	vbuf_free(repl);
	return rc;
}

int
qstore_new_finish(struct qstore_new *qn, struct vbuf *why)
{
	if (qstore_wflush(qn, why) == -1)
		return -1;
	/* A reused file may be longer: nothing of its old message stays. */
	if (qn->reused && ftruncate(qn->fd, qn->fsize) == -1)
		return qstore_fail(QSTORE_ERR_IO, why, "truncate %s: %s",
		    qn->msg_path, strerror(errno));
	/*
	 * Start the data on its way to disk now; qstore_commit() waits for
	 * it with fsync. No record is written before every file of the
	 * batch is durable.
	 */
	(void)sync_file_range(qn->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	qn->finished = 1;
	qn->info.size = qn->size;
	return 0;
}

void
qstore_new_abort(struct qstore_new *qn)
{
	if (qn == NULL)
		return;
	if (qn->fd != -1)
		close(qn->fd);
	if (qn->created)
		(void)unlink(qn->msg_path);
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
	free(qn->notify);
	vbuf_free(qn->wbuf);
	free(qn);
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
			qf->env.notify = xreallocarray(qf->env.notify,
			    qf->env.nrcpts, sizeof(unsigned));
			qf->env.notify[qf->env.nrcpts - 1] = 0;
			qf->env.orcpts = xreallocarray(qf->env.orcpts,
			    qf->env.nrcpts, sizeof(char *));
			qf->env.orcpts[qf->env.nrcpts - 1] = NULL;
			break;
		case 'N': {
			int64_t bits;

			if (qf->env.nrcpts == 0 ||
			    parse_i64(line + 2, 0, 0xff, &bits) == -1)
				goto corrupt;
			qf->env.notify[qf->env.nrcpts - 1] = (unsigned)bits;
			break;
		}
		case 'O':
			if (qf->env.nrcpts == 0)
				goto corrupt;
			qf->env.orcpts[qf->env.nrcpts - 1] = line + 2;
			break;
		case 'E':
			qf->env.envid = line + 2;
			break;
		case 'F':
			qf->env.ret = strcmp(line + 2, "full") == 0 ?
			    QSTORE_RET_FULL : QSTORE_RET_HDRS;
			break;
		case 'Q':
			qf->env.dsn_off = 1;
			break;
		case 'U':
			qf->env.smtputf8 = 1;
			break;
		case 'P':
			if (!cfg_pool_name_ok(line + 2))
				goto corrupt;
			qf->env.pool = line + 2;
			break;
		case 'L':
			qf->env.bulk = strcmp(line + 2, QSTORE_LANE_BULK) == 0;
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
	if (qf->env.pool == NULL)
		qf->env.pool = "";
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
	free(qf->env.notify);
	free(qf->env.orcpts);
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
	/* Linked, then unlinked: no cross-directory rename (see above). */
	if (lstat(from, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size <= QSTORE_POOL_FILE_MAX &&
	    qstore_pool_has_room(qs) &&
	    qstore_path(to, sizeof(to), qs->dir, "free", qid) == 0 &&
	    link(from, to) == 0)
		qs->pool_count++;
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
		 * ctime, not mtime: a file an older version took from free/
		 * kept its old mtime until written, but its rename into
		 * tmp/ set ctime.
		 */
		if (stat(file, &st) == 0 && now - st.st_ctime > max_age &&
		    unlink(file) == 0)
			n++;
	}
	closedir(d);
	return n;
}
