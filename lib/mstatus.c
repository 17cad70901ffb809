/*
 * mstatus.c - master's status file (see mstatus.h).
 *
 * No fsync: the file describes processes, which a crash ends anyway; what
 * matters is that a reader never sees half of it, which rename gives.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "mstatus.h"
#include "xalloc.h"

/* Read state while scanning the proc groups. */
struct mstatus_scan {
	struct mstatus	*st;
	const char	*prog;
	int64_t		 pid, started, next_start;
	uint64_t	 restarts, fails, ready;
};

static int	mstatus_each(void *, struct vbuf *);
static int	mstatus_path(char *, size_t, const char *, const char *);

static int
mstatus_path(char *buf, size_t size, const char *qdir, const char *suffix)
{
	int n;

	n = snprintf(buf, size, "%s/%s%s", qdir, MSTATUS_FILE, suffix);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
mstatus_write(const char *qdir, const struct mstatus *st, uid_t uid,
    gid_t gid, struct vbuf *why)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct vbuf *out;
	size_t off;
	ssize_t n;
	int fd;

	if (mstatus_path(path, sizeof(path), qdir, "") == -1 ||
	    mstatus_path(tmp, sizeof(tmp), qdir, ".tmp") == -1) {
		vbuf_setf(why, "%s: path too long", qdir);
		return -1;
	}
	out = vbuf_create(0);
	attr_put_num(out, "version", MSTATUS_VERSION);
	attr_put_int(out, "master_pid", st->master_pid);
	attr_put_int(out, "master_started", st->master_started);
	attr_put_int(out, "updated", st->updated);
	for (size_t i = 0; i < st->nprocs; i++) {
		const struct mstatus_proc *p = &st->procs[i];

		attr_put_str(out, "proc", p->prog);
		attr_put_int(out, "pid", p->pid);
		attr_put_int(out, "started", p->started);
		attr_put_num(out, "restarts", p->restarts);
		attr_put_num(out, "fails", p->fails);
		attr_put_int(out, "next_start", p->next_start);
		attr_put_num(out, "ready", p->ready ? 1 : 0);
	}
	attr_end(out);

	/* A temporary file left by a killed master is ours to replace. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd == -1) {
		vbuf_setf(why, "open %s: %s", tmp, strerror(errno));
		vbuf_free(out);
		return -1;
	}
	if (geteuid() == 0 && fchown(fd, uid, gid) == -1) {
		vbuf_setf(why, "fchown %s: %s", tmp, strerror(errno));
		goto fail;
	}
	for (off = 0; off < out->len; off += (size_t)n) {
		n = write(fd, out->data + off, out->len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			vbuf_setf(why, "write %s: %s", tmp,
			    n == -1 ? strerror(errno) : "short write");
			goto fail;
		}
	}
	if (close(fd) == -1) {
		fd = -1;
		vbuf_setf(why, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		vbuf_setf(why, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto fail;
	}
	vbuf_free(out);
	return 0;
fail:
	if (fd != -1)
		(void)close(fd);
	(void)unlink(tmp);
	vbuf_free(out);
	return -1;
}

void
mstatus_remove(const char *qdir)
{
	char path[PATH_MAX];

	if (mstatus_path(path, sizeof(path), qdir, "") == 0)
		(void)unlink(path);
}

/* One proc group is complete: append it. */
static int
mstatus_each(void *arg, struct vbuf *why)
{
	struct mstatus_scan *sc = arg;
	struct mstatus_proc *p;

	if (sc->st->nprocs >= MSTATUS_PROCS_MAX) {
		vbuf_setf(why, "more than %d processes", MSTATUS_PROCS_MAX);
		return -1;
	}
	p = &sc->st->procs[sc->st->nprocs++];
	memset(p, 0, sizeof(*p));
	snprintf(p->prog, sizeof(p->prog), "%s", sc->prog);
	p->pid = sc->pid;
	p->started = sc->started;
	p->restarts = sc->restarts;
	p->fails = sc->fails;
	p->next_start = sc->next_start;
	p->ready = sc->ready != 0;
	return 0;
}

int
mstatus_read(const char *qdir, struct mstatus *st, struct vbuf *why)
{
	struct mstatus_scan sc;
	const struct attr_spec group[] = {
		ATTR_STR("proc", ATTR_F_REQUIRED, 1, MSTATUS_PROG_MAX,
		    &sc.prog),
		ATTR_INT("pid", ATTR_F_REQUIRED, 0, INT32_MAX, &sc.pid),
		ATTR_INT("started", 0, 0, INT64_MAX, &sc.started),
		ATTR_UINT("restarts", 0, 0, UINT64_MAX, &sc.restarts),
		ATTR_UINT("fails", 0, 0, UINT64_MAX, &sc.fails),
		ATTR_INT("next_start", 0, 0, INT64_MAX, &sc.next_start),
		ATTR_UINT("ready", 0, 0, 1, &sc.ready),
		ATTR_TABLE_END
	};
	uint64_t version = 0;
	const struct attr_spec spec[] = {
		ATTR_UINT("version", ATTR_F_REQUIRED, 1, UINT32_MAX, &version),
		ATTR_INT("master_pid", ATTR_F_REQUIRED, 1, INT32_MAX,
		    &st->master_pid),
		ATTR_INT("master_started", 0, 0, INT64_MAX,
		    &st->master_started),
		ATTR_INT("updated", 0, 0, INT64_MAX, &st->updated),
		ATTR_GROUP("proc", 0, group, mstatus_each, &sc),
		ATTR_TABLE_END
	};
	char path[PATH_MAX];
	struct attr_list l;
	struct vbuf *buf;
	struct stat sb;
	char chunk[8192];
	size_t used, nproc;
	ssize_t n;
	int fd, rc = -1;

	memset(st, 0, sizeof(*st));
	memset(&sc, 0, sizeof(sc));
	sc.st = st;
	if (mstatus_path(path, sizeof(path), qdir, "") == -1) {
		vbuf_setf(why, "%s: path too long", qdir);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		vbuf_setf(why, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > MSTATUS_SIZE_MAX) {
		vbuf_setf(why, "%s: not a status file", path);
		(void)close(fd);
		return -1;
	}
	buf = vbuf_create(MSTATUS_SIZE_MAX);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (vbuf_add(buf, chunk, (size_t)n) == -1) {
			n = -1;
			errno = EFBIG;
			break;
		}
	}
	(void)close(fd);
	if (n == -1) {
		vbuf_setf(why, "read %s: %s", path, strerror(errno));
		vbuf_free(buf);
		return -1;
	}
	attr_list_init(&l);
	if (attr_decode(&l, buf->data, buf->len, &used, why) != 1) {
		if (why->len == 0)
			vbuf_setf(why, "%s: truncated", path);
		goto out;
	}
	nproc = attr_count(&l, "proc");
	if (nproc > MSTATUS_PROCS_MAX) {
		vbuf_setf(why, "%s: more than %d processes", path,
		    MSTATUS_PROCS_MAX);
		goto out;
	}
	st->procs = xcalloc(nproc > 0 ? nproc : 1, sizeof(*st->procs));
	if (attr_scan(&l, spec, why) == -1) {
		mstatus_release(st);
		goto out;
	}
	if (version != MSTATUS_VERSION) {
		vbuf_setf(why, "%s: version %llu, not %d", path,
		    (unsigned long long)version, MSTATUS_VERSION);
		mstatus_release(st);
		goto out;
	}
	rc = 1;
out:
	attr_list_release(&l);
	vbuf_free(buf);
	return rc;
}

void
mstatus_release(struct mstatus *st)
{
	free(st->procs);
	st->procs = NULL;
	st->nprocs = 0;
}

int
mstatus_master_alive(int64_t pid)
{
	char path[64], comm[32];
	FILE *f;
	int ok = 0;

	if (pid <= 0 || pid > INT32_MAX)
		return 0;
	snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(comm, sizeof(comm), f) != NULL)
		ok = strcmp(comm, "master\n") == 0;
	(void)fclose(f);
	return ok;
}
