/*
 * check_mstatus.c - unit tests for lib/mstatus: master's status file.
 *
 * What master writes relayctl reads back field for field; no file reads
 * as "none" (0); a damaged file, a symbolic link in its place or a wrong
 * version is an error, never a half-read table; a rewrite replaces the
 * file whole and leaves no temporary file; and a pid is taken for a
 * running master only if that process is named master.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "mstatus.h"
#include "vbuf.h"

static Suite	*mstatus_suite(void);
static void	 tmpdir(char *, size_t);
static void	 cleanup(const char *);
static void	 put_file(const char *, const char *, size_t);

static void
tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/check_mstatus.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void
cleanup(const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, MSTATUS_FILE);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/%s.tmp", dir, MSTATUS_FILE);
	(void)unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}

static void
put_file(const char *dir, const char *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, MSTATUS_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_round_trip)
{
	struct mstatus_proc procs[3] = {
		{ "smtpd", 101, 1700000001, 0, 0, 0, 1 },
		{ "qmgr", 0, 0, 7, 4, 1700000099, 0 },
		{ "smtp", 103, 1700000003, 2, 0, 0, 0 },
	};
	struct mstatus w = { 99, 1700000000, 1700000005, procs, 3 }, r;
	struct vbuf *why = vbuf_create(0);
	char dir[64], tmp[256];
	struct stat st;

	tmpdir(dir, sizeof(dir));
	ck_assert_int_eq(mstatus_read(dir, &r, why), 0);	/* none */
	ck_assert_int_eq(mstatus_write(dir, &w, getuid(), getgid(), why), 0);
	ck_assert_int_eq(mstatus_read(dir, &r, why), 1);
	ck_assert_int_eq(r.master_pid, 99);
	ck_assert_int_eq(r.master_started, 1700000000);
	ck_assert_int_eq(r.updated, 1700000005);
	ck_assert_uint_eq(r.nprocs, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(r.procs[i].prog, procs[i].prog);
		ck_assert_int_eq(r.procs[i].pid, procs[i].pid);
		ck_assert_int_eq(r.procs[i].started, procs[i].started);
		ck_assert_uint_eq(r.procs[i].restarts, procs[i].restarts);
		ck_assert_uint_eq(r.procs[i].fails, procs[i].fails);
		ck_assert_int_eq(r.procs[i].next_start, procs[i].next_start);
		/* Each slot's own: smtpd's ready does not carry to qmgr. */
		ck_assert_int_eq(r.procs[i].ready, procs[i].ready);
	}
	mstatus_release(&r);
	/* A rewrite replaces the whole table; no temporary file stays. */
	w.nprocs = 1;
	ck_assert_int_eq(mstatus_write(dir, &w, getuid(), getgid(), why), 0);
	ck_assert_int_eq(mstatus_read(dir, &r, why), 1);
	ck_assert_uint_eq(r.nprocs, 1);
	mstatus_release(&r);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, MSTATUS_FILE);
	ck_assert_int_eq(stat(tmp, &st), -1);
	snprintf(tmp, sizeof(tmp), "%s/%s", dir, MSTATUS_FILE);
	ck_assert_int_eq(stat(tmp, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	mstatus_remove(dir);
	ck_assert_int_eq(mstatus_read(dir, &r, why), 0);
	cleanup(dir);
	vbuf_free(why);
}
END_TEST

START_TEST(test_damaged)
{
	struct vbuf *why = vbuf_create(0), *rec = vbuf_create(0);
	char dir[64], path[256];
	struct mstatus r;

	tmpdir(dir, sizeof(dir));
	/* Cut short: no end of record. */
	put_file(dir, "version\0001\0master_pid\0", 21);
	ck_assert_int_eq(mstatus_read(dir, &r, why), -1);
	ck_assert_ptr_null(r.procs);
	/* Another version. */
	attr_put_num(rec, "version", 2);
	attr_put_int(rec, "master_pid", 5);
	attr_end(rec);
	put_file(dir, rec->data, rec->len);
	vbuf_reset(why);
	ck_assert_int_eq(mstatus_read(dir, &r, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "version"));
	/* A proc group without its pid. */
	vbuf_reset(rec);
	attr_put_num(rec, "version", MSTATUS_VERSION);
	attr_put_int(rec, "master_pid", 5);
	attr_put_str(rec, "proc", "smtpd");
	attr_end(rec);
	put_file(dir, rec->data, rec->len);
	ck_assert_int_eq(mstatus_read(dir, &r, why), -1);
	/* A symbolic link where the file should be. */
	snprintf(path, sizeof(path), "%s/%s", dir, MSTATUS_FILE);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	ck_assert_int_eq(mstatus_read(dir, &r, why), -1);
	cleanup(dir);
	vbuf_free(rec);
	vbuf_free(why);
}
END_TEST

START_TEST(test_master_alive)
{
	pid_t pid;
	int status, fds[2];
	char c;

	/* This process is check_mstatus, not master. */
	ck_assert_int_eq(mstatus_master_alive(getpid()), 0);
	ck_assert_int_eq(mstatus_master_alive(0), 0);
	ck_assert_int_eq(mstatus_master_alive(-1), 0);
	/* A process named master is (comm, as ps shows it). */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(fds[0]);
		(void)prctl(PR_SET_NAME, "master", 0, 0, 0);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(mstatus_master_alive(pid), 1);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(mstatus_master_alive(pid), 0);
}
END_TEST

static Suite *
mstatus_suite(void)
{
	Suite *s = suite_create("mstatus");
	TCase *tc = tcase_create("mstatus");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_damaged);
	tcase_add_test(tc, test_master_alive);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mstatus_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
