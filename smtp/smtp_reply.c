/*
 * smtp_reply.c - what a remote server says, parsed: reply lines into one
 * reply (code, enhanced status, text), and EHLO's keyword list into
 * features. Remote servers are untrusted, so this is kept apart from the
 * socket code, pure and bounded, for fuzz_smtp_reply.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp.h"

static void	text_append(char *, size_t, const char *);

size_t
smtp_dsn_parse(const char *text, char *dsn, size_t dsnsize)
{
	const char *p = text;
	size_t n, part;

	/* class "." subject "." detail: 1 digit, then 1-3 digits twice. */
	if (*p != '2' && *p != '4' && *p != '5')
		return 0;
	p++;
	for (part = 0; part < 2; part++) {
		if (*p++ != '.')
			return 0;
		for (n = 0; isdigit((unsigned char)*p) && n < 4; n++)
			p++;
		if (n == 0 || n > 3)
			return 0;
	}
	if (*p != '\0' && *p != ' ')
		return 0;
	n = (size_t)(p - text);
	if (n >= dsnsize)
		return 0;
	memcpy(dsn, text, n);
	dsn[n] = '\0';
	return n;
}

/* Appends text to a bounded string, silently truncating. */
static void
text_append(char *dst, size_t size, const char *src)
{
	size_t len = strlen(dst), n = strlen(src);

	if (len + 1 >= size)
		return;
	if (n > size - len - 1)
		n = size - len - 1;
	memcpy(dst + len, src, n);
	dst[len + n] = '\0';
}

int
smtp_reply_line(struct smtp_reply *r, struct vbuf *lines, const char *line,
    int nlines)
{
	char dsn[SMTP_DSN_SIZE];
	const char *text;
	size_t len, linelen = strlen(line);
	int code;

	if (nlines == 0) {
		r->code = 0;
		r->dsn[0] = '\0';
		r->text[0] = '\0';
	}
	if (linelen < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    line[0] < '2' || line[0] > '5' ||
	    (linelen > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (nlines > 0 && code != r->code)
		return -1;
	text = linelen > 4 ? line + 4 : "";
	(void)vbuf_adds(lines, text);
	(void)vbuf_addc(lines, '\n');
	if (nlines == 0) {
		r->code = code;
		(void)snprintf(r->text, sizeof(r->text), "%d%s%s", code,
		    *text != '\0' ? " " : "", text);
		len = smtp_dsn_parse(text, dsn, sizeof(dsn));
		if (len > 0 && dsn[0] == line[0])
			memcpy(r->dsn, dsn, sizeof(dsn));
	} else if (*text != '\0') {
		/* Continuation lines repeat the code: drop it. */
		len = smtp_dsn_parse(text, dsn, sizeof(dsn));
		if (len > 0 && strcmp(dsn, r->dsn) == 0)
			text += len + (text[len] == ' ');
		text_append(r->text, sizeof(r->text), " ");
		text_append(r->text, sizeof(r->text), text);
	}
	return linelen > 3 && line[3] == '-';
}

/*
 * The keywords of an EHLO reply, as smtp_reply_line collected its texts
 * (one per line, the first the server's name): the features Petrel uses,
 * and SIZE's limit when it gives one.
 */
void
smtp_features_parse(const char *lines, unsigned *features,
    uint64_t *size_limit)
{
	static const struct {
		const char	*kw;
		unsigned	 flag;
	} kws[] = {
		{ "PIPELINING", SMTP_FEAT_PIPELINING },
		{ "SIZE", SMTP_FEAT_SIZE },
		{ "8BITMIME", SMTP_FEAT_8BITMIME },
		{ "STARTTLS", SMTP_FEAT_STARTTLS },
		{ "DSN", SMTP_FEAT_DSN },
		{ "SMTPUTF8", SMTP_FEAT_SMTPUTF8 },
	};
	const char *p, *nl;
	size_t i, n;

	*features = SMTP_FEAT_ESMTP;
	*size_limit = 0;
	/* The first line is the server's name and greeting text. */
	if ((nl = strchr(lines, '\n')) == NULL)
		return;
	for (p = nl + 1; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
			n = strlen(kws[i].kw);
			if (strncasecmp(p, kws[i].kw, n) != 0 ||
			    (p[n] != ' ' && p[n] != '\n'))
				continue;
			*features |= kws[i].flag;
			if (kws[i].flag == SMTP_FEAT_SIZE && p[n] == ' ') {
				unsigned long long v;
				char *end;

				errno = 0;
				v = strtoull(p + n + 1, &end, 10);
				if (errno == 0 && end != p + n + 1 &&
				    (*end == '\n' || *end == ' '))
					*size_limit = v;
			}
		}
	}
}
