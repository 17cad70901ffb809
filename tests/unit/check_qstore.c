/*
 * check_qstore.c - unit tests for lib/qstore: queue files and LMDB index.
 *
 * Each test builds a queue tree in a mkdtemp() directory and opens it with
 * a hand-made struct cfg. Covered: the directory tree; the new-message
 * round trip (envelope and body byte-exact, large bodies in odd chunks,
 * the null sender); the msg/rcpt/sched records and their invariants
 * (pending at arrival, schedule in time order, rcpt_put moving the entry,
 * final states unscheduled, msg_delete removing all); group commit; abort
 * before and after finish; refusal of CR/LF in envelope fields; refusal
 * of bad ids and damaged files (QSTORE_ERR_CORRUPT); a full LMDB map
 * (QSTORE_ERR_FULL, nothing of the failed batch visible); file iteration,
 * removal and quarantine.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

/* A write this large goes to the file at once (qstore_int.h QSTORE_WBUF). */
#define BIG_WRITE	(64 * 1024)

#define MAP_SIZE	(16 * 1024 * 1024)
#define SCHED_MAX	4096

struct fix {
	char		 dir[256];
	struct cfg	 cfg;
	struct qstore	*qs;
	struct vbuf	*why;
};

struct sched_ent {
	char		 qid[QID_SIZE];
	uint32_t	 index;
	int64_t		 when;
};

struct sched_list {
	size_t		 n;
	struct sched_ent e[SCHED_MAX];
};

struct id_list {
	size_t		 n;
	char		 ids[64][QID_SIZE];
	size_t		 stop_after;	/* 0: never stop */
};

static void	 fix_setup(struct fix *, uint64_t);
static void	 fix_teardown(struct fix *);
static int	 rm_cb(const char *, const struct stat *, int, struct FTW *);
static void	 env_fill(struct qstore_envelope *, const char *, char **,
		    size_t);
static struct qstore_new *new_msg(struct fix *, struct qstore_envelope *,
		    const void *, size_t);
static void	 commit_msg(struct fix *, struct qstore_envelope *,
		    const void *, size_t, char *);
static void	 commit_n(struct qstore *, struct qstore_envelope *, int,
		    struct vbuf *);
static int	 sched_cb(const char *, uint32_t, int64_t, void *);
static void	 sched_get(struct fix *, struct sched_list *);
static int	 sched_has(const struct sched_list *, const char *, uint32_t,
		    int64_t);
static size_t	 sched_count_qid(const struct sched_list *, const char *);
static int	 stop_cb(const char *, uint32_t, int64_t, void *);
static int	 msg_stop_cb(const struct qstore_msginfo *, void *);
static int	 id_cb(const char *, void *);
static int	 msg_count_cb(const struct qstore_msginfo *, void *);
static int	 rcpt_count_cb(const struct qstore_rcpt *, void *);
static void	 file_path(const struct fix *, const char *, char *, size_t);
static int	 hexval(char);
static void	 write_file(const char *, const void *, size_t);
static size_t	 dir_count(const char *);
static void	 check_body(struct qstore_file *, const void *, size_t);
static void	 check_corrupt(struct fix *, const char *, const void *,
		    size_t);
static Suite	*qstore_suite(void);

static int
rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
fix_setup(struct fix *f, uint64_t map_size)
{
	const char *base = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/check_qstore.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	f->why = vbuf_create(0);
	ck_assert_msg(qstore_create_dirs(f->dir, getuid(), getgid(), f->why) ==
	    0, "create_dirs: %s", f->why->data);
	f->cfg.queue_directory = f->dir;
	f->cfg.queue_map_size = map_size;
	f->qs = qstore_open(&f->cfg, f->why);
	ck_assert_msg(f->qs != NULL, "qstore_open: %s", f->why->data);
	ck_assert_str_eq(qstore_dir(f->qs), f->dir);
}

static void
fix_teardown(struct fix *f)
{
	qstore_close(f->qs);
	f->qs = NULL;
	vbuf_free(f->why);
	(void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
env_fill(struct qstore_envelope *env, const char *sender, char **rcpts,
    size_t n)
{
	memset(env, 0, sizeof(*env));
	env->sender = (char *)sender;
	env->rcpts = rcpts;
	env->nrcpts = n;
	env->client_addr = "192.0.2.7";
	env->client_name = "client.example";
	env->auth_user = "alice";
}

/* begin + write + finish; the message is not committed yet. */
static struct qstore_new *
new_msg(struct fix *f, struct qstore_envelope *env, const void *body,
    size_t len)
{
	struct qstore_new *qn;

	qn = qstore_new_begin(f->qs, env, f->why);
	ck_assert_msg(qn != NULL, "begin: %s", f->why->data);
	ck_assert(qid_ok(qstore_new_id(qn)));
	ck_assert_int_eq(qstore_new_write(qn, body, len, f->why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f->why), 0);
	ck_assert_uint_eq(qstore_new_size(qn), len);
	return qn;
}

static void
commit_msg(struct fix *f, struct qstore_envelope *env, const void *body,
    size_t len, char *qid)
{
	struct qstore_new *qn = new_msg(f, env, body, len);

	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_msg(qstore_commit(f->qs, &qn, 1, f->why) == 0, "commit: %s",
	    f->why->data);
	qstore_new_free(qn);
}

static int
sched_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct sched_list *l = arg;

	ck_assert(qid_ok(qid));
	ck_assert_uint_lt(l->n, SCHED_MAX);
	memcpy(l->e[l->n].qid, qid, QID_SIZE);
	l->e[l->n].index = index;
	l->e[l->n].when = when;
	l->n++;
	return 0;
}

static void
sched_get(struct fix *f, struct sched_list *l)
{
	struct qstore_txn *t;

	l->n = 0;
	t = qstore_txn_begin(f->qs, 0, f->why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_sched_iter(t, sched_cb, l), 0);
	qstore_txn_abort(t);
}

static int
sched_has(const struct sched_list *l, const char *qid, uint32_t index,
    int64_t when)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->e[i].qid, qid) == 0 && l->e[i].index == index &&
		    l->e[i].when == when)
			return 1;
	return 0;
}

static size_t
sched_count_qid(const struct sched_list *l, const char *qid)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->e[i].qid, qid) == 0)
			n++;
	return n;
}

/* Stops after the second entry. */
static int
stop_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	(void)qid;
	(void)index;
	(void)when;
	return ++*(size_t *)arg >= 2;
}

static int
msg_stop_cb(const struct qstore_msginfo *m, void *arg)
{
	(void)m;
	return ++*(size_t *)arg >= 1;
}

static int
id_cb(const char *qid, void *arg)
{
	struct id_list *l = arg;

	ck_assert(qid_ok(qid));
	ck_assert_uint_lt(l->n, 64);
	memcpy(l->ids[l->n++], qid, QID_SIZE);
	return l->stop_after != 0 && l->n >= l->stop_after;
}

static int
msg_count_cb(const struct qstore_msginfo *m, void *arg)
{
	ck_assert(qid_ok(m->qid));
	(*(size_t *)arg)++;
	return 0;
}

static int
rcpt_count_cb(const struct qstore_rcpt *r, void *arg)
{
	size_t *n = arg;

	ck_assert_uint_eq(r->index, *n);
	(*n)++;
	return 0;
}

static int
hexval(char c)
{
	return c >= 'A' ? c - 'A' + 10 : c - '0';
}

/*
 * msg/<h>/<qid>, h being the last hex digit of the id's seconds plus its
 * process digit (the 14th), modulo 16.
 */
static void
file_path(const struct fix *f, const char *qid, char *buf, size_t size)
{
	char lib[PATH_MAX];

	snprintf(buf, size, "%s/msg/%X/%s", f->dir,
	    (unsigned)((hexval(qid[7]) + hexval(qid[13])) % 16), qid);
	ck_assert_int_eq(qstore_file_path(lib, sizeof(lib), f->dir, qid), 0);
	ck_assert_str_eq(lib, buf);
}

static void
write_file(const char *path, const void *p, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* Entries in a directory, without . and .. */
static size_t
dir_count(const char *path)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
check_body(struct qstore_file *qf, const void *body, size_t len)
{
	char *buf;
	ssize_t n;

	ck_assert_int_eq(qstore_file_body_size(qf), (off_t)len);
	buf = malloc(len + 1);
	ck_assert_ptr_nonnull(buf);
	n = pread(qstore_file_fd(qf), buf, len + 1,
	    qstore_file_body_offset(qf));
	ck_assert_int_eq(n, (ssize_t)len);
	ck_assert_msg(memcmp(buf, body, len) == 0, "body differs");
	free(buf);
}

/* Writes the bytes as msg/<h>/<qid> and expects CORRUPT from file_open. */
static void
check_corrupt(struct fix *f, const char *what, const void *p, size_t len)
{
	static const char *qid = "0123456789ABCDEF";
	struct qstore_file *qf;
	char path[PATH_MAX];

	file_path(f, qid, path, sizeof(path));
	write_file(path, p, len);
	qf = qstore_file_open(f->dir, qid, f->why);
	if (qf != NULL)
		qstore_file_close(qf);
	ck_assert_msg(qf == NULL, "opened a file with %s", what);
	ck_assert_msg(qstore_errno() == QSTORE_ERR_CORRUPT, "%s: errno %d",
	    what, (int)qstore_errno());
	ck_assert_uint_gt(f->why->len, 0);
}

START_TEST(test_create_dirs)
{
	static const char *subs[] = { "tmp", "msg", "corrupt", "private",
	    "db" };
	char path[PATH_MAX];
	struct stat st;
	struct fix f;
	size_t i;

	fix_setup(&f, MAP_SIZE);
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f.dir, subs[i]);
		ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_uint_eq(st.st_mode & 07777, 0700);
		ck_assert_uint_eq(st.st_uid, getuid());
	}
	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/msg/%X", f.dir, (unsigned)i);
		ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_uint_eq(st.st_mode & 07777, 0700);
	}

	/* Running it again fixes modes and keeps what is there. */
	snprintf(path, sizeof(path), "%s/tmp", f.dir);
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_int_eq(qstore_create_dirs(f.dir, getuid(), getgid(), f.why),
	    0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);

	/* A queue directory without its tree cannot be opened. */
	snprintf(path, sizeof(path), "%s/empty", f.dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	f.cfg.queue_directory = path;
	vbuf_reset(f.why);
	ck_assert_ptr_null(qstore_open(&f.cfg, f.why));
	ck_assert_uint_gt(f.why->len, 0);
	f.cfg.queue_directory = f.dir;
	fix_teardown(&f);
}
END_TEST

START_TEST(test_roundtrip)
{
	static char *rcpts[] = { "b@example.org", "C@Example.NET",
	    "\"q u\"@[192.0.2.1]" };
	static const char body[] = "Received: by test\r\nSubject: hi\r\n\r\n"
	    "Hello.\r\n.leading dot stays unstuffed\r\n";
	const struct qstore_envelope *fe;
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct qstore_file *qf;
	struct qstore_txn *t;
	struct qstore_new *qn;
	char qid[QID_SIZE], tmp[PATH_MAX], path[PATH_MAX];
	struct stat st;
	time_t now = time(NULL);
	size_t i, n;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "a@example.com", rcpts, 3);
	qn = qstore_new_begin(f.qs, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert(qid_ok(qid));

	/* begin fills in the arrival, the one encoded in the id. */
	ck_assert_int_ge(env.arrival, now - 1);
	ck_assert_int_le(env.arrival, now + 1);
	ck_assert_int_ge(env.arrival_us, 0);
	ck_assert_int_le(env.arrival_us, 999999);

	/*
	 * Being written: straight in msg/<h>/ (no rename from tmp/, which
	 * stays empty), without records until the commit.
	 */
	file_path(&f, qid, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f.dir);
	ck_assert_uint_eq(dir_count(tmp), 0);
	ck_assert_int_eq(qstore_new_write(qn, body, 10, f.why), 0);
	ck_assert_int_eq(qstore_new_write(qn, body + 10, 0, f.why), 0);
	ck_assert_int_eq(qstore_new_write(qn, body + 10, sizeof(body) - 11,
	    f.why), 0);
	ck_assert_uint_eq(qstore_new_size(qn), sizeof(body) - 1);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);

	/* Finished: where it was, with the message's size. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, (off_t)sizeof(body) - 1);
	ck_assert_int_eq(qstore_commit(f.qs, &qn, 1, f.why), 0);
	qstore_new_free(qn);
	ck_assert_uint_eq(dir_count(f.dir), 7);
	ck_assert_uint_eq(dir_count(tmp), 0);

	/* The file gives back the envelope and the body. */
	qf = qstore_file_open(f.dir, qid, f.why);
	ck_assert_msg(qf != NULL, "file_open: %s", f.why->data);
	fe = qstore_file_envelope(qf);
	ck_assert_str_eq(fe->sender, "a@example.com");
	ck_assert_uint_eq(fe->nrcpts, 3);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(fe->rcpts[i], rcpts[i]);
	ck_assert_int_eq(fe->arrival, env.arrival);
	ck_assert_int_eq(fe->arrival_us, env.arrival_us);
	ck_assert_str_eq(fe->client_addr, "192.0.2.7");
	ck_assert_str_eq(fe->client_name, "client.example");
	ck_assert_str_eq(fe->auth_user, "alice");
	check_body(qf, body, sizeof(body) - 1);
	ck_assert_int_eq(qstore_file_body_offset(qf) + (off_t)sizeof(body) - 1,
	    st.st_size);
	qstore_file_close(qf);

	/* The records: the message, and each recipient pending at arrival. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_str_eq(m.qid, qid);
	ck_assert_str_eq(m.sender, "a@example.com");
	ck_assert_str_eq(m.client_addr, "192.0.2.7");
	ck_assert_str_eq(m.auth_user, "alice");
	ck_assert_uint_eq(m.size, sizeof(body) - 1);
	ck_assert_int_eq(m.arrival, env.arrival);
	ck_assert_int_eq(m.arrival_us, env.arrival_us);
	ck_assert_uint_eq(m.nrcpts, 3);
	ck_assert_uint_eq(m.left, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(qstore_rcpt_get(t, qid, (uint32_t)i, &r), 0);
		ck_assert_str_eq(r.qid, qid);
		ck_assert_uint_eq(r.index, i);
		ck_assert_str_eq(r.address, rcpts[i]);
		ck_assert_int_eq(r.state, QSTORE_PENDING);
		ck_assert_uint_eq(r.attempts, 0);
		ck_assert_int_eq(r.next_attempt, env.arrival);
		ck_assert_str_eq(r.dsn, "");
		ck_assert_str_eq(r.reply, "");
	}
	ck_assert_int_eq(qstore_rcpt_get(t, qid, 3, &r), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	ck_assert_int_eq(qstore_msg_get(t, "0123456789ABCDEF", &m), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	n = 0;
	ck_assert_int_eq(qstore_rcpt_iter(t, qid, rcpt_count_cb, &n), 0);
	ck_assert_uint_eq(n, 3);
	n = 0;
	ck_assert_int_eq(qstore_msg_iter(t, msg_count_cb, &n), 0);
	ck_assert_uint_eq(n, 1);
	qstore_txn_abort(t);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_null_sender)
{
	static char *rcpts[] = { "postmaster@example.org" };
	const struct qstore_envelope *fe;
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_file *qf;
	struct qstore_txn *t;
	char qid[QID_SIZE];
	struct fix f;

	/* Null sender, no client, no helo, no auth user, empty body. */
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "", rcpts, 1);
	env.client_addr = "";
	env.client_name = "";
	env.auth_user = "";
	commit_msg(&f, &env, "", 0, qid);
	qf = qstore_file_open(f.dir, qid, f.why);
	ck_assert_msg(qf != NULL, "file_open: %s", f.why->data);
	fe = qstore_file_envelope(qf);
	ck_assert_str_eq(fe->sender, "");
	ck_assert_uint_eq(fe->nrcpts, 1);
	ck_assert_str_eq(fe->rcpts[0], "postmaster@example.org");
	ck_assert_str_eq(fe->client_addr, "");
	ck_assert_str_eq(fe->client_name, "");
	ck_assert_str_eq(fe->auth_user, "");
	ck_assert_int_eq(qstore_file_body_size(qf), 0);
	qstore_file_close(qf);

	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_str_eq(m.sender, "");
	ck_assert_str_eq(m.auth_user, "");
	ck_assert_uint_eq(m.size, 0);
	qstore_txn_abort(t);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_large_body)
{
	static const size_t chunks[] = { 1, 7, 4093, 65535, 65536, 65537,
	    131071, 3, 200003, 17, 65519 };
	static char *rcpts[] = { "b@example.org" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_new *qn;
	char qid[QID_SIZE], *body, *pristine;
	size_t len = 0, off, n, i;
	struct fix f;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		len += chunks[i];
	len *= 2;
	body = malloc(len);
	pristine = malloc(len);
	ck_assert(body != NULL && pristine != NULL);
	/* Every byte value but NUL, in a pattern no chunk size repeats. */
	for (off = 0; off < len; off++)
		body[off] = (char)(1 + (off * 7 + off / 251) % 255);
	memcpy(pristine, body, len);

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "a@example.com", rcpts, 1);
	qn = qstore_new_begin(f.qs, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	for (off = 0, i = 0; off < len; off += n, i++) {
		n = chunks[i % (sizeof(chunks) / sizeof(chunks[0]))];
		if (n > len - off)
			n = len - off;
		ck_assert_int_eq(qstore_new_write(qn, body + off, n, f.why), 0);
		/* The caller's bytes are input only, never written to. */
		ck_assert_msg(memcmp(body + off, pristine + off, n) == 0,
		    "write of %zu bytes at %zu changed the caller's buffer", n,
		    off);
	}
	ck_assert_uint_eq(qstore_new_size(qn), len);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	ck_assert_int_eq(qstore_commit(f.qs, &qn, 1, f.why), 0);
	qstore_new_free(qn);

	qf = qstore_file_open(f.dir, qid, f.why);
	ck_assert_ptr_nonnull(qf);
	check_body(qf, pristine, len);
	qstore_file_close(qf);
	free(body);
	free(pristine);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_binary_body)
{
	static char *rcpts[] = { "b@example.org" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	char qid[QID_SIZE], body[300];
	size_t i;
	struct fix f;

	/*
	 * The body is opaque bytes: a NUL right after the envelope (where
	 * file_open's first read sees it) must not make the file corrupt.
	 */
	for (i = 0; i < sizeof(body); i++)
		body[i] = (char)i;
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "a@example.com", rcpts, 1);
	commit_msg(&f, &env, body, sizeof(body), qid);
	qf = qstore_file_open(f.dir, qid, f.why);
	ck_assert_msg(qf != NULL, "file_open: %s", f.why->data);
	check_body(qf, body, sizeof(body));
	qstore_file_close(qf);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_many_rcpts)
{
	struct qstore_envelope env;
	const struct qstore_envelope *fe;
	struct qstore_file *qf;
	struct qstore_msginfo m;
	struct qstore_txn *t;
	struct sched_list *sl;
	char qid[QID_SIZE], **rcpts;
	size_t i, n = 700;
	struct fix f;

	/* An envelope header far larger than file_open's first read. */
	rcpts = calloc(n, sizeof(*rcpts));
	ck_assert_ptr_nonnull(rcpts);
	for (i = 0; i < n; i++) {
		rcpts[i] = malloc(128);
		snprintf(rcpts[i], 128, "recipient-number-%04zu@some-domain-"
		    "name.example.org", i);
	}
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "a@example.com", rcpts, n);
	commit_msg(&f, &env, "x\r\n", 3, qid);
	qf = qstore_file_open(f.dir, qid, f.why);
	ck_assert_msg(qf != NULL, "file_open: %s", f.why->data);
	fe = qstore_file_envelope(qf);
	ck_assert_uint_eq(fe->nrcpts, n);
	for (i = 0; i < n; i++)
		ck_assert_str_eq(fe->rcpts[i], rcpts[i]);
	check_body(qf, "x\r\n", 3);
	qstore_file_close(qf);

	sl = malloc(sizeof(*sl));
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, n);
	for (i = 0; i < n; i++) {
		ck_assert_str_eq(sl->e[i].qid, qid);
		ck_assert_uint_eq(sl->e[i].index, i);
	}

	/* Deleting walks every recipient record. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_msg_delete(t, qid), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	qstore_txn_abort(t);
	free(sl);
	for (i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_sched)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example",
	    "r2@x.example" };
	struct qstore_envelope env;
	struct qstore_rcpt r, r2;
	struct qstore_msginfo m;
	struct sched_list *sl;
	struct qstore_txn *t;
	char a[QID_SIZE], b[QID_SIZE];
	int64_t arr_a, arr_b, base;
	size_t i;
	struct fix f;

	sl = malloc(sizeof(*sl));
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 3);
	commit_msg(&f, &env, "a\r\n", 3, a);
	arr_a = env.arrival;
	env_fill(&env, "s@x.example", rcpts, 2);
	commit_msg(&f, &env, "b\r\n", 3, b);
	arr_b = env.arrival;
	ck_assert_str_ne(a, b);

	/* New recipients are due at their arrival. */
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 5);
	for (i = 0; i < 3; i++)
		ck_assert(sched_has(sl, a, (uint32_t)i, arr_a));
	for (i = 0; i < 2; i++)
		ck_assert(sched_has(sl, b, (uint32_t)i, arr_b));

	/*
	 * Reschedule out of id order: a/0 last, b/1 first, a/2 final.
	 * The old entries go, the new ones come, iteration is by time.
	 */
	base = arr_a + 1000;
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	r.state = QSTORE_DEFERRED;
	r.attempts = 1;
	r.next_attempt = base + 300;
	snprintf(r.dsn, sizeof(r.dsn), "4.4.1");
	snprintf(r.reply, sizeof(r.reply), "connect to mx: refused");
	ck_assert_int_eq(qstore_rcpt_put(t, &r, arr_a), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, b, 1, &r), 0);
	r.state = QSTORE_DEFERRED;
	r.attempts = 1;
	r.next_attempt = base + 100;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, arr_b), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 1, &r), 0);
	r.next_attempt = base + 200;	/* still pending, later */
	ck_assert_int_eq(qstore_rcpt_put(t, &r, arr_a), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 2, &r), 0);
	r.state = QSTORE_DELIVERED;
	r.next_attempt = base + 50;	/* final: not scheduled at all */
	snprintf(r.dsn, sizeof(r.dsn), "2.0.0");
	ck_assert_int_eq(qstore_rcpt_put(t, &r, arr_a), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);

	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 4);
	ck_assert_str_eq(sl->e[0].qid, b);
	ck_assert_uint_eq(sl->e[0].index, 0);
	ck_assert_int_eq(sl->e[0].when, arr_b);
	ck_assert_str_eq(sl->e[1].qid, b);
	ck_assert_uint_eq(sl->e[1].index, 1);
	ck_assert_int_eq(sl->e[1].when, base + 100);
	ck_assert_str_eq(sl->e[2].qid, a);
	ck_assert_uint_eq(sl->e[2].index, 1);
	ck_assert_int_eq(sl->e[2].when, base + 200);
	ck_assert_str_eq(sl->e[3].qid, a);
	ck_assert_uint_eq(sl->e[3].index, 0);
	ck_assert_int_eq(sl->e[3].when, base + 300);
	for (i = 1; i < sl->n; i++)
		ck_assert_int_le(sl->e[i - 1].when, sl->e[i].when);

	/* The records hold what was put. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r2), 0);
	ck_assert_int_eq(r2.state, QSTORE_DEFERRED);
	ck_assert_uint_eq(r2.attempts, 1);
	ck_assert_int_eq(r2.next_attempt, base + 300);
	ck_assert_str_eq(r2.dsn, "4.4.1");
	ck_assert_str_eq(r2.reply, "connect to mx: refused");
	ck_assert_str_eq(r2.address, "r0@x.example");
	ck_assert_int_eq(qstore_rcpt_get(t, a, 2, &r2), 0);
	ck_assert_int_eq(r2.state, QSTORE_DELIVERED);
	ck_assert_str_eq(r2.dsn, "2.0.0");
	qstore_txn_abort(t);

	/* Deferred to failed: unscheduled; msg.left is the caller's. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	r.state = QSTORE_FAILED;
	r.attempts = 2;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, base + 300), 0);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), 0);
	m.left = 1;
	ck_assert_int_eq(qstore_msg_put(t, &m), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 3);
	ck_assert_uint_eq(sched_count_qid(sl, a), 1);
	ck_assert(sched_has(sl, a, 1, base + 200));
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), 0);
	ck_assert_uint_eq(m.left, 1);
	ck_assert_uint_eq(m.nrcpts, 3);
	ck_assert_str_eq(m.sender, "s@x.example");
	qstore_txn_abort(t);

	/* An aborted transaction changes nothing. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 1, &r), 0);
	r.state = QSTORE_DELIVERED;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, base + 200), 0);
	ck_assert_int_eq(qstore_msg_delete(t, b), 0);
	qstore_txn_abort(t);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 3);
	ck_assert(sched_has(sl, a, 1, base + 200));

	/* Back from deferred to pending, due now: moves to the front. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 1, &r), 0);
	r.next_attempt = arr_a - 5;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, base + 200), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 3);
	ck_assert_str_eq(sl->e[0].qid, a);
	ck_assert_int_eq(sl->e[0].when, arr_a - 5);
	ck_assert(!sched_has(sl, a, 1, base + 200));
	free(sl);
	fix_teardown(&f);
}
END_TEST

/*
 * The RFC 3461 parameters go into the file only when given and come back
 * from it; NOTIFY and the credential's "no reports" reach the records; a
 * final recipient owed a report keeps its schedule entry until the
 * report is made, so a crash in between loses no report.
 */
START_TEST(test_dsn_fields)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example" };
	static unsigned notify[] = { QSTORE_NOTIFY_SUCCESS |
	    QSTORE_NOTIFY_FAILURE, 0 };
	static char *orcpts[] = { "rfc822;R0+2B@x.example", NULL };
	const struct qstore_envelope *fe;
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_rcpt r;
	struct qstore_msginfo m;
	struct sched_list *sl;
	struct qstore_txn *t;
	char a[QID_SIZE], b[QID_SIZE];
	int64_t old;
	struct fix f;

	sl = malloc(sizeof(*sl));
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 2);
	env.notify = notify;
	env.orcpts = orcpts;
	env.envid = "QQ314159";
	env.ret = QSTORE_RET_FULL;
	env.dsn_off = 1;
	commit_msg(&f, &env, "a\r\n", 3, a);
	env_fill(&env, "s@x.example", rcpts, 2);
	commit_msg(&f, &env, "b\r\n", 3, b);

	qf = qstore_file_open(f.dir, a, f.why);
	ck_assert_msg(qf != NULL, "%s", f.why->data);
	fe = qstore_file_envelope(qf);
	ck_assert_uint_eq(fe->nrcpts, 2);
	ck_assert_uint_eq(fe->notify[0], notify[0]);
	ck_assert_uint_eq(fe->notify[1], 0);
	ck_assert_str_eq(fe->orcpts[0], orcpts[0]);
	ck_assert_ptr_null(fe->orcpts[1]);
	ck_assert_str_eq(fe->envid, "QQ314159");
	ck_assert_int_eq(fe->ret, QSTORE_RET_FULL);
	ck_assert_int_eq(fe->dsn_off, 1);
	qstore_file_close(qf);
	/* Without them, the file is as older versions wrote it. */
	qf = qstore_file_open(f.dir, b, f.why);
	ck_assert_ptr_nonnull(qf);
	fe = qstore_file_envelope(qf);
	ck_assert_ptr_null(fe->envid);
	ck_assert_int_eq(fe->ret, QSTORE_RET_DEFAULT);
	ck_assert_int_eq(fe->dsn_off, 0);
	ck_assert_uint_eq(fe->notify[0], 0);
	qstore_file_close(qf);

	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), 0);
	ck_assert_int_eq(m.dsn_off, 1);
	ck_assert_int_eq(qstore_msg_get(t, b, &m), 0);
	ck_assert_int_eq(m.dsn_off, 0);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	ck_assert_uint_eq(r.notify, notify[0]);
	/* Failed, owed a report: still scheduled, every field kept. */
	old = r.next_attempt;
	r.state = QSTORE_FAILED;
	r.report = QSTORE_REPORT_FAILED;
	r.next_attempt = old + 7;
	r.last_attempt = old + 5;
	snprintf(r.class, sizeof(r.class), "bad-mailbox");
	snprintf(r.relay, sizeof(r.relay), "mx.x.example[192.0.2.1]:25");
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert(sched_has(sl, a, 0, old + 7));

	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_FAILED);
	ck_assert_int_eq(r.report, QSTORE_REPORT_FAILED);
	ck_assert_int_eq(r.last_attempt, old + 5);
	ck_assert_str_eq(r.class, "bad-mailbox");
	ck_assert_str_eq(r.relay, "mx.x.example[192.0.2.1]:25");
	ck_assert_int_eq(r.warned, 0);
	/* The report made: unscheduled. */
	r.report = QSTORE_REPORT_NONE;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old + 7), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert(!sched_has(sl, a, 0, old + 7));
	ck_assert(sched_has(sl, a, 1, old));
	fix_teardown(&f);
	free(sl);
}
END_TEST

/*
 * The credential's source address pool: "P=" in the file and "pool" in
 * the record, both absent for the default pool (as older versions
 * wrote them); a bad name is refused at creation and corrupt in a file.
 */
START_TEST(test_pool_field)
{
	static char *rcpts[] = { "r0@x.example" };
	const struct qstore_envelope *fe;
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_msginfo m;
	struct qstore_txn *t;
	char a[QID_SIZE], b[QID_SIZE], path[PATH_MAX];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	env.pool = "bulk";
	commit_msg(&f, &env, "a\r\n", 3, a);
	env_fill(&env, "s@x.example", rcpts, 1);
	env.pool = "";
	commit_msg(&f, &env, "b\r\n", 3, b);

	qf = qstore_file_open(f.dir, a, f.why);
	ck_assert_msg(qf != NULL, "%s", f.why->data);
	fe = qstore_file_envelope(qf);
	ck_assert_str_eq(fe->pool, "bulk");
	qstore_file_close(qf);
	qf = qstore_file_open(f.dir, b, f.why);
	ck_assert_ptr_nonnull(qf);
	ck_assert_str_eq(qstore_file_envelope(qf)->pool, "");
	qstore_file_close(qf);

	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), 0);
	ck_assert_str_eq(m.pool, "bulk");
	ck_assert_int_eq(qstore_msg_get(t, b, &m), 0);
	ck_assert_str_eq(m.pool, "");
	qstore_txn_abort(t);

	env_fill(&env, "s@x.example", rcpts, 1);
	env.pool = "No Pool";
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));

	/* Written by hand: the file says the pool, a bad one is corrupt. */
	{
		static const char ok[] = "V=1\nT=1700000000.000123\n"
		    "S=a@b.c\nR=d@e.f\nP=transactional\n\nbody";

		file_path(&f, "0123456789ABCDEF", path, sizeof(path));
		write_file(path, ok, sizeof(ok) - 1);
		qf = qstore_file_open(f.dir, "0123456789ABCDEF", f.why);
		ck_assert_msg(qf != NULL, "%s", f.why->data);
		ck_assert_str_eq(qstore_file_envelope(qf)->pool,
		    "transactional");
		qstore_file_close(qf);
	}
	{
		static const char bad[] = "V=1\nS=a@b.c\nR=d@e.f\nP=a/b\n\n"
		    "body";

		check_corrupt(&f, "a bad pool", bad, sizeof(bad) - 1);
	}
	fix_teardown(&f);
}
END_TEST

START_TEST(test_rcpt_remove)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example" };
	struct qstore_envelope env;
	struct qstore_rcpt r;
	struct sched_list *sl = malloc(sizeof(*sl));
	struct qstore_txn *t;
	char a[QID_SIZE];
	int before, after;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 2);
	commit_msg(&f, &env, "a\r\n", 3, a);

	/* A delivered recipient goes with its schedule entry; r1 stays. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_ptr_nonnull(t);
	before = qstore_txn_used_pct(t, 0);
	ck_assert_int_ge(before, 0);
	ck_assert_int_le(before, 100);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	ck_assert_int_eq(qstore_rcpt_remove(t, &r), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	/* Removing what is gone is not an error. */
	ck_assert_int_eq(qstore_rcpt_remove(t, &r), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 1);
	ck_assert_str_eq(sl->e[0].qid, a);
	ck_assert_uint_eq(sl->e[0].index, 1);

	/* The message's deletion still finds and removes the rest. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_msg_delete(t, a), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 1, &r), -1);
	after = qstore_txn_used_pct(t, 0);
	ck_assert_int_le(after, before);
	qstore_txn_abort(t);
	free(sl);
	fix_teardown(&f);
}
END_TEST

/* Opens a second handle on the fixture's queue, as another process would. */
static struct qstore *
second_handle(struct fix *f)
{
	struct qstore *qs = qstore_open(&f->cfg, f->why);

	ck_assert_msg(qs != NULL, "qstore_open: %s", f->why->data);
	return qs;
}

START_TEST(test_pool_reuse)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_new *qn;
	struct qstore *qs2;
	struct stat st, st2;
	char a[QID_SIZE], b[QID_SIZE], pa[PATH_MAX], pb[PATH_MAX];
	char freed[PATH_MAX], big[8192];
	struct timespec old[2];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	commit_msg(&f, &env, big, sizeof(big), a);
	file_path(&f, a, pa, sizeof(pa));
	ck_assert_int_eq(stat(pa, &st), 0);

	/* Retired: moved (linked, unlinked) to free/ under its id. */
	ck_assert_int_eq(qstore_file_retire(f.qs, a), 0);
	ck_assert_int_eq(stat(pa, &st2), -1);
	snprintf(freed, sizeof(freed), "%s/free/%s", f.dir, a);
	ck_assert_int_eq(stat(freed, &st2), 0);
	ck_assert_uint_eq(st2.st_ino, st.st_ino);

	/*
	 * A new message is written over it (the same inode), and a shorter
	 * one leaves nothing of the old bytes. A second handle: the first
	 * found free/ empty a moment ago and creates a few files before it
	 * looks again.
	 */
	qs2 = second_handle(&f);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 86400;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, freed, old, 0), 0);
	qn = qstore_new_begin(qs2, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	/*
	 * Taken under its new name with a fresh mtime before a byte is
	 * written: qmgr's start-up reconciliation removes a file without
	 * records only when it is old, and must not take this one.
	 */
	file_path(&f, qstore_new_id(qn), pb, sizeof(pb));
	ck_assert_int_eq(stat(pb, &st2), 0);
	ck_assert_uint_eq(st2.st_ino, st.st_ino);
	ck_assert_int_ge(st2.st_mtime, time(NULL) - 5);
	ck_assert_int_eq(stat(freed, &st2), -1);
	ck_assert_int_eq(qstore_new_write(qn, "short\r\n", 7, f.why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	memcpy(b, qstore_new_id(qn), QID_SIZE);
	ck_assert_int_eq(qstore_commit(qs2, &qn, 1, f.why), 0);
	qstore_new_free(qn);
	ck_assert_int_eq(stat(freed, &st2), -1);
	file_path(&f, b, pb, sizeof(pb));
	ck_assert_int_eq(stat(pb, &st2), 0);
	ck_assert_uint_eq(st2.st_ino, st.st_ino);
	ck_assert_int_lt(st2.st_size, 1024);
	qf = qstore_file_open(f.dir, b, f.why);
	ck_assert_ptr_nonnull(qf);
	check_body(qf, "short\r\n", 7);
	ck_assert_str_eq(qstore_file_envelope(qf)->sender, "s@x.example");

	/* A file a reader holds open is not written over: a new one is. */
	ck_assert_int_eq(qstore_file_retire(f.qs, b), 0);
	qstore_close(qs2);
	qs2 = second_handle(&f);
	qn = qstore_new_begin(qs2, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	ck_assert_int_eq(qstore_new_write(qn, "third\r\n", 7, f.why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	file_path(&f, qstore_new_id(qn), pb, sizeof(pb));
	ck_assert_int_eq(stat(pb, &st2), 0);
	ck_assert_uint_ne(st2.st_ino, st.st_ino);
	qstore_new_abort(qn);
	/* The reader still sees its message, whole. */
	check_body(qf, "short\r\n", 7);
	qstore_file_close(qf);
	qstore_close(qs2);
	fix_teardown(&f);
}
END_TEST

/* Commits n small messages through qs. */
static void
commit_n(struct qstore *qs, struct qstore_envelope *env, int n,
    struct vbuf *why)
{
	struct qstore_new *qn;

	for (int i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(qn = qstore_new_begin(qs, env, why));
		ck_assert_int_eq(qstore_new_write(qn, "x\r\n", 3, why), 0);
		ck_assert_int_eq(qstore_new_finish(qn, why), 0);
		ck_assert_int_eq(qstore_commit(qs, &qn, 1, why), 0);
		qstore_new_free(qn);
	}
}

/*
 * A process takes the free/ files whose names have its own process digit
 * (those it wrote) while there are any, so two smtpd processes seldom
 * race for one; then another's.
 */
START_TEST(test_pool_own_first)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore *qs2;
	struct stat st;
	char own = qid_proc_digit(), other = own == '0' ? '1' : '0';
	char path[PATH_MAX];
	struct fix f;
	int fd, i, left;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	/* Eight of this process's, eight of another's, 256 bytes each. */
	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/free/6B16000000000%c%02X",
		    f.dir, i < 8 ? own : other, i);
		ck_assert_int_ge(fd = open(path, O_CREAT | O_WRONLY | O_EXCL,
		    0600), 0);
		ck_assert_int_eq(ftruncate(fd, 256), 0);
		close(fd);
	}
	/* A fresh handle reads free/ at its first message. */
	qs2 = second_handle(&f);
	commit_n(qs2, &env, 6, f.why);
	/* Six of its own taken, none of the other's. */
	for (i = 8; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/free/6B16000000000%c%02X",
		    f.dir, other, i);
		ck_assert_msg(stat(path, &st) == 0, "%s was taken", path);
	}
	/* Its own used up, another's file is taken rather than none. */
	commit_n(qs2, &env, 3, f.why);
	for (i = 8, left = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/free/6B16000000000%c%02X",
		    f.dir, other, i);
		left += stat(path, &st) == 0;
	}
	ck_assert_int_eq(left, 7);
	qstore_close(qs2);
	fix_teardown(&f);
}
END_TEST

/*
 * A free/ file that still has another name (a free/ name back after a
 * crash while a committed message has the file, or a retire that died
 * between its link and its unlink) is let go, never written over.
 */
START_TEST(test_pool_extra_name)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_new *qn;
	struct qstore *qs2;
	struct stat st, st2;
	char a[QID_SIZE], pa[PATH_MAX], pn[PATH_MAX], freed[PATH_MAX];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	commit_msg(&f, &env, "committed\r\n", 11, a);
	file_path(&f, a, pa, sizeof(pa));
	ck_assert_int_eq(stat(pa, &st), 0);
	snprintf(freed, sizeof(freed), "%s/free/%s", f.dir, a);
	ck_assert_int_eq(link(pa, freed), 0);

	qs2 = second_handle(&f);
	qn = qstore_new_begin(qs2, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	ck_assert_int_eq(qstore_new_write(qn, "new\r\n", 5, f.why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	file_path(&f, qstore_new_id(qn), pn, sizeof(pn));
	ck_assert_int_eq(stat(pn, &st2), 0);
	ck_assert_uint_ne(st2.st_ino, st.st_ino);
	qstore_new_abort(qn);
	/* The committed message is whole, under its one name. */
	ck_assert_int_eq(stat(pa, &st2), 0);
	ck_assert_uint_eq(st2.st_nlink, 1);
	qf = qstore_file_open(f.dir, a, f.why);
	ck_assert_ptr_nonnull(qf);
	check_body(qf, "committed\r\n", 11);
	qstore_file_close(qf);
	qstore_close(qs2);
	fix_teardown(&f);
}
END_TEST

/*
 * A file removed before its commit (qmgr's start-up reconciliation takes
 * an hour-old file without records) gets no records, and the rest of the
 * batch goes on.
 */
START_TEST(test_commit_file_gone)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_new *qn[2];
	struct qstore_txn *t;
	char path[PATH_MAX];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	qn[0] = new_msg(&f, &env, "gone\r\n", 6);
	qn[1] = new_msg(&f, &env, "kept\r\n", 6);
	file_path(&f, qstore_new_id(qn[0]), path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(qstore_commit(f.qs, qn, 2, f.why), 0);
	ck_assert_int_eq(qstore_new_status(qn[0]), QSTORE_ERR_IO);
	ck_assert_int_eq(qstore_new_status(qn[1]), QSTORE_ERR_OK);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, qstore_new_id(qn[0]), &m), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	ck_assert_int_eq(qstore_msg_get(t, qstore_new_id(qn[1]), &m), 0);
	qstore_txn_abort(t);
	qstore_new_abort(qn[0]);
	qstore_new_free(qn[1]);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_pool_limits)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct stat st;
	char a[QID_SIZE], pa[PATH_MAX], freed[PATH_MAX];
	char *big;
	size_t len = 70 * 1024;
	struct fix f;

	/* A large file is unlinked, not kept. */
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	big = malloc(len);
	memset(big, 'y', len);
	memcpy(big + len - 2, "\r\n", 2);
	commit_msg(&f, &env, big, len, a);
	file_path(&f, a, pa, sizeof(pa));
	ck_assert_int_eq(qstore_file_retire(f.qs, a), 0);
	ck_assert_int_eq(stat(pa, &st), -1);
	snprintf(freed, sizeof(freed), "%s/free/%s", f.dir, a);
	ck_assert_int_eq(stat(freed, &st), -1);
	snprintf(freed, sizeof(freed), "%s/free", f.dir);
	ck_assert_uint_eq(dir_count(freed), 0);
	/* Retiring what is gone is not an error. */
	ck_assert_int_eq(qstore_file_retire(f.qs, a), 0);
	free(big);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_tmp_clean)
{
	struct timespec old[2];
	char tmp[PATH_MAX], file[PATH_MAX + 32], moved[PATH_MAX + 32];
	struct stat st;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f.dir);
	snprintf(file, sizeof(file), "%s/free/0123456789ABCDEF", f.dir);
	write_file(file, "x", 1);
	/* A day-old mtime, as a file from free/ has before it is written. */
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 86400;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, file, old, 0), 0);
	snprintf(moved, sizeof(moved), "%s/0123456789ABCDEF", tmp);
	ck_assert_int_eq(rename(file, moved), 0);

	/* Just taken (renamed): kept, whatever its mtime. */
	ck_assert_int_eq(qstore_tmp_clean(f.dir, 3600), 0);
	ck_assert_int_eq(stat(moved, &st), 0);
	/* Older than the limit: removed; other names are left alone. */
	snprintf(file, sizeof(file), "%s/not-a-queue-id", tmp);
	write_file(file, "x", 1);
	ck_assert_int_eq(qstore_tmp_clean(f.dir, -1), 1);
	ck_assert_int_eq(stat(moved, &st), -1);
	ck_assert_int_eq(stat(file, &st), 0);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_grow)
{
	struct qstore_msginfo m;
	struct qstore_txn *t;
	struct qstore *other;
	uint64_t size = 0;
	unsigned n, k;
	int rc;
	struct fix f;

	/* Another process's handle, opened before the map grows. */
	fix_setup(&f, 64 * 1024);
	other = second_handle(&f);
	memset(&m, 0, sizeof(m));
	snprintf(m.sender, sizeof(m.sender), "%0200d", 0);
	/* qmgr-style writes until the 64 KiB map is full. */
	for (n = 0;; n++) {
		ck_assert_uint_lt(n, 10000);
		snprintf(m.qid, sizeof(m.qid), "%016X", n);
		t = qstore_txn_begin(f.qs, 1, f.why);
		ck_assert_ptr_nonnull(t);
		if ((rc = qstore_msg_put(t, &m)) == 0)
			rc = qstore_txn_commit(t, f.why);
		else
			qstore_txn_abort(t);
		if (rc == -1)
			break;
	}
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_FULL);

	/* Twice queue.map_size at once: the 1 MiB step is beyond it. */
	ck_assert_int_eq(qstore_grow(f.qs, &size, f.why), 0);
	ck_assert_uint_eq(size, 128 * 1024);
	/*
	 * The write that failed goes in, and more until the data reaches
	 * past the old map's end (the high-water mark, free pages counted as
	 * used: "above" so high that the free list is not read).
	 */
	for (k = n, rc = 0; rc <= 100; k++) {
		ck_assert_uint_lt(k, 3 * n);
		snprintf(m.qid, sizeof(m.qid), "%016X", k);
		t = qstore_txn_begin(f.qs, 1, f.why);
		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(qstore_msg_put(t, &m), 0);
		ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
		t = qstore_txn_begin(f.qs, 0, f.why);
		rc = qstore_txn_used_pct(t, 1000);
		qstore_txn_abort(t);
	}
	/* Admission still counts against queue.map_size: over half. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_ge(qstore_txn_used_pct(t, 50), 50);
	qstore_txn_abort(t);

	/* The other handle adopts the larger map and reads what it holds. */
	t = qstore_txn_begin(other, 0, f.why);
	ck_assert_msg(t != NULL, "begin: %s", f.why->data);
	ck_assert_int_eq(qstore_msg_get(t, m.qid, &m), 0);
	qstore_txn_abort(t);
	/* No further than twice queue.map_size. */
	ck_assert_int_eq(qstore_grow(f.qs, &size, f.why), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_FULL);
	ck_assert_uint_gt(f.why->len, 0);
	qstore_close(other);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_rehash)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct stat st;
	char a[QID_SIZE], right[PATH_MAX], wrong[PATH_MAX + 32];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	commit_msg(&f, &env, "body\r\n", 6, a);
	file_path(&f, a, right, sizeof(right));
	/*
	 * In another directory, as an older Petrel left it (its h was the
	 * id's last digit, then the seconds' digit alone).
	 */
	snprintf(wrong, sizeof(wrong), "%s/msg/%X/%s", f.dir,
	    (unsigned)((hexval(a[7]) + hexval(a[13]) + 1) % 16), a);
	ck_assert_int_eq(rename(right, wrong), 0);
	ck_assert_ptr_null(qstore_file_open(f.dir, a, f.why));

	ck_assert_int_eq(qstore_file_rehash(f.dir), 1);
	ck_assert_int_eq(stat(wrong, &st), -1);
	qf = qstore_file_open(f.dir, a, f.why);
	ck_assert_msg(qf != NULL, "file_open: %s", f.why->data);
	check_body(qf, "body\r\n", 6);
	qstore_file_close(qf);
	/* Nothing left to move. */
	ck_assert_int_eq(qstore_file_rehash(f.dir), 0);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_sched_stop)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example",
	    "r2@x.example" };
	struct qstore_envelope env;
	struct qstore_txn *t;
	char a[QID_SIZE];
	size_t n = 0;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 3);
	commit_msg(&f, &env, "a\r\n", 3, a);

	/* A nonzero callback result stops the walk. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_sched_iter(t, stop_cb, &n), 0);
	ck_assert_uint_eq(n, 2);
	n = 0;
	ck_assert_int_eq(qstore_msg_iter(t, msg_stop_cb, &n), 0);
	ck_assert_uint_eq(n, 1);
	qstore_txn_abort(t);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_delete)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example",
	    "r2@x.example" };
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct sched_list *sl;
	struct qstore_txn *t;
	char a[QID_SIZE], b[QID_SIZE];
	size_t i, n;
	struct fix f;

	sl = malloc(sizeof(*sl));
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 3);
	commit_msg(&f, &env, "a\r\n", 3, a);
	commit_msg(&f, &env, "b\r\n", 3, b);

	/* One recipient final, one deferred, one pending: all go. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 0, &r), 0);
	r.state = QSTORE_DELIVERED;
	/* Its stored time, not env.arrival: that is b's, maybe a second on. */
	ck_assert_int_eq(qstore_rcpt_put(t, &r, r.next_attempt), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, a, 1, &r), 0);
	r.state = QSTORE_DEFERRED;
	r.next_attempt += 60;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, r.next_attempt - 60), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);

	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_msg_delete(t, a), 0);
	/* Deleting what is not there is not an error. */
	ck_assert_int_eq(qstore_msg_delete(t, "0123456789ABCDEF"), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);

	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(qstore_rcpt_get(t, a, (uint32_t)i, &r), -1);
		ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	}
	n = 0;
	ck_assert_int_eq(qstore_rcpt_iter(t, a, rcpt_count_cb, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* The other message is untouched. */
	ck_assert_int_eq(qstore_msg_get(t, b, &m), 0);
	n = 0;
	ck_assert_int_eq(qstore_rcpt_iter(t, b, rcpt_count_cb, &n), 0);
	ck_assert_uint_eq(n, 3);
	n = 0;
	ck_assert_int_eq(qstore_msg_iter(t, msg_count_cb, &n), 0);
	ck_assert_uint_eq(n, 1);
	qstore_txn_abort(t);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 3);
	ck_assert_uint_eq(sched_count_qid(sl, a), 0);
	ck_assert_uint_eq(sched_count_qid(sl, b), 3);

	/* The file is the caller's to remove, after the records. */
	ck_assert_int_eq(qstore_file_remove(f.dir, a), 0);
	ck_assert_ptr_null(qstore_file_open(f.dir, a, f.why));
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	ck_assert_int_eq(qstore_file_remove(f.dir, a), 0);
	ck_assert_int_eq(qstore_file_remove(f.dir, "../../etc/passwd"), -1);
	free(sl);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_group_commit)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example" };
	struct qstore_envelope env;
	struct qstore_new *qn[5];
	struct qstore_file *qf;
	struct qstore_msginfo m;
	struct sched_list *sl;
	struct qstore_txn *t;
	char ids[5][QID_SIZE], body[32];
	size_t i, n;
	struct fix f;

	sl = malloc(sizeof(*sl));
	fix_setup(&f, MAP_SIZE);
	for (i = 0; i < 5; i++) {
		env_fill(&env, "s@x.example", rcpts, 1 + i % 2);
		snprintf(body, sizeof(body), "message %zu\r\n", i);
		qn[i] = new_msg(&f, &env, body, strlen(body));
		memcpy(ids[i], qstore_new_id(qn[i]), QID_SIZE);
	}
	/* Finished but not committed: no records yet. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(qstore_msg_get(t, ids[i], &m), -1);
	qstore_txn_abort(t);

	ck_assert_int_eq(qstore_commit(f.qs, qn, 5, f.why), 0);
	for (i = 0; i < 5; i++)
		qstore_new_free(qn[i]);
	t = qstore_txn_begin(f.qs, 0, f.why);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(qstore_msg_get(t, ids[i], &m), 0);
		ck_assert_uint_eq(m.nrcpts, 1 + i % 2);
		snprintf(body, sizeof(body), "message %zu\r\n", i);
		ck_assert_uint_eq(m.size, strlen(body));
		qf = qstore_file_open(f.dir, ids[i], f.why);
		ck_assert_ptr_nonnull(qf);
		check_body(qf, body, strlen(body));
		qstore_file_close(qf);
	}
	n = 0;
	ck_assert_int_eq(qstore_msg_iter(t, msg_count_cb, &n), 0);
	ck_assert_uint_eq(n, 5);
	qstore_txn_abort(t);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, 1 + 2 + 1 + 2 + 1);
	free(sl);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_abort)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_new *qn;
	struct qstore_txn *t;
	struct id_list ids;
	char qid[QID_SIZE], path[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f.dir);
	env_fill(&env, "s@x.example", rcpts, 1);

	/* Before finish: the file being written goes. */
	qn = qstore_new_begin(f.qs, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	ck_assert_int_eq(qstore_new_write(qn, "abc", 3, f.why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	file_path(&f, qid, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	qstore_new_abort(qn);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_uint_eq(dir_count(tmp), 0);

	/* After finish, before commit: the file in msg/ goes. */
	qn = new_msg(&f, &env, "abc", 3);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	file_path(&f, qid, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	qstore_new_abort(qn);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_uint_eq(dir_count(tmp), 0);
	memset(&ids, 0, sizeof(ids));
	ck_assert_int_eq(qstore_file_iter(f.dir, id_cb, &ids), 0);
	ck_assert_uint_eq(ids.n, 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), -1);
	qstore_txn_abort(t);

	qstore_new_abort(NULL);
	qstore_new_free(NULL);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_bad_envelope)
{
	static char *good[] = { "r0@x.example" };
	static char *crlf[] = { "r0@x.example", "r1@x.example\r\nR=evil" };
	static char *lf[] = { "r0@x.example\n" };
	struct qstore_envelope env;
	char tmp[PATH_MAX], big[QSTORE_ADDR_MAX + 2];
	char *bigr[1];
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f.dir);

	env_fill(&env, "s@x.example\r\nR=evil@x.example", good, 1);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example\n", good, 1);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example", crlf, 2);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example", lf, 1);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example", good, 1);
	env.client_addr = "192.0.2.1\rA=root";
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example", good, 1);
	env.client_name = "helo\nA=root";
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	env_fill(&env, "s@x.example", good, 1);
	env.auth_user = "alice\n";
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	ck_assert_uint_gt(f.why->len, 0);

	/* No recipients; addresses over the path limit. */
	env_fill(&env, "s@x.example", good, 0);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	memset(big, 'a', sizeof(big));
	big[QSTORE_ADDR_MAX + 1] = '\0';
	env_fill(&env, big, good, 1);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));
	bigr[0] = big;
	env_fill(&env, "s@x.example", bigr, 1);
	ck_assert_ptr_null(qstore_new_begin(f.qs, &env, f.why));

	/* Nothing was created. */
	ck_assert_uint_eq(dir_count(tmp), 0);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_bad_id)
{
	static const char *bad[] = { "../etc/passwd", "", "0123456789abcdef",
	    "0123456789ABCDE", "0123456789ABCDEF0", "../msg/0/0123456789",
	    "/etc/passwd" };
	char path[PATH_MAX];
	struct stat st;
	struct fix f;
	size_t i;

	fix_setup(&f, MAP_SIZE);
	/* A file a bad id could reach by path tricks. */
	snprintf(path, sizeof(path), "%s/etc", f.dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/etc/passwd", f.dir);
	write_file(path, "V=1\nS=\nR=a@b\n\n", 15);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vbuf_reset(f.why);
		ck_assert_msg(qstore_file_open(f.dir, bad[i], f.why) == NULL,
		    "opened \"%s\"", bad[i]);
		ck_assert_uint_gt(f.why->len, 0);
		ck_assert(qstore_errno() != QSTORE_ERR_OK &&
		    qstore_errno() != QSTORE_ERR_NOTFOUND);
		ck_assert_int_eq(qstore_file_remove(f.dir, bad[i]), -1);
		ck_assert_int_eq(qstore_file_quarantine(f.dir, bad[i]), -1);
	}
	ck_assert_ptr_null(qstore_file_open(f.dir, NULL, f.why));
	ck_assert_int_eq(stat(path, &st), 0);

	/* A good id with no file. */
	ck_assert_ptr_null(qstore_file_open(f.dir, "0123456789ABCDEF", f.why));
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_corrupt)
{
	static const char ok[] = "V=1\nT=1700000000.000123\nS=a@b.c\n"
	    "R=d@e.f\nC=\nH=\nA=\n\nbody";
	static const char nul[] = "V=1\nT=1700000000.000123\nS=a\0b.c\n"
	    "R=d@e.f\n\nbody";
	const struct qstore_envelope *fe;
	struct qstore_file *qf;
	char *big;
	struct fix f;
	size_t i, hdr_end;

	fix_setup(&f, MAP_SIZE);

	/* A well-formed hand-written file opens (unknown fields skipped). */
	{
		static const char fwd[] = "V=1\nT=1700000000.000123\nS=a@b.c\n"
		    "R=d@e.f\nR=g@h.i\nZ=future field\n\nbody";
		char path[PATH_MAX];

		file_path(&f, "0123456789ABCDEF", path, sizeof(path));
		write_file(path, fwd, sizeof(fwd) - 1);
		qf = qstore_file_open(f.dir, "0123456789ABCDEF", f.why);
		ck_assert_msg(qf != NULL, "%s", f.why->data);
		fe = qstore_file_envelope(qf);
		ck_assert_str_eq(fe->sender, "a@b.c");
		ck_assert_uint_eq(fe->nrcpts, 2);
		ck_assert_str_eq(fe->rcpts[1], "g@h.i");
		ck_assert_int_eq(fe->arrival, 1700000000);
		ck_assert_int_eq(fe->arrival_us, 123);
		ck_assert_str_eq(fe->client_addr, "");
		ck_assert_str_eq(fe->auth_user, "");
		check_body(qf, "body", 4);
		qstore_file_close(qf);
	}

	check_corrupt(&f, "nothing", "", 0);
	check_corrupt(&f, "no blank line", "V=1\nS=a@b.c\nR=d@e.f\n", 20);
	check_corrupt(&f, "V=2", "V=2\nS=a@b.c\nR=d@e.f\n\nbody", 26);
	check_corrupt(&f, "V=", "V=\nS=a@b.c\nR=d@e.f\n\nbody", 24);
	check_corrupt(&f, "a NUL byte", nul, sizeof(nul) - 1);
	check_corrupt(&f, "a NUL at a line start",
	    "V=1\nS=a@b.c\nR=d@e.f\n\0Z=1\n\nbody", 30);
	check_corrupt(&f, "no sender", "V=1\nR=d@e.f\n\nbody", 18);
	check_corrupt(&f, "no recipient", "V=1\nS=a@b.c\n\nbody", 18);
	check_corrupt(&f, "a line without =", "V=1\nS=a@b.c\nR=d@e.f\nX\n\n",
	    23);
	check_corrupt(&f, "a bad time", "V=1\nT=soon.1\nS=a@b.c\nR=d@e.f\n\n",
	    30);
	check_corrupt(&f, "a time without fraction",
	    "V=1\nT=1700000000\nS=a@b.c\nR=d@e.f\n\n", 35);
	check_corrupt(&f, "a time with a bad fraction",
	    "V=1\nT=1700000000.1000000\nS=a@b.c\nR=d@e.f\n\n", 43);
	check_corrupt(&f, "a leading blank line", "\nV=1\nS=a\nR=b\n\n", 14);
	/* Every truncation of a good file short of its blank line. */
	hdr_end = (size_t)(strstr(ok, "\n\n") - ok);
	for (i = 0; i <= hdr_end + 1; i++)
		check_corrupt(&f, "a truncated header", ok, i);
	/*
	 * The envelope read is bounded (1 MiB): a header that never ends is
	 * refused, not read forever, and so is a 3 MiB one that does end.
	 */
	big = malloc(3 * 1024 * 1024 + 8);
	ck_assert_ptr_nonnull(big);
	memcpy(big, "V=1\nS=a@b.c\n", 12);
	for (i = 12; i + 8 <= 3 * 1024 * 1024; i += 8)
		memcpy(big + i, "R=a@b.c\n", 8);
	check_corrupt(&f, "an endless header", big, i);
	memcpy(big + i, "\nbody", 5);
	check_corrupt(&f, "a 3 MiB header", big, i + 5);
	free(big);
	fix_teardown(&f);
}
END_TEST

/*
 * A handle for delivery reports (bounce) may insert where the headroom
 * mark refuses new mail from clients: the queue owes those reports.
 */
START_TEST(test_admit_reports)
{
	static char *rcpts[] = { "a-long-recipient-address-1@full.example.org",
	    "a-long-recipient-address-2@full.example.org",
	    "a-long-recipient-address-3@full.example.org" };
	static char *sender[] = { "s@x.example" };
	struct qstore_envelope env;
	struct qstore_new *qn;
	char qid[QID_SIZE];
	size_t n;
	struct fix f;

	fix_setup(&f, 64 * 1024);
	env_fill(&env, "s@x.example", rcpts, 3);
	for (n = 0;; n++) {
		ck_assert_msg(n < 1000, "map never filled");
		qn = new_msg(&f, &env, "x\r\n", 3);
		if (qstore_commit(f.qs, &qn, 1, f.why) == -1) {
			qstore_new_abort(qn);
			break;
		}
		qstore_new_free(qn);
	}
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_FULL);
	ck_assert_ptr_nonnull(strstr(f.why->data, "less than 50% free"));
	/* A report, from <> to one sender, still goes in. */
	qstore_admit_reports(f.qs);
	env_fill(&env, "", sender, 1);
	commit_msg(&f, &env, "report\r\n", 8, qid);
	ck_assert(qid_ok(qid));
	fix_teardown(&f);
}
END_TEST

START_TEST(test_map_full)
{
	struct qstore_envelope env;
	struct qstore_new *qn[4];
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct sched_list *sl;
	struct qstore_txn *t;
	char **rcpts, ok_ids[512][QID_SIZE], bad_ids[4][QID_SIZE];
	size_t i, k, nok = 0, nrcpt = 20, before;
	int rc = 0;
	struct fix f;

	/*
	 * A 64 KiB map fills after a few hundred recipients: commit must
	 * then fail with QSTORE_ERR_FULL, leaving no record of that batch.
	 */
	rcpts = calloc(nrcpt, sizeof(*rcpts));
	for (i = 0; i < nrcpt; i++) {
		rcpts[i] = malloc(64);
		snprintf(rcpts[i], 64, "recipient-%02zu@full.example.org", i);
	}
	sl = malloc(sizeof(*sl));
	fix_setup(&f, 64 * 1024);
	env_fill(&env, "s@x.example", rcpts, nrcpt);
	for (;;) {
		ck_assert_msg(nok < 500, "map never filled");
		for (k = 0; k < 4; k++) {
			qn[k] = new_msg(&f, &env, "x\r\n", 3);
			memcpy(bad_ids[k], qstore_new_id(qn[k]), QID_SIZE);
		}
		rc = qstore_commit(f.qs, qn, 4, f.why);
		if (rc == -1)
			break;
		for (k = 0; k < 4; k++) {
			memcpy(ok_ids[nok++], bad_ids[k], QID_SIZE);
			qstore_new_free(qn[k]);
		}
	}
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_FULL);
	ck_assert_uint_gt(f.why->len, 0);
	ck_assert_uint_gt(nok, 0);
	/* Refused at the headroom mark: half the map or more is in use. */
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_ge(qstore_txn_used_pct(t, 50), 50);
	ck_assert_int_lt(qstore_txn_used_pct(t, 50), 100);
	qstore_txn_abort(t);
	/* The caller aborts the batch: its files go. */
	for (k = 0; k < 4; k++)
		qstore_new_abort(qn[k]);

	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	for (k = 0; k < 4; k++) {
		ck_assert_int_eq(qstore_msg_get(t, bad_ids[k], &m), -1);
		ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
		for (i = 0; i < nrcpt; i++)
			ck_assert_int_eq(qstore_rcpt_get(t, bad_ids[k],
			    (uint32_t)i, &r), -1);
		ck_assert_ptr_null(qstore_file_open(f.dir, bad_ids[k], f.why));
	}
	/* What was committed before is all there. */
	for (i = 0; i < nok; i++) {
		ck_assert_int_eq(qstore_msg_get(t, ok_ids[i], &m), 0);
		ck_assert_uint_eq(m.nrcpts, nrcpt);
		ck_assert_int_eq(qstore_rcpt_get(t, ok_ids[i],
		    (uint32_t)nrcpt - 1, &r), 0);
	}
	qstore_txn_abort(t);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, nok * nrcpt);
	for (k = 0; k < 4; k++)
		ck_assert_uint_eq(sched_count_qid(sl, bad_ids[k]), 0);

	/* The store still works: the same map stays full, reads go on. */
	before = sl->n;
	qn[0] = new_msg(&f, &env, "x\r\n", 3);
	ck_assert_int_eq(qstore_commit(f.qs, qn, 1, f.why), -1);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_FULL);
	qstore_new_abort(qn[0]);
	sched_get(&f, sl);
	ck_assert_uint_eq(sl->n, before);

	for (i = 0; i < nrcpt; i++)
		free(rcpts[i]);
	free(rcpts);
	free(sl);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_file_iter)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_new *loose;
	struct id_list ids;
	char want[4][QID_SIZE], path[PATH_MAX];
	size_t i, k, found;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	for (i = 0; i < 3; i++)
		commit_msg(&f, &env, "x\r\n", 3, want[i]);
	/* A finished file whose records never came: reconcile sees it. */
	loose = new_msg(&f, &env, "y\r\n", 3);
	memcpy(want[3], qstore_new_id(loose), QID_SIZE);
	qstore_new_free(loose);
	/* Names that are not ids are skipped; tmp/ is not looked at. */
	snprintf(path, sizeof(path), "%s/msg/0/junk", f.dir);
	write_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/msg/A/0123456789abcdef", f.dir);
	write_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/tmp/0123456789ABCDEF", f.dir);
	write_file(path, "x", 1);

	memset(&ids, 0, sizeof(ids));
	ck_assert_int_eq(qstore_file_iter(f.dir, id_cb, &ids), 0);
	ck_assert_uint_eq(ids.n, 4);
	for (i = 0; i < 4; i++) {
		found = 0;
		for (k = 0; k < ids.n; k++)
			if (strcmp(ids.ids[k], want[i]) == 0)
				found++;
		ck_assert_msg(found == 1, "%s listed %zu times", want[i],
		    found);
	}

	/* A nonzero callback result stops the walk. */
	memset(&ids, 0, sizeof(ids));
	ids.stop_after = 2;
	ck_assert_int_eq(qstore_file_iter(f.dir, id_cb, &ids), 0);
	ck_assert_uint_eq(ids.n, 2);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_quarantine)
{
	static char *rcpts[] = { "r0@x.example" };
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct id_list ids;
	char qid[QID_SIZE], path[PATH_MAX], buf[256];
	struct stat st;
	struct fix f;
	ssize_t n;
	int fd;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	commit_msg(&f, &env, "quarantined body\r\n", 18, qid);
	file_path(&f, qid, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);

	ck_assert_int_eq(qstore_file_quarantine(f.dir, qid), 0);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_ptr_null(qstore_file_open(f.dir, qid, f.why));
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_NOTFOUND);
	memset(&ids, 0, sizeof(ids));
	ck_assert_int_eq(qstore_file_iter(f.dir, id_cb, &ids), 0);
	ck_assert_uint_eq(ids.n, 0);

	/* Kept whole in corrupt/ for inspection. */
	snprintf(path, sizeof(path), "%s/corrupt/%s", f.dir, qid);
	fd = open(path, O_RDONLY);
	ck_assert_int_ne(fd, -1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_gt(n, 18);
	buf[n] = '\0';
	ck_assert_str_eq(buf + n - 18, "quarantined body\r\n");
	ck_assert(strncmp(buf, "V=1\n", 4) == 0);

	/* Quarantining what is not there is not an error. */
	ck_assert_int_eq(qstore_file_quarantine(f.dir, qid), 0);

	/* A damaged file: open says corrupt, quarantine moves it. */
	file_path(&f, "00000000000000AB", path, sizeof(path));
	write_file(path, "garbage", 7);
	qf = qstore_file_open(f.dir, "00000000000000AB", f.why);
	ck_assert_ptr_null(qf);
	ck_assert_int_eq(qstore_errno(), QSTORE_ERR_CORRUPT);
	ck_assert_int_eq(qstore_file_quarantine(f.dir, "00000000000000AB"), 0);
	ck_assert_int_eq(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/corrupt/00000000000000AB", f.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 7);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_reopen)
{
	static char *rcpts[] = { "r0@x.example", "r1@x.example" };
	struct qstore_envelope env;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct qstore_txn *t;
	char qid[QID_SIZE];
	struct fix f;

	/* Records are on disk: a new open sees them. */
	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 2);
	commit_msg(&f, &env, "x\r\n", 3, qid);
	qstore_close(f.qs);
	f.qs = qstore_open(&f.cfg, f.why);
	ck_assert_ptr_nonnull(f.qs);
	ck_assert_int_eq(qstore_reader_check(f.qs), 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_uint_eq(m.nrcpts, 2);
	ck_assert_int_eq(qstore_rcpt_get(t, qid, 1, &r), 0);
	ck_assert_str_eq(r.address, "r1@x.example");
	qstore_txn_abort(t);
	qstore_txn_abort(NULL);
	qstore_close(NULL);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_state_name)
{
	ck_assert_str_eq(qstore_state_name(QSTORE_PENDING), "pending");
	ck_assert_str_eq(qstore_state_name(QSTORE_DEFERRED), "deferred");
	ck_assert_str_eq(qstore_state_name(QSTORE_DELIVERED), "delivered");
	ck_assert_str_eq(qstore_state_name(QSTORE_FAILED), "failed");
}
END_TEST

/*
 * relayq -h: the held time round-trips in the message record (absent
 * when not held, so records without it read as not held), and a recipient
 * at QSTORE_HELD_NEXT sorts after every real schedule entry.
 */
START_TEST(test_held_roundtrip)
{
	struct fix f;
	struct qstore_envelope env;
	struct qstore_txn *t;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	struct sched_list *l = calloc(1, sizeof(*l));
	char *rcpts[] = { "a@one.example", "b@two.example" };
	char qid[QID_SIZE];
	int64_t old;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "app@example.com", rcpts, 2);
	commit_msg(&f, &env, "x\r\n", 3, qid);
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_int_eq(m.held, 0);
	m.held = 1764932400;
	ck_assert_int_eq(qstore_msg_put(t, &m), 0);
	ck_assert_int_eq(qstore_rcpt_get(t, qid, 0, &r), 0);
	old = r.next_attempt;
	r.next_attempt = QSTORE_HELD_NEXT;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_int_eq(m.held, 1764932400);
	qstore_txn_abort(t);
	sched_get(&f, l);
	ck_assert_uint_eq(l->n, 2);
	ck_assert_uint_eq(l->e[0].index, 1);
	ck_assert_uint_eq(l->e[1].index, 0);
	ck_assert(l->e[1].when == QSTORE_HELD_NEXT);
	/* Released: the mark goes from the record. */
	t = qstore_txn_begin(f.qs, 1, f.why);
	m.held = 0;
	ck_assert_int_eq(qstore_msg_put(t, &m), 0);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	ck_assert_int_eq(m.held, 0);
	qstore_txn_abort(t);
	free(l);
	fix_teardown(&f);
}
END_TEST

/* relayq's selection: id, sender and recipient domain, any case. */
START_TEST(test_select_match)
{
	struct fix f;
	struct qstore_envelope env;
	struct qstore_txn *t;
	struct qstore_msginfo m;
	struct qstore_rcpt r;
	char *rcpts[] = { "a@One.Example", "b@two.example" };
	char qid[QID_SIZE];
	struct qstore_select sel;
	int64_t old;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "App@Example.com", rcpts, 2);
	commit_msg(&f, &env, "x\r\n", 3, qid);
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_int_eq(qstore_msg_get(t, qid, &m), 0);
	memset(&sel, 0, sizeof(sel));
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 1);
	sel.qid = qid;
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 1);
	sel.qid = "0000000000000000";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 0);
	sel.qid = NULL;
	sel.sender = "app@example.COM";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 1);
	sel.sender = "";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 0);
	sel.sender = NULL;
	sel.domain = "one.example";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 1);
	sel.domain = "example";		/* no parent-domain match */
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 0);
	/* A final recipient's domain no longer names the message. */
	ck_assert_int_eq(qstore_rcpt_get(t, qid, 0, &r), 0);
	old = r.next_attempt;
	r.state = QSTORE_FAILED;
	ck_assert_int_eq(qstore_rcpt_put(t, &r, old), 0);
	sel.domain = "one.example";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 0);
	sel.domain = "TWO.example";
	ck_assert_int_eq(qstore_select_match(t, &m, &sel), 1);
	qstore_txn_abort(t);
	fix_teardown(&f);
}
END_TEST

/*
 * The bulk lane (issue 11): set by the envelope or by qstore_new_bulk
 * before the envelope is written, in both the file (L=bulk) and the msg
 * record; a message without it reads as transactional; once the envelope
 * is on disk qstore_new_bulk refuses.
 */
START_TEST(test_lane)
{
	static char *rcpts[] = { "r@x.example" };
	const struct qstore_envelope *fe;
	struct qstore_envelope env;
	struct qstore_file *qf;
	struct qstore_msginfo m;
	struct qstore_new *qn;
	struct qstore_txn *t;
	char a[QID_SIZE], b[QID_SIZE], c[QID_SIZE];
	char *big;
	struct fix f;

	fix_setup(&f, MAP_SIZE);
	env_fill(&env, "s@x.example", rcpts, 1);
	env.bulk = 1;
	commit_msg(&f, &env, "a\r\n", 3, a);
	env_fill(&env, "s@x.example", rcpts, 1);
	qn = qstore_new_begin(f.qs, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	ck_assert_int_eq(qstore_new_bulk(qn), 0);
	ck_assert_int_eq(qstore_new_bulk(qn), 0);	/* once in the file */
	ck_assert_int_eq(qstore_new_write(qn, "b\r\n", 3, f.why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	memcpy(b, qstore_new_id(qn), QID_SIZE);
	ck_assert_int_eq(qstore_commit(f.qs, &qn, 1, f.why), 0);
	qstore_new_free(qn);
	/* A write that reached the file: too late. */
	qn = qstore_new_begin(f.qs, &env, f.why);
	ck_assert_ptr_nonnull(qn);
	big = calloc(1, BIG_WRITE + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', BIG_WRITE);
	ck_assert_int_eq(qstore_new_write(qn, big, BIG_WRITE, f.why), 0);
	free(big);
	ck_assert_int_eq(qstore_new_bulk(qn), -1);
	ck_assert_int_eq(qstore_new_finish(qn, f.why), 0);
	memcpy(c, qstore_new_id(qn), QID_SIZE);
	ck_assert_int_eq(qstore_commit(f.qs, &qn, 1, f.why), 0);
	qstore_new_free(qn);

	qf = qstore_file_open(f.dir, a, f.why);
	ck_assert_ptr_nonnull(qf);
	fe = qstore_file_envelope(qf);
	ck_assert_int_eq(fe->bulk, 1);
	ck_assert_str_eq(fe->sender, "s@x.example");
	qstore_file_close(qf);
	qf = qstore_file_open(f.dir, b, f.why);
	ck_assert_ptr_nonnull(qf);
	fe = qstore_file_envelope(qf);
	ck_assert_int_eq(fe->bulk, 1);
	ck_assert_uint_eq(fe->nrcpts, 1);
	ck_assert_str_eq(fe->auth_user, "alice");
	qstore_file_close(qf);
	qf = qstore_file_open(f.dir, c, f.why);
	ck_assert_ptr_nonnull(qf);
	ck_assert_int_eq(qstore_file_envelope(qf)->bulk, 0);
	qstore_file_close(qf);

	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, a, &m), 0);
	ck_assert_int_eq(m.bulk, 1);
	ck_assert_int_eq(qstore_msg_get(t, b, &m), 0);
	ck_assert_int_eq(m.bulk, 1);
	ck_assert_int_eq(qstore_msg_get(t, c, &m), 0);
	ck_assert_int_eq(m.bulk, 0);
	qstore_txn_abort(t);
	fix_teardown(&f);
}
END_TEST

/* The newest due entries first, none after until. */
START_TEST(test_sched_iter_back)
{
	static char *rcpts[] = { "r@x.example" };
	struct qstore_envelope env;
	struct qstore_new *qn;
	struct sched_list *sl;
	struct qstore_txn *t;
	int64_t b = (int64_t)time(NULL) + 1000;
	int64_t whens[4] = { b + 100, b + 200, b + 200, b + 300 };
	struct fix f;
	size_t i;

	sl = malloc(sizeof(*sl));
	fix_setup(&f, MAP_SIZE);
	for (i = 0; i < 4; i++) {
		env_fill(&env, "s@x.example", rcpts, 1);
		qn = new_msg(&f, &env, "a\r\n", 3);
		qstore_new_first_attempt(qn, whens[i]);
		ck_assert_int_eq(qstore_commit(f.qs, &qn, 1, f.why), 0);
		qstore_new_free(qn);
	}
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	sl->n = 0;
	ck_assert_int_eq(qstore_sched_iter_back(t, b + 250, sched_cb, sl), 0);
	ck_assert_uint_eq(sl->n, 3);
	ck_assert_int_eq(sl->e[0].when, b + 200);
	ck_assert_int_eq(sl->e[1].when, b + 200);
	ck_assert_int_eq(sl->e[2].when, b + 100);
	sl->n = 0;
	ck_assert_int_eq(qstore_sched_iter_back(t, b + 300, sched_cb, sl), 0);
	ck_assert_uint_eq(sl->n, 4);
	ck_assert_int_eq(sl->e[0].when, b + 300);
	sl->n = 0;
	ck_assert_int_eq(qstore_sched_iter_back(t, b + 1000, sched_cb, sl), 0);
	ck_assert_uint_eq(sl->n, 4);
	sl->n = 0;
	ck_assert_int_eq(qstore_sched_iter_back(t, b + 99, sched_cb, sl), 0);
	ck_assert_uint_eq(sl->n, 0);
	qstore_txn_abort(t);
	free(sl);
	fix_teardown(&f);
}
END_TEST

static Suite *
qstore_suite(void)
{
	Suite *s = suite_create("qstore");
	TCase *tc = tcase_create("qstore");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_create_dirs);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_held_roundtrip);
	tcase_add_test(tc, test_select_match);
	tcase_add_test(tc, test_null_sender);
	tcase_add_test(tc, test_large_body);
	tcase_add_test(tc, test_binary_body);
	tcase_add_test(tc, test_many_rcpts);
	tcase_add_test(tc, test_sched);
	tcase_add_test(tc, test_sched_stop);
	tcase_add_test(tc, test_rcpt_remove);
	tcase_add_test(tc, test_dsn_fields);
	tcase_add_test(tc, test_pool_reuse);
	tcase_add_test(tc, test_pool_own_first);
	tcase_add_test(tc, test_pool_limits);
	tcase_add_test(tc, test_pool_extra_name);
	tcase_add_test(tc, test_commit_file_gone);
	tcase_add_test(tc, test_tmp_clean);
	tcase_add_test(tc, test_grow);
	tcase_add_test(tc, test_rehash);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_abort);
	tcase_add_test(tc, test_bad_envelope);
	tcase_add_test(tc, test_pool_field);
	tcase_add_test(tc, test_bad_id);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_map_full);
	tcase_add_test(tc, test_admit_reports);
	tcase_add_test(tc, test_file_iter);
	tcase_add_test(tc, test_quarantine);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_state_name);
	tcase_add_test(tc, test_lane);
	tcase_add_test(tc, test_sched_iter_back);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(qstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
