/*
 * smtpd_hdr.c - the client's header block at DATA, read: where the block
 * ends, whether a field is present, the Message-ID: value, each From:
 * field unfolded, and the RFC 5322 address walk over a From: value.
 *
 * Clients send whatever bytes they like, so this is kept apart from the
 * session and the policy that use it (smtpd_data.c, smtpd_policy.c): pure,
 * bounded, on (pointer, length) input that need not be NUL-terminated, for
 * fuzz_smtpd_hdr and check_smtpd_hdr.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtpd.h"

/*
 * Finds the end of the header block in d[0..len): *end is the offset of
 * the empty line (*blank = 1) or of the first line that is neither a field
 * nor a continuation, the body starting without its empty line (*blank =
 * 0). Returns 0 while no such line has arrived whole.
 */
int
smtpd_hdr_block_end(const char *d, size_t len, size_t *end, int *blank)
{
	const char *eol;
	size_t off = 0, k;

	while (off < len) {
		if ((eol = memchr(d + off, '\n', len - off)) == NULL)
			break;
		if (eol == d + off + 1 && d[off] == '\r') {
			*end = off;
			*blank = 1;
			return 1;
		}
		if (off > 0 && (d[off] == ' ' || d[off] == '\t')) {
			off = (size_t)(eol - d) + 1;	/* continuation */
			continue;
		}
		/* A field name: printable ASCII except ':', then ':'. */
		k = off;
		while (k < (size_t)(eol - d) && d[k] > 0x20 && d[k] < 0x7f &&
		    d[k] != ':')
			k++;
		if (k == off || d[k] != ':') {
			*end = off;
			*blank = 0;
			return 1;
		}
		off = (size_t)(eol - d) + 1;
	}
	return 0;
}

/* 1 if a line of d[0..len) starts with the field name (no colon), then ':'. */
int
smtpd_hdr_has(const char *d, size_t len, const char *name)
{
	size_t n = strlen(name), off = 0;
	const char *eol;

	while (off < len) {
		if (len - off > n && strncasecmp(d + off, name, n) == 0 &&
		    d[off + n] == ':')
			return 1;
		if ((eol = memchr(d + off, '\n', len - off)) == NULL)
			break;
		off = (size_t)(eol - d) + 1;
	}
	return 0;
}

/*
 * The first Message-ID: of d[0..len), unfolded, white space runs made one
 * space, trimmed, into out (SMTPD_MSGID_MAX + 1 bytes). Empty when there is
 * none, or when it is too long or holds control characters: no one's real
 * id, and it would go into the log and the events.
 */
void
smtpd_hdr_message_id(const char *d, size_t len, char *out)
{
	static const char name[] = "Message-ID:";
	size_t off = 0, n = 0, nl = sizeof(name) - 1;
	const char *eol, *p, *end;

	out[0] = '\0';
	while (off < len) {
		if (len - off > nl && strncasecmp(d + off, name, nl) == 0)
			break;
		if ((eol = memchr(d + off, '\n', len - off)) == NULL)
			return;
		off = (size_t)(eol - d) + 1;
	}
	if (off >= len)
		return;
	p = d + off + nl;
	end = d + len;
	/* The value runs to the first line that is not a continuation. */
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n') {
			if (p + 1 >= end || (p[1] != ' ' && p[1] != '\t'))
				break;
			continue;
		}
		if (c == '\r' || c == ' ' || c == '\t') {
			if (n > 0 && out[n - 1] != ' ' && n < SMTPD_MSGID_MAX)
				out[n++] = ' ';
			continue;
		}
		if (c < 0x20 || c == 0x7f || n >= SMTPD_MSGID_MAX) {
			out[0] = '\0';
			return;
		}
		out[n++] = (char)c;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/*
 * The next From: field of hdr[0..len) at or after *off, unfolded (line
 * ends dropped) into value (size > 0, NUL-terminated; a longer value is cut
 * there). Returns its length, with *off past the field, or -1 when there is
 * no further From: field.
 */
ssize_t
smtpd_hdr_from_next(const char *hdr, size_t len, size_t *off, char *value,
    size_t size)
{
	size_t end, vstart, vlen;
	const char *eol;

	while (*off < len) {
		eol = memchr(hdr + *off, '\n', len - *off);
		end = eol == NULL ? len : (size_t)(eol - hdr) + 1;
		if (end - *off <= 5 || strncasecmp(hdr + *off, "From:",
		    5) != 0) {
			*off = end;
			continue;
		}
		/* Unfold: the field runs on over continuation lines. */
		vstart = *off + 5;
		vlen = 0;
		for (;;) {
			for (size_t i = vstart; i < end; i++)
				if (hdr[i] != '\r' && hdr[i] != '\n' &&
				    vlen + 1 < size)
					value[vlen++] = hdr[i];
			if (end >= len || (hdr[end] != ' ' &&
			    hdr[end] != '\t'))
				break;
			vstart = end;
			eol = memchr(hdr + end, '\n', len - end);
			end = eol == NULL ? len : (size_t)(eol - hdr) + 1;
		}
		value[vlen] = '\0';
		*off = end;
		return (ssize_t)vlen;
	}
	return -1;
}

/*
 * Walks an address list v[0..n) (a From: value, RFC 5322 3.4): addresses
 * in <...>, or bare addr-specs, separated by commas outside quotes, angle
 * brackets and comments; display names and comments are skipped. Each
 * address found (at most SMTP_PATH_MAX bytes, cut there) is handed to fn
 * with its domain ("" when it has none). Returns the number of addresses,
 * or -1 as soon as fn returns -1.
 */
int
smtpd_hdr_addrs(const char *v, size_t n,
    int (*fn)(void *, const char *, const char *), void *arg)
{
	char addr[SMTP_PATH_MAX + 1], dom[SMTP_DOMAIN_MAX + 1];
	size_t i, a = 0;
	int quote = 0, paren = 0, angle = 0, had_angle = 0, naddr = 0;

	for (i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';

		if (quote) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quote = 0;
			if (!had_angle && !angle && a < SMTP_PATH_MAX &&
			    c != '"')
				addr[a++] = c;
			continue;
		}
		if (paren) {
			if (c == '(')
				paren++;
			else if (c == ')')
				paren--;
			continue;
		}
		if (c == '"') {
			quote = 1;
			if (!had_angle)
				a = 0;	/* a display name, not the address */
			continue;
		}
		if (c == '(') {
			paren = 1;
			continue;
		}
		if (c == '<') {
			angle = 1;
			had_angle = 1;
			a = 0;
			continue;
		}
		if (c == '>') {
			angle = 0;
			continue;
		}
		if (c == ',' && !angle) {
			addr[a] = '\0';
			if (a > 0 || had_angle) {
				naddr++;
				smtpcmd_addr_domain(addr, dom, sizeof(dom));
				if (fn(arg, addr, dom) == -1)
					return -1;
			}
			a = 0;
			had_angle = 0;
			continue;
		}
		if ((angle || !had_angle) && !isspace((unsigned char)c) &&
		    a < SMTP_PATH_MAX)
			addr[a++] = c;
		else if (!angle && !had_angle && isspace((unsigned char)c) &&
		    a > 0 && memchr(addr, '@', a) == NULL)
			a = 0;	/* words of a display name before <...> */
	}
	return naddr;
}
