/*
 * check_master_spawn.c - unit tests for master_spawn_check(): whether the
 * credentials a service runs with can reach and execute its program.
 *
 * Each case builds a daemon directory under a mkdtemp() directory. As any
 * user: a program that is there and executable passes; one without an
 * execute bit, a directory in its place and a missing one are named. As
 * root, the check drops to nobody (uid and gid 65534) as master does for a
 * child: a 0700 directory on the path or as daemon_directory is refused
 * with its name, and a row's extra group grants what it should.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "vbuf.h"

#define NOBODY		65534
#define OTHER_GID	54321	/* a group nobody is not in */

static char	 top[64];	/* mkdtemp() directory, mode 0755 */
static struct vbuf *why;

static void	 setup(void);
static int	 rm_cb(const char *, const struct stat *, int, struct FTW *);
static void	 teardown(void);
static char	*make_dir(const char *, mode_t);
static void	 make_prog(const char *, const char *, mode_t);
static int	 check(const char *, int, gid_t);
static void	 expect_reason(const char *, const char *);
static Suite	*master_spawn_suite(void);

/* Each test: a fresh top directory and reason buffer. */
static void
setup(void)
{
	snprintf(top, sizeof(top), "/tmp/check_master_spawn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	ck_assert_int_eq(chmod(top, 0755), 0);
	why = vbuf_create(0);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void
teardown(void)
{
	vbuf_free(why);
	(void)nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* top/name with mode; returns the path (static storage, one at a time). */
static char *
make_dir(const char *name, mode_t mode)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", top, name);
	ck_assert_int_eq(mkdir(path, mode), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static void
make_prog(const char *dir, const char *prog, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, prog);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* master_spawn_check() for "smtpd" in dir, dropping to nobody if drop. */
static int
check(const char *dir, int drop, gid_t extra_gid)
{
	static const struct master_row row = { .prog = "smtpd" };
	struct master_service svc;

	memset(&svc, 0, sizeof(svc));
	svc.row = &row;
	svc.extra_gid = extra_gid;
	master_spawn_setup(dir, "/dev/null", NOBODY, NOBODY, drop, 0);
	vbuf_reset(why);
	return master_spawn_check(&svc, "mail_owner nobody", why);
}

START_TEST(test_executable_passes)
{
	char *dir;

	dir = make_dir("bin", 0755);
	make_prog(dir, "smtpd", 0755);
	ck_assert_int_eq(check(dir, 0, (gid_t)-1), 0);
}
END_TEST

/* Without a drop, the check of dir fails with "daemon_directory dir: tail". */
static void
expect_reason(const char *dir, const char *tail)
{
	char want[PATH_MAX + 128];

	ck_assert_int_eq(check(dir, 0, (gid_t)-1), -1);
	snprintf(want, sizeof(want), "daemon_directory %s: %s", dir, tail);
	ck_assert_str_eq(why->data, want);
}

START_TEST(test_not_executable_named)
{
	char *dir = make_dir("bin", 0755);

	make_prog(dir, "smtpd", 0644);	/* no execute bit: root too */
	expect_reason(dir, "smtpd not executable by mail_owner nobody");
}
END_TEST

START_TEST(test_directory_in_its_place)
{
	char *dir = make_dir("bin", 0755), sub[PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/smtpd", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	expect_reason(dir, "smtpd not executable by mail_owner nobody");
}
END_TEST

START_TEST(test_missing_named)
{
	expect_reason(make_dir("bin", 0755),
	    "smtpd: No such file or directory");
}
END_TEST

START_TEST(test_as_root_unreachable_directory)
{
	char dir[PATH_MAX + 8], parent[PATH_MAX], want[3 * PATH_MAX];

	if (geteuid() != 0)
		return;		/* dropping needs root */
	snprintf(parent, sizeof(parent), "%s", make_dir("hidden", 0700));
	snprintf(dir, sizeof(dir), "%s/bin", parent);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	make_prog(dir, "smtpd", 0755);
	/* Root itself may: the answer must be nobody's. */
	ck_assert_int_eq(check(dir, 0, (gid_t)-1), 0);
	ck_assert_int_eq(check(dir, 1, (gid_t)-1), -1);
	snprintf(want, sizeof(want), "daemon_directory %s: not executable "
	    "by mail_owner nobody (no search permission on %s)", dir, parent);
	ck_assert_str_eq(why->data, want);

	/* daemon_directory itself closed: no parenthesis. */
	ck_assert_int_eq(chmod(parent, 0755), 0);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(check(dir, 1, (gid_t)-1), -1);
	snprintf(want, sizeof(want), "daemon_directory %s: not executable "
	    "by mail_owner nobody", dir);
	ck_assert_str_eq(why->data, want);
	ck_assert_int_eq(chmod(dir, 0755), 0);
}
END_TEST

START_TEST(test_as_root_extra_group)
{
	char *dir, path[PATH_MAX];

	if (geteuid() != 0)
		return;
	dir = make_dir("bin", 0755);
	make_prog(dir, "smtpd", 0710);
	snprintf(path, sizeof(path), "%s/smtpd", dir);
	ck_assert_int_eq(chown(path, 0, OTHER_GID), 0);
	ck_assert_int_eq(check(dir, 1, (gid_t)-1), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "smtpd not executable"));
	/* The row's extra group is among the credentials checked. */
	ck_assert_int_eq(check(dir, 1, OTHER_GID), 0);
}
END_TEST

static Suite *
master_spawn_suite(void)
{
	Suite *s = suite_create("master_spawn");
	TCase *tc = tcase_create("check");

	tcase_add_checked_fixture(tc, setup, teardown);

	tcase_add_test(tc, test_executable_passes);
	tcase_add_test(tc, test_not_executable_named);
	tcase_add_test(tc, test_directory_in_its_place);
	tcase_add_test(tc, test_missing_named);
	tcase_add_test(tc, test_as_root_unreachable_directory);
	tcase_add_test(tc, test_as_root_extra_group);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(master_spawn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
