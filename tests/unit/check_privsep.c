/*
 * check_privsep.c - unit tests for lib/privsep: becoming mail_owner.
 *
 * As an ordinary user privsep_become_owner() does nothing and returns 0.
 * As root (each case in a child, so the test process keeps its rights) it
 * refuses an unknown user and root itself, and otherwise drops to the
 * user for good: uid, gid and groups, with no way back. Before that it
 * creates the queue tree when it is missing (a fresh installation),
 * owned by the user it becomes.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "privsep.h"
#include "vbuf.h"

static int	 in_child(int (*)(void));
static int	 child_unprivileged(void);
static int	 child_unknown(void);
static int	 child_root(void);
static int	 child_nobody(void);
static Suite	*privsep_suite(void);
static void	 new_qdir(void);
static void	 rm_qdir(void);
static int	 rm_one(const char *, const struct stat *, int, struct FTW *);

/* A queue directory that does not exist yet, in a directory anyone may
 * write (the unprivileged case runs as nobody). */
static char	 parent[64], qdir[128];

static void
new_qdir(void)
{
	snprintf(parent, sizeof(parent), "/tmp/check_privsep.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(parent));
	ck_assert_int_eq(chmod(parent, 0777), 0);
	snprintf(qdir, sizeof(qdir), "%s/queue", parent);
}


/* Runs fn in a child; returns its exit status (fn returns 0 for pass). */
static int
in_child(int (*fn)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(fn());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int
child_unprivileged(void)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg cfg;
	struct stat st;
	char sub[256];
	uid_t uid;

	if (geteuid() == 0 && (setgroups(0, NULL) == -1 ||
	    setresgid(65534, 65534, 65534) == -1 ||
	    setresuid(65534, 65534, 65534) == -1))
		return 10;
	uid = getuid();
	memset(&cfg, 0, sizeof(cfg));
	cfg.mail_owner = "no-such-user-petrel-test";
	cfg.queue_directory = qdir;
	if (privsep_become_owner(&cfg, why) != 0)
		return 1;
	if (getuid() != uid || geteuid() != uid || why->len != 0)
		return 2;
	/* The tree was missing: made, as master makes it, for us. */
	if (stat(qdir, &st) == -1 || st.st_uid != uid ||
	    (st.st_mode & 07777) != 0755)
		return 3;
	snprintf(sub, sizeof(sub), "%s/cred", qdir);
	if (stat(sub, &st) == -1 || st.st_uid != uid ||
	    (st.st_mode & 07777) != 0700)
		return 4;
	return 0;
}

static int
child_unknown(void)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mail_owner = "no-such-user-petrel-test";
	cfg.queue_directory = qdir;
	if (privsep_become_owner(&cfg, why) != -1)
		return 1;
	if (strstr(why->data, "no-such-user-petrel-test") == NULL)
		return 2;
	return geteuid() == 0 ? 0 : 3;
}

static int
child_root(void)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mail_owner = "root";
	cfg.queue_directory = qdir;
	if (privsep_become_owner(&cfg, why) != -1)
		return 1;
	return strstr(why->data, "root") != NULL ? 0 : 2;
}

static int
child_nobody(void)
{
	struct vbuf *why = vbuf_create(0);
	struct passwd *pw;
	struct cfg cfg;
	struct stat st;
	gid_t groups[64];
	int i, n;

	if ((pw = getpwnam("nobody")) == NULL)
		return 0;	/* nothing to switch to */
	memset(&cfg, 0, sizeof(cfg));
	cfg.mail_owner = "nobody";
	cfg.queue_directory = qdir;
	if (privsep_become_owner(&cfg, why) != 0)
		return 1;
	if (stat(qdir, &st) == -1 || st.st_uid != pw->pw_uid ||
	    st.st_gid != pw->pw_gid)
		return 6;
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || getegid() != pw->pw_gid)
		return 2;
	if ((n = getgroups(64, groups)) == -1)
		return 3;
	for (i = 0; i < n; i++)
		if (groups[i] == 0)
			return 4;	/* root's group kept */
	if (setuid(0) != -1 || seteuid(0) != -1)
		return 5;
	return 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

static void
rm_qdir(void)
{
	(void)nftw(parent, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

START_TEST(test_unprivileged)
{
	new_qdir();
	ck_assert_int_eq(in_child(child_unprivileged), 0);
	rm_qdir();
}
END_TEST

START_TEST(test_as_root)
{
	if (geteuid() != 0)
		return;		/* only what can be tested unprivileged */
	new_qdir();
	ck_assert_int_eq(in_child(child_unknown), 0);
	ck_assert_int_eq(in_child(child_root), 0);
	ck_assert_int_eq(in_child(child_nobody), 0);
	rm_qdir();
}
END_TEST

static Suite *
privsep_suite(void)
{
	Suite *s = suite_create("privsep");
	TCase *tc = tcase_create("privsep");

	tcase_add_test(tc, test_unprivileged);
	tcase_add_test(tc, test_as_root);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(privsep_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
