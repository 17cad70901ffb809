/*
 * metahdr.c - tags and metadata from an application's headers.
 *
 * Families (names case-insensitive):
 *   X-Petrel-Tag: a, b          comma-separated tags
 *   X-Petrel-Metadata-<key>: v  one metadata string
 *   X-Mailgun-Tag: a            one tag per header
 *   X-Mailgun-Variables: {...}  a JSON object: its members are metadata
 *   X-PM-Tag: a                 Postmark: one tag
 *   X-PM-Metadata-<key>: v      Postmark: one metadata string
 *   X-SMTPAPI: {...}            SendGrid: "category" (a string or an array
 *                               of strings) are tags, "unique_args" (an
 *                               object) metadata; other members ignored
 *   X-Petrel-Deliver-After: date  the first attempt's time
 *   X-Mailgun-Deliver-By: date    Mailgun's name for the same (its SMTP
 *                               header for o:deliverytime)
 *   X-Petrel-Priority: bulk     the message goes in the bulk lane
 * Values are unfolded (RFC 5322 2.2.3) and trimmed; RFC 2047 encoded words
 * are not decoded. JSON is parsed by jansson, never here. The input is
 * untrusted: every count and size has a bound (metahdr.h), and exceeding
 * one is an error the caller refuses the message for.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "metahdr.h"

enum metahdr_kind {
	MH_NONE,
	MH_PETREL_TAG,
	MH_PETREL_META,
	MH_MAILGUN_TAG,
	MH_MAILGUN_VARS,
	MH_PM_TAG,
	MH_PM_META,
	MH_SMTPAPI,
	MH_DELIVER_AFTER,
	MH_PRIORITY,
};

static const struct {
	const char		*name;
	int			 prefix;	/* the name then "<key>" */
	enum metahdr_kind	 kind;
} metahdr_names[] = {
	{ "X-Petrel-Tag", 0, MH_PETREL_TAG },
	{ "X-Petrel-Metadata-", 1, MH_PETREL_META },
	{ "X-Mailgun-Tag", 0, MH_MAILGUN_TAG },
	{ "X-Mailgun-Variables", 0, MH_MAILGUN_VARS },
	{ "X-PM-Tag", 0, MH_PM_TAG },
	{ "X-PM-Metadata-", 1, MH_PM_META },
	{ "X-SMTPAPI", 0, MH_SMTPAPI },
	{ "X-Petrel-Deliver-After", 0, MH_DELIVER_AFTER },
	{ "X-Mailgun-Deliver-By", 0, MH_DELIVER_AFTER },
	{ "X-Petrel-Priority", 0, MH_PRIORITY },
};

static enum metahdr_kind	metahdr_kind(const char *, size_t, size_t *,
		    const char **);
static int	metahdr_fail(struct metahdr *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	metahdr_tag(struct metahdr *, const char *, size_t);
static int	metahdr_meta(struct metahdr *, const char *, size_t, json_t *);
static int	metahdr_object(struct metahdr *, json_t *, const char *);

void
metahdr_init(struct metahdr *m)
{
	memset(m, 0, sizeof(*m));
}

void
metahdr_free(struct metahdr *m)
{
	json_decref(m->meta);
	json_decref(m->tags);
	metahdr_init(m);
}

static int
metahdr_fail(struct metahdr *m, const char *fmt, ...)
{
	va_list ap;

	if (m->err[0] != '\0')
		return -1;	/* the first error is the one reported */
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Which family a field name is in; *keyoff is where a <key> starts, and
 * *canon (unless NULL) the family's name as written above.
 */
static enum metahdr_kind
metahdr_kind(const char *name, size_t len, size_t *keyoff,
    const char **canon)
{
	size_t i, n;

	if (len < 2 || (name[0] != 'X' && name[0] != 'x') || name[1] != '-')
		return MH_NONE;
	for (i = 0; i < sizeof(metahdr_names) / sizeof(metahdr_names[0]);
	    i++) {
		n = strlen(metahdr_names[i].name);
		if (metahdr_names[i].prefix ? len < n : len != n)
			continue;
		if (strncasecmp(name, metahdr_names[i].name, n) != 0)
			continue;
		*keyoff = n;
		if (canon != NULL)
			*canon = metahdr_names[i].name;
		return metahdr_names[i].kind;
	}
	return MH_NONE;
}

/* Whether a field name is one of the families (and so removed). */
int
metahdr_is_family(const char *name, size_t len)
{
	size_t k;

	return metahdr_kind(name, len, &k, NULL) != MH_NONE;
}

/* Adds one tag (trimmed); an empty one is skipped, a repeat ignored. */
static int
metahdr_tag(struct metahdr *m, const char *p, size_t len)
{
	json_t *t;
	size_t i;

	while (len > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	if (len > METAHDR_TAG_LEN)
		return metahdr_fail(m, "tag longer than %d bytes",
		    METAHDR_TAG_LEN);
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return metahdr_fail(m, "control character in a tag");
	if (m->tags == NULL && (m->tags = json_array()) == NULL)
		return metahdr_fail(m, "out of memory");
	for (i = 0; i < json_array_size(m->tags); i++) {
		t = json_array_get(m->tags, i);
		if (json_string_length(t) == len &&
		    memcmp(json_string_value(t), p, len) == 0)
			return 0;
	}
	if (json_array_size(m->tags) >= METAHDR_TAGS_MAX)
		return metahdr_fail(m, "more than %d tags", METAHDR_TAGS_MAX);
	if ((t = json_stringn(p, len)) == NULL)
		return metahdr_fail(m, "tag is not UTF-8");
	if (json_array_append_new(m->tags, t) == -1)
		return metahdr_fail(m, "out of memory");
	return 0;
}

/* Sets metadata key (len bytes) to v, taking v's reference; last wins. */
static int
metahdr_meta(struct metahdr *m, const char *key, size_t len, json_t *v)
{
	char k[METAHDR_KEY_LEN + 1];
	size_t i;

	if (v == NULL)
		return metahdr_fail(m, "metadata value is not UTF-8");
	if (len == 0 || len > METAHDR_KEY_LEN || memchr(key, '\0', len)) {
		json_decref(v);
		return metahdr_fail(m, len == 0 ? "empty metadata key" :
		    "metadata key empty, over %d bytes or with NUL",
		    METAHDR_KEY_LEN);
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) {
			json_decref(v);
			return metahdr_fail(m,
			    "control character in a metadata key");
		}
	memcpy(k, key, len);
	k[len] = '\0';
	if (m->meta == NULL && (m->meta = json_object()) == NULL) {
		json_decref(v);
		return metahdr_fail(m, "out of memory");
	}
	if (json_object_get(m->meta, k) == NULL &&
	    json_object_size(m->meta) >= METAHDR_KEYS_MAX) {
		json_decref(v);
		return metahdr_fail(m, "more than %d metadata keys",
		    METAHDR_KEYS_MAX);
	}
	if (json_object_set_new(m->meta, k, v) == -1)
		return metahdr_fail(m, "metadata key is not UTF-8");
	return 0;
}

/* Each member of a JSON object becomes metadata, its value kept as JSON. */
static int
metahdr_object(struct metahdr *m, json_t *o, const char *what)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return metahdr_fail(m, "%s is not a JSON object", what);
	json_object_foreach(o, k, v)
		if (metahdr_meta(m, k, strlen(k), json_incref(v)) == -1)
			return -1;
	return 0;
}

/*
 * One header: name[0..nlen) without the colon, its raw value (folded, as
 * received, without the final line end). Returns 1 when it is one of the
 * families, 0 when not, -1 on an error (m->err says which).
 */
int
metahdr_add(struct metahdr *m, const char *name, size_t nlen,
    const char *raw, size_t rlen)
{
	enum metahdr_kind kind;
	const char *canon;
	json_error_t jerr;
	json_t *j, *c;
	char *v;
	size_t keyoff = 0, vlen = 0, i, start;
	int rc = 0;

	if ((kind = metahdr_kind(name, nlen, &keyoff, &canon)) == MH_NONE)
		return 0;
	m->nheaders++;
	/* Unfold: drop CR and LF; the white space after them stays. */
	if ((v = malloc(rlen + 1)) == NULL)
		return metahdr_fail(m, "out of memory");
	for (i = 0; i < rlen; i++)
		if (raw[i] != '\r' && raw[i] != '\n')
			v[vlen++] = raw[i];
	for (start = 0; start < vlen && (v[start] == ' ' || v[start] == '\t');
	    start++)
		;
	while (vlen > start && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	v[vlen] = '\0';
	/* A NUL would end the value for every C reader of the event. */
	if (memchr(v, '\0', vlen) != NULL) {
		free(v);
		return metahdr_fail(m, "NUL in a header value");
	}
	switch (kind) {
	case MH_PETREL_TAG:
		for (i = start; rc == 0 && i <= vlen; i++) {
			size_t e = i;

			while (e < vlen && v[e] != ',')
				e++;
			rc = metahdr_tag(m, v + i, e - i);
			i = e;
		}
		break;
	case MH_MAILGUN_TAG:
	case MH_PM_TAG:
		rc = metahdr_tag(m, v + start, vlen - start);
		break;
	case MH_PETREL_META:
	case MH_PM_META:
		rc = metahdr_meta(m, name + keyoff, nlen - keyoff,
		    json_stringn(v + start, vlen - start));
		break;
	case MH_MAILGUN_VARS:
	case MH_SMTPAPI:
		if ((j = json_loadb(v + start, vlen - start,
		    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			rc = metahdr_fail(m, "%s: malformed JSON: %s",
			    metahdr_names[kind == MH_SMTPAPI ? 6 : 3].name,
			    jerr.text);
			break;
		}
		if (kind == MH_MAILGUN_VARS) {
			rc = metahdr_object(m, j, "X-Mailgun-Variables");
			json_decref(j);
			break;
		}
		if (!json_is_object(j)) {
			json_decref(j);
			rc = metahdr_fail(m, "X-SMTPAPI is not a JSON object");
			break;
		}
		if ((c = json_object_get(j, "category")) != NULL) {
			if (json_is_string(c))
				rc = metahdr_tag(m, json_string_value(c),
				    json_string_length(c));
			else if (json_is_array(c)) {
				for (i = 0; rc == 0 && i < json_array_size(c);
				    i++) {
					json_t *t = json_array_get(c, i);

					if (!json_is_string(t)) {
						rc = metahdr_fail(m,
						    "X-SMTPAPI category is not "
						    "a string");
						break;
					}
					rc = metahdr_tag(m,
					    json_string_value(t),
					    json_string_length(t));
				}
			} else
				rc = metahdr_fail(m, "X-SMTPAPI category is "
				    "not a string or an array");
		}
		if (rc == 0 && (c = json_object_get(j, "unique_args")) != NULL)
			rc = metahdr_object(m, c, "X-SMTPAPI unique_args");
		json_decref(j);
		break;
	case MH_DELIVER_AFTER:
		/* The last one wins; a bad date is the caller's "now". */
		m->has_after = 1;
		m->after_header = canon;
		(void)snprintf(m->after_raw, sizeof(m->after_raw), "%.*s",
		    (int)(vlen - start), v + start);
		if (metahdr_date(v + start, vlen - start, &m->after) == -1)
			m->after = -1;
		break;
	case MH_PRIORITY:
		/* A message may only lower itself: other values are ignored. */
		if (vlen - start == 4 && strncasecmp(v + start, "bulk", 4) == 0)
			m->bulk = 1;
		break;
	case MH_NONE:
		break;
	}
	free(v);
	return rc == -1 ? -1 : 1;
}

int
metahdr_date(const char *s, size_t len, int64_t *out)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S", "%d %b %Y %H:%M:%S",
		"%a, %d %b %Y %H:%M", "%d %b %Y %H:%M",
	};
	char buf[METAHDR_DATE_MAX + 1], *p, *end;
	struct tm tm;
	long off;
	size_t i, n;
	time_t t;

	if (len > METAHDR_DATE_MAX)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((p = strchr(buf, '(')) != NULL)	/* "+0000 (UTC)" */
		*p = '\0';
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(p, fmts[i], &tm)) == NULL)
			continue;
		while (*end == ' ' || *end == '\t')
			end++;
		if ((end[0] == '+' || end[0] == '-') && strlen(end) == 5 &&
		    strspn(end + 1, "0123456789") == 4) {
			off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600 +
			    ((end[3] - '0') * 10 + (end[4] - '0')) * 60;
			if (end[0] == '-')
				off = -off;
		} else if (strcasecmp(end, "GMT") == 0 ||
		    strcasecmp(end, "UT") == 0 ||
		    strcasecmp(end, "UTC") == 0 || strcasecmp(end, "Z") == 0)
			off = 0;
		else
			continue;
		tm.tm_isdst = 0;
		if ((t = timegm(&tm)) == (time_t)-1)
			return -1;
		*out = (int64_t)t - off;
		return 0;
	}
	return -1;
}

/*
 * Reads every family header in the header block d[0..len). Returns the
 * number found, or -1 on the first error. When kept is not NULL and some
 * were found, kept receives the block without them, every other byte as it
 * was (so the CRLF structure and the other headers are untouched); when
 * none were, kept is left empty and the caller uses its own block. A block
 * with no line starting "X-" costs one pass over its line starts.
 */
int
metahdr_scan(struct metahdr *m, const char *d, size_t len, struct vbuf *kept)
{
	const char *eol, *colon;
	size_t off, end, n;
	int any = 0, rc;

	for (off = 0; off + 1 < len; off = (size_t)(eol - d) + 1) {
		if ((d[off] == 'X' || d[off] == 'x') && d[off + 1] == '-') {
			any = 1;
			break;
		}
		if ((eol = memchr(d + off, '\n', len - off)) == NULL)
			break;
	}
	if (!any)
		return 0;
	for (off = 0; off < len; off = end) {
		/* The field runs to the end of its last continuation line. */
		end = off;
		for (;;) {
			eol = memchr(d + end, '\n', len - end);
			end = eol == NULL ? len : (size_t)(eol - d) + 1;
			if (end >= len || (d[end] != ' ' && d[end] != '\t'))
				break;
		}
		colon = memchr(d + off, ':', end - off);
		rc = 0;
		if (colon != NULL) {
			n = end - (size_t)(colon + 1 - d);
			if (n > 0 && d[end - 1] == '\n')
				n--;
			if (n > 0 && colon[n] == '\r')
				n--;
			rc = metahdr_add(m, d + off, (size_t)(colon - d) - off,
			    colon + 1, n);
		}
		if (rc == -1)
			return -1;
		if (rc == 0 && kept != NULL)
			vbuf_add(kept, d + off, end - off);
	}
	if (m->nheaders == 0 && kept != NULL)
		vbuf_reset(kept);	/* the caller keeps its own block */
	return (int)m->nheaders;
}

/*
 * The results as compact JSON text: meta gets the object, tags the array;
 * each is left empty when there is none. -1 when the metadata is over
 * METAHDR_JSON_MAX bytes.
 */
int
metahdr_result(struct metahdr *m, struct vbuf *meta, struct vbuf *tags)
{
	char *s;

	vbuf_reset(meta);
	vbuf_reset(tags);
	if (m->meta != NULL && json_object_size(m->meta) > 0) {
		if ((s = json_dumps(m->meta, JSON_COMPACT)) == NULL)
			return metahdr_fail(m, "out of memory");
		if (strlen(s) > METAHDR_JSON_MAX) {
			free(s);
			return metahdr_fail(m, "metadata over %d bytes of JSON",
			    METAHDR_JSON_MAX);
		}
		vbuf_adds(meta, s);
		free(s);
	}
	if (m->tags != NULL && json_array_size(m->tags) > 0) {
		if ((s = json_dumps(m->tags, JSON_COMPACT)) == NULL)
			return metahdr_fail(m, "out of memory");
		vbuf_adds(tags, s);
		free(s);
	}
	return 0;
}
