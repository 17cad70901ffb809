/*
 * check_acct.c - unit tests for lib/acct: the JSON accounting log.
 *
 * Events (lib/outbox's struct) are appended (never truncating) to the file
 * given to acct_open() as one JSON object per line starting with "time"
 * (RFC 3339 UTC with milliseconds), "event" and "queue_id"; strings are
 * escaped so a line never splits; concurrent writers never interleave (one
 * write(2) to an O_APPEND file); held events are written only when
 * released for a commit; acct_open(NULL) turns the log off; after the
 * file is renamed (logrotate), acct_reopen() sends the next event, held
 * ones included, to a new file at the same path, and keeps the old one if
 * the path cannot be opened.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acct.h"
#include "json.h"
#include "outbox.h"
#include "vbuf.h"

#define NWRITERS	4
#define NEVENTS		300

static char	*slurp(const char *, size_t *);
static void	 check_time(const char *);
static void	 make_tmpdir(char *, size_t);
static void	 rmtree(const char *);
static void	 event(struct outbox_event *, enum outbox_kind, const char *);
static Suite	*acct_suite(void);

static char *
slurp(const char *path, size_t *lenp)
{
	struct vbuf *vb = vbuf_create(0);
	char buf[4096], *s;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_int_ne(fd, -1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		vbuf_add(vb, buf, (size_t)n);
	ck_assert_int_eq(n, 0);
	close(fd);
	*lenp = vb->len;
	s = vb->data;
	free(vb);		/* keep the data, drop the header */
	return s;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", within a minute of now. */
static void
check_time(const char *ts)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm tm;
	time_t t;
	size_t i;

	ck_assert_uint_eq(strlen(ts), sizeof(shape) - 1);
	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd')
			ck_assert_msg(ts[i] >= '0' && ts[i] <= '9', "time %s",
			    ts);
		else
			ck_assert_msg(ts[i] == shape[i], "time %s", ts);
	}
	memset(&tm, 0, sizeof(tm));
	ck_assert_int_eq(sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	ck_assert_msg(labs((long)(t - time(NULL))) < 60, "time %s not UTC now",
	    ts);
}

static void
make_tmpdir(char *buf, size_t size)
{
	const char *base = getenv("TMPDIR");

	snprintf(buf, size, "%s/check_acct.XXXXXX", base != NULL ? base :
	    "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void
rmtree(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/other.jsonl", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* An event of kind, now, for qid; the other members absent. */
static void
event(struct outbox_event *ev, enum outbox_kind kind, const char *qid)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->time_ms = outbox_now_ms();
	snprintf(ev->qid, sizeof(ev->qid), "%s", qid);
}

START_TEST(test_lines)
{
	char dir[256], path[300], ts[64];
	struct outbox_event ev;
	struct stat st;
	char *data, *line2, *p;
	size_t len;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);

	/* A line already there is kept: the log is appended to. */
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "{\"old\":1}\n", 10), 10);
	close(fd);

	ck_assert_int_eq(acct_open(path), 0);
	ck_assert(acct_enabled());

	event(&ev, OUTBOX_ACCEPTED, "0123456789ABCDEF");
	ev.size = 4096;
	ev.sender = "a\"b\n\r@c\\d";
	acct_event(&ev);
	event(&ev, OUTBOX_DELIVERED, "FEDCBA9876543210");
	ev.recipient = "x@y.z";
	acct_event(&ev);

	data = slurp(path, &len);
	ck_assert_uint_eq(strlen(data), len);
	ck_assert(strncmp(data, "{\"old\":1}\n", 10) == 0);
	p = data + 10;

	/* Line 1: the fixed members first, in order, then the event's. */
	ck_assert(strncmp(p, "{\"time\":\"", 9) == 0);
	memcpy(ts, p + 9, 24);
	ts[24] = '\0';
	check_time(ts);
	p += 9 + 24;
	line2 = strchr(p, '\n');
	ck_assert_ptr_nonnull(line2);
	*line2++ = '\0';
	ck_assert_str_eq(p, "\",\"event\":\"accepted\","
	    "\"queue_id\":\"0123456789ABCDEF\","
	    "\"sender\":\"a\\\"b\\n\\r@c\\\\d\",\"recipients\":[],"
	    "\"size\":4096,\"client\":null,\"helo\":null,"
	    "\"sasl_username\":null,\"tls\":null,\"listener\":null}");

	/* Line 2, and nothing after it. */
	ck_assert(strncmp(line2, "{\"time\":\"", 9) == 0);
	memcpy(ts, line2 + 9, 24);
	check_time(ts);
	ck_assert_str_eq(line2 + 9 + 24, "\",\"event\":\"delivered\","
	    "\"queue_id\":\"FEDCBA9876543210\",\"sender\":null,"
	    "\"recipient\":\"x@y.z\",\"relay\":null,\"dsn\":null,"
	    "\"reply\":null,\"attempts\":0,\"delay\":0}\n");
	free(data);

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(acct_open(NULL), 0);
	rmtree(dir);
}
END_TEST

START_TEST(test_create_mode)
{
	char dir[256], path[300];
	struct stat st;
	mode_t old;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	old = umask(022);
	ck_assert_int_eq(acct_open(path), 0);
	umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(acct_open(NULL), 0);
	rmtree(dir);
}
END_TEST

START_TEST(test_disabled)
{
	char dir[256], path[300], other[300];
	struct outbox_event ev;
	struct stat st;
	char *data;
	size_t len;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	snprintf(other, sizeof(other), "%s/other.jsonl", dir);

	/* Off from the start: events are written nowhere. */
	ck_assert_int_eq(acct_open(NULL), 0);
	ck_assert(!acct_enabled());
	event(&ev, OUTBOX_ACCEPTED, "0123456789ABCDEF");
	acct_event(&ev);

	/* On, one event, then off: later events do not reach the file. */
	ck_assert_int_eq(acct_open(path), 0);
	acct_event(&ev);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
	ck_assert_int_eq(acct_open(NULL), 0);
	ck_assert(!acct_enabled());
	event(&ev, OUTBOX_DEFERRED, "0123456789ABCDEF");
	acct_event(&ev);
	data = slurp(path, &len);
	ck_assert_uint_eq(len, (size_t)st.st_size);
	ck_assert_ptr_null(strstr(data, "deferred"));
	free(data);

	/* Reopening elsewhere moves the log. */
	ck_assert_int_eq(acct_open(path), 0);
	ck_assert_int_eq(acct_open(other), 0);
	event(&ev, OUTBOX_BOUNCED, "0123456789ABCDEF");
	acct_event(&ev);
	data = slurp(path, &len);
	ck_assert_ptr_null(strstr(data, "bounced"));
	free(data);
	data = slurp(other, &len);
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"bounced\""));
	free(data);

	/* A path that cannot be opened fails and leaves the log off. */
	snprintf(other, sizeof(other), "%s/missing/acct.jsonl", dir);
	ck_assert_int_eq(acct_open(other), -1);
	ck_assert(!acct_enabled());
	rmtree(dir);
}
END_TEST

/* Held events reach the file only when released for a commit. */
START_TEST(test_hold)
{
	char dir[256], path[300], *data;
	struct outbox_event ev;
	size_t len;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	ck_assert_int_eq(acct_open(path), 0);
	acct_hold();
	event(&ev, OUTBOX_DEFERRED, "0123456789ABCDEF");
	acct_event(&ev);
	data = slurp(path, &len);
	ck_assert_uint_eq(len, 0);
	free(data);
	acct_release(0);
	data = slurp(path, &len);
	ck_assert_uint_eq(len, 0);
	free(data);
	acct_hold();
	event(&ev, OUTBOX_DELIVERED, "FEDCBA9876543210");
	acct_event(&ev);
	event(&ev, OUTBOX_BOUNCED, "FEDCBA9876543210");
	acct_event(&ev);
	acct_release(1);
	data = slurp(path, &len);
	ck_assert_ptr_null(strstr(data, "deferred"));
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"delivered\""));
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"bounced\""));
	free(data);
	ck_assert_int_eq(acct_open(NULL), 0);
	rmtree(dir);
}
END_TEST

START_TEST(test_concurrent)
{
	char dir[256], path[300], big[3000], *data, *p, *nl;
	pid_t pids[NWRITERS];
	struct outbox_event ev;
	size_t len, lines = 0;
	int i, k, status;

	/*
	 * Several processes (smtpd, qmgr) append to the same file: with
	 * one write(2) per line on O_APPEND, lines never interleave.
	 */
	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	for (i = 0; i < NWRITERS; i++) {
		pids[i] = fork();
		ck_assert_int_ne(pids[i], -1);
		if (pids[i] == 0) {
			if (acct_open(path) == -1)
				_exit(1);
			memset(big, 'a' + i, sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			/* The padding ends the line (listener is last). */
			event(&ev, OUTBOX_ACCEPTED, "0123456789ABCDEF");
			ev.listener = big;
			for (k = 0; k < NEVENTS; k++)
				acct_event(&ev);
			_exit(0);
		}
	}
	for (i = 0; i < NWRITERS; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	data = slurp(path, &len);
	for (p = data; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		ck_assert_ptr_nonnull(nl);
		*nl = '\0';
		ck_assert(strncmp(p, "{\"time\":\"", 9) == 0);
		ck_assert(nl[-1] == '}');
		/* One writer's padding, whole. */
		k = p[strlen(p) - 3] - 'a';
		ck_assert(k >= 0 && k < NWRITERS);
		memset(big, 'a' + k, sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ck_assert_ptr_nonnull(strstr(p, big));
		lines++;
	}
	ck_assert_uint_eq(lines, NWRITERS * NEVENTS);
	free(data);
	rmtree(dir);
}
END_TEST

/*
 * Rotation: the renamed file keeps what was written before acct_reopen();
 * the next events, a held one too, go to the new file at the path.
 */
START_TEST(test_reopen)
{
	char dir[256], path[300], rotated[320], *data;
	struct outbox_event ev;
	size_t len;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/acct.jsonl", dir);
	snprintf(rotated, sizeof(rotated), "%s.1", path);

	ck_assert_int_eq(acct_open(path), 0);
	event(&ev, OUTBOX_ACCEPTED, "0123456789ABCDEF");
	acct_event(&ev);
	ck_assert_int_eq(rename(path, rotated), 0);
	/* Before the reopen, events still reach the renamed file. */
	event(&ev, OUTBOX_DEFERRED, "0123456789ABCDEF");
	acct_event(&ev);
	acct_hold();
	ck_assert_int_eq(acct_reopen(), 0);
	event(&ev, OUTBOX_DELIVERED, "0123456789ABCDEF");
	acct_event(&ev);
	acct_release(1);
	event(&ev, OUTBOX_BOUNCED, "0123456789ABCDEF");
	acct_event(&ev);

	data = slurp(rotated, &len);
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"accepted\""));
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"deferred\""));
	ck_assert_ptr_null(strstr(data, "delivered"));
	ck_assert_ptr_null(strstr(data, "bounced"));
	free(data);
	data = slurp(path, &len);
	ck_assert_ptr_null(strstr(data, "accepted"));
	ck_assert_ptr_null(strstr(data, "deferred"));
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"delivered\""));
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"bounced\""));
	free(data);

	/* A path that cannot be opened now keeps the old file in use. */
	ck_assert_int_eq(rename(path, rotated), 0);
	ck_assert_int_eq(chmod(dir, 0500), 0);
	if (access(dir, W_OK) == -1) {	/* not root */
		ck_assert_int_eq(acct_reopen(), -1);
		ck_assert(acct_enabled());
		event(&ev, OUTBOX_EXPIRED, "0123456789ABCDEF");
		acct_event(&ev);
		data = slurp(rotated, &len);
		ck_assert_ptr_nonnull(strstr(data, "\"event\":\"expired\""));
		free(data);
	}
	ck_assert_int_eq(chmod(dir, 0700), 0);

	/* Off: nothing to reopen. */
	ck_assert_int_eq(acct_open(NULL), 0);
	ck_assert_int_eq(acct_reopen(), 0);
	ck_assert(!acct_enabled());
	rmtree(dir);
}
END_TEST

static Suite *
acct_suite(void)
{
	Suite *s = suite_create("acct");
	TCase *tc = tcase_create("acct");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_create_mode);
	tcase_add_test(tc, test_disabled);
	tcase_add_test(tc, test_hold);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_reopen);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(acct_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
