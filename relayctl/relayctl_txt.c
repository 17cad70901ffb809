/*
 * relayctl_txt.c - TXT answers as "relayctl domain check" reads them: the
 * records of an answer (each its strings joined, made printable, bounded),
 * one record's strings joined raw for libspf2, "tag=value" lookup (DKIM
 * and DMARC records), and the choice of the v=DMARC1 record.
 *
 * What a resolver relays is whatever the domain's owner (or anyone in the
 * path) published, so this is kept apart from the lookups in
 * relayctl_check.c: pure, bounded, for fuzz_txt_answer and
 * check_relayctl_txt.
 */
#include <sys/types.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "relayctl.h"
#include "vbuf.h"

/*
 * The TXT/IN records of the DNS answer ans[0..len), at most
 * RELAYCTL_TXT_MAX, each its character-strings joined into t->rec[] (at
 * most RELAYCTL_TXT_LEN bytes, unprintable bytes as '?'). Returns 1 some,
 * 0 none, -1 malformed answer (t->n is 0). Free with relayctl_txt_free.
 */
int
relayctl_txt_parse(const unsigned char *ans, size_t len,
    struct relayctl_txt *t)
{
	const unsigned char *rd, *end;
	ns_msg msg;
	ns_rr rr;
	int count, i;
	size_t k;

	t->n = 0;
	if (len > 65535 || ns_initparse(ans, (int)len, &msg) == -1)
		return -1;
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && t->n < RELAYCTL_TXT_MAX; i++) {
		struct vbuf *v;

		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		v = &t->rec[t->n++];
		vbuf_init(v, 0);
		rd = ns_rr_rdata(rr);
		end = rd + ns_rr_rdlen(rr);
		while (rd < end) {
			size_t sl = *rd++;

			if (sl > (size_t)(end - rd))
				sl = (size_t)(end - rd);
			for (k = 0; k < sl && v->len < RELAYCTL_TXT_LEN; k++)
				(void)vbuf_addc(v, isprint(rd[k]) ||
				    rd[k] == ' ' ? rd[k] : '?');
			rd += sl;
		}
	}
	return t->n > 0;
}

void
relayctl_txt_free(struct relayctl_txt *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		vbuf_release(&t->rec[i]);
	t->n = 0;
}

/*
 * The character-strings of one TXT rdata rd[0..rdlen) joined as they are
 * into out (rdlen + 1 bytes: the strings never take more than their
 * rdata), NUL-terminated; a string that claims more than is left is cut.
 * Returns the length.
 */
size_t
relayctl_txt_join(const unsigned char *rd, size_t rdlen, char *out)
{
	const unsigned char *end = rd + rdlen;
	size_t off = 0, sl;

	while (rd < end) {
		sl = *rd++;
		if (sl > (size_t)(end - rd))
			sl = (size_t)(end - rd);
		memcpy(out + off, rd, sl);
		off += sl;
		rd += sl;
	}
	out[off] = '\0';
	return off;
}

/* s without white space into out. */
void
relayctl_txt_nospace(const char *s, struct vbuf *out)
{
	vbuf_reset(out);
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			(void)vbuf_addc(out, *s);
}

/*
 * Value of tag (case-insensitive name) in a "tag=value; ..." record
 * (DKIM, RFC 6376 3.2; DMARC, RFC 7489 6.4), trimmed, into val. 1 found,
 * 0 not.
 */
int
relayctl_txt_tag(const char *rec, const char *tag, struct vbuf *val)
{
	const char *p = rec, *semi, *eq, *b, *e;
	size_t tl = strlen(tag);

	while (*p != '\0') {
		if ((semi = strchr(p, ';')) == NULL)
			semi = p + strlen(p);
		while (p < semi && isspace((unsigned char)*p))
			p++;
		eq = memchr(p, '=', (size_t)(semi - p));
		if (eq != NULL) {
			e = eq;
			while (e > p && isspace((unsigned char)e[-1]))
				e--;
			if ((size_t)(e - p) == tl &&
			    strncasecmp(p, tag, tl) == 0) {
				b = eq + 1;
				e = semi;
				while (b < e && isspace((unsigned char)*b))
					b++;
				while (e > b && isspace((unsigned char)e[-1]))
					e--;
				vbuf_reset(val);
				(void)vbuf_add(val, b, (size_t)(e - b));
				return 1;
			}
		}
		p = *semi == '\0' ? semi : semi + 1;
	}
	return 0;
}

/*
 * The DMARC record among t's (RFC 7489 6.6.3: one that starts with
 * v=DMARC1), leading white space skipped; *nrec says how many there are
 * (more than one: receivers ignore them all). NULL when none.
 */
const char *
relayctl_txt_dmarc(const struct relayctl_txt *t, size_t *nrec)
{
	const char *rec = NULL;
	size_t i;

	*nrec = 0;
	for (i = 0; i < t->n; i++) {
		const char *s = t->rec[i].data;

		while (isspace((unsigned char)*s))
			s++;
		if (strncasecmp(s, "v=DMARC1", 8) == 0 &&
		    (s[8] == ';' || s[8] == ' ' || s[8] == '\0')) {
			rec = s;
			(*nrec)++;
		}
	}
	return rec;
}
