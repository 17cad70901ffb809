/*
 * check_mdbdir.c - unit tests for lib/mdbdir: a read-only handle on a
 * missing directory or database is "not there yet", a writable handle
 * creates both, a read-only handle then sees them (also the same handle
 * that found nothing before), transactions and cursors through
 * mdbdir_begin/mdbdir_cursor, and the error texts, in a mkdtemp() queue
 * directory.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "cfg.h"
#include "mdbdir.h"
#include "vbuf.h"

#define T_SUBDIR	"reg"
#define T_DB		"things"
#define T_MAP		(1024UL * 1024)
#define T_WHAT		"test registry"

static char tdir[64], qdir[96], rdir[128];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static int	t_init(struct mdbdir *, const char *, int, struct vbuf *);
static void	put_value(struct mdbdir *, const char *, const char *);
static int	get_value(struct mdbdir *, const char *, char *, size_t);
static Suite	*mdbdir_suite(void);

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_mdbdir.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	snprintf(rdir, sizeof(rdir), "%s/%s", qdir, T_SUBDIR);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
}

static void
teardown(void)
{
	pid_t pid;

	/* No system(3): a child runs rm. */
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", tdir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

static int
t_init(struct mdbdir *m, const char *dbname, int writable, struct vbuf *why)
{
	return mdbdir_init(m, &tcfg, T_SUBDIR, dbname, T_MAP, 2, writable,
	    T_WHAT, why);
}

static void
put_value(struct mdbdir *m, const char *k, const char *v)
{
	MDB_txn *txn;
	MDB_val key, val;

	ck_assert_int_eq(mdb_txn_begin(m->env, NULL, 0, &txn), 0);
	key.mv_data = (void *)k;
	key.mv_size = strlen(k);
	val.mv_data = (void *)v;
	val.mv_size = strlen(v) + 1;
	ck_assert_int_eq(mdb_put(txn, m->dbi, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
}

/* 1 found (copied to out), 0 not found. */
static int
get_value(struct mdbdir *m, const char *k, char *out, size_t size)
{
	MDB_txn *txn;
	MDB_val key, val;
	int rc;

	ck_assert_int_eq(mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn), 0);
	key.mv_data = (void *)k;
	key.mv_size = strlen(k);
	rc = mdb_get(txn, m->dbi, &key, &val);
	if (rc == 0) {
		ck_assert_uint_le(val.mv_size, size);
		memcpy(out, val.mv_data, val.mv_size);
	} else
		ck_assert_int_eq(rc, MDB_NOTFOUND);
	mdb_txn_abort(txn);
	return rc == 0;
}

START_TEST(test_lifecycle)
{
	struct mdbdir ro, rw, ro2;
	struct vbuf why;
	struct stat st;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val;
	char buf[32];

	vbuf_init(&why, 0);

	/* 1. Read-only, nothing there: not an error, nothing created. */
	ck_assert_int_eq(t_init(&ro, T_DB, 0, &why), 0);
	ck_assert_str_eq(ro.dir, rdir);
	ck_assert_int_eq(mdbdir_attach(&ro, &why), 0);
	ck_assert_ptr_null(ro.env);
	ck_assert_int_eq(mdbdir_begin(&ro, MDB_RDONLY, &txn, &why), 0);
	ck_assert_int_eq(mdbdir_cursor(&ro, &txn, &cur, &why), 0);
	ck_assert_int_eq(stat(rdir, &st), -1);

	/* 2. Writable: creates the directory 0700 and the database. */
	ck_assert_int_eq(t_init(&rw, T_DB, 1, &why), 0);
	ck_assert_int_eq(stat(rdir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(mdbdir_attach(&rw, &why), 1);
	ck_assert_int_eq(mdbdir_attach(&rw, &why), 1);	/* idempotent */
	put_value(&rw, "k", "v1");
	ck_assert_int_eq(mdbdir_begin(&rw, 0, &txn, &why), 1);
	mdb_txn_abort(txn);

	/* 3. The earlier read-only handle now attaches and reads it. */
	ck_assert_int_eq(mdbdir_attach(&ro, &why), 1);
	ck_assert_int_eq(get_value(&ro, "k", buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "v1");
	ck_assert_int_eq(get_value(&ro, "nope", buf, sizeof(buf)), 0);
	ck_assert_int_eq(mdbdir_cursor(&ro, &txn, &cur, &why), 1);
	ck_assert_int_eq(mdb_cursor_get(cur, &key, &val, MDB_FIRST), 0);
	ck_assert_uint_eq(key.mv_size, 1);
	ck_assert_int_eq(mdb_cursor_get(cur, &key, &val, MDB_NEXT),
	    MDB_NOTFOUND);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);

	/* A fresh read-only handle too. */
	ck_assert_int_eq(t_init(&ro2, T_DB, 0, &why), 0);
	ck_assert_int_eq(mdbdir_attach(&ro2, &why), 1);
	ck_assert_int_eq(get_value(&ro2, "k", buf, sizeof(buf)), 1);
	mdbdir_release(&ro2);
	mdbdir_release(&ro2);		/* safe twice */
	ck_assert_ptr_null(ro2.dir);

	mdbdir_release(&ro);
	mdbdir_release(&rw);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_missing_database)
{
	struct mdbdir rw, ro;
	struct vbuf why;

	vbuf_init(&why, 0);
	ck_assert_int_eq(t_init(&rw, T_DB, 1, &why), 0);
	ck_assert_int_eq(mdbdir_attach(&rw, &why), 1);
	/* The environment exists, another database in it does not. */
	ck_assert_int_eq(t_init(&ro, "other", 0, &why), 0);
	ck_assert_int_eq(mdbdir_attach(&ro, &why), 0);
	ck_assert_ptr_nonnull(ro.env);
	ck_assert_int_eq(ro.have_dbi, 0);
	mdbdir_release(&ro);
	mdbdir_release(&rw);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_errors)
{
	struct mdbdir m;
	struct vbuf why, want;
	FILE *fp;

	vbuf_init(&why, 0);
	vbuf_init(&want, 0);

	tcfg.queue_directory = NULL;
	ck_assert_int_eq(t_init(&m, T_DB, 0, &why), -1);
	ck_assert_str_eq(why.data, "queue_directory is not set");
	mdbdir_release(&m);
	tcfg.queue_directory = (char *)"";
	ck_assert_int_eq(t_init(&m, T_DB, 1, &why), -1);
	ck_assert_str_eq(why.data, "queue_directory is not set");
	mdbdir_release(&m);
	tcfg.queue_directory = qdir;

	/* The subdirectory is a file. */
	ck_assert_ptr_nonnull(fp = fopen(rdir, "w"));
	fclose(fp);
	ck_assert_int_eq(t_init(&m, T_DB, 0, &why), -1);
	vbuf_setf(&want, "%s: not a directory", rdir);
	ck_assert_str_eq(why.data, want.data);
	ck_assert_ptr_null(m.dir);
	mdbdir_release(&m);
	ck_assert_int_eq(unlink(rdir), 0);

	/* The queue directory is missing: mkdir fails. */
	tcfg.queue_directory = (char *)"/nonexistent/petrel-check";
	ck_assert_int_eq(t_init(&m, T_DB, 1, &why), -1);
	ck_assert_str_eq(why.data, "mkdir /nonexistent/petrel-check/"
	    T_SUBDIR ": No such file or directory");
	mdbdir_release(&m);
	tcfg.queue_directory = qdir;

	/* The texts of LMDB errors. */
	ck_assert_int_eq(t_init(&m, T_DB, 1, &why), 0);
	mdbdir_why(&why, &m, "write to", MDB_MAP_FULL);
	vbuf_setf(&want, "%s %s full (map size 1 MiB)", T_WHAT, rdir);
	ck_assert_str_eq(why.data, want.data);
	mdbdir_why(&why, &m, "read", MDB_CORRUPTED);
	vbuf_setf(&want, "read %s: %s", rdir, mdb_strerror(MDB_CORRUPTED));
	ck_assert_str_eq(why.data, want.data);
	mdbdir_why(NULL, &m, "read", MDB_CORRUPTED);	/* no-op */
	mdbdir_release(&m);

	vbuf_release(&want);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_map_full)
{
	struct mdbdir m;
	struct vbuf why, want;
	MDB_txn *txn;
	MDB_val key, val;
	char *big;
	int rc;

	vbuf_init(&why, 0);
	vbuf_init(&want, 0);
	ck_assert_int_eq(t_init(&m, T_DB, 1, &why), 0);
	ck_assert_int_eq(mdbdir_attach(&m, &why), 1);
	/* Twice the map size cannot fit. */
	big = calloc(1, 2 * T_MAP);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(mdb_txn_begin(m.env, NULL, 0, &txn), 0);
	key.mv_data = (void *)"big";
	key.mv_size = 3;
	val.mv_data = big;
	val.mv_size = 2 * T_MAP;
	rc = mdb_put(txn, m.dbi, &key, &val, 0);
	mdb_txn_abort(txn);
	free(big);
	ck_assert_int_eq(rc, MDB_MAP_FULL);
	mdbdir_why(&why, &m, "write to", rc);
	vbuf_setf(&want, "%s %s full (map size 1 MiB)", T_WHAT, rdir);
	ck_assert_str_eq(why.data, want.data);
	mdbdir_release(&m);
	vbuf_release(&want);
	vbuf_release(&why);
}
END_TEST

static Suite *
mdbdir_suite(void)
{
	Suite *s = suite_create("mdbdir");
	TCase *tc;

	tc = tcase_create("mdbdir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_missing_database);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_map_full);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mdbdir_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
