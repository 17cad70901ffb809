/*
 * smtp_proto.c - the SMTP client dialogue of smtp(8) (RFC 5321).
 *
 * Session setup (greeting, EHLO or HELO, STARTTLS, EHLO again) and one
 * mail transaction per request: MAIL, one RCPT per recipient and DATA,
 * written in one go when the server offers PIPELINING (RFC 2920), then
 * the dot-stuffed body. To a server that offers DSN (RFC 3461) the
 * message's RET, ENVID, NOTIFY and ORCPT go along, from the queue file. Every reply is bounded (SMTP_LINE_MAX bytes a
 * line, SMTP_REPLY_LINES_MAX lines) and read against a deadline; anything
 * a server sends that does not parse is a protocol error that defers,
 * never a crash. Each recipient ends decided: sent, deferred or bounced.
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstuff.h"
#include "dsnparam.h"
#include "log.h"
#include "smtp.h"
#include "utf8.h"
#include "vbuf.h"
#include "xtext.h"

#define SMTP_BODY_CHUNK		65536
#define SMTP_QUIT_TIMEOUT_MS	2000

#define PHASE_GREETING	"receiving the initial server greeting"
#define PHASE_EHLO	"performing the EHLO handshake"
#define PHASE_HELO	"performing the HELO handshake"
#define PHASE_STARTTLS	"sending STARTTLS"
#define PHASE_MAIL	"sending MAIL FROM"
#define PHASE_RCPT	"sending RCPT TO"
#define PHASE_DATA	"sending DATA command"
#define PHASE_BODY	"sending message body"
#define PHASE_DOT	"sending end of data -- message may be sent more " \
			"than once"
#define PHASE_RSET	"sending RSET"

static int	line_read(struct smtp_sess *, int64_t, struct vbuf *);
static void	fail_from_reply(struct smtp_fail *, const struct smtp_reply *,
		    int);
static void	fail_io(struct smtp_fail *, struct smtp_sess *, int,
		    const char *, const char *);
static void	reply_decide(struct smtp_rcpt *, const struct smtp_reply *);
static void	decide_pending(struct smtp_req *, enum smtp_rcpt_status,
		    const char *, const char *);
static void	decide_pending_reply(struct smtp_req *,
		    const struct smtp_reply *);
static int	send_cmd(struct smtp_sess *, const struct cfg *,
		    struct smtp_fail *, const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static int	ehlo(struct smtp_sess *, const struct cfg *, const char *,
		    struct smtp_fail *);
static int	send_body(struct smtp_sess *, const struct cfg *,
		    struct smtp_req *, struct smtp_fail *);
static int	finish(struct smtp_sess *, const struct cfg *, int);
static const char *tls_source(const struct cfg *, enum cfg_smtp_tls);
static int	dsn_value_ok(const char *, size_t);
static void	mail_dsn(const struct smtp_sess *, const struct smtp_req *,
		    struct vbuf *);
static void	rcpt_cmd(const struct smtp_sess *, const struct smtp_req *,
		    const struct smtp_rcpt *, struct vbuf *);

void
smtp_fail_set(struct smtp_fail *f, enum smtp_rcpt_status status,
    const char *dsn, int next_host, const char *fmt, ...)
{
	va_list ap;

	f->status = status;
	(void)snprintf(f->dsn, sizeof(f->dsn), "%s", dsn);
	f->next_host = next_host;
	va_start(ap, fmt);
	(void)vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

void
smtp_rcpt_decide(struct smtp_rcpt *r, enum smtp_rcpt_status status,
    const char *dsn, const char *text)
{
	r->status = status;
	r->accepted = 0;
	(void)snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	(void)snprintf(r->reply, sizeof(r->reply), "%s", text);
}

/*
 * Reads one line into s->line (CR LF or bare LF removed). Returns 1, 0 on
 * EOF, -1 on an error, -2 on timeout, -3 when the line is too long.
 */
static int
line_read(struct smtp_sess *s, int64_t deadline, struct vbuf *why)
{
	char *nl;
	size_t len;
	int rc;

	for (;;) {
		nl = memchr(s->rbuf + s->rpos, '\n', s->rlen - s->rpos);
		if (nl != NULL) {
			len = (size_t)(nl - (s->rbuf + s->rpos));
			if (len > 0 && nl[-1] == '\r')
				len--;
			if (len > SMTP_LINE_MAX)
				return -3;
			memcpy(s->line, s->rbuf + s->rpos, len);
			s->line[len] = '\0';
			s->rpos = (size_t)(nl + 1 - s->rbuf);
			return 1;
		}
		if (s->rlen - s->rpos > SMTP_LINE_MAX + 1)
			return -3;
		if ((rc = smtp_sess_fill(s, deadline, why)) != 1)
			return rc;
	}
}

int
smtp_reply_read(struct smtp_sess *s, struct smtp_reply *r, int64_t timeout_ms,
    const char *phase, struct smtp_fail *fail)
{
	struct vbuf why;
	int64_t deadline = smtp_now_ms() + timeout_ms;
	int nlines, rc;

	r->code = 0;
	r->dsn[0] = '\0';
	r->text[0] = '\0';
	vbuf_reset(&s->lines);
	vbuf_init(&why, 256);
	for (nlines = 0;; nlines++) {
		if (nlines == SMTP_REPLY_LINES_MAX) {
			rc = -4;
			goto bad;
		}
		if ((rc = line_read(s, deadline, &why)) != 1)
			goto bad;
		if ((rc = smtp_reply_line(r, &s->lines, s->line,
		    nlines)) == -1) {
			rc = -5;
			goto bad;
		}
		if (rc == 0)
			break;
	}
	vbuf_release(&why);
	return 0;

bad:
	s->broken = 1;
	switch (rc) {
	case 0:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.2", 1,
		    "lost connection with %s[%s] while %s", s->host, s->ip,
		    phase);
		break;
	case -2:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.2", 1,
		    "conversation with %s[%s] timed out while %s", s->host,
		    s->ip, phase);
		break;
	case -3:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.5.0", 1,
		    "reply line too long from %s[%s] while %s", s->host,
		    s->ip, phase);
		break;
	case -4:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.5.0", 1,
		    "too many reply lines from %s[%s] while %s", s->host,
		    s->ip, phase);
		break;
	case -5:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.5.0", 1,
		    "malformed reply from %s[%s] while %s: %s", s->host,
		    s->ip, phase, log_safe(s->line));
		break;
	default:
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.2", 1,
		    "lost connection with %s[%s] while %s: %s", s->host,
		    s->ip, phase, why.data);
		break;
	}
	vbuf_release(&why);
	return -1;
}

/* A session-level rejection: 5xx bounces, anything else defers. */
static void
fail_from_reply(struct smtp_fail *f, const struct smtp_reply *r,
    int next_host)
{
	enum smtp_rcpt_status st;
	char dsn[SMTP_DSN_SIZE];

	st = r->code / 100 == 5 ? SMTP_RCPT_BOUNCED : SMTP_RCPT_DEFERRED;
	if (r->dsn[0] != '\0' && r->dsn[0] == (st == SMTP_RCPT_BOUNCED ?
	    '5' : '4'))
		(void)snprintf(dsn, sizeof(dsn), "%s", r->dsn);
	else
		(void)snprintf(dsn, sizeof(dsn), "%c.0.0",
		    st == SMTP_RCPT_BOUNCED ? '5' : '4');
	smtp_fail_set(f, st, dsn, next_host && st == SMTP_RCPT_DEFERRED,
	    "%s", r->text);
}

/* A failed write: lost connection or timeout while in phase. */
static void
fail_io(struct smtp_fail *f, struct smtp_sess *s, int rc, const char *phase,
    const char *why)
{
	if (rc == -2)
		smtp_fail_set(f, SMTP_RCPT_DEFERRED, "4.4.2", 1,
		    "conversation with %s[%s] timed out while %s", s->host,
		    s->ip, phase);
	else
		smtp_fail_set(f, SMTP_RCPT_DEFERRED, "4.4.2", 1,
		    "lost connection with %s[%s] while %s: %s", s->host,
		    s->ip, phase, why);
}

/* The outcome for one recipient from a reply: 2xx sent, 5xx bounced. */
static void
reply_decide(struct smtp_rcpt *rc, const struct smtp_reply *r)
{
	enum smtp_rcpt_status st;
	char dsn[SMTP_DSN_SIZE], cls;

	switch (r->code / 100) {
	case 2:
		st = SMTP_RCPT_SENT;
		cls = '2';
		break;
	case 5:
		st = SMTP_RCPT_BOUNCED;
		cls = '5';
		break;
	default:
		st = SMTP_RCPT_DEFERRED;
		cls = '4';
		break;
	}
	if (r->dsn[0] == cls)
		(void)snprintf(dsn, sizeof(dsn), "%s", r->dsn);
	else
		(void)snprintf(dsn, sizeof(dsn), "%c.0.0", cls);
	smtp_rcpt_decide(rc, st, dsn, r->text);
}

static void
decide_pending(struct smtp_req *req, enum smtp_rcpt_status st,
    const char *dsn, const char *text)
{
	size_t i;

	for (i = 0; i < req->nrcpts; i++)
		if (req->rcpts[i].status == SMTP_RCPT_PENDING)
			smtp_rcpt_decide(&req->rcpts[i], st, dsn, text);
}

static void
decide_pending_reply(struct smtp_req *req, const struct smtp_reply *r)
{
	size_t i;

	for (i = 0; i < req->nrcpts; i++)
		if (req->rcpts[i].status == SMTP_RCPT_PENDING)
			reply_decide(&req->rcpts[i], r);
}

/* Writes one command line; -1 with fail set for phase. */
static int
send_cmd(struct smtp_sess *s, const struct cfg *cfg, struct smtp_fail *fail,
    const char *phase, const char *fmt, ...)
{
	struct vbuf cmd, why;
	va_list ap;
	int rc;

	vbuf_init(&cmd, 0);
	vbuf_init(&why, 256);
	va_start(ap, fmt);
	(void)vbuf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	(void)vbuf_adds(&cmd, "\r\n");
	rc = smtp_sess_write(s, cmd.data, cmd.len, smtp_now_ms() +
	    cfg->smtp_command_timeout * 1000, &why);
	if (rc != 0)
		fail_io(fail, s, rc, phase, why.data);
	vbuf_release(&cmd);
	vbuf_release(&why);
	return rc == 0 ? 0 : -1;
}

/* EHLO, or HELO after a 5xx to EHLO. 0, or -1 with fail set. */
static int
ehlo(struct smtp_sess *s, const struct cfg *cfg, const char *helo,
    struct smtp_fail *fail)
{
	struct smtp_reply r;
	int64_t tmo = cfg->smtp_command_timeout * 1000;

	if (send_cmd(s, cfg, fail, PHASE_EHLO, "EHLO %s", helo) == -1 ||
	    smtp_reply_read(s, &r, tmo, PHASE_EHLO, fail) == -1)
		return -1;
	if (r.code / 100 == 2) {
		smtp_features_parse(s->lines.data, &s->features,
		    &s->size_limit);
		return 0;
	}
	if (r.code / 100 != 5 || r.code == 421) {
		fail_from_reply(fail, &r, 1);
		return -1;
	}
	if (send_cmd(s, cfg, fail, PHASE_HELO, "HELO %s", helo) == -1 ||
	    smtp_reply_read(s, &r, tmo, PHASE_HELO, fail) == -1)
		return -1;
	if (r.code / 100 != 2) {
		fail_from_reply(fail, &r, 1);
		return -1;
	}
	s->features = 0;
	s->size_limit = 0;
	return 0;
}

/*
 * Where a required TLS level came from, for the deferral's text: smtp.tls,
 * or the destination's shaping entry when it asked for another level.
 */
static const char *
tls_source(const struct cfg *cfg, enum cfg_smtp_tls level)
{
	return level == cfg->smtp_tls ? "smtp.tls" : "shaping tls";
}

int
smtp_proto_setup(struct smtp_sess *s, const struct cfg *cfg,
    enum cfg_smtp_tls level, struct smtp_fail *fail)
{
	struct smtp_reply r;
	struct vbuf why;
	const char *helo;
	int64_t tmo = cfg->smtp_command_timeout * 1000;

	helo = cfg->smtp_helo_name != NULL ? cfg->smtp_helo_name :
	    cfg->myhostname;
	if (smtp_reply_read(s, &r, tmo, PHASE_GREETING, fail) == -1)
		return -1;
	if (r.code != 220) {
		fail_from_reply(fail, &r, 1);
		return -1;
	}
	s->tls_level = level;
	if (ehlo(s, cfg, helo, fail) == -1)
		return -1;
	if ((s->features & SMTP_FEAT_STARTTLS) == 0) {
		if (level == CFG_SMTP_TLS_MAY)
			return 0;
		/* Never plaintext from encrypt up; another MX may offer it. */
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.7.4", 1,
		    "TLS is required (%s %s), but was not offered by "
		    "host %s[%s]", tls_source(cfg, level),
		    cfg_smtp_tls_name(level), s->host, s->ip);
		return -1;
	}
	if (send_cmd(s, cfg, fail, PHASE_STARTTLS, "STARTTLS") == -1 ||
	    smtp_reply_read(s, &r, tmo, PHASE_STARTTLS, fail) == -1)
		return -1;
	if (r.code != 220) {
		/* Opportunistic: an offer withdrawn leaves us in plaintext. */
		log_info("%s offered STARTTLS but replied: %s", s->relay,
		    log_safe(r.text));
		if (r.code == 421) {
			fail_from_reply(fail, &r, 1);
			return -1;
		}
		if (level != CFG_SMTP_TLS_MAY) {
			smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.7.4", 1,
			    "TLS is required (%s %s), but host %s[%s] "
			    "refused to start TLS: %s", tls_source(cfg, level),
			    cfg_smtp_tls_name(level),
			    s->host, s->ip, log_safe(r.text));
			return -1;
		}
		return 0;
	}
	vbuf_init(&why, 256);
	if (smtp_sess_starttls(s, level == CFG_SMTP_TLS_VERIFY,
	    smtp_now_ms() + tmo, &why) == -1) {
		/* Never fall back to plaintext on this connection. */
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.7.5", 1,
		    "Cannot start TLS with %s[%s]: %s", s->host, s->ip,
		    why.data);
		vbuf_release(&why);
		return -1;
	}
	vbuf_release(&why);
	log_info("%s TLS connection established to %s: %s with cipher %s",
	    s->verified ? "Verified" : "Untrusted", s->relay, s->tls,
	    s->cipher);
	/* RFC 3207 4.2: forget what was learnt before TLS, ask again. */
	s->features = 0;
	if (ehlo(s, cfg, helo, fail) == -1)
		return -1;
	s->features &= ~SMTP_FEAT_STARTTLS;
	return 0;
}

/*
 * Sends the body dot-stuffed (RFC 5321 4.5.2, lib/dotstuff), then
 * CRLF.CRLF. The queue file holds CRLF lines, not stuffed; a missing final
 * CRLF is added. 0, or -1 with fail set; a queue file error leaves the
 * session broken so the message is never terminated with a dot.
 */
static int
send_body(struct smtp_sess *s, const struct cfg *cfg, struct smtp_req *req,
    struct smtp_fail *fail)
{
	static char in[SMTP_BODY_CHUNK];
	struct dotstuff_tx tx;
	struct vbuf out, why;
	int fd = qstore_file_fd(req->qf);
	off_t off = qstore_file_body_offset(req->qf);
	off_t left = qstore_file_body_size(req->qf);
	int64_t tmo = cfg->smtp_command_timeout * 1000;
	int rc = 0;
	ssize_t n;

	vbuf_init(&out, 0);
	vbuf_init(&why, 256);
	dotstuff_tx_init(&tx);
	/* Our DKIM-Signature goes on top, above any the application made. */
	if (req->dkim_sig_len > 0)
		dotstuff_tx_feed(&tx, req->dkim_sig, req->dkim_sig_len, &out);
	for (;;) {
		if (left > 0) {
			n = pread(fd, in, left < (off_t)sizeof(in) ?
			    (size_t)left : sizeof(in), off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.3.0",
				    0, "error reading queue file %s: %s",
				    req->qid, n == 0 ?
				    "unexpected end of file" : strerror(errno));
				s->broken = 1;
				rc = -1;
				break;
			}
			off += n;
			left -= n;
			dotstuff_tx_feed(&tx, in, (size_t)n, &out);
		}
		/* The terminator goes out with the last piece of the body. */
		if (left == 0)
			dotstuff_tx_finish(&tx, &out);
		if ((rc = smtp_sess_write(s, out.data, out.len,
		    smtp_now_ms() + tmo, &why)) != 0) {
			fail_io(fail, s, rc, PHASE_BODY, why.data);
			rc = -1;
			break;
		}
		if (left == 0)
			break;
		vbuf_reset(&out);
	}
	vbuf_release(&out);
	vbuf_release(&why);
	return rc;
}

/* Ends an aborted transaction: RSET keeps the session for reuse. */
static int
finish(struct smtp_sess *s, const struct cfg *cfg, int last_code)
{
	struct smtp_reply r;
	struct smtp_fail fail;

	if (s->broken || last_code == 421)
		return 1;
	if (send_cmd(s, cfg, &fail, PHASE_RSET, "RSET") == -1 ||
	    smtp_reply_read(s, &r, cfg->smtp_command_timeout * 1000,
	    PHASE_RSET, &fail) == -1 || r.code / 100 != 2)
		return 1;
	return 0;
}

/*
 * A DSN value from the queue file is sent only if it is 1..max bytes of
 * printable ASCII without spaces: smtpd checked it, and nothing read from
 * a file may add words to a command.
 */
static int
dsn_value_ok(const char *v, size_t max)
{
	size_t n;

	if (v == NULL || *v == '\0')
		return 0;
	for (n = 0; v[n] != '\0'; n++)
		if (n >= max || (unsigned char)v[n] < 0x21 ||
		    (unsigned char)v[n] > 0x7e)
			return 0;
	return 1;
}

/* MAIL FROM's RET= and ENVID= (RFC 3461 4.3, 4.4), when DSN is offered. */
static void
mail_dsn(const struct smtp_sess *s, const struct smtp_req *req,
    struct vbuf *cmd)
{
	const struct qstore_envelope *env = qstore_file_envelope(req->qf);

	if ((s->features & SMTP_FEAT_DSN) == 0)
		return;
	if (env->ret == QSTORE_RET_FULL)
		(void)vbuf_adds(cmd, " RET=FULL");
	else if (env->ret == QSTORE_RET_HDRS)
		(void)vbuf_adds(cmd, " RET=HDRS");
	if (dsn_value_ok(env->envid, QSTORE_ENVID_MAX))
		(void)vbuf_addf(cmd, " ENVID=%s", env->envid);
}

/*
 * Appends "RCPT TO:<addr>" and, when the server offers DSN, the
 * recipient's NOTIFY= and ORCPT= (RFC 3461 4.1, 4.2). As Postfix does, a
 * recipient without an ORCPT gets one made from its address (RFC 3461
 * 6.1 and 6.2 allow it; the address is the original one, since Petrel
 * rewrites none), if it fits the 500-byte limit.
 */
static void
rcpt_cmd(const struct smtp_sess *s, const struct smtp_req *req,
    const struct smtp_rcpt *rc, struct vbuf *cmd)
{
	const struct qstore_envelope *env = qstore_file_envelope(req->qf);
	const char *orcpt = NULL;
	unsigned notify = 0;
	struct vbuf own;

	(void)vbuf_addf(cmd, "RCPT TO:<%s>", rc->addr);
	if ((s->features & SMTP_FEAT_DSN) == 0)
		return;
	/* qmgr's index names the recipient in the file's envelope. */
	if (rc->index < env->nrcpts) {
		if (env->notify != NULL)
			notify = env->notify[rc->index];
		if (env->orcpts != NULL)
			orcpt = env->orcpts[rc->index];
	}
	if (notify != 0) {
		(void)vbuf_adds(cmd, " NOTIFY=");
		dsnparam_notify_format(notify, cmd);
	}
	if (dsn_value_ok(orcpt, QSTORE_ORCPT_MAX)) {
		(void)vbuf_addf(cmd, " ORCPT=%s", orcpt);
		return;
	}
	vbuf_init(&own, 0);
	(void)vbuf_adds(&own, "rfc822;");
	xtext_encode(&own, rc->addr);
	if (dsn_value_ok(own.data, QSTORE_ORCPT_MAX))
		(void)vbuf_addf(cmd, " ORCPT=%s", own.data);
	vbuf_release(&own);
}

/*
 * Whether the message needs SMTPUTF8 of the next hop (RFC 6531): the
 * client sent it with SMTPUTF8, and an address or its header block is
 * not ASCII. Only such messages have their header block read here.
 */
static int
smtputf8_needed(const struct smtp_req *req)
{
	const struct qstore_envelope *env = qstore_file_envelope(req->qf);
	char buf[8192];
	off_t off = qstore_file_body_offset(req->qf), end;
	size_t i, tail = 0;
	ssize_t n;

	if (!env->smtputf8)
		return 0;
	if (utf8_has_8bit(req->sender))
		return 1;
	for (i = 0; i < req->nrcpts; i++)
		if (utf8_has_8bit(req->rcpts[i].addr))
			return 1;
	end = off + qstore_file_body_size(req->qf);
	/* The header block ends at the first empty line. */
	while (off < end) {
		n = pread(qstore_file_fd(req->qf), buf + tail,
		    sizeof(buf) - tail, off);
		if (n <= 0)
			return 1;	/* unreadable: assume it does */
		for (i = tail; i < tail + (size_t)n; i++) {
			if ((unsigned char)buf[i] >= 0x80)
				return 1;
			if (i >= 3 && memcmp(buf + i - 3, "\r\n\r\n", 4) == 0)
				return 0;
		}
		off += n;
		/* Keep the last 3 bytes for a CRLF CRLF across reads. */
		tail = tail + (size_t)n >= 3 ? 3 : tail + (size_t)n;
		memmove(buf, buf + (size_t)(i - tail), tail);
	}
	return 0;
}

int
smtp_proto_deliver(struct smtp_sess *s, const struct cfg *cfg,
    struct smtp_req *req, int reused)
{
	struct smtp_reply r, mail;
	struct smtp_fail fail;
	struct vbuf cmd, why;
	int64_t tmo = cfg->smtp_command_timeout * 1000;
	int pipelining = (s->features & SMTP_FEAT_PIPELINING) != 0;
	int rc, ret = 1;
	size_t i, naccepted = 0;

	vbuf_init(&cmd, 0);
	vbuf_init(&why, 256);

	/*
	 * 0. A message that needs SMTPUTF8 is not mangled for a next hop
	 * that lacks it: its recipients fail (RFC 6531 3.2), and the
	 * session, which saw no command, stays as it was.
	 */
	if ((s->features & SMTP_FEAT_SMTPUTF8) == 0 &&
	    smtputf8_needed(req)) {
		char text[SMTP_TEXT_MAX + 1];

		(void)snprintf(text, sizeof(text), "550 5.6.7 SMTPUTF8 is "
		    "required, but %s[%s] does not offer it", s->host, s->ip);
		decide_pending(req, SMTP_RCPT_BOUNCED, "5.6.7", text);
		ret = 0;
		goto out;
	}

	/* 1. MAIL FROM, and with PIPELINING every RCPT TO and DATA too. */
	(void)vbuf_addf(&cmd, "MAIL FROM:<%s>", req->sender);
	if (qstore_file_envelope(req->qf)->smtputf8 &&
	    (s->features & SMTP_FEAT_SMTPUTF8))
		(void)vbuf_adds(&cmd, " SMTPUTF8");
	if (s->features & SMTP_FEAT_SIZE)
		(void)vbuf_addf(&cmd, " SIZE=%" PRIu64,
		    (uint64_t)qstore_file_body_size(req->qf) +
		    req->dkim_sig_len);
	if (s->features & SMTP_FEAT_8BITMIME)
		(void)vbuf_adds(&cmd, " BODY=8BITMIME");
	mail_dsn(s, req, &cmd);
	(void)vbuf_adds(&cmd, "\r\n");
	if (pipelining) {
		for (i = 0; i < req->nrcpts; i++)
			if (req->rcpts[i].status == SMTP_RCPT_PENDING) {
				rcpt_cmd(s, req, &req->rcpts[i], &cmd);
				(void)vbuf_adds(&cmd, "\r\n");
			}
		(void)vbuf_adds(&cmd, "DATA\r\n");
	}
	if ((rc = smtp_sess_write(s, cmd.data, cmd.len, smtp_now_ms() + tmo,
	    &why)) != 0) {
		if (reused) {
			ret = -2;
			goto out;
		}
		fail_io(&fail, s, rc, PHASE_MAIL, why.data);
		goto fail;
	}
	if (smtp_reply_read(s, &mail, tmo, PHASE_MAIL, &fail) == -1) {
		if (reused) {
			ret = -2;
			goto out;
		}
		goto fail;
	}
	/* A cached session the server has since timed out: redial. */
	if (reused && mail.code == 421) {
		s->broken = 1;
		ret = -2;
		goto out;
	}
	/* 421: the server is closing; its reply says why, not our reads. */
	if (mail.code / 100 != 2 && (!pipelining || mail.code == 421)) {
		decide_pending_reply(req, &mail);
		ret = finish(s, cfg, mail.code);
		goto out;
	}

	/* 2. One RCPT TO per undecided recipient. */
	for (i = 0; i < req->nrcpts; i++) {
		struct smtp_rcpt *rcpt = &req->rcpts[i];

		if (rcpt->status != SMTP_RCPT_PENDING)
			continue;
		if (!pipelining) {
			vbuf_reset(&cmd);
			rcpt_cmd(s, req, rcpt, &cmd);
			if (send_cmd(s, cfg, &fail, PHASE_RCPT, "%s",
			    cmd.data) == -1)
				goto fail;
		}
		if (smtp_reply_read(s, &r, tmo, PHASE_RCPT, &fail) == -1)
			goto fail;
		if (mail.code / 100 != 2)
			continue;	/* decided by the MAIL reply below */
		if (r.code / 100 == 2) {
			rcpt->accepted = 1;
			naccepted++;
		} else
			reply_decide(rcpt, &r);
	}
	if (mail.code / 100 != 2)
		decide_pending_reply(req, &mail);

	/* 3. DATA, unless nobody was accepted. */
	if (pipelining) {
		if (smtp_reply_read(s, &r, tmo, PHASE_DATA, &fail) == -1)
			goto fail;
		if (naccepted == 0) {
			/* RFC 2920 3.1: a 354 anyway gets an empty message. */
			if (r.code == 354 && (send_cmd(s, cfg, &fail,
			    PHASE_DATA, ".") == -1 || smtp_reply_read(s, &r,
			    tmo, PHASE_DATA, &fail) == -1)) {
				ret = 1;
				goto out;
			}
			ret = finish(s, cfg, mail.code == 421 ? 421 : r.code);
			goto out;
		}
	} else {
		if (naccepted == 0) {
			ret = finish(s, cfg, 0);
			goto out;
		}
		if (send_cmd(s, cfg, &fail, PHASE_DATA, "DATA") == -1 ||
		    smtp_reply_read(s, &r, tmo, PHASE_DATA, &fail) == -1)
			goto fail;
	}
	if (r.code != 354) {
		if (r.code / 100 == 2 || r.code / 100 == 3) {
			s->broken = 1;
			smtp_fail_set(&fail, SMTP_RCPT_DEFERRED, "4.5.0", 0,
			    "unexpected reply to DATA from %s[%s]: %s",
			    s->host, s->ip, r.text);
			goto fail;
		}
		decide_pending_reply(req, &r);
		ret = finish(s, cfg, r.code);
		goto out;
	}

	/* 4. The message, then the server's verdict on it. */
	if (send_body(s, cfg, req, &fail) == -1 ||
	    smtp_reply_read(s, &r, tmo, PHASE_DOT, &fail) == -1)
		goto fail;
	decide_pending_reply(req, &r);
	/* RFC 3461 6.2: the next hop now owes the reports it was asked. */
	if (s->features & SMTP_FEAT_DSN)
		for (i = 0; i < req->nrcpts; i++)
			if (req->rcpts[i].status == SMTP_RCPT_SENT)
				req->rcpts[i].dsn_passed = 1;
	ret = r.code == 421 ? 1 : 0;
	goto out;

fail:
	decide_pending(req, fail.status, fail.dsn, fail.text);
	ret = 1;
out:
	vbuf_release(&cmd);
	vbuf_release(&why);
	return ret;
}

void
smtp_proto_quit(struct smtp_sess *s)
{
	struct smtp_reply r;
	struct smtp_fail fail;
	struct vbuf why;

	if (s == NULL)
		return;
	if (!s->broken) {
		vbuf_init(&why, 256);
		if (smtp_sess_write(s, "QUIT\r\n", 6, smtp_now_ms() +
		    SMTP_QUIT_TIMEOUT_MS, &why) == 0)
			(void)smtp_reply_read(s, &r, SMTP_QUIT_TIMEOUT_MS,
			    "sending QUIT", &fail);
		vbuf_release(&why);
	}
	smtp_sess_free(s);
}
