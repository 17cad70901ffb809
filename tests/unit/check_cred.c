/*
 * check_cred.c - unit tests for lib/cred: user names, generated secrets,
 * verification and its cache, the user database in a mkdtemp() queue
 * directory, and per-credential policy as stored (limits, rotation,
 * disabling, delivery reports), with an injected clock for grace periods.
 * The hash strings are tested in check_cred_hash.c, the policy lists in
 * check_cred_policy.c.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "cfg.h"
#include "cred.h"
#include "cred_hash.h"
#include "vbuf.h"

struct names {
	char		 list[8][CRED_NAME_MAX + 1];
	int64_t		 created[8];
	int		 n;
};

struct walked {
	char		 list[8][CRED_NAME_MAX + 1];
	int		 disabled[8];	/* -1: corrupt (no policy) */
	int		 n;
};

static char qdir[64];
static struct cfg tcfg;
static time_t fake_now;

static int	collect(const char *, int64_t, void *);
static int	stop_first(const char *, int64_t, void *);
static void	rmpath(const char *);
static void	setup(void);
static void	teardown(void);
static void	put_raw(const char *, const struct vbuf *);
static int	get_raw(const char *, struct vbuf *);
static time_t	fake_clock(void);
static int	walk_collect(const char *, const struct cred_policy *, void *);
static struct cred_db *open_rw(void);
static Suite	*cred_suite(void);

static int
collect(const char *user, int64_t created, void *arg)
{
	struct names *nm = arg;

	ck_assert_int_lt(nm->n, 8);
	snprintf(nm->list[nm->n], sizeof(nm->list[0]), "%s", user);
	nm->created[nm->n] = created;
	nm->n++;
	return 0;
}

static int
stop_first(const char *user, int64_t created, void *arg)
{
	(void)user;
	(void)created;
	(*(int *)arg)++;
	return 1;
}

static void
rmpath(const char *p)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s/data.mdb", p, CRED_DIR);
	(void)unlink(buf);
	snprintf(buf, sizeof(buf), "%s/%s/lock.mdb", p, CRED_DIR);
	(void)unlink(buf);
	snprintf(buf, sizeof(buf), "%s/%s", p, CRED_DIR);
	(void)rmdir(buf);
	(void)rmdir(p);
}

static void
setup(void)
{
	snprintf(qdir, sizeof(qdir), "/tmp/check_cred.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(qdir));
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
}

static void
teardown(void)
{
	rmpath(qdir);
}

/* Stores a raw record for user, bypassing cred_user_add. */
static void
put_raw(const char *user, const struct vbuf *rec)
{
	char dir[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;

	snprintf(dir, sizeof(dir), "%s/%s", qdir, CRED_DIR);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, CRED_MAP_SIZE), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, CRED_DB_USERS, MDB_CREATE, &dbi),
	    0);
	k.mv_data = (void *)user;
	k.mv_size = strlen(user);
	v.mv_data = rec->data;
	v.mv_size = rec->len;
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Copies user's raw record into out; returns 1 found, 0 not. */
static int
get_raw(const char *user, struct vbuf *out)
{
	char dir[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", qdir, CRED_DIR);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, CRED_MAP_SIZE), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, CRED_DB_USERS, 0, &dbi), 0);
	k.mv_data = (void *)user;
	k.mv_size = strlen(user);
	rc = mdb_get(txn, dbi, &k, &v);
	vbuf_reset(out);
	if (rc == 0)
		(void)vbuf_add(out, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0;
}

static time_t
fake_clock(void)
{
	return fake_now;
}

static int
walk_collect(const char *user, const struct cred_policy *pol, void *arg)
{
	struct walked *w = arg;

	ck_assert_int_lt(w->n, 8);
	snprintf(w->list[w->n], sizeof(w->list[0]), "%s", user);
	w->disabled[w->n] = pol == NULL ? -1 : pol->disabled;
	w->n++;
	return 0;
}

static struct cred_db *
open_rw(void)
{
	struct vbuf why;
	struct cred_db *db;

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	vbuf_release(&why);
	return db;
}

START_TEST(test_name_ok)
{
	char big[CRED_NAME_MAX + 2];

	ck_assert_int_eq(cred_name_ok("alice"), 1);
	ck_assert_int_eq(cred_name_ok("app-1.mailer_x+tag@example.com"), 1);
	ck_assert_int_eq(cred_name_ok("A"), 1);
	ck_assert_int_eq(cred_name_ok(""), 0);
	ck_assert_int_eq(cred_name_ok("with space"), 0);
	ck_assert_int_eq(cred_name_ok("colon:x"), 0);
	ck_assert_int_eq(cred_name_ok("slash/x"), 0);
	ck_assert_int_eq(cred_name_ok("nl\n"), 0);
	ck_assert_int_eq(cred_name_ok("caf\xc3\xa9"), 0);
	memset(big, 'a', sizeof(big));
	big[CRED_NAME_MAX] = '\0';
	ck_assert_int_eq(cred_name_ok(big), 1);
	big[CRED_NAME_MAX] = 'a';
	big[CRED_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(cred_name_ok(big), 0);
}
END_TEST

START_TEST(test_generate_secret)
{
	struct vbuf a, b;
	size_t i;

	vbuf_init(&a, 0);
	vbuf_init(&b, 0);
	ck_assert_int_eq(cred_generate_secret(&a), 0);
	ck_assert_int_eq(cred_generate_secret(&b), 0);
	ck_assert_uint_eq(a.len, 32);
	ck_assert_str_ne(a.data, b.data);
	for (i = 0; i < a.len; i++)
		ck_assert_msg(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
		    "opqrstuvwxyz0123456789-_", a.data[i]) != NULL,
		    "char %c", a.data[i]);
	vbuf_wipe(&a);
	vbuf_release(&a);
	vbuf_release(&b);
}
END_TEST

/*
 * The verified-secret cache answers repeat logins without the KDF, but
 * never outlives a change: a wrong secret, a deleted user and a user
 * re-added with a new secret are all judged afresh.
 */
START_TEST(test_verify_cache)
{
	struct vbuf why;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "cred_open: %s", why.data);
	ck_assert_int_eq(cred_user_add(db, "app", "first", 5, &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "first", 5), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "first", 5), 1);	/* cached */
	ck_assert_int_eq(cred_verify(ro, "app", "firsT", 5), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "first", 4), 0);
	ck_assert_int_eq(cred_user_del(db, "app", &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "first", 5), 0);
	ck_assert_int_eq(cred_user_add(db, "app", "second", 6, &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "first", 5), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "second", 6), 1);
	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
}
END_TEST

/*
 * The three steps of cred_verify: start decides from the cache or hands
 * out a job, work runs the KDF (on any thread), finish fills the cache.
 */
START_TEST(test_verify_steps)
{
	struct cred_verify_job *job;
	struct cred_policy pol;
	struct vbuf why;
	struct cred_db *db, *ro;
	char long_secret[CRED_SECRET_MAX + 1];

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "cred_open: %s", why.data);
	ck_assert_int_eq(cred_user_add(db, "steps", "right", 5, &why), 0);

	/* A first login needs the KDF; the job carries what it needs. */
	ck_assert_int_eq(cred_verify_start(ro, "steps", "right", 5, &job), 2);
	ck_assert_ptr_nonnull(job);
	cred_verify_work(job);
	ck_assert_int_eq(cred_verify_finish(ro, job), 1);
	/* Now the cache answers at once, with no job. */
	ck_assert_int_eq(cred_verify_start(ro, "steps", "right", 5, &job), 1);
	ck_assert_ptr_null(job);
	/* Wrong, unknown, too long: a job each, and 0. */
	ck_assert_int_eq(cred_verify_start(ro, "steps", "wrong", 5, &job), 2);
	cred_verify_work(job);
	ck_assert_int_eq(cred_verify_finish(ro, job), 0);
	ck_assert_int_eq(cred_verify_start(ro, "nobody", "right", 5, &job), 2);
	cred_verify_work(job);
	ck_assert_int_eq(cred_verify_finish(ro, job), 0);
	memset(long_secret, 'x', sizeof(long_secret));
	ck_assert_int_eq(cred_verify_start(ro, "steps", long_secret,
	    sizeof(long_secret), &job), 2);
	cred_verify_work(job);
	ck_assert_int_eq(cred_verify_finish(ro, job), 0);
	/* A job may be dropped without finishing it. */
	ck_assert_int_eq(cred_verify_start(ro, "steps", "wrong", 5, &job), 2);
	cred_verify_cancel(job);
	/* Disabled: the cached match no longer counts. */
	memset(&pol, 0, sizeof(pol));
	pol.disabled = 1;
	ck_assert_int_eq(cred_user_set(db, "steps", &pol, CRED_POLICY_DISABLED,
	    &why), 1);
	ck_assert_int_eq(cred_verify_start(ro, "steps", "right", 5, &job), 2);
	cred_verify_work(job);
	ck_assert_int_eq(cred_verify_finish(ro, job), 0);
	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
}
END_TEST

/*
 * cred_verify_same: the same secret of the same user, in the same state,
 * is one check; anything else is not. Made before any finish, as a
 * burst of first logins makes them.
 */
START_TEST(test_verify_same)
{
	struct cred_verify_job *a, *b, *c, *d, *u1, *u2, *x1, *x2;
	struct cred_policy pol;
	struct vbuf why;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "cred_open: %s", why.data);
	ck_assert_int_eq(cred_user_add(db, "same1", "right", 5, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "same2", "right", 5, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "off", "right", 5, &why), 0);
	memset(&pol, 0, sizeof(pol));
	pol.disabled = 1;
	ck_assert_int_eq(cred_user_set(db, "off", &pol, CRED_POLICY_DISABLED,
	    &why), 1);

	ck_assert_int_eq(cred_verify_start(ro, "same1", "right", 5, &a), 2);
	ck_assert_int_eq(cred_verify_start(ro, "same1", "right", 5, &b), 2);
	ck_assert_int_eq(cred_verify_start(ro, "same1", "righT", 5, &c), 2);
	ck_assert_int_eq(cred_verify_start(ro, "same2", "right", 5, &d), 2);
	ck_assert_int_eq(cred_verify_start(ro, "nobody", "right", 5, &u1), 2);
	ck_assert_int_eq(cred_verify_start(ro, "nobody", "right", 5, &u2), 2);
	ck_assert_int_eq(cred_verify_start(ro, "off", "right", 5, &x1), 2);
	ck_assert_int_eq(cred_verify_start(ro, "off", "right", 5, &x2), 2);
	ck_assert_int_eq(cred_verify_same(a, b), 1);
	ck_assert_int_eq(cred_verify_same(b, a), 1);
	ck_assert_int_eq(cred_verify_same(a, c), 0);	/* another secret */
	ck_assert_int_eq(cred_verify_same(a, d), 0);	/* another user */
	ck_assert_int_eq(cred_verify_same(u1, u2), 0);	/* unknown user */
	ck_assert_int_eq(cred_verify_same(x1, x2), 0);	/* disabled */
	/* One run answers both. */
	cred_verify_work(a);
	ck_assert_int_eq(cred_verify_finish(ro, a), 1);
	cred_verify_cancel(b);
	ck_assert_int_eq(cred_verify_start(ro, "same1", "right", 5, &a), 1);
	cred_verify_cancel(c);
	cred_verify_cancel(d);
	cred_verify_cancel(u1);
	cred_verify_cancel(u2);
	cred_verify_cancel(x1);
	cred_verify_cancel(x2);
	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_db_add_list_del)
{
	struct vbuf why;
	struct cred_db *db, *ro;
	struct names nm;
	struct stat st;
	char dir[256];
	int n;

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	snprintf(dir, sizeof(dir), "%s/%s", qdir, CRED_DIR);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);

	ck_assert_int_eq(cred_user_add(db, "alice", "s3cret", 6, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "bob@example.com", "pw2", 3, &why),
	    0);
	/* Duplicate, bad name, empty and over-long secrets are refused. */
	ck_assert_int_eq(cred_user_add(db, "alice", "other", 5, &why), -1);
	ck_assert_msg(strstr(why.data, "exists") != NULL, "%s", why.data);
	ck_assert_int_eq(cred_user_add(db, "bad name", "x", 1, &why), -1);
	ck_assert_int_eq(cred_user_add(db, "carol", "", 0, &why), -1);
	ck_assert_int_eq(cred_user_add(db, "carol", "x", CRED_SECRET_MAX + 1,
	    &why), -1);

	/* A long-running reader opened before the changes. */
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "cred_open ro: %s", why.data);
	ck_assert_int_eq(cred_user_add(ro, "dave", "x", 1, &why), -1);
	ck_assert_int_eq(cred_user_del(ro, "alice", &why), -1);

	ck_assert_int_eq(cred_verify(ro, "alice", "s3cret", 6), 1);
	ck_assert_int_eq(cred_verify(ro, "alice", "s3cres", 6), 0);
	ck_assert_int_eq(cred_verify(ro, "alice", "s3cret", 5), 0);
	ck_assert_int_eq(cred_verify(ro, "nobody", "s3cret", 6), 0);
	ck_assert_int_eq(cred_verify(ro, "bad name", "s3cret", 6), 0);
	ck_assert_int_eq(cred_verify(db, "bob@example.com", "pw2", 3), 1);

	memset(&nm, 0, sizeof(nm));
	ck_assert_int_eq(cred_user_list(db, collect, &nm, &why), 0);
	ck_assert_int_eq(nm.n, 2);
	ck_assert_str_eq(nm.list[0], "alice");
	ck_assert_str_eq(nm.list[1], "bob@example.com");
	ck_assert_int_gt(nm.created[0], 1600000000);
	n = 0;
	ck_assert_int_eq(cred_user_list(ro, stop_first, &n, &why), 0);
	ck_assert_int_eq(n, 1);

	/* Delete: the reader refuses at once; deleting again fails. */
	ck_assert_int_eq(cred_user_del(db, "alice", &why), 0);
	ck_assert_int_eq(cred_verify(ro, "alice", "s3cret", 6), 0);
	ck_assert_int_eq(cred_user_del(db, "alice", &why), -1);
	ck_assert_msg(strstr(why.data, "no such user alice") != NULL, "%s",
	    why.data);
	memset(&nm, 0, sizeof(nm));
	ck_assert_int_eq(cred_user_list(ro, collect, &nm, &why), 0);
	ck_assert_int_eq(nm.n, 1);
	ck_assert_str_eq(nm.list[0], "bob@example.com");

	/* Re-adding after delete works with the new secret only. */
	ck_assert_int_eq(cred_user_add(db, "alice", "new", 3, &why), 0);
	ck_assert_int_eq(cred_verify(ro, "alice", "new", 3), 1);
	ck_assert_int_eq(cred_verify(ro, "alice", "s3cret", 6), 0);

	cred_close(ro);
	cred_close(db);
	cred_close(NULL);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_db_readonly_before_create)
{
	struct vbuf why;
	struct cred_db *db, *ro;
	struct names nm;

	vbuf_init(&why, 0);
	/* smtpd may start before relayctl ever ran: no users, no error. */
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "cred_open ro: %s", why.data);
	ck_assert_int_eq(cred_verify(ro, "alice", "pw", 2), 0);
	memset(&nm, 0, sizeof(nm));
	ck_assert_int_eq(cred_user_list(ro, collect, &nm, &why), 0);
	ck_assert_int_eq(nm.n, 0);

	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	ck_assert_int_eq(cred_user_add(db, "alice", "pw", 2, &why), 0);
	/* The reader finds the new environment on its next lookup. */
	ck_assert_int_eq(cred_verify(ro, "alice", "pw", 2), 1);
	cred_close(db);
	cred_close(ro);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_db_records)
{
	struct vbuf why, rec, h;
	struct cred_db *db;
	struct names nm;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	cred_close(db);

	/* Unknown attributes are ignored; a missing "created" is 0. */
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, "future_policy", "whatever");
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, "domains", "example.com");
	attr_end(&rec);
	put_raw("eve", &rec);

	/* Corrupt records: an error, never a match, never a crash. */
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_HASH, "$scrypt$ln=31,r=8,p=1$AAAA$AAAA");
	attr_end(&rec);
	put_raw("mallory", &rec);
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_CREATED, "5");
	attr_end(&rec);
	put_raw("nohash", &rec);
	vbuf_reset(&rec);
	(void)vbuf_add(&rec, "hash\0abc", 8);	/* truncated record */
	put_raw("trunc", &rec);

	db = cred_open(&tcfg, 0, &why);
	ck_assert_msg(db != NULL, "cred_open: %s", why.data);
	ck_assert_int_eq(cred_verify(db, "eve", "pw", 2), 1);
	ck_assert_int_eq(cred_verify(db, "eve", "px", 2), 0);
	ck_assert_int_eq(cred_verify(db, "mallory", "pw", 2), -1);
	ck_assert_int_eq(cred_verify(db, "nohash", "pw", 2), -1);
	ck_assert_int_eq(cred_verify(db, "trunc", "pw", 2), -1);
	memset(&nm, 0, sizeof(nm));
	ck_assert_int_eq(cred_user_list(db, collect, &nm, &why), 0);
	ck_assert_int_eq(nm.n, 4);
	ck_assert_str_eq(nm.list[0], "eve");
	ck_assert_int_eq(nm.created[0], 0);
	ck_assert_str_eq(nm.list[2], "nohash");
	ck_assert_int_eq(nm.created[2], 5);
	cred_close(db);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
}
END_TEST

START_TEST(test_db_open_errors)
{
	struct vbuf why;
	struct cfg c;
	char path[256];
	FILE *fp;

	vbuf_init(&why, 0);
	memset(&c, 0, sizeof(c));
	ck_assert_ptr_null(cred_open(&c, 1, &why));
	ck_assert_msg(strstr(why.data, "queue_directory") != NULL, "%s",
	    why.data);

	c.queue_directory = "/nonexistent/petrel-queue";
	ck_assert_ptr_null(cred_open(&c, 1, &why));
	ck_assert_msg(strstr(why.data, "/nonexistent/petrel-queue/cred") !=
	    NULL, "%s", why.data);

	/* cred exists but is a file. */
	snprintf(path, sizeof(path), "%s/%s", qdir, CRED_DIR);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fclose(fp);
	ck_assert_ptr_null(cred_open(&tcfg, 1, &why));
	ck_assert_msg(strstr(why.data, "not a directory") != NULL, "%s",
	    why.data);
	ck_assert_ptr_null(cred_open(&tcfg, 0, &why));
	(void)unlink(path);
	vbuf_release(&why);
}
END_TEST

/*
 * A credential's own webhook (issue 10): stored, read back, replaced and
 * removed without touching the secret, the policy or attributes this
 * version does not know; records written before webhooks read as "none";
 * bad values are refused before anything is written.
 */
START_TEST(test_webhook)
{
	struct cred_webhook in, out;
	struct cred_policy pol;
	struct vbuf why, rec, h;
	struct cred_db *db;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	/*
	 * Raw records are written (and read) with no handle open: LMDB
	 * allows one environment per file per process.
	 */
	cred_close(open_rw());		/* creates the environment */
	/* An old record: hash, created, a policy, an attribute unknown here. */
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, &why), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_int(&rec, CRED_ATTR_CREATED, 77);
	attr_put_num(&rec, CRED_ATTR_MAX_PER_HOUR, 9);
	attr_put_str(&rec, "future_thing", "kept");
	attr_end(&rec);
	put_raw("old", &rec);
	/* A stored webhook that does not pass the check is corrupt. */
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_WH_URL, "gopher://x");
	attr_end(&rec);
	put_raw("bad", &rec);
	db = open_rw();
	ck_assert_int_eq(cred_webhook_get(db, "bad", &out, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "corrupt webhook"));
	ck_assert_ptr_null(out.url);

	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_ptr_null(out.url);
	cred_webhook_release(&out);
	ck_assert_int_eq(cred_webhook_get(db, "nobody", &out, &why), 0);

	memset(&in, 0, sizeof(in));
	in.url = "https://u:p@app.example/hooks/mail";
	in.events = "delivered, bounced,suppressed";
	in.format = "mailgun";
	in.secret = "s3cret";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), 1);
	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_str_eq(out.url, in.url);
	ck_assert_str_eq(out.events, in.events);
	ck_assert_str_eq(out.format, "mailgun");
	ck_assert_str_eq(out.secret, "s3cret");
	ck_assert_ptr_null(out.key_pem);
	cred_webhook_release(&out);
	ck_assert_ptr_null(out.url);
	/* The rest of the record is as it was. */
	ck_assert_int_eq(cred_verify(db, "old", "pw", 2), 1);
	ck_assert_int_eq(cred_policy_get(db, "old", &pol, &why), 1);
	ck_assert_uint_eq(pol.max_per_hour, 9);
	ck_assert_int_eq(pol.created, 77);
	cred_policy_release(&pol);
	/* A policy change keeps the webhook. */
	memset(&pol, 0, sizeof(pol));
	pol.max_per_day = 5;
	ck_assert_int_eq(cred_user_set(db, "old", &pol, CRED_POLICY_MAX_PER_DAY,
	    &why), 1);
	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_str_eq(out.url, in.url);
	cred_webhook_release(&out);

	/* Replaced as a whole: what is not given is gone. */
	memset(&in, 0, sizeof(in));
	in.url = "http://127.0.0.1:8080/x";
	in.format = "sendgrid";
	in.key_pem = "-----BEGIN PRIVATE KEY-----\nAA==\n"
	    "-----END PRIVATE KEY-----\n";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), 1);
	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_ptr_null(out.events);
	ck_assert_ptr_null(out.secret);
	ck_assert_str_eq(out.key_pem, in.key_pem);
	cred_webhook_release(&out);

	/* Refused, and nothing changed. */
	in.url = "ftp://app.example/";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "http://"));
	in.url = "https://";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	in.url = "https://a.example/x y";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	in.url = "https://a.example/";
	in.events = "delivered,opened";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "opened"));
	/* A destination's events are of no application's mail. */
	in.events = "delivered,destination";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "destination"));
	in.events = "delivered,delivered";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	in.events = "delivered;bounced";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	in.events = NULL;
	in.format = "mandrill";
	ck_assert_int_eq(cred_webhook_set(db, "old", &in, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "mandrill"));
	in.format = NULL;
	ck_assert_int_eq(cred_webhook_set(db, "nobody", &in, &why), 0);
	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_str_eq(out.url, "http://127.0.0.1:8080/x");
	cred_webhook_release(&out);

	/* Removed. */
	ck_assert_int_eq(cred_webhook_set(db, "old", NULL, &why), 1);
	ck_assert_int_eq(cred_webhook_get(db, "old", &out, &why), 1);
	ck_assert_ptr_null(out.url);
	ck_assert_int_eq(cred_verify(db, "old", "pw", 2), 1);
	cred_close(db);
	/* Through every rewrite, the attribute unknown here was kept. */
	ck_assert_int_eq(get_raw("old", &rec), 1);
	ck_assert_ptr_nonnull(memmem(rec.data, rec.len, "future_thing", 12));
	ck_assert_ptr_null(memmem(rec.data, rec.len, CRED_ATTR_WH_URL, 11));

	vbuf_release(&h);
	vbuf_release(&rec);
	vbuf_release(&why);
}
END_TEST

/* Every field survives a write and a read; old records read as "none". */
START_TEST(test_policy_roundtrip)
{
	struct cred_policy in, out;
	struct vbuf why, rec, h, list;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	vbuf_init(&list, 0);
	/* A reader before anything exists: no such user, not an error. */
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 0);

	db = open_rw();
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(cred_policy_parse_domains(&in,
	    "Example.COM, b.example", &why), 0);
	ck_assert_int_eq(cred_policy_parse_networks(&in,
	    "192.0.2.77/24,2001:DB8::/32", &why), 0);
	in.max_per_hour = 100;
	in.max_per_day = 1000;
	in.max_recipients = 50;
	in.max_size = 10485760;
	in.created = 12345;		/* ignored: stamped at add */
	ck_assert_int_eq(cred_user_add_policy(db, "app", "pw", 2, &in,
	    CRED_POLICY_ALL, &why), 0);
	cred_policy_release(&in);
	ck_assert_ptr_null(in.domains);
	ck_assert_uint_eq(in.ndomains, 0);

	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_uint_eq(out.ndomains, 2);
	ck_assert_str_eq(out.domains[0], "example.com");
	ck_assert_str_eq(out.domains[1], "b.example");
	ck_assert_uint_eq(out.nnetworks, 2);
	cred_policy_format_networks(&out, &list);
	ck_assert_str_eq(list.data, "192.0.2.0/24,2001:db8::/32");
	ck_assert_uint_eq(out.max_per_hour, 100);
	ck_assert_uint_eq(out.max_per_day, 1000);
	ck_assert_uint_eq(out.max_recipients, 50);
	ck_assert_uint_eq(out.max_size, 10485760);
	ck_assert_int_eq(out.disabled, 0);
	ck_assert_int_gt(out.created, 1600000000);
	ck_assert_int_eq(out.old_valid_until, 0);
	cred_policy_release(&out);
	cred_policy_release(&out);	/* twice is harmless */
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);

	/* Plain cred_user_add: no restrictions. */
	ck_assert_int_eq(cred_user_add(db, "plain", "pw", 2, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "plain", &out, &why), 1);
	ck_assert_uint_eq(out.ndomains + out.nnetworks, 0);
	ck_assert_uint_eq(out.max_per_hour + out.max_per_day +
	    out.max_recipients + out.max_size, 0);
	cred_policy_release(&out);

	/*
	 * A record from before policies existed, with an unknown attribute.
	 * (LMDB: never two handles on one environment in a process, so the
	 * raw writes happen with ours closed.)
	 */
	cred_close(ro);
	cred_close(db);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_int(&rec, CRED_ATTR_CREATED, 77);
	attr_put_str(&rec, "from_the_future", "x");
	attr_end(&rec);
	put_raw("old", &rec);

	/* Corrupt policy attributes: an error (fail closed), never a crash. */
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_DOMAINS, "ok.example,bad domain");
	attr_end(&rec);
	put_raw("baddom", &rec);
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_MAX_SIZE, "12x");
	attr_end(&rec);
	put_raw("badsize", &rec);
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_CREATED, "5");
	attr_end(&rec);
	put_raw("nohash", &rec);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_policy_get(ro, "old", &out, &why), 1);
	ck_assert_int_eq(out.created, 77);
	ck_assert_uint_eq(out.ndomains + out.nnetworks, 0);
	cred_policy_release(&out);
	ck_assert_int_eq(cred_policy_get(ro, "baddom", &out, &why), -1);
	ck_assert_msg(strstr(why.data, "domains") != NULL, "%s", why.data);
	ck_assert_ptr_null(out.domains);
	ck_assert_int_eq(cred_policy_get(ro, "badsize", &out, &why), -1);
	ck_assert_int_eq(cred_policy_get(ro, "nohash", &out, &why), -1);
	ck_assert_int_eq(cred_policy_get(ro, "nobody", &out, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "bad name", &out, &why), 0);

	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
	vbuf_release(&list);
}
END_TEST

/* set changes only the fields it is given and keeps everything else. */
START_TEST(test_policy_set)
{
	struct cred_policy in, out;
	struct attr_list al;
	struct vbuf why, raw;
	struct cred_db *db;
	size_t used;

	vbuf_init(&why, 0);
	vbuf_init(&raw, 0);
	db = open_rw();
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(cred_policy_parse_domains(&in, "a.example", &why),
	    0);
	ck_assert_int_eq(cred_policy_parse_networks(&in, "10.0.0.0/8", &why),
	    0);
	in.max_per_hour = 5;
	in.max_per_day = 50;
	in.max_size = 1000;
	ck_assert_int_eq(cred_user_add_policy(db, "app", "pw", 2, &in,
	    CRED_POLICY_ALL, &why), 0);
	cred_policy_release(&in);
	ck_assert_int_eq(cred_policy_get(db, "app", &out, &why), 1);
	cred_policy_release(&out);

	/* Only max_per_hour (the other values in "in" must be ignored). */
	in.max_per_hour = 7;
	in.max_per_day = 999;
	ck_assert_int_eq(cred_user_set(db, "app", &in,
	    CRED_POLICY_MAX_PER_HOUR, &why), 1);
	ck_assert_int_eq(cred_policy_get(db, "app", &out, &why), 1);
	ck_assert_uint_eq(out.max_per_hour, 7);
	ck_assert_uint_eq(out.max_per_day, 50);
	ck_assert_uint_eq(out.max_size, 1000);
	ck_assert_uint_eq(out.ndomains, 1);
	ck_assert_str_eq(out.domains[0], "a.example");
	ck_assert_uint_eq(out.nnetworks, 1);
	ck_assert_int_gt(out.created, 1600000000);
	cred_policy_release(&out);

	/* An empty list and a zero limit remove the restriction. */
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(cred_policy_parse_domains(&in, "", &why), 0);
	ck_assert_int_eq(cred_user_set(db, "app", &in, CRED_POLICY_DOMAINS |
	    CRED_POLICY_MAX_SIZE, &why), 1);
	ck_assert_int_eq(cred_policy_get(db, "app", &out, &why), 1);
	ck_assert_uint_eq(out.ndomains, 0);
	ck_assert_uint_eq(out.max_size, 0);
	ck_assert_uint_eq(out.nnetworks, 1);
	ck_assert_uint_eq(out.max_per_hour, 7);
	cred_policy_release(&out);
	ck_assert_int_eq(cred_verify(db, "app", "pw", 2), 1);
	cred_close(db);
	ck_assert_int_eq(get_raw("app", &raw), 1);
	attr_list_init(&al);
	ck_assert_int_eq(attr_decode(&al, raw.data, raw.len, &used, NULL), 1);
	ck_assert_ptr_null(attr_get(&al, CRED_ATTR_DOMAINS));
	ck_assert_ptr_null(attr_get(&al, CRED_ATTR_MAX_SIZE));
	attr_list_release(&al);

	/* The secret, and attributes this version does not know, stay. */
	vbuf_reset(&raw);
	attr_put_str(&raw, CRED_ATTR_HASH, "$scrypt$x");
	attr_put_str(&raw, "from_the_future", "keep me");
	attr_end(&raw);
	put_raw("future", &raw);
	db = open_rw();
	in.max_recipients = 3;
	ck_assert_int_eq(cred_user_set(db, "future", &in,
	    CRED_POLICY_MAX_RCPT, &why), 1);
	cred_close(db);
	ck_assert_int_eq(get_raw("future", &raw), 1);
	attr_list_init(&al);
	ck_assert_int_eq(attr_decode(&al, raw.data, raw.len, &used, NULL), 1);
	ck_assert_str_eq(attr_get(&al, "from_the_future"), "keep me");
	ck_assert_str_eq(attr_get(&al, CRED_ATTR_HASH), "$scrypt$x");
	ck_assert_str_eq(attr_get(&al, CRED_ATTR_MAX_RCPT), "3");
	attr_list_release(&al);

	/* No such user; a read-only handle; a bad name. */
	db = open_rw();
	ck_assert_int_eq(cred_user_set(db, "nobody", &in,
	    CRED_POLICY_MAX_RCPT, &why), 0);
	ck_assert_int_eq(cred_user_set(db, "bad name", &in,
	    CRED_POLICY_MAX_RCPT, &why), -1);
	cred_close(db);
	db = cred_open(&tcfg, 0, &why);
	ck_assert_int_eq(cred_user_set(db, "app", &in, CRED_POLICY_MAX_RCPT,
	    &why), -1);
	ck_assert_msg(strstr(why.data, "read-only") != NULL, "%s", why.data);
	cred_close(db);
	cred_policy_release(&in);
	vbuf_release(&why);
	vbuf_release(&raw);
}
END_TEST

/*
 * Rotation: the previous secret works during the grace period and not
 * after it, even though it was cached; a grace of 0 ends it at once.
 */
START_TEST(test_rotate)
{
	struct cred_policy out;
	struct vbuf why;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	fake_now = time(NULL);
	cred_set_clock(fake_clock);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_user_add(db, "app", "one", 3, &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "one", 3), 1);	/* cached */

	ck_assert_int_eq(cred_user_rotate(db, "app", "two", 3, 100, &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "one", 3), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "two", 3), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "three", 5), 0);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.old_valid_until, fake_now + 100);
	cred_policy_release(&out);

	fake_now += 99;
	ck_assert_int_eq(cred_verify(ro, "app", "one", 3), 1);
	fake_now += 1;		/* valid until, not through, that second */
	ck_assert_int_eq(cred_verify(ro, "app", "one", 3), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "two", 3), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.old_valid_until, 0);
	cred_policy_release(&out);

	/* Rotating again drops the oldest; grace 0 ends the previous now. */
	ck_assert_int_eq(cred_user_rotate(db, "app", "three", 5, 60, &why),
	    1);
	ck_assert_int_eq(cred_verify(ro, "app", "two", 3), 1);
	ck_assert_int_eq(cred_user_rotate(db, "app", "four", 4, 60, &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "two", 3), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "three", 5), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "four", 4), 1);
	ck_assert_int_eq(cred_user_rotate(db, "app", "five", 4, 0, &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "four", 4), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "five", 4), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.old_valid_until, 0);
	cred_policy_release(&out);

	/* Errors. */
	ck_assert_int_eq(cred_user_rotate(db, "nobody", "x", 1, 60, &why), 0);
	ck_assert_int_eq(cred_user_rotate(db, "app", "x", 1, -1, &why), -1);
	ck_assert_int_eq(cred_user_rotate(db, "app", "x", 1,
	    (int64_t)CRED_GRACE_MAX + 1, &why), -1);
	ck_assert_int_eq(cred_user_rotate(db, "app", "", 0, 60, &why), -1);
	ck_assert_int_eq(cred_user_rotate(ro, "app", "x", 1, 60, &why), -1);
	ck_assert_int_eq(cred_verify(ro, "app", "five", 4), 1);

	/* A deleted user is refused though its secret is cached. */
	ck_assert_int_eq(cred_user_del(db, "app", &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "five", 4), 0);
	cred_set_clock(NULL);
	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
}
END_TEST

/* A disabled user fails even with a cached right secret; enable restores. */
START_TEST(test_disable)
{
	struct cred_policy pol, out;
	struct walked w;
	struct vbuf why, rec, h;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_user_add(db, "app", "pw", 2, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "other", "pw", 2, &why), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);	/* cached */

	memset(&pol, 0, sizeof(pol));
	pol.disabled = 1;
	pol.max_per_hour = 9;	/* not selected: must not be stored */
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_DISABLED,
	    &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 0);
	ck_assert_int_eq(cred_verify(db, "app", "pw", 2), 0);
	ck_assert_int_eq(cred_verify(ro, "other", "pw", 2), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.disabled, 1);
	ck_assert_uint_eq(out.max_per_hour, 0);
	cred_policy_release(&out);

	/* A rotation in progress does not open a back door either. */
	ck_assert_int_eq(cred_user_rotate(db, "app", "new", 3, 3600, &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "new", 3), 0);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 0);

	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(cred_user_walk(ro, walk_collect, &w, &why), 0);
	ck_assert_int_eq(w.n, 2);
	ck_assert_str_eq(w.list[0], "app");
	ck_assert_int_eq(w.disabled[0], 1);
	ck_assert_int_eq(w.disabled[1], 0);

	pol.disabled = 0;
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_DISABLED,
	    &why), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "new", 3), 1);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);	/* grace */
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.disabled, 0);
	ck_assert_int_gt(out.old_valid_until, 0);
	cred_policy_release(&out);

	/* A malformed "disabled" is corrupt: an error, never a login. */
	cred_close(ro);
	cred_close(db);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_DISABLED, "yes");
	attr_end(&rec);
	put_raw("weird", &rec);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_verify(ro, "weird", "pw", 2), -1);
	ck_assert_int_eq(cred_policy_get(ro, "weird", &out, &why), -1);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(cred_user_walk(ro, walk_collect, &w, &why), 0);
	ck_assert_int_eq(w.n, 3);
	ck_assert_str_eq(w.list[2], "weird");
	ck_assert_int_eq(w.disabled[2], -1);

	ck_assert_int_eq(cred_user_set(db, "nobody", &pol,
	    CRED_POLICY_DISABLED, &why), 0);
	cred_close(ro);
	cred_close(db);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
}
END_TEST

/*
 * Delivery reports per credential (relayctl --dsn): on by default and for
 * records without the attribute, off once set, other fields kept, back on
 * removes it; a malformed value is a corrupt record.
 */
START_TEST(test_dsn_off)
{
	struct cred_policy pol, out;
	struct vbuf why, rec, h;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	memset(&pol, 0, sizeof(pol));
	pol.max_per_hour = 7;
	ck_assert_int_eq(cred_user_add_policy(db, "app", "pw", 2, &pol,
	    CRED_POLICY_ALL, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.dsn_off, 0);
	cred_policy_release(&out);

	pol.dsn_off = 1;
	pol.max_per_hour = 0;	/* not selected: must stay 7 */
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_DSN_OFF,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.dsn_off, 1);
	ck_assert_uint_eq(out.max_per_hour, 7);
	ck_assert_int_eq(out.disabled, 0);
	cred_policy_release(&out);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);

	pol.dsn_off = 0;
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_DSN_OFF,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.dsn_off, 0);
	ck_assert_uint_eq(out.max_per_hour, 7);
	cred_policy_release(&out);

	/* Added with reports off. */
	pol.dsn_off = 1;
	ck_assert_int_eq(cred_user_add_policy(db, "quiet", "pw", 2, &pol,
	    CRED_POLICY_DSN_OFF, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "quiet", &out, &why), 1);
	ck_assert_int_eq(out.dsn_off, 1);
	cred_policy_release(&out);

	/* An old record (no attribute) reads as on; a bad value is corrupt. */
	cred_close(ro);
	cred_close(db);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_end(&rec);
	put_raw("old", &rec);
	vbuf_reset(&rec);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_DSN_OFF, "2");
	attr_end(&rec);
	put_raw("weird", &rec);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_policy_get(ro, "old", &out, &why), 1);
	ck_assert_int_eq(out.dsn_off, 0);
	cred_policy_release(&out);
	ck_assert_int_eq(cred_policy_get(ro, "weird", &out, &why), -1);
	ck_assert(strstr(why.data, CRED_ATTR_DSN_OFF) != NULL);
	cred_close(ro);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
}
END_TEST

/*
 * A credential's lane (relayctl --lane): transactional by default and for
 * records without the attribute, bulk once set (other fields kept), back
 * to transactional removes it; any other stored value is a corrupt record.
 */
START_TEST(test_lane)
{
	struct cred_policy pol, out;
	struct vbuf why, rec, h;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	memset(&pol, 0, sizeof(pol));
	pol.max_per_hour = 7;
	ck_assert_int_eq(cred_user_add_policy(db, "app", "pw", 2, &pol,
	    CRED_POLICY_ALL, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.bulk, 0);
	cred_policy_release(&out);

	pol.bulk = 1;
	pol.max_per_hour = 0;	/* not selected: must stay 7 */
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_LANE,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.bulk, 1);
	ck_assert_uint_eq(out.max_per_hour, 7);
	cred_policy_release(&out);
	ck_assert_int_eq(cred_verify(ro, "app", "pw", 2), 1);

	pol.bulk = 0;
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_LANE,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_int_eq(out.bulk, 0);
	cred_policy_release(&out);

	pol.bulk = 1;
	ck_assert_int_eq(cred_user_add_policy(db, "news", "pw", 2, &pol,
	    CRED_POLICY_LANE, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "news", &out, &why), 1);
	ck_assert_int_eq(out.bulk, 1);
	cred_policy_release(&out);

	cred_close(ro);
	cred_close(db);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_LANE, "urgent");
	attr_end(&rec);
	put_raw("weird", &rec);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_policy_get(ro, "weird", &out, &why), -1);
	ck_assert(strstr(why.data, CRED_ATTR_LANE) != NULL);
	cred_close(ro);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
}
END_TEST

/*
 * The source address pool per credential (relayctl --pool): "" (the
 * default) for records without the attribute, set and kept by other
 * changes, "default" stores nothing; a malformed name is corrupt.
 */
START_TEST(test_pool)
{
	struct cred_policy pol, out;
	struct vbuf why, rec, h;
	struct cred_db *db, *ro;

	vbuf_init(&why, 0);
	vbuf_init(&rec, 0);
	vbuf_init(&h, 0);
	db = open_rw();
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	memset(&pol, 0, sizeof(pol));
	ck_assert_int_eq(cred_user_add_policy(db, "app", "pw", 2, &pol,
	    CRED_POLICY_ALL, &why), 0);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_str_eq(out.pool, "");
	cred_policy_release(&out);

	ck_assert_int_eq(cred_policy_parse_pool(&pol, "bulk", &why), 0);
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_POOL,
	    &why), 1);
	pol.dsn_off = 1;
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_DSN_OFF,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_str_eq(out.pool, "bulk");
	ck_assert_int_eq(out.dsn_off, 1);
	cred_policy_release(&out);

	ck_assert_int_eq(cred_policy_parse_pool(&pol, "default", &why), 0);
	ck_assert_str_eq(pol.pool, "");
	ck_assert_int_eq(cred_user_set(db, "app", &pol, CRED_POLICY_POOL,
	    &why), 1);
	ck_assert_int_eq(cred_policy_get(ro, "app", &out, &why), 1);
	ck_assert_str_eq(out.pool, "");
	cred_policy_release(&out);

	ck_assert_int_eq(cred_policy_parse_pool(&pol, "Bulk", &why), -1);
	ck_assert_int_eq(cred_policy_parse_pool(&pol, "", &why), -1);
	ck_assert_str_eq(pol.pool, "");

	cred_close(ro);
	cred_close(db);
	ck_assert_int_eq(cred_hash_new("pw", 2, &h, NULL), 0);
	attr_put_str(&rec, CRED_ATTR_HASH, h.data);
	attr_put_str(&rec, CRED_ATTR_POOL, "no/such");
	attr_end(&rec);
	put_raw("weird", &rec);
	ro = cred_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(cred_policy_get(ro, "weird", &out, &why), -1);
	ck_assert(strstr(why.data, CRED_ATTR_POOL) != NULL);
	cred_close(ro);
	vbuf_release(&why);
	vbuf_release(&rec);
	vbuf_release(&h);
}
END_TEST

static Suite *
cred_suite(void)
{
	Suite *s = suite_create("cred");
	TCase *tc;

	tc = tcase_create("names");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_name_ok);
	tcase_add_test(tc, test_generate_secret);
	suite_add_tcase(s, tc);

	tc = tcase_create("db");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_db_add_list_del);
	tcase_add_test(tc, test_db_readonly_before_create);
	tcase_add_test(tc, test_db_records);
	tcase_add_test(tc, test_db_open_errors);
	tcase_add_test(tc, test_verify_cache);
	tcase_add_test(tc, test_verify_steps);
	tcase_add_test(tc, test_verify_same);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_policy_roundtrip);
	tcase_add_test(tc, test_policy_set);
	tcase_add_test(tc, test_rotate);
	tcase_add_test(tc, test_disable);
	tcase_add_test(tc, test_dsn_off);
	tcase_add_test(tc, test_lane);
	tcase_add_test(tc, test_pool);
	tcase_add_test(tc, test_webhook);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cred_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
