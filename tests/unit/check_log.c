/*
 * check_log.c - unit tests for lib/log: the "NAME/program[pid]: " prefix
 * (log.syslog_name) on stderr, levels, %m, and log_safe().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "log.h"

static Suite	*log_suite(void);
static void	 capture_start(void);
static char	*capture_end(void);

static int	 saved_stderr = -1;
static char	 capture_path[] = "/tmp/check_log.XXXXXX";
static int	 capture_fd = -1;

/* stderr into a temporary file, as master's stderr is the harness's. */
static void
capture_start(void)
{
	capture_fd = mkstemp(capture_path);
	ck_assert_int_ge(capture_fd, 0);
	(void)unlink(capture_path);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

static char *
capture_end(void)
{
	static char buf[4096];
	ssize_t n;

	ck_assert_int_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	ck_assert_int_eq(lseek(capture_fd, 0, SEEK_SET), 0);
	n = read(capture_fd, buf, sizeof(buf) - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(capture_fd);
	memcpy(capture_path + strlen(capture_path) - 6, "XXXXXX", 6);
	return buf;
}

START_TEST(test_prefix_syslog_name)
{
	char want[256];
	char *got;

	capture_start();
	log_init_name("petrel", "smtpd", LOG_DEST_STDERR);
	log_info("%s: client=unknown[%s]", "ABC", "127.0.0.1");
	log_init_name("other", "qmgr", LOG_DEST_STDERR);
	log_warn("x");
	got = capture_end();
	(void)snprintf(want, sizeof(want), "petrel/smtpd[%ld]: ABC: "
	    "client=unknown[127.0.0.1]\nother/qmgr[%ld]: warning: x\n",
	    (long)getpid(), (long)getpid());
	ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_prefix_without_name)
{
	char want[128];
	char *got;

	capture_start();
	log_init("relayq", LOG_DEST_STDERR);
	errno = ENOENT;
	log_info("open %s: %m", "f");
	log_init_name("", "relayq", LOG_DEST_STDERR);
	log_info("y");
	got = capture_end();
	(void)snprintf(want, sizeof(want), "relayq[%ld]: open f: %s\n"
	    "relayq[%ld]: y\n", (long)getpid(), strerror(ENOENT),
	    (long)getpid());
	ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_safe)
{
	ck_assert_str_eq(log_safe("a\nb\x01"), "a?b?");
	ck_assert_str_eq(log_safe(NULL), "(null)");
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_prefix_syslog_name);
	tcase_add_test(tc, test_prefix_without_name);
	tcase_add_test(tc, test_safe);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(log_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
