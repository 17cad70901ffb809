/*
 * fuzz_smtp_reply.c - libFuzzer target for smtp/smtp_reply.c: the replies
 * remote servers send (multi-line replies, enhanced status codes, EHLO
 * keyword lists, huge and malformed lines). Remote servers are untrusted.
 *
 * The input is what a server sends, split at LF (a CR before it dropped)
 * as smtp's reader splits it; lines longer than SMTP_LINE_MAX are left
 * out, as the reader refuses them before parsing. Lines are fed to
 * smtp_reply_line as replies, a malformed line starting a new one, at
 * most SMTP_REPLY_LINES_MAX lines each. Checked for every whole reply:
 * the code is 200-599 and heads the text; the text is a bounded string;
 * an enhanced code kept is well formed and of the reply's class; EHLO's
 * keyword parse of its lines sets the ESMTP bit and a SIZE limit only
 * when SIZE is there. Broken invariants abort through ASSERT. Built and
 * run by `make fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_check(const struct smtp_reply *, const struct vbuf *);

static void
fuzz_check(const struct smtp_reply *r, const struct vbuf *lines)
{
	char head[8], dsn[SMTP_DSN_SIZE];
	unsigned features;
	uint64_t size_limit;

	ASSERT(r->code >= 200 && r->code <= 599);
	ASSERT(memchr(r->text, '\0', sizeof(r->text)) != NULL);
	snprintf(head, sizeof(head), "%d", r->code);
	ASSERT(strncmp(r->text, head, 3) == 0);
	if (r->dsn[0] != '\0') {
		ASSERT(r->dsn[0] == head[0]);
		ASSERT(smtp_dsn_parse(r->dsn, dsn, sizeof(dsn)) ==
		    strlen(r->dsn));
	}
	smtp_features_parse(lines->data, &features, &size_limit);
	ASSERT(features & SMTP_FEAT_ESMTP);
	if (!(features & SMTP_FEAT_SIZE))
		ASSERT(size_limit == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char line[SMTP_LINE_MAX + 1];
	struct smtp_reply r;
	struct vbuf *lines = vbuf_create(0);
	size_t off = 0, n;
	int nlines = 0, rc;

	memset(&r, 0, sizeof(r));
	while (off < len) {
		const uint8_t *nl = memchr(data + off, '\n', len - off);

		n = nl != NULL ? (size_t)(nl - (data + off)) : len - off;
		if (n > 0 && data[off + n - 1] == '\r')
			n--;
		if (n <= SMTP_LINE_MAX && memchr(data + off, '\0', n) == NULL) {
			memcpy(line, data + off, n);
			line[n] = '\0';
			if (nlines == 0)
				vbuf_reset(lines);
			rc = smtp_reply_line(&r, lines, line, nlines);
			if (rc == 0)
				fuzz_check(&r, lines);
			/* A whole, malformed or over-long reply: anew. */
			if (rc == 1 && nlines + 1 < SMTP_REPLY_LINES_MAX)
				nlines++;
			else
				nlines = 0;
		}
		off += (nl != NULL ? (size_t)(nl - (data + off)) + 1 :
		    len - off);
	}
	vbuf_free(lines);
	return 0;
}
