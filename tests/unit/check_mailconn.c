/*
 * check_mailconn.c - unit tests for lib/mailconn: a connect to a listening
 * private/<name> socket gives a non-blocking, close-on-exec descriptor
 * that reaches the listener; no listener, and a path too long for a
 * socket, fail with a reason naming the path.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "mailconn.h"
#include "vbuf.h"

static Suite	*mailconn_suite(void);
static void	 make_dir(char *, size_t);

/* A queue directory with private/ in a mkdtemp() dir. */
static void
make_dir(char *dir, size_t size)
{
	char path[512];
	const char *base = getenv("TMPDIR");

	snprintf(dir, size, "%s/check_mailconn.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/private", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
}

START_TEST(test_connect)
{
	struct sockaddr_un sun;
	struct vbuf *why = vbuf_create(0);
	char dir[256], buf[4];
	int lfd, fd, afd;

	make_dir(dir, sizeof(dir));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_lt(snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/private/qmgr", dir), (int)sizeof(sun.sun_path));
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);

	fd = mail_connect(dir, "qmgr", why);
	ck_assert_msg(fd >= 0, "%s", why->data);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	ck_assert_int_eq(read(afd, buf, sizeof(buf)), 3);
	close(fd);
	close(afd);

	/* Nobody listens on private/smtp. */
	ck_assert_int_eq(mail_connect(dir, "smtp", why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "connect to "));
	ck_assert_ptr_nonnull(strstr(why->data, "/private/smtp: "));
	close(lfd);
	unlink(sun.sun_path);
	ck_assert_int_lt(snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/private", dir), (int)sizeof(sun.sun_path));
	rmdir(sun.sun_path);
	rmdir(dir);
	vbuf_free(why);
}
END_TEST

START_TEST(test_path_too_long)
{
	struct vbuf *why = vbuf_create(0);
	char dir[300];

	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	ck_assert_int_eq(mail_connect(dir, "qmgr", why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "path too long"));
	/* why may be NULL. */
	ck_assert_int_eq(mail_connect(dir, "qmgr", NULL), -1);
	vbuf_free(why);
}
END_TEST

static Suite *
mailconn_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("mailconn");
	tc = tcase_create("connect");
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_path_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(mailconn_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
