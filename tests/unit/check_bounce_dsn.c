/*
 * check_bounce_dsn.c - unit tests for bounce(8)'s report composer and
 * request handling (bounce/bounce_dsn.c, bounce/bounce_service.c).
 *
 * Each test builds a real queue in a mkdtemp() directory, commits an
 * original message with lib/qstore, opens its file and composes a report
 * from it. Covered: failed, delayed and relayed reports with one and
 * several recipients; ENVID and ORCPT (xtext decoded); RET=FULL within and
 * over bounce.size_limit; a missing original; hostile reply text (CR, LF,
 * NUL, 8-bit bytes); long replies folded; 8-bit original headers marked
 * 8bit; every line CRLF and at most 998 octets; a boundary that the
 * original holds replaced by one it does not; bounce_parse's checks;
 * bounce_make committing the report (null sender, to the original sender)
 * and declining for <>, NOTIFY=NEVER and reports turned off.
 *
 * With BOUNCE_DSN_OUT set to a directory, each composed report is also
 * written there as NAME.eml, for tests/integration/test_bounce_parse.py to
 * parse with two independent MIME parsers.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "bounce.h"
#include "cfg.h"
#include "mailproto.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

#define MAP_SIZE	(16 * 1024 * 1024)
#define T0		1796400000	/* a fixed "now" */

struct fix {
	char		 dir[256];
	struct cfg	 cfg;
	struct qstore	*qs;
	struct vbuf	*why;
};

static void	 fix_setup(struct fix *);
static void	 fix_teardown(struct fix *);
static int	 rm_cb(const char *, const struct stat *, int, struct FTW *);
static void	 commit_orig(struct fix *, struct qstore_envelope *,
		    const char *, size_t, char *);
static struct qstore_file *orig_file(struct fix *, struct qstore_envelope *,
		    const char *, size_t, char *);
static int	 parse_one(const char *, const char *, int, struct vbuf *);
static void	 report_init(struct bounce_report *, enum qstore_report,
		    const char *, struct qstore_file *,
		    const struct bounce_rcpt *, size_t);
static void	 compose(const struct bounce_report *, struct vbuf *,
		    const char *);
static void	 check_lines(const struct vbuf *);
static int	 has(const struct vbuf *, const char *);
static void	 env_init(struct qstore_envelope *, const char *, char **,
		    size_t);
static Suite	*bounce_dsn_suite(void);

static const char orig_msg[] =
    "Received: from client.example ([192.0.2.7]) by mx.test\r\n"
    "\tid ABC; Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@sender.example>\r\n"
    "To: bob@rcpt.example\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <orig-1@sender.example>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "the numbers are in.\r\n";

static const struct bounce_rcpt rcpt_bob = {
	.index = 0, .addr = "bob@rcpt.example", .dsn = "5.1.1",
	.reply = "550 5.1.1 <bob@rcpt.example>: Recipient address rejected: "
	    "User unknown in virtual mailbox table",
	.class = "bad-mailbox", .relay = "mx.rcpt.example[192.0.2.25]:25",
	.time = T0 - 60,
};

static int
rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
fix_setup(struct fix *f)
{
	const char *base = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/check_bounce.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	f->why = vbuf_create(0);
	ck_assert_int_eq(qstore_create_dirs(f->dir, getuid(), getgid(),
	    f->why), 0);
	f->cfg.queue_directory = f->dir;
	f->cfg.queue_map_size = MAP_SIZE;
	f->cfg.outbox_max_events = 1000;
	f->cfg.outbox_max_age = 86400;
	f->cfg.outbox_max_share = 10;
	f->cfg.myhostname = "relay.test";
	f->cfg.bounce_size_limit = 50000;
	f->qs = qstore_open(&f->cfg, f->why);
	ck_assert_msg(f->qs != NULL, "qstore_open: %s", f->why->data);
}

static void
fix_teardown(struct fix *f)
{
	qstore_close(f->qs);
	vbuf_free(f->why);
	(void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
env_init(struct qstore_envelope *env, const char *sender, char **rcpts,
    size_t n)
{
	memset(env, 0, sizeof(*env));
	env->sender = (char *)sender;
	env->rcpts = rcpts;
	env->nrcpts = n;
	env->client_addr = "192.0.2.7";
	env->client_name = "client.example";
	env->auth_user = "alice";
}

static void
commit_orig(struct fix *f, struct qstore_envelope *env, const char *body,
    size_t len, char *qid)
{
	struct qstore_new *qn;

	qn = qstore_new_begin(f->qs, env, f->why);
	ck_assert_msg(qn != NULL, "begin: %s", f->why->data);
	ck_assert_int_eq(qstore_new_write(qn, body, len, f->why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, f->why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_msg(qstore_commit(f->qs, &qn, 1, f->why) == 0, "commit: %s",
	    f->why->data);
	qstore_new_free(qn);
}

/* Commits an original and opens its file. */
static struct qstore_file *
orig_file(struct fix *f, struct qstore_envelope *env, const char *body,
    size_t len, char *qid)
{
	struct qstore_file *qf;

	commit_orig(f, env, body, len, qid);
	qf = qstore_file_open(f->dir, qid, f->why);
	ck_assert_msg(qf != NULL, "open: %s", f->why->data);
	return qf;
}

static void
report_init(struct bounce_report *r, enum qstore_report kind,
    const char *qid, struct qstore_file *qf, const struct bounce_rcpt *rc,
    size_t n)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->qid = qid;
	r->sender = "alice@sender.example";
	r->arrival = T0 - 3600;
	r->qf = qf;
	r->rcpts = rc;
	r->nrcpts = n;
	r->myhostname = "relay.test";
	r->size_limit = 50000;
	r->now = T0;
	r->msgid = "DSN1@relay.test";
	r->boundary = "DSN1.1796400000/relay.test";
}

/* Composes, checks the framing, and writes NAME.eml when asked to. */
static void
compose(const struct bounce_report *r, struct vbuf *out, const char *name)
{
	struct vbuf *why = vbuf_create(0);
	const char *dir = getenv("BOUNCE_DSN_OUT");
	char path[512];
	FILE *fp;

	vbuf_reset(out);
	ck_assert_msg(bounce_dsn_compose(r, out, why) == 0, "compose: %s",
	    why->data);
	vbuf_free(why);
	check_lines(out);
	if (dir != NULL) {
		snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
		fp = fopen(path, "w");
		ck_assert_ptr_nonnull(fp);
		ck_assert_uint_eq(fwrite(out->data, 1, out->len, fp), out->len);
		ck_assert_int_eq(fclose(fp), 0);
	}
}

/* Every line ends in CRLF, is at most 998 octets and has no NUL. */
static void
check_lines(const struct vbuf *m)
{
	size_t i, col = 0;

	ck_assert_uint_gt(m->len, 2);
	for (i = 0; i < m->len; i++) {
		ck_assert_msg(m->data[i] != '\0', "NUL at %zu", i);
		if (m->data[i] == '\r') {
			ck_assert_msg(i + 1 < m->len && m->data[i + 1] == '\n',
			    "bare CR at %zu", i);
			continue;
		}
		if (m->data[i] == '\n') {
			ck_assert_msg(i > 0 && m->data[i - 1] == '\r',
			    "bare LF at %zu", i);
			col = 0;
			continue;
		}
		col++;
		ck_assert_msg(col <= BOUNCE_LINE_MAX, "line over 998 at %zu",
		    i);
	}
	ck_assert(m->data[m->len - 1] == '\n');
}

static int
has(const struct vbuf *m, const char *s)
{
	return memmem(m->data, m->len, s, strlen(s)) != NULL;
}

START_TEST(test_failed_one)
{
	static char *rcpts[] = { "bob@rcpt.example" };
	struct qstore_envelope env;
	struct bounce_report r;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0);
	char qid[QID_SIZE];
	struct fix f;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 1);
	qf = orig_file(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, &rcpt_bob, 1);
	compose(&r, m, "failed_one");
	ck_assert(has(m, "From: MAILER-DAEMON@relay.test (Mail Delivery "
	    "System)\r\n"));
	ck_assert(has(m, "To: <alice@sender.example>\r\n"));
	ck_assert(has(m, "Subject: Undelivered Mail Returned to Sender\r\n"));
	ck_assert(has(m, "Auto-Submitted: auto-replied\r\n"));
	ck_assert(has(m, "Message-ID: <DSN1@relay.test>\r\n"));
	ck_assert(has(m, "Date: Fri, 04 Dec 2026 "));
	ck_assert(has(m, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\""
	    "DSN1.1796400000/relay.test\"\r\n"));
	ck_assert(has(m, "Reporting-MTA: dns; relay.test\r\n"));
	ck_assert(has(m, "Arrival-Date: Fri, 04 Dec 2026 "));
	ck_assert(has(m, "Final-Recipient: rfc822; bob@rcpt.example\r\n"));
	ck_assert(has(m, "Action: failed\r\nStatus: 5.1.1\r\n"));
	ck_assert(has(m, "Remote-MTA: dns; mx.rcpt.example\r\n"));
	ck_assert(has(m, "Diagnostic-Code: smtp; 550 5.1.1 "));
	ck_assert(has(m, "Last-Attempt-Date: "));
	ck_assert(has(m, "X-Petrel-Bounce-Class: bad-mailbox\r\n"));
	ck_assert(!has(m, "Will-Retry-Until"));
	ck_assert(!has(m, "Original-Recipient"));
	ck_assert(!has(m, "Original-Envelope-Id"));
	/* Part 1 in words: the reply, the class, what to do. */
	ck_assert(has(m, "<bob@rcpt.example>: host "
	    "mx.rcpt.example[192.0.2.25]:25 said: 550 5.1.1"));
	ck_assert(has(m, "Reason (bad-mailbox): The recipient's mailbox "
	    "does not exist."));
	ck_assert(has(m, "What to do:"));
	ck_assert(has(m, "The headers of your message are attached."));
	/* Part 3: the headers only, 7bit. */
	ck_assert(has(m, "Content-Type: text/rfc822-headers\r\n\r\n"
	    "Received: from client.example"));
	ck_assert(has(m, "Subject: quarterly report\r\nMessage-ID: "
	    "<orig-1@sender.example>\r\n\r\n--DSN1"));
	ck_assert(!has(m, "the numbers are in"));
	ck_assert(!has(m, "Content-Transfer-Encoding"));
	ck_assert(has(m, "--DSN1.1796400000/relay.test--\r\n"));
	qstore_file_close(qf);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_several_envid_orcpt)
{
	static char *rcpts[] = { "bob@rcpt.example", "carol@rcpt.example",
	    "dave@other.example" };
	static char *orcpts[] = { "rfc822;Bob+2BTag@rcpt.example", NULL,
	    "rfc822;dave+0D+0Aevil@other.example" };
	struct bounce_rcpt rc[3];
	struct qstore_envelope env;
	struct bounce_report r;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0);
	char qid[QID_SIZE];
	struct fix f;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 3);
	env.orcpts = orcpts;
	env.envid = "QQ314159+2Bx";
	qf = orig_file(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	rc[0] = rcpt_bob;
	memset(&rc[1], 0, sizeof(rc[1]));
	rc[1].index = 1;
	rc[1].addr = "carol@rcpt.example";
	rc[1].dsn = "5.2.2";
	rc[1].reply = "552 5.2.2 Mailbox full";
	rc[1].class = "quota-issues";
	rc[1].relay = "mx.rcpt.example[192.0.2.25]:25";
	rc[1].time = T0 - 30;
	memset(&rc[2], 0, sizeof(rc[2]));
	rc[2].index = 2;
	rc[2].addr = "dave@other.example";
	rc[2].dsn = "4.4.1";	/* expired after deferrals: becomes 5.4.1 */
	rc[2].reply = "connect to mx.other.example[192.0.2.99]:25: "
	    "Connection timed out";
	rc[2].relay = "none";
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, rc, 3);
	compose(&r, m, "failed_several");
	ck_assert(has(m, "Original-Envelope-Id: QQ314159+x\r\n"));
	ck_assert(has(m, "Original-Recipient: rfc822; Bob+Tag@rcpt.example\r\n"
	    "Final-Recipient: rfc822; bob@rcpt.example\r\n"));
	/* An ORCPT decoding to control characters stays xtext. */
	ck_assert(has(m, "Original-Recipient: rfc822; "
	    "dave+0D+0Aevil@other.example\r\n"));
	ck_assert(has(m, "\r\n\r\nFinal-Recipient: rfc822; "
	    "carol@rcpt.example\r\n"));
	ck_assert(has(m, "Status: 5.2.2\r\n"));
	ck_assert(has(m, "Status: 5.4.1\r\n"));
	ck_assert(has(m, "Diagnostic-Code: X-Petrel; connect to "));
	ck_assert(has(m, "Reason (quota-issues): The recipient's "
	    "mailbox is full."));
	/* No relay: no Remote-MTA for dave (two for the others). */
	ck_assert(has(m, "Status: 5.4.1\r\nDiagnostic-Code"));
	qstore_file_close(qf);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_delayed_relayed)
{
	static char *rcpts[] = { "bob@rcpt.example" };
	struct qstore_envelope env;
	struct bounce_report r;
	struct bounce_rcpt rc;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0);
	char qid[QID_SIZE];
	struct fix f;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 1);
	env.ret = QSTORE_RET_FULL;
	qf = orig_file(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	rc = rcpt_bob;
	rc.dsn = "4.2.2";
	rc.reply = "452 4.2.2 Mailbox full, try later";
	rc.class = "quota-issues";
	rc.until = T0 + 4 * 86400;
	report_init(&r, QSTORE_REPORT_DELAYED, qid, qf, &rc, 1);
	compose(&r, m, "delayed");
	ck_assert(has(m, "Subject: Delayed Mail (still being retried)\r\n"));
	ck_assert(has(m, "Action: delayed\r\nStatus: 4.2.2\r\n"));
	ck_assert(has(m, "Will-Retry-Until: Tue, 08 Dec 2026 "));
	ck_assert(has(m, "Will keep trying until Tue, 08 Dec 2026"));
	/* RET=FULL is for failures: a delay report has the headers. */
	ck_assert(has(m, "Content-Type: text/rfc822-headers\r\n"));
	ck_assert(!has(m, "What to do:"));

	rc = rcpt_bob;
	rc.dsn = "2.0.0";
	rc.reply = "250 2.0.0 Ok: queued as 4Xyz";
	rc.class = NULL;
	report_init(&r, QSTORE_REPORT_RELAYED, qid, qf, &rc, 1);
	compose(&r, m, "relayed");
	ck_assert(has(m, "Subject: Successful Mail Delivery Report\r\n"));
	ck_assert(has(m, "Action: relayed\r\nStatus: 2.0.0\r\n"));
	ck_assert(!has(m, "Will-Retry-Until"));
	ck_assert(!has(m, "X-Petrel-Bounce-Class"));
	ck_assert(has(m, "Content-Description: Message Headers\r\n"));
	qstore_file_close(qf);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_ret_full)
{
	static char *rcpts[] = { "bob@rcpt.example" };
	struct qstore_envelope env;
	struct bounce_report r;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0), *big = vbuf_create(0);
	char qid[QID_SIZE];
	struct fix f;
	int i;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 1);
	env.ret = QSTORE_RET_FULL;
	qf = orig_file(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, &rcpt_bob, 1);
	compose(&r, m, "ret_full");
	ck_assert(has(m, "Content-Description: Undelivered Message\r\n"
	    "Content-Type: message/rfc822\r\n\r\nReceived: "));
	ck_assert(has(m, "the numbers are in.\r\n\r\n--DSN1"));
	ck_assert(has(m, "Your message is attached in full."));
	qstore_file_close(qf);

	/* Over bounce.size_limit: the headers, and part 1 says why. */
	vbuf_add(big, orig_msg, sizeof(orig_msg) - 1);
	for (i = 0; i < 2000; i++)
		vbuf_adds(big, "0123456789012345678901234567890123456789\r\n");
	qf = orig_file(&f, &env, big->data, big->len, qid);
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, &rcpt_bob, 1);
	compose(&r, m, "ret_full_over");
	ck_assert(has(m, "Content-Type: text/rfc822-headers\r\n"));
	ck_assert(!has(m, "0123456789"));
	ck_assert(has(m, "(RET=FULL), but it is larger than the"));
	ck_assert(has(m, "(bounce.size_limit)"));
	qstore_file_close(qf);
	vbuf_free(big);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

/*
 * An original whose lines start with the report's boundary (and the first
 * replacement) must not split the report: another one is chosen, and the
 * original's lines stay content (found by tests/fuzz/fuzz_bounce_dsn).
 */
START_TEST(test_boundary_in_original)
{
	static const char body[] = "Subject: guess\r\n"
	    "X-Guess: --DSN1.1796400000/relay.test\r\n\r\n"
	    "--DSN1.1796400000/relay.test\r\n"
	    "Content-Type: text/plain\r\n\r\nforged part\r\n"
	    "--DSN1.1796400000/relay.test=00000001\r\n"
	    "--DSN1.1796400000/relay.test--\r\n";
	static char *rcpts[] = { "bob@rcpt.example" };
	struct qstore_envelope env;
	struct bounce_report r;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0);
	const char *bnd = "DSN1.1796400000/relay.test=00000002";
	char qid[QID_SIZE], line[128];
	const char *p, *e;
	struct fix f;
	size_t delims = 0;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 1);
	env.ret = QSTORE_RET_FULL;
	qf = orig_file(&f, &env, body, sizeof(body) - 1, qid);
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, &rcpt_bob, 1);
	compose(&r, m, "boundary_in_original");
	snprintf(line, sizeof(line), "boundary=\"%s\"\r\n", bnd);
	ck_assert_msg(has(m, line), "%s", m->data);
	/* Only the report's own delimiter lines start with "--" and it. */
	for (p = m->data; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		if (strncmp(p, "--", 2) == 0 &&
		    strncmp(p + 2, bnd, strlen(bnd)) == 0)
			delims++;
	ck_assert_uint_eq(delims, 4);
	snprintf(line, sizeof(line), "\r\n--%s--\r\n", bnd);
	ck_assert(has(m, line));
	ck_assert(has(m, "\r\nforged part\r\n"));
	qstore_file_close(qf);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_missing_original)
{
	struct bounce_report r;
	struct vbuf *m = vbuf_create(0);

	report_init(&r, QSTORE_REPORT_FAILED, "6B1324A7230428EF", NULL,
	    &rcpt_bob, 1);
	compose(&r, m, "missing");
	ck_assert(has(m, "could not be read from the queue"));
	ck_assert(has(m, "Final-Recipient: rfc822; bob@rcpt.example\r\n"));
	ck_assert(!has(m, "rfc822-headers"));
	ck_assert(!has(m, "message/rfc822"));
	ck_assert(has(m, "--DSN1.1796400000/relay.test--\r\n"));
	vbuf_free(m);
}
END_TEST

START_TEST(test_hostile_reply)
{
	static char *rcpts[] = { "bob@rcpt.example" };
	static const char hdr8[] =
	    "Received: by relay.test\r\n"
	    "Subject: caf\xc3\xa9 cr\xc3\xa8me\r\n"
	    "X-Long: ";
	struct qstore_envelope env;
	struct bounce_report r;
	struct bounce_rcpt rc;
	struct qstore_file *qf;
	struct vbuf *m = vbuf_create(0), *reply = vbuf_create(0);
	struct vbuf *orig = vbuf_create(0);
	char qid[QID_SIZE];
	struct fix f;
	int i;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 1);
	/* 8-bit headers and a header line longer than 998 octets. */
	vbuf_adds(orig, hdr8);
	for (i = 0; i < 1500; i++)
		vbuf_addc(orig, 'x');
	vbuf_adds(orig, "\r\n\r\nbody\r\n");
	qf = orig_file(&f, &env, orig->data, orig->len, qid);

	vbuf_adds(reply, "550 5.7.1 bad\r\n--DSN1.1796400000/relay.test--"
	    "\r\nX-Injected: yes\nnul");
	vbuf_addc(reply, '\0');
	for (i = 0; i < 40; i++)
		vbuf_adds(reply, "word\xff\x01 ");
	for (i = 0; i < 1200; i++)
		vbuf_addc(reply, 'y');
	rc = rcpt_bob;
	rc.reply = reply->data;	/* ends at the NUL, as a C string would */
	report_init(&r, QSTORE_REPORT_FAILED, qid, qf, &rc, 1);
	compose(&r, m, "hostile_nul");
	ck_assert(!has(m, "\r\nX-Injected"));
	ck_assert(!has(m, "\r\n--DSN1.1796400000/relay.test--\r\nX"));

	/* Without the NUL: 8-bit and control bytes, a long unbroken run. */
	vbuf_reset(reply);
	vbuf_adds(reply, "550 5.7.1 \r\n\x1b[31m \x7f");
	for (i = 0; i < 40; i++)
		vbuf_adds(reply, "word\xff\x01 ");
	for (i = 0; i < 1200; i++)
		vbuf_addc(reply, 'y');
	rc.reply = reply->data;
	rc.class = "policy-related";
	compose(&r, m, "hostile");
	ck_assert(has(m, "Diagnostic-Code: smtp; 550 5.7.1 "));
	ck_assert(has(m, "word?? "));
	ck_assert(!has(m, "\x1b"));
	ck_assert(!has(m, "\xff"));
	/* The headers part is 8bit, and so is the report as a whole. */
	ck_assert(has(m, "Content-Type: text/rfc822-headers\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(has(m, "boundary=\"DSN1.1796400000/relay.test\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(has(m, "Subject: caf\xc3\xa9 cr\xc3\xa8me\r\n"));
	/* The long header line is folded, not cut. */
	ck_assert(has(m, "xxxx\r\n xxxx"));
	qstore_file_close(qf);
	vbuf_free(orig);
	vbuf_free(reply);
	vbuf_free(m);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_long_reply_folded)
{
	struct bounce_report r;
	struct bounce_rcpt rc;
	struct vbuf *m = vbuf_create(0);
	const char *p, *e;

	rc = rcpt_bob;
	rc.reply = "550-5.7.1 [192.0.2.1] The IP you're using to send mail is "
	    "not authorized to send email directly to our servers. Please use "
	    "the SMTP relay at your service provider instead. For more "
	    "information, go to https://support.example.com/mail/?p=NotAuth "
	    "d2e1a72fcca58-123si456 - gsmtp";
	report_init(&r, QSTORE_REPORT_FAILED, "6B1324A7230428EF", NULL, &rc, 1);
	compose(&r, m, "long_reply");
	p = memmem(m->data, m->len, "Diagnostic-Code: ", 17);
	ck_assert_ptr_nonnull(p);
	/* Folded at white space into lines of at most 78 characters. */
	for (; *p != '\0'; p = e + 2) {
		e = strstr(p, "\r\n");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_le(e - p, BOUNCE_FOLD_AT);
		if (e[2] != ' ')
			break;
	}
	ck_assert(has(m, "\r\n gsmtp") || has(m, " gsmtp\r\n"));
	vbuf_free(m);
}
END_TEST

/* bounce_parse of a request with n (0 or 1) recipients. */
static int
parse_one(const char *qid, const char *report, int n, struct vbuf *why)
{
	struct vbuf *rec = vbuf_create(0);
	struct attr_list l;
	struct bounce_req req;
	size_t used;
	int rc;

	attr_list_init(&l);
	attr_put_str(rec, MAIL_ATTR_REQUEST, MAIL_REQ_BOUNCE);
	attr_put_str(rec, MAIL_ATTR_QUEUE_ID, qid);
	attr_put_str(rec, MAIL_ATTR_REPORT, report);
	if (n > 0) {
		attr_put_num(rec, MAIL_ATTR_RCPT_INDEX, 0);
		attr_put_str(rec, MAIL_ATTR_RCPT, "a@x.example");
		attr_put_str(rec, MAIL_ATTR_RCPT_DSN, "5.0.0");
		attr_put_str(rec, MAIL_ATTR_RCPT_REPLY, "no");
	}
	attr_end(rec);
	ck_assert_int_eq(attr_decode(&l, rec->data, rec->len, &used, why), 1);
	memset(&req, 0, sizeof(req));
	rc = bounce_parse(&l, &req, why);
	free(req.rcpts);
	attr_list_release(&l);
	vbuf_free(rec);
	return rc;
}

/* A request record as qmgr sends it, decoded and parsed. */
START_TEST(test_parse)
{
	struct vbuf *rec = vbuf_create(0), *why = vbuf_create(0);
	struct attr_list l;
	struct bounce_req req;
	size_t used;
	int i;

	attr_list_init(&l);
	attr_put_str(rec, MAIL_ATTR_REQUEST, MAIL_REQ_BOUNCE);
	attr_put_str(rec, MAIL_ATTR_QUEUE_ID, "6B1324A7230428EF");
	attr_put_str(rec, MAIL_ATTR_REPORT, MAIL_REPORT_DELAYED);
	for (i = 0; i < 2; i++) {
		attr_put_num(rec, MAIL_ATTR_RCPT_INDEX, (uint64_t)i);
		attr_put_str(rec, MAIL_ATTR_RCPT, i ? "b@x.example" :
		    "a@x.example");
		attr_put_str(rec, MAIL_ATTR_RCPT_DSN, "4.4.1");
		attr_put_str(rec, MAIL_ATTR_RCPT_REPLY, "timed out");
		if (i == 1)
			attr_put_str(rec, MAIL_ATTR_RCPT_CLASS,
			    "bad-connection");
		attr_put_str(rec, MAIL_ATTR_RELAY, "none");
		attr_put_int(rec, MAIL_ATTR_RCPT_TIME, T0);
		attr_put_int(rec, MAIL_ATTR_RCPT_UNTIL, T0 + 100);
	}
	attr_end(rec);
	ck_assert_int_eq(attr_decode(&l, rec->data, rec->len, &used, why), 1);
	memset(&req, 0, sizeof(req));
	ck_assert_msg(bounce_parse(&l, &req, why) == 0, "%s", why->data);
	ck_assert_str_eq(req.qid, "6B1324A7230428EF");
	ck_assert_int_eq(req.kind, QSTORE_REPORT_DELAYED);
	ck_assert_uint_eq(req.nrcpts, 2);
	ck_assert_str_eq(req.rcpts[1].addr, "b@x.example");
	ck_assert_ptr_null(req.rcpts[0].class);
	ck_assert_str_eq(req.rcpts[1].class, "bad-connection");
	ck_assert_int_eq(req.rcpts[1].until, T0 + 100);
	ck_assert_uint_eq(req.rcpts[1].index, 1);
	free(req.rcpts);

	/* A bad queue id, a bad report kind, no recipients: refused. */
	ck_assert_int_eq(parse_one("../../etc", MAIL_REPORT_FAILED, 1, why),
	    -1);
	ck_assert(strstr(why->data, "queue id") != NULL);
	ck_assert_int_eq(parse_one("6B1324A7230428EF", "expanded", 1, why), -1);
	ck_assert_int_eq(parse_one("6B1324A7230428EF", MAIL_REPORT_FAILED, 0,
	    why), -1);
	ck_assert_int_eq(parse_one("6B1324A7230428EF", MAIL_REPORT_FAILED, 1,
	    why), 0);
	attr_list_release(&l);
	vbuf_free(rec);
	vbuf_free(why);
}
END_TEST

/* bounce_make: the report is committed, to the sender, from <>. */
START_TEST(test_make)
{
	static char *rcpts[] = { "bob@rcpt.example", "carol@rcpt.example" };
	static unsigned notify[] = { QSTORE_NOTIFY_NEVER, 0 };
	const struct qstore_envelope *de;
	struct qstore_envelope env;
	struct qstore_msginfo mi;
	struct qstore_file *qf;
	struct qstore_txn *t;
	struct bounce_req req;
	struct bounce_rcpt rc[2];
	char qid[QID_SIZE], dsn_id[QID_SIZE], buf[8192];
	ssize_t n;
	struct fix f;

	fix_setup(&f);
	env_init(&env, "alice@sender.example", rcpts, 2);
	env.notify = notify;
	commit_orig(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	rc[0] = rcpt_bob;
	rc[1] = rcpt_bob;
	rc[1].index = 1;
	rc[1].addr = "carol@rcpt.example";
	memset(&req, 0, sizeof(req));
	memcpy(req.qid, qid, QID_SIZE);
	req.kind = QSTORE_REPORT_FAILED;
	req.rcpts = rc;
	req.nrcpts = 2;
	ck_assert_msg(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why) == 1,
	    "%s", f.why->data);
	ck_assert(qid_ok(dsn_id));
	ck_assert_str_ne(dsn_id, qid);
	qf = qstore_file_open(f.dir, dsn_id, f.why);
	ck_assert_ptr_nonnull(qf);
	de = qstore_file_envelope(qf);
	ck_assert_str_eq(de->sender, "");
	ck_assert_uint_eq(de->nrcpts, 1);
	ck_assert_str_eq(de->rcpts[0], "alice@sender.example");
	n = pread(qstore_file_fd(qf), buf, sizeof(buf) - 1,
	    qstore_file_body_offset(qf));
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "From: MAILER-DAEMON@relay.test"));
	/* bob asked for NOTIFY=NEVER: only carol is in the report. */
	ck_assert_ptr_null(strstr(buf, "Final-Recipient: rfc822; bob@"));
	ck_assert_ptr_nonnull(strstr(buf, "Final-Recipient: rfc822; carol@"));
	qstore_file_close(qf);
	t = qstore_txn_begin(f.qs, 0, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(qstore_msg_get(t, dsn_id, &mi), 0);
	ck_assert_str_eq(mi.sender, "");
	ck_assert_uint_eq(mi.nrcpts, 1);
	qstore_txn_abort(t);

	/* Only bob listed: NOTIFY=NEVER, no report. */
	req.nrcpts = 1;
	ck_assert_int_eq(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why), 0);

	/* From <>: never a report (no double bounces). */
	env_init(&env, "", rcpts, 2);
	commit_orig(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	memcpy(req.qid, qid, QID_SIZE);
	req.nrcpts = 2;
	ck_assert_int_eq(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why), 0);
	ck_assert_str_eq(f.why->data, "null sender");

	/* Reports turned off for the credential. */
	env_init(&env, "alice@sender.example", rcpts, 2);
	env.dsn_off = 1;
	commit_orig(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	memcpy(req.qid, qid, QID_SIZE);
	ck_assert_int_eq(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why), 0);

	/* The file gone, the record there: reported without the original. */
	env_init(&env, "alice@sender.example", rcpts, 2);
	commit_orig(&f, &env, orig_msg, sizeof(orig_msg) - 1, qid);
	ck_assert_int_eq(qstore_file_remove(f.dir, qid), 0);
	memcpy(req.qid, qid, QID_SIZE);
	ck_assert_int_eq(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why), 1);
	qf = qstore_file_open(f.dir, dsn_id, f.why);
	ck_assert_ptr_nonnull(qf);
	ck_assert_str_eq(qstore_file_envelope(qf)->rcpts[0],
	    "alice@sender.example");
	qstore_file_close(qf);

	/* Neither file nor record: nobody to report to. */
	snprintf(req.qid, sizeof(req.qid), "%s", "6B1324A7230428EF");
	ck_assert_int_eq(bounce_make(f.qs, &f.cfg, &req, dsn_id, f.why), 0);
	fix_teardown(&f);
}
END_TEST

static Suite *
bounce_dsn_suite(void)
{
	Suite *s = suite_create("bounce_dsn");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_failed_one);
	tcase_add_test(tc, test_several_envid_orcpt);
	tcase_add_test(tc, test_delayed_relayed);
	tcase_add_test(tc, test_ret_full);
	tcase_add_test(tc, test_boundary_in_original);
	tcase_add_test(tc, test_missing_original);
	tcase_add_test(tc, test_hostile_reply);
	tcase_add_test(tc, test_long_reply_folded);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_make);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bounce_dsn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
