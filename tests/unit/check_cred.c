/*
 * check_cred.c - unit tests for lib/cred: hashing, verification, bounds on
 * stored hashes, and the user database in a mkdtemp() queue directory.
 */
#include <sys/stat.h>

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
#include "vbuf.h"

struct names {
	char		 list[8][CRED_NAME_MAX + 1];
	int64_t		 created[8];
	int		 n;
};

static char qdir[64];
static struct cfg tcfg;

static int	collect(const char *, int64_t, void *);
static int	stop_first(const char *, int64_t, void *);
static void	rmpath(const char *);
static void	setup(void);
static void	teardown(void);
static void	put_raw(const char *, const struct vbuf *);
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

START_TEST(test_hash_roundtrip)
{
	struct vbuf h, h2;
	const char pw[] = "correct horse battery staple";

	vbuf_init(&h, 0);
	vbuf_init(&h2, 0);
	ck_assert_int_eq(cred_hash(pw, strlen(pw), &h, NULL), 0);
	ck_assert_msg(strncmp(h.data, "$scrypt$ln=15,r=8,p=1$", 22) == 0,
	    "hash %s", h.data);
	ck_assert_uint_le(h.len, CRED_HASH_MAX);
	ck_assert_int_eq(cred_hash_verify(h.data, pw, strlen(pw)), 1);
	ck_assert_int_eq(cred_hash_verify(h.data, pw, strlen(pw) - 1), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "Correct horse battery "
	    "staple", strlen(pw)), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "", 0), 0);
	/* Same secret, new salt: different string. */
	ck_assert_int_eq(cred_hash(pw, strlen(pw), &h2, NULL), 0);
	ck_assert_str_ne(h.data, h2.data);
	/* Binary secrets with NULs are hashed by length. */
	ck_assert_int_eq(cred_hash("a\0b", 3, &h, NULL), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "a\0b", 3), 1);
	ck_assert_int_eq(cred_hash_verify(h.data, "a\0c", 3), 0);
	ck_assert_int_eq(cred_hash_verify(h.data, "a", 1), 0);
	vbuf_release(&h);
	vbuf_release(&h2);
}
END_TEST

START_TEST(test_hash_params_from_string)
{
	/*
	 * Parameters are read from the string: a changed cost is a different
	 * key (mismatch), not a malformed string.
	 */
	struct vbuf h;
	char s[CRED_HASH_MAX + 1], *p;

	vbuf_init(&h, 0);
	ck_assert_int_eq(cred_hash("pw", 2, &h, NULL), 0);
	/* Rewriting the parameters changes the key: mismatch, not error. */
	snprintf(s, sizeof(s), "%s", h.data);
	p = strstr(s, "ln=15");
	ck_assert_ptr_nonnull(p);
	p[4] = '4';
	ck_assert_int_eq(cred_hash_verify(s, "pw", 2), 0);
	vbuf_release(&h);
}
END_TEST

START_TEST(test_hash_malformed)
{
	static const char *bad[] = {
		"",
		"$",
		"plain",
		"$scrypt$",
		"$scrypt$ln=15,r=8,p=1",
		"$scrypt$ln=15,r=8,p=1$",
		"$scrypt$ln=15,r=8,p=1$$",
		"$pbkdf2$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		/* absurd or out-of-range parameters */
		"$scrypt$ln=40,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=99999999999999999999,r=8,p=1$"
		    "OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=1000000,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=4000000000$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=20,r=32,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=32,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=0,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=0,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=0$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=-1,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=+15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln= 15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$r=8,ln=15,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		/* bad base64: foreign character, padding, impossible length,
		 * nonzero trailing bits, salt and key too short */
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGD*8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ==$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwAAA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLR$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCc$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$dt2lkGgn",
		"$scrypt$ln=15,r=8,p=1$OeTOCcr8UxVVPGDv8smFLQ$"
		    "dt2lkGgnGHf9KBM/+yt913/AydtGrovhrSq0sU8RPwA$extra",
	};
	char big[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cred_hash_verify(bad[i], "x", 1) == -1,
		    "accepted: %s", bad[i]);
	/* A key longer than any we make (75 bytes), and an over-long string. */
	snprintf(big, sizeof(big), "$scrypt$ln=15,r=8,p=1$"
	    "OeTOCcr8UxVVPGDv8smFLQ$%0100d", 0);
	ck_assert_int_eq(cred_hash_verify(big, "x", 1), -1);
	snprintf(big, sizeof(big), "$scrypt$ln=15,r=8,p=1$"
	    "OeTOCcr8UxVVPGDv8smFLQ$%0800d", 0);
	ck_assert_int_eq(cred_hash_verify(big, "x", 1), -1);
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
	ck_assert_int_eq(cred_hash("pw", 2, &h, NULL), 0);
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

static Suite *
cred_suite(void)
{
	Suite *s = suite_create("cred");
	TCase *tc;

	tc = tcase_create("hash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_name_ok);
	tcase_add_test(tc, test_hash_roundtrip);
	tcase_add_test(tc, test_hash_params_from_string);
	tcase_add_test(tc, test_hash_malformed);
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
