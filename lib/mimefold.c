/*
 * mimefold.c - makes a message fit SMTP's line limit without losing
 * content (see mimefold.h for what is done to what).
 *
 * The message is walked as MIME entities: a header block, an empty line,
 * a body. An entity with no long line anywhere is copied byte for byte,
 * so only what must change does; in a multipart, each part between the
 * delimiter lines is an entity of its own, and the delimiters (with the
 * CRLF before each, which belongs to the delimiter, RFC 2046 5.1.1) are
 * copied as they are.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mimefold.h"

#define MF_QP_LINE	76	/* RFC 2045 6.7 (5), the soft break's = too */
#define MF_VALUE_MAX	1024	/* a Content-Type value we look into */
#define MF_BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */

struct mf {
	struct vbuf	*out;
	unsigned	 forced;
};

/* One line of a buffer: its text without the line end, and whether it has one. */
struct mf_line {
	const char	*p;
	size_t		 n;
	int		 eol;
	size_t		 next;	/* offset of the next line */
};

static int	mf_line_at(const char *, size_t, size_t, struct mf_line *);
static void	mf_split(const char *, size_t, size_t *, size_t *, int *);
static int	mf_field(const char *, size_t, const char *, char *, size_t);
static int	mf_is_field(const struct mf_line *, const char *);
static void	mf_ctype(const char *, char *, size_t, char *, size_t);
static void	mf_put_line(struct mf *, const char *, size_t, int, int);
static void	mf_put_text(struct mf *, const char *, size_t, int);
static void	mf_put_headers(struct mf *, const char *, size_t, int);
static void	mf_qp(struct mf *, const char *, size_t);
static void	mf_entity(struct mf *, const char *, size_t, int, int);
static void	mf_multipart(struct mf *, const char *, size_t, const char *,
		    int);
static int	mf_identity(const char *);
static const char *mf_charset(const char *, size_t);

static int
mf_line_at(const char *buf, size_t len, size_t off, struct mf_line *l)
{
	const char *lf;

	if (off >= len)
		return 0;
	l->p = buf + off;
	lf = memchr(buf + off, '\n', len - off);
	if (lf == NULL) {
		l->n = len - off;
		l->eol = 0;
		l->next = len;
		return 1;
	}
	l->n = (size_t)(lf - l->p);
	if (l->n > 0 && l->p[l->n - 1] == '\r')
		l->n--;
	l->eol = 1;
	l->next = (size_t)(lf - buf) + 1;
	return 1;
}

size_t
mimefold_longest(const char *buf, size_t len)
{
	struct mf_line l;
	size_t off = 0, max = 0;

	while (mf_line_at(buf, len, off, &l)) {
		if (l.n > max)
			max = l.n;
		off = l.next;
	}
	return max;
}

/*
 * The header block is buf[0..*hlen); the body starts at *body. *blank
 * tells whether an empty line separated them.
 */
static void
mf_split(const char *buf, size_t len, size_t *hlen, size_t *body, int *blank)
{
	struct mf_line l;
	size_t off = 0;

	while (mf_line_at(buf, len, off, &l)) {
		if (l.n == 0 && l.eol) {
			*hlen = off;
			*body = l.next;
			*blank = 1;
			return;
		}
		off = l.next;
	}
	*hlen = len;
	*body = len;
	*blank = 0;
}

/* Whether line l starts the field name ("Name:", any case). */
static int
mf_is_field(const struct mf_line *l, const char *name)
{
	size_t n = strlen(name);

	return l->n > n && strncasecmp(l->p, name, n) == 0 && l->p[n] == ':';
}

/*
 * The first field called name in the header block, unfolded and trimmed,
 * into buf (cut at size - 1). Returns 1 if there is one.
 */
static int
mf_field(const char *h, size_t hlen, const char *name, char *buf,
    size_t size)
{
	struct mf_line l;
	size_t off = 0, n = 0, skip = strlen(name) + 1;
	int in = 0;

	while (mf_line_at(h, hlen, off, &l)) {
		int cont = l.n > 0 && (l.p[0] == ' ' || l.p[0] == '\t');

		if (in && !cont)
			break;
		if (!in && !cont && mf_is_field(&l, name)) {
			in = 1;
			l.p += skip;
			l.n -= skip;
		} else if (!in) {
			off = l.next;
			continue;
		}
		for (size_t i = 0; i < l.n && n + 1 < size; i++)
			buf[n++] = l.p[i];
		off = l.next;
	}
	if (!in)
		return 0;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	/* Leading whitespace goes too. */
	for (skip = 0; buf[skip] == ' ' || buf[skip] == '\t'; skip++)
		;
	memmove(buf, buf + skip, n - skip + 1);
	return 1;
}

/*
 * From a Content-Type value: "type/subtype" lower-cased into type, and
 * the boundary parameter (quoted or not) into boundary ("" if none).
 */
static void
mf_ctype(const char *v, char *type, size_t tsize, char *boundary,
    size_t bsize)
{
	size_t n = 0;
	const char *p = v;

	while (*p != '\0' && *p != ';' && !isspace((unsigned char)*p) &&
	    n + 1 < tsize)
		type[n++] = (char)tolower((unsigned char)*p++);
	type[n] = '\0';
	boundary[0] = '\0';
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary", 8) != 0)
			continue;
		p += 8;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		n = 0;
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (n + 1 < bsize)
					boundary[n++] = *p;
			}
		} else {
			for (; *p != '\0' && *p != ';' &&
			    !isspace((unsigned char)*p); p++)
				if (n + 1 < bsize)
					boundary[n++] = *p;
		}
		boundary[n] = '\0';
		return;
	}
}

/* 7bit, 8bit, binary: the bytes are the content, so QP may replace them. */
static int
mf_identity(const char *cte)
{
	return cte[0] == '\0' || strcasecmp(cte, "7bit") == 0 ||
	    strcasecmp(cte, "8bit") == 0 || strcasecmp(cte, "binary") == 0;
}

/*
 * Writes one line of text p[0..n) and, if eol, CRLF, split so that no
 * output line is longer than MIMEFOLD_LINE_MAX. A header line (header
 * set) is folded before whitespace, so that unfolding gives it back; with
 * no whitespace to fold at, or in a body, it is split by force (a header
 * continuation then starts with a space it did not have).
 */
static void
mf_put_line(struct mf *m, const char *p, size_t n, int eol, int header)
{
	int pad = 0;		/* a forced header continuation: " " first */

	while (n + (size_t)pad > MIMEFOLD_LINE_MAX) {
		size_t room = MIMEFOLD_LINE_MAX - (size_t)pad, cut = 0;

		if (header) {
			/* The last whitespace that leaves text before it. */
			for (size_t i = room; i >= 1; i--)
				if (p[i] == ' ' || p[i] == '\t') {
					cut = i;
					break;
				}
		}
		if (pad)
			(void)vbuf_addc(m->out, ' ');
		if (cut > 0) {
			(void)vbuf_add(m->out, p, cut);
			pad = 0;
		} else {
			cut = room;
			(void)vbuf_add(m->out, p, cut);
			m->forced++;
			pad = header;
		}
		(void)vbuf_add(m->out, "\r\n", 2);
		p += cut;
		n -= cut;
	}
	if (pad)
		(void)vbuf_addc(m->out, ' ');
	(void)vbuf_add(m->out, p, n);
	if (eol)
		(void)vbuf_add(m->out, "\r\n", 2);
}

static void
mf_put_text(struct mf *m, const char *buf, size_t len, int header)
{
	struct mf_line l;
	size_t off = 0;

	while (mf_line_at(buf, len, off, &l)) {
		mf_put_line(m, l.p, l.n, l.eol, header);
		off = l.next;
	}
}

/* The header block, folded; skip_cte leaves out Content-Transfer-Encoding. */
static void
mf_put_headers(struct mf *m, const char *h, size_t hlen, int skip_cte)
{
	struct mf_line l;
	size_t off = 0;
	int skipping = 0;

	while (mf_line_at(h, hlen, off, &l)) {
		int cont = l.n > 0 && (l.p[0] == ' ' || l.p[0] == '\t');

		if (!cont)
			skipping = skip_cte &&
			    mf_is_field(&l, "Content-Transfer-Encoding");
		if (!skipping)
			mf_put_line(m, l.p, l.n, l.eol, 1);
		off = l.next;
	}
}

/*
 * Quoted-printable (RFC 2045 6.7): each line's bytes, printable ASCII as
 * it is and the rest as =XX, a space or tab at the end of a line encoded,
 * soft line breaks ("=" CRLF) keeping every line within 76 characters;
 * the line ends stay line ends.
 */
static void
mf_qp(struct mf *m, const char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	struct mf_line l;
	size_t off = 0;

	while (mf_line_at(buf, len, off, &l)) {
		size_t col = 0;

		for (size_t i = 0; i < l.n; i++) {
			unsigned char c = (unsigned char)l.p[i];
			int plain = (c >= 33 && c <= 126 && c != '=') ||
			    ((c == ' ' || c == '\t') && i + 1 < l.n);
			size_t w = plain ? 1 : 3;

			if (col + w > MF_QP_LINE - 1) {
				(void)vbuf_add(m->out, "=\r\n", 3);
				col = 0;
			}
			if (plain)
				(void)vbuf_addc(m->out, c);
			else {
				(void)vbuf_addc(m->out, '=');
				(void)vbuf_addc(m->out, hex[c >> 4]);
				(void)vbuf_addc(m->out, hex[c & 15]);
			}
			col += w;
		}
		if (l.eol)
			(void)vbuf_add(m->out, "\r\n", 2);
		off = l.next;
	}
}

/* The charset a text/plain made of these bytes can claim. */
static const char *
mf_charset(const char *p, size_t n)
{
	size_t i = 0, k, need;
	int ascii = 1;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		ascii = 0;
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3;
		else
			return "unknown-8bit";
		for (k = 1; k <= need; k++)
			if (i + k >= n ||
			    ((unsigned char)p[i + k] & 0xc0) != 0x80)
				return "unknown-8bit";
		i += need + 1;
	}
	return ascii ? "us-ascii" : "utf-8";
}

/*
 * One entity: buf[0..len), headers then body. top: a message (the whole
 * one, or one inside message/rfc822), which may have no MIME structure.
 */
static void
mf_entity(struct mf *m, const char *buf, size_t len, int depth, int top)
{
	char value[MF_VALUE_MAX], type[128], boundary[MF_BOUNDARY_MAX + 2],
	    cte[64];
	size_t hlen, body;
	int blank, long_h, long_b, has_type, has_version;

	mf_split(buf, len, &hlen, &body, &blank);
	long_h = mimefold_longest(buf, hlen) > MIMEFOLD_LINE_MAX;
	long_b = mimefold_longest(buf + body, len - body) > MIMEFOLD_LINE_MAX;
	if (!long_h && !long_b) {
		(void)vbuf_add(m->out, buf, len);
		return;
	}
	has_version = mf_field(buf, hlen, "MIME-Version", value,
	    sizeof(value));
	has_type = mf_field(buf, hlen, "Content-Type", value, sizeof(value));
	if (!has_type)
		snprintf(value, sizeof(value), "text/plain");
	mf_ctype(value, type, sizeof(type), boundary, sizeof(boundary));
	if (!mf_field(buf, hlen, "Content-Transfer-Encoding", cte,
	    sizeof(cte)))
		cte[0] = '\0';

	if (top && !has_version && !has_type && long_b) {
		/* No MIME at all: it becomes text/plain, quoted-printable. */
		mf_put_headers(m, buf, hlen, 1);
		(void)vbuf_addf(m->out, "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=%s\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		    mf_charset(buf + body, len - body));
		mf_qp(m, buf + body, len - body);
		return;
	}
	if (strncmp(type, "multipart/", 10) == 0 && boundary[0] != '\0' &&
	    strlen(boundary) <= MF_BOUNDARY_MAX && depth < MIMEFOLD_DEPTH_MAX) {
		mf_put_headers(m, buf, hlen, 0);
		if (blank)
			(void)vbuf_add(m->out, "\r\n", 2);
		mf_multipart(m, buf + body, len - body, boundary, depth);
		return;
	}
	if (strcmp(type, "message/rfc822") == 0 && mf_identity(cte) &&
	    depth < MIMEFOLD_DEPTH_MAX) {
		mf_put_headers(m, buf, hlen, 0);
		if (blank)
			(void)vbuf_add(m->out, "\r\n", 2);
		mf_entity(m, buf + body, len - body, depth + 1, 1);
		return;
	}
	/* RFC 2045 6.4: a multipart or message is never encoded itself. */
	if (long_b && mf_identity(cte) && strncmp(type, "multipart/", 10) != 0 &&
	    strncmp(type, "message/", 8) != 0) {
		mf_put_headers(m, buf, hlen, 1);
		(void)vbuf_add(m->out, "Content-Transfer-Encoding: "
		    "quoted-printable\r\n\r\n",
		    sizeof("Content-Transfer-Encoding: "
		    "quoted-printable\r\n\r\n") - 1);
		mf_qp(m, buf + body, len - body);
		return;
	}
	/* Already encoded, yet too long; or too deep: split by force. */
	mf_put_headers(m, buf, hlen, 0);
	if (blank)
		(void)vbuf_add(m->out, "\r\n", 2);
	mf_put_text(m, buf + body, len - body, 0);
}

/*
 * A multipart body: the preamble, each part (an entity) between delimiter
 * lines, the epilogue. The CRLF before a delimiter line belongs to it.
 */
static void
mf_multipart(struct mf *m, const char *buf, size_t len, const char *boundary,
    int depth)
{
	size_t bl = strlen(boundary), off = 0, seg = 0, end;
	int in_part = 0, closed = 0;
	struct mf_line l;

	while (mf_line_at(buf, len, off, &l)) {
		size_t i;
		int close;

		off = l.next;
		if (closed || l.n < 2 + bl || l.p[0] != '-' || l.p[1] != '-' ||
		    memcmp(l.p + 2, boundary, bl) != 0)
			continue;
		i = 2 + bl;
		close = l.n >= i + 2 && l.p[i] == '-' && l.p[i + 1] == '-';
		if (close)
			i += 2;
		while (i < l.n && (l.p[i] == ' ' || l.p[i] == '\t'))
			i++;
		if (i != l.n)
			continue;	/* a line that only starts like it */
		end = (size_t)(l.p - buf);
		if (end >= seg + 2 && buf[end - 2] == '\r' &&
		    buf[end - 1] == '\n')
			end -= 2;
		if (in_part)
			mf_entity(m, buf + seg, end - seg, depth + 1, 0);
		else
			mf_put_text(m, buf + seg, end - seg, 0);
		(void)vbuf_add(m->out, buf + end, (size_t)(l.p - buf) - end);
		mf_put_line(m, l.p, l.n, l.eol, 0);
		seg = l.next;
		in_part = !close;
		closed = close;
	}
	if (in_part)
		mf_entity(m, buf + seg, len - seg, depth + 1, 0);
	else
		mf_put_text(m, buf + seg, len - seg, 0);
}

void
mimefold(const char *msg, size_t len, struct vbuf *out, unsigned *forced)
{
	struct mf m = { .out = out, .forced = 0 };

	mf_entity(&m, msg, len, 0, 1);
	*forced = m.forced;
}
