/*
 * check_smtp_dsn.c - unit tests for smtp's side of the DSN extension
 * (RFC 3461): a delivery request served by smtp_service, against a
 * scripted SMTP server in a child process on 127.0.0.1. When the server
 * offers DSN, MAIL carries RET= and ENVID= and each RCPT its NOTIFY= and
 * ORCPT= from the queue file (an ORCPT made from the address where none
 * was given), and each recipient sent gets rcpt_dsn_passed=1 in the reply
 * to qmgr; when it does not, none of them is sent and the reply has no
 * rcpt_dsn_passed. Both the pipelined and the one-at-a-time dialogue are
 * used. The queue lives in a mkdtemp() directory.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "cfg.h"
#include "mailproto.h"
#include "qstore.h"
#include "smtp.h"
#include "vbuf.h"

static char tdir[64], qdir[96], cmdlog[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static void	queue_msg(char *);
static void	server(int, int);
static pid_t	server_start(int, uint16_t *);
static void	run_request(const char *, uint16_t, struct attr_list *,
		    struct vbuf *);
static void	read_cmds(struct vbuf *);
static const char *passed(const struct attr_list *, const char *);
static void	deliver_to(int, struct attr_list *, struct vbuf *,
		    struct vbuf *);
static Suite	*smtp_dsn_suite(void);

static void
setup(void)
{
	struct vbuf why;

	snprintf(tdir, sizeof(tdir), "/tmp/check_smtp_dsn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	snprintf(cmdlog, sizeof(cmdlog), "%s/cmds", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	tcfg.queue_map_size = 16UL * 1024 * 1024;
	tcfg.dkim_key_directory = tdir;
	tcfg.myhostname = (char *)"petrel.test";
	tcfg.smtp_connect_timeout = 5;
	tcfg.smtp_command_timeout = 5;
	vbuf_init(&why, 0);
	ck_assert_msg(qstore_create_dirs(qdir, getuid(), getgid(), &why) == 0,
	    "%s", why.data);
	vbuf_release(&why);
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

/*
 * Queues a message for four recipients: r1 with NOTIFY and ORCPT, r2 with
 * NOTIFY=NEVER only, r3 with nothing (an address xtext must encode), r4
 * refused by the server; RET=FULL and an ENVID.
 */
static void
queue_msg(char *qid)
{
	static const char body[] = "Subject: t\r\n\r\nHello.\r\n";
	struct qstore_envelope env;
	struct qstore_new *qn;
	struct qstore *qs;
	struct vbuf why;
	char *rcpts[] = { (char *)"r1@example.org", (char *)"r2@example.org",
	    (char *)"r+3=x@example.org", (char *)"bad@example.org" };
	char *orcpts[] = { (char *)"rfc822;orig+2B1@example.net", NULL, NULL,
	    NULL };
	unsigned notify[] = { QSTORE_NOTIFY_SUCCESS | QSTORE_NOTIFY_DELAY,
	    QSTORE_NOTIFY_NEVER, 0, QSTORE_NOTIFY_FAILURE };

	vbuf_init(&why, 0);
	ck_assert_msg((qs = qstore_open(&tcfg, &why)) != NULL, "%s",
	    why.data);
	memset(&env, 0, sizeof(env));
	env.sender = (char *)"app@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 4;
	env.client_addr = (char *)"127.0.0.1";
	env.client_name = (char *)"client.example";
	env.auth_user = (char *)"";
	env.notify = notify;
	env.orcpts = orcpts;
	env.envid = (char *)"QQ314159+2Bx";
	env.ret = QSTORE_RET_FULL;
	ck_assert_msg((qn = qstore_new_begin(qs, &env, &why)) != NULL, "%s",
	    why.data);
	ck_assert_int_eq(qstore_new_write(qn, body, strlen(body), &why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, &why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_msg(qstore_commit(qs, &qn, 1, &why) == 0, "%s", why.data);
	qstore_new_free(qn);
	qstore_close(qs);
	vbuf_release(&why);
}

/*
 * The child: one SMTP session on the listening socket lfd. Every command
 * line goes to cmdlog; RCPT for bad@ gets 550; with dsn the EHLO reply
 * offers PIPELINING and DSN, else neither.
 */
static void
server(int lfd, int dsn)
{
	char line[2048];
	FILE *log, *in;
	int fd;

	if ((fd = accept(lfd, NULL, NULL)) == -1 ||
	    (log = fopen(cmdlog, "w")) == NULL ||
	    (in = fdopen(fd, "r")) == NULL)
		_exit(2);
	dprintf(fd, "220 test ESMTP\r\n");
	while (fgets(line, sizeof(line), in) != NULL) {
		fputs(line, log);
		fflush(log);
		if (strncmp(line, "EHLO", 4) == 0) {
			if (dsn)
				dprintf(fd, "250-test\r\n250-PIPELINING\r\n"
				    "250 DSN\r\n");
			else
				dprintf(fd, "250-test\r\n250 8BITMIME\r\n");
		} else if (strncmp(line, "RCPT TO:<bad@", 13) == 0)
			dprintf(fd, "550 5.1.1 no such user\r\n");
		else if (strncmp(line, "MAIL", 4) == 0 ||
		    strncmp(line, "RCPT", 4) == 0 ||
		    strncmp(line, "RSET", 4) == 0)
			dprintf(fd, "250 2.0.0 ok\r\n");
		else if (strncmp(line, "DATA", 4) == 0) {
			dprintf(fd, "354 go\r\n");
			while (fgets(line, sizeof(line), in) != NULL &&
			    strcmp(line, ".\r\n") != 0)
				;
			dprintf(fd, "250 2.0.0 queued\r\n");
		} else if (strncmp(line, "QUIT", 4) == 0) {
			dprintf(fd, "221 2.0.0 bye\r\n");
			break;
		} else
			dprintf(fd, "500 5.5.2 what\r\n");
	}
	fclose(log);
	_exit(0);
}

static pid_t
server_start(int dsn, uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	pid_t pid;
	int lfd;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	if ((pid = fork()) == 0)
		server(lfd, dsn);
	ck_assert_int_gt(pid, 0);
	close(lfd);
	return pid;
}

/*
 * Sends qmgr's request for qid's four recipients to smtp_service over a
 * UNIX socket, as qmgr does, and decodes the reply into l (its bytes in
 * buf).
 */
static void
run_request(const char *qid, uint16_t port, struct attr_list *l,
    struct vbuf *buf)
{
	static const char *rcpts[] = { "r1@example.org", "r2@example.org",
	    "r+3=x@example.org", "bad@example.org" };
	struct daemon_listener dl;
	struct sockaddr_un sun;
	struct vbuf req, why;
	char nexthop[64];
	size_t used, i;
	int lfd, cfd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/smtp", tdir);
	(void)unlink(sun.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	cfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);

	vbuf_init(&req, 0);
	vbuf_init(&why, 0);
	snprintf(nexthop, sizeof(nexthop), "[127.0.0.1]:%u", port);
	attr_put_str(&req, MAIL_ATTR_REQUEST, MAIL_REQ_DELIVER);
	attr_put_str(&req, MAIL_ATTR_QUEUE_ID, qid);
	attr_put_str(&req, MAIL_ATTR_NEXTHOP, nexthop);
	attr_put_str(&req, MAIL_ATTR_SENDER, "app@example.com");
	attr_put_int(&req, MAIL_ATTR_ARRIVAL, (int64_t)time(NULL));
	attr_put_int(&req, MAIL_ATTR_ARRIVAL_US, 0);
	attr_put_int(&req, MAIL_ATTR_QMGR_TIME, 0);
	for (i = 0; i < 4; i++) {
		attr_put_num(&req, MAIL_ATTR_RCPT_INDEX, i);
		attr_put_str(&req, MAIL_ATTR_RCPT, rcpts[i]);
	}
	attr_end(&req);
	ck_assert_int_eq(attr_write(cfd, &req, 5000, &why), 0);
	ck_assert_int_eq(shutdown(cfd, SHUT_WR), 0);
	dl.fd = lfd;
	dl.name = "smtp";
	smtp_service(&dl);
	/* The cached session says QUIT, so the server ends. */
	(void)smtp_busy();
	vbuf_reset(buf);
	ck_assert_msg(attr_read(cfd, buf, l, &used, 5000, &why) == 0, "%s",
	    why.data);
	close(cfd);
	close(lfd);
	vbuf_release(&req);
	vbuf_release(&why);
}

static void
read_cmds(struct vbuf *out)
{
	char line[2048];
	FILE *f;

	vbuf_reset(out);
	ck_assert_ptr_nonnull(f = fopen(cmdlog, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		(void)vbuf_adds(out, line);
	fclose(f);
}

/*
 * The value of rcpt_dsn_passed in the reply's group for index idx
 * (rcpt_index's value), or NULL if the group has none.
 */
static const char *
passed(const struct attr_list *l, const char *idx)
{
	const char *got = NULL;
	int in = 0;
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (strcmp(l->items[i].name, MAIL_ATTR_RCPT_INDEX) == 0)
			in = strcmp(l->items[i].value, idx) == 0;
		else if (in && strcmp(l->items[i].name,
		    MAIL_ATTR_RCPT_DSN_PASSED) == 0)
			got = l->items[i].value;
	}
	return got;
}

/*
 * Queues the message, delivers it to a server that offers DSN (or not)
 * and fills l and buf with smtp's reply, cmds with what the server read.
 */
static void
deliver_to(int dsn, struct attr_list *l, struct vbuf *buf,
    struct vbuf *cmds)
{
	char qid[QID_SIZE];
	uint16_t port;
	pid_t pid;
	int st;

	queue_msg(qid);
	pid = server_start(dsn, &port);
	smtp_init(&tcfg);
	run_request(qid, port, l, buf);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	read_cmds(cmds);
}

START_TEST(test_dsn_offered)
{
	struct attr_list l;
	struct vbuf buf, cmds;

	attr_list_init(&l);
	vbuf_init(&buf, 0);
	vbuf_init(&cmds, 0);
	deliver_to(1, &l, &buf, &cmds);
	ck_assert_msg(strstr(cmds.data, "MAIL FROM:<app@example.com> "
	    "RET=FULL ENVID=QQ314159+2Bx\r\n") != NULL, "%s", cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<r1@example.org> "
	    "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig+2B1@example.net\r\n") !=
	    NULL, "%s", cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<r2@example.org> "
	    "NOTIFY=NEVER ORCPT=rfc822;r2@example.org\r\n") != NULL, "%s",
	    cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<r+3=x@example.org> "
	    "ORCPT=rfc822;r+2B3+3Dx@example.org\r\n") != NULL, "%s",
	    cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<bad@example.org> "
	    "NOTIFY=FAILURE ORCPT=rfc822;bad@example.org\r\n") != NULL, "%s",
	    cmds.data);
	ck_assert_str_eq(attr_get(&l, MAIL_ATTR_STATUS), "0");
	ck_assert_ptr_nonnull(passed(&l, "0"));
	ck_assert_str_eq(passed(&l, "0"), "1");
	ck_assert_ptr_nonnull(passed(&l, "1"));
	ck_assert_ptr_nonnull(passed(&l, "2"));
	/* Bounced by the server: nothing was passed on for it. */
	ck_assert_ptr_null(passed(&l, "3"));
	attr_list_release(&l);
	vbuf_release(&buf);
	vbuf_release(&cmds);
}
END_TEST

START_TEST(test_dsn_not_offered)
{
	struct attr_list l;
	struct vbuf buf, cmds;

	attr_list_init(&l);
	vbuf_init(&buf, 0);
	vbuf_init(&cmds, 0);
	deliver_to(0, &l, &buf, &cmds);
	ck_assert_msg(strstr(cmds.data, "MAIL FROM:<app@example.com> "
	    "BODY=8BITMIME\r\n") != NULL, "%s", cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<r1@example.org>\r\n") !=
	    NULL, "%s", cmds.data);
	ck_assert_msg(strstr(cmds.data, "RCPT TO:<r+3=x@example.org>\r\n") !=
	    NULL, "%s", cmds.data);
	ck_assert_msg(strstr(cmds.data, "NOTIFY") == NULL &&
	    strstr(cmds.data, "ORCPT") == NULL &&
	    strstr(cmds.data, "RET=") == NULL &&
	    strstr(cmds.data, "ENVID") == NULL, "%s", cmds.data);
	ck_assert_str_eq(attr_get(&l, MAIL_ATTR_STATUS), "0");
	ck_assert_ptr_null(attr_get(&l, MAIL_ATTR_RCPT_DSN_PASSED));
	/* Delivered all the same (the first recipient's status). */
	ck_assert_str_eq(attr_get(&l, MAIL_ATTR_RCPT_STATUS),
	    MAIL_STATUS_SENT);
	attr_list_release(&l);
	vbuf_release(&buf);
	vbuf_release(&cmds);
}
END_TEST

static Suite *
smtp_dsn_suite(void)
{
	Suite *s = suite_create("smtp_dsn");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dsn_offered);
	tcase_add_test(tc, test_dsn_not_offered);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_dsn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
