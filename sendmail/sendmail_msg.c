/*
 * sendmail_msg.c - the message sendmail(1) reads: standard input made
 * into CRLF lines, the recipients of -t taken from its header, and the
 * From: and Date: a local submission lacks added (Postfix's cleanup does
 * the same for mail from its sendmail).
 *
 * Address lists (To:, Cc:, Bcc:, From:) are parsed by GMime, RFC 5322's
 * groups, comments and quoted names included; nothing here tokenizes
 * addresses by hand. The whole message is held in memory, at most
 * smtpd.message_size_limit, which smtpd would refuse anyway.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "sendmail.h"
#include "xalloc.h"

#define SENDMAIL_READ_CHUNK	65536

/* One header field: where it is in the message, its name's length. */
struct sendmail_field {
	size_t	start, end;	/* [start, end): its lines, CRLFs included */
	size_t	namelen;
};

static int sendmail_is_field(const char *, size_t, size_t *);
static int sendmail_addrs(InternetAddressList *, struct sendmail_rcpts *,
    char *, size_t, struct vbuf *);
static char *sendmail_unfold(const char *, size_t);
static int sendmail_name_is(const char *, size_t, const char *);
static void sendmail_gmime_init(void);

static void
sendmail_gmime_init(void)
{
	static int done;

	if (!done) {
		g_mime_init();
		done = 1;
	}
}

int
sendmail_rcpt_add(struct sendmail_rcpts *r, const char *addr,
    struct vbuf *why)
{
	size_t i, len = strlen(addr);

	if (len == 0 || len >= SENDMAIL_ADDR_MAX) {
		vbuf_setf(why, "recipient address %s",
		    len == 0 ? "is empty" : "is too long");
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f ||
		    addr[i] == '<' || addr[i] == '>') {
			vbuf_setf(why, "recipient address has a character "
			    "that is not allowed");
			return -1;
		}
	if (r->n >= SENDMAIL_MAX_RCPTS) {
		vbuf_setf(why, "more than %d recipients", SENDMAIL_MAX_RCPTS);
		return -1;
	}
	r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	r->v[r->n++] = xstrdup(addr);
	return 0;
}

void
sendmail_rcpts_free(struct sendmail_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int
sendmail_msg_read(struct sendmail_msg *m, int fd, uint64_t max,
    int *too_big, struct vbuf *why)
{
	struct vbuf *raw = vbuf_create((size_t)max);
	char buf[SENDMAIL_READ_CHUNK];
	const char *p, *end, *nl;
	size_t len;
	ssize_t n;

	*too_big = 0;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			vbuf_setf(why, "read standard input: %s",
			    strerror(errno));
			vbuf_free(raw);
			return -1;
		}
		if (n == 0)
			break;
		if (vbuf_add(raw, buf, (size_t)n) == -1) {
			*too_big = 1;
			vbuf_setf(why, "message larger than "
			    "smtpd.message_size_limit (%llu bytes)",
			    (unsigned long long)max);
			vbuf_free(raw);
			return -1;
		}
	}

	/* Lines ended by LF or CRLF become CRLF lines. */
	m->data = vbuf_create(0);
	for (p = raw->data, end = raw->data + raw->len; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		/* sendmail's old rule: a lone dot ends input, unless -i. */
		if (!m->ignore_dots && len == 1 && p[0] == '.')
			break;
		(void)vbuf_add(m->data, p, len);
		(void)vbuf_add(m->data, "\r\n", 2);
		if (nl == end)
			break;
	}
	vbuf_free(raw);
	for (len = 0; len < m->data->len; len++)
		if ((unsigned char)m->data->data[len] > 0x7f) {
			m->eight_bit = 1;
			break;
		}
	return 0;
}

/*
 * Whether the line [p, p+len) starts a header field ("name:", the name
 * printable ASCII without a colon or space, RFC 5322 section 2.2); its
 * name's length in *namelen.
 */
static int
sendmail_is_field(const char *p, size_t len, size_t *namelen)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == ':')
			break;
		if (p[i] <= ' ' || p[i] > '~')
			return 0;
	}
	if (i == 0 || i == len)
		return 0;
	*namelen = i;
	return 1;
}

static int
sendmail_name_is(const char *p, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(p, name, len) == 0;
}

/* The field's value, unfolded (CRLF before white space removed). */
static char *
sendmail_unfold(const char *p, size_t len)
{
	char *s = xmalloc(len + 1);
	size_t i, j = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		s[j++] = p[i];
	}
	s[j] = '\0';
	return s;
}

/*
 * The mailboxes of list (groups opened) into r when r is not NULL; the
 * first one into first (if first[0] is still "").
 */
static int
sendmail_addrs(InternetAddressList *list, struct sendmail_rcpts *r,
    char *first, size_t firstsize, struct vbuf *why)
{
	InternetAddress *ia;
	const char *addr;
	int i, n = internet_address_list_length(list);

	for (i = 0; i < n; i++) {
		ia = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (sendmail_addrs(internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), r, first, firstsize,
			    why) == -1)
				return -1;
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		addr = internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia));
		if (addr == NULL || addr[0] == '\0')
			continue;
		if (first != NULL && first[0] == '\0' &&
		    strlen(addr) < firstsize)
			snprintf(first, firstsize, "%s", addr);
		if (r != NULL && sendmail_rcpt_add(r, addr, why) == -1)
			return -1;
	}
	return 0;
}

int
sendmail_msg_headers(struct sendmail_msg *m, struct sendmail_rcpts *rcpts,
    const char *sender, struct vbuf *why)
{
	const char *d = m->data->data, *name, *eol;
	struct sendmail_field *f = NULL;
	InternetAddressList *list;
	InternetAddress *ia;
	struct vbuf *out;
	size_t nf = 0, pos = 0, len, namelen = 0, body, i;
	int have_from = 0, have_date = 0, rc = 0;
	char *val, *s, date[64];
	time_t now;
	struct tm tm;

	sendmail_gmime_init();
	/* 1. Find the header fields; the block ends at an empty line. */
	while (pos < m->data->len) {
		eol = strstr(d + pos, "\r\n");	/* every line has its CRLF */
		len = (size_t)(eol - (d + pos));
		if (len == 0) {
			pos += 2;
			break;
		}
		if ((d[pos] == ' ' || d[pos] == '\t') && nf > 0)
			f[nf - 1].end = pos + len + 2;
		else if (sendmail_is_field(d + pos, len, &namelen)) {
			f = xreallocarray(f, nf + 1, sizeof(*f));
			f[nf].start = pos;
			f[nf].end = pos + len + 2;
			f[nf].namelen = namelen;
			nf++;
		} else
			break;		/* the body, with no empty line before */
		pos += len + 2;
	}
	body = pos;

	/* 2. Recipients (-t), From:'s address; Bcc: goes with -t. */
	out = vbuf_create(0);
	for (i = 0; i < nf && rc == 0; i++) {
		name = d + f[i].start;
		namelen = f[i].namelen;
		if (sendmail_name_is(name, namelen, "Date"))
			have_date = 1;
		if (sendmail_name_is(name, namelen, "From") ||
		    (m->extract && (sendmail_name_is(name, namelen, "To") ||
		    sendmail_name_is(name, namelen, "Cc") ||
		    sendmail_name_is(name, namelen, "Bcc")))) {
			val = sendmail_unfold(name + namelen + 1,
			    f[i].end - f[i].start - namelen - 1);
			if ((list = internet_address_list_parse(NULL,
			    val)) != NULL) {
				if (sendmail_name_is(name, namelen, "From")) {
					have_from = 1;
					rc = sendmail_addrs(list, NULL,
					    m->from_hdr, sizeof(m->from_hdr),
					    why);
				} else
					rc = sendmail_addrs(list, rcpts, NULL,
					    0, why);
				g_object_unref(list);
			} else if (sendmail_name_is(name, namelen, "From"))
				have_from = 1;
			free(val);
		}
		if (m->extract && sendmail_name_is(name, namelen, "Bcc"))
			continue;
		(void)vbuf_add(out, name, f[i].end - f[i].start);
	}
	free(f);
	if (rc == -1) {
		vbuf_free(out);
		return -1;
	}

	/* 3. What a message needs (RFC 5322 section 3.6): From: and Date:. */
	if (!have_from) {
		ia = internet_address_mailbox_new(m->fullname != NULL ?
		    m->fullname : "", sender);
		s = internet_address_to_string(ia, NULL, TRUE);
		(void)vbuf_addf(out, "From: %s\r\n", s);
		g_free(s);
		g_object_unref(ia);
	}
	if (!have_date) {
		now = time(NULL);
		if (localtime_r(&now, &tm) != NULL && strftime(date,
		    sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) > 0)
			(void)vbuf_addf(out, "Date: %s\r\n", date);
	}
	/* The empty line; also where the input had none before its body. */
	(void)vbuf_add(out, "\r\n", 2);
	(void)vbuf_add(out, d + body, m->data->len - body);
	vbuf_free(m->data);
	m->data = out;
	return 0;
}
