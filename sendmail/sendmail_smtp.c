/*
 * sendmail_smtp.c - sendmail(1)'s side of the local submission socket: an
 * SMTP client for one message, and the relay between standard input and
 * output and smtpd for -bs.
 *
 * The socket is <queue_directory>/public/submit; smtpd takes the caller's
 * identity from the kernel (SO_PEERCRED), so nothing here authenticates.
 * Every read and write has a deadline (smtpd.timeout and a minute more),
 * replies are read a bounded line at a time.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "dotstuff.h"
#include "mailproto.h"
#include "sendmail.h"
#include "smtpcmd.h"

#define SENDMAIL_LINE_MAX	4096	/* a reply line; RFC 5321: 512 */
#define SENDMAIL_REPLY_LINES	100	/* lines in one reply */
#define SENDMAIL_RELAY_BUF	65536

/* A reply: its code, the text of its last line ("250 2.0.0 Ok ..."). */
struct sendmail_reply {
	int	code;
	char	text[SENDMAIL_LINE_MAX];
	int	smtputf8;	/* EHLO: offered */
	int	eightbitmime;
};

struct sendmail_conn {
	int	fd;
	char	buf[SENDMAIL_LINE_MAX];
	size_t	len;
};

static int sendmail_read_reply(struct sendmail_conn *, struct sendmail_reply *,
    struct vbuf *);
static int sendmail_write(int, const char *, size_t, struct vbuf *);
static int sendmail_cmd(struct sendmail_conn *, struct sendmail_reply *,
    struct vbuf *, const char *, ...) __attribute__((format(printf, 4, 5)));
static int sendmail_refused(const struct sendmail_reply *, const char *,
    struct vbuf *);
static int sendmail_needs_utf8(const char *, const struct sendmail_rcpts *);

int
sendmail_reply_exit(int code, const char *text)
{
	char dsn[16];

	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500)
		return EX_PROTOCOL;
	/* text is the whole line, "DDD X.Y.Z ..." */
	if (smtpcmd_reply_dsn(code, strlen(text) > 4 ? text + 4 : "",
	    dsn) == 1) {
		if (strncmp(dsn, "5.7.", 4) == 0)
			return EX_NOPERM;	/* policy: not allowed */
		if (strncmp(dsn, "5.1.", 4) == 0)
			return EX_NOUSER;	/* bad address */
		if (strcmp(dsn, "5.3.5") == 0)
			return EX_CONFIG;	/* the relay's setup */
		if (strncmp(dsn, "5.3.4", 5) == 0 ||
		    strncmp(dsn, "5.6.", 4) == 0)
			return EX_DATAERR;	/* the message itself */
	}
	return EX_UNAVAILABLE;
}

int
sendmail_connect(const struct cfg *cfg, int *ex, struct vbuf *why)
{
	struct sockaddr_un sun;
	struct timeval tv;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s/%s",
	    cfg->queue_directory, MAIL_DIR_PUBLIC, MAIL_SOCK_SUBMIT) >=
	    (int)sizeof(sun.sun_path)) {
		vbuf_setf(why, "%s/%s/%s: path too long for a socket",
		    cfg->queue_directory, MAIL_DIR_PUBLIC, MAIL_SOCK_SUBMIT);
		*ex = EX_CONFIG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		vbuf_setf(why, "socket: %s", strerror(errno));
		*ex = EX_OSERR;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		/*
		 * No socket: local submission is off (no
		 * local_submission.users) or master never ran. Refused:
		 * master is not running now; the caller may try later.
		 */
		if (errno == ENOENT)
			vbuf_setf(why, "connect to %s: %s (is "
			    "local_submission.users set in %s, and Petrel "
			    "running?)", sun.sun_path, strerror(errno),
			    cfg->path);
		else
			vbuf_setf(why, "connect to %s: %s (is Petrel "
			    "running?)", sun.sun_path, strerror(errno));
		*ex = errno == ENOENT ? EX_UNAVAILABLE : errno == EACCES ?
		    EX_NOPERM : EX_TEMPFAIL;
		close(fd);
		return -1;
	}
	tv.tv_sec = (time_t)cfg->smtpd_timeout + 60;
	tv.tv_usec = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int
sendmail_write(int fd, const char *p, size_t len, struct vbuf *why)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			vbuf_setf(why, "write to smtpd: %s", n == 0 ?
			    "closed" : errno == EAGAIN ? "timed out" :
			    strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Reads one (multi-line) reply. Returns 0, or -1 with why (closed, timed
 * out, a line too long, not a reply).
 */
static int
sendmail_read_reply(struct sendmail_conn *c, struct sendmail_reply *r,
    struct vbuf *why)
{
	char *nl;
	size_t linelen;
	ssize_t n;
	int last = 0, code, lines = 0;

	r->code = 0;
	r->text[0] = '\0';
	while (!last) {
		while ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
			if (c->len == sizeof(c->buf)) {
				vbuf_setf(why, "smtpd: reply line too long");
				return -1;
			}
			n = read(c->fd, c->buf + c->len,
			    sizeof(c->buf) - c->len);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				vbuf_setf(why, "read from smtpd: %s", n == 0 ?
				    "connection closed" : errno == EAGAIN ?
				    "timed out" : strerror(errno));
				return -1;
			}
			c->len += (size_t)n;
		}
		linelen = (size_t)(nl - c->buf);
		if (linelen > 0 && c->buf[linelen - 1] == '\r')
			linelen--;
		c->buf[linelen] = '\0';
		if ((code = smtpcmd_reply_code(c->buf, &last)) == -1 ||
		    ++lines > SENDMAIL_REPLY_LINES) {
			vbuf_setf(why, "smtpd: malformed reply");
			return -1;
		}
		if (linelen > 4 && strncasecmp(c->buf + 4, "SMTPUTF8", 8) == 0)
			r->smtputf8 = 1;
		if (linelen > 4 && strncasecmp(c->buf + 4, "8BITMIME",
		    8) == 0)
			r->eightbitmime = 1;
		r->code = code;
		snprintf(r->text, sizeof(r->text), "%s", c->buf);
		linelen = (size_t)(nl - c->buf) + 1;
		memmove(c->buf, c->buf + linelen, c->len - linelen);
		c->len -= linelen;
	}
	return 0;
}

static int
sendmail_cmd(struct sendmail_conn *c, struct sendmail_reply *r,
    struct vbuf *why, const char *fmt, ...)
{
	char line[SENDMAIL_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		vbuf_setf(why, "command too long");
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	if (sendmail_write(c->fd, line, (size_t)n + 2, why) == -1)
		return -1;
	return sendmail_read_reply(c, r, why);
}

/* The sysexits code for a refusal; why gets what and the reply. */
static int
sendmail_refused(const struct sendmail_reply *r, const char *what,
    struct vbuf *why)
{
	vbuf_setf(why, "%s: %s", what, r->text);
	return sendmail_reply_exit(r->code, r->text);
}

static int
sendmail_needs_utf8(const char *sender, const struct sendmail_rcpts *rcpts)
{
	const char *p;

	for (p = sender; *p != '\0'; p++)
		if ((unsigned char)*p > 0x7f)
			return 1;
	for (size_t i = 0; i < rcpts->n; i++)
		for (p = rcpts->v[i]; *p != '\0'; p++)
			if ((unsigned char)*p > 0x7f)
				return 1;
	return 0;
}

int
sendmail_send(int fd, const struct cfg *cfg, const char *sender,
    const struct sendmail_rcpts *rcpts, const struct sendmail_msg *m,
    struct vbuf *why)
{
	struct sendmail_conn c;
	struct sendmail_reply r, ehlo;
	struct dotstuff_tx tx;
	struct vbuf *out;
	int utf8, rc;
	size_t i;

	memset(&c, 0, sizeof(c));
	memset(&ehlo, 0, sizeof(ehlo));
	c.fd = fd;
	if (sendmail_read_reply(&c, &r, why) == -1)
		return EX_TEMPFAIL;
	if (r.code != 220)
		return sendmail_refused(&r, "refused", why);
	if (sendmail_cmd(&c, &ehlo, why, "EHLO %s", cfg->myhostname) == -1)
		return EX_TEMPFAIL;
	if (ehlo.code != 250)
		return sendmail_refused(&ehlo, "EHLO", why);

	/*
	 * SMTPUTF8 for a non-ASCII address or header (RFC 6531; smtpd
	 * refuses 8-bit headers without it), 8BITMIME for 8-bit text.
	 */
	utf8 = sendmail_needs_utf8(sender, rcpts) || m->eight_bit;
	if (sendmail_cmd(&c, &r, why, "MAIL FROM:<%s>%s%s", sender,
	    m->eight_bit && ehlo.eightbitmime ? " BODY=8BITMIME" : "",
	    utf8 && ehlo.smtputf8 ? " SMTPUTF8" : "") == -1)
		return EX_TEMPFAIL;
	if (r.code != 250)
		return sendmail_refused(&r, "MAIL FROM", why);
	for (i = 0; i < rcpts->n; i++) {
		if (sendmail_cmd(&c, &r, why, "RCPT TO:<%s>",
		    rcpts->v[i]) == -1)
			return EX_TEMPFAIL;
		if (r.code != 250 && r.code != 251) {
			/* All or nothing: a second run sends no duplicate. */
			rc = sendmail_refused(&r, rcpts->v[i], why);
			(void)sendmail_write(fd, "QUIT\r\n", 6, why);
			return rc;
		}
	}
	if (sendmail_cmd(&c, &r, why, "DATA") == -1)
		return EX_TEMPFAIL;
	if (r.code != 354)
		return sendmail_refused(&r, "DATA", why);
	out = vbuf_create(0);
	dotstuff_tx_init(&tx);
	dotstuff_tx_feed(&tx, m->data->data, m->data->len, out);
	dotstuff_tx_finish(&tx, out);
	rc = sendmail_write(fd, out->data, out->len, why);
	vbuf_free(out);
	if (rc == -1 || sendmail_read_reply(&c, &r, why) == -1)
		return EX_TEMPFAIL;
	if (r.code != 250)
		return sendmail_refused(&r, "message", why);
	vbuf_setf(why, "%s", r.text);
	(void)sendmail_cmd(&c, &r, why, "QUIT");
	return EX_OK;
}

int
sendmail_relay(int fd, const struct cfg *cfg, struct vbuf *why)
{
	struct sendmail_conn c;
	struct sendmail_reply r;
	struct pollfd pfd[2];
	char buf[SENDMAIL_RELAY_BUF];
	int in_open = 1, n, timeout;
	ssize_t got;

	/* The greeting first: a refused user gets EX_NOPERM. */
	memset(&c, 0, sizeof(c));
	c.fd = fd;
	if (sendmail_read_reply(&c, &r, why) == -1)
		return EX_TEMPFAIL;
	printf("%s\r\n", r.text);
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	if (r.code != 220)
		return sendmail_refused(&r, "refused", why);
	/* What came after the greeting's line is passed on as it is. */
	if (c.len > 0 && sendmail_write(STDOUT_FILENO, c.buf, c.len,
	    why) == -1)
		return EX_IOERR;

	timeout = (int)(cfg->smtpd_timeout + 60) * 1000;
	for (;;) {
		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		if ((n = poll(pfd, 2, timeout)) == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			vbuf_setf(why, "-bs: %s", n == 0 ? "timed out" :
			    strerror(errno));
			return EX_IOERR;
		}
		if (pfd[1].revents != 0) {
			got = read(fd, buf, sizeof(buf));
			if (got == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0)
				return EX_OK;	/* smtpd closed: QUIT */
			if (sendmail_write(STDOUT_FILENO, buf, (size_t)got,
			    why) == -1)
				return EX_IOERR;
		}
		if (in_open && pfd[0].revents != 0) {
			got = read(STDIN_FILENO, buf, sizeof(buf));
			if (got == -1 && errno == EINTR)
				continue;
			if (got <= 0) {
				/* The client is done; smtpd will close. */
				in_open = 0;
				(void)shutdown(fd, SHUT_WR);
				continue;
			}
			if (sendmail_write(fd, buf, (size_t)got, why) == -1)
				return EX_IOERR;
		}
	}
}
