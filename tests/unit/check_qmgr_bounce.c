/*
 * check_qmgr_bounce.c - unit tests for qmgr_bounce.c, qmgr's side of the
 * report protocol, against a peer on private/bounce that answers as the
 * test scripts it (the real bounce daemon is in the integration tests):
 * an answered request settles the message; a request bounce fails puts
 * off only its own recipients' reports; a warned recipient goes back to
 * the retry its deferral set.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <signal.h>

#include "attr.h"
#include "check_qmgr.h"
#include "event.h"
#include "mailproto.h"

#define PEER_REQUESTS_MAX	8

/* What the peer answers: status 1 for fail_qid, else a report id. */
struct peer {
	pid_t	pid;
	char	fail_qid[QID_SIZE];
	int	requests;	/* to serve before it exits */
};

static Suite	*bounce_suite(void);
static void	 peer_start(struct fix *, struct peer *);
static void	 peer_serve(int, const struct peer *);
static void	 peer_stop(struct peer *);
static void	 peer_exit(int);
static int	 msg_exists(const char *);
static void	 fail_all(char (*)[QID_SIZE], size_t);
static void	 run_until_idle(int64_t);

/* Listens on private/bounce, then serves in a child process. */
static void
peer_start(struct fix *f, struct peer *p)
{
	struct sockaddr_un sun;
	char path[512];
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(path, sizeof(path), "%s/private/%s", f->dir,
	    MAIL_SOCK_BOUNCE);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		/* A plain exit when stopped: Check counts signals as errors. */
		(void)signal(SIGTERM, peer_exit);
		peer_serve(fd, p);
		_exit(0);
	}
	close(fd);
}

/* One connection, p->requests requests, each answered as scripted. */
static void
peer_serve(int lfd, const struct peer *p)
{
	struct attr_list l;
	struct vbuf *in = vbuf_create(0), *out = vbuf_create(0);
	const char *qid;
	char buf[4096];
	size_t used;
	ssize_t n;
	int fd, served = 0, rc;

	if ((fd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	attr_list_init(&l);
	while (served < p->requests) {
		rc = attr_decode(&l, in->data, in->len, &used, NULL);
		if (rc == -1)
			_exit(2);
		if (rc == 0) {
			if ((n = read(fd, buf, sizeof(buf))) <= 0)
				_exit(3);
			vbuf_add(in, buf, (size_t)n);
			continue;
		}
		qid = attr_get(&l, MAIL_ATTR_QUEUE_ID);
		vbuf_reset(out);
		if (qid != NULL && strcmp(qid, p->fail_qid) == 0) {
			attr_put_num(out, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
			attr_put_str(out, MAIL_ATTR_REASON, "scripted failure");
		} else {
			attr_put_num(out, MAIL_ATTR_STATUS, MAIL_STAT_OK);
			attr_put_str(out, MAIL_ATTR_DSN_ID, "6B0000000000000A");
		}
		attr_end(out);
		if (write(fd, out->data, out->len) != (ssize_t)out->len)
			_exit(4);
		memmove(in->data, in->data + used, in->len - used);
		in->len -= used;
		served++;
	}
	/* Stay until qmgr hangs up, so it sees no end of stream early. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void
peer_exit(int sig)
{
	(void)sig;
	_exit(0);
}

static void
peer_stop(struct peer *p)
{
	int status;

	ck_assert_int_gt(p->pid, 0);
	(void)kill(p->pid, SIGTERM);
	(void)waitpid(p->pid, &status, 0);
}

static int
msg_exists(const char *qid)
{
	struct qstore_msginfo m;
	struct qstore_txn *t;
	int rc;

	t = qstore_txn_begin(qmgr_queue, 0, NULL);
	ck_assert_ptr_nonnull(t);
	rc = qstore_msg_get(t, qid, &m);
	qstore_txn_abort(t);
	return rc == 0;
}

/* Each message's one recipient fails for good: a report is owed. */
static void
fail_all(char (*qids)[QID_SIZE], size_t n)
{
	struct qmgr_job *jobs[8];

	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, 8), n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(jobs[i]->qid, qids[i]);
		qmgr_job_result(&jobs[i]->rcpts[0], QSTORE_FAILED, "5.1.1",
		    "550 5.1.1 no such user");
		qmgr_job_set_relay(jobs[i], "none");
		qmgr_job_done(jobs[i]);
	}
	ck_assert_uint_eq(qmgr_results_apply(), n);
}

/* Runs qmgr's bounce side until nothing is queued or at bounce. */
static void
run_until_idle(int64_t ms)
{
	int64_t end = ev_now_ms() + ms;

	qmgr_bounce_run();
	while (qmgr_bounce_busy() > 0 && ev_now_ms() < end) {
		(void)ev_run_once(10);
		qmgr_bounce_run();
	}
	ck_assert_uint_eq(qmgr_bounce_busy(), 0);
}

/*
 * Two messages owe reports; bounce fails the first request and makes the
 * second report: the second message is settled and gone, the first's
 * report is put off by QMGR_BOUNCE_JOB_RETRY, and nothing else waits.
 */
START_TEST(test_failed_request_puts_off_only_its_own)
{
	struct fix f;
	struct peer p;
	struct qstore_rcpt r;
	char qid[2][QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	int64_t now;

	ev_init();
	fix_setup(&f);
	fix_commit(&f, rcpts, 1, qid[0]);
	fix_commit(&f, rcpts, 1, qid[1]);
	fail_all(qid, 2);
	memset(&p, 0, sizeof(p));
	snprintf(p.fail_qid, sizeof(p.fail_qid), "%s", qid[0]);
	p.requests = 2;
	peer_start(&f, &p);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(qmgr_bounce_busy(), 2);
	now = time(NULL);
	run_until_idle(5000);
	ck_assert(qmgr_bounce_made());
	ck_assert(qmgr_bounce_ready());
	/* Answered: settled, and the message gone. */
	ck_assert(!msg_exists(qid[1]));
	/* Failed: still owed, later. */
	ck_assert(msg_exists(qid[0]));
	ck_assert_int_eq(fix_rcpt(&f, qid[0], 0, &r), 0);
	ck_assert_int_eq(r.report, QSTORE_REPORT_FAILED);
	ck_assert_int_ge(r.next_attempt, now + QMGR_BOUNCE_JOB_RETRY);
	/* Not due now: the next scan makes no report job for it. */
	qmgr_sched_scan(16);
	ck_assert_uint_eq(qmgr_bounce_busy(), 0);
	peer_stop(&p);
	fix_teardown(&f);
}
END_TEST

/*
 * A delay warning made: the recipient is warned once and goes back to the
 * retry its deferral set, not before.
 */
START_TEST(test_warned_back_to_retry)
{
	struct fix f;
	struct peer p;
	struct qstore_rcpt r;
	struct qmgr_job *jobs[4];
	char qid[QID_SIZE];
	char *rcpts[] = { "a@x.test" };
	int64_t now;

	ev_init();
	fix_setup(&f);
	f.cfg.bounce_delay_warning = 1;
	fix_commit(&f, rcpts, 1, qid);
	sleep(2);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, 4), 1);
	qmgr_job_result(&jobs[0]->rcpts[0], QSTORE_DEFERRED, "4.2.2",
	    "452 4.2.2 mailbox full");
	qmgr_job_set_relay(jobs[0], "none");
	qmgr_job_done(jobs[0]);
	ck_assert_uint_eq(qmgr_results_apply(), 1);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.report, QSTORE_REPORT_DELAYED);
	memset(&p, 0, sizeof(p));
	p.requests = 1;
	peer_start(&f, &p);
	now = time(NULL);
	qmgr_sched_scan(16);
	ck_assert_uint_eq(fix_pending(jobs, 4), 0);
	ck_assert_uint_eq(qmgr_bounce_busy(), 1);
	run_until_idle(5000);
	ck_assert_int_eq(fix_rcpt(&f, qid, 0, &r), 0);
	ck_assert_int_eq(r.state, QSTORE_DEFERRED);
	ck_assert_int_eq(r.report, QSTORE_REPORT_NONE);
	ck_assert_int_eq(r.warned, 1);
	ck_assert_int_ge(r.next_attempt, now + f.cfg.queue_min_backoff - 2);
	ck_assert(msg_exists(qid));
	peer_stop(&p);
	fix_teardown(&f);
}
END_TEST

static Suite *
bounce_suite(void)
{
	Suite *s = suite_create("qmgr_bounce");
	TCase *tc = tcase_create("bounce");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_failed_request_puts_off_only_its_own);
	tcase_add_test(tc, test_warned_back_to_retry);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bounce_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
