/*
 * bounce_dsn.c - composing a delivery status notification (RFC 3464).
 *
 * Used by bounce(8) for each report: a multipart/report (RFC 3462) with a
 * text/plain part in plain words, a message/delivery-status part (RFC
 * 3464: per-message fields, then one block per recipient) and, when the
 * original could be read, its header block (text/rfc822-headers) or, for a
 * failure report with RET=FULL under bounce.size_limit, the whole message
 * (message/rfc822). Everything taken from a peer (remote replies,
 * addresses) is made printable US-ASCII here, so the first two parts are
 * 7bit; the original's bytes are copied as they are, with lines over 998
 * octets broken (RFC 5322 2.1.1) and the part marked 8bit when it has
 * 8-bit bytes. The result has CRLF line ends, ready for the queue file.
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bclass.h"
#include "bounce.h"
#include "log.h"
#include "xalloc.h"

static void	 sanitize(struct vbuf *, const char *, size_t);
static void	 sanitize_n(struct vbuf *, const char *, size_t);
static void	 header(struct vbuf *, const char *, const char *);
static void	 wrap(struct vbuf *, const char *, size_t, size_t);
static int	 xtext_decode(struct vbuf *, const char *);
static int	 dsn_ok(const char *);
static void	 status_of(char *, size_t, enum qstore_report, const char *);
static const char *action_of(enum qstore_report);
static int	 remote_host(struct vbuf *, const char *);
static int	 smtp_reply_like(const char *);
static int	 original_read(const struct bounce_report *, int,
		    struct vbuf *, int *, struct vbuf *);
static void	 copy_lines(struct vbuf *, const char *, size_t, int);
static int	 has_8bit(const char *, size_t);
static void	 part_human(struct vbuf *, const struct bounce_report *,
		    const char *);
static void	 part_status(struct vbuf *, const struct bounce_report *);
static void	 rcpt_status(struct vbuf *, const struct bounce_report *,
		    const struct bounce_rcpt *);
static void	 boundary_pick(struct vbuf *, const char *,
		    const struct vbuf *, size_t);

/*
 * What to do about a failure, by class, for the human-readable part;
 * what happened is lib/bclass's bclass_describe().
 */
static const char *const bounce_advice[] = {
	[BCLASS_BAD_MAILBOX] = "Check the address for typing errors. If it "
	    "is right, the recipient has no mailbox there: remove it from "
	    "your list.",
	[BCLASS_BAD_DOMAIN] = "Check the part of the address after the @ "
	    "for typing errors.",
	[BCLASS_INACTIVE_MAILBOX] = "Remove the address from your list, or "
	    "reach the recipient another way.",
	[BCLASS_QUOTA_ISSUES] = "Try again later; the recipient has to make "
	    "room first.",
	[BCLASS_NO_ANSWER_FROM_HOST] = "Try again later. If it keeps "
	    "happening, tell the recipient another way: their mail server "
	    "may be down.",
	[BCLASS_ROUTING_ERRORS] = "Check the address's domain; its mail (MX) "
	    "records may be wrong.",
	[BCLASS_POLICY_RELATED] = "The address itself may be fine. Check "
	    "your domain's SPF, DKIM and DMARC records and the reputation of "
	    "the sending service.",
	[BCLASS_SPAM_RELATED] = "Review the message's content and your "
	    "sending practices before sending again.",
	[BCLASS_VIRUS_RELATED] = "Check the attachments for malware and send "
	    "a clean copy.",
	[BCLASS_CONTENT_RELATED] = "Make the message smaller or simpler and "
	    "send it again.",
	[BCLASS_PROTOCOL_ERRORS] = "Tell your mail administrator.",
	[BCLASS_INVALID_SENDER] = "Check the sender address; it may need to "
	    "exist and be allowed to send for its domain.",
	[BCLASS_RELAYING_ISSUES] = "Tell your mail administrator.",
	[BCLASS_BAD_CONNECTION] = "Try again later.",
	[BCLASS_BAD_CONFIGURATION] = "Tell your mail administrator.",
	[BCLASS_MESSAGE_EXPIRED] = "Send it again later, or reach the "
	    "recipient another way.",
	[BCLASS_OTHER] = "Read the server's reply above; if it is unclear, "
	    "tell your mail administrator.",
};

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define WRAP_AT		76

const char *
bounce_dsn_subject(enum qstore_report kind)
{
	switch (kind) {
	case QSTORE_REPORT_DELAYED:
		return "Delayed Mail (still being retried)";
	case QSTORE_REPORT_RELAYED:
		return "Successful Mail Delivery Report";
	default:
		return "Undelivered Mail Returned to Sender";
	}
}

const char *
bounce_dsn_logname(enum qstore_report kind)
{
	switch (kind) {
	case QSTORE_REPORT_DELAYED:
		return "sender delay notification";
	case QSTORE_REPORT_RELAYED:
		return "sender delivery status notification";
	default:
		return "sender non-delivery notification";
	}
}

enum qstore_report
bounce_dsn_kind(const char *s)
{
	if (strcmp(s, "failed") == 0)
		return QSTORE_REPORT_FAILED;
	if (strcmp(s, "delayed") == 0)
		return QSTORE_REPORT_DELAYED;
	if (strcmp(s, "relayed") == 0)
		return QSTORE_REPORT_RELAYED;
	return QSTORE_REPORT_NONE;
}

static const char *
action_of(enum qstore_report kind)
{
	switch (kind) {
	case QSTORE_REPORT_DELAYED:
		return "delayed";
	case QSTORE_REPORT_RELAYED:
		return "relayed";
	default:
		return "failed";
	}
}

const char *
bounce_dsn_date(char *buf, size_t size, int64_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	/* Names spelled out: strftime's %a and %b follow the locale. */
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	(void)snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

/*
 * Untrusted text (a remote reply, an address): bytes that are not
 * printable US-ASCII become '?' (tabs and line ends a space), so nothing
 * can end a header field, start a MIME boundary line or smuggle 8-bit
 * bytes into a 7bit part; at most max bytes are kept.
 */
static void
sanitize(struct vbuf *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	sanitize_n(out, s, n > max ? max : n);
	if (n > max)
		vbuf_adds(out, "...");
}

/* The first n bytes of s (no NUL among them), made printable. */
static void
sanitize_n(struct vbuf *out, const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		else if (c < 0x20 || c >= 0x7f)
			c = '?';
		vbuf_addc(out, c);
	}
}

/*
 * One header field "Name: value" (value already printable), folded before
 * white space so that lines stay near BOUNCE_FOLD_AT (RFC 5322 2.2.3); a
 * run without white space longer than a line may be is broken by force
 * (a fold inserts a space there when unfolded).
 */
static void
header(struct vbuf *out, const char *name, const char *value)
{
	size_t col, len, n, brk;
	const char *p = value;

	vbuf_addf(out, "%s:", name);
	col = strlen(name) + 1;
	if (*p != ' ') {
		vbuf_addc(out, ' ');
		col++;
	}
	len = strlen(p);
	while (len > 0) {
		if (col + len <= BOUNCE_FOLD_AT) {
			vbuf_add(out, p, len);
			break;
		}
		/* The last space that keeps the line short, else the next. */
		brk = 0;
		for (n = 1; n < len && col + n <= BOUNCE_FOLD_AT; n++)
			if (p[n] == ' ')
				brk = n;
		if (brk == 0)
			for (n = 1; n < len; n++)
				if (p[n] == ' ' ||
				    col + n >= BOUNCE_LINE_MAX - 8) {
					brk = n;
					break;
				}
		if (brk == 0) {
			vbuf_add(out, p, len);
			break;
		}
		vbuf_add(out, p, brk);
		vbuf_adds(out, "\r\n");
		p += brk;
		len -= brk;
		col = 0;
		if (*p != ' ') {
			vbuf_addc(out, ' ');
			col++;
		}
	}
	vbuf_adds(out, "\r\n");
}

/*
 * Plain text (printable) wrapped at WRAP_AT columns: the first line
 * starts at column "first" (already written), the next ones are indented
 * by indent spaces. Words longer than a line are cut.
 */
static void
wrap(struct vbuf *out, const char *s, size_t first, size_t indent)
{
	size_t col = first, w;
	int fresh = 1;		/* nothing on this line yet */

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		for (w = 0; s[w] != '\0' && s[w] != ' '; w++)
			;
		if (w > WRAP_AT - indent)
			w = WRAP_AT - indent;
		if (!fresh && col + 1 + w > WRAP_AT) {
			vbuf_addf(out, "\r\n%*s", (int)indent, "");
			col = indent;
			fresh = 1;
		}
		if (!fresh) {
			vbuf_addc(out, ' ');
			col++;
		}
		vbuf_add(out, s, w);
		col += w;
		s += w;
		fresh = 0;
	}
	vbuf_adds(out, "\r\n");
}

/*
 * RFC 3461 4: xtext, "+" and two upper-case hex digits for what is not a
 * plain character. Returns 0 with the decoded text when it is well formed
 * and decodes to printable US-ASCII (fit to appear in a header field),
 * else -1 (the caller shows the xtext form, which always is).
 */
static int
xtext_decode(struct vbuf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *h, *l;
	int c;

	for (; *s != '\0'; s++) {
		if (*s != '+') {
			if (*s < '!' || *s > '~' || *s == '=')
				return -1;
			vbuf_addc(out, *s);
			continue;
		}
		if (s[1] == '\0' || s[2] == '\0' ||
		    (h = strchr(hex, s[1])) == NULL ||
		    (l = strchr(hex, s[2])) == NULL)
			return -1;
		c = (int)(h - hex) * 16 + (int)(l - hex);
		if (c < 0x20 || c > 0x7e)
			return -1;
		vbuf_addc(out, c);
		s += 2;
	}
	return 0;
}

/* An RFC 3463 code: class digit 2, 4 or 5, subject and detail 1-3 digits. */
static int
dsn_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	s += 2;
	for (i = 0; i < 2; i++) {
		for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
			;
		if (n < 1 || n > 3)
			return 0;
		s += n;
		if (i == 0 && *s++ != '.')
			return 0;
	}
	return *s == '\0';
}

/*
 * The Status of a recipient: its code, with the class digit the action
 * implies (RFC 3464 2.3.4: a failure is 5.x.x even when the last attempt
 * was a 4.x.x deferral that ran out of time).
 */
static void
status_of(char *buf, size_t size, enum qstore_report kind, const char *dsn)
{
	char cls = kind == QSTORE_REPORT_DELAYED ? '4' :
	    kind == QSTORE_REPORT_RELAYED ? '2' : '5';

	if (!dsn_ok(dsn)) {
		(void)snprintf(buf, size, "%c.0.0", cls);
		return;
	}
	(void)snprintf(buf, size, "%c%s", cls, dsn + 1);
}

/* The host of "host[addr]:port" (else the address); 0, or -1 none. */
static int
remote_host(struct vbuf *out, const char *relay)
{
	const char *lb, *rb;
	struct vbuf tmp;

	if (relay == NULL || relay[0] == '\0' || strcmp(relay, "none") == 0)
		return -1;
	vbuf_init(&tmp, 0);
	lb = strchr(relay, '[');
	if (lb == NULL)
		vbuf_adds(&tmp, relay);
	else if (lb > relay && strncmp(relay, "unknown[", 8) != 0)
		vbuf_add(&tmp, relay, (size_t)(lb - relay));
	else if ((rb = strchr(lb, ']')) != NULL)
		vbuf_add(&tmp, lb + 1, (size_t)(rb - lb - 1));
	if (tmp.len == 0) {
		vbuf_release(&tmp);
		return -1;
	}
	sanitize(out, tmp.data, BOUNCE_HOST_MAX);
	vbuf_release(&tmp);
	return 0;
}

/* A reply that came from an SMTP server: "DDD" then end, space or '-'. */
static int
smtp_reply_like(const char *s)
{
	return (s[0] >= '2' && s[0] <= '5') && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == '\0' || s[3] == ' ' || s[3] == '-');
}

static int
has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/*
 * Reads what of the original the report carries into buf: the whole
 * message (full) or its header block without the blank line that ends it
 * (at most BOUNCE_HDRS_MAX bytes, cut at a line end; *cut says so).
 * Returns 0, or -1 with a reason.
 */
static int
original_read(const struct bounce_report *r, int full, struct vbuf *buf,
    int *cut, struct vbuf *why)
{
	int fd = qstore_file_fd(r->qf);
	off_t off = qstore_file_body_offset(r->qf);
	off_t size = qstore_file_body_size(r->qf);
	size_t want, scan = 0;
	ssize_t n;
	char *end;

	*cut = 0;
	want = full ? (size_t)size : (size_t)(size < BOUNCE_HDRS_MAX ? size :
	    BOUNCE_HDRS_MAX);
	if (vbuf_reserve(buf, want + 1) == -1) {
		vbuf_setf(why, "%s: original too large", r->qid);
		return -1;
	}
	while (buf->len < want) {
		n = pread(fd, buf->data + buf->len, want - buf->len,
		    off + (off_t)buf->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			vbuf_setf(why, "%s: read queue file: %s", r->qid,
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			vbuf_setf(why, "%s: queue file shorter than its size",
			    r->qid);
			return -1;
		}
		buf->len += (size_t)n;
		buf->data[buf->len] = '\0';
		if (!full) {
			/* Stop at the end of the header block. */
			scan = scan > 3 ? scan - 3 : 0;
			end = memmem(buf->data + scan, buf->len - scan,
			    "\r\n\r\n", 4);
			if (end != NULL) {
				vbuf_truncate(buf, (size_t)(end - buf->data) +
				    2);
				return 0;
			}
			scan = buf->len;
		}
	}
	if (!full && buf->len == BOUNCE_HDRS_MAX && size > BOUNCE_HDRS_MAX) {
		/* Headers without end within the cap: keep whole lines. */
		*cut = 1;
		if ((end = memrchr(buf->data, '\n', buf->len)) != NULL)
			vbuf_truncate(buf, (size_t)(end - buf->data) + 1);
	}
	return 0;
}

/*
 * Copies message bytes line by line with CRLF ends: a bare CR or a NUL
 * becomes a space, and a line longer than BOUNCE_LINE_MAX is broken
 * (headers: folded with a leading space; body: a plain line break).
 */
static void
copy_lines(struct vbuf *out, const char *p, size_t n, int headers)
{
	size_t i, col = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '\n') {
			vbuf_adds(out, "\r\n");
			col = 0;
			continue;
		}
		if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		if (c == '\r' || c == '\0')
			c = ' ';
		if (col >= BOUNCE_LINE_MAX - 1) {
			vbuf_adds(out, headers ? "\r\n " : "\r\n");
			col = headers ? 1 : 0;
		}
		vbuf_addc(out, c);
		col++;
	}
	if (col > 0)
		vbuf_adds(out, "\r\n");
}

/*
 * The boundary, into bnd: the caller's (queue id, time and host: hard to
 * guess, not impossible), else, when "--" and it occur in a part, it with
 * "=NNNNNNNN" added, the smallest N that no occurrence goes on with. RFC
 * 2046 5.1.1 forbids it in the parts, and the original's bytes are the
 * sender's: one that held a delimiter line would split the report where
 * the sender chose. Each occurrence rules out at most one N (they all have
 * 8 digits), so one of 1..m+1 is free: one pass, however many there are.
 */
static void
boundary_pick(struct vbuf *bnd, const char *base, const struct vbuf *part,
    size_t nparts)
{
	struct vbuf delim;
	const char *p, *end, *hit, *q;
	unsigned char *used;
	unsigned long v;
	size_t i, k, m = 0, pass;

	vbuf_init(&delim, 0);
	vbuf_addf(&delim, "--%s", base);
	vbuf_reset(bnd);
	vbuf_adds(bnd, base);
	used = NULL;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < nparts; i++) {
			p = part[i].data;
			end = p + part[i].len;
			while (p < end && (hit = memmem(p, (size_t)(end - p),
			    delim.data, delim.len)) != NULL) {
				p = hit + 1;
				if (pass == 0) {
					m++;
					continue;
				}
				q = hit + delim.len;
				if (end - q < 9 || *q != '=')
					continue;
				v = 0;
				for (k = 1; k < 9 && q[k] >= '0' &&
				    q[k] <= '9'; k++)
					v = v * 10 + (unsigned)(q[k] - '0');
				if (k == 9 && v <= m + 1)
					used[v] = 1;
			}
		}
		if (m == 0)
			break;
		if (pass == 0)
			used = xcalloc(m + 2, 1);
	}
	if (m > 0) {
		for (v = 1; used[v]; v++)
			;
		vbuf_addf(bnd, "=%08lu", v);
	}
	free(used);
	vbuf_release(&delim);
}

/* Part 1: what happened, in plain words. */
static void
part_human(struct vbuf *out, const struct bounce_report *r,
    const char *orig_note)
{
	const struct bounce_rcpt *rc;
	enum bclass cl;
	struct vbuf t;
	char date[64];
	size_t i;

	vbuf_init(&t, 0);
	vbuf_adds(out, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	vbuf_reset(&t);
	vbuf_adds(&t, "This is the mail system at host ");
	sanitize(&t, r->myhostname, BOUNCE_HOST_MAX);
	vbuf_adds(&t, ".");
	wrap(out, t.data, 0, 0);
	vbuf_adds(out, "\r\n");
	switch (r->kind) {
	case QSTORE_REPORT_DELAYED:
		wrap(out, "Your message has not been delivered yet to the "
		    "recipients listed below. The mail system keeps trying "
		    "until the time given for each; you do not need to send "
		    "it again. If it still cannot be delivered by then, you "
		    "will get another report.", 0, 0);
		break;
	case QSTORE_REPORT_RELAYED:
		wrap(out, "Your message was handed over to the mail server "
		    "listed for each recipient below, as you asked "
		    "(NOTIFY=SUCCESS). Any later report about these recipients "
		    "can only come from that server.", 0, 0);
		break;
	default:
		wrap(out, "Your message could not be delivered to the "
		    "recipients listed below. The mail system has given up "
		    "on them and will not try again.", 0, 0);
		break;
	}
	vbuf_adds(out, "\r\n");
	wrap(out, orig_note, 0, 0);
	for (i = 0; i < r->nrcpts; i++) {
		rc = &r->rcpts[i];
		vbuf_adds(out, "\r\n");
		vbuf_reset(&t);
		vbuf_addc(&t, '<');
		sanitize(&t, rc->addr, QSTORE_ADDR_MAX);
		vbuf_adds(&t, ">: ");
		if (rc->relay != NULL && rc->relay[0] != '\0' &&
		    strcmp(rc->relay, "none") != 0) {
			vbuf_adds(&t, "host ");
			sanitize(&t, rc->relay, QSTORE_RELAY_MAX);
			vbuf_adds(&t, " said: ");
		}
		sanitize(&t, rc->reply != NULL ? rc->reply : "",
		    BOUNCE_REPLY_MAX);
		wrap(out, t.data, 0, 4);
		if (rc->class != NULL && bclass_from_name(rc->class,
		    &cl) == 0) {
			vbuf_reset(&t);
			vbuf_addf(&t, "Reason (%s): %s", bclass_name(cl),
			    bclass_describe(cl));
			vbuf_addf(out, "    ");
			wrap(out, t.data, 4, 4);
			if (r->kind == QSTORE_REPORT_FAILED) {
				vbuf_reset(&t);
				vbuf_addf(&t, "What to do: %s",
				    bounce_advice[cl]);
				vbuf_addf(out, "    ");
				wrap(out, t.data, 4, 4);
			}
		}
		if (r->kind == QSTORE_REPORT_DELAYED && rc->until > 0) {
			vbuf_reset(&t);
			vbuf_addf(&t, "Will keep trying until %s.",
			    bounce_dsn_date(date, sizeof(date), rc->until));
			vbuf_addf(out, "    ");
			wrap(out, t.data, 4, 4);
		}
	}
	vbuf_adds(out, "\r\n");
	vbuf_release(&t);
}

/* One recipient's block of the delivery-status part. */
static void
rcpt_status(struct vbuf *out, const struct bounce_report *r,
    const struct bounce_rcpt *rc)
{
	const struct qstore_envelope *env;
	const char *orcpt = NULL, *semi;
	struct vbuf t, d;
	char date[64], status[16];

	vbuf_init(&t, 0);
	vbuf_init(&d, 0);
	vbuf_adds(out, "\r\n");
	/* RFC 3464 2.3.1: only when the client gave ORCPT (RFC 3461 4.2). */
	if (r->qf != NULL) {
		env = qstore_file_envelope(r->qf);
		if (rc->index < env->nrcpts && env->orcpts != NULL)
			orcpt = env->orcpts[rc->index];
	}
	if (orcpt != NULL && (semi = strchr(orcpt, ';')) != NULL &&
	    semi > orcpt) {
		sanitize_n(&t, orcpt, (size_t)(semi - orcpt));
		vbuf_adds(&t, "; ");
		if (xtext_decode(&d, semi + 1) == 0)
			vbuf_add(&t, d.data, d.len);
		else
			sanitize(&t, semi + 1, QSTORE_ORCPT_MAX);
		header(out, "Original-Recipient", t.data);
	}
	vbuf_reset(&t);
	vbuf_adds(&t, "rfc822; ");
	sanitize(&t, rc->addr, QSTORE_ADDR_MAX);
	header(out, "Final-Recipient", t.data);
	header(out, "Action", action_of(r->kind));
	status_of(status, sizeof(status), r->kind, rc->dsn);
	header(out, "Status", status);
	vbuf_reset(&t);
	vbuf_adds(&t, "dns; ");
	if (remote_host(&t, rc->relay) == 0)
		header(out, "Remote-MTA", t.data);
	if (rc->reply != NULL && rc->reply[0] != '\0') {
		vbuf_reset(&t);
		vbuf_adds(&t, smtp_reply_like(rc->reply) ? "smtp; " :
		    "X-Petrel; ");
		sanitize(&t, rc->reply, BOUNCE_REPLY_MAX);
		header(out, "Diagnostic-Code", t.data);
	}
	if (rc->time > 0)
		header(out, "Last-Attempt-Date",
		    bounce_dsn_date(date, sizeof(date), rc->time));
	if (r->kind == QSTORE_REPORT_DELAYED && rc->until > 0)
		header(out, "Will-Retry-Until",
		    bounce_dsn_date(date, sizeof(date), rc->until));
	if (rc->class != NULL && rc->class[0] != '\0') {
		vbuf_reset(&t);
		sanitize(&t, rc->class, QSTORE_CLASS_MAX);
		header(out, "X-Petrel-Bounce-Class", t.data);
	}
	vbuf_release(&t);
	vbuf_release(&d);
}

/* Part 2: message/delivery-status (RFC 3464 2.1). */
static void
part_status(struct vbuf *out, const struct bounce_report *r)
{
	const char *envid = NULL;
	struct vbuf t;
	char date[64];
	size_t i;

	vbuf_init(&t, 0);
	vbuf_adds(out, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	sanitize(&t, r->myhostname, BOUNCE_HOST_MAX);
	vbuf_adds(out, "Reporting-MTA: dns; ");
	vbuf_add(out, t.data, t.len);
	vbuf_adds(out, "\r\n");
	if (r->qf != NULL)
		envid = qstore_file_envelope(r->qf)->envid;
	if (envid != NULL && envid[0] != '\0') {
		/*
		 * RFC 3464 2.2.1 and RFC 3461 4.4: the envelope id as the
		 * client meant it, so decoded from its xtext (case kept);
		 * shown as xtext when it decodes to something unprintable.
		 */
		vbuf_reset(&t);
		if (xtext_decode(&t, envid) == -1) {
			vbuf_reset(&t);
			sanitize(&t, envid, QSTORE_ENVID_MAX);
		}
		header(out, "Original-Envelope-Id", t.data);
	}
	vbuf_reset(&t);
	sanitize(&t, r->qid, QID_SIZE);
	header(out, "X-Petrel-Queue-ID", t.data);
	if (r->sender[0] != '\0') {
		vbuf_reset(&t);
		vbuf_adds(&t, "rfc822; ");
		sanitize(&t, r->sender, QSTORE_ADDR_MAX);
		header(out, "X-Petrel-Sender", t.data);
	}
	if (r->arrival > 0)
		header(out, "Arrival-Date", bounce_dsn_date(date, sizeof(date),
		    r->arrival));
	for (i = 0; i < r->nrcpts; i++)
		rcpt_status(out, r, &r->rcpts[i]);
	vbuf_adds(out, "\r\n");
	vbuf_release(&t);
}

int
bounce_dsn_compose(const struct bounce_report *r, struct vbuf *out,
    struct vbuf *why)
{
	enum qstore_ret ret = QSTORE_RET_DEFAULT;
	struct vbuf orig, t, note, bnd, part[3];
	char date[64];
	int full = 0, cut = 0, eight = 0, rc = -1;
	size_t i, nparts = r->qf != NULL ? 3 : 2;

	vbuf_init(&orig, 0);
	vbuf_init(&t, 0);
	vbuf_init(&note, 0);
	vbuf_init(&bnd, 0);
	for (i = 0; i < nitems(part); i++)
		vbuf_init(&part[i], 0);

	/* 1. What of the original goes in, and what part 1 says of it. */
	if (r->qf != NULL) {
		ret = qstore_file_envelope(r->qf)->ret;
		/* RFC 3461 4.3: RET is for failures; else the headers. */
		full = ret == QSTORE_RET_FULL &&
		    r->kind == QSTORE_REPORT_FAILED &&
		    (uint64_t)qstore_file_body_size(r->qf) <= r->size_limit;
		if (original_read(r, full, &orig, &cut, why) == -1)
			goto out;
		eight = has_8bit(orig.data, orig.len);
		if (full)
			vbuf_adds(&note, "Your message is attached in full.");
		else if (ret == QSTORE_RET_FULL &&
		    r->kind == QSTORE_REPORT_FAILED)
			vbuf_addf(&note, "You asked for the whole message back "
			    "(RET=FULL), but it is larger than the %" PRIu64
			    " bytes this mail system returns "
			    "(bounce.size_limit), so only its headers are "
			    "attached.", r->size_limit);
		else
			vbuf_adds(&note, "The headers of your message are "
			    "attached.");
		if (cut)
			vbuf_addf(&note, " They were cut at %d bytes.",
			    BOUNCE_HDRS_MAX);
	} else
		vbuf_adds(&note, "The original message could not be read from "
		    "the queue (it was missing or damaged), so it is not "
		    "included in this report.");

	/*
	 * 2. The parts (RFC 3462), before the header that names their
	 * boundary, so that it can be chosen not to occur in them.
	 */
	part_human(&part[0], r, note.data);
	part_status(&part[1], r);
	if (r->qf != NULL) {
		vbuf_addf(&part[2], "Content-Description: %s\r\n",
		    r->kind == QSTORE_REPORT_RELAYED ?
		    (full ? "Message" : "Message Headers") :
		    (full ? "Undelivered Message" :
		    "Undelivered Message Headers"));
		vbuf_addf(&part[2], "Content-Type: %s\r\n", full ?
		    "message/rfc822" : "text/rfc822-headers");
		if (eight)
			vbuf_adds(&part[2],
			    "Content-Transfer-Encoding: 8bit\r\n");
		vbuf_adds(&part[2], "\r\n");
		copy_lines(&part[2], orig.data, orig.len, !full);
		vbuf_adds(&part[2], "\r\n");
	}
	boundary_pick(&bnd, r->boundary, part, nparts);

	/* 3. The report's header. */
	vbuf_reset(&t);
	vbuf_adds(&t, "MAILER-DAEMON@");
	sanitize(&t, r->myhostname, BOUNCE_HOST_MAX);
	vbuf_adds(&t, " (Mail Delivery System)");
	header(out, "From", t.data);
	vbuf_reset(&t);
	vbuf_addc(&t, '<');
	sanitize(&t, r->sender, QSTORE_ADDR_MAX);
	vbuf_addc(&t, '>');
	header(out, "To", t.data);
	header(out, "Subject", bounce_dsn_subject(r->kind));
	header(out, "Date", bounce_dsn_date(date, sizeof(date), r->now));
	vbuf_reset(&t);
	vbuf_addc(&t, '<');
	sanitize(&t, r->msgid, 256);
	vbuf_addc(&t, '>');
	header(out, "Message-ID", t.data);
	/* RFC 3834 5: an automatic reply; no autoresponder answers it. */
	header(out, "Auto-Submitted", "auto-replied");
	header(out, "MIME-Version", "1.0");
	vbuf_adds(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"");
	vbuf_add(out, bnd.data, bnd.len);
	vbuf_adds(out, "\"\r\n");
	/* RFC 2045 6.4: a multipart is 8bit when a part of it is. */
	if (eight)
		header(out, "Content-Transfer-Encoding", "8bit");
	vbuf_adds(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
	for (i = 0; i < nparts; i++) {
		vbuf_addf(out, "--%s\r\n", bnd.data);
		vbuf_add(out, part[i].data, part[i].len);
	}
	vbuf_addf(out, "--%s--\r\n", bnd.data);
	rc = 0;
out:
	vbuf_release(&orig);
	vbuf_release(&t);
	vbuf_release(&note);
	vbuf_release(&bnd);
	for (i = 0; i < nitems(part); i++)
		vbuf_release(&part[i]);
	return rc;
}
